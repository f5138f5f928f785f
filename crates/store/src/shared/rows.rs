//! Row mapping for both backends: the store's columns are `TEXT` and `BIGINT` only, read
//! through [`Columns`].

use sqlx::Row;
use switchboard_core::{DeliveryState, OutboundMessage, Timestamp};

use crate::StoreError;
use crate::types::{
    ContactRecord, ConversationRecord, Counts, MessageRecord, OutboxJob, OutboxMessage,
    OutboxState, RoutingState, StoredMessage,
};

/// Reading the columns the store uses (`TEXT` and `BIGINT`) from a row of either backend.
pub(crate) trait Columns {
    /// A `TEXT NOT NULL` column.
    fn text(&self, column: &str) -> Result<String, StoreError>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// A `BIGINT NOT NULL` column.
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    /// A nullable `BIGINT` column.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;

    /// A `BIGINT NOT NULL` instant (unix milliseconds).
    fn instant(&self, column: &str) -> Result<Timestamp, StoreError> {
        self.int(column).map(Timestamp::from_unix_millis)
    }

    /// A nullable `TEXT` column holding a [`DeliveryState`] JSON.
    fn delivery(&self, column: &str) -> Result<Option<DeliveryState>, StoreError> {
        Ok(self
            .opt_text(column)?
            .map(|d| serde_json::from_str(&d))
            .transpose()?)
    }
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

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

fn outbox_state(text: &str) -> Result<OutboxState, StoreError> {
    OutboxState::parse(text).ok_or_else(|| StoreError::Corrupt(format!("outbox state `{text}`")))
}

/// The jobs an outbox claim returned, due first (`RETURNING` has no order).
pub(crate) fn claimed_outbox(rows: &[impl Columns]) -> Result<Vec<OutboxJob>, StoreError> {
    let mut jobs = rows
        .iter()
        .map(outbox_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    jobs.sort_by_key(|job| (job.next_attempt_at, job.id));
    Ok(jobs)
}

/// An outbox job from the columns of `sql::outbox_columns!`.
pub(crate) fn outbox_from_row(row: &impl Columns) -> Result<OutboxJob, StoreError> {
    Ok(OutboxJob {
        id: row.int("id")?,
        channel_id: row.text("channel_id")?,
        conversation_id: row.opt_text("conversation_id")?,
        message: serde_json::from_str::<OutboundMessage>(&row.text("message")?)?,
        state: outbox_state(&row.text("state")?)?,
        attempts: row.int("attempts")?,
        next_attempt_at: row.instant("next_attempt_at")?,
        provider_message_id: row.opt_text("provider_message_id")?,
        last_error: row.opt_text("last_error")?,
    })
}

/// An outbox row with its delivery state, from a row of `sql::SELECT_OUTBOX_MESSAGE`.
pub(crate) fn outbox_message_from_row(row: &impl Columns) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        job: outbox_from_row(row)?,
        delivery: row.delivery("delivery")?,
        created_at: row.instant("created_at")?,
        updated_at: row.instant("updated_at")?,
    })
}

/// A message from a row of `sql::SELECT_MESSAGES`.
pub(crate) fn message_from_row(row: &impl Columns) -> Result<MessageRecord, StoreError> {
    Ok(MessageRecord {
        id: row.int("id")?,
        direction: row.text("direction")?,
        provider_message_id: row.opt_text("provider_message_id")?,
        conversation_id: row.opt_text("conversation_id")?,
        peer: row.text("peer")?,
        body: row.text("body")?,
        delivery: row.delivery("delivery")?,
    })
}

/// A message with its outbox state, from a row of `sql::stored_messages!`.
pub(crate) fn stored_message_from_row(row: &impl Columns) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        id: row.int("id")?,
        channel_id: row.text("channel_id")?,
        direction: row.text("direction")?,
        provider_message_id: row.opt_text("provider_message_id")?,
        conversation_id: row.opt_text("conversation_id")?,
        outbox_id: row.opt_int("outbox_id")?,
        peer: row.text("peer")?,
        body: row.text("body")?,
        delivery: row.delivery("delivery")?,
        outbox_state: row
            .opt_text("outbox_state")?
            .map(|s| outbox_state(&s))
            .transpose()?,
        created_at: row.instant("created_at")?,
    })
}

/// A conversation from a row of `sql::conversation_columns!`.
pub(crate) fn conversation_from_row(row: &impl Columns) -> Result<ConversationRecord, StoreError> {
    Ok(ConversationRecord {
        id: row.text("id")?,
        channel_id: row.text("channel_id")?,
        customer: row.text("customer")?,
        state: row.text("state")?,
        queue: row.opt_text("queue")?,
        agent: row.opt_text("agent")?,
        end_reason: row.opt_text("end_reason")?,
        opened_at: row.instant("opened_at")?,
        updated_at: row.instant("updated_at")?,
        closed_at: row.opt_int("closed_at")?.map(Timestamp::from_unix_millis),
    })
}

/// A contact from a row of `sql::contacts!`.
pub(crate) fn contact_from_row(row: &impl Columns) -> Result<ContactRecord, StoreError> {
    Ok(ContactRecord {
        channel_id: row.text("channel_id")?,
        address: row.text("address")?,
        address_json: row.text("address_json")?,
        profile_name: row.opt_text("profile_name")?,
        first_seen_at: row.instant("first_seen_at")?,
        last_inbound_at: row.instant("last_inbound_at")?,
    })
}

/// The routing state from a row of `sql::SELECT_STATE`.
pub(crate) fn state_from_row(row: &impl Columns) -> Result<RoutingState, StoreError> {
    Ok(RoutingState {
        version: row.int("version")?,
        state: row.text("state")?,
    })
}

/// The counts from the row of `sql::COUNTS`.
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
