//! The MCP server's use cases, for an API key: its environment's tools, calling one (a
//! run started through [`RunStarter`], trigger kind `mcp`), waiting for the run's
//! answer, the workflows and executions it may read, and its sessions.

use std::sync::Arc;
use std::time::Duration;

use fluxolab_kernel::{
    Actor, ApiKeyId, EnvironmentDirectory, EnvironmentRef, ExecutionId, Forbidden, Permission,
    Principal, ValidationErrors, WorkflowId,
};
use serde_json::Value;

use crate::WorkflowError;
use crate::environments;
use crate::execution::{ExecutionRepository, ExecutionStatus};
use crate::mcp::{MCP_TRIGGER, McpSessionId, McpSessions, McpTool, NewMcpSession};
use crate::model::{Version, Workflow};
use crate::ports::WorkflowRepository;
use crate::responses::{RunResponse, RunSignals, Subscription, wait_for_response};
use crate::start::{RunStarter, StartRequest, Trigger};

/// What the MCP use cases work with.
pub struct McpPorts {
    pub workflows: Arc<dyn WorkflowRepository>,
    pub executions: Arc<dyn ExecutionRepository>,
    pub starter: Arc<RunStarter>,
    pub signals: Arc<dyn RunSignals>,
    pub environments: Arc<dyn EnvironmentDirectory>,
    pub sessions: Arc<dyn McpSessions>,
}

impl std::fmt::Debug for McpPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpPorts").finish_non_exhaustive()
    }
}

/// How a tool call's run ended, as far as its caller waited.
#[derive(Clone, Debug, PartialEq)]
pub enum CallOutcome {
    /// The output of the run's `webhook.respond` step.
    Answered(Value),
    /// The run succeeded without answering: its final output.
    Finished(Value),
    /// The run ended `failed` or `cancelled`, with its error.
    Failed {
        status: ExecutionStatus,
        error: Option<String>,
    },
    /// Nothing within the wait; the run goes on.
    StillRunning,
}

/// A started tool call: its run, and a subscription to the run's news.
pub struct StartedCall {
    pub execution: ExecutionId,
    subscription: Box<dyn Subscription>,
}

impl std::fmt::Debug for StartedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedCall")
            .field("execution", &self.execution)
            .finish_non_exhaustive()
    }
}

/// The MCP use cases.
#[derive(Debug)]
pub struct McpService {
    ports: McpPorts,
}

/// The key behind a principal: MCP is for API keys.
fn key_of(principal: &Principal) -> Result<ApiKeyId, WorkflowError> {
    match principal.actor() {
        Actor::ApiKey(key) => Ok(key),
        Actor::User(_) => Err(WorkflowError::Invalid(ValidationErrors::single(
            "authorization",
            "the MCP server takes an API key (`Bearer flx_…`)",
        ))),
    }
}

impl McpService {
    pub fn new(ports: McpPorts) -> Self {
        Self { ports }
    }

    /// The environment the key acts in: its own, else the workspace's default.
    async fn environment(&self, principal: &Principal) -> Result<EnvironmentRef, WorkflowError> {
        environments::resolve_acting(
            self.ports.environments.as_ref(),
            principal,
            "environment",
            None,
        )
        .await
    }

    async fn active_tools(&self, principal: &Principal) -> Result<Vec<McpTool>, WorkflowError> {
        let environment = self.environment(principal).await?;
        let deployed = self
            .ports
            .workflows
            .deployed_triggers(principal.workspace_id(), environment.id, MCP_TRIGGER)
            .await?;
        Ok(deployed
            .into_iter()
            .filter_map(McpTool::from_deployed)
            .collect())
    }

    /// The tools of the key's environment: its active `trigger.mcp` workflows.
    #[tracing::instrument(name = "mcp.tools", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn tools(&self, principal: &Principal) -> Result<Vec<McpTool>, WorkflowError> {
        principal.require(Permission::WorkflowsRead)?;
        self.active_tools(principal).await
    }

    /// Starts a run of tool `name` with `arguments` (checked against its input schema,
    /// each problem naming its field) through the execution-start use case: trigger kind
    /// `mcp`, the workspace's quota, the `mcp.tool_called` activity. `NotFound("tool")`
    /// when no active tool of the key's environment has that name.
    #[tracing::instrument(name = "mcp.call", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn call(
        &self,
        principal: &Principal,
        name: &str,
        arguments: Value,
    ) -> Result<StartedCall, WorkflowError> {
        principal.require(Permission::WorkflowsRun)?;
        let environment = self.environment(principal).await?;
        let tool = self
            .active_tools(principal)
            .await?
            .into_iter()
            .find(|tool| tool.name == name)
            .ok_or(WorkflowError::NotFound("tool"))?;
        let mut errors = ValidationErrors::new();
        for (field, message) in crate::mcp::argument_problems(&tool.input_schema, &arguments) {
            errors.add(field, message);
        }
        if !errors.is_empty() {
            return Err(WorkflowError::Invalid(errors));
        }
        let execution = self
            .ports
            .starter
            .start(
                principal,
                StartRequest {
                    workflow: tool.workflow_id,
                    environment,
                    version: Some(tool.version),
                    trigger: Trigger::Mcp,
                    input: arguments,
                },
            )
            .await?;
        // Taken before the first read of the run (in `wait`): nothing is missed.
        let subscription = self.ports.signals.subscribe(execution).await?;
        Ok(StartedCall {
            execution,
            subscription,
        })
    }

    /// Waits, at most `timeout`, for the call's run to answer or end. Call it again
    /// with the same `call` to go on waiting (between waits the caller may report
    /// progress).
    pub async fn wait(
        &self,
        principal: &Principal,
        call: &mut StartedCall,
        timeout: Duration,
    ) -> Result<CallOutcome, WorkflowError> {
        let workspace = principal.workspace_id();
        let executions = &self.ports.executions;
        let id = call.execution;
        let response = wait_for_response(call.subscription.as_mut(), timeout, || async move {
            Ok(executions
                .find(workspace, id)
                .await?
                .as_ref()
                .and_then(RunResponse::of))
        })
        .await?;
        Ok(match response {
            RunResponse::Answered(output) => CallOutcome::Answered(output),
            RunResponse::TimedOut => CallOutcome::StillRunning,
            RunResponse::EndedWithout(status) => {
                let run = executions.find(workspace, id).await?;
                match (status, run) {
                    (ExecutionStatus::Succeeded, Some(run)) => {
                        CallOutcome::Finished(run.output.unwrap_or(Value::Null))
                    }
                    (status, run) => CallOutcome::Failed {
                        status,
                        error: run.and_then(|run| run.error),
                    },
                }
            }
        })
    }

    /// A workflow with the version active in the key's environment (else its latest),
    /// for `resources/read`.
    pub async fn workflow(
        &self,
        principal: &Principal,
        id: WorkflowId,
    ) -> Result<(Workflow, Option<Version>), WorkflowError> {
        principal.require(Permission::WorkflowsRead)?;
        let workspace = principal.workspace_id();
        let workflow = self
            .ports
            .workflows
            .find(workspace, id)
            .await?
            .ok_or(WorkflowError::NotFound("workflow"))?;
        let environment = self.environment(principal).await?;
        let version = match workflow
            .version_in(environment.id)
            .or(workflow.latest_version)
        {
            Some(number) => self.ports.workflows.version(workspace, id, number).await?,
            None => None,
        };
        Ok((workflow, version))
    }

    /// Opens a session for the key, at `protocol_version`, living `idle_ttl` without use.
    #[tracing::instrument(name = "mcp.open_session", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn open_session(
        &self,
        principal: &Principal,
        protocol_version: &str,
        idle_ttl: Duration,
    ) -> Result<McpSessionId, WorkflowError> {
        let key = key_of(principal)?;
        let id = McpSessionId::from_uuid(uuid::Uuid::new_v4());
        self.ports
            .sessions
            .open(&NewMcpSession {
                id,
                workspace_id: principal.workspace_id(),
                api_key_id: key,
                protocol_version: protocol_version.to_owned(),
                idle_ttl,
            })
            .await?;
        Ok(id)
    }

    /// The protocol version of the key's live session `id` (its expiry pushed back), or
    /// `None` when it is unknown, expired or ended.
    pub async fn session(
        &self,
        principal: &Principal,
        id: McpSessionId,
        idle_ttl: Duration,
    ) -> Result<Option<String>, WorkflowError> {
        let key = key_of(principal)?;
        Ok(self.ports.sessions.touch(id, key, idle_ttl).await?)
    }

    /// Ends the key's session `id`; `false` when there was none.
    pub async fn close_session(
        &self,
        principal: &Principal,
        id: McpSessionId,
    ) -> Result<bool, WorkflowError> {
        let key = key_of(principal)?;
        Ok(self.ports.sessions.close(id, key).await?)
    }

    /// Refuses a principal that may neither list nor call tools.
    pub fn admit(&self, principal: &Principal) -> Result<(), WorkflowError> {
        key_of(principal)?;
        if principal.has(Permission::WorkflowsRead) || principal.has(Permission::WorkflowsRun) {
            Ok(())
        } else {
            Err(Forbidden(Permission::WorkflowsRead).into())
        }
    }
}

#[cfg(test)]
#[path = "mcp_service_tests.rs"]
mod tests;
