//! Maintenance windows: validation of a [`MaintenanceSpec`] and when it is active.
//!
//! A one-off window is active for `starts_at ≤ t < ends_at`. A recurring window is active
//! while an occurrence `o` of its cron expression (read in `timezone`, parsed like push
//! schedules: 5 fields crontab, 6–7 with seconds, IANA zones) satisfies `o ≤ t < o + duration`,
//! clipped to the optional `starts_at` / `ends_at` bounds. A disabled window is never active.
//!
//! Daylight saving time: occurrences are the instants whose wall-clock time in `timezone`
//! matches the expression. A wall-clock time skipped when clocks spring forward does not occur
//! (as in the `cron` crate and push schedules); one repeated when clocks fall back occurs twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, SubsecRound, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::MaintenanceSpec;
use crate::scheduler::heartbeat;

/// Longest window name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Duration bounds of a recurring window, in seconds (1 minute to 30 days).
pub const DURATION_SECS: std::ops::RangeInclusive<u32> = 60..=2_592_000;
/// Most monitor ids one window names.
pub const MAX_MONITOR_IDS: usize = 1_000;

/// Most wall-clock times looked at per search (only reached inside a DST gap or fold with a
/// very dense expression); past it the search gives up (not active / no next start).
const MAX_STEPS: usize = 4_000;
/// How far around `t` a change of UTC offset is looked for (DST shifts are at most 2 h).
const FOLD_MARGIN_SECS: i64 = 3 * 3600;
/// Parsed cron expressions kept for the engine, which asks for every stored result.
const MAX_CACHED_SCHEDULES: usize = 512;

/// Which rule a maintenance spec breaks (each maps to one API error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A value is missing, out of range or inconsistent (`VALIDATION_FAILED`).
    Invalid,
    /// The cron expression does not parse or never fires (`INVALID_CRON`).
    Cron,
    /// The time zone is not an IANA name (`INVALID_TIMEZONE`).
    TimeZone,
    /// Neither monitors nor tags are named (`MAINTENANCE_EMPTY`).
    Empty,
}

/// A rule broken by one field of a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub kind: FieldErrorKind,
    /// JSON pointer of the field (`/cron`, `/ends_at`, …).
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(kind: FieldErrorKind, field: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Invalid, field, message)
    }
}

impl MaintenanceSpec {
    /// Checks every rule of a window; the first broken one is returned with its field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let name_chars = self.name.trim().chars().count();
        if name_chars == 0 || self.name.chars().count() > MAX_NAME_CHARS {
            return Err(FieldError::invalid(
                "/name",
                format!("name must be 1–{MAX_NAME_CHARS} characters"),
            ));
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(FieldError::invalid(
                "/description",
                format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        let tz = heartbeat::time_zone(&self.timezone)
            .map_err(|e| FieldError::new(FieldErrorKind::TimeZone, "/timezone", e.to_string()))?;
        match &self.cron {
            None => {
                if self.duration_secs.is_some() {
                    return Err(FieldError::invalid(
                        "/duration_secs",
                        "only recurring windows (with `cron`) have a duration",
                    ));
                }
                let Some(starts_at) = self.starts_at else {
                    return Err(FieldError::invalid(
                        "/starts_at",
                        "a one-off window needs `starts_at` and `ends_at` (or give `cron` and \
                         `duration_secs` for a recurring one)",
                    ));
                };
                let Some(ends_at) = self.ends_at else {
                    return Err(FieldError::invalid(
                        "/ends_at",
                        "a one-off window needs `ends_at`",
                    ));
                };
                if ends_at <= starts_at {
                    return Err(FieldError::invalid(
                        "/ends_at",
                        "ends_at must be after starts_at",
                    ));
                }
            }
            Some(expr) => {
                let schedule = heartbeat::parse_cron(expr)
                    .map_err(|e| FieldError::new(FieldErrorKind::Cron, "/cron", e.to_string()))?;
                if first_after(&schedule, tz, Utc::now()).is_none() {
                    return Err(FieldError::new(
                        FieldErrorKind::Cron,
                        "/cron",
                        format!("`{expr}` never fires after now"),
                    ));
                }
                match self.duration_secs {
                    None => {
                        return Err(FieldError::invalid(
                            "/duration_secs",
                            "a recurring window needs `duration_secs`",
                        ));
                    }
                    Some(d) if !DURATION_SECS.contains(&d) => {
                        return Err(FieldError::invalid(
                            "/duration_secs",
                            format!(
                                "duration_secs must be between {} and {}",
                                DURATION_SECS.start(),
                                DURATION_SECS.end()
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
                    && e <= s
                {
                    return Err(FieldError::invalid(
                        "/ends_at",
                        "ends_at must be after starts_at",
                    ));
                }
            }
        }
        if self.monitor_ids.is_empty() && self.tags.is_empty() {
            return Err(FieldError::new(
                FieldErrorKind::Empty,
                "/monitor_ids",
                "a maintenance window must name monitors (`monitor_ids`) or tags (`tags`)",
            ));
        }
        if self.monitor_ids.len() > MAX_MONITOR_IDS {
            return Err(FieldError::invalid(
                "/monitor_ids",
                format!("at most {MAX_MONITOR_IDS} monitor ids per window"),
            ));
        }
        Ok(())
    }

    /// Whether the window is in effect at `t` (never when disabled).
    pub fn is_active_at(&self, t: DateTime<Utc>) -> bool {
        self.plan().is_active_at(t)
    }

    /// Whether the window applies to a monitor: by id, or by any of the monitor's tags.
    pub fn covers(&self, monitor_id: i64, tags: &[String]) -> bool {
        self.monitor_ids.contains(&monitor_id) || tags.iter().any(|t| self.tags.contains(t))
    }

    /// When the window next becomes active strictly after `t` (the next occurrence of a
    /// recurring window, or the start of a one-off one); `None` when it never will again or
    /// is disabled.
    pub fn next_start_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.plan().next_start_after(t)
    }

    /// The window with its cron expression and time zone parsed (parsed expressions are
    /// cached), for evaluating it many times.
    pub fn plan(&self) -> MaintenancePlan {
        let kind = match (&self.cron, self.duration_secs) {
            (None, _) => PlanKind::OneOff,
            (Some(expr), Some(secs)) => {
                match (cached_schedule(expr), heartbeat::time_zone(&self.timezone)) {
                    (Some(schedule), Ok(tz)) => PlanKind::Recurring {
                        schedule,
                        tz,
                        duration: Duration::seconds(i64::from(secs)),
                    },
                    _ => PlanKind::Broken,
                }
            }
            (Some(_), None) => PlanKind::Broken,
        };
        MaintenancePlan {
            enabled: self.enabled,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            kind,
        }
    }
}

/// A maintenance window ready for evaluation (see [`MaintenanceSpec::plan`]).
#[derive(Debug, Clone)]
pub struct MaintenancePlan {
    enabled: bool,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    kind: PlanKind,
}

#[derive(Debug, Clone)]
enum PlanKind {
    OneOff,
    Recurring {
        schedule: Arc<cron::Schedule>,
        tz: Tz,
        duration: Duration,
    },
    /// A stored spec that no longer parses: never active.
    Broken,
}

impl MaintenancePlan {
    /// Whether `t` lies within the bounds (`starts_at ≤ t < ends_at`, each optional).
    fn within_bounds(&self, t: DateTime<Utc>) -> bool {
        self.starts_at.is_none_or(|s| s <= t) && self.ends_at.is_none_or(|e| t < e)
    }

    /// Whether the window is in effect at `t`.
    pub fn is_active_at(&self, t: DateTime<Utc>) -> bool {
        if !self.enabled || !self.within_bounds(t) {
            return false;
        }
        match &self.kind {
            PlanKind::OneOff => self.starts_at.is_some() && self.ends_at.is_some(),
            PlanKind::Recurring {
                schedule,
                tz,
                duration,
            } => latest_at_or_before(schedule, *tz, t).is_some_and(|o| t < o + *duration),
            PlanKind::Broken => false,
        }
    }

    /// When the window next becomes active strictly after `t`.
    pub fn next_start_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.enabled {
            return None;
        }
        let start = match &self.kind {
            PlanKind::OneOff => self.starts_at.filter(|s| *s > t)?,
            PlanKind::Recurring { schedule, tz, .. } => match self.starts_at {
                // The lower bound itself is a start when an occurrence already covers it.
                Some(bound) if bound > t && self.is_active_at(bound) => bound,
                Some(bound) if bound > t => {
                    first_after(schedule, *tz, bound - Duration::milliseconds(1))?
                }
                _ => first_after(schedule, *tz, t)?,
            },
            PlanKind::Broken => return None,
        };
        self.ends_at.is_none_or(|e| start < e).then_some(start)
    }
}

/// The parsed expression, from the cache when it was seen before; `None` when it does not parse.
fn cached_schedule(expr: &str) -> Option<Arc<cron::Schedule>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<cron::Schedule>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(map) = cache.lock()
        && let Some(s) = map.get(expr)
    {
        return Some(s.clone());
    }
    let parsed = Arc::new(heartbeat::parse_cron(expr).ok()?);
    if let Ok(mut map) = cache.lock() {
        if map.len() >= MAX_CACHED_SCHEDULES {
            map.clear();
        }
        map.insert(expr.to_string(), parsed.clone());
    }
    Some(parsed)
}

/// Seconds east of UTC of `tz` at `t`.
fn offset_secs(tz: Tz, t: DateTime<Utc>) -> i64 {
    i64::from(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// The wall-clock time of `t` in `tz`, truncated to whole seconds.
fn wall(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local().trunc_subsecs(0)
}

/// Wall-clock times matching the expression strictly after `w`, in order. (The schedule is
/// run in UTC over wall-clock times, so there are no gaps or folds in the sequence itself.)
fn walls_after(
    schedule: &cron::Schedule,
    w: NaiveDateTime,
) -> impl Iterator<Item = NaiveDateTime> + '_ {
    schedule
        .after(&Utc.from_utc_datetime(&w))
        .take(MAX_STEPS)
        .map(|d| d.naive_utc())
}

/// Wall-clock times matching the expression strictly before `w`, newest first.
fn walls_before(
    schedule: &cron::Schedule,
    w: NaiveDateTime,
) -> impl Iterator<Item = NaiveDateTime> + '_ {
    schedule
        .after(&Utc.from_utc_datetime(&w))
        .rev()
        .take(MAX_STEPS)
        .map(|d| d.naive_utc())
}

/// The instants at which `tz` shows the wall-clock time `w`: none in a gap, two in a fold.
fn instants(tz: Tz, w: NaiveDateTime) -> impl Iterator<Item = DateTime<Utc>> {
    let (a, b) = match tz.from_local_datetime(&w) {
        LocalResult::None => (None, None),
        LocalResult::Single(a) => (Some(a), None),
        LocalResult::Ambiguous(a, b) => (Some(a), Some(b)),
    };
    a.into_iter()
        .chain(b)
        .map(|d: DateTime<Tz>| d.with_timezone(&Utc))
}

/// The latest occurrence at or before `t`.
fn latest_at_or_before(
    schedule: &cron::Schedule,
    tz: Tz,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let w = wall(tz, t);
    let mut best: Option<DateTime<Utc>> = None;
    // Wall-clock times up to w, newest first; the first one with an instant ≤ t wins unless
    // clocks fell back shortly before t (handled below).
    for candidate in walls_before(schedule, w + Duration::seconds(1)) {
        if let Some(i) = instants(tz, candidate).filter(|i| *i <= t).max() {
            best = Some(i);
            break;
        }
    }
    // After clocks fall back, instants before t can show a later wall-clock time than t.
    let back = offset_secs(tz, t - Duration::seconds(FOLD_MARGIN_SECS)) - offset_secs(tz, t);
    if back > 0 {
        let limit = w + Duration::seconds(back);
        for candidate in walls_after(schedule, w).take_while(|c| *c <= limit) {
            if let Some(i) = instants(tz, candidate).filter(|i| *i <= t).max() {
                best = best.max(Some(i));
            }
        }
    }
    best
}

/// The earliest occurrence strictly after `t`.
fn first_after(schedule: &cron::Schedule, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let w = wall(tz, t);
    let mut best: Option<DateTime<Utc>> = None;
    for candidate in walls_after(schedule, w) {
        if let Some(i) = instants(tz, candidate).filter(|i| *i > t).min() {
            best = Some(i);
            break;
        }
    }
    // When clocks fall back shortly after t, instants after t can show an earlier (or the
    // same) wall-clock time as t.
    let back = offset_secs(tz, t) - offset_secs(tz, t + Duration::seconds(FOLD_MARGIN_SECS));
    if back > 0 {
        let from = w - Duration::seconds(back + 1);
        for candidate in walls_after(schedule, from).take_while(|c| *c <= w) {
            if let Some(i) = instants(tz, candidate).filter(|i| *i > t).min() {
                best = Some(best.map_or(i, |b| b.min(i)));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid")
    }

    fn one_off(starts: DateTime<Utc>, ends: DateTime<Utc>) -> MaintenanceSpec {
        MaintenanceSpec {
            name: "db upgrade".into(),
            description: String::new(),
            starts_at: Some(starts),
            ends_at: Some(ends),
            cron: None,
            duration_secs: None,
            timezone: "UTC".into(),
            monitor_ids: vec![1],
            tags: vec![],
            enabled: true,
        }
    }

    fn recurring(expr: &str, duration_secs: u32, tz: &str) -> MaintenanceSpec {
        MaintenanceSpec {
            name: "nightly".into(),
            description: String::new(),
            starts_at: None,
            ends_at: None,
            cron: Some(expr.into()),
            duration_secs: Some(duration_secs),
            timezone: tz.into(),
            monitor_ids: vec![],
            tags: vec!["db".into()],
            enabled: true,
        }
    }

    #[test]
    fn one_off_is_active_from_start_until_end() {
        let w = one_off(utc(2026, 5, 1, 10, 0, 0), utc(2026, 5, 1, 12, 0, 0));
        assert!(!w.is_active_at(utc(2026, 5, 1, 9, 59, 59)));
        assert!(w.is_active_at(utc(2026, 5, 1, 10, 0, 0)));
        assert!(w.is_active_at(utc(2026, 5, 1, 11, 59, 59)));
        assert!(!w.is_active_at(utc(2026, 5, 1, 12, 0, 0)));
        assert_eq!(
            w.next_start_after(utc(2026, 5, 1, 9, 0, 0)),
            Some(utc(2026, 5, 1, 10, 0, 0))
        );
        assert_eq!(w.next_start_after(utc(2026, 5, 1, 10, 0, 0)), None);
        let off = MaintenanceSpec {
            enabled: false,
            ..w
        };
        assert!(!off.is_active_at(utc(2026, 5, 1, 11, 0, 0)));
        assert_eq!(off.next_start_after(utc(2026, 5, 1, 9, 0, 0)), None);
    }

    #[test]
    fn covers_by_id_or_any_tag() {
        let mut w = one_off(utc(2026, 5, 1, 10, 0, 0), utc(2026, 5, 1, 12, 0, 0));
        w.tags = vec!["db".into(), "eu".into()];
        assert!(w.covers(1, &[]));
        assert!(w.covers(2, &["web".into(), "eu".into()]));
        assert!(!w.covers(2, &["web".into()]));
        assert!(!w.covers(2, &[]));
    }

    #[test]
    fn recurring_is_active_for_the_duration_after_each_occurrence() {
        // Every day at 02:00 UTC for 30 minutes.
        let w = recurring("0 2 * * *", 1800, "UTC");
        assert!(!w.is_active_at(utc(2026, 5, 1, 1, 59, 59)));
        assert!(w.is_active_at(utc(2026, 5, 1, 2, 0, 0)));
        assert!(w.is_active_at(utc(2026, 5, 1, 2, 29, 59)));
        assert!(!w.is_active_at(utc(2026, 5, 1, 2, 30, 0)));
        assert!(w.is_active_at(utc(2026, 5, 2, 2, 15, 0)));
        assert_eq!(
            w.next_start_after(utc(2026, 5, 1, 2, 0, 0)),
            Some(utc(2026, 5, 2, 2, 0, 0))
        );
        assert_eq!(
            w.next_start_after(utc(2026, 5, 1, 1, 0, 0)),
            Some(utc(2026, 5, 1, 2, 0, 0))
        );
        // Sub-second times.
        let t = utc(2026, 5, 1, 2, 29, 59) + Duration::milliseconds(999);
        assert!(w.is_active_at(t));
        assert!(!w.is_active_at(utc(2026, 5, 1, 1, 59, 59) + Duration::milliseconds(999)));
    }

    #[test]
    fn recurring_weekdays_follow_crontab() {
        // Saturdays 22:00 for 4 hours, over midnight. 2026-05-02 is a Saturday.
        let w = recurring("0 22 * * 6", 4 * 3600, "UTC");
        assert!(w.is_active_at(utc(2026, 5, 3, 1, 0, 0)));
        assert!(!w.is_active_at(utc(2026, 5, 3, 2, 0, 0)));
        assert!(!w.is_active_at(utc(2026, 5, 4, 1, 0, 0)));
        assert_eq!(
            w.next_start_after(utc(2026, 5, 3, 1, 0, 0)),
            Some(utc(2026, 5, 9, 22, 0, 0))
        );
    }

    #[test]
    fn recurring_windows_follow_berlin_daylight_saving_time() {
        // 03:00 Berlin for an hour: 02:00 UTC in winter (CET), 01:00 UTC in summer (CEST).
        // Berlin springs forward on 2026-03-29.
        let w = recurring("0 3 * * *", 3600, "Europe/Berlin");
        assert!(w.is_active_at(utc(2026, 3, 28, 2, 30, 0)));
        assert!(!w.is_active_at(utc(2026, 3, 28, 1, 30, 0)));
        assert!(w.is_active_at(utc(2026, 3, 29, 1, 30, 0)));
        assert!(!w.is_active_at(utc(2026, 3, 29, 2, 30, 0)));
        assert_eq!(
            w.next_start_after(utc(2026, 3, 28, 12, 0, 0)),
            Some(utc(2026, 3, 29, 1, 0, 0))
        );
        // 02:30 does not exist on 2026-03-29 in Berlin: no window that day.
        let gap = recurring("30 2 * * *", 600, "Europe/Berlin");
        assert!(!gap.is_active_at(utc(2026, 3, 29, 0, 35, 0)));
        assert!(!gap.is_active_at(utc(2026, 3, 29, 1, 35, 0)));
        assert_eq!(
            gap.next_start_after(utc(2026, 3, 28, 12, 0, 0)),
            Some(utc(2026, 3, 30, 0, 30, 0))
        );
        // Berlin falls back on 2026-10-25: 02:30 happens at 00:30 UTC (CEST) and again at
        // 01:30 UTC (CET); each starts a window.
        let fold = recurring("30 2 * * *", 600, "Europe/Berlin");
        assert!(fold.is_active_at(utc(2026, 10, 25, 0, 35, 0)));
        assert!(!fold.is_active_at(utc(2026, 10, 25, 1, 0, 0)));
        assert!(fold.is_active_at(utc(2026, 10, 25, 1, 35, 0)));
        assert!(!fold.is_active_at(utc(2026, 10, 25, 1, 45, 0)));
        assert_eq!(
            fold.next_start_after(utc(2026, 10, 25, 0, 0, 0)),
            Some(utc(2026, 10, 25, 0, 30, 0))
        );
        assert_eq!(
            fold.next_start_after(utc(2026, 10, 25, 0, 30, 0)),
            Some(utc(2026, 10, 25, 1, 30, 0))
        );
        assert_eq!(
            fold.next_start_after(utc(2026, 10, 25, 0, 50, 0)),
            Some(utc(2026, 10, 25, 1, 30, 0))
        );
        // An hour long from the second 02:30 (01:30 UTC): still found from within the fold.
        let long = recurring("30 2 * * *", 3600, "Europe/Berlin");
        assert!(long.is_active_at(utc(2026, 10, 25, 2, 15, 0)));
        assert!(!long.is_active_at(utc(2026, 10, 25, 2, 31, 0)));
    }

    /// Every occurrence in a range, found minute by minute (the reference for the searches).
    fn brute_occurrences(
        w: &MaintenanceSpec,
        from: DateTime<Utc>,
        minutes: i64,
    ) -> Vec<DateTime<Utc>> {
        let schedule = heartbeat::parse_cron(w.cron.as_deref().expect("cron")).expect("parses");
        let tz: Tz = w.timezone.parse().expect("tz");
        (0..minutes)
            .map(|m| from + Duration::minutes(m))
            .filter(|t| schedule.includes(t.with_timezone(&tz)))
            .collect()
    }

    #[test]
    fn searches_agree_with_brute_force_across_both_transitions() {
        for (expr, d) in [("*/15 * * * *", 600), ("10,40 1-3 * * *", 1500)] {
            let w = recurring(expr, d, "Europe/Berlin");
            for day in [
                utc(2026, 3, 28, 22, 0, 0),  // spring forward
                utc(2026, 10, 24, 22, 0, 0), // fall back
            ] {
                let all = brute_occurrences(&w, day - Duration::hours(6), 14 * 60);
                let end = day + Duration::hours(8);
                for step in 0..(6 * 60) {
                    let t = day + Duration::minutes(step) + Duration::seconds(7);
                    let expect_active = all
                        .iter()
                        .any(|o| *o <= t && t < *o + Duration::seconds(i64::from(d)));
                    assert_eq!(w.is_active_at(t), expect_active, "{expr} active at {t}");
                    let next = w.next_start_after(t);
                    match all.iter().copied().filter(|o| *o > t).min() {
                        Some(expected) => assert_eq!(next, Some(expected), "{expr} after {t}"),
                        // Beyond the brute-force range.
                        None => assert!(next.is_some_and(|n| n >= end), "{expr} after {t}"),
                    }
                }
            }
        }
    }

    #[test]
    fn bounds_clip_a_recurring_window() {
        let mut w = recurring("0 2 * * *", 7200, "UTC");
        w.starts_at = Some(utc(2026, 5, 1, 3, 0, 0));
        w.ends_at = Some(utc(2026, 5, 3, 2, 30, 0));
        // The occurrence of 2026-05-01 02:00 runs until 04:00 but the window starts at 03:00.
        assert!(!w.is_active_at(utc(2026, 5, 1, 2, 30, 0)));
        assert!(w.is_active_at(utc(2026, 5, 1, 3, 0, 0)));
        assert_eq!(
            w.next_start_after(utc(2026, 5, 1, 0, 0, 0)),
            Some(utc(2026, 5, 1, 3, 0, 0))
        );
        assert!(w.is_active_at(utc(2026, 5, 2, 3, 0, 0)));
        // The last occurrence is cut at ends_at.
        assert!(w.is_active_at(utc(2026, 5, 3, 2, 29, 0)));
        assert!(!w.is_active_at(utc(2026, 5, 3, 2, 30, 0)));
        assert_eq!(w.next_start_after(utc(2026, 5, 3, 2, 10, 0)), None);
        // A lower bound not covered by an occurrence: the first occurrence after it.
        w.starts_at = Some(utc(2026, 5, 1, 5, 0, 0));
        assert_eq!(
            w.next_start_after(utc(2026, 5, 1, 0, 0, 0)),
            Some(utc(2026, 5, 2, 2, 0, 0))
        );
    }

    #[test]
    fn validation_names_the_field() {
        let ok = one_off(utc(2026, 5, 1, 10, 0, 0), utc(2026, 5, 1, 12, 0, 0));
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            recurring("0 2 * * *", 1800, "Europe/Berlin").validate(),
            Ok(())
        );

        let err = |s: MaintenanceSpec| s.validate().expect_err("invalid");
        let e = err(one_off(
            utc(2026, 5, 1, 12, 0, 0),
            utc(2026, 5, 1, 12, 0, 0),
        ));
        assert_eq!(
            (e.kind, e.field.as_str()),
            (FieldErrorKind::Invalid, "/ends_at")
        );
        let e = err(MaintenanceSpec {
            ends_at: None,
            ..ok.clone()
        });
        assert_eq!(e.field, "/ends_at");
        let e = err(MaintenanceSpec {
            name: " ".into(),
            ..ok.clone()
        });
        assert_eq!(e.field, "/name");
        let e = err(MaintenanceSpec {
            name: "x".repeat(101),
            ..ok.clone()
        });
        assert_eq!(e.field, "/name");
        let e = err(MaintenanceSpec {
            duration_secs: Some(600),
            ..ok.clone()
        });
        assert_eq!(e.field, "/duration_secs");
        let e = err(MaintenanceSpec {
            monitor_ids: vec![],
            ..ok.clone()
        });
        assert_eq!(
            (e.kind, e.field.as_str()),
            (FieldErrorKind::Empty, "/monitor_ids")
        );
        let e = err(recurring("not cron", 1800, "UTC"));
        assert_eq!((e.kind, e.field.as_str()), (FieldErrorKind::Cron, "/cron"));
        let e = err(recurring("0 0 0 1 1 * 2001", 1800, "UTC"));
        assert_eq!(e.kind, FieldErrorKind::Cron);
        let e = err(recurring("0 2 * * *", 1800, "Mars/Olympus"));
        assert_eq!(
            (e.kind, e.field.as_str()),
            (FieldErrorKind::TimeZone, "/timezone")
        );
        let e = err(recurring("0 2 * * *", 59, "UTC"));
        assert_eq!(e.field, "/duration_secs");
        let e = err(recurring("0 2 * * *", 2_592_001, "UTC"));
        assert_eq!(e.field, "/duration_secs");
        let e = err(MaintenanceSpec {
            duration_secs: None,
            ..recurring("0 2 * * *", 60, "UTC")
        });
        assert_eq!(e.field, "/duration_secs");
    }

    #[test]
    fn a_broken_stored_spec_is_never_active() {
        let w = recurring("garbage", 600, "UTC");
        assert!(!w.is_active_at(utc(2026, 5, 1, 2, 0, 0)));
        assert_eq!(w.next_start_after(utc(2026, 5, 1, 2, 0, 0)), None);
    }
}
