//! The per-monitor incident state machine: pure, no I/O, no clock.
//!
//! [`step`] applies one result (its start time and status) to a monitor's [`AlertState`] and
//! returns what happened as [`Effect`]s, in the order they are to be recorded. The store loads
//! the state, calls `step` for each result in time order inside the transaction that stores
//! them, turns the effects into incident rows, timeline entries and outbox rows, and saves the
//! state back (see `store/engine.rs`).
//!
//! Times are epoch milliseconds.

use std::time::Duration;

use crate::model::{Severity, Status};

/// Default number of level changes within the flap window above which a monitor is flapping.
pub const DEFAULT_FLAP_THRESHOLD: u32 = 5;
/// Default length of the flap window.
pub const DEFAULT_FLAP_WINDOW: Duration = Duration::from_secs(600);
/// Most level-change times kept per monitor, whatever the window (bounds the stored JSON).
pub const MAX_CHANGES: usize = 1000;

/// Engine-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// A monitor is flapping when its level changed more than this many times within
    /// `flap_window`; it settles at `flap_threshold / 2` changes or fewer. 0 turns flap
    /// detection off.
    pub flap_threshold: u32,
    /// The window over which level changes are counted.
    pub flap_window: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            flap_threshold: DEFAULT_FLAP_THRESHOLD,
            flap_window: DEFAULT_FLAP_WINDOW,
        }
    }
}

impl EngineSettings {
    /// The flap window in milliseconds (at least 1).
    fn window_ms(&self) -> i64 {
        i64::try_from(self.flap_window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }
}

/// How a result counts for alerting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Ok,
    Degraded,
    Down,
}

impl Level {
    /// Lowercase name used in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }

    /// The level of a stored name.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "ok" => Some(Self::Ok),
            "degraded" => Some(Self::Degraded),
            "down" => Some(Self::Down),
            _ => None,
        }
    }
}

/// The parts of a monitor's alert policy the state machine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive failing results that open an incident (0 is read as 1).
    pub failure_threshold: u32,
    /// Consecutive passing results that resolve it (0 is read as 1).
    pub recovery_threshold: u32,
    /// Notify when an incident resolves.
    pub notify_recovery: bool,
    /// `degraded` results fail (otherwise they pass).
    pub alert_on_degraded: bool,
    /// `error` results fail (otherwise they are ignored).
    pub error_counts_as_failure: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            failure_threshold: 2,
            recovery_threshold: 1,
            notify_recovery: true,
            alert_on_degraded: false,
            error_counts_as_failure: true,
        }
    }
}

/// The level of a result under `policy`; `None` when the engine ignores it (an `error` result
/// of a monitor whose errors do not count as failures).
pub fn classify(status: Status, policy: &Policy) -> Option<Level> {
    match status {
        Status::Up => Some(Level::Ok),
        Status::Degraded if policy.alert_on_degraded => Some(Level::Degraded),
        Status::Degraded => Some(Level::Ok),
        Status::Down => Some(Level::Down),
        Status::Error if policy.error_counts_as_failure => Some(Level::Down),
        Status::Error => None,
    }
}

/// Why an incident's notifications are held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    /// A parent monitor (this id) was down when the incident opened.
    Parent(i64),
    /// The monitor was flapping.
    Flapping,
}

impl Suppression {
    /// The value of `incidents.suppressed` and of a timeline entry's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Parent(_) => "parent",
            Self::Flapping => "flapping",
        }
    }

    /// The parent monitor, for `incidents.suppressed_by`.
    pub fn parent(self) -> Option<i64> {
        match self {
            Self::Parent(id) => Some(id),
            Self::Flapping => None,
        }
    }
}

/// The open incident of a monitor, as far as the state machine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenIncident {
    /// Row id; 0 for an incident opened by the current step until the store inserts it.
    pub id: i64,
    pub severity: Severity,
    /// Start of the first failing result of the streak that opened it.
    pub opened_at: i64,
    /// Its opening was sent to channels (or is covered by a `flapping_ended` notification).
    pub opened_notified: bool,
    /// Why its notifications are held back, if they are.
    pub suppressed: Option<Suppression>,
}

/// A monitor's alert state, as stored in `alert_state` plus its open incident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertState {
    /// Start of the newest evaluated result.
    pub last_result_at: Option<i64>,
    /// Level of that result.
    pub level: Option<Level>,
    /// Consecutive failing (degraded or down) levels.
    pub fail_streak: u32,
    /// Consecutive ok levels.
    pub pass_streak: u32,
    /// Start of the first result of the current streak (failing or passing).
    pub streak_started_at: Option<i64>,
    /// The current failing streak contains a `down` level.
    pub streak_down: bool,
    pub flapping: bool,
    /// Times of recent level changes, oldest first, within the flap window.
    pub changes: Vec<i64>,
    pub incident: Option<OpenIncident>,
}

/// Whether a notification of an event goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Notify the monitor's channels.
    Send,
    /// Held back; recorded as a `suppressed` timeline entry.
    Suppressed(Suppression),
    /// Not notified and nothing to record (recovery notifications off, or the opening was
    /// never notified so its resolution is not either).
    Skip,
}

/// Something the store records, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The monitor started flapping (notify `flapping`; timeline on the open incident, if any).
    FlappingStarted,
    /// A new incident; `AlertState::incident` now holds it with id 0.
    Opened {
        opened_at: i64,
        severity: Severity,
        delivery: Delivery,
    },
    /// The open incident went from `degraded` to `down`.
    Escalated {
        incident_id: i64,
        delivery: Delivery,
    },
    /// The open incident resolved at `resolved_at`; `AlertState::incident` is now `None`.
    Resolved {
        incident_id: i64,
        resolved_at: i64,
        delivery: Delivery,
    },
    /// No parent is down any more: the incident's parent suppression is lifted and its
    /// opening is notified now (`Send`), or held back again because the monitor is flapping.
    ParentRecovered {
        incident_id: i64,
        delivery: Delivery,
    },
    /// The monitor settled. `incident_notified`: the open incident whose opening was held back
    /// by flapping, now covered by this notification (cleared suppression, counts as notified).
    FlappingEnded { incident_notified: Option<i64> },
}

/// What [`step`] did with a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not newer than the last evaluated result: ignored (a late result never overrides a
    /// newer one).
    Stale,
    /// An `error` result that the policy ignores.
    Ignored,
    /// Evaluated; the effects, possibly none.
    Evaluated(Vec<Effect>),
}

/// Applies the result started at `at` with `status` to `state`.
///
/// `parent_down` is a parent monitor that is down right now, if any (it suppresses an
/// opening, and its absence lifts a parent suppression).
pub fn step(
    state: &mut AlertState,
    policy: &Policy,
    settings: &EngineSettings,
    at: i64,
    status: Status,
    parent_down: Option<i64>,
) -> Outcome {
    if state.last_result_at.is_some_and(|last| at <= last) {
        return Outcome::Stale;
    }
    let Some(level) = classify(status, policy) else {
        return Outcome::Ignored;
    };
    state.last_result_at = Some(at);
    track_changes(state, settings, at, level);
    track_streaks(state, at, level);

    let mut effects = Vec::new();
    let mut settled = false;
    let changes = state.changes.len();
    let threshold = settings.flap_threshold as usize;
    if !state.flapping && threshold > 0 && changes > threshold {
        state.flapping = true;
        effects.push(Effect::FlappingStarted);
    } else if state.flapping && (threshold == 0 || changes <= threshold / 2) {
        state.flapping = false;
        settled = true;
    }
    let flapping = state.flapping;

    match state.incident.as_mut() {
        None => {
            if state.fail_streak >= policy.failure_threshold.max(1) {
                let severity = if state.streak_down {
                    Severity::Down
                } else {
                    Severity::Degraded
                };
                let opened_at = state.streak_started_at.unwrap_or(at);
                let suppressed = match parent_down {
                    Some(parent) => Some(Suppression::Parent(parent)),
                    None if flapping => Some(Suppression::Flapping),
                    None => None,
                };
                state.incident = Some(OpenIncident {
                    id: 0,
                    severity,
                    opened_at,
                    opened_notified: suppressed.is_none(),
                    suppressed,
                });
                effects.push(Effect::Opened {
                    opened_at,
                    severity,
                    delivery: suppressed.map_or(Delivery::Send, Delivery::Suppressed),
                });
            }
        }
        Some(incident) => {
            if level == Level::Ok && state.pass_streak >= policy.recovery_threshold.max(1) {
                let delivery = if !policy.notify_recovery || !incident.opened_notified {
                    Delivery::Skip
                } else if flapping {
                    Delivery::Suppressed(Suppression::Flapping)
                } else {
                    Delivery::Send
                };
                effects.push(Effect::Resolved {
                    incident_id: incident.id,
                    resolved_at: state.streak_started_at.unwrap_or(at),
                    delivery,
                });
                state.incident = None;
            } else {
                if level == Level::Down && incident.severity == Severity::Degraded {
                    incident.severity = Severity::Down;
                    effects.push(Effect::Escalated {
                        incident_id: incident.id,
                        delivery: follow_up_delivery(incident, flapping),
                    });
                }
                if matches!(incident.suppressed, Some(Suppression::Parent(_)))
                    && parent_down.is_none()
                {
                    let delivery = if flapping {
                        incident.suppressed = Some(Suppression::Flapping);
                        Delivery::Suppressed(Suppression::Flapping)
                    } else {
                        incident.suppressed = None;
                        incident.opened_notified = true;
                        Delivery::Send
                    };
                    effects.push(Effect::ParentRecovered {
                        incident_id: incident.id,
                        delivery,
                    });
                }
            }
        }
    }

    if settled {
        let incident_notified = match state.incident.as_mut() {
            Some(incident) if incident.suppressed == Some(Suppression::Flapping) => {
                incident.suppressed = None;
                incident.opened_notified = true;
                Some(incident.id)
            }
            _ => None,
        };
        effects.push(Effect::FlappingEnded { incident_notified });
    }
    Outcome::Evaluated(effects)
}

/// Delivery of a follow-up (escalation) of an open incident.
fn follow_up_delivery(incident: &OpenIncident, flapping: bool) -> Delivery {
    match incident.suppressed {
        Some(s @ Suppression::Parent(_)) => Delivery::Suppressed(s),
        _ if flapping => Delivery::Suppressed(Suppression::Flapping),
        // Opened while flapping, which just ended: the `flapping_ended` notification of this
        // step reports the incident as it is now.
        Some(Suppression::Flapping) => Delivery::Skip,
        None => Delivery::Send,
    }
}

/// Records a level change and forgets changes that left the flap window `(at - window, at]`.
fn track_changes(state: &mut AlertState, settings: &EngineSettings, at: i64, level: Level) {
    if state.level.is_some_and(|prev| prev != level) {
        state.changes.push(at);
    }
    state.level = Some(level);
    let window = settings.window_ms();
    state.changes.retain(|c| at.saturating_sub(*c) < window);
    if state.changes.len() > MAX_CHANGES {
        let excess = state.changes.len() - MAX_CHANGES;
        state.changes.drain(..excess);
    }
}

/// Moves the failing and passing streaks.
fn track_streaks(state: &mut AlertState, at: i64, level: Level) {
    if level == Level::Ok {
        if state.pass_streak == 0 {
            state.streak_started_at = Some(at);
        }
        state.pass_streak = state.pass_streak.saturating_add(1);
        state.fail_streak = 0;
        state.streak_down = false;
    } else {
        if state.fail_streak == 0 {
            state.streak_started_at = Some(at);
            state.streak_down = false;
        }
        state.fail_streak = state.fail_streak.saturating_add(1);
        state.pass_streak = 0;
        state.streak_down |= level == Level::Down;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{Degraded, Down, Error, Up};

    const MIN: i64 = 60_000;

    /// Runs `results` (minute i gets the i-th status) through a fresh or given state.
    struct Sim {
        state: AlertState,
        policy: Policy,
        settings: EngineSettings,
        next_id: i64,
        at: i64,
        parent_down: Option<i64>,
    }

    impl Sim {
        fn new(policy: Policy) -> Sim {
            Sim {
                state: AlertState::default(),
                policy,
                settings: EngineSettings::default(),
                next_id: 100,
                at: 0,
                parent_down: None,
            }
        }

        /// One result a minute after the previous; assigns ids to opened incidents.
        fn feed(&mut self, status: Status) -> Vec<Effect> {
            self.at += MIN;
            match self.feed_at(self.at, status) {
                Outcome::Evaluated(e) => e,
                other => panic!("not evaluated: {other:?}"),
            }
        }

        fn feed_at(&mut self, at: i64, status: Status) -> Outcome {
            let out = step(
                &mut self.state,
                &self.policy,
                &self.settings,
                at,
                status,
                self.parent_down,
            );
            if let Some(i) = self.state.incident.as_mut()
                && i.id == 0
            {
                self.next_id += 1;
                i.id = self.next_id;
            }
            out
        }

        fn feed_all(&mut self, statuses: &[Status]) -> Vec<Effect> {
            statuses.iter().flat_map(|s| self.feed(*s)).collect()
        }
    }

    fn opened(effects: &[Effect]) -> Vec<(i64, Severity, Delivery)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Opened {
                    opened_at,
                    severity,
                    delivery,
                } => Some((*opened_at, *severity, *delivery)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn classification_follows_the_policy() {
        let p = Policy::default();
        assert_eq!(classify(Up, &p), Some(Level::Ok));
        assert_eq!(classify(Degraded, &p), Some(Level::Ok));
        assert_eq!(classify(Down, &p), Some(Level::Down));
        assert_eq!(classify(Error, &p), Some(Level::Down));
        let strict = Policy {
            alert_on_degraded: true,
            error_counts_as_failure: false,
            ..p
        };
        assert_eq!(classify(Degraded, &strict), Some(Level::Degraded));
        assert_eq!(classify(Error, &strict), None);
        for l in [Level::Ok, Level::Degraded, Level::Down] {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("up"), None);
    }

    #[test]
    fn threshold_two_opens_on_the_second_failure_dated_from_the_first() {
        let mut s = Sim::new(Policy::default());
        assert!(s.feed(Up).is_empty());
        assert!(s.feed(Down).is_empty(), "first failure only counts");
        assert_eq!(s.state.fail_streak, 1);
        let e = s.feed(Down);
        assert_eq!(opened(&e), vec![(2 * MIN, Severity::Down, Delivery::Send)]);
        let inc = s.state.incident.expect("open");
        assert!(inc.opened_notified);
        assert_eq!(inc.opened_at, 2 * MIN);
        // Further failures change nothing.
        assert!(s.feed(Down).is_empty());
    }

    #[test]
    fn a_single_failure_between_successes_never_opens() {
        let mut s = Sim::new(Policy::default());
        let e = s.feed_all(&[Up, Down, Up, Down, Up, Error, Up]);
        assert!(opened(&e).is_empty(), "{e:?}");
        assert!(s.state.incident.is_none());
    }

    #[test]
    fn recovery_threshold_and_resolution_time() {
        let mut s = Sim::new(Policy {
            failure_threshold: 1,
            recovery_threshold: 3,
            ..Policy::default()
        });
        assert_eq!(opened(&s.feed(Down)).len(), 1);
        let id = s.state.incident.expect("open").id;
        assert!(s.feed(Up).is_empty());
        assert!(s.feed(Up).is_empty());
        assert_eq!(
            s.feed(Up),
            vec![Effect::Resolved {
                incident_id: id,
                resolved_at: 2 * MIN,
                delivery: Delivery::Send
            }]
        );
        assert!(s.state.incident.is_none());
    }

    #[test]
    fn a_failure_restarts_the_recovery_count() {
        let mut s = Sim::new(Policy {
            failure_threshold: 1,
            recovery_threshold: 2,
            ..Policy::default()
        });
        s.feed(Down);
        let e = s.feed_all(&[Up, Down, Up]);
        assert!(e.is_empty(), "{e:?}");
        assert!(
            matches!(s.feed(Up).as_slice(), [Effect::Resolved { resolved_at, .. }] if *resolved_at == 4 * MIN)
        );
    }

    #[test]
    fn recovery_notification_can_be_turned_off() {
        let mut s = Sim::new(Policy {
            notify_recovery: false,
            failure_threshold: 1,
            ..Policy::default()
        });
        s.feed(Down);
        assert!(matches!(
            s.feed(Up).as_slice(),
            [Effect::Resolved {
                delivery: Delivery::Skip,
                ..
            }]
        ));
    }

    #[test]
    fn degraded_only_alerts_when_asked_and_escalates_to_down() {
        let mut quiet = Sim::new(Policy::default());
        assert!(quiet.feed_all(&[Degraded, Degraded, Degraded]).is_empty());
        assert_eq!(quiet.state.level, Some(Level::Ok));

        let mut s = Sim::new(Policy {
            alert_on_degraded: true,
            ..Policy::default()
        });
        s.feed(Degraded);
        let e = s.feed(Degraded);
        assert_eq!(opened(&e), vec![(MIN, Severity::Degraded, Delivery::Send)]);
        let id = s.state.incident.expect("open").id;
        assert_eq!(
            s.feed(Down),
            vec![Effect::Escalated {
                incident_id: id,
                delivery: Delivery::Send
            }]
        );
        assert_eq!(s.state.incident.expect("open").severity, Severity::Down);
        // Back to degraded: no de-escalation, no new event.
        assert!(s.feed(Degraded).is_empty());
        assert!(s.feed(Down).is_empty());
    }

    #[test]
    fn a_streak_containing_down_opens_as_down() {
        let mut s = Sim::new(Policy {
            alert_on_degraded: true,
            failure_threshold: 3,
            ..Policy::default()
        });
        let e = s.feed_all(&[Degraded, Down, Degraded]);
        assert_eq!(opened(&e), vec![(MIN, Severity::Down, Delivery::Send)]);
    }

    #[test]
    fn ignored_errors_neither_count_nor_break_streaks() {
        let mut s = Sim::new(Policy {
            error_counts_as_failure: false,
            ..Policy::default()
        });
        s.feed(Down);
        s.at += MIN;
        assert_eq!(s.feed_at(s.at, Error), Outcome::Ignored);
        assert_eq!(s.state.fail_streak, 1);
        assert_eq!(s.state.last_result_at, Some(MIN), "not evaluated");
        assert_eq!(opened(&s.feed(Down)).len(), 1);
        // Errors counted as failures open incidents of severity down.
        let mut e = Sim::new(Policy::default());
        assert_eq!(opened(&e.feed_all(&[Error, Error]))[0].1, Severity::Down);
    }

    #[test]
    fn stale_and_equal_times_are_not_evaluated() {
        let mut s = Sim::new(Policy {
            failure_threshold: 1,
            ..Policy::default()
        });
        s.feed(Up);
        s.feed(Up);
        assert_eq!(s.feed_at(MIN, Down), Outcome::Stale);
        assert_eq!(s.feed_at(2 * MIN, Down), Outcome::Stale);
        assert!(s.state.incident.is_none());
        assert_eq!(s.state.pass_streak, 2);
    }

    #[test]
    fn flapping_suppresses_then_settles() {
        let mut s = Sim::new(Policy {
            failure_threshold: 1,
            ..Policy::default()
        });
        // Changes: Up→Down at 2, →Up 3, →Down 4, →Up 5, →Down 6 (5 changes, not > 5).
        let e = s.feed_all(&[Up, Down, Up, Down, Up, Down]);
        assert!(!s.state.flapping);
        assert_eq!(opened(&e).len(), 3, "every opening before flapping is sent");
        assert!(opened(&e).iter().all(|(_, _, d)| *d == Delivery::Send));
        // The sixth change starts flapping; the resolution it causes is held back.
        let e = s.feed(Up);
        assert_eq!(e[0], Effect::FlappingStarted);
        assert!(matches!(
            e[1],
            Effect::Resolved {
                delivery: Delivery::Suppressed(Suppression::Flapping),
                ..
            }
        ));
        assert!(s.state.flapping);
        // Openings while flapping are recorded but held back.
        let e = s.feed(Down);
        assert_eq!(
            opened(&e),
            vec![(
                8 * MIN,
                Severity::Down,
                Delivery::Suppressed(Suppression::Flapping)
            )]
        );
        let inc = s.state.incident.expect("open");
        assert!(!inc.opened_notified);
        assert_eq!(inc.suppressed, Some(Suppression::Flapping));
        // Staying down: changes age out of the 10-minute window one by one; at ≤ 2 the
        // monitor settles and the held-back incident counts as notified by `flapping_ended`.
        let mut ended = None;
        for _ in 0..10 {
            let e = s.feed(Down);
            if let Some(pos) = e
                .iter()
                .position(|x| matches!(x, Effect::FlappingEnded { .. }))
            {
                ended = Some((s.at, e[pos]));
                break;
            }
            assert!(e.is_empty(), "{e:?}");
        }
        let (at, effect) = ended.expect("settled");
        assert_eq!(
            effect,
            Effect::FlappingEnded {
                incident_notified: Some(inc.id)
            }
        );
        assert!(s.state.changes.len() <= 2, "{:?} at {at}", s.state.changes);
        let inc = s.state.incident.expect("still open");
        assert!(inc.opened_notified);
        assert_eq!(inc.suppressed, None);
        // Its recovery is notified normally now.
        assert!(matches!(
            s.feed(Up).as_slice(),
            [Effect::Resolved {
                delivery: Delivery::Send,
                ..
            }]
        ));
    }

    #[test]
    fn flap_detection_can_be_turned_off_and_windows_are_respected() {
        let mut s = Sim::new(Policy {
            failure_threshold: 3,
            ..Policy::default()
        });
        s.settings.flap_threshold = 0;
        let e = s.feed_all(&[Up, Down, Up, Down, Up, Down, Up, Down, Up, Down]);
        assert!(e.is_empty(), "{e:?}");
        assert!(!s.state.flapping);

        // Changes an hour apart never accumulate in a 10-minute window.
        let mut slow = Sim::new(Policy {
            failure_threshold: 100,
            ..Policy::default()
        });
        for i in 0..20 {
            slow.at += 60 * MIN;
            let status = if i % 2 == 0 { Up } else { Down };
            assert_eq!(slow.feed_at(slow.at, status), Outcome::Evaluated(vec![]));
        }
        assert!(slow.state.changes.len() <= 1);
    }

    #[test]
    fn parent_down_suppresses_and_parent_recovery_notifies_once() {
        let mut s = Sim::new(Policy {
            failure_threshold: 1,
            ..Policy::default()
        });
        s.parent_down = Some(7);
        let e = s.feed(Down);
        assert_eq!(
            opened(&e),
            vec![(
                MIN,
                Severity::Down,
                Delivery::Suppressed(Suppression::Parent(7))
            )]
        );
        assert!(s.feed(Down).is_empty(), "parent still down");
        s.parent_down = None;
        let id = s.state.incident.expect("open").id;
        assert_eq!(
            s.feed(Down),
            vec![Effect::ParentRecovered {
                incident_id: id,
                delivery: Delivery::Send
            }]
        );
        let inc = s.state.incident.expect("open");
        assert!(inc.opened_notified);
        assert_eq!(inc.suppressed, None);
        assert!(s.feed(Down).is_empty(), "only once");
        assert!(matches!(
            s.feed(Up).as_slice(),
            [Effect::Resolved {
                delivery: Delivery::Send,
                ..
            }]
        ));
    }

    #[test]
    fn a_suppressed_incident_that_recovers_with_its_parent_stays_silent() {
        let mut s = Sim::new(Policy {
            failure_threshold: 1,
            alert_on_degraded: true,
            ..Policy::default()
        });
        s.parent_down = Some(7);
        s.feed(Degraded);
        // Escalation while the parent is down is held back too.
        assert!(matches!(
            s.feed(Down).as_slice(),
            [Effect::Escalated {
                delivery: Delivery::Suppressed(Suppression::Parent(7)),
                ..
            }]
        ));
        s.parent_down = None;
        assert!(matches!(
            s.feed(Up).as_slice(),
            [Effect::Resolved {
                delivery: Delivery::Skip,
                ..
            }]
        ));
    }

    #[test]
    fn a_parent_does_not_matter_once_the_opening_was_notified() {
        let mut s = Sim::new(Policy {
            failure_threshold: 1,
            ..Policy::default()
        });
        s.feed(Down);
        s.parent_down = Some(3);
        assert!(s.feed(Down).is_empty());
        assert!(matches!(
            s.feed(Up).as_slice(),
            [Effect::Resolved {
                delivery: Delivery::Send,
                ..
            }]
        ));
    }

    #[test]
    fn streak_counters_saturate() {
        let mut s = Sim::new(Policy {
            failure_threshold: u32::MAX,
            ..Policy::default()
        });
        s.state.fail_streak = u32::MAX - 1;
        s.state.level = Some(Level::Down);
        s.feed(Down);
        s.feed(Down);
        assert_eq!(s.state.fail_streak, u32::MAX);
        assert!(s.state.incident.is_some(), "threshold reached exactly");
    }

    #[test]
    fn zero_thresholds_read_as_one() {
        let mut s = Sim::new(Policy {
            failure_threshold: 0,
            recovery_threshold: 0,
            ..Policy::default()
        });
        assert!(s.feed(Up).is_empty());
        assert_eq!(opened(&s.feed(Down)).len(), 1);
        assert!(matches!(s.feed(Up).as_slice(), [Effect::Resolved { .. }]));
    }

    #[test]
    fn changes_are_bounded() {
        let mut s = Sim::new(Policy::default());
        s.settings = EngineSettings {
            flap_threshold: u32::MAX,
            flap_window: Duration::from_secs(u64::MAX / 2000),
        };
        for i in 0..(MAX_CHANGES + 50) {
            s.feed(if i % 2 == 0 { Up } else { Down });
        }
        assert_eq!(s.state.changes.len(), MAX_CHANGES);
        assert!(s.state.changes.windows(2).all(|w| w[0] < w[1]));
    }
}
