//! What the backends share: the statements that are the same text on SQLite and PostgreSQL
//! ([`sql`]), the row mapping ([`rows`]), and the steps of the store's transactions and reads
//! built from them ([`Steps`], generic over the sqlx backend), and the `Store` methods that
//! are nothing but those steps ([`shared_store_methods!`]).
//!
//! A backend keeps in its own module only what differs: the claims (PostgreSQL adds
//! `FOR UPDATE SKIP LOCKED`), the timer firing, ingest (SQLite group-commits, PostgreSQL
//! inserts a webhook's dedupe keys in one statement) and PostgreSQL's locks.

use std::marker::PhantomData;
use std::time::Duration;

use switchboard_core::{
    CLIENT_REFERENCE, DeliveryState, DeliveryStatus, InboundEvent, SendReceipt, StatusUpdate,
    Timestamp,
};

use crate::StoreError;
use crate::types::{
    ContactRecord, ConversationCursor, ConversationFilter, ConversationPage, ConversationRecord,
    Counts, Enqueued, MessageRecord, NewOutbox, OutboxJob, OutboxMessage, OutboxOutcome,
    OutboxState, RoutingCommit, RoutingJobKind, RoutingState, SendFailure, StoredMessage,
    TimerChange, TranscriptRecord,
};

mod rows;
pub(crate) mod sql;

pub(crate) use rows::{Columns, claimed_outbox, outbox_from_row};

/// The routing state's scope: one engine state for the whole gateway.
pub(crate) const SCOPE: &str = "global";

/// The default page size of the API's lists.
const DEFAULT_LIMIT: u32 = 50;
/// The largest page.
const MAX_LIMIT: u32 = 500;

/// A duration in milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The wall clock in unix milliseconds (only for `applied_at` of migrations: every operation
/// takes its instant as an argument).
pub(crate) fn now_millis() -> i64 {
    Timestamp::from_system_time(std::time::SystemTime::now()).unix_millis()
}

/// A page size: 0 means the default, at most [`MAX_LIMIT`].
fn page_limit(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

/// The `LIKE` pattern "contains `text`", with `\`, `%` and `_` escaped (use `ESCAPE '\'`).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The digits of a search query, when it has any.
pub(crate) fn query_digits(query: &str) -> Option<String> {
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

/// The columns [`sql::FINISH_OUTBOX`] writes for an outcome: state, next attempt, provider
/// message id, error, error class.
struct OutcomeColumns<'a> {
    state: OutboxState,
    next_attempt: Option<i64>,
    provider_id: Option<&'a str>,
    error: Option<&'a str>,
    class: Option<String>,
}

impl<'a> OutcomeColumns<'a> {
    fn of(outcome: &'a OutboxOutcome) -> Self {
        let (state, error) = match outcome {
            OutboxOutcome::Sent(_) => (OutboxState::Sent, None),
            OutboxOutcome::Retry { error, .. } | OutboxOutcome::Rewrite { error, .. } => {
                (OutboxState::Pending, Some(error))
            }
            OutboxOutcome::Defer { .. } => (OutboxState::Pending, None),
            OutboxOutcome::Failed { error, .. } => (OutboxState::Failed, Some(error)),
            OutboxOutcome::OptedOut { error } => (OutboxState::OptedOut, Some(error)),
            OutboxOutcome::Unknown { error } => (OutboxState::Unknown, Some(error)),
        };
        Self {
            state,
            next_attempt: match outcome {
                OutboxOutcome::Retry { at, .. } | OutboxOutcome::Defer { at } => {
                    Some(at.unix_millis())
                }
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

    /// Whether routing hears of the outcome (a `send_failed` job): `Some(permanent)` for a final
    /// failure or an opt-out.
    fn failure(outcome: &OutboxOutcome) -> Option<bool> {
        match outcome {
            OutboxOutcome::Failed { class, .. } => Some(!matches!(
                class,
                Some(
                    switchboard_core::ErrorClass::Retryable
                        | switchboard_core::ErrorClass::Throttled
                ) | None
            )),
            OutboxOutcome::OptedOut { .. } => Some(true),
            _ => None,
        }
    }
}

/// The steps of the store's transactions and reads that are the same on every backend,
/// written once over `sqlx::Database` (the bounds are on this block: they say that the backend
/// decodes and encodes the `TEXT` and `BIGINT` columns the schema uses). Each takes a
/// connection (a transaction's, or one from the pool for a read); a backend adds what is its
/// own around them (PostgreSQL: its locks).
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
    // ---- ingest ----------------------------------------------------------------------------

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
                Self::merge_status(conn, channel_id, status, now).await?;
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
    ///
    /// A status for a message nobody knows by that id may settle a send whose outcome was
    /// `unknown`: when it carries the send's [`CLIENT_REFERENCE`] (the outbox idempotency
    /// key), that row becomes `sent` with the provider's id, and its message takes the
    /// delivery state of every status stored for that id, this one included.
    async fn merge_status(
        conn: &mut DB::Connection,
        channel_id: &str,
        status: &StatusUpdate,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = sqlx::query(sql::SELECT_OUTBOUND_DELIVERY)
            .bind(channel_id)
            .bind(status.message_id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else {
            return Self::settle_unknown_send(conn, channel_id, status, now).await;
        };
        let mut delivery = row.delivery("delivery")?.unwrap_or_default();
        delivery.apply(&status.status, status.error.as_ref());
        sqlx::query(sql::UPDATE_DELIVERY)
            .bind(serde_json::to_string(&delivery)?)
            .bind(now)
            .bind(row.int("id")?)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// See [`Self::merge_status`].
    async fn settle_unknown_send(
        conn: &mut DB::Connection,
        channel_id: &str,
        status: &StatusUpdate,
        now: i64,
    ) -> Result<(), StoreError> {
        let Some(reference) = status
            .extensions
            .get(CLIENT_REFERENCE)
            .and_then(serde_json::Value::as_str)
        else {
            return Ok(());
        };
        let settled = sqlx::query(sql::SETTLE_UNKNOWN_SEND)
            .bind(channel_id)
            .bind(reference)
            .bind(status.message_id.as_str())
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = settled {
            let receipt = SendReceipt::new(status.message_id.clone(), DeliveryStatus::Accepted);
            Self::record_sent(conn, row.int("id")?, channel_id, &receipt, now).await?;
        }
        Ok(())
    }

    // ---- routing ---------------------------------------------------------------------------

    /// Queues a routing job that is not an inbound event; returns its id.
    pub(crate) async fn enqueue_job(
        conn: &mut DB::Connection,
        kind: RoutingJobKind,
        payload: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query(sql::INSERT_JOB)
            .bind(kind.as_str())
            .bind(payload)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
            .int("id")
    }

    /// The routing engine's state.
    pub(crate) async fn routing_state(
        conn: &mut DB::Connection,
    ) -> Result<Option<RoutingState>, StoreError> {
        sqlx::query(sql::SELECT_STATE)
            .bind(SCOPE)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(rows::state_from_row)
            .transpose()
    }

    /// The whole of [`crate::Store::commit_routing`]: the state from `base_version` (else
    /// [`StoreError::Conflict`]), the finished jobs (fenced by the worker), outbox rows and
    /// their messages, timers, conversations, transcripts, message links. Returns the new
    /// version. The caller commits (or drops the transaction on an error).
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
            // Nothing for a known idempotency key (a replayed step).
            Self::insert_outbox(conn, out, now).await?;
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
        for link in &commit.message_links {
            sqlx::query(sql::LINK_MESSAGE)
                .bind(link.conversation_id.as_str())
                .bind(link.channel_id.as_str())
                .bind(link.provider_message_id.as_str())
                .execute(&mut *conn)
                .await?;
        }
        Self::enqueue_event_deliveries(conn, &commit.event_deliveries, now).await?;
        Ok(version)
    }

    // ---- outbox ----------------------------------------------------------------------------

    /// Inserts an outbox row and its outbound message record; `None` (nothing written) when
    /// the channel already has a row with the message's idempotency key.
    async fn insert_outbox(
        conn: &mut DB::Connection,
        out: &NewOutbox,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let message = serde_json::to_string(&out.message)?;
        let row = sqlx::query(sql::INSERT_OUTBOX)
            .bind(out.channel_id.as_str())
            .bind(out.message.idempotency_key.as_str())
            .bind(out.conversation_id.as_deref())
            .bind(message.as_str())
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let id = row.int("id")?;
        sqlx::query(sql::INSERT_OUTBOUND_MESSAGE)
            .bind(out.channel_id.as_str())
            .bind(out.conversation_id.as_deref())
            .bind(id)
            .bind(out.message.to.id.as_str())
            .bind(message.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        Ok(Some(id))
    }

    /// The whole of [`crate::Store::enqueue_outbox`] (the caller commits).
    pub(crate) async fn enqueue_outbox(
        conn: &mut DB::Connection,
        out: &NewOutbox,
        now: Timestamp,
    ) -> Result<Enqueued, StoreError> {
        if let Some(id) = Self::insert_outbox(conn, out, now.unix_millis()).await? {
            return Ok(Enqueued { id, created: true });
        }
        let id = sqlx::query(sql::SELECT_OUTBOX_ID)
            .bind(out.channel_id.as_str())
            .bind(out.message.idempotency_key.as_str())
            .fetch_one(&mut *conn)
            .await?
            .int("id")?;
        Ok(Enqueued { id, created: false })
    }

    /// Records a send's outcome if `worker` still holds the job's claim and returns the job's
    /// channel (`None`, nothing written, when it does not): `Defer` is pending again without
    /// the attempt, `Rewrite` puts the new message on the row and its message record, a final
    /// failure or an opt-out of a conversation's message queues a `send_failed` routing job.
    /// For `Sent`, the caller then calls [`Self::record_sent`].
    pub(crate) async fn finish_outbox(
        conn: &mut DB::Connection,
        job_id: i64,
        worker: &str,
        outcome: &OutboxOutcome,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = match outcome {
            OutboxOutcome::Defer { at } => {
                sqlx::query(sql::DEFER_OUTBOX)
                    .bind(at.unix_millis())
                    .bind(now)
                    .bind(job_id)
                    .bind(worker)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            OutboxOutcome::Rewrite { message, error } => {
                let body = serde_json::to_string(message)?;
                let row = sqlx::query(sql::REWRITE_OUTBOX)
                    .bind(now)
                    .bind(body.as_str())
                    .bind(error.as_str())
                    .bind(job_id)
                    .bind(worker)
                    .fetch_optional(&mut *conn)
                    .await?;
                if row.is_some() {
                    sqlx::query(sql::REWRITE_MESSAGE)
                        .bind(body.as_str())
                        .bind(now)
                        .bind(job_id)
                        .execute(&mut *conn)
                        .await?;
                }
                row
            }
            _ => {
                let columns = OutcomeColumns::of(outcome);
                sqlx::query(sql::FINISH_OUTBOX)
                    .bind(columns.state.as_str())
                    .bind(columns.next_attempt)
                    .bind(columns.provider_id)
                    .bind(columns.error)
                    .bind(columns.class)
                    .bind(now)
                    .bind(job_id)
                    .bind(worker)
                    .fetch_optional(&mut *conn)
                    .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        if let Some(permanent) = OutcomeColumns::failure(outcome) {
            // Routing learns of it in the same transaction (it may end the conversation).
            if let Some(conversation) = row.opt_text("conversation_id")? {
                let payload = serde_json::to_string(&SendFailure {
                    conversation,
                    permanent,
                })?;
                Self::enqueue_job(conn, RoutingJobKind::SendFailed, &payload, now).await?;
            }
        }
        Ok(Some(row.text("channel_id")?))
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

    /// Sends whose lease ran out become `unknown`; returns how many.
    pub(crate) async fn expire_sending(
        conn: &mut DB::Connection,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        // Counted from `RETURNING` (the affected-row count is not part of sqlx's generic API).
        let expired = sqlx::query(sql::EXPIRE_SENDING)
            .bind(now.unix_millis())
            .fetch_all(&mut *conn)
            .await?;
        Ok(expired.len())
    }

    // ---- reads -----------------------------------------------------------------------------

    /// Every outbox job, oldest first.
    pub(crate) async fn outbox_jobs(
        conn: &mut DB::Connection,
    ) -> Result<Vec<OutboxJob>, StoreError> {
        let rows = sqlx::query(sql::SELECT_OUTBOX)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// An outbox row with the delivery state of its message.
    pub(crate) async fn outbox_message(
        conn: &mut DB::Connection,
        id: i64,
    ) -> Result<Option<OutboxMessage>, StoreError> {
        sqlx::query(sql::SELECT_OUTBOX_MESSAGE)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(rows::outbox_message_from_row)
            .transpose()
    }

    /// A channel's messages, oldest first.
    pub(crate) async fn messages(
        conn: &mut DB::Connection,
        channel_id: &str,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let rows = sqlx::query(sql::SELECT_MESSAGES)
            .bind(channel_id)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(rows::message_from_row).collect()
    }

    /// Row counts of the main tables.
    pub(crate) async fn counts(conn: &mut DB::Connection) -> Result<Counts, StoreError> {
        let row = sqlx::query(sql::COUNTS).fetch_one(&mut *conn).await?;
        rows::counts_from_row(&row)
    }

    /// A page of conversations (see [`crate::Store::conversations`]).
    pub(crate) async fn conversations(
        conn: &mut DB::Connection,
        filter: &ConversationFilter,
    ) -> Result<ConversationPage, StoreError> {
        let limit = page_limit(filter.limit);
        let rows = sqlx::query(sql::SELECT_CONVERSATIONS)
            .bind(filter.state.as_deref())
            .bind(filter.queue.as_deref())
            .bind(filter.channel_id.as_deref())
            .bind(filter.agent.as_deref())
            .bind(filter.cursor.as_ref().map(|c| c.opened_at))
            .bind(filter.cursor.as_ref().map(|c| c.id.as_str()))
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut *conn)
            .await?;
        let mut conversations = rows
            .iter()
            .map(rows::conversation_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let more = conversations.len() > limit as usize;
        conversations.truncate(limit as usize);
        let next = more
            .then(|| conversations.last())
            .flatten()
            .map(|last| ConversationCursor {
                opened_at: last.opened_at.unix_millis(),
                id: last.id.clone(),
            });
        Ok(ConversationPage {
            conversations,
            next,
        })
    }

    /// One conversation.
    pub(crate) async fn conversation(
        conn: &mut DB::Connection,
        id: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        sqlx::query(sql::SELECT_CONVERSATION)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(rows::conversation_from_row)
            .transpose()
    }

    /// A conversation's messages in the order they were stored.
    pub(crate) async fn conversation_messages(
        conn: &mut DB::Connection,
        conversation_id: &str,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(sql::SELECT_CONVERSATION_MESSAGES)
            .bind(conversation_id)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(rows::stored_message_from_row).collect()
    }

    /// The message a provider id names on a channel (the outbound one first).
    pub(crate) async fn message_by_provider_id(
        conn: &mut DB::Connection,
        channel_id: &str,
        provider_message_id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        sqlx::query(sql::SELECT_MESSAGE_BY_PROVIDER_ID)
            .bind(channel_id)
            .bind(provider_message_id)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(rows::stored_message_from_row)
            .transpose()
    }

    /// Contacts matching `query` (see [`crate::Store::search_contacts`]).
    pub(crate) async fn search_contacts(
        conn: &mut DB::Connection,
        query: &str,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        let raw = contains_pattern(&query.to_lowercase());
        let digits = query_digits(query).map(|d| contains_pattern(&d));
        let rows = sqlx::query(sql::SEARCH_CONTACTS)
            .bind(raw.as_str())
            .bind(digits.as_deref())
            .bind(i64::from(page_limit(limit)))
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(rows::contact_from_row).collect()
    }

    /// The contact with this exact address on a channel.
    pub(crate) async fn contact(
        conn: &mut DB::Connection,
        channel_id: &str,
        address: &str,
    ) -> Result<Option<ContactRecord>, StoreError> {
        sqlx::query(sql::SELECT_CONTACT)
            .bind(channel_id)
            .bind(address)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(rows::contact_from_row)
            .transpose()
    }

    /// A conversation's transcript entries and written copies.
    pub(crate) async fn transcript(
        conn: &mut DB::Connection,
        conversation_id: &str,
    ) -> Result<TranscriptRecord, StoreError> {
        let entries = sqlx::query(sql::SELECT_TRANSCRIPT_ENTRIES)
            .bind(conversation_id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| row.text("entry"))
            .collect::<Result<Vec<_>, _>>()?;
        let writes = sqlx::query(sql::SELECT_TRANSCRIPTS)
            .bind(conversation_id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| Ok((row.instant("written_at")?, row.text("body")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(TranscriptRecord { entries, writes })
    }
}

/// Every `Store` method but `backend`, for a backend type with these inherent `async fn`s:
/// `reader()` and `writer()` (a pooled connection of `$db`), and the backend's own
/// transactions `ingest_tx`, `claim_routing_tx`, `fire_due_timers_tx`, `claim_outbox_tx`,
/// `finish_outbox_tx` (with the trait methods' arguments and results). The rest is [`Steps`].
/// Used inside `impl Store for …`.
macro_rules! shared_store_methods {
    ($db:ty) => {
        fn ingest_with_events<'a>(
            &'a self,
            channel_id: &'a str,
            events: &'a [InboundEvent],
            deliveries: &'a [(usize, $crate::NewEventDelivery)],
            now: Timestamp,
        ) -> BoxFuture<'a, Result<$crate::IngestResult, StoreError>> {
            Box::pin(self.ingest_tx(channel_id, events, deliveries, now))
        }

        fn claim_routing_jobs<'a>(
            &'a self,
            worker: &'a str,
            now: Timestamp,
            lease: std::time::Duration,
            limit: u32,
        ) -> BoxFuture<'a, Result<Vec<$crate::RoutingJob>, StoreError>> {
            Box::pin(self.claim_routing_tx(worker, now, lease, limit))
        }

        fn fire_due_timers(
            &self,
            now: Timestamp,
            limit: u32,
        ) -> BoxFuture<'_, Result<usize, StoreError>> {
            Box::pin(self.fire_due_timers_tx(now, limit))
        }

        fn claim_outbox<'a>(
            &'a self,
            worker: &'a str,
            now: Timestamp,
            lease: std::time::Duration,
            limit: u32,
        ) -> BoxFuture<'a, Result<Vec<$crate::OutboxJob>, StoreError>> {
            Box::pin(self.claim_outbox_tx(worker, now, lease, limit))
        }

        fn finish_outbox<'a>(
            &'a self,
            job_id: i64,
            worker: &'a str,
            outcome: &'a $crate::OutboxOutcome,
            now: Timestamp,
        ) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(self.finish_outbox_tx(job_id, worker, outcome, now))
        }

        fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            Box::pin(async move {
                sqlx::query("SELECT 1")
                    .execute(&mut *self.writer().await?)
                    .await?;
                Ok(())
            })
        }

        fn enqueue_routing_job<'a>(
            &'a self,
            kind: $crate::RoutingJobKind,
            payload: &'a str,
            now: Timestamp,
        ) -> BoxFuture<'a, Result<i64, StoreError>> {
            Box::pin(async move {
                let mut conn = self.writer().await?;
                Steps::<$db>::enqueue_job(&mut conn, kind, payload, now.unix_millis()).await
            })
        }

        fn routing_state(&self) -> BoxFuture<'_, Result<Option<$crate::RoutingState>, StoreError>> {
            Box::pin(async move { Steps::<$db>::routing_state(&mut *self.writer().await?).await })
        }

        fn commit_routing<'a>(
            &'a self,
            commit: &'a $crate::RoutingCommit,
        ) -> BoxFuture<'a, Result<i64, StoreError>> {
            Box::pin(async move {
                let mut conn = self.writer().await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let version = Steps::<$db>::commit_routing(&mut tx, commit).await?;
                tx.commit().await?;
                Ok(version)
            })
        }

        fn expire_sending(&self, now: Timestamp) -> BoxFuture<'_, Result<usize, StoreError>> {
            Box::pin(
                async move { Steps::<$db>::expire_sending(&mut *self.writer().await?, now).await },
            )
        }

        fn outbox_jobs(&self) -> BoxFuture<'_, Result<Vec<$crate::OutboxJob>, StoreError>> {
            Box::pin(async move { Steps::<$db>::outbox_jobs(&mut *self.reader().await?).await })
        }

        fn messages<'a>(
            &'a self,
            channel_id: &'a str,
        ) -> BoxFuture<'a, Result<Vec<$crate::MessageRecord>, StoreError>> {
            Box::pin(
                async move { Steps::<$db>::messages(&mut *self.reader().await?, channel_id).await },
            )
        }

        fn counts(&self) -> BoxFuture<'_, Result<$crate::Counts, StoreError>> {
            Box::pin(async move { Steps::<$db>::counts(&mut *self.reader().await?).await })
        }

        fn conversations<'a>(
            &'a self,
            filter: &'a $crate::ConversationFilter,
        ) -> BoxFuture<'a, Result<$crate::ConversationPage, StoreError>> {
            Box::pin(async move {
                Steps::<$db>::conversations(&mut *self.reader().await?, filter).await
            })
        }

        fn conversation<'a>(
            &'a self,
            id: &'a str,
        ) -> BoxFuture<'a, Result<Option<$crate::ConversationRecord>, StoreError>> {
            Box::pin(
                async move { Steps::<$db>::conversation(&mut *self.reader().await?, id).await },
            )
        }

        fn conversation_messages<'a>(
            &'a self,
            conversation_id: &'a str,
        ) -> BoxFuture<'a, Result<Vec<$crate::StoredMessage>, StoreError>> {
            Box::pin(async move {
                Steps::<$db>::conversation_messages(&mut *self.reader().await?, conversation_id)
                    .await
            })
        }

        fn message_by_provider_id<'a>(
            &'a self,
            channel_id: &'a str,
            provider_message_id: &'a str,
        ) -> BoxFuture<'a, Result<Option<$crate::StoredMessage>, StoreError>> {
            Box::pin(async move {
                let mut conn = self.reader().await?;
                Steps::<$db>::message_by_provider_id(&mut conn, channel_id, provider_message_id)
                    .await
            })
        }

        fn search_contacts<'a>(
            &'a self,
            query: &'a str,
            limit: u32,
        ) -> BoxFuture<'a, Result<Vec<$crate::ContactRecord>, StoreError>> {
            Box::pin(async move {
                Steps::<$db>::search_contacts(&mut *self.reader().await?, query, limit).await
            })
        }

        fn contact<'a>(
            &'a self,
            channel_id: &'a str,
            address: &'a str,
        ) -> BoxFuture<'a, Result<Option<$crate::ContactRecord>, StoreError>> {
            Box::pin(async move {
                Steps::<$db>::contact(&mut *self.reader().await?, channel_id, address).await
            })
        }

        fn transcript<'a>(
            &'a self,
            conversation_id: &'a str,
        ) -> BoxFuture<'a, Result<$crate::TranscriptRecord, StoreError>> {
            Box::pin(async move {
                Steps::<$db>::transcript(&mut *self.reader().await?, conversation_id).await
            })
        }

        fn outbox_message(
            &self,
            id: i64,
        ) -> BoxFuture<'_, Result<Option<$crate::OutboxMessage>, StoreError>> {
            Box::pin(
                async move { Steps::<$db>::outbox_message(&mut *self.reader().await?, id).await },
            )
        }

        fn enqueue_outbox<'a>(
            &'a self,
            out: &'a $crate::NewOutbox,
            now: Timestamp,
        ) -> BoxFuture<'a, Result<$crate::Enqueued, StoreError>> {
            Box::pin(async move {
                let mut conn = self.writer().await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let enqueued = Steps::<$db>::enqueue_outbox(&mut tx, out, now).await?;
                tx.commit().await?;
                Ok(enqueued)
            })
        }
    };
}
pub(crate) use shared_store_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("52_3%"), "%52\\_3\\%%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn query_digits_keep_only_digits() {
        assert_eq!(
            query_digits("+1 (415) 523-88").as_deref(),
            Some("141552388")
        );
        assert_eq!(query_digits("(415)").as_deref(), Some("415"));
        assert_eq!(query_digits("Kim"), None);
        assert_eq!(query_digits("()-+"), None);
    }

    #[test]
    fn page_limits_default_and_cap() {
        assert_eq!(page_limit(0), 50);
        assert_eq!(page_limit(7), 7);
        assert_eq!(page_limit(10_000), 500);
    }
}
