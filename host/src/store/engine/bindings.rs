//! Which channels a notification of a monitor goes to: the enabled channels of its workspace
//! that the monitor names (`monitor_channels`), that are default, or that share a tag with it.

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;

use super::super::rows::{self, get};
use super::super::{CHUNK, R, params};
use super::Engine;
use super::state::{EngineMonitor, load_tags};
use crate::model::WorkspaceId;

/// A channel that may be bound to monitors of its workspace.
#[derive(Debug, Clone)]
pub(in crate::store) struct ChannelBinding {
    pub(in crate::store) id: i64,
    is_default: bool,
    tags: Vec<String>,
}

impl ChannelBinding {
    /// True when the channel notifies for a monitor naming `explicit` channels and carrying
    /// `tags`: it is named, default, or shares a tag.
    pub(in crate::store) fn binds(&self, explicit: Option<&HashSet<i64>>, tags: &[String]) -> bool {
        self.is_default
            || explicit.is_some_and(|e| e.contains(&self.id))
            || self.tags.iter().any(|t| tags.contains(t))
    }
}

/// The channels each of `ids` names explicitly (`monitor_channels`).
pub(in crate::store) async fn explicit_channels(
    conn: &mut AnyConnection,
    backend: super::super::Backend,
    ids: &[i64],
) -> R<HashMap<i64, HashSet<i64>>> {
    let mut explicit: HashMap<i64, HashSet<i64>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT monitor_id, channel_id FROM monitor_channels WHERE monitor_id IN ({})",
            params(backend, chunk.len())
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for i in chunk {
            q = q.bind(*i);
        }
        for row in q.fetch_all(&mut *conn).await? {
            explicit
                .entry(get(&row, "monitor_channels.monitor_id")?)
                .or_default()
                .insert(get(&row, "monitor_channels.channel_id")?);
        }
    }
    Ok(explicit)
}

/// The enabled channels of a workspace, ids ascending (channels whose tags cannot be read
/// are kept, bound by default flag and name only).
pub(in crate::store) async fn enabled_channels(
    conn: &mut AnyConnection,
    ws: WorkspaceId,
) -> R<Vec<ChannelBinding>> {
    let rows = sqlx::query(
        "SELECT id, is_default, tags FROM channels WHERE workspace_id = $1 AND enabled = 1 \
         ORDER BY id",
    )
    .bind(ws)
    .fetch_all(&mut *conn)
    .await?;
    let mut list = Vec::with_capacity(rows.len());
    for row in rows {
        let id = get::<i64>(&row, "channels.id")?;
        let tags = rows::json::<Vec<String>>(&row, "channels.tags").unwrap_or_else(|e| {
            tracing::warn!(channel = id, error = %e, "unreadable channel tags; ignored");
            Vec::new()
        });
        list.push(ChannelBinding {
            id,
            is_default: get::<i64>(&row, "channels.is_default")? == 1,
            tags,
        });
    }
    Ok(list)
}

impl Engine {
    /// The channels bound to monitor `id` (`m`, taken out of the map), ids ascending.
    pub(super) async fn bound_channels(
        &mut self,
        conn: &mut AnyConnection,
        id: i64,
        m: &mut EngineMonitor,
    ) -> R<Vec<i64>> {
        let ws = m.workspace_id;
        let channels = match self.channels.remove(&ws) {
            Some(list) => list,
            None => enabled_channels(conn, ws).await?,
        };
        if !channels.is_empty() && self.explicit.is_none() {
            let loaded = self.load_bindings(conn, id, m).await;
            if let Err(e) = loaded {
                self.channels.insert(ws, channels);
                return Err(e);
            }
        }
        let tags = m.tags.as_deref().unwrap_or(&[]);
        let explicit = self.explicit.as_ref().and_then(|e| e.get(&id));
        let bound = channels
            .iter()
            .filter(|c| c.binds(explicit, tags))
            .map(|c| c.id)
            .collect();
        self.channels.insert(ws, channels);
        Ok(bound)
    }

    /// Loads the channels every monitor of the batch names, and the tags of those whose tags
    /// are not loaded yet (`m`, taken out of the map, included): once per batch, so a mass
    /// outage costs two queries rather than two per monitor.
    async fn load_bindings(
        &mut self,
        conn: &mut AnyConnection,
        id: i64,
        m: &mut EngineMonitor,
    ) -> R<()> {
        let mut ids: Vec<i64> = self.monitors.keys().copied().chain([id]).collect();
        ids.sort_unstable();
        ids.dedup();
        self.explicit = Some(explicit_channels(conn, self.backend, &ids).await?);
        let untagged: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| {
                if *i == id {
                    m.tags.is_none()
                } else {
                    self.monitors.get(i).is_some_and(|o| o.tags.is_none())
                }
            })
            .collect();
        for chunk in untagged.chunks(CHUNK) {
            let mut tags = load_tags(conn, self.backend, chunk).await?;
            for i in chunk {
                let t = Some(tags.remove(i).unwrap_or_default());
                if *i == id {
                    m.tags = t;
                } else if let Some(o) = self.monitors.get_mut(i) {
                    o.tags = t;
                }
            }
        }
        Ok(())
    }
}
