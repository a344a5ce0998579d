//! The plugin catalog: built-in plugins (embedded in the binary) and uploaded ones (stored by
//! digest), check and notifier plugins alike, loaded into the runtime, with their grants;
//! resolves a monitor's (or a channel's) plugin reference (`name` = latest enabled version,
//! `name@version` = pinned) to something runnable of the right kind.
//!
//! The catalog is held in memory (mirroring the store) so resolving a reference, which happens
//! for every check, is a read lock and two hash lookups.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use chrono::SubsecRound;
use serde::Serialize;
use utoipa::ToSchema;

use crate::model::{StoredPlugin, WorkspaceId};
use crate::runtime::{Capability, Grants, LoadError, Plugin, PluginKind, Runtime, Sandbox};
use crate::store::{Store, StoreError};

/// Where a plugin comes from and whether it may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    /// Granted and enabled: monitors may use it.
    Active,
    /// Uploaded, waiting for an admin to grant its capabilities.
    AwaitingGrant,
    /// Disabled by an admin (or stored but no longer loadable).
    Disabled,
}

/// One plugin version as the API lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginEntry {
    pub name: String,
    pub version: String,
    /// `check` or `notifier`.
    pub kind: String,
    pub description: String,
    pub digest: String,
    pub size: i64,
    pub builtin: bool,
    pub enabled: bool,
    pub state: PluginState,
    /// Capabilities the plugin declared.
    #[schema(value_type = Vec<String>)]
    pub capabilities: Vec<Capability>,
    /// What an admin granted (built-ins: everything they declare).
    #[schema(value_type = Option<Object>)]
    pub grants: Option<Grants>,
    /// JSON Schema of the plugin's config.
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A plugin reference resolved to a loaded component and its sandbox.
#[derive(Clone)]
pub struct Resolved {
    pub plugin: Arc<Plugin>,
    pub sandbox: Sandbox,
}

/// What an upload asks to be granted at once (`?grant=all` or a narrowed list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRequest {
    /// Everything the plugin declares, no host narrowing.
    All,
    /// Exactly these grants (must be a subset of what the plugin declares).
    Exactly(Grants),
}

/// Why a catalog operation failed. Each variant maps to one stable API error code.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No such plugin (or version).
    #[error("no plugin `{0}`")]
    NotFound(String),
    /// The referenced version exists but is disabled or not granted.
    #[error("plugin `{0}` is not active: {1}")]
    NotActive(String, &'static str),
    /// The bytes are not a usable plugin component.
    #[error("invalid plugin component: {0}")]
    Invalid(#[from] LoadError),
    /// The plugin is of the wrong kind for this use (a notifier as a check, or the reverse):
    /// the reference, the kind it is, the kind wanted.
    #[error("plugin `{0}` is a {1} plugin, not a {2} plugin")]
    WrongKind(String, PluginKind, PluginKind),
    /// `name@version` is already stored with different bytes.
    #[error("plugin {0} already exists with different content (digest {1})")]
    VersionConflict(String, String),
    /// The name is a built-in plugin's; built-ins cannot be replaced, changed or deleted.
    #[error("`{0}` is a built-in plugin and cannot be changed")]
    Builtin(String),
    /// Monitors still use the plugin version.
    #[error("plugin {0} is used by {1} monitor(s)")]
    InUse(String, i64),
    /// A grant names a capability the plugin did not declare.
    #[error("cannot grant `{0}`: the plugin does not declare it")]
    UndeclaredGrant(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a version that exists cannot run.
const REASON_AWAITING_GRANT: &str = "awaiting grant";
const REASON_DISABLED: &str = "disabled";
const REASON_UNLOADABLE: &str = "the stored component cannot be loaded";

/// How versions are ordered: semantic versions by precedence, anything else below them by
/// string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VersionKey {
    Semver(semver::Version),
    Other(String),
}

impl VersionKey {
    fn of(version: &str) -> Self {
        match semver::Version::parse(version) {
            Ok(v) => Self::Semver(v),
            Err(_) => Self::Other(version.to_string()),
        }
    }
}

impl Ord for VersionKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Semver(a), Self::Semver(b)) => a.cmp(b),
            (Self::Semver(_), Self::Other(_)) => Ordering::Greater,
            (Self::Other(_), Self::Semver(_)) => Ordering::Less,
            (Self::Other(a), Self::Other(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for VersionKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One plugin version in memory.
#[derive(Clone)]
struct Version {
    entry: PluginEntry,
    /// The loaded component; `None` for a stored upload that no longer loads.
    plugin: Option<Arc<Plugin>>,
    /// Set exactly when the version is active.
    runnable: Option<Resolved>,
    /// Why it cannot run, when it cannot.
    reason: &'static str,
    /// What the store holds (uploads only).
    stored: Option<StoredPlugin>,
}

impl Version {
    /// The plugin's kind: the loaded component's, else what the store recorded.
    fn kind(&self) -> Option<PluginKind> {
        match &self.plugin {
            Some(p) => Some(p.kind()),
            None => match self.entry.kind.as_str() {
                "check" => Some(PluginKind::Check),
                "notifier" => Some(PluginKind::Notifier),
                _ => None,
            },
        }
    }
}

type Versions = BTreeMap<VersionKey, Version>;

#[derive(Default)]
struct State {
    builtins: HashMap<String, Versions>,
    uploads: HashMap<WorkspaceId, HashMap<String, Versions>>,
}

impl State {
    /// The versions of `name` visible in `ws` (built-ins first: their names cannot be uploaded).
    fn versions(&self, ws: WorkspaceId, name: &str) -> Option<&Versions> {
        self.builtins
            .get(name)
            .or_else(|| self.uploads.get(&ws).and_then(|names| names.get(name)))
    }

    fn upload(&self, ws: WorkspaceId, name: &str, version: &str) -> Option<&Version> {
        self.uploads
            .get(&ws)?
            .get(name)?
            .get(&VersionKey::of(version))
    }
}

/// The catalog. Shared as `Arc<Catalog>`.
pub struct Catalog {
    runtime: Arc<Runtime>,
    store: Store,
    state: RwLock<State>,
    /// Serializes changes so the store and memory apply them in the same order.
    changes: tokio::sync::Mutex<()>,
}

impl Catalog {
    /// Loads the built-in plugins and every stored upload into the runtime.
    ///
    /// A stored upload that no longer loads is logged and listed as disabled; it does not stop
    /// the service.
    pub async fn load(runtime: Arc<Runtime>, store: Store) -> Result<Self, CatalogError> {
        let mut state = State::default();
        for dir in crate::builtin::names() {
            let Some(bytes) = crate::builtin::component(dir) else {
                continue;
            };
            let plugin = runtime.load(bytes).await?;
            let version = builtin_version(&runtime, plugin, dir);
            state
                .builtins
                .entry(version.entry.name.clone())
                .or_default()
                .insert(VersionKey::of(&version.entry.version), version);
        }
        let catalog = Self {
            runtime,
            store,
            state: RwLock::new(state),
            changes: tokio::sync::Mutex::new(()),
        };
        for stored in catalog.store.all_plugins().await? {
            let plugin = catalog.load_stored(&stored).await;
            catalog.install(stored, plugin);
        }
        Ok(catalog)
    }

    async fn load_stored(&self, stored: &StoredPlugin) -> Option<Arc<Plugin>> {
        let id = format!("{}@{}", stored.name, stored.version);
        let bytes = match self.store.plugin_bytes(&stored.digest).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                tracing::error!(plugin = %id, digest = %stored.digest, "stored plugin has no component bytes; listed as disabled");
                return None;
            }
            Err(e) => {
                tracing::error!(plugin = %id, error = %e, "cannot read a stored plugin; listed as disabled");
                return None;
            }
        };
        match self.runtime.load(&bytes).await {
            Ok(plugin)
                if plugin.info.name == stored.name && plugin.info.version == stored.version =>
            {
                Some(plugin)
            }
            Ok(plugin) => {
                tracing::error!(plugin = %id, describes = %plugin.id(), "stored plugin describes itself differently; listed as disabled");
                None
            }
            Err(e) => {
                tracing::error!(plugin = %id, error = %e, "stored plugin no longer loads; listed as disabled");
                None
            }
        }
    }

    /// Every plugin visible to the workspace: built-ins first, then uploads by name and version.
    pub fn list(&self, ws: WorkspaceId) -> Vec<PluginEntry> {
        let state = self.read();
        let mut builtins: Vec<&String> = state.builtins.keys().collect();
        builtins.sort();
        let mut out: Vec<PluginEntry> = builtins
            .into_iter()
            .filter_map(|name| state.builtins.get(name))
            .flat_map(|versions| versions.values().map(|v| v.entry.clone()))
            .collect();
        if let Some(names) = state.uploads.get(&ws) {
            let mut uploaded: Vec<&String> = names.keys().collect();
            uploaded.sort();
            out.extend(
                uploaded
                    .into_iter()
                    .filter_map(|name| names.get(name))
                    .flat_map(|versions| versions.values().map(|v| v.entry.clone())),
            );
        }
        out
    }

    /// One plugin version.
    pub fn get(&self, ws: WorkspaceId, name: &str, version: &str) -> Option<PluginEntry> {
        self.read()
            .versions(ws, name)?
            .get(&VersionKey::of(version))
            .map(|v| v.entry.clone())
    }

    /// Resolves `name` (latest active version by semver) or `name@version` to a runnable check
    /// plugin; a notifier plugin is [`CatalogError::WrongKind`].
    pub fn resolve(&self, ws: WorkspaceId, reference: &str) -> Result<Resolved, CatalogError> {
        self.resolve_kind(ws, reference, PluginKind::Check)
    }

    /// Resolves `name` (latest active version by semver) or `name@version` to a runnable
    /// notifier plugin; a check plugin is [`CatalogError::WrongKind`].
    pub fn resolve_notifier(
        &self,
        ws: WorkspaceId,
        reference: &str,
    ) -> Result<Resolved, CatalogError> {
        self.resolve_kind(ws, reference, PluginKind::Notifier)
    }

    fn resolve_kind(
        &self,
        ws: WorkspaceId,
        reference: &str,
        want: PluginKind,
    ) -> Result<Resolved, CatalogError> {
        let state = self.read();
        let (name, version) = match reference.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (reference, None),
        };
        let versions = state
            .versions(ws, name)
            .ok_or_else(|| CatalogError::NotFound(reference.to_string()))?;
        let wrong_kind = |is: PluginKind| CatalogError::WrongKind(reference.to_string(), is, want);
        match version {
            Some(version) => {
                let v = versions
                    .get(&VersionKey::of(version))
                    .ok_or_else(|| CatalogError::NotFound(reference.to_string()))?;
                match v.kind() {
                    Some(is) if is != want => Err(wrong_kind(is)),
                    _ => v
                        .runnable
                        .clone()
                        .ok_or_else(|| CatalogError::NotActive(reference.to_string(), v.reason)),
                }
            }
            None => {
                let of_kind = || versions.values().rev().filter(|v| v.kind() == Some(want));
                if let Some(r) = of_kind().find_map(|v| v.runnable.clone()) {
                    return Ok(r);
                }
                if let Some(latest) = of_kind().next() {
                    return Err(CatalogError::NotActive(
                        reference.to_string(),
                        latest.reason,
                    ));
                }
                match versions.values().rev().find_map(Version::kind) {
                    Some(is) => Err(wrong_kind(is)),
                    None => Err(CatalogError::NotActive(
                        reference.to_string(),
                        versions
                            .values()
                            .next_back()
                            .map(|v| v.reason)
                            .unwrap_or(REASON_DISABLED),
                    )),
                }
            }
        }
    }

    /// Validates and stores an uploaded component: it must be a component of a supported world
    /// (check or notifier) whose `describe()` works within limits; `name@version` may not exist
    /// with other bytes (the same bytes again return the existing entry). Installed disabled
    /// unless `grant` is set.
    pub async fn upload(
        &self,
        ws: WorkspaceId,
        bytes: &[u8],
        grant: Option<GrantRequest>,
    ) -> Result<PluginEntry, CatalogError> {
        let plugin = self.runtime.load(bytes).await?;
        let _change = self.changes.lock().await;
        let name = plugin.info.name.clone();
        let version = plugin.info.version.clone();
        if self.read().builtins.contains_key(&name) {
            return Err(CatalogError::Builtin(name));
        }
        if let Some(existing) = self.read().upload(ws, &name, &version) {
            return same_bytes(existing.entry.clone(), &plugin.digest);
        }
        let grants = grant
            .map(|g| grants_for(plugin.declared(), g))
            .transpose()?;
        let stored = StoredPlugin {
            workspace_id: ws,
            name: name.clone(),
            version: version.clone(),
            digest: plugin.digest.clone(),
            kind: kind_name(plugin.info.kind).to_string(),
            description: plugin.info.description.clone(),
            config_schema: plugin.info.config_schema.clone(),
            capabilities: plugin
                .info
                .capabilities
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            enabled: grants.is_some(),
            grants,
            size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            created_at: chrono::Utc::now().trunc_subsecs(3),
        };
        match self.store.insert_plugin(&stored, bytes).await {
            Ok(()) => {}
            Err(StoreError::Conflict(what)) => {
                // Another upload of the same name@version won the race.
                let Some(winner) = self.store.get_plugin(ws, &name, &version).await? else {
                    return Err(StoreError::Conflict(what).into());
                };
                let entry = if winner.digest == plugin.digest {
                    self.install(winner, Some(plugin.clone()))
                } else {
                    upload_entry(&winner, true)
                };
                return same_bytes(entry, &plugin.digest);
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(plugin = %plugin.id(), digest = %plugin.digest, workspace = ws, granted = stored.enabled, "plugin uploaded");
        Ok(self.install(stored, Some(plugin)))
    }

    /// Grants capabilities to an uploaded version and enables it.
    pub async fn grant(
        &self,
        ws: WorkspaceId,
        name: &str,
        version: &str,
        grant: GrantRequest,
    ) -> Result<PluginEntry, CatalogError> {
        let _change = self.changes.lock().await;
        let (mut stored, plugin) = self.uploaded(ws, name, version)?;
        let declared: BTreeSet<Capability> = match &plugin {
            Some(p) => p.declared().clone(),
            None => stored
                .capabilities
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
        };
        let grants = grants_for(&declared, grant)?;
        if !self
            .store
            .set_plugin_grants(ws, name, version, &grants)
            .await?
            || !self
                .store
                .set_plugin_enabled(ws, name, version, true)
                .await?
        {
            return Err(CatalogError::NotFound(format!("{name}@{version}")));
        }
        tracing::info!(plugin = %format!("{name}@{version}"), workspace = ws, ?grants, "plugin granted");
        stored.grants = Some(grants);
        stored.enabled = true;
        Ok(self.install(stored, plugin))
    }

    /// Enables or disables an uploaded version (enabling requires a grant).
    pub async fn set_enabled(
        &self,
        ws: WorkspaceId,
        name: &str,
        version: &str,
        enabled: bool,
    ) -> Result<PluginEntry, CatalogError> {
        let _change = self.changes.lock().await;
        let (mut stored, plugin) = self.uploaded(ws, name, version)?;
        let id = format!("{name}@{version}");
        if enabled && stored.grants.is_none() {
            return Err(CatalogError::NotActive(id, REASON_AWAITING_GRANT));
        }
        if enabled && plugin.is_none() {
            return Err(CatalogError::NotActive(id, REASON_UNLOADABLE));
        }
        if !self
            .store
            .set_plugin_enabled(ws, name, version, enabled)
            .await?
        {
            return Err(CatalogError::NotFound(id));
        }
        stored.enabled = enabled;
        Ok(self.install(stored, plugin))
    }

    /// Deletes an uploaded version unless monitors use it.
    ///
    /// Monitors pinning `name@version` always count; monitors following `name` count only when
    /// this version is the only active one (deleting another leaves them a version to run).
    pub async fn delete(
        &self,
        ws: WorkspaceId,
        name: &str,
        version: &str,
    ) -> Result<(), CatalogError> {
        let id = format!("{name}@{version}");
        let _change = self.changes.lock().await;
        self.uploaded(ws, name, version)?;
        let usage = self.store.plugin_usage(ws, name, version).await?;
        let mut users = usage.pinned;
        if usage.unpinned > 0 && self.only_active_version(ws, name, version) {
            users += usage.unpinned;
        }
        if users > 0 {
            return Err(CatalogError::InUse(id, users));
        }
        if !self.store.delete_plugin(ws, name, version).await? {
            return Err(CatalogError::NotFound(id));
        }
        let mut state = self.write();
        if let Some(names) = state.uploads.get_mut(&ws) {
            if let Some(versions) = names.get_mut(name) {
                versions.remove(&VersionKey::of(version));
                if versions.is_empty() {
                    names.remove(name);
                }
            }
            if names.is_empty() {
                state.uploads.remove(&ws);
            }
        }
        tracing::info!(plugin = %id, workspace = ws, "plugin deleted");
        Ok(())
    }

    /// Whether `name@version` is active and no other version of `name` is.
    fn only_active_version(&self, ws: WorkspaceId, name: &str, version: &str) -> bool {
        let state = self.read();
        let Some(versions) = state.versions(ws, name) else {
            return false;
        };
        let key = VersionKey::of(version);
        let this_active = versions.get(&key).is_some_and(|v| v.runnable.is_some());
        let others_active = versions
            .iter()
            .any(|(k, v)| *k != key && v.runnable.is_some());
        this_active && !others_active
    }

    /// An uploaded version's stored row and loaded component; built-ins and unknown versions
    /// are refused.
    fn uploaded(
        &self,
        ws: WorkspaceId,
        name: &str,
        version: &str,
    ) -> Result<(StoredPlugin, Option<Arc<Plugin>>), CatalogError> {
        let state = self.read();
        if state.builtins.contains_key(name) {
            return Err(CatalogError::Builtin(name.to_string()));
        }
        state
            .upload(ws, name, version)
            .and_then(|v| v.stored.clone().map(|s| (s, v.plugin.clone())))
            .ok_or_else(|| CatalogError::NotFound(format!("{name}@{version}")))
    }

    /// Puts an upload into memory as stored, with its sandbox when it is active.
    fn install(&self, stored: StoredPlugin, plugin: Option<Arc<Plugin>>) -> PluginEntry {
        let entry = upload_entry(&stored, plugin.is_some());
        let runnable = match (&plugin, entry.state, &stored.grants) {
            (Some(p), PluginState::Active, Some(grants)) => Some(Resolved {
                plugin: p.clone(),
                sandbox: self.runtime.sandbox(p, grants),
            }),
            _ => None,
        };
        let reason = match (&plugin, entry.state) {
            (None, _) => REASON_UNLOADABLE,
            (_, PluginState::AwaitingGrant) => REASON_AWAITING_GRANT,
            _ => REASON_DISABLED,
        };
        let key = VersionKey::of(&stored.version);
        let ws = stored.workspace_id;
        let name = stored.name.clone();
        let version = Version {
            entry: entry.clone(),
            plugin,
            runnable,
            reason,
            stored: Some(stored),
        };
        self.write()
            .uploads
            .entry(ws)
            .or_default()
            .entry(name)
            .or_default()
            .insert(key, version);
        entry
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The existing entry when it has these bytes, else a version conflict.
fn same_bytes(existing: PluginEntry, digest: &str) -> Result<PluginEntry, CatalogError> {
    if existing.digest == digest {
        Ok(existing)
    } else {
        Err(CatalogError::VersionConflict(
            format!("{}@{}", existing.name, existing.version),
            existing.digest,
        ))
    }
}

/// The grants a request stands for, refusing capabilities the plugin did not declare.
fn grants_for(
    declared: &BTreeSet<Capability>,
    request: GrantRequest,
) -> Result<Grants, CatalogError> {
    match request {
        GrantRequest::All => Ok(Grants::all_of(declared.iter().copied())),
        GrantRequest::Exactly(grants) => {
            if let Some(undeclared) = grants.capabilities.iter().find(|c| !declared.contains(c)) {
                return Err(CatalogError::UndeclaredGrant(undeclared.to_string()));
            }
            Ok(grants)
        }
    }
}

fn kind_name(kind: PluginKind) -> &'static str {
    kind.as_str()
}

/// The grants of a built-in plugin: every capability it declares; a built-in notifier of a
/// hosted service is pinned to that vendor's hosts (`crate::builtin::pinned_hosts`).
pub fn builtin_grants(plugin: &Plugin, dir: &str) -> Grants {
    let mut grants = Grants::all_of(plugin.declared().iter().copied());
    if plugin.kind() == PluginKind::Notifier {
        grants.allowed_hosts = crate::builtin::pinned_hosts(&plugin.info.name)
            .or_else(|| crate::builtin::pinned_hosts(dir))
            .map(|hosts| hosts.iter().map(|h| (*h).to_string()).collect());
    }
    grants
}

/// A built-in plugin (from `plugins/<dir>`): active, with [`builtin_grants`].
fn builtin_version(runtime: &Runtime, plugin: Arc<Plugin>, dir: &str) -> Version {
    let grants = builtin_grants(&plugin, dir);
    let sandbox = runtime.sandbox(&plugin, &grants);
    let entry = PluginEntry {
        name: plugin.info.name.clone(),
        version: plugin.info.version.clone(),
        kind: kind_name(plugin.info.kind).to_string(),
        description: plugin.info.description.clone(),
        digest: plugin.digest.clone(),
        size: i64::try_from(plugin.size).unwrap_or(i64::MAX),
        builtin: true,
        enabled: true,
        state: PluginState::Active,
        capabilities: plugin.info.capabilities.clone(),
        grants: Some(grants),
        config_schema: plugin.info.config_schema.clone(),
        created_at: None,
    };
    Version {
        entry,
        runnable: Some(Resolved {
            sandbox,
            plugin: plugin.clone(),
        }),
        plugin: Some(plugin),
        reason: REASON_DISABLED,
        stored: None,
    }
}

/// The listing of a stored upload; `loaded` is false when its component no longer loads.
fn upload_entry(stored: &StoredPlugin, loaded: bool) -> PluginEntry {
    let state = if !loaded {
        PluginState::Disabled
    } else if stored.grants.is_none() {
        PluginState::AwaitingGrant
    } else if !stored.enabled {
        PluginState::Disabled
    } else {
        PluginState::Active
    };
    PluginEntry {
        name: stored.name.clone(),
        version: stored.version.clone(),
        kind: stored.kind.clone(),
        description: stored.description.clone(),
        digest: stored.digest.clone(),
        size: stored.size,
        builtin: false,
        enabled: stored.enabled && loaded,
        state,
        capabilities: stored
            .capabilities
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect(),
        grants: stored.grants.clone(),
        config_schema: stored.config_schema.clone(),
        created_at: Some(stored.created_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(versions: &[&str]) -> Vec<String> {
        let mut keys: Vec<VersionKey> = versions.iter().map(|v| VersionKey::of(v)).collect();
        keys.sort();
        keys.into_iter()
            .map(|k| match k {
                VersionKey::Semver(v) => v.to_string(),
                VersionKey::Other(s) => s,
            })
            .collect()
    }

    #[test]
    fn versions_sort_by_semver_then_others_below() {
        assert_eq!(
            keys(&[
                "1.10.0",
                "1.2.0",
                "2.0.0-beta.1",
                "2.0.0",
                "0.9.9",
                "01.0.0",
                "1.0.0-alpha"
            ]),
            vec![
                "01.0.0",
                "0.9.9",
                "1.0.0-alpha",
                "1.2.0",
                "1.10.0",
                "2.0.0-beta.1",
                "2.0.0"
            ]
        );
        assert_eq!(VersionKey::of("1.2.3"), VersionKey::of("1.2.3"));
    }

    #[test]
    fn grants_must_be_declared() {
        let declared: BTreeSet<Capability> =
            [Capability::Http, Capability::Dns].into_iter().collect();
        assert_eq!(
            grants_for(&declared, GrantRequest::All)
                .ok()
                .map(|g| g.capabilities),
            Some(declared.clone())
        );
        let narrowed = Grants {
            capabilities: [Capability::Http].into_iter().collect(),
            allowed_hosts: Some(vec!["*.example.com".into()]),
        };
        let got = grants_for(&declared, GrantRequest::Exactly(narrowed.clone()));
        assert_eq!(got.ok(), Some(narrowed));
        let too_much = Grants::all_of([Capability::Http, Capability::Tcp]);
        match grants_for(&declared, GrantRequest::Exactly(too_much)) {
            Err(CatalogError::UndeclaredGrant(c)) => assert_eq!(c, "tcp"),
            other => panic!("expected UndeclaredGrant, got {other:?}"),
        }
        // Nothing at all is a valid (if useless) grant.
        assert!(grants_for(&declared, GrantRequest::Exactly(Grants::default())).is_ok());
    }

    #[test]
    fn upload_state_follows_grants_enabled_and_loadability() {
        let mut stored = StoredPlugin {
            workspace_id: 1,
            name: "x".into(),
            version: "1.0.0".into(),
            digest: "d".into(),
            kind: "check".into(),
            description: String::new(),
            config_schema: serde_json::json!({}),
            capabilities: vec!["http".into(), "bogus".into()],
            grants: None,
            enabled: false,
            size: 1,
            created_at: chrono::Utc::now(),
        };
        assert_eq!(
            upload_entry(&stored, true).state,
            PluginState::AwaitingGrant
        );
        assert_eq!(
            upload_entry(&stored, true).capabilities,
            vec![Capability::Http]
        );
        stored.grants = Some(Grants::all_of([Capability::Http]));
        assert_eq!(upload_entry(&stored, true).state, PluginState::Disabled);
        stored.enabled = true;
        assert_eq!(upload_entry(&stored, true).state, PluginState::Active);
        let broken = upload_entry(&stored, false);
        assert_eq!(broken.state, PluginState::Disabled);
        assert!(!broken.enabled);
    }
}
