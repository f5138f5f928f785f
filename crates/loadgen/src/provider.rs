//! `switchboard-loadgen provider`: a fake Twilio Messages API on loopback for measuring the
//! gateway's outbound sends (`scripts/bench-send`).
//!
//! It answers `POST /2010-04-01/Accounts/{sid}/Messages.json` (a form, as the Twilio connector
//! sends it) with `201` and the JSON the connector's `parse_send_response` reads (`sid` =
//! `SM` + 32 unique hex digits, `status` = `queued`, plus the other fields Twilio returns), after
//! an optional simulated latency. It counts every request, the distinct `To` values and the
//! repeated ones (each benchmark message goes to its own recipient, so a repeat is a double
//! send), and serves the counters as JSON at `GET /stats`.
//!
//! It prints `provider listening on http://ADDR` as its first stdout line, listens on loopback
//! only, and stops by itself after `--duration` seconds.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// `switchboard-loadgen provider`.
#[derive(clap::Args, Debug)]
pub(crate) struct ProviderArgs {
    /// Address to listen on (loopback only; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Simulated provider latency: each answer waits this many milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Runtime worker threads (the gateway and the client share the machine).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Stop after this many seconds (a bound in case nobody stops it).
    #[arg(long, default_value_t = 3600.0)]
    duration: f64,
}

/// The counters served at `GET /stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Every request to the Messages API.
    requests: AtomicU64,
    /// Answered `201` (a message "created").
    created: AtomicU64,
    /// Without an `Authorization: Basic` header.
    unauthenticated: AtomicU64,
    /// Refused: no `To`.
    rejected: AtomicU64,
    /// The `To` values seen, and how many requests repeated one.
    recipients: Mutex<Recipients>,
    /// Makes the message sids unique across runs.
    nonce: u64,
}

#[derive(Debug, Default)]
struct Recipients {
    seen: HashSet<String>,
    repeated: u64,
}

impl Counters {
    fn new(nonce: u64) -> Self {
        Self {
            nonce,
            ..Self::default()
        }
    }

    /// The counters as JSON.
    pub(crate) fn to_json(&self) -> Value {
        let (distinct, repeated) = self
            .recipients
            .lock()
            .map_or((0, 0), |r| (r.seen.len(), r.repeated));
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "created": self.created.load(Ordering::Relaxed),
            "unauthenticated": self.unauthenticated.load(Ordering::Relaxed),
            "rejected": self.rejected.load(Ordering::Relaxed),
            "distinct_to": distinct,
            "repeated_to": repeated,
        })
    }
}

struct Shared {
    counters: Counters,
    latency: Duration,
}

/// The provider's routes over `counters`.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(create_message),
        )
        .route("/stats", get(stats))
        .with_state(shared)
}

/// `POST /2010-04-01/Accounts/{sid}/Messages.json`.
async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let counters = &shared.counters;
    let n = counters.requests.fetch_add(1, Ordering::Relaxed);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Basic "));
    if !basic {
        counters.unauthenticated.fetch_add(1, Ordering::Relaxed);
    }
    let mut to = String::new();
    let mut from = String::new();
    let mut text = Value::Null;
    for (key, value) in form_urlencoded::parse(&body) {
        match key.as_ref() {
            "To" => to = value.into_owned(),
            "From" => from = value.into_owned(),
            "Body" => text = Value::String(value.into_owned()),
            _ => {}
        }
    }
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    if to.is_empty() {
        counters.rejected.fetch_add(1, Ordering::Relaxed);
        let error = json!({
            "code": 21604, "message": "A 'To' phone number is required.",
            "more_info": "https://www.twilio.com/docs/errors/21604", "status": 400
        });
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    if let Ok(mut recipients) = counters.recipients.lock()
        && !recipients.seen.insert(to.clone())
    {
        recipients.repeated += 1;
    }
    counters.created.fetch_add(1, Ordering::Relaxed);
    let sid = format!("SM{:016x}{n:016x}", counters.nonce);
    let answer = json!({
        "account_sid": account_sid, "api_version": "2010-04-01", "body": text,
        "date_created": null, "date_sent": null, "date_updated": null,
        "direction": "outbound-api", "error_code": null, "error_message": null,
        "from": from, "messaging_service_sid": null, "num_media": "0", "num_segments": "1",
        "price": null, "price_unit": "USD", "sid": sid, "status": "queued", "to": to,
        "uri": format!("/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"),
    });
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// `GET /stats`.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.counters.to_json()).into_response()
}

/// Runs the provider until `--duration` has passed.
pub(crate) fn run(args: &ProviderArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "`{}` is not a loopback address: the fake provider listens locally only",
            args.listen
        );
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("--duration must be a positive number of seconds");
    }
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(40);
    let shared = Arc::new(Shared {
        counters: Counters::new(nonce),
        latency: Duration::from_millis(args.latency_ms),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .thread_name("provider")
        .enable_all()
        .build()?;
    let bound = Duration::from_secs_f64(args.duration);
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        // The first stdout line: scripts read the address from it (stdout is line-buffered).
        println!("provider listening on http://{addr}");
        axum::serve(listener, router(shared.clone()))
            .with_graceful_shutdown(tokio::time::sleep(bound))
            .await?;
        println!(
            "provider stopped after {bound:?}: {}",
            shared.counters.to_json()
        );
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::load::connect;
    use http_body_util::{BodyExt, Full};

    /// A form POST the way the Twilio connector sends one.
    async fn send(addr: SocketAddr, to: &str) -> (u16, Value) {
        let mut sender = connect(addr).await.unwrap();
        let request = hyper::Request::post("/2010-04-01/Accounts/AC1/Messages.json")
            .header("host", addr.to_string())
            .header("authorization", "Basic eDp5")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(bytes::Bytes::from(format!(
                "To={}&From=%2B15550000000&ContentSid=HX1",
                to.replace('+', "%2B")
            ))))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn answers_like_twilio_and_counts_repeats() {
        let shared = Arc::new(Shared {
            counters: Counters::new(7),
            latency: Duration::ZERO,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, router(shared)).into_future());

        let (status, first) = send(addr, "whatsapp:+15550000001").await;
        assert_eq!(status, 201);
        let sid = first["sid"].as_str().unwrap();
        assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
        assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(first["status"], "queued");
        assert_eq!(first["to"], "whatsapp:+15550000001");
        let (_, second) = send(addr, "whatsapp:+15550000002").await;
        assert_ne!(second["sid"], first["sid"]);
        let (status, _) = send(addr, "whatsapp:+15550000001").await;
        assert_eq!(status, 201);

        let mut client =
            Client::new(addr, &addr.to_string(), None, Duration::from_secs(5)).unwrap();
        let (status, body) = client.get("/stats").await.unwrap();
        assert_eq!(status, 200);
        let stats: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(stats["requests"], 3);
        assert_eq!(stats["created"], 3);
        assert_eq!(stats["distinct_to"], 2);
        assert_eq!(stats["repeated_to"], 1);
        assert_eq!(stats["unauthenticated"], 0);
    }
}
