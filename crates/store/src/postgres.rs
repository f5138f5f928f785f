//! The PostgreSQL backend, for several gateways sharing one database.
//!
//! The statements are the SQLite ones ([`crate::shared::sql`]) except where instances meet:
//!
//! - Claims (routing jobs, outbox) pick their rows with `FOR UPDATE SKIP LOCKED`: two
//!   instances claiming at once take disjoint sets, and neither waits for the other. A claim is a
//!   lease; a killed instance's jobs are claimed again once it ran out. A worker's claim also
//!   takes back the jobs it still holds (its last commit lost the version race to another
//!   instance), so they are retried at once, not after the lease.
//! - Due timers are turned into jobs by one statement that deletes them with
//!   `FOR UPDATE SKIP LOCKED`: a timer fires once however many instances poll.
//! - The routing state's version guard (`UPDATE … WHERE version = $base`) serializes routing
//!   across instances: PostgreSQL makes the second writer wait for the first's row lock, then
//!   finds the version moved and updates nothing ([`StoreError::Conflict`]).
//! - A status and the send answer of the message it is about may be written by two instances at
//!   once; both take a transaction-scoped advisory lock on `(channel, provider message id)`, so
//!   whichever commits second sees the other's write and the status is merged either way.
//! - Dedupe keys are inserted in one statement in key order, so that two webhooks with the same
//!   events wait for each other instead of deadlocking.
//!
//! Transactions run at PostgreSQL's default isolation, READ COMMITTED, which the statements
//! above are written for. Migrations run under a session advisory lock (see `migrate.rs`).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, PgConnection, Postgres, Row};
use switchboard_core::{BoxFuture, InboundEvent, Timestamp};

use crate::events::{NewEventDelivery, event_store_methods};
use crate::shared::{
    Columns, Steps, claimed_outbox, millis, now_millis, shared_store_methods, sql,
};
use crate::types::{IngestResult, OutboxJob, OutboxOutcome, RoutingJob, RoutingJobKind};
use crate::{Store, StoreError, migrate};

/// The transaction steps both backends share.
type Pg = Steps<Postgres>;

/// The first key of the advisory locks that order a status against its message's send answer
/// (the second is a hash of channel and provider message id).
const LOCK_CLASS_MESSAGE: i32 = 0x5342_4d02; // "SBM\x02"

/// Tuning of the PostgreSQL backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The most connections this gateway instance opens. Every store call holds one for its
    /// transaction; size it to the instance's concurrency, and keep the sum over all instances
    /// under the server's `max_connections`.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long a caller waits for a connection before the store reports itself unavailable
    /// (the gateway then answers 503 and the provider retries).
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`,
    /// with libpq's parameters: `sslmode`, `sslrootcert`, `application_name`, and
    /// `options[search_path]=SCHEMA` to keep the tables in a schema of their own) and applies the
    /// migrations, under an advisory lock so that instances starting together migrate once.
    pub async fn open(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let connect =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let mut conn = connect.connect().await?;
        let migrated = migrate::run_postgres(&mut conn, migrate::POSTGRES, now_millis()).await;
        // Closing also releases the migration lock, should unlocking have failed.
        let closed = conn.close().await;
        migrated?;
        closed?;
        let max = options.max_connections.max(1);
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .min_connections(options.min_connections.min(max))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
    }

    /// Closes the connections; every later call fails with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A pooled connection (for writes).
    async fn writer(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// A pooled connection (for reads: the same pool).
    async fn reader(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.writer().await
    }

    async fn ingest_tx(
        &self,
        channel_id: &str,
        events: &[InboundEvent],
        deliveries: &[(usize, NewEventDelivery)],
        now: Timestamp,
    ) -> Result<IngestResult, StoreError> {
        let now = now.unix_millis();
        let mut result = IngestResult::default();
        let mut tx = self.pool.begin().await?;
        let mut fresh = insert_dedupe_keys(&mut tx, channel_id, events, now).await?;
        // The statuses' locks, all before the first merge and in one order (no deadlock).
        let mut locks: Vec<&str> = events
            .iter()
            .filter_map(|event| match event {
                InboundEvent::Status(status) => Some(status.message_id.as_str()),
                _ => None,
            })
            .collect();
        locks.sort_unstable();
        locks.dedup();
        lock_messages(&mut tx, channel_id, &locks).await?;
        for (index, event) in events.iter().enumerate() {
            let key = event.dedupe_key();
            if fresh.remove(&(key.kind.as_str().to_owned(), key.provider_id)) {
                Pg::store_event(&mut tx, channel_id, event, now).await?;
                for (_, delivery) in deliveries.iter().filter(|(i, _)| *i == index) {
                    Pg::enqueue_event_deliveries(&mut tx, std::slice::from_ref(delivery), now)
                        .await?;
                }
                result.stored += 1;
            } else {
                result.duplicates += 1;
            }
        }
        tx.commit().await?;
        Ok(result)
    }

    async fn claim_routing_tx(
        &self,
        worker: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<RoutingJob>, StoreError> {
        let now = now.unix_millis();
        // One statement: pick (skipping rows another instance is claiming), claim, and read
        // the inbound events' payloads.
        let rows = sqlx::query(
            "WITH picked AS ( \
                 SELECT id AS pick FROM routing_jobs \
                 WHERE lease_until IS NULL OR lease_until < $3 OR claimed_by = $1 \
                 ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED), \
             claimed AS ( \
                 UPDATE routing_jobs SET claimed_by = $1, lease_until = $2, attempts = attempts + 1 \
                 FROM picked WHERE id = pick \
                 RETURNING id, kind, channel_id, event_id, payload, attempts) \
             SELECT c.id, c.kind, c.channel_id, c.attempts, \
                    CASE WHEN c.event_id IS NULL THEN c.payload ELSE e.payload END AS payload, \
                    (c.event_id IS NOT NULL AND e.id IS NULL) AS lost \
             FROM claimed c LEFT JOIN inbound_events e ON e.id = c.event_id \
             ORDER BY c.id",
        )
        .bind(worker)
        .bind(now.saturating_add(millis(lease)))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(routing_job_from_row).collect()
    }

    async fn fire_due_timers_tx(&self, now: Timestamp, limit: u32) -> Result<usize, StoreError> {
        // One statement: timers another instance is firing are skipped, so each fires once.
        let fired = sqlx::query(
            "WITH picked AS ( \
                 SELECT timer_key AS pick FROM timers WHERE due_at <= $1 \
                 ORDER BY due_at, timer_key LIMIT $2 FOR UPDATE SKIP LOCKED), \
             fired AS ( \
                 DELETE FROM timers USING picked WHERE timer_key = pick \
                 RETURNING timer_key, payload, due_at) \
             INSERT INTO routing_jobs (kind, payload, created_at) \
             SELECT 'timer', payload, $1 FROM fired ORDER BY due_at, timer_key",
        )
        .bind(now.unix_millis())
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(usize::try_from(fired).unwrap_or(usize::MAX))
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
            "WITH picked AS ( \
                 SELECT id AS pick FROM outbox WHERE state = 'pending' AND next_attempt_at <= $3 \
                 ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox SET state = 'sending', claimed_by = $1, lease_until = $2, \
                    attempts = attempts + 1, updated_at = $3 \
             FROM picked WHERE id = pick \
             RETURNING ",
            sql::outbox_columns!()
        ))
        .bind(worker)
        .bind(now.saturating_add(millis(lease)))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let Some(channel_id) = Pg::finish_outbox(&mut tx, job_id, worker, outcome, now).await?
        else {
            return Ok(false);
        };
        if let OutboxOutcome::Sent(receipt) = outcome {
            // After this lock, a status being ingested for this id has committed (and is read
            // as an early status) or will find the provider id on the message (and merge
            // itself).
            lock_messages(&mut tx, &channel_id, &[&receipt.provider_message_id]).await?;
            Pg::record_sent(&mut tx, job_id, &channel_id, receipt, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// Inserts the dedupe keys of `events` in one statement, in key order (two transactions with
/// common keys then lock them in the same order), and returns the keys that were new as
/// `(kind, provider id)`.
async fn insert_dedupe_keys(
    conn: &mut PgConnection,
    channel_id: &str,
    events: &[InboundEvent],
    now: i64,
) -> Result<HashSet<(String, String)>, StoreError> {
    let (kinds, ids): (Vec<&str>, Vec<String>) = events
        .iter()
        .map(|event| {
            let key = event.dedupe_key();
            (key.kind.as_str(), key.provider_id)
        })
        .unzip();
    let rows = sqlx::query(
        "INSERT INTO dedupe_keys (channel_id, kind, provider_id, first_seen_at) \
         SELECT DISTINCT $1, k.kind, k.provider_id, $4::BIGINT \
         FROM unnest($2::TEXT[], $3::TEXT[]) AS k (kind, provider_id) \
         ORDER BY k.kind, k.provider_id \
         ON CONFLICT DO NOTHING RETURNING kind, provider_id",
    )
    .bind(channel_id)
    .bind(&kinds)
    .bind(&ids)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.text("kind")?, row.text("provider_id")?)))
        .collect()
}

/// Takes the transaction-scoped locks of the outbound messages `provider_message_ids` (sorted)
/// of `channel_id`.
async fn lock_messages(
    conn: &mut PgConnection,
    channel_id: &str,
    provider_message_ids: &[&str],
) -> Result<(), StoreError> {
    if provider_message_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, hashtext($2 || chr(31) || id)) \
         FROM unnest($3::TEXT[]) WITH ORDINALITY AS ids (id, n) ORDER BY n",
    )
    .bind(LOCK_CLASS_MESSAGE)
    .bind(channel_id)
    .bind(provider_message_ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn routing_job_from_row(row: &PgRow) -> Result<RoutingJob, StoreError> {
    let id = row.int("id")?;
    let kind_text = row.text("kind")?;
    let kind = RoutingJobKind::parse(&kind_text)
        .ok_or_else(|| StoreError::Corrupt(format!("routing job kind `{kind_text}`")))?;
    if row.try_get::<bool, _>("lost")? {
        return Err(StoreError::Corrupt(format!(
            "routing job {id}: its inbound event is missing"
        )));
    }
    Ok(RoutingJob {
        id,
        kind,
        channel_id: row.opt_text("channel_id")?,
        payload: row.opt_text("payload")?.unwrap_or_default(),
        attempts: row.int("attempts")?,
    })
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    shared_store_methods!(Postgres);
    event_store_methods!(Postgres, crate::events::CLAIM_POSTGRES);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    /// The gateway spawns tasks that open the store: the future must be `Send`.
    #[test]
    fn open_is_send() {
        is_send(&PostgresStore::open("", PostgresOptions::default()));
        is_send(&crate::open("", PostgresOptions::default()));
    }
}
