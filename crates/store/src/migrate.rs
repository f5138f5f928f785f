//! Embedded schema migrations: applied in order at open, each in its own transaction, recorded
//! in `schema_migrations`. (Plain SQL files, so no compile-time database or macros are needed.)
//!
//! One runner, `apply`, serves both backends; each backend has its own list of files (the
//! same versions, the dialect's DDL). PostgreSQL runs it under an advisory lock
//! ([`run_postgres`]) so that gateways starting together against one database migrate once.

use sqlx::{Connection, Executor, Row};

use crate::StoreError;

/// `(version, name, sql)` in order.
pub(crate) type Migration = (i64, &'static str, &'static str);

/// The SQLite migrations.
pub(crate) const SQLITE: &[Migration] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (2, "api", include_str!("../migrations/sqlite/0002_api.sql")),
    (
        3,
        "job_ids",
        include_str!("../migrations/sqlite/0003_job_ids.sql"),
    ),
    (
        4,
        "event_deliveries",
        include_str!("../migrations/sqlite/0004_event_deliveries.sql"),
    ),
];

/// The PostgreSQL migrations: the same versions as [`SQLITE`].
pub(crate) const POSTGRES: &[Migration] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "api",
        include_str!("../migrations/postgres/0002_api.sql"),
    ),
    (
        3,
        "job_ids",
        include_str!("../migrations/postgres/0003_job_ids.sql"),
    ),
    (
        4,
        "event_deliveries",
        include_str!("../migrations/postgres/0004_event_deliveries.sql"),
    ),
];

/// Applies the SQLite migrations not yet recorded. Returns how many ran. (SQLite has one
/// writer connection per store, so no lock is needed.)
pub(crate) async fn run(
    conn: &mut sqlx::SqliteConnection,
    migrations: &[Migration],
    now_millis: i64,
) -> Result<usize, StoreError> {
    apply::<sqlx::Sqlite>(conn, migrations, now_millis).await
}

/// The first key of the PostgreSQL advisory locks this crate takes (the second is a hash), so
/// that they do not collide with an application's own two-key locks by accident.
pub(crate) const PG_LOCK_CLASS_MIGRATE: i32 = 0x5342_4d01; // "SBM\x01"

/// Applies the PostgreSQL migrations not yet recorded, holding a session advisory lock keyed by
/// the current schema: a second gateway starting at the same time waits, then finds the
/// versions recorded and applies nothing. Returns how many ran.
pub(crate) async fn run_postgres(
    conn: &mut sqlx::PgConnection,
    migrations: &[Migration],
    now_millis: i64,
) -> Result<usize, StoreError> {
    let lock = |e: sqlx::Error| StoreError::Migration {
        version: 0,
        reason: format!("migration lock: {e}"),
    };
    sqlx::query("SELECT pg_advisory_lock($1, hashtext(current_schema()))")
        .bind(PG_LOCK_CLASS_MIGRATE)
        .execute(&mut *conn)
        .await
        .map_err(lock)?;
    let result = apply::<sqlx::Postgres>(conn, migrations, now_millis).await;
    // Released with the session too: the caller closes this connection afterwards.
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext(current_schema()))")
        .bind(PG_LOCK_CLASS_MIGRATE)
        .execute(&mut *conn)
        .await;
    let ran = result?;
    unlocked.map_err(lock)?;
    Ok(ran)
}

/// Applies the migrations not yet recorded, on either backend. Returns how many ran.
async fn apply<DB>(
    conn: &mut DB::Connection,
    migrations: &[Migration],
    now_millis: i64,
) -> Result<usize, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    check_not_newer(&applied, migrations)?;
    let mut ran = 0;
    for &(version, name, sql) in migrations {
        if applied.contains(&version) {
            continue;
        }
        let fail = |e: sqlx::Error| StoreError::Migration {
            version,
            reason: e.to_string(),
        };
        let mut tx = conn.begin().await.map_err(fail)?;
        // Through `Executor` (a boxed `Send` future): the future of `RawSql::execute` is not
        // provably `Send`, which would make every `open` future not `Send`.
        (&mut *tx).execute(sqlx::raw_sql(sql)).await.map_err(fail)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(now_millis)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        tracing::info!(version, name, "store migration applied");
        ran += 1;
    }
    Ok(ran)
}

/// Refuses a database whose schema is newer than this binary's.
fn check_not_newer(applied: &[i64], migrations: &[Migration]) -> Result<(), StoreError> {
    if let Some(&newest) = applied.last() {
        let known = migrations.last().map_or(0, |m| m.0);
        if newest > known {
            return Err(StoreError::Migration {
                version: newest,
                reason: format!(
                    "the database has schema version {newest}, newer than this binary's {known}"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use sqlx::{Connection, SqliteConnection};

    use super::*;

    /// Version 3 rebuilds `routing_jobs` on a database that has jobs: they keep their ids and
    /// columns, and the next id comes after the highest ever used, also once the table emptied.
    #[tokio::test]
    async fn version_3_keeps_the_jobs_and_never_reuses_an_id() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        assert_eq!(run(&mut conn, &SQLITE[..2], 1).await.unwrap(), 2);
        for (kind, payload) in [("command", "{\"n\":1}"), ("timer", "{\"n\":2}")] {
            sqlx::query("INSERT INTO routing_jobs (kind, payload, claimed_by, created_at) VALUES ($1, $2, 'w', 5)")
                .bind(kind)
                .bind(payload)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        assert_eq!(run(&mut conn, &SQLITE[..3], 2).await.unwrap(), 1);
        let jobs: Vec<(i64, String, String, Option<String>)> =
            sqlx::query_as("SELECT id, kind, payload, claimed_by FROM routing_jobs ORDER BY id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            jobs,
            [
                (1, "command".into(), "{\"n\":1}".into(), Some("w".into())),
                (2, "timer".into(), "{\"n\":2}".into(), Some("w".into())),
            ]
        );
        sqlx::query("DELETE FROM routing_jobs")
            .execute(&mut conn)
            .await
            .unwrap();
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO routing_jobs (kind, created_at) VALUES ('command', 6) RETURNING id",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(next, 3);
        // The lease index is back.
        let index: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'routing_jobs_lease'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(index, 1);
        assert_eq!(
            run(&mut conn, &SQLITE[..3], 3).await.unwrap(),
            0,
            "applied once"
        );
    }
}
