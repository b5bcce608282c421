//! The connector use cases: list, read, install, enable/disable/upgrade, delete — and
//! the node types a workspace's connectors add to the registry.

use std::sync::Arc;

use fluxolab_kernel::{
    AuditLog, Clock, Conflict, ConflictCode, Failure, Forbidden, IntegrationEventKind,
    IntegrationEvents, IntegrationKind, Page, PageRequest, Permission, Principal, StorageError,
    UnitOfWorkFactory, Uow, ValidationErrors,
    integrations::{Changed, record_change_by},
};
use serde_json::{Value, json};

use super::manifest::{self, Manifest};
use super::{Connector, ConnectorCatalog, ConnectorId, ConnectorRepository, ConnectorUse};

/// Why a connector operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("connector not found")]
    NotFound,
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<ConnectorError> for Failure {
    fn from(error: ConnectorError) -> Self {
        match error {
            ConnectorError::Invalid(errors) => Failure::Invalid(errors),
            ConnectorError::Forbidden(forbidden) => forbidden.into(),
            ConnectorError::NotFound => Failure::NotFound("connector"),
            ConnectorError::Conflict(conflict) => Failure::Conflict(conflict),
            ConnectorError::Storage(error) => error.into(),
        }
    }
}

/// Changes to a connector; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct ConnectorPatch {
    pub enabled: Option<bool>,
    /// A new manifest of the same name and a higher version (an upgrade).
    pub manifest: Option<Value>,
}

/// What the connector use cases work with.
pub struct ConnectorPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub connectors: Arc<dyn ConnectorRepository>,
    pub catalog: Arc<dyn ConnectorCatalog>,
    pub audit: Arc<dyn AuditLog>,
    pub integration_events: Arc<dyn IntegrationEvents>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ConnectorPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorPorts").finish_non_exhaustive()
    }
}

/// The connector use cases.
#[derive(Debug)]
pub struct ConnectorService {
    ports: ConnectorPorts,
}

/// `Workflow A (connector.x.send), Workflow B (…)`.
fn listed(uses: &[ConnectorUse]) -> String {
    uses.iter()
        .map(|used| format!("{} ({})", used.workflow, used.node_type))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ConnectorService {
    pub fn new(ports: ConnectorPorts) -> Self {
        Self { ports }
    }

    /// A page of the workspace's connectors, oldest first.
    #[tracing::instrument(name = "connectors.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<Connector>, ConnectorError> {
        principal.require(Permission::SettingsRead)?;
        Ok(self
            .ports
            .connectors
            .list(principal.workspace_id(), page)
            .await?)
    }

    #[tracing::instrument(name = "connectors.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(
        &self,
        principal: &Principal,
        id: ConnectorId,
    ) -> Result<Connector, ConnectorError> {
        principal.require(Permission::SettingsRead)?;
        self.ports
            .connectors
            .find(principal.workspace_id(), id)
            .await?
            .ok_or(ConnectorError::NotFound)
    }

    /// The enabled connectors of the caller's workspace, whose actions are node types
    /// there (any member may read the node registry).
    #[tracing::instrument(name = "connectors.node_types", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn enabled(&self, principal: &Principal) -> Result<Vec<Connector>, ConnectorError> {
        let installed = self
            .ports
            .catalog
            .installed(principal.workspace_id())
            .await?;
        Ok(installed
            .into_iter()
            .filter(|connector| connector.enabled)
            .collect())
    }

    /// Installs the connector `manifest` describes (the body of the request, so its
    /// problems are named from its root: `actions[0].path`).
    #[tracing::instrument(name = "connectors.install", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn install(
        &self,
        principal: &Principal,
        manifest: &Value,
    ) -> Result<Connector, ConnectorError> {
        principal.require(Permission::SettingsManage)?;
        let manifest = manifest::parse(manifest, "").map_err(ConnectorError::Invalid)?;
        let now = self.ports.clock.now();
        let connector = Connector {
            id: ConnectorId::new(),
            workspace_id: principal.workspace_id(),
            manifest,
            enabled: true,
            created_at: now,
            updated_at: now,
        };
        let mut unit = self.ports.units.begin().await?;
        if !self
            .ports
            .connectors
            .insert(unit.as_mut(), &connector)
            .await?
        {
            return Err(Conflict::new(
                ConflictCode::NameTaken,
                format!(
                    "a connector called `{}` is installed already; upgrade it with PATCH",
                    connector.name()
                ),
            )
            .into());
        }
        self.record(
            unit.as_mut(),
            principal,
            ("connector.installed", IntegrationEventKind::Configured),
            &connector,
            json!({}),
        )
        .await?;
        unit.commit().await?;
        Ok(connector)
    }

    /// Enables, disables or upgrades a connector. An upgrade keeps the name, raises the
    /// version, and may not drop an action an active workflow uses.
    #[tracing::instrument(name = "connectors.update", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn update(
        &self,
        principal: &Principal,
        id: ConnectorId,
        patch: ConnectorPatch,
    ) -> Result<Connector, ConnectorError> {
        principal.require(Permission::SettingsManage)?;
        let current = self.get(principal, id).await?;
        let mut updated = current.clone();
        let mut changed: Vec<&str> = Vec::new();
        let mut extra = json!({});
        if let Some(submitted) = &patch.manifest {
            let upgrade = self.upgrade_to(&current, submitted).await?;
            extra = json!({
                "previous_version": current.manifest.version.to_string(),
                "version": upgrade.version.to_string(),
            });
            updated.manifest = upgrade;
            changed.push("manifest");
        }
        if let Some(enabled) = patch.enabled.filter(|enabled| *enabled != current.enabled) {
            updated.enabled = enabled;
            changed.push("enabled");
        }
        if changed.is_empty() {
            return Ok(current);
        }
        updated.updated_at = self.ports.clock.now();
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .connectors
            .update(unit.as_mut(), &updated)
            .await?;
        let event = match (current.enabled, updated.enabled) {
            (false, true) => IntegrationEventKind::Enabled,
            (true, false) => IntegrationEventKind::Disabled,
            _ => IntegrationEventKind::Updated,
        };
        if let Some(details) = extra.as_object_mut() {
            details.insert("changed".to_owned(), json!(changed));
        }
        self.record(
            unit.as_mut(),
            principal,
            ("connector.updated", event),
            &updated,
            extra,
        )
        .await?;
        unit.commit().await?;
        Ok(updated)
    }

    /// The manifest `submitted` as an upgrade of `current`.
    async fn upgrade_to(
        &self,
        current: &Connector,
        submitted: &Value,
    ) -> Result<Manifest, ConnectorError> {
        let upgrade = manifest::parse(submitted, "manifest").map_err(ConnectorError::Invalid)?;
        if upgrade.name != current.manifest.name {
            return Err(ConnectorError::Invalid(ValidationErrors::single(
                "manifest.name",
                format!(
                    "must stay `{}`: install a connector of another name instead",
                    current.manifest.name
                ),
            )));
        }
        // Precedence: build metadata (`+build.5`) does not make a version higher.
        if upgrade.version.cmp_precedence(&current.manifest.version) != std::cmp::Ordering::Greater
        {
            return Err(Conflict::new(
                ConflictCode::VersionNotHigher,
                format!(
                    "version {} is not higher than the installed {}",
                    upgrade.version, current.manifest.version
                ),
            )
            .into());
        }
        let uses = self
            .ports
            .connectors
            .uses(current.workspace_id, current.name())
            .await?;
        let dropped: Vec<ConnectorUse> = uses
            .into_iter()
            .filter(|used| {
                super::action_of(&used.node_type)
                    .is_none_or(|(_, action)| upgrade.action(action).is_none())
            })
            .collect();
        if !dropped.is_empty() {
            return Err(Conflict::new(
                ConflictCode::ConnectorInUse,
                format!(
                    "version {} drops actions that active workflows use: {}",
                    upgrade.version,
                    listed(&dropped)
                ),
            )
            .into());
        }
        Ok(upgrade)
    }

    /// Deletes a connector; refused (409 `connector_in_use`, naming them) while active
    /// workflows use one of its actions.
    #[tracing::instrument(name = "connectors.delete", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn delete(
        &self,
        principal: &Principal,
        id: ConnectorId,
    ) -> Result<(), ConnectorError> {
        principal.require(Permission::SettingsManage)?;
        let connector = self.get(principal, id).await?;
        let uses = self
            .ports
            .connectors
            .uses(connector.workspace_id, connector.name())
            .await?;
        if !uses.is_empty() {
            return Err(Conflict::new(
                ConflictCode::ConnectorInUse,
                format!(
                    "the connector `{}` is used by active workflows: {}",
                    connector.name(),
                    listed(&uses)
                ),
            )
            .into());
        }
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .connectors
            .delete(unit.as_mut(), connector.workspace_id, id)
            .await?;
        self.record(
            unit.as_mut(),
            principal,
            ("connector.deleted", IntegrationEventKind::Removed),
            &connector,
            json!({}),
        )
        .await?;
        unit.commit().await?;
        Ok(())
    }

    /// Records a change in the activity log and as an integration event.
    async fn record(
        &self,
        unit: &mut Uow,
        principal: &Principal,
        change: (&'static str, IntegrationEventKind),
        connector: &Connector,
        extra: Value,
    ) -> Result<(), StorageError> {
        let integration = Changed {
            kind: IntegrationKind::Connectors,
            target: ("connector", connector.id.to_string()),
            id: Some(connector.id.as_uuid()),
            details: json!({
                "name": connector.name(),
                "version": connector.manifest.version.to_string(),
            }),
        };
        let logs = (&*self.ports.audit, &*self.ports.integration_events);
        record_change_by(logs, unit, principal, change, integration, extra).await
    }
}
