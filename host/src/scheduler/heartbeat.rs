//! Push (heartbeat) monitors: pings received on `/api/v1/push/{token}`, and when the next one
//! is due (every N seconds, or on a cron schedule in a time zone, plus a grace period).
//!
//! Cron expressions: 5 fields are read as crontab (`min hour day month weekday`, weekday 0–7
//! with 0 and 7 = Sunday); 6 or 7 fields (`sec min hour day month weekday [year]`) and the
//! `@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly` shorthands are read as the `cron` crate
//! does (weekday 1–7 with 1 = Sunday, or names such as `MON-FRI`).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};

use chrono::Utc;
use chrono_tz::Tz;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::model::{Monitor, MonitorType, NewResult, PushSchedule, Status, Timestamp, Timings};
use crate::pipeline::{ResultSink, SubmitError};

use super::SchedulerHandle;

/// How long a ping waits for room in a full pipeline before it is refused.
const PING_SUBMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest `msg` kept from a ping, in bytes.
const MAX_PING_MESSAGE: usize = 1024;

/// What a ping says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingKind {
    /// The job succeeded (`status=up` or no status).
    Success,
    /// The job failed (`/fail` or `status=down`).
    Fail,
    /// The job started (`/start`): the next ping's latency is measured from here.
    Start,
}

impl PingKind {
    fn label(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Fail => "fail",
            Self::Start => "start",
        }
    }
}

/// Why a ping was refused.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// No push monitor has this token.
    #[error("unknown push token")]
    UnknownToken,
    /// The monitor is paused.
    #[error("the monitor is paused")]
    Paused,
    /// The result could not be queued.
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

/// Why a push schedule is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("invalid cron expression: {0}")]
    Cron(String),
    /// The time zone is not an IANA name.
    #[error("unknown time zone `{0}`")]
    TimeZone(String),
}

/// Validates a push schedule (the API calls this before saving).
pub fn validate(schedule: &PushSchedule) -> Result<(), ScheduleError> {
    let tz = time_zone(&schedule.timezone)?;
    if let Some(expr) = &schedule.cron {
        let cron = parse_cron(expr)?;
        // A schedule that never fires again (e.g. 30 February, or a past year) is useless.
        if cron.after(&Utc::now().with_timezone(&tz)).next().is_none() {
            return Err(ScheduleError::Cron(format!(
                "`{expr}` never fires after now"
            )));
        }
    }
    Ok(())
}

/// When the ping after one at `last` is expected at the latest (grace not included).
pub fn next_expected(
    schedule: &PushSchedule,
    interval_secs: u32,
    last: Timestamp,
) -> Result<Timestamp, ScheduleError> {
    PushPlan::new(schedule, interval_secs)?.next_expected(last)
}

/// A push schedule parsed once, for the scheduler to evaluate on every ping and deadline.
#[derive(Debug, Clone)]
pub(crate) struct PushPlan {
    cron: Option<(cron::Schedule, Tz)>,
    interval_secs: u32,
    grace: chrono::Duration,
}

impl PushPlan {
    /// Parses the cron expression and time zone of `schedule`.
    pub(crate) fn new(schedule: &PushSchedule, interval_secs: u32) -> Result<Self, ScheduleError> {
        let cron = match &schedule.cron {
            Some(expr) => Some((parse_cron(expr)?, time_zone(&schedule.timezone)?)),
            None => None,
        };
        Ok(Self {
            cron,
            interval_secs,
            grace: chrono::Duration::seconds(i64::from(schedule.grace_secs)),
        })
    }

    /// How late a ping may be.
    pub(crate) fn grace(&self) -> chrono::Duration {
        self.grace
    }

    /// When the ping after one at `last` is expected at the latest (grace not included).
    pub(crate) fn next_expected(&self, last: Timestamp) -> Result<Timestamp, ScheduleError> {
        let Some((cron, tz)) = &self.cron else {
            return Ok(last + chrono::Duration::seconds(i64::from(self.interval_secs.max(1))));
        };
        // The cron crate may return a time at or before `last` around a DST fold; skip those.
        cron.after(&last.with_timezone(tz))
            .take(4)
            .map(|t| t.with_timezone(&Utc))
            .find(|t| *t > last)
            .ok_or_else(|| {
                ScheduleError::Cron(format!(
                    "`{}` does not fire after {}",
                    cron.source(),
                    last.to_rfc3339()
                ))
            })
    }
}

/// An IANA time zone by name.
pub(crate) fn time_zone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::TimeZone(name.to_string()))
}

/// Parses a cron expression; 5-field crontab expressions get a `0` seconds field and their
/// weekday numbers translated to the `cron` crate's (crontab 0 = Sunday, the crate's 1).
pub(crate) fn parse_cron(expr: &str) -> Result<cron::Schedule, ScheduleError> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let normalized = match fields.as_slice() {
        [min, hour, dom, month, dow] => {
            let dow = crontab_weekdays(dow).map_err(ScheduleError::Cron)?;
            format!("0 {min} {hour} {dom} {month} {dow}")
        }
        _ => fields.join(" "),
    };
    cron::Schedule::from_str(&normalized).map_err(|e| ScheduleError::Cron(format!("`{expr}`: {e}")))
}

/// Rewrites a crontab weekday field (0–7, 0 and 7 = Sunday) for the `cron` crate (1–7, 1 =
/// Sunday): numeric items are expanded to explicit day lists; names and `*`/`?` pass through.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    let mut out: Vec<String> = Vec::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (
                b,
                Some(
                    s.parse::<u32>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("bad step in weekday `{item}`"))?,
                ),
            ),
            None => (item, None),
        };
        let numeric = |s: &str| -> Result<u32, String> {
            s.parse::<u32>()
                .ok()
                .filter(|d| *d <= 7)
                .ok_or_else(|| format!("weekday `{s}` must be 0-7 or a name"))
        };
        let range = if base == "*" || base == "?" {
            if step.is_none() {
                out.push(base.to_string());
                continue;
            }
            Some((0, 6))
        } else if base.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            match base.split_once('-') {
                Some((a, b)) => Some((numeric(a)?, numeric(b)?)),
                None => {
                    let d = numeric(base)?;
                    Some((d, if step.is_some() { 6 } else { d }))
                }
            }
        } else {
            None
        };
        match range {
            None => out.push(item.to_string()), // names: the crate reads them itself
            Some((a, b)) if a > b => {
                return Err(format!("weekday range `{base}` runs backwards"));
            }
            Some((a, b)) => {
                let step = step.unwrap_or(1) as usize;
                for d in (a..=b).step_by(step) {
                    out.push(((d % 7) + 1).to_string());
                }
            }
        }
    }
    out.dedup();
    Ok(out.join(","))
}

/// A push monitor as the receiver knows it.
struct Target {
    monitor_id: i64,
    workspace_id: i64,
    region: String,
    enabled: bool,
    /// When `/start` was last pinged and no success/failure ping followed yet.
    started: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Registry {
    by_token: HashMap<String, Arc<Target>>,
    token_of: HashMap<i64, String>,
}

/// Receives pings: finds the monitor by token in memory, queues the result, moves the deadline.
pub struct Heartbeats {
    sink: ResultSink,
    scheduler: SchedulerHandle,
    metrics: Arc<Metrics>,
    registry: RwLock<Registry>,
}

impl Heartbeats {
    /// A receiver writing into `sink` and telling `scheduler` about pings.
    pub fn new(sink: ResultSink, scheduler: SchedulerHandle) -> Arc<Self> {
        Arc::new(Self {
            metrics: scheduler.metrics(),
            sink,
            scheduler,
            registry: RwLock::new(Registry::default()),
        })
    }

    /// Registers or updates a push monitor's token (call on create/update; others are ignored).
    pub fn upsert(&self, monitor: &Monitor) {
        let mut reg = self.write();
        let token = match (&monitor.spec.kind, &monitor.push_token) {
            (MonitorType::Push, Some(token)) => token.clone(),
            _ => {
                // Not (or no longer) a push monitor.
                if let Some(old) = reg.token_of.remove(&monitor.id) {
                    reg.by_token.remove(&old);
                }
                return;
            }
        };
        let started = match reg.token_of.get(&monitor.id) {
            Some(old) if *old == token => reg.by_token.get(old).and_then(|t| *lock(&t.started)),
            Some(old) => {
                let old = old.clone();
                reg.by_token.remove(&old);
                None
            }
            None => None,
        };
        let target = Arc::new(Target {
            monitor_id: monitor.id,
            workspace_id: monitor.workspace_id,
            region: self.scheduler.region().to_string(),
            enabled: monitor.spec.enabled,
            started: Mutex::new(started),
        });
        reg.token_of.insert(monitor.id, token.clone());
        reg.by_token.insert(token, target);
    }

    /// Registers every push monitor of a list (start-up).
    pub fn load(&self, monitors: &[Monitor]) {
        for m in monitors {
            self.upsert(m);
        }
    }

    /// Forgets a monitor's token.
    pub fn remove(&self, monitor_id: i64) {
        let mut reg = self.write();
        if let Some(token) = reg.token_of.remove(&monitor_id) {
            reg.by_token.remove(&token);
        }
    }

    /// Push monitors registered.
    pub fn len(&self) -> usize {
        self.read().by_token.len()
    }

    /// Whether no push monitor is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Handles one ping; `Ok` means the result was accepted and will be stored.
    ///
    /// `/start` stores nothing: it only marks the start, so the next success or failure ping
    /// reports the job's duration as its latency. It does not move the deadline.
    pub async fn ping(
        &self,
        token: &str,
        kind: PingKind,
        message: Option<String>,
    ) -> Result<(), PingError> {
        let target = self
            .read()
            .by_token
            .get(token)
            .cloned()
            .ok_or(PingError::UnknownToken)?;
        if !target.enabled {
            return Err(PingError::Paused);
        }
        let now = Instant::now();
        if kind == PingKind::Start {
            *lock(&target.started) = Some(now);
            self.metrics.heartbeat(kind.label());
            return Ok(());
        }
        let latency_ms = lock(&target.started)
            .take()
            .map(|s| now.duration_since(s).as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        let (status, default_message) = match kind {
            PingKind::Fail => (Status::Down, "failure reported by ping"),
            _ => (Status::Up, "ping received"),
        };
        let message = message
            .map(|m| truncate(m, MAX_PING_MESSAGE))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| default_message.to_string());
        let at = Utc::now();
        let result = NewResult {
            monitor_id: target.monitor_id,
            workspace_id: target.workspace_id,
            region: target.region.clone(),
            started_at: at,
            status,
            latency_ms,
            message,
            timings: Timings::default(),
            metrics: Vec::new(),
            details: None,
            error_cause: None,
            ping: true,
        };
        self.sink.submit_within(result, PING_SUBMIT_WAIT).await?;
        self.metrics.heartbeat(kind.label());
        self.scheduler.pinged(target.monitor_id, at);
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid")
    }

    fn cron(expr: &str, tz: &str) -> PushSchedule {
        PushSchedule {
            cron: Some(expr.to_string()),
            timezone: tz.to_string(),
            grace_secs: 60,
        }
    }

    #[test]
    fn interval_schedule_adds_the_interval() {
        let last = utc(2025, 1, 1, 12, 0, 0);
        let next = next_expected(&PushSchedule::default(), 300, last);
        assert_eq!(next, Ok(utc(2025, 1, 1, 12, 5, 0)));
    }

    #[test]
    fn five_field_cron_is_crontab_in_the_time_zone() {
        // Every day at 09:00 in Berlin: 08:00 UTC in winter (CET).
        let s = cron("0 9 * * *", "Europe/Berlin");
        assert_eq!(validate(&s), Ok(()));
        let next = next_expected(&s, 60, utc(2025, 1, 10, 12, 0, 0));
        assert_eq!(next, Ok(utc(2025, 1, 11, 8, 0, 0)));
    }

    #[test]
    fn cron_follows_daylight_saving_time() {
        // Berlin springs forward on 2025-03-30: 09:00 is 08:00 UTC before, 07:00 UTC after.
        let s = cron("0 9 * * *", "Europe/Berlin");
        let before = next_expected(&s, 60, utc(2025, 3, 28, 12, 0, 0));
        assert_eq!(before, Ok(utc(2025, 3, 29, 8, 0, 0)));
        let across = next_expected(&s, 60, utc(2025, 3, 29, 12, 0, 0));
        assert_eq!(across, Ok(utc(2025, 3, 30, 7, 0, 0)));
        let after = next_expected(&s, 60, utc(2025, 3, 30, 7, 30, 0));
        assert_eq!(after, Ok(utc(2025, 3, 31, 7, 0, 0)));
        // 02:30 does not exist on the spring-forward day in New York (2025-03-09): skipped.
        let s = cron("30 2 * * *", "America/New_York");
        let next = next_expected(&s, 60, utc(2025, 3, 8, 8, 0, 0));
        assert_eq!(next, Ok(utc(2025, 3, 10, 6, 30, 0)));
        // 01:30 happens twice when New York falls back (2025-11-02): each next is later.
        let s = cron("30 1 * * *", "America/New_York");
        let first = next_expected(&s, 60, utc(2025, 11, 2, 4, 0, 0)).expect("fires");
        assert_eq!(first, utc(2025, 11, 2, 5, 30, 0));
        let second = next_expected(&s, 60, first).expect("fires");
        assert!(second > first, "{second} after {first}");
        assert!(second <= utc(2025, 11, 3, 6, 30, 0), "{second}");
        // From inside the repeated hour (01:00 EST), the earlier 01:30 EDT has passed.
        let next = next_expected(&s, 60, utc(2025, 11, 2, 6, 0, 0));
        assert_eq!(next, Ok(utc(2025, 11, 2, 6, 30, 0)));
    }

    #[test]
    fn crontab_weekdays_mean_what_crontab_says() {
        // 1-5 = Monday to Friday. 2025-01-10 is a Friday; the next weekday run is Monday 13th.
        let s = cron("0 12 * * 1-5", "UTC");
        let next = next_expected(&s, 60, utc(2025, 1, 10, 13, 0, 0));
        assert_eq!(next, Ok(utc(2025, 1, 13, 12, 0, 0)));
        // 0 and 7 are Sunday (2025-01-12).
        for expr in ["0 12 * * 0", "0 12 * * 7", "0 12 * * SUN"] {
            let next = next_expected(&cron(expr, "UTC"), 60, utc(2025, 1, 10, 13, 0, 0));
            assert_eq!(next, Ok(utc(2025, 1, 12, 12, 0, 0)), "{expr}");
        }
        assert_eq!(crontab_weekdays("*/2").as_deref(), Ok("1,3,5,7"));
        assert_eq!(crontab_weekdays("5-7").as_deref(), Ok("6,7,1"));
        assert_eq!(crontab_weekdays("MON-FRI").as_deref(), Ok("MON-FRI"));
        assert_eq!(crontab_weekdays("*").as_deref(), Ok("*"));
        assert!(crontab_weekdays("8").is_err());
        assert!(crontab_weekdays("5-1").is_err());
        assert!(crontab_weekdays("*/0").is_err());
    }

    #[test]
    fn six_and_seven_field_cron_are_taken_as_is() {
        let s = cron("*/15 * * * * *", "UTC");
        assert_eq!(validate(&s), Ok(()));
        let next = next_expected(&s, 60, utc(2025, 1, 1, 0, 0, 1));
        assert_eq!(next, Ok(utc(2025, 1, 1, 0, 0, 15)));
        let s = cron("0 0 12 * * * 2030", "UTC");
        assert_eq!(validate(&s), Ok(()));
        assert_eq!(validate(&cron("@daily", "UTC")), Ok(()));
    }

    #[test]
    fn invalid_schedules_are_refused() {
        assert!(matches!(
            validate(&cron("not cron", "UTC")),
            Err(ScheduleError::Cron(_))
        ));
        assert!(matches!(
            validate(&cron("0 9 * *", "UTC")),
            Err(ScheduleError::Cron(_))
        ));
        assert!(matches!(
            validate(&cron("61 * * * *", "UTC")),
            Err(ScheduleError::Cron(_))
        ));
        assert!(matches!(
            validate(&cron("0 0 0 1 1 * 2001", "UTC")),
            Err(ScheduleError::Cron(_))
        ));
        assert_eq!(
            validate(&cron("0 9 * * *", "Mars/Olympus")),
            Err(ScheduleError::TimeZone("Mars/Olympus".into()))
        );
        let tz_only = PushSchedule {
            timezone: "Nowhere".into(),
            ..PushSchedule::default()
        };
        assert!(matches!(
            validate(&tz_only),
            Err(ScheduleError::TimeZone(_))
        ));
    }

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("héllo".into(), 2), "h");
        assert_eq!(truncate("hello".into(), 10), "hello");
    }
}
