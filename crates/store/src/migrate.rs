//! Embedded schema migrations: applied in order at open, each in its own transaction, recorded
//! in `schema_migrations`. (Plain SQL files, so no compile-time database or macros are needed.)

use sqlx::{Connection, Row};

use crate::StoreError;

/// `(version, name, sql)` in order.
pub(crate) const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (2, "api", include_str!("../migrations/sqlite/0002_api.sql")),
];

/// Applies the migrations not yet recorded. Returns how many ran.
pub(crate) async fn run(
    conn: &mut sqlx::SqliteConnection,
    migrations: &[(i64, &str, &str)],
    now_millis: i64,
) -> Result<usize, StoreError> {
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
    if let Some(newest) = applied.last() {
        let known = migrations.last().map_or(0, |m| m.0);
        if *newest > known {
            return Err(StoreError::Migration {
                version: *newest,
                reason: format!(
                    "the database has schema version {newest}, newer than this binary's {known}"
                ),
            });
        }
    }
    let mut ran = 0;
    for (version, name, sql) in migrations {
        if applied.contains(version) {
            continue;
        }
        let fail = |e: sqlx::Error| StoreError::Migration {
            version: *version,
            reason: e.to_string(),
        };
        let mut tx = conn.begin().await.map_err(fail)?;
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(*name)
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
