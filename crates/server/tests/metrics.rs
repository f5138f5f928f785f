//! End to end: `/metrics`, `/healthz`, `/readyz` and `GET /api/v1/channels` of the real
//! `switchboard serve` binary. Webhooks signed, unsigned, duplicated, for an unknown channel and
//! too large; a send that the (wiremock) Twilio API accepts and one it refuses with error 20003
//! (authentication): the counters, the histograms and the channel health must say so, with
//! channel ids as labels and no phone number anywhere.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "12345";
const ACCOUNT: &str = "AC9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const BAD_ACCOUNT: &str = "AC00000000000000000000000000000bad";
const PUBLIC: &str = "https://gateway.example.com";
const ADMIN: &str = "admin-token-0123456789";
const ANNA: &str = "anna-token-0123456789ab";
const CUSTOMER: &str = "+14017122661";

struct Gateway {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, good: &str, bad: &str) -> PathBuf {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
public_base_url = "{PUBLIC}"
data_dir = "{data}"

[limits]
max_body_bytes = 8192

[transport]
dangerous_allow_loopback_for_tests = true

[workers]
send_lease_secs = 3
routing_lease_secs = 3

[[channels]]
id = "twilio-main"
connector = "twilio"
settings = {{ account_sid = "{ACCOUNT}", from = "+14155238886", base_url = "{good}" }}
secrets = {{ auth_token = "env:SB_TEST_TWILIO_TOKEN" }}

[[channels]]
id = "twilio-bad"
connector = "twilio"
settings = {{ account_sid = "{BAD_ACCOUNT}", from = "+14155238887", base_url = "{bad}" }}
secrets = {{ auth_token = "env:SB_TEST_TWILIO_TOKEN" }}

[[api_tokens]]
name = "ops"
role = "admin"
token = "env:SB_TEST_ADMIN"

[[api_tokens]]
name = "anna's desktop"
role = "agent"
agent = "anna"
token = "env:SB_TEST_ANNA"

[[routing.agents]]
id = "anna"

[[routing.accounts]]
id = "twilio-main"
channel = "whatsapp"
messages = {{ greeting = "Hello from the gateway!" }}

[[routing.accounts.queues]]
id = "support"
name = "Support"
agents = [{{ agent = "anna" }}]
"#,
        data = dir.join("data").display(),
    );
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(dir: &Path, config: &Path) -> Gateway {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("gateway.log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(config)
        .env("SB_TEST_TWILIO_TOKEN", TOKEN)
        .env("SB_TEST_ADMIN", ADMIN)
        .env("SB_TEST_ANNA", ANNA)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("switchboard listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}; see {}", dir.display()))
        .parse()
        .unwrap();
    Gateway { child, addr }
}

/// One HTTP/1.1 exchange over a fresh connection: `(status, content type, body)`.
async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) before reading everything; ignore a reset while writing.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

async fn get(addr: SocketAddr, target: &str, token: Option<&str>) -> (u16, String, String) {
    let headers: Vec<(&str, String)> = token
        .map(|t| vec![("Authorization", format!("Bearer {t}"))])
        .unwrap_or_default();
    http(addr, "GET", target, &headers, b"").await
}

/// Twilio's signature: base64 HMAC-SHA1 over the URL and the sorted form parameters.
fn twilio_signature(url: &str, body: &str) -> String {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let mut data = url.to_owned();
    for (k, v) in params {
        data.push_str(&k);
        data.push_str(&v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn twilio_inbound(sid: &str, from: &str, text: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("MessageSid", sid)
        .append_pair("SmsMessageSid", sid)
        .append_pair("SmsSid", sid)
        .append_pair("AccountSid", ACCOUNT)
        .append_pair("From", &format!("whatsapp:{from}"))
        .append_pair("To", "whatsapp:+14155238886")
        .append_pair("Body", text)
        .append_pair("NumMedia", "0")
        .append_pair("WaId", from.trim_start_matches('+'))
        .append_pair("ApiVersion", "2010-04-01")
        .finish()
}

async fn post_webhook(
    addr: SocketAddr,
    channel: &str,
    body: &str,
    signature: Option<String>,
) -> u16 {
    let signature = signature
        .unwrap_or_else(|| twilio_signature(&format!("{PUBLIC}/webhooks/{channel}"), body));
    http(
        addr,
        "POST",
        &format!("/webhooks/{channel}"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded".into()),
            ("X-Twilio-Signature", signature),
        ],
        body.as_bytes(),
    )
    .await
    .0
}

/// The Twilio Messages API: 201 with a fresh SID each time.
struct TwilioApi(Arc<AtomicU64>);

impl Respond for TwilioApi {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let body = json!({
            "account_sid": ACCOUNT, "sid": format!("SM{n:032x}"), "status": "queued",
            "direction": "outbound-api", "error_code": null, "error_message": null
        });
        ResponseTemplate::new(201).set_body_json(body)
    }
}

async fn twilio_api(respond: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/2010-04-01/Accounts/AC[0-9a-f]+/Messages\.json$",
        ))
        .respond_with(respond)
        .mount(&server)
        .await;
    server
}

/// Twilio's answer to a wrong auth token (error 20003); the message quotes a phone number
/// to check that the channel health masks it.
fn twilio_auth_error() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "code": 20003,
        "message": "Authenticate (sending to +14155550112)",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401
    }))
}

/// Polls until `check` returns `Some` (or fails after 30 s).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.parse().ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_channel_state_follow_webhooks_and_sends() {
    let dir = tempfile::tempdir().unwrap();
    let good = twilio_api(TwilioApi(Arc::new(AtomicU64::new(1)))).await;
    let bad = twilio_api(twilio_auth_error()).await;
    let gateway = start(dir.path(), &config(dir.path(), &good.uri(), &bad.uri()));
    let addr = gateway.addr;

    // Health before anything happened.
    let (status, _, body) = get(addr, "/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, content_type, body) = get(addr, "/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["store"], "ok");
    assert_eq!(ready["checks"]["migrations"], "ok");
    assert_eq!(ready["failing"], json!([]));

    // Before any send: credentials unknown.
    let (status, _, body) = get(addr, "/api/v1/channels", Some(ADMIN)).await;
    assert_eq!(status, 200, "{body}");
    let channels: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(channels["channels"][0]["id"], "twilio-bad");
    assert_eq!(channels["channels"][0]["credentials"], "unknown");
    assert_eq!(channels["channels"][1]["credentials"], "unknown");

    // Webhooks: signed (stored), the same again (duplicate), unsigned, an unknown channel,
    // too large.
    let inbound = twilio_inbound("SM00000000000000000000000000000001", CUSTOMER, "hi");
    assert_eq!(post_webhook(addr, "twilio-main", &inbound, None).await, 200);
    assert_eq!(post_webhook(addr, "twilio-main", &inbound, None).await, 200);
    let forged = twilio_inbound("SM00000000000000000000000000000002", CUSTOMER, "forged");
    assert_eq!(
        post_webhook(
            addr,
            "twilio-main",
            &forged,
            Some("bm90IGEgc2lnbmF0dXJl".into())
        )
        .await,
        401
    );
    assert_eq!(post_webhook(addr, "nope", &inbound, None).await, 404);
    let huge = format!("{inbound}&Pad={}", "x".repeat(20_000));
    assert_eq!(post_webhook(addr, "twilio-main", &huge, None).await, 413);

    // Routing greets the customer through the good API; a proactive template on the other
    // channel meets error 20003.
    let sent = http(
        addr,
        "POST",
        "/api/v1/messages",
        &[
            ("Authorization", format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json".into()),
        ],
        json!({
            "channel": "twilio-bad", "to": CUSTOMER,
            "content": {"type": "template", "name": "HX0123456789abcdef0123456789abcdef", "language": "en"}
        })
        .to_string()
        .as_bytes(),
    )
    .await;
    assert_eq!(sent.0, 202, "{}", sent.2);

    let text = eventually("both sends and a store sample in /metrics", || async {
        let (status, _, text) = get(addr, "/metrics", None).await;
        assert_eq!(status, 200);
        let done = value(
            &text,
            r#"switchboard_sends_total{channel="twilio-main",result="sent",class="none"}"#,
        ) == Some(1.0)
            && value(
                &text,
                r#"switchboard_sends_total{channel="twilio-bad",result="failed",class="auth"}"#,
            ) == Some(1.0)
            && value(&text, r#"switchboard_outbox_depth{state="sent"}"#) == Some(1.0)
            && value(&text, r#"switchboard_outbox_depth{state="failed"}"#) == Some(1.0);
        done.then_some(text)
    })
    .await;

    let (_, content_type, _) = get(addr, "/metrics", None).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    for (series, expected) in [
        (
            r#"switchboard_webhooks_total{channel="twilio-main",outcome="stored"}"#,
            1.0,
        ),
        (
            r#"switchboard_webhooks_total{channel="twilio-main",outcome="duplicate"}"#,
            1.0,
        ),
        (
            r#"switchboard_webhooks_total{channel="twilio-main",outcome="unauthorized"}"#,
            1.0,
        ),
        (
            r#"switchboard_webhooks_total{channel="twilio-main",outcome="too_large"}"#,
            1.0,
        ),
        (
            r#"switchboard_webhooks_total{channel="_unknown",outcome="unknown_channel"}"#,
            1.0,
        ),
        ("switchboard_ingest_seconds_count", 5.0),
        (r#"switchboard_ingest_seconds_bucket{le="+Inf"}"#, 5.0),
        (
            r#"switchboard_send_seconds_count{channel="twilio-main"}"#,
            1.0,
        ),
        (
            r#"switchboard_send_seconds_count{channel="twilio-bad"}"#,
            1.0,
        ),
        (
            r#"switchboard_connector_webhook_seconds_count{connector="twilio"}"#,
            3.0,
        ),
        (r#"switchboard_outbox_depth{state="pending"}"#, 0.0),
        ("switchboard_outbox_oldest_pending_seconds", 0.0),
        ("switchboard_store_up", 1.0),
        ("switchboard_routing_open_conversations", 1.0),
        (
            r#"switchboard_routing_queue_waiting{queue="twilio-main/support"}"#,
            1.0,
        ),
        (
            r#"switchboard_routing_queue_entered_total{queue="twilio-main/support"}"#,
            1.0,
        ),
        (
            r#"switchboard_routing_service_level{queue="twilio-main/support"}"#,
            1.0,
        ),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
    }
    for family in [
        "# TYPE switchboard_webhooks counter",
        "# TYPE switchboard_ingest_seconds histogram",
        "# TYPE switchboard_send_seconds histogram",
        "# TYPE switchboard_outbox_depth gauge",
        "# TYPE switchboard_routing_jobs gauge",
        "# TYPE switchboard_routing_queue_waiting gauge",
        "# TYPE switchboard_routing_service_level gauge",
        "# TYPE switchboard_build info",
    ] {
        assert!(text.contains(family), "missing {family:?} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    // Channel ids only: no phone number, no path a caller made up.
    for secret in ["4017122661", "4155238886", "4155550112", "nope", TOKEN] {
        assert!(!text.contains(secret), "{secret:?} leaked into\n{text}");
    }

    // Channel health: the auth failure, masked; the good channel's success.
    let (status, _, body) = get(addr, "/api/v1/channels", Some(ADMIN)).await;
    assert_eq!(status, 200, "{body}");
    let channels: Value = serde_json::from_str(&body).unwrap();
    let bad = &channels["channels"][0];
    assert_eq!(bad["id"], "twilio-bad");
    assert_eq!(bad["connector"], "twilio");
    assert_eq!(bad["credentials"], "failing", "{bad}");
    assert_eq!(bad["last_error"]["class"], "auth");
    assert_eq!(bad["last_error"]["code"], "20003");
    let message = bad["last_error"]["message"].as_str().unwrap();
    assert_eq!(message, "Authenticate (sending to +1415*****12)");
    assert!(!message.contains("4155550112"), "unmasked: {message}");
    assert!(bad["last_error"]["at"].is_string());
    assert_eq!(bad["last_success_at"], Value::Null);
    assert_eq!(bad["sends"], json!({"failed": 1}));
    let main = &channels["channels"][1];
    assert_eq!(main["id"], "twilio-main");
    assert_eq!(main["credentials"], "ok", "{main}");
    assert_eq!(main["last_error"], Value::Null);
    assert!(main["last_success_at"].is_string());
    assert_eq!(main["sends"], json!({"sent": 1}));
    assert_eq!(
        main["webhooks"],
        json!({"stored": 1, "duplicate": 1, "unauthorized": 1, "too_large": 1})
    );
    assert!(!body.contains(TOKEN));

    // Admin only.
    let (status, _, body) = get(addr, "/api/v1/channels", Some(ANNA)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = get(addr, "/api/v1/channels", None).await;
    assert_eq!(status, 401);
}
