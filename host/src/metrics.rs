//! Prometheus metrics of the service, exposed on `/metrics` in the text exposition format.
//!
//! Besides the registry, two figures are kept readable in-process for `pharos bench service`:
//! the scheduler lag distribution ([`Metrics::scheduler_lag`], p50/p99 from fine log-linear
//! buckets) and the number of heartbeats received ([`Metrics::heartbeats_received`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, Weak};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::runtime::{Outcome, Runtime};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginStatus {
    plugin: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginPhase {
    plugin: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginCause {
    plugin: String,
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiRoute {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets of check and phase durations, seconds: 1 ms … ~33 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Buckets of API request durations, seconds: 0.1 ms … ~3 s.
fn api_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// Every metric the service exports. Shared as `Arc<Metrics>`.
pub struct Metrics {
    registry: Registry,
    checks: Family<PluginStatus, Counter>,
    check_duration: HistogramFamily<PluginLabel>,
    check_phase: HistogramFamily<PluginPhase>,
    plugin_errors: Family<PluginCause, Counter>,
    checks_in_flight: Gauge,
    overlap_skipped: Counter,
    scheduler_lag: Histogram,
    lag: LagRecorder,
    scheduled_monitors: Gauge,
    pool_in_use: Gauge,
    pool_size: Gauge,
    queue_depth: Gauge,
    results_written: Counter,
    results_dropped: Counter,
    results_refused: Counter,
    backpressure_waits: Counter,
    store_write: Histogram,
    batch_size: Histogram,
    store_write_failures: Counter,
    api_requests: Family<ApiLabels, Counter>,
    api_duration: HistogramFamily<ApiRoute>,
    heartbeats: Family<KindLabel, Counter>,
    heartbeats_total: Counter,
    heartbeats_missed: Counter,
    notification_attempts: Family<OutcomeLabel, Counter>,
    notifications_delivered: Counter,
    runtime: OnceLock<Weak<Runtime>>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pharos");
        let checks = Family::<PluginStatus, Counter>::default();
        registry.register(
            "checks",
            "Checks finished, by plugin and status",
            checks.clone(),
        );
        let check_duration: HistogramFamily<PluginLabel> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "check_duration",
            "Wall-clock duration of checks, by plugin",
            Unit::Seconds,
            check_duration.clone(),
        );
        let check_phase: HistogramFamily<PluginPhase> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "check_phase",
            "Phase timings reported by checks (dns, connect, tls, first_byte), by plugin",
            Unit::Seconds,
            check_phase.clone(),
        );
        let plugin_errors = Family::<PluginCause, Counter>::default();
        registry.register(
            "plugin_errors",
            "Checks the host turned into errors, by plugin and cause",
            plugin_errors.clone(),
        );
        let checks_in_flight = Gauge::default();
        registry.register(
            "checks_in_flight",
            "Scheduled checks running now",
            checks_in_flight.clone(),
        );
        let overlap_skipped = Counter::default();
        registry.register(
            "checks_overlap_skipped",
            "Due checks skipped because the previous run of the monitor was still running",
            overlap_skipped.clone(),
        );
        let scheduler_lag = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register_with_unit(
            "scheduler_lag",
            "Delay between a check's due time and its start",
            Unit::Seconds,
            scheduler_lag.clone(),
        );
        let scheduled_monitors = Gauge::default();
        registry.register(
            "scheduled_monitors",
            "Monitors in the scheduler's queue (enabled check and push monitors)",
            scheduled_monitors.clone(),
        );
        let pool_in_use = Gauge::default();
        registry.register(
            "instance_pool_in_use",
            "Plugin instance slots in use",
            pool_in_use.clone(),
        );
        let pool_size = Gauge::default();
        registry.register(
            "instance_pool_size",
            "Plugin instance slots available in total",
            pool_size.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "result_queue_depth",
            "Results accepted by the pipeline and not yet written",
            queue_depth.clone(),
        );
        let results_written = Counter::default();
        registry.register(
            "results_written",
            "Results written to the store",
            results_written.clone(),
        );
        let results_dropped = Counter::default();
        registry.register(
            "results_dropped",
            "Accepted results lost because the store kept failing",
            results_dropped.clone(),
        );
        let results_refused = Counter::default();
        registry.register(
            "results_refused",
            "Results refused because the pipeline stayed full",
            results_refused.clone(),
        );
        let backpressure_waits = Counter::default();
        registry.register(
            "results_backpressure_waits",
            "Submissions that had to wait for room in the pipeline",
            backpressure_waits.clone(),
        );
        let store_write = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        registry.register_with_unit(
            "store_write",
            "Latency of one batch write to the store",
            Unit::Seconds,
            store_write.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        registry.register(
            "store_batch_size",
            "Results per batch written",
            batch_size.clone(),
        );
        let store_write_failures = Counter::default();
        registry.register(
            "store_write_failures",
            "Failed batch write attempts (each retried)",
            store_write_failures.clone(),
        );
        let api_requests = Family::<ApiLabels, Counter>::default();
        registry.register(
            "api_requests",
            "API requests served, by method, route template and status",
            api_requests.clone(),
        );
        let api_duration: HistogramFamily<ApiRoute> = Family::new_with_constructor(api_histogram);
        registry.register_with_unit(
            "api_request_duration",
            "API request durations, by method and route template",
            Unit::Seconds,
            api_duration.clone(),
        );
        let heartbeats = Family::<KindLabel, Counter>::default();
        registry.register(
            "heartbeats_received",
            "Accepted pings of push monitors, by kind (success, fail, start)",
            heartbeats.clone(),
        );
        let heartbeats_missed = Counter::default();
        registry.register(
            "heartbeats_missed",
            "Push monitor periods that passed without a ping",
            heartbeats_missed.clone(),
        );
        let notification_attempts = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "notification_attempts",
            "Notification delivery attempts, by outcome (delivered, transient, permanent)",
            notification_attempts.clone(),
        );
        Self {
            registry,
            checks,
            check_duration,
            check_phase,
            plugin_errors,
            checks_in_flight,
            overlap_skipped,
            scheduler_lag,
            lag: LagRecorder::new(),
            scheduled_monitors,
            pool_in_use,
            pool_size,
            queue_depth,
            results_written,
            results_dropped,
            results_refused,
            backpressure_waits,
            store_write,
            batch_size,
            store_write_failures,
            api_requests,
            api_duration,
            heartbeats,
            heartbeats_total: Counter::default(),
            heartbeats_missed,
            notification_attempts,
            notifications_delivered: Counter::default(),
            runtime: OnceLock::new(),
        }
    }

    /// Renders the registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        if let Some(runtime) = self.runtime.get().and_then(Weak::upgrade) {
            self.pool_in_use.set(gauge_value(runtime.in_flight()));
            self.pool_size
                .set(gauge_value(runtime.pool().instances as usize));
        }
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }

    /// Reads instance pool usage from `runtime` whenever the metrics are encoded (first call wins).
    pub fn watch_runtime(&self, runtime: &std::sync::Arc<Runtime>) {
        let _ = self.runtime.set(std::sync::Arc::downgrade(runtime));
    }

    /// One API request served: route template (e.g. `/api/v1/monitors/{id}`), status, seconds.
    pub fn observe_api(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.api_requests
            .get_or_create(&ApiLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.api_duration
            .get_or_create(&ApiRoute {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// One check finished: plugin name, its outcome (status, duration, phases, error cause).
    pub fn observe_check(&self, plugin: &str, outcome: &Outcome) {
        self.checks
            .get_or_create(&PluginStatus {
                plugin: plugin.to_string(),
                status: outcome.status.as_str(),
            })
            .inc();
        let label = PluginLabel {
            plugin: plugin.to_string(),
        };
        let total_ms = outcome.timings.total_ms.unwrap_or(outcome.latency_ms);
        if total_ms.is_finite() && total_ms >= 0.0 {
            self.check_duration
                .get_or_create(&label)
                .observe(total_ms / 1000.0);
        }
        let t = &outcome.timings;
        for (phase, value) in [
            ("dns", t.dns_ms),
            ("connect", t.connect_ms),
            ("tls", t.tls_ms),
            ("first_byte", t.first_byte_ms),
        ] {
            if let Some(ms) = value.filter(|v| v.is_finite() && *v >= 0.0) {
                self.check_phase
                    .get_or_create(&PluginPhase {
                        plugin: plugin.to_string(),
                        phase,
                    })
                    .observe(ms / 1000.0);
            }
        }
        if let Some(cause) = outcome.error_cause {
            self.observe_plugin_error(plugin, cause.code());
        }
    }

    /// A check that could not run at all (`plugin_unavailable`, `secret_unavailable`).
    pub fn observe_check_failure(&self, plugin: &str, cause: &str) {
        self.checks
            .get_or_create(&PluginStatus {
                plugin: plugin.to_string(),
                status: crate::runtime::Status::Error.as_str(),
            })
            .inc();
        self.observe_plugin_error(plugin, cause);
    }

    fn observe_plugin_error(&self, plugin: &str, cause: &str) {
        self.plugin_errors
            .get_or_create(&PluginCause {
                plugin: plugin.to_string(),
                cause: cause.to_string(),
            })
            .inc();
    }

    /// A scheduled check started `lag` after its due time.
    pub fn observe_lag(&self, lag: std::time::Duration) {
        self.scheduler_lag.observe(lag.as_secs_f64());
        self.lag.record(lag);
    }

    /// The scheduler lag distribution since start (or the last [`Metrics::reset_scheduler_lag`]).
    pub fn scheduler_lag(&self) -> LagSnapshot {
        self.lag.snapshot()
    }

    /// Forgets the lag observed so far (e.g. to measure a steady state after warm-up).
    pub fn reset_scheduler_lag(&self) {
        self.lag.reset();
    }

    /// A scheduled check started (`+1`) or finished (`-1`).
    pub fn check_in_flight(&self, delta: i64) {
        self.checks_in_flight.inc_by(delta);
    }

    /// A due check was skipped because its previous run was still going.
    pub fn overlap_skipped(&self) {
        self.overlap_skipped.inc();
    }

    /// Checks skipped because of overlap so far.
    pub fn overlap_skipped_total(&self) -> u64 {
        self.overlap_skipped.get()
    }

    /// Monitors in the scheduler's queue now.
    pub fn set_scheduled(&self, monitors: usize) {
        self.scheduled_monitors.set(gauge_value(monitors));
    }

    /// Results entered (`+n`) or left (`-n`) the pipeline.
    pub fn queue_depth_add(&self, delta: i64) {
        self.queue_depth.inc_by(delta);
    }

    /// A batch of `size` results was written in `seconds`.
    pub fn observe_write(&self, size: usize, seconds: f64) {
        self.store_write.observe(seconds);
        self.batch_size.observe(size as f64);
        self.results_written.inc_by(size as u64);
    }

    /// A batch write attempt failed after `seconds` (it is retried or dropped).
    pub fn observe_write_failure(&self, seconds: f64) {
        self.store_write.observe(seconds);
        self.store_write_failures.inc();
    }

    /// Results written so far.
    pub fn results_written(&self) -> u64 {
        self.results_written.get()
    }

    /// `n` accepted results were lost after the store kept failing.
    pub fn results_dropped(&self, n: usize) {
        self.results_dropped.inc_by(n as u64);
    }

    /// Results lost so far.
    pub fn results_dropped_total(&self) -> u64 {
        self.results_dropped.get()
    }

    /// A result was refused because the pipeline stayed full.
    pub fn result_refused(&self) {
        self.results_refused.inc();
    }

    /// Results refused so far.
    pub fn results_refused_total(&self) -> u64 {
        self.results_refused.get()
    }

    /// A producer had to wait for room in the pipeline.
    pub fn backpressure_wait(&self) {
        self.backpressure_waits.inc();
    }

    /// Producers that waited so far.
    pub fn backpressure_waits_total(&self) -> u64 {
        self.backpressure_waits.get()
    }

    /// A ping was accepted: `success`, `fail` or `start`.
    pub fn heartbeat(&self, kind: &'static str) {
        self.heartbeats.get_or_create(&KindLabel { kind }).inc();
        self.heartbeats_total.inc();
    }

    /// Pings accepted so far (all kinds); divide a difference by elapsed time for pings/s.
    pub fn heartbeats_received(&self) -> u64 {
        self.heartbeats_total.get()
    }

    /// A push monitor's period passed without a ping.
    pub fn heartbeat_missed(&self) {
        self.heartbeats_missed.inc();
    }

    /// One notification delivery attempt ended with `outcome`.
    pub fn notification_attempt(&self, outcome: &'static str) {
        self.notification_attempts
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
        if outcome == "delivered" {
            self.notifications_delivered.inc();
        }
    }

    /// Notifications delivered so far (for `pharos bench notify`).
    pub fn notifications_delivered(&self) -> u64 {
        self.notifications_delivered.get()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn gauge_value(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Percentiles of the scheduler lag, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LagSnapshot {
    /// Checks started.
    pub count: u64,
    /// Median lag.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest lag seen.
    pub max_ms: f64,
}

/// Sub-buckets per power of two: values are kept to within 1/16 (6.25 %).
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Octaves covered above the linear range: 16 µs … 2^40 µs.
const OCTAVES: usize = 37;
const LAG_BUCKETS: usize = SUB + OCTAVES * SUB;

/// A lock-free log-linear histogram of durations in microseconds (HDR-style), for percentiles.
struct LagRecorder {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max_us: AtomicU64,
}

impl LagRecorder {
    fn new() -> Self {
        Self {
            buckets: (0..LAG_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    fn record(&self, lag: std::time::Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        let i = bucket_of(us).min(LAG_BUCKETS - 1);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        self.max_us.store(0, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LagSnapshot {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max_us = self.max_us.load(Ordering::Relaxed);
        let quantile = |q: f64| -> f64 {
            if count == 0 {
                return 0.0;
            }
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    // The bucket's upper bound, but never above the largest value seen.
                    return bucket_upper(i).min(max_us) as f64 / 1000.0;
                }
            }
            max_us as f64 / 1000.0
        };
        LagSnapshot {
            count,
            p50_ms: quantile(0.50),
            p90_ms: quantile(0.90),
            p99_ms: quantile(0.99),
            max_ms: max_us as f64 / 1000.0,
        }
    }
}

/// Index of the bucket holding `v`: values below `SUB` have their own bucket; above, each
/// power of two is split into `SUB` equal sub-buckets.
fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let octave = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = octave - SUB_BITS;
    let sub = ((v >> shift) as usize) - SUB; // 0..SUB
    SUB + (octave - SUB_BITS) as usize * SUB + sub
}

/// The largest value of bucket `i` (inclusive).
fn bucket_upper(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let octave = (i - SUB) / SUB + SUB_BITS as usize;
    let sub = ((i - SUB) % SUB) as u64;
    let shift = octave as u32 - SUB_BITS;
    let low = (SUB as u64 + sub).checked_shl(shift).unwrap_or(u64::MAX);
    low.saturating_add((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn buckets_cover_values_and_bounds_are_tight() {
        for v in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            33,
            1000,
            12_345,
            1 << 30,
            10_000_000_000,
        ] {
            let i = bucket_of(v);
            assert!(bucket_upper(i) >= v, "upper bound of {v}");
            if i > 0 {
                assert!(bucket_upper(i - 1) < v, "previous bucket ends below {v}");
            }
            // Within 1/16 of the value.
            assert!((bucket_upper(i) - v) as f64 <= v as f64 / 16.0 + 1.0);
        }
        assert_eq!(bucket_of(u64::MAX).min(LAG_BUCKETS - 1), LAG_BUCKETS - 1);
    }

    #[test]
    fn lag_percentiles_follow_the_distribution() {
        let m = Metrics::new();
        assert_eq!(m.scheduler_lag(), LagSnapshot::default());
        // 98 fast starts at 2 ms, 2 slow ones at 400 ms.
        for _ in 0..98 {
            m.observe_lag(Duration::from_millis(2));
        }
        for _ in 0..2 {
            m.observe_lag(Duration::from_millis(400));
        }
        let s = m.scheduler_lag();
        assert_eq!(s.count, 100);
        assert!((1.9..=2.2).contains(&s.p50_ms), "{s:?}");
        assert!((1.9..=2.2).contains(&s.p90_ms), "{s:?}");
        assert!((380.0..=400.0).contains(&s.p99_ms), "{s:?}");
        assert_eq!(s.max_ms, 400.0);
        m.reset_scheduler_lag();
        assert_eq!(m.scheduler_lag().count, 0);
    }

    #[test]
    fn encodes_every_family_in_text_format() {
        let m = Metrics::new();
        let mut outcome = Outcome::host_error(crate::runtime::ErrorCause::Timeout, "slow", 1500.0);
        outcome.timings.dns_ms = Some(3.0);
        m.observe_check("http", &outcome);
        m.observe_check_failure("gone", "plugin_unavailable");
        m.observe_api("GET", "/api/v1/monitors/{id}", 200, 0.002);
        m.observe_lag(Duration::from_millis(3));
        m.heartbeat("success");
        m.observe_write(10, 0.01);
        m.result_refused();
        let text = m.encode();
        for needle in [
            r#"pharos_checks_total{plugin="http",status="error"} 1"#,
            r#"pharos_plugin_errors_total{plugin="http",cause="timeout"} 1"#,
            r#"pharos_plugin_errors_total{plugin="gone",cause="plugin_unavailable"} 1"#,
            r#"pharos_check_phase_seconds_count{plugin="http",phase="dns"} 1"#,
            r#"pharos_check_duration_seconds_count{plugin="http"} 1"#,
            r#"pharos_api_requests_total{method="GET",route="/api/v1/monitors/{id}",status="200"} 1"#,
            "pharos_scheduler_lag_seconds_count 1",
            r#"pharos_heartbeats_received_total{kind="success"} 1"#,
            "pharos_results_written_total 10",
            "pharos_results_refused_total 1",
            "pharos_store_batch_size_count 1",
            "pharos_result_queue_depth 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert_eq!(m.heartbeats_received(), 1);
    }
}
