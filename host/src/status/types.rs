//! Types of status pages as stored: pages, curated components, public incident updates, and
//! the facts the public page is computed from (live state, daily counts, incidents).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{IncidentStatus, Severity, Status, WorkspaceId};

/// What an admin defines for a status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusPageSpec {
    /// `[a-z0-9-]{1,64}`, unique across the installation: the page is `/status/{slug}`.
    pub slug: String,
    /// Shown as the page heading, 1–200 characters.
    pub title: String,
    /// Shown under the title, at most 2000 characters.
    pub description: String,
    /// An `http(s)` URL of a logo image.
    pub logo_url: Option<String>,
    /// `#rrggbb` (lowercase), the page's accent colour.
    pub brand_color: Option<String>,
    /// When false the public routes answer 404.
    pub public: bool,
}

/// A stored status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusPage {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    #[serde(flatten)]
    pub spec: StatusPageSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A monitor curated onto a page, as defined by an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComponentSpec {
    /// The monitor shown (of the page's workspace).
    pub monitor_id: i64,
    /// The only name the public sees, 1–100 characters.
    pub public_name: String,
    /// Group heading ("" = ungrouped), at most 100 characters.
    pub group: String,
    /// Position on the page (ascending; ties by id).
    pub order: i64,
}

/// A stored component of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Component {
    pub id: i64,
    pub page_id: i64,
    #[serde(flatten)]
    pub spec: ComponentSpec,
}

/// The phase an incident update announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpdateStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
    Update,
}

impl UpdateStatus {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Investigating => "investigating",
            Self::Identified => "identified",
            Self::Monitoring => "monitoring",
            Self::Resolved => "resolved",
            Self::Update => "update",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "investigating" => Self::Investigating,
            "identified" => Self::Identified,
            "monitoring" => Self::Monitoring,
            "resolved" => Self::Resolved,
            "update" => Self::Update,
            _ => return None,
        })
    }

    /// Capitalised label for pages and feeds.
    pub fn label(self) -> &'static str {
        match self {
            Self::Investigating => "Investigating",
            Self::Identified => "Identified",
            Self::Monitoring => "Monitoring",
            Self::Resolved => "Resolved",
            Self::Update => "Update",
        }
    }
}

/// A new incident update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentUpdateSpec {
    pub status: UpdateStatus,
    pub message: String,
    pub public: bool,
}

/// A stored incident update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentUpdate {
    pub id: i64,
    pub incident_id: i64,
    pub at: DateTime<Utc>,
    pub status: UpdateStatus,
    pub message: String,
    pub public: bool,
    /// `key:<api key name>` of the writer (never shown publicly).
    pub author: String,
}

/// The live facts of one curated monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveState {
    pub monitor_id: i64,
    /// Latest status, `None` before the first result.
    pub status: Option<Status>,
    pub enabled: bool,
    pub tags: Vec<String>,
}

/// Result counts of one monitor on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayCounts {
    pub up: i64,
    pub degraded: i64,
    pub down: i64,
    pub error: i64,
    pub maintenance: i64,
}

impl DayCounts {
    /// Adds another count.
    pub fn add(&mut self, o: &DayCounts) {
        self.up += o.up;
        self.degraded += o.degraded;
        self.down += o.down;
        self.error += o.error;
        self.maintenance += o.maintenance;
    }
}

/// The public-safe part of an incident (no cause, no monitor name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentSummary {
    pub id: i64,
    pub monitor_id: i64,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}
