//! Declarative connectors: a workspace installs a manifest (no code of anyone's runs),
//! and each of its actions becomes a node type `connector.<name>.<action>` of that
//! workspace — listed with the built-ins, validated like them, and run as an
//! `http.request` through the [`NodeEffects`](crate::engine::NodeEffects) port (the
//! SSRF-guarded client, the node's credential applied).

pub mod catalog;
pub mod manifest;
pub mod params;
pub mod run;
pub mod service;

use async_trait::async_trait;
use fluxolab_kernel::{Cursor, Page, PageRequest, StorageError, Uow, WorkspaceId};
use time::OffsetDateTime;

pub use catalog::{KnownType, NodeCatalog};
pub use manifest::{Action, Manifest};
pub use service::{ConnectorError, ConnectorPatch, ConnectorPorts, ConnectorService};

fluxolab_kernel::define_id!(
    /// A connector installed in a workspace.
    ConnectorId
);

/// The prefix of every connector action's node type.
pub const TYPE_PREFIX: &str = "connector.";

/// The connector and action names of a node type `connector.<name>.<action>`.
pub fn action_of(node_type: &str) -> Option<(&str, &str)> {
    let rest = node_type.strip_prefix(TYPE_PREFIX)?;
    let (name, action) = rest.split_once('.')?;
    (!name.is_empty() && !action.is_empty() && !action.contains('.')).then_some((name, action))
}

/// The node type of `action` of the connector called `name`.
pub fn node_type(name: &str, action: &str) -> String {
    format!("{TYPE_PREFIX}{name}.{action}")
}

/// A connector installed in a workspace.
#[derive(Clone, Debug, PartialEq)]
pub struct Connector {
    pub id: ConnectorId,
    pub workspace_id: WorkspaceId,
    pub manifest: Manifest,
    /// A disabled connector's actions are refused by validation and fail when run.
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Connector {
    /// The manifest's name, unique in the workspace.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The position of this connector in a list (oldest first).
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }
}

/// An active workflow's use of a connector: the workflow's name and the node type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorUse {
    pub workflow: String,
    pub node_type: String,
}

/// Installed connectors in storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConnectorRepository: Send + Sync {
    /// A page of the workspace's connectors, oldest first.
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Connector>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: ConnectorId,
    ) -> Result<Option<Connector>, StorageError>;
    /// Inserts `connector`; `false` when the workspace has one of that name already.
    async fn insert(&self, unit: &mut Uow, connector: &Connector) -> Result<bool, StorageError>;
    /// Stores a new manifest (an upgrade) or enabled flag.
    async fn update(&self, unit: &mut Uow, connector: &Connector) -> Result<(), StorageError>;
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: ConnectorId,
    ) -> Result<(), StorageError>;
    /// The nodes of the versions active (in any environment) of the workspace's
    /// workflows whose type is an action of the connector called `name`.
    async fn uses<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Vec<ConnectorUse>, StorageError>;
}

/// The connectors the node registry, validation and the engine see.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConnectorCatalog: Send + Sync {
    /// Every connector installed in the workspace, enabled or not, by name.
    async fn installed(&self, workspace: WorkspaceId) -> Result<Vec<Connector>, StorageError>;
    /// The connector called `name`, enabled or not.
    async fn named<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Option<Connector>, StorageError>;
}

/// A catalogue with no connector installed anywhere (where none are wired).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoConnectors;

#[async_trait]
impl ConnectorCatalog for NoConnectors {
    async fn installed(&self, _workspace: WorkspaceId) -> Result<Vec<Connector>, StorageError> {
        Ok(Vec::new())
    }

    async fn named<'a>(
        &self,
        _workspace: WorkspaceId,
        _name: &'a str,
    ) -> Result<Option<Connector>, StorageError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_types_split_into_connector_and_action() {
        assert_eq!(
            action_of("connector.whatsapp-cloud.send_text"),
            Some(("whatsapp-cloud", "send_text"))
        );
        assert_eq!(action_of("connector.whatsapp-cloud"), None);
        assert_eq!(action_of("connector..send"), None);
        assert_eq!(action_of("connector.a.b.c"), None);
        assert_eq!(action_of("http.request"), None);
        assert_eq!(node_type("a", "b"), "connector.a.b");
    }
}
