//! `switchboard plugin new | build | test`: the plugin toolchain, and loading a built plugin
//! for `switchboard replay --plugin`.
//!
//! A built plugin is a directory (by default `<crate>/dist`) holding `plugin.wasm` and
//! `plugin.toml` with the component's SHA-256; every command that takes a built plugin accepts
//! that directory, the `.wasm` file in it, or the plugin crate (then its `dist/`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use switchboard_core::Connector;
use switchboard_plugin_host::build::build_plugin;
use switchboard_plugin_host::manifest::MANIFEST_FILE;
use switchboard_plugin_host::{HostConfig, Manifest, PluginHost, WasmConnector};

/// The `plugin` subcommands.
#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Scaffold a plugin crate: Cargo.toml (cdylib), src/lib.rs (a minimal connector exported
    /// with `export_connector!`), plugin.toml and fixtures/ with a passing case.
    ///
    /// The crate depends on switchboard-core and switchboard-plugin-sdk by path: the
    /// Switchboard checkout given with `--sdk`, or else the one this binary was built from.
    New {
        /// The plugin's name: its crate name and connector id (letters, digits, `-`, `_`).
        name: String,
        /// Where to create the crate; defaults to `./NAME`.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A Switchboard source checkout holding `crates/core` and `crates/plugin-sdk`.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin crate for wasm32-unknown-unknown, make it a component and write
    /// `plugin.wasm` and `plugin.toml` (with the component's SHA-256) into `--out`.
    ///
    /// Uses rustup's wasm32-unknown-unknown target, or Debian's rustc-web route, and says what
    /// to install when neither exists.
    Build {
        /// The plugin crate (with `Cargo.toml` and the `plugin.toml` template).
        dir: PathBuf,
        /// Where to write the built plugin; defaults to `DIR/dist`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// cargo's target directory; defaults to `$CARGO_TARGET_DIR` or `DIR/target`.
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
    /// Load a built plugin in the host and run the conformance kit over its fixtures; exit 1
    /// when any check fails.
    Test {
        /// The built plugin: its directory, its `.wasm` (with `plugin.toml` beside it) or the
        /// plugin crate (then its `dist/`).
        path: PathBuf,
        /// The fixtures directory; defaults to the crate's `fixtures/`.
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
}

/// Runs a `plugin` subcommand.
pub(crate) fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::New { name, dir, sdk } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            new(&name, &dir, sdk.as_deref())?;
            println!("created plugin `{name}` in {}", dir.display());
            println!(
                "next: switchboard plugin build {0} && switchboard plugin test {0}",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Build {
            dir,
            out,
            target_dir,
        } => {
            let out = out.unwrap_or_else(|| dir.join("dist"));
            let target_dir = target_dir
                .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
                .unwrap_or_else(|| dir.join("target"));
            eprintln!(
                "building {} (wasm32-unknown-unknown, release)…",
                dir.display()
            );
            let manifest = build_plugin(&dir, &out, &target_dir)
                .with_context(|| format!("building the plugin in {}", dir.display()))?;
            println!("{}", out.join(&manifest.component).display());
            println!("{}", out.join(MANIFEST_FILE).display());
            eprintln!(
                "built plugin `{}` {} (sha256 {})",
                manifest.id, manifest.version, manifest.sha256
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Test { path, fixtures } => test(&path, fixtures.as_deref()),
    }
}

/// A built plugin found from a path the user gave.
struct Located {
    /// The directory holding `plugin.toml` and the component.
    dir: PathBuf,
    /// The plugin crate, when the built plugin sits in one (`<crate>/dist`).
    crate_dir: Option<PathBuf>,
}

/// Finds the built plugin at `path`: a `.wasm` file with `plugin.toml` beside it (and naming
/// it), a directory with a built `plugin.toml`, or a plugin crate with a built `dist/`.
fn locate(path: &Path) -> anyhow::Result<Located> {
    let is_crate = |dir: &Path| dir.join("Cargo.toml").is_file();
    if path.is_file() {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let manifest = read_manifest(&dir)?;
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if manifest.component != file_name {
            bail!(
                "{} names the component `{}`, not `{file_name}`",
                dir.join(MANIFEST_FILE).display(),
                manifest.component
            );
        }
        let crate_dir = dir.parent().filter(|p| is_crate(p)).map(Path::to_owned);
        return Ok(Located { dir, crate_dir });
    }
    if !path.is_dir() {
        bail!("{}: no such plugin file or directory", path.display());
    }
    if is_crate(path) {
        let dist = path.join("dist");
        if !dist.join(MANIFEST_FILE).is_file() {
            bail!(
                "{} is a plugin crate with no built plugin in dist/: run `switchboard plugin build {}` first",
                path.display(),
                path.display()
            );
        }
        return Ok(Located {
            dir: dist,
            crate_dir: Some(path.to_owned()),
        });
    }
    let crate_dir = path.parent().filter(|p| is_crate(p)).map(Path::to_owned);
    Ok(Located {
        dir: path.to_owned(),
        crate_dir,
    })
}

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    Manifest::read(dir).map_err(|reason| {
        anyhow!(
            "{}: {reason} (is this a built plugin? `switchboard plugin build` writes one)",
            dir.join(MANIFEST_FILE).display()
        )
    })
}

/// Loads the built plugin at `path` (see [`locate`]) in a fresh host, granting everything its
/// manifest declares: the CLI runs the operator's own plugin on recorded traffic.
pub(crate) fn load(path: &Path) -> anyhow::Result<WasmConnector> {
    let located = locate(path)?;
    load_located(&located)
}

fn load_located(located: &Located) -> anyhow::Result<WasmConnector> {
    let manifest = read_manifest(&located.dir)?;
    // Offline tools check behaviour, not speed: a deadline a loaded machine cannot trip by
    // descheduling a thread (the gateway keeps the production default).
    let config = HostConfig {
        default_deadline: std::time::Duration::from_secs(1),
        ..HostConfig::default()
    };
    let host = PluginHost::new(config).context("starting the plugin host")?;
    host.load_dir(&located.dir, &manifest.capabilities)
        .with_context(|| format!("loading the plugin in {}", located.dir.display()))
}

/// `plugin test`: exit 0 when every check passed, 1 otherwise.
fn test(path: &Path, fixtures: Option<&Path>) -> anyhow::Result<ExitCode> {
    let located = locate(path)?;
    let fixtures = match fixtures {
        Some(dir) => dir.to_owned(),
        None => located
            .crate_dir
            .as_ref()
            .map(|c| c.join("fixtures"))
            .filter(|f| f.is_dir())
            .ok_or_else(|| {
                anyhow!(
                    "no fixtures directory found next to {}: pass --fixtures DIR",
                    located.dir.display()
                )
            })?,
    };
    let connector = load_located(&located)?;
    let report = switchboard_conformance::run_fixtures(&connector, &fixtures);
    print!("{report}");
    let info = connector.info();
    if report.passed() {
        println!(
            "plugin `{}` {} passed the conformance kit over {}",
            info.id,
            info.version,
            fixtures.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "plugin `{}` {} FAILED the conformance kit over {}",
            info.id,
            info.version,
            fixtures.display()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// The Switchboard checkout this binary was built from, when it is still there.
fn own_checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("crates/plugin-sdk/Cargo.toml")
        .is_file()
        .then(|| std::fs::canonicalize(&root).ok())
        .flatten()
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !starts_well
        || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        || name.len() > 64
    {
        bail!(
            "`{name}` is not a plugin name: use lowercase letters, digits, `-` and `_`, starting with a letter"
        );
    }
    Ok(())
}

/// `plugin new`: writes the crate; refuses to overwrite a non-empty directory.
fn new(name: &str, dir: &Path, sdk: Option<&Path>) -> anyhow::Result<()> {
    check_name(name)?;
    let sdk = match sdk {
        Some(sdk) => std::fs::canonicalize(sdk)
            .with_context(|| format!("--sdk {}", sdk.display()))?,
        None => own_checkout().ok_or_else(|| {
            anyhow!(
                "the Switchboard checkout this binary was built from is gone: pass --sdk DIR (a checkout holding crates/plugin-sdk)"
            )
        })?,
    };
    if !sdk.join("crates/plugin-sdk/Cargo.toml").is_file()
        || !sdk.join("crates/core/Cargo.toml").is_file()
    {
        bail!(
            "{} is not a Switchboard checkout (no crates/core and crates/plugin-sdk)",
            sdk.display()
        );
    }
    if dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let type_name = type_name(name);
    let files = [
        ("Cargo.toml", cargo_toml(name, &sdk)),
        ("plugin.toml", plugin_toml(name)),
        ("src/lib.rs", lib_rs(name, &type_name)),
        ("fixtures/README.md", FIXTURES_README.to_owned()),
        ("fixtures/send_text.json", fixture_send(name)),
        ("fixtures/send_response_ok.json", fixture_response(name)),
        (".gitignore", "/target\n/dist\nCargo.lock\n".to_owned()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `my-sms` → `MySms`.
fn type_name(name: &str) -> String {
    let mut out: String = name
        .split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    out.push_str("Connector");
    out
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    let core = toml_string(&sdk.join("crates/core").display().to_string());
    let plugin_sdk = toml_string(&sdk.join("crates/plugin-sdk").display().to_string());
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# A plugin is a WebAssembly component: `switchboard plugin build` builds this cdylib for
# wasm32-unknown-unknown and turns it into a component.
crate-type = ["cdylib"]

[dependencies]
# The Switchboard crates, by path to a Switchboard checkout (`switchboard plugin new --sdk DIR`
# chooses which). Keep both at the same checkout.
switchboard-core = {{ path = {core} }}
switchboard-plugin-sdk = {{ path = {plugin_sdk} }}
serde_json = "1"

# Its own workspace, so the crate builds wherever it sits.
[workspace]

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
# Strips symbols; the `component-type` section the component needs is kept.
strip = true
"#
    )
}

fn plugin_toml(name: &str) -> String {
    format!(
        r#"# The manifest template: `switchboard plugin build` adds `component` and `sha256`.
id = "{name}"
version = "0.1.0"
world = "{world}"
# Must match what `webhook_auth` in src/lib.rs returns (the `scheme` tag).
webhook_auth = "hmac_sha256_header"

[capabilities]
# Where the plugin's requests may go, and the secret names its auth schemes refer to. The
# operator grants a subset; the plugin gets declared ∧ granted.
egress_hosts = ["api.example.com"]
secrets = ["webhook_secret", "api_token"]
http = false

[limits]
memory_mib = 32
# deadline_ms = 50   # per-call deadline; the host's default applies when unset
"#,
        world = switchboard_plugin_host::CURRENT_WORLD
    )
}

fn lib_rs(name: &str, type_name: &str) -> String {
    format!(
        r##"//! `{name}`: a Switchboard connector plugin for a provider with a JSON API at
//! `https://api.example.com` (replace it with yours).
//!
//! The connector is plain Rust against the `switchboard_core::Connector` trait: the same code
//! builds natively and, through `export_connector!`, as a WebAssembly component.
//!
//! - build: `switchboard plugin build .` (writes `dist/plugin.wasm` and `dist/plugin.toml`)
//! - test: `switchboard plugin test .` (the conformance kit over `fixtures/`)
//! - try: `switchboard replay --plugin dist/plugin.wasm --channel CASE.json CASE.json`

use serde_json::{{Value, json}};
use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::WebhookAuth;
use switchboard_core::{{
    Address, Capabilities, Channel, ChannelContext, ChannelSupport, Connector, ConnectorError,
    ConnectorInfo, Content, DeliveryStatus, ErrorClass, HttpRequest, HttpResponse,
    InboundEvent, InboundMessage, Method, OutboundMessage, ProviderError, SendReceipt,
    WebhookOutcome, WebhookRequest, WindowPolicy,
}};

/// The connector.
pub struct {type_name} {{
    info: ConnectorInfo,
}}

impl Default for {type_name} {{
    fn default() -> Self {{
        Self {{
            info: ConnectorInfo {{
                id: "{name}".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                display_name: "{name}".into(),
                channels: vec![ChannelSupport::new(
                    Channel::Sms,
                    Capabilities::new(1600, WindowPolicy::None),
                )],
                egress_hosts: vec!["api.example.com".into()],
            }},
        }}
    }}
}}

fn text<'a>(value: &'a Value, field: &str) -> Result<&'a str, ConnectorError> {{
    value[field]
        .as_str()
        .ok_or_else(|| ConnectorError::malformed(format!("`{{field}}` is missing")))
}}

impl Connector for {type_name} {{
    fn info(&self) -> &ConnectorInfo {{
        &self.info
    }}

    /// Webhooks carry `X-Signature: sha256=<hex HMAC-SHA256 of the body>`; the host checks
    /// it with the channel's `webhook_secret` before `parse_webhook` runs.
    fn webhook_auth(&self, _ctx: &ChannelContext) -> Result<WebhookAuth, ConnectorError> {{
        Ok(WebhookAuth::HmacSha256Header {{
            header: "X-Signature".into(),
            prefix: "sha256=".into(),
            secret: "webhook_secret".into(),
            verify_token: None,
        }})
    }}

    /// Sends carry `Authorization: Bearer <api_token>`, added by the host's transport.
    fn outbound_auth(&self, _ctx: &ChannelContext) -> Result<OutboundAuth, ConnectorError> {{
        Ok(OutboundAuth::Bearer {{
            token: "api_token".into(),
        }})
    }}

    /// An inbound SMS: `{{"id": "…", "from": "+1…", "to": "+1…", "text": "…"}}`.
    fn parse_webhook(
        &self,
        _ctx: &ChannelContext,
        req: &WebhookRequest,
    ) -> Result<WebhookOutcome, ConnectorError> {{
        let body: Value = serde_json::from_slice(&req.body)
            .map_err(|e| ConnectorError::malformed(format!("body is not JSON: {{e}}")))?;
        let message = InboundMessage {{
            id: text(&body, "id")?.to_owned(),
            from: Address::phone(Channel::Sms, text(&body, "from")?),
            to: Address::phone(Channel::Sms, text(&body, "to")?),
            timestamp: None,
            content: Content::text(text(&body, "text")?),
            profile_name: None,
            reply_to: None,
            extensions: Default::default(),
        }};
        Ok(WebhookOutcome::ok(vec![InboundEvent::Message(message)]))
    }}

    fn build_send(
        &self,
        _ctx: &ChannelContext,
        msg: &OutboundMessage,
    ) -> Result<HttpRequest, ConnectorError> {{
        let Content::Text {{ text, .. }} = &msg.content else {{
            return Err(ConnectorError::unsupported("content other than text"));
        }};
        Ok(
            HttpRequest::new(Method::Post, "https://api.example.com/v1/messages").with_json(
                &json!({{"to": msg.to.id, "text": text, "idempotency_key": msg.idempotency_key}}),
            ),
        )
    }}

    /// `200 {{"id": "…"}}` is a receipt; errors are classified by HTTP status.
    fn parse_send_response(
        &self,
        _ctx: &ChannelContext,
        _msg: &OutboundMessage,
        resp: &HttpResponse,
    ) -> Result<SendReceipt, ProviderError> {{
        if !resp.is_success() {{
            let class = match resp.status {{
                401 | 403 => ErrorClass::Auth,
                429 => ErrorClass::Throttled,
                500..=599 => ErrorClass::Retryable,
                _ => ErrorClass::Permanent,
            }};
            let error = ProviderError::new(class, format!("HTTP {{}}", resp.status));
            return Err(match resp.retry_after() {{
                Some(wait) => error.with_retry_after(wait),
                None => error,
            }});
        }}
        let body: Value = serde_json::from_slice(&resp.body).map_err(|e| {{
            ProviderError::new(ErrorClass::Permanent, format!("response is not JSON: {{e}}"))
        }})?;
        let id = body["id"].as_str().filter(|id| !id.is_empty()).ok_or_else(|| {{
            ProviderError::new(ErrorClass::Permanent, "response has no message `id`")
        }})?;
        Ok(SendReceipt::new(id, DeliveryStatus::Accepted))
    }}
}}

switchboard_plugin_sdk::export_connector!({type_name});
"##
    )
}

const FIXTURES_README: &str = r#"# Fixtures

One case per file, in Switchboard's fixture format: see `fixtures/README.md` in the Switchboard
repository (the kinds `webhook`, `send` and `send_response`, the request and channel formats,
and the generic checks the conformance kit runs around each case).

`switchboard plugin test .` runs every case here whose `connector` is this plugin's id.

Add a `webhook` case from a real, signed request the provider sent (or its documentation's
example with its signature): `switchboard replay --plugin dist/plugin.wasm --channel CASE.json
CASE.json` prints the events to put in `expect`. Use `value:` secrets with test values only;
never put a real secret in a file.
"#;

const CHANNEL: &str = r#"{
    "channel_id": "sms-main",
    "settings": {},
    "secrets": {
      "webhook_secret": "value:test_webhook_secret",
      "api_token": "value:test_api_token"
    }
  }"#;

fn fixture_send(name: &str) -> String {
    format!(
        r#"{{
  "kind": "send",
  "description": "A text message becomes a JSON POST to /v1/messages; the token is added by the transport",
  "source": "the provider's API documentation (replace with the page you followed)",
  "connector": "{name}",
  "channel": {CHANNEL},
  "message": {{
    "idempotency_key": "k1",
    "to": {{"channel": "sms", "kind": "phone", "id": "+14155550100"}},
    "content": {{"type": "text", "text": "hello"}}
  }},
  "expect_request": {{
    "method": "POST",
    "url": "https://api.example.com/v1/messages",
    "headers": [["Content-Type", "application/json"]],
    "body": "{{\"to\":\"+14155550100\",\"text\":\"hello\",\"idempotency_key\":\"k1\"}}"
  }}
}}
"#
    )
}

fn fixture_response(name: &str) -> String {
    format!(
        r#"{{
  "kind": "send_response",
  "description": "Accepted: the response's id is the receipt",
  "source": "the provider's API documentation (replace with the page you followed)",
  "connector": "{name}",
  "channel": {CHANNEL},
  "message": {{
    "idempotency_key": "k1",
    "to": {{"channel": "sms", "kind": "phone", "id": "+14155550100"}},
    "content": {{"type": "text", "text": "hello"}}
  }},
  "response": {{
    "status": 200,
    "headers": [["Content-Type", "application/json"]],
    "body": "{{\"id\":\"msg-0001\"}}"
  }},
  "expect_receipt": {{
    "provider_message_id": "msg-0001",
    "status": "accepted"
  }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types() {
        assert!(check_name("my-sms_2").is_ok());
        assert!(check_name("2sms").is_err());
        assert!(check_name("My").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
        assert_eq!(type_name("my-sms_2"), "MySms2Connector");
    }

    #[test]
    fn scaffolded_templates_parse() {
        let sdk = Path::new("/opt/switch \"board\"");
        let cargo: toml::Table = toml::from_str(&cargo_toml("x", sdk)).unwrap();
        assert_eq!(
            cargo["dependencies"]["switchboard-core"]["path"].as_str(),
            Some("/opt/switch \"board\"/crates/core")
        );
        let template: toml::Table = toml::from_str(&plugin_toml("x")).unwrap();
        assert_eq!(template["id"].as_str(), Some("x"));
        for text in [fixture_send("x"), fixture_response("x")] {
            let _: switchboard_conformance::fixture::Case = serde_json::from_str(&text).unwrap();
        }
    }
}
