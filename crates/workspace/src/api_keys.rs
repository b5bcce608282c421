//! API keys: `flx_` secrets shown once, stored as SHA-256 with a lookup prefix, scoped to
//! a subset of their creator's permissions, revocable and rotatable (the old secret
//! stays valid for a grace period). Every change is audited with actor, IP and user
//! agent, and is an activity.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    Actor, ApiKeyId, AuditEvent, AuditLog, Clock, Conflict, ConflictCode, Cursor, Failure,
    Forbidden, LimitedResource, NoRandomness, Page, PageRequest, Permission, PlanGuard,
    PlanLimitReached, Principal, StorageError, UnitOfWorkFactory, Uow, UserId, ValidationErrors,
    WorkspaceId,
};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// What every key starts with.
pub const KEY_PREFIX: &str = "flx_";
/// Random characters after `flx_` (base62, from as many random bytes).
const SECRET_CHARS: usize = 48;
/// Characters of the key (with `flx_`) stored in clear for lookup.
const LOOKUP_CHARS: usize = 12;
/// The default and longest grace period of a rotation.
pub const DEFAULT_GRACE_SECONDS: i64 = 24 * 60 * 60;
pub const MAX_GRACE_SECONDS: i64 = 30 * 24 * 60 * 60;

/// An API key as stored (never its secret).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub prefix: String,
    pub last_four: String,
    pub scopes: Vec<Permission>,
    /// The environment the key acts in, by default and only there.
    pub environment: Option<fluxolab_kernel::EnvironmentRef>,
    pub created_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub previous_valid_until: Option<OffsetDateTime>,
}

impl ApiKey {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }

    /// `active`, `revoked` or `expired`, as of `now`.
    pub fn status(&self, now: OffsetDateTime) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|expires| expires <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// A new secret: the key shown once, and what is stored of it. Its `Debug` shows the
/// prefix and last four characters only.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    pub key: String,
    pub prefix: String,
    pub last_four: String,
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("key", &"[REDACTED]")
            .field("prefix", &self.prefix)
            .field("last_four", &self.last_four)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a presented key, as stored.
pub fn key_hash(key: &str) -> Vec<u8> {
    digest(&SHA256, key.as_bytes()).as_ref().to_vec()
}

/// The lookup prefix of a presented key.
pub fn lookup_prefix(key: &str) -> Option<&str> {
    key.get(..LOOKUP_CHARS)
        .filter(|_| key.starts_with(KEY_PREFIX))
}

fn new_secret() -> Result<Secret, NoRandomness> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0_u8; SECRET_CHARS];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| NoRandomness)?;
    let random: String = bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect();
    let key = format!("{KEY_PREFIX}{random}");
    Ok(Secret {
        prefix: key[..LOOKUP_CHARS].to_owned(),
        last_four: key[key.len() - 4..].to_owned(),
        hash: key_hash(&key),
        key,
    })
}

/// Where a request came from, for the audit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One line of a key's audit.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyAuditEntry {
    pub id: Uuid,
    pub key_id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    /// `created`, `rotated`, `revoked`…
    pub action: String,
    pub actor_user_id: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: Value,
    pub created_at: OffsetDateTime,
}

impl KeyAuditEntry {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// A key as authentication finds it by a presented prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredKey {
    pub key: ApiKey,
    pub hash: Vec<u8>,
    /// The secret a rotation replaced, while it may still be valid.
    pub previous_hash: Option<Vec<u8>>,
}

/// API keys and their audit.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ApiKeyRepository: Send + Sync {
    /// The key whose current or previous secret starts with `prefix`.
    async fn find_by_prefix(&self, prefix: &str) -> Result<Option<StoredKey>, StorageError>;
    /// Records a use (callers throttle it).
    async fn touch(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<(), StorageError>;
    /// Records a refusal in the key's audit (outside any unit of work).
    async fn audit_refusal(&self, entry: &KeyAuditEntry) -> Result<(), StorageError>;
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StorageError>;
    async fn insert(&self, unit: &mut Uow, key: &ApiKey, hash: &[u8]) -> Result<(), StorageError>;
    async fn revoke(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: ApiKeyId,
        at: OffsetDateTime,
    ) -> Result<(), StorageError>;
    /// Replaces the secret; the current one stays valid until `previous_valid_until`.
    async fn rotate(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: ApiKeyId,
        secret: &Secret,
        previous_valid_until: OffsetDateTime,
    ) -> Result<(), StorageError>;
    async fn audit(&self, unit: &mut Uow, entry: &KeyAuditEntry) -> Result<(), StorageError>;
    async fn audit_log(
        &self,
        workspace: WorkspaceId,
        key: ApiKeyId,
        page: PageRequest,
    ) -> Result<Page<KeyAuditEntry>, StorageError>;
}

/// Why an API key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("API key not found")]
    NotFound,
    #[error(transparent)]
    Conflict(Conflict),
    #[error(transparent)]
    PlanLimit(#[from] PlanLimitReached),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
}

impl From<ApiKeyError> for Failure {
    fn from(error: ApiKeyError) -> Self {
        match error {
            ApiKeyError::Invalid(errors) => Failure::Invalid(errors),
            ApiKeyError::Forbidden(forbidden) => forbidden.into(),
            ApiKeyError::NotFound => Failure::NotFound("API key"),
            ApiKeyError::Conflict(conflict) => Failure::Conflict(conflict),
            ApiKeyError::PlanLimit(reached) => reached.into(),
            ApiKeyError::Storage(error) => error.into(),
            ApiKeyError::Randomness(error) => error.into(),
        }
    }
}

/// What the API key use cases work with.
pub struct ApiKeyPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub keys: Arc<dyn ApiKeyRepository>,
    pub plans: Arc<dyn PlanGuard>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
    /// Where a key's `environment` is looked up.
    pub environments: Arc<dyn fluxolab_kernel::EnvironmentDirectory>,
}

impl std::fmt::Debug for ApiKeyPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyPorts").finish_non_exhaustive()
    }
}

/// A key to create, as submitted.
#[derive(Clone, Debug, Default)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub environment: Option<String>,
}

/// The API key use cases. Every request a key makes looks it up by prefix
/// (`ApiKeyRepository::find_by_prefix`); the adapter caches that lookup.
pub struct ApiKeyService {
    ports: ApiKeyPorts,
    /// When each key's `last_used_at` or refusal was last written.
    written: moka::sync::Cache<(ApiKeyId, &'static str), ()>,
}

impl std::fmt::Debug for ApiKeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyService").finish_non_exhaustive()
    }
}

/// `last_used_at` and sampled refusals are written at most this often per key.
pub const USE_WRITE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a presented key was refused (every case answers the same 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No key has this secret (made up, mistyped, or replaced twice since).
    Unknown,
    Revoked,
    Expired,
    /// A rotated-away secret presented after its grace period.
    GraceEnded,
}

impl KeyRefusal {
    /// A stable name for logs and metrics: `unknown`, `revoked`, `expired`,
    /// `grace_ended`.
    pub fn code(self) -> &'static str {
        match self {
            KeyRefusal::Unknown => "unknown",
            KeyRefusal::Revoked => "revoked",
            KeyRefusal::Expired => "expired",
            KeyRefusal::GraceEnded => "grace_ended",
        }
    }

    /// The action of the key's audit row that records this refusal (none for an
    /// unknown key: there is no row to attach it to).
    pub fn audit_action(self) -> Option<&'static str> {
        match self {
            KeyRefusal::Unknown => None,
            KeyRefusal::Revoked => Some("revoked_refused"),
            KeyRefusal::Expired => Some("expired_refused"),
            KeyRefusal::GraceEnded => Some("grace_ended_refused"),
        }
    }
}

/// The audit actions of refused uses, sampled at most once per [`USE_WRITE_EVERY`] per key
/// and action: the three refusals of [`KeyRefusal::audit_action`] and `scope_denied`.
pub const REFUSAL_ACTIONS: [&str; 4] = [
    "revoked_refused",
    "expired_refused",
    "grace_ended_refused",
    "scope_denied",
];

impl ApiKeyService {
    pub fn new(ports: ApiKeyPorts) -> Self {
        Self {
            ports,
            written: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(USE_WRITE_EVERY)
                .build(),
        }
    }

    /// The principal a presented `flx_…` key stands for: bound to its workspace, with
    /// its scopes. Unknown, revoked and expired keys (and a rotated-away secret past
    /// its grace) are refused alike; a refused known key leaves a (sampled) audit line
    /// with `origin`. An unknown key is only logged, by its lookup prefix.
    #[tracing::instrument(name = "api_keys.authenticate", skip_all, fields(workspace_id = tracing::field::Empty))]
    pub async fn authenticate(
        &self,
        presented: &str,
        origin: &Origin,
    ) -> Result<Principal, KeyRefusal> {
        let Some(prefix) = lookup_prefix(presented) else {
            tracing::info!("malformed API key refused");
            return Err(KeyRefusal::Unknown);
        };
        let stored = self
            .ports
            .keys
            .find_by_prefix(prefix)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "could not look up an API key");
                KeyRefusal::Unknown
            })?;
        let Some(stored) = stored else {
            tracing::info!(prefix, "unknown API key refused");
            return Err(KeyRefusal::Unknown);
        };
        let now = self.ports.clock.now();
        let presented_hash = key_hash(presented);
        let current = fluxolab_kernel::constant_time_eq(&presented_hash, &stored.hash);
        let previous = !current
            && stored
                .previous_hash
                .as_deref()
                .is_some_and(|hash| fluxolab_kernel::constant_time_eq(&presented_hash, hash));
        if !current && !previous {
            tracing::info!(prefix, "unknown API key refused");
            return Err(KeyRefusal::Unknown);
        }
        tracing::Span::current().record(
            "workspace_id",
            tracing::field::display(stored.key.workspace_id),
        );
        let in_grace = || {
            stored
                .key
                .previous_valid_until
                .is_some_and(|until| until > now)
        };
        let refusal = match stored.key.status(now) {
            "revoked" => Some(KeyRefusal::Revoked),
            "expired" => Some(KeyRefusal::Expired),
            _ if previous && !in_grace() => Some(KeyRefusal::GraceEnded),
            _ => None,
        };
        if let Some(refusal) = refusal {
            tracing::info!(prefix, key_id = %stored.key.id, reason = refusal.code(), "API key refused");
            if let Some(action) = refusal.audit_action() {
                self.sampled(
                    &stored.key.id,
                    stored.key.workspace_id,
                    action,
                    origin,
                    json!({}),
                    now,
                )
                .await;
            }
            return Err(refusal);
        }
        if self.written.get(&(stored.key.id, "used")).is_none() {
            self.written.insert((stored.key.id, "used"), ());
            if let Err(error) = self.ports.keys.touch(stored.key.id, now).await {
                tracing::warn!(%error, "could not record an API key's use");
            }
        }
        Ok(Principal::new(
            Actor::ApiKey(stored.key.id),
            stored.key.workspace_id,
            stored.key.scopes.iter().copied(),
        )
        .bound_to(
            stored
                .key
                .environment
                .as_ref()
                .map(|environment| environment.id.to_string()),
        ))
    }

    /// Records that a request authenticated by a key was refused because the key lacks
    /// `needed` (a 403): a sampled `scope_denied` line in the key's audit with the
    /// permission, method and path. Does nothing for a principal that is not a key.
    #[tracing::instrument(name = "api_keys.scope_denied", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn scope_denied(
        &self,
        principal: &Principal,
        needed: Permission,
        method: &str,
        path: &str,
        origin: &Origin,
    ) {
        let Actor::ApiKey(key) = principal.actor() else {
            return;
        };
        tracing::info!(key_id = %key, permission = needed.code(), "API key lacks a scope");
        self.sampled(
            &key,
            principal.workspace_id(),
            "scope_denied",
            origin,
            json!({"permission": needed.code(), "method": method, "path": path}),
            self.ports.clock.now(),
        )
        .await;
    }

    /// Writes a refusal to the key's audit, at most once per [`USE_WRITE_EVERY`] per key
    /// and action.
    async fn sampled(
        &self,
        key_id: &ApiKeyId,
        workspace_id: WorkspaceId,
        action: &'static str,
        origin: &Origin,
        details: Value,
        now: OffsetDateTime,
    ) {
        // One writer per window even when requests race: only the one that inserts.
        if !self
            .written
            .entry((*key_id, action))
            .or_insert(())
            .is_fresh()
        {
            return;
        }
        let entry = KeyAuditEntry {
            id: Uuid::now_v7(),
            key_id: *key_id,
            workspace_id,
            action: action.to_owned(),
            actor_user_id: None,
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.clone(),
            details,
            created_at: now,
        };
        if let Err(error) = self.ports.keys.audit_refusal(&entry).await {
            tracing::warn!(%error, "could not audit an API key refusal");
        }
    }

    #[tracing::instrument(name = "api_keys.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, ApiKeyError> {
        principal.require(Permission::ApiKeysManage)?;
        Ok(self.ports.keys.list(principal.workspace_id(), page).await?)
    }

    async fn get(&self, principal: &Principal, id: ApiKeyId) -> Result<ApiKey, ApiKeyError> {
        self.ports
            .keys
            .find(principal.workspace_id(), id)
            .await?
            .ok_or(ApiKeyError::NotFound)
    }

    /// Creates a key; the returned secret is shown this once.
    #[tracing::instrument(name = "api_keys.create", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn create(
        &self,
        principal: &Principal,
        origin: &Origin,
        input: NewApiKey,
    ) -> Result<(ApiKey, String), ApiKeyError> {
        principal.require(Permission::ApiKeysManage)?;
        let now = self.ports.clock.now();
        let mut errors = ValidationErrors::new();
        let name = fluxolab_kernel::validation::bounded_name(&input.name)
            .map_err(|message| errors.add("name", message))
            .ok();
        let mut scopes = Vec::new();
        if input.scopes.is_empty() {
            errors.add("scopes", "must name at least one permission");
        }
        for code in &input.scopes {
            match code.parse::<Permission>() {
                Ok(scope) if !principal.has(scope) => errors.add(
                    "scopes",
                    format!(
                        "`{code}` is more than you may do yourself; a key never exceeds its creator"
                    ),
                ),
                Ok(scope) if !scopes.contains(&scope) => scopes.push(scope),
                Ok(_) => {}
                Err(error) => errors.add("scopes", error.to_string()),
            }
        }
        if input.expires_at.is_some_and(|expires| expires <= now) {
            errors.add("expires_at", "must be in the future");
        }
        // A key bound to an environment creates keys of that environment only.
        let bound = principal.environment();
        let environment = match input.environment.as_deref().or(bound) {
            None => None,
            Some(named) => {
                let found = self
                    .ports
                    .environments
                    .resolve(principal.workspace_id(), Some(named))
                    .await?;
                if found.is_none() {
                    errors.add(
                        "environment",
                        fluxolab_kernel::environment::unknown_environment(Some(named)),
                    );
                }
                found
            }
        };
        if let (Some(bound), Some(found)) = (bound, &environment)
            && found.id.to_string() != bound
        {
            errors.add(
                "environment",
                "an API key bound to an environment creates keys of that environment only",
            );
        }
        let (Some(name), true) = (name, errors.is_empty()) else {
            return Err(ApiKeyError::Invalid(errors));
        };
        let secret = new_secret()?;
        let key = ApiKey {
            id: ApiKeyId::new(),
            workspace_id: principal.workspace_id(),
            name,
            prefix: secret.prefix.clone(),
            last_four: secret.last_four.clone(),
            scopes,
            environment,
            created_by: principal.user(),
            created_at: now,
            expires_at: input.expires_at,
            last_used_at: None,
            revoked_at: None,
            previous_valid_until: None,
        };
        let mut unit = self.ports.units.begin().await?;
        if let Some(reached) = self
            .ports
            .plans
            .admit(unit.as_mut(), key.workspace_id, LimitedResource::ApiKeys)
            .await?
        {
            return Err(reached.into());
        }
        self.ports
            .keys
            .insert(unit.as_mut(), &key, &secret.hash)
            .await?;
        let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.code()).collect();
        self.record(
            unit.as_mut(),
            principal,
            origin,
            &key,
            "created",
            json!({"name": key.name, "scopes": scopes, "expires_at": key.expires_at.map(|at| at.unix_timestamp())}),
        )
        .await?;
        unit.commit().await?;
        Ok((key, secret.key))
    }

    /// The key's audit row and the activity, in `unit`.
    async fn record(
        &self,
        unit: &mut Uow,
        principal: &Principal,
        origin: &Origin,
        key: &ApiKey,
        action: &'static str,
        details: Value,
    ) -> Result<(), StorageError> {
        self.ports
            .keys
            .audit(
                unit,
                &KeyAuditEntry {
                    id: Uuid::now_v7(),
                    key_id: key.id,
                    workspace_id: key.workspace_id,
                    action: action.to_owned(),
                    actor_user_id: principal.user(),
                    ip: origin.ip.clone(),
                    user_agent: origin.user_agent.clone(),
                    details: details.clone(),
                    created_at: self.ports.clock.now(),
                },
            )
            .await?;
        let activity = match action {
            "created" => "api_key.created",
            "rotated" => "api_key.rotated",
            _ => "api_key.revoked",
        };
        self.ports
            .audit
            .record_in(
                unit,
                &AuditEvent::by(
                    principal,
                    activity,
                    ("api_key", key.id.to_string()),
                    json!({"name": key.name, "prefix": key.prefix, "details": details}),
                ),
            )
            .await
    }

    /// A key `principal` may revoke or rotate: any of the workspace's for a user; for a
    /// key bound to an environment, only the keys of that environment (others are not
    /// found).
    async fn managed(&self, principal: &Principal, id: ApiKeyId) -> Result<ApiKey, ApiKeyError> {
        let key = self.get(principal, id).await?;
        match principal.environment() {
            Some(bound)
                if key
                    .environment
                    .as_ref()
                    .is_none_or(|environment| environment.id.to_string() != bound) =>
            {
                Err(ApiKeyError::NotFound)
            }
            _ => Ok(key),
        }
    }

    /// Revokes a key at once (its rotated-away secret too).
    #[tracing::instrument(name = "api_keys.revoke", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn revoke(
        &self,
        principal: &Principal,
        origin: &Origin,
        id: ApiKeyId,
    ) -> Result<ApiKey, ApiKeyError> {
        principal.require(Permission::ApiKeysManage)?;
        let key = self.managed(principal, id).await?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .keys
            .revoke(unit.as_mut(), key.workspace_id, id, self.ports.clock.now())
            .await?;
        self.record(unit.as_mut(), principal, origin, &key, "revoked", json!({}))
            .await?;
        unit.commit().await?;
        self.get(principal, id).await
    }

    /// A new secret for the key; the old one works for `grace_seconds` more (default a
    /// day; 0 stops it at once).
    #[tracing::instrument(name = "api_keys.rotate", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn rotate(
        &self,
        principal: &Principal,
        origin: &Origin,
        id: ApiKeyId,
        grace_seconds: Option<i64>,
    ) -> Result<(ApiKey, String), ApiKeyError> {
        principal.require(Permission::ApiKeysManage)?;
        let grace = grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
        if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
            return Err(ApiKeyError::Invalid(ValidationErrors::single(
                "grace_seconds",
                format!("must be between 0 and {MAX_GRACE_SECONDS}"),
            )));
        }
        let key = self.managed(principal, id).await?;
        if key.status(self.ports.clock.now()) != "active" {
            return Err(ApiKeyError::Conflict(Conflict::new(
                ConflictCode::ApiKeyInactive,
                "only an active key can be rotated; create a new one",
            )));
        }
        let secret = new_secret()?;
        let valid_until = self.ports.clock.now() + time::Duration::seconds(grace);
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .keys
            .rotate(unit.as_mut(), key.workspace_id, id, &secret, valid_until)
            .await?;
        self.record(
            unit.as_mut(),
            principal,
            origin,
            &key,
            "rotated",
            json!({"grace_seconds": grace, "new_prefix": secret.prefix}),
        )
        .await?;
        unit.commit().await?;
        Ok((self.get(principal, id).await?, secret.key))
    }

    #[tracing::instrument(name = "api_keys.audit_log", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn audit_log(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        page: PageRequest,
    ) -> Result<Page<KeyAuditEntry>, ApiKeyError> {
        principal.require(Permission::ApiKeysManage)?;
        self.get(principal, id).await?;
        Ok(self
            .ports
            .keys
            .audit_log(principal.workspace_id(), id, page)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_prefixed_and_stored_as_their_digest() -> Result<(), NoRandomness> {
        let secret = new_secret()?;
        assert!(secret.key.starts_with("flx_"));
        assert_eq!(secret.key.len(), 4 + SECRET_CHARS);
        assert!(secret.key[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(lookup_prefix(&secret.key), Some(secret.prefix.as_str()));
        assert_eq!(secret.hash, key_hash(&secret.key));
        assert_ne!(new_secret()?.key, secret.key);
        assert_eq!(lookup_prefix("bearer-token"), None);
        Ok(())
    }

    #[test]
    fn a_secret_formatted_for_debugging_shows_no_key() -> Result<(), NoRandomness> {
        let secret = new_secret()?;
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains(&secret.key[secret.prefix.len()..]),
            "{shown}"
        );
        assert!(shown.contains("[REDACTED]") && shown.contains(&secret.prefix));
        Ok(())
    }
}

#[cfg(test)]
#[path = "api_keys_tests.rs"]
mod service_tests;
