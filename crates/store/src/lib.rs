//! The gateway's storage: one async trait, [`Store`], and two implementations: SQLite
//! ([`SqliteStore`], the embedded default: one file, nothing to install) and PostgreSQL
//! ([`PostgresStore`], scale-out: several gateway instances share one database). [`open`] picks
//! the backend from the store URL: `sqlite://PATH` / `sqlite::memory:` or
//! `postgres://…` / `postgresql://…`.
//!
//! The trait is shaped around the gateway's transactions, not around tables: each method is
//! one atomic unit of work that a backend runs in one database transaction.
//!
//! - [`Store::ingest`]: dedupe keys + events + contacts/messages/statuses + routing jobs. A
//!   webhook is acknowledged only after it returns `Ok`.
//! - [`Store::claim_routing_jobs`] / [`Store::commit_routing`]: the routing driver claims work
//!   with a lease, runs the engine, and commits the new engine state together with the outbox
//!   rows, timers, conversations and transcripts its actions produced, guarded by the state's
//!   version (optimistic concurrency: two instances cannot both commit from the same state).
//! - [`Store::fire_due_timers`]: due timers become routing jobs.
//! - [`Store::claim_outbox`] / [`Store::finish_outbox`] / [`Store::expire_sending`]: the
//!   sender's queue, with a lease; a send whose outcome is unknown is recorded as `unknown` and
//!   never claimed again.
//! - The agent/admin API's reads ([`Store::conversations`], [`Store::search_contacts`], …) and
//!   its one direct write, [`Store::enqueue_outbox`] (a proactive send).
//!
//! Invariant: **nothing is lost once a method returned `Ok`, and nothing is half-written when
//! it returned `Err`**. Every method is one transaction; every claim is fenced by the worker id
//! and a lease, so a killed worker's work is reclaimed after its lease expires. Routing job ids
//! are never reused (the API keys command results by them).
//!
//! The SQL is portable (`$N` parameters, `ON CONFLICT`, `RETURNING`, JSON in `TEXT`, instants
//! as unix milliseconds), and what both backends run as it is lives in one place (`shared.rs`:
//! the statements, the transaction steps generic over the sqlx backend, the row mapping, the
//! `Store` methods that are only those steps). SQLite group-commits webhook ingest: one writer
//! task writes the webhooks that queued up during the previous commit in one transaction, a
//! savepoint each, so `synchronous = FULL` pays one fsync per batch, not per webhook.
//! PostgreSQL (many connections) keeps one plain transaction per webhook, and differs where instances meet: claims and timer firing pick rows with
//! `FOR UPDATE SKIP LOCKED` (two instances never take the same job and never wait for each
//! other), the routing state's version guard makes a second instance's commit from the same
//! version a [`StoreError::Conflict`], and migrations run under an advisory lock so instances
//! starting together migrate once. [`suite`] is the behaviour every backend must pass; the
//! crate's tests run it against SQLite always and against PostgreSQL when
//! `SWITCHBOARD_TEST_DATABASE_URL` is set.
//!
//! PostgreSQL URLs take libpq's parameters. TLS (rustls, Mozilla's roots) is used when the
//! server offers it (`sslmode=prefer`, the default); an operator requires and verifies it with
//! `?sslmode=verify-full` (and `&sslrootcert=/path/ca.pem` for a private CA). A schema of its
//! own: `?options[search_path]=switchboard` (the schema must exist).

mod error;
mod events;
mod feed;
mod group_commit;
mod migrate;
mod postgres;
mod shared;
mod sqlite;
pub mod suite;
mod types;

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{BoxFuture, InboundEvent, Timestamp};

pub use error::StoreError;
pub use events::{
    DisabledSubscription, EventDelivery, EventDeliveryOutcome, EventDeliveryState, NewEventDelivery,
};
pub use feed::{Feed, FeedListener};
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use types::{
    ContactRecord, ConversationCursor, ConversationFilter, ConversationPage, ConversationRecord,
    ConversationUpdate, Counts, Enqueued, IngestResult, MessageLink, MessageRecord, NewOutbox,
    OutboxJob, OutboxMessage, OutboxOutcome, OutboxState, RoutingCommit, RoutingJob,
    RoutingJobKind, RoutingState, SendFailure, StoredMessage, TimerChange, TranscriptRecord,
};

/// The gateway's storage. Object safe: hold it as `Arc<dyn Store>`.
///
/// Every method is one transaction (see the crate docs).
pub trait Store: Send + Sync {
    /// The backend's name, e.g. `sqlite`.
    fn backend(&self) -> &'static str;

    /// Checks that the store answers.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Stores the events of one webhook of `channel_id` in one transaction: for each event not
    /// seen before (by `(channel, kind, provider id)`), its dedupe key, the event, the contact
    /// and message (messages) or the merged delivery state (statuses), and a routing job for
    /// the events routing consumes (everything but statuses). Duplicates are skipped and
    /// counted.
    fn ingest<'a>(
        &'a self,
        channel_id: &'a str,
        events: &'a [InboundEvent],
        now: Timestamp,
    ) -> BoxFuture<'a, Result<IngestResult, StoreError>> {
        self.ingest_with_events(channel_id, events, &[], now)
    }

    /// [`Store::ingest`], also queueing integration-event deliveries in the same transaction:
    /// `(index, delivery)` is queued only when `events[index]` is stored (not a duplicate).
    fn ingest_with_events<'a>(
        &'a self,
        channel_id: &'a str,
        events: &'a [InboundEvent],
        deliveries: &'a [(usize, NewEventDelivery)],
        now: Timestamp,
    ) -> BoxFuture<'a, Result<IngestResult, StoreError>>;

    /// Queues integration-event deliveries (one transaction). Deliveries for a disabled
    /// subscription and deliveries whose `webhook_id` is known are skipped.
    fn enqueue_event_deliveries<'a>(
        &'a self,
        deliveries: &'a [NewEventDelivery],
        now: Timestamp,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Claims up to `limit` deliveries that are pending and due, or still `sending` after
    /// their lease (their worker died), marking them `sending` for `worker` until
    /// `now + lease` and counting the attempt. Oldest due first.
    fn claim_event_deliveries<'a>(
        &'a self,
        worker: &'a str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<EventDelivery>, StoreError>>;

    /// Records an attempt's outcome. Fenced: `Ok(false)` (nothing written) unless `worker`
    /// holds the claim. [`EventDeliveryOutcome::Gone`] disables the subscription for good.
    fn finish_event_delivery<'a>(
        &'a self,
        id: i64,
        worker: &'a str,
        outcome: &'a EventDeliveryOutcome,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Every event delivery, oldest first (operators' view and tests).
    fn event_deliveries(&self) -> BoxFuture<'_, Result<Vec<EventDelivery>, StoreError>>;

    /// The subscriptions disabled by a 410 answer.
    fn disabled_event_subscriptions(
        &self,
    ) -> BoxFuture<'_, Result<Vec<DisabledSubscription>, StoreError>>;

    /// Queues a routing job that is not an inbound event (an agent command, …).
    fn enqueue_routing_job<'a>(
        &'a self,
        kind: RoutingJobKind,
        payload: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<i64, StoreError>>;

    /// Claims up to `limit` routing jobs, oldest first, for `worker` until `now + lease`.
    /// Jobs whose lease expired (their worker died) are claimed again, and so are the jobs
    /// `worker` itself still holds (its commit lost to another instance's: retried at once,
    /// not after the lease). A worker runs one step at a time.
    fn claim_routing_jobs<'a>(
        &'a self,
        worker: &'a str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<RoutingJob>, StoreError>>;

    /// The routing engine's state (`None` before the first commit).
    fn routing_state(&self) -> BoxFuture<'_, Result<Option<RoutingState>, StoreError>>;

    /// Commits one step of the routing driver in one transaction: the new state (only if the
    /// stored version is still `commit.base_version`, else [`StoreError::Conflict`] and nothing
    /// is written), the finished jobs deleted, outbox rows, timers, conversations and
    /// transcripts. Returns the new state version.
    fn commit_routing<'a>(
        &'a self,
        commit: &'a RoutingCommit,
    ) -> BoxFuture<'a, Result<i64, StoreError>>;

    /// Turns up to `limit` timers due at `now` into routing jobs (one transaction); returns how
    /// many.
    fn fire_due_timers(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Claims up to `limit` outbox jobs that are pending and due, marking them `sending` for
    /// `worker` until `now + lease` and counting the attempt.
    fn claim_outbox<'a>(
        &'a self,
        worker: &'a str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<OutboxJob>, StoreError>>;

    /// Records the result of a send. Fenced: only the worker that holds the job's claim can
    /// finish it (`Ok(false)` otherwise, e.g. after its lease expired). A `Sent` outcome also
    /// records the provider's message id on the message and merges statuses that arrived
    /// before it.
    fn finish_outbox<'a>(
        &'a self,
        job_id: i64,
        worker: &'a str,
        outcome: &'a OutboxOutcome,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Jobs still `sending` after their lease (the worker died during the send, so the request
    /// may have gone out) become `unknown`: never re-sent blindly. Returns how many.
    fn expire_sending(&self, now: Timestamp) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// All outbox jobs, oldest first (operators' view and tests).
    fn outbox_jobs(&self) -> BoxFuture<'_, Result<Vec<OutboxJob>, StoreError>>;

    /// The messages of a channel, oldest first.
    fn messages<'a>(
        &'a self,
        channel_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<MessageRecord>, StoreError>>;

    /// Row counts of the main tables.
    fn counts(&self) -> BoxFuture<'_, Result<Counts, StoreError>>;

    // ---- the agent/admin API's reads and its direct write --------------------------------

    /// Conversations matching `filter`, newest first (`opened_at`, then id, descending), one
    /// page at a time: `filter.cursor` is the previous page's `next`.
    fn conversations<'a>(
        &'a self,
        filter: &'a ConversationFilter,
    ) -> BoxFuture<'a, Result<ConversationPage, StoreError>>;

    /// One conversation's summary row.
    fn conversation<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConversationRecord>, StoreError>>;

    /// The messages of a conversation in the order they were stored, both directions, with
    /// the outbound ones' outbox state and merged delivery state.
    fn conversation_messages<'a>(
        &'a self,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StoredMessage>, StoreError>>;

    /// The message a provider id names on a channel (the outbound one when both directions
    /// use the id).
    fn message_by_provider_id<'a>(
        &'a self,
        channel_id: &'a str,
        provider_message_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredMessage>, StoreError>>;

    /// Contacts whose address or profile name contains `query` (case-insensitive), or, when
    /// `query` has digits, whose address without the phone symbols `+ ( ) - .` and spaces
    /// contains the query's digits. Most recently active first; `limit` 0 means 50, at most
    /// 500.
    fn search_contacts<'a>(
        &'a self,
        query: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<ContactRecord>, StoreError>>;

    /// The contact with this exact address on a channel.
    fn contact<'a>(
        &'a self,
        channel_id: &'a str,
        address: &'a str,
    ) -> BoxFuture<'a, Result<Option<ContactRecord>, StoreError>>;

    /// A conversation's transcript entries and written copies, in order.
    fn transcript<'a>(
        &'a self,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<TranscriptRecord, StoreError>>;

    /// An outbox row with the merged delivery state of its message.
    fn outbox_message(&self, id: i64) -> BoxFuture<'_, Result<Option<OutboxMessage>, StoreError>>;

    /// Queues one message outside routing (a proactive send) in one transaction: the outbox
    /// row and its outbound message row. Idempotent per `(channel, idempotency key)`: a second
    /// call writes nothing and returns the first row's id with `created = false`.
    fn enqueue_outbox<'a>(
        &'a self,
        out: &'a NewOutbox,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Enqueued, StoreError>>;
}

/// The options of every backend; [`open`] uses those of the backend the URL names. Converts
/// from either backend's options (the other's are then the defaults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Used for `sqlite:` URLs.
    pub sqlite: SqliteOptions,
    /// Used for `postgres://` and `postgresql://` URLs.
    pub postgres: PostgresOptions,
}

impl From<SqliteOptions> for StoreOptions {
    fn from(sqlite: SqliteOptions) -> Self {
        Self {
            sqlite,
            ..Self::default()
        }
    }
}

impl From<PostgresOptions> for StoreOptions {
    fn from(postgres: PostgresOptions) -> Self {
        Self {
            postgres,
            ..Self::default()
        }
    }
}

/// Opens the store a URL names and applies its migrations: `sqlite://PATH` (created when
/// missing), `sqlite::memory:`, or `postgres://…` / `postgresql://…` (the database must exist).
pub async fn open(
    url: &str,
    options: impl Into<StoreOptions>,
) -> Result<Arc<dyn Store>, StoreError> {
    let options = options.into();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, options.sqlite).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url, options.postgres).await?))
    } else {
        Err(StoreError::Url(
            "expected `sqlite://PATH`, `sqlite::memory:` or `postgres://…`".to_owned(),
        ))
    }
}
