//! The OAuth 2 token cache: one token per (token URL, client id, scope), refreshed before it
//! expires, with at most one refresh in flight per key.
//!
//! The pure parts (building the token request, reading the answer, the refresh rule) live in
//! [`switchboard_core::outbound_auth`]; this module adds the clock, the cache and the
//! single flight.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_core::Timestamp;
use switchboard_core::outbound_auth::{AccessToken, TokenKey};

use crate::error::TransportError;

/// Where the transport reads the time to judge token expiry. Tests give a controllable one.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_unix_millis(millis)
    }
}

/// A cached token and the generation that identifies it (to invalidate exactly that one).
#[derive(Clone, Debug)]
pub(crate) struct CachedToken {
    pub(crate) token: AccessToken,
    pub(crate) generation: u64,
}

#[derive(Default)]
struct Slot {
    current: Mutex<Option<CachedToken>>,
    /// Held while a token is fetched: the single flight.
    refresh: tokio::sync::Mutex<()>,
}

impl Slot {
    fn current(&self) -> MutexGuard<'_, Option<CachedToken>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Tokens by key.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<TokenKey, Arc<Slot>>>,
    generations: AtomicU64,
}

impl TokenCache {
    fn slot(&self, key: &TokenKey) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(key.clone()).or_default())
    }

    /// A token for `key`: the cached one while it does not need a refresh, else a fresh one
    /// from `fetch`. Concurrent callers wait for the one fetch in flight. When a refresh
    /// fails while the old token has not expired yet, the old token is used.
    pub(crate) async fn get<F, Fut>(
        &self,
        key: &TokenKey,
        clock: &dyn Clock,
        fetch: F,
    ) -> Result<CachedToken, TransportError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, TransportError>>,
    {
        let slot = self.slot(key);
        let usable = |slot: &Slot| {
            slot.current()
                .as_ref()
                .filter(|c| !c.token.needs_refresh(clock.now()))
                .cloned()
        };
        if let Some(cached) = usable(&slot) {
            return Ok(cached);
        }
        let _flight = slot.refresh.lock().await;
        // Whoever held the lock before us may have refreshed it.
        if let Some(cached) = usable(&slot) {
            return Ok(cached);
        }
        match fetch().await {
            Ok(token) => {
                let cached = CachedToken {
                    token,
                    generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
                };
                *slot.current() = Some(cached.clone());
                Ok(cached)
            }
            Err(err) => {
                let still_valid = slot
                    .current()
                    .as_ref()
                    .filter(|c| !c.token.is_expired(clock.now()))
                    .cloned();
                match still_valid {
                    Some(cached) => {
                        tracing::warn!(
                            target: "switchboard_transport",
                            error = %err,
                            "OAuth 2 token refresh failed; using the current token until it expires"
                        );
                        Ok(cached)
                    }
                    None => Err(err),
                }
            }
        }
    }

    /// Drops the token of `generation` for `key` (the API refused it), unless it was already
    /// replaced: many requests failing with the same token invalidate it once.
    pub(crate) fn invalidate(&self, key: &TokenKey, generation: u64) -> bool {
        let slot = self.slot(key);
        let mut current = slot.current();
        if current.as_ref().is_some_and(|c| c.generation == generation) {
            *current = None;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use switchboard_core::Secret;

    use super::*;

    struct FixedClock(Mutex<Timestamp>);

    impl Clock for FixedClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    #[tokio::test]
    async fn caches_refreshes_and_invalidates_once() {
        let cache = TokenCache::default();
        let clock = FixedClock(Mutex::new(Timestamp::from_unix_seconds(1000)));
        let key = TokenKey::new("https://a/t", "c", None);
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken::new(
                Secret::new(format!("t{n}")),
                clock.now(),
                Duration::from_secs(100),
            ))
        };
        let a = cache.get(&key, &clock, fetch).await.unwrap();
        let b = cache.get(&key, &clock, fetch).await.unwrap();
        assert_eq!(a.generation, b.generation);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // 100 s token, 10 s margin.
        *clock.0.lock().unwrap() = Timestamp::from_unix_seconds(1089);
        assert_eq!(
            cache.get(&key, &clock, fetch).await.unwrap().generation,
            a.generation
        );
        *clock.0.lock().unwrap() = Timestamp::from_unix_seconds(1090);
        let c = cache.get(&key, &clock, fetch).await.unwrap();
        assert_ne!(c.generation, a.generation);
        assert_eq!(c.token.value.expose(), "t1");

        assert!(
            !cache.invalidate(&key, a.generation),
            "stale generation is ignored"
        );
        assert!(cache.invalidate(&key, c.generation));
        assert!(!cache.invalidate(&key, c.generation));
        let d = cache.get(&key, &clock, fetch).await.unwrap();
        assert_eq!(d.token.value.expose(), "t2");
        assert_eq!(fetches.load(Ordering::SeqCst), 3);

        // A failed refresh falls back to the unexpired token, and fails once it has expired.
        *clock.0.lock().unwrap() = Timestamp::from_unix_seconds(1185);
        let failing = || async { Err(TransportError::UnsupportedAuth) };
        let e = cache.get(&key, &clock, failing).await.unwrap();
        assert_eq!(e.generation, d.generation);
        *clock.0.lock().unwrap() = Timestamp::from_unix_seconds(1190);
        assert!(cache.get(&key, &clock, failing).await.is_err());
    }
}
