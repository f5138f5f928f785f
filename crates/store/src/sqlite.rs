//! The SQLite backend: one file in WAL mode, one writer connection (SQLite has one writer
//! anyway; a single connection never meets `SQLITE_BUSY` from its own process) and a small pool
//! of readers.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection};
use switchboard_core::{BoxFuture, InboundEvent, Timestamp};

use crate::events::{NewEventDelivery, event_store_methods};
use crate::group_commit::IngestWriter;
use crate::shared::{
    Columns, Steps, claimed_outbox, millis, now_millis, shared_store_methods, sql,
};
use crate::types::{IngestResult, OutboxJob, OutboxOutcome, RoutingJob, RoutingJobKind};
use crate::{Store, StoreError, migrate};

/// The transaction steps both backends share.
type Sq = Steps<Sqlite>;

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

    /// The writer connection (shared with the ingest writer task).
    async fn writer(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        Ok(self.write.acquire().await?)
    }

    /// A reader connection.
    async fn reader(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        Ok(self.read.acquire().await?)
    }

    /// Ingest goes through the group-commit writer.
    async fn ingest_tx(
        &self,
        channel_id: &str,
        events: &[InboundEvent],
        deliveries: &[(usize, NewEventDelivery)],
        now: Timestamp,
    ) -> Result<IngestResult, StoreError> {
        self.ingest
            .ingest(channel_id, events, deliveries, now)
            .await
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
                          WHERE lease_until IS NULL OR lease_until < $3 OR claimed_by = $1 \
                          ORDER BY id LIMIT $4) \
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
            let kind_text = row.text("kind")?;
            let kind = RoutingJobKind::parse(&kind_text)
                .ok_or_else(|| StoreError::Corrupt(format!("routing job kind `{kind_text}`")))?;
            let payload = match (kind, row.opt_int("event_id")?) {
                (RoutingJobKind::Inbound, Some(event_id)) => sqlx::query(sql::SELECT_EVENT_PAYLOAD)
                    .bind(event_id)
                    .fetch_one(&mut *tx)
                    .await?
                    .text("payload")?,
                _ => row.opt_text("payload")?.unwrap_or_default(),
            };
            jobs.push(RoutingJob {
                id: row.int("id")?,
                kind,
                channel_id: row.opt_text("channel_id")?,
                payload,
                attempts: row.int("attempts")?,
            });
        }
        tx.commit().await?;
        jobs.sort_by_key(|job| job.id);
        Ok(jobs)
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
            sqlx::query(sql::DELETE_TIMER)
                .bind(row.text("timer_key")?)
                .execute(&mut *tx)
                .await?;
            Sq::enqueue_job(&mut tx, RoutingJobKind::Timer, &row.text("payload")?, now).await?;
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
        let rows = sqlx::query(concat!(
            "UPDATE outbox SET state = 'sending', claimed_by = $1, lease_until = $2, \
                    attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $3 \
                          ORDER BY next_attempt_at, id LIMIT $4) \
             RETURNING ",
            sql::outbox_columns!()
        ))
        .bind(worker)
        .bind(now.saturating_add(millis(lease)))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.write)
        .await?;
        claimed_outbox(&rows)
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
        let Some(channel_id) = Sq::finish_outbox(&mut tx, job_id, worker, outcome, now).await?
        else {
            return Ok(false);
        };
        if let OutboxOutcome::Sent(receipt) = outcome {
            Sq::record_sent(&mut tx, job_id, &channel_id, receipt, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// Writes the events of one webhook on `conn` (inside the caller's transaction or savepoint):
/// for each event its dedupe key, then, when the key was new, the shared per-event steps
/// ([`Steps::store_event`]).
pub(crate) async fn ingest_events(
    conn: &mut SqliteConnection,
    channel_id: &str,
    events: &[InboundEvent],
    deliveries: &[(usize, NewEventDelivery)],
    now: Timestamp,
) -> Result<IngestResult, StoreError> {
    let now = now.unix_millis();
    let mut result = IngestResult::default();
    for (index, event) in events.iter().enumerate() {
        let key = event.dedupe_key();
        let fresh = sqlx::query(sql::INSERT_DEDUPE_KEY)
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
        Sq::store_event(conn, channel_id, event, now).await?;
        for (_, delivery) in deliveries.iter().filter(|(i, _)| *i == index) {
            Sq::enqueue_event_deliveries(conn, std::slice::from_ref(delivery), now).await?;
        }
        result.stored += 1;
    }
    Ok(result)
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    shared_store_methods!(Sqlite);
    event_store_methods!(Sqlite, crate::events::CLAIM_SQLITE);
}
