//! The store suite against SQLite files in a temporary directory, plus SQLite specifics:
//! reopening (migrations run once, data kept) and a closed store reporting itself unavailable.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::sync::Arc;

use switchboard_core::Timestamp;
use switchboard_store::{SqliteOptions, SqliteStore, Store, StoreError, suite};

struct Db {
    _dir: tempfile::TempDir,
    url: String,
}

fn temp_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
    Db { _dir: dir, url }
}

async fn fresh(db: &Db) -> Arc<dyn Store> {
    Arc::new(
        SqliteStore::open(&db.url, SqliteOptions::default())
            .await
            .unwrap(),
    )
}

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let db = temp_db();
            suite::$name(fresh(&db).await).await;
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

#[tokio::test]
async fn the_whole_suite_runs_in_memory_too() {
    suite::run_all(|| async {
        Arc::new(
            SqliteStore::open("sqlite::memory:", SqliteOptions::default())
                .await
                .unwrap(),
        ) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test]
async fn reopening_keeps_data_and_does_not_migrate_twice() {
    let db = temp_db();
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    {
        let store = SqliteStore::open(&db.url, SqliteOptions::default())
            .await
            .unwrap();
        store
            .ingest("wa", &[suite::message("m1", "+1")], now)
            .await
            .unwrap();
        store.close().await;
    }
    let store = SqliteStore::open(&db.url, SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap().events, 1);
    let again = store
        .ingest("wa", &[suite::message("m1", "+1")], now)
        .await
        .unwrap();
    assert_eq!(again.duplicates, 1);
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let db = temp_db();
    let store = SqliteStore::open(&db.url, SqliteOptions::default())
        .await
        .unwrap();
    store.close().await;
    let err = store
        .ingest(
            "wa",
            &[suite::message("m1", "+1")],
            Timestamp::from_unix_seconds(0),
        )
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_bad_url_is_refused() {
    let err = switchboard_store::open("mysql://x", SqliteOptions::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Url(_)), "{err}");
}

/// Many webhooks at once go through the group-commit writer in shared transactions: every
/// acknowledged one is on disk (seen after reopening), each once, duplicates in the same batch
/// included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_webhooks_are_group_committed_and_all_kept() {
    let db = temp_db();
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    {
        let store = Arc::new(
            SqliteStore::open(&db.url, SqliteOptions::default())
                .await
                .unwrap(),
        );
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..600 {
            let store = store.clone();
            // Every third webhook repeats the previous one's message.
            let id = if i % 3 == 2 { i - 1 } else { i };
            tasks.spawn(async move {
                store
                    .ingest("wa", &[suite::message(&format!("m{id}"), "+1")], now)
                    .await
            });
        }
        let (mut stored, mut duplicates) = (0, 0);
        while let Some(result) = tasks.join_next().await {
            let result = result.unwrap().unwrap();
            stored += result.stored;
            duplicates += result.duplicates;
        }
        assert_eq!((stored, duplicates), (400, 200));
        store.close().await;
    }
    let store = SqliteStore::open(&db.url, SqliteOptions::default())
        .await
        .unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.events, counts.messages, counts.routing_jobs),
        (400, 400, 400)
    );
}
