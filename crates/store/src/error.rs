//! The store's error.

/// Why a store operation failed. Nothing was written when an operation returns an error.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be reached or cannot write now (closed, locked too long, I/O,
    /// disk full, read-only): callers answer 503 and retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Another writer committed first (the routing state's version moved): re-read and retry.
    #[error("store conflict: {0}")]
    Conflict(String),
    /// A statement failed for another reason.
    #[error("store query failed: {0}")]
    Query(String),
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The store URL is not usable.
    #[error("store URL: {0}")]
    Url(String),
    /// A schema migration failed.
    #[error("migration {version} failed: {reason}")]
    Migration {
        /// The migration's version.
        version: i64,
        /// Why.
        reason: String,
    },
}

impl StoreError {
    /// Whether the failure is about reaching or writing the database (answer 503, retry).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                // SQLite primary result codes: BUSY 5, LOCKED 6, READONLY 8, IOERR 10,
                // CORRUPT 11, FULL 13, CANTOPEN 14. PostgreSQL: class 08 (connection), 53
                // (insufficient resources), 57P (operator intervention), and the transient
                // 40001 (serialization failure) and 40P01 (deadlock detected: rolled back, a
                // retry succeeds).
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let unavailable = if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    code == "40001"
                        || code == "40P01"
                        || code.starts_with("08")
                        || code.starts_with("53")
                        || code.starts_with("57P")
                } else {
                    let primary = code.parse::<i64>().ok().map(|c| c & 0xff);
                    matches!(primary, Some(5 | 6 | 8 | 10 | 11 | 13 | 14))
                };
                if unavailable {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Query(e.to_string())
                }
            }
            _ => StoreError::Query(e.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
