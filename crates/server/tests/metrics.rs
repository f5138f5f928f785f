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

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{
    ACCOUNT, Gateway, PUBLIC, TWILIO_TOKEN, TwilioApi, eventually, http, post_twilio, test_schema,
    twilio_api_with, twilio_inbound, use_store,
};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

const BAD_ACCOUNT: &str = "AC00000000000000000000000000000bad";
const ADMIN: &str = "admin-token-0123456789";
const ANNA: &str = "anna-token-0123456789ab";
const CUSTOMER: &str = "+14017122661";

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
    common::start(
        dir,
        config,
        &[
            ("SB_TEST_TWILIO_TOKEN", TWILIO_TOKEN),
            ("SB_TEST_ADMIN", ADMIN),
            ("SB_TEST_ANNA", ANNA),
        ],
    )
}

/// A GET with an optional bearer token: `(status, content type, body)`.
async fn get(addr: SocketAddr, target: &str, token: Option<&str>) -> (u16, String, String) {
    let headers: Vec<(&str, String)> = token
        .map(|t| vec![("Authorization", format!("Bearer {t}"))])
        .unwrap_or_default();
    let answer = http(addr, "GET", target, &headers, b"").await;
    let content_type = answer.header("content-type").unwrap_or_default().to_owned();
    (answer.status, content_type, answer.body)
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
    metrics_flow(dir.path(), None).await;
}

/// The same with the store on PostgreSQL (a fresh schema of `SWITCHBOARD_TEST_DATABASE_URL`;
/// says it did not run without one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_metrics_health_and_channel_state_follow_webhooks_and_sends() {
    let Some(schema) = test_schema().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    metrics_flow(dir.path(), Some(schema.url())).await;
}

/// Webhooks, sends, `/metrics`, `/readyz` and channel health on the store at `store_url` (the
/// embedded SQLite in `dir` when `None`).
async fn metrics_flow(dir: &Path, store_url: Option<&str>) {
    let good = twilio_api_with(TwilioApi::new()).await;
    let bad = twilio_api_with(twilio_auth_error()).await;
    let config = config(dir, &good.uri(), &bad.uri());
    if let Some(url) = store_url {
        use_store(&config, url);
    }
    let gateway = start(dir, &config);
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
    assert_eq!(
        post_twilio(addr, "twilio-main", &inbound, None)
            .await
            .status,
        200
    );
    assert_eq!(
        post_twilio(addr, "twilio-main", &inbound, None)
            .await
            .status,
        200
    );
    let forged = twilio_inbound("SM00000000000000000000000000000002", CUSTOMER, "forged");
    assert_eq!(
        post_twilio(
            addr,
            "twilio-main",
            &forged,
            Some("bm90IGEgc2lnbmF0dXJl".into())
        )
        .await
        .status,
        401
    );
    assert_eq!(post_twilio(addr, "nope", &inbound, None).await.status, 404);
    let huge = format!("{inbound}&Pad={}", "x".repeat(20_000));
    assert_eq!(
        post_twilio(addr, "twilio-main", &huge, None).await.status,
        413
    );

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
    assert_eq!(sent.status, 202, "{}", sent.body);

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
    for secret in [
        "4017122661",
        "4155238886",
        "4155550112",
        "nope",
        TWILIO_TOKEN,
    ] {
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
    assert!(!body.contains(TWILIO_TOKEN));

    // Admin only.
    let (status, _, body) = get(addr, "/api/v1/channels", Some(ANNA)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = get(addr, "/api/v1/channels", None).await;
    assert_eq!(status, 401);
}
