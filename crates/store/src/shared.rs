//! What the backends share: the statements that are the same text on SQLite and PostgreSQL,
//! the transaction steps built from them ([`Steps`], generic over the sqlx backend), the row
//! mapping, and the outbox outcome's columns.
//!
//! The SQL is portable (`$N` parameters, `ON CONFLICT`, `RETURNING`, JSON in `TEXT`, instants
//! as unix milliseconds). A backend keeps in its own module only what differs: the claims
//! (PostgreSQL adds `FOR UPDATE SKIP LOCKED`), the timer firing and the locking.

use std::marker::PhantomData;
use std::time::Duration;

use sqlx::Row;
use switchboard_core::{
    DeliveryState, DeliveryStatus, InboundEvent, OutboundMessage, ProviderError, SendReceipt,
    Timestamp,
};

use crate::StoreError;
use crate::types::{
    Counts, MessageRecord, OutboxJob, OutboxOutcome, OutboxState, RoutingCommit, RoutingState,
    TimerChange,
};

/// The routing state's scope: one engine state for the whole gateway.
pub(crate) const SCOPE: &str = "global";

/// A duration in milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The wall clock in unix milliseconds (only for `applied_at` of migrations: every operation
/// takes its instant as an argument).
pub(crate) fn now_millis() -> i64 {
    Timestamp::from_system_time(std::time::SystemTime::now()).unix_millis()
}

/// The statements both backends run as they are.
pub(crate) mod sql {
    /// `$1` channel, `$2` kind, `$3` provider id, `$4` now. Affects 0 rows for a duplicate.
    #[expect(
        dead_code,
        reason = "SQLite's per-event dedupe (PostgreSQL inserts a webhook's keys in one \
                  statement); used once sqlite.rs takes its statements from here"
    )]
    pub(crate) const INSERT_DEDUPE_KEY: &str = "INSERT INTO dedupe_keys (channel_id, kind, provider_id, first_seen_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

    /// `$1` channel, `$2` kind, `$3` provider id, `$4` ref id, `$5` payload, `$6` now.
    /// Returns `id`.
    pub(crate) const INSERT_EVENT: &str = "INSERT INTO inbound_events (channel_id, kind, provider_id, ref_id, payload, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";

    /// `$1` channel, `$2` address id, `$3` address JSON, `$4` profile name, `$5` now.
    pub(crate) const UPSERT_CONTACT: &str = "INSERT INTO contacts (channel_id, address, address_json, profile_name, first_seen_at, last_inbound_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (channel_id, address) DO UPDATE SET \
         last_inbound_at = excluded.last_inbound_at, \
         profile_name = COALESCE(excluded.profile_name, contacts.profile_name)";

    /// `$1` channel, `$2` provider message id, `$3` peer, `$4` event JSON, `$5` now.
    pub(crate) const INSERT_INBOUND_MESSAGE: &str = "INSERT INTO messages (channel_id, direction, provider_message_id, peer, body, created_at, updated_at) \
         VALUES ($1, 'in', $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING";

    /// `$1` channel, `$2` event id, `$3` now.
    pub(crate) const INSERT_INBOUND_JOB: &str = "INSERT INTO routing_jobs (kind, channel_id, event_id, created_at) \
         VALUES ('inbound', $1, $2, $3)";

    /// `$1` kind, `$2` payload, `$3` now. Returns `id`.
    pub(crate) const INSERT_JOB: &str =
        "INSERT INTO routing_jobs (kind, payload, created_at) VALUES ($1, $2, $3) RETURNING id";

    /// `$1` channel, `$2` provider message id: the outbound message a status is about.
    pub(crate) const SELECT_OUTBOUND_DELIVERY: &str = "SELECT id, delivery FROM messages \
         WHERE channel_id = $1 AND direction = 'out' AND provider_message_id = $2";

    /// `$1` delivery JSON, `$2` now, `$3` message id.
    pub(crate) const UPDATE_DELIVERY: &str =
        "UPDATE messages SET delivery = $1, updated_at = $2 WHERE id = $3";

    /// `$1` scope. Returns `version`, `state`.
    pub(crate) const SELECT_STATE: &str =
        "SELECT version, state FROM routing_state WHERE scope = $1";

    /// `$1` scope, `$2` state, `$3` now: the first commit. Returns `version`; no row when
    /// another came first.
    pub(crate) const INSERT_STATE: &str = "INSERT INTO routing_state (scope, version, state, updated_at) \
         VALUES ($1, 1, $2, $3) ON CONFLICT DO NOTHING RETURNING version";

    /// `$1` state, `$2` now, `$3` scope, `$4` base version. Returns the new `version`; no row
    /// when the version moved.
    pub(crate) const UPDATE_STATE: &str = "UPDATE routing_state SET version = version + 1, state = $1, updated_at = $2 \
         WHERE scope = $3 AND version = $4 RETURNING version";

    /// `$1` job id, `$2` worker. Returns `id`; no row when the worker lost its claim.
    pub(crate) const DELETE_CLAIMED_JOB: &str =
        "DELETE FROM routing_jobs WHERE id = $1 AND claimed_by = $2 RETURNING id";

    /// `$1` channel, `$2` idempotency key, `$3` conversation, `$4` message JSON, `$5` now.
    /// Returns `id`, nothing for a known key.
    pub(crate) const INSERT_OUTBOX: &str = "INSERT INTO outbox (channel_id, idempotency_key, conversation_id, message, state, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) \
         ON CONFLICT (channel_id, idempotency_key) DO NOTHING RETURNING id";

    /// `$1` channel, `$2` conversation, `$3` outbox id, `$4` peer, `$5` message JSON, `$6` now.
    pub(crate) const INSERT_OUTBOUND_MESSAGE: &str = "INSERT INTO messages (channel_id, direction, conversation_id, outbox_id, peer, body, created_at, updated_at) \
         VALUES ($1, 'out', $2, $3, $4, $5, $6, $6)";

    /// `$1` key, `$2` payload, `$3` due.
    pub(crate) const UPSERT_TIMER: &str = "INSERT INTO timers (timer_key, payload, due_at) VALUES ($1, $2, $3) \
         ON CONFLICT (timer_key) DO UPDATE SET payload = excluded.payload, due_at = excluded.due_at";

    /// `$1` key.
    pub(crate) const DELETE_TIMER: &str = "DELETE FROM timers WHERE timer_key = $1";

    /// `$1` id, `$2` channel, `$3` customer, `$4` state, `$5` queue, `$6` agent,
    /// `$7` end reason, `$8` now.
    pub(crate) const UPSERT_CONVERSATION: &str = "INSERT INTO conversations (id, channel_id, customer, state, queue, agent, end_reason, opened_at, updated_at, closed_at) \
         VALUES ($1, COALESCE($2, ''), COALESCE($3, ''), COALESCE($4, 'open'), $5, $6, $7, $8, $8, \
                 CASE WHEN $4 = 'ended' THEN $8 ELSE NULL END) \
         ON CONFLICT (id) DO UPDATE SET \
           state = COALESCE($4, conversations.state), \
           queue = COALESCE($5, conversations.queue), \
           agent = COALESCE($6, conversations.agent), \
           end_reason = COALESCE($7, conversations.end_reason), \
           updated_at = $8, \
           closed_at = CASE WHEN $4 = 'ended' THEN $8 ELSE conversations.closed_at END";

    /// `$1` conversation, `$2` entry JSON, `$3` now.
    pub(crate) const INSERT_TRANSCRIPT_ENTRY: &str =
        "INSERT INTO transcript_entries (conversation_id, entry, created_at) VALUES ($1, $2, $3)";

    /// `$1` conversation, `$2` body JSON, `$3` now.
    pub(crate) const INSERT_TRANSCRIPT: &str =
        "INSERT INTO transcripts (conversation_id, body, written_at) VALUES ($1, $2, $3)";

    /// `$1` state, `$2` next attempt, `$3` provider id, `$4` error, `$5` error class, `$6` now,
    /// `$7` job id, `$8` worker. Returns `id`; no row unless the worker holds the claim.
    pub(crate) const FINISH_OUTBOX: &str = "UPDATE outbox SET state = $1, next_attempt_at = COALESCE($2, next_attempt_at), \
            provider_message_id = COALESCE($3, provider_message_id), last_error = $4, \
            error_class = $5, claimed_by = NULL, lease_until = NULL, updated_at = $6 \
         WHERE id = $7 AND claimed_by = $8 AND state = 'sending' RETURNING id";

    /// `$1` job id. Returns its channel.
    pub(crate) const SELECT_OUTBOX_CHANNEL: &str = "SELECT channel_id FROM outbox WHERE id = $1";

    /// `$1` channel, `$2` provider message id: statuses that came before the send's answer.
    pub(crate) const SELECT_EARLY_STATUSES: &str = "SELECT payload FROM inbound_events \
         WHERE channel_id = $1 AND ref_id = $2 AND kind = 'status' ORDER BY id";

    /// `$1` provider message id, `$2` delivery JSON, `$3` now, `$4` outbox id.
    pub(crate) const SENT_MESSAGE: &str = "UPDATE messages SET provider_message_id = $1, delivery = $2, updated_at = $3 \
         WHERE outbox_id = $4";

    /// `$1` now: sends whose lease ran out become `unknown`.
    pub(crate) const EXPIRE_SENDING: &str = "UPDATE outbox SET state = 'unknown', \
                last_error = 'the worker stopped during the send: outcome unknown', \
                claimed_by = NULL, lease_until = NULL, updated_at = $1 \
         WHERE state = 'sending' AND lease_until < $1";

    /// The outbox columns [`super::outbox_from_row`] reads (a macro, to build statements with
    /// `concat!`).
    macro_rules! outbox_columns {
        () => {
            "id, channel_id, conversation_id, message, state, attempts, next_attempt_at, \
             provider_message_id, last_error"
        };
    }
    pub(crate) use outbox_columns;

    /// Every outbox job, oldest first.
    pub(crate) const SELECT_OUTBOX: &str =
        concat!("SELECT ", outbox_columns!(), " FROM outbox ORDER BY id");

    /// `$1` channel: its messages, oldest first ([`super::message_from_row`]).
    pub(crate) const SELECT_MESSAGES: &str = "SELECT id, direction, provider_message_id, conversation_id, peer, body, delivery \
         FROM messages WHERE channel_id = $1 ORDER BY id";

    /// Row counts ([`super::counts_from_row`]).
    pub(crate) const COUNTS: &str = "SELECT \
           (SELECT COUNT(*) FROM inbound_events) AS events, \
           (SELECT COUNT(*) FROM dedupe_keys) AS dedupe_keys, \
           (SELECT COUNT(*) FROM messages) AS messages, \
           (SELECT COUNT(*) FROM contacts) AS contacts, \
           (SELECT COUNT(*) FROM routing_jobs) AS routing_jobs, \
           (SELECT COUNT(*) FROM timers) AS timers, \
           (SELECT COUNT(*) FROM outbox) AS outbox, \
           (SELECT COUNT(*) FROM conversations) AS conversations, \
           (SELECT COUNT(*) FROM transcript_entries) AS transcript_entries";
}

/// The columns [`sql::FINISH_OUTBOX`] writes for an outcome: state, next attempt, provider
/// message id, error, error class.
pub(crate) struct OutcomeColumns<'a> {
    pub(crate) state: OutboxState,
    pub(crate) next_attempt: Option<i64>,
    pub(crate) provider_id: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) class: Option<String>,
}

impl<'a> OutcomeColumns<'a> {
    pub(crate) fn of(outcome: &'a OutboxOutcome) -> Self {
        let (state, error) = match outcome {
            OutboxOutcome::Sent(_) => (OutboxState::Sent, None),
            OutboxOutcome::Retry { error, .. } => (OutboxState::Pending, Some(error)),
            OutboxOutcome::Failed { error, .. } => (OutboxState::Failed, Some(error)),
            OutboxOutcome::OptedOut { error } => (OutboxState::OptedOut, Some(error)),
            OutboxOutcome::Unknown { error } => (OutboxState::Unknown, Some(error)),
        };
        Self {
            state,
            next_attempt: match outcome {
                OutboxOutcome::Retry { at, .. } => Some(at.unix_millis()),
                _ => None,
            },
            provider_id: match outcome {
                OutboxOutcome::Sent(receipt) => Some(receipt.provider_message_id.as_str()),
                _ => None,
            },
            error: error.map(String::as_str),
            class: match outcome {
                OutboxOutcome::Failed {
                    class: Some(class), ..
                } => serde_json::to_value(class)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned)),
                _ => None,
            },
        }
    }
}

/// Reading the columns the store uses (`TEXT` and `BIGINT`) from a row of either backend.
pub(crate) trait Columns {
    /// A `TEXT NOT NULL` column.
    fn text(&self, column: &str) -> Result<String, StoreError>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// A `BIGINT NOT NULL` column.
    fn int(&self, column: &str) -> Result<i64, StoreError>;
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
}

/// An outbox job from the columns of `sql::outbox_columns!`.
pub(crate) fn outbox_from_row(row: &impl Columns) -> Result<OutboxJob, StoreError> {
    let state = row.text("state")?;
    Ok(OutboxJob {
        id: row.int("id")?,
        channel_id: row.text("channel_id")?,
        conversation_id: row.opt_text("conversation_id")?,
        message: serde_json::from_str::<OutboundMessage>(&row.text("message")?)?,
        state: OutboxState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox state `{state}`")))?,
        attempts: row.int("attempts")?,
        next_attempt_at: Timestamp::from_unix_millis(row.int("next_attempt_at")?),
        provider_message_id: row.opt_text("provider_message_id")?,
        last_error: row.opt_text("last_error")?,
    })
}

/// A message from a row of [`sql::SELECT_MESSAGES`].
pub(crate) fn message_from_row(row: &impl Columns) -> Result<MessageRecord, StoreError> {
    Ok(MessageRecord {
        id: row.int("id")?,
        direction: row.text("direction")?,
        provider_message_id: row.opt_text("provider_message_id")?,
        conversation_id: row.opt_text("conversation_id")?,
        peer: row.text("peer")?,
        body: row.text("body")?,
        delivery: row
            .opt_text("delivery")?
            .map(|d| serde_json::from_str(&d))
            .transpose()?,
    })
}

/// The routing state from a row of [`sql::SELECT_STATE`].
pub(crate) fn state_from_row(row: &impl Columns) -> Result<RoutingState, StoreError> {
    Ok(RoutingState {
        version: row.int("version")?,
        state: row.text("state")?,
    })
}

/// The counts from the row of [`sql::COUNTS`].
pub(crate) fn counts_from_row(row: &impl Columns) -> Result<Counts, StoreError> {
    Ok(Counts {
        events: row.int("events")?,
        dedupe_keys: row.int("dedupe_keys")?,
        messages: row.int("messages")?,
        contacts: row.int("contacts")?,
        routing_jobs: row.int("routing_jobs")?,
        timers: row.int("timers")?,
        outbox: row.int("outbox")?,
        conversations: row.int("conversations")?,
        transcript_entries: row.int("transcript_entries")?,
    })
}

/// The steps of the store's transactions that are the same on every backend, written once over
/// `sqlx::Database` (the bounds are on this block: they say that the backend decodes and
/// encodes the `TEXT` and `BIGINT` columns the schema uses). Each takes the transaction's
/// connection; a backend adds what is its own around them (PostgreSQL: its locks).
pub(crate) struct Steps<DB>(PhantomData<DB>);

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
    /// Writes one inbound event whose dedupe key was new: the event, the contact and message
    /// (messages) or the merged delivery state (statuses), and a routing job for what routing
    /// consumes (everything but statuses).
    pub(crate) async fn store_event(
        conn: &mut DB::Connection,
        channel_id: &str,
        event: &InboundEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let key = event.dedupe_key();
        let payload = serde_json::to_string(event)?;
        let ref_id = match event {
            InboundEvent::Status(status) => Some(status.message_id.as_str()),
            _ => None,
        };
        let event_id = sqlx::query(sql::INSERT_EVENT)
            .bind(channel_id)
            .bind(key.kind.as_str())
            .bind(key.provider_id.as_str())
            .bind(ref_id)
            .bind(payload.as_str())
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
            .int("id")?;
        match event {
            InboundEvent::Message(message) => {
                sqlx::query(sql::UPSERT_CONTACT)
                    .bind(channel_id)
                    .bind(message.from.id.as_str())
                    .bind(serde_json::to_string(&message.from)?)
                    .bind(message.profile_name.as_deref())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(sql::INSERT_INBOUND_MESSAGE)
                    .bind(channel_id)
                    .bind(message.id.as_str())
                    .bind(message.from.id.as_str())
                    .bind(payload.as_str())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
            InboundEvent::Status(status) => {
                Self::merge_status(
                    conn,
                    channel_id,
                    &status.message_id,
                    &status.status,
                    status.error.as_ref(),
                    now,
                )
                .await?;
            }
            _ => {}
        }
        // Statuses are merged here; routing consumes the rest.
        if ref_id.is_none() {
            sqlx::query(sql::INSERT_INBOUND_JOB)
                .bind(channel_id)
                .bind(event_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Merges a status into the outbound message it is about, when that message is known.
    async fn merge_status(
        conn: &mut DB::Connection,
        channel_id: &str,
        provider_message_id: &str,
        status: &DeliveryStatus,
        error: Option<&ProviderError>,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = sqlx::query(sql::SELECT_OUTBOUND_DELIVERY)
            .bind(channel_id)
            .bind(provider_message_id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(()) };
        let mut delivery = match row.opt_text("delivery")? {
            Some(json) => serde_json::from_str(&json)?,
            None => DeliveryState::default(),
        };
        delivery.apply(status, error);
        sqlx::query(sql::UPDATE_DELIVERY)
            .bind(serde_json::to_string(&delivery)?)
            .bind(now)
            .bind(row.int("id")?)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The whole of [`crate::Store::commit_routing`]: the state from `base_version` (else
    /// [`StoreError::Conflict`]), the finished jobs (fenced by the worker), outbox rows and
    /// their messages, timers, conversations, transcripts. Returns the new version. The
    /// caller commits (or drops the transaction on an error).
    pub(crate) async fn commit_routing(
        conn: &mut DB::Connection,
        commit: &RoutingCommit,
    ) -> Result<i64, StoreError> {
        let now = commit.now.unix_millis();
        let updated = if commit.base_version == 0 {
            sqlx::query(sql::INSERT_STATE)
                .bind(SCOPE)
                .bind(commit.state.as_str())
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?
        } else {
            sqlx::query(sql::UPDATE_STATE)
                .bind(commit.state.as_str())
                .bind(now)
                .bind(SCOPE)
                .bind(commit.base_version)
                .fetch_optional(&mut *conn)
                .await?
        };
        let Some(updated) = updated else {
            return Err(StoreError::Conflict(format!(
                "routing state moved past version {}",
                commit.base_version
            )));
        };
        let version = updated.int("version")?;
        for &job in &commit.done_jobs {
            let deleted = sqlx::query(sql::DELETE_CLAIMED_JOB)
                .bind(job)
                .bind(commit.worker.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            if deleted.is_none() {
                return Err(StoreError::Conflict(format!(
                    "routing job {job} is no longer claimed by this worker"
                )));
            }
        }
        for out in &commit.outbox {
            let message = serde_json::to_string(&out.message)?;
            let row = sqlx::query(sql::INSERT_OUTBOX)
                .bind(out.channel_id.as_str())
                .bind(out.message.idempotency_key.as_str())
                .bind(out.conversation_id.as_deref())
                .bind(message.as_str())
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?;
            // Nothing for a known idempotency key (a replayed step).
            if let Some(row) = row {
                sqlx::query(sql::INSERT_OUTBOUND_MESSAGE)
                    .bind(out.channel_id.as_str())
                    .bind(out.conversation_id.as_deref())
                    .bind(row.int("id")?)
                    .bind(out.message.to.id.as_str())
                    .bind(message.as_str())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        for change in &commit.timers {
            let query = match change {
                TimerChange::Start { key, payload, due } => sqlx::query(sql::UPSERT_TIMER)
                    .bind(key.as_str())
                    .bind(payload.as_str())
                    .bind(due.unix_millis()),
                TimerChange::Cancel { key } => sqlx::query(sql::DELETE_TIMER).bind(key.as_str()),
            };
            query.execute(&mut *conn).await?;
        }
        for c in &commit.conversations {
            sqlx::query(sql::UPSERT_CONVERSATION)
                .bind(c.id.as_str())
                .bind(c.channel_id.as_deref())
                .bind(c.customer.as_deref())
                .bind(c.state.as_deref())
                .bind(c.queue.as_deref())
                .bind(c.agent.as_deref())
                .bind(c.end_reason.as_deref())
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        for (statement, rows) in [
            (sql::INSERT_TRANSCRIPT_ENTRY, &commit.transcript_entries),
            (sql::INSERT_TRANSCRIPT, &commit.transcripts),
        ] {
            for (conversation, body) in rows {
                sqlx::query(statement)
                    .bind(conversation.as_str())
                    .bind(body.as_str())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(version)
    }

    /// Records a send's outcome if `worker` still holds the job's claim; returns whether it
    /// did. For `Sent`, the caller then calls [`Self::record_sent`].
    pub(crate) async fn finish_outbox(
        conn: &mut DB::Connection,
        job_id: i64,
        worker: &str,
        outcome: &OutboxOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let columns = OutcomeColumns::of(outcome);
        let updated = sqlx::query(sql::FINISH_OUTBOX)
            .bind(columns.state.as_str())
            .bind(columns.next_attempt)
            .bind(columns.provider_id)
            .bind(columns.error)
            .bind(columns.class)
            .bind(now)
            .bind(job_id)
            .bind(worker)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(updated.is_some())
    }

    /// The channel of the outbox job `job_id`.
    pub(crate) async fn outbox_channel(
        conn: &mut DB::Connection,
        job_id: i64,
    ) -> Result<String, StoreError> {
        sqlx::query(sql::SELECT_OUTBOX_CHANNEL)
            .bind(job_id)
            .fetch_one(&mut *conn)
            .await?
            .text("channel_id")
    }

    /// A sent message gets the provider's id and its delivery state: the receipt's, merged
    /// with the statuses that overtook the send's answer.
    pub(crate) async fn record_sent(
        conn: &mut DB::Connection,
        job_id: i64,
        channel_id: &str,
        receipt: &SendReceipt,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut delivery = DeliveryState::new(receipt.status.clone());
        let early = sqlx::query(sql::SELECT_EARLY_STATUSES)
            .bind(channel_id)
            .bind(receipt.provider_message_id.as_str())
            .fetch_all(&mut *conn)
            .await?;
        for row in early {
            if let InboundEvent::Status(status) = serde_json::from_str(&row.text("payload")?)? {
                delivery.apply(&status.status, status.error.as_ref());
            }
        }
        sqlx::query(sql::SENT_MESSAGE)
            .bind(receipt.provider_message_id.as_str())
            .bind(serde_json::to_string(&delivery)?)
            .bind(now)
            .bind(job_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
