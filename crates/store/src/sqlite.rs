//! The SQLite backend: one file in WAL mode, one writer connection (SQLite has one writer
//! anyway; a single connection never meets `SQLITE_BUSY` from its own process) and a small pool
//! of readers.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use switchboard_core::{
    BoxFuture, DeliveryState, ErrorClass, InboundEvent, OutboundMessage, ProviderError, Timestamp,
};

use crate::group_commit::IngestWriter;
use crate::types::{
    Counts, IngestResult, MessageRecord, OutboxJob, OutboxOutcome, OutboxState, RoutingCommit,
    RoutingJob, RoutingJobKind, RoutingState, SendFailure, TimerChange,
};
use crate::{Store, StoreError, migrate};

/// The routing state's scope: one engine state for the whole gateway.
const SCOPE: &str = "global";

/// How SQLite syncs commits to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// `synchronous=FULL`: every commit is fsynced before it returns, so an acknowledged
    /// webhook survives a power loss too. The default: nothing acknowledged is lost.
    #[default]
    Full,
    /// `synchronous=NORMAL`: in WAL mode durable across process crashes (`kill -9`), but the
    /// last commits may roll back after a power loss or OS crash. Faster.
    Normal,
}

/// Tuning of the SQLite backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Commit durability.
    pub synchronous: Synchronous,
    /// How long a statement waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// How long a caller waits for the writer connection before the store reports itself
    /// unavailable (the gateway then answers 503 and the provider retries).
    pub acquire_timeout: Duration,
    /// Reader connections.
    pub readers: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            readers: 4,
        }
    }
}

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    /// Webhook ingest goes through one task that group-commits (see [`crate::group_commit`]).
    ingest: IngestWriter,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    Timestamp::from_system_time(std::time::SystemTime::now()).unix_millis()
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url` (`sqlite://PATH`,
    /// `sqlite::memory:`), sets WAL and the options, and applies the migrations.
    pub async fn open(url: &str, options: SqliteOptions) -> Result<Self, StoreError> {
        let memory = url.contains(":memory:");
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Url(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(match options.synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            // The writer is kept for the life of the pool (an in-memory database lives in it).
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect.clone())
            .await?;
        {
            let mut conn = write.acquire().await?;
            migrate::run(&mut conn, migrate::SQLITE, now_millis()).await?;
        }
        let read = if memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(options.readers.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.read_only(true))
                .await?
        };
        let ingest = IngestWriter::spawn(write.clone());
        Ok(Self {
            write,
            read,
            ingest,
        })
    }

    /// Closes the connections; every later call fails with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    async fn claim_routing_tx(
        &self,
        worker: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<RoutingJob>, StoreError> {
        let now = now.unix_millis();
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(
            "UPDATE routing_jobs SET claimed_by = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM routing_jobs \
                          WHERE lease_until IS NULL OR lease_until < $3 ORDER BY id LIMIT $4) \
             RETURNING id, kind, channel_id, event_id, payload, attempts",
        )
        .bind(worker)
        .bind(now.saturating_add(millis(lease)))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            let kind_text: String = row.try_get("kind")?;
            let kind = RoutingJobKind::parse(&kind_text)
                .ok_or_else(|| StoreError::Corrupt(format!("routing job kind `{kind_text}`")))?;
            let event_id: Option<i64> = row.try_get("event_id")?;
            let payload = match (kind, event_id) {
                (RoutingJobKind::Inbound, Some(event_id)) => {
                    sqlx::query_scalar("SELECT payload FROM inbound_events WHERE id = $1")
                        .bind(event_id)
                        .fetch_one(&mut *tx)
                        .await?
                }
                _ => row
                    .try_get::<Option<String>, _>("payload")?
                    .unwrap_or_default(),
            };
            jobs.push(RoutingJob {
                id: row.try_get("id")?,
                kind,
                channel_id: row.try_get("channel_id")?,
                payload,
                attempts: row.try_get("attempts")?,
            });
        }
        tx.commit().await?;
        jobs.sort_by_key(|job| job.id);
        Ok(jobs)
    }

    async fn commit_routing_tx(&self, commit: &RoutingCommit) -> Result<i64, StoreError> {
        let now = commit.now.unix_millis();
        let mut tx = self.write.begin().await?;
        let updated = if commit.base_version == 0 {
            sqlx::query(
                "INSERT INTO routing_state (scope, version, state, updated_at) \
                 VALUES ($1, 1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(SCOPE)
            .bind(&commit.state)
            .bind(now)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query(
                "UPDATE routing_state SET version = version + 1, state = $1, updated_at = $2 \
                 WHERE scope = $3 AND version = $4",
            )
            .bind(&commit.state)
            .bind(now)
            .bind(SCOPE)
            .bind(commit.base_version)
            .execute(&mut *tx)
            .await?
        };
        if updated.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "routing state moved past version {}",
                commit.base_version
            )));
        }
        for job in &commit.done_jobs {
            let deleted = sqlx::query("DELETE FROM routing_jobs WHERE id = $1 AND claimed_by = $2")
                .bind(job)
                .bind(&commit.worker)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::Conflict(format!(
                    "routing job {job} is no longer claimed by this worker"
                )));
            }
        }
        for out in &commit.outbox {
            let message = serde_json::to_string(&out.message)?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO outbox (channel_id, idempotency_key, conversation_id, message, state, attempts, next_attempt_at, created_at, updated_at) \
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
            if let Some(id) = id {
                sqlx::query(
                    "INSERT INTO messages (channel_id, direction, conversation_id, outbox_id, peer, body, created_at, updated_at) \
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
            }
        }
        for change in &commit.timers {
            match change {
                TimerChange::Start { key, payload, due } => {
                    sqlx::query(
                        "INSERT INTO timers (timer_key, payload, due_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (timer_key) DO UPDATE SET payload = excluded.payload, due_at = excluded.due_at",
                    )
                    .bind(key)
                    .bind(payload)
                    .bind(due.unix_millis())
                    .execute(&mut *tx)
                    .await?;
                }
                TimerChange::Cancel { key } => {
                    sqlx::query("DELETE FROM timers WHERE timer_key = $1")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        for c in &commit.conversations {
            sqlx::query(
                "INSERT INTO conversations (id, channel_id, customer, state, queue, agent, end_reason, opened_at, updated_at, closed_at) \
                 VALUES ($1, COALESCE($2, ''), COALESCE($3, ''), COALESCE($4, 'open'), $5, $6, $7, $8, $8, \
                         CASE WHEN $4 = 'ended' THEN $8 ELSE NULL END) \
                 ON CONFLICT (id) DO UPDATE SET \
                   state = COALESCE($4, conversations.state), \
                   queue = COALESCE($5, conversations.queue), \
                   agent = COALESCE($6, conversations.agent), \
                   end_reason = COALESCE($7, conversations.end_reason), \
                   updated_at = $8, \
                   closed_at = CASE WHEN $4 = 'ended' THEN $8 ELSE conversations.closed_at END",
            )
            .bind(&c.id)
            .bind(c.channel_id.as_deref())
            .bind(c.customer.as_deref())
            .bind(c.state.as_deref())
            .bind(c.queue.as_deref())
            .bind(c.agent.as_deref())
            .bind(c.end_reason.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for (conversation, entry) in &commit.transcript_entries {
            sqlx::query(
                "INSERT INTO transcript_entries (conversation_id, entry, created_at) VALUES ($1, $2, $3)",
            )
            .bind(conversation)
            .bind(entry)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for (conversation, body) in &commit.transcripts {
            sqlx::query(
                "INSERT INTO transcripts (conversation_id, body, written_at) VALUES ($1, $2, $3)",
            )
            .bind(conversation)
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        queries::link_messages(&mut tx, &commit.message_links).await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM routing_state WHERE scope = $1")
            .bind(SCOPE)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn fire_due_timers_tx(&self, now: Timestamp, limit: u32) -> Result<usize, StoreError> {
        let now = now.unix_millis();
        let mut tx = self.write.begin().await?;
        let due = sqlx::query(
            "SELECT timer_key, payload FROM timers WHERE due_at <= $1 ORDER BY due_at, timer_key LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        for row in &due {
            let key: String = row.try_get("timer_key")?;
            let payload: String = row.try_get("payload")?;
            sqlx::query("DELETE FROM timers WHERE timer_key = $1")
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO routing_jobs (kind, payload, created_at) VALUES ('timer', $1, $2)",
            )
            .bind(&payload)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }

    async fn claim_outbox_tx(
        &self,
        worker: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxJob>, StoreError> {
        let now = now.unix_millis();
        let rows = sqlx::query(
            "UPDATE outbox SET state = 'sending', claimed_by = $1, lease_until = $2, \
                    attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $3 \
                          ORDER BY next_attempt_at, id LIMIT $4) \
             RETURNING id, channel_id, conversation_id, message, state, attempts, next_attempt_at, \
                       provider_message_id, last_error",
        )
        .bind(worker)
        .bind(now.saturating_add(millis(lease)))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.write)
        .await?;
        let mut jobs = rows
            .iter()
            .map(outbox_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|job| (job.next_attempt_at, job.id));
        Ok(jobs)
    }

    async fn finish_outbox_tx(
        &self,
        job_id: i64,
        worker: &str,
        outcome: &OutboxOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let now = now.unix_millis();
        let mut tx = self.write.begin().await?;
        let (state, next_attempt, provider_id, error, class) = match outcome {
            OutboxOutcome::Sent(receipt) => (
                OutboxState::Sent,
                None,
                Some(receipt.provider_message_id.as_str()),
                None,
                None,
            ),
            OutboxOutcome::Retry { at, error } => (
                OutboxState::Pending,
                Some(at.unix_millis()),
                None,
                Some(error.as_str()),
                None,
            ),
            OutboxOutcome::Failed { class, error } => (
                OutboxState::Failed,
                None,
                None,
                Some(error.as_str()),
                class
                    .map(|c| serde_json::to_value(c).ok())
                    .and_then(|v| v.and_then(|v| v.as_str().map(str::to_owned))),
            ),
            OutboxOutcome::OptedOut { error } => (
                OutboxState::OptedOut,
                None,
                None,
                Some(error.as_str()),
                None,
            ),
            OutboxOutcome::Unknown { error } => {
                (OutboxState::Unknown, None, None, Some(error.as_str()), None)
            }
            OutboxOutcome::Defer { at } => {
                let done = defer_outbox(&mut tx, job_id, worker, *at, now).await?;
                tx.commit().await?;
                return Ok(done);
            }
            OutboxOutcome::Rewrite { message, error } => {
                let done = rewrite_outbox(&mut tx, job_id, worker, message, error, now).await?;
                tx.commit().await?;
                return Ok(done);
            }
        };
        let updated = sqlx::query(
            "UPDATE outbox SET state = $1, next_attempt_at = COALESCE($2, next_attempt_at), \
                    provider_message_id = COALESCE($3, provider_message_id), last_error = $4, \
                    error_class = $5, claimed_by = NULL, lease_until = NULL, updated_at = $6 \
             WHERE id = $7 AND claimed_by = $8 AND state = 'sending'",
        )
        .bind(state.as_str())
        .bind(next_attempt)
        .bind(provider_id)
        .bind(error)
        .bind(class)
        .bind(now)
        .bind(job_id)
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        let permanent = match outcome {
            OutboxOutcome::Failed { class, .. } => Some(!matches!(
                class,
                Some(ErrorClass::Retryable | ErrorClass::Throttled) | None
            )),
            OutboxOutcome::OptedOut { .. } => Some(true),
            _ => None,
        };
        if let Some(permanent) = permanent {
            // Routing learns of it in the same transaction (it may end the conversation).
            let conversation: Option<String> =
                sqlx::query_scalar("SELECT conversation_id FROM outbox WHERE id = $1")
                    .bind(job_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if let Some(conversation) = conversation {
                let payload = serde_json::to_string(&SendFailure {
                    conversation,
                    permanent,
                })?;
                sqlx::query(
                    "INSERT INTO routing_jobs (kind, payload, created_at) VALUES ($1, $2, $3)",
                )
                .bind(RoutingJobKind::SendFailed.as_str())
                .bind(payload)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        if let OutboxOutcome::Sent(receipt) = outcome {
            let channel_id: String =
                sqlx::query_scalar("SELECT channel_id FROM outbox WHERE id = $1")
                    .bind(job_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let mut delivery = DeliveryState::new(receipt.status.clone());
            // Statuses that overtook the send's answer.
            let early: Vec<String> = sqlx::query_scalar(
                "SELECT payload FROM inbound_events WHERE channel_id = $1 AND ref_id = $2 AND kind = 'status' ORDER BY id",
            )
            .bind(&channel_id)
            .bind(&receipt.provider_message_id)
            .fetch_all(&mut *tx)
            .await?;
            for payload in early {
                if let InboundEvent::Status(status) = serde_json::from_str(&payload)? {
                    delivery.apply(&status.status, status.error.as_ref());
                }
            }
            sqlx::query(
                "UPDATE messages SET provider_message_id = $1, delivery = $2, updated_at = $3 WHERE outbox_id = $4",
            )
            .bind(&receipt.provider_message_id)
            .bind(serde_json::to_string(&delivery)?)
            .bind(now)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// [`OutboxOutcome::Defer`]: pending again at `at`, the claim's attempt not counted.
async fn defer_outbox(
    tx: &mut SqliteConnection,
    job_id: i64,
    worker: &str,
    at: Timestamp,
    now: i64,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE outbox SET state = 'pending', next_attempt_at = $1, attempts = attempts - 1, \
                claimed_by = NULL, lease_until = NULL, updated_at = $2 \
         WHERE id = $3 AND claimed_by = $4 AND state = 'sending'",
    )
    .bind(at.unix_millis())
    .bind(now)
    .bind(job_id)
    .bind(worker)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(updated > 0)
}

/// [`OutboxOutcome::Rewrite`]: the row (and its outbound message record) now carries
/// `message`, pending at once.
async fn rewrite_outbox(
    tx: &mut SqliteConnection,
    job_id: i64,
    worker: &str,
    message: &OutboundMessage,
    error: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let body = serde_json::to_string(message)?;
    let updated = sqlx::query(
        "UPDATE outbox SET state = 'pending', next_attempt_at = $1, message = $2, last_error = $3, \
                claimed_by = NULL, lease_until = NULL, updated_at = $1 \
         WHERE id = $4 AND claimed_by = $5 AND state = 'sending'",
    )
    .bind(now)
    .bind(&body)
    .bind(error)
    .bind(job_id)
    .bind(worker)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE messages SET body = $1, updated_at = $2 WHERE outbox_id = $3")
        .bind(&body)
        .bind(now)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
    Ok(true)
}

/// Writes the events of one webhook on `conn` (inside the caller's transaction or savepoint):
/// dedupe keys, events, contacts and messages, merged statuses, routing jobs.
pub(crate) async fn ingest_events(
    conn: &mut SqliteConnection,
    channel_id: &str,
    events: &[InboundEvent],
    now: Timestamp,
) -> Result<IngestResult, StoreError> {
    let now = now.unix_millis();
    let mut result = IngestResult::default();
    for event in events {
        let key = event.dedupe_key();
        let fresh = sqlx::query(
            "INSERT INTO dedupe_keys (channel_id, kind, provider_id, first_seen_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(channel_id)
        .bind(key.kind.as_str())
        .bind(&key.provider_id)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if fresh == 0 {
            result.duplicates += 1;
            continue;
        }
        let payload = serde_json::to_string(event)?;
        let ref_id = match event {
            InboundEvent::Status(status) => Some(status.message_id.as_str()),
            _ => None,
        };
        let event_id: i64 = sqlx::query_scalar(
            "INSERT INTO inbound_events (channel_id, kind, provider_id, ref_id, payload, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(channel_id)
        .bind(key.kind.as_str())
        .bind(&key.provider_id)
        .bind(ref_id)
        .bind(&payload)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        match event {
            InboundEvent::Message(message) => {
                let address = serde_json::to_string(&message.from)?;
                sqlx::query(
                    "INSERT INTO contacts (channel_id, address, address_json, profile_name, first_seen_at, last_inbound_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT (channel_id, address) DO UPDATE SET \
                     last_inbound_at = excluded.last_inbound_at, \
                     profile_name = COALESCE(excluded.profile_name, contacts.profile_name)",
                )
                .bind(channel_id)
                .bind(&message.from.id)
                .bind(&address)
                .bind(message.profile_name.as_deref())
                .bind(now)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO messages (channel_id, direction, provider_message_id, peer, body, created_at, updated_at) \
                     VALUES ($1, 'in', $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
                )
                .bind(channel_id)
                .bind(&message.id)
                .bind(&message.from.id)
                .bind(&payload)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            InboundEvent::Status(status) => {
                merge_status(
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
            sqlx::query(
                "INSERT INTO routing_jobs (kind, channel_id, event_id, created_at) \
                 VALUES ('inbound', $1, $2, $3)",
            )
            .bind(channel_id)
            .bind(event_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        result.stored += 1;
    }
    Ok(result)
}

/// Merges a status into the outbound message it is about, when that message is known.
async fn merge_status(
    conn: &mut SqliteConnection,
    channel_id: &str,
    provider_message_id: &str,
    status: &switchboard_core::DeliveryStatus,
    error: Option<&ProviderError>,
    now: i64,
) -> Result<(), StoreError> {
    let row = sqlx::query(
        "SELECT id, delivery FROM messages \
         WHERE channel_id = $1 AND direction = 'out' AND provider_message_id = $2",
    )
    .bind(channel_id)
    .bind(provider_message_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let id: i64 = row.try_get("id")?;
    let mut delivery = match row.try_get::<Option<String>, _>("delivery")? {
        Some(json) => serde_json::from_str(&json)?,
        None => DeliveryState::default(),
    };
    delivery.apply(status, error);
    sqlx::query("UPDATE messages SET delivery = $1, updated_at = $2 WHERE id = $3")
        .bind(serde_json::to_string(&delivery)?)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn outbox_from_row(row: &SqliteRow) -> Result<OutboxJob, StoreError> {
    let state: String = row.try_get("state")?;
    let message: String = row.try_get("message")?;
    Ok(OutboxJob {
        id: row.try_get("id")?,
        channel_id: row.try_get("channel_id")?,
        conversation_id: row.try_get("conversation_id")?,
        message: serde_json::from_str::<OutboundMessage>(&message)?,
        state: OutboxState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox state `{state}`")))?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: Timestamp::from_unix_millis(row.try_get("next_attempt_at")?),
        provider_message_id: row.try_get("provider_message_id")?,
        last_error: row.try_get("last_error")?,
    })
}

// The API's queries live in their own file (a child module: it shares the pools).
#[path = "queries.rs"]
mod queries;

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.write).await?;
            Ok(())
        })
    }

    fn ingest<'a>(
        &'a self,
        channel_id: &'a str,
        events: &'a [InboundEvent],
        now: Timestamp,
    ) -> BoxFuture<'a, Result<IngestResult, StoreError>> {
        Box::pin(self.ingest.ingest(channel_id, events, now))
    }

    fn enqueue_routing_job<'a>(
        &'a self,
        kind: RoutingJobKind,
        payload: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<i64, StoreError>> {
        Box::pin(async move {
            let id = sqlx::query_scalar(
                "INSERT INTO routing_jobs (kind, payload, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(kind.as_str())
            .bind(payload)
            .bind(now.unix_millis())
            .fetch_one(&self.write)
            .await?;
            Ok(id)
        })
    }

    fn claim_routing_jobs<'a>(
        &'a self,
        worker: &'a str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<RoutingJob>, StoreError>> {
        Box::pin(self.claim_routing_tx(worker, now, lease, limit))
    }

    fn routing_state(&self) -> BoxFuture<'_, Result<Option<RoutingState>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT version, state FROM routing_state WHERE scope = $1")
                .bind(SCOPE)
                .fetch_optional(&self.write)
                .await?;
            row.map(|row| {
                Ok(RoutingState {
                    version: row.try_get("version")?,
                    state: row.try_get("state")?,
                })
            })
            .transpose()
        })
    }

    fn commit_routing<'a>(
        &'a self,
        commit: &'a RoutingCommit,
    ) -> BoxFuture<'a, Result<i64, StoreError>> {
        Box::pin(self.commit_routing_tx(commit))
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
        lease: Duration,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<OutboxJob>, StoreError>> {
        Box::pin(self.claim_outbox_tx(worker, now, lease, limit))
    }

    fn finish_outbox<'a>(
        &'a self,
        job_id: i64,
        worker: &'a str,
        outcome: &'a OutboxOutcome,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.finish_outbox_tx(job_id, worker, outcome, now))
    }

    fn expire_sending(&self, now: Timestamp) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let now = now.unix_millis();
            let n = sqlx::query(
                "UPDATE outbox SET state = 'unknown', \
                        last_error = 'the worker stopped during the send: outcome unknown', \
                        claimed_by = NULL, lease_until = NULL, updated_at = $1 \
                 WHERE state = 'sending' AND lease_until < $1",
            )
            .bind(now)
            .execute(&self.write)
            .await?
            .rows_affected();
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn outbox_jobs(&self) -> BoxFuture<'_, Result<Vec<OutboxJob>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, channel_id, conversation_id, message, state, attempts, next_attempt_at, \
                        provider_message_id, last_error FROM outbox ORDER BY id",
            )
            .fetch_all(&self.read)
            .await?;
            rows.iter().map(outbox_from_row).collect()
        })
    }

    fn messages<'a>(
        &'a self,
        channel_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<MessageRecord>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, direction, provider_message_id, conversation_id, peer, body, delivery \
                 FROM messages WHERE channel_id = $1 ORDER BY id",
            )
            .bind(channel_id)
            .fetch_all(&self.read)
            .await?;
            rows.iter()
                .map(|row| {
                    let delivery: Option<String> = row.try_get("delivery")?;
                    Ok(MessageRecord {
                        id: row.try_get("id")?,
                        direction: row.try_get("direction")?,
                        provider_message_id: row.try_get("provider_message_id")?,
                        conversation_id: row.try_get("conversation_id")?,
                        peer: row.try_get("peer")?,
                        body: row.try_get("body")?,
                        delivery: delivery.map(|d| serde_json::from_str(&d)).transpose()?,
                    })
                })
                .collect()
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<Counts, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT \
                   (SELECT COUNT(*) FROM inbound_events) AS events, \
                   (SELECT COUNT(*) FROM dedupe_keys) AS dedupe_keys, \
                   (SELECT COUNT(*) FROM messages) AS messages, \
                   (SELECT COUNT(*) FROM contacts) AS contacts, \
                   (SELECT COUNT(*) FROM routing_jobs) AS routing_jobs, \
                   (SELECT COUNT(*) FROM timers) AS timers, \
                   (SELECT COUNT(*) FROM outbox) AS outbox, \
                   (SELECT COUNT(*) FROM conversations) AS conversations, \
                   (SELECT COUNT(*) FROM transcript_entries) AS transcript_entries",
            )
            .fetch_one(&self.read)
            .await?;
            Ok(Counts {
                events: row.try_get("events")?,
                dedupe_keys: row.try_get("dedupe_keys")?,
                messages: row.try_get("messages")?,
                contacts: row.try_get("contacts")?,
                routing_jobs: row.try_get("routing_jobs")?,
                timers: row.try_get("timers")?,
                outbox: row.try_get("outbox")?,
                conversations: row.try_get("conversations")?,
                transcript_entries: row.try_get("transcript_entries")?,
            })
        })
    }
    fn conversations<'a>(
        &'a self,
        filter: &'a crate::ConversationFilter,
    ) -> BoxFuture<'a, Result<crate::ConversationPage, StoreError>> {
        Box::pin(self.conversations_q(filter))
    }

    fn conversation<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::ConversationRecord>, StoreError>> {
        Box::pin(self.conversation_q(id))
    }

    fn conversation_messages<'a>(
        &'a self,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::StoredMessage>, StoreError>> {
        Box::pin(self.conversation_messages_q(conversation_id))
    }

    fn message_by_provider_id<'a>(
        &'a self,
        channel_id: &'a str,
        provider_message_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::StoredMessage>, StoreError>> {
        Box::pin(self.message_by_provider_id_q(channel_id, provider_message_id))
    }

    fn search_contacts<'a>(
        &'a self,
        query: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<crate::ContactRecord>, StoreError>> {
        Box::pin(self.search_contacts_q(query, limit))
    }

    fn contact<'a>(
        &'a self,
        channel_id: &'a str,
        address: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::ContactRecord>, StoreError>> {
        Box::pin(self.contact_q(channel_id, address))
    }

    fn transcript<'a>(
        &'a self,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<crate::TranscriptRecord, StoreError>> {
        Box::pin(self.transcript_q(conversation_id))
    }

    fn outbox_message(
        &self,
        id: i64,
    ) -> BoxFuture<'_, Result<Option<crate::OutboxMessage>, StoreError>> {
        Box::pin(self.outbox_message_q(id))
    }

    fn enqueue_outbox<'a>(
        &'a self,
        out: &'a crate::NewOutbox,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<crate::Enqueued, StoreError>> {
        Box::pin(self.enqueue_outbox_tx(out, now))
    }
}
