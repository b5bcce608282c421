//! The execution use cases: test inline, enqueue, read, retry, cancel, and the worker's
//! processing of a claimed execution.

use std::sync::Arc;

use fluxolab_kernel::{
    EnvironmentDirectory, EnvironmentId, EnvironmentVariables, ExecutionId, Page, PageRequest,
    Permission, Principal, ValidationErrors, WorkflowId, WorkspaceId,
};
use serde_json::Value;

use crate::WorkflowError;
use crate::engine::{EffectContext, Engine, RunMode, RunOutcome, RunResult, StepRecord};
use crate::environments;
use crate::error_workflows::ErrorWorkflows;
use crate::execution::{
    ClaimedExecution, Execution, ExecutionFilter, ExecutionRepository, ExecutionStatus, Finished,
    InlineRun, RepositorySink, RunDefaults,
};
use crate::lease::{Fenced, LeaseClock, LeaseToken};
use crate::ports::WorkflowRepository;
use crate::responses::{self, RunResponse, RunSignals};
use crate::start::{RunStarter, StartRequest, Trigger};

/// What the execution use cases work with.
pub struct ExecutionPorts {
    pub workflows: Arc<dyn WorkflowRepository>,
    pub executions: Arc<dyn ExecutionRepository>,
    pub engine: Arc<Engine>,
    pub observer: Arc<dyn ExecutionObserver>,
    /// Where every queued run starts.
    pub starter: Arc<RunStarter>,
    /// News of runs, for senders waiting for an answer.
    pub signals: Arc<dyn RunSignals>,
    pub environments: Arc<dyn EnvironmentDirectory>,
    pub variables: Arc<dyn EnvironmentVariables>,
}

/// Told what runs did, for metrics.
pub trait ExecutionObserver: Send + Sync {
    /// A node ran (resumed steps are not reported again).
    fn step_finished(&self, node_type: &str, seconds: f64, failed: bool);
    /// An execution reached `status` (`queued` again when it was retried later or
    /// suspended by a delay).
    fn execution_settled(&self, status: ExecutionStatus);
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unobserved;

impl ExecutionObserver for Unobserved {
    fn step_finished(&self, _node_type: &str, _seconds: f64, _failed: bool) {}
    fn execution_settled(&self, _status: ExecutionStatus) {}
}

impl std::fmt::Debug for ExecutionPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionPorts").finish_non_exhaustive()
    }
}

/// The execution use cases.
#[derive(Debug)]
pub struct ExecutionService {
    ports: ExecutionPorts,
    /// Told of queued runs that fail for good (none: no error workflows).
    error_workflows: Option<Arc<ErrorWorkflows>>,
}

fn invalid(field: &str, message: impl Into<String>) -> WorkflowError {
    WorkflowError::Invalid(ValidationErrors::single(field, message))
}

impl ExecutionService {
    pub fn new(ports: ExecutionPorts) -> Self {
        Self {
            ports,
            error_workflows: None,
        }
    }

    /// The service, starting error workflows for queued runs that fail for good (not
    /// for inline `/test` runs: those are for looking at).
    pub fn with_error_workflows(self, error_workflows: Arc<ErrorWorkflows>) -> Self {
        Self {
            error_workflows: Some(error_workflows),
            ..self
        }
    }

    /// Starts the error workflow of run `id`, which failed for good, if it has one.
    async fn failed_for_good(&self, id: ExecutionId, failed_node: Option<&str>, error: &str) {
        if let Some(error_workflows) = &self.error_workflows {
            error_workflows.report(id, failed_node, error).await;
        }
    }

    /// Runs a version (default: the latest) inline in `environment` (default:
    /// `production`) and returns the execution with its steps. The caller bounds it
    /// with a timeout.
    #[tracing::instrument(name = "executions.test", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn test(
        &self,
        principal: &Principal,
        workflow: WorkflowId,
        version: Option<i32>,
        environment: Option<&str>,
        payload: Value,
    ) -> Result<Execution, WorkflowError> {
        principal.require(Permission::WorkflowsRun)?;
        // The answer is the execution: a caller who may not read it may not run it.
        principal.require(Permission::ExecutionsRead)?;
        let workspace = principal.workspace_id();
        let environment = environments::resolve_acting(
            self.ports.environments.as_ref(),
            principal,
            "environment",
            environment,
        )
        .await?;
        let found = self
            .ports
            .workflows
            .find(workspace, workflow)
            .await?
            .ok_or(WorkflowError::NotFound("workflow"))?;
        let number = version
            .or(found.latest_version)
            .ok_or_else(|| invalid("version", "the workflow has no version yet"))?;
        let stored = self
            .ports
            .workflows
            .version(workspace, workflow, number)
            .await?
            .ok_or_else(|| invalid("version", format!("version {number} does not exist")))?;
        let id = ExecutionId::new();
        self.ports
            .executions
            .create_inline(&InlineRun {
                id,
                workspace_id: workspace,
                workflow_id: workflow,
                version: number,
                environment_id: environment.id,
                input: payload.clone(),
            })
            .await?;
        let lease = (LeaseToken::INLINE, Arc::new(LeaseClock::unbounded()));
        let result = self
            .run(
                (id, lease.clone()),
                (workspace, environment.id),
                RunMode::Inline,
                &stored.definition,
                payload,
                &[],
            )
            .await;
        // A test run is for looking at: it keeps every step, whatever the workspace saves.
        self.settle((id, lease.0), (None, RunDefaults::NONE), result)
            .await?;
        self.get(principal, id).await
    }

    /// Queues a run of the version active in `environment` (default: `production`);
    /// returns its id.
    #[tracing::instrument(name = "executions.enqueue", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn enqueue(
        &self,
        principal: &Principal,
        workflow: WorkflowId,
        environment: Option<&str>,
        payload: Value,
    ) -> Result<ExecutionId, WorkflowError> {
        principal.require(Permission::WorkflowsRun)?;
        let environment = environments::resolve_acting(
            self.ports.environments.as_ref(),
            principal,
            "environment",
            environment,
        )
        .await?;
        self.ports
            .starter
            .start(
                principal,
                StartRequest {
                    workflow,
                    environment,
                    version: None,
                    trigger: Trigger::Run,
                    input: payload,
                },
            )
            .await
    }

    #[tracing::instrument(name = "executions.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(
        &self,
        principal: &Principal,
        id: ExecutionId,
    ) -> Result<Execution, WorkflowError> {
        principal.require(Permission::ExecutionsRead)?;
        self.ports
            .executions
            .find(principal.workspace_id(), id)
            .await?
            .ok_or(WorkflowError::NotFound("execution"))
    }

    #[tracing::instrument(name = "executions.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(
        &self,
        principal: &Principal,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<Execution>, WorkflowError> {
        principal.require(Permission::ExecutionsRead)?;
        Ok(self
            .ports
            .executions
            .list(principal.workspace_id(), filter, page)
            .await?)
    }

    /// Queues a new execution of the same version and input, linked to the old one.
    #[tracing::instrument(name = "executions.retry", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn retry(
        &self,
        principal: &Principal,
        id: ExecutionId,
    ) -> Result<ExecutionId, WorkflowError> {
        principal.require(Permission::WorkflowsRun)?;
        let previous = self.get(principal, id).await?;
        self.ports
            .starter
            .start(
                principal,
                StartRequest {
                    workflow: previous.workflow_id,
                    environment: previous.environment,
                    version: Some(previous.version),
                    trigger: Trigger::Retry { of: previous.id },
                    input: previous.input,
                },
            )
            .await
    }

    /// Cancels a queued execution, or asks a running one to stop after its current step.
    #[tracing::instrument(name = "executions.cancel", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn cancel(
        &self,
        principal: &Principal,
        id: ExecutionId,
    ) -> Result<Execution, WorkflowError> {
        principal.require(Permission::WorkflowsRun)?;
        let execution = self.get(principal, id).await?;
        if matches!(
            execution.status,
            ExecutionStatus::Queued | ExecutionStatus::Running
        ) && self
            .ports
            .executions
            .cancel(principal.workspace_id(), id)
            .await?
        {
            // A queued run ends here; a running one when its worker sees the request.
            self.ports
                .observer
                .execution_settled(ExecutionStatus::Cancelled);
            self.announce(id).await;
        }
        self.get(principal, id).await
    }

    /// Runs a claimed execution (the worker's job) under its lease, whose end `clock`
    /// tracks, resuming after the steps an earlier attempt completed. A retryable
    /// failure goes back to the queue with exponential backoff until `max_attempts`,
    /// then it ends `failed`; a long delay suspends it. `None`: the lease was lost, the
    /// run stopped and nothing more was written.
    #[tracing::instrument(name = "executions.process", skip_all, fields(workspace_id = %claimed.execution.workspace_id))]
    pub async fn process(
        &self,
        claimed: ClaimedExecution,
        clock: Arc<LeaseClock>,
    ) -> Result<Option<ExecutionStatus>, WorkflowError> {
        let execution = claimed.execution;
        let result = self
            .run(
                (execution.id, (claimed.lease, clock)),
                (execution.workspace_id, execution.environment.id),
                RunMode::Queued,
                &claimed.definition,
                execution.input,
                &claimed.completed,
            )
            .await;
        let retry = (execution.attempt < execution.max_attempts).then_some(execution.attempt);
        let failure = match &result.outcome {
            RunOutcome::Failed { node_id, error, .. } => Some((node_id.clone(), error.clone())),
            _ => None,
        };
        let Some(status) = self
            .settle(
                (execution.id, claimed.lease),
                (retry, claimed.defaults),
                result,
            )
            .await?
        else {
            return Ok(None);
        };
        if status == ExecutionStatus::Failed
            && let Some((node_id, error)) = failure
        {
            self.failed_for_good(execution.id, Some(&node_id), &error)
                .await;
        }
        if status != ExecutionStatus::Queued && claimed.definition.answers_sender() {
            // A sender still waiting learns the run ended without answering.
            self.announce(execution.id).await;
        }
        Ok(Some(status))
    }

    /// Waits, at most `timeout`, for the answer execution `id` of `workspace` gives
    /// its sender (a `respond_node` webhook delivery), or for it to end without one.
    #[tracing::instrument(name = "executions.await_response", skip_all, fields(workspace_id = %workspace))]
    pub async fn await_response(
        &self,
        workspace: WorkspaceId,
        id: ExecutionId,
        timeout: std::time::Duration,
    ) -> Result<RunResponse, WorkflowError> {
        let mut subscription = self.ports.signals.subscribe(id).await?;
        let executions = &self.ports.executions;
        Ok(
            responses::wait_for_response(subscription.as_mut(), timeout, || async move {
                Ok(executions
                    .find(workspace, id)
                    .await?
                    .as_ref()
                    .and_then(RunResponse::of))
            })
            .await?,
        )
    }

    /// Announces news of `id` to whoever waits for it; a failure only delays them
    /// until their timeout.
    async fn announce(&self, id: ExecutionId) {
        if let Err(error) = self.ports.signals.announce(id).await {
            tracing::warn!(%error, execution_id = %id, "could not announce the run's news");
        }
    }

    /// Ends a claimed execution its worker stopped, while `lease` still holds it:
    /// `failed` with `reason` when it ran out of time, `cancelled` when a cancel was
    /// asked for while it ran.
    #[tracing::instrument(name = "executions.abandon", skip_all)]
    pub async fn abandon(
        &self,
        (id, lease): (ExecutionId, LeaseToken),
        status: ExecutionStatus,
        reason: &str,
    ) -> Result<Fenced, WorkflowError> {
        let written = self
            .ports
            .executions
            .finish(id, lease, Finished::with_error(status, reason), &[])
            .await?;
        if written == Fenced::Written {
            self.ports.observer.execution_settled(status);
            self.announce(id).await;
            if status == ExecutionStatus::Failed {
                self.failed_for_good(id, None, reason).await;
            }
        }
        Ok(written)
    }

    /// Tells of runs a claim ended `failed` because their worker stopped during each
    /// attempt: counted, announced to whoever waits, and handed to their error
    /// workflows like any run that failed for good.
    #[tracing::instrument(name = "executions.abandoned", skip_all)]
    pub async fn abandoned(&self, ids: &[ExecutionId]) {
        for &id in ids {
            self.ports
                .observer
                .execution_settled(ExecutionStatus::Failed);
            self.announce(id).await;
            self.failed_for_good(
                id,
                None,
                "abandoned: its worker stopped during each attempt",
            )
            .await;
        }
    }

    /// Stores how a run ended together with its unsaved steps, in one write under
    /// `lease`. A retryable failure of attempt `retry` (when another is allowed) goes
    /// back to the queue, due after 2^attempt seconds; a success keeps the steps its
    /// `defaults` say. `None`: the lease is lost and nothing was written.
    async fn settle(
        &self,
        (id, lease): (ExecutionId, LeaseToken),
        (retry, defaults): (Option<i32>, RunDefaults),
        result: RunResult,
    ) -> Result<Option<ExecutionStatus>, WorkflowError> {
        let executions = &self.ports.executions;
        let unsaved = result.unsaved();
        let (written, status) = match (&result.outcome, retry) {
            (RunOutcome::LeaseLost, _) => return Ok(None),
            (RunOutcome::Suspended { until }, _) => (
                executions.suspend(id, lease, *until, unsaved).await?,
                ExecutionStatus::Queued,
            ),
            (RunOutcome::AwaitingChild { child, until }, _) => (
                executions
                    .suspend_for_child(id, lease, *child, *until, unsaved)
                    .await?,
                ExecutionStatus::Queued,
            ),
            (
                RunOutcome::Failed {
                    error,
                    retryable: true,
                    ..
                },
                Some(attempt),
            ) => {
                let delay = 1_i64 << attempt.clamp(0, 16);
                (
                    executions.requeue(id, lease, delay, error, unsaved).await?,
                    ExecutionStatus::Queued,
                )
            }
            (RunOutcome::Failed { error, .. }, _) => {
                let mut finished = Finished::with_error(ExecutionStatus::Failed, error.clone());
                // An inline `/test` run is for looking at: nobody is notified.
                finished.notify_failure = lease != LeaseToken::INLINE;
                (
                    executions.finish(id, lease, finished, unsaved).await?,
                    ExecutionStatus::Failed,
                )
            }
            (RunOutcome::Succeeded(output), _) => {
                let steps_kept = defaults.steps_kept(ExecutionStatus::Succeeded);
                let finished = Finished {
                    status: ExecutionStatus::Succeeded,
                    output: Some(output.clone()),
                    error: None,
                    steps_kept,
                    notify_failure: false,
                };
                (
                    executions
                        .finish(id, lease, finished, &steps_kept.filter(unsaved))
                        .await?,
                    ExecutionStatus::Succeeded,
                )
            }
        };
        if written == Fenced::LeaseLost {
            return Ok(None);
        }
        self.ports.observer.execution_settled(status);
        Ok(Some(status))
    }

    async fn run(
        &self,
        (id, (lease, clock)): (ExecutionId, (LeaseToken, Arc<LeaseClock>)),
        (workspace, environment): (WorkspaceId, EnvironmentId),
        mode: RunMode,
        definition: &crate::Definition,
        payload: Value,
        completed: &[StepRecord],
    ) -> RunResult {
        let env = match self.ports.variables.load(workspace, environment).await {
            Ok(env) => env,
            Err(error) => {
                return RunResult::failed_before_start(format!(
                    "could not load the environment's variables: {error}"
                ));
            }
        };
        let sink = RepositorySink {
            executions: self.ports.executions.clone(),
            signals: self.ports.signals.clone(),
            execution_id: id,
            lease,
            clock,
        };
        let context = EffectContext::of_run(workspace, id, mode);
        let result = self
            .ports
            .engine
            .run(definition, payload, &env, context, completed, &sink)
            .await;
        let resumed = |step: &StepRecord| {
            completed
                .iter()
                .any(|done| done.node_id == step.node_id && done.error.is_none())
        };
        for step in result.steps.iter().filter(|step| !resumed(step)) {
            let seconds = (step.finished_at - step.started_at).as_seconds_f64();
            self.ports
                .observer
                .step_finished(&step.node_type, seconds, step.error.is_some());
        }
        result
    }
}

#[cfg(test)]
#[path = "execution_service_tests.rs"]
mod tests;
