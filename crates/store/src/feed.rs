//! A feed between gateway instances that share one database: what one instance publishes,
//! every instance listening receives (the agents' event stream of each instance shows what
//! happened on all of them). PostgreSQL `LISTEN`/`NOTIFY` on a channel of the store's schema;
//! SQLite has none ([`Feed::open`] answers `None`: one instance, its in-process bus suffices).
//!
//! Like the event stream it serves, the feed is best effort and never the record: a message
//! published while a listener was reconnecting is lost (the store has the facts). A message
//! longer than one notification (PostgreSQL's limit is 8000 bytes) is sent as numbered chunks
//! in one statement, so they are delivered together at its commit, and put together again by
//! the listener.

use std::collections::HashMap;
use std::str::FromStr;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use crate::StoreError;

/// The most bytes of a message in one notification (with its header, under PostgreSQL's 8000).
const CHUNK_BYTES: usize = 7000;
/// Messages being put together that a listener keeps at most (chunks of a message are
/// delivered together, so more means chunks were lost).
const PARTIAL_KEPT: usize = 64;

/// The publishing side of the feed (cheap to clone).
#[derive(Clone, Debug)]
pub struct Feed {
    pool: PgPool,
    channel: String,
}

impl Feed {
    /// The feed of the store `url` names: `Some` for PostgreSQL (its channel is named after the
    /// connection's schema, so gateways on other schemas of the database are not mixed in),
    /// `None` for SQLite.
    pub async fn open(url: &str) -> Result<Option<Self>, StoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Ok(None);
        }
        let connect =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(connect)
            .await?;
        let schema: String = sqlx::query("SELECT current_schema() AS s")
            .fetch_one(&pool)
            .await?
            .try_get("s")?;
        Ok(Some(Self {
            pool,
            channel: format!("switchboard_feed.{schema}"),
        }))
    }

    /// Sends `message` to every listener (this instance's too).
    pub async fn publish(&self, message: &str) -> Result<(), StoreError> {
        let id = format!("{:016x}", rand_id());
        let chunks = chunks(message, CHUNK_BYTES);
        let total = chunks.len();
        let payloads: Vec<String> = chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| format!("{id}:{i}:{total}:{chunk}"))
            .collect();
        sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::TEXT[]) AS p")
            .bind(&self.channel)
            .bind(&payloads)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A new listener, receiving what is published from now on.
    pub async fn listen(&self) -> Result<FeedListener, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&self.channel).await?;
        Ok(FeedListener {
            listener,
            assembler: Assembler::default(),
        })
    }
}

/// The receiving side of the feed.
pub struct FeedListener {
    listener: PgListener,
    assembler: Assembler,
}

impl std::fmt::Debug for FeedListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedListener")
            .field("partial", &self.assembler.partial.len())
            .finish_non_exhaustive()
    }
}

impl FeedListener {
    /// The next message. Reconnects by itself after a lost connection (messages published
    /// meanwhile are lost); an `Err` is worth a pause and a retry.
    pub async fn recv(&mut self) -> Result<String, StoreError> {
        loop {
            let notification = self.listener.recv().await?;
            if let Some(message) = self.assembler.take(notification.payload()) {
                return Ok(message);
            }
        }
    }
}

/// Puts chunked messages together.
#[derive(Default)]
struct Assembler {
    partial: HashMap<String, Vec<Option<String>>>,
}

impl Assembler {
    /// Adds one notification; the message when it is complete.
    fn take(&mut self, payload: &str) -> Option<String> {
        let mut parts = payload.splitn(4, ':');
        let (Some(id), Some(index), Some(total), Some(chunk)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let (Ok(index), Ok(total)) = (index.parse::<usize>(), total.parse::<usize>()) else {
            return None;
        };
        if total <= 1 {
            return Some(chunk.to_owned());
        }
        if index >= total || total > 4096 {
            return None;
        }
        if !self.partial.contains_key(id) && self.partial.len() >= PARTIAL_KEPT {
            self.partial.clear();
        }
        let slots = self
            .partial
            .entry(id.to_owned())
            .or_insert_with(|| vec![None; total]);
        if slots.len() != total {
            return None;
        }
        slots[index] = Some(chunk.to_owned());
        if slots.iter().all(Option::is_some) {
            let slots = self.partial.remove(id)?;
            return Some(slots.into_iter().flatten().collect());
        }
        None
    }
}

/// `text` cut at character boundaries into pieces of at most `max` bytes (one empty piece for
/// an empty text).
fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// A random id for a message's chunks.
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::hash::RandomState::new().build_hasher().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_messages_are_put_together_whatever_the_order() {
        let mut assembler = Assembler::default();
        assert_eq!(assembler.take("a:0:1:whole").as_deref(), Some("whole"));
        assert_eq!(assembler.take("b:1:3:c:d"), None);
        assert_eq!(assembler.take("x:0:2:other"), None);
        assert_eq!(assembler.take("b:0:3:ab"), None);
        assert_eq!(assembler.take("b:2:3:e").as_deref(), Some("abc:de"));
        assert_eq!(assembler.take("garbage"), None);
        assert_eq!(assembler.take("y:5:2:out of range"), None);
    }

    #[test]
    fn chunks_cut_at_character_boundaries_and_join_back() {
        let text = "é".repeat(10_000);
        let pieces = chunks(&text, CHUNK_BYTES);
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.len() <= CHUNK_BYTES));
        assert_eq!(pieces.concat(), text);
        assert_eq!(chunks("", CHUNK_BYTES), vec![""]);
    }
}
