//! External secret providers (AWS Secrets Manager, HashiCorp Vault / OpenBao KV v2):
//! configured per workspace with their credentials sealed in the vault, tested, and
//! resolved at run time by [`resolver::ProviderResolver`].

pub mod model;
pub mod resolver;

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    AuditLog, Clock, Conflict, ConflictCode, Failure, Forbidden, IntegrationEvent,
    IntegrationEventKind, IntegrationEvents, IntegrationKind, OwnedSecrets, Permission, Principal,
    ProbeReport, SecretStoreClient, StorageError, StoreConnection, UnitOfWorkFactory, Uow,
    ValidationErrors, WorkspaceId,
    integrations::{Changed, record_change_by},
};
use serde_json::{Value, json};

pub use model::{
    DEFAULT_CACHE_TTL_SECONDS, KINDS, MAX_CACHE_TTL_SECONDS, ProviderConfig, SecretProvider,
    SecretProviderId, SubmittedCredentials,
};

use crate::settings::SettingsRepository;

/// A provider as submitted for creation.
#[derive(Clone, Debug)]
pub struct NewProvider {
    pub name: String,
    pub kind: String,
    pub config: Value,
    pub credentials: SubmittedCredentials,
    pub cache_ttl_seconds: Option<u32>,
    pub enabled: Option<bool>,
}

/// Changes to a provider; `None` keeps a field. New `config` keeps the kind; new
/// `credentials` replace the sealed ones whole.
#[derive(Clone, Debug, Default)]
pub struct ProviderPatch {
    pub name: Option<String>,
    pub config: Option<Value>,
    pub credentials: Option<SubmittedCredentials>,
    pub cache_ttl_seconds: Option<u32>,
    pub enabled: Option<bool>,
}

/// Why a provider operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("secret provider not found")]
    NotFound,
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::Invalid(errors) => Failure::Invalid(errors),
            ProviderError::Forbidden(forbidden) => forbidden.into(),
            ProviderError::NotFound => Failure::NotFound("secret provider"),
            ProviderError::Conflict(conflict) => Failure::Conflict(conflict),
            ProviderError::Storage(error) => error.into(),
        }
    }
}

/// Providers in storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProviderRepository: Send + Sync {
    /// The workspace's providers, oldest first.
    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<SecretProvider>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: SecretProviderId,
    ) -> Result<Option<SecretProvider>, StorageError>;
    async fn find_by_name<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Option<SecretProvider>, StorageError>;
    async fn insert(&self, unit: &mut Uow, provider: &SecretProvider) -> Result<(), StorageError>;
    async fn update(&self, unit: &mut Uow, provider: &SecretProvider) -> Result<(), StorageError>;
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: SecretProviderId,
    ) -> Result<(), StorageError>;
    /// What references the provider called `name` (`environment production variable
    /// DB_PASSWORD`…), for the 409 of a delete or rename.
    async fn referrers<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Vec<String>, StorageError>;
}

/// What the provider use cases work with.
pub struct ProviderPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub providers: Arc<dyn ProviderRepository>,
    /// The credentials, sealed in the vault.
    pub secrets: Arc<dyn OwnedSecrets>,
    /// For `allow_internal_network`.
    pub settings: Arc<dyn SettingsRepository>,
    pub client: Arc<dyn SecretStoreClient>,
    pub audit: Arc<dyn AuditLog>,
    pub integration_events: Arc<dyn IntegrationEvents>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ProviderPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderPorts").finish_non_exhaustive()
    }
}

/// The provider use cases: list, read, create, change, delete, test.
#[derive(Debug)]
pub struct ProviderService {
    ports: Arc<ProviderPorts>,
}

/// The probe a test makes: a secret to read, or (`None`) a listing.
pub type ProbeName = Option<String>;

impl ProviderService {
    pub fn new(ports: Arc<ProviderPorts>) -> Self {
        Self { ports }
    }

    #[tracing::instrument(name = "secret_providers.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(&self, principal: &Principal) -> Result<Vec<SecretProvider>, ProviderError> {
        principal.require(Permission::SettingsRead)?;
        Ok(self.ports.providers.list(principal.workspace_id()).await?)
    }

    #[tracing::instrument(name = "secret_providers.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(
        &self,
        principal: &Principal,
        id: SecretProviderId,
    ) -> Result<SecretProvider, ProviderError> {
        principal.require(Permission::SettingsRead)?;
        self.ports
            .providers
            .find(principal.workspace_id(), id)
            .await?
            .ok_or(ProviderError::NotFound)
    }

    async fn check_name(
        &self,
        workspace: WorkspaceId,
        name: &str,
        errors: &mut ValidationErrors,
    ) -> Result<bool, ProviderError> {
        if !model::valid_provider_name(name) {
            errors.add("name", "must be 1 to 40 of a-z, 0-9 and `-`");
            return Ok(false);
        }
        Ok(self
            .ports
            .providers
            .find_by_name(workspace, name)
            .await?
            .is_none())
    }

    fn check_ttl(ttl: Option<u32>, errors: &mut ValidationErrors) {
        if ttl.is_some_and(|ttl| ttl > MAX_CACHE_TTL_SECONDS) {
            errors.add("cache_ttl_seconds", "must be between 0 and 86400");
        }
    }

    fn name_taken(name: &str) -> ProviderError {
        Conflict::new(
            ConflictCode::NameTaken,
            format!("another secret provider is called `{name}`"),
        )
        .into()
    }

    /// Creates a provider; its credentials are sealed in the vault, in the same
    /// transaction as the row, the activity entry and the integration event.
    #[tracing::instrument(name = "secret_providers.create", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn create(
        &self,
        principal: &Principal,
        new: NewProvider,
    ) -> Result<SecretProvider, ProviderError> {
        principal.require(Permission::SettingsManage)?;
        let workspace = principal.workspace_id();
        let mut errors = ValidationErrors::new();
        let free = self.check_name(workspace, &new.name, &mut errors).await?;
        if !KINDS.contains(&new.kind.as_str()) {
            errors.add("kind", "must be `aws_secrets_manager` or `vault`");
        }
        let config = ProviderConfig::parse(&new.kind, &new.config, &mut errors);
        let sealed = model::check_credentials(&new.kind, &new.credentials, &mut errors);
        Self::check_ttl(new.cache_ttl_seconds, &mut errors);
        let (Some(config), Some(sealed), true) = (config, sealed, errors.is_empty()) else {
            return Err(ProviderError::Invalid(errors));
        };
        if !free {
            return Err(Self::name_taken(&new.name));
        }
        let now = self.ports.clock.now();
        let mut unit = self.ports.units.begin().await?;
        let credentials = self
            .ports
            .secrets
            .store(
                unit.as_mut(),
                workspace,
                &format!("Secret provider {} credentials", new.name),
                &sealed,
                principal.user(),
            )
            .await?;
        let provider = SecretProvider {
            id: SecretProviderId::new(),
            workspace_id: workspace,
            name: new.name,
            config,
            credentials,
            enabled: new.enabled.unwrap_or(true),
            cache_ttl_seconds: new.cache_ttl_seconds.unwrap_or(DEFAULT_CACHE_TTL_SECONDS),
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        self.ports
            .providers
            .insert(unit.as_mut(), &provider)
            .await?;
        self.record(
            unit.as_mut(),
            principal,
            ("secret_provider.created", IntegrationEventKind::Configured),
            &provider,
            json!({}),
        )
        .await?;
        unit.commit().await?;
        Ok(provider)
    }

    /// Changes a provider. A rename is refused while something references the old name.
    #[tracing::instrument(name = "secret_providers.update", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn update(
        &self,
        principal: &Principal,
        id: SecretProviderId,
        patch: ProviderPatch,
    ) -> Result<SecretProvider, ProviderError> {
        principal.require(Permission::SettingsManage)?;
        let current = self.get(principal, id).await?;
        let workspace = principal.workspace_id();
        let mut updated = current.clone();
        let mut errors = ValidationErrors::new();
        let mut changed: Vec<&str> = Vec::new();
        let renamed = patch.name.as_ref().filter(|name| **name != current.name);
        let free = match renamed {
            Some(name) => self.check_name(workspace, name, &mut errors).await?,
            None => true,
        };
        if let Some(config) = &patch.config
            && let Some(config) = ProviderConfig::parse(current.config.kind(), config, &mut errors)
            && config != current.config
        {
            updated.config = config;
            changed.push("config");
        }
        let sealed = patch.credentials.as_ref().and_then(|credentials| {
            model::check_credentials(current.config.kind(), credentials, &mut errors)
        });
        Self::check_ttl(patch.cache_ttl_seconds, &mut errors);
        if !errors.is_empty() {
            return Err(ProviderError::Invalid(errors));
        }
        if let Some(name) = renamed {
            if !free {
                return Err(Self::name_taken(name));
            }
            self.refuse_if_referenced(workspace, &current.name).await?;
            updated.name.clone_from(name);
            changed.push("name");
        }
        if let Some(ttl) = patch
            .cache_ttl_seconds
            .filter(|ttl| *ttl != current.cache_ttl_seconds)
        {
            updated.cache_ttl_seconds = ttl;
            changed.push("cache_ttl_seconds");
        }
        if let Some(enabled) = patch.enabled.filter(|enabled| *enabled != current.enabled) {
            updated.enabled = enabled;
            changed.push("enabled");
        }
        if sealed.is_some() {
            changed.push("credentials");
        }
        if changed.is_empty() {
            return Ok(current);
        }
        updated.revision += 1;
        updated.updated_at = self.ports.clock.now();
        let mut unit = self.ports.units.begin().await?;
        if let Some(sealed) = sealed {
            updated.credentials = self
                .ports
                .secrets
                .store(
                    unit.as_mut(),
                    workspace,
                    &format!(
                        "Secret provider {} credentials r{}",
                        updated.name, updated.revision
                    ),
                    &sealed,
                    principal.user(),
                )
                .await?;
        }
        self.ports.providers.update(unit.as_mut(), &updated).await?;
        if updated.credentials != current.credentials {
            self.ports
                .secrets
                .discard(unit.as_mut(), workspace, current.credentials)
                .await?;
        }
        let event = match (current.enabled, updated.enabled) {
            (false, true) => IntegrationEventKind::Enabled,
            (true, false) => IntegrationEventKind::Disabled,
            _ => IntegrationEventKind::Updated,
        };
        self.record(
            unit.as_mut(),
            principal,
            ("secret_provider.updated", event),
            &updated,
            json!({"changed": changed}),
        )
        .await?;
        unit.commit().await?;
        Ok(updated)
    }

    async fn refuse_if_referenced(
        &self,
        workspace: WorkspaceId,
        name: &str,
    ) -> Result<(), ProviderError> {
        let referrers = self.ports.providers.referrers(workspace, name).await?;
        if referrers.is_empty() {
            return Ok(());
        }
        Err(Conflict::new(
            ConflictCode::ProviderInUse,
            format!(
                "the secret provider `{name}` is referenced by {}",
                referrers.join(", ")
            ),
        )
        .into())
    }

    /// Deletes a provider and its sealed credentials; refused (409 `provider_in_use`,
    /// naming them) while anything references it.
    #[tracing::instrument(name = "secret_providers.delete", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn delete(
        &self,
        principal: &Principal,
        id: SecretProviderId,
    ) -> Result<(), ProviderError> {
        principal.require(Permission::SettingsManage)?;
        let provider = self.get(principal, id).await?;
        let workspace = principal.workspace_id();
        self.refuse_if_referenced(workspace, &provider.name).await?;
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .providers
            .delete(unit.as_mut(), workspace, id)
            .await?;
        self.ports
            .secrets
            .discard(unit.as_mut(), workspace, provider.credentials)
            .await?;
        self.record(
            unit.as_mut(),
            principal,
            ("secret_provider.deleted", IntegrationEventKind::Removed),
            &provider,
            json!({}),
        )
        .await?;
        unit.commit().await?;
        Ok(())
    }

    /// Whether the provider answers and accepts its credentials: reads `probe` when
    /// given, else lists one name. Returns no value; records `tested` or `test_failed`.
    #[tracing::instrument(name = "secret_providers.test", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn test(
        &self,
        principal: &Principal,
        id: SecretProviderId,
        probe: ProbeName,
    ) -> Result<ProbeReport, ProviderError> {
        principal.require(Permission::SettingsManage)?;
        let provider = self.get(principal, id).await?;
        let connection = connection_of(&self.ports, &provider).await?;
        let outcome = self.ports.client.probe(&connection, probe.as_deref()).await;
        let (report, event, details) = match outcome {
            Ok(report) if report.reachable && report.authenticated => {
                let details = json!({"name": provider.name, "detail": report.detail});
                (report, IntegrationEventKind::Tested, details)
            }
            Ok(report) => {
                let details = json!({"name": provider.name, "error": report.detail});
                (report, IntegrationEventKind::TestFailed, details)
            }
            Err(failure) => {
                let reachable = !matches!(failure, fluxolab_kernel::StoreFailure::Unreachable(_));
                let report = ProbeReport {
                    reachable,
                    authenticated: reachable
                        && !matches!(failure, fluxolab_kernel::StoreFailure::Unauthenticated(_)),
                    detail: failure.to_string(),
                };
                let details = json!({"name": provider.name, "error": failure.to_string()});
                (report, IntegrationEventKind::TestFailed, details)
            }
        };
        self.ports
            .integration_events
            .record(&IntegrationEvent {
                workspace_id: provider.workspace_id,
                kind: IntegrationKind::SecretProviders,
                integration_id: Some(provider.id.as_uuid()),
                event,
                details,
                actor: Some(principal.actor()),
            })
            .await?;
        Ok(report)
    }

    /// Records a change in the activity log and as an integration event.
    async fn record(
        &self,
        unit: &mut Uow,
        principal: &Principal,
        change: (&'static str, IntegrationEventKind),
        provider: &SecretProvider,
        extra: Value,
    ) -> Result<(), StorageError> {
        let integration = Changed {
            kind: IntegrationKind::SecretProviders,
            target: ("secret_provider", provider.id.to_string()),
            id: Some(provider.id.as_uuid()),
            details: json!({"name": provider.name, "kind": provider.config.kind()}),
        };
        let logs = (&*self.ports.audit, &*self.ports.integration_events);
        record_change_by(logs, unit, principal, change, integration, extra).await
    }
}

/// How to reach `provider`: its configuration, its credentials opened, and whether its
/// workspace lets it reach internal networks.
pub(crate) async fn connection_of(
    ports: &ProviderPorts,
    provider: &SecretProvider,
) -> Result<StoreConnection, StorageError> {
    let credentials = ports
        .secrets
        .open(provider.workspace_id, provider.credentials)
        .await?;
    let kind = model::store_kind(&provider.config, &credentials).ok_or_else(|| {
        StorageError::corrupt("secret provider credentials do not match its kind")
    })?;
    let allow_internal_network = ports
        .settings
        .find(provider.workspace_id)
        .await?
        .is_some_and(|settings| settings.allow_internal_network);
    Ok(StoreConnection {
        provider_id: provider.id.as_uuid(),
        revision: provider.revision,
        kind,
        allow_internal_network,
    })
}
