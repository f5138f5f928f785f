//! End to end: the real `switchboard serve` binary on a free loopback port with a temporary
//! data directory; signed Twilio and Meta webhooks as the providers send them; the Twilio API
//! played by wiremock; the store read back from the same SQLite file (and, for the core flows,
//! from a PostgreSQL schema when `SWITCHBOARD_TEST_DATABASE_URL` is set).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{
    ACCOUNT, Answer, Gateway, PUBLIC, TWILIO_TOKEN, eventually, http, post_twilio, store,
    test_schema, twilio_api, twilio_inbound, twilio_signature, use_store,
};
use hmac::{Hmac, Mac};
use switchboard_store::{OutboxState, SqliteOptions, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const META_SECRET: &str = "test_app_secret";

fn config(dir: &Path, api: &str, max_body: usize) -> PathBuf {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
public_base_url = "{PUBLIC}"
data_dir = "{data}"

[limits]
max_body_bytes = {max_body}

[transport]
dangerous_allow_loopback_for_tests = true

[workers]
send_lease_secs = 3
routing_lease_secs = 3

[[channels]]
id = "twilio-main"
connector = "twilio"
settings = {{ account_sid = "{ACCOUNT}", from = "+14155238886", base_url = "{api}" }}
secrets = {{ auth_token = "env:SB_TEST_TWILIO_TOKEN" }}

[[channels]]
id = "wa-main"
connector = "meta-whatsapp"
settings = {{ phone_number_id = "277321005464405", waba_id = "264937493375603" }}
secrets = {{ app_secret = "env:SB_TEST_META_SECRET", verify_token = "env:SB_TEST_META_VERIFY", access_token = "env:SB_TEST_META_TOKEN" }}

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
            ("SB_TEST_META_SECRET", META_SECRET),
            ("SB_TEST_META_VERIFY", "test_verify_token"),
            ("SB_TEST_META_TOKEN", "test_access_token"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_webhook_is_acknowledged_after_commit_stored_once_and_routed_to_a_reply() {
    let dir = tempfile::tempdir().unwrap();
    let api = twilio_api().await;
    let gateway = start(dir.path(), &config(dir.path(), &api.uri(), 64 * 1024));

    // The recorded fixture, signed by Twilio for the public URL; the gateway sees a loopback
    // URL and rebuilds the public one.
    let case: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/twilio/inbound_whatsapp_text.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let body = case["request"]["body"].as_str().unwrap();
    let signature = case["request"]["headers"][0][1]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let Answer {
            status,
            body: reply,
            ..
        } = post_twilio(gateway.addr, "twilio-main", body, Some(signature.clone())).await;
        assert_eq!(status, 200);
        assert_eq!(
            reply,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
    }
    let store = store(dir.path()).await;
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.events, counts.dedupe_keys), (1, 1), "stored once");

    // Routing greets the customer through the Twilio API.
    eventually("the greeting reached the Twilio API", || async {
        !api.received_requests().await.unwrap_or_default().is_empty()
    })
    .await;
    let requests = api.received_requests().await.unwrap();
    let sent = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(sent.contains("Hello+from+the+gateway"), "{sent}");
    assert!(sent.contains("whatsapp%3A%2B14017122661"), "{sent}");
    eventually("the outbox row is marked sent", || async {
        let jobs = store.outbox_jobs().await.unwrap();
        !jobs.is_empty() && jobs.iter().all(|j| j.state == OutboxState::Sent)
    })
    .await;
    let out: Vec<_> = store
        .messages("twilio-main")
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == "out")
        .collect();
    assert!(out.iter().all(|m| m.provider_message_id.is_some()));

    // A delivered status for that message merges into it.
    let sid = out[0].provider_message_id.clone().unwrap();
    let status_body = form_urlencoded::Serializer::new(String::new())
        .append_pair("MessageSid", &sid)
        .append_pair("MessageStatus", "delivered")
        .append_pair("AccountSid", ACCOUNT)
        .append_pair("From", "whatsapp:+14155238886")
        .append_pair("To", "whatsapp:+14017122661")
        .finish();
    assert_eq!(
        post_twilio(gateway.addr, "twilio-main", &status_body, None)
            .await
            .status,
        200
    );
    let delivered = store
        .messages("twilio-main")
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.provider_message_id.as_deref() == Some(sid.as_str()))
        .unwrap();
    assert_eq!(
        delivered.delivery.unwrap().status,
        switchboard_core::DeliveryStatus::Delivered
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_status_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let api = twilio_api().await;
    let gateway = start(dir.path(), &config(dir.path(), &api.uri(), 64 * 1024));
    let body = twilio_inbound("SMbad1", "+15550001111", "hi");

    let Answer {
        status,
        body: reply,
        ..
    } = post_twilio(gateway.addr, "twilio-main", &body, Some("AAAA".into())).await;
    assert_eq!(
        (status, reply.as_str()),
        (401, ""),
        "no detail on auth failure"
    );
    let Answer { status, .. } = http(
        gateway.addr,
        "POST",
        "/webhooks/twilio-main",
        &[],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 401, "unsigned");
    let Answer { status, .. } =
        http(gateway.addr, "POST", "/webhooks/nope", &[], body.as_bytes()).await;
    assert_eq!(status, 404);
    let big = vec![b'a'; 100 * 1024];
    let Answer { status, .. } =
        http(gateway.addr, "POST", "/webhooks/twilio-main", &[], &big).await;
    assert_eq!(status, 413, "the size limit comes first");
    let Answer { status, .. } = http(gateway.addr, "POST", "/webhooks/nope", &[], &big).await;
    assert_eq!(status, 413, "even before the channel lookup");
    // Signed but not a message (no MessageSid).
    let malformed = "AccountSid=AC9f8e7d6c5b4a39281706f5e4d3c2b1a0&Body=hi";
    assert_eq!(
        post_twilio(gateway.addr, "twilio-main", malformed, None)
            .await
            .status,
        400
    );

    // Meta: the GET handshake answers the challenge; a tampered POST is refused.
    let Answer { status, body: reply, .. } = http(
        gateway.addr,
        "GET",
        "/webhooks/wa-main?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=test_verify_token",
        &[],
        b"",
    )
    .await;
    assert_eq!((status, reply.as_str()), (200, "1158201444"));
    let meta_body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let Answer { status, .. } = http(
        gateway.addr,
        "POST",
        "/webhooks/wa-main",
        &[("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))],
        meta_body,
    )
    .await;
    assert_eq!(status, 401);

    let counts = store(dir.path()).await.counts().await.unwrap();
    assert_eq!(
        (counts.events, counts.dedupe_keys, counts.messages),
        (0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_signed_webhook_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let api = twilio_api().await;
    let gateway = start(dir.path(), &config(dir.path(), &api.uri(), 64 * 1024));
    let case: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/meta/wa_m2_signature_vector_text.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // Re-sign the recorded body with this channel's secret (the body bytes are kept as sent).
    let body = case["request"]["body"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(META_SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let headers = [
        ("Content-Type", "application/json".to_owned()),
        ("X-Hub-Signature-256", signature),
    ];
    for _ in 0..2 {
        let Answer { status, .. } =
            http(gateway.addr, "POST", "/webhooks/wa-main", &headers, &body).await;
        assert_eq!(status, 200);
    }
    let store = store(dir.path()).await;
    let counts = store.counts().await.unwrap();
    assert!(counts.events >= 1);
    assert_eq!(
        counts.events, counts.dedupe_keys,
        "the retry stored nothing"
    );
    let Answer { status, .. } =
        http(gateway.addr, "POST", "/webhooks/wa-main", &headers, &body).await;
    assert_eq!(status, 200);
    // Routing jobs are consumed meanwhile; what ingest writes must not change.
    let again = store.counts().await.unwrap();
    assert_eq!(
        (again.events, again.messages, again.dedupe_keys),
        (counts.events, counts.messages, counts.dedupe_keys)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_webhooks_survive_sigkill_once_and_pending_sends_resume() {
    const N: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let api = twilio_api().await;
    let config = config(dir.path(), &api.uri(), 64 * 1024);
    let bodies: Vec<String> = (0..N)
        .map(|i| twilio_inbound(&format!("SMkill{i:04}"), &format!("+1555000{i:04}"), "hi"))
        .collect();

    let mut first = start(dir.path(), &config);
    for body in &bodies {
        assert_eq!(
            post_twilio(first.addr, "twilio-main", body, None)
                .await
                .status,
            200
        );
    }
    // SIGKILL: no shutdown path runs.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    drop(first);

    let second = start(dir.path(), &config);
    let store = store(dir.path()).await;
    let counts = store.counts().await.unwrap();
    assert_eq!(
        counts.events as usize, N,
        "every acknowledged webhook is there"
    );
    let inbound = store
        .messages("twilio-main")
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == "in")
        .count();
    assert_eq!(inbound, N, "once each");
    // Redelivered by the provider after the restart: acknowledged, nothing new.
    for body in bodies.iter().take(5) {
        assert_eq!(
            post_twilio(second.addr, "twilio-main", body, None)
                .await
                .status,
            200
        );
    }
    assert_eq!(store.counts().await.unwrap().events as usize, N);

    // Routing and sending finish after the restart: every conversation greeted, each outbox
    // job sent once (or recorded as unknown if the kill hit it mid-send), nothing stuck.
    eventually("routing jobs drained and outbox settled", || async {
        let c = store.counts().await.unwrap();
        let jobs = store.outbox_jobs().await.unwrap();
        if std::env::var_os("SB_TEST_DEBUG").is_some() {
            let states: Vec<_> = jobs.iter().map(|j| j.state).collect();
            eprintln!("{c:?} {states:?}");
        }
        c.routing_jobs == 0
            && jobs.len() >= N
            && jobs
                .iter()
                .all(|j| matches!(j.state, OutboxState::Sent | OutboxState::Unknown))
    })
    .await;
    let jobs = store.outbox_jobs().await.unwrap();
    let sent = jobs.iter().filter(|j| j.state == OutboxState::Sent).count();
    let received = api.received_requests().await.unwrap().len();
    let unknown = jobs.len() - sent;
    assert!(
        received >= sent && received <= sent + unknown,
        "no job sent twice: {received} requests for {sent} sent + {unknown} unknown"
    );
    let mut keys: Vec<_> = jobs
        .iter()
        .map(|j| j.message.idempotency_key.clone())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), jobs.len());
}

#[test]
fn a_bad_config_fails_at_start_listing_every_problem_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
listen = "everywhere"
[[channels]]
id = "tw"
connector = "twilio"
secrets = { auth_token = "env:SB_TEST_SURELY_UNSET_VAR" }
[[routing.accounts]]
id = "ghost"
channel = "sms"
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for field in [
        "listen:",
        "channels[0].secrets.auth_token:",
        "channels[0].settings.",
        "routing.accounts[0].id:",
    ] {
        assert!(stderr.contains(field), "{field} missing in:\n{stderr}");
    }
}

/// A config whose requests must arrive within one second.
fn impatient_config(dir: &Path, api: &str) -> PathBuf {
    let path = config(dir, api, 64 * 1024);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[limits]\n", "[limits]\nrequest_timeout_secs = 1\n");
    std::fs::write(&path, text).unwrap();
    path
}

/// Slowloris: a client that sends its headers or its body a little at a time is cut off, gets
/// no 2xx, and nothing of its request is stored; other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let api = twilio_api().await;
    let gateway = start(dir.path(), &impatient_config(dir.path(), &api.uri()));
    let body = twilio_inbound("SMslow0000000000000000000000000001", "+15550001111", "hi");
    let signature = twilio_signature(&format!("{PUBLIC}/webhooks/twilio-main"), &body);

    // The whole head, then the body one byte every 300 ms.
    let slow_body = {
        let addr = gateway.addr;
        let body = body.clone();
        let signature = signature.clone();
        tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /webhooks/twilio-main HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 X-Twilio-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            for byte in body.as_bytes() {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response).await;
            String::from_utf8_lossy(&response).into_owned()
        })
    };
    // The head itself, one byte every 300 ms.
    let slow_head = {
        let addr = gateway.addr;
        tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /webhooks/twilio-main HTTP/1.1\r\nHost: {addr}\r\nX-Padding: {}\r\n",
                "x".repeat(200)
            );
            let started = std::time::Instant::now();
            for byte in head.as_bytes() {
                if stream.write_all(&[*byte]).await.is_err() {
                    return started.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            started.elapsed()
        })
    };

    // Meanwhile a normal webhook is served.
    let ok = twilio_inbound(
        "SMfast0000000000000000000000000001",
        "+15550002222",
        "hello",
    );
    assert_eq!(
        post_twilio(gateway.addr, "twilio-main", &ok, None)
            .await
            .status,
        200
    );

    let answer = tokio::time::timeout(Duration::from_secs(30), slow_body)
        .await
        .expect("the slow body was not cut off")
        .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a request slower than the limit gets 408, got {answer:?}"
    );
    let spent = tokio::time::timeout(Duration::from_secs(60), slow_head)
        .await
        .expect("the slow head was not cut off")
        .unwrap();
    assert!(
        spent < Duration::from_secs(10),
        "the server kept a dribbling head open for {spent:?}"
    );

    let store = store(dir.path()).await;
    let messages = store.messages("twilio-main").await.unwrap();
    let ids: Vec<_> = messages
        .iter()
        .filter_map(|m| m.provider_message_id.as_deref())
        .collect();
    assert!(ids.contains(&"SMfast0000000000000000000000000001"));
    assert!(
        !ids.contains(&"SMslow0000000000000000000000000001"),
        "{ids:?}"
    );
}

/// The same webhook delivered many times at once (a provider retrying while the first attempt
/// is still in flight) is stored once; every delivery is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_deliveries_store_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let api = twilio_api().await;
    let gateway = start(dir.path(), &config(dir.path(), &api.uri(), 64 * 1024));
    let body = twilio_inbound("SMdup00000000000000000000000000001", "+15550003333", "once");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let addr = gateway.addr;
        let body = body.clone();
        tasks.spawn(async move { post_twilio(addr, "twilio-main", &body, None).await.status });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let store = store(dir.path()).await;
    let copies = store
        .messages("twilio-main")
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.provider_message_id.as_deref() == Some("SMdup00000000000000000000000000001"))
        .count();
    assert_eq!(copies, 1);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.events, counts.dedupe_keys), (1, 1));
}

// ---- The core flows on PostgreSQL (when SWITCHBOARD_TEST_DATABASE_URL names a database) ----

/// A config like [`config`] whose `[store] url` is a fresh schema of the test database, the
/// schema (dropped with it) and the store read back through `switchboard_store::open`; `None`
/// (the test then says it did not run) without a database.
async fn on_postgres(
    dir: &Path,
    api: &str,
) -> Option<(
    PathBuf,
    switchboard_store::suite::TestSchema,
    Arc<dyn Store>,
)> {
    let schema = test_schema().await?;
    let path = config(dir, api, 64 * 1024);
    use_store(&path, schema.url());
    let store = switchboard_store::open(schema.url(), SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(store.backend(), "postgres");
    Some((path, schema, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_webhook_is_stored_once_and_routed_to_a_reply() {
    let dir = tempfile::tempdir().unwrap();
    let api = twilio_api().await;
    let Some((config, _schema, store)) = on_postgres(dir.path(), &api.uri()).await else {
        return;
    };
    let gateway = start(dir.path(), &config);
    let body = twilio_inbound("SMpg0001", "+14017122661", "hello");
    for _ in 0..3 {
        assert_eq!(
            post_twilio(gateway.addr, "twilio-main", &body, None)
                .await
                .status,
            200
        );
    }
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.events, counts.dedupe_keys), (1, 1), "stored once");
    eventually("the greeting was sent and recorded", || async {
        let jobs = store.outbox_jobs().await.unwrap();
        !jobs.is_empty() && jobs.iter().all(|j| j.state == OutboxState::Sent)
    })
    .await;
    let requests = api.received_requests().await.unwrap();
    let sent = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(sent.contains("Hello+from+the+gateway"), "{sent}");
    let messages = store.messages("twilio-main").await.unwrap();
    assert_eq!(messages.iter().filter(|m| m.direction == "in").count(), 1);
    assert!(
        messages
            .iter()
            .filter(|m| m.direction == "out")
            .all(|m| m.provider_message_id.is_some())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_acknowledged_webhooks_survive_sigkill_and_sends_resume() {
    const N: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let api = twilio_api().await;
    let Some((config, _schema, store)) = on_postgres(dir.path(), &api.uri()).await else {
        return;
    };
    let bodies: Vec<String> = (0..N)
        .map(|i| twilio_inbound(&format!("SMpgkill{i:04}"), &format!("+1555100{i:04}"), "hi"))
        .collect();
    let mut first = start(dir.path(), &config);
    for body in &bodies {
        assert_eq!(
            post_twilio(first.addr, "twilio-main", body, None)
                .await
                .status,
            200
        );
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    drop(first);

    let second = start(dir.path(), &config);
    assert_eq!(store.counts().await.unwrap().events as usize, N, "all kept");
    for body in bodies.iter().take(3) {
        assert_eq!(
            post_twilio(second.addr, "twilio-main", body, None)
                .await
                .status,
            200
        );
    }
    assert_eq!(
        store.counts().await.unwrap().events as usize,
        N,
        "once each"
    );
    eventually("routing drained and the outbox settled", || async {
        let c = store.counts().await.unwrap();
        let jobs = store.outbox_jobs().await.unwrap();
        c.routing_jobs == 0
            && jobs.len() >= N
            && jobs
                .iter()
                .all(|j| matches!(j.state, OutboxState::Sent | OutboxState::Unknown))
    })
    .await;
    let jobs = store.outbox_jobs().await.unwrap();
    let sent = jobs.iter().filter(|j| j.state == OutboxState::Sent).count();
    let received = api.received_requests().await.unwrap().len();
    assert!(
        received >= sent && received <= jobs.len(),
        "no job sent twice: {received} requests for {sent} sent of {}",
        jobs.len()
    );
}
