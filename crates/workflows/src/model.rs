//! Workflows and versions as the domain sees them.

use fluxolab_kernel::{Cursor, UserId, WorkflowId, WorkspaceId};
use time::OffsetDateTime;

use crate::Definition;

/// A workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    pub id: WorkflowId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: String,
    pub active_version: Option<i32>,
    pub latest_version: Option<i32>,
    pub archived_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Workflow {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }
}

/// A workflow to create.
#[derive(Clone, Debug)]
pub struct NewWorkflow {
    pub id: WorkflowId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: String,
    pub created_by: Option<UserId>,
}

/// An immutable, numbered version of a workflow's definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub workflow_id: WorkflowId,
    pub version: i32,
    pub definition: Definition,
    /// SHA-256 of the canonical JSON of the definition.
    pub checksum: String,
    pub created_at: OffsetDateTime,
}
