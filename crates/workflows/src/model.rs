//! Workflows and versions as the domain sees them.

use fluxolab_kernel::{Cursor, EnvironmentId, EnvironmentRef, UserId, WorkflowId, WorkspaceId};
use serde_json::Value;
use time::OffsetDateTime;

use crate::Definition;

/// A workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    pub id: WorkflowId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: String,
    /// Where the workflow is active, and at which version (one per environment).
    pub deployments: Vec<Deployment>,
    pub latest_version: Option<i32>,
    /// The workflow started when a run of this one fails for good.
    pub error_workflow_id: Option<WorkflowId>,
    pub archived_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A workflow's version active in one environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    pub environment: EnvironmentRef,
    /// Whether `environment` is the workspace's default one.
    pub is_default: bool,
    pub version: i32,
    pub activated_at: OffsetDateTime,
}

impl Workflow {
    /// The version active in `environment`, if any.
    pub fn version_in(&self, environment: EnvironmentId) -> Option<i32> {
        self.deployments
            .iter()
            .find(|deployment| deployment.environment.id == environment)
            .map(|deployment| deployment.version)
    }

    /// The version active in the workspace's default environment (`production`).
    pub fn active_version(&self) -> Option<i32> {
        self.deployments
            .iter()
            .find(|deployment| deployment.is_default)
            .map(|deployment| deployment.version)
    }

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

/// A trigger node of the version a workflow has deployed in one environment.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployedTrigger {
    pub workflow_id: WorkflowId,
    pub workflow_name: String,
    pub version: i32,
    /// The trigger node's params.
    pub params: Value,
}
