//! Public status pages: the page model computed from store data ([`model`]), its HTML, JSON,
//! RSS and SVG badge renderings, and a short-lived per-slug cache. The admin API is
//! `crate::api::status_pages`; the public routes are `/status/{slug}…`.

pub mod badge;
pub mod cache;
pub mod escape;
pub mod feed;
pub mod html;
pub mod model;
pub mod types;

use chrono::{DateTime, Duration, Utc};

pub use cache::{Snapshot, StatusCache};
pub use model::PublicPage;
pub use types::{
    Component, ComponentSpec, IncidentUpdate, IncidentUpdateSpec, StatusPage, StatusPageSpec,
    UpdateStatus,
};

use crate::store::{Store, StoreError};

/// Most incidents a page lists.
const MAX_INCIDENTS: i64 = 50;

/// Reads the facts of a page from the store and computes the public page at `now`. Counts of
/// days before today come from `cache` when it holds them for the same monitors (see
/// [`cache::HISTORY_TTL`]); today's are always read.
pub async fn build(
    store: &Store,
    cache: &StatusCache,
    page: &StatusPage,
    base_url: &str,
    now: DateTime<Utc>,
) -> Result<PublicPage, StoreError> {
    const DAY: i64 = 86_400_000;
    let components = store.status_page_components(page.id).await?;
    let ids: Vec<i64> = components.iter().map(|c| c.spec.monitor_id).collect();
    let time = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or(now);
    let from = model::first_day(now) * DAY;
    let today = now.timestamp_millis().div_euclid(DAY) * DAY;
    let history = match cache.history(page.id, &ids, today) {
        Some(h) => h,
        None => {
            let counts = store
                .status_daily_counts(&ids, time(from), time(today))
                .await?;
            let h = std::sync::Arc::new(cache::History {
                monitor_ids: ids.clone(),
                today,
                counts,
            });
            cache.put_history(page.id, h.clone());
            h
        }
    };
    let (live, recent, incidents, windows) = futures::try_join!(
        store.status_live_states(page.workspace_id, &ids),
        store.status_daily_counts(&ids, time(today), now + Duration::days(1)),
        store.status_incidents(
            page.workspace_id,
            &ids,
            now - Duration::days(model::RECENT_INCIDENT_DAYS),
            MAX_INCIDENTS,
        ),
        store.list_maintenance_windows(page.workspace_id),
    )?;
    let mut days = history.counts.clone();
    for (k, c) in recent {
        days.entry(k).or_default().add(&c);
    }
    let incident_ids: Vec<i64> = incidents.iter().map(|i| i.id).collect();
    let updates = store.incident_updates(&incident_ids, true).await?;
    Ok(model::compute(&model::Facts {
        page,
        components: &components,
        live: &live,
        days: &days,
        incidents: &incidents,
        updates: &updates,
        windows: &windows,
        now,
        base_url,
    }))
}
