//! Error workflows: a workflow's `error_workflow_id` names the workflow started when one
//! of its runs fails for good (the last attempt, not each retry), with
//! `{execution_id, workflow_id, error, failed_node}` as its input.
//!
//! - It runs the version active in the failed run's environment; not active there (or
//!   the quota used up) → skipped with a warning: a failure must not fail again.
//! - Exactly once per failure: its id is derived from the failed run's id
//!   ([`error_run_id`]), so a repeated report finds the run already queued.
//! - No loops: a run that is an error workflow's run, or descends from one through
//!   sub-workflows, starts no error workflow.

use std::sync::Arc;

use fluxolab_kernel::ExecutionId;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::WorkflowError;
use crate::execution::TriggerKind;
use crate::ports::WorkflowRepository;
use crate::start::RunStarter;
use crate::sub_workflows::{EngineStart, EngineTrigger, ExecutionLineage, MAX_DEPTH};

/// The id of the error workflow's run for the failure of run `failed`: the same for
/// every report of that failure.
pub fn error_run_id(failed: ExecutionId) -> ExecutionId {
    ExecutionId::from_uuid(Uuid::new_v5(&failed.as_uuid(), b"error_workflow"))
}

/// Starts error workflows for runs that failed for good.
pub struct ErrorWorkflows {
    starter: Arc<RunStarter>,
    workflows: Arc<dyn WorkflowRepository>,
    lineage: Arc<dyn ExecutionLineage>,
}

impl std::fmt::Debug for ErrorWorkflows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorWorkflows").finish_non_exhaustive()
    }
}

/// What became of a failure's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorRun {
    /// The error workflow's run is queued (or was, by an earlier report).
    Started(ExecutionId),
    /// The failed workflow names no error workflow, or the failed run is an error
    /// workflow's own (or descends from one).
    NotWanted,
    /// It could not start (not active, quota, storage); the reason is logged.
    Skipped,
}

impl ErrorWorkflows {
    pub fn new(
        starter: Arc<RunStarter>,
        workflows: Arc<dyn WorkflowRepository>,
        lineage: Arc<dyn ExecutionLineage>,
    ) -> Self {
        Self {
            starter,
            workflows,
            lineage,
        }
    }

    /// Reports that run `failed` failed for good at `failed_node` (none: before or
    /// outside any node) with `error`; starts its workflow's error workflow if it has
    /// one. Never fails: what goes wrong is logged.
    #[tracing::instrument(name = "error_workflows.report", skip_all, fields(execution_id = %failed))]
    pub async fn report(
        &self,
        failed: ExecutionId,
        failed_node: Option<&str>,
        error: &str,
    ) -> ErrorRun {
        match self.try_report(failed, failed_node, error).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(execution_id = %failed, %error, "the error workflow was not started");
                ErrorRun::Skipped
            }
        }
    }

    async fn try_report(
        &self,
        failed: ExecutionId,
        failed_node: Option<&str>,
        error: &str,
    ) -> Result<ErrorRun, WorkflowError> {
        // Chains are at most MAX_DEPTH long; the limit only bounds the walk.
        let chain = self.lineage.lineage(failed, 2 * MAX_DEPTH).await?;
        let Some(run) = chain.first() else {
            return Ok(ErrorRun::NotWanted);
        };
        if chain
            .iter()
            .any(|ancestor| ancestor.trigger_kind == TriggerKind::ErrorWorkflow.code())
        {
            return Ok(ErrorRun::NotWanted);
        }
        let Some(handler) = self
            .workflows
            .find(run.workspace, run.workflow)
            .await?
            .and_then(|workflow| workflow.error_workflow_id)
        else {
            return Ok(ErrorRun::NotWanted);
        };
        let id = error_run_id(failed);
        let input = json!({
            "execution_id": failed.to_string(),
            "workflow_id": run.workflow.to_string(),
            "error": error,
            "failed_node": failed_node.filter(|node| !node.is_empty()).map_or(Value::Null, |node| json!(node)),
        });
        let started = self
            .starter
            .start_for_engine(EngineStart {
                id,
                workspace: run.workspace,
                workflow: handler,
                environment: run.environment.clone(),
                trigger: EngineTrigger::ErrorWorkflow { failed },
                input,
            })
            .await;
        match started {
            Ok(()) => Ok(ErrorRun::Started(id)),
            Err(
                reason @ (WorkflowError::NotActive { .. }
                | WorkflowError::NotFound(_)
                | WorkflowError::QuotaExceeded { .. }),
            ) => {
                tracing::warn!(
                    execution_id = %failed,
                    error_workflow_id = %handler,
                    reason = %reason,
                    "the error workflow was skipped"
                );
                Ok(ErrorRun::Skipped)
            }
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
#[path = "error_workflows_tests.rs"]
mod tests;
