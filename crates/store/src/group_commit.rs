//! Group commit for SQLite ingest: webhooks that arrive while a commit is being synced to disk
//! are written together in the next transaction, each in its own savepoint, and every caller is
//! answered only after the commit that holds its events.
//!
//! Why: with `synchronous = FULL` every commit waits for an fsync of the WAL (about 2 ms on a
//! virtual disk), and SQLite has one writer, so one transaction per webhook caps ingest at a few
//! hundred commits per second however many requests wait. Batching keeps the guarantee (an
//! acknowledged webhook is on disk) and pays one fsync per batch. Nothing waits on a timer: a
//! lone webhook is committed at once; a batch forms only from requests that queued up while the
//! previous commit was running.
//!
//! A request that fails inside its savepoint (a bad value, a constraint) is rolled back alone
//! and answered with its error; a failed `COMMIT` fails every request of the batch (none of them
//! was acknowledged, so the providers retry).

use sqlx::SqlitePool;
use switchboard_core::{BoxFuture, InboundEvent, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::NewEventDelivery;
use crate::sqlite::ingest_events;
use crate::{IngestResult, StoreError};

/// How many webhooks one transaction takes at most (bounds the work lost to a failed commit and
/// the time the writer connection is held).
const MAX_BATCH: usize = 256;
/// Webhooks waiting for the writer; callers beyond it wait for room (backpressure).
const QUEUE: usize = 4096;

/// One webhook's events, waiting for the writer.
struct Request {
    channel_id: String,
    events: Vec<InboundEvent>,
    deliveries: Vec<(usize, NewEventDelivery)>,
    now: Timestamp,
    reply: oneshot::Sender<Result<IngestResult, StoreError>>,
}

/// The handle callers use; cloning it shares the one writer task.
#[derive(Clone, Debug)]
pub(crate) struct IngestWriter {
    queue: mpsc::Sender<Request>,
}

impl IngestWriter {
    /// Starts the writer task on the current tokio runtime; it ends when every handle is
    /// dropped.
    pub(crate) fn spawn(pool: SqlitePool) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, requests));
        Self { queue }
    }

    /// Stores one webhook's events; returns after the commit that holds them.
    pub(crate) async fn ingest(
        &self,
        channel_id: &str,
        events: &[InboundEvent],
        deliveries: &[(usize, NewEventDelivery)],
        now: Timestamp,
    ) -> Result<IngestResult, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            channel_id: channel_id.to_owned(),
            events: events.to_vec(),
            deliveries: deliveries.to_vec(),
            now,
            reply,
        };
        self.queue
            .send(request)
            .await
            .map_err(|_| StoreError::Unavailable("the ingest writer has stopped".to_owned()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the ingest writer stopped before answering".to_owned())
        })?
    }
}

async fn run(pool: SqlitePool, mut requests: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = write_batch(&pool, &batch).await;
        for (request, result) in batch.drain(..).zip(results) {
            // The caller may have gone (its connection closed); the events are stored anyway
            // and a provider retry is then a duplicate.
            let _ = request.reply.send(result);
        }
    }
}

/// Writes the batch in one transaction; one result per request, in order.
///
/// Boxed so the writer task's future is `Send` (sqlx's executor lifetimes otherwise defeat the
/// compiler's proof of it inside `tokio::spawn`).
fn write_batch<'a>(
    pool: &'a SqlitePool,
    batch: &'a [Request],
) -> BoxFuture<'a, Vec<Result<IngestResult, StoreError>>> {
    Box::pin(async move {
        let mut tx = match pool.begin().await {
            Ok(tx) => tx,
            Err(e) => return fail_all(batch.len(), e.into()),
        };
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            if let Err(e) = sqlx::query("SAVEPOINT ingest").execute(&mut *tx).await {
                return fail_all(batch.len(), e.into());
            }
            let result = ingest_events(
                &mut tx,
                &request.channel_id,
                &request.events,
                &request.deliveries,
                request.now,
            )
            .await;
            // A failed request leaves nothing behind; the others of the batch are kept.
            let ended = if result.is_ok() {
                sqlx::query("RELEASE ingest").execute(&mut *tx).await
            } else {
                match sqlx::query("ROLLBACK TO ingest").execute(&mut *tx).await {
                    Ok(_) => sqlx::query("RELEASE ingest").execute(&mut *tx).await,
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = ended {
                return fail_all(batch.len(), e.into());
            }
            results.push(result);
        }
        match tx.commit().await {
            Ok(()) => results,
            Err(e) => fail_all(batch.len(), e.into()),
        }
    })
}

/// The same error for each of `n` requests.
fn fail_all(n: usize, error: StoreError) -> Vec<Result<IngestResult, StoreError>> {
    vec![Err(error); n]
}
