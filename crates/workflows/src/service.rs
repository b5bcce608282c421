//! The workflow use cases: workflows, immutable versions, activation.

use std::sync::Arc;

use fluxolab_kernel::{
    AuditEvent, AuditLog, Clock, Conflict, CredentialId, EnvironmentDirectory, Failure, Forbidden,
    LimitedResource, Page, PageRequest, Permission, PlanGuard, PlanLimitReached, Principal,
    StorageError, UnitOfWorkFactory, ValidationErrors, WorkflowId,
};
use ring::digest::{SHA256, digest};
use serde_json::json;
use time::OffsetDateTime;

use crate::Definition;
use crate::code::{CODE_NODE_TYPE, CodeRunner, WorkspaceCodeMaxima, check_code_nodes};
use crate::connectors::{ConnectorCatalog, NoConnectors, NodeCatalog};
use crate::model::{NewWorkflow, Version, Workflow};
use crate::ports::{CredentialCatalog, WebhookBindings, WorkflowRepository};
use crate::scheduler::ScheduleStore;
use crate::validate::validate_in;

#[path = "service_deployments.rs"]
mod deployments;
#[path = "service_schedules.rs"]
mod schedules;
pub use schedules::ScheduleView;

/// Why a workflow operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    PlanLimit(#[from] PlanLimitReached),
    /// The period's execution quota is used up.
    #[error("the workspace's executions for this period are used up")]
    QuotaExceeded { retry_after_seconds: u64 },
    /// A run of the deployed version was asked for where none is deployed.
    #[error("the workflow is not active in `{environment}`; activate a version there first")]
    NotActive { environment: String },
    /// The current state refuses it (an MCP tool name already active, …).
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<WorkflowError> for Failure {
    fn from(error: WorkflowError) -> Self {
        match error {
            WorkflowError::Invalid(errors) => Failure::Invalid(errors),
            WorkflowError::Forbidden(forbidden) => forbidden.into(),
            WorkflowError::NotFound(what) => Failure::NotFound(what),
            WorkflowError::PlanLimit(reached) => reached.into(),
            WorkflowError::QuotaExceeded {
                retry_after_seconds,
            } => Failure::QuotaExceeded {
                retry_after_seconds,
            },
            WorkflowError::NotActive { environment } => Failure::Invalid(ValidationErrors::single(
                "workflow",
                format!("is not active in `{environment}`; activate a version there first"),
            )),
            WorkflowError::Conflict(conflict) => Failure::Conflict(conflict),
            WorkflowError::Storage(error) => error.into(),
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> WorkflowError {
    WorkflowError::Invalid(ValidationErrors::single(field, message))
}

/// Storage the use cases work through.
pub struct WorkflowPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub workflows: Arc<dyn WorkflowRepository>,
    pub credentials: Arc<dyn CredentialCatalog>,
    pub webhooks: Arc<dyn WebhookBindings>,
    pub plans: Arc<dyn PlanGuard>,
    pub audit: Arc<dyn AuditLog>,
    pub environments: Arc<dyn EnvironmentDirectory>,
    /// The schedules of `trigger.schedule` workflows, registered on activation.
    pub schedules: Arc<dyn ScheduleStore>,
    /// Tells validation and schedule registration the time.
    pub clock: Arc<dyn Clock>,
    /// Compiles `code.javascript` nodes when a definition is saved.
    pub code: Arc<dyn CodeRunner>,
    /// What each workspace lets its code nodes set.
    pub code_maxima: Arc<dyn WorkspaceCodeMaxima>,
}

impl std::fmt::Debug for WorkflowPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowPorts").finish_non_exhaustive()
    }
}

/// A workflow to create; a definition given here becomes version 1.
#[derive(Debug)]
pub struct CreateWorkflow {
    pub name: String,
    pub description: Option<String>,
    pub definition: Option<Definition>,
    /// The workflow started when a run of this one fails for good.
    pub error_workflow_id: Option<WorkflowId>,
}

/// What `PATCH /api/workflows/{id}` changes (`None`: unchanged).
#[derive(Debug, Default)]
pub struct WorkflowChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` clears it.
    pub error_workflow_id: Option<Option<WorkflowId>>,
}

/// The workflow use cases.
pub struct WorkflowService {
    ports: WorkflowPorts,
    /// The workspace's connectors, whose actions are node types there.
    connectors: Arc<dyn ConnectorCatalog>,
}

impl std::fmt::Debug for WorkflowService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowService")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

/// SHA-256 (hex) of the definition's JSON.
pub fn checksum(definition: &Definition) -> String {
    let bytes = serde_json::to_vec(definition).unwrap_or_default();
    hex::encode(digest(&SHA256, &bytes).as_ref())
}

impl WorkflowService {
    pub fn new(ports: WorkflowPorts) -> Self {
        Self {
            ports,
            connectors: Arc::new(NoConnectors),
        }
    }

    /// Validates definitions against the connectors of `catalog` too (without, a
    /// `connector.*` node is an unknown type).
    pub fn with_connectors(mut self, catalog: Arc<dyn ConnectorCatalog>) -> Self {
        self.connectors = catalog;
        self
    }

    /// Refuses one more `resource` when the workspace's plan is at its limit.
    async fn admit(
        &self,
        unit: &mut fluxolab_kernel::Uow,
        workspace: fluxolab_kernel::WorkspaceId,
        resource: LimitedResource,
    ) -> Result<(), WorkflowError> {
        match self.ports.plans.admit(unit, workspace, resource).await? {
            Some(reached) => Err(reached.into()),
            None => Ok(()),
        }
    }

    /// Validates a definition against the registry and the workspace's credentials, and
    /// compiles its code nodes.
    async fn check(
        &self,
        principal: &Principal,
        definition: &Definition,
    ) -> Result<(), WorkflowError> {
        let ids: Vec<CredentialId> = definition
            .nodes
            .iter()
            .filter_map(|node| node.credential_id)
            .collect();
        let kinds = if ids.is_empty() {
            Default::default()
        } else {
            self.ports
                .credentials
                .kinds(principal.workspace_id(), &ids)
                .await?
        };
        let catalog = if definition
            .nodes
            .iter()
            .any(|node| crate::connectors::action_of(&node.node_type).is_some())
        {
            NodeCatalog::with(self.connectors.installed(principal.workspace_id()).await?)
        } else {
            NodeCatalog::default()
        };
        let mut errors = validate_in(definition, &kinds, &catalog, self.ports.clock.now())
            .err()
            .unwrap_or_default();
        if definition
            .nodes
            .iter()
            .any(|node| node.node_type == CODE_NODE_TYPE)
        {
            let workspace = self
                .ports
                .code_maxima
                .code_maxima(principal.workspace_id())
                .await?;
            check_code_nodes(definition, self.ports.code.as_ref(), workspace, &mut errors).await;
        }
        errors.into_result(()).map_err(WorkflowError::Invalid)
    }

    fn version_of(workflow: WorkflowId, number: i32, definition: Definition) -> Version {
        Version {
            workflow_id: workflow,
            version: number,
            checksum: checksum(&definition),
            definition,
            created_at: OffsetDateTime::now_utc(),
        }
    }

    fn event(
        principal: &Principal,
        action: &'static str,
        workflow: WorkflowId,
        metadata: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent {
            workspace_id: principal.workspace_id(),
            actor: Some(principal.actor()),
            action,
            target: Some(("workflow", workflow.to_string())),
            metadata,
        }
    }

    #[tracing::instrument(name = "workflows.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<Workflow>, WorkflowError> {
        principal.require(Permission::WorkflowsRead)?;
        Ok(self
            .ports
            .workflows
            .list(principal.workspace_id(), page)
            .await?)
    }

    #[tracing::instrument(name = "workflows.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(
        &self,
        principal: &Principal,
        id: WorkflowId,
    ) -> Result<Workflow, WorkflowError> {
        principal.require(Permission::WorkflowsRead)?;
        self.ports
            .workflows
            .find(principal.workspace_id(), id)
            .await?
            .ok_or(WorkflowError::NotFound("workflow"))
    }

    #[tracing::instrument(name = "workflows.create", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn create(
        &self,
        principal: &Principal,
        input: CreateWorkflow,
    ) -> Result<Workflow, WorkflowError> {
        principal.require(Permission::WorkflowsWrite)?;
        let name = fluxolab_kernel::validation::bounded_name(&input.name)
            .map_err(|message| invalid("name", message))?;
        let description = input.description.unwrap_or_default();
        if description.chars().count() > 2000 {
            return Err(invalid("description", "must be at most 2000 characters"));
        }
        if let Some(definition) = &input.definition {
            self.check(principal, definition).await?;
        }
        if let Some(target) = input.error_workflow_id {
            self.check_error_workflow(principal, None, target).await?;
        }
        let workflow = NewWorkflow {
            id: WorkflowId::new(),
            workspace_id: principal.workspace_id(),
            name,
            description,
            created_by: principal.user(),
        };
        let mut unit = self.ports.units.begin().await?;
        self.admit(
            unit.as_mut(),
            workflow.workspace_id,
            LimitedResource::Workflows,
        )
        .await?;
        self.ports
            .workflows
            .insert(unit.as_mut(), &workflow)
            .await?;
        if input.error_workflow_id.is_some() {
            self.ports
                .workflows
                .set_error_workflow(
                    unit.as_mut(),
                    workflow.workspace_id,
                    workflow.id,
                    input.error_workflow_id,
                )
                .await?;
        }
        if let Some(definition) = input.definition {
            let version = Self::version_of(workflow.id, 1, definition);
            self.ports
                .workflows
                .insert_version(
                    unit.as_mut(),
                    workflow.workspace_id,
                    &version,
                    workflow.created_by,
                )
                .await?;
        }
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &Self::event(
                    principal,
                    "workflow.created",
                    workflow.id,
                    json!({"name": workflow.name}),
                ),
            )
            .await?;
        unit.commit().await?;
        self.get(principal, workflow.id).await
    }

    /// Renames or re-describes a workflow.
    pub async fn update(
        &self,
        principal: &Principal,
        id: WorkflowId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Workflow, WorkflowError> {
        let changes = WorkflowChanges {
            name: name.map(str::to_owned),
            description: description.map(str::to_owned),
            error_workflow_id: None,
        };
        self.update_with(principal, id, changes).await
    }

    /// Refuses `target` as the error workflow of `own` (`None`: one being created): it
    /// must be another, unarchived workflow of the workspace.
    async fn check_error_workflow(
        &self,
        principal: &Principal,
        own: Option<WorkflowId>,
        target: WorkflowId,
    ) -> Result<(), WorkflowError> {
        const FIELD: &str = "error_workflow_id";
        if own == Some(target) {
            return Err(invalid(FIELD, "must be another workflow, not this one"));
        }
        let found = self
            .ports
            .workflows
            .find(principal.workspace_id(), target)
            .await?
            .ok_or_else(|| {
                invalid(
                    FIELD,
                    format!("workflow {target} does not exist in this workspace"),
                )
            })?;
        if found.archived_at.is_some() {
            return Err(invalid(FIELD, format!("workflow {target} is archived")));
        }
        Ok(())
    }

    /// Changes a workflow's name, description or error workflow.
    #[tracing::instrument(name = "workflows.update", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn update_with(
        &self,
        principal: &Principal,
        id: WorkflowId,
        changes: WorkflowChanges,
    ) -> Result<Workflow, WorkflowError> {
        principal.require(Permission::WorkflowsWrite)?;
        let current = self.get(principal, id).await?;
        let name = match changes.name {
            Some(name) => fluxolab_kernel::validation::bounded_name(&name)
                .map_err(|message| invalid("name", message))?,
            None => current.name,
        };
        let description = changes.description.unwrap_or(current.description);
        if description.chars().count() > 2000 {
            return Err(invalid("description", "must be at most 2000 characters"));
        }
        if let Some(Some(target)) = changes.error_workflow_id {
            self.check_error_workflow(principal, Some(id), target)
                .await?;
        }
        let mut unit = self.ports.units.begin().await?;
        if let Some(error_workflow) = changes.error_workflow_id {
            self.ports
                .workflows
                .set_error_workflow(unit.as_mut(), principal.workspace_id(), id, error_workflow)
                .await?;
        }
        self.ports
            .workflows
            .update(
                unit.as_mut(),
                principal.workspace_id(),
                id,
                &name,
                &description,
            )
            .await?;
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &Self::event(principal, "workflow.updated", id, {
                    let mut metadata = json!({"name": name});
                    if let Some(error_workflow) = changes.error_workflow_id {
                        metadata["error_workflow_id"] = json!(error_workflow);
                    }
                    metadata
                }),
            )
            .await?;
        unit.commit().await?;
        self.get(principal, id).await
    }

    /// Archives the workflow (it stays readable; it no longer runs).
    #[tracing::instrument(name = "workflows.archive", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn archive(
        &self,
        principal: &Principal,
        id: WorkflowId,
    ) -> Result<(), WorkflowError> {
        principal.require(Permission::WorkflowsWrite)?;
        self.get(principal, id).await?;
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .workflows
            .archive(unit.as_mut(), principal.workspace_id(), id)
            .await?;
        self.ports
            .webhooks
            .unbind(unit.as_mut(), principal.workspace_id(), id, None)
            .await?;
        self.ports
            .schedules
            .unregister(unit.as_mut(), principal.workspace_id(), id, None)
            .await?;
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &Self::event(principal, "workflow.archived", id, json!({})),
            )
            .await?;
        unit.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "workflows.versions", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn versions(
        &self,
        principal: &Principal,
        id: WorkflowId,
    ) -> Result<Vec<Version>, WorkflowError> {
        self.get(principal, id).await?;
        Ok(self
            .ports
            .workflows
            .versions(principal.workspace_id(), id)
            .await?)
    }

    /// Saves `definition` as the next version (1, 2, 3…), validated first.
    #[tracing::instrument(name = "workflows.add_version", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn add_version(
        &self,
        principal: &Principal,
        id: WorkflowId,
        definition: Definition,
    ) -> Result<Version, WorkflowError> {
        principal.require(Permission::WorkflowsWrite)?;
        let workflow = self.get(principal, id).await?;
        if workflow.archived_at.is_some() {
            return Err(invalid("workflow", "is archived"));
        }
        self.check(principal, &definition).await?;
        let mut unit = self.ports.units.begin().await?;
        let number = self
            .ports
            .workflows
            .next_version(unit.as_mut(), principal.workspace_id(), id)
            .await?;
        let version = Self::version_of(id, number, definition);
        self.ports
            .workflows
            .insert_version(
                unit.as_mut(),
                principal.workspace_id(),
                &version,
                principal.user(),
            )
            .await?;
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &Self::event(
                    principal,
                    "workflow.version_created",
                    id,
                    json!({"version": number}),
                ),
            )
            .await?;
        unit.commit().await?;
        Ok(version)
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
