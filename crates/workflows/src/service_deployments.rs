//! Activation: which version of a workflow runs in which environment, with what that
//! binds there (the webhook registration, the schedule, the MCP tool name).

use fluxolab_kernel::{
    Conflict, ConflictCode, EnvironmentRef, LimitedResource, Permission, Principal, Uow, WorkflowId,
};
use serde_json::json;

use super::{WorkflowError, WorkflowService, invalid};
use crate::Definition;
use crate::environments;
use crate::mcp::MCP_TRIGGER;
use crate::model::Workflow;

impl WorkflowService {
    /// Makes `version` the one active in `environment` (default: `production`), or
    /// (`None`) the workflow inactive there.
    #[tracing::instrument(name = "workflows.set_active", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn set_active(
        &self,
        principal: &Principal,
        id: WorkflowId,
        environment: Option<&str>,
        version: Option<i32>,
    ) -> Result<Workflow, WorkflowError> {
        principal.require(Permission::WorkflowsWrite)?;
        let workflow = self.get(principal, id).await?;
        let environment = environments::resolve_acting(
            self.ports.environments.as_ref(),
            principal,
            "environment",
            environment,
        )
        .await?;
        let action = if version.is_some() {
            "workflow.activated"
        } else {
            "workflow.deactivated"
        };
        let metadata = json!({"version": version, "environment": environment.name});
        self.deploy(
            principal,
            &workflow,
            &environment,
            version,
            action,
            metadata,
        )
        .await
    }

    /// Activates in `to` the version active in `from`; the workflow stays active in
    /// `from` (a workflow may be active in several environments at different versions).
    #[tracing::instrument(name = "workflows.promote", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn promote(
        &self,
        principal: &Principal,
        id: WorkflowId,
        from: &str,
        to: &str,
    ) -> Result<Workflow, WorkflowError> {
        principal.require(Permission::WorkflowsWrite)?;
        let workflow = self.get(principal, id).await?;
        let directory = self.ports.environments.as_ref();
        let source = environments::resolve(directory, principal, "from", Some(from)).await?;
        let target = environments::resolve_acting(directory, principal, "to", Some(to)).await?;
        if source.id == target.id {
            return Err(invalid("to", "must be another environment than `from`"));
        }
        let version = workflow.version_in(source.id).ok_or_else(|| {
            invalid(
                "from",
                format!("the workflow is not active in `{}`", source.name),
            )
        })?;
        let metadata = json!({
            "version": version,
            "from": source.name,
            "to": target.name,
            "replaced_version": workflow.version_in(target.id),
        });
        self.deploy(
            principal,
            &workflow,
            &target,
            Some(version),
            "workflow.promoted",
            metadata,
        )
        .await
    }

    /// Refuses to activate a `trigger.mcp` workflow in `environment` when another
    /// workflow active there exposes a tool of the same name (409 `mcp_tool_name_taken`,
    /// naming it). Read in `unit` under a lock on the environment's MCP tools, so two
    /// activations racing with the same name cannot both pass.
    async fn check_tool_name(
        &self,
        unit: &mut Uow,
        principal: &Principal,
        id: WorkflowId,
        environment: &EnvironmentRef,
        definition: &Definition,
    ) -> Result<(), WorkflowError> {
        let Some(name) = definition
            .nodes
            .iter()
            .find(|node| node.node_type == MCP_TRIGGER)
            .and_then(|node| node.params["tool_name"].as_str())
        else {
            return Ok(());
        };
        let active = self
            .ports
            .workflows
            .deployed_triggers_locked(unit, principal.workspace_id(), environment.id, MCP_TRIGGER)
            .await?;
        match active
            .iter()
            .find(|other| other.workflow_id != id && other.params["tool_name"] == name)
        {
            Some(other) => Err(Conflict::new(
                ConflictCode::McpToolNameTaken,
                format!(
                    "the MCP tool `{name}` is already active in `{}` (workflow `{}`, {}); deactivate it there or rename this tool",
                    environment.name, other.workflow_name, other.workflow_id
                ),
            )
            .into()),
            None => Ok(()),
        }
    }

    /// Points `environment` at `version` (or at none), binds or unbinds the webhook
    /// registration of a `trigger.webhook` workflow there, registers or removes the
    /// schedule of a `trigger.schedule` one, and records `action`.
    async fn deploy(
        &self,
        principal: &Principal,
        workflow: &Workflow,
        environment: &EnvironmentRef,
        version: Option<i32>,
        action: &'static str,
        metadata: serde_json::Value,
    ) -> Result<Workflow, WorkflowError> {
        let id = workflow.id;
        let mut webhook_triggered = false;
        let mut schedule = None;
        let mut definition = None;
        if let Some(number) = version {
            if workflow.archived_at.is_some() {
                return Err(invalid("workflow", "is archived"));
            }
            let stored = self
                .ports
                .workflows
                .version(principal.workspace_id(), id, number)
                .await?
                .ok_or_else(|| invalid("version", format!("version {number} does not exist")))?;
            // Credentials may have changed since the version was saved.
            self.check(principal, &stored.definition).await?;
            webhook_triggered = stored
                .definition
                .nodes
                .iter()
                .any(|node| node.node_type == "trigger.webhook");
            schedule = self
                .schedule_in(principal.workspace_id(), &stored.definition)
                .await?;
            definition = Some(stored.definition);
        }
        let workspace = principal.workspace_id();
        let mut unit = self.ports.units.begin().await?;
        if let Some(definition) = &definition {
            self.check_tool_name(unit.as_mut(), principal, id, environment, definition)
                .await?;
        }
        // A workflow counts once against the plan, however many environments run it.
        if version.is_some() && workflow.deployments.is_empty() {
            self.admit(unit.as_mut(), workspace, LimitedResource::ActiveWorkflows)
                .await?;
        }
        self.ports
            .workflows
            .set_active(
                unit.as_mut(),
                workspace,
                id,
                environment.id,
                version,
                principal.user(),
            )
            .await?;
        if webhook_triggered {
            self.ports
                .webhooks
                .bind(
                    unit.as_mut(),
                    workspace,
                    id,
                    environment.id,
                    principal.user(),
                )
                .await?;
        } else {
            self.ports
                .webhooks
                .unbind(unit.as_mut(), workspace, id, Some(environment.id))
                .await?;
        }
        self.bind_schedule(
            unit.as_mut(),
            workspace,
            id,
            environment.id,
            version,
            schedule.as_ref(),
        )
        .await?;
        self.ports
            .audit
            .record_in(unit.as_mut(), &Self::event(principal, action, id, metadata))
            .await?;
        unit.commit().await?;
        self.get(principal, id).await
    }
}
