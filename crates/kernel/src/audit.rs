//! The activity log as a port: every domain records its changes through it.

use async_trait::async_trait;
use serde_json::Value;

use crate::{Actor, Principal, StorageError, Uow, WorkspaceId};

/// One entry of the activity log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub workspace_id: WorkspaceId,
    /// `None` for the system itself (e.g. a node using a credential).
    pub actor: Option<Actor>,
    /// `noun.verb`, e.g. `credential.created`.
    pub action: &'static str,
    /// What was acted on: a type and an id.
    pub target: Option<(&'static str, String)>,
    pub metadata: Value,
}

impl AuditEvent {
    /// What `principal` did in its workspace: `action` on `target` (a type and an id),
    /// described by `metadata`.
    pub fn by(
        principal: &Principal,
        action: &'static str,
        target: (&'static str, String),
        metadata: Value,
    ) -> Self {
        Self {
            workspace_id: principal.workspace_id(),
            actor: Some(principal.actor()),
            action,
            target: Some(target),
            metadata,
        }
    }
}

/// Writes the activity log.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Records inside a unit of work, with the change it describes.
    async fn record_in(&self, uow: &mut Uow, event: &AuditEvent) -> Result<(), StorageError>;
    /// Records on its own (for events that change nothing else, like a use).
    async fn record(&self, event: &AuditEvent) -> Result<(), StorageError>;
}
