//! Executions: one run of a workflow version, its steps, and the queue they wait in.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    Cursor, EnvironmentId, EnvironmentRef, ExecutionId, Page, PageRequest, StorageError,
    WorkflowId, WorkspaceId,
};
use serde_json::Value;
use time::OffsetDateTime;

use crate::Definition;
use crate::engine::{SinkError, StepRecord, StepSink};
use crate::lease::{Fenced, LeaseClock, LeaseToken};
use crate::responses::RunSignals;

/// Where an execution stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecutionStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl ExecutionStatus {
    pub const fn code(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "queued",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for ExecutionStatus {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        [
            ExecutionStatus::Queued,
            ExecutionStatus::Running,
            ExecutionStatus::Succeeded,
            ExecutionStatus::Failed,
            ExecutionStatus::Cancelled,
        ]
        .into_iter()
        .find(|status| status.code() == code)
        .ok_or_else(|| {
            format!("must be one of queued, running, succeeded, failed, cancelled, not `{code}`")
        })
    }
}

/// What started an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    /// `POST /api/workflows/{id}/test`, run inline.
    Test,
    /// `POST /api/workflows/{id}/run`, through the queue.
    Run,
    /// `POST /api/executions/{id}/retry`.
    Retry,
    /// A webhook delivery, or the replay of one.
    Webhook,
    /// A `flow.run_workflow` step of another run (its parent).
    SubWorkflow,
    /// A run of another workflow that failed for good (its `error_workflow_id`).
    ErrorWorkflow,
    /// A `trigger.schedule` slot.
    Schedule,
    /// An MCP client's `tools/call` (`POST /api/mcp`).
    Mcp,
}

impl TriggerKind {
    /// Every trigger kind, in the order the API documents them.
    pub const ALL: &'static [TriggerKind] = &[
        TriggerKind::Test,
        TriggerKind::Run,
        TriggerKind::Retry,
        TriggerKind::Webhook,
        TriggerKind::Schedule,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            TriggerKind::Test => "test",
            TriggerKind::Run => "run",
            TriggerKind::Retry => "retry",
            TriggerKind::Webhook => "webhook",
            TriggerKind::SubWorkflow => "sub_workflow",
            TriggerKind::ErrorWorkflow => "error_workflow",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Mcp => "mcp",
        }
    }
}

/// An execution as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Execution {
    pub id: ExecutionId,
    pub workspace_id: WorkspaceId,
    pub workflow_id: WorkflowId,
    pub version: i32,
    /// The environment it runs in (its variables are `env.NAME`).
    pub environment: EnvironmentRef,
    pub status: ExecutionStatus,
    pub trigger_kind: String,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub retry_of: Option<ExecutionId>,
    /// The run whose `flow.run_workflow` step started this one.
    pub parent_execution_id: Option<ExecutionId>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    /// Filled when one execution is read; empty in lists.
    pub steps: Vec<StepRecord>,
}

impl Execution {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }
}

/// An inline run (`/test`) to store, running from the start; queued runs are
/// [`crate::start::QueuedRun`]s.
#[derive(Clone, Debug)]
pub struct InlineRun {
    pub id: ExecutionId,
    pub workspace_id: WorkspaceId,
    pub workflow_id: WorkflowId,
    pub version: i32,
    pub environment_id: EnvironmentId,
    pub input: Value,
}

/// Filters of `GET /api/executions`.
#[derive(Clone, Debug, Default)]
pub struct ExecutionFilter {
    pub workflow_id: Option<WorkflowId>,
    pub status: Option<ExecutionStatus>,
    pub since: Option<OffsetDateTime>,
}

/// A queued execution a worker has claimed, with what it needs to run.
#[derive(Clone, Debug)]
pub struct ClaimedExecution {
    pub execution: Execution,
    /// The claim's fencing token: every write for the run carries it.
    pub lease: LeaseToken,
    pub definition: Definition,
    /// Steps completed by an earlier attempt (checkpoints to resume after).
    pub completed: Vec<StepRecord>,
    /// What it took from its workspace's `execution_defaults` when it was queued.
    pub defaults: RunDefaults,
}

/// What one claim took: runs to process, and runs it ended `failed` because their
/// worker stopped during each of their attempts (nobody else will report them).
#[derive(Debug, Default)]
pub struct Claim {
    pub runs: Vec<ClaimedExecution>,
    pub abandoned: Vec<ExecutionId>,
}

/// What a run took from its workspace's `execution_defaults` when it was queued (the
/// statement that queues it reads them, the claim returns them: no round trip of its
/// own). Runs that carry none (inline `/test` runs, runs queued before there were
/// such defaults) get [`RunDefaults::default`]: the instance's timeout, every step kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunDefaults {
    /// The seconds one attempt may last, if the workspace set a limit.
    pub timeout_seconds: Option<u32>,
    /// Whether a run that succeeds keeps its steps (`false`: only its output and status
    /// stay, see [`StepsKept`]).
    pub save_successful_steps: bool,
}

impl RunDefaults {
    /// Defaults that change nothing: the instance's timeout, every step kept.
    pub const NONE: Self = Self {
        timeout_seconds: None,
        save_successful_steps: true,
    };

    /// How long one attempt may run: the workspace's limit, never past the instance's
    /// `cap` (`EXECUTION_TIMEOUT_SECONDS`), which wins.
    pub fn attempt_timeout(&self, cap: std::time::Duration) -> std::time::Duration {
        self.timeout_seconds
            .map(|seconds| std::time::Duration::from_secs(u64::from(seconds)))
            .map_or(cap, |own| own.min(cap))
    }

    /// Which steps a run that ended `status` keeps: all of them, except for a run that
    /// succeeded in a workspace that does not save the steps of successful runs.
    pub fn steps_kept(&self, status: ExecutionStatus) -> StepsKept {
        if status == ExecutionStatus::Succeeded && !self.save_successful_steps {
            StepsKept::Answers
        } else {
            StepsKept::All
        }
    }
}

/// Which of its steps a finished run keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepsKept {
    /// Every step (checkpointed or finishing with it).
    All,
    /// Only the steps that answered the run's webhook sender ([`StepRecord::is_answer`]):
    /// a sender still waiting reads its answer from them, possibly after the run ended.
    /// A run that answers no one keeps none.
    Answers,
}

impl StepsKept {
    /// Of `steps`, those kept.
    pub fn filter(self, steps: &[StepRecord]) -> Vec<StepRecord> {
        match self {
            StepsKept::All => steps.to_vec(),
            StepsKept::Answers => steps
                .iter()
                .filter(|step| step.is_answer())
                .cloned()
                .collect(),
        }
    }
}

/// What renewing a lease found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// Still ours; carry on.
    Held,
    /// Someone asked to cancel the execution.
    CancelRequested,
    /// Another worker holds it now (ours expired).
    Lost,
}

/// How an execution ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub status: ExecutionStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// Which of its steps stay: with [`StepsKept::Answers`] the steps already stored
    /// that did not answer the sender are deleted in the same write.
    pub steps_kept: StepsKept,
    /// Whether the workspace's failure notifications hear of it: a queued run that
    /// failed for good (not each retry, not an inline `/test` run). The notice is
    /// written in the same write as the run's end.
    pub notify_failure: bool,
}

impl Finished {
    /// Ended `status` for `reason`, with no output, every step kept; notified when it
    /// is a failure.
    pub fn with_error(status: ExecutionStatus, reason: impl Into<String>) -> Self {
        Self {
            status,
            output: None,
            error: Some(reason.into()),
            steps_kept: StepsKept::All,
            notify_failure: status == ExecutionStatus::Failed,
        }
    }
}

/// Executions and the queue.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ExecutionRepository: Send + Sync {
    /// Stores an inline run, `running` (trigger kind `test`); queued runs go through
    /// [`crate::start::RunQueue`].
    async fn create_inline(&self, run: &InlineRun) -> Result<(), StorageError>;
    /// Appends steps (after every step already stored for the execution) while `lease`
    /// holds it.
    async fn record_steps(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError>;
    /// Puts a running execution back in the queue, due in `delay_seconds`, storing
    /// `steps` with it, while `lease` holds it.
    async fn requeue(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        delay_seconds: i64,
        error: &str,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError>;
    /// Puts a running execution back in the queue until `until` (a long `flow.delay`),
    /// storing `steps` with it, while `lease` holds it; the wait does not count as an
    /// attempt.
    async fn suspend(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        until: OffsetDateTime,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError>;
    /// Puts a running execution back in the queue while its step waits for the child run
    /// `child` (`flow.run_workflow`), storing `steps` with it, while `lease` holds it: due
    /// at `until` (a fallback), or at once when `child` has already ended; the child's
    /// end makes it due at once otherwise. The wait does not count as an attempt.
    async fn suspend_for_child(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        child: ExecutionId,
        until: OffsetDateTime,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError>;
    /// Ends a running execution while `lease` holds it, storing `steps` with it in the
    /// same write (the caller passes only the steps [`Finished::steps_kept`] keeps; the
    /// stored ones it does not keep go in that write too).
    async fn finish(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        outcome: Finished,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError>;
    /// Gives every run `worker` still holds back to the queue at once: due as it was (so
    /// ahead of runs queued after it), the attempt not counted. For a worker shutting
    /// down once its runs have stopped — those the drain cut short, and those it stopped
    /// itself when its lease ran out by its own clock while the database still gave it to
    /// it. A run another worker claimed since is that worker's and is left alone.
    /// Returns how many went back.
    async fn release_held(&self, worker: &str) -> Result<u64, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: ExecutionId,
    ) -> Result<Option<Execution>, StorageError>;
    async fn list(
        &self,
        workspace: WorkspaceId,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<Execution>, StorageError>;
    /// Cancels a queued execution (`true`), or asks a running one to stop.
    async fn cancel(&self, workspace: WorkspaceId, id: ExecutionId) -> Result<bool, StorageError>;
    /// Claims up to `limit` due executions for `worker` for `lease_seconds`: queued
    /// ones, and running ones whose lease ran out (their worker died). Running ones
    /// whose lease ran out after their last attempt end `failed` in the same statement.
    async fn claim(
        &self,
        worker: &str,
        limit: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StorageError>;
    /// Waits until an execution may be due (a `NOTIFY` from whoever queued one) or
    /// `max_wait` passes, whichever comes first.
    async fn wait_for_work(&self, max_wait: std::time::Duration) -> Result<(), StorageError>;
    /// Deletes up to `batch` finished executions older than their workspace plan's
    /// `execution_retention_days`; returns how many went.
    async fn prune_expired(&self, batch: i64) -> Result<u64, StorageError>;
    /// Extends the lease to at least `lease_seconds` from now (never shortening it)
    /// while `lease` still holds it, and reports a cancellation.
    async fn renew(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        lease_seconds: i64,
    ) -> Result<Lease, StorageError>;
}

/// Records checkpoints of one execution through the repository under its lease, and
/// announces a checkpoint that holds the answer to the run's sender.
pub struct RepositorySink {
    pub executions: Arc<dyn ExecutionRepository>,
    pub signals: Arc<dyn RunSignals>,
    pub execution_id: ExecutionId,
    /// The claim's fencing token ([`LeaseToken::INLINE`] for inline runs).
    pub lease: LeaseToken,
    /// When the lease ends by this process's clock.
    pub clock: Arc<LeaseClock>,
}

impl fmt::Debug for RepositorySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepositorySink")
            .field("execution_id", &self.execution_id)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StepSink for RepositorySink {
    async fn record(&self, steps: &[StepRecord]) -> Result<(), SinkError> {
        if self.clock.is_over(std::time::Instant::now()) {
            return Err(SinkError::LeaseLost);
        }
        let written = self
            .executions
            .record_steps(self.execution_id, self.lease, steps)
            .await
            .map_err(|error| {
                SinkError::Failed(format!("{error}: {:?}", std::error::Error::source(&error)))
            })?;
        if written == Fenced::LeaseLost {
            self.clock.lose();
            return Err(SinkError::LeaseLost);
        }
        if steps.iter().any(StepRecord::is_answer)
            && let Err(error) = self.signals.announce(self.execution_id).await
        {
            // The steps are stored: a waiting sender reads them at its next look (at
            // worst when its time is up); failing here would record them again.
            tracing::warn!(%error, execution_id = %self.execution_id, "could not announce the run's answer");
        }
        Ok(())
    }

    async fn hold_for(&self, need: std::time::Duration) -> Result<(), SinkError> {
        let sent_at = std::time::Instant::now();
        match self.clock.left(sent_at) {
            None => Err(SinkError::LeaseLost),
            Some(left) if left >= need => Ok(()),
            Some(_) => {
                // The effect may outlast the lease: extend it first (a round trip only
                // before such an effect), measured from before the request was sent.
                let seconds = need.as_secs().saturating_add(1);
                let renewed = self
                    .executions
                    .renew(
                        self.execution_id,
                        self.lease,
                        i64::try_from(seconds).unwrap_or(i64::MAX),
                    )
                    .await
                    .map_err(|error| SinkError::Failed(error.to_string()))?;
                if renewed == Lease::Lost {
                    self.clock.lose();
                    return Err(SinkError::LeaseLost);
                }
                self.clock
                    .extended(sent_at, std::time::Duration::from_secs(seconds));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn step(node_type: &str, error: Option<&str>) -> StepRecord {
        StepRecord {
            node_id: node_type.to_owned(),
            node_type: node_type.to_owned(),
            input: Value::Null,
            output: None,
            error: error.map(str::to_owned),
            route: None,
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: OffsetDateTime::UNIX_EPOCH,
            effect_key: None,
            logs: Vec::new(),
        }
    }

    #[test]
    fn an_attempt_lasts_the_workspace_timeout_but_never_past_the_instance_cap() {
        let cap = Duration::from_secs(300);
        let with = |seconds| RunDefaults {
            timeout_seconds: seconds,
            ..RunDefaults::NONE
        };
        assert_eq!(with(Some(1)).attempt_timeout(cap), Duration::from_secs(1));
        assert_eq!(with(Some(300)).attempt_timeout(cap), cap);
        assert_eq!(with(Some(3_600)).attempt_timeout(cap), cap);
        assert_eq!(with(None).attempt_timeout(cap), cap);
    }

    #[test]
    fn only_a_success_in_a_workspace_that_saves_no_steps_drops_them() {
        let saving = RunDefaults::NONE;
        let not_saving = RunDefaults {
            save_successful_steps: false,
            ..RunDefaults::NONE
        };
        assert_eq!(
            not_saving.steps_kept(ExecutionStatus::Succeeded),
            StepsKept::Answers
        );
        for status in [ExecutionStatus::Failed, ExecutionStatus::Cancelled] {
            assert_eq!(not_saving.steps_kept(status), StepsKept::All);
        }
        assert_eq!(
            saving.steps_kept(ExecutionStatus::Succeeded),
            StepsKept::All
        );
    }

    #[test]
    fn dropping_steps_keeps_only_a_successful_answer_to_the_sender() {
        let steps = [
            step("trigger.webhook", None),
            step("webhook.respond", None),
            step("webhook.respond", Some("bad status")),
        ];
        let kept = StepsKept::Answers.filter(&steps);
        assert_eq!(kept, [steps[1].clone()]);
        assert_eq!(StepsKept::All.filter(&steps), steps);
    }
}
