//! Workflows as `GET /api/workflows/{id}` shows them and every run started through the
//! API resolves them, cached; the workflow writes evict them in this process right after
//! they commit.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    EnvironmentId, Page, PageRequest, StorageError, Uow, UserId, WorkflowId, WorkspaceId,
};
use fluxolab_workflows::model::{DeployedTrigger, NewWorkflow, Version, Workflow};
use fluxolab_workflows::ports::WorkflowRepository;

use super::Change;

super::cached_repository!(
    /// A `WorkflowRepository` whose `find` is served from the [`AuthCache`](super::AuthCache):
    /// a warm `GET /api/workflows/{id}` reads nothing, and `/run` only checks the quota
    /// and queues. Only workflows found are kept, by id (a workflow never changes
    /// workspace): a lookup from another workspace finds nothing, as in the database,
    /// and an id not found is read again each time. Writes go through and evict the
    /// workflow at their commit; migration 34's trigger announces every change to the
    /// other processes.
    CachedWorkflows wraps WorkflowRepository
);

impl CachedWorkflows {
    fn evict_after_commit(&self, uow: &mut Uow, id: WorkflowId) -> Result<(), StorageError> {
        self.cache.evict_after_commit(uow, Change::Workflow(id))
    }
}

#[async_trait]
impl WorkflowRepository for CachedWorkflows {
    async fn insert(&self, uow: &mut Uow, workflow: &NewWorkflow) -> Result<(), StorageError> {
        // Nothing to evict: an id not found is never kept.
        self.inner.insert(uow, workflow).await
    }

    async fn next_version(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
    ) -> Result<i32, StorageError> {
        self.inner.next_version(uow, workspace, workflow).await
    }

    async fn insert_version(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        version: &Version,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError> {
        self.inner
            .insert_version(uow, workspace, version, created_by)
            .await?;
        self.evict_after_commit(uow, version.workflow_id)
    }

    async fn find(
        &self,
        workspace: WorkspaceId,
        id: WorkflowId,
    ) -> Result<Option<Workflow>, StorageError> {
        let inner = &self.inner;
        let found = self
            .cache
            .read_through_kept(
                &self.cache.shared.workflows,
                id,
                async { Ok(inner.find(workspace, id).await?.map(Arc::new)) },
                Option::is_some,
            )
            .await?;
        Ok(found
            .filter(|workflow| workflow.workspace_id == workspace)
            .map(|workflow| workflow.as_ref().clone()))
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Workflow>, StorageError> {
        self.inner.list(workspace, page).await
    }

    async fn update(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
        name: &str,
        description: &str,
    ) -> Result<(), StorageError> {
        self.inner
            .update(uow, workspace, id, name, description)
            .await?;
        self.evict_after_commit(uow, id)
    }

    async fn set_error_workflow(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
        error_workflow: Option<WorkflowId>,
    ) -> Result<(), StorageError> {
        self.inner
            .set_error_workflow(uow, workspace, id, error_workflow)
            .await?;
        self.evict_after_commit(uow, id)
    }

    async fn archive(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
    ) -> Result<(), StorageError> {
        self.inner.archive(uow, workspace, id).await?;
        self.evict_after_commit(uow, id)
    }

    async fn set_active(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
        environment: EnvironmentId,
        version: Option<i32>,
        by: Option<UserId>,
    ) -> Result<(), StorageError> {
        self.inner
            .set_active(uow, workspace, id, environment, version, by)
            .await?;
        self.evict_after_commit(uow, id)
    }

    async fn versions(
        &self,
        workspace: WorkspaceId,
        id: WorkflowId,
    ) -> Result<Vec<Version>, StorageError> {
        self.inner.versions(workspace, id).await
    }

    async fn version(
        &self,
        workspace: WorkspaceId,
        id: WorkflowId,
        version: i32,
    ) -> Result<Option<Version>, StorageError> {
        self.inner.version(workspace, id, version).await
    }

    async fn deployed_triggers(
        &self,
        workspace: WorkspaceId,
        environment: EnvironmentId,
        trigger: &str,
    ) -> Result<Vec<DeployedTrigger>, StorageError> {
        self.inner
            .deployed_triggers(workspace, environment, trigger)
            .await
    }

    async fn deployed_triggers_locked(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        environment: EnvironmentId,
        trigger: &str,
    ) -> Result<Vec<DeployedTrigger>, StorageError> {
        self.inner
            .deployed_triggers_locked(uow, workspace, environment, trigger)
            .await
    }
}

#[cfg(test)]
#[path = "workflows_tests.rs"]
mod tests;
