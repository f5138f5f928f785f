//! End to end: integration event webhooks. The real `switchboard serve` binary; a signed
//! Twilio inbound webhook and agent commands through the API cause `message.received`,
//! `conversation.assigned` and `conversation.ended` (with the transcript); a wiremock "CRM"
//! records what it receives and checks the Standard Webhooks signatures with the core
//! verifier, for each of the two configured secrets (rotation). The CRM fails the first
//! delivery (500): it is retried with the same `webhook-id`. A second subscription answers
//! 410: it is disabled after one request, and stays disabled across a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    ACCOUNT, Gateway, PUBLIC, TWILIO_TOKEN, eventually_sync, post_twilio, store, test_schema,
    twilio_api, use_store,
};
use serde_json::{Value, json};
use switchboard_core::webhook_auth::{self, Verified, WebhookAuth};
use switchboard_core::{Method, SecretName, Secrets, Timestamp, WebhookRequest};
use switchboard_store::{EventDeliveryState, Store};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ANNA: &str = "sbt_anna_0123456789abcdef";
const ADMIN: &str = "sbt_admin_0123456789abcdef";
/// The current and the previous signing secret (Standard Webhooks vectors' keys).
const NEW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config(dir: &Path, twilio: &str, crm: &str) -> PathBuf {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
public_base_url = "{PUBLIC}"
data_dir = "{data}"

[transport]
dangerous_allow_loopback_for_tests = true

[workers]
event_retry_secs = [1, 1, 1]
event_timeout_secs = 5

[[event_subscriptions]]
id = "crm"
url = "{crm}/crm"
events = ["*"]
secrets = ["env:SB_TEST_WH_NEW", "env:SB_TEST_WH_OLD"]

[[event_subscriptions]]
id = "gone"
url = "{crm}/gone"
events = ["message.received", "conversation.ended"]
secrets = ["env:SB_TEST_WH_NEW"]

[[channels]]
id = "twilio-main"
connector = "twilio"
settings = {{ account_sid = "{ACCOUNT}", from = "+14155550000", base_url = "{twilio}" }}
secrets = {{ auth_token = "env:SB_TEST_TWILIO_TOKEN" }}

[[api_tokens]]
name = "anna's desktop"
role = "agent"
agent = "anna"
token = "env:SB_TEST_ANNA"

[[api_tokens]]
name = "admin"
role = "admin"
token = "env:SB_TEST_ADMIN"

[[routing.agents]]
id = "anna"

[[routing.accounts]]
id = "twilio-main"
channel = "whatsapp"
messages = {{ greeting = "Hello from the gateway!" }}
dispositions = {{ mandatory = true, options = ["Resolved", "Escalated"] }}

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
            ("SB_TEST_ANNA", ANNA),
            ("SB_TEST_ADMIN", ADMIN),
            ("SB_TEST_WH_NEW", NEW_SECRET),
            ("SB_TEST_WH_OLD", OLD_SECRET),
        ],
    )
}

async fn api(addr: SocketAddr, method: &str, path: &str, token: &str, body: Value) -> Value {
    let answer = common::api(addr, method, path, Some(token), Some(body)).await;
    assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
    answer.json()
}

async fn customer_writes(addr: SocketAddr, sid: &str, text: &str) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("MessageSid", sid)
        .append_pair("SmsMessageSid", sid)
        .append_pair("AccountSid", ACCOUNT)
        .append_pair("From", "whatsapp:+14155238886")
        .append_pair("To", "whatsapp:+14155550000")
        .append_pair("Body", text)
        .append_pair("NumMedia", "0")
        .append_pair("ApiVersion", "2010-04-01")
        .finish();
    assert_eq!(
        post_twilio(addr, "twilio-main", &body, None).await.status,
        200
    );
}

/// One request the CRM received.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Verifies the signature with the core verifier, knowing only `secret`.
    fn verify_with(&self, secret: &str) -> bool {
        let scheme = WebhookAuth::StandardWebhooks {
            secret: SecretName::new("s"),
            tolerance: Duration::from_secs(300),
        };
        let req = WebhookRequest::new(
            Method::Post,
            format!("https://crm.example.com{}", self.path),
        )
        .with_header("webhook-id", self.id.clone())
        .with_header("webhook-timestamp", self.timestamp.clone())
        .with_header("webhook-signature", self.signature.clone())
        .with_body(self.body.clone());
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        webhook_auth::verify(&scheme, &Secrets::default().with("s", secret), &req, now)
            == Ok(Verified::Authentic)
    }
}

/// The CRM: records every request; `/crm` answers 500 to the very first one, then 200;
/// `/gone` answers 410.
#[derive(Clone, Default)]
struct Crm(Arc<Mutex<Vec<Received>>>);

impl Respond for Crm {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let received = Received {
            path: req.url.path().to_owned(),
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            content_type: header("content-type"),
            body: req.body.clone(),
        };
        let mut all = self.0.lock().unwrap();
        all.push(received.clone());
        if received.path == "/gone" {
            ResponseTemplate::new(410)
        } else if all.iter().filter(|r| r.path == "/crm").count() == 1 {
            ResponseTemplate::new(500)
        } else {
            ResponseTemplate::new(204)
        }
    }
}

impl Crm {
    fn at(&self, path: &str) -> Vec<Received> {
        let all = self.0.lock().unwrap();
        all.iter().filter(|r| r.path == path).cloned().collect()
    }

    fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.at("/crm")
            .into_iter()
            .filter(|r| r.json()["type"] == event_type)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_signed_retried_carry_the_transcript_and_410_disables() {
    let dir = tempfile::tempdir().unwrap();
    events_flow(dir.path(), None).await;
}

/// The same with the store on PostgreSQL (a fresh schema of `SWITCHBOARD_TEST_DATABASE_URL`;
/// says it did not run without one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_events_are_signed_retried_carry_the_transcript_and_410_disables() {
    let Some(schema) = test_schema().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    events_flow(dir.path(), Some(schema.url())).await;
}

/// Subscriptions, deliveries, retries, the transcript and a 410, on the store at `store_url`
/// (the embedded SQLite in `dir` when `None`).
async fn events_flow(dir: &Path, store_url: Option<&str>) {
    let twilio = twilio_api().await;
    let crm_server = MockServer::start().await;
    let crm = Crm::default();
    for p in ["/crm", "/gone"] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(crm.clone())
            .mount(&crm_server)
            .await;
    }
    let config = config(dir, &twilio.uri(), &crm_server.uri());
    if let Some(url) = store_url {
        use_store(&config, url);
    }
    let gateway = start(dir, &config);
    let addr = gateway.addr;

    api(
        addr,
        "PUT",
        "/agents/anna/state",
        ANNA,
        json!({"availability": "available"}),
    )
    .await;
    customer_writes(addr, "SMin0001", "Hi, my order is late").await;

    // message.received: refused once (500), then delivered: the same webhook id twice.
    eventually_sync("message.received delivered after a retry", || {
        crm.of_type("message.received").len() >= 2
    })
    .await;
    let received = crm.of_type("message.received");
    assert_eq!(received.len(), 2, "retried once, then delivered");
    assert_eq!(
        received[0].id, received[1].id,
        "the webhook id is stable across retries"
    );
    assert_eq!(received[0].body, received[1].body);
    assert!(received[0].id.starts_with("msg_"));
    for r in &received {
        assert_eq!(r.content_type, "application/json");
        assert_eq!(
            r.signature.split(' ').count(),
            2,
            "one signature per secret"
        );
        assert!(r.verify_with(NEW_SECRET), "verifies with the new secret");
        assert!(r.verify_with(OLD_SECRET), "verifies with the old secret");
        assert!(!r.verify_with("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr=="));
    }
    let event = received[1].json();
    assert!(
        event["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(event["data"]["channel_id"], "twilio-main");
    assert_eq!(event["data"]["message"]["id"], "SMin0001");
    assert!(
        event["data"]["message"]
            .to_string()
            .contains("Hi, my order is late")
    );

    // The 410 subscription got its first event once and is disabled.
    eventually_sync("the 410 subscription is disabled", || {
        !crm.at("/gone").is_empty()
    })
    .await;

    // anna accepts and ends the conversation.
    let mut conversation = String::new();
    for _ in 0..100 {
        let list = api(
            addr,
            "GET",
            "/conversations?state=queued",
            ADMIN,
            Value::Null,
        )
        .await;
        if let Some(id) = list["conversations"][0]["id"].as_str() {
            conversation = id.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!conversation.is_empty(), "no queued conversation");
    api(
        addr,
        "POST",
        &format!("/conversations/{conversation}/accept"),
        ANNA,
        json!({}),
    )
    .await;
    eventually_sync("conversation.assigned", || {
        !crm.of_type("conversation.assigned").is_empty()
    })
    .await;
    let assigned = crm.of_type("conversation.assigned")[0].json();
    assert_eq!(assigned["data"]["conversation"], conversation.as_str());
    assert_eq!(assigned["data"]["agent"], "anna");
    assert_eq!(assigned["data"]["channel_id"], "twilio-main");
    assert_eq!(assigned["data"]["customer"], "+14155238886");

    api(
        addr,
        "POST",
        &format!("/conversations/{conversation}/end"),
        ANNA,
        json!({"dispositions": ["Resolved"]}),
    )
    .await;
    eventually_sync("conversation.ended", || {
        !crm.of_type("conversation.ended").is_empty()
    })
    .await;
    let ended_request = &crm.of_type("conversation.ended")[0];
    assert!(ended_request.verify_with(NEW_SECRET) && ended_request.verify_with(OLD_SECRET));
    let ended = ended_request.json()["data"].clone();
    assert_eq!(ended["conversation"], conversation.as_str());
    assert_eq!(ended["account"], "twilio-main");
    assert_eq!(ended["channel_id"], "twilio-main");
    assert_eq!(ended["customer"], "+14155238886");
    assert_eq!(ended["trigger"], "ended");
    assert_eq!(ended["reason"], "agent");
    assert_eq!(ended["dispositions"], json!(["Resolved"]));
    let messages = ended["messages"].as_array().unwrap();
    assert_eq!(messages.len() as u64, ended["entries"].as_u64().unwrap());
    assert!(
        messages
            .iter()
            .any(|m| m["from"]["type"] == "customer"
                && m.to_string().contains("Hi, my order is late")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.to_string().contains("Hello from the gateway!")),
        "{messages:?}"
    );

    // A restart keeps the 410 subscription disabled: a new message reaches the CRM only.
    drop(gateway);
    let gateway = start(dir, &config);
    customer_writes(gateway.addr, "SMin0002", "Are you there?").await;
    eventually_sync("the second message.received", || {
        crm.of_type("message.received")
            .iter()
            .any(|r| r.json()["data"]["message"]["id"] == "SMin0002")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(crm.at("/gone").len(), 1, "no request after the 410");

    let store: Arc<dyn Store> = match store_url {
        Some(url) => switchboard_store::open(url, switchboard_store::SqliteOptions::default())
            .await
            .unwrap(),
        None => Arc::new(store(dir).await),
    };
    let disabled = store.disabled_event_subscriptions().await.unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].subscription, "gone");
    let deliveries = store.event_deliveries().await.unwrap();
    assert!(
        deliveries
            .iter()
            .filter(|d| d.subscription == "gone")
            .all(|d| d.state == EventDeliveryState::Disabled)
    );
    let first = deliveries
        .iter()
        .find(|d| d.webhook_id == received[0].id)
        .unwrap();
    assert_eq!(
        (first.state, first.attempts),
        (EventDeliveryState::Delivered, 2)
    );
    drop(gateway);
}
