//! Answers kept by request (path and query), since dashboards ask the same questions again and
//! again while a DuckDB read costs milliseconds: an ended run's answers for good (its rows never
//! change), others (a running run, the run list) for [`ResponseCache::FRESH`]. When an answer
//! goes stale, the first request to find it reads the store again while the others are given
//! the stale answer meanwhile, so a crowd of clients never queues on the store at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// One kept answer.
struct Entry {
    body: Bytes,
    /// When it goes stale (`None`: never).
    stale_at: Option<Instant>,
    /// When a request set out to refresh it, if one has.
    refreshing_since: Option<Instant>,
}

/// What the cache has for a request.
pub(crate) enum Lookup {
    /// An answer to give.
    Hit(Bytes),
    /// Nothing usable: read the store (and [`ResponseCache::put`] the answer).
    Miss,
}

/// The cache, bounded in bytes; when full it starts again empty.
pub(crate) struct ResponseCache {
    inner: Mutex<(HashMap<String, Entry>, usize)>,
    cap_bytes: usize,
}

impl ResponseCache {
    /// How long an answer about something still changing is kept: it is at most this stale
    /// (plus one store read), and read from the store at most this often however many clients
    /// ask.
    pub const FRESH: Duration = Duration::from_millis(500);

    /// A refresh that has not come back in this long (its read failed) is taken over.
    const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

    /// An empty cache of at most `cap_bytes` of answers.
    pub fn new(cap_bytes: usize) -> Self {
        Self {
            inner: Mutex::new((HashMap::new(), 0)),
            cap_bytes,
        }
    }

    /// The answer for `key`: a fresh one; a stale one while another request refreshes it; or
    /// a miss, which makes the caller the one that refreshes.
    pub fn get(&self, key: &str) -> Lookup {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = g.0.get_mut(key) else {
            return Lookup::Miss;
        };
        if e.stale_at.is_none_or(|t| now < t) {
            return Lookup::Hit(e.body.clone());
        }
        match e.refreshing_since {
            Some(t) if now.duration_since(t) < Self::REFRESH_TIMEOUT => Lookup::Hit(e.body.clone()),
            _ => {
                e.refreshing_since = Some(now);
                Lookup::Miss
            }
        }
    }

    /// Keep `body` for `key`: for good (`for_good`) or for [`Self::FRESH`]. An answer that
    /// alone would take an eighth of the cache is not kept.
    pub fn put(&self, key: String, body: Bytes, for_good: bool) {
        if body.len() > self.cap_bytes / 8 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.1 + body.len() > self.cap_bytes {
            g.0.clear();
            g.1 = 0;
        }
        g.1 += body.len();
        let entry = Entry {
            body,
            stale_at: (!for_good).then(|| Instant::now() + Self::FRESH),
            refreshing_since: None,
        };
        if let Some(old) = g.0.insert(key, entry) {
            g.1 -= old.body.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(l: Lookup) -> Option<Bytes> {
        match l {
            Lookup::Hit(b) => Some(b),
            Lookup::Miss => None,
        }
    }

    #[test]
    fn stale_answers_are_refreshed_by_one_request_while_the_others_get_the_old_one() {
        let c = ResponseCache::new(1 << 20);
        assert!(hit(c.get("/a")).is_none());
        c.put("/a".into(), Bytes::from_static(b"1"), false);
        c.put("/done".into(), Bytes::from_static(b"final"), true);
        assert_eq!(hit(c.get("/a")).as_deref(), Some(&b"1"[..]));
        std::thread::sleep(ResponseCache::FRESH + Duration::from_millis(50));
        // The first to find it stale refreshes; the next ones are given the stale answer.
        assert!(hit(c.get("/a")).is_none());
        assert_eq!(hit(c.get("/a")).as_deref(), Some(&b"1"[..]));
        c.put("/a".into(), Bytes::from_static(b"2"), false);
        assert_eq!(hit(c.get("/a")).as_deref(), Some(&b"2"[..]));
        // An ended run's answer does not go stale.
        assert_eq!(hit(c.get("/done")).as_deref(), Some(&b"final"[..]));
    }

    #[test]
    fn the_cache_keeps_to_its_size() {
        let c = ResponseCache::new(800);
        c.put("/big".into(), Bytes::from(vec![0u8; 101]), true);
        assert!(
            hit(c.get("/big")).is_none(),
            "more than an eighth is not kept"
        );
        for k in 0..20 {
            c.put(format!("/{k}"), Bytes::from(vec![0u8; 100]), true);
        }
        let g = c.inner.lock().unwrap();
        assert!(g.1 <= 800 && g.1 == g.0.values().map(|e| e.body.len()).sum::<usize>());
    }
}
