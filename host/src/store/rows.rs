//! Decoding helpers: typed column access, times, enums and JSON documents, every failure
//! reported as [`StoreError::Corrupt`] naming the table and column.

use chrono::DateTime;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, Decode, Row, Type};

use super::{R, StoreError};
use crate::model::{MonitorType, Scope, Status, Timestamp};

/// Column `what` = `"table.column"` of `row`, decoded as `T`.
pub(super) fn get<'r, T>(row: &'r AnyRow, what: &'static str) -> R<T>
where
    T: Decode<'r, Any> + Type<Any>,
{
    let column = what.rsplit('.').next().unwrap_or(what);
    row.try_get::<T, _>(column).map_err(|e| corrupt(what, e))
}

/// A [`StoreError::Corrupt`] for `what`.
pub(super) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

/// Milliseconds since the epoch, as stored.
pub(super) fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

/// The current time truncated to what the database keeps (milliseconds).
pub(super) fn now() -> Timestamp {
    from_ms(chrono::Utc::now().timestamp_millis()).unwrap_or_else(chrono::Utc::now)
}

/// A time from stored milliseconds, `None` when out of chrono's range.
pub(super) fn from_ms(ms: i64) -> Option<Timestamp> {
    DateTime::from_timestamp_millis(ms)
}

/// A non-null time column.
pub(super) fn time(row: &AnyRow, what: &'static str) -> R<Timestamp> {
    let v: i64 = get(row, what)?;
    from_ms(v).ok_or_else(|| corrupt(what, format!("time {v} out of range")))
}

/// A nullable time column.
pub(super) fn opt_time(row: &AnyRow, what: &'static str) -> R<Option<Timestamp>> {
    match get::<Option<i64>>(row, what)? {
        None => Ok(None),
        Some(v) => from_ms(v)
            .map(Some)
            .ok_or_else(|| corrupt(what, format!("time {v} out of range"))),
    }
}

/// A 0/1 flag column.
pub(super) fn flag(row: &AnyRow, what: &'static str) -> R<bool> {
    match get::<i64>(row, what)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(corrupt(what, format!("flag {v} is neither 0 nor 1"))),
    }
}

/// A stored status name.
pub(super) fn status(s: &str, what: &'static str) -> R<Status> {
    match s {
        "up" => Ok(Status::Up),
        "degraded" => Ok(Status::Degraded),
        "down" => Ok(Status::Down),
        "error" => Ok(Status::Error),
        other => Err(corrupt(what, format!("unknown status `{other}`"))),
    }
}

/// A non-null status column.
pub(super) fn status_col(row: &AnyRow, what: &'static str) -> R<Status> {
    let s: String = get(row, what)?;
    status(&s, what)
}

/// A nullable status column.
pub(super) fn opt_status_col(row: &AnyRow, what: &'static str) -> R<Option<Status>> {
    match get::<Option<String>>(row, what)? {
        None => Ok(None),
        Some(s) => status(&s, what).map(Some),
    }
}

/// A stored monitor type name.
pub(super) fn monitor_type(s: &str, what: &'static str) -> R<MonitorType> {
    match s {
        "check" => Ok(MonitorType::Check),
        "push" => Ok(MonitorType::Push),
        other => Err(corrupt(what, format!("unknown monitor type `{other}`"))),
    }
}

/// A stored scope name.
pub(super) fn scope(s: &str, what: &'static str) -> R<Scope> {
    match s {
        "read" => Ok(Scope::Read),
        "write" => Ok(Scope::Write),
        "admin" => Ok(Scope::Admin),
        other => Err(corrupt(what, format!("unknown scope `{other}`"))),
    }
}

/// A non-null JSON column decoded as `T`.
pub(super) fn json<T: DeserializeOwned>(row: &AnyRow, what: &'static str) -> R<T> {
    let s: String = get(row, what)?;
    serde_json::from_str(&s).map_err(|e| corrupt(what, e))
}

/// A nullable JSON column decoded as `T`.
pub(super) fn opt_json<T: DeserializeOwned>(row: &AnyRow, what: &'static str) -> R<Option<T>> {
    match get::<Option<String>>(row, what)? {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| corrupt(what, e)),
    }
}

/// A non-negative integer column that must fit `u32`.
pub(super) fn u32_col(row: &AnyRow, what: &'static str) -> R<u32> {
    let v: i64 = get(row, what)?;
    u32::try_from(v).map_err(|_| corrupt(what, format!("{v} does not fit 0..=4294967295")))
}

/// Serialises a value for a JSON column.
pub(super) fn to_json<T: Serialize + ?Sized>(v: &T, what: &'static str) -> R<String> {
    serde_json::to_string(v).map_err(|e| corrupt(what, e))
}

/// Text safe for both backends: PostgreSQL refuses NUL characters in `TEXT`.
pub(super) fn clean_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}
