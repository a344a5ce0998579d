//! The in-memory cache of built pages, per slug, with a short TTL. Edits invalidate: a page's
//! slugs on page and component changes, everything on incident updates. A build that started
//! before an invalidation is not stored (generation check), so an edit is never hidden for a
//! whole TTL by a build that raced it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::model::PublicPage;
use super::types::DayCounts;
use super::{feed, html};

/// Default time a built page is served from memory.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// How long the per-day counts of days before today are reused between builds (they change
/// only through late results and retention).
pub const HISTORY_TTL: Duration = Duration::from_secs(300);

/// Per-day counts of a page's monitors before `today`.
#[derive(Debug)]
pub struct History {
    /// The monitors counted, in component order.
    pub monitor_ids: Vec<i64>,
    /// Start of the UTC day the counts stop at (epoch ms).
    pub today: i64,
    /// (monitor id, day since epoch) → counts.
    pub counts: HashMap<(i64, i64), DayCounts>,
}

/// A rendered representation with its entity tag.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    /// A strong ETag, quoted.
    pub etag: String,
}

impl Rendered {
    fn new(body: String) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        Self {
            etag: format!("\"{}\"", hex::encode(&digest[..12])),
            body: Bytes::from(body),
        }
    }
}

/// A built page and its representations, rendered on first use.
#[derive(Debug)]
pub struct Snapshot {
    pub page: PublicPage,
    json: OnceLock<Rendered>,
    html: OnceLock<Rendered>,
    rss: OnceLock<Rendered>,
}

impl Snapshot {
    /// Wraps a built page.
    pub fn new(page: PublicPage) -> Self {
        Self {
            page,
            json: OnceLock::new(),
            html: OnceLock::new(),
            rss: OnceLock::new(),
        }
    }

    /// The JSON document.
    pub fn json(&self) -> &Rendered {
        self.json.get_or_init(|| {
            Rendered::new(serde_json::to_string(&self.page).unwrap_or_else(|_| "{}".into()))
        })
    }

    /// The HTML page.
    pub fn html(&self) -> &Rendered {
        self.html
            .get_or_init(|| Rendered::new(html::render(&self.page)))
    }

    /// The RSS feed.
    pub fn rss(&self) -> &Rendered {
        self.rss
            .get_or_init(|| Rendered::new(feed::render(&self.page)))
    }
}

/// Built pages by slug.
#[derive(Debug)]
pub struct StatusCache {
    ttl: Duration,
    generation: AtomicU64,
    entries: Mutex<HashMap<String, (Instant, Arc<Snapshot>)>>,
    /// Past days' counts by page id.
    history: Mutex<HashMap<i64, (Instant, Arc<History>)>>,
}

impl Default for StatusCache {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

impl StatusCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
            history: Mutex::new(HashMap::new()),
        }
    }

    /// The stored past-day counts of a page, when fresh and for the same monitors and day.
    pub fn history(&self, page_id: i64, monitor_ids: &[i64], today: i64) -> Option<Arc<History>> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.get(&page_id)
            .filter(|(at, v)| {
                at.elapsed() < HISTORY_TTL && v.today == today && v.monitor_ids == monitor_ids
            })
            .map(|(_, v)| v.clone())
    }

    /// Stores a page's past-day counts.
    pub fn put_history(&self, page_id: i64, history: Arc<History>) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.retain(|_, (at, _)| at.elapsed() < HISTORY_TTL);
        h.insert(page_id, (Instant::now(), history));
    }

    /// The TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The current generation; pass it to [`StatusCache::put`] after building.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A fresh entry for `slug`.
    pub fn get(&self, slug: &str) -> Option<Arc<Snapshot>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(slug)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| s.clone())
    }

    /// Stores a snapshot built when the generation was `generation` (dropped if the cache
    /// was invalidated since).
    pub fn put(&self, slug: &str, generation: u64, snapshot: Arc<Snapshot>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        entries.insert(slug.to_string(), (Instant::now(), snapshot));
    }

    /// Forgets one slug.
    pub fn invalidate(&self, slug: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(slug);
    }

    /// Forgets every page.
    pub fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
