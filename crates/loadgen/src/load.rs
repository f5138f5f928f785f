//! The load loop: `concurrency` workers, each with one HTTP/1.1 keep-alive connection, take
//! the next prepared webhook from a shared counter until the count or the time bound is reached.
//!
//! Closed loop (no rate): a worker sends its next request as soon as the previous answered.
//! Open loop (`rate`): request `i` is due at `start + i / rate`; its latency is measured from
//! that due time, so a server (or client) that falls behind shows it in the percentiles instead
//! of silently slowing the schedule (no coordinated omission). The service time (from the
//! moment the request was written) is kept too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::payload::Prepared;

/// Where and how hard to send.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The server's address (loopback).
    pub(crate) addr: SocketAddr,
    /// `Host` header value.
    pub(crate) host: String,
    /// Request target (path and query).
    pub(crate) path: String,
    /// Connections (and workers).
    pub(crate) concurrency: usize,
    /// Requests per second for an open-loop run; `None` for closed loop.
    pub(crate) rate: Option<f64>,
    /// No request is started after this long.
    pub(crate) max_duration: Duration,
    /// A request without an answer after this long counts as a timeout.
    pub(crate) request_timeout: Duration,
}

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// No connection could be opened.
    Connect,
    /// The connection failed during the exchange.
    Io,
    /// No answer within the request timeout.
    Timeout,
}

/// One request's record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Index into the prepared webhooks.
    pub(crate) index: usize,
    /// Latency in microseconds (from the due time in an open-loop run).
    pub(crate) latency_us: u64,
    /// From the request being handed to the connection to the end of the response body.
    pub(crate) service_us: u64,
    /// How it ended.
    pub(crate) outcome: Outcome,
}

/// A whole run.
#[derive(Debug)]
pub(crate) struct RunResult {
    /// Every request that was started.
    pub(crate) samples: Vec<Sample>,
    /// From the start to the last answer.
    pub(crate) elapsed: Duration,
    /// Prepared requests that were never sent (the time bound came first).
    pub(crate) not_sent: usize,
}

/// Opens one HTTP/1.1 connection (no Nagle) and drives it on a task of its own.
pub(crate) async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection's own error also reaches the sender; nothing to add here.
        let _ = conn.await;
    });
    Ok(sender)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

struct Shared {
    plan: Plan,
    host: HeaderValue,
    requests: Arc<Vec<Prepared>>,
    next: AtomicUsize,
    start: Instant,
    deadline: Instant,
}

/// Runs `requests` against the plan; returns when all were answered, or when the time bound
/// stopped new ones and the started ones finished (or timed out).
pub(crate) async fn run(plan: Plan, requests: Arc<Vec<Prepared>>) -> anyhow::Result<RunResult> {
    let host = HeaderValue::from_str(&plan.host)?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        deadline: start + plan.max_duration,
        host,
        requests,
        next: AtomicUsize::new(0),
        start,
        plan,
    });
    let mut workers = Vec::with_capacity(shared.plan.concurrency);
    for _ in 0..shared.plan.concurrency.max(1) {
        workers.push(tokio::spawn(worker(shared.clone())));
    }
    let mut samples = Vec::with_capacity(shared.requests.len());
    let mut last = start;
    for w in workers {
        let (mut s, done) = w.await?;
        samples.append(&mut s);
        last = last.max(done);
    }
    samples.sort_by_key(|s| s.index);
    let not_sent = shared.requests.len() - samples.len();
    Ok(RunResult {
        samples,
        elapsed: last - start,
        not_sent,
    })
}

async fn worker(shared: Arc<Shared>) -> (Vec<Sample>, Instant) {
    let plan = &shared.plan;
    let mut samples = Vec::new();
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    let mut last = shared.start;
    loop {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(prepared) = shared.requests.get(index) else {
            break;
        };
        let due = match plan.rate {
            Some(rate) => {
                let due = shared.start + Duration::from_secs_f64(index as f64 / rate);
                if due >= shared.deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => {
                let now = Instant::now();
                if now >= shared.deadline {
                    break;
                }
                now
            }
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(&plan.path)
            .header(HOST, shared.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("X-Hub-Signature-256", prepared.signature.clone())
            .body(Full::new(prepared.body.clone()));
        let Ok(request) = request else {
            samples.push(Sample {
                index,
                latency_us: 0,
                service_us: 0,
                outcome: Outcome::Io,
            });
            continue;
        };
        let exchange = async {
            let mut sender = match conn.take() {
                Some(s) if !s.is_closed() => s,
                _ => connect(plan.addr).await.map_err(|_| Outcome::Connect)?,
            };
            sender.ready().await.map_err(|_| Outcome::Io)?;
            let sent = Instant::now();
            let response = sender
                .send_request(request)
                .await
                .map_err(|_| Outcome::Io)?;
            let status = response.status().as_u16();
            response
                .into_body()
                .collect()
                .await
                .map_err(|_| Outcome::Io)?;
            Ok::<_, Outcome>((sender, status, sent))
        };
        let began = Instant::now();
        let (outcome, sent) = match tokio::time::timeout(plan.request_timeout, exchange).await {
            Ok(Ok((sender, status, sent))) => {
                conn = Some(sender);
                (Outcome::Status(status), sent)
            }
            // The connection is dropped on any failure; the next request opens a new one.
            Ok(Err(outcome)) => (outcome, began),
            Err(_) => (Outcome::Timeout, began),
        };
        let done = Instant::now();
        last = last.max(done);
        samples.push(Sample {
            index,
            latency_us: micros(done - due),
            service_us: micros(done - sent),
            outcome,
        });
    }
    (samples, last)
}
