//! The integration-event delivery queue (`event_deliveries`): one row per event and
//! subscription, queued in the transaction of the change that caused the event (ingest, a
//! routing commit), claimed with a lease, finished by the delivery worker.
//!
//! The store knows neither the configuration nor the payload shape: the server says which
//! subscriptions want an event and hands over the exact body to send and its `webhook-id`.

use std::fmt;
use std::time::Duration;

use switchboard_core::Timestamp;

use crate::StoreError;
use crate::shared::{Columns, Steps, millis};

/// A delivery to queue: one event for one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEventDelivery {
    /// The subscription's id (from the configuration).
    pub subscription: String,
    /// The event type, e.g. `message.received`.
    pub event_type: String,
    /// The Standard Webhooks `webhook-id` (`msg_…`, no `.`): unique, the same on every
    /// attempt. A second delivery with a known id is ignored.
    pub webhook_id: String,
    /// The exact JSON body to send.
    pub payload: String,
}

/// Where a delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventDeliveryState {
    /// Waiting (first try, or a retry at `next_attempt_at`).
    Pending,
    /// Claimed by a worker that is sending it (claimed again once the lease ran out).
    Sending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: a final refusal, or too many attempts.
    Failed,
    /// Its subscription was disabled (the endpoint answered 410 Gone).
    Disabled,
}

impl EventDeliveryState {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            EventDeliveryState::Pending => "pending",
            EventDeliveryState::Sending => "sending",
            EventDeliveryState::Delivered => "delivered",
            EventDeliveryState::Failed => "failed",
            EventDeliveryState::Disabled => "disabled",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => EventDeliveryState::Pending,
            "sending" => EventDeliveryState::Sending,
            "delivered" => EventDeliveryState::Delivered,
            "failed" => EventDeliveryState::Failed,
            "disabled" => EventDeliveryState::Disabled,
            _ => return None,
        })
    }
}

impl fmt::Display for EventDeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A queued delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDelivery {
    /// Row id.
    pub id: i64,
    /// The subscription's id.
    pub subscription: String,
    /// The event type.
    pub event_type: String,
    /// The `webhook-id`.
    pub webhook_id: String,
    /// The JSON body.
    pub payload: String,
    /// Where it is.
    pub state: EventDeliveryState,
    /// Attempts so far (claims, this one included).
    pub attempts: i64,
    /// When it may be tried next.
    pub next_attempt_at: Timestamp,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
}

/// The result of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventDeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// Try again at `at` (429, 5xx, a timeout, a connection error).
    Retry {
        /// When.
        at: Timestamp,
        /// Why.
        error: String,
    },
    /// Give up on this delivery (another 4xx, a refused destination, too many attempts).
    Failed {
        /// Why.
        error: String,
    },
    /// The endpoint answered 410 Gone: the subscription is disabled (recorded, so a restart
    /// keeps it disabled), its other queued deliveries become `disabled` and nothing more is
    /// queued for it.
    Gone {
        /// Why.
        error: String,
    },
}

/// A subscription disabled by a 410 answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisabledSubscription {
    /// The subscription's id.
    pub subscription: String,
    /// Why.
    pub reason: String,
    /// When.
    pub disabled_at: Timestamp,
}

// ---- statements ----------------------------------------------------------------------------

/// `$1` subscription, `$2` event type, `$3` webhook id, `$4` payload, `$5` now. Nothing for a
/// disabled subscription or a known webhook id.
const INSERT_DELIVERY: &str = "INSERT INTO event_deliveries (subscription, event_type, webhook_id, payload, state, attempts, next_attempt_at, created_at, updated_at) \
     SELECT $1, $2, $3, $4, 'pending', 0, $5, $5, $5 \
     WHERE NOT EXISTS (SELECT 1 FROM event_subscriptions_disabled WHERE subscription = $1) \
     ON CONFLICT (webhook_id) DO NOTHING";

/// The columns [`delivery_from_row`] reads.
macro_rules! delivery_columns {
    () => {
        "id, subscription, event_type, webhook_id, payload, state, attempts, next_attempt_at, \
         last_error, created_at"
    };
}

/// `$1` worker, `$2` lease end, `$3` now, `$4` limit: due pending deliveries and sendings whose
/// lease ran out (their worker died: at least once, the receiver dedupes by `webhook-id`).
/// `{lock}` is the backend's locking clause.
macro_rules! claim_deliveries {
    ($lock:literal) => {
        concat!(
            "UPDATE event_deliveries SET state = 'sending', claimed_by = $1, lease_until = $2, \
                    attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM event_deliveries \
                          WHERE (state = 'pending' AND next_attempt_at <= $3) \
                             OR (state = 'sending' AND lease_until < $3) \
                          ORDER BY next_attempt_at, id LIMIT $4",
            $lock,
            ") RETURNING ",
            delivery_columns!()
        )
    };
}

/// The SQLite claim (one writer: no lock needed).
pub(crate) const CLAIM_SQLITE: &str = claim_deliveries!("");
/// The PostgreSQL claim: rows another instance is claiming are skipped.
pub(crate) const CLAIM_POSTGRES: &str = claim_deliveries!(" FOR UPDATE SKIP LOCKED");

/// `$1` state, `$2` next attempt (or `NULL`), `$3` error, `$4` now, `$5` id, `$6` worker.
/// Returns `subscription`; no row unless the worker holds the claim.
const FINISH_DELIVERY: &str = "UPDATE event_deliveries SET state = $1, next_attempt_at = COALESCE($2, next_attempt_at), \
        last_error = $3, claimed_by = NULL, lease_until = NULL, updated_at = $4 \
     WHERE id = $5 AND claimed_by = $6 AND state = 'sending' RETURNING subscription";

/// `$1` subscription, `$2` reason, `$3` now.
const INSERT_DISABLED: &str = "INSERT INTO event_subscriptions_disabled (subscription, reason, disabled_at) \
     VALUES ($1, $2, $3) ON CONFLICT (subscription) DO NOTHING";

/// `$1` error, `$2` now, `$3` subscription: its queued and in-flight deliveries.
const DISABLE_DELIVERIES: &str = "UPDATE event_deliveries SET state = 'disabled', last_error = $1, claimed_by = NULL, \
        lease_until = NULL, updated_at = $2 \
     WHERE subscription = $3 AND state IN ('pending', 'sending')";

/// Every delivery, oldest first.
const SELECT_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM event_deliveries ORDER BY id"
);

/// Disabled subscriptions.
const SELECT_DISABLED: &str = "SELECT subscription, reason, disabled_at FROM event_subscriptions_disabled \
     ORDER BY subscription";

fn delivery_from_row(row: &impl Columns) -> Result<EventDelivery, StoreError> {
    let state = row.text("state")?;
    Ok(EventDelivery {
        id: row.int("id")?,
        subscription: row.text("subscription")?,
        event_type: row.text("event_type")?,
        webhook_id: row.text("webhook_id")?,
        payload: row.text("payload")?,
        state: EventDeliveryState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("event delivery state `{state}`")))?,
        attempts: row.int("attempts")?,
        next_attempt_at: row.instant("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        created_at: row.instant("created_at")?,
    })
}

impl<DB> Steps<DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'a> &'a str: sqlx::ColumnIndex<DB::Row>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    /// Queues deliveries (inside the caller's transaction).
    pub(crate) async fn enqueue_event_deliveries(
        conn: &mut DB::Connection,
        deliveries: &[NewEventDelivery],
        now: i64,
    ) -> Result<(), StoreError> {
        for d in deliveries {
            sqlx::query(INSERT_DELIVERY)
                .bind(d.subscription.as_str())
                .bind(d.event_type.as_str())
                .bind(d.webhook_id.as_str())
                .bind(d.payload.as_str())
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Claims due deliveries with `claim` ([`CLAIM_SQLITE`] or [`CLAIM_POSTGRES`]).
    pub(crate) async fn claim_event_deliveries(
        conn: &mut DB::Connection,
        claim: &'static str,
        worker: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<EventDelivery>, StoreError> {
        let now = now.unix_millis();
        let rows = sqlx::query(claim)
            .bind(worker)
            .bind(now.saturating_add(millis(lease)))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
        let mut deliveries = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        deliveries.sort_by_key(|d| (d.next_attempt_at, d.id));
        Ok(deliveries)
    }

    /// Records an attempt's outcome if `worker` holds the claim (the caller commits).
    pub(crate) async fn finish_event_delivery(
        conn: &mut DB::Connection,
        id: i64,
        worker: &str,
        outcome: &EventDeliveryOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let now = now.unix_millis();
        let (state, next, error) = match outcome {
            EventDeliveryOutcome::Delivered => (EventDeliveryState::Delivered, None, None),
            EventDeliveryOutcome::Retry { at, error } => (
                EventDeliveryState::Pending,
                Some(at.unix_millis()),
                Some(error.as_str()),
            ),
            EventDeliveryOutcome::Failed { error } => {
                (EventDeliveryState::Failed, None, Some(error.as_str()))
            }
            EventDeliveryOutcome::Gone { error } => {
                (EventDeliveryState::Disabled, None, Some(error.as_str()))
            }
        };
        let row = sqlx::query(FINISH_DELIVERY)
            .bind(state.as_str())
            .bind(next)
            .bind(error)
            .bind(now)
            .bind(id)
            .bind(worker)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(false) };
        if let EventDeliveryOutcome::Gone { error } = outcome {
            let subscription = row.text("subscription")?;
            sqlx::query(INSERT_DISABLED)
                .bind(subscription.as_str())
                .bind(error.as_str())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            sqlx::query(DISABLE_DELIVERIES)
                .bind(format!("subscription disabled: {error}"))
                .bind(now)
                .bind(subscription.as_str())
                .execute(&mut *conn)
                .await?;
        }
        Ok(true)
    }

    /// Every delivery, oldest first.
    pub(crate) async fn event_deliveries(
        conn: &mut DB::Connection,
    ) -> Result<Vec<EventDelivery>, StoreError> {
        let rows = sqlx::query(SELECT_DELIVERIES).fetch_all(&mut *conn).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// The disabled subscriptions.
    pub(crate) async fn disabled_event_subscriptions(
        conn: &mut DB::Connection,
    ) -> Result<Vec<DisabledSubscription>, StoreError> {
        let rows = sqlx::query(SELECT_DISABLED).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                Ok(DisabledSubscription {
                    subscription: row.text("subscription")?,
                    reason: row.text("reason")?,
                    disabled_at: row.instant("disabled_at")?,
                })
            })
            .collect()
    }
}

/// The event-queue `Store` methods for a backend with `reader()`/`writer()` (see
/// `shared_store_methods!`), `$claim` its claim statement. Used inside `impl Store for …`.
macro_rules! event_store_methods {
    ($db:ty, $claim:expr) => {
        fn enqueue_event_deliveries<'a>(
            &'a self,
            deliveries: &'a [$crate::NewEventDelivery],
            now: Timestamp,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async move {
                let mut conn = self.writer().await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                $crate::shared::Steps::<$db>::enqueue_event_deliveries(
                    &mut tx,
                    deliveries,
                    now.unix_millis(),
                )
                .await?;
                tx.commit().await?;
                Ok(())
            })
        }

        fn claim_event_deliveries<'a>(
            &'a self,
            worker: &'a str,
            now: Timestamp,
            lease: std::time::Duration,
            limit: u32,
        ) -> BoxFuture<'a, Result<Vec<$crate::EventDelivery>, StoreError>> {
            Box::pin(async move {
                let mut conn = self.writer().await?;
                $crate::shared::Steps::<$db>::claim_event_deliveries(
                    &mut conn, $claim, worker, now, lease, limit,
                )
                .await
            })
        }

        fn finish_event_delivery<'a>(
            &'a self,
            id: i64,
            worker: &'a str,
            outcome: &'a $crate::EventDeliveryOutcome,
            now: Timestamp,
        ) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async move {
                let mut conn = self.writer().await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let done = $crate::shared::Steps::<$db>::finish_event_delivery(
                    &mut tx, id, worker, outcome, now,
                )
                .await?;
                tx.commit().await?;
                Ok(done)
            })
        }

        fn event_deliveries(
            &self,
        ) -> BoxFuture<'_, Result<Vec<$crate::EventDelivery>, StoreError>> {
            Box::pin(async move {
                $crate::shared::Steps::<$db>::event_deliveries(&mut *self.reader().await?).await
            })
        }

        fn disabled_event_subscriptions(
            &self,
        ) -> BoxFuture<'_, Result<Vec<$crate::DisabledSubscription>, StoreError>> {
            Box::pin(async move {
                $crate::shared::Steps::<$db>::disabled_event_subscriptions(
                    &mut *self.writer().await?,
                )
                .await
            })
        }
    };
}
pub(crate) use event_store_methods;
