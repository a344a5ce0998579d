//! `GET /api/v1/dashboard/monitors`: everything the overview draws, for every monitor, in one
//! call — live state, a 24 h latency sparkline (48 × 30 min) and 90 daily uptime values —
//! computed from rollups in a few queries (see `store/dashboard.rs`).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Reader;
use super::error::{ApiResult, ErrorEnvelope};
use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{DashboardSummary, MonitorFilter, Status, WorkspaceId};
use crate::store::Store;
use crate::store::dashboard::{
    BucketCounts, DAYS, MonitorSeries, SPARK_BUCKETS, SPARK_STEP_MS, SeriesOrigin,
};

/// The rolled-up part of the overview's series per workspace, kept between requests.
///
/// Rolled-up minutes before the watermark never change, so each request only adds the
/// minutes rolled up since the last one and shifts the windows when a new 30-minute bucket
/// or day begins; raw results after the watermark are read fresh every time. The figures are
/// exactly those of an uncached computation.
#[derive(Default)]
pub struct SeriesCache {
    inner: tokio::sync::Mutex<HashMap<WorkspaceId, Cached>>,
}

struct Cached {
    origin: SeriesOrigin,
    /// Minutes before this are in `series`.
    watermark: i64,
    series: Arc<HashMap<i64, MonitorSeries>>,
}

/// Cached rollups plus raw results after the watermark.
pub struct Series {
    rolled: Arc<HashMap<i64, MonitorSeries>>,
    raw: HashMap<i64, MonitorSeries>,
}

impl Series {
    /// One monitor's series, when it has any.
    fn get(&self, id: i64) -> Option<MonitorSeries> {
        match (self.rolled.get(&id), self.raw.get(&id)) {
            (None, None) => None,
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (Some(a), Some(b)) => {
                let mut s = a.clone();
                s.add(b);
                Some(s)
            }
        }
    }
}

impl SeriesCache {
    /// The series of `ws` at `origin`: cached rollups brought up to date plus raw results.
    async fn series(
        &self,
        store: &Store,
        ws: WorkspaceId,
        origin: SeriesOrigin,
    ) -> Result<Series, crate::store::StoreError> {
        let watermark = store
            .dashboard_watermark()
            .await?
            .unwrap_or(i64::MIN)
            .min(origin.end());
        let mut guard = self.inner.lock().await;
        let reusable = guard.get(&ws).and_then(|c| {
            (c.watermark <= watermark)
                .then(|| c.origin.shift_to(&origin))
                .flatten()
        });
        match (reusable, guard.get_mut(&ws)) {
            (Some((spark, days)), Some(c)) => {
                if spark > 0 || days > 0 {
                    for s in Arc::make_mut(&mut c.series).values_mut() {
                        s.shift(spark, days);
                    }
                    c.origin = origin;
                }
                if watermark > c.watermark {
                    store
                        .add_rollup_series(
                            ws,
                            origin,
                            c.watermark,
                            watermark,
                            Arc::make_mut(&mut c.series),
                        )
                        .await?;
                    c.watermark = watermark;
                }
            }
            _ => {
                let mut series = HashMap::new();
                store
                    .add_rollup_series(ws, origin, origin.day_start, watermark, &mut series)
                    .await?;
                guard.insert(
                    ws,
                    Cached {
                        origin,
                        watermark,
                        series: Arc::new(series),
                    },
                );
            }
        }
        let (from, rolled) = guard
            .get(&ws)
            .map(|c| (c.watermark, c.series.clone()))
            .unwrap_or_else(|| (watermark, Arc::default()));
        drop(guard);
        let raw = store.raw_series(ws, origin, from).await?;
        Ok(Series { rolled, raw })
    }
}

/// Most monitors listed (the whole workspace in practice).
const MAX_MONITORS: i64 = 100_000;

/// One monitor row of the overview.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DashboardMonitor {
    pub id: i64,
    pub name: String,
    /// `check` or `push`.
    #[serde(rename = "type")]
    pub kind: String,
    pub plugin: Option<String>,
    pub enabled: bool,
    pub tags: Vec<String>,
    /// Live status; null before the first result.
    #[schema(value_type = Option<String>)]
    pub status: Option<Status>,
    pub since: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_latency_ms: Option<f64>,
    pub last_message: Option<String>,
    pub interval_secs: u32,
    /// Uptime % over the sparkline's 24 h (null without results).
    pub uptime_24h: Option<f64>,
    /// Mean latency (ms) of each 30-minute bucket of the last 24 h, oldest first; null = none.
    pub spark: Vec<Option<f64>>,
    /// Uptime % of each of the last 90 UTC days, oldest first; null = no results.
    pub days: Vec<Option<f64>>,
}

/// The overview document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DashboardMonitors {
    pub generated_at: DateTime<Utc>,
    /// Start of the first sparkline bucket.
    pub spark_start: DateTime<Utc>,
    /// Width of a sparkline bucket (1800).
    pub spark_step_secs: i64,
    /// Start (UTC midnight) of the first daily value.
    pub day_start: DateTime<Utc>,
    pub summary: DashboardSummary,
    pub items: Vec<DashboardMonitor>,
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn series_json(
    series: Option<&MonitorSeries>,
) -> (Option<f64>, Vec<Option<f64>>, Vec<Option<f64>>) {
    match series {
        None => (None, vec![None; SPARK_BUCKETS], vec![None; DAYS]),
        Some(s) => {
            let mut total = BucketCounts::default();
            for b in &s.spark {
                total.good += b.good;
                total.down += b.down;
            }
            (
                total.uptime().map(|v| round(v, 3)),
                s.spark
                    .iter()
                    .map(|b| b.latency().map(|v| round(v, 1)))
                    .collect(),
                s.days
                    .iter()
                    .map(|b| b.uptime().map(|v| round(v, 3)))
                    .collect(),
            )
        }
    }
}

/// Overview of every monitor
///
/// Live state, a 24 h latency sparkline (48 buckets of 30 minutes) and 90 daily uptime values
/// (UTC days) for every monitor of the workspace, plus the status counts.
#[utoipa::path(get, path = "/api/v1/dashboard/monitors", operation_id = "getDashboardMonitors", tag = "results",
    responses((status = 200, description = "The overview", body = DashboardMonitors),
        (status = 401, description = "No key", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn monitors(
    State(state): State<ApiState>,
    auth: Reader,
) -> ApiResult<axum::Json<DashboardMonitors>> {
    let ws = auth.ws();
    let now = Utc::now();
    let origin = SeriesOrigin::at(now);
    let store = &state.app.store;
    let all = MonitorFilter::default();
    let (page, series, summary) = tokio::try_join!(
        store.list_monitors(ws, &all, MAX_MONITORS, 0),
        state.dashboard.series(store, ws, origin),
        store.dashboard_summary(ws),
    )?;
    let items = page
        .items
        .into_iter()
        .map(|m| {
            let (uptime_24h, spark, days) = series_json(series.get(m.id).as_ref());
            DashboardMonitor {
                id: m.id,
                name: m.spec.name,
                kind: m.spec.kind.as_str().to_string(),
                plugin: m.spec.plugin,
                enabled: m.spec.enabled,
                tags: m.spec.tags,
                status: m.state.status,
                since: m.state.since,
                last_checked_at: m.state.last_checked_at,
                last_latency_ms: m.state.last_latency_ms.map(|v| round(v, 1)),
                last_message: m.state.last_message,
                interval_secs: m.spec.interval_secs,
                uptime_24h,
                spark,
                days,
            }
        })
        .collect();
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(now);
    Ok(axum::Json(DashboardMonitors {
        generated_at: now,
        spark_start: at(origin.spark_start),
        spark_step_secs: SPARK_STEP_MS / 1000,
        day_start: at(origin.day_start),
        summary,
        items,
    }))
}
