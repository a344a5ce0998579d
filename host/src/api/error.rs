//! The one error envelope of the API and its stable codes:
//! `{"error":{"code":"UPPER_SNAKE","message":"…","field":"/json/pointer"|null,"details":…|null}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::catalog::CatalogError;
use crate::pipeline::SubmitError;
use crate::runtime::LoadError;
use crate::scheduler::heartbeat::PingError;
use crate::secrets::SecretError;
use crate::store::StoreError;

/// Every stable error code of the API; once published a code keeps its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No API key, an unknown one or a revoked one (401, with `WWW-Authenticate: Bearer`).
    Unauthorized,
    /// The key lacks the scope the route needs (403).
    Forbidden,
    /// No such route or resource (404).
    NotFound,
    /// The route exists but not with this method (405).
    MethodNotAllowed,
    /// The body is not well-formed JSON (400).
    InvalidJson,
    /// A value is missing, unknown or out of range; `field` points at it (400).
    ValidationFailed,
    /// The body's content type is not accepted by the route (415).
    UnsupportedMediaType,
    /// The body exceeds the route's limit (413).
    PayloadTooLarge,
    /// No such plugin or version (404 on plugin routes, 400 when a monitor refers to it).
    PluginNotFound,
    /// The plugin version exists but is disabled or awaiting its grant (400).
    PluginNotActive,
    /// The upload is not a valid WebAssembly component (400).
    PluginInvalid,
    /// The component does not target a supported plugin world (400).
    PluginWrongWorld,
    /// The plugin is of the wrong kind for this use: a notifier as a monitor's check, or a
    /// check plugin as a channel's notifier (400).
    PluginWrongKind,
    /// The component imports interfaces Pharos does not provide (400).
    PluginUnsupportedImports,
    /// The component's `describe()` failed or returned something invalid (400).
    PluginDescribeFailed,
    /// `name@version` is already stored with different bytes (409).
    PluginVersionConflict,
    /// Built-in plugins cannot be replaced, changed or deleted (409).
    PluginBuiltin,
    /// Monitors still use the plugin version (409).
    PluginInUse,
    /// A write sent `"***"` back at a secret position (400).
    SecretRedactedEcho,
    /// A write carried a sealed value, which only the server produces (400).
    SecretSealedInput,
    /// A stored secret cannot be decrypted (secret key changed); send new values (409).
    SecretUndecryptable,
    /// The `Idempotency-Key` was used before with a different request (422).
    IdempotencyKeyReused,
    /// A request with the same `Idempotency-Key` is still being processed (409).
    IdempotencyKeyInUse,
    /// No push monitor has this token (404).
    PushTokenUnknown,
    /// The push monitor is paused (409).
    MonitorPaused,
    /// The operation needs a check monitor; this one is a push monitor (409).
    NotACheckMonitor,
    /// The result pipeline is full; retry after `Retry-After` seconds (503).
    Backpressure,
    /// The server is shutting down (503).
    ShuttingDown,
    /// The database cannot be reached (503).
    StoreUnavailable,
    /// No such channel in the workspace (404; 400 when a monitor names it).
    ChannelNotFound,
    /// Another channel of the workspace has this name (409).
    ChannelNameTaken,
    /// A monitor depends on a monitor that is not in the workspace (400).
    DependencyNotFound,
    /// The dependencies would form a cycle, or a monitor depends on itself (400).
    DependencyCycle,
    /// No such monitor in the workspace, where a body refers to one (400).
    MonitorNotFound,
    /// No such maintenance window in the workspace (404).
    MaintenanceWindowNotFound,
    /// A maintenance window names neither monitors nor tags (400).
    MaintenanceEmpty,
    /// A cron expression does not parse or never fires (400).
    InvalidCron,
    /// A time zone is not an IANA name (400).
    InvalidTimezone,
    /// No such incident in the workspace (404).
    IncidentNotFound,
    /// The incident was acknowledged before (409).
    IncidentAlreadyAcknowledged,
    /// The incident is resolved; it cannot be acknowledged any more (409).
    IncidentResolved,
    /// No such notification in the workspace (404).
    NotificationNotFound,
    /// Only failed or dead-lettered notifications can be retried (409).
    NotificationNotRetryable,
    /// No such status page (404; also an unknown or non-public slug on the public routes).
    StatusPageNotFound,
    /// Another status page has this slug (409).
    StatusPageSlugTaken,
    /// No such component on the status page (404).
    StatusPageComponentNotFound,
    /// Something failed on the server; the cause is logged, not returned (500).
    Internal,
}

impl ErrorCode {
    /// The code as it appears in the envelope.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::InvalidJson => "INVALID_JSON",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::PluginNotFound => "PLUGIN_NOT_FOUND",
            Self::PluginNotActive => "PLUGIN_NOT_ACTIVE",
            Self::PluginInvalid => "PLUGIN_INVALID",
            Self::PluginWrongWorld => "PLUGIN_WRONG_WORLD",
            Self::PluginWrongKind => "PLUGIN_WRONG_KIND",
            Self::PluginUnsupportedImports => "PLUGIN_UNSUPPORTED_IMPORTS",
            Self::PluginDescribeFailed => "PLUGIN_DESCRIBE_FAILED",
            Self::PluginVersionConflict => "PLUGIN_VERSION_CONFLICT",
            Self::PluginBuiltin => "PLUGIN_BUILTIN",
            Self::PluginInUse => "PLUGIN_IN_USE",
            Self::SecretRedactedEcho => "SECRET_REDACTED_ECHO",
            Self::SecretSealedInput => "SECRET_SEALED_INPUT",
            Self::SecretUndecryptable => "SECRET_UNDECRYPTABLE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            Self::PushTokenUnknown => "PUSH_TOKEN_UNKNOWN",
            Self::MonitorPaused => "MONITOR_PAUSED",
            Self::NotACheckMonitor => "NOT_A_CHECK_MONITOR",
            Self::Backpressure => "BACKPRESSURE",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::StoreUnavailable => "STORE_UNAVAILABLE",
            Self::ChannelNotFound => "CHANNEL_NOT_FOUND",
            Self::ChannelNameTaken => "CHANNEL_NAME_TAKEN",
            Self::DependencyNotFound => "DEPENDENCY_NOT_FOUND",
            Self::DependencyCycle => "DEPENDENCY_CYCLE",
            Self::MonitorNotFound => "MONITOR_NOT_FOUND",
            Self::MaintenanceWindowNotFound => "MAINTENANCE_WINDOW_NOT_FOUND",
            Self::MaintenanceEmpty => "MAINTENANCE_EMPTY",
            Self::InvalidCron => "INVALID_CRON",
            Self::InvalidTimezone => "INVALID_TIMEZONE",
            Self::IncidentNotFound => "INCIDENT_NOT_FOUND",
            Self::IncidentAlreadyAcknowledged => "INCIDENT_ALREADY_ACKNOWLEDGED",
            Self::IncidentResolved => "INCIDENT_RESOLVED",
            Self::NotificationNotFound => "NOTIFICATION_NOT_FOUND",
            Self::NotificationNotRetryable => "NOTIFICATION_NOT_RETRYABLE",
            Self::StatusPageNotFound => "STATUS_PAGE_NOT_FOUND",
            Self::StatusPageSlugTaken => "STATUS_PAGE_SLUG_TAKEN",
            Self::StatusPageComponentNotFound => "STATUS_PAGE_COMPONENT_NOT_FOUND",
            Self::Internal => "INTERNAL",
        }
    }

    /// The HTTP status the code is returned with by default.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound
            | Self::PluginNotFound
            | Self::PushTokenUnknown
            | Self::IncidentNotFound
            | Self::NotificationNotFound
            | Self::ChannelNotFound
            | Self::MaintenanceWindowNotFound
            | Self::StatusPageNotFound
            | Self::StatusPageComponentNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidJson
            | Self::ValidationFailed
            | Self::PluginNotActive
            | Self::PluginInvalid
            | Self::PluginWrongWorld
            | Self::PluginWrongKind
            | Self::DependencyNotFound
            | Self::DependencyCycle
            | Self::MonitorNotFound
            | Self::MaintenanceEmpty
            | Self::InvalidCron
            | Self::InvalidTimezone
            | Self::PluginUnsupportedImports
            | Self::PluginDescribeFailed
            | Self::SecretRedactedEcho
            | Self::SecretSealedInput => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::PluginVersionConflict
            | Self::PluginBuiltin
            | Self::PluginInUse
            | Self::ChannelNameTaken
            | Self::StatusPageSlugTaken
            | Self::SecretUndecryptable
            | Self::IncidentAlreadyAcknowledged
            | Self::IncidentResolved
            | Self::NotificationNotRetryable
            | Self::IdempotencyKeyInUse
            | Self::MonitorPaused
            | Self::NotACheckMonitor => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Backpressure | Self::ShuttingDown | Self::StoreUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 47] = [
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::InvalidJson,
        Self::ValidationFailed,
        Self::UnsupportedMediaType,
        Self::PayloadTooLarge,
        Self::PluginNotFound,
        Self::PluginNotActive,
        Self::PluginInvalid,
        Self::PluginWrongWorld,
        Self::PluginWrongKind,
        Self::PluginUnsupportedImports,
        Self::PluginDescribeFailed,
        Self::PluginVersionConflict,
        Self::PluginBuiltin,
        Self::PluginInUse,
        Self::SecretRedactedEcho,
        Self::SecretSealedInput,
        Self::SecretUndecryptable,
        Self::IdempotencyKeyReused,
        Self::IdempotencyKeyInUse,
        Self::PushTokenUnknown,
        Self::MonitorPaused,
        Self::NotACheckMonitor,
        Self::Backpressure,
        Self::ShuttingDown,
        Self::StoreUnavailable,
        Self::ChannelNotFound,
        Self::ChannelNameTaken,
        Self::DependencyNotFound,
        Self::DependencyCycle,
        Self::MonitorNotFound,
        Self::MaintenanceWindowNotFound,
        Self::MaintenanceEmpty,
        Self::InvalidCron,
        Self::InvalidTimezone,
        Self::IncidentNotFound,
        Self::IncidentAlreadyAcknowledged,
        Self::IncidentResolved,
        Self::NotificationNotFound,
        Self::NotificationNotRetryable,
        Self::StatusPageNotFound,
        Self::StatusPageSlugTaken,
        Self::StatusPageComponentNotFound,
        Self::Internal,
    ];
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// JSON pointer of the offending field of the body (or `/name` of a query parameter).
    pub field: Option<String>,
    /// Extra structured context, code-specific.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// An API error: a code, a message and optionally the field at fault.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub details: Option<serde_json::Value>,
    /// Overrides the code's default status (e.g. `PLUGIN_NOT_FOUND` in a monitor body is 400).
    pub status: Option<StatusCode>,
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            details: None,
            status: None,
        }
    }

    /// `VALIDATION_FAILED` at `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message).at(field)
    }

    /// `NOT_FOUND` for a resource.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    /// `INTERNAL`, logging the cause (which is not returned to the client).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error serving an API request");
        Self::new(
            ErrorCode::Internal,
            "internal error (the cause is in the server log)",
        )
    }

    /// Sets the field pointer.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Prefixes the field pointer (e.g. `/monitors/3` in a bulk request), or sets it.
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(f) => format!("{prefix}{f}"),
            None => prefix.to_string(),
        });
        self
    }

    /// Attaches structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Overrides the HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.code.status())
    }

    /// The envelope this error is sent as.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code,
                message: self.message.clone(),
                field: self.field.clone(),
                details: self.details.clone(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.envelope())).into_response();
        let headers = response.headers_mut();
        match self.code {
            ErrorCode::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ErrorCode::Backpressure | ErrorCode::ShuttingDown | ErrorCode::StoreUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of the body is not read: the connection cannot carry another request.
            ErrorCode::PayloadTooLarge => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_),
            ) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::new(
                    ErrorCode::StoreUnavailable,
                    "the database is unavailable; retry later",
                )
            }
            // Safety nets of the store's own checks; the API checks first with exact pointers.
            StoreError::UnknownChannel(id) => Self::new(
                ErrorCode::ChannelNotFound,
                format!("no channel {id} in this workspace"),
            )
            .at("/channels")
            .with_status(StatusCode::BAD_REQUEST),
            StoreError::UnknownMonitor(id) => Self::new(
                ErrorCode::DependencyNotFound,
                format!("no monitor {id} in this workspace"),
            )
            .at("/depends_on"),
            StoreError::DependencyCycle(path) => Self::new(
                ErrorCode::DependencyCycle,
                format!(
                    "these dependencies would form a cycle: {}",
                    cycle_text(path)
                ),
            )
            .at("/depends_on")
            .with_details(serde_json::json!({ "cycle": path })),
            _ => Self::internal(e),
        }
    }
}

/// `3 → 5 → 3` for a dependency cycle.
pub fn cycle_text(path: &[i64]) -> String {
    path.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::RedactedEcho { ref pointer } => {
                let field = pointer.clone();
                Self::new(ErrorCode::SecretRedactedEcho, e.to_string()).at(field)
            }
            SecretError::SealedInput { ref pointer } => {
                let field = if pointer == "/" {
                    String::new()
                } else {
                    pointer.clone()
                };
                Self::new(ErrorCode::SecretSealedInput, e.to_string()).at(field)
            }
            SecretError::Undecryptable => Self::new(
                ErrorCode::SecretUndecryptable,
                "a stored secret of this monitor or channel cannot be decrypted (was \
                 PHAROS_SECRET_KEY changed?); send new values for its secret fields",
            ),
            other => Self::internal(other),
        }
    }
}

impl From<LoadError> for ApiError {
    fn from(e: LoadError) -> Self {
        let code = match e {
            LoadError::NotAComponent(_) | LoadError::Compile(_) => ErrorCode::PluginInvalid,
            LoadError::UnsupportedImports(_) => ErrorCode::PluginUnsupportedImports,
            LoadError::WrongWorld(_) => ErrorCode::PluginWrongWorld,
            LoadError::Describe(_) => ErrorCode::PluginDescribeFailed,
        };
        Self::new(code, e.to_string())
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let message = e.to_string();
        match e {
            CatalogError::NotFound(_) => Self::new(ErrorCode::PluginNotFound, message),
            CatalogError::NotActive(..) => Self::new(ErrorCode::PluginNotActive, message),
            CatalogError::Invalid(load) => load.into(),
            CatalogError::WrongKind(..) => Self::new(ErrorCode::PluginWrongKind, message),
            CatalogError::VersionConflict(_, digest) => {
                Self::new(ErrorCode::PluginVersionConflict, message)
                    .with_details(serde_json::json!({ "existing_digest": digest }))
            }
            CatalogError::Builtin(_) => Self::new(ErrorCode::PluginBuiltin, message),
            CatalogError::InUse(_, n) => Self::new(ErrorCode::PluginInUse, message)
                .with_details(serde_json::json!({ "monitors": n })),
            CatalogError::UndeclaredGrant(_) => {
                Self::new(ErrorCode::ValidationFailed, message).at("/capabilities")
            }
            CatalogError::Store(s) => s.into(),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Full => Self::new(
                ErrorCode::Backpressure,
                "the result pipeline is full; retry shortly",
            ),
            SubmitError::Closed => {
                Self::new(ErrorCode::ShuttingDown, "the server is shutting down")
            }
            SubmitError::NotStored => Self::new(
                ErrorCode::StoreUnavailable,
                "the result could not be stored; retry later",
            ),
        }
    }
}

impl From<PingError> for ApiError {
    fn from(e: PingError) -> Self {
        match e {
            PingError::UnknownToken => Self::new(
                ErrorCode::PushTokenUnknown,
                "no push monitor has this token",
            ),
            PingError::Paused => Self::new(
                ErrorCode::MonitorPaused,
                "the monitor is paused; enable it to accept pings",
            ),
            PingError::Submit(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_upper_snake_and_serialize_as_their_code() {
        for code in ErrorCode::ALL {
            let s = code.code();
            assert!(s.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{s}");
            assert_eq!(serde_json::to_value(code).ok(), Some(serde_json::json!(s)));
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn under_prefixes_the_field() {
        let e = ApiError::validation("/config/url", "bad").under("/monitors/3");
        assert_eq!(e.field.as_deref(), Some("/monitors/3/config/url"));
        let e = ApiError::new(ErrorCode::PluginNotFound, "x").under("/monitors/0");
        assert_eq!(e.field.as_deref(), Some("/monitors/0"));
    }
}
