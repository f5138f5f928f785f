//! `switchboard serve` configuration (TOML): listen address, public base URL, store, channels,
//! routing, API tokens. [`Config::load`] parses; [`Config::resolve`] checks everything and
//! reports every problem with its field path, never a secret value.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use switchboard_conformance::fixture::SecretRef;
use switchboard_core::{ChannelContext, Connector, ConnectorError, SecretName, Secrets};
use switchboard_plugin_host::Capabilities;
use switchboard_routing::RoutingConfig;
use switchboard_store::Synchronous;

/// The default listen address: loopback only.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default webhook body limit (Meta batches reach about 3 MB).
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// `host:port` to listen on.
    #[serde(default)]
    pub(crate) listen: Option<String>,
    /// The URL providers call (scheme, host, port, path prefix), used to rebuild the signed URL.
    #[serde(default)]
    pub(crate) public_base_url: Option<String>,
    /// Where the embedded store lives when `store.url` is not given.
    #[serde(default)]
    pub(crate) data_dir: Option<PathBuf>,
    /// The store.
    #[serde(default)]
    pub(crate) store: StoreConfig,
    /// Request limits.
    #[serde(default)]
    pub(crate) limits: Limits,
    /// The channels.
    #[serde(default)]
    pub(crate) channels: Vec<ChannelConfig>,
    /// The routing engine's configuration (`switchboard_routing::RoutingConfig`).
    #[serde(default)]
    pub(crate) routing: RoutingConfig,
    /// API bearer tokens.
    #[serde(default)]
    pub(crate) api_tokens: Vec<ApiToken>,
    /// Outbound HTTP.
    #[serde(default)]
    pub(crate) transport: TransportConfig,
    /// Background workers.
    #[serde(default)]
    pub(crate) workers: WorkersConfig,
    /// Where plugins are loaded from (one subdirectory per plugin: `plugin.toml` and its
    /// component); default `{data_dir}/plugins`.
    #[serde(default)]
    pub(crate) plugins_dir: Option<PathBuf>,
    /// How often the plugins directory is checked for changes, seconds (default 2; 0: not
    /// watched).
    #[serde(default)]
    pub(crate) plugins_watch_secs: Option<u64>,
    /// `[[plugins]]`: the capabilities granted to each plugin.
    #[serde(default)]
    pub(crate) plugins: Vec<PluginConfig>,
    /// `[[event_subscriptions]]`: integration event webhooks.
    #[serde(default)]
    pub(crate) event_subscriptions: Vec<crate::gateway::events::SubscriptionConfig>,
}

/// `[[plugins]]`: what the operator grants one plugin (it gets declared ∧ granted).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PluginConfig {
    /// The plugin id (its manifest's `id`); channels name it as their `connector`.
    pub(crate) id: String,
    /// `{ egress_hosts = [...], secrets = [...], http = false }`; nothing when absent.
    #[serde(default)]
    pub(crate) grant: Capabilities,
}

/// The default interval between two checks of the plugins directory.
pub(crate) const DEFAULT_PLUGINS_WATCH_SECS: u64 = 2;

/// The plugins part of the checked configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct PluginsSettings {
    /// The plugins directory (`None`: no `plugins_dir` and no `data_dir`, plugins are off).
    pub(crate) dir: Option<PathBuf>,
    /// The watch interval (`None`: not watched).
    pub(crate) watch: Option<std::time::Duration>,
    /// Grants by plugin id.
    pub(crate) grants: BTreeMap<String, Capabilities>,
}

/// A channel whose connector is a plugin: built once the plugins are loaded
/// ([`crate::gateway::plugins`]).
#[derive(Clone, Debug)]
pub(crate) struct PluginChannel {
    /// Its index in `[[channels]]`, for problems.
    pub(crate) index: usize,
    /// The channel id.
    pub(crate) id: String,
    /// The plugin id.
    pub(crate) plugin: String,
    /// Settings.
    pub(crate) ctx: ChannelContext,
    /// Secrets.
    pub(crate) secrets: Secrets,
    /// For shared endpoints.
    pub(crate) route_key: Option<String>,
}

/// `[workers]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct WorkersConfig {
    /// How long a routing worker holds its claimed jobs before another may take them.
    pub(crate) routing_lease_secs: u64,
    /// How long a sender holds a claimed send; a send still in flight after it (the worker
    /// died) is recorded as `unknown`. Keep it above the transport timeout.
    pub(crate) send_lease_secs: u64,
    /// How many sends run at once (the per-channel and per-recipient limits hold across them).
    pub(crate) senders: u32,
    /// Event webhooks: the delays between attempts, seconds (attempts = length + 1).
    pub(crate) event_retry_secs: Vec<u64>,
    /// Event webhooks: the request timeout, seconds.
    pub(crate) event_timeout_secs: u64,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            routing_lease_secs: 30,
            send_lease_secs: 60,
            senders: 4,
            event_retry_secs: crate::gateway::events::DEFAULT_RETRY_SECS.to_vec(),
            event_timeout_secs: 15,
        }
    }
}

/// `[store]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreConfig {
    /// `sqlite://PATH` or `postgres://USER@HOST/DB` (libpq parameters, e.g.
    /// `?sslmode=verify-full`, `&options[search_path]=SCHEMA`); default
    /// `sqlite://{data_dir}/switchboard.db`.
    #[serde(default)]
    pub(crate) url: Option<String>,
    /// SQLite commit durability: `full` (default) or `normal`.
    #[serde(default)]
    pub(crate) synchronous: Synchronous,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Limits {
    /// The largest webhook body accepted (413 above).
    pub(crate) max_body_bytes: usize,
    /// How long a client may take to send a whole request (408 after).
    pub(crate) request_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout_secs: 15,
        }
    }
}

/// `[[channels]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelConfig {
    /// The channel id: `/webhooks/{id}` and the routing account id.
    pub(crate) id: String,
    /// A built-in connector id (`twilio`, `meta-whatsapp`, `meta-messenger`) or a
    /// `[[plugins]]` id.
    pub(crate) connector: String,
    /// Non-secret settings for the connector.
    #[serde(default)]
    pub(crate) settings: serde_json::Map<String, serde_json::Value>,
    /// Secrets by name: `env:NAME` or `file:PATH`.
    #[serde(default)]
    pub(crate) secrets: BTreeMap<String, SecretRef>,
    /// For shared endpoints (`/webhooks/{connector id}`): the key the connector's `route()`
    /// returns for this channel (e.g. a Meta phone number id).
    #[serde(default)]
    pub(crate) route_key: Option<String>,
}

/// `[[api_tokens]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiToken {
    /// A name for logs.
    pub(crate) name: String,
    /// `agent` or `admin`.
    pub(crate) role: String,
    /// With `role = "agent"`: the routing agent id this token acts as (required).
    #[serde(default)]
    pub(crate) agent: Option<String>,
    /// The token: `env:NAME` or `file:PATH`.
    pub(crate) token: SecretRef,
}

/// What an API token may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ApiRole {
    /// Acts only as this routing agent.
    Agent(String),
    /// Everything, for any agent.
    Admin,
}

/// A checked API token. `Debug` never shows the token (it is a [`switchboard_core::Secret`]).
#[derive(Clone, Debug)]
pub(crate) struct ResolvedToken {
    /// The name, for logs.
    pub(crate) name: String,
    /// The role.
    pub(crate) role: ApiRole,
    /// The bearer token.
    pub(crate) token: switchboard_core::Secret,
}

/// `[transport]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransportConfig {
    /// Hosts allowed besides the connectors' own (`host` or `*.suffix`).
    #[serde(default)]
    pub(crate) allow_hosts: Vec<String>,
    /// Tests only: any host, plain HTTP and loopback addresses.
    #[serde(default)]
    pub(crate) dangerous_allow_loopback_for_tests: bool,
}

/// One configuration problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The field path (`channels[1].connector`).
    pub(crate) field: String,
    /// What is wrong.
    pub(crate) reason: String,
}

/// Every configuration problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problems(pub(crate) Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {}: {}", p.field, p.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A channel ready to serve.
pub(crate) struct Channel {
    pub(crate) id: String,
    pub(crate) connector_id: String,
    pub(crate) connector: Arc<dyn Connector>,
    pub(crate) ctx: ChannelContext,
    pub(crate) secrets: Secrets,
    pub(crate) route_key: Option<String>,
    /// For a channel on a plugin: the same connector as `connector`, which resolves the
    /// plugin's current version at each call ([`Channel::current`]).
    pub(crate) plugin: Option<Arc<crate::gateway::plugins::PluginConnector>>,
}

impl Channel {
    /// The connector for one request or send, taken once and used throughout it: a plugin
    /// channel's current version (so a reload in between neither mixes two versions in one
    /// request nor stops the one in flight), or the built-in connector. An unloaded plugin
    /// gives `connector`, whose every call then fails naming the plugin.
    pub(crate) fn current(&self) -> Arc<dyn Connector> {
        match self.plugin.as_ref().and_then(|p| p.current()) {
            Some(version) => version,
            None => self.connector.clone(),
        }
    }
}

/// The problems `webhook_auth` and `outbound_auth` find in a channel's settings, by field
/// (`at` makes a field path from a name).
pub(crate) fn settings_problems(
    connector: &dyn Connector,
    ctx: &ChannelContext,
    at: &dyn Fn(&str) -> String,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let checks = [
        connector.webhook_auth(ctx).err(),
        connector.outbound_auth(ctx).err(),
    ];
    for e in checks.into_iter().flatten() {
        let (field, reason) = match e {
            ConnectorError::Config { field, reason } => (at(&format!("settings.{field}")), reason),
            other => (at("settings"), other.to_string()),
        };
        problems.push(Problem { field, reason });
    }
    problems
}

/// The checked configuration.
pub(crate) struct Resolved {
    pub(crate) listen: SocketAddr,
    pub(crate) public_base_url: String,
    pub(crate) store_url: String,
    pub(crate) synchronous: Synchronous,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) limits: Limits,
    pub(crate) channels: HashMap<String, Arc<Channel>>,
    pub(crate) routing: RoutingConfig,
    /// The API's bearer tokens.
    pub(crate) api_tokens: Vec<ResolvedToken>,
    pub(crate) transport: TransportConfig,
    pub(crate) workers: WorkersConfig,
    /// The plugins directory, watching and grants.
    pub(crate) plugins: PluginsSettings,
    /// Channels on plugins, built once the plugins are loaded.
    pub(crate) plugin_channels: Vec<PluginChannel>,
    /// Integration event webhooks.
    pub(crate) events: crate::gateway::events::EventRouter,
}

impl Config {
    /// Parses a TOML file.
    pub(crate) fn load(path: &Path) -> Result<Self, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                field: path.display().to_string(),
                reason: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(&text)
    }

    /// Parses TOML text.
    pub(crate) fn parse(text: &str) -> Result<Self, Problems> {
        toml::from_str(text).map_err(|e| {
            Problems(vec![Problem {
                field: "(file)".to_owned(),
                reason: e.to_string().trim_end().to_owned(),
            }])
        })
    }

    /// Checks everything and builds the channels; every problem is reported, by field.
    pub(crate) fn resolve(self) -> Result<Resolved, Problems> {
        let mut problems = Vec::new();
        let mut push = |field: String, reason: String| problems.push(Problem { field, reason });

        let listen_text = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                push(
                    "listen".into(),
                    format!("`{listen_text}` is not an address `ip:port`"),
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };
        let public_base_url = self
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"));
        if let Err(e) = switchboard_core::webhook_auth::rebase_url("/", &public_base_url) {
            push("public_base_url".into(), e.to_string());
        }
        let data_dir = self.data_dir.clone();
        let store_url = match (&self.store.url, &data_dir) {
            (Some(url), _) => url.clone(),
            (None, Some(dir)) => format!("sqlite://{}", dir.join("switchboard.db").display()),
            (None, None) => {
                push("store.url".into(), "give `store.url` or `data_dir`".into());
                String::new()
            }
        };
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !store_url.is_empty() && !known.iter().any(|scheme| store_url.starts_with(scheme)) {
            push(
                "store.url".into(),
                "expected `sqlite://PATH` or `postgres://USER@HOST/DATABASE`".into(),
            );
        }
        if self.limits.max_body_bytes == 0 {
            push("limits.max_body_bytes".into(), "must be at least 1".into());
        }
        if self.limits.request_timeout_secs == 0 {
            push(
                "limits.request_timeout_secs".into(),
                "must be at least 1".into(),
            );
        }

        let plugins = self.resolve_plugins(data_dir.as_deref(), &mut push);
        let plugin_ids: std::collections::BTreeSet<&str> =
            plugins.grants.keys().map(String::as_str).collect();
        let mut plugin_channels = Vec::new();
        let mut channels = HashMap::new();
        let mut seen = HashSet::new();
        for (i, ch) in self.channels.iter().enumerate() {
            let at = |field: &str| format!("channels[{i}].{field}");
            if ch.id.is_empty()
                || !ch
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                push(
                    at("id"),
                    "must be non-empty letters, digits, `-`, `_` or `.`".into(),
                );
            } else if !seen.insert(ch.id.clone()) {
                push(at("id"), format!("duplicate channel id `{}`", ch.id));
            }
            let builtin = switchboard_providers::builtin(&ch.connector);
            let is_plugin = builtin.is_none() && plugin_ids.contains(ch.connector.as_str());
            if builtin.is_none() && !is_plugin {
                let known: Vec<_> = switchboard_providers::builtin_ids().collect();
                let plugins: Vec<&str> = plugin_ids.iter().copied().collect();
                push(
                    at("connector"),
                    format!(
                        "unknown connector `{}`; built in: {}; plugins (`[[plugins]]` ids): {}",
                        ch.connector,
                        known.join(", "),
                        if plugins.is_empty() {
                            "none".to_owned()
                        } else {
                            plugins.join(", ")
                        }
                    ),
                );
                continue;
            }
            let ctx = ChannelContext {
                channel_id: ch.id.clone(),
                settings: ch.settings.clone(),
            };
            let mut secrets = Secrets::default();
            for (name, reference) in &ch.secrets {
                match reference.resolve(name) {
                    Ok(secret) => {
                        secrets.insert(SecretName::new(name.clone()), secret);
                    }
                    Err(e) => push(at(&format!("secrets.{name}")), e.to_string()),
                }
            }
            let Some(connector) = builtin else {
                // Checked against the plugin once it is loaded.
                plugin_channels.push(PluginChannel {
                    index: i,
                    id: ch.id.clone(),
                    plugin: ch.connector.clone(),
                    ctx,
                    secrets,
                    route_key: ch.route_key.clone(),
                });
                continue;
            };
            for p in settings_problems(connector.as_ref(), &ctx, &at) {
                push(p.field, p.reason);
            }
            channels.insert(
                ch.id.clone(),
                Arc::new(Channel {
                    id: ch.id.clone(),
                    connector_id: ch.connector.clone(),
                    connector,
                    ctx,
                    secrets,
                    route_key: ch.route_key.clone(),
                    plugin: None,
                }),
            );
        }

        if let Err(errors) = self.routing.validate() {
            for e in errors.0 {
                push(format!("routing.{}", e.path), e.reason);
            }
        }
        for (i, account) in self.routing.accounts.iter().enumerate() {
            if !seen.contains(&account.id) {
                push(
                    format!("routing.accounts[{i}].id"),
                    format!("no channel `{}` is configured", account.id),
                );
            }
        }

        let mut api_tokens = Vec::new();
        for (i, token) in self.api_tokens.iter().enumerate() {
            let role = match (token.role.as_str(), &token.agent) {
                ("admin", None) => Some(ApiRole::Admin),
                ("admin", Some(_)) => {
                    push(
                        format!("api_tokens[{i}].agent"),
                        "an admin token acts for any agent: remove `agent`".into(),
                    );
                    None
                }
                ("agent", Some(agent)) => {
                    if !self.routing.agents.iter().any(|a| &a.id == agent) {
                        push(
                            format!("api_tokens[{i}].agent"),
                            format!("no routing agent `{agent}` is configured"),
                        );
                    }
                    Some(ApiRole::Agent(agent.clone()))
                }
                ("agent", None) => {
                    push(
                        format!("api_tokens[{i}].agent"),
                        "an agent token needs the agent id it acts as".into(),
                    );
                    None
                }
                _ => {
                    push(
                        format!("api_tokens[{i}].role"),
                        "must be `agent` or `admin`".into(),
                    );
                    None
                }
            };
            match token.token.resolve("token") {
                Ok(secret) if secret.expose().len() < 16 => push(
                    format!("api_tokens[{i}].token"),
                    "too short: use at least 16 characters (e.g. `openssl rand -hex 32`)".into(),
                ),
                Ok(secret) => {
                    if api_tokens
                        .iter()
                        .any(|t: &ResolvedToken| t.token.expose() == secret.expose())
                    {
                        push(
                            format!("api_tokens[{i}].token"),
                            "the same token is configured twice".into(),
                        );
                    }
                    if let Some(role) = role {
                        api_tokens.push(ResolvedToken {
                            name: token.name.clone(),
                            role,
                            token: secret,
                        });
                    }
                }
                Err(e) => push(format!("api_tokens[{i}].token"), e.to_string()),
            }
        }
        for (i, host) in self.transport.allow_hosts.iter().enumerate() {
            if let Err(e) = switchboard_transport::HostPattern::parse(host) {
                push(format!("transport.allow_hosts[{i}]"), e.to_string());
            }
        }

        if self.workers.routing_lease_secs == 0 {
            push(
                "workers.routing_lease_secs".into(),
                "must be at least 1".into(),
            );
        }
        if self.workers.send_lease_secs == 0 {
            push(
                "workers.send_lease_secs".into(),
                "must be at least 1".into(),
            );
        }
        if self.workers.senders == 0 {
            push("workers.senders".into(), "must be at least 1".into());
        }
        if self.workers.event_timeout_secs == 0 {
            push(
                "workers.event_timeout_secs".into(),
                "must be at least 1".into(),
            );
        }
        let events = crate::gateway::events::EventRouter::new(crate::gateway::events::resolve(
            &self.event_subscriptions,
            &mut push,
        ));
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        Ok(Resolved {
            listen,
            public_base_url,
            store_url,
            synchronous: self.store.synchronous,
            data_dir,
            limits: self.limits,
            channels,
            routing: self.routing,
            api_tokens,
            transport: self.transport,
            workers: self.workers,
            plugins,
            plugin_channels,
            events,
        })
    }

    /// `plugins_dir`, `plugins_watch_secs` and `[[plugins]]`.
    fn resolve_plugins(
        &self,
        data_dir: Option<&Path>,
        push: &mut impl FnMut(String, String),
    ) -> PluginsSettings {
        let dir = self
            .plugins_dir
            .clone()
            .or_else(|| data_dir.map(|d| d.join("plugins")));
        let watch = match self
            .plugins_watch_secs
            .unwrap_or(DEFAULT_PLUGINS_WATCH_SECS)
        {
            0 => None,
            secs => Some(std::time::Duration::from_secs(secs)),
        };
        let mut grants = BTreeMap::new();
        for (i, plugin) in self.plugins.iter().enumerate() {
            let at = |field: &str| format!("plugins[{i}].{field}");
            if plugin.id.is_empty() {
                push(at("id"), "must not be empty".into());
                continue;
            }
            if switchboard_providers::builtin(&plugin.id).is_some() {
                push(
                    at("id"),
                    format!(
                        "`{}` is a built-in connector; a channel naming it gets the built-in",
                        plugin.id
                    ),
                );
            }
            if grants
                .insert(plugin.id.clone(), plugin.grant.clone())
                .is_some()
            {
                push(at("id"), format!("duplicate plugin id `{}`", plugin.id));
            }
            for (j, host) in plugin.grant.egress_hosts.iter().enumerate() {
                if let Err(e) = switchboard_transport::HostPattern::parse(host) {
                    push(at(&format!("grant.egress_hosts[{j}]")), e.to_string());
                }
            }
        }
        if dir.is_none() && !grants.is_empty() {
            push(
                "plugins_dir".into(),
                "give `plugins_dir` or `data_dir` to use `[[plugins]]`".into(),
            );
        }
        PluginsSettings { dir, watch, grants }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed_by_field_without_secret_values() {
        let text = r#"
            listen = "nowhere"
            public_base_url = "ftp://x"
            [store]
            url = "mysql://db"
            [[channels]]
            id = "tw"
            connector = "twilio"
            secrets = { auth_token = "env:SWITCHBOARD_TEST_SURELY_UNSET" }
            [[channels]]
            id = "tw"
            connector = "nope"
            [[api_tokens]]
            name = "ops"
            role = "root"
            token = "value:hunter2"
            [routing.defaults]
            concurrency = 0
        "#;
        let problems = Config::parse(text).unwrap().resolve().err().unwrap();
        let fields: Vec<&str> = problems.0.iter().map(|p| p.field.as_str()).collect();
        for expected in [
            "listen",
            "public_base_url",
            "store.url",
            "channels[0].secrets.auth_token",
            "channels[1].id",
            "channels[1].connector",
            "api_tokens[0].role",
            "routing.defaults.concurrency",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing in {fields:?}"
            );
        }
        assert!(
            fields
                .iter()
                .any(|f| f.starts_with("channels[0].settings."))
        );
        assert!(!problems.to_string().contains("hunter2"));
    }

    #[test]
    fn api_tokens_are_bound_to_a_configured_agent_or_admin() {
        let text = r#"
            data_dir = "/tmp/x"
            [[api_tokens]]
            name = "no agent"
            role = "agent"
            token = "value:sbt_0123456789abcdef0"
            [[api_tokens]]
            name = "ghost"
            role = "agent"
            agent = "ghost"
            token = "value:sbt_0123456789abcdef1"
            [[api_tokens]]
            name = "admin with agent"
            role = "admin"
            agent = "anna"
            token = "value:sbt_0123456789abcdef2"
            [[api_tokens]]
            name = "short"
            role = "admin"
            token = "value:pw"
            [[api_tokens]]
            name = "twice"
            role = "admin"
            token = "value:sbt_0123456789abcdef1"
            [[routing.agents]]
            id = "anna"
        "#;
        let problems = Config::parse(text).unwrap().resolve().err().unwrap();
        let fields: Vec<&str> = problems.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "api_tokens[0].agent",
                "api_tokens[1].agent",
                "api_tokens[2].agent",
                "api_tokens[3].token",
                "api_tokens[4].token",
            ]
        );
        assert!(!problems.to_string().contains("sbt_0123"), "{problems}");

        let good = r#"
            data_dir = "/tmp/x"
            [[api_tokens]]
            name = "anna's desktop"
            role = "agent"
            agent = "anna"
            token = "value:sbt_0123456789abcdef0"
            [[api_tokens]]
            name = "crm"
            role = "admin"
            token = "value:sbt_0123456789abcdef1"
            [[routing.agents]]
            id = "anna"
        "#;
        let resolved = Config::parse(good).unwrap().resolve().unwrap();
        let roles: Vec<&ApiRole> = resolved.api_tokens.iter().map(|t| &t.role).collect();
        assert_eq!(roles, [&ApiRole::Agent("anna".into()), &ApiRole::Admin]);
        let debug = format!("{:?}", resolved.api_tokens);
        assert!(!debug.contains("sbt_0123"), "{debug}");
    }

    #[test]
    fn plugins_are_granted_per_id_and_channels_may_name_them() {
        let text = r#"
            data_dir = "/tmp/x"
            [[plugins]]
            id = "vonage-messages"
            grant = { egress_hosts = ["api.nexmo.com"], secrets = ["signature_secret"] }
            [[plugins]]
            id = "vonage-messages"
            [[plugins]]
            id = "twilio"
            [[plugins]]
            id = "bad-host"
            grant = { egress_hosts = ["https://x/"] }
            [[plugins]]
            id = "typo"
            grant = { egress = ["x"] }
            [[channels]]
            id = "v"
            connector = "vonage-messages"
            [[channels]]
            id = "w"
            connector = "not-configured"
        "#;
        let err = Config::parse(text).unwrap_err();
        assert!(err.to_string().contains("egress"), "{err}");
        let text = text.replace("grant = { egress = [\"x\"] }", "");
        let problems = Config::parse(&text).unwrap().resolve().err().unwrap();
        let fields: Vec<&str> = problems.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "plugins[1].id",
                "plugins[2].id",
                "plugins[3].grant.egress_hosts[0]",
                "channels[1].connector",
            ],
            "{problems}"
        );
        assert!(
            problems.0[3].reason.contains("vonage-messages"),
            "{problems}"
        );

        let good = r#"
            data_dir = "/tmp/x"
            plugins_watch_secs = 0
            [[plugins]]
            id = "vonage-messages"
            grant = { egress_hosts = ["api.nexmo.com"], secrets = ["signature_secret"] }
            [[channels]]
            id = "v"
            connector = "vonage-messages"
            settings = { api_key = "k" }
            secrets = { signature_secret = "value:s3cret" }
        "#;
        let resolved = Config::parse(good).unwrap().resolve().unwrap();
        assert!(
            resolved.channels.is_empty(),
            "built once the plugin is loaded"
        );
        assert_eq!(resolved.plugin_channels.len(), 1);
        assert_eq!(resolved.plugin_channels[0].plugin, "vonage-messages");
        assert_eq!(resolved.plugins.dir, Some(PathBuf::from("/tmp/x/plugins")));
        assert_eq!(resolved.plugins.watch, None);
        assert_eq!(
            resolved.plugins.grants["vonage-messages"].egress_hosts,
            ["api.nexmo.com"]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::parse("lisen = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn the_empty_config_resolves_with_a_data_dir() {
        let config = Config {
            data_dir: Some(PathBuf::from("/tmp/x")),
            ..Config::default()
        };
        let resolved = config.resolve().unwrap();
        assert!(resolved.listen.ip().is_loopback());
        assert_eq!(resolved.store_url, "sqlite:///tmp/x/switchboard.db");
        assert_eq!(resolved.public_base_url, "http://127.0.0.1:8080");
    }
}
