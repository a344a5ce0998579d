//! When a check monitor runs: first runs spread by jitter, new monitors soon, restarts without
//! a burst, and drift-free periods that never catch up in a burst after a stall.
//!
//! Random parts are passed in as a fraction in `[0, 1)` so the math is testable.

use std::time::Duration;

use tokio::time::Instant;

use crate::model::Timestamp;

/// A monitor created or changed through the API runs within this long.
pub(super) const SOON: Duration = Duration::from_secs(1);
/// After a restart, overdue monitors are spread over at most this long.
pub(super) const RESTART_SPREAD: Duration = Duration::from_secs(60);

/// A monitor's interval as a duration (at least one second).
pub(super) fn interval_of(interval_secs: u32) -> Duration {
    Duration::from_secs(u64::from(interval_secs.max(1)))
}

/// `x` clamped to `[0, 1]` (0 when not a number), safe for `Duration::mul_f64`.
fn unit(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// `window × fraction`.
fn spread(window: Duration, fraction: f64) -> Duration {
    window.mul_f64(unit(fraction))
}

/// First run of a monitor seen at start-up without any result: somewhere in
/// `[now, now + interval × jitter)`.
pub(super) fn first_due(now: Instant, interval: Duration, jitter: f64, fraction: f64) -> Instant {
    now + spread(interval.mul_f64(unit(jitter)), fraction)
}

/// First run of a monitor created (or resumed, or changed) through the API: within [`SOON`].
pub(super) fn soon_due(now: Instant, interval: Duration, jitter: f64, fraction: f64) -> Instant {
    let window = interval.mul_f64(unit(jitter)).min(SOON);
    now + spread(window, fraction)
}

/// First run after a restart of a monitor last checked at `last`: one interval after it, or,
/// when that has passed, spread over `[now, now + min(interval × jitter, RESTART_SPREAD))`.
pub(super) fn restart_due(
    now: Instant,
    now_ts: Timestamp,
    last: Timestamp,
    interval: Duration,
    jitter: f64,
    fraction: f64,
) -> Instant {
    let next = last + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
    if next > now_ts {
        return instant_at(next, now, now_ts);
    }
    let window = interval.mul_f64(unit(jitter)).min(RESTART_SPREAD);
    now + spread(window, fraction)
}

/// The run after one due at `due`: one interval later (drift-free), or one interval from
/// `now` when that has already passed (the process was stalled): never a catch-up burst.
pub(super) fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now { next } else { now + interval }
}

/// The monotonic instant of a wall-clock time, given a pair of "now" readings; past times map
/// to `now`.
pub(super) fn instant_at(at: Timestamp, now: Instant, now_ts: Timestamp) -> Instant {
    match (at - now_ts).to_std() {
        Ok(ahead) => now
            .checked_add(ahead)
            .unwrap_or(now + Duration::from_secs(86_400 * 365)),
        Err(_) => now, // in the past
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    const TEN: Duration = Duration::from_secs(10);

    #[test]
    fn first_runs_are_spread_within_jitter_bounds() {
        let now = Instant::now();
        assert_eq!(first_due(now, TEN, 1.0, 0.0), now);
        assert_eq!(first_due(now, TEN, 1.0, 0.5), now + Duration::from_secs(5));
        assert!(first_due(now, TEN, 1.0, 0.999_999) < now + TEN);
        assert_eq!(
            first_due(now, TEN, 0.5, 0.5),
            now + Duration::from_millis(2_500)
        );
        assert_eq!(first_due(now, TEN, 0.0, 0.9), now);
        // Bad fractions or jitter never escape the window.
        assert!(first_due(now, TEN, 7.0, 3.0) <= now + TEN);
        assert_eq!(first_due(now, TEN, 1.0, f64::NAN), now);
    }

    #[test]
    fn api_changes_run_within_a_second() {
        let now = Instant::now();
        for f in [0.0, 0.3, 0.999] {
            assert!(soon_due(now, Duration::from_secs(3600), 1.0, f) < now + SOON);
        }
        assert_eq!(soon_due(now, TEN, 0.0, 0.5), now);
        // A short interval spreads over less than a second.
        assert_eq!(
            soon_due(now, Duration::from_secs(1), 0.5, 0.5),
            now + Duration::from_millis(250)
        );
    }

    #[test]
    fn restart_keeps_the_phase_or_spreads_overdue_monitors() {
        let now = Instant::now();
        let now_ts = Utc::now();
        // Checked 4 s ago with a 10 s interval: due in 6 s.
        let due = restart_due(
            now,
            now_ts,
            now_ts - chrono::Duration::seconds(4),
            TEN,
            1.0,
            0.9,
        );
        assert_eq!(due, now + Duration::from_secs(6));
        // Overdue: spread over the interval…
        let due = restart_due(
            now,
            now_ts,
            now_ts - chrono::Duration::seconds(40),
            TEN,
            1.0,
            0.5,
        );
        assert_eq!(due, now + Duration::from_secs(5));
        // …but a long interval is not skipped: at most RESTART_SPREAD.
        let hour = Duration::from_secs(3600);
        let due = restart_due(
            now,
            now_ts,
            now_ts - chrono::Duration::hours(3),
            hour,
            1.0,
            0.999,
        );
        assert!(due < now + RESTART_SPREAD);
    }

    #[test]
    fn next_runs_are_drift_free_without_catch_up() {
        let t0 = Instant::now();
        // Started late by 300 ms: the next run is still one interval after the due time.
        assert_eq!(next_due(t0, TEN, t0 + Duration::from_millis(300)), t0 + TEN);
        // Stalled past the next due time: one interval from now, not a burst.
        let now = t0 + Duration::from_secs(35);
        assert_eq!(next_due(t0, TEN, now), now + TEN);
        assert_eq!(next_due(t0, TEN, t0 + TEN), t0 + TEN + TEN);
    }

    #[test]
    fn wall_clock_times_map_to_instants() {
        let now = Instant::now();
        let now_ts = Utc::now();
        assert_eq!(
            instant_at(now_ts + chrono::Duration::seconds(3), now, now_ts),
            now + Duration::from_secs(3)
        );
        assert_eq!(
            instant_at(now_ts - chrono::Duration::seconds(3), now, now_ts),
            now
        );
        assert_eq!(interval_of(0), Duration::from_secs(1));
    }
}
