//! What the workflow use cases need from storage and from the vault.

use std::collections::HashMap;

use async_trait::async_trait;
use fluxolab_credentials::CredentialKind;
use fluxolab_kernel::{
    CredentialId, EnvironmentId, Page, PageRequest, StorageError, Uow, UserId, WorkflowId,
    WorkspaceId,
};

use crate::model::{DeployedTrigger, NewWorkflow, Version, Workflow};

/// Workflows and their versions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WorkflowRepository: Send + Sync {
    async fn insert(&self, uow: &mut Uow, workflow: &NewWorkflow) -> Result<(), StorageError>;
    /// Locks the workflow for the rest of the unit and returns the next version number.
    async fn next_version(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
    ) -> Result<i32, StorageError>;
    async fn insert_version(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        version: &Version,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: WorkflowId,
    ) -> Result<Option<Workflow>, StorageError>;
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Workflow>, StorageError>;
    async fn update(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
        name: &str,
        description: &str,
    ) -> Result<(), StorageError>;
    /// Sets (or, `None`, clears) the workflow started when a run of `id` fails for
    /// good; the caller checked it is another workflow of `workspace`.
    async fn set_error_workflow(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
        error_workflow: Option<WorkflowId>,
    ) -> Result<(), StorageError>;
    async fn archive(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
    ) -> Result<(), StorageError>;
    /// Makes `version` the one active in `environment`, or (`None`) the workflow
    /// inactive there.
    async fn set_active(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
        environment: EnvironmentId,
        version: Option<i32>,
        by: Option<UserId>,
    ) -> Result<(), StorageError>;
    async fn versions(
        &self,
        workspace: WorkspaceId,
        id: WorkflowId,
    ) -> Result<Vec<Version>, StorageError>;
    async fn version(
        &self,
        workspace: WorkspaceId,
        id: WorkflowId,
        version: i32,
    ) -> Result<Option<Version>, StorageError>;
    /// The workflows of `workspace` active in `environment` (not archived) whose
    /// deployed version has a node of type `trigger`, with that node's params; ordered
    /// by workflow name.
    async fn deployed_triggers(
        &self,
        workspace: WorkspaceId,
        environment: EnvironmentId,
        trigger: &str,
    ) -> Result<Vec<DeployedTrigger>, StorageError>;
    /// [`Self::deployed_triggers`] as `uow` sees them, after taking a lock held until
    /// the unit ends: activations of `trigger` workflows in one environment of a
    /// workspace that check the deployed ones this way run one after the other.
    async fn deployed_triggers_locked(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        environment: EnvironmentId,
        trigger: &str,
    ) -> Result<Vec<DeployedTrigger>, StorageError>;
}

/// The kinds of credentials of a workspace (the vault's side of validation).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CredentialCatalog: Send + Sync {
    /// The kind of each of `ids` that exists in `workspace`; others are left out.
    async fn kinds(
        &self,
        workspace: WorkspaceId,
        ids: &[CredentialId],
    ) -> Result<HashMap<CredentialId, CredentialKind>, StorageError>;
}

/// Webhook registrations as workflow activation sees them: a workflow started by
/// `trigger.webhook` gets one bound in each environment it is activated in, and loses
/// it when deactivated there.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookBindings: Send + Sync {
    /// Makes sure a registration of `environment` is bound to `workflow`: one already
    /// bound stays, one unbound at its last deactivation is bound again, else a new
    /// one is created.
    async fn bind(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
        environment: EnvironmentId,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError>;
    /// Unbinds the registrations of `environment` bound to `workflow` (each remembers
    /// it), or of every environment when `environment` is `None`.
    async fn unbind(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
        environment: Option<EnvironmentId>,
    ) -> Result<(), StorageError>;
}
