//! Integration event webhooks (`[[event_subscriptions]]`, `docs/gateway.md` "Event webhooks").
//!
//! [`EventRouter`] turns what happened (a stored inbound message or status, a routing step's
//! actions) into one queued delivery per interested subscription, with the exact JSON body
//! (`{"type", "timestamp", "data"}`) and a `webhook-id` fixed at that moment; the caller hands
//! them to the store in the transaction of the change itself. [`EventDeliverer`] claims due
//! deliveries with a lease, signs them per Standard Webhooks (one `v1,` signature per
//! configured secret, for rotation) and POSTs them through the transport under the same egress
//! policy as the connectors: 2xx delivered; 410 disables the subscription (persisted); 408,
//! 429, 5xx and network failures retried with exponential backoff, jitter and `Retry-After`,
//! until the schedule is spent; anything else failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::outbound_auth::OutboundAuth;
use switchboard_core::webhook_auth::sign_standard_webhooks;
use switchboard_core::{HttpRequest, InboundEvent, Method, SecretName, Secrets, Timestamp};
use switchboard_store::{EventDelivery, EventDeliveryOutcome, NewEventDelivery, Store, StoreError};
use switchboard_transport::{Transport, TransportError};

use super::workers::{IDLE_POLL, jitter_seed, now};

/// `message.received`: an inbound message was stored.
pub(crate) const MESSAGE_RECEIVED: &str = "message.received";
/// `message.status`: a delivery status of an outbound message was stored.
pub(crate) const MESSAGE_STATUS: &str = "message.status";
/// `conversation.assigned`: an agent accepted a conversation, or a transfer completed.
pub(crate) const CONVERSATION_ASSIGNED: &str = "conversation.assigned";
/// `conversation.ended`: a conversation ended; carries the transcript.
pub(crate) const CONVERSATION_ENDED: &str = "conversation.ended";
/// Every event type, in the order the docs list them.
pub(crate) const EVENT_TYPES: [&str; 4] = [
    MESSAGE_RECEIVED,
    MESSAGE_STATUS,
    CONVERSATION_ASSIGNED,
    CONVERSATION_ENDED,
];

/// The default delays between attempts, seconds: the Standard Webhooks example schedule
/// (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; 10 attempts over about 3 days).
pub(crate) const DEFAULT_RETRY_SECS: [u64; 9] =
    [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Deliveries claimed at once by one worker.
const BATCH: u32 = 16;

/// A checked `[[event_subscriptions]]` entry.
#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    /// The id (the store keys deliveries and the disabled list by it).
    pub(crate) id: String,
    /// The destination (checked against the egress policy at start).
    pub(crate) url: String,
    /// The event types it wants (`None`: all).
    pub(crate) events: Option<Vec<String>>,
    /// The signing secrets by name (`secrets[0]`, `secrets[1]`, …).
    pub(crate) secrets: Secrets,
    /// Their names, in the configured order: one signature each.
    pub(crate) secret_names: Vec<SecretName>,
}

impl Subscription {
    fn wants(&self, event_type: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|events| events.iter().any(|e| e == event_type))
    }
}

/// Which subscriptions want which events, and the deliveries for one event.
#[derive(Clone, Debug, Default)]
pub(crate) struct EventRouter {
    subscriptions: Arc<Vec<Subscription>>,
}

/// A process-wide counter that makes webhook ids unique within the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A new `webhook-id`: `msg_` and 32 hex digits (time, a per-call random value, a counter).
fn webhook_id(now: Timestamp) -> String {
    let count = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    format!(
        "msg_{:011x}{:016x}{:05x}",
        now.unix_millis() & 0xfff_ffff_ffff,
        jitter_seed() ^ (u64::from(std::process::id()) << 32),
        count & 0xf_ffff
    )
}

impl EventRouter {
    /// A router for these subscriptions.
    pub(crate) fn new(subscriptions: Vec<Subscription>) -> Self {
        Self {
            subscriptions: Arc::new(subscriptions),
        }
    }

    /// The subscriptions.
    pub(crate) fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// Whether any subscription wants `event_type`.
    pub(crate) fn wants(&self, event_type: &str) -> bool {
        self.subscriptions.iter().any(|s| s.wants(event_type))
    }

    /// One delivery per subscription that wants `event_type`: the same body (`type`,
    /// `timestamp`, `data`), its own `webhook-id`.
    pub(crate) fn deliveries(
        &self,
        event_type: &str,
        data: Value,
        now: Timestamp,
    ) -> Vec<NewEventDelivery> {
        if !self.wants(event_type) {
            return Vec::new();
        }
        let body = json!({ "type": event_type, "timestamp": now, "data": data }).to_string();
        self.subscriptions
            .iter()
            .filter(|s| s.wants(event_type))
            .map(|s| NewEventDelivery {
                subscription: s.id.clone(),
                event_type: event_type.to_owned(),
                webhook_id: webhook_id(now),
                payload: body.clone(),
            })
            .collect()
    }

    /// The deliveries of a webhook's events, by event index: `message.received` for
    /// messages, `message.status` for statuses (the store queues them only for events it
    /// stores, not for duplicates).
    pub(crate) fn ingest_deliveries(
        &self,
        channel_id: &str,
        events: &[InboundEvent],
        now: Timestamp,
    ) -> Vec<(usize, NewEventDelivery)> {
        let mut out = Vec::new();
        if self.subscriptions.is_empty() {
            return out;
        }
        for (index, event) in events.iter().enumerate() {
            let (event_type, data) = match event {
                InboundEvent::Message(message) => (
                    MESSAGE_RECEIVED,
                    json!({ "channel_id": channel_id, "message": message }),
                ),
                InboundEvent::Status(status) => (
                    MESSAGE_STATUS,
                    json!({ "channel_id": channel_id, "status": status }),
                ),
                _ => continue,
            };
            for delivery in self.deliveries(event_type, data, now) {
                out.push((index, delivery));
            }
        }
        out
    }
}

/// `[[event_subscriptions]]` in the configuration file.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubscriptionConfig {
    /// The id: letters, digits, `-`, `_`, `.`.
    pub(crate) id: String,
    /// The destination URL (`https://`; its host must be allowed by `[transport] allow_hosts`).
    pub(crate) url: String,
    /// Event types, or `["*"]` for all.
    pub(crate) events: Vec<String>,
    /// Signing secrets, `env:NAME` or `file:PATH`, each `whsec_` + base64: every message is
    /// signed with each of them (rotation).
    pub(crate) secrets: Vec<switchboard_conformance::fixture::SecretRef>,
}

/// Checks `[[event_subscriptions]]`; problems go to `push(field, reason)`.
pub(crate) fn resolve(
    configs: &[SubscriptionConfig],
    push: &mut impl FnMut(String, String),
) -> Vec<Subscription> {
    let mut out: Vec<Subscription> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, config) in configs.iter().enumerate() {
        let at = |field: &str| format!("event_subscriptions[{i}].{field}");
        let mut ok = true;
        if config.id.is_empty()
            || !config
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            push(
                at("id"),
                "must be non-empty letters, digits, `-`, `_` or `.`".into(),
            );
            ok = false;
        } else if !seen.insert(config.id.as_str()) {
            push(
                at("id"),
                format!("duplicate subscription id `{}`", config.id),
            );
            ok = false;
        }
        if let Err(e) = reqwest::Url::parse(&config.url) {
            push(at("url"), format!("not a URL: {e}"));
            ok = false;
        }
        let events = if config.events.iter().any(|e| e == "*") {
            None
        } else {
            for (j, event) in config.events.iter().enumerate() {
                if !EVENT_TYPES.contains(&event.as_str()) {
                    push(
                        at(&format!("events[{j}]")),
                        format!(
                            "unknown event type `{event}`; known: {}, or \"*\" for all",
                            EVENT_TYPES.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
            if config.events.is_empty() {
                push(
                    at("events"),
                    "list at least one event type, or \"*\"".into(),
                );
                ok = false;
            }
            Some(config.events.clone())
        };
        if config.secrets.is_empty() {
            push(
                at("secrets"),
                "at least one `whsec_…` signing secret (`env:NAME`)".into(),
            );
            ok = false;
        }
        let mut secrets = Secrets::default();
        let mut secret_names = Vec::new();
        for (j, reference) in config.secrets.iter().enumerate() {
            let name = format!("secrets[{j}]");
            match reference.resolve(&name) {
                Ok(secret) => {
                    let name = SecretName::new(name);
                    secrets.insert(name.clone(), secret);
                    // Signing a probe checks the format (`whsec_` + base64, not empty).
                    let probe = sign_standard_webhooks(
                        std::slice::from_ref(&name),
                        &secrets,
                        "msg_probe",
                        Timestamp::from_unix_seconds(0),
                        b"",
                    );
                    if let Err(e) = probe {
                        push(at(&format!("secrets[{j}]")), e.to_string());
                        ok = false;
                    }
                    secret_names.push(name);
                }
                Err(e) => {
                    push(at(&format!("secrets[{j}]")), e.to_string());
                    ok = false;
                }
            }
        }
        if ok {
            out.push(Subscription {
                id: config.id.clone(),
                url: config.url.clone(),
                events,
                secrets,
                secret_names,
            });
        }
    }
    out
}

/// Checks every subscription's URL against the egress policy the deliveries go through.
///
/// # Errors
///
/// The first refused URL, naming the subscription and what to allow.
pub(crate) fn check_egress(router: &EventRouter, transport: &Transport) -> anyhow::Result<()> {
    for (i, s) in router.subscriptions().iter().enumerate() {
        let url = reqwest::Url::parse(&s.url)
            .map_err(|e| anyhow::anyhow!("event_subscriptions[{i}].url: {e}"))?;
        if let Err(e) = transport.egress_policy().check_url(&url) {
            anyhow::bail!(
                "event_subscriptions[{i}].url: {e}; event webhooks go through the connectors' \
                 egress policy: add the host to [transport] allow_hosts (https only)"
            );
        }
    }
    Ok(())
}

/// The delivery worker.
pub(crate) struct EventDeliverer {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) router: EventRouter,
    /// The transport, with the connectors' egress policy and the delivery timeout.
    pub(crate) transport: Transport,
    pub(crate) worker: String,
    pub(crate) lease: Duration,
    /// Delays between attempts; attempts = its length + 1.
    pub(crate) retry: Arc<Vec<Duration>>,
}

impl EventDeliverer {
    pub(crate) async fn run(self) {
        let by_id: BTreeMap<String, Subscription> = self
            .router
            .subscriptions()
            .iter()
            .map(|s| (s.id.clone(), s.clone()))
            .collect();
        match self.store.disabled_event_subscriptions().await {
            Ok(disabled) => {
                for d in disabled
                    .iter()
                    .filter(|d| by_id.contains_key(&d.subscription))
                {
                    tracing::warn!(
                        subscription = %d.subscription,
                        reason = %d.reason,
                        since = %d.disabled_at,
                        "event subscription is disabled (its endpoint answered 410 Gone); \
                         give it a new id to subscribe again"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read disabled event subscriptions"),
        }
        loop {
            match self.step(&by_id).await {
                Ok(0) => tokio::time::sleep(IDLE_POLL).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "event delivery step failed; retrying");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    }

    async fn step(&self, by_id: &BTreeMap<String, Subscription>) -> Result<usize, StoreError> {
        let claimed = self
            .store
            .claim_event_deliveries(&self.worker, now(), self.lease, BATCH)
            .await?;
        for delivery in &claimed {
            let outcome = match by_id.get(&delivery.subscription) {
                Some(subscription) => self.attempt(subscription, delivery).await,
                None => EventDeliveryOutcome::Failed {
                    error: "the subscription is no longer configured".into(),
                },
            };
            match &outcome {
                EventDeliveryOutcome::Delivered => tracing::debug!(
                    subscription = %delivery.subscription,
                    webhook_id = %delivery.webhook_id,
                    "event delivered"
                ),
                EventDeliveryOutcome::Gone { error } => tracing::warn!(
                    subscription = %delivery.subscription,
                    %error,
                    "event subscription disabled: its endpoint answered 410 Gone"
                ),
                EventDeliveryOutcome::Retry { at, error } => tracing::info!(
                    subscription = %delivery.subscription,
                    webhook_id = %delivery.webhook_id,
                    %at,
                    %error,
                    "event delivery will be retried"
                ),
                EventDeliveryOutcome::Failed { error } => tracing::warn!(
                    subscription = %delivery.subscription,
                    webhook_id = %delivery.webhook_id,
                    %error,
                    "event delivery failed"
                ),
            }
            let finished = self
                .store
                .finish_event_delivery(delivery.id, &self.worker, &outcome, now())
                .await?;
            if !finished {
                tracing::info!(
                    webhook_id = %delivery.webhook_id,
                    "event delivery no longer ours (lease ran out or subscription disabled)"
                );
            }
        }
        Ok(claimed.len())
    }

    /// One signed POST and what it means.
    async fn attempt(
        &self,
        subscription: &Subscription,
        delivery: &EventDelivery,
    ) -> EventDeliveryOutcome {
        let sent_at = now();
        let signature = match sign_standard_webhooks(
            &subscription.secret_names,
            &subscription.secrets,
            &delivery.webhook_id,
            sent_at,
            delivery.payload.as_bytes(),
        ) {
            Ok(signature) => signature,
            Err(e) => {
                return EventDeliveryOutcome::Failed {
                    error: format!("cannot sign: {e}"),
                };
            }
        };
        let mut request = HttpRequest::new(Method::Post, subscription.url.clone())
            .with_header("content-type", "application/json")
            .with_header("webhook-id", delivery.webhook_id.clone())
            .with_header("webhook-timestamp", sent_at.unix_seconds().to_string())
            .with_header("webhook-signature", signature);
        request.body = delivery.payload.clone().into_bytes();
        let result = self
            .transport
            .execute(&request, &OutboundAuth::None, &Secrets::default())
            .await;
        let (retryable, error, retry_after) = match result {
            Ok(exchange) => {
                let response = exchange.response;
                match response.status {
                    200..=299 => return EventDeliveryOutcome::Delivered,
                    410 => {
                        return EventDeliveryOutcome::Gone {
                            error: "HTTP 410 Gone".into(),
                        };
                    }
                    status @ (408 | 429 | 500..=599) => (
                        true,
                        format!("HTTP {status}"),
                        response.header("retry-after").and_then(parse_retry_after),
                    ),
                    status => (false, format!("HTTP {status}"), None),
                }
            }
            Err(e) => (is_retryable(&e), e.to_string(), None),
        };
        if !retryable {
            return EventDeliveryOutcome::Failed { error };
        }
        let attempts = usize::try_from(delivery.attempts).unwrap_or(usize::MAX);
        match self.retry.get(attempts.saturating_sub(1)) {
            Some(&delay) => {
                let delay = jittered(delay).max(retry_after.unwrap_or_default());
                EventDeliveryOutcome::Retry {
                    at: sent_at.saturating_add(delay),
                    error,
                }
            }
            None => EventDeliveryOutcome::Failed {
                error: format!("gave up after {attempts} attempts: {error}"),
            },
        }
    }
}

/// Network failures and timeouts are retried; a refused destination or a bad request is not.
fn is_retryable(error: &TransportError) -> bool {
    !matches!(
        error,
        TransportError::EgressDenied(_)
            | TransportError::InvalidUrl { .. }
            | TransportError::InvalidHeader { .. }
            | TransportError::InvalidRequest { .. }
            | TransportError::MissingSecret { .. }
            | TransportError::UnsupportedAuth
            | TransportError::TooManyRedirects { .. }
            | TransportError::BadRedirect { .. }
    )
}

/// `delay` ±20 %.
fn jittered(delay: Duration) -> Duration {
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let spread = millis / 5;
    if spread == 0 {
        return delay;
    }
    let offset = jitter_seed() % (2 * spread + 1);
    Duration::from_millis(millis - spread + offset)
}

/// `Retry-After` in seconds (an HTTP date is not honoured: the backoff applies), capped.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    fn subscription(id: &str, events: Option<Vec<&str>>) -> Subscription {
        Subscription {
            id: id.into(),
            url: "https://crm.example.com/hooks".into(),
            events: events.map(|e| e.into_iter().map(str::to_owned).collect()),
            secrets: Secrets::default(),
            secret_names: Vec::new(),
        }
    }

    #[test]
    fn deliveries_go_to_interested_subscriptions_with_one_body_and_distinct_ids() {
        let router = EventRouter::new(vec![
            subscription("all", None),
            subscription("ended", Some(vec![CONVERSATION_ENDED])),
        ]);
        let now = Timestamp::from_unix_seconds(1_700_000_000);
        let received = router.deliveries(MESSAGE_RECEIVED, json!({"x": 1}), now);
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].subscription, "all");
        let body: Value = serde_json::from_str(&received[0].payload).unwrap();
        assert_eq!(
            body,
            json!({"type": "message.received", "timestamp": "2023-11-14T22:13:20Z", "data": {"x": 1}})
        );
        let ended = router.deliveries(CONVERSATION_ENDED, json!({}), now);
        assert_eq!(ended.len(), 2);
        assert_eq!(ended[0].payload, ended[1].payload);
        assert_ne!(ended[0].webhook_id, ended[1].webhook_id);
        assert!(ended.iter().all(|d| d.webhook_id.starts_with("msg_")
            && d.webhook_id.len() == 36
            && !d.webhook_id.contains('.')));
        assert!(
            EventRouter::default()
                .deliveries(MESSAGE_RECEIVED, json!({}), now)
                .is_empty()
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_retry_after_is_capped() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(10));
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn configuration_problems_are_listed_by_field() {
        let configs: Vec<SubscriptionConfig> =
            toml::from_str::<BTreeMap<String, Vec<SubscriptionConfig>>>(
                r#"
            [[s]]
            id = "crm"
            url = "not a url"
            events = ["message.received", "message.nope"]
            secrets = ["env:SWITCHBOARD_TEST_SURELY_UNSET"]
            [[s]]
            id = "crm"
            url = "https://crm.example.com/"
            events = []
            secrets = []
            "#,
            )
            .unwrap()
            .remove("s")
            .unwrap();
        let mut problems = Vec::new();
        let resolved = resolve(&configs, &mut |field, _reason| problems.push(field));
        assert!(resolved.is_empty());
        assert_eq!(
            problems,
            [
                "event_subscriptions[0].url",
                "event_subscriptions[0].events[1]",
                "event_subscriptions[0].secrets[0]",
                "event_subscriptions[1].id",
                "event_subscriptions[1].events",
                "event_subscriptions[1].secrets",
            ]
        );
    }
}
