//! Plugins in the running gateway, end to end: the `vonage-messages` example plugin (built once
//! with `switchboard plugin build` into the wasm target directory `plugin_cli.rs` uses, so a CI
//! run builds it once) copied into a temporary plugins directory; the real `switchboard serve`
//! with a channel on it; webhooks signed as Vonage signs them; the admin API; reload and
//! rollback under traffic; the directory watcher; a start refused for a broken plugin.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::{Gateway, PUBLIC, eventually, http, repo, store, wasm_target_dir};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_store::Store;

/// The signature secret of Vonage's official vector (the plugin's fixtures use it too).
const SIGNATURE_SECRET: &str = "qwertyuiopasdfghjklzxcvbnm123456";
const ADMIN: &str = "sbt_admin_0123456789abcdef";
const AGENT: &str = "sbt_agent_0123456789abcdef";
const PLUGIN: &str = "vonage-messages";
const CHANNEL: &str = "vonage-main";

/// `plugins/vonage-messages` built with `switchboard plugin build` (once per test binary; the
/// same output directory as `plugin_cli.rs`, so cargo's fingerprints make it a no-op after
/// the first); returns the directory holding `plugin.toml` and `plugin.wasm`.
fn built_plugin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = wasm_target_dir().join("dist-cli").join(PLUGIN);
        let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("plugin")
            .arg("build")
            .arg(repo().join("plugins").join(PLUGIN))
            .arg("--out")
            .arg(&out)
            .arg("--target-dir")
            .arg(wasm_target_dir())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "plugin build failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    })
}

/// Copies the built plugin into `dest` (a plugin directory), with `version` in its manifest.
fn install(dest: &Path, version: &str) {
    std::fs::create_dir_all(dest).unwrap();
    let src = built_plugin();
    std::fs::copy(src.join("plugin.wasm"), dest.join("plugin.wasm")).unwrap();
    write_manifest(dest, version);
}

/// Rewrites `dir/plugin.toml` from the built one with another `version`.
fn write_manifest(dir: &Path, version: &str) {
    let manifest = std::fs::read_to_string(built_plugin().join("plugin.toml")).unwrap();
    let manifest = manifest.replace("version = \"0.1.0\"", &format!("version = \"{version}\""));
    assert!(manifest.contains(&format!("version = \"{version}\"")));
    // Write beside, then rename: the watcher never sees half a file.
    let tmp = dir.join("plugin.toml.tmp");
    std::fs::write(&tmp, manifest).unwrap();
    std::fs::rename(tmp, dir.join("plugin.toml")).unwrap();
}

fn built_sha256() -> String {
    switchboard_plugin_host::Manifest::read(built_plugin())
        .unwrap()
        .sha256
}

/// The configuration: plugins in `dir/plugins`, watched every `watch_secs` (0: not), with
/// the channel `vonage-main` on the plugin when `channel`.
fn config(dir: &Path, watch_secs: u64, channel: bool) -> PathBuf {
    let channel = if channel {
        format!(
            r#"
[[channels]]
id = "{CHANNEL}"
connector = "{PLUGIN}"
settings = {{ api_key = "a1b2c3d4", from = "447700900001" }}
secrets = {{ api_secret = "env:SB_TEST_VONAGE_API_SECRET", signature_secret = "env:SB_TEST_VONAGE_SIGNATURE_SECRET" }}
"#
        )
    } else {
        String::new()
    };
    let text = format!(
        r#"
listen = "127.0.0.1:0"
public_base_url = "{PUBLIC}"
data_dir = "{data}"
plugins_dir = "{plugins}"
plugins_watch_secs = {watch_secs}

[[plugins]]
id = "{PLUGIN}"
grant = {{ egress_hosts = ["api.nexmo.com"], secrets = ["api_secret", "signature_secret"] }}
{channel}
[[routing.agents]]
id = "anna"

[[api_tokens]]
name = "ops"
role = "admin"
token = "env:SB_TEST_ADMIN_TOKEN"

[[api_tokens]]
name = "anna"
role = "agent"
agent = "anna"
token = "env:SB_TEST_AGENT_TOKEN"
"#,
        data = dir.join("data").display(),
        plugins = dir.join("plugins").display(),
    );
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const ENV: &[(&str, &str)] = &[
    ("SB_TEST_VONAGE_API_SECRET", "test_api_secret_0001"),
    ("SB_TEST_VONAGE_SIGNATURE_SECRET", SIGNATURE_SECRET),
    ("SB_TEST_ADMIN_TOKEN", ADMIN),
    ("SB_TEST_AGENT_TOKEN", AGENT),
];

fn command(dir: &Path, config: &Path) -> Command {
    common::serve_command(dir, config, ENV)
}

fn start(dir: &Path, config: &Path) -> Gateway {
    common::start(dir, config, ENV)
}

/// An API call with a bearer token: `(status, JSON body)`.
async fn api(addr: SocketAddr, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let common::Answer {
        status, body: text, ..
    } = http(
        addr,
        method,
        &format!("/api/v1{path}"),
        &[
            ("Authorization", format!("Bearer {token}")),
            ("Content-Type", "application/json".into()),
        ],
        &body,
    )
    .await;
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: {status} not JSON ({e}): {text:?}"));
    (status, value)
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A Vonage signed-webhook JWT (HS256) for `body`, issued now.
fn vonage_jwt(body: &str, secret: &str) -> String {
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({
        "iat": iat,
        "jti": format!("jti-{iat}-{}", hex::encode(&Sha256::digest(body.as_bytes())[..6])),
        "iss": "Vonage",
        "payload_hash": hex::encode(Sha256::digest(body.as_bytes())),
        "api_key": "a1b2c3d4",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    });
    let claims = b64url(claims.to_string().as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{claims}").as_bytes());
    format!("{header}.{claims}.{}", b64url(&mac.finalize().into_bytes()))
}

/// An inbound SMS with message id `uuid`.
fn inbound(uuid: &str) -> String {
    json!({
        "channel": "sms",
        "message_uuid": uuid,
        "to": "447700900001",
        "from": "447700900123",
        "timestamp": "2025-01-01T14:00:00.000Z",
        "message_type": "text",
        "text": format!("hello {uuid}"),
    })
    .to_string()
}

async fn webhook(addr: SocketAddr, uuid: &str, secret: &str) -> u16 {
    let body = inbound(uuid);
    let token = vonage_jwt(&body, secret);
    http(
        addr,
        "POST",
        &format!("/webhooks/{CHANNEL}"),
        &[
            ("Content-Type", "application/json".into()),
            ("Authorization", format!("Bearer {token}")),
        ],
        body.as_bytes(),
    )
    .await
    .status
}

fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// How many times each provider message id is stored for the channel.
async fn stored(dir: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in store(dir).await.messages(CHANNEL).await.unwrap() {
        if let Some(id) = m.provider_message_id {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

async fn plugin_entry(addr: SocketAddr) -> Value {
    let (status, body) = api(addr, "GET", "/plugins", ADMIN, Value::Null).await;
    assert_eq!(status, 200, "{body}");
    body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == PLUGIN)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_on_a_plugin_serves_webhooks_and_the_admin_api_manages_it() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    install(&plugins.join("vonage"), "0.1.0");
    let gateway = start(dir.path(), &config(dir.path(), 0, true));
    let addr = gateway.addr;

    // Listed, with what it runs with.
    let entry = plugin_entry(addr).await;
    assert_eq!(entry["version"], "0.1.0", "{entry}");
    assert_eq!(entry["sha256"], built_sha256());
    let built = switchboard_plugin_host::Manifest::read(built_plugin()).unwrap();
    assert_eq!(entry["world"], built.world.as_str());
    assert_eq!(entry["source"], "vonage");
    assert_eq!(
        entry["granted"],
        json!({"egress_hosts": ["api.nexmo.com"], "secrets": ["api_secret", "signature_secret"], "http": false}),
        "declared ∧ granted: the sandbox host was not granted"
    );
    assert_eq!(entry["circuit"], "closed");
    assert_eq!(entry["previous_version"], Value::Null);
    assert_eq!(entry["channels"], json!([CHANNEL]));

    // Admin only.
    let (status, body) = api(addr, "GET", "/plugins", AGENT, Value::Null).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    let (status, _) = api(
        addr,
        "POST",
        &format!("/plugins/{PLUGIN}/reload"),
        AGENT,
        Value::Null,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = api(
        addr,
        "POST",
        "/plugins/load",
        AGENT,
        json!({"path": "vonage"}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = api(
        addr,
        "GET",
        "/plugins",
        "sbt_not_a_configured_token",
        Value::Null,
    )
    .await;
    assert_eq!(status, 401);

    // Signed webhooks are stored, like on a built-in connector; a wrong signature is 401.
    for n in 1..=3 {
        assert_eq!(webhook(addr, &uuid(n), SIGNATURE_SECRET).await, 200);
    }
    assert_eq!(
        webhook(addr, &uuid(4), "not-the-secret-not-the-secret!!").await,
        401
    );
    let counts = stored(dir.path()).await;
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!((1..=3).all(|n| counts.get(&uuid(n)) == Some(&1)));
    let entry = plugin_entry(addr).await;
    assert!(entry["calls"].as_u64().unwrap() >= 4, "{entry}");
    assert_eq!(entry["traps"], 0);

    // Reload and rollback under traffic: every acknowledged webhook is stored exactly once,
    // none is refused with a 5xx.
    let running = Arc::new(AtomicBool::new(true));
    let next = Arc::new(AtomicU64::new(1000));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for _ in 0..3 {
        let (running, next, acked, failed) =
            (running.clone(), next.clone(), acked.clone(), failed.clone());
        senders.push(tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let id = uuid(next.fetch_add(1, Ordering::Relaxed));
                match webhook(addr, &id, SIGNATURE_SECRET).await {
                    200 => acked.lock().unwrap().push(id),
                    status => failed.lock().unwrap().push((id, status)),
                }
            }
        }));
    }
    let progress = |n: usize| {
        let acked = acked.clone();
        async move {
            let start = acked.lock().unwrap().len();
            eventually("webhooks flowing", || {
                let acked = acked.clone();
                async move { acked.lock().unwrap().len() >= start + n }
            })
            .await;
        }
    };
    progress(20).await;
    write_manifest(&plugins.join("vonage"), "0.2.0");
    let (status, body) = api(
        addr,
        "POST",
        &format!("/plugins/{PLUGIN}/reload"),
        ADMIN,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
    assert_eq!(body["plugin"]["version"], "0.2.0");
    assert_eq!(body["plugin"]["previous_version"], "0.1.0");
    progress(20).await;
    // The same files again: nothing to swap, the rollback target stays.
    let (status, body) = api(
        addr,
        "POST",
        &format!("/plugins/{PLUGIN}/reload"),
        ADMIN,
        Value::Null,
    )
    .await;
    assert_eq!((status, &body["changed"]), (200, &json!(false)), "{body}");
    assert_eq!(body["plugin"]["previous_version"], "0.1.0");
    let (status, body) = api(
        addr,
        "POST",
        &format!("/plugins/{PLUGIN}/rollback"),
        ADMIN,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plugin"]["version"], "0.1.0");
    assert_eq!(body["plugin"]["previous_version"], "0.2.0");
    progress(20).await;
    running.store(false, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "refused during reload: {failed:?}");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 60, "{}", acked.len());
    let counts = stored(dir.path()).await;
    for id in &acked {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "{id} stored {:?} times",
            counts.get(id)
        );
    }
    // The version serving now counted its calls.
    let entry = plugin_entry(addr).await;
    assert_eq!(entry["version"], "0.1.0");
    assert!(entry["calls"].as_u64().unwrap() > 0, "{entry}");

    // Unload is refused while the channel uses the plugin.
    let (status, body) = api(
        addr,
        "POST",
        &format!("/plugins/{PLUGIN}/unload"),
        ADMIN,
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("in_use")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains(CHANNEL));
    let (status, body) = api(addr, "POST", "/plugins/nope/rollback", ADMIN, Value::Null).await;
    assert_eq!(status, 404, "{body}");

    // Loading takes paths inside the plugins directory only.
    let outside = dir.path().join("outside");
    install(&outside, "6.6.6");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, plugins.join("link")).unwrap();
    for path in [
        "../outside",
        "vonage/../../outside",
        "/etc",
        outside.to_str().unwrap(),
        "",
        "link",
        "link/plugin.wasm",
    ] {
        let (status, body) = api(addr, "POST", "/plugins/load", ADMIN, json!({"path": path})).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("invalid_request")),
            "{path}: {body}"
        );
    }
    let (status, _) = api(addr, "POST", "/plugins/load", ADMIN, json!({})).await;
    assert_eq!(status, 400);
    let (status, _) = api(
        addr,
        "POST",
        "/plugins/load",
        ADMIN,
        json!({"path": "missing"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        plugin_entry(addr).await["version"],
        "0.1.0",
        "nothing outside was loaded"
    );
    install(&plugins.join("vonage-next"), "0.5.0");
    let (status, body) = api(
        addr,
        "POST",
        "/plugins/load",
        ADMIN,
        json!({"path": "vonage-next/plugin.wasm"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plugin"]["version"], "0.5.0");
    assert_eq!(body["plugin"]["source"], "vonage-next");
    assert_eq!(webhook(addr, &uuid(5), SIGNATURE_SECRET).await, 200);

    // Forced unload stops the channel (500: the provider retries); loading it again serves.
    let (status, body) = api(
        addr,
        "POST",
        &format!("/plugins/{PLUGIN}/unload?force=true"),
        ADMIN,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(plugin_entry(addr).await, Value::Null);
    assert_eq!(webhook(addr, &uuid(6), SIGNATURE_SECRET).await, 500);
    let (status, body) = api(
        addr,
        "POST",
        &format!("/plugins/{PLUGIN}/reload"),
        ADMIN,
        Value::Null,
    )
    .await;
    assert_eq!((status, &body["changed"]), (200, &json!(true)), "{body}");
    assert_eq!(webhook(addr, &uuid(6), SIGNATURE_SECRET).await, 200);
    let counts = stored(dir.path()).await;
    assert_eq!(counts.get(&uuid(5)), Some(&1));
    assert_eq!(counts.get(&uuid(6)), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reloads_a_changed_plugin_and_keeps_serving_through_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins/vonage");
    install(&plugin_dir, "0.1.0");
    let gateway = start(dir.path(), &config(dir.path(), 1, true));
    let addr = gateway.addr;
    assert_eq!(plugin_entry(addr).await["version"], "0.1.0");

    write_manifest(&plugin_dir, "0.3.0");
    eventually("the watcher loads 0.3.0", || async move {
        plugin_entry(addr).await["version"] == "0.3.0"
    })
    .await;
    let entry = plugin_entry(addr).await;
    assert_eq!(entry["previous_version"], "0.1.0", "{entry}");
    assert_eq!(webhook(addr, &uuid(1), SIGNATURE_SECRET).await, 200);

    // A component that does not match its manifest is refused; 0.3.0 keeps serving.
    let mut bytes = std::fs::read(plugin_dir.join("plugin.wasm")).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(plugin_dir.join("plugin.wasm"), bytes).unwrap();
    eventually("the refusal is listed", || async move {
        let (_, body) = api(addr, "GET", "/plugins", ADMIN, Value::Null).await;
        body["refused"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"] == "vonage" && r["reason"].as_str().unwrap().contains("sha256"))
    })
    .await;
    assert_eq!(plugin_entry(addr).await["version"], "0.3.0");
    assert_eq!(webhook(addr, &uuid(2), SIGNATURE_SECRET).await, 200);
    assert_eq!(stored(dir.path()).await.len(), 2);
}

#[test]
fn a_channel_on_a_refused_plugin_stops_the_start_naming_the_channel_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins/vonage");
    install(&plugin_dir, "0.1.0");
    let manifest = std::fs::read_to_string(plugin_dir.join("plugin.toml")).unwrap();
    let manifest = manifest.replace(&built_sha256(), &"0".repeat(64));
    std::fs::write(plugin_dir.join("plugin.toml"), manifest).unwrap();
    let output = command(dir.path(), &config(dir.path(), 0, true))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("channels[0].connector"), "{stderr}");
    assert!(stderr.contains(CHANNEL), "{stderr}");
    assert!(stderr.contains("sha256"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).is_empty());

    // A plugin nobody uses may be refused: the gateway starts and lists the refusal.
    let gateway = start(dir.path(), &config(dir.path(), 0, false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = runtime.block_on(api(gateway.addr, "GET", "/plugins", ADMIN, Value::Null));
    assert_eq!(status, 200);
    assert_eq!(body["plugins"], json!([]));
    assert!(
        body["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("sha256"),
        "{body}"
    );
}
