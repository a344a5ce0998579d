//! The incident engine: turns stored results into incidents, timeline entries and outbox rows.
//!
//! - [`machine`]: the pure per-monitor state machine (confirmation and recovery thresholds,
//!   degraded/down severity and escalation, flapping, parent suppression).
//! - [`event`]: the outbox side — event names, the JSON payload handed to the notification
//!   dispatcher and the idempotency keys of notifications.
//!
//! The engine runs inside the transaction that stores a result batch
//! (`Store::insert_results`, see `store/engine.rs`): state is read from and written to the
//! database there, so a result is evaluated exactly once and survives restarts. Settings come
//! from [`crate::store::Store::set_engine_settings`].

pub mod event;
pub mod machine;

pub use event::EventKind;
pub use machine::EngineSettings;
