//! LDAP directory logins: a workspace's directory settings (the service account's
//! password sealed in the vault), a test of them, logins that provision users and
//! memberships just in time ([`login`]), and the sync that keeps the roles of the
//! members LDAP brought in true to their groups ([`sync`]). On the `business` and
//! `enterprise` plans only.

pub mod login;
pub mod model;
pub mod ports;
pub mod sync;

#[cfg(test)]
mod service_tests;

use std::sync::Arc;

use fluxolab_kernel::{
    AuditLog, Clock, Failure, Forbidden, IntegrationEvent, IntegrationEventKind, IntegrationEvents,
    IntegrationKind, OwnedSecrets, Permission, PlanLimitReached, Principal, StorageError,
    UnitOfWorkFactory, Uow, ValidationErrors, WorkspaceId,
    integrations::{Changed, record_change_by},
};
use serde_json::{Value, json};

pub use model::{LdapConfig, LdapLink, LdapSettings, SubmittedLdap, SyncRecord, SyncResult};
pub use ports::{
    Authentication, Directory, DirectoryAccounts, DirectoryConnection, DirectoryEntry,
    DirectoryFailure, LdapRepository, LocalAccount,
};

use crate::billing::BillingRepository;
use crate::ports::MemberRepository;
use crate::settings::SettingsRepository;
use crate::{PlanCode, Role};

/// The plans LDAP comes with.
pub const LDAP_PLANS: [PlanCode; 2] = [PlanCode::Business, PlanCode::Enterprise];

/// Why an LDAP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("LDAP is not configured")]
    NotConfigured,
    #[error(transparent)]
    PlanLimit(#[from] PlanLimitReached),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<LdapError> for Failure {
    fn from(error: LdapError) -> Self {
        match error {
            LdapError::Invalid(errors) => Failure::Invalid(errors),
            LdapError::Forbidden(forbidden) => forbidden.into(),
            LdapError::NotConfigured => Failure::NotFound("ldap settings"),
            LdapError::PlanLimit(reached) => Failure::PlanLimit(reached),
            LdapError::Storage(error) => error.into(),
        }
    }
}

/// What the LDAP use cases work with.
pub struct LdapPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub repository: Arc<dyn LdapRepository>,
    /// The bind password, sealed in the vault.
    pub secrets: Arc<dyn OwnedSecrets>,
    /// For `allow_internal_network`.
    pub settings: Arc<dyn SettingsRepository>,
    /// For the plan.
    pub billing: Arc<dyn BillingRepository>,
    pub directory: Arc<dyn Directory>,
    pub members: Arc<dyn MemberRepository>,
    /// The member limit, for memberships a login creates.
    pub plans: Arc<dyn fluxolab_kernel::PlanGuard>,
    pub accounts: Arc<dyn DirectoryAccounts>,
    pub audit: Arc<dyn AuditLog>,
    pub integration_events: Arc<dyn IntegrationEvents>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LdapPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapPorts").finish_non_exhaustive()
    }
}

/// What a test found: the service account's bind and search, and what a login of
/// `username` would get. Never a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapTestReport {
    pub ok: bool,
    pub detail: String,
    /// The user looked up (`None` when no username was given, or none was found).
    pub user: Option<(DirectoryEntry, Role)>,
}

/// The LDAP settings use cases: read, configure, remove, test, sync now.
#[derive(Debug)]
pub struct LdapService {
    ports: Arc<LdapPorts>,
}

impl LdapService {
    pub fn new(ports: Arc<LdapPorts>) -> Self {
        Self { ports }
    }

    /// The workspace's settings (the bind password never leaves the vault).
    #[tracing::instrument(name = "ldap.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(&self, principal: &Principal) -> Result<LdapSettings, LdapError> {
        principal.require(Permission::SettingsRead)?;
        self.ports
            .repository
            .find(principal.workspace_id())
            .await?
            .ok_or(LdapError::NotConfigured)
    }

    /// Configures LDAP (a whole configuration); a new bind password is sealed and the
    /// old one discarded, in the same transaction as the row and its records.
    #[tracing::instrument(name = "ldap.put", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn put(
        &self,
        principal: &Principal,
        submitted: SubmittedLdap,
    ) -> Result<LdapSettings, LdapError> {
        principal.require(Permission::SettingsManage)?;
        let workspace = principal.workspace_id();
        let current = self.ports.repository.find(workspace).await?;
        let mut errors = ValidationErrors::new();
        let config = submitted.check(current.is_some(), &mut errors);
        let Some(config) = config.filter(|_| errors.is_empty()) else {
            return Err(LdapError::Invalid(errors));
        };
        require_plan(&*self.ports.billing, workspace).await?;
        let now = self.ports.clock.now();
        let mut unit = self.ports.units.begin().await?;
        let bind_password = match (&submitted.bind_password, &current) {
            (Some(password), _) => {
                self.ports
                    .secrets
                    .store(
                        unit.as_mut(),
                        workspace,
                        // Vault names are unique per workspace: the old entry goes below.
                        &format!("LDAP bind password {}", now.unix_timestamp_nanos()),
                        password,
                        principal.user(),
                    )
                    .await?
            }
            (None, Some(current)) => current.bind_password,
            (None, None) => return Err(LdapError::Invalid(errors)),
        };
        let settings = LdapSettings {
            workspace_id: workspace,
            config,
            bind_password,
            last_sync: current
                .as_ref()
                .and_then(|current| current.last_sync.clone()),
            created_at: current.as_ref().map_or(now, |current| current.created_at),
            updated_at: now,
        };
        self.ports.repository.save(unit.as_mut(), &settings).await?;
        if let Some(current) = &current
            && current.bind_password != bind_password
        {
            self.ports
                .secrets
                .discard(unit.as_mut(), workspace, current.bind_password)
                .await?;
        }
        let (action, event) = match &current {
            None => ("ldap.configured", IntegrationEventKind::Configured),
            Some(current) => (
                "ldap.updated",
                match (current.config.enabled, settings.config.enabled) {
                    (false, true) => IntegrationEventKind::Enabled,
                    (true, false) => IntegrationEventKind::Disabled,
                    _ => IntegrationEventKind::Updated,
                },
            ),
        };
        let details = json!({
            "url": settings.config.url,
            "bind_password_changed": submitted.bind_password.is_some(),
        });
        self.record(unit.as_mut(), principal, (action, event), details)
            .await?;
        unit.commit().await?;
        Ok(settings)
    }

    /// Removes the settings, their sealed password and the links of the members LDAP
    /// brought in (the memberships stay).
    #[tracing::instrument(name = "ldap.delete", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn delete(&self, principal: &Principal) -> Result<(), LdapError> {
        principal.require(Permission::SettingsManage)?;
        let current = self.get(principal).await?;
        let workspace = principal.workspace_id();
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .repository
            .delete(unit.as_mut(), workspace)
            .await?;
        self.ports
            .secrets
            .discard(unit.as_mut(), workspace, current.bind_password)
            .await?;
        self.record(
            unit.as_mut(),
            principal,
            ("ldap.removed", IntegrationEventKind::Removed),
            json!({"url": current.config.url}),
        )
        .await?;
        unit.commit().await?;
        Ok(())
    }

    /// Binds with the service account, searches, and (given a username) tells what a
    /// login would get. Records `tested` or `test_failed`.
    #[tracing::instrument(name = "ldap.test", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn test(
        &self,
        principal: &Principal,
        username: Option<String>,
    ) -> Result<LdapTestReport, LdapError> {
        principal.require(Permission::SettingsManage)?;
        let settings = self.get(principal).await?;
        require_plan(&*self.ports.billing, settings.workspace_id).await?;
        let connection = connection_of(&self.ports, &settings).await?;
        let usernames: Vec<String> = username.iter().cloned().collect();
        let report = match self.ports.directory.lookup(&connection, &usernames).await {
            Ok(found) => {
                let entry = found.into_iter().flatten().next();
                let detail = match (&username, &entry) {
                    (None, _) => "the service account bound and searched".to_owned(),
                    (Some(name), None) => format!("no directory entry matches `{name}`"),
                    (Some(_), Some(entry)) => format!("found {}", entry.dn),
                };
                let user = entry.map(|entry| {
                    let role = settings.config.role_for(&entry.groups);
                    (entry, role)
                });
                LdapTestReport {
                    ok: username.is_none() || user.is_some(),
                    detail,
                    user,
                }
            }
            Err(failure) => LdapTestReport {
                ok: false,
                detail: failure.to_string(),
                user: None,
            },
        };
        let (event, details) = if report.ok {
            (IntegrationEventKind::Tested, json!({"operation": "test"}))
        } else {
            (
                IntegrationEventKind::TestFailed,
                json!({"operation": "test", "error": report.detail}),
            )
        };
        self.ports
            .integration_events
            .record(&IntegrationEvent {
                workspace_id: settings.workspace_id,
                kind: IntegrationKind::Ldap,
                integration_id: None,
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
        details: Value,
    ) -> Result<(), StorageError> {
        let integration = Changed {
            kind: IntegrationKind::Ldap,
            target: ("ldap", principal.workspace_id().to_string()),
            id: None,
            details,
        };
        let logs = (&*self.ports.audit, &*self.ports.integration_events);
        record_change_by(logs, unit, principal, change, integration, Value::Null).await
    }
}

/// Refuses (`plan_limit`) unless the workspace's plan includes LDAP.
pub(crate) async fn require_plan(
    billing: &dyn BillingRepository,
    workspace: WorkspaceId,
) -> Result<(), LdapError> {
    let plan = billing.subscription(workspace).await?.plan;
    if LDAP_PLANS.contains(&plan) {
        return Ok(());
    }
    Err(PlanLimitReached {
        name: "ldap",
        value: 0,
        current: 0,
    }
    .into())
}

/// How to reach the directory of `settings`: the bind password opened, and whether the
/// workspace lets integrations reach internal networks.
pub(crate) async fn connection_of(
    ports: &LdapPorts,
    settings: &LdapSettings,
) -> Result<DirectoryConnection, StorageError> {
    let bind_password = ports
        .secrets
        .open(settings.workspace_id, settings.bind_password)
        .await?;
    let allow_internal_network = ports
        .settings
        .find(settings.workspace_id)
        .await?
        .is_some_and(|settings| settings.allow_internal_network);
    let config = &settings.config;
    Ok(DirectoryConnection {
        url: config.url.clone(),
        start_tls: config.start_tls,
        bind_dn: config.bind_dn.clone(),
        bind_password,
        base_dn: config.base_dn.clone(),
        user_filter: config.user_filter.clone(),
        email_attribute: config.email_attribute.clone(),
        name_attribute: config.name_attribute.clone(),
        group_base_dn: config
            .group_base_dn
            .clone()
            .unwrap_or_else(|| config.base_dn.clone()),
        group_filter: config.group_filter.clone(),
        allow_internal_network,
    })
}
