//! `switchboard-loadgen sends`: measures the gateway's outbound sends.
//!
//! 1. **Enqueue**: `-n` proactive template sends through `POST /api/v1/messages`, closed loop
//!    over `-c` keep-alive connections, each to its own recipient (`--to-prefix` + a 7-digit
//!    index) with its own `Idempotency-Key`. Reports the enqueue rate and latency.
//! 2. **Wait**: polls `GET /api/v1/messages/{id}` of the last queued message (one request per
//!    `--poll-ms`, so the measurement barely loads the gateway) until it has left
//!    `pending`/`sending`, then reads every queued message and re-reads the unfinished ones
//!    until all are finished or the `--duration` bound is reached.
//! 3. **Figures** from the gateway's own record: the `updated_at` of a `sent` message is when its
//!    result was committed. Sends/s = sent / (last `updated_at` − the first enqueue); the
//!    steady rate is over the middle 80 % of the finish times; the sends finished while the
//!    enqueue ran and after it are reported apart (they compete for the same writer).
//!
//! With `--provider` (the fake provider's base URL) its counters are read at the end of the
//! enqueue and at the end of the run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::client::Client;
use crate::load::Outcome;
use crate::report::percentiles;
use crate::{Target, parse_target};

/// A Content SID (`HX` + 32 hex digits): Twilio sends templates by it.
const DEFAULT_TEMPLATE: &str = "HXb5b62575e6e4ff6129ad7c8efe1f983e";

/// `switchboard-loadgen sends`.
#[derive(clap::Args, Debug)]
pub(crate) struct SendsArgs {
    /// The gateway's base URL (loopback only), e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    api: String,
    /// The environment variable holding an API bearer token (admin or agent).
    #[arg(long, default_value = "SWITCHBOARD_LOADGEN_API_TOKEN")]
    token_env: String,
    /// The channel to send on (a `twilio` channel for the default template).
    #[arg(long)]
    channel: String,
    /// Messages to queue, each to its own recipient.
    #[arg(short = 'n', long, default_value_t = 5000)]
    requests: usize,
    /// Connections queueing at once.
    #[arg(short = 'c', long, default_value_t = 32)]
    concurrency: usize,
    /// The template's name (a Twilio Content SID).
    #[arg(long, default_value = DEFAULT_TEMPLATE)]
    template: String,
    /// Recipients are this prefix followed by a 7-digit index.
    #[arg(long, default_value = "+1555")]
    to_prefix: String,
    /// Bound of the whole run in seconds: no message is queued and nothing is awaited after it.
    #[arg(long, default_value_t = 300.0)]
    duration: f64,
    /// A request unanswered after this many seconds counts as a timeout.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Milliseconds between polls while waiting for the sends.
    #[arg(long, default_value_t = 200)]
    poll_ms: u64,
    /// The fake provider's base URL (`switchboard-loadgen provider`), to read its counters.
    #[arg(long)]
    provider: Option<String>,
    /// Prefix of the idempotency keys (default: from the clock, so runs never collide).
    #[arg(long)]
    id_prefix: Option<String>,
    /// Runtime threads of the client.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One queued message's record.
#[derive(Clone, Debug)]
struct Queued {
    /// The answer (or the failure).
    outcome: Outcome,
    /// The outbox id from a `202`.
    id: Option<i64>,
    /// `created` from a `202` (`false`: the key was already used).
    created: bool,
    /// From the request's start to its answer.
    latency_us: u64,
}

/// A message's state as `GET /api/v1/messages/{id}` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MessageState {
    state: String,
    attempts: i64,
    provider_message_id: Option<String>,
    /// `updated_at`, Unix milliseconds.
    updated_ms: Option<i64>,
}

impl MessageState {
    fn parse(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        Some(Self {
            state: value.get("state")?.as_str()?.to_owned(),
            attempts: value.get("attempts").and_then(Value::as_i64).unwrap_or(0),
            provider_message_id: value
                .get("provider_message_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            updated_ms: value
                .get("updated_at")
                .and_then(Value::as_str)
                .and_then(switchboard_core::Timestamp::parse_rfc3339)
                .map(switchboard_core::Timestamp::unix_millis),
        })
    }

    /// Whether the sender is done with it (`pending` and `sending` are not).
    fn finished(&self) -> bool {
        !matches!(self.state.as_str(), "pending" | "sending")
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn wall_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The request body of message `index`.
fn body(args: &SendsArgs, index: usize) -> Bytes {
    let value = json!({
        "channel": args.channel,
        "to": format!("{}{index:07}", args.to_prefix),
        "content": {
            "type": "template", "name": args.template, "language": "en",
            "body": [{"type": "text", "text": format!("bench {index}")}],
        },
    });
    Bytes::from(value.to_string())
}

struct Run {
    args: Arc<SendsArgs>,
    api: Target,
    token: String,
    deadline: Instant,
    timeout: Duration,
}

impl Run {
    fn client(&self) -> anyhow::Result<Client> {
        Client::new(
            self.api.addr,
            &self.api.host,
            Some(&self.token),
            self.timeout,
        )
    }

    fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.api.path.trim_end_matches('/'))
    }

    /// Queues every message (closed loop); the records in index order.
    async fn enqueue(self: &Arc<Self>, prefix: &str) -> anyhow::Result<Vec<Option<Queued>>> {
        let n = self.args.requests;
        let bodies: Arc<Vec<(Bytes, HeaderValue)>> = Arc::new(
            (0..n)
                .map(|i| {
                    Ok((
                        body(&self.args, i),
                        HeaderValue::from_str(&format!("{prefix}-{i}"))?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?,
        );
        let next = Arc::new(AtomicUsize::new(0));
        let path = self.path("/api/v1/messages");
        let mut workers = Vec::new();
        for _ in 0..self.args.concurrency.max(1) {
            let (run, bodies, next, path) =
                (self.clone(), bodies.clone(), next.clone(), path.clone());
            let mut client = self.client()?;
            workers.push(tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, key)) = bodies.get(index) else {
                        break;
                    };
                    if Instant::now() >= run.deadline {
                        break;
                    }
                    let began = Instant::now();
                    let header = (HeaderName::from_static("idempotency-key"), key.clone());
                    let answer = client.post_json(&path, Some(header), body.clone()).await;
                    let latency_us = micros(began.elapsed());
                    let record = match answer {
                        Ok((status, body)) => {
                            let value: Option<Value> = serde_json::from_slice(&body).ok();
                            let field =
                                |name: &str| value.as_ref().and_then(|v| v.get(name).cloned());
                            Queued {
                                outcome: Outcome::Status(status),
                                id: (status == 202)
                                    .then(|| field("id").and_then(|v| v.as_i64()))
                                    .flatten(),
                                created: field("created")
                                    .and_then(|v| v.as_bool())
                                    .unwrap_or(false),
                                latency_us,
                            }
                        }
                        Err(outcome) => Queued {
                            outcome,
                            id: None,
                            created: false,
                            latency_us,
                        },
                    };
                    out.push((index, record));
                }
                out
            }));
        }
        let mut records = vec![None; n];
        for worker in workers {
            for (index, record) in worker.await? {
                records[index] = Some(record);
            }
        }
        Ok(records)
    }

    /// Reads the state of every id in `ids`, `concurrency` at a time.
    async fn sweep(
        self: &Arc<Self>,
        ids: Arc<Vec<i64>>,
    ) -> anyhow::Result<Vec<(i64, Option<MessageState>)>> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..self.args.concurrency.clamp(1, ids.len().max(1)) {
            let (run, ids, next) = (self.clone(), ids.clone(), next.clone());
            let mut client = self.client()?;
            workers.push(tokio::spawn(async move {
                let mut out = Vec::new();
                while let Some(&id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let state = match client
                        .get(&run.path(&format!("/api/v1/messages/{id}")))
                        .await
                    {
                        Ok((200, body)) => MessageState::parse(&body),
                        _ => None,
                    };
                    out.push((id, state));
                }
                out
            }));
        }
        let mut all = Vec::with_capacity(ids.len());
        for worker in workers {
            all.extend(worker.await?);
        }
        Ok(all)
    }
}

/// The fake provider's counters, when `--provider` was given and answers.
async fn provider_stats(provider: Option<&Target>, timeout: Duration) -> Option<Value> {
    let provider = provider?;
    let mut client = Client::new(provider.addr, &provider.host, None, timeout).ok()?;
    match client.get("/stats").await {
        Ok((200, body)) => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

/// Rates from the finish times (Unix ms, sorted) of the sent messages.
#[derive(Debug, PartialEq)]
struct Rates {
    /// sent / (last finish − first enqueue).
    overall: f64,
    /// Over the middle 80 % of the finishes.
    steady: Option<f64>,
    /// Finished no later than the end of the enqueue, and their rate over the enqueue.
    during_enqueue: (usize, Option<f64>),
    /// Finished after the end of the enqueue, and their rate from then to the last.
    after_enqueue: (usize, Option<f64>),
    /// Seconds from the first enqueue to the last finish.
    span_s: f64,
}

fn rates(finishes: &[i64], start_ms: i64, enqueue_end_ms: i64) -> Option<Rates> {
    let last = *finishes.last()?;
    let per_s = |count: usize, from: i64, to: i64| {
        (to > from && count > 0).then(|| count as f64 * 1000.0 / (to - from) as f64)
    };
    let span_ms = (last - start_ms).max(1);
    let n = finishes.len();
    let steady = (n >= 20)
        .then(|| {
            let (lo, hi) = (n / 10, n * 9 / 10);
            per_s(hi - lo, finishes[lo], finishes[hi])
        })
        .flatten();
    let during = finishes.iter().filter(|&&f| f <= enqueue_end_ms).count();
    let after = n - during;
    Some(Rates {
        overall: n as f64 * 1000.0 / span_ms as f64,
        steady,
        during_enqueue: (during, per_s(during, start_ms, enqueue_end_ms)),
        after_enqueue: (after, per_s(after, enqueue_end_ms, last)),
        span_s: span_ms as f64 / 1000.0,
    })
}

fn fmt_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.0}/s"))
}

/// Runs the `sends` mode.
pub(crate) fn run(args: SendsArgs, id_prefix: String) -> anyhow::Result<()> {
    let api = parse_target(&args.api)?;
    let provider = args.provider.as_deref().map(parse_target).transpose()?;
    if args.requests == 0 || args.concurrency == 0 {
        bail!("-n and -c must be at least 1");
    }
    if args.requests > 10_000_000 {
        bail!("at most 10 000 000 messages (recipients have a 7-digit index)");
    }
    if !(args.duration.is_finite()
        && args.duration > 0.0
        && args.timeout.is_finite()
        && args.timeout > 0.0)
    {
        bail!("--duration and --timeout must be positive numbers of seconds");
    }
    let token = std::env::var(&args.token_env)
        .ok()
        .filter(|t| !t.is_empty())
        .with_context(|| {
            format!(
                "the environment variable `{}` (--token-env) holds no API token",
                args.token_env
            )
        })?;
    let prefix = args.id_prefix.clone().unwrap_or(id_prefix);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .thread_name("loadgen")
        .enable_all()
        .build()?;
    let started = Instant::now();
    let run = Arc::new(Run {
        timeout: Duration::from_secs_f64(args.timeout),
        deadline: started + Duration::from_secs_f64(args.duration),
        args: Arc::new(args),
        api,
        token,
    });
    let args = run.args.clone();
    let poll = Duration::from_millis(args.poll_ms.max(10));
    println!(
        "sends: {} template messages on `{}` over {} connections, bound {}s",
        args.requests, args.channel, args.concurrency, args.duration
    );

    runtime.block_on(async move {
        // 1. Enqueue.
        let start_wall = SystemTime::now();
        let start = Instant::now();
        let records = run.enqueue(&prefix).await?;
        let enqueue_elapsed = start.elapsed();
        let enqueue_end_wall = start_wall + enqueue_elapsed;
        let provider_at_enqueue_end = provider_stats(provider.as_ref(), run.timeout).await;
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        let mut ids = Vec::new();
        let mut reused_keys = 0;
        for record in records.iter().flatten() {
            let name = match record.outcome {
                Outcome::Status(code) => code.to_string(),
                Outcome::Connect => "connect-error".into(),
                Outcome::Io => "io-error".into(),
                Outcome::Timeout => "timeout".into(),
            };
            *outcomes.entry(name).or_insert(0) += 1;
            if let Some(id) = record.id {
                if record.created {
                    ids.push(id);
                } else {
                    reused_keys += 1;
                }
            }
        }
        let not_started = records.iter().filter(|r| r.is_none()).count();
        let latency = percentiles(records.iter().flatten().map(|r| r.latency_us).collect());
        let accepted = ids.len();
        let enqueue_rate = accepted as f64 / enqueue_elapsed.as_secs_f64().max(1e-9);
        println!(
            "enqueue: {accepted} queued (202, created) in {:.2}s: {enqueue_rate:.0}/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
            enqueue_elapsed.as_secs_f64(), latency[0], latency[1], latency[2], latency[3]
        );
        let outcome_text: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!("         outcomes {}{}{}", outcome_text.join(", "),
            if reused_keys > 0 { format!("; {reused_keys} with a reused key") } else { String::new() },
            if not_started > 0 { format!("; {not_started} not started (time bound)") } else { String::new() });
        if let Some(stats) = &provider_at_enqueue_end {
            println!("         provider at the end of the enqueue: {stats}");
        }

        // 2. Wait for the last queued message, then read them all.
        let mut states: BTreeMap<i64, MessageState> = BTreeMap::new();
        if let Some(&last) = ids.iter().max() {
            let mut client = run.client()?;
            let mut report_at = Instant::now() + Duration::from_secs(2);
            while Instant::now() < run.deadline {
                let path = run.path(&format!("/api/v1/messages/{last}"));
                if let Ok((200, body)) = client.get(&path).await
                    && MessageState::parse(&body).is_some_and(|s| s.finished())
                {
                    break;
                }
                if Instant::now() >= report_at {
                    report_at += Duration::from_secs(2);
                    let stats = provider_stats(provider.as_ref(), run.timeout).await;
                    println!(
                        "         waiting: {:.1}s{}",
                        start.elapsed().as_secs_f64(),
                        stats.map_or_else(String::new, |s| format!(", provider requests {}", s["requests"]))
                    );
                }
                tokio::time::sleep(poll).await;
            }
        }
        let mut unfinished: Vec<i64> = ids.clone();
        loop {
            let read = run.sweep(Arc::new(unfinished.clone())).await?;
            unfinished.clear();
            for (id, state) in read {
                match state {
                    Some(s) if s.finished() => {
                        states.insert(id, s);
                    }
                    other => {
                        if let Some(s) = other {
                            states.insert(id, s);
                        }
                        unfinished.push(id);
                    }
                }
            }
            if unfinished.is_empty() || Instant::now() >= run.deadline {
                break;
            }
            tokio::time::sleep(poll).await;
        }
        let provider_at_end = provider_stats(provider.as_ref(), run.timeout).await;

        // 3. Figures.
        let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
        for s in states.values() {
            *by_state.entry(s.state.clone()).or_insert(0) += 1;
        }
        let unread = accepted - states.len();
        let sent: Vec<&MessageState> = states.values().filter(|s| s.state == "sent").collect();
        let retried = states.values().filter(|s| s.attempts > 1).count();
        let distinct_provider_ids = sent
            .iter()
            .filter_map(|s| s.provider_message_id.as_deref())
            .collect::<std::collections::HashSet<_>>()
            .len();
        let mut finishes: Vec<i64> = sent.iter().filter_map(|s| s.updated_ms).collect();
        finishes.sort_unstable();
        let rates = rates(&finishes, wall_ms(start_wall), wall_ms(enqueue_end_wall));
        let all_sent = sent.len() == accepted && accepted == args.requests;
        let state_text: Vec<String> = by_state.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!(
            "sends:   {} of {accepted} sent (states: {}{}); more than one attempt: {retried}; distinct provider ids: {distinct_provider_ids}",
            sent.len(),
            state_text.join(", "),
            if unread > 0 { format!("; {unread} unreadable") } else { String::new() }
        );
        if let Some(r) = &rates {
            println!(
                "         first enqueue -> last sent: {:.2}s: {:.0} sends/s; steady (middle 80 %): {}",
                r.span_s, r.overall, fmt_rate(r.steady)
            );
            println!(
                "         finished during the enqueue: {} ({}); after it: {} ({})",
                r.during_enqueue.0, fmt_rate(r.during_enqueue.1), r.after_enqueue.0, fmt_rate(r.after_enqueue.1)
            );
        }
        if let Some(stats) = &provider_at_end {
            println!("         provider: {stats}");
        }
        if !all_sent {
            println!("WARNING: not every message was queued and sent (see above)");
        }

        if let Some(path) = &args.json {
            let value = json!({
                "requests": args.requests,
                "concurrency": args.concurrency,
                "channel": args.channel,
                "accepted": accepted,
                "enqueue_outcomes": outcomes,
                "enqueue_elapsed_s": enqueue_elapsed.as_secs_f64(),
                "enqueue_per_s": enqueue_rate,
                "enqueue_latency_ms": {"p50": latency[0], "p90": latency[1], "p99": latency[2], "max": latency[3]},
                "states": by_state,
                "sent": sent.len(),
                "retried": retried,
                "distinct_provider_ids": distinct_provider_ids,
                "all_sent": all_sent,
                "span_s": rates.as_ref().map(|r| r.span_s),
                "sends_per_s": rates.as_ref().map(|r| r.overall),
                "steady_sends_per_s": rates.as_ref().and_then(|r| r.steady),
                "sent_during_enqueue": rates.as_ref().map(|r| r.during_enqueue.0),
                "sends_per_s_during_enqueue": rates.as_ref().and_then(|r| r.during_enqueue.1),
                "sent_after_enqueue": rates.as_ref().map(|r| r.after_enqueue.0),
                "sends_per_s_after_enqueue": rates.as_ref().and_then(|r| r.after_enqueue.1),
                "provider_at_enqueue_end": provider_at_enqueue_end,
                "provider": provider_at_end,
            });
            std::fs::write(path, serde_json::to_vec_pretty(&value)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    #[test]
    fn a_message_state_is_read_from_the_api_answer() {
        let body = br#"{"id": 42, "state": "sent", "attempts": 1, "provider_message_id": "SM1",
            "updated_at": "2024-05-01T10:00:01.250Z", "created_at": "2024-05-01T10:00:00Z"}"#;
        let s = MessageState::parse(body).unwrap();
        assert_eq!(s.state, "sent");
        assert!(s.finished());
        assert_eq!(s.updated_ms, Some(1_714_557_601_250));
        let pending = MessageState::parse(br#"{"state": "sending", "attempts": 1}"#).unwrap();
        assert!(!pending.finished());
        assert!(MessageState::parse(b"{}").is_none());
    }

    #[test]
    fn rates_come_from_the_finish_times() {
        // 100 sends, one every 10 ms from t = 1000 ms; the enqueue ran from 0 to 1500 ms.
        let finishes: Vec<i64> = (0..100).map(|i| 1000 + 10 * i).collect();
        let r = rates(&finishes, 0, 1500).unwrap();
        assert!((r.span_s - 1.99).abs() < 1e-9);
        assert!((r.overall - 100.0 / 1.99).abs() < 1e-9);
        assert!((r.steady.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(r.during_enqueue.0, 51);
        assert_eq!(r.after_enqueue.0, 49);
        assert!((r.after_enqueue.1.unwrap() - 49.0 / 0.49).abs() < 1e-6);
        assert!(rates(&[], 0, 1).is_none());
    }

    #[test]
    fn bodies_are_templates_to_distinct_recipients() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: SendsArgs,
        }
        let w = Wrap::parse_from(["x", "--api", "http://127.0.0.1:1", "--channel", "sms-bench"]);
        let a: Value = serde_json::from_slice(&body(&w.args, 7)).unwrap();
        let b: Value = serde_json::from_slice(&body(&w.args, 8)).unwrap();
        assert_eq!(a["to"], "+15550000007");
        assert_ne!(a["to"], b["to"]);
        assert_eq!(a["content"]["type"], "template");
        assert_eq!(a["content"]["name"], DEFAULT_TEMPLATE);
    }
}
