//! End to end through the agent/admin API (`/api/v1`): the real `switchboard serve` binary on a
//! free loopback port, customers writing through signed Twilio webhooks, the Twilio API played
//! by wiremock, agents working through the API and its event stream.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{
    ACCOUNT, Answer, Gateway, PUBLIC, TWILIO_TOKEN, api, eventually, http, post_twilio,
    test_schema, twilio_api, use_store,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::MockServer;

const ANNA: &str = "sbt_anna_0123456789abcdef";
const BEN: &str = "sbt_ben_0123456789abcdef0";
const ADMIN: &str = "sbt_admin_0123456789abcdef";
const TEMPLATE_SID: &str = "HX0123456789abcdef0123456789abcdef";

fn config(dir: &Path, api: &str) -> PathBuf {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
public_base_url = "{PUBLIC}"
data_dir = "{data}"

[transport]
dangerous_allow_loopback_for_tests = true

[workers]
send_lease_secs = 3
routing_lease_secs = 3

[[channels]]
id = "twilio-main"
connector = "twilio"
settings = {{ account_sid = "{ACCOUNT}", from = "+14155550000", base_url = "{api}" }}
secrets = {{ auth_token = "env:SB_TEST_TWILIO_TOKEN" }}

[[api_tokens]]
name = "anna's desktop"
role = "agent"
agent = "anna"
token = "env:SB_TEST_ANNA"

[[api_tokens]]
name = "ben's desktop"
role = "agent"
agent = "ben"
token = "env:SB_TEST_BEN"

[[api_tokens]]
name = "crm"
role = "admin"
token = "env:SB_TEST_ADMIN"

[[routing.agents]]
id = "anna"

[[routing.agents]]
id = "ben"

[[routing.accounts]]
id = "twilio-main"
channel = "whatsapp"
messages = {{ greeting = "Hello from the gateway!" }}
dispositions = {{ mandatory = true, options = ["Resolved", "Escalated"] }}

[[routing.accounts.queues]]
id = "support"
name = "Support"
agents = [{{ agent = "anna" }}, {{ agent = "ben" }}]
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
            ("SB_TEST_BEN", BEN),
            ("SB_TEST_ADMIN", ADMIN),
        ],
    )
}

/// A customer's WhatsApp message through Twilio.
async fn customer_writes(addr: SocketAddr, sid: &str, from: &str, text: &str) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("MessageSid", sid)
        .append_pair("SmsMessageSid", sid)
        .append_pair("AccountSid", ACCOUNT)
        .append_pair("From", &format!("whatsapp:{from}"))
        .append_pair("To", "whatsapp:+14155550000")
        .append_pair("Body", text)
        .append_pair("NumMedia", "0")
        .append_pair("ProfileName", "Kim")
        .append_pair("WaId", from.trim_start_matches('+'))
        .finish();
    assert_eq!(
        post_twilio(addr, "twilio-main", &body, None).await.status,
        200
    );
}

/// Twilio's status callback for one of our messages.
async fn status_callback(addr: SocketAddr, sid: &str, to: &str, status: &str) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("MessageSid", sid)
        .append_pair("MessageStatus", status)
        .append_pair("AccountSid", ACCOUNT)
        .append_pair("From", "whatsapp:+14155550000")
        .append_pair("To", &format!("whatsapp:{to}"))
        .finish();
    assert_eq!(
        post_twilio(addr, "twilio-main", &body, None).await.status,
        200
    );
}

/// The form bodies the Twilio API received, decoded.
async fn twilio_sends(api: &MockServer) -> Vec<Vec<(String, String)>> {
    api.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            form_urlencoded::parse(&r.body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .collect()
}

/// An SSE subscription read in the background: `(event, data)` in arrival order.
#[derive(Clone)]
struct Events(Arc<Mutex<Vec<(String, Value)>>>);

impl Events {
    /// Opens `GET /api/v1/events` (HTTP/1.0: the body runs until the connection closes) and
    /// waits for `ready`.
    async fn open(addr: SocketAddr, token: &str) -> Self {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET /api/v1/events HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let events = Events(Arc::new(Mutex::new(Vec::new())));
        let sink = events.clone();
        tokio::spawn(async move {
            let mut pending = String::new();
            let mut in_body = false;
            let (mut name, mut data) = (String::new(), String::new());
            let mut buf = vec![0u8; 8192];
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                if !in_body {
                    let Some(end) = pending.find("\r\n\r\n") else {
                        continue;
                    };
                    assert!(
                        pending.starts_with("HTTP/1.0 200") || pending.starts_with("HTTP/1.1 200"),
                        "{pending}"
                    );
                    pending.drain(..end + 4);
                    in_body = true;
                }
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    let line = line.trim_end_matches(['\r', '\n']);
                    if line.is_empty() {
                        if !name.is_empty() {
                            let value = serde_json::from_str(&data).unwrap_or(Value::Null);
                            sink.0.lock().unwrap().push((name.clone(), value));
                        }
                        name.clear();
                        data.clear();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
            }
        });
        events.wait("ready", |_| true).await;
        events
    }

    fn all(&self) -> Vec<(String, Value)> {
        self.0.lock().unwrap().clone()
    }

    /// Waits for an event named `name` whose data satisfies `matches`.
    async fn wait(&self, name: &str, matches: impl Fn(&Value) -> bool) -> Value {
        eventually(&format!("event `{name}` on the stream"), || {
            let found = self
                .all()
                .into_iter()
                .find(|(n, d)| n == name && matches(d))
                .map(|(_, d)| d);
            async move { found }
        })
        .await
    }
}

/// A command that routing answers at once: 200 with `"result": "ok"`.
async fn ok(answer: Answer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["result"], "ok", "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_conversation_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = twilio_api().await;
    let config = config(dir.path(), &twilio.uri());
    whole_conversation(dir.path(), &config, &twilio).await;
}

/// The same conversation with the store on PostgreSQL (a fresh schema of
/// `SWITCHBOARD_TEST_DATABASE_URL`; says it did not run without one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_whole_conversation_through_the_api() {
    let Some(schema) = test_schema().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let twilio = twilio_api().await;
    let config = config(dir.path(), &twilio.uri());
    use_store(&config, schema.url());
    whole_conversation(dir.path(), &config, &twilio).await;
}

/// Every route of the API along one conversation, on the store `config` names.
async fn whole_conversation(dir: &Path, config: &Path, twilio: &MockServer) {
    let gateway = start(dir, config);
    let addr = gateway.addr;

    // --- authentication and authorization -------------------------------------------------
    let none = api(addr, "GET", "/conversations", None, None).await;
    assert_eq!(
        (none.status, none.error_code().as_str()),
        (401, "unauthorized")
    );
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert!(
        none.header("x-request-id")
            .is_some_and(|id| id.parse::<u64>().is_ok())
    );
    let wrong = api(
        addr,
        "GET",
        "/conversations",
        Some("sbt_guess_0123456789abc"),
        None,
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (401, "unauthorized")
    );
    let basic = http(
        addr,
        "GET",
        "/api/v1/conversations",
        &[("Authorization", format!("Basic {ANNA}"))],
        b"",
    )
    .await;
    assert_eq!(basic.status, 401);
    let other = api(
        addr,
        "PUT",
        "/agents/ben/state",
        Some(ANNA),
        Some(json!({"availability": "available"})),
    )
    .await;
    assert_eq!(
        (other.status, other.error_code().as_str()),
        (403, "forbidden")
    );
    let other = api(addr, "GET", "/conversations?agent=ben", Some(ANNA), None).await;
    assert_eq!(
        (other.status, other.error_code().as_str()),
        (403, "forbidden")
    );
    let ids: Vec<u64> = [
        api(addr, "GET", "/agents", Some(ADMIN), None).await,
        api(addr, "GET", "/agents", Some(ADMIN), None).await,
    ]
    .iter()
    .map(|a| a.header("x-request-id").unwrap().parse().unwrap())
    .collect();
    assert!(ids[1] > ids[0], "request ids increase: {ids:?}");

    // --- anna signs in: event stream, available -------------------------------------------
    let anna_events = Events::open(addr, ANNA).await;
    let admin_events = Events::open(addr, ADMIN).await;
    ok(api(
        addr,
        "PUT",
        "/agents/anna/state",
        Some(ANNA),
        Some(json!({"availability": "available"})),
    )
    .await)
    .await;
    let agents = api(addr, "GET", "/agents", Some(ANNA), None).await.json();
    assert_eq!(
        agents["agents"],
        json!([{"id": "anna", "name": null, "availability": "available", "active": [], "last_assigned": null}])
    );
    let all = api(addr, "GET", "/agents", Some(ADMIN), None).await.json();
    assert_eq!(all["agents"].as_array().unwrap().len(), 2);
    assert_eq!(all["agents"][1]["availability"], "offline");

    // --- a customer writes; anna is offered the conversation on her stream ----------------
    customer_writes(addr, "SMin0001", "+14155238886", "Hi, my order is late").await;
    let offer = anna_events.wait("offer", |d| d["agent"] == "anna").await;
    let conv = offer["conversation"].as_str().unwrap().to_owned();
    assert_eq!(offer["queue"], "support");
    assert_eq!(offer["kind"], "queue");
    let inbound = anna_events
        .wait("message", |d| {
            d["direction"] == "in" && d["conversation"] == conv.as_str()
        })
        .await;
    assert_eq!(inbound["content"]["text"], "Hi, my order is late");

    // Listing and filtering.
    let queued = api(
        addr,
        "GET",
        "/conversations?state=queued&queue=support&channel=twilio-main",
        Some(ADMIN),
        None,
    )
    .await
    .json();
    assert_eq!(queued["conversations"][0]["id"], conv.as_str());
    assert_eq!(queued["conversations"][0]["customer"], "+14155238886");
    let elsewhere = api(addr, "GET", "/conversations?queue=sales", Some(ADMIN), None)
        .await
        .json();
    assert_eq!(elsewhere["conversations"], json!([]));
    let mine = api(addr, "GET", "/conversations", Some(ANNA), None)
        .await
        .json();
    assert_eq!(mine["conversations"], json!([]), "offered is not yet hers");
    let offered = api(
        addr,
        "GET",
        &format!("/conversations/{conv}"),
        Some(ANNA),
        None,
    )
    .await;
    assert_eq!(offered.status, 200, "{}", offered.body);
    assert_eq!(offered.json()["conversation"]["phase"]["phase"], "offered");
    let not_bens = api(
        addr,
        "GET",
        &format!("/conversations/{conv}"),
        Some(BEN),
        None,
    )
    .await;
    assert_eq!(
        (not_bens.status, not_bens.error_code().as_str()),
        (403, "forbidden")
    );

    // --- accept; a second accept is refused with the engine's reason -----------------------
    ok(api(
        addr,
        "POST",
        &format!("/conversations/{conv}/accept"),
        Some(ANNA),
        None,
    )
    .await)
    .await;
    let again = api(
        addr,
        "POST",
        &format!("/conversations/{conv}/accept"),
        Some(ANNA),
        None,
    )
    .await;
    assert_eq!(
        (again.status, again.error_code().as_str()),
        (409, "refused")
    );
    assert!(
        again.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("accept"),
        "{}",
        again.body
    );
    admin_events
        .wait("command_refused", |d| d["command"] == "accept")
        .await;
    let mine = api(addr, "GET", "/conversations", Some(ANNA), None)
        .await
        .json();
    assert_eq!(mine["conversations"][0]["state"], "assigned");
    assert_eq!(mine["conversations"][0]["agent"], "anna");

    // --- reply: the text reaches the Twilio API -------------------------------------------
    ok(api(
        addr,
        "POST",
        &format!("/conversations/{conv}/messages"),
        Some(ANNA),
        Some(json!({"content": {"type": "text", "text": "Sorry! Checking (#42) now."}})),
    )
    .await)
    .await;
    eventually("the reply reached the Twilio API", || async {
        twilio_sends(twilio)
            .await
            .iter()
            .any(|form| {
                form.contains(&("Body".into(), "Sorry! Checking (#42) now.".into()))
                    && form.contains(&("To".into(), "whatsapp:+14155238886".into()))
            })
            .then_some(())
    })
    .await;
    anna_events
        .wait("message", |d| {
            d["direction"] == "out" && d["content"]["text"] == "Sorry! Checking (#42) now."
        })
        .await;
    let reply_sid = eventually("the reply is sent with the provider's id", || async {
        let body = api(
            addr,
            "GET",
            &format!("/conversations/{conv}"),
            Some(ANNA),
            None,
        )
        .await
        .json();
        body["messages"].as_array().unwrap().iter().find_map(|m| {
            (m["content"]["text"] == "Sorry! Checking (#42) now." && m["state"] == "sent")
                .then(|| m["provider_message_id"].as_str().map(str::to_owned))
                .flatten()
        })
    })
    .await;

    // A signed delivery status: on the stream and in the conversation.
    status_callback(addr, &reply_sid, "+14155238886", "delivered").await;
    let status = anna_events
        .wait("status", |d| d["provider_message_id"] == reply_sid.as_str())
        .await;
    assert_eq!(status["delivery"]["status"], "delivered");
    assert_eq!(status["conversation"], conv.as_str());
    let detail = api(
        addr,
        "GET",
        &format!("/conversations/{conv}"),
        Some(ANNA),
        None,
    )
    .await
    .json();
    let messages = detail["messages"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap(),
                m["content"]["text"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("in", "Hi, my order is late"),
            ("out", "Hello from the gateway!"),
            ("out", "Sorry! Checking (#42) now."),
        ]
    );
    assert_eq!(messages[0]["from"], "+14155238886");
    assert_eq!(messages[2]["delivery"]["status"], "delivered");
    assert_eq!(detail["conversation"]["agent"], "anna");

    // --- transfer to ben (an admin makes ben available and accepts as ben) ----------------
    let refused = api(
        addr,
        "POST",
        &format!("/conversations/{conv}/transfer"),
        Some(ANNA),
        Some(json!({"target": {"type": "agent", "agent": "ben"}})),
    )
    .await;
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (409, "refused"),
        "ben is offline"
    );
    let no_agent = api(
        addr,
        "PUT",
        "/agents/ben/state",
        Some(ADMIN),
        Some(json!({"availability": "rona"})),
    )
    .await;
    assert_eq!(no_agent.error_code(), "invalid_request");
    ok(api(
        addr,
        "PUT",
        "/agents/ben/state",
        Some(ADMIN),
        Some(json!({"availability": "available"})),
    )
    .await)
    .await;
    ok(api(
        addr,
        "POST",
        &format!("/conversations/{conv}/transfer"),
        Some(ANNA),
        Some(json!({"target": {"type": "agent", "agent": "ben"}})),
    )
    .await)
    .await;
    admin_events
        .wait("offer", |d| d["agent"] == "ben" && d["kind"] == "transfer")
        .await;
    let unnamed = api(
        addr,
        "POST",
        &format!("/conversations/{conv}/accept"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        unnamed.error_code(),
        "invalid_request",
        "an admin names the agent"
    );
    ok(api(
        addr,
        "POST",
        &format!("/conversations/{conv}/accept"),
        Some(ADMIN),
        Some(json!({"agent": "ben"})),
    )
    .await)
    .await;
    let bens = api(addr, "GET", "/conversations?agent=ben", Some(ADMIN), None)
        .await
        .json();
    assert_eq!(bens["conversations"][0]["id"], conv.as_str());

    // Anna's stream carries only anna's events: a second customer's offer to anna arrives
    // after ben's transfer offer was published, and nothing of ben's came before it.
    customer_writes(addr, "SMin0002", "+4930123456", "Hallo").await;
    let second = anna_events
        .wait("offer", |d| d["conversation"] != conv.as_str())
        .await;
    assert_eq!(second["agent"], "anna");
    for (name, data) in anna_events.all() {
        assert_ne!(data["agent"], "ben", "anna saw ben's {name}: {data}");
    }

    // --- end: dispositions are mandatory -------------------------------------------------
    let bare = api(
        addr,
        "POST",
        &format!("/conversations/{conv}/end"),
        Some(BEN),
        Some(json!({})),
    )
    .await;
    assert_eq!((bare.status, bare.error_code().as_str()), (409, "refused"));
    ok(api(
        addr,
        "POST",
        &format!("/conversations/{conv}/end"),
        Some(BEN),
        Some(json!({"dispositions": ["resolved"]})),
    )
    .await)
    .await;
    let ended = admin_events
        .wait("conversation_ended", |d| d["conversation"] == conv.as_str())
        .await;
    assert_eq!(
        (ended["reason"].as_str(), ended["agent"].as_str()),
        (Some("agent"), Some("ben"))
    );
    assert_eq!(ended["dispositions"], json!(["Resolved"]));

    let transcript = api(
        addr,
        "GET",
        &format!("/conversations/{conv}/transcript"),
        Some(BEN),
        None,
    )
    .await;
    assert_eq!(transcript.status, 200, "{}", transcript.body);
    let transcript = transcript.json();
    assert_eq!(
        (
            transcript["state"].as_str(),
            transcript["end_reason"].as_str()
        ),
        (Some("ended"), Some("agent"))
    );
    let entries = transcript["entries"].as_array().unwrap();
    assert_eq!(entries[0]["from"]["type"], "customer");
    assert_eq!(entries[0]["content"]["text"], "Hi, my order is late");
    assert!(
        entries
            .iter()
            .any(|e| e["from"] == json!({"type": "agent", "id": "anna"})
                && e["content"]["text"] == "Sorry! Checking (#42) now.")
    );
    let last = transcript["writes"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["trigger"].as_str(), last["reason"].as_str()),
        (Some("ended"), Some("agent"))
    );
    assert_eq!(last["dispositions"], json!(["Resolved"]));
    assert_eq!(last["agent"], "ben");

    // --- contact search by fragments, symbols included ------------------------------------
    for q in [
        "523-88",
        "4155238886",
        "(415)",
        "%2B1415",
        "%2B1%20(415)%20523-8886",
        "kim",
    ] {
        let found = api(addr, "GET", &format!("/contacts?q={q}"), Some(ANNA), None).await;
        assert_eq!(found.status, 200, "{q}: {}", found.body);
        let ids: Vec<String> = found.json()["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["address"]["id"].as_str().unwrap().to_owned())
            .collect();
        if q == "kim" {
            assert_eq!(ids.len(), 2, "both customers are Kim");
        } else {
            assert_eq!(ids, ["+14155238886"], "query {q}");
        }
    }
    let nobody = api(addr, "GET", "/contacts?q=999", Some(ANNA), None)
        .await
        .json();
    assert_eq!(nobody["contacts"], json!([]));
    let empty = api(addr, "GET", "/contacts?q=", Some(ANNA), None).await;
    assert_eq!(
        (empty.status, empty.error_code().as_str()),
        (400, "invalid_request")
    );

    // --- a proactive template, idempotent, with its delivery status -----------------------
    let template = json!({"type": "template", "name": TEMPLATE_SID, "language": "en",
                          "body": [{"type": "text", "text": "Kim"}]});
    let send = |key: &'static str| {
        let template = template.clone();
        async move {
            let body =
                json!({"channel": "twilio-main", "to": "+1 (415) 523-8886", "content": template});
            http(
                addr,
                "POST",
                "/api/v1/messages",
                &[
                    ("Authorization", format!("Bearer {ADMIN}")),
                    ("Idempotency-Key", key.to_owned()),
                ],
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    let first = send("renewal-2024-kim").await;
    assert_eq!(first.status, 202, "{}", first.body);
    let id = first.json()["id"].as_i64().unwrap();
    assert_eq!(first.json()["created"], true);
    let repeat = send("renewal-2024-kim").await;
    assert_eq!(
        (
            repeat.json()["id"].as_i64(),
            repeat.json()["created"].as_bool()
        ),
        (Some(id), Some(false))
    );
    let sid = eventually("the template was sent", || async {
        let body = api(addr, "GET", &format!("/messages/{id}"), Some(ADMIN), None)
            .await
            .json();
        (body["state"] == "sent").then(|| body["provider_message_id"].as_str().unwrap().to_owned())
    })
    .await;
    let forms = twilio_sends(twilio).await;
    let templated: Vec<_> = forms
        .iter()
        .filter(|f| f.contains(&("ContentSid".into(), TEMPLATE_SID.into())))
        .collect();
    assert_eq!(templated.len(), 1, "sent once despite the repeated request");
    assert!(templated[0].contains(&("To".into(), "whatsapp:+14155238886".into())));
    status_callback(addr, &sid, "+14155238886", "read").await;
    let read = eventually("the read status is merged", || async {
        let body = api(addr, "GET", &format!("/messages/{id}"), Some(ADMIN), None)
            .await
            .json();
        (body["delivery"]["status"] == "read").then_some(body)
    })
    .await;
    assert_eq!(read["to"]["id"], "+14155238886");
    assert_eq!(read["conversation"], Value::Null);
    let text = api(
        addr,
        "POST",
        "/messages",
        Some(ADMIN),
        Some(json!({"channel": "twilio-main", "to": "+14155238886", "content": {"type": "text", "text": "hi"}})),
    )
    .await;
    assert_eq!(
        (text.status, text.error_code().as_str()),
        (400, "invalid_request")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_the_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = twilio_api().await;
    let gateway = start(dir.path(), &config(dir.path(), &twilio.uri()));
    let addr = gateway.addr;

    let cases: Vec<(Answer, u16, &str)> = vec![
        (
            api(addr, "GET", "/conversations/conv_999", Some(ADMIN), None).await,
            404,
            "not_found",
        ),
        (
            api(addr, "GET", "/conversations/nonsense", Some(ADMIN), None).await,
            404,
            "not_found",
        ),
        (
            api(
                addr,
                "POST",
                "/conversations/conv_999/accept",
                Some(ANNA),
                None,
            )
            .await,
            404,
            "not_found",
        ),
        (
            api(
                addr,
                "GET",
                "/conversations/conv_999/transcript",
                Some(ADMIN),
                None,
            )
            .await,
            404,
            "not_found",
        ),
        (
            api(addr, "GET", "/messages/12345", Some(ADMIN), None).await,
            404,
            "not_found",
        ),
        (
            api(addr, "GET", "/conversations?limit=lots", Some(ADMIN), None).await,
            400,
            "invalid_request",
        ),
        (
            api(addr, "GET", "/conversations?colour=red", Some(ADMIN), None).await,
            400,
            "invalid_request",
        ),
        (
            api(addr, "GET", "/conversations?cursor=zzz", Some(ADMIN), None).await,
            400,
            "invalid_request",
        ),
        (
            api(
                addr,
                "PUT",
                "/agents/zoe/state",
                Some(ADMIN),
                Some(json!({"availability": "away"})),
            )
            .await,
            404,
            "not_found",
        ),
        (
            api(
                addr,
                "PUT",
                "/agents/anna/state",
                Some(ANNA),
                Some(json!({"availability": "asleep"})),
            )
            .await,
            400,
            "invalid_request",
        ),
        (
            api(addr, "GET", "/nope", Some(ADMIN), None).await,
            404,
            "not_found",
        ),
        (
            api(addr, "DELETE", "/conversations", Some(ADMIN), None).await,
            405,
            "method_not_allowed",
        ),
        (
            http(
                addr,
                "POST",
                "/api/v1/conversations/conv_1/messages",
                &[
                    ("Authorization", format!("Bearer {ANNA}")),
                    ("Content-Type", "application/json".into()),
                ],
                b"{\"content\": ",
            )
            .await,
            400,
            "invalid_request",
        ),
        (
            api(
                addr,
                "POST",
                "/messages",
                Some(ADMIN),
                Some(json!({"channel": "nope", "to": "+14155238886"})),
            )
            .await,
            400,
            "invalid_request",
        ),
    ];
    for (answer, status, code) in cases {
        assert_eq!(answer.status, status, "{}", answer.body);
        assert_eq!(answer.error_code(), code, "{}", answer.body);
        assert!(answer.header("x-request-id").is_some());
        assert!(
            answer
                .header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
    }
    // The bad JSON answer names the problem.
    let bad = http(
        addr,
        "POST",
        "/api/v1/conversations/conv_1/messages",
        &[("Authorization", format!("Bearer {ANNA}"))],
        b"{\"content\": ",
    )
    .await;
    assert!(
        bad.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON"),
        "{}",
        bad.body
    );
    // Tokens never reach the log.
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap();
    assert!(
        !log.contains(ANNA) && !log.contains(ADMIN),
        "a token was logged"
    );
}
