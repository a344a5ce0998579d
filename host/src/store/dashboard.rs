//! The overview's series for every monitor of a workspace in a few queries: a 24 h latency
//! sparkline in 30-minute buckets and 90 daily uptime values (UTC days), from rollups where
//! they exist and raw results after the rollup watermark.

use std::collections::HashMap;

use super::rows::{self, get};
use super::{R, Store};
use crate::model::{Status, Timestamp, WorkspaceId};

/// Width of a sparkline bucket (ms).
pub const SPARK_STEP_MS: i64 = 30 * 60_000;
/// Sparkline buckets (24 h).
pub const SPARK_BUCKETS: usize = 48;
/// Daily uptime values.
pub const DAYS: usize = 90;
/// Milliseconds per day.
const DAY_MS: i64 = 86_400_000;

/// Counts and latency sums of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BucketCounts {
    /// `up` + `degraded` results (not in maintenance).
    pub good: i64,
    /// `down` results (not in maintenance).
    pub down: i64,
    /// Sum of the latencies of `up` and `degraded` results.
    pub lat_sum: f64,
    /// How many latencies `lat_sum` adds up.
    pub lat_count: i64,
}

impl BucketCounts {
    fn add(&mut self, o: &BucketCounts) {
        self.good += o.good;
        self.down += o.down;
        self.lat_sum += o.lat_sum;
        self.lat_count += o.lat_count;
    }

    /// Mean latency, when any.
    pub fn latency(&self) -> Option<f64> {
        (self.lat_count > 0).then(|| self.lat_sum / self.lat_count as f64)
    }

    /// Uptime %, when any result counts.
    pub fn uptime(&self) -> Option<f64> {
        let n = self.good + self.down;
        (n > 0).then(|| self.good as f64 * 100.0 / n as f64)
    }
}

/// One monitor's series.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSeries {
    /// [`SPARK_BUCKETS`] buckets, oldest first.
    pub spark: Vec<BucketCounts>,
    /// [`DAYS`] days, oldest first.
    pub days: Vec<BucketCounts>,
}

impl Default for MonitorSeries {
    fn default() -> Self {
        Self {
            spark: vec![BucketCounts::default(); SPARK_BUCKETS],
            days: vec![BucketCounts::default(); DAYS],
        }
    }
}

/// Where the series of [`Store::dashboard_series`] start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesOrigin {
    /// Start of the first sparkline bucket (ms).
    pub spark_start: i64,
    /// Start of the first day (UTC midnight, ms).
    pub day_start: i64,
}

impl SeriesOrigin {
    /// The windows ending with the bucket and the day holding `now`.
    pub fn at(now: Timestamp) -> Self {
        let now = rows::ms(now);
        let spark_start = now.div_euclid(SPARK_STEP_MS) * SPARK_STEP_MS
            - (SPARK_BUCKETS as i64 - 1) * SPARK_STEP_MS;
        let day_start = now.div_euclid(DAY_MS) * DAY_MS - (DAYS as i64 - 1) * DAY_MS;
        Self {
            spark_start,
            day_start,
        }
    }
}

const ROLLUP_SUMS: &str = "CAST(COALESCE(SUM(r.up + r.degraded), 0) AS BIGINT) AS good, \
     CAST(COALESCE(SUM(r.down), 0) AS BIGINT) AS down, \
     CAST(COALESCE(SUM(r.lat_sum), 0) AS DOUBLE PRECISION) AS lat_sum, \
     CAST(COALESCE(SUM(r.lat_count), 0) AS BIGINT) AS lat_count";

fn counts(row: &sqlx::any::AnyRow) -> R<BucketCounts> {
    Ok(BucketCounts {
        good: get(row, "dashboard.good")?,
        down: get(row, "dashboard.down")?,
        lat_sum: get(row, "dashboard.lat_sum")?,
        lat_count: get(row, "dashboard.lat_count")?,
    })
}

impl MonitorSeries {
    /// Adds `other` bucket by bucket.
    pub fn add(&mut self, other: &MonitorSeries) {
        for (a, b) in self.spark.iter_mut().zip(&other.spark) {
            a.add(b);
        }
        for (a, b) in self.days.iter_mut().zip(&other.days) {
            a.add(b);
        }
    }

    /// Moves the windows forward by `spark` buckets and `days` days (the oldest fall out,
    /// empty ones come in at the end).
    pub fn shift(&mut self, spark: usize, days: usize) {
        shift(&mut self.spark, spark);
        shift(&mut self.days, days);
    }
}

fn shift(v: &mut Vec<BucketCounts>, by: usize) {
    let n = v.len();
    v.drain(..by.min(n));
    v.resize(n, BucketCounts::default());
}

impl SeriesOrigin {
    /// End of the sparkline window (the end of the bucket holding now).
    pub fn end(&self) -> i64 {
        self.spark_start + SPARK_BUCKETS as i64 * SPARK_STEP_MS
    }

    /// How far `later` moved the windows: `(spark buckets, days)`, or `None` when it is
    /// earlier than `self`.
    pub fn shift_to(&self, later: &SeriesOrigin) -> Option<(usize, usize)> {
        let spark = usize::try_from((later.spark_start - self.spark_start) / SPARK_STEP_MS).ok()?;
        let days = usize::try_from((later.day_start - self.day_start) / DAY_MS).ok()?;
        Some((spark, days))
    }
}

impl Store {
    /// The rollup watermark (epoch ms; every minute before it is rolled up), if any.
    pub async fn dashboard_watermark(&self) -> R<Option<i64>> {
        self.rollup_watermark().await
    }

    /// Adds the rolled-up minutes in `[from, to)` (epoch ms) of every monitor of `ws` into
    /// `out`: per day over the 90 days and per 30 minutes over the last 24 h of `origin`.
    pub async fn add_rollup_series(
        &self,
        ws: WorkspaceId,
        origin: SeriesOrigin,
        from: i64,
        to: i64,
        out: &mut HashMap<i64, MonitorSeries>,
    ) -> R<()> {
        let SeriesOrigin {
            spark_start,
            day_start,
        } = origin;
        for (start, width, spark) in [
            (day_start, DAY_MS, false),
            (spark_start, SPARK_STEP_MS, true),
        ] {
            let lo = from.max(start);
            if to <= lo {
                continue;
            }
            let sql = format!(
                "SELECT r.monitor_id AS monitor_id, (r.minute - $2) / $3 AS b, {ROLLUP_SUMS} \
                 FROM rollups r WHERE r.monitor_id IN (SELECT id FROM monitors WHERE workspace_id = $1) \
                 AND r.minute >= $4 AND r.minute < $5 \
                 GROUP BY r.monitor_id, (r.minute - $2) / $3"
            );
            let rows = sqlx::query(&sql)
                .bind(ws)
                .bind(start)
                .bind(width)
                .bind(lo)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
            for row in rows {
                let id: i64 = get(&row, "dashboard.monitor_id")?;
                let b: i64 = get(&row, "dashboard.b")?;
                let c = counts(&row)?;
                let series = out.entry(id).or_default();
                let slot = if spark {
                    usize::try_from(b)
                        .ok()
                        .and_then(|i| series.spark.get_mut(i))
                } else {
                    usize::try_from(b).ok().and_then(|i| series.days.get_mut(i))
                };
                if let Some(slot) = slot {
                    slot.add(&c);
                }
            }
        }
        Ok(())
    }

    /// The series of raw results started at or after `from` (epoch ms; the rollup watermark),
    /// per monitor of `ws` that has any.
    pub async fn raw_series(
        &self,
        ws: WorkspaceId,
        origin: SeriesOrigin,
        from: i64,
    ) -> R<HashMap<i64, MonitorSeries>> {
        let mut out: HashMap<i64, MonitorSeries> = HashMap::new();
        let SeriesOrigin {
            spark_start,
            day_start,
        } = origin;
        let rows = sqlx::query(
            "SELECT monitor_id, (started_at - $2) / $3 AS b, \
             CAST(SUM(CASE WHEN maintenance = 0 AND status IN ('up', 'degraded') THEN 1 ELSE 0 END) AS BIGINT) AS good, \
             CAST(SUM(CASE WHEN maintenance = 0 AND status = 'down' THEN 1 ELSE 0 END) AS BIGINT) AS down, \
             CAST(COALESCE(SUM(CASE WHEN status IN ('up', 'degraded') THEN latency_ms ELSE 0 END), 0) AS DOUBLE PRECISION) AS lat_sum, \
             CAST(SUM(CASE WHEN status IN ('up', 'degraded') THEN 1 ELSE 0 END) AS BIGINT) AS lat_count \
             FROM results WHERE workspace_id = $1 AND started_at >= $4 \
             GROUP BY monitor_id, (started_at - $2) / $3",
        )
        .bind(ws)
        .bind(day_start)
        .bind(SPARK_STEP_MS)
        .bind(from.max(day_start))
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let id: i64 = get(&row, "dashboard.monitor_id")?;
            let b: i64 = get(&row, "dashboard.b")?;
            let c = counts(&row)?;
            let t = day_start + b * SPARK_STEP_MS;
            let series = out.entry(id).or_default();
            if let Some(day) = usize::try_from((t - day_start) / DAY_MS)
                .ok()
                .and_then(|i| series.days.get_mut(i))
            {
                day.add(&c);
            }
            if t >= spark_start
                && let Some(slot) = usize::try_from((t - spark_start) / SPARK_STEP_MS)
                    .ok()
                    .and_then(|i| series.spark.get_mut(i))
            {
                slot.add(&c);
            }
        }
        Ok(out)
    }

    /// Sparkline and daily uptime series of every monitor of `ws` that has results in the
    /// windows of `origin` (monitors without any are absent), uncached.
    pub async fn dashboard_series(
        &self,
        ws: WorkspaceId,
        origin: SeriesOrigin,
    ) -> R<HashMap<i64, MonitorSeries>> {
        let watermark = self
            .rollup_watermark()
            .await?
            .unwrap_or(i64::MIN)
            .min(origin.end());
        let mut out = HashMap::new();
        self.add_rollup_series(ws, origin, origin.day_start, watermark, &mut out)
            .await?;
        for (id, raw) in self.raw_series(ws, origin, watermark).await? {
            out.entry(id).or_default().add(&raw);
        }
        Ok(out)
    }

    /// The live status of every monitor of `ws` that has one.
    pub async fn live_statuses(&self, ws: WorkspaceId) -> R<HashMap<i64, Status>> {
        let rows = sqlx::query(
            "SELECT s.monitor_id, s.status FROM monitor_state s \
             JOIN monitors m ON m.id = s.monitor_id \
             WHERE m.workspace_id = $1 AND s.status IS NOT NULL",
        )
        .bind(ws)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    get(r, "monitor_state.monitor_id")?,
                    rows::status_col(r, "monitor_state.status")?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_windows_end_with_the_current_bucket_and_day() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:17:00Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .expect("time");
        let o = SeriesOrigin::at(now);
        let now_ms = now.timestamp_millis();
        let last_bucket = o.spark_start + (SPARK_BUCKETS as i64 - 1) * SPARK_STEP_MS;
        assert!(last_bucket <= now_ms && now_ms < last_bucket + SPARK_STEP_MS);
        let last_day = o.day_start + (DAYS as i64 - 1) * DAY_MS;
        assert!(last_day <= now_ms && now_ms < last_day + DAY_MS);
        assert_eq!(o.day_start % DAY_MS, 0);
        assert_eq!((o.spark_start - o.day_start) % SPARK_STEP_MS, 0);
    }

    #[test]
    fn shifting_drops_the_oldest_buckets() {
        let mut s = MonitorSeries::default();
        s.spark[1].good = 1;
        s.spark[47].down = 2;
        s.days[89].good = 3;
        s.shift(1, 1);
        assert_eq!(s.spark.len(), SPARK_BUCKETS);
        assert_eq!(s.days.len(), DAYS);
        assert_eq!(s.spark[0].good, 1);
        assert_eq!(s.spark[46].down, 2);
        assert_eq!(s.spark[47], BucketCounts::default());
        assert_eq!(s.days[88].good, 3);
        s.shift(100, 100);
        assert!(
            s.spark
                .iter()
                .chain(&s.days)
                .all(|b| *b == BucketCounts::default())
        );
        let a = SeriesOrigin::at(chrono::Utc::now());
        let later = SeriesOrigin {
            spark_start: a.spark_start + SPARK_STEP_MS,
            day_start: a.day_start,
        };
        assert_eq!(a.shift_to(&later), Some((1, 0)));
        assert_eq!(later.shift_to(&a), None);
    }

    #[test]
    fn bucket_figures() {
        let b = BucketCounts {
            good: 3,
            down: 1,
            lat_sum: 30.0,
            lat_count: 3,
        };
        assert_eq!(b.latency(), Some(10.0));
        assert_eq!(b.uptime(), Some(75.0));
        assert_eq!(BucketCounts::default().uptime(), None);
        assert_eq!(BucketCounts::default().latency(), None);
    }
}
