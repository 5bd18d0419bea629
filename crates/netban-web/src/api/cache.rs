//! A minute's cache for statistics over long windows.
//!
//! A 400-day report costs 0.3–0.6 s on SQLite and a 400-day top list 1.5 s of Lua on Redis
//! (docs/stats.md, Performance), and Redis runs nothing else meanwhile. Answers for windows
//! over 30 days are kept [`LONG_TTL`] and computed once however many dashboards ask at the
//! same moment (one computation per key; the others wait for its answer). A failed
//! computation is not kept: the next request tries again. Bounded to [`MAX_ENTRIES`] keys.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::{ApiError, JsonBody};

/// How long an answer over a long window is kept.
pub(crate) const LONG_TTL: Duration = Duration::from_secs(60);

/// Windows longer than this are cached.
pub(crate) const CACHED_OVER_DAYS: u32 = 30;

/// Keys kept at most (the oldest goes first).
const MAX_ENTRIES: usize = 64;

/// `(endpoint, days, limit)`.
pub(crate) type Key = (&'static str, u32, u32);

struct Slot {
    made: Instant,
    cell: Arc<OnceCell<JsonBody>>,
}

#[derive(Default)]
pub(crate) struct Cache {
    slots: Mutex<HashMap<Key, Slot>>,
}

impl Cache {
    /// The answer for `key`: cached when the window is long, else computed by `make`.
    pub async fn get<F, Fut>(&self, key: Key, make: F) -> Result<JsonBody, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<JsonBody, ApiError>>,
    {
        if key.1 <= CACHED_OVER_DAYS {
            return make().await;
        }
        let cell = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.retain(|_, s| s.made.elapsed() < LONG_TTL);
            if !slots.contains_key(&key)
                && slots.len() >= MAX_ENTRIES
                && let Some(oldest) = slots.iter().min_by_key(|(_, s)| s.made).map(|(k, _)| *k)
            {
                slots.remove(&oldest);
            }
            slots
                .entry(key)
                .or_insert_with(|| Slot {
                    made: Instant::now(),
                    cell: Arc::new(OnceCell::new()),
                })
                .cell
                .clone()
        };
        cell.get_or_try_init(make).await.cloned()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn long_windows_are_computed_once_and_failures_are_not_kept() {
        let cache = Cache::default();
        let runs = AtomicUsize::new(0);
        let make = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(JsonBody::value(&1))
        };
        let (a, b) = tokio::join!(
            cache.get(("r", 400, 10), make),
            cache.get(("r", 400, 10), make)
        );
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "two requests at once, one query"
        );
        cache.get(("r", 30, 10), make).await.unwrap();
        cache.get(("r", 30, 10), make).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "30 days is never cached");
        let fail = || async { Err(ApiError::unavailable("down")) };
        assert!(cache.get(("x", 90, 10), fail).await.is_err());
        cache.get(("x", 90, 10), make).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 4, "a failure is retried");
        for d in 31..200 {
            cache.get(("n", d, 10), make).await.unwrap();
        }
        assert!(cache.len() <= MAX_ENTRIES);
    }
}
