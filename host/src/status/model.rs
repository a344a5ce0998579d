//! The public page: what `/status/{slug}` shows, computed from store facts by a pure function
//! ([`compute`]). Only public names, states, counts-derived figures, public incident updates
//! and maintenance names reach it — never a monitor's name, URL, config, tags or an incident's
//! cause.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::types::{Component, DayCounts, IncidentSummary, IncidentUpdate, LiveState, StatusPage};
use crate::model::{IncidentStatus, MaintenanceWindow, Severity, Status};

/// Days in the history strip.
pub const HISTORY_DAYS: i64 = 90;
/// Resolved incidents shown for this long.
pub const RECENT_INCIDENT_DAYS: i64 = 14;
/// Maintenance starting within this horizon is listed as upcoming.
pub const UPCOMING_MAINTENANCE_DAYS: i64 = 14;

/// The banner of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverallState {
    Operational,
    Degraded,
    PartialOutage,
    MajorOutage,
    Maintenance,
}

impl OverallState {
    /// Machine name (also the CSS class suffix).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operational => "operational",
            Self::Degraded => "degraded",
            Self::PartialOutage => "partial_outage",
            Self::MajorOutage => "major_outage",
            Self::Maintenance => "maintenance",
        }
    }

    /// The banner sentence.
    pub fn text(self) -> &'static str {
        match self {
            Self::Operational => "All systems operational",
            Self::Degraded => "Degraded performance",
            Self::PartialOutage => "Partial outage",
            Self::MajorOutage => "Major outage",
            Self::Maintenance => "Under maintenance",
        }
    }
}

/// The state of one component now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    Operational,
    Degraded,
    Outage,
    Maintenance,
    /// No result yet, or the monitor is paused.
    Unknown,
}

impl ComponentState {
    /// Machine name (also the CSS class suffix).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operational => "operational",
            Self::Degraded => "degraded",
            Self::Outage => "outage",
            Self::Maintenance => "maintenance",
            Self::Unknown => "unknown",
        }
    }

    /// Label shown beside the component.
    pub fn text(self) -> &'static str {
        match self {
            Self::Operational => "Operational",
            Self::Degraded => "Degraded",
            Self::Outage => "Outage",
            Self::Maintenance => "Maintenance",
            Self::Unknown => "Unknown",
        }
    }
}

/// The state of one day of the history strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayState {
    Operational,
    Degraded,
    PartialOutage,
    MajorOutage,
    Maintenance,
    NoData,
}

impl DayState {
    /// Machine name (also the CSS class suffix).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operational => "operational",
            Self::Degraded => "degraded",
            Self::PartialOutage => "partial_outage",
            Self::MajorOutage => "major_outage",
            Self::Maintenance => "maintenance",
            Self::NoData => "no_data",
        }
    }
}

/// The public page.
#[derive(Debug, Clone, Serialize)]
pub struct PublicPage {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub logo_url: Option<String>,
    pub brand_color: Option<String>,
    /// Absolute URL of the HTML page.
    pub url: String,
    pub generated_at: DateTime<Utc>,
    /// The banner.
    pub status: OverallState,
    pub status_text: &'static str,
    pub groups: Vec<PublicGroup>,
    /// Open incidents and those resolved in the last 14 days, newest first.
    pub incidents: Vec<PublicIncident>,
    /// Active and upcoming maintenance, soonest first.
    pub maintenance: Vec<PublicMaintenance>,
}

/// Components under one heading ("" = ungrouped), in page order.
#[derive(Debug, Clone, Serialize)]
pub struct PublicGroup {
    pub name: String,
    pub components: Vec<PublicComponent>,
}

/// One curated monitor as the public sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PublicComponent {
    /// The component id (not the monitor's).
    pub id: i64,
    pub name: String,
    pub status: ComponentState,
    pub status_text: &'static str,
    /// Uptime over the strip, percent (null without data).
    pub uptime_pct: Option<f64>,
    /// One entry per UTC day, oldest first, today last.
    pub history: Vec<PublicDay>,
}

/// One day of the strip.
#[derive(Debug, Clone, Serialize)]
pub struct PublicDay {
    pub date: NaiveDate,
    pub status: DayState,
    /// Percent of up + degraded among up + degraded + down results (null without any).
    pub uptime_pct: Option<f64>,
}

/// An incident of a curated monitor.
#[derive(Debug, Clone, Serialize)]
pub struct PublicIncident {
    pub id: i64,
    /// e.g. "Outage: API".
    pub title: String,
    /// `outage` | `degraded`.
    pub impact: &'static str,
    /// `open` | `resolved`.
    pub status: &'static str,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Public names of the affected components.
    pub components: Vec<String>,
    /// Public updates, newest first.
    pub updates: Vec<PublicUpdate>,
}

/// A public incident update.
#[derive(Debug, Clone, Serialize)]
pub struct PublicUpdate {
    pub at: DateTime<Utc>,
    /// investigating | identified | monitoring | resolved | update.
    pub status: &'static str,
    pub message: String,
}

/// A maintenance window touching curated monitors.
#[derive(Debug, Clone, Serialize)]
pub struct PublicMaintenance {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// In effect now (else upcoming).
    pub active: bool,
    /// Start of the current or next occurrence (null when unknown).
    pub starts_at: Option<DateTime<Utc>>,
    /// End of that occurrence (null when open-ended or unknown).
    pub ends_at: Option<DateTime<Utc>>,
    /// Public names of the affected components.
    pub components: Vec<String>,
}

/// Everything [`compute`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub page: &'a StatusPage,
    pub components: &'a [Component],
    pub live: &'a [LiveState],
    /// (monitor id, day since epoch) → counts.
    pub days: &'a HashMap<(i64, i64), DayCounts>,
    pub incidents: &'a [IncidentSummary],
    /// Public updates of those incidents.
    pub updates: &'a [IncidentUpdate],
    /// Enabled windows of the workspace (filtered here).
    pub windows: &'a [MaintenanceWindow],
    pub now: DateTime<Utc>,
    /// Absolute base URL of the service, no trailing slash.
    pub base_url: &'a str,
}

/// Milliseconds per day.
const DAY_MS: i64 = 86_400_000;

/// The first day (since the epoch) of the strip ending today.
pub fn first_day(now: DateTime<Utc>) -> i64 {
    now.timestamp_millis().div_euclid(DAY_MS) - (HISTORY_DAYS - 1)
}

/// Uptime percent of counts (up + degraded over up + degraded + down).
fn uptime(c: &DayCounts) -> Option<f64> {
    let target = c.up + c.degraded + c.down;
    (target > 0).then(|| (c.up + c.degraded) as f64 * 100.0 / target as f64)
}

/// The state of a day from its counts.
pub fn day_state(c: &DayCounts) -> DayState {
    match uptime(c) {
        None if c.maintenance > 0 => DayState::Maintenance,
        None => DayState::NoData,
        Some(_) if c.down == 0 && c.degraded == 0 => DayState::Operational,
        Some(_) if c.down == 0 => DayState::Degraded,
        Some(p) if p >= 95.0 => DayState::PartialOutage,
        Some(_) => DayState::MajorOutage,
    }
}

/// The state of a component now.
pub fn component_state(
    live: Option<&LiveState>,
    open_incident: Option<Severity>,
    in_maintenance: bool,
) -> ComponentState {
    if in_maintenance {
        return ComponentState::Maintenance;
    }
    let Some(live) = live.filter(|l| l.enabled) else {
        return ComponentState::Unknown;
    };
    let from_live = match live.status {
        None => ComponentState::Unknown,
        Some(Status::Up) => ComponentState::Operational,
        Some(Status::Degraded) => ComponentState::Degraded,
        Some(Status::Down | Status::Error) => ComponentState::Outage,
    };
    match (open_incident, from_live) {
        (Some(Severity::Down), _) | (_, ComponentState::Outage) => ComponentState::Outage,
        (Some(Severity::Degraded), _) | (_, ComponentState::Degraded) => ComponentState::Degraded,
        (None, s) => s,
    }
}

/// The banner from the components' states: any outage is partial, all of them (of those
/// with a known state) major; then degraded; then maintenance; else operational.
pub fn overall_state(states: &[ComponentState]) -> OverallState {
    let known: Vec<ComponentState> = states
        .iter()
        .copied()
        .filter(|s| *s != ComponentState::Unknown)
        .collect();
    let outages = known
        .iter()
        .filter(|s| **s == ComponentState::Outage)
        .count();
    if outages > 0 {
        return if outages == known.len() {
            OverallState::MajorOutage
        } else {
            OverallState::PartialOutage
        };
    }
    if known.contains(&ComponentState::Degraded) {
        OverallState::Degraded
    } else if known.contains(&ComponentState::Maintenance) {
        OverallState::Maintenance
    } else {
        OverallState::Operational
    }
}

/// The public page from the facts.
pub fn compute(f: &Facts<'_>) -> PublicPage {
    let live: HashMap<i64, &LiveState> = f.live.iter().map(|l| (l.monitor_id, l)).collect();
    let names: HashMap<i64, &str> = f
        .components
        .iter()
        .map(|c| (c.spec.monitor_id, c.spec.public_name.as_str()))
        .collect();
    let no_tags: Vec<String> = Vec::new();
    let tags_of = |m: i64| live.get(&m).map(|l| &l.tags).unwrap_or(&no_tags);

    // Maintenance: enabled windows covering a curated monitor, active or starting soon.
    let horizon = f.now + Duration::days(UPCOMING_MAINTENANCE_DAYS);
    let mut maintenance = Vec::new();
    let mut in_maintenance: Vec<i64> = Vec::new();
    for w in f.windows.iter().filter(|w| w.spec.enabled) {
        let covered: Vec<&Component> = f
            .components
            .iter()
            .filter(|c| w.spec.covers(c.spec.monitor_id, tags_of(c.spec.monitor_id)))
            .collect();
        if covered.is_empty() {
            continue;
        }
        let plan = w.spec.plan();
        let active = plan.is_active_at(f.now);
        let duration = w
            .spec
            .duration_secs
            .map(|s| Duration::seconds(i64::from(s)));
        let (starts_at, ends_at) = match (w.spec.cron.is_some(), duration) {
            (true, Some(d)) if active => {
                let start = plan
                    .next_start_after(f.now - d - Duration::milliseconds(1))
                    .filter(|s| *s <= f.now);
                (start, start.map(|s| s + d))
            }
            (true, Some(d)) => {
                let start = plan.next_start_after(f.now);
                (start, start.map(|s| s + d))
            }
            _ => (w.spec.starts_at, w.spec.ends_at),
        };
        if active {
            in_maintenance.extend(covered.iter().map(|c| c.spec.monitor_id));
        } else if !starts_at.is_some_and(|s| s > f.now && s <= horizon) {
            continue;
        }
        maintenance.push(PublicMaintenance {
            id: w.id,
            name: w.spec.name.clone(),
            description: w.spec.description.clone(),
            active,
            starts_at,
            ends_at,
            components: covered.iter().map(|c| c.spec.public_name.clone()).collect(),
        });
    }
    maintenance.sort_by_key(|m| (!m.active, m.starts_at, m.id));

    // Incidents with their public updates.
    let mut updates: HashMap<i64, Vec<PublicUpdate>> = HashMap::new();
    for u in f.updates.iter().filter(|u| u.public) {
        updates
            .entry(u.incident_id)
            .or_default()
            .push(PublicUpdate {
                at: u.at,
                status: u.status.as_str(),
                message: u.message.clone(),
            });
    }
    let mut open: HashMap<i64, Severity> = HashMap::new();
    let mut incidents = Vec::new();
    for i in f.incidents {
        let Some(name) = names.get(&i.monitor_id) else {
            continue;
        };
        if i.status == IncidentStatus::Open {
            let e = open.entry(i.monitor_id).or_insert(i.severity);
            *e = (*e).max(i.severity);
        }
        let (impact, label) = match i.severity {
            Severity::Down => ("outage", "Outage"),
            Severity::Degraded => ("degraded", "Degraded performance"),
        };
        let mut ups = updates.remove(&i.id).unwrap_or_default();
        ups.sort_by_key(|u| std::cmp::Reverse(u.at));
        incidents.push(PublicIncident {
            id: i.id,
            title: format!("{label}: {name}"),
            impact,
            status: i.status.as_str(),
            started_at: i.opened_at,
            resolved_at: i.resolved_at,
            components: vec![(*name).to_string()],
            updates: ups,
        });
    }

    // Components, grouped in page order (a group sits where its first component does).
    let first = first_day(f.now);
    let mut group_order: Vec<String> = Vec::new();
    let mut grouped: BTreeMap<usize, Vec<PublicComponent>> = BTreeMap::new();
    let mut states = Vec::with_capacity(f.components.len());
    for c in f.components {
        let m = c.spec.monitor_id;
        let state = component_state(
            live.get(&m).copied(),
            open.get(&m).copied(),
            in_maintenance.contains(&m),
        );
        states.push(state);
        let mut total = DayCounts::default();
        let history = (first..first + HISTORY_DAYS)
            .map(|day| {
                let counts = f.days.get(&(m, day)).copied().unwrap_or_default();
                total.add(&counts);
                PublicDay {
                    date: DateTime::from_timestamp_millis(day * DAY_MS)
                        .map(|d| d.date_naive())
                        .unwrap_or_default(),
                    status: day_state(&counts),
                    uptime_pct: uptime(&counts),
                }
            })
            .collect();
        let idx = match group_order.iter().position(|g| *g == c.spec.group) {
            Some(i) => i,
            None => {
                group_order.push(c.spec.group.clone());
                group_order.len() - 1
            }
        };
        grouped.entry(idx).or_default().push(PublicComponent {
            id: c.id,
            name: c.spec.public_name.clone(),
            status: state,
            status_text: state.text(),
            uptime_pct: uptime(&total),
            history,
        });
    }
    let groups = grouped
        .into_iter()
        .map(|(i, components)| PublicGroup {
            name: group_order.get(i).cloned().unwrap_or_default(),
            components,
        })
        .collect();
    let status = overall_state(&states);
    PublicPage {
        slug: f.page.spec.slug.clone(),
        title: f.page.spec.title.clone(),
        description: f.page.spec.description.clone(),
        logo_url: f.page.spec.logo_url.clone(),
        brand_color: f.page.spec.brand_color.clone(),
        url: format!("{}/status/{}", f.base_url, f.page.spec.slug),
        generated_at: f.now,
        status,
        status_text: status.text(),
        groups,
        incidents,
        maintenance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState as C;
    use OverallState as O;

    #[test]
    fn banner_from_component_states() {
        assert_eq!(overall_state(&[]), O::Operational);
        assert_eq!(overall_state(&[C::Operational, C::Unknown]), O::Operational);
        assert_eq!(overall_state(&[C::Operational, C::Degraded]), O::Degraded);
        assert_eq!(
            overall_state(&[C::Operational, C::Outage]),
            O::PartialOutage
        );
        assert_eq!(overall_state(&[C::Outage, C::Degraded]), O::PartialOutage);
        assert_eq!(
            overall_state(&[C::Outage, C::Outage, C::Unknown]),
            O::MajorOutage
        );
        assert_eq!(
            overall_state(&[C::Maintenance, C::Operational]),
            O::Maintenance
        );
        assert_eq!(overall_state(&[C::Maintenance, C::Degraded]), O::Degraded);
        assert_eq!(
            overall_state(&[C::Maintenance, C::Outage]),
            O::PartialOutage
        );
        assert_eq!(overall_state(&[C::Unknown]), O::Operational);
    }

    fn live(status: Option<Status>, enabled: bool) -> LiveState {
        LiveState {
            monitor_id: 1,
            status,
            enabled,
            tags: vec![],
        }
    }

    #[test]
    fn component_state_rules() {
        let up = live(Some(Status::Up), true);
        assert_eq!(component_state(Some(&up), None, false), C::Operational);
        assert_eq!(component_state(Some(&up), None, true), C::Maintenance);
        assert_eq!(
            component_state(Some(&up), Some(Severity::Down), false),
            C::Outage
        );
        assert_eq!(
            component_state(Some(&up), Some(Severity::Degraded), false),
            C::Degraded
        );
        let err = live(Some(Status::Error), true);
        assert_eq!(component_state(Some(&err), None, false), C::Outage);
        let paused = live(Some(Status::Down), false);
        assert_eq!(component_state(Some(&paused), None, false), C::Unknown);
        assert_eq!(component_state(None, None, false), C::Unknown);
        assert_eq!(
            component_state(Some(&live(None, true)), None, false),
            C::Unknown
        );
    }

    #[test]
    fn day_states() {
        let c = |up, degraded, down, maintenance| DayCounts {
            up,
            degraded,
            down,
            error: 0,
            maintenance,
        };
        assert_eq!(day_state(&c(0, 0, 0, 0)), DayState::NoData);
        assert_eq!(day_state(&c(0, 0, 0, 5)), DayState::Maintenance);
        assert_eq!(day_state(&c(10, 0, 0, 5)), DayState::Operational);
        assert_eq!(day_state(&c(10, 1, 0, 0)), DayState::Degraded);
        assert_eq!(day_state(&c(99, 0, 1, 0)), DayState::PartialOutage);
        assert_eq!(day_state(&c(50, 0, 50, 0)), DayState::MajorOutage);
        assert_eq!(uptime(&c(3, 1, 1, 7)), Some(80.0));
    }
}
