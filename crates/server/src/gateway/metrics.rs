//! Observability: `/metrics` (OpenMetrics text, which Prometheus scrapes), `/readyz`, and each
//! channel's send health for `GET /api/v1/channels`.
//!
//! - Counted where it happens: webhooks by channel and outcome and their latency (a layer
//!   around `/webhooks/…`, [`observe_webhooks`], so that answers of the body limit and timeout
//!   layers count too), the connector's share of it ([`Metrics::connector_webhook`]), sends by
//!   channel, result and error class and their latency ([`Metrics::send`], called by the
//!   sender), which also keep [`ChannelStatus`] current.
//! - Sampled from the store by [`sample_store`] every [`SAMPLE_EVERY`] (not per scrape: the
//!   outbox and the routing state are read whole with the store's existing methods): outbox
//!   depth by state and the oldest pending row's age, pending routing jobs and timers, queue
//!   sizes and service level from the routing state.
//! - Read at scrape time: the plugins' call and trap counters and circuit state.
//!
//! Labels carry channel ids, connector and plugin ids, queue keys (`account/queue`) and fixed
//! words only: never an address, a message or a secret. A webhook to an unknown path is counted
//! under the channel `_unknown`, so callers cannot create series.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use serde::Serialize;
use serde_json::json;
use switchboard_core::{SendReceipt, Timestamp};
use switchboard_store::{OutboxOutcome, OutboxState, Store};
use switchboard_transport::SendError;

use super::App;
use super::plugins::Plugins;

/// How often [`sample_store`] reads the outbox and the routing state.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The channel label of webhooks whose path names no configured channel.
pub(crate) const UNKNOWN_CHANNEL: &str = "_unknown";
/// How long `/readyz` waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest last-error message kept per channel.
const MAX_ERROR_CHARS: usize = 300;

/// What became of a webhook: the `outcome` label of `switchboard_webhooks_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum WebhookOutcome {
    /// At least one event was new and is stored.
    Stored,
    /// Every event had been stored before (a provider retry).
    Duplicate,
    /// Answered without events (a verification challenge, a batch of skipped items).
    Answered,
    /// Webhook authentication failed (401).
    Unauthorized,
    /// Not parseable, or a URL that cannot be rebased (400).
    Malformed,
    /// No channel at this path (404).
    UnknownChannel,
    /// Over `limits.max_body_bytes` (413).
    TooLarge,
    /// Slower than `limits.request_timeout_secs` (408).
    Timeout,
    /// Not GET or POST (405).
    MethodNotAllowed,
    /// The channel's configuration does not work with the request (500).
    Misconfigured,
    /// The store failed; the provider retries (503).
    StoreUnavailable,
    /// Any other answer.
    Other,
}

impl WebhookOutcome {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::Answered => "answered",
            Self::Unauthorized => "unauthorized",
            Self::Malformed => "malformed",
            Self::UnknownChannel => "unknown_channel",
            Self::TooLarge => "too_large",
            Self::Timeout => "timeout",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Misconfigured => "misconfigured",
            Self::StoreUnavailable => "store_unavailable",
            Self::Other => "other",
        }
    }

    /// The outcome an answer's status means, for answers the handler did not tag (those of
    /// the limit and timeout layers, and its error paths).
    pub(crate) fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::Malformed,
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::NOT_FOUND => Self::UnknownChannel,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Self::Timeout,
            StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge,
            StatusCode::INTERNAL_SERVER_ERROR => Self::Misconfigured,
            StatusCode::SERVICE_UNAVAILABLE => Self::StoreUnavailable,
            s if s.is_success() => Self::Answered,
            _ => Self::Other,
        }
    }
}

/// What the webhook handler tells [`observe_webhooks`], in the response's extensions: the
/// channel it resolved (also for shared endpoints) and, after a store write, whether anything
/// was new.
#[derive(Clone, Debug, Default)]
pub(crate) struct WebhookTag {
    /// The resolved channel id.
    pub(crate) channel: Option<String>,
    /// Set when the status alone does not tell (stored or duplicate).
    pub(crate) outcome: Option<WebhookOutcome>,
}

/// The `result` label of `switchboard_sends_total`: what the sender recorded.
pub(crate) fn send_result(outcome: &OutboxOutcome) -> &'static str {
    match outcome {
        OutboxOutcome::Sent(_) => "sent",
        OutboxOutcome::Retry { .. } => "retry",
        OutboxOutcome::Failed { .. } => "failed",
        OutboxOutcome::OptedOut { .. } => "opted_out",
        OutboxOutcome::Unknown { .. } => "unknown",
        OutboxOutcome::Defer { .. } => "deferred",
        OutboxOutcome::Rewrite { .. } => "rewritten",
    }
}

/// One send attempt as metrics and channel health see it: the error class (the `class` label)
/// and, on error, the provider's code and a masked message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SendSample {
    /// `none` on success; the provider's error class (`auth`, `throttled`, …); `transport`
    /// (not sent), `outcome_unknown` (may have been sent) or `connector` (request not built).
    pub(crate) class: &'static str,
    /// Whether the provider answered (so it accepted the credentials unless `class` is `auth`).
    pub(crate) provider_answered: bool,
    /// The provider's error code.
    pub(crate) code: Option<String>,
    /// The error, phone numbers masked, at most [`MAX_ERROR_CHARS`] characters.
    pub(crate) message: Option<String>,
}

impl SendSample {
    /// A send that did not reach the transport (deferred by pacing).
    pub(crate) fn not_attempted() -> Self {
        Self {
            class: "none",
            provider_answered: false,
            code: None,
            message: None,
        }
    }

    /// The sample of a transport result.
    pub(crate) fn of(result: &Result<SendReceipt, SendError>) -> Self {
        let error = match result {
            Ok(_) => {
                return Self {
                    provider_answered: true,
                    ..Self::not_attempted()
                };
            }
            Err(error) => error,
        };
        let (class, provider_answered, code, message) = match error {
            // Class and code have their own fields: the message is the provider's.
            SendError::Provider(p) => (
                p.class.as_str(),
                true,
                p.provider_code.clone(),
                p.message.clone(),
            ),
            e if e.outcome_unknown() => ("outcome_unknown", false, None, e.to_string()),
            e @ SendError::Transport(_) => ("transport", false, None, e.to_string()),
            e @ SendError::Connector(_) => ("connector", false, None, e.to_string()),
            e => ("other", false, None, e.to_string()),
        };
        Self {
            class,
            provider_answered,
            code,
            message: Some(mask(&message)),
        }
    }
}

/// Phone numbers masked, cut to [`MAX_ERROR_CHARS`]. (Provider messages never carry secrets;
/// the transport redacts credentials from its own.)
fn mask(text: &str) -> String {
    let masked = switchboard_transport::mask_phone_numbers(text);
    match masked.char_indices().nth(MAX_ERROR_CHARS) {
        Some((at, _)) => format!("{}…", &masked[..at]),
        None => masked,
    }
}

/// A channel's credentials as its sends show them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CredentialState {
    /// No send has reached the provider yet.
    #[default]
    Unknown,
    /// The provider accepted them on the last send it answered.
    Ok,
    /// The last send the provider answered failed with an auth-class error.
    Failing,
}

/// The last failed send of a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct LastError {
    /// See [`SendSample::class`].
    pub(crate) class: &'static str,
    /// The provider's error code.
    pub(crate) code: Option<String>,
    /// Masked (phone numbers), no secrets.
    pub(crate) message: String,
    /// When.
    pub(crate) at: Timestamp,
}

/// One channel's health since the process started (in memory, per instance).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ChannelStatus {
    /// See [`CredentialState`].
    pub(crate) credentials: CredentialState,
    /// The last failed send.
    pub(crate) last_error: Option<LastError>,
    /// The last send the provider accepted.
    pub(crate) last_success_at: Option<Timestamp>,
    /// Send attempts by result (`sent`, `retry`, `failed`, …).
    pub(crate) sends: BTreeMap<&'static str, u64>,
    /// Webhooks by outcome (`stored`, `duplicate`, `unauthorized`, …).
    pub(crate) webhooks: BTreeMap<&'static str, u64>,
}

impl ChannelStatus {
    fn record_send(&mut self, sample: &SendSample, outcome: &OutboxOutcome, now: Timestamp) {
        *self.sends.entry(send_result(outcome)).or_default() += 1;
        if matches!(outcome, OutboxOutcome::Sent(_)) {
            self.last_success_at = Some(now);
        }
        if sample.class == "auth" {
            self.credentials = CredentialState::Failing;
        } else if sample.provider_answered {
            self.credentials = CredentialState::Ok;
        }
        if let Some(message) = &sample.message {
            self.last_error = Some(LastError {
                class: sample.class,
                code: sample.code.clone(),
                message: message.clone(),
                at: now,
            });
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    channel: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SendLabels {
    channel: String,
    result: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorLabel {
    connector: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn ingest_histogram() -> Histogram {
    // 0.5 ms … 8 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

fn send_histogram() -> Histogram {
    // 5 ms … 10 s
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

/// The gateway's metrics and channel health. One per process, in [`App`].
pub(crate) struct Metrics {
    registry: Registry,
    webhooks: Family<WebhookLabels, Counter>,
    ingest: Histogram,
    connector_webhook: HistogramFamily<ConnectorLabel>,
    sends: Family<SendLabels, Counter>,
    send_seconds: HistogramFamily<ChannelLabel>,
    sampled: Mutex<Snapshot>,
    channels: Mutex<HashMap<String, ChannelStatus>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Registers every metric (all names start with `switchboard_`).
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhooks",
            "Webhooks received, by channel and outcome",
            webhooks.clone(),
        );
        let ingest = ingest_histogram();
        registry.register_with_unit(
            "ingest",
            "Webhook handling time until the answer (including the store commit)",
            Unit::Seconds,
            ingest.clone(),
        );
        let connector_webhook: HistogramFamily<ConnectorLabel> =
            Family::new_with_constructor(ingest_histogram);
        registry.register_with_unit(
            "connector_webhook",
            "Time in the connector's webhook authentication and parsing, by connector (plugin ids for plugins)",
            Unit::Seconds,
            connector_webhook.clone(),
        );
        let sends = Family::<SendLabels, Counter>::default();
        registry.register(
            "sends",
            "Send attempts by channel, result (sent, retry, failed, opted_out, unknown, deferred, rewritten) and error class",
            sends.clone(),
        );
        let send_seconds: HistogramFamily<ChannelLabel> =
            Family::new_with_constructor(send_histogram);
        registry.register_with_unit(
            "send",
            "Time of one send through the connector and the transport, by channel",
            Unit::Seconds,
            send_seconds.clone(),
        );
        registry.register(
            "build",
            "The running version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry,
            webhooks,
            ingest,
            connector_webhook,
            sends,
            send_seconds,
            sampled: Mutex::new(Snapshot::default()),
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one webhook (`channel`: a configured channel id, or `None`).
    pub(crate) fn webhook(
        &self,
        channel: Option<&str>,
        outcome: WebhookOutcome,
        elapsed: Duration,
    ) {
        let label = channel.unwrap_or(UNKNOWN_CHANNEL);
        self.webhooks
            .get_or_create(&WebhookLabels {
                channel: label.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
        self.ingest.observe(elapsed.as_secs_f64());
        if let Some(channel) = channel {
            *lock(&self.channels)
                .entry(channel.to_owned())
                .or_default()
                .webhooks
                .entry(outcome.as_str())
                .or_default() += 1;
        }
    }

    /// Times the connector's part of a webhook.
    pub(crate) fn connector_webhook(&self, connector: &str, elapsed: Duration) {
        self.connector_webhook
            .get_or_create(&ConnectorLabel {
                connector: connector.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one send attempt of a configured channel and updates its health.
    pub(crate) fn send(
        &self,
        channel: &str,
        sample: &SendSample,
        outcome: &OutboxOutcome,
        elapsed: Option<Duration>,
        now: Timestamp,
    ) {
        self.sends
            .get_or_create(&SendLabels {
                channel: channel.to_owned(),
                result: send_result(outcome),
                class: sample.class,
            })
            .inc();
        if let Some(elapsed) = elapsed {
            self.send_seconds
                .get_or_create(&ChannelLabel {
                    channel: channel.to_owned(),
                })
                .observe(elapsed.as_secs_f64());
        }
        lock(&self.channels)
            .entry(channel.to_owned())
            .or_default()
            .record_send(sample, outcome, now);
    }

    /// A channel's health (the default before anything happened on it).
    pub(crate) fn channel(&self, id: &str) -> ChannelStatus {
        lock(&self.channels).get(id).cloned().unwrap_or_default()
    }

    /// Replaces the store sample.
    fn set_sample(&self, snapshot: Snapshot) {
        *lock(&self.sampled) = snapshot;
    }

    /// The exposition: counters and histograms, the last store sample, the plugins now.
    pub(crate) fn render(&self, plugins: Option<&Plugins>) -> Result<String, std::fmt::Error> {
        let mut live = Registry::with_prefix("switchboard");
        live.register_collector(Box::new(Sampled {
            snapshot: lock(&self.sampled).clone(),
            plugins: plugins.map(plugin_samples).unwrap_or_default(),
        }));
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)?;
        prometheus_client::encoding::text::encode_registry(&mut out, &live)?;
        prometheus_client::encoding::text::encode_eof(&mut out)?;
        Ok(out)
    }
}

/// A plugin's counters as the host keeps them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PluginSample {
    id: String,
    version: String,
    calls: u64,
    traps: u64,
    busy_seconds: f64,
    circuit_open: bool,
}

/// From the admin API's plugin list (`GET /api/v1/plugins`: the host's counters per current
/// version), so that both always agree.
fn plugin_samples(plugins: &Plugins) -> Vec<PluginSample> {
    plugin_samples_from(&plugins.list())
}

fn plugin_samples_from(listed: &serde_json::Value) -> Vec<PluginSample> {
    let Some(list) = listed["plugins"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|p| {
            Some(PluginSample {
                id: p["id"].as_str()?.to_owned(),
                version: p["version"].as_str().unwrap_or("").to_owned(),
                calls: p["calls"].as_u64().unwrap_or(0),
                traps: p["traps"].as_u64().unwrap_or(0),
                busy_seconds: p["busy_seconds"].as_f64().unwrap_or(0.0),
                circuit_open: p["circuit"].as_str() == Some("open"),
            })
        })
        .collect()
}

/// One leaf queue's routing figures.
#[derive(Clone, Debug, Default, PartialEq)]
struct QueueSample {
    waiting: i64,
    entered: u64,
    answered: u64,
    answered_in_target: u64,
    abandoned: u64,
    rona: u64,
    service_level: f64,
}

/// What [`sample_store`] read last.
#[derive(Clone, Debug, Default, PartialEq)]
struct Snapshot {
    /// Whether the last sample's reads succeeded (`None` before the first).
    store_up: Option<bool>,
    outbox: BTreeMap<&'static str, i64>,
    oldest_pending_seconds: f64,
    routing_jobs: i64,
    timers: i64,
    open_conversations: i64,
    /// By `account/queue`.
    queues: BTreeMap<String, QueueSample>,
}

const OUTBOX_STATES: [OutboxState; 6] = [
    OutboxState::Pending,
    OutboxState::Sending,
    OutboxState::Sent,
    OutboxState::Failed,
    OutboxState::Unknown,
    OutboxState::OptedOut,
];

/// Reads the store's figures once.
async fn sample(
    store: &dyn Store,
    now: Timestamp,
) -> Result<Snapshot, switchboard_store::StoreError> {
    let mut snapshot = Snapshot {
        store_up: Some(true),
        ..Snapshot::default()
    };
    for state in OUTBOX_STATES {
        snapshot.outbox.insert(state.as_str(), 0);
    }
    // Oldest first: the first pending row is the oldest.
    let jobs = store.outbox_jobs().await?;
    let mut oldest = None;
    for job in &jobs {
        *snapshot.outbox.entry(job.state.as_str()).or_default() += 1;
        if oldest.is_none() && job.state == OutboxState::Pending {
            oldest = Some(job.id);
        }
    }
    if let Some(id) = oldest
        && let Some(row) = store.outbox_message(id).await?
    {
        snapshot.oldest_pending_seconds = now
            .checked_duration_since(row.created_at)
            .unwrap_or_default()
            .as_secs_f64();
    }
    let counts = store.counts().await?;
    snapshot.routing_jobs = counts.routing_jobs;
    snapshot.timers = counts.timers;
    if let Some(row) = store.routing_state().await? {
        match serde_json::from_str::<switchboard_routing::State>(&row.state) {
            Ok(state) => routing_sample(&state, &mut snapshot),
            Err(e) => tracing::warn!(error = %e, "metrics: the routing state does not decode"),
        }
    }
    Ok(snapshot)
}

fn routing_sample(state: &switchboard_routing::State, snapshot: &mut Snapshot) {
    snapshot.open_conversations = i64::try_from(state.conversations.len()).unwrap_or(i64::MAX);
    for (key, q) in &state.metrics.queues {
        snapshot.queues.insert(
            key.clone(),
            QueueSample {
                waiting: 0,
                entered: q.entered,
                answered: q.answered,
                answered_in_target: q.answered_in_target,
                abandoned: q.abandoned,
                rona: q.rona,
                service_level: q.service_level(),
            },
        );
    }
    for id in &state.waiting {
        let Some(conversation) = state.conversation(*id) else {
            continue;
        };
        let account = conversation
            .queue_account
            .as_deref()
            .unwrap_or(&conversation.account);
        let queue = conversation.queue.as_deref().unwrap_or("");
        snapshot
            .queues
            .entry(format!("{account}/{queue}"))
            .or_insert_with(|| QueueSample {
                service_level: 1.0,
                ..QueueSample::default()
            })
            .waiting += 1;
    }
}

/// Samples the store into `metrics` now and then every [`SAMPLE_EVERY`] (or ten times as long
/// as the last sample took, so a large outbox never keeps the store busy). Runs forever.
pub(crate) async fn sample_store(store: Arc<dyn Store>, metrics: Arc<Metrics>) {
    loop {
        let started = Instant::now();
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        match sample(store.as_ref(), now).await {
            Ok(snapshot) => metrics.set_sample(snapshot),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: sampling the store failed");
                let mut last = lock(&metrics.sampled);
                last.store_up = Some(false);
            }
        }
        let took = started.elapsed();
        tokio::time::sleep(SAMPLE_EVERY.max(took.saturating_mul(10))).await;
    }
}

/// The metrics built at scrape time (the store sample and the plugins).
#[derive(Debug)]
struct Sampled {
    snapshot: Snapshot,
    plugins: Vec<PluginSample>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    version: String,
}

fn gauge<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    series: &[(L, f64)],
) -> Result<(), std::fmt::Error> {
    let probe = ConstGauge::new(0.0);
    let mut metric = encoder.encode_descriptor(name, help, unit, probe.metric_type())?;
    for (labels, value) in series {
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter<L: EncodeLabelSet, V: Copy + Default>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(L, V)],
) -> Result<(), std::fmt::Error>
where
    ConstCounter<V>: EncodeMetric,
{
    let probe = ConstCounter::new(V::default());
    let mut metric = encoder.encode_descriptor(name, help, None, probe.metric_type())?;
    for (labels, value) in series {
        ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

impl Collector for Sampled {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.snapshot;
        if let Some(up) = s.store_up {
            single(
                &mut encoder,
                "store_up",
                "1 when the last store sample succeeded.",
                None,
                if up { 1.0 } else { 0.0 },
            )?;
            let outbox: Vec<(StateLabel, f64)> = s
                .outbox
                .iter()
                .map(|(state, n)| (StateLabel { state }, *n as f64))
                .collect();
            gauge(
                &mut encoder,
                "outbox_depth",
                "Outbox rows by state (sampled).",
                None,
                &outbox,
            )?;
            single(
                &mut encoder,
                "outbox_oldest_pending",
                "Age of the oldest pending outbox row, 0 when none (sampled).",
                Some(&Unit::Seconds),
                s.oldest_pending_seconds,
            )?;
            single(
                &mut encoder,
                "routing_jobs",
                "Routing jobs not yet done (sampled).",
                None,
                s.routing_jobs as f64,
            )?;
            single(
                &mut encoder,
                "routing_timers",
                "Routing timers set (sampled).",
                None,
                s.timers as f64,
            )?;
            single(
                &mut encoder,
                "routing_open_conversations",
                "Open conversations (sampled).",
                None,
                s.open_conversations as f64,
            )?;
            let queue = |q: &String| QueueLabel { queue: q.clone() };
            let waiting: Vec<_> = s
                .queues
                .iter()
                .map(|(q, v)| (queue(q), v.waiting as f64))
                .collect();
            gauge(
                &mut encoder,
                "routing_queue_waiting",
                "Conversations waiting for an agent, by queue (account/queue; sampled).",
                None,
                &waiting,
            )?;
            let level: Vec<_> = s
                .queues
                .iter()
                .map(|(q, v)| (queue(q), v.service_level))
                .collect();
            gauge(
                &mut encoder,
                "routing_service_level",
                "Share of answered conversations accepted within the queue's target, 0-1 (1 before any).",
                None,
                &level,
            )?;
            type Field = fn(&QueueSample) -> u64;
            let counters: [(&str, &str, Field); 5] = [
                (
                    "routing_queue_entered",
                    "Conversations that entered the queue.",
                    |v| v.entered,
                ),
                (
                    "routing_queue_answered",
                    "Conversations an agent accepted.",
                    |v| v.answered,
                ),
                (
                    "routing_queue_answered_in_target",
                    "Conversations accepted within the service-level target.",
                    |v| v.answered_in_target,
                ),
                (
                    "routing_queue_abandoned",
                    "Conversations that ended while waiting.",
                    |v| v.abandoned,
                ),
                ("routing_queue_rona", "Offers not accepted in time.", |v| {
                    v.rona
                }),
            ];
            for (name, help, field) in counters {
                let series: Vec<_> = s.queues.iter().map(|(q, v)| (queue(q), field(v))).collect();
                counter(&mut encoder, name, help, &series)?;
            }
        }
        if !self.plugins.is_empty() {
            let labels = |p: &PluginSample| PluginLabels {
                plugin: p.id.clone(),
                version: p.version.clone(),
            };
            let calls: Vec<_> = self.plugins.iter().map(|p| (labels(p), p.calls)).collect();
            counter(
                &mut encoder,
                "plugin_calls",
                "Calls into the plugin's current version (refused ones included).",
                &calls,
            )?;
            let traps: Vec<_> = self.plugins.iter().map(|p| (labels(p), p.traps)).collect();
            counter(
                &mut encoder,
                "plugin_traps",
                "Traps of the plugin's current version.",
                &traps,
            )?;
            let busy: Vec<_> = self
                .plugins
                .iter()
                .map(|p| (labels(p), p.busy_seconds))
                .collect();
            counter(
                &mut encoder,
                "plugin_call_seconds",
                "Time spent in calls into the plugin's current version, instantiation included \
                 (over plugin_calls_total: the mean call latency).",
                &busy,
            )?;
            let open: Vec<_> = self
                .plugins
                .iter()
                .map(|p| (labels(p), if p.circuit_open { 1.0 } else { 0.0 }))
                .collect();
            gauge(
                &mut encoder,
                "plugin_circuit_open",
                "1 while the plugin's circuit breaker refuses calls.",
                None,
                &open,
            )?;
        }
        Ok(())
    }
}

/// The layer around `/webhooks/…`: counts each webhook by channel and outcome and times it
/// until the answer. Other paths pass through.
pub(crate) async fn observe_webhooks(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(path_id) = request
        .uri()
        .path()
        .strip_prefix("/webhooks/")
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let tag = response
        .extensions()
        .get::<WebhookTag>()
        .cloned()
        .unwrap_or_default();
    let outcome = tag
        .outcome
        .unwrap_or_else(|| WebhookOutcome::from_status(response.status()));
    let channel = tag
        .channel
        .or_else(|| app.channels.contains_key(&path_id).then_some(path_id));
    app.metrics
        .webhook(channel.as_deref(), outcome, started.elapsed());
    response
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(app): State<Arc<App>>) -> Response {
    match app.metrics.render(app.plugins.as_deref()) {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /readyz`: 200 when the store answers within [`READY_TIMEOUT`]; 503 naming the failing
/// check otherwise. Migrations are applied when the store is opened (the gateway does not
/// start without them), so they are `ok` whenever the process serves.
pub(crate) async fn readyz(State(app): State<Arc<App>>) -> Response {
    let store = match tokio::time::timeout(READY_TIMEOUT, app.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: the store failed");
            "unreachable"
        }
        Err(_) => {
            tracing::warn!("readyz: the store did not answer in time");
            "timeout"
        }
    };
    let ready = store == "ok";
    let mut failing = Vec::new();
    if !ready {
        failing.push("store");
    }
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "failing": failing,
        "checks": {
            "store": store,
            "migrations": "ok",
        },
        "backend": app.store.backend(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::{DeliveryStatus, ErrorClass, ProviderError};
    use switchboard_transport::TransportError;

    fn t() -> Timestamp {
        Timestamp::from_unix_seconds(1_700_000_000)
    }

    #[test]
    fn statuses_map_to_outcomes() {
        use WebhookOutcome as O;
        for (status, outcome, word) in [
            (400, O::Malformed, "malformed"),
            (401, O::Unauthorized, "unauthorized"),
            (404, O::UnknownChannel, "unknown_channel"),
            (405, O::MethodNotAllowed, "method_not_allowed"),
            (408, O::Timeout, "timeout"),
            (413, O::TooLarge, "too_large"),
            (500, O::Misconfigured, "misconfigured"),
            (503, O::StoreUnavailable, "store_unavailable"),
            (200, O::Answered, "answered"),
            (204, O::Answered, "answered"),
            (418, O::Other, "other"),
        ] {
            let got = WebhookOutcome::from_status(StatusCode::from_u16(status).unwrap());
            assert_eq!(got, outcome, "{status}");
            assert_eq!(got.as_str(), word);
        }
        assert_eq!(O::Stored.as_str(), "stored");
        assert_eq!(O::Duplicate.as_str(), "duplicate");
    }

    #[test]
    fn send_results_and_classes() {
        let sent = OutboxOutcome::Sent(SendReceipt::new("SM1", DeliveryStatus::Queued));
        assert_eq!(send_result(&sent), "sent");
        assert_eq!(
            send_result(&OutboxOutcome::Retry {
                at: t(),
                error: String::new()
            }),
            "retry"
        );
        assert_eq!(send_result(&OutboxOutcome::Defer { at: t() }), "deferred");
        assert_eq!(
            send_result(&OutboxOutcome::Unknown {
                error: String::new()
            }),
            "unknown"
        );

        let ok = SendSample::of(&Ok(SendReceipt::new("SM1", DeliveryStatus::Queued)));
        assert_eq!(ok.class, "none");
        assert!(ok.provider_answered && ok.message.is_none());

        let auth = ProviderError {
            provider_code: Some("20003".into()),
            ..ProviderError::new(ErrorClass::Auth, "Authenticate for +14155550112")
        };
        let sample = SendSample::of(&Err(SendError::Provider(auth)));
        assert_eq!(sample.class, "auth");
        assert_eq!(sample.code.as_deref(), Some("20003"));
        let message = sample.message.unwrap();
        assert!(!message.contains("4155550112"), "{message}");

        let refused = SendSample::of(&Err(SendError::Transport(TransportError::UnsupportedAuth)));
        assert!(!refused.provider_answered);
    }

    #[test]
    fn credentials_follow_the_sends_the_provider_answered() {
        let mut status = ChannelStatus::default();
        assert_eq!(status.credentials, CredentialState::Unknown);
        let failed = OutboxOutcome::Failed {
            class: Some(ErrorClass::Auth),
            error: "x".into(),
        };
        let auth = SendSample::of(&Err(SendError::Provider(ProviderError::new(
            ErrorClass::Auth,
            "bad token",
        ))));
        status.record_send(&auth, &failed, t());
        assert_eq!(status.credentials, CredentialState::Failing);
        assert_eq!(status.last_error.as_ref().map(|e| e.class), Some("auth"));
        // Not reaching the provider says nothing about the credentials.
        status.record_send(
            &SendSample::not_attempted(),
            &OutboxOutcome::Defer { at: t() },
            t(),
        );
        assert_eq!(status.credentials, CredentialState::Failing);
        // A provider that judged the message accepted the credentials.
        let invalid = SendSample::of(&Err(SendError::Provider(ProviderError::new(
            ErrorClass::InvalidRecipient,
            "no such user",
        ))));
        status.record_send(
            &invalid,
            &OutboxOutcome::Failed {
                class: Some(ErrorClass::InvalidRecipient),
                error: "x".into(),
            },
            t(),
        );
        assert_eq!(status.credentials, CredentialState::Ok);
        let sent = OutboxOutcome::Sent(SendReceipt::new("SM1", DeliveryStatus::Queued));
        status.record_send(
            &SendSample::of(&Ok(SendReceipt::new("SM1", DeliveryStatus::Queued))),
            &sent,
            t(),
        );
        assert_eq!(status.last_success_at, Some(t()));
        assert_eq!(status.sends.get("failed"), Some(&2));
        assert_eq!(status.sends.get("deferred"), Some(&1));
        assert_eq!(status.sends.get("sent"), Some(&1));
    }

    #[test]
    fn plugin_counters_come_from_the_plugin_list() {
        let listed = serde_json::json!({"plugins": [
            {"id": "telnyx", "version": "0.2.0", "calls": 7, "traps": 1, "busy_seconds": 0.25, "circuit": "closed"},
            {"id": "hostile", "version": "1.0.0", "calls": 3, "traps": 3, "circuit": "open"},
        ]});
        let samples = plugin_samples_from(&listed);
        assert_eq!(samples.len(), 2);
        let mut live = Registry::with_prefix("switchboard");
        live.register_collector(Box::new(Sampled {
            snapshot: Snapshot::default(),
            plugins: samples,
        }));
        let mut text = String::new();
        prometheus_client::encoding::text::encode_registry(&mut text, &live).unwrap();
        for line in [
            r#"switchboard_plugin_calls_total{plugin="telnyx",version="0.2.0"} 7"#,
            r#"switchboard_plugin_traps_total{plugin="hostile",version="1.0.0"} 3"#,
            r#"switchboard_plugin_call_seconds_total{plugin="telnyx",version="0.2.0"} 0.25"#,
            r#"switchboard_plugin_circuit_open{plugin="hostile",version="1.0.0"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // Nothing sampled yet: no store series at all rather than zeros.
        assert!(!text.contains("outbox_depth"));
    }

    /// A store that does not answer: `/readyz` is 503 naming the store, `/metrics` still
    /// answers, and an unknown channel's webhook is counted under `_unknown`.
    #[tokio::test]
    async fn readyz_names_the_failing_store() {
        use axum::body::{Body, to_bytes};
        use tower::ServiceExt as _;

        let down = switchboard_store::SqliteStore::open(
            "sqlite::memory:",
            switchboard_store::SqliteOptions::default(),
        )
        .await
        .unwrap();
        down.close().await;
        let app = Arc::new(App::new(
            Arc::new(down),
            HashMap::new(),
            "https://gw.example.com".into(),
        ));
        let routes = super::super::router(app.clone(), 1 << 16, Duration::from_secs(5));
        let call = |path: &str, method: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap()
        };
        let response = routes
            .clone()
            .oneshot(call("/readyz", "GET"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 1 << 16).await.unwrap())
                .unwrap();
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["failing"], serde_json::json!(["store"]));
        assert_eq!(body["checks"]["store"], "unreachable");

        let response = routes
            .clone()
            .oneshot(call("/webhooks/+14155550112", "POST"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = routes.oneshot(call("/metrics", "GET")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = String::from_utf8(
            to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        assert!(
            text.contains(
                r#"switchboard_webhooks_total{channel="_unknown",outcome="unknown_channel"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains("4155550112"), "{text}");
    }

    #[test]
    fn long_errors_are_cut_and_masked() {
        let long = format!("+14155550112 {}", "x".repeat(1000));
        let cut = mask(&long);
        assert!(cut.chars().count() <= MAX_ERROR_CHARS + 1);
        assert!(!cut.contains("4155550112"));
    }

    #[test]
    fn the_exposition_has_the_families_and_labels() {
        let metrics = Metrics::new();
        metrics.webhook(Some("wa"), WebhookOutcome::Stored, Duration::from_millis(3));
        metrics.webhook(
            None,
            WebhookOutcome::UnknownChannel,
            Duration::from_millis(1),
        );
        let sample = SendSample::of(&Err(SendError::Provider(ProviderError::new(
            ErrorClass::Throttled,
            "slow down",
        ))));
        metrics.send(
            "wa",
            &sample,
            &OutboxOutcome::Retry {
                at: t(),
                error: "slow down".into(),
            },
            Some(Duration::from_millis(20)),
            t(),
        );
        let mut state = switchboard_routing::State::new();
        state.metrics.queues.insert(
            "wa/support".into(),
            switchboard_routing::metrics::QueueMetrics {
                entered: 4,
                answered: 2,
                answered_in_target: 1,
                ..Default::default()
            },
        );
        let mut snapshot = Snapshot {
            store_up: Some(true),
            ..Snapshot::default()
        };
        snapshot.outbox.insert("pending", 3);
        routing_sample(&state, &mut snapshot);
        metrics.set_sample(snapshot);
        let text = metrics.render(None).unwrap();
        for line in [
            r#"switchboard_webhooks_total{channel="wa",outcome="stored"} 1"#,
            r#"switchboard_webhooks_total{channel="_unknown",outcome="unknown_channel"} 1"#,
            "switchboard_ingest_seconds_count 2",
            r#"switchboard_sends_total{channel="wa",result="retry",class="throttled"} 1"#,
            r#"switchboard_send_seconds_count{channel="wa"} 1"#,
            r#"switchboard_outbox_depth{state="pending"} 3"#,
            "switchboard_store_up 1",
            r#"switchboard_routing_service_level{queue="wa/support"} 0.5"#,
            r#"switchboard_routing_queue_entered_total{queue="wa/support"} 4"#,
            r#"switchboard_build_info{version=""#,
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!(text.matches("# EOF").count(), 1);
        assert_eq!(metrics.channel("wa").webhooks.get("stored"), Some(&1));
    }
}
