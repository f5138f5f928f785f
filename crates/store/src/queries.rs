//! The API's reads and its one direct write (a proactive outbox row), for SQLite. Portable SQL:
//! `$N` parameters, `REPLACE`/`LOWER`/`LIKE … ESCAPE`, no backend-only functions.
//!
//! Contact search rule (see [`crate::Store::search_contacts`]): a contact matches when its
//! address or profile name contains the query as typed (case-insensitive), or, when the query
//! has digits, when the address with its phone symbols (`+ ( ) - . ` and spaces) removed
//! contains the query's digits. So `+1 (415) 523-8886` stored as `+14155238886` is found by
//! `523-88`, `4155238886`, `(415)`, `+1415` and `+1 (415) 523-8886`.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use switchboard_core::{DeliveryState, Timestamp};

use super::{SqliteStore, outbox_from_row};
use crate::StoreError;
use crate::types::{
    ContactRecord, ConversationCursor, ConversationFilter, ConversationPage, ConversationRecord,
    Enqueued, MessageLink, NewOutbox, OutboxMessage, OutboxState, StoredMessage, TranscriptRecord,
};

/// The default page size of conversation lists.
const DEFAULT_LIMIT: u32 = 50;
/// The largest page.
const MAX_LIMIT: u32 = 500;

/// An address with the usual phone-number symbols removed (portable nested `REPLACE`).
const ADDRESS_DIGITS: &str = "REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(address, '+', ''), \
     '(', ''), ')', ''), '-', ''), ' ', ''), '.', '')";

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

fn conversation_from_row(row: &SqliteRow) -> Result<ConversationRecord, StoreError> {
    Ok(ConversationRecord {
        id: row.try_get("id")?,
        channel_id: row.try_get("channel_id")?,
        customer: row.try_get("customer")?,
        state: row.try_get("state")?,
        queue: row.try_get("queue")?,
        agent: row.try_get("agent")?,
        end_reason: row.try_get("end_reason")?,
        opened_at: Timestamp::from_unix_millis(row.try_get("opened_at")?),
        updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
        closed_at: row
            .try_get::<Option<i64>, _>("closed_at")?
            .map(Timestamp::from_unix_millis),
    })
}

fn delivery_from(json: Option<String>) -> Result<Option<DeliveryState>, StoreError> {
    Ok(json.map(|d| serde_json::from_str(&d)).transpose()?)
}

fn message_from_row(row: &SqliteRow) -> Result<StoredMessage, StoreError> {
    let outbox_state = row
        .try_get::<Option<String>, _>("outbox_state")?
        .map(|s| {
            OutboxState::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("outbox state `{s}`")))
        })
        .transpose()?;
    Ok(StoredMessage {
        id: row.try_get("id")?,
        channel_id: row.try_get("channel_id")?,
        direction: row.try_get("direction")?,
        provider_message_id: row.try_get("provider_message_id")?,
        conversation_id: row.try_get("conversation_id")?,
        outbox_id: row.try_get("outbox_id")?,
        peer: row.try_get("peer")?,
        body: row.try_get("body")?,
        delivery: delivery_from(row.try_get("delivery")?)?,
        outbox_state,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
    })
}

const MESSAGE_COLUMNS: &str = "m.id, m.channel_id, m.direction, m.provider_message_id, \
     m.conversation_id, m.outbox_id, m.peer, m.body, m.delivery, m.created_at, \
     o.state AS outbox_state";

/// Sets the conversation of the inbound messages routing put into one (inside the routing
/// commit's transaction). A message already linked keeps its conversation.
pub(crate) async fn link_messages(
    conn: &mut SqliteConnection,
    links: &[MessageLink],
) -> Result<(), StoreError> {
    for link in links {
        sqlx::query(
            "UPDATE messages SET conversation_id = $1 \
             WHERE channel_id = $2 AND direction = 'in' AND provider_message_id = $3 \
               AND conversation_id IS NULL",
        )
        .bind(&link.conversation_id)
        .bind(&link.channel_id)
        .bind(&link.provider_message_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl SqliteStore {
    pub(crate) async fn conversations_q(
        &self,
        filter: &ConversationFilter,
    ) -> Result<ConversationPage, StoreError> {
        let limit = match filter.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let rows = sqlx::query(
            "SELECT id, channel_id, customer, state, queue, agent, end_reason, opened_at, \
                    updated_at, closed_at \
             FROM conversations \
             WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR queue = $2) \
               AND ($3 IS NULL OR channel_id = $3) AND ($4 IS NULL OR agent = $4) \
               AND ($5 IS NULL OR opened_at < $5 OR (opened_at = $5 AND id < $6)) \
             ORDER BY opened_at DESC, id DESC LIMIT $7",
        )
        .bind(filter.state.as_deref())
        .bind(filter.queue.as_deref())
        .bind(filter.channel_id.as_deref())
        .bind(filter.agent.as_deref())
        .bind(filter.cursor.as_ref().map(|c| c.opened_at))
        .bind(filter.cursor.as_ref().map(|c| c.id.as_str()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.read)
        .await?;
        let mut conversations = rows
            .iter()
            .map(conversation_from_row)
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

    pub(crate) async fn conversation_q(
        &self,
        id: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, channel_id, customer, state, queue, agent, end_reason, opened_at, \
                    updated_at, closed_at FROM conversations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    pub(crate) async fn conversation_messages_q(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN outbox o ON o.id = m.outbox_id \
             WHERE m.conversation_id = $1 ORDER BY m.id"
        ))
        .bind(conversation_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    pub(crate) async fn message_by_provider_id_q(
        &self,
        channel_id: &str,
        provider_message_id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN outbox o ON o.id = m.outbox_id \
             WHERE m.channel_id = $1 AND m.provider_message_id = $2 \
             ORDER BY m.direction DESC LIMIT 1"
        ))
        .bind(channel_id)
        .bind(provider_message_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    pub(crate) async fn search_contacts_q(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        let limit = match limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let raw = contains_pattern(&query.to_lowercase());
        let digits = query_digits(query).map(|d| contains_pattern(&d));
        let rows = sqlx::query(&format!(
            "SELECT channel_id, address, address_json, profile_name, first_seen_at, \
                    last_inbound_at FROM contacts \
             WHERE LOWER(address) LIKE $1 ESCAPE '\\' \
                OR LOWER(COALESCE(profile_name, '')) LIKE $1 ESCAPE '\\' \
                OR ($2 IS NOT NULL AND {ADDRESS_DIGITS} LIKE $2 ESCAPE '\\') \
             ORDER BY last_inbound_at DESC, id DESC LIMIT $3"
        ))
        .bind(&raw)
        .bind(digits.as_deref())
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ContactRecord {
                    channel_id: row.try_get("channel_id")?,
                    address: row.try_get("address")?,
                    address_json: row.try_get("address_json")?,
                    profile_name: row.try_get("profile_name")?,
                    first_seen_at: Timestamp::from_unix_millis(row.try_get("first_seen_at")?),
                    last_inbound_at: Timestamp::from_unix_millis(row.try_get("last_inbound_at")?),
                })
            })
            .collect()
    }

    pub(crate) async fn contact_q(
        &self,
        channel_id: &str,
        address: &str,
    ) -> Result<Option<ContactRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT channel_id, address, address_json, profile_name, first_seen_at, \
                    last_inbound_at FROM contacts WHERE channel_id = $1 AND address = $2",
        )
        .bind(channel_id)
        .bind(address)
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| {
            Ok(ContactRecord {
                channel_id: row.try_get("channel_id")?,
                address: row.try_get("address")?,
                address_json: row.try_get("address_json")?,
                profile_name: row.try_get("profile_name")?,
                first_seen_at: Timestamp::from_unix_millis(row.try_get("first_seen_at")?),
                last_inbound_at: Timestamp::from_unix_millis(row.try_get("last_inbound_at")?),
            })
        })
        .transpose()
    }

    pub(crate) async fn transcript_q(
        &self,
        conversation_id: &str,
    ) -> Result<TranscriptRecord, StoreError> {
        let entries: Vec<String> = sqlx::query_scalar(
            "SELECT entry FROM transcript_entries WHERE conversation_id = $1 ORDER BY id",
        )
        .bind(conversation_id)
        .fetch_all(&self.read)
        .await?;
        let rows = sqlx::query(
            "SELECT written_at, body FROM transcripts WHERE conversation_id = $1 ORDER BY id",
        )
        .bind(conversation_id)
        .fetch_all(&self.read)
        .await?;
        let writes = rows
            .iter()
            .map(|row| {
                Ok((
                    Timestamp::from_unix_millis(row.try_get("written_at")?),
                    row.try_get("body")?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(TranscriptRecord { entries, writes })
    }

    pub(crate) async fn outbox_message_q(
        &self,
        id: i64,
    ) -> Result<Option<OutboxMessage>, StoreError> {
        let row = sqlx::query(
            "SELECT o.id, o.channel_id, o.conversation_id, o.message, o.state, o.attempts, \
                    o.next_attempt_at, o.provider_message_id, o.last_error, o.created_at, \
                    o.updated_at, m.delivery \
             FROM outbox o LEFT JOIN messages m ON m.outbox_id = o.id WHERE o.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| {
            Ok(OutboxMessage {
                job: outbox_from_row(&row)?,
                delivery: delivery_from(row.try_get("delivery")?)?,
                created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
            })
        })
        .transpose()
    }

    pub(crate) async fn enqueue_outbox_tx(
        &self,
        out: &NewOutbox,
        now: Timestamp,
    ) -> Result<Enqueued, StoreError> {
        let now = now.unix_millis();
        let message = serde_json::to_string(&out.message)?;
        let mut tx = self.write.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO outbox (channel_id, idempotency_key, conversation_id, message, state, \
                                 attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) \
             ON CONFLICT (channel_id, idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(&out.channel_id)
        .bind(&out.message.idempotency_key)
        .bind(out.conversation_id.as_deref())
        .bind(&message)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let result = match id {
            Some(id) => {
                sqlx::query(
                    "INSERT INTO messages (channel_id, direction, conversation_id, outbox_id, \
                                           peer, body, created_at, updated_at) \
                     VALUES ($1, 'out', $2, $3, $4, $5, $6, $6)",
                )
                .bind(&out.channel_id)
                .bind(out.conversation_id.as_deref())
                .bind(id)
                .bind(&out.message.to.id)
                .bind(&message)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                Enqueued { id, created: true }
            }
            None => {
                let id: i64 = sqlx::query_scalar(
                    "SELECT id FROM outbox WHERE channel_id = $1 AND idempotency_key = $2",
                )
                .bind(&out.channel_id)
                .bind(&out.message.idempotency_key)
                .fetch_one(&mut *tx)
                .await?;
                Enqueued { id, created: false }
            }
        };
        tx.commit().await?;
        Ok(result)
    }
}

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
}
