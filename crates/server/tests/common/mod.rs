//! Helpers shared by the end-to-end tests (`mod common;` in each test file): the real
//! `switchboard serve` binary as a child process, raw HTTP/1.1 exchanges with it, Twilio's
//! webhook signature and a wiremock Twilio Messages API, the SQLite store it writes, a
//! PostgreSQL test schema, and polling until something holds.

#![allow(dead_code, reason = "each test binary uses part of the shared helpers")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use switchboard_store::{SqliteOptions, SqliteStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The Twilio auth token the test configurations read from `SB_TEST_TWILIO_TOKEN`.
pub(crate) const TWILIO_TOKEN: &str = "12345";
/// The Twilio account SID of the test channels.
pub(crate) const ACCOUNT: &str = "AC9f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// The gateway's `public_base_url` (what providers sign).
pub(crate) const PUBLIC: &str = "https://gateway.example.com";

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The wasm target directory shared by `plugin_cli.rs`, `plugins_gateway.rs` and the plugin
/// host's tests (`crates/plugin-host/tests/common`).
pub(crate) fn wasm_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("plugins")
}

/// A running `switchboard serve`; killed when dropped.
pub(crate) struct Gateway {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `switchboard serve --config <config>` with the environment `env` (the secrets the
/// configuration names), stdout piped and stderr appended to `dir/gateway.log`.
pub(crate) fn serve_command(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("gateway.log"))
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log);
    command
}

/// Starts [`serve_command`] and waits for its "listening" line.
pub(crate) fn start(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Gateway {
    let mut child = serve_command(dir, config, env).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("switchboard listening on http://")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line {line:?}; see {}; log:\n{}",
                dir.display(),
                std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default()
            )
        })
        .parse()
        .unwrap();
    Gateway { child, addr }
}

/// One answer: status, headers (lowercase names), body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the API's error shape and returns the code.
    pub(crate) fn error_code(&self) -> String {
        let body = self.json();
        assert!(
            body["error"]["message"].is_string(),
            "error without message: {body}"
        );
        body["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// One HTTP/1.1 exchange over a fresh connection.
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Answer {
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
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// An API call (`/api/v1{path}`) with an optional bearer token and an optional JSON body.
pub(crate) async fn api(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut headers = Vec::new();
    if let Some(token) = token {
        headers.push(("Authorization", format!("Bearer {token}")));
    }
    let bytes = match body {
        Some(body) => {
            headers.push(("Content-Type", "application/json".to_owned()));
            body.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    http(addr, method, &format!("/api/v1{path}"), &headers, &bytes).await
}

/// Twilio's signature: base64 HMAC-SHA1 over the URL and the sorted form parameters.
pub(crate) fn twilio_signature(url: &str, body: &str) -> String {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let mut data = url.to_owned();
    for (k, v) in params {
        data.push_str(&k);
        data.push_str(&v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TWILIO_TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A customer's inbound WhatsApp text through Twilio, as a form body.
pub(crate) fn twilio_inbound(sid: &str, from: &str, text: &str) -> String {
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

/// Posts a Twilio webhook to `/webhooks/{channel}`, signed for the public URL unless
/// `signature` is given.
pub(crate) async fn post_twilio(
    addr: SocketAddr,
    channel: &str,
    body: &str,
    signature: Option<String>,
) -> Answer {
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
}

/// The Twilio Messages API: 201 with a fresh SID each time (after `delay`).
pub(crate) struct TwilioApi {
    next: AtomicU64,
    delay: Duration,
}

impl TwilioApi {
    pub(crate) fn new() -> Self {
        Self::delayed(Duration::ZERO)
    }

    pub(crate) fn delayed(delay: Duration) -> Self {
        TwilioApi {
            next: AtomicU64::new(1),
            delay,
        }
    }
}

impl Respond for TwilioApi {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::json!({
            "account_sid": ACCOUNT, "sid": format!("SM{n:032x}"), "status": "queued",
            "direction": "outbound-api", "error_code": null, "error_message": null
        });
        let template = ResponseTemplate::new(201).set_body_json(body);
        if self.delay.is_zero() {
            template
        } else {
            template.set_delay(self.delay)
        }
    }
}

/// A wiremock server answering the Twilio Messages API with `respond`.
pub(crate) async fn twilio_api_with(respond: impl Respond + 'static) -> MockServer {
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

/// A wiremock server answering the Twilio Messages API with [`TwilioApi`].
pub(crate) async fn twilio_api() -> MockServer {
    twilio_api_with(TwilioApi::new()).await
}

/// The SQLite store of a gateway whose `data_dir` is `dir/data`.
pub(crate) async fn store(dir: &Path) -> SqliteStore {
    let url = format!("sqlite://{}", dir.join("data/switchboard.db").display());
    SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap()
}

/// Points the gateway config at `config` to the store at `url` (appends `[store] url`; the
/// config must not have a `[store]` table of its own).
pub(crate) fn use_store(config: &Path, url: &str) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!("\n[store]\nurl = \"{url}\"\n"));
    std::fs::write(config, text).unwrap();
}

/// A fresh schema of the database `SWITCHBOARD_TEST_DATABASE_URL` names (dropped with it);
/// `None`, after saying the test did not run, without one.
pub(crate) async fn test_schema() -> Option<switchboard_store::suite::TestSchema> {
    let Some(base) = std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        println!("not run: SWITCHBOARD_TEST_DATABASE_URL is not set");
        return None;
    };
    Some(
        switchboard_store::suite::TestSchema::create(&base)
            .await
            .unwrap(),
    )
}

/// What a polled check answers: `true` or `Some(value)` when it holds.
pub(crate) trait Outcome {
    type Value;
    fn done(self) -> Option<Self::Value>;
}

impl Outcome for bool {
    type Value = ();
    fn done(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn done(self) -> Option<T> {
        self
    }
}

const PATIENCE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// Polls the async `check` until it holds (`true` or `Some`; fails after 30 s).
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F) -> <Fut::Output as Outcome>::Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
    Fut::Output: Outcome,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await.done() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Polls the synchronous `check` until it holds (fails after 30 s).
pub(crate) async fn eventually_sync(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}
