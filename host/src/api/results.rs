//! Result endpoints: a monitor's results, latency buckets and uptime; tags; dashboard summary.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::Reader;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{PathId, Query};
use super::monitors::load;
use super::pagination::{ListEnvelope, PageParams};
use crate::model::{
    CheckResult, DashboardSummary, LatencyBucket, ResultQuery, Status, TagCount, Timestamp, Uptime,
};

/// Default range of the latency and uptime endpoints.
pub const DEFAULT_RANGE: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// Default number of latency buckets.
pub const DEFAULT_BUCKETS: u32 = 60;
/// Most latency buckets.
pub const MAX_BUCKETS: u32 = 500;

/// Range, status filter and page of the result list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Results started at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// Results started before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    /// `up`, `degraded`, `down` or `error`.
    #[param(value_type = Option<String>)]
    pub status: Option<Status>,
    /// 1–500, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

/// Range (default the last 24 hours) and bucket count of the latency chart.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LatencyQuery {
    /// Start (RFC 3339), default 24 hours before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339), default now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    /// 1–500, default 60.
    pub buckets: Option<u32>,
}

/// Range of the uptime figures (default the last 24 hours).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// Start (RFC 3339), default 24 hours before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339), default now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
}

/// Page of a small list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1–500, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

/// `[from, to)` with the defaults applied; `from` must be before `to`.
fn range(from: Option<Timestamp>, to: Option<Timestamp>) -> ApiResult<(Timestamp, Timestamp)> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - DEFAULT_RANGE);
    if from >= to {
        return Err(ApiError::validation("/from", "`from` must be before `to`"));
    }
    Ok((from, to))
}

/// A monitor's results
///
/// Newest first.
#[utoipa::path(get, path = "/api/v1/monitors/{id}/results", operation_id = "listResults", tag = "results",
    params(("id" = i64, Path, description = "Monitor id"), ResultsQuery),
    responses((status = 200, description = "A page of results", body = ListEnvelope<CheckResult>),
        (status = 400, description = "Bad query", body = ErrorEnvelope),
        (status = 404, description = "No such monitor", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn results(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
    Query(q): Query<ResultsQuery>,
) -> ApiResult<axum::Json<ListEnvelope<CheckResult>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        return Err(ApiError::validation("/from", "`from` must be before `to`"));
    }
    let ws = auth.ws();
    load(&state, ws, id).await?;
    let query = ResultQuery {
        from: q.from,
        to: q.to,
        status: q.status,
        limit: page.limit,
        offset: page.offset,
    };
    let found = state.app.store.list_results(ws, id, &query).await?;
    Ok(axum::Json(page.envelope(found.items, found.total)))
}

/// Latency buckets of a monitor's results.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatencyView {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub buckets: Vec<LatencyBucket>,
}

/// A monitor's latency chart
///
/// About `buckets` buckets over the range with p50/p95/p99, min/avg/max and phase means, from
/// per-minute rollups plus the latest raw results.
#[utoipa::path(get, path = "/api/v1/monitors/{id}/latency", operation_id = "getLatency", tag = "results",
    params(("id" = i64, Path, description = "Monitor id"), LatencyQuery),
    responses((status = 200, description = "Buckets, oldest first", body = LatencyView),
        (status = 400, description = "Bad query", body = ErrorEnvelope),
        (status = 404, description = "No such monitor", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn latency(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
    Query(q): Query<LatencyQuery>,
) -> ApiResult<axum::Json<LatencyView>> {
    let (from, to) = range(q.from, q.to)?;
    let buckets = q.buckets.unwrap_or(DEFAULT_BUCKETS);
    if !(1..=MAX_BUCKETS).contains(&buckets) {
        return Err(ApiError::validation(
            "/buckets",
            format!("buckets must be between 1 and {MAX_BUCKETS}"),
        ));
    }
    let ws = auth.ws();
    load(&state, ws, id).await?;
    let buckets = state.app.store.latency(ws, id, from, to, buckets).await?;
    Ok(axum::Json(LatencyView { from, to, buckets }))
}

/// A monitor's uptime
///
/// Result counts by status over the range and the uptime percentage they give
/// (`error` results do not count against it).
#[utoipa::path(get, path = "/api/v1/monitors/{id}/uptime", operation_id = "getUptime", tag = "results",
    params(("id" = i64, Path, description = "Monitor id"), RangeQuery),
    responses((status = 200, description = "Counts and uptime", body = Uptime),
        (status = 400, description = "Bad query", body = ErrorEnvelope),
        (status = 404, description = "No such monitor", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn uptime(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
    Query(q): Query<RangeQuery>,
) -> ApiResult<axum::Json<Uptime>> {
    let (from, to) = range(q.from, q.to)?;
    let ws = auth.ws();
    load(&state, ws, id).await?;
    let mut uptime = state.app.store.uptime(ws, id, from, to).await?;
    uptime.from.get_or_insert(from);
    uptime.to.get_or_insert(to);
    Ok(axum::Json(uptime))
}

/// Tags in use
///
/// Every tag of the workspace's monitors with how many carry it, by name.
#[utoipa::path(get, path = "/api/v1/tags", operation_id = "listTags", tag = "results",
    params(PageQuery),
    responses((status = 200, description = "Tags", body = ListEnvelope<TagCount>)),
    security(("bearer" = ["read"])))]
pub async fn tags(
    State(state): State<ApiState>,
    auth: Reader,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<ListEnvelope<TagCount>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    let all = state.app.store.tags(auth.ws()).await?;
    Ok(axum::Json(page.slice(all)))
}

/// Dashboard summary
///
/// Monitor counts by state.
#[utoipa::path(get, path = "/api/v1/dashboard/summary", operation_id = "getDashboardSummary", tag = "results",
    responses((status = 200, description = "Counts", body = DashboardSummary)),
    security(("bearer" = ["read"])))]
pub async fn summary(
    State(state): State<ApiState>,
    auth: Reader,
) -> ApiResult<axum::Json<DashboardSummary>> {
    Ok(axum::Json(
        state.app.store.dashboard_summary(auth.ws()).await?,
    ))
}
