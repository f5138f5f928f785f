//! The routing driver and the sender.
//!
//! **Routing driver**: fires due timers into routing jobs, claims jobs with a lease, runs the
//! engine on the stored state, and commits the new state with everything its actions produced
//! (outbox rows, timers, conversation rows, transcripts) in one transaction, guarded by the
//! state's version.
//!
//! **Sender**: turns `sending` rows whose lease expired into `unknown` (the worker died during
//! the send: never re-sent blindly), claims due outbox rows with a lease, paces each channel
//! with a token bucket, sends through the connector and the transport, and records the result
//! by error class: retry with exponential backoff and jitter (at least the provider's
//! Retry-After), permanent failure, opted out, or unknown outcome.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{ErrorClass, InboundEvent, Timestamp};
use switchboard_routing::{Action, Engine, Input, IntegrationEvent, State, TimerId};
use switchboard_store::{
    ConversationUpdate, NewOutbox, OutboxJob, OutboxOutcome, RoutingCommit, RoutingJob,
    RoutingJobKind, Store, StoreError, TimerChange,
};
use switchboard_transport::{EgressPolicy, SendError, Transport};
use tokio::sync::Notify;

use super::App;
use crate::config::{Channel, Resolved};

const IDLE_POLL: Duration = Duration::from_millis(250);
const ROUTING_BATCH: u32 = 128;
/// One send per claim: a claimed row is `sending` until its result is recorded, so a crash
/// leaves at most one row per sender whose outcome is unknown.
const SEND_BATCH: u32 = 1;
/// After this many attempts a retryable failure becomes permanent.
pub(crate) const MAX_ATTEMPTS: i64 = 8;
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(600);

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

fn worker_id(role: &str) -> String {
    format!("{role}-{}-{}", std::process::id(), jitter_seed())
}

fn jitter_seed() -> u64 {
    std::hash::RandomState::new().build_hasher().finish()
}

/// Starts the routing driver and the sender on the current runtime.
pub(crate) fn spawn(app: &Arc<App>, config: &Resolved) -> anyhow::Result<()> {
    let engine = Engine::new(config.routing.clone())
        .map_err(|e| anyhow::anyhow!("routing configuration: {e}"))?;
    let send_wake = Arc::new(Notify::new());
    let driver = RoutingDriver {
        store: app.store.clone(),
        engine,
        worker: worker_id("routing"),
        lease: Duration::from_secs(config.workers.routing_lease_secs),
        wake: app.routing_wake.clone(),
        send_wake: send_wake.clone(),
    };
    tokio::spawn(driver.run());

    let mut policy = if config.transport.dangerous_allow_loopback_for_tests {
        tracing::warn!("transport: loopback and plain HTTP allowed (tests only)");
        EgressPolicy::allow_loopback_for_tests()
    } else {
        EgressPolicy::deny_all()
    };
    for channel in config.channels.values() {
        policy = policy.allow_hosts(&channel.connector.info().egress_hosts)?;
    }
    policy = policy.allow_hosts(&config.transport.allow_hosts)?;
    let transport = Transport::builder().egress(policy).build()?;
    let sender = Sender {
        store: app.store.clone(),
        channels: app.channels.clone(),
        transport,
        worker: worker_id("sender"),
        lease: Duration::from_secs(config.workers.send_lease_secs),
        wake: send_wake,
        buckets: HashMap::new(),
    };
    tokio::spawn(sender.run());
    Ok(())
}

struct RoutingDriver {
    store: Arc<dyn Store>,
    engine: Engine,
    worker: String,
    lease: Duration,
    wake: Arc<Notify>,
    send_wake: Arc<Notify>,
}

impl RoutingDriver {
    async fn run(self) {
        loop {
            match self.step().await {
                Ok(0) => {
                    let _ = tokio::time::timeout(IDLE_POLL, self.wake.notified()).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "routing step failed; retrying");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    }

    /// One step: due timers, then one batch of jobs. Returns how many jobs it handled.
    async fn step(&self) -> Result<usize, StoreError> {
        let now = now();
        self.store.fire_due_timers(now, ROUTING_BATCH).await?;
        let jobs = self
            .store
            .claim_routing_jobs(&self.worker, now, self.lease, ROUTING_BATCH)
            .await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let stored = self.store.routing_state().await?;
        let (base_version, mut state) = match stored {
            Some(row) => (row.version, serde_json::from_str::<State>(&row.state)?),
            None => (0, State::new()),
        };
        let mut commit = RoutingCommit {
            worker: self.worker.clone(),
            base_version,
            state: String::new(),
            done_jobs: Vec::with_capacity(jobs.len()),
            outbox: Vec::new(),
            timers: Vec::new(),
            conversations: Vec::new(),
            transcript_entries: Vec::new(),
            transcripts: Vec::new(),
            now,
        };
        let mut actions = Vec::new();
        for job in &jobs {
            commit.done_jobs.push(job.id);
            let Some(input) = self.input(job) else {
                continue;
            };
            actions.clear();
            if let Err(e) = self
                .engine
                .handle_into(&mut state, input, now, &mut actions)
            {
                tracing::info!(job = job.id, error = %e, "routing refused an input");
                continue;
            }
            for action in actions.drain(..) {
                apply(&mut commit, action)?;
            }
        }
        commit.state = serde_json::to_string(&state)?;
        let queued = commit.outbox.len();
        self.store.commit_routing(&commit).await?;
        if queued > 0 {
            self.send_wake.notify_one();
        }
        Ok(jobs.len())
    }

    /// The engine input of a job; `None` (the job is dropped with a log line) when it is not
    /// one the engine takes.
    fn input(&self, job: &RoutingJob) -> Option<Input> {
        let parsed = match job.kind {
            RoutingJobKind::Inbound => {
                let account = job.channel_id.clone()?;
                if !self
                    .engine
                    .config()
                    .accounts
                    .iter()
                    .any(|a| a.id == account)
                {
                    // A channel without routing: events are stored, nothing is routed.
                    return None;
                }
                serde_json::from_str::<InboundEvent>(&job.payload)
                    .map(|event| Input::Inbound { account, event })
            }
            RoutingJobKind::Timer => {
                serde_json::from_str::<TimerId>(&job.payload).map(|id| Input::Timer { id })
            }
            RoutingJobKind::Command => serde_json::from_str::<Input>(&job.payload),
        };
        match parsed {
            Ok(input) => Some(input),
            Err(e) => {
                tracing::error!(job = job.id, error = %e, "undecodable routing job dropped");
                None
            }
        }
    }
}

fn conversation(id: impl ToString) -> ConversationUpdate {
    ConversationUpdate {
        id: id.to_string(),
        channel_id: None,
        customer: None,
        state: None,
        queue: None,
        agent: None,
        end_reason: None,
    }
}

fn word<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// Adds what one engine action asks for to the commit.
fn apply(commit: &mut RoutingCommit, action: Action) -> Result<(), StoreError> {
    match action {
        Action::Send {
            conversation,
            account,
            message,
            ..
        } => commit.outbox.push(NewOutbox {
            channel_id: account,
            conversation_id: conversation.map(|c| c.to_string()),
            message,
        }),
        Action::StartTimer { id, due } => commit.timers.push(TimerChange::Start {
            key: id.to_string(),
            payload: serde_json::to_string(&id)?,
            due,
        }),
        Action::CancelTimer { id } => commit.timers.push(TimerChange::Cancel {
            key: id.to_string(),
        }),
        Action::AppendTranscript {
            conversation,
            entry,
        } => commit
            .transcript_entries
            .push((conversation.to_string(), serde_json::to_string(&entry)?)),
        Action::WriteTranscript(write) => commit.transcripts.push((
            write.conversation.to_string(),
            serde_json::to_string(&write)?,
        )),
        Action::Close {
            conversation: id,
            reason,
            ..
        } => commit.conversations.push(ConversationUpdate {
            state: Some("ended".into()),
            end_reason: word(&reason),
            ..conversation(id)
        }),
        Action::Emit(event) => match event {
            IntegrationEvent::ConversationStarted {
                conversation: id,
                account,
                customer,
                ..
            } => commit.conversations.push(ConversationUpdate {
                channel_id: Some(account),
                customer: Some(customer.id),
                state: Some("open".into()),
                ..conversation(id)
            }),
            IntegrationEvent::Queued {
                conversation: id,
                queue,
            } => commit.conversations.push(ConversationUpdate {
                state: Some("queued".into()),
                queue: Some(queue),
                ..conversation(id)
            }),
            IntegrationEvent::Accepted {
                conversation: id,
                agent,
                ..
            }
            | IntegrationEvent::Transferred {
                conversation: id,
                to: agent,
                ..
            } => commit.conversations.push(ConversationUpdate {
                state: Some("assigned".into()),
                agent: Some(agent),
                ..conversation(id)
            }),
            IntegrationEvent::Dismissed { conversation: id } => {
                commit.conversations.push(ConversationUpdate {
                    state: Some("dismissed".into()),
                    ..conversation(id)
                })
            }
            other => tracing::debug!(event = ?word(&other), "integration event"),
        },
        // Offers and refusals reach agents through the API's event stream (next issue).
        other => tracing::debug!(action = ?std::mem::discriminant(&other), "routing action"),
    }
    Ok(())
}

/// A token bucket: `rate` sends per second, bursts of `rate`.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            tokens: rate.max(1.0),
            at: Instant::now(),
        }
    }

    /// How long to wait before the next send (taking its token).
    fn take(&mut self) -> Duration {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Default sends per second per sender, from the providers' documented limits: Meta Cloud
/// API 80 mps per number; Twilio WhatsApp 10 mps (a US long code SMS is 1 segment/s, set
/// `rate_per_second` on such channels).
fn default_rate(connector_id: &str) -> f64 {
    match connector_id {
        "meta-whatsapp" | "meta-messenger" => 80.0,
        "twilio" => 10.0,
        _ => 10.0,
    }
}

struct Sender {
    store: Arc<dyn Store>,
    channels: HashMap<String, Arc<Channel>>,
    transport: Transport,
    worker: String,
    lease: Duration,
    wake: Arc<Notify>,
    buckets: HashMap<String, Bucket>,
}

impl Sender {
    async fn run(mut self) {
        loop {
            match self.step().await {
                Ok(0) => {
                    let _ = tokio::time::timeout(IDLE_POLL, self.wake.notified()).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "send step failed; retrying");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    }

    async fn step(&mut self) -> Result<usize, StoreError> {
        let expired = self.store.expire_sending(now()).await?;
        if expired > 0 {
            tracing::warn!(expired, "sends interrupted by a stop recorded as unknown");
        }
        let jobs = self
            .store
            .claim_outbox(&self.worker, now(), self.lease, SEND_BATCH)
            .await?;
        for job in &jobs {
            let outcome = self.send(job).await;
            match &outcome {
                OutboxOutcome::Sent(receipt) => {
                    tracing::info!(job = job.id, channel = %job.channel_id, provider_id = %receipt.provider_message_id, "sent")
                }
                other => {
                    tracing::warn!(job = job.id, channel = %job.channel_id, outcome = ?other, "not sent")
                }
            }
            if !self
                .store
                .finish_outbox(job.id, &self.worker, &outcome, now())
                .await?
            {
                tracing::warn!(job = job.id, "lost the claim before recording the result");
            }
        }
        Ok(jobs.len())
    }

    async fn send(&mut self, job: &OutboxJob) -> OutboxOutcome {
        let Some(channel) = self.channels.get(&job.channel_id).cloned() else {
            return OutboxOutcome::Failed {
                class: None,
                error: format!("no channel `{}` is configured", job.channel_id),
            };
        };
        let rate = channel
            .ctx
            .settings
            .get("rate_per_second")
            .and_then(serde_json::Value::as_f64)
            .filter(|r| *r > 0.0)
            .unwrap_or_else(|| default_rate(&channel.connector_id));
        let wait = self
            .buckets
            .entry(channel.id.clone())
            .or_insert_with(|| Bucket::new(rate))
            .take();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let result = self
            .transport
            .send(
                channel.connector.as_ref(),
                &channel.ctx,
                &channel.secrets,
                &job.message,
            )
            .await;
        classify(result, job.attempts, now())
    }
}

/// The delay before attempt `attempts + 1`: exponential from [`BACKOFF_BASE`], capped, with
/// ±20 % jitter, and never shorter than the provider's Retry-After.
pub(crate) fn backoff(attempts: i64, retry_after: Option<Duration>, jitter: u64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let base = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(BACKOFF_CAP);
    // jitter in [0.8, 1.2)
    let factor = 0.8 + (jitter % 4000) as f64 / 10_000.0;
    let jittered = base.mul_f64(factor);
    match retry_after {
        Some(after) if after > jittered => after,
        _ => jittered,
    }
}

/// The outbox outcome of one send attempt, from the error class.
pub(crate) fn classify(
    result: Result<switchboard_core::SendReceipt, SendError>,
    attempts: i64,
    now: Timestamp,
) -> OutboxOutcome {
    let error = match result {
        Ok(receipt) => return OutboxOutcome::Sent(receipt),
        Err(error) => error,
    };
    let text = error.to_string();
    if error.outcome_unknown() {
        return OutboxOutcome::Unknown { error: text };
    }
    let retry = |retry_after: Option<Duration>| {
        if attempts >= MAX_ATTEMPTS {
            OutboxOutcome::Failed {
                class: Some(ErrorClass::Retryable),
                error: format!("gave up after {attempts} attempts: {text}"),
            }
        } else {
            OutboxOutcome::Retry {
                at: now.saturating_add(backoff(attempts, retry_after, jitter_seed())),
                error: text.clone(),
            }
        }
    };
    match &error {
        SendError::Provider(provider) => match provider.class {
            ErrorClass::Retryable | ErrorClass::Throttled => retry(provider.retry_after),
            ErrorClass::OptedOut => OutboxOutcome::OptedOut {
                error: text.clone(),
            },
            class => OutboxOutcome::Failed {
                class: Some(class),
                error: text.clone(),
            },
        },
        // Not sent at all (connection refused, DNS): safe to retry.
        SendError::Transport(_) if error.not_sent() => retry(None),
        _ => OutboxOutcome::Failed {
            class: None,
            error: text.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::{DeliveryStatus, ProviderError, SendReceipt};

    fn t() -> Timestamp {
        Timestamp::from_unix_seconds(1_700_000_000)
    }

    #[test]
    fn backoff_grows_is_capped_jittered_and_honours_retry_after() {
        assert_eq!(backoff(1, None, 2000), Duration::from_secs(2));
        assert_eq!(backoff(3, None, 2000), Duration::from_secs(8));
        assert_eq!(backoff(30, None, 2000), BACKOFF_CAP);
        assert!(backoff(1, None, 0) >= Duration::from_millis(1600));
        assert!(backoff(1, None, 3999) < Duration::from_millis(2400));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(90)), 0),
            Duration::from_secs(90)
        );
    }

    #[test]
    fn the_error_class_decides() {
        let sent = classify(Ok(SendReceipt::new("SM1", DeliveryStatus::Queued)), 1, t());
        assert!(matches!(sent, OutboxOutcome::Sent(_)));
        let throttled = ProviderError {
            retry_after: Some(Duration::from_secs(120)),
            ..ProviderError::new(ErrorClass::Throttled, "slow down")
        };
        match classify(Err(SendError::Provider(throttled.clone())), 1, t()) {
            OutboxOutcome::Retry { at, .. } => {
                assert!(at >= t().saturating_add(Duration::from_secs(120)))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(Err(SendError::Provider(throttled)), MAX_ATTEMPTS, t()),
            OutboxOutcome::Failed { .. }
        ));
        let opted = ProviderError::new(ErrorClass::OptedOut, "21610");
        assert!(matches!(
            classify(Err(SendError::Provider(opted)), 1, t()),
            OutboxOutcome::OptedOut { .. }
        ));
        let invalid = ProviderError::new(ErrorClass::InvalidRecipient, "bad number");
        assert!(matches!(
            classify(Err(SendError::Provider(invalid)), 1, t()),
            OutboxOutcome::Failed {
                class: Some(ErrorClass::InvalidRecipient),
                ..
            }
        ));
    }

    #[test]
    fn the_bucket_paces_after_the_burst() {
        let mut bucket = Bucket::new(2.0);
        assert_eq!(bucket.take(), Duration::ZERO);
        assert_eq!(bucket.take(), Duration::ZERO);
        assert!(bucket.take() > Duration::from_millis(400));
    }
}
