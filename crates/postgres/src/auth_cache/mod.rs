//! The auth cache: what an authenticated request needs to know about its caller — the
//! role and grants of a user in a workspace (or that they are no member of it), and the
//! API key a lookup prefix names (or that none does) — the environments a request
//! names, a user as `GET /api/auth/me` shows them (their row and memberships), and a
//! workflow as `GET /api/workflows/{id}` shows it and `/run` resolves it, kept in each
//! process, so that a warm request spends no query on them.
//!
//! It sits behind the ports the use cases already call, as decorators: [`CachedMembers`]
//! wraps a `MemberRepository` and caches `access`; [`CachedApiKeys`] wraps an
//! `ApiKeyRepository` and caches `find_by_prefix`; [`CachedEnvironments`] wraps an
//! `EnvironmentRepository` and resolves environments from each workspace's cached names
//! and ids; [`CachedProfiles`] wraps `UserProfiles`; [`CachedWorkflows`] wraps a
//! `WorkflowRepository` and caches `find`; [`CachedWorkspaces`] and
//! [`CachedSsoDirectory`] wrap a `WorkspaceRepository` and an `SsoDirectory` only to
//! evict what their writes change. Everything else goes straight through.
//!
//! **Invalidation.** Every change of what it holds announces itself in the transaction
//! that makes it: triggers (migrations 16, 31, 33 and 34) send `NOTIFY fluxolab_auth` with a payload
//! naming what changed ([`Change::parse`]), so an API call, a cascade from a deleted user
//! or workspace, the seed or an operator's SQL are all announced — when they commit, and
//! not at all when they roll back. Each process keeps one connection `LISTEN`ing
//! ([`AuthCache::listen`]) and evicts what each announcement names, milliseconds after the
//! commit. The process that made a change through a decorator also evicts right after
//! its own commit, so the caller's next request sees the change whatever the listener's
//! delay.
//!
//! **Only while listening.** Until the listener listens, and from the moment its
//! connection breaks until it listens again, every lookup reads the database and nothing
//! is kept; when it listens again everything is dropped (announcements may have been
//! missed meanwhile). The time to live (`AUTH_CACHE_TTL_SECONDS`) is only a safety net.
//!
//! **No stale fill.** A lookup that misses reads the database and keeps the answer only
//! if no eviction happened since it began (a generation counter, bumped before each
//! eviction, checked before and again after the answer is stored): an answer read just
//! before a change committed is never left behind by the change's eviction.

/// Declares a decorator of the repository port `$port`: `pub struct $name` holding the
/// wrapped repository and the [`AuthCache`], a `Debug` that shows the cache only, and
/// `new(inner, cache)`.
macro_rules! cached_repository {
    ($(#[$meta:meta])* $name:ident wraps $port:path) => {
        $(#[$meta])*
        pub struct $name {
            inner: std::sync::Arc<dyn $port>,
            cache: super::AuthCache,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("cache", &self.cache)
                    .finish_non_exhaustive()
            }
        }

        impl $name {
            /// `inner` behind `cache`.
            pub fn new(inner: std::sync::Arc<dyn $port>, cache: super::AuthCache) -> Self {
                Self { inner, cache }
            }
        }
    };
}
use cached_repository;

mod api_keys;
mod environments;
mod listener;
mod members;
mod profiles;
mod sso;
#[cfg(test)]
mod tests;
mod workflows;

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fluxolab_identity::account::{Membership, User};
use fluxolab_kernel::{Permission, StorageError, Uow, UserId, WorkflowId, WorkspaceId};
use fluxolab_workflows::model::Workflow;
use fluxolab_workspace::Role;
use fluxolab_workspace::api_keys::StoredKey;
use moka::future::Cache;

use crate::unit_of_work::after_commit;
pub use api_keys::CachedApiKeys;
pub use environments::{CachedEnvironments, EnvironmentStore};
pub use members::CachedMembers;
pub use profiles::{CachedProfiles, CachedWorkspaces};
pub use sso::CachedSsoDirectory;
pub use workflows::CachedWorkflows;

/// The notification channel of auth changes.
pub const CHANNEL: &str = "fluxolab_auth";
/// The `application_name` of each process's listening connection (`pg_stat_activity`).
pub const LISTENER_APPLICATION_NAME: &str = "fluxolab auth listener";

/// How many entries the cache keeps and how long it trusts one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthCacheSettings {
    /// Entries kept in each of its maps (memberships, API keys, workspaces'
    /// environments, users' profiles, workflows).
    pub capacity: u64,
    /// The longest an entry is used, announced changes or not.
    pub ttl: Duration,
}

impl Default for AuthCacheSettings {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::from_secs(60),
        }
    }
}

/// A membership's role and grants; `None`: not a member.
type Access = Option<(Role, Vec<Permission>)>;

/// A user with their memberships; `None`: no such user.
type Profile = Option<Arc<(User, Vec<Membership>)>>;

/// What an announcement says changed, so what to evict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `member:<workspace>:<user>`: that membership was added, changed or removed (the
    /// user's profile goes too).
    Member {
        workspace: WorkspaceId,
        user: UserId,
    },
    /// `workspace:<id>`: the workspace was archived, restored or renamed (every
    /// membership and profile goes).
    Workspace(WorkspaceId),
    /// `user:<id>`: the user's e-mail, name or default workspace changed, or the user
    /// was deleted.
    User(UserId),
    /// `workflow:<id>`: the workflow, one of its versions or deployments changed.
    Workflow(WorkflowId),
    /// `api_key:<prefix>`: the key found by that lookup prefix changed.
    ApiKey(String),
    /// Some key changed, which one unknown here (this process's revocations and
    /// rotations): every key goes.
    ApiKeys,
    /// `environments:<workspace>`: an environment of that workspace was added, renamed,
    /// made the default or deleted (the workspace's workflows go too: their deployments
    /// name environments).
    Environments(WorkspaceId),
    /// `all`, or a payload this build cannot read: everything goes.
    Everything,
}

impl Change {
    /// Reads a payload of [`CHANNEL`]; one it does not understand evicts everything.
    pub fn parse(payload: &str) -> Self {
        let parsed = match payload.split_once(':') {
            Some(("member", ids)) => ids.split_once(':').and_then(|(workspace, user)| {
                Some(Change::Member {
                    workspace: workspace.parse().ok()?,
                    user: user.parse().ok()?,
                })
            }),
            Some(("workspace", id)) => id.parse().ok().map(Change::Workspace),
            Some(("user", id)) => id.parse().ok().map(Change::User),
            Some(("workflow", id)) => id.parse().ok().map(Change::Workflow),
            Some(("environments", id)) => id.parse().ok().map(Change::Environments),
            Some(("api_key", prefix)) if !prefix.is_empty() => {
                Some(Change::ApiKey(prefix.to_owned()))
            }
            _ => None,
        };
        parsed.unwrap_or(Change::Everything)
    }
}

/// The per-process auth cache; clones share it. See the module documentation.
#[derive(Clone)]
pub struct AuthCache {
    shared: Arc<Shared>,
}

struct Shared {
    members: Cache<(WorkspaceId, UserId), Access>,
    keys: Cache<String, Option<StoredKey>>,
    environments: Cache<WorkspaceId, Arc<Vec<environments::Known>>>,
    profiles: Cache<UserId, Profile>,
    /// Workflows found (never `None`: see [`CachedWorkflows`]).
    workflows: Cache<WorkflowId, Option<Arc<Workflow>>>,
    /// Bumped before every eviction.
    generation: AtomicU64,
    /// Whether the listener listens (the cache is used only then).
    listening: AtomicBool,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("listening", &self.is_listening())
            .field("members", &self.shared.members.entry_count())
            .field("keys", &self.shared.keys.entry_count())
            .field("environments", &self.shared.environments.entry_count())
            .field("profiles", &self.shared.profiles.entry_count())
            .field("workflows", &self.shared.workflows.entry_count())
            .finish()
    }
}

impl AuthCache {
    /// An empty cache, unused until [`AuthCache::listen`]'s listener listens.
    pub fn new(settings: AuthCacheSettings) -> Self {
        fn map<K, V>(settings: AuthCacheSettings) -> Cache<K, V>
        where
            K: Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            Cache::builder()
                .max_capacity(settings.capacity)
                .time_to_live(settings.ttl)
                .build()
        }
        Self {
            shared: Arc::new(Shared {
                members: map(settings),
                keys: map(settings),
                environments: map(settings),
                profiles: map(settings),
                // An environment's change drops its workspace's workflows only.
                workflows: Cache::builder()
                    .max_capacity(settings.capacity)
                    .time_to_live(settings.ttl)
                    .support_invalidation_closures()
                    .build(),
                generation: AtomicU64::new(0),
                listening: AtomicBool::new(false),
            }),
        }
    }

    /// Whether lookups are served from the cache (the listener listens).
    pub fn is_listening(&self) -> bool {
        self.shared.listening.load(Ordering::SeqCst)
    }

    /// The listener listens: whatever was cached before may have missed announcements,
    /// so it goes, and lookups use the cache from now on.
    fn listening_started(&self) {
        self.drop_everything();
        self.shared.listening.store(true, Ordering::SeqCst);
    }

    /// The listener lost its connection: lookups read the database until it listens
    /// again, and nothing cached so far is used again.
    fn listening_stopped(&self) {
        self.shared.listening.store(false, Ordering::SeqCst);
        self.drop_everything();
    }

    fn drop_everything(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        self.shared.members.invalidate_all();
        self.shared.keys.invalidate_all();
        self.shared.environments.invalidate_all();
        self.shared.profiles.invalidate_all();
        self.shared.workflows.invalidate_all();
    }

    /// Evicts what `change` names (in this process).
    pub async fn evict(&self, change: &Change) {
        let shared = &self.shared;
        shared.generation.fetch_add(1, Ordering::SeqCst);
        match change {
            Change::Member { workspace, user } => {
                shared.members.invalidate(&(*workspace, *user)).await;
                shared.profiles.invalidate(user).await;
            }
            Change::Workspace(_) => {
                shared.members.invalidate_all();
                shared.profiles.invalidate_all();
            }
            Change::User(user) => shared.profiles.invalidate(user).await,
            Change::Workflow(workflow) => shared.workflows.invalidate(workflow).await,
            Change::ApiKey(prefix) => shared.keys.invalidate(prefix).await,
            Change::ApiKeys => shared.keys.invalidate_all(),
            Change::Environments(workspace) => {
                shared.environments.invalidate(workspace).await;
                let workspace = *workspace;
                let of_workspace = move |_: &WorkflowId, found: &Option<Arc<Workflow>>| {
                    found
                        .as_ref()
                        .is_some_and(|workflow| workflow.workspace_id == workspace)
                };
                if shared
                    .workflows
                    .invalidate_entries_if(of_workspace)
                    .is_err()
                {
                    shared.workflows.invalidate_all();
                }
            }
            Change::Everything => self.drop_everything(),
        }
    }

    /// Evicts what `change` names in this process once `uow` commits (never if it rolls
    /// back), so the writer's next request sees its change whatever the listener's delay.
    fn evict_after_commit(&self, uow: &mut Uow, change: Change) -> Result<(), StorageError> {
        let cache = self.clone();
        after_commit(uow, async move { cache.evict(&change).await })
    }

    /// `key`'s value from `cache`, else from `load` — kept only while listening and if
    /// no eviction happened since the lookup began.
    async fn read_through<K, V>(
        &self,
        cache: &Cache<K, V>,
        key: K,
        load: impl Future<Output = Result<V, StorageError>>,
    ) -> Result<V, StorageError>
    where
        K: Clone + Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.read_through_kept(cache, key, load, |_| true).await
    }

    /// [`Self::read_through`], keeping only a loaded value that `keep` accepts.
    async fn read_through_kept<K, V>(
        &self,
        cache: &Cache<K, V>,
        key: K,
        load: impl Future<Output = Result<V, StorageError>>,
        keep: impl FnOnce(&V) -> bool,
    ) -> Result<V, StorageError>
    where
        K: Clone + Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if !self.is_listening() {
            return load.await;
        }
        if let Some(found) = cache.get(&key).await {
            return Ok(found);
        }
        let generation = &self.shared.generation;
        let began = generation.load(Ordering::SeqCst);
        let value = load.await?;
        if keep(&value) && self.is_listening() && generation.load(Ordering::SeqCst) == began {
            cache.insert(key.clone(), value.clone()).await;
            // An eviction that began between the check and the insert may have run
            // before the insert: then this answer goes too.
            if !self.is_listening() || generation.load(Ordering::SeqCst) != began {
                cache.invalidate(&key).await;
            }
        }
        Ok(value)
    }
}
