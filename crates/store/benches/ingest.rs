//! Ingest throughput of the two backends, on the same events, machine and run: one webhook
//! (one inbound WhatsApp message, a new provider id each time) per `Store::ingest`, awaited one
//! after another (`sequential`) and from 16 tasks at once (`concurrent16`, what a busy gateway
//! does). SQLite is a file in a temporary directory with `synchronous = FULL` (the default);
//! PostgreSQL is the database `SWITCHBOARD_TEST_DATABASE_URL` names, in a schema of its own
//! dropped at the end, with the server's default `synchronous_commit = on`: both make every
//! acknowledged webhook durable. Without that variable only SQLite runs.
//!
//! `SWITCHBOARD_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!  cargo bench -p switchboard-store --bench ingest -- --warm-up-time 1 --measurement-time 5`

#![allow(clippy::unwrap_used, reason = "benchmark set-up fails loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use switchboard_core::Timestamp;
use switchboard_store::{PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store, suite};

const TASKS: u64 = 16;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// One webhook: a message with a provider id never used before, from one of 100 customers.
async fn ingest_one(store: &dyn Store) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let event = suite::message(&format!("wamid.bench.{n}"), &format!("+1555{:07}", n % 100));
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    let result = store.ingest("wa", &[event], now).await.unwrap();
    assert_eq!(result.stored, 1);
}

fn bench_backend(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    store: Arc<dyn Store>,
) {
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("sequential/{name}"), |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    ingest_one(store.as_ref()).await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function(format!("concurrent{TASKS}/{name}"), |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                for task in 0..TASKS {
                    let store = store.clone();
                    // `iters` webhooks in all, spread over the tasks.
                    let count = iters / TASKS + u64::from(task < iters % TASKS);
                    tasks.spawn(async move {
                        for _ in 0..count {
                            ingest_one(store.as_ref()).await;
                        }
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn benches() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite: Arc<dyn Store> = Arc::new(
        runtime
            .block_on(SqliteStore::open(&url, SqliteOptions::default()))
            .unwrap(),
    );
    bench_backend(&mut criterion, &runtime, "sqlite", sqlite);

    let Some(base) = std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        println!("PostgreSQL not measured: SWITCHBOARD_TEST_DATABASE_URL is not set");
        return;
    };
    let schema = runtime.block_on(suite::TestSchema::create(&base)).unwrap();
    let url = schema.url().to_owned();
    let options = PostgresOptions {
        max_connections: u32::try_from(TASKS).unwrap(),
        ..PostgresOptions::default()
    };
    let postgres = runtime
        .block_on(PostgresStore::open(&url, options))
        .unwrap();
    bench_backend(
        &mut criterion,
        &runtime,
        "postgres",
        Arc::new(postgres.clone()),
    );
    runtime.block_on(postgres.close());
    drop(schema);
}

criterion_main!(benches);
