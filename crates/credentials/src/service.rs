//! The vault's use cases: manage credentials (masked), resolve them server-side (audited),
//! and rotate a workspace's data key online.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    Actor, AuditEvent, AuditLog, Clock, Conflict, ConflictCode, CredentialId, ExecutionId,
    ExposeSecret, Failure, Forbidden, Page, PageRequest, Permission, Principal, ResolveFailure,
    SecretRef, SecretResolver, StorageError, UnitOfWorkFactory, Uow, UserId, ValidationErrors,
    WorkspaceId,
};
use serde_json::{Map, Value, json};

use crate::envelope::{DataKey, EnvelopeError, MasterKeys, Sealed};
use crate::kind::CredentialKind;
use crate::masking::mask_hint;
use crate::model::{CredentialRecord, DataKeyId, ResolvedCredential, StoredDataKey};
use crate::ports::{
    ConnectionTester, CredentialRepository, CredentialResolver, CredentialUsage, DataKeyRepository,
    HttpAuth, HttpProbe, NetworkPolicy, ProbeOutcome, ResolveError, SmtpProbe, TlsMode,
    WriteCredentialError,
};

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("credential not found")]
    NotFound,
    #[error("a credential with this name already exists in the workspace")]
    NameTaken,
    #[error("the credential is used by active workflows: {}", .0.join(", "))]
    InUse(Vec<String>),
    #[error("a stored secret cannot be opened")]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    PlanLimit(#[from] fluxolab_kernel::PlanLimitReached),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<VaultError> for Failure {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::Invalid(errors) => Failure::Invalid(errors),
            VaultError::Forbidden(forbidden) => forbidden.into(),
            VaultError::NotFound => Failure::NotFound("credential"),
            VaultError::NameTaken => {
                Failure::Conflict(Conflict::new(ConflictCode::NameTaken, error.to_string()))
            }
            VaultError::InUse(_) => Failure::Conflict(Conflict::new(
                ConflictCode::CredentialInUse,
                error.to_string(),
            )),
            VaultError::Envelope(error) => Failure::Internal(Box::new(error)),
            VaultError::PlanLimit(reached) => reached.into(),
            VaultError::Storage(error) => error.into(),
        }
    }
}

impl From<WriteCredentialError> for VaultError {
    fn from(error: WriteCredentialError) -> Self {
        match error {
            WriteCredentialError::NameTaken => VaultError::NameTaken,
            WriteCredentialError::Storage(error) => VaultError::Storage(error),
        }
    }
}

/// A credential to create.
#[derive(Debug)]
pub struct NewCredential {
    pub name: String,
    pub kind: String,
    pub data: Map<String, Value>,
}

/// A change to a credential; absent parts stay as they are, absent secret fields too.
#[derive(Debug, Default)]
pub struct CredentialPatch {
    pub name: Option<String>,
    pub data: Option<Map<String, Value>>,
}

/// What a data-key rotation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationReport {
    /// The version of the key now active.
    pub key_version: i32,
    /// Whether this run created the key (false: it finished an interrupted rotation).
    pub new_key: bool,
    pub resealed: u64,
}

/// Storage and keys the vault works with.
pub struct VaultPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub keys: Arc<dyn DataKeyRepository>,
    pub credentials: Arc<dyn CredentialRepository>,
    pub audit: Arc<dyn AuditLog>,
    pub master: Arc<MasterKeys>,
    pub clock: Arc<dyn Clock>,
    pub tester: Arc<dyn ConnectionTester>,
    pub network: Arc<dyn NetworkPolicy>,
    pub usage: Arc<dyn CredentialUsage>,
    pub plans: Arc<dyn fluxolab_kernel::PlanGuard>,
}

impl std::fmt::Debug for VaultPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultPorts").finish_non_exhaustive()
    }
}

/// The vault.
pub struct VaultService {
    ports: VaultPorts,
    /// Resolves secret fields that reference a secret provider. Set once after start-up
    /// ([`VaultService::resolve_references_with`]): the resolver opens providers'
    /// credentials through this very vault.
    references: std::sync::OnceLock<Arc<dyn SecretResolver>>,
}

/// The one field of a credential holding a secret another feature owns.
const OWNED_SECRET_FIELD: &str = "signing_secret";

/// Rows re-sealed per batch during a data-key rotation.
pub const ROTATION_BATCH: i64 = 100;

fn invalid(field: &str, message: impl Into<String>) -> VaultError {
    VaultError::Invalid(ValidationErrors::single(field, message))
}

/// What responses show of each secret: its last characters, or for a reference to a
/// secret provider `@provider:name` (stored in clear, so that the provider can tell
/// what references it).
fn hints_of(secrets: &Map<String, Value>) -> Map<String, Value> {
    secrets
        .iter()
        .map(|(name, value)| {
            let hint = match SecretRef::in_value(value) {
                Some(Ok(reference)) => reference_hint(&reference),
                _ => mask_hint(value.as_str().unwrap_or_default()),
            };
            (name.clone(), Value::String(hint))
        })
        .collect()
}

/// The masked hint of a secret field that references a provider's secret.
pub fn reference_hint(reference: &SecretRef) -> String {
    format!("@{}:{}", reference.provider, reference.name)
}

impl std::fmt::Debug for VaultService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultService")
            .field("references", &self.references.get().is_some())
            .finish_non_exhaustive()
    }
}

impl VaultService {
    pub fn new(ports: VaultPorts) -> Self {
        Self {
            ports,
            references: std::sync::OnceLock::new(),
        }
    }

    /// Lets secret fields be `{"secret_ref": …}`, checked and resolved by `resolver`.
    /// Without it, such fields are refused on save and fail at use.
    pub fn resolve_references_with(&self, resolver: Arc<dyn SecretResolver>) {
        // Set once at start-up; a second call keeps the first resolver.
        let _ = self.references.set(resolver);
    }

    /// Every submitted reference must name a provider of the workspace.
    async fn check_references(
        &self,
        workspace: WorkspaceId,
        references: &[(String, SecretRef)],
    ) -> Result<(), VaultError> {
        let mut errors = ValidationErrors::new();
        for (field, reference) in references {
            let exists = match self.references.get() {
                Some(resolver) => {
                    resolver
                        .provider_exists(workspace, &reference.provider)
                        .await?
                }
                None => false,
            };
            if !exists {
                errors.add(
                    format!("data.{field}.secret_ref.provider"),
                    format!(
                        "no secret provider `{}` in this workspace",
                        reference.provider
                    ),
                );
            }
        }
        errors.into_result(()).map_err(VaultError::Invalid)
    }

    /// Replaces every `{"secret_ref": …}` among `secrets` with the value it names.
    async fn resolve_references(
        &self,
        workspace: WorkspaceId,
        secrets: &mut Map<String, Value>,
    ) -> Result<(), ResolveFailure> {
        for value in secrets.values_mut() {
            let Some(Ok(reference)) = SecretRef::in_value(value) else {
                continue;
            };
            let resolver = self.references.get().ok_or_else(|| ResolveFailure {
                provider: reference.provider.clone(),
                reason: "secret providers are not available here".to_owned(),
            })?;
            let resolved = resolver.resolve(workspace, &reference).await?;
            *value = Value::String(resolved.expose_secret().to_owned());
        }
        Ok(())
    }

    /// The active data key of `workspace`, created on first use.
    async fn active_key(
        &self,
        workspace: WorkspaceId,
    ) -> Result<(StoredDataKey, DataKey), VaultError> {
        loop {
            if let Some(stored) = self.ports.keys.active(workspace).await? {
                let key = DataKey::unwrap(&self.ports.master, workspace, &stored.wrapped)?;
                return Ok((stored, key));
            }
            self.create_key(workspace, 1).await?;
        }
    }

    /// Creates and activates a key at `version`; `false` when another writer won.
    async fn create_key(&self, workspace: WorkspaceId, version: i32) -> Result<bool, VaultError> {
        let key = DataKey::generate()?;
        let stored = StoredDataKey {
            id: DataKeyId::new(),
            workspace_id: workspace,
            version,
            wrapped: key.wrap(&self.ports.master, workspace)?,
        };
        Ok(self.ports.keys.activate(&stored).await?)
    }

    async fn key_of(&self, record: &CredentialRecord) -> Result<DataKey, VaultError> {
        let stored = self
            .ports
            .keys
            .find(record.workspace_id, record.data_key_id)
            .await?
            .ok_or(VaultError::Envelope(EnvelopeError::Tampered))?;
        Ok(DataKey::unwrap(
            &self.ports.master,
            record.workspace_id,
            &stored.wrapped,
        )?)
    }

    fn seal(
        key: &DataKey,
        workspace: WorkspaceId,
        id: CredentialId,
        secrets: &Map<String, Value>,
    ) -> Result<Sealed, VaultError> {
        let plaintext = zeroize::Zeroizing::new(serde_json::to_vec(secrets).unwrap_or_default());
        Ok(key.seal(workspace, id, &plaintext)?)
    }

    async fn open(&self, record: &CredentialRecord) -> Result<Map<String, Value>, VaultError> {
        let key = self.key_of(record).await?;
        let plaintext = key.open(record.workspace_id, record.id, &record.sealed)?;
        Ok(serde_json::from_slice(&plaintext).unwrap_or_default())
    }

    #[tracing::instrument(name = "vault.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<CredentialRecord>, VaultError> {
        principal.require(Permission::CredentialsRead)?;
        Ok(self
            .ports
            .credentials
            .list(principal.workspace_id(), page)
            .await?)
    }

    /// One of the workspace's own credentials (a secret another feature owns is not
    /// found here: it is managed there).
    #[tracing::instrument(name = "vault.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(
        &self,
        principal: &Principal,
        id: CredentialId,
    ) -> Result<CredentialRecord, VaultError> {
        principal.require(Permission::CredentialsRead)?;
        let workspace = principal.workspace_id();
        if self.ports.credentials.is_owned(workspace, id).await? {
            return Err(VaultError::NotFound);
        }
        self.ports
            .credentials
            .find(workspace, id)
            .await?
            .ok_or(VaultError::NotFound)
    }

    #[tracing::instrument(name = "vault.create", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn create(
        &self,
        principal: &Principal,
        input: NewCredential,
    ) -> Result<CredentialRecord, VaultError> {
        principal.require(Permission::CredentialsWrite)?;
        let mut errors = ValidationErrors::new();
        let name = fluxolab_kernel::validation::bounded_name(&input.name)
            .map_err(|message| errors.add("name", message))
            .ok();
        let kind = CredentialKind::from_code(&input.kind);
        let split = match kind {
            None => {
                errors.add(
                    "kind",
                    "must be one of smtp, http_basic, http_header, bearer_token, meta_app, generic",
                );
                None
            }
            Some(kind) => match kind.validate(&input.data, &[]) {
                Ok(split) => Some(split),
                Err(problems) => {
                    for problem in problems.errors() {
                        errors.add(problem.field.clone(), problem.message.clone());
                    }
                    None
                }
            },
        };
        let (Some(name), Some(kind), Some(split)) = (name, kind, split) else {
            return Err(VaultError::Invalid(errors));
        };
        if !errors.is_empty() {
            return Err(VaultError::Invalid(errors));
        }
        let workspace = principal.workspace_id();
        self.check_references(workspace, &split.references).await?;
        let (stored_key, key) = self.active_key(workspace).await?;
        let id = CredentialId::new();
        let now = self.ports.clock.now();
        let record = CredentialRecord {
            id,
            workspace_id: workspace,
            name,
            kind,
            public: split.public,
            sealed: Self::seal(&key, workspace, id, &split.secrets)?,
            data_key_id: stored_key.id,
            key_version: stored_key.version,
            hints: hints_of(&split.secrets),
            created_at: now,
            updated_at: now,
        };
        let created_by = match principal.actor() {
            Actor::User(user) => Some(user),
            Actor::ApiKey(_) => None,
        };
        let mut unit = self.ports.units.begin().await?;
        if let Some(reached) = self
            .ports
            .plans
            .admit(
                unit.as_mut(),
                workspace,
                fluxolab_kernel::LimitedResource::Credentials,
            )
            .await?
        {
            return Err(reached.into());
        }
        self.ports
            .credentials
            .insert(unit.as_mut(), &record, created_by)
            .await?;
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &AuditEvent {
                    workspace_id: workspace,
                    actor: Some(principal.actor()),
                    action: "credential.created",
                    target: Some(("credential", id.to_string())),
                    metadata: json!({"name": record.name, "kind": kind.code()}),
                },
            )
            .await?;
        unit.commit().await?;
        Ok(record)
    }

    /// Seals `secrets` as a new credential of `kind` inside `unit` (the caller commits),
    /// for secrets other features own, such as webhook signing secrets. No permission
    /// check: the calling use case has made its own.
    #[tracing::instrument(name = "vault.create_in", skip_all, fields(workspace_id = %workspace))]
    pub async fn create_in(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
        kind: CredentialKind,
        secrets: Map<String, Value>,
        created_by: Option<UserId>,
    ) -> Result<CredentialRecord, VaultError> {
        let (stored_key, key) = self.active_key(workspace).await?;
        let id = CredentialId::new();
        let now = self.ports.clock.now();
        let record = CredentialRecord {
            id,
            workspace_id: workspace,
            name: name.to_owned(),
            kind,
            public: Map::new(),
            sealed: Self::seal(&key, workspace, id, &secrets)?,
            data_key_id: stored_key.id,
            key_version: stored_key.version,
            hints: hints_of(&secrets),
            created_at: now,
            updated_at: now,
        };
        self.ports
            .credentials
            .insert(unit, &record, created_by)
            .await?;
        Ok(record)
    }

    /// Seals one secret string another feature owns (a webhook signing secret, an alert
    /// secret) as a `generic` credential inside `unit`; returns its id. Its name is
    /// `name` made unique with a random suffix: owned entries are never listed, so a
    /// user's credential can neither take their name nor be refused for it.
    #[tracing::instrument(name = "vault.store_owned_secret", skip_all, fields(workspace_id = %workspace))]
    pub async fn store_owned_secret(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
        secret: &str,
        created_by: Option<UserId>,
    ) -> Result<CredentialId, VaultError> {
        let secrets = Map::from_iter([(
            OWNED_SECRET_FIELD.to_owned(),
            Value::String(secret.to_owned()),
        )]);
        let record = self
            .create_in(
                unit,
                workspace,
                &owned_name(name),
                CredentialKind::Generic,
                secrets,
                created_by,
            )
            .await?;
        Ok(record.id)
    }

    /// Opens a secret stored by [`VaultService::store_owned_secret`].
    #[tracing::instrument(name = "vault.open_owned_secret", skip_all, fields(workspace_id = %workspace))]
    pub async fn open_owned_secret(
        &self,
        workspace: WorkspaceId,
        credential: CredentialId,
    ) -> Result<String, ResolveError> {
        // Not recorded as a `credential.used`: the owning feature's own activities say
        // what it did (and a log destination's delivery must not make activities of
        // its own, which it would then deliver).
        let resolved = self
            .open_resolved(workspace, credential, &[CredentialKind::Generic])
            .await?;
        let secrets: Map<String, Value> =
            serde_json::from_slice(&resolved.secrets).unwrap_or_default();
        secrets
            .get(OWNED_SECRET_FIELD)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(ResolveError::Unreadable {
                id: credential,
                reason: "the credential holds no owned secret".to_owned(),
            })
    }

    /// Deletes a credential another feature owns inside `unit` (the caller commits and
    /// has checked permissions); `false` when there was none.
    #[tracing::instrument(name = "vault.delete_in", skip_all, fields(workspace_id = %workspace))]
    pub async fn delete_in(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: CredentialId,
    ) -> Result<bool, VaultError> {
        Ok(self.ports.credentials.delete(unit, workspace, id).await?)
    }

    #[tracing::instrument(name = "vault.update", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn update(
        &self,
        principal: &Principal,
        id: CredentialId,
        patch: CredentialPatch,
    ) -> Result<CredentialRecord, VaultError> {
        principal.require(Permission::CredentialsWrite)?;
        let current = self.get(principal, id).await?;
        let name = match &patch.name {
            Some(name) => fluxolab_kernel::validation::bounded_name(name)
                .map_err(|message| invalid("name", message))?,
            None => current.name.clone(),
        };
        let mut record = CredentialRecord {
            name,
            updated_at: self.ports.clock.now(),
            ..current.clone()
        };
        let mut changed: Vec<&str> = patch.name.iter().map(|_| "name").collect();
        if let Some(data) = &patch.data {
            // What is stored, overlaid with what was sent, validated as a whole.
            let mut merged = current.public.clone();
            merged.extend(self.open(&current).await?);
            merged.extend(data.iter().map(|(key, value)| (key.clone(), value.clone())));
            let split = current
                .kind
                .validate(&merged, &[])
                .map_err(VaultError::Invalid)?;
            self.check_references(current.workspace_id, &split.references)
                .await?;
            let (stored_key, key) = self.active_key(current.workspace_id).await?;
            record.public = split.public;
            record.sealed = Self::seal(&key, current.workspace_id, id, &split.secrets)?;
            record.hints = hints_of(&split.secrets);
            record.data_key_id = stored_key.id;
            record.key_version = stored_key.version;
            changed.extend(data.keys().map(String::as_str));
        }
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .credentials
            .update(unit.as_mut(), &record)
            .await?;
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &AuditEvent {
                    workspace_id: record.workspace_id,
                    actor: Some(principal.actor()),
                    action: "credential.updated",
                    target: Some(("credential", id.to_string())),
                    metadata: json!({"fields": changed}),
                },
            )
            .await?;
        unit.commit().await?;
        Ok(record)
    }

    #[tracing::instrument(name = "vault.delete", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn delete(&self, principal: &Principal, id: CredentialId) -> Result<(), VaultError> {
        principal.require(Permission::CredentialsWrite)?;
        let workspace = principal.workspace_id();
        if self.ports.credentials.is_owned(workspace, id).await? {
            return Err(VaultError::NotFound);
        }
        let mut unit = self.ports.units.begin().await?;
        let users = self
            .ports
            .usage
            .active_workflows_using(unit.as_mut(), workspace, id)
            .await?;
        if !users.is_empty() {
            return Err(VaultError::InUse(users));
        }
        if !self
            .ports
            .credentials
            .delete(unit.as_mut(), workspace, id)
            .await?
        {
            return Err(VaultError::NotFound);
        }
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &AuditEvent {
                    workspace_id: workspace,
                    actor: Some(principal.actor()),
                    action: "credential.deleted",
                    target: Some(("credential", id.to_string())),
                    metadata: json!({}),
                },
            )
            .await?;
        unit.commit().await?;
        Ok(())
    }

    /// Tries the credential against its service: SMTP connects, secures and logs in; HTTP
    /// kinds request `url` with the credential applied. Outbound connections pass the
    /// SSRF guard. A failed connection is an outcome (`ok: false`), not an error.
    #[tracing::instrument(name = "vault.test", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn test(
        &self,
        principal: &Principal,
        id: CredentialId,
        url: Option<&str>,
    ) -> Result<ProbeOutcome, VaultError> {
        principal.require(Permission::CredentialsWrite)?;
        let workspace = principal.workspace_id();
        let record = self.get(principal, id).await?;
        let target = match (record.kind, url) {
            (CredentialKind::Smtp, _) => None,
            (
                CredentialKind::HttpBasic
                | CredentialKind::HttpHeader
                | CredentialKind::BearerToken,
                Some(raw),
            ) => {
                let parsed = url::Url::parse(raw)
                    .map_err(|error| invalid("url", format!("is not a valid URL ({error})")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid("url", "must be an http:// or https:// URL"));
                }
                Some(parsed)
            }
            (
                CredentialKind::HttpBasic
                | CredentialKind::HttpHeader
                | CredentialKind::BearerToken,
                None,
            ) => {
                return Err(invalid("url", "is required to test an HTTP credential"));
            }
            (kind, _) => {
                return Err(invalid(
                    "kind",
                    format!("{} credentials cannot be tested", kind.code()),
                ));
            }
        };
        let allow_internal = self.ports.network.allows_internal(workspace).await?;
        let mut secrets = self.open(&record).await?;
        if let Err(failure) = self.resolve_references(workspace, &mut secrets).await {
            // A provider that cannot give the secret fails the test, naming why.
            return Ok(ProbeOutcome {
                ok: false,
                message: failure.to_string(),
            });
        }
        self.ports
            .audit
            .record(&AuditEvent {
                workspace_id: workspace,
                actor: Some(principal.actor()),
                action: "credential.used",
                target: Some(("credential", id.to_string())),
                metadata: json!({"test": true}),
            })
            .await?;
        let text = |map: &Map<String, Value>, name: &str| {
            map.get(name).and_then(Value::as_str).map(str::to_owned)
        };
        let secret =
            |name: &str| secrecy::SecretString::from(text(&secrets, name).unwrap_or_default());
        Ok(match (record.kind, target) {
            (CredentialKind::Smtp, _) => {
                let tls = match text(&record.public, "tls_mode").as_deref() {
                    Some("tls") => TlsMode::Tls,
                    Some("starttls") => TlsMode::StartTls,
                    _ => TlsMode::None,
                };
                self.ports
                    .tester
                    .smtp(SmtpProbe {
                        host: text(&record.public, "host").unwrap_or_default(),
                        port: record
                            .public
                            .get("port")
                            .and_then(Value::as_u64)
                            .and_then(|port| u16::try_from(port).ok())
                            .unwrap_or(25),
                        tls,
                        username: text(&record.public, "username").filter(|name| !name.is_empty()),
                        password: text(&secrets, "password").map(secrecy::SecretString::from),
                        allow_internal,
                    })
                    .await
            }
            (kind, Some(url)) => {
                let auth = match kind {
                    CredentialKind::HttpBasic => HttpAuth::Basic {
                        username: text(&record.public, "username").unwrap_or_default(),
                        password: secret("password"),
                    },
                    CredentialKind::HttpHeader => HttpAuth::Header {
                        name: text(&record.public, "name").unwrap_or_default(),
                        value: secret("value"),
                    },
                    _ => HttpAuth::Bearer(secret("token")),
                };
                self.ports
                    .tester
                    .http(HttpProbe {
                        url,
                        auth,
                        allow_internal,
                    })
                    .await
            }
            (_, None) => return Err(invalid("url", "is required to test an HTTP credential")),
        })
    }

    /// Gives the workspace a new data key and re-seals every credential under it, in
    /// batches. Each row is re-sealed atomically and stays readable under its old key
    /// until then, so the server keeps serving; an interrupted rotation is finished by
    /// the next call instead of starting another.
    #[tracing::instrument(name = "vault.rotate_data_key", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn rotate_data_key(
        &self,
        principal: &Principal,
    ) -> Result<RotationReport, VaultError> {
        // Owners only: the permission no other role holds.
        principal.require(Permission::BillingManage)?;
        let workspace = principal.workspace_id();
        let (mut active, _) = self.active_key(workspace).await?;
        let leftovers = self
            .ports
            .credentials
            .sealed_under_other_keys(workspace, active.id, 1)
            .await?;
        let new_key = leftovers.is_empty();
        if new_key {
            self.create_key(workspace, active.version + 1).await?;
            active = self.active_key(workspace).await?.0;
        }
        let key = DataKey::unwrap(&self.ports.master, workspace, &active.wrapped)?;
        let mut resealed = 0;
        loop {
            let batch = self
                .ports
                .credentials
                .sealed_under_other_keys(workspace, active.id, ROTATION_BATCH)
                .await?;
            if batch.is_empty() {
                break;
            }
            for record in batch {
                let secrets = self.open(&record).await?;
                let from_key = record.data_key_id;
                let resealed_record = CredentialRecord {
                    sealed: Self::seal(&key, workspace, record.id, &secrets)?,
                    data_key_id: active.id,
                    key_version: active.version,
                    ..record
                };
                if self
                    .ports
                    .credentials
                    .reseal(&resealed_record, from_key)
                    .await?
                {
                    resealed += 1;
                }
            }
        }
        self.ports
            .audit
            .record(&AuditEvent {
                workspace_id: workspace,
                actor: Some(principal.actor()),
                action: "workspace.data_key_rotated",
                target: None,
                metadata: json!({"key_version": active.version, "resealed": resealed}),
            })
            .await?;
        Ok(RotationReport {
            key_version: active.version,
            new_key,
            resealed,
        })
    }
}

/// What `fluxolab keys rotate` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Data keys re-wrapped under the current master secret by this run.
    pub rewrapped: u64,
    /// Data keys that were already under it.
    pub already_current: u64,
}

/// Re-wraps every workspace data key under the current master secret. No credential row
/// is touched; running it again re-wraps nothing.
#[tracing::instrument(name = "vault.rewrap_all_data_keys", skip_all)]
pub async fn rewrap_all_data_keys(
    keys: &dyn DataKeyRepository,
    master: &MasterKeys,
) -> Result<RewrapReport, VaultError> {
    let current = master.current().id().to_owned();
    let mut report = RewrapReport {
        already_current: keys.count_wrapped_by(&current).await?,
        ..RewrapReport::default()
    };
    loop {
        let batch = keys.wrapped_by_others(&current, ROTATION_BATCH).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        for stored in batch {
            let key = DataKey::unwrap(master, stored.workspace_id, &stored.wrapped)?;
            let wrapped = key.wrap(master, stored.workspace_id)?;
            if keys
                .rewrap(stored.id, &stored.wrapped.kek_id, &wrapped)
                .await?
            {
                report.rewrapped += 1;
            }
        }
    }
}

impl VaultService {
    /// Opens a credential of one of the `expected` kinds, its references resolved,
    /// without recording a use.
    async fn open_resolved(
        &self,
        workspace: WorkspaceId,
        credential: CredentialId,
        expected: &[CredentialKind],
    ) -> Result<ResolvedCredential, ResolveError> {
        let record = self
            .ports
            .credentials
            .find(workspace, credential)
            .await?
            .ok_or(ResolveError::NotFound(credential))?;
        if !expected.contains(&record.kind) {
            let wanted: Vec<&str> = expected.iter().map(|kind| kind.code()).collect();
            return Err(ResolveError::WrongKind {
                id: credential,
                expected: wanted.join(" or "),
                actual: record.kind.code(),
            });
        }
        let unreadable = |reason: String| ResolveError::Unreadable {
            id: credential,
            reason,
        };
        let key = self
            .key_of(&record)
            .await
            .map_err(|error| unreadable(error.to_string()))?;
        let mut secrets = key
            .open(workspace, credential, &record.sealed)
            .map_err(|error| unreadable(error.to_string()))?;
        // Only a credential with a reference is parsed and written again.
        if secrets
            .windows(12)
            .any(|window| window == b"\"secret_ref\"")
        {
            let mut opened: Map<String, Value> =
                serde_json::from_slice(&secrets).map_err(|error| unreadable(error.to_string()))?;
            self.resolve_references(workspace, &mut opened)
                .await
                .map_err(|failure| ResolveError::Reference {
                    id: credential,
                    failure,
                })?;
            secrets = zeroize::Zeroizing::new(
                serde_json::to_vec(&opened).map_err(|error| unreadable(error.to_string()))?,
            );
        }
        Ok(ResolvedCredential {
            id: credential,
            kind: record.kind,
            public: record.public,
            secrets,
        })
    }
}

#[async_trait]
impl CredentialResolver for VaultService {
    async fn resolve(
        &self,
        workspace: WorkspaceId,
        credential: CredentialId,
        expected: &[CredentialKind],
        execution: Option<ExecutionId>,
    ) -> Result<ResolvedCredential, ResolveError> {
        let resolved = self.open_resolved(workspace, credential, expected).await?;
        self.ports
            .audit
            .record(&AuditEvent {
                workspace_id: workspace,
                actor: None,
                action: "credential.used",
                target: Some(("credential", credential.to_string())),
                metadata: json!({"execution_id": execution.map(|id| id.to_string())}),
            })
            .await?;
        Ok(resolved)
    }
}

/// The longest credential name the vault stores (its check constraint).
const NAME_MAX_CHARS: usize = 120;

/// `name` with a unique suffix, cut so that the whole fits [`NAME_MAX_CHARS`].
fn owned_name(name: &str) -> String {
    let suffix = format!(" ({})", CredentialId::new());
    let room = NAME_MAX_CHARS - suffix.chars().count();
    let base: String = name.trim().chars().take(room).collect();
    format!("{}{suffix}", base.trim_end())
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
