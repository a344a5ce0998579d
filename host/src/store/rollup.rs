//! Per-minute rollups and the queries that read them: the latency chart and uptime.
//!
//! A watermark in `meta` (`rollup_watermark`, epoch ms, minute-aligned) says that every minute
//! before it is rolled up. Readers take rolled-up minutes from `rollups` and everything at or
//! after the watermark from raw `results`. Results that arrive after their minute was rolled
//! up stay in raw results only (the service rolls up with a two-minute delay to include late
//! results). Latency figures (percentiles, min/max/avg, phase means) cover `up` and
//! `degraded` results; counts cover every status. Results produced during a maintenance
//! window (`results.maintenance = 1`) are counted apart (`rollups.maintenance`), never in the
//! per-status counts or uptime; their latency still shows in the chart.

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::any::AnyRow;

use super::histogram::{Histogram, exact_quantile};
use super::rows::{self, get};
use super::{R, Store, value_rows};
use crate::model::{LatencyBucket, Status, Timestamp, Uptime, WorkspaceId};

/// Milliseconds per minute.
const MINUTE: i64 = 60_000;
/// Key of the watermark in `meta`.
const WATERMARK: &str = "rollup_watermark";
/// Minutes rolled up per transaction (bounds memory and write-lock time).
const STEP_MINUTES: i64 = 10;
/// Rollup rows per upsert statement (24 parameters each).
const ROLLUP_ROWS: usize = 500;
/// Columns of an upserted rollup row.
const ROLLUP_WIDTH: usize = 24;
/// Most buckets a latency query returns.
const MAX_BUCKETS: u32 = 1440;

/// Start of the minute holding `ms`.
fn floor_minute(ms: i64) -> i64 {
    ms.div_euclid(MINUTE) * MINUTE
}

/// Sum and count of one phase timing.
#[derive(Debug, Clone, Copy, Default)]
struct Phase {
    sum: f64,
    count: i64,
}

impl Phase {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.count += 1;
        }
    }

    fn merge(&mut self, sum: f64, count: i64) {
        self.sum += sum;
        self.count += count;
    }

    fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// Phase timings in the order dns, connect, tls, first byte.
type Phases = [Phase; 4];

/// Aggregate of one monitor, region and minute, built from raw results.
#[derive(Debug, Default)]
struct MinuteAgg {
    counts: [i64; 4],
    /// Results in maintenance (not in `counts`).
    maintenance: i64,
    latencies: Vec<f64>,
    hist: Histogram,
    phases: Phases,
}

/// Index of a status in count arrays: up, degraded, down, error.
fn status_index(s: Status) -> usize {
    match s {
        Status::Up => 0,
        Status::Degraded => 1,
        Status::Down => 2,
        Status::Error => 3,
    }
}

/// Whether a result's latency counts in latency figures.
fn has_latency(s: Status) -> bool {
    matches!(s, Status::Up | Status::Degraded)
}

/// One raw result as read for aggregation.
struct RawPoint {
    started_at: i64,
    status: Status,
    maintenance: bool,
    latency: f64,
    phases: [Option<f64>; 4],
}

/// Decodes a raw row of `RAW_COLUMNS`.
fn raw_point(row: &AnyRow) -> R<RawPoint> {
    Ok(RawPoint {
        started_at: get(row, "results.started_at")?,
        status: rows::status_col(row, "results.status")?,
        maintenance: rows::flag(row, "results.maintenance")?,
        latency: get(row, "results.latency_ms")?,
        phases: [
            get(row, "results.dns_ms")?,
            get(row, "results.connect_ms")?,
            get(row, "results.tls_ms")?,
            get(row, "results.first_byte_ms")?,
        ],
    })
}

/// Columns read from raw results for aggregation.
const RAW_COLUMNS: &str =
    "started_at, status, maintenance, latency_ms, dns_ms, connect_ms, tls_ms, first_byte_ms";

/// One chart bucket being filled.
#[derive(Debug, Default)]
struct BucketAcc {
    count: i64,
    lat_count: i64,
    lat_sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    hist: Histogram,
    raw: Vec<f64>,
    rollup_rows: usize,
    /// Exact percentiles of the only rollup row so far.
    single: Option<(Option<f64>, Option<f64>, Option<f64>)>,
    phases: Phases,
}

impl BucketAcc {
    fn extend_range(&mut self, lo: f64, hi: f64) {
        self.min = Some(self.min.map_or(lo, |m| m.min(lo)));
        self.max = Some(self.max.map_or(hi, |m| m.max(hi)));
    }

    fn add_raw(&mut self, p: &RawPoint) {
        self.count += 1;
        if has_latency(p.status) {
            self.lat_count += 1;
            self.lat_sum += p.latency;
            self.extend_range(p.latency, p.latency);
            self.raw.push(p.latency);
            for (phase, v) in self.phases.iter_mut().zip(p.phases) {
                phase.add(v);
            }
        }
    }

    fn finish(mut self, start: i64, end: i64) -> R<LatencyBucket> {
        let (p50, p95, p99) = if self.lat_count == 0 {
            (None, None, None)
        } else if self.rollup_rows == 0 {
            self.raw.sort_by(f64::total_cmp);
            (
                exact_quantile(&self.raw, 0.50),
                exact_quantile(&self.raw, 0.95),
                exact_quantile(&self.raw, 0.99),
            )
        } else if let (1, true, Some(single)) = (self.rollup_rows, self.raw.is_empty(), self.single)
        {
            single
        } else {
            for v in &self.raw {
                self.hist.add(*v);
            }
            let (lo, hi) = (self.min.unwrap_or(0.0), self.max.unwrap_or(0.0));
            (
                self.hist.quantile(0.50, lo, hi),
                self.hist.quantile(0.95, lo, hi),
                self.hist.quantile(0.99, lo, hi),
            )
        };
        Ok(LatencyBucket {
            start: time(start)?,
            end: time(end)?,
            count: self.count,
            p50_ms: p50,
            p95_ms: p95,
            p99_ms: p99,
            min_ms: self.min,
            max_ms: self.max,
            avg_ms: (self.lat_count > 0).then(|| self.lat_sum / self.lat_count as f64),
            dns_ms: self.phases[0].mean(),
            connect_ms: self.phases[1].mean(),
            tls_ms: self.phases[2].mean(),
            first_byte_ms: self.phases[3].mean(),
        })
    }
}

/// A time from epoch ms computed here (always in range for valid inputs).
fn time(ms: i64) -> R<Timestamp> {
    rows::from_ms(ms)
        .ok_or_else(|| rows::corrupt("rollups.minute", format!("time {ms} out of range")))
}

impl Store {
    /// The rollup watermark: every minute before it is rolled up (`None`: nothing yet).
    pub(super) async fn rollup_watermark(&self) -> R<Option<i64>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(WATERMARK)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let v: String = get(&row, "meta.value")?;
                v.parse::<i64>()
                    .map(Some)
                    .map_err(|e| rows::corrupt("meta.value", format!("watermark `{v}`: {e}")))
            }
        }
    }

    /// Moves the watermark from `from` to `to` unless another writer moved it first.
    async fn advance_watermark(
        &self,
        conn: &mut sqlx::AnyConnection,
        from: i64,
        to: i64,
    ) -> R<bool> {
        let done = sqlx::query("UPDATE meta SET value = $1 WHERE key = $2 AND value = $3")
            .bind(to.to_string())
            .bind(WATERMARK)
            .bind(from.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Computes per-minute rollups for every complete minute before `until` not rolled up yet
    /// (tracked by a watermark), exactly once per minute. Returns the minutes rolled up.
    ///
    /// The count is how far the watermark moved, in minutes (empty minutes included). Each
    /// step of at most ten minutes is one transaction that upserts the rows and moves the
    /// watermark only if nobody else moved it, so retries and concurrent nodes are safe.
    pub async fn rollup(&self, until: Timestamp) -> R<i64> {
        let end = floor_minute(rows::ms(until));
        let mut total = 0;
        loop {
            let Some(w) = self.rollup_watermark().await? else {
                let row = sqlx::query("SELECT MIN(started_at) AS first FROM results")
                    .fetch_one(&self.pool)
                    .await?;
                let Some(first) = get::<Option<i64>>(&row, "results.first")? else {
                    return Ok(total);
                };
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(WATERMARK)
                .bind(floor_minute(first).min(end).to_string())
                .execute(tx.conn())
                .await?;
                tx.commit().await?;
                continue;
            };
            if w >= end {
                return Ok(total);
            }
            // Skip stretches without results in one move.
            let row = sqlx::query(
                "SELECT MIN(started_at) AS first FROM results WHERE started_at >= $1 \
                 AND started_at < $2",
            )
            .bind(w)
            .bind(end)
            .fetch_one(&self.pool)
            .await?;
            let next = get::<Option<i64>>(&row, "results.first")?.map(floor_minute);
            let step_end = match next {
                None => end,
                Some(n) if n > w => n,
                Some(_) => (w + STEP_MINUTES * MINUTE).min(end),
            };
            let aggregates = if next.is_some_and(|n| n <= w) {
                self.aggregate(w, step_end).await?
            } else {
                HashMap::new()
            };
            let mut tx = self.begin_write().await?;
            let mut entries: Vec<_> = aggregates.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for chunk in entries.chunks(ROLLUP_ROWS) {
                upsert_rollups(tx.conn(), self.backend, chunk).await?;
            }
            if self.advance_watermark(tx.conn(), w, step_end).await? {
                tx.commit().await?;
                total += (step_end - w) / MINUTE;
            }
            // Otherwise another writer advanced it: dropping `tx` rolls back; look again.
        }
    }

    /// Aggregates raw results of `[from, to)` by monitor, region and minute.
    async fn aggregate(&self, from: i64, to: i64) -> R<HashMap<(i64, String, i64), MinuteAgg>> {
        let mut out: HashMap<(i64, String, i64), MinuteAgg> = HashMap::new();
        let sql = format!(
            "SELECT monitor_id, region, {RAW_COLUMNS} FROM results \
             WHERE started_at >= $1 AND started_at < $2"
        );
        let mut stream = sqlx::query(&sql).bind(from).bind(to).fetch(&self.pool);
        while let Some(row) = stream.try_next().await? {
            let p = raw_point(&row)?;
            let key = (
                get::<i64>(&row, "results.monitor_id")?,
                get::<String>(&row, "results.region")?,
                floor_minute(p.started_at),
            );
            let agg = out.entry(key).or_default();
            if p.maintenance {
                agg.maintenance += 1;
            } else {
                agg.counts[status_index(p.status)] += 1;
            }
            if has_latency(p.status) {
                agg.latencies.push(p.latency);
                agg.hist.add(p.latency);
                for (phase, v) in agg.phases.iter_mut().zip(p.phases) {
                    phase.add(v);
                }
            }
        }
        Ok(out)
    }

    /// About `buckets` latency buckets over `[from, to)`: from rollups where they exist, from
    /// raw results after the rollup watermark.
    ///
    /// Buckets are a whole number of minutes wide and start at the minute holding `from`; the
    /// last one ends at `to`. Empty buckets have `count` 0 and no figures. Percentiles are
    /// exact for a bucket of raw results only or of one rolled-up minute, otherwise merged
    /// from the per-minute histograms (within about ±4.4 %, clamped to the exact min/max).
    pub async fn latency(
        &self,
        ws: WorkspaceId,
        monitor_id: i64,
        from: Timestamp,
        to: Timestamp,
        buckets: u32,
    ) -> R<Vec<LatencyBucket>> {
        let (from, to) = (rows::ms(from), rows::ms(to));
        if to <= from {
            return Ok(Vec::new());
        }
        let start = floor_minute(from);
        let span = to - start;
        let n = i64::from(buckets.clamp(1, MAX_BUCKETS));
        let minutes = (span + MINUTE - 1) / MINUTE;
        let width = ((minutes + n - 1) / n).max(1) * MINUTE;
        let count = (span + width - 1) / width;
        let mut acc: Vec<BucketAcc> = (0..count).map(|_| BucketAcc::default()).collect();
        let index = |t: i64| usize::try_from((t - start) / width).ok();
        let watermark = self.rollup_watermark().await?.unwrap_or(i64::MIN);

        if watermark > start {
            let rows = sqlx::query(
                "SELECT r.minute, r.up, r.degraded, r.down, r.error, r.maintenance, \
                 r.lat_count, r.lat_sum, \
                 r.lat_min, r.lat_max, r.p50, r.p95, r.p99, r.dns_sum, r.dns_count, \
                 r.connect_sum, r.connect_count, r.tls_sum, r.tls_count, r.first_byte_sum, \
                 r.first_byte_count, r.hist \
                 FROM rollups r JOIN monitors m ON m.id = r.monitor_id \
                 WHERE r.monitor_id = $1 AND m.workspace_id = $2 AND r.minute >= $3 \
                 AND r.minute < $4",
            )
            .bind(monitor_id)
            .bind(ws)
            .bind(start)
            .bind(watermark.min(to))
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                let minute: i64 = get(&row, "rollups.minute")?;
                let Some(b) = index(minute).and_then(|i| acc.get_mut(i)) else {
                    continue;
                };
                let mut row_count = 0;
                for col in [
                    "rollups.up",
                    "rollups.degraded",
                    "rollups.down",
                    "rollups.error",
                    "rollups.maintenance",
                ] {
                    row_count += get::<i64>(&row, col)?;
                }
                b.count += row_count;
                b.rollup_rows += 1;
                let lat_count: i64 = get(&row, "rollups.lat_count")?;
                if lat_count > 0 {
                    b.lat_count += lat_count;
                    b.lat_sum += get::<f64>(&row, "rollups.lat_sum")?;
                    let lo: Option<f64> = get(&row, "rollups.lat_min")?;
                    let hi: Option<f64> = get(&row, "rollups.lat_max")?;
                    if let (Some(lo), Some(hi)) = (lo, hi) {
                        b.extend_range(lo, hi);
                    }
                    let hist: String = get(&row, "rollups.hist")?;
                    let hist = Histogram::from_json(&hist)
                        .map_err(|e| rows::corrupt("rollups.hist", e))?;
                    b.hist.merge(&hist);
                    b.single = Some((
                        get(&row, "rollups.p50")?,
                        get(&row, "rollups.p95")?,
                        get(&row, "rollups.p99")?,
                    ));
                    let phase_cols = [
                        ("rollups.dns_sum", "rollups.dns_count"),
                        ("rollups.connect_sum", "rollups.connect_count"),
                        ("rollups.tls_sum", "rollups.tls_count"),
                        ("rollups.first_byte_sum", "rollups.first_byte_count"),
                    ];
                    for (phase, (sum, cnt)) in b.phases.iter_mut().zip(phase_cols) {
                        phase.merge(get(&row, sum)?, get(&row, cnt)?);
                    }
                }
            }
        }

        let sql = format!(
            "SELECT {RAW_COLUMNS} FROM results WHERE monitor_id = $1 AND workspace_id = $2 \
             AND started_at >= $3 AND started_at < $4"
        );
        let mut stream = sqlx::query(&sql)
            .bind(monitor_id)
            .bind(ws)
            .bind(start.max(watermark))
            .bind(to)
            .fetch(&self.pool);
        while let Some(row) = stream.try_next().await? {
            let p = raw_point(&row)?;
            if let Some(b) = index(p.started_at).and_then(|i| acc.get_mut(i)) {
                b.add_raw(&p);
            }
        }
        drop(stream);

        acc.into_iter()
            .enumerate()
            .map(|(i, b)| {
                let s = start + i as i64 * width;
                b.finish(s, (s + width).min(to))
            })
            .collect()
    }

    /// Result counts and uptime over `[from, to)`: rollups plus raw results after the watermark.
    ///
    /// Rolled-up minutes that overlap the range count whole; raw results count exactly.
    /// Results in maintenance are only counted in `maintenance`.
    pub async fn uptime(
        &self,
        ws: WorkspaceId,
        monitor_id: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> R<Uptime> {
        let (from_ms, to_ms) = (rows::ms(from), rows::ms(to));
        let mut counts = [0i64; 4];
        let mut maintenance = 0i64;
        let watermark = self.rollup_watermark().await?.unwrap_or(i64::MIN);
        if to_ms > from_ms && watermark > floor_minute(from_ms) {
            let row = sqlx::query(
                "SELECT CAST(COALESCE(SUM(r.up), 0) AS BIGINT) AS up, \
                 CAST(COALESCE(SUM(r.degraded), 0) AS BIGINT) AS degraded, \
                 CAST(COALESCE(SUM(r.down), 0) AS BIGINT) AS down, \
                 CAST(COALESCE(SUM(r.error), 0) AS BIGINT) AS error, \
                 CAST(COALESCE(SUM(r.maintenance), 0) AS BIGINT) AS maintenance \
                 FROM rollups r JOIN monitors m ON m.id = r.monitor_id \
                 WHERE r.monitor_id = $1 AND m.workspace_id = $2 AND r.minute >= $3 \
                 AND r.minute < $4",
            )
            .bind(monitor_id)
            .bind(ws)
            .bind(floor_minute(from_ms))
            .bind(watermark.min(to_ms))
            .fetch_one(&self.pool)
            .await?;
            for (i, col) in [
                "rollups.up",
                "rollups.degraded",
                "rollups.down",
                "rollups.error",
            ]
            .into_iter()
            .enumerate()
            {
                counts[i] += get::<i64>(&row, col)?;
            }
            maintenance += get::<i64>(&row, "rollups.maintenance")?;
        }
        if to_ms > from_ms {
            let rows = sqlx::query(
                "SELECT status, maintenance, COUNT(*) AS n FROM results WHERE monitor_id = $1 \
                 AND workspace_id = $2 AND started_at >= $3 AND started_at < $4 \
                 GROUP BY status, maintenance",
            )
            .bind(monitor_id)
            .bind(ws)
            .bind(from_ms.max(watermark))
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                let n = get::<i64>(&row, "results.n")?;
                if rows::flag(&row, "results.maintenance")? {
                    maintenance += n;
                } else {
                    let status = rows::status_col(&row, "results.status")?;
                    counts[status_index(status)] += n;
                }
            }
        }
        let [up, degraded, down, error] = counts;
        let target = up + degraded + down;
        Ok(Uptime {
            from: Some(from),
            to: Some(to),
            up,
            degraded,
            down,
            error,
            total: up + degraded + down + error,
            maintenance,
            uptime_pct: (target > 0).then(|| (up + degraded) as f64 * 100.0 / target as f64),
        })
    }
}

impl Store {
    /// Deletes rollups of minutes before `before`, in chunks; returns rows deleted.
    pub async fn purge_rollups(&self, before: Timestamp) -> R<u64> {
        self.delete_in_chunks(
            "DELETE FROM rollups WHERE (monitor_id, minute, region) IN \
             (SELECT monitor_id, minute, region FROM rollups WHERE minute < $1 LIMIT $2)",
            before,
        )
        .await
    }
}

/// Upserts rollup rows (recomputed values replace stored ones, so a retry is harmless).
async fn upsert_rollups(
    conn: &mut sqlx::AnyConnection,
    backend: super::Backend,
    rows: &[((i64, String, i64), MinuteAgg)],
) -> R<()> {
    let sql = format!(
        "INSERT INTO rollups (monitor_id, region, minute, up, degraded, down, error, maintenance, \
         lat_count, lat_sum, lat_min, lat_max, p50, p95, p99, dns_sum, dns_count, connect_sum, \
         connect_count, tls_sum, tls_count, first_byte_sum, first_byte_count, hist) VALUES {} \
         ON CONFLICT (monitor_id, minute, region) DO UPDATE SET up = excluded.up, \
         degraded = excluded.degraded, down = excluded.down, error = excluded.error, \
         maintenance = excluded.maintenance, \
         lat_count = excluded.lat_count, lat_sum = excluded.lat_sum, \
         lat_min = excluded.lat_min, lat_max = excluded.lat_max, p50 = excluded.p50, \
         p95 = excluded.p95, p99 = excluded.p99, dns_sum = excluded.dns_sum, \
         dns_count = excluded.dns_count, connect_sum = excluded.connect_sum, \
         connect_count = excluded.connect_count, tls_sum = excluded.tls_sum, \
         tls_count = excluded.tls_count, first_byte_sum = excluded.first_byte_sum, \
         first_byte_count = excluded.first_byte_count, hist = excluded.hist",
        value_rows(backend, rows.len(), ROLLUP_WIDTH)
    );
    let mut q = sqlx::query(&sql).persistent(rows.len() == ROLLUP_ROWS);
    for ((monitor_id, region, minute), agg) in rows {
        let mut lat = agg.latencies.clone();
        lat.sort_by(f64::total_cmp);
        let sum: f64 = lat.iter().sum();
        q = q
            .bind(*monitor_id)
            .bind(region.as_str())
            .bind(*minute)
            .bind(agg.counts[0])
            .bind(agg.counts[1])
            .bind(agg.counts[2])
            .bind(agg.counts[3])
            .bind(agg.maintenance)
            .bind(lat.len() as i64)
            .bind(sum)
            .bind(lat.first().copied())
            .bind(lat.last().copied())
            .bind(exact_quantile(&lat, 0.50))
            .bind(exact_quantile(&lat, 0.95))
            .bind(exact_quantile(&lat, 0.99));
        for phase in &agg.phases {
            q = q.bind(phase.sum).bind(phase.count);
        }
        q = q.bind(agg.hist.to_json());
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_floor_towards_minus_infinity() {
        assert_eq!(floor_minute(0), 0);
        assert_eq!(floor_minute(59_999), 0);
        assert_eq!(floor_minute(60_000), 60_000);
        assert_eq!(floor_minute(-1), -60_000);
    }
}
