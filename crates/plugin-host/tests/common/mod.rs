//! Shared by the integration tests and the bench: builds the plugins in `plugins/` once per
//! process (cargo's own fingerprints make a rebuild a no-op) and loads them.
#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(unreachable_pub, reason = "a module shared by test binaries")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use switchboard_plugin_host::build::build_plugin;
use switchboard_plugin_host::{Capabilities, HostConfig, Manifest, PluginHost, WasmConnector};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("plugins")
}

/// Builds `plugins/<name>` and returns the directory holding `plugin.wasm` and `plugin.toml`.
/// Fails (never skips) when the machine cannot build wasm32, with what to install.
pub fn built(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = built.get(name) {
        return dir.clone();
    }
    let out = target_dir().join("dist").join(name);
    if let Err(e) = build_plugin(&workspace().join("plugins").join(name), &out, &target_dir()) {
        panic!("building plugin `{name}` failed: {e}");
    }
    built.insert(name.to_owned(), out.clone());
    out
}

/// A host whose per-call deadline (1 s) no well-behaved call reaches even on a loaded CI
/// machine: the epoch deadline is wall-clock time, and a descheduled thread can lose tens of
/// milliseconds. Tests of the deadline itself use [`host_with_deadline`].
pub fn host() -> PluginHost {
    host_with_deadline(Duration::from_secs(1))
}

/// A host with the given default per-call deadline.
pub fn host_with_deadline(deadline: Duration) -> PluginHost {
    PluginHost::new(HostConfig {
        default_deadline: deadline,
        ..HostConfig::default()
    })
    .expect("host starts")
}

/// Everything the plugin declares.
pub fn grant_all(dir: &Path) -> Capabilities {
    Manifest::read(dir).expect("manifest").capabilities
}

pub fn load(host: &PluginHost, name: &str) -> WasmConnector {
    let dir = built(name);
    host.load_dir(&dir, &grant_all(&dir))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// The body of the 2 KB WhatsApp batch webhook (4 messages, 3 statuses).
pub fn whatsapp_batch() -> switchboard_core::WebhookRequest {
    let path = workspace().join("fixtures/meta/wa_batch_messages_and_statuses.json");
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    serde_json::from_value(case["request"].clone()).expect("a webhook request")
}

pub fn whatsapp_channel() -> switchboard_core::ChannelContext {
    switchboard_core::ChannelContext::new("wa-main")
        .with_setting("phone_number_id", "1122334455667")
        .with_setting("waba_id", "1234567890987654321")
}
