//! Plugins in the running gateway: the plugins directory (one subdirectory per plugin, holding
//! its `plugin.toml` and the component it names, as `switchboard plugin build --out` writes
//! them), loaded at start and polled for changes; the operations of the admin API (load,
//! reload, roll back, unload, list); and [`PluginConnector`], the connector of a channel on a
//! plugin, which resolves the plugin's current version through the registry at each call.
//!
//! Guarantees: a load compiles and smoke-checks the new version off the request path and then
//! swaps it in atomically ([`PluginRegistry`]); a webhook or send takes one version for its
//! whole duration ([`crate::config::Channel::current`]), so a reload neither drops nor mixes
//! one in flight; the replaced version is kept for rollback. A refused load changes nothing.
//!
//! Watching polls (every `plugins_watch_secs`, default 2 s): each plugin directory's manifest
//! bytes and its component's size and modification time. Polling needs no dependency and no
//! platform notification API, works on network and container filesystems, and a 2 s delay is
//! nothing next to a deployment; a change is loaded only when the manifest differs from the
//! loaded version's (the component's SHA-256 is in the manifest and checked at load), so a
//! `touch` reloads nothing and keeps the rollback target.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{
    ChannelContext, ChannelKey, Connector, ConnectorError, ConnectorInfo, ErrorClass, HttpRequest,
    HttpResponse, MediaSource, MediaStep, OutboundMessage, ProviderError, SecretName, SecretStore,
    Secrets, SendReceipt, WebhookOutcome, WebhookRequest,
};
use switchboard_plugin_host::manifest::MANIFEST_FILE;
use switchboard_plugin_host::{
    Capabilities, HostConfig, LoadError, Manifest, PluginHost, PluginRegistry, Services,
    WasmConnector,
};

use crate::config::{
    Channel, PluginChannel, PluginsSettings, Problem, Problems, settings_problems,
};

/// What a plugin operation failed on; the API maps it to a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpErrorKind {
    /// No such plugin (or path).
    NotFound,
    /// The request cannot be served as given (a path outside the plugins directory, …).
    Invalid,
    /// The plugin was refused (manifest, hash, world, imports, smoke check).
    Refused,
    /// Refused because of the current state, with the API's error code (`in_use`,
    /// `no_previous`, `conflict`).
    Conflict(&'static str),
}

/// Why a plugin operation failed. The message names the plugin or path and the reason.
#[derive(Clone, Debug)]
pub(crate) struct OpError {
    /// The kind.
    pub(crate) kind: OpErrorKind,
    /// The plugin id, when known.
    pub(crate) id: Option<String>,
    /// What went wrong.
    pub(crate) message: String,
}

impl OpError {
    fn new(kind: OpErrorKind, id: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

/// What a load did.
#[derive(Clone, Debug)]
pub(crate) enum Loaded {
    /// A new version is current (the one it replaced, if any, is the rollback target).
    Swapped(Arc<WasmConnector>),
    /// The directory holds the version already current: nothing changed.
    Unchanged(Arc<WasmConnector>),
}

impl Loaded {
    /// The current version.
    pub(crate) fn connector(&self) -> &Arc<WasmConnector> {
        match self {
            Self::Swapped(c) | Self::Unchanged(c) => c,
        }
    }
}

/// What identifies a plugin directory's contents between two polls.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint {
    manifest: Option<Vec<u8>>,
    component: Option<(u64, Option<SystemTime>)>,
}

fn fingerprint(dir: &Path) -> Fingerprint {
    let manifest = std::fs::read(dir.join(MANIFEST_FILE)).ok();
    let component = manifest
        .as_deref()
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| Manifest::parse(text).ok())
        .and_then(|m| std::fs::metadata(dir.join(m.component)).ok())
        .map(|meta| (meta.len(), meta.modified().ok()));
    Fingerprint {
        manifest,
        component,
    }
}

#[derive(Default)]
struct State {
    /// Each plugin directory's contents when last looked at (by a load or the watcher).
    seen: HashMap<PathBuf, Fingerprint>,
    /// The directory each plugin id was last loaded from.
    sources: HashMap<String, PathBuf>,
    /// Directories whose last load was refused, with the plugin id (when the manifest named
    /// one) and the reason.
    refused: BTreeMap<PathBuf, (Option<String>, String)>,
}

/// The gateway's plugins: the directory, the grants, the registry and its operations.
pub(crate) struct Plugins {
    dir: PathBuf,
    grants: BTreeMap<String, Capabilities>,
    /// Plugin id → the channels on it.
    users: BTreeMap<String, Vec<String>>,
    /// What a plugin's `hmac` import signs with: the calling channel's secrets (the plugin
    /// names a secret; declared ∧ granted is checked by the host; the value never enters wasm).
    services: Services,
    host: OnceLock<Result<PluginHost, String>>,
    registry: Arc<PluginRegistry>,
    /// Held for a whole operation: one load, rollback or unload at a time (the watcher and
    /// the API take turns).
    ops: Mutex<()>,
    /// The bookkeeping, held briefly (listing does not wait for a compile).
    state: Mutex<State>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("dir", &self.dir)
            .field("registry", &self.registry)
            .finish()
    }
}

impl Plugins {
    /// The plugins of `dir` (created if missing; not loaded yet), with `grants`, serving
    /// `channels`.
    pub(crate) fn new(
        dir: &Path,
        grants: BTreeMap<String, Capabilities>,
        channels: &[PluginChannel],
    ) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("creating the plugins directory {}: {e}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("plugins directory {}: {e}", dir.display()))?;
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut secrets: BTreeMap<String, Secrets> = BTreeMap::new();
        for ch in channels {
            users
                .entry(ch.plugin.clone())
                .or_default()
                .push(ch.id.clone());
            secrets.insert(ch.id.clone(), ch.secrets.clone());
        }
        let services = Services {
            secrets: Some(Arc::new(move |channel_id: &str, name: &SecretName| {
                secrets.get(channel_id)?.secret(name).cloned()
            })),
            // No HTTP client for plugins in the gateway yet: a granted `http` answers
            // "unavailable" (see docs/gateway.md).
            http: None,
        };
        Ok(Self {
            dir,
            grants,
            users,
            services,
            host: OnceLock::new(),
            registry: Arc::new(PluginRegistry::new()),
            ops: Mutex::new(()),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn op(&self) -> MutexGuard<'_, ()> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The wasmtime host, made on the first load (a gateway without plugins runs no engine).
    fn host(&self) -> Result<&PluginHost, OpError> {
        self.host
            .get_or_init(|| PluginHost::new(HostConfig::default()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| OpError::new(OpErrorKind::Refused, None, format!("plugin host: {e}")))
    }

    /// The plugin subdirectories of the plugins directory (those with a `plugin.toml`),
    /// sorted.
    fn plugin_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join(MANIFEST_FILE).is_file())
            .collect();
        dirs.sort();
        dirs
    }

    /// Loads every plugin of the directory; refusals are logged and remembered.
    pub(crate) fn load_all(&self) {
        for dir in self.plugin_dirs() {
            match self.load_dir(&dir, None) {
                Ok(loaded) => {
                    let c = loaded.connector();
                    tracing::info!(
                        plugin = %c.manifest().id,
                        version = %c.manifest().version,
                        sha256 = %c.manifest().sha256,
                        "plugin loaded"
                    );
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), reason = %e, "plugin refused")
                }
            }
        }
    }

    /// One poll of the directory: loads what changed since it was last looked at (a refusal
    /// is logged once per change). A directory that disappeared unloads nothing.
    pub(crate) fn poll(&self) {
        for dir in self.plugin_dirs() {
            let now = fingerprint(&dir);
            if self.lock().seen.get(&dir) == Some(&now) {
                continue;
            }
            match self.load_dir(&dir, None) {
                Ok(Loaded::Swapped(c)) => tracing::info!(
                    plugin = %c.manifest().id,
                    version = %c.manifest().version,
                    sha256 = %c.manifest().sha256,
                    "plugin changed on disk: reloaded"
                ),
                Ok(Loaded::Unchanged(_)) => {}
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    reason = %e,
                    "plugin changed on disk but refused; the loaded version keeps serving"
                ),
            }
        }
    }

    /// Loads the plugin in `dir` (a directory inside the plugins directory) and makes it
    /// current, unless it is the version already current. With `expect`, the manifest must
    /// name that plugin id.
    fn load_dir(&self, dir: &Path, expect: Option<&str>) -> Result<Loaded, OpError> {
        let _op = self.op();
        let print = fingerprint(dir);
        self.lock().seen.insert(dir.to_owned(), print);
        let result = self.load_now(dir, expect);
        let mut state = self.lock();
        match &result {
            Ok(loaded) => {
                state.refused.remove(dir);
                state
                    .sources
                    .insert(loaded.connector().manifest().id.clone(), dir.to_owned());
            }
            Err(e) => {
                state
                    .refused
                    .insert(dir.to_owned(), (e.id.clone(), e.message.clone()));
            }
        }
        result
    }

    fn load_now(&self, dir: &Path, expect: Option<&str>) -> Result<Loaded, OpError> {
        let refused = |id: Option<&str>, e: &dyn std::fmt::Display| {
            OpError::new(OpErrorKind::Refused, id, e.to_string())
        };
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = Manifest::read(dir).map_err(|reason| {
            refused(
                None,
                &format!("manifest {}: {reason}", manifest_path.display()),
            )
        })?;
        let id = manifest.id.clone();
        if let Some(expected) = expect
            && expected != id
        {
            return Err(OpError::new(
                OpErrorKind::Conflict("conflict"),
                Some(expected),
                format!(
                    "{} now holds plugin `{id}`, not `{expected}`",
                    manifest_path.display()
                ),
            ));
        }
        let file = dir.join(&manifest.component);
        let bytes = std::fs::read(&file)
            .map_err(|e| refused(Some(&id), &format!("{}: {e}", file.display())))?;
        // The same manifest and a component that matches it: the version already current.
        // (A component that no longer matches is refused below, and the current one stays.)
        if let Some(current) = self.registry.get(&id)
            && current.manifest() == &manifest
            && hex::encode(Sha256::digest(&bytes)).eq_ignore_ascii_case(&manifest.sha256)
        {
            return Ok(Loaded::Unchanged(current));
        }
        let grants = self.grants.get(&id).cloned().unwrap_or_default();
        if !self.grants.contains_key(&id) {
            tracing::warn!(
                plugin = %id,
                "no [[plugins]] entry for this plugin: loaded with no capabilities granted"
            );
        }
        let connector = self
            .host()?
            .load(manifest, &file, &bytes, &grants)
            .map_err(|e: LoadError| refused(Some(&id), &e))?
            .with_services(self.services.clone());
        Ok(Loaded::Swapped(self.registry.insert(connector)))
    }

    /// `POST /plugins/load`: loads the plugin at `path`, relative to the plugins directory: a
    /// plugin directory, or the component inside one. Nothing outside the plugins directory.
    pub(crate) fn load_path(&self, path: &str) -> Result<Loaded, OpError> {
        let dir = self.plugin_dir_for(path)?;
        self.load_dir(&dir, None)
    }

    fn plugin_dir_for(&self, path: &str) -> Result<PathBuf, OpError> {
        let invalid = |m: String| OpError::new(OpErrorKind::Invalid, None, m);
        let rel = Path::new(path);
        if path.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(invalid(format!(
                "`{path}`: give a path relative to the plugins directory, without `..`"
            )));
        }
        let joined = self.dir.join(rel);
        let resolved = joined.canonicalize().map_err(|e| {
            OpError::new(
                OpErrorKind::NotFound,
                None,
                format!("`{path}` in the plugins directory: {e}"),
            )
        })?;
        // A symbolic link may not lead out either.
        if !resolved.starts_with(&self.dir) {
            return Err(invalid(format!(
                "`{path}` is outside the plugins directory"
            )));
        }
        if resolved.is_dir() {
            return Ok(joined);
        }
        let file_name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Some(parent) = joined.parent().filter(|p| *p != self.dir) else {
            return Err(invalid(format!(
                "`{path}`: a plugin is a directory inside the plugins directory (its plugin.toml \
                 and component)"
            )));
        };
        match Manifest::read(parent) {
            Ok(m) if m.component == file_name => Ok(parent.to_owned()),
            Ok(m) => Err(invalid(format!(
                "`{path}`: the plugin.toml beside it names the component `{}`",
                m.component
            ))),
            Err(reason) => Err(OpError::new(OpErrorKind::Refused, None, reason)),
        }
    }

    /// `POST /plugins/{id}/reload`: loads plugin `id` again from the directory it came from.
    pub(crate) fn reload(&self, id: &str) -> Result<Loaded, OpError> {
        let dir = self.lock().sources.get(id).cloned().ok_or_else(|| {
            OpError::new(
                OpErrorKind::NotFound,
                Some(id),
                format!("plugin `{id}` was never loaded"),
            )
        })?;
        self.load_dir(&dir, Some(id))
    }

    /// `POST /plugins/{id}/rollback`: the previous version becomes current again.
    pub(crate) fn rollback(&self, id: &str) -> Result<Arc<WasmConnector>, OpError> {
        let _op = self.op();
        self.registry.rollback(id).map_err(|e| match e {
            LoadError::NoPrevious(_) => OpError::new(
                OpErrorKind::Conflict("no_previous"),
                Some(id),
                e.to_string(),
            ),
            other => OpError::new(OpErrorKind::NotFound, Some(id), other.to_string()),
        })
    }

    /// `POST /plugins/{id}/unload`: refused while a channel uses the plugin, unless `force`
    /// (then those channels fail until it is loaded again).
    pub(crate) fn unload(&self, id: &str, force: bool) -> Result<(), OpError> {
        let _op = self.op();
        if self.registry.get(id).is_none() {
            return Err(OpError::new(
                OpErrorKind::NotFound,
                Some(id),
                format!("plugin `{id}` is not loaded"),
            ));
        }
        let users = self.channels_of(id);
        if !users.is_empty() && !force {
            return Err(OpError::new(
                OpErrorKind::Conflict("in_use"),
                Some(id),
                format!(
                    "plugin `{id}` is used by channel(s) {}; unload with `?force=true` to stop them",
                    users.join(", ")
                ),
            ));
        }
        self.registry
            .unload(id)
            .map_err(|e| OpError::new(OpErrorKind::NotFound, Some(id), e.to_string()))?;
        if !users.is_empty() {
            tracing::warn!(plugin = %id, channels = %users.join(", "), "plugin unloaded by force: its channels fail until it is loaded again");
        }
        Ok(())
    }

    /// The channels configured on plugin `id`.
    pub(crate) fn channels_of(&self, id: &str) -> Vec<String> {
        self.users.get(id).cloned().unwrap_or_default()
    }

    /// The current version of every loaded plugin, by id.
    pub(crate) fn loaded(&self) -> Vec<Arc<WasmConnector>> {
        self.registry
            .loaded()
            .into_iter()
            .filter_map(|(id, _, _)| self.registry.get(&id))
            .collect()
    }

    /// One plugin as the API shows it.
    pub(crate) fn describe(&self, connector: &WasmConnector) -> Value {
        let manifest = connector.manifest();
        let health = connector.health();
        let previous = self
            .registry
            .loaded()
            .into_iter()
            .find(|(id, _, _)| id == &manifest.id)
            .and_then(|(_, _, previous)| previous);
        let source = self
            .lock()
            .sources
            .get(&manifest.id)
            .map(|dir| self.relative(dir));
        json!({
            "id": manifest.id,
            "version": manifest.version,
            "sha256": manifest.sha256,
            "world": manifest.world,
            "webhook_auth": manifest.webhook_auth,
            "source": source,
            "declared": manifest.capabilities,
            "granted": connector.granted(),
            "calls": health.calls,
            "traps": health.traps,
            "busy_seconds": health.busy.as_secs_f64(),
            "consecutive_traps": health.consecutive_traps,
            "circuit": if health.circuit_open { "open" } else { "closed" },
            "previous_version": previous,
            "channels": self.channels_of(&manifest.id),
        })
    }

    /// `GET /plugins`: every loaded plugin, and the directories whose last load was refused.
    pub(crate) fn list(&self) -> Value {
        let plugins: Vec<Value> = self.loaded().iter().map(|c| self.describe(c)).collect();
        let refused: Vec<Value> = self
            .lock()
            .refused
            .iter()
            .map(|(dir, (id, reason))| {
                json!({"path": self.relative(dir), "id": id, "reason": reason})
            })
            .collect();
        json!({
            "dir": self.dir.display().to_string(),
            "plugins": plugins,
            "refused": refused,
        })
    }

    fn relative(&self, dir: &Path) -> String {
        dir.strip_prefix(&self.dir)
            .unwrap_or(dir)
            .display()
            .to_string()
    }

    /// Builds the channels on plugins; a channel whose plugin is not loaded is a problem
    /// naming the channel and why the plugin is missing.
    pub(crate) fn channels(
        self: &Arc<Self>,
        pending: &[PluginChannel],
    ) -> Result<PluginChannels, Problems> {
        let mut problems = Vec::new();
        let mut channels = HashMap::new();
        for ch in pending {
            let at = |field: &str| format!("channels[{}].{field}", ch.index);
            let Some(current) = self.registry.get(&ch.plugin) else {
                problems.push(Problem {
                    field: at("connector"),
                    reason: format!(
                        "channel `{}` needs plugin `{}`, which is not loaded: {}",
                        ch.id,
                        ch.plugin,
                        self.why_missing(&ch.plugin)
                    ),
                });
                continue;
            };
            problems.extend(settings_problems(current.as_ref(), &ch.ctx, &at));
            let connector = Arc::new(PluginConnector::new(
                &ch.plugin,
                self.registry.clone(),
                current.info(),
                self.grants
                    .get(&ch.plugin)
                    .map(|g| g.egress_hosts.clone())
                    .unwrap_or_default(),
            ));
            channels.insert(
                ch.id.clone(),
                Arc::new(Channel {
                    id: ch.id.clone(),
                    connector_id: ch.plugin.clone(),
                    connector: connector.clone(),
                    ctx: ch.ctx.clone(),
                    secrets: ch.secrets.clone(),
                    route_key: ch.route_key.clone(),
                    plugin: Some(connector),
                }),
            );
        }
        if problems.is_empty() {
            Ok(channels)
        } else {
            Err(Problems(problems))
        }
    }

    fn why_missing(&self, id: &str) -> String {
        let state = self.lock();
        let reasons: Vec<String> = state
            .refused
            .iter()
            .filter(|(_, (refused_id, _))| refused_id.as_deref().is_none_or(|r| r == id))
            .map(|(dir, (_, reason))| format!("{}: {reason}", self.relative(dir)))
            .collect();
        if reasons.is_empty() {
            format!(
                "no plugin directory in {} holds it (a subdirectory with its plugin.toml and component)",
                self.dir.display()
            )
        } else {
            format!("refused: {}", reasons.join("; "))
        }
    }
}

/// The channels on plugins, by id.
pub(crate) type PluginChannels = HashMap<String, Arc<Channel>>;

/// Loads the plugins directory and builds the channels on plugins: `None` when plugins are
/// off (no directory). A channel whose plugin cannot be loaded stops the start.
pub(crate) fn start(
    settings: &PluginsSettings,
    pending: &[PluginChannel],
) -> Result<(Option<Arc<Plugins>>, PluginChannels), Problems> {
    let Some(dir) = &settings.dir else {
        if let Some(ch) = pending.first() {
            return Err(Problems(vec![Problem {
                field: format!("channels[{}].connector", ch.index),
                reason: "plugins are off: give `plugins_dir` or `data_dir`".into(),
            }]));
        }
        return Ok((None, HashMap::new()));
    };
    let plugins = Plugins::new(dir, settings.grants.clone(), pending).map_err(|reason| {
        Problems(vec![Problem {
            field: "plugins_dir".into(),
            reason,
        }])
    })?;
    let plugins = Arc::new(plugins);
    plugins.load_all();
    let channels = plugins.channels(pending)?;
    Ok((Some(plugins), channels))
}

/// Polls the plugins directory every `every` until the process ends.
pub(crate) fn watch(plugins: Arc<Plugins>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let plugins = plugins.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || plugins.poll()).await {
                tracing::error!(error = %e, "plugins directory poll failed");
            }
        }
    });
}

/// The connector of a channel on a plugin: every call goes to the plugin's current version
/// in the registry (the gateway pins one version per request with
/// [`Channel::current`]; this is the fallback, and what fails, naming the plugin, while the
/// plugin is unloaded).
pub(crate) struct PluginConnector {
    id: String,
    registry: Arc<PluginRegistry>,
    /// The info of the version loaded at start, with the granted egress hosts (what any
    /// version may reach: the transport's allow-list is made from it).
    info: ConnectorInfo,
}

impl std::fmt::Debug for PluginConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginConnector")
            .field("id", &self.id)
            .finish()
    }
}

impl PluginConnector {
    fn new(
        id: &str,
        registry: Arc<PluginRegistry>,
        info: &ConnectorInfo,
        granted_hosts: Vec<String>,
    ) -> Self {
        let mut info = info.clone();
        info.egress_hosts = granted_hosts;
        Self {
            id: id.to_owned(),
            registry,
            info,
        }
    }

    /// The plugin's current version, if it is loaded.
    pub(crate) fn current(&self) -> Option<Arc<dyn Connector>> {
        self.registry.get(&self.id).map(|c| c as Arc<dyn Connector>)
    }

    fn loaded(&self) -> Result<Arc<WasmConnector>, ConnectorError> {
        self.registry.get(&self.id).ok_or_else(|| {
            ConnectorError::config(
                format!("plugin {}", self.id),
                "not loaded (unloaded through the admin API): load it again".to_owned(),
            )
        })
    }
}

impl Connector for PluginConnector {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    fn webhook_auth(&self, ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {
        self.loaded()?.webhook_auth(ctx)
    }

    fn outbound_auth(&self, ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {
        self.loaded()?.outbound_auth(ctx)
    }

    fn route(&self, req: &WebhookRequest) -> Option<ChannelKey> {
        self.registry.get(&self.id)?.route(req)
    }

    fn parse_webhook(
        &self,
        ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {
        self.loaded()?.parse_webhook(ctx, req)
    }

    fn build_send(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError> {
        self.loaded()?.build_send(ctx, msg)
    }

    fn parse_send_response(
        &self,
        ctx: &ChannelContext,
        msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError> {
        // Sent, but nothing can read the answer: never retried (it may have gone out).
        let connector = self
            .loaded()
            .map_err(|e| ProviderError::new(ErrorClass::Permanent, e.to_string()))?;
        connector.parse_send_response(ctx, msg, resp)
    }

    fn media_step(
        &self,
        ctx: &ChannelContext,
        source: &MediaSource,
        previous: Option<&HttpResponse>,
    ) -> Result<MediaStep, ConnectorError> {
        self.loaded()?.media_step(ctx, source, previous)
    }
}
