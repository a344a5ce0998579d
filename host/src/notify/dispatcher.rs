//! The outbox dispatcher: claims due notifications, delivers each through its channel's
//! notifier plugin (at most `concurrency` at once), records every attempt, retries transient
//! failures with exponential backoff and jitter up to `max_attempts` (then dead-letters),
//! stops at once on permanent failures, holds notifications over a channel's storm cap and
//! turns them into one digest when the window ends, and queues reminders for open incidents.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Notifier;
use super::event::render;
use crate::config::AlertingSection;
use crate::model::{Channel, Timestamp, WorkspaceId};
use crate::runtime::{DeliverInput, DeliveryOutcome};
use crate::store::{AttemptOutcome, Claimed, DeliveryRecord};

/// How long a channel looked up for delivery is reused.
const CHANNEL_TTL: Duration = Duration::from_secs(2);
/// How often reminders and digests are looked for.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// Attempts recorded per transaction at most.
const RECORD_BATCH: usize = 512;
/// Longest an attempt waits before its batch is recorded.
const RECORD_FLUSH: Duration = Duration::from_millis(20);

/// The pause before attempt `attempt + 1` after `attempt` failed: `base × 2^(attempt−1)`
/// capped at `max`, with "equal jitter" (a random point in the upper half).
pub fn backoff(settings: &AlertingSection, attempt: u32) -> Duration {
    let base = settings.retry_base_ms.max(1);
    let exp = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(40));
    let full = exp.min(settings.retry_max_ms.max(base));
    let half = full / 2;
    let jitter = rand::thread_rng().gen_range(0..=full - half);
    Duration::from_millis(half + jitter)
}

/// The dispatcher's storm-control counters: notifications sent per channel in the current
/// fixed window (`floor(now / window)`), kept in memory.
#[derive(Debug, Default)]
struct Storm {
    windows: HashMap<i64, (i64, u32)>,
}

impl Storm {
    /// Counts one notification for `channel`; false when it is over the cap and must be held.
    fn admit(&mut self, channel: &Channel, now_ms: i64) -> bool {
        let limit = channel.spec.storm_limit;
        if limit == 0 {
            return true;
        }
        let start = window_start(now_ms, channel.spec.storm_window_secs);
        let entry = self.windows.entry(channel.id).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        if entry.1 >= limit {
            return false;
        }
        entry.1 += 1;
        true
    }
}

/// Start of the storm window containing `now_ms`.
fn window_start(now_ms: i64, window_secs: u32) -> i64 {
    let w = i64::from(window_secs.max(1)) * 1000;
    now_ms - now_ms.rem_euclid(w)
}

/// A channel looked up for delivery, with its revealed config.
#[derive(Clone)]
struct Ready {
    channel: Channel,
    config: Result<String, String>,
    at: Instant,
}

/// Runs the dispatcher until `stop` turns true; in-flight deliveries are then awaited (their
/// own timeouts bound the wait) and every attempt is recorded.
pub(super) async fn run(notifier: Arc<Notifier>, mut stop: watch::Receiver<bool>) {
    let settings = notifier.settings.clone();
    if let Err(e) = notifier.store.release_notification_leases().await {
        tracing::warn!(error = %e, "cannot release earlier notification leases");
    }
    let (record_tx, record_rx) = mpsc::channel::<DeliveryRecord>(settings.concurrency * 4);
    let recorder = tokio::spawn(record(notifier.clone(), record_rx));
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut storm = Storm::default();
    let mut channels: HashMap<i64, Ready> = HashMap::new();
    let mut housekeeping = Instant::now();
    let lease = Duration::from_secs(settings.lease_secs);
    let poll = Duration::from_millis(settings.poll_ms);
    loop {
        if *stop.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        if housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
            housekeeping = Instant::now();
            notifier.housekeeping(&mut channels).await;
        }
        let free = permits.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            match notifier.store.claim_notifications(now(), free, lease).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming notifications failed");
                    Vec::new()
                }
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = notifier.store.outbox_written() => {}
                _ = stop.changed() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
            continue;
        }
        let now_ms = now().timestamp_millis();
        let mut held = Vec::new();
        for c in claimed {
            let ready = notifier
                .channel(&mut channels, c.workspace_id, c.channel_id)
                .await;
            let ready = match ready {
                Ok(Some(r)) => r,
                Ok(None) => {
                    let _ = record_tx
                        .send(refused(&c, "the channel was deleted or disabled"))
                        .await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, channel = c.channel_id, "cannot load channel");
                    let _ = record_tx.send(retry_later(&settings, &c, &e)).await;
                    continue;
                }
            };
            if c.event != "digest" && !storm.admit(&ready.channel, now_ms) {
                held.push(c.id);
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (n, tx, s) = (notifier.clone(), record_tx.clone(), settings.clone());
            tasks.spawn(async move {
                let record = n.deliver(&s, &c, &ready).await;
                let _ = tx.send(record).await;
                drop(permit);
            });
        }
        if !held.is_empty() {
            tracing::info!(held = held.len(), "notifications held by storm control");
            if let Err(e) = notifier.store.hold_notifications(&held).await {
                tracing::warn!(error = %e, "holding notifications failed; they will be retried");
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    drop(record_tx);
    let _ = recorder.await;
    tracing::debug!("notification dispatcher stopped");
}

/// Records attempts in batches until every sender is gone.
async fn record(notifier: Arc<Notifier>, mut rx: mpsc::Receiver<DeliveryRecord>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    loop {
        let Some(first) = rx.recv().await else { break };
        batch.push(first);
        let deadline = Instant::now() + RECORD_FLUSH;
        while batch.len() < RECORD_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                _ => break,
            }
        }
        notifier.store_records(&batch).await;
        batch.clear();
    }
}

impl Notifier {
    /// Records a batch of attempts, retrying a few times; on failure the leases expire and
    /// the notifications are delivered again (with the same idempotency keys).
    async fn store_records(&self, batch: &[DeliveryRecord]) {
        for attempt in 1..=5u32 {
            match self.store.record_deliveries(batch).await {
                Ok(()) => {
                    for r in batch {
                        self.metrics.notification_attempt(r.outcome.as_str());
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, n = batch.len(), "recording deliveries failed");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
            }
        }
        tracing::error!(
            n = batch.len(),
            "recording deliveries failed repeatedly; they will be retried after their lease"
        );
    }

    /// The channel of a notification (cached briefly), `None` when deleted or disabled.
    async fn channel(
        &self,
        cache: &mut HashMap<i64, Ready>,
        ws: WorkspaceId,
        id: i64,
    ) -> Result<Option<Ready>, String> {
        if let Some(r) = cache.get(&id)
            && r.at.elapsed() < CHANNEL_TTL
        {
            return Ok(Some(r.clone()));
        }
        let channel = self
            .store
            .get_channel(ws, id)
            .await
            .map_err(|e| e.to_string())?;
        let Some(channel) = channel.filter(|c| c.spec.enabled) else {
            cache.remove(&id);
            return Ok(None);
        };
        let config = self
            .secrets
            .reveal(&channel.spec.config)
            .map(|v| v.to_string())
            .map_err(|e| format!("a secret of the channel config cannot be decrypted: {e}"));
        let ready = Ready {
            channel,
            config,
            at: Instant::now(),
        };
        cache.insert(id, ready.clone());
        Ok(Some(ready))
    }

    /// Delivers one claimed notification and says what to record.
    async fn deliver(
        &self,
        settings: &AlertingSection,
        c: &Claimed,
        ready: &Ready,
    ) -> DeliveryRecord {
        let started_at = now();
        let started = Instant::now();
        let attempt = c.attempts + 1;
        let config = match &ready.config {
            Ok(c) => c.clone(),
            Err(e) => return refused(c, e),
        };
        let resolved = match self
            .catalog
            .resolve_notifier(c.workspace_id, &ready.channel.spec.plugin)
        {
            Ok(r) => r,
            Err(e) => {
                // A disabled or not yet granted plugin may come back: retry with backoff.
                return outcome_record(
                    settings,
                    c,
                    attempt,
                    started_at,
                    0.0,
                    DeliveryOutcome::Transient(e.to_string()),
                );
            }
        };
        let rendered = render(
            &c.event,
            &c.payload,
            &c.idempotency_key,
            started_at,
            &self.links,
        );
        let delivery = self
            .runtime
            .deliver(
                &resolved.plugin,
                &resolved.sandbox,
                DeliverInput {
                    config,
                    title: rendered.title,
                    body: rendered.body,
                    event: rendered.event,
                    idempotency_key: c.idempotency_key.clone(),
                    attempt,
                    timeout: Duration::from_millis(settings.delivery_timeout_ms),
                    test: false,
                    channel: ready.channel.spec.name.clone(),
                },
            )
            .await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        match &delivery.outcome {
            DeliveryOutcome::Delivered { .. } => tracing::debug!(
                notification = c.id,
                channel = %ready.channel.spec.name,
                "notification delivered"
            ),
            other => tracing::warn!(
                notification = c.id,
                channel = %ready.channel.spec.name,
                attempt,
                outcome = other.as_str(),
                reason = other.message(),
                "notification delivery failed"
            ),
        }
        outcome_record(settings, c, attempt, started_at, elapsed, delivery.outcome)
    }

    /// Queues due reminders and turns finished storm windows into digests.
    async fn housekeeping(&self, channels: &mut HashMap<i64, Ready>) {
        let windows = self.maintenance_windows().await;
        let at = now();
        let in_maintenance = |ws: WorkspaceId, monitor: i64, tags: &[String]| {
            windows.iter().any(|w| {
                w.workspace_id == ws
                    && w.spec.enabled
                    && w.spec.covers(monitor, tags)
                    && w.spec.is_active_at(at)
            })
        };
        match self.store.queue_reminders(at, 500, in_maintenance).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(incidents = n, "reminders queued"),
            Err(e) => tracing::warn!(error = %e, "queueing reminders failed"),
        }
        let held = match self.store.channels_with_held().await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "looking for held notifications failed");
                return;
            }
        };
        let now_ms = at.timestamp_millis();
        for (ws, channel_id, newest) in held {
            let window = match self.channel(channels, ws, channel_id).await {
                Ok(Some(r)) => r.channel.spec.storm_window_secs,
                // A deleted or disabled channel's held notifications still end in a digest
                // record (it then fails as "channel deleted or disabled").
                _ => 0,
            };
            if newest.timestamp_millis() >= window_start(now_ms, window) {
                continue; // the window that held them is still running
            }
            match self.store.create_digest(ws, channel_id, at, window).await {
                Ok(Some(id)) => tracing::info!(channel = channel_id, digest = id, "digest queued"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "creating a digest failed"),
            }
        }
    }

    /// Every maintenance window of every workspace (small; read once per housekeeping round).
    async fn maintenance_windows(&self) -> Vec<crate::model::MaintenanceWindow> {
        match self
            .store
            .list_maintenance_windows(crate::model::DEFAULT_WORKSPACE)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "reading maintenance windows failed");
                Vec::new()
            }
        }
    }
}

/// The current time at the store's precision.
fn now() -> Timestamp {
    chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_else(Utc::now)
}

/// A permanent failure decided before calling the plugin.
fn refused(c: &Claimed, why: &str) -> DeliveryRecord {
    DeliveryRecord {
        notification_id: c.id,
        attempt: c.attempts + 1,
        started_at: now(),
        duration_ms: 0.0,
        outcome: AttemptOutcome::Permanent,
        message: why.to_string(),
        external_id: None,
        retry_at: None,
    }
}

/// A transient failure before calling the plugin (the store failed).
fn retry_later(settings: &AlertingSection, c: &Claimed, why: &str) -> DeliveryRecord {
    outcome_record(
        settings,
        c,
        c.attempts + 1,
        now(),
        0.0,
        DeliveryOutcome::Transient(why.to_string()),
    )
}

/// What to record for an attempt's outcome: retry time for transient failures until the
/// attempts run out.
fn outcome_record(
    settings: &AlertingSection,
    c: &Claimed,
    attempt: u32,
    started_at: Timestamp,
    duration_ms: f64,
    outcome: DeliveryOutcome,
) -> DeliveryRecord {
    let (kind, message, external_id) = match outcome {
        DeliveryOutcome::Delivered {
            message,
            external_id,
        } => (AttemptOutcome::Delivered, message, external_id),
        DeliveryOutcome::Transient(m) => (AttemptOutcome::Transient, m, None),
        DeliveryOutcome::Permanent(m) => (AttemptOutcome::Permanent, m, None),
    };
    let retry_at =
        (kind == AttemptOutcome::Transient && attempt < settings.max_attempts).then(|| {
            let pause = chrono::Duration::from_std(backoff(settings, attempt))
                .unwrap_or(chrono::Duration::MAX);
            now() + pause
        });
    DeliveryRecord {
        notification_id: c.id,
        attempt,
        started_at,
        duration_ms,
        outcome: kind,
        message,
        external_id,
        retry_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChannelSpec;

    fn settings() -> AlertingSection {
        AlertingSection {
            retry_base_ms: 1000,
            retry_max_ms: 10_000,
            ..AlertingSection::default()
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let s = settings();
        for _ in 0..50 {
            let b1 = backoff(&s, 1).as_millis();
            assert!((500..=1000).contains(&b1), "{b1}");
            let b3 = backoff(&s, 3).as_millis();
            assert!((2000..=4000).contains(&b3), "{b3}");
            let b9 = backoff(&s, 9).as_millis();
            assert!((5000..=10_000).contains(&b9), "{b9}");
            let huge = backoff(&s, 500).as_millis();
            assert!((5000..=10_000).contains(&huge), "{huge}");
        }
    }

    fn channel(limit: u32, window: u32) -> Channel {
        Channel {
            id: 9,
            workspace_id: 1,
            spec: ChannelSpec {
                name: "c".into(),
                plugin: "webhook".into(),
                config: serde_json::json!({}),
                enabled: true,
                is_default: false,
                tags: vec![],
                storm_limit: limit,
                storm_window_secs: window,
            },
            revision: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn storm_caps_per_window() {
        let mut storm = Storm::default();
        let c = channel(2, 60);
        let t: i64 = 1_800_000_020_000 - 1_800_000_020_000 % 60_000;
        assert!(storm.admit(&c, t));
        assert!(storm.admit(&c, t + 10));
        assert!(!storm.admit(&c, t + 20));
        assert!(!storm.admit(&c, t + 59_999));
        assert!(
            storm.admit(&c, t + 60_000),
            "a new window starts a new count"
        );
        let unlimited = channel(0, 60);
        for i in 0..100 {
            assert!(storm.admit(&unlimited, t + i));
        }
    }

    #[test]
    fn transient_failures_retry_until_attempts_run_out() {
        let s = AlertingSection {
            max_attempts: 3,
            ..settings()
        };
        let c = Claimed {
            id: 1,
            workspace_id: 1,
            channel_id: 2,
            incident_id: None,
            monitor_id: None,
            event: "opened".into(),
            idempotency_key: "k".into(),
            payload: serde_json::json!({}),
            attempts: 0,
            created_at: Utc::now(),
        };
        let t = |attempt| {
            outcome_record(
                &s,
                &c,
                attempt,
                now(),
                1.0,
                DeliveryOutcome::Transient("x".into()),
            )
        };
        assert!(t(1).retry_at.is_some());
        assert!(t(2).retry_at.is_some());
        assert!(t(3).retry_at.is_none(), "the third failure is the last");
        let p = outcome_record(
            &s,
            &c,
            1,
            now(),
            1.0,
            DeliveryOutcome::Permanent("no".into()),
        );
        assert_eq!(p.outcome, AttemptOutcome::Permanent);
        assert!(p.retry_at.is_none());
        let d = outcome_record(
            &s,
            &c,
            1,
            now(),
            1.0,
            DeliveryOutcome::Delivered {
                message: "HTTP 200".into(),
                external_id: Some("m1".into()),
            },
        );
        assert_eq!(d.outcome, AttemptOutcome::Delivered);
        assert_eq!(d.external_id.as_deref(), Some("m1"));
    }
}
