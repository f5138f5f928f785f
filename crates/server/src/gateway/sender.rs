//! The sender: turns `sending` rows whose lease expired into `unknown` (the worker died during
//! the send: never re-sent blindly), claims due outbox rows with a lease, paces each channel
//! with a token bucket, sends through the connector and the transport, and records the result
//! by error class: retry with exponential backoff and jitter (at least the provider's
//! Retry-After), permanent failure, opted out, or unknown outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_core::{CLIENT_REFERENCE, Content, ErrorClass, Timestamp};
use switchboard_store::{OutboxJob, OutboxOutcome, Store, StoreError};
use switchboard_transport::{SendError, Transport};
use tokio::sync::Notify;

use super::metrics::{Metrics, SendSample};
use super::workers::{IDLE_POLL, jitter_seed, now};
use crate::config::Channel;

/// One send per claim: a claimed row is `sending` until its result is recorded, so a crash
/// leaves at most one row per sender whose outcome is unknown.
const SEND_BATCH: u32 = 1;
/// After this many attempts a retryable failure becomes permanent.
pub(crate) const MAX_ATTEMPTS: i64 = 8;
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(600);

/// A token bucket: `rate` sends per second, bursts of `burst`.
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// Takes a token and says how long to wait before using it (the caller waits its turn).
    fn take(&mut self) -> Duration {
        self.refill();
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Takes a token when one is there; otherwise takes nothing and says when one will be.
    fn try_take(&mut self) -> Result<(), Duration> {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    fn is_full(&mut self) -> bool {
        self.refill();
        self.tokens >= self.burst
    }
}

/// A rate limit: sustained sends per second and the burst allowed on top.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Limit {
    pub(crate) per_second: f64,
    pub(crate) burst: f64,
}

impl Limit {
    /// The channel's setting `{prefix}rate_per_second` (and `{prefix}burst`), else `default`.
    fn from_settings(channel: &Channel, prefix: &str, default: Option<Limit>) -> Option<Limit> {
        let number = |name: &str| {
            channel
                .ctx
                .settings
                .get(format!("{prefix}{name}").as_str())
                .and_then(serde_json::Value::as_f64)
                .filter(|v| *v > 0.0)
        };
        match number("rate_per_second") {
            Some(per_second) => Some(Limit {
                per_second,
                burst: number("burst").unwrap_or(per_second.max(1.0)),
            }),
            None => default,
        }
    }
}

/// Default sends per second per sender, from the providers' documented limits: Meta Cloud
/// API 80 mps per number; Twilio WhatsApp 10 mps (a US long code SMS is 1 segment/s, set
/// `rate_per_second` on such channels).
fn default_channel_limit(connector_id: &str) -> Limit {
    let per_second = match connector_id {
        "meta-whatsapp" | "meta-messenger" => 80.0,
        _ => 10.0,
    };
    Limit {
        per_second,
        burst: per_second,
    }
}

/// Default per-recipient limit: Meta's pair rate for WhatsApp (about one message per 6 s to
/// the same user, error 131056, with short bursts allowed); none elsewhere unless configured
/// (`recipient_rate_per_second`, `recipient_burst`).
fn default_recipient_limit(connector_id: &str) -> Option<Limit> {
    (connector_id == "meta-whatsapp").then_some(Limit {
        per_second: 1.0 / 6.0,
        burst: 10.0,
    })
}

/// Paces sends: one bucket per channel (the caller waits its turn) and one per recipient (a
/// send over the limit is deferred, so one busy customer never holds up the others). Shared
/// by the senders.
#[derive(Default)]
pub(crate) struct Pacer {
    channels: HashMap<String, Bucket>,
    recipients: HashMap<(String, String), Bucket>,
}

/// Idle recipient buckets are forgotten once there are this many.
const RECIPIENTS_KEPT: usize = 10_000;

impl Pacer {
    /// `Err(wait)` when the recipient must wait; otherwise how long to wait for the channel.
    fn admit(&mut self, channel: &Channel, recipient: &str) -> Result<Duration, Duration> {
        let recipient_limit = Limit::from_settings(
            channel,
            "recipient_",
            default_recipient_limit(&channel.connector_id),
        );
        if let Some(limit) = recipient_limit {
            if self.recipients.len() >= RECIPIENTS_KEPT {
                self.recipients.retain(|_, bucket| !bucket.is_full());
            }
            self.recipients
                .entry((channel.id.clone(), recipient.to_owned()))
                .or_insert_with(|| Bucket::new(limit.per_second, limit.burst))
                .try_take()?;
        }
        let limit = Limit::from_settings(channel, "", None)
            .unwrap_or_else(|| default_channel_limit(&channel.connector_id));
        Ok(self
            .channels
            .entry(channel.id.clone())
            .or_insert_with(|| Bucket::new(limit.per_second, limit.burst))
            .take())
    }
}

/// One sender: claims a due outbox row, sends it, records the outcome. Several run at once.
pub(crate) struct Sender {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) channels: HashMap<String, Arc<Channel>>,
    pub(crate) transport: Transport,
    pub(crate) worker: String,
    pub(crate) lease: Duration,
    pub(crate) wake: Arc<Notify>,
    pub(crate) pacer: Arc<Mutex<Pacer>>,
    /// The re-contact template of each routing account (= channel) that has one.
    pub(crate) recontact: Arc<HashMap<String, Content>>,
    /// Counts each attempt and keeps the channel's health.
    pub(crate) metrics: Arc<Metrics>,
}

impl Sender {
    pub(crate) async fn run(self) {
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

    async fn step(&self) -> Result<usize, StoreError> {
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
                OutboxOutcome::Defer { .. } => {
                    tracing::debug!(job = job.id, channel = %job.channel_id, "deferred: recipient rate limit")
                }
                OutboxOutcome::Rewrite { error, .. } => {
                    tracing::info!(job = job.id, channel = %job.channel_id, %error, "sending the re-contact template instead")
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

    async fn send(&self, job: &OutboxJob) -> OutboxOutcome {
        let Some(channel) = self.channels.get(&job.channel_id).cloned() else {
            return OutboxOutcome::Failed {
                class: None,
                error: format!("no channel `{}` is configured", job.channel_id),
            };
        };
        // The pacer holds only counters: one left by a panicking holder is still usable.
        let admitted = self
            .pacer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .admit(&channel, &job.message.to.id);
        match admitted {
            Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Ok(_) => {}
            Err(wait) => {
                let outcome = OutboxOutcome::Defer {
                    at: now().saturating_add(wait.max(Duration::from_millis(10))),
                };
                let sample = SendSample::not_attempted();
                self.metrics
                    .send(&channel.id, &sample, &outcome, None, now());
                return outcome;
            }
        }
        // One connector version for the whole send, even if a plugin is reloaded meanwhile.
        let connector = channel.current();
        // Providers that echo a reference on statuses get the idempotency key, so a status can
        // settle this send if its answer is lost (the store matches it; see CLIENT_REFERENCE).
        let mut message = job.message.clone();
        message
            .extensions
            .entry(CLIENT_REFERENCE.to_owned())
            .or_insert_with(|| job.message.idempotency_key.clone().into());
        let started = Instant::now();
        let result = self
            .transport
            .send(connector.as_ref(), &channel.ctx, &channel.secrets, &message)
            .await;
        let elapsed = started.elapsed();
        let sample = SendSample::of(&result);
        let outcome = classify(result, job.attempts, now());
        let outcome = recontact(outcome, job, self.recontact.get(&job.channel_id));
        self.metrics
            .send(&channel.id, &sample, &outcome, Some(elapsed), now());
        outcome
    }
}

/// A free-form message the provider refused because the customer-service window had closed is
/// sent again as the account's re-contact template, once (a template refused likewise fails).
fn recontact(outcome: OutboxOutcome, job: &OutboxJob, template: Option<&Content>) -> OutboxOutcome {
    match (&outcome, template) {
        (
            OutboxOutcome::Failed {
                class: Some(ErrorClass::WindowClosed),
                error,
            },
            Some(template),
        ) if !matches!(job.message.content, Content::Template(_)) => {
            let mut message = job.message.clone();
            message.content = template.clone();
            OutboxOutcome::Rewrite {
                message: Box::new(message),
                error: error.clone(),
            }
        }
        _ => outcome,
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
        let mut bucket = Bucket::new(2.0, 2.0);
        assert_eq!(bucket.take(), Duration::ZERO);
        assert_eq!(bucket.take(), Duration::ZERO);
        assert!(bucket.take() > Duration::from_millis(400));
    }

    #[test]
    fn try_take_refuses_without_spending() {
        let mut bucket = Bucket::new(1.0 / 6.0, 2.0);
        assert_eq!(bucket.try_take(), Ok(()));
        assert_eq!(bucket.try_take(), Ok(()));
        let wait = bucket.try_take().unwrap_err();
        assert!(wait > Duration::from_secs(5) && wait <= Duration::from_secs(6));
        // Refusals do not dig the hole deeper.
        let again = bucket.try_take().unwrap_err();
        assert!(again <= wait);
    }

    fn job(content: Content) -> OutboxJob {
        OutboxJob {
            id: 1,
            channel_id: "wa".into(),
            conversation_id: Some("conv_1".into()),
            message: switchboard_core::OutboundMessage::new(
                "k1",
                switchboard_core::Address::new(
                    switchboard_core::Channel::WhatsApp,
                    switchboard_core::AddressKind::WhatsAppId,
                    "15551234",
                ),
                content,
            ),
            state: switchboard_store::OutboxState::Sending,
            attempts: 1,
            next_attempt_at: t(),
            provider_message_id: None,
            last_error: None,
        }
    }

    #[test]
    fn a_closed_window_resends_free_text_as_the_recontact_template_once() {
        let template: Content = serde_json::from_value(serde_json::json!({
            "type": "template", "name": "recontact", "language": "en"
        }))
        .unwrap();
        let closed = OutboxOutcome::Failed {
            class: Some(ErrorClass::WindowClosed),
            error: "131047".into(),
        };
        match recontact(
            closed.clone(),
            &job(Content::text("hello?")),
            Some(&template),
        ) {
            OutboxOutcome::Rewrite { message, .. } => {
                assert_eq!(message.content, template);
                assert_eq!(message.idempotency_key, "k1");
            }
            other => panic!("{other:?}"),
        }
        // Already a template, or no template configured: the failure stands.
        assert_eq!(
            recontact(closed.clone(), &job(template.clone()), Some(&template)),
            closed
        );
        assert_eq!(
            recontact(closed.clone(), &job(Content::text("x")), None),
            closed
        );
    }
}
