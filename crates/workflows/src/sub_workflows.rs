//! Sub-workflows: the `flow.run_workflow` node starts another workflow's run (a child)
//! through the execution-start use case and, with `wait`, continues on its output.
//!
//! - The child's id is the step's idempotency key ([`EffectContext::for_step`]), so
//!   every attempt of the parent's step refers to the same child: the first visit starts
//!   it, later visits read it. Starting is checked first: at most [`MAX_DEPTH`] runs in
//!   a chain of parents, no workflow twice in a chain (a cycle), the workspace's quota
//!   (children count), and the target's version active in the parent's environment.
//! - `wait` in a queued run: while the child runs, the parent goes back to the queue
//!   without recording the step ([`crate::engine::RunOutcome::AwaitingChild`]), so its
//!   worker slot is free; the write that ends the child makes the parent due at once,
//!   and [`WAIT_RECHECK`] later it looks again in any case. The step is visited again
//!   on resume: the child's output, or a permanent failure naming the child.
//! - `wait` in an inline run (`/test`): the step polls the child every
//!   [`INLINE_POLL_MS`] for at most [`INLINE_WAIT_MS`] (below `/test`'s own limit), then
//!   fails saying the child is still running.
//!
//! Engine-initiated runs (children and error workflows) start without a user:
//! [`RunStarter::start_for_engine`] is their narrow entry point (no permission check, no
//! audit entry — the execution records its parent or its input the failed run — but
//! the quota applies).

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{EnvironmentRef, ExecutionId, StorageError, WorkflowId, WorkspaceId};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::WorkflowError;
use crate::engine::{EffectContext, NodeEffects, NodeFailure, RunMode};
use crate::execution::{ExecutionRepository, ExecutionStatus};
use crate::start::{QueuedRun, RunStarter, Trigger};

/// The most runs in one chain of parents and children (the root run included): a run
/// at this depth may not start a sub-workflow.
pub const MAX_DEPTH: usize = 8;
/// How long a queued parent waits for its child before looking again, if the child's
/// end did not wake it first.
pub const WAIT_RECHECK: time::Duration = time::Duration::seconds(5);
/// How long an inline run's step waits for its child at most.
pub const INLINE_WAIT_MS: u64 = 25_000;
/// How often an inline run's step looks at its child.
pub const INLINE_POLL_MS: u64 = 250;

/// One run of a chain of parents, as [`ExecutionLineage`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ancestor {
    pub execution: ExecutionId,
    pub workspace: WorkspaceId,
    pub workflow: WorkflowId,
    pub environment: EnvironmentRef,
    /// The trigger kind's code (`run`, `sub_workflow`, `error_workflow`…).
    pub trigger_kind: String,
}

/// Chains of runs, read up through their parents.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ExecutionLineage: Send + Sync {
    /// Run `execution` and its parents, nearest first, at most `limit` of them (empty:
    /// no such run).
    async fn lineage(
        &self,
        execution: ExecutionId,
        limit: usize,
    ) -> Result<Vec<Ancestor>, StorageError>;
}

/// A child run a `flow.run_workflow` step asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildRequest {
    /// The step's idempotency key: the same on every attempt.
    pub id: ExecutionId,
    pub workflow: WorkflowId,
    pub input: Value,
}

/// How a child run stands.
#[derive(Clone, Debug, PartialEq)]
pub enum ChildState {
    /// Queued or running.
    Pending,
    Succeeded(Value),
    Failed(String),
    Cancelled,
}

/// Starting and reading child runs, for the engine.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChildRuns: Send + Sync {
    /// Child `request.id` of run `parent`: started when it does not exist yet (a
    /// refusal — depth, cycle, quota, not active — is a permanent failure saying why),
    /// then how it stands.
    async fn ensure(
        &self,
        workspace: WorkspaceId,
        parent: ExecutionId,
        request: ChildRequest,
    ) -> Result<ChildState, NodeFailure>;
    /// How child run `id` stands.
    async fn state(
        &self,
        workspace: WorkspaceId,
        id: ExecutionId,
    ) -> Result<ChildState, NodeFailure>;
}

/// A run the engine starts on its own, without a user.
#[derive(Clone, Debug)]
pub struct EngineStart {
    /// Chosen by the caller, derived from what starts it (so a repeat finds it).
    pub id: ExecutionId,
    pub workspace: WorkspaceId,
    pub workflow: WorkflowId,
    /// It runs the version active here.
    pub environment: EnvironmentRef,
    pub trigger: EngineTrigger,
    pub input: Value,
}

/// Why the engine starts a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineTrigger {
    SubWorkflow { parent: ExecutionId },
    ErrorWorkflow { failed: ExecutionId },
}

impl From<EngineTrigger> for Trigger {
    fn from(trigger: EngineTrigger) -> Self {
        match trigger {
            EngineTrigger::SubWorkflow { parent } => Trigger::SubWorkflow { parent },
            EngineTrigger::ErrorWorkflow { failed } => Trigger::ErrorWorkflow { failed },
        }
    }
}

impl RunStarter {
    /// Queues a run the engine starts (a sub-workflow, an error workflow): the version
    /// active in `start.environment`, the workspace's quota. No principal, so no
    /// permission check and no audit entry; the run that caused it was allowed to run.
    #[tracing::instrument(name = "runs.start_for_engine", skip_all, fields(workspace_id = %start.workspace, execution_id = %start.id))]
    pub async fn start_for_engine(&self, start: EngineStart) -> Result<(), WorkflowError> {
        let version = self
            .deployed(start.workspace, start.workflow, &start.environment)
            .await?;
        self.admit(start.workspace).await?;
        let trigger = Trigger::from(start.trigger);
        self.queue_decided(&QueuedRun {
            id: start.id,
            workspace_id: start.workspace,
            workflow_id: start.workflow,
            version,
            environment_id: start.environment.id,
            trigger_kind: trigger.kind(),
            input: start.input,
            retry_of: None,
            parent: trigger.parent(),
        })
        .await?;
        Ok(())
    }
}

/// [`ChildRuns`] over the start use case and the executions.
pub struct SubWorkflows {
    starter: Arc<RunStarter>,
    executions: Arc<dyn ExecutionRepository>,
    lineage: Arc<dyn ExecutionLineage>,
}

impl std::fmt::Debug for SubWorkflows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubWorkflows").finish_non_exhaustive()
    }
}

impl SubWorkflows {
    pub fn new(
        starter: Arc<RunStarter>,
        executions: Arc<dyn ExecutionRepository>,
        lineage: Arc<dyn ExecutionLineage>,
    ) -> Self {
        Self {
            starter,
            executions,
            lineage,
        }
    }

    /// How run `id` stands, if it exists.
    async fn read(
        &self,
        workspace: WorkspaceId,
        id: ExecutionId,
    ) -> Result<Option<ChildState>, NodeFailure> {
        let found =
            self.executions.find(workspace, id).await.map_err(|error| {
                NodeFailure::transient(format!("could not read run {id}: {error}"))
            })?;
        Ok(found.map(|child| match child.status {
            ExecutionStatus::Queued | ExecutionStatus::Running => ChildState::Pending,
            ExecutionStatus::Succeeded => {
                ChildState::Succeeded(child.output.unwrap_or(Value::Null))
            }
            ExecutionStatus::Failed => ChildState::Failed(child.error.unwrap_or_default()),
            ExecutionStatus::Cancelled => ChildState::Cancelled,
        }))
    }

    /// Refuses a child of workflow `target` under `chain` (the parent first): too deep,
    /// or `target` already in the chain.
    fn check_chain(chain: &[Ancestor], target: WorkflowId) -> Result<(), NodeFailure> {
        if chain.len() >= MAX_DEPTH {
            return Err(NodeFailure::permanent(format!(
                "sub-workflows nest at most {MAX_DEPTH} runs deep; this run is already at depth {}",
                chain.len()
            )));
        }
        if let Some(ancestor) = chain.iter().find(|ancestor| ancestor.workflow == target) {
            return Err(NodeFailure::permanent(format!(
                "workflow {target} is already running in this chain of sub-workflows (run {}): \
                 a workflow may not call itself, directly or through others",
                ancestor.execution
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl ChildRuns for SubWorkflows {
    #[tracing::instrument(name = "sub_workflows.ensure", skip_all, fields(workspace_id = %workspace, execution_id = %parent, child_id = %request.id))]
    async fn ensure(
        &self,
        workspace: WorkspaceId,
        parent: ExecutionId,
        request: ChildRequest,
    ) -> Result<ChildState, NodeFailure> {
        if let Some(state) = self.read(workspace, request.id).await? {
            return Ok(state);
        }
        let chain = self
            .lineage
            .lineage(parent, MAX_DEPTH + 1)
            .await
            .map_err(|error| {
                NodeFailure::transient(format!("could not read the run's parents: {error}"))
            })?;
        let Some(own) = chain.first().filter(|own| own.workspace == workspace) else {
            return Err(NodeFailure::transient(format!(
                "run {parent} is not stored"
            )));
        };
        Self::check_chain(&chain, request.workflow)?;
        let target = request.workflow;
        self.starter
            .start_for_engine(EngineStart {
                id: request.id,
                workspace,
                workflow: target,
                environment: own.environment.clone(),
                trigger: EngineTrigger::SubWorkflow { parent },
                input: request.input,
            })
            .await
            .map_err(|error| match error {
                WorkflowError::NotFound(_) => NodeFailure::permanent(format!(
                    "workflow {target} does not exist in this workspace"
                )),
                WorkflowError::NotActive { environment } => NodeFailure::permanent(format!(
                    "workflow {target} is not active in `{environment}`; activate a version there first"
                )),
                WorkflowError::QuotaExceeded { .. } => NodeFailure::permanent(
                    "the workspace's executions for this period are used up: the sub-workflow was not started",
                ),
                other => NodeFailure::transient(format!(
                    "could not start workflow {target}: {other}"
                )),
            })?;
        Ok(ChildState::Pending)
    }

    async fn state(
        &self,
        workspace: WorkspaceId,
        id: ExecutionId,
    ) -> Result<ChildState, NodeFailure> {
        self.read(workspace, id)
            .await?
            .ok_or_else(|| NodeFailure::permanent(format!("the sub-workflow run {id} is gone")))
    }
}

/// What a `flow.run_workflow` step led to.
#[derive(Debug, PartialEq)]
pub(crate) enum ChildStep {
    /// The step's output.
    Done(Value),
    /// The child is still running: the parent waits, due again at `until` at the latest.
    Wait {
        child: ExecutionId,
        until: OffsetDateTime,
    },
}

/// The params of a `flow.run_workflow` step, rendered.
struct Params {
    workflow: WorkflowId,
    payload: Value,
    wait: bool,
}

impl Params {
    fn of(input: &Value) -> Result<Self, NodeFailure> {
        let workflow = input["workflow_id"]
            .as_str()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| {
                NodeFailure::permanent(format!(
                    "params.workflow_id must be a workflow id (a UUID), not {}",
                    input["workflow_id"]
                ))
            })?;
        let wait = match &input["wait"] {
            Value::Null => true,
            Value::Bool(wait) => *wait,
            Value::String(text) if text.trim() == "true" => true,
            Value::String(text) if text.trim() == "false" => false,
            other => {
                return Err(NodeFailure::permanent(format!(
                    "params.wait must be true or false, not {other}"
                )));
            }
        };
        Ok(Self {
            workflow,
            payload: input.get("payload").cloned().unwrap_or(Value::Null),
            wait,
        })
    }
}

/// Runs a `flow.run_workflow` step with rendered params `input` (see the module
/// documentation).
pub(crate) async fn run_step(
    children: Option<&dyn ChildRuns>,
    effects: &dyn NodeEffects,
    input: &Value,
    context: EffectContext,
    started_at: OffsetDateTime,
) -> Result<ChildStep, NodeFailure> {
    let children =
        children.ok_or_else(|| NodeFailure::permanent("sub-workflows cannot run here"))?;
    let params = Params::of(input)?;
    let id = context
        .idempotency_key
        .map(ExecutionId::from_uuid)
        .ok_or_else(|| NodeFailure::permanent("the step has no idempotency key"))?;
    let mut state = children
        .ensure(
            context.workspace_id,
            context.execution_id,
            ChildRequest {
                id,
                workflow: params.workflow,
                input: params.payload,
            },
        )
        .await?;
    if !params.wait {
        return Ok(ChildStep::Done(json!({"execution_id": id.to_string()})));
    }
    match context.mode {
        RunMode::Queued => {
            if state == ChildState::Pending {
                return Ok(ChildStep::Wait {
                    child: id,
                    until: started_at.saturating_add(WAIT_RECHECK),
                });
            }
        }
        RunMode::Inline => {
            let mut waited = 0;
            while state == ChildState::Pending && waited < INLINE_WAIT_MS {
                effects.delay(INLINE_POLL_MS).await;
                waited += INLINE_POLL_MS;
                state = children.state(context.workspace_id, id).await?;
            }
        }
    }
    ended(id, state).map(ChildStep::Done)
}

/// The step's output for a child that ended as `state`, or why the step fails.
fn ended(id: ExecutionId, state: ChildState) -> Result<Value, NodeFailure> {
    match state {
        ChildState::Succeeded(output) => Ok(output),
        ChildState::Failed(error) => Err(NodeFailure::permanent(format!(
            "the sub-workflow run {id} failed: {error}"
        ))),
        ChildState::Cancelled => Err(NodeFailure::permanent(format!(
            "the sub-workflow run {id} was cancelled"
        ))),
        ChildState::Pending => Err(NodeFailure::permanent(format!(
            "the sub-workflow run {id} did not finish within {} seconds (an inline test waits no \
             longer; it goes on running)",
            INLINE_WAIT_MS / 1000
        ))),
    }
}

#[cfg(test)]
#[path = "sub_workflows_tests.rs"]
mod tests;
