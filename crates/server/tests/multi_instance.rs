//! Several gateways on one PostgreSQL database (runs when `SWITCHBOARD_TEST_DATABASE_URL` names
//! a database; prints that it did not run otherwise).
//!
//! Three real `switchboard serve` processes share a fresh schema. A Twilio channel's routing
//! account greets each new contact, so every contact makes one outbox send; the Twilio API is
//! one wiremock server recording every send. A stream of signed webhooks from distinct
//! contacts is spread round-robin over the three, and one instance is SIGKILLed mid-stream;
//! like a provider, the sender retries a delivery that failed (connection error, 5xx) on
//! another instance. Then: every message is stored exactly once, every contact is greeted
//! exactly once (or its send is recorded as `unknown`, never sent twice), and no routing job or
//! pending send is left. Prints the lease reclaim time: from the kill until the work the
//! killed instance had claimed was done by the others.
//!
//! And agents' event streams see every instance's events: a delivery status ingested by one
//! instance (announced by the instance that ingested it) reaches an admin's stream opened on
//! another.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    ACCOUNT, Gateway, PUBLIC, TWILIO_TOKEN, TwilioApi, eventually_sync, test_schema,
    twilio_api_with, twilio_signature,
};
use sqlx::{Connection, PgConnection};
use switchboard_store::{OutboxState, SqliteOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "admin-token-for-tests";
/// Webhooks (= contacts = greetings) in the stream.
const N: usize = 150;
/// Webhooks in flight at once.
const CONCURRENCY: usize = 6;
/// The instance that is killed.
const VICTIM: usize = 0;

fn config(dir: &Path, store_url: &str, api: &str) -> PathBuf {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
public_base_url = "{PUBLIC}"
data_dir = "{data}"

[store]
url = "{store_url}"

[transport]
dangerous_allow_loopback_for_tests = true

[workers]
send_lease_secs = 2
routing_lease_secs = 2

[[channels]]
id = "twilio-main"
connector = "twilio"
settings = {{ account_sid = "{ACCOUNT}", from = "+14155238886", base_url = "{api}", rate_per_second = 200 }}
secrets = {{ auth_token = "env:SB_TEST_TWILIO_TOKEN" }}

[[api_tokens]]
name = "ops"
role = "admin"
token = "env:SB_TEST_ADMIN"

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
    std::fs::create_dir_all(dir).unwrap();
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
        ],
    )
}

fn contact(i: usize) -> String {
    format!("+1555300{i:04}")
}

/// Contact `i`'s inbound "hi".
fn inbound(i: usize) -> String {
    common::twilio_inbound(&format!("SMmulti{i:06}"), &contact(i), "hi")
}

/// A Twilio status callback for an outbound message.
fn twilio_status(sid: &str, status: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("SmsSid", sid)
        .append_pair("SmsStatus", status)
        .append_pair("MessageStatus", status)
        .append_pair("To", "whatsapp:+15553009999")
        .append_pair("MessageSid", sid)
        .append_pair("AccountSid", ACCOUNT)
        .append_pair("From", "whatsapp:+14155238886")
        .append_pair("ApiVersion", "2010-04-01")
        .finish()
}

/// Opens `GET /api/v1/events` as the admin (HTTP/1.0: the body runs until the connection
/// closes); everything read is appended to the returned text.
async fn open_events(addr: SocketAddr) -> Arc<std::sync::Mutex<String>> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /api/v1/events HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Accept: text/event-stream\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let text = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// Posts one signed webhook over a fresh connection; the status, or `None` when the exchange
/// failed (the instance died, the connection was reset, no answer in time).
async fn post_twilio(addr: SocketAddr, body: &str) -> Option<u16> {
    let signature = twilio_signature(&format!("{PUBLIC}/webhooks/twilio-main"), body);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let head = format!(
            "POST /webhooks/twilio-main HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.ok()?;
        stream.write_all(body.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        text.split(' ').nth(1).and_then(|s| s.parse().ok())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

/// The work a killed gateway process held when it died: routing jobs its driver had claimed
/// and outbox rows its senders were sending (worker ids are `{role}-{pid}-…`).
async fn claimed_by(db: &mut PgConnection, pid: u32) -> (Vec<i64>, Vec<i64>) {
    let jobs: Vec<(i64,)> = sqlx::query_as("SELECT id FROM routing_jobs WHERE claimed_by LIKE $1")
        .bind(format!("routing-{pid}-%"))
        .fetch_all(&mut *db)
        .await
        .unwrap();
    let sends: Vec<(i64,)> =
        sqlx::query_as("SELECT id FROM outbox WHERE state = 'sending' AND claimed_by LIKE $1")
            .bind(format!("sender-{pid}-%"))
            .fetch_all(&mut *db)
            .await
            .unwrap();
    (
        jobs.into_iter().map(|(id,)| id).collect(),
        sends.into_iter().map(|(id,)| id).collect(),
    )
}

/// Whether any of the routing jobs `jobs` is still there or any of the outbox rows `sends` is
/// still `sending`.
async fn still_held(db: &mut PgConnection, jobs: &[i64], sends: &[i64]) -> bool {
    let (held,): (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM routing_jobs WHERE id = ANY($1)) \
              + (SELECT count(*) FROM outbox WHERE id = ANY($2) AND state = 'sending')",
    )
    .bind(jobs)
    .bind(sends)
    .fetch_one(&mut *db)
    .await
    .unwrap();
    held > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed_mid_stream_store_once_send_once_and_leave_nothing_stuck() {
    let Some(schema) = test_schema().await else {
        return;
    };
    let api = twilio_api_with(TwilioApi::delayed(Duration::from_millis(50))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut gateways: Vec<Gateway> = (0..3)
        .map(|n| {
            let home = dir.path().join(format!("gw{n}"));
            let path = config(&home, schema.url(), &api.uri());
            start(&home, &path)
        })
        .collect();
    let addrs: Arc<Vec<SocketAddr>> = Arc::new(gateways.iter().map(|g| g.addr).collect());
    let store = switchboard_store::open(schema.url(), SqliteOptions::default())
        .await
        .unwrap();
    let mut db = PgConnection::connect(schema.url()).await.unwrap();

    // The stream: CONCURRENCY senders over the webhooks, round-robin over the instances; a
    // failed delivery is retried on the next live instance.
    let killed = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (addrs, killed, acked, failed, next) = (
            addrs.clone(),
            killed.clone(),
            acked.clone(),
            failed.clone(),
            next.clone(),
        );
        senders.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= N {
                    return;
                }
                let body = inbound(i);
                let mut target = i;
                let mut tries = 0;
                loop {
                    let instance = target % addrs.len();
                    target += 1;
                    if instance == VICTIM && killed.load(Ordering::SeqCst) {
                        continue;
                    }
                    match post_twilio(addrs[instance], &body).await {
                        Some(200) => break,
                        other => {
                            tries += 1;
                            failed.fetch_add(1, Ordering::SeqCst);
                            assert!(tries < 20, "webhook {i} never acknowledged: {other:?}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                acked.fetch_add(1, Ordering::SeqCst);
            }
        });
    }

    // Mid-stream, SIGKILL one instance and note what it held.
    while acked.load(Ordering::SeqCst) < N / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = gateways[VICTIM].child.id();
    gateways[VICTIM].child.kill().unwrap();
    let killed_at = Instant::now();
    killed.store(true, Ordering::SeqCst);
    gateways[VICTIM].child.wait().unwrap();
    let (held_jobs, held_sends) = claimed_by(&mut db, pid).await;

    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }
    assert_eq!(
        acked.load(Ordering::SeqCst),
        N,
        "every webhook acknowledged"
    );

    // The killed instance's claims are taken over once their lease (2 s) ran out.
    let mut reclaim = None;
    for _ in 0..600 {
        if !still_held(&mut db, &held_jobs, &held_sends).await {
            reclaim = Some(killed_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reclaim = reclaim.expect("the killed instance's claims were never taken over");

    // Nothing stuck: routing drained, every send settled.
    let mut settled = false;
    for _ in 0..600 {
        let counts = store.counts().await.unwrap();
        let jobs = store.outbox_jobs().await.unwrap();
        if counts.routing_jobs == 0
            && jobs.len() >= N
            && jobs
                .iter()
                .all(|j| matches!(j.state, OutboxState::Sent | OutboxState::Unknown))
        {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = store.counts().await.unwrap();
    let jobs = store.outbox_jobs().await.unwrap();
    assert!(
        settled,
        "stuck: {} routing jobs, outbox states {:?}",
        counts.routing_jobs,
        jobs.iter().map(|j| j.state).collect::<Vec<_>>()
    );

    // Every message stored exactly once.
    let messages = store.messages("twilio-main").await.unwrap();
    let mut inbound: HashMap<String, usize> = HashMap::new();
    for m in messages.iter().filter(|m| m.direction == "in") {
        *inbound
            .entry(m.provider_message_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(inbound.len(), N, "every message stored");
    assert!(inbound.values().all(|&n| n == 1), "a message stored twice");
    assert_eq!(counts.events as usize, N, "one event per webhook");

    // Every contact greeted exactly once at the provider, or its send recorded as unknown.
    let mut greeted: HashMap<String, usize> = HashMap::new();
    for request in api.received_requests().await.unwrap() {
        let to = form_urlencoded::parse(&request.body)
            .find(|(k, _)| k == "To")
            .map(|(_, v)| v.trim_start_matches("whatsapp:").to_owned())
            .unwrap_or_default();
        *greeted.entry(to).or_default() += 1;
    }
    let mut rows: HashMap<String, Vec<OutboxState>> = HashMap::new();
    for job in &jobs {
        let to = job.message.to.id.trim_start_matches("whatsapp:").to_owned();
        rows.entry(to).or_default().push(job.state);
    }
    let mut unknown = 0;
    for i in 0..N {
        let who = contact(i);
        let states = rows.get(&who).cloned().unwrap_or_default();
        assert_eq!(
            states.len(),
            1,
            "{who}: one greeting queued, got {states:?}"
        );
        let sends = greeted.get(&who).copied().unwrap_or(0);
        match states[0] {
            OutboxState::Sent => assert_eq!(sends, 1, "{who}: sent {sends} times"),
            OutboxState::Unknown => {
                unknown += 1;
                assert!(sends <= 1, "{who}: an unknown send went out {sends} times");
            }
            other => panic!("{who}: greeting left {other:?}"),
        }
    }
    assert!(
        greeted.keys().all(|to| rows.contains_key(to)),
        "a send to someone never greeted: {greeted:?}"
    );
    let reclaim = if held_jobs.is_empty() && held_sends.is_empty() {
        "n/a (it held no claim when it died)".to_owned()
    } else {
        format!("{:.2} s", reclaim.as_secs_f64())
    };
    println!(
        "multi-instance: {N} webhooks over 3 instances, instance {VICTIM} (pid {pid}) SIGKILLed \
         after {} acks; {} deliveries retried; the killed instance held {} routing jobs and {} \
         sends; lease reclaim time (lease 2 s): {reclaim}; {unknown} sends recorded unknown",
        N / 2,
        failed.load(Ordering::SeqCst),
        held_jobs.len(),
        held_sends.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_announced_on_one_instance_reaches_a_stream_on_another() {
    let Some(schema) = test_schema().await else {
        return;
    };
    let api = twilio_api_with(TwilioApi::delayed(Duration::from_millis(50))).await;
    let dir = tempfile::tempdir().unwrap();
    let gateways: Vec<Gateway> = (0..2)
        .map(|n| {
            let home = dir.path().join(format!("gw{n}"));
            let path = config(&home, schema.url(), &api.uri());
            start(&home, &path)
        })
        .collect();
    let (a, b) = (gateways[0].addr, gateways[1].addr);
    let store = switchboard_store::open(schema.url(), SqliteOptions::default())
        .await
        .unwrap();
    let stream = open_events(b).await;
    eventually_sync("the stream on instance B is ready", || {
        stream.lock().unwrap().contains("event: ready")
    })
    .await;

    // A greeting goes out (whichever instance routes and sends it) …
    assert_eq!(post_twilio(a, &inbound(9999)).await, Some(200));
    let mut sid = None;
    for _ in 0..600 {
        let jobs = store.outbox_jobs().await.unwrap();
        sid = jobs.iter().find_map(|j| j.provider_message_id.clone());
        if sid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sid = sid.expect("the greeting was sent");
    // … and its status, ingested by instance A, is announced by A only: B's stream shows it.
    assert_eq!(
        post_twilio(a, &twilio_status(&sid, "delivered")).await,
        Some(200)
    );
    eventually_sync("the status event on instance B's stream", || {
        let text = stream.lock().unwrap();
        text.contains("event: status") && text.contains(&sid)
    })
    .await;
}
