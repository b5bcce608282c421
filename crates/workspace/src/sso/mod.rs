//! OpenID Connect single sign-on: a workspace's provider configured (discovered and
//! checked first, its client secret sealed in the vault), tested and removed here; the
//! login itself (authorization code + PKCE, tickets) in [`login`].

pub mod login;
pub mod model;
pub mod ports;

use std::sync::Arc;
use std::time::Duration;

use fluxolab_kernel::{
    AuditLog, Clock, Failure, Forbidden, IntegrationEvent, IntegrationEventKind, IntegrationEvents,
    IntegrationKind, NoRandomness, OwnedSecrets, Permission, PlanGuard, PlanLimitReached,
    Principal, StorageError, UnitOfWorkFactory, UserId, ValidationErrors, WorkspaceId,
    integrations::{Changed, record_change_by},
};
use serde_json::{Value, json};

pub use model::{SsoConfig, SsoConfigId, SsoSubmission};
pub use ports::{OidcClient, OidcFailure, ProviderInfo, SsoDirectory, SsoLogins, SsoRepository};

use crate::Role;
use crate::settings::SettingsRepository;

/// How long a process trusts what it read of a workspace's `enforce_sso` (changes made
/// through this process are seen at once).
pub const ENFORCEMENT_CACHE_TTL: Duration = Duration::from_secs(10);

/// Why an SSO configuration operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("SSO is not configured")]
    NotFound,
    #[error(transparent)]
    PlanLimit(#[from] PlanLimitReached),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
}

impl From<SsoError> for Failure {
    fn from(error: SsoError) -> Self {
        match error {
            SsoError::Invalid(errors) => Failure::Invalid(errors),
            SsoError::Forbidden(forbidden) => forbidden.into(),
            SsoError::NotFound => Failure::NotFound("SSO configuration"),
            SsoError::PlanLimit(reached) => Failure::PlanLimit(reached),
            SsoError::Storage(error) => error.into(),
            SsoError::Randomness(error) => error.into(),
        }
    }
}

/// What the SSO use cases work with.
pub struct SsoPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub configs: Arc<dyn SsoRepository>,
    pub logins: Arc<dyn SsoLogins>,
    pub directory: Arc<dyn SsoDirectory>,
    /// The client secret, sealed in the vault.
    pub secrets: Arc<dyn OwnedSecrets>,
    /// For `allow_internal_network`.
    pub settings: Arc<dyn SettingsRepository>,
    pub client: Arc<dyn OidcClient>,
    /// For the members a sign-in provisions.
    pub plans: Arc<dyn PlanGuard>,
    pub audit: Arc<dyn AuditLog>,
    pub integration_events: Arc<dyn IntegrationEvents>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SsoPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoPorts").finish_non_exhaustive()
    }
}

/// What a test of the configured provider found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoTestReport {
    pub ok: bool,
    pub detail: String,
    /// Set when discovery succeeded.
    pub provider: Option<ProviderInfo>,
}

/// The SSO use cases.
pub struct SsoService {
    ports: Arc<SsoPorts>,
    /// Workspace → whether it enforces SSO now.
    enforced: moka::sync::Cache<WorkspaceId, bool>,
}

impl std::fmt::Debug for SsoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoService").finish_non_exhaustive()
    }
}

impl SsoService {
    pub fn new(ports: Arc<SsoPorts>) -> Self {
        Self {
            ports,
            enforced: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ENFORCEMENT_CACHE_TTL)
                .build(),
        }
    }

    async fn allow_internal(&self, workspace: WorkspaceId) -> Result<bool, StorageError> {
        Ok(self
            .ports
            .settings
            .find(workspace)
            .await?
            .is_some_and(|settings| settings.allow_internal_network))
    }

    async fn require_plan(&self, workspace: WorkspaceId) -> Result<(), SsoError> {
        let plan = self.ports.configs.plan_of(workspace).await?;
        if plan.is_some_and(model::plan_has_sso) {
            Ok(())
        } else {
            Err(model::sso_not_in_plan().into())
        }
    }

    /// The workspace's configuration (its secret is a vault entry, never returned).
    #[tracing::instrument(name = "sso.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(&self, principal: &Principal) -> Result<SsoConfig, SsoError> {
        principal.require(Permission::SettingsRead)?;
        self.ports
            .configs
            .find(principal.workspace_id())
            .await?
            .ok_or(SsoError::NotFound)
    }

    /// Creates or replaces the configuration once the issuer's discovery document and
    /// JWKS check out (`issuer` is named otherwise); the secret, the row, the activity
    /// and the integration event are written in one transaction.
    #[tracing::instrument(name = "sso.configure", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn configure(
        &self,
        principal: &Principal,
        submission: SsoSubmission,
    ) -> Result<SsoConfig, SsoError> {
        principal.require(Permission::SettingsManage)?;
        let workspace = principal.workspace_id();
        self.require_plan(workspace).await?;
        let current = self.ports.configs.find(workspace).await?;
        let checked = model::check(submission, current.is_some()).map_err(SsoError::Invalid)?;
        let allow_internal = self.allow_internal(workspace).await?;
        let provider = self
            .ports
            .client
            .discover(&checked.issuer, allow_internal)
            .await
            .map_err(|failure| {
                SsoError::Invalid(ValidationErrors::single("issuer", failure.to_string()))
            })?;
        let now = self.ports.clock.now();
        let mut unit = self.ports.units.begin().await?;
        let client_secret = match (&checked.client_secret, &current) {
            (Some(secret), _) => {
                self.ports
                    .secrets
                    .store(
                        unit.as_mut(),
                        workspace,
                        "SSO client secret",
                        secret,
                        principal.user(),
                    )
                    .await?
            }
            (None, Some(current)) => current.client_secret,
            (None, None) => {
                return Err(SsoError::Invalid(ValidationErrors::single(
                    "client_secret",
                    "is required",
                )));
            }
        };
        let config = SsoConfig {
            id: current.as_ref().map_or_else(SsoConfigId::new, |c| c.id),
            workspace_id: workspace,
            issuer: checked.issuer,
            client_id: checked.client_id,
            client_secret,
            scopes: checked.scopes,
            allowed_domains: checked.allowed_domains,
            groups_claim: checked.groups_claim,
            role_mapping: checked.role_mapping,
            default_role: checked.default_role,
            jit_provisioning: checked.jit_provisioning,
            enforce_sso: checked.enforce_sso,
            enabled: checked.enabled,
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
        };
        self.ports.configs.save(unit.as_mut(), &config).await?;
        if let Some(current) = &current
            && current.client_secret != config.client_secret
        {
            self.ports
                .secrets
                .discard(unit.as_mut(), workspace, current.client_secret)
                .await?;
        }
        let event = match &current {
            None => IntegrationEventKind::Configured,
            Some(current) if current.enabled != config.enabled => {
                if config.enabled {
                    IntegrationEventKind::Enabled
                } else {
                    IntegrationEventKind::Disabled
                }
            }
            Some(_) => IntegrationEventKind::Updated,
        };
        let details = json!({
            "issuer": config.issuer,
            "signing_algorithms": provider.signing_algorithms,
            "secret_changed": checked.client_secret.is_some(),
            "enforce_sso": config.enforce_sso,
            "enabled": config.enabled,
        });
        self.record(
            unit.as_mut(),
            principal,
            ("sso.configured", event),
            &config,
            details,
        )
        .await?;
        unit.commit().await?;
        self.enforced.invalidate(&workspace);
        Ok(config)
    }

    /// Removes the configuration and its sealed secret.
    #[tracing::instrument(name = "sso.delete", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn delete(&self, principal: &Principal) -> Result<(), SsoError> {
        principal.require(Permission::SettingsManage)?;
        let config = self.get(principal).await?;
        let workspace = principal.workspace_id();
        let mut unit = self.ports.units.begin().await?;
        self.ports.configs.delete(unit.as_mut(), workspace).await?;
        self.ports
            .secrets
            .discard(unit.as_mut(), workspace, config.client_secret)
            .await?;
        let details = json!({"issuer": config.issuer});
        self.record(
            unit.as_mut(),
            principal,
            ("sso.removed", IntegrationEventKind::Removed),
            &config,
            details,
        )
        .await?;
        unit.commit().await?;
        self.enforced.invalidate(&workspace);
        Ok(())
    }

    /// Discovers the configured issuer again (document and JWKS); records `tested` or
    /// `test_failed`.
    #[tracing::instrument(name = "sso.test", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn test(&self, principal: &Principal) -> Result<SsoTestReport, SsoError> {
        principal.require(Permission::SettingsManage)?;
        let config = self.get(principal).await?;
        let allow_internal = self.allow_internal(config.workspace_id).await?;
        let outcome = self
            .ports
            .client
            .discover(&config.issuer, allow_internal)
            .await;
        let (report, event, details) = match outcome {
            Ok(provider) => {
                let detail = format!(
                    "discovery and JWKS ({} keys) answered; ID tokens signed with {}",
                    provider.keys,
                    provider.signing_algorithms.join(", ")
                );
                let details = json!({"issuer": config.issuer, "detail": detail});
                let report = SsoTestReport {
                    ok: true,
                    detail,
                    provider: Some(provider),
                };
                (report, IntegrationEventKind::Tested, details)
            }
            Err(failure) => {
                let detail = failure.to_string();
                let details = json!({"issuer": config.issuer, "error": detail});
                let report = SsoTestReport {
                    ok: false,
                    detail,
                    provider: None,
                };
                (report, IntegrationEventKind::TestFailed, details)
            }
        };
        self.ports
            .integration_events
            .record(&IntegrationEvent {
                workspace_id: config.workspace_id,
                kind: IntegrationKind::Sso,
                integration_id: Some(config.id.as_uuid()),
                event,
                details,
                actor: Some(principal.actor()),
            })
            .await?;
        Ok(report)
    }

    /// Whether `user`, signed in by password, may open `workspace`: yes unless the
    /// workspace enforces SSO and the user is not one of its owners (break-glass).
    #[tracing::instrument(name = "sso.admits_password", skip_all, fields(workspace_id = %workspace))]
    pub async fn admits_password(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<bool, StorageError> {
        let enforced = match self.enforced.get(&workspace) {
            Some(enforced) => enforced,
            None => {
                let enforced = self
                    .ports
                    .configs
                    .find(workspace)
                    .await?
                    .is_some_and(|config| config.enabled && config.enforce_sso);
                self.enforced.insert(workspace, enforced);
                enforced
            }
        };
        if !enforced {
            return Ok(true);
        }
        let role = self.ports.directory.role_of(workspace, user).await?;
        Ok(role == Some(Role::Owner))
    }

    /// Records a change in the activity log and as an integration event.
    async fn record(
        &self,
        unit: &mut fluxolab_kernel::Uow,
        principal: &Principal,
        change: (&'static str, IntegrationEventKind),
        config: &SsoConfig,
        details: Value,
    ) -> Result<(), StorageError> {
        let integration = Changed {
            kind: IntegrationKind::Sso,
            target: ("sso", config.id.to_string()),
            id: Some(config.id.as_uuid()),
            details,
        };
        let logs = (&*self.ports.audit, &*self.ports.integration_events);
        record_change_by(logs, unit, principal, change, integration, Value::Null).await
    }
}

#[cfg(test)]
mod tests;
