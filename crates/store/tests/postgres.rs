//! The store suite against PostgreSQL, plus what only several instances sharing one database
//! can show: concurrent claims never take a job twice, an expired lease is taken over by the
//! other instance, concurrent routing commits from one version let exactly one win, timers fire
//! once, a status racing its message's send answer is merged, concurrent starts migrate once.
//!
//! They run when `SWITCHBOARD_TEST_DATABASE_URL` names a database (CI sets it; e.g.
//! `postgres://postgres@127.0.0.1:5432/test`) and print that they did not run otherwise. Each
//! test works in schemas of its own (`search_path` set through the URL), dropped at its end,
//! so the tests run in parallel and leave nothing behind.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use suite::{at, t0};
use switchboard_core::{DeliveryStatus, SendReceipt};
use switchboard_store::{
    NewOutbox, OutboxOutcome, PostgresOptions, PostgresStore, RoutingCommit, RoutingJobKind, Store,
    StoreError, TimerChange, suite,
};

const LEASE: Duration = Duration::from_secs(30);

/// The test database, and the schemas a test made in it (dropped with it, also on a panic).
struct Db {
    url: String,
    schemas: std::sync::Mutex<Vec<suite::TestSchema>>,
}

impl Db {
    /// A new empty schema; returns a URL whose connections use it.
    async fn schema_url(&self) -> String {
        let schema = suite::TestSchema::create(&self.url).await.unwrap();
        let url = schema.url().to_owned();
        self.schemas.lock().unwrap().push(schema);
        url
    }

    /// A store on a new empty schema.
    async fn fresh(&self) -> Arc<dyn Store> {
        let url = self.schema_url().await;
        Arc::new(open(&url).await)
    }
}

async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(url, PostgresOptions::default())
        .await
        .unwrap()
}

/// Runs `body` against the test database (its schemas are dropped when the last handle on it
/// goes, also on a panic); prints that it did not run when no database is configured.
async fn with_db<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Arc<Db>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(url) = std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        println!("{test}: not run: SWITCHBOARD_TEST_DATABASE_URL is not set");
        return;
    };
    body(Arc::new(Db {
        url,
        schemas: std::sync::Mutex::new(Vec::new()),
    }))
    .await;
}

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            with_db(stringify!($name), |db| async move {
                suite::$name(db.fresh().await).await;
            })
            .await;
        }
    )*};
}

suite_tests!(
    ingest_stores_once_and_counts_duplicates,
    duplicates_within_one_batch_are_skipped,
    concurrent_duplicate_ingests_store_one,
    routing_jobs_are_claimed_once_and_reclaimed_after_the_lease,
    a_worker_takes_back_its_own_jobs_after_a_conflict,
    routing_commits_are_atomic_and_versioned,
    timers_upsert_cancel_and_fire,
    outbox_lifecycle_and_fencing,
    statuses_merge_before_and_after_the_send,
    conversations_filter_and_page_newest_first,
    conversation_messages_link_inbound_and_show_delivery,
    contacts_are_found_by_any_part_of_the_number,
    transcripts_read_back_in_order,
    proactive_outbox_rows_are_idempotent_and_readable,
    outbox_defer_rewrite_and_failure_feedback,
    unknown_sends_are_settled_by_a_status_with_their_reference,
    routing_job_ids_are_never_reused,
    event_deliveries_are_queued_with_their_cause,
    event_deliveries_are_claimed_once_retried_and_reclaimed,
    gone_disables_a_subscription_for_good,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_runs() {
    with_db("the_whole_suite_runs", |db| async move {
        suite::run_all(|| {
            let db = db.clone();
            async move { db.fresh().await }
        })
        .await;
    })
    .await;
}

/// Two stores (two gateway instances) on one schema.
async fn two_instances(db: &Db) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let url = db.schema_url().await;
    let a: Arc<dyn Store> = Arc::new(open(&url).await);
    let b: Arc<dyn Store> = Arc::new(open(&url).await);
    (a, b)
}

fn step(worker: &str, base_version: i64) -> RoutingCommit {
    suite::commit(worker, base_version, Vec::new())
}

fn outbox(key: &str) -> NewOutbox {
    NewOutbox {
        channel_id: "wa".into(),
        conversation_id: None,
        message: suite::outbound(key),
    }
}

/// Claims with `claim` from 3 tasks per store until nothing is left; returns every claimed id
/// and asserts that none was claimed twice.
async fn claim_from_both<C, Fut>(a: Arc<dyn Store>, b: Arc<dyn Store>, claim: C) -> Vec<i64>
where
    C: Fn(Arc<dyn Store>, String) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Vec<i64>> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for (n, store) in [a.clone(), a.clone(), a, b.clone(), b.clone(), b]
        .into_iter()
        .enumerate()
    {
        let claim = claim.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            // A worker that claims again takes back what it holds (its step ended without a
            // commit), so each claim here is a worker of its own that keeps its jobs.
            let mut k = 0u64;
            loop {
                let ids = claim(store.clone(), format!("worker-{n}-{k}")).await;
                if ids.is_empty() {
                    return mine;
                }
                mine.extend(ids);
                k += 1;
            }
        });
    }
    let mut all = Vec::new();
    while let Some(ids) = tasks.join_next().await {
        all.extend(ids.unwrap());
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a job was claimed twice");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_routing_claims_never_take_a_job_twice() {
    with_db(
        "concurrent_routing_claims_never_take_a_job_twice",
        |db| async move {
            let (a, b) = two_instances(&db).await;
            let mut ids = HashSet::new();
            for n in 0..300 {
                let payload = format!("{{\"n\":{n}}}");
                ids.insert(
                    a.enqueue_routing_job(RoutingJobKind::Command, &payload, t0())
                        .await
                        .unwrap(),
                );
            }
            let claimed = claim_from_both(a, b, |store, worker| async move {
                let jobs = store
                    .claim_routing_jobs(&worker, at(1), LEASE, 7)
                    .await
                    .unwrap();
                assert!(jobs.iter().all(|job| job.attempts == 1));
                jobs.iter().map(|job| job.id).collect()
            })
            .await;
            assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), ids);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_outbox_claims_never_take_a_job_twice() {
    with_db(
        "concurrent_outbox_claims_never_take_a_job_twice",
        |db| async move {
            let (a, b) = two_instances(&db).await;
            let mut first = step("router", 0);
            first.outbox = (0..300).map(|n| outbox(&format!("msg_{n}"))).collect();
            a.commit_routing(&first).await.unwrap();
            let claimed = claim_from_both(a.clone(), b, |store, worker| async move {
                let jobs = store.claim_outbox(&worker, at(1), LEASE, 7).await.unwrap();
                assert!(jobs.iter().all(|job| job.attempts == 1));
                jobs.iter().map(|job| job.id).collect()
            })
            .await;
            assert_eq!(claimed.len(), 300);
            let jobs = a.outbox_jobs().await.unwrap();
            assert!(
                jobs.iter()
                    .all(|job| job.state == switchboard_store::OutboxState::Sending)
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_by_the_other_instance() {
    with_db(
        "an_expired_lease_is_taken_over_by_the_other_instance",
        |db| async move {
            let (a, b) = two_instances(&db).await;
            a.ingest(
                "wa",
                &[suite::message("m1", "+1"), suite::message("m2", "+2")],
                t0(),
            )
            .await
            .unwrap();
            // Instance A claims, then "dies".
            let jobs = a.claim_routing_jobs("a", t0(), LEASE, 10).await.unwrap();
            assert_eq!(jobs.len(), 2);
            assert!(
                b.claim_routing_jobs("b", at(29), LEASE, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let taken = b.claim_routing_jobs("b", at(31), LEASE, 10).await.unwrap();
            assert_eq!(
                taken.iter().map(|j| j.id).collect::<Vec<_>>(),
                jobs.iter().map(|j| j.id).collect::<Vec<_>>()
            );
            assert!(taken.iter().all(|job| job.attempts == 2));
            let mut done = step("a", 0);
            done.done_jobs = jobs.iter().map(|j| j.id).collect();
            assert!(matches!(
                a.commit_routing(&done).await,
                Err(StoreError::Conflict(_))
            ));
            done.worker = "b".into();
            assert_eq!(b.commit_routing(&done).await.unwrap(), 1);
            assert_eq!(a.counts().await.unwrap().routing_jobs, 0);

            // An outbox send A claimed and never finished: B marks it unknown after the lease
            // (never re-sent), and A can no longer finish it.
            let mut send = step("b", 1);
            send.outbox.push(outbox("msg_1"));
            b.commit_routing(&send).await.unwrap();
            let claimed = a.claim_outbox("a", at(100), LEASE, 10).await.unwrap();
            assert_eq!(claimed.len(), 1);
            assert!(
                b.claim_outbox("b", at(200), LEASE, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(b.expire_sending(at(129)).await.unwrap(), 0);
            assert_eq!(b.expire_sending(at(131)).await.unwrap(), 1);
            let late = OutboxOutcome::Sent(SendReceipt::new("SM1", DeliveryStatus::Sent));
            assert!(
                !a.finish_outbox(claimed[0].id, "a", &late, at(132))
                    .await
                    .unwrap()
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_from_one_version_let_exactly_one_win() {
    with_db(
        "concurrent_commits_from_one_version_let_exactly_one_win",
        |db| async move {
            let (a, b) = two_instances(&db).await;
            let rounds = 25;
            for round in 0..rounds {
                let base = a.routing_state().await.unwrap().map_or(0, |s| s.version);
                assert_eq!(base, round);
                let barrier = Arc::new(tokio::sync::Barrier::new(2));
                let mut tasks = tokio::task::JoinSet::new();
                for (name, store) in [("a", a.clone()), ("b", b.clone())] {
                    let barrier = barrier.clone();
                    tasks.spawn(async move {
                        let mut commit = step(name, base);
                        commit.outbox.push(outbox(&format!("msg_{round}_{name}")));
                        commit.timers.push(TimerChange::Start {
                            key: format!("{round}/{name}"),
                            payload: "{}".into(),
                            due: at(1),
                        });
                        barrier.wait().await;
                        store.commit_routing(&commit).await
                    });
                }
                let mut wins = 0;
                let mut conflicts = 0;
                while let Some(result) = tasks.join_next().await {
                    match result.unwrap() {
                        Ok(version) => {
                            assert_eq!(version, base + 1);
                            wins += 1;
                        }
                        Err(StoreError::Conflict(_)) => conflicts += 1,
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
                assert_eq!((wins, conflicts), (1, 1), "round {round}");
            }
            // The losers wrote nothing.
            let counts = a.counts().await.unwrap();
            assert_eq!((counts.outbox, counts.timers), (rounds, rounds));
            assert_eq!(a.routing_state().await.unwrap().unwrap().version, rounds);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_fire_once_across_instances() {
    with_db("timers_fire_once_across_instances", |db| async move {
        let (a, b) = two_instances(&db).await;
        let mut start = step("router", 0);
        start.timers = (0..200)
            .map(|n| TimerChange::Start {
                key: format!("conv_{n}/offer"),
                payload: format!("{{\"n\":{n}}}"),
                due: at(n % 10),
            })
            .collect();
        a.commit_routing(&start).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for store in [a.clone(), a.clone(), b.clone(), b] {
            tasks.spawn(async move {
                let mut fired = 0;
                loop {
                    let n = store.fire_due_timers(at(60), 7).await.unwrap();
                    if n == 0 {
                        return fired;
                    }
                    fired += n;
                }
            });
        }
        let mut fired = 0;
        while let Some(n) = tasks.join_next().await {
            fired += n.unwrap();
        }
        assert_eq!(fired, 200);
        let counts = a.counts().await.unwrap();
        assert_eq!((counts.timers, counts.routing_jobs), (0, 200));
        let jobs = a.claim_routing_jobs("r", at(61), LEASE, 500).await.unwrap();
        let payloads: HashSet<String> = jobs.into_iter().map(|j| j.payload).collect();
        assert_eq!(payloads.len(), 200);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_racing_the_send_answer_is_merged() {
    with_db(
        "a_status_racing_the_send_answer_is_merged",
        |db| async move {
            let (a, b) = two_instances(&db).await;
            let rounds = 30;
            let mut commit = step("router", 0);
            commit.outbox = (0..rounds).map(|n| outbox(&format!("msg_{n}"))).collect();
            a.commit_routing(&commit).await.unwrap();
            let jobs = a
                .claim_outbox("a", t0(), LEASE, u32::try_from(rounds).unwrap())
                .await
                .unwrap();
            for (n, job) in jobs.iter().enumerate() {
                // A records the send's answer while B ingests the status that overtook it.
                let provider_id = format!("SM{n}");
                let barrier = Arc::new(tokio::sync::Barrier::new(2));
                let finish = {
                    let (a, barrier, id) = (a.clone(), barrier.clone(), job.id);
                    let sent =
                        OutboxOutcome::Sent(SendReceipt::new(&provider_id, DeliveryStatus::Queued));
                    tokio::spawn(async move {
                        barrier.wait().await;
                        a.finish_outbox(id, "a", &sent, at(2)).await.unwrap()
                    })
                };
                let ingest = {
                    let (b, barrier) = (b.clone(), barrier.clone());
                    let status = suite::status(&provider_id, DeliveryStatus::Delivered);
                    tokio::spawn(async move {
                        barrier.wait().await;
                        b.ingest("wa", &[status], at(2)).await.unwrap()
                    })
                };
                assert!(finish.await.unwrap());
                assert_eq!(ingest.await.unwrap().stored, 1);
            }
            let messages = a.messages("wa").await.unwrap();
            assert_eq!(messages.len(), jobs.len());
            for message in messages {
                assert_eq!(
                    message.delivery.unwrap().status,
                    DeliveryStatus::Delivered,
                    "{:?}",
                    message.provider_message_id
                );
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    with_db(
        "instances_starting_together_migrate_once",
        |db| async move {
            let url = db.schema_url().await;
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..4 {
                let url = url.clone();
                tasks.spawn(async move { open(&url).await });
            }
            while let Some(store) = tasks.join_next().await {
                store.unwrap().ping().await.unwrap();
            }
            let mut conn = PgConnection::connect(&url).await.unwrap();
            let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            assert_eq!(versions, [1, 2, 3, 4]);
            conn.close().await.unwrap();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_dispatches_postgres_urls_and_a_closed_store_is_unavailable() {
    with_db(
        "open_dispatches_postgres_urls_and_a_closed_store_is_unavailable",
        |db| async move {
            let url = db.schema_url().await;
            let store = switchboard_store::open(&url, PostgresOptions::default())
                .await
                .unwrap();
            assert_eq!(store.backend(), "postgres");
            store.ping().await.unwrap();
            let alias = url.replacen("postgres://", "postgresql://", 1);
            let again = switchboard_store::open(&alias, PostgresOptions::default())
                .await
                .unwrap();
            assert_eq!(again.backend(), "postgres");

            let pg = open(&url).await;
            pg.close().await;
            assert!(matches!(pg.ping().await, Err(StoreError::Unavailable(_))));
            let err = pg
                .ingest("wa", &[suite::message("m1", "+1")], t0())
                .await
                .unwrap_err();
            assert!(err.is_unavailable(), "{err}");
        },
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Nothing listens on port 1 of the loopback: no database needed for this one.
    let options = PostgresOptions {
        acquire_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let err = PostgresStore::open("postgres://postgres@127.0.0.1:1/test", options)
        .await
        .err()
        .unwrap();
    assert!(err.is_unavailable(), "{err}");
}
