//! The sender: turns `sending` rows whose lease expired into `unknown` (the worker died during
//! the send: never re-sent blindly), claims due outbox rows with a lease, paces each channel
//! with a token bucket, sends through the connector and the transport, and records the result
//! by error class: retry with exponential backoff and jitter (at least the provider's
//! Retry-After), permanent failure, opted out, or unknown outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{ErrorClass, Timestamp};
use switchboard_store::{OutboxJob, OutboxOutcome, Store, StoreError};
use switchboard_transport::{SendError, Transport};
use tokio::sync::Notify;

use super::workers::{IDLE_POLL, jitter_seed, now};
use crate::config::Channel;

/// One send per claim: a claimed row is `sending` until its result is recorded, so a crash
/// leaves at most one row per sender whose outcome is unknown.
const SEND_BATCH: u32 = 1;
/// After this many attempts a retryable failure becomes permanent.
pub(crate) const MAX_ATTEMPTS: i64 = 8;
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(600);

/// A token bucket: `rate` sends per second, bursts of `rate`.
pub(crate) struct Bucket {
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

pub(crate) struct Sender {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) channels: HashMap<String, Arc<Channel>>,
    pub(crate) transport: Transport,
    pub(crate) worker: String,
    pub(crate) lease: Duration,
    pub(crate) wake: Arc<Notify>,
    pub(crate) buckets: HashMap<String, Bucket>,
}

impl Sender {
    pub(crate) async fn run(mut self) {
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
