//! Starting a run through the queue: the one use case every queued run begins with —
//! `/run`, retries, replays, webhook deliveries, schedule slots
//! ([`RunStarter::start_scheduled`]) (and, later, MCP tool calls, connectors and
//! sub-workflows).
//!
//! [`RunStarter`] decides everything about a run before anything is stored: which
//! version runs in which environment, its trigger kind, whether the workspace's quota
//! allows it (a used-up `executions_per_month` is [`WorkflowError::QuotaExceeded`],
//! answered `429 quota_exceeded` with `Retry-After`), and the audit entry. The
//! [`RunQueue`] port carries a decided [`QueuedRun`] to storage and decides nothing.
//!
//! Deliveries are decided one at a time ([`RunStarter::admit_delivery`], which costs no
//! query on the hot path) and stored in batches by the webhook event store, which writes
//! each decided run through the same statement part as [`RunQueue`] (group commit).

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    Admission, AuditEvent, AuditLog, EnvironmentId, EnvironmentRef, ExecutionId, Principal,
    StorageError, UnitOfWorkFactory, Uow, UsageGate, WebhookEventId, WorkflowId, WorkspaceId,
};
use serde_json::{Value, json};

use crate::WorkflowError;
use crate::execution::TriggerKind;
use crate::ports::WorkflowRepository;

/// What asks for a run; it sets the trigger kind and the audit entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `POST /api/workflows/{id}/run`. Not audited: the execution is its own record.
    Run,
    /// `POST /api/executions/{id}/retry`: the same version and input as `of`.
    Retry { of: ExecutionId },
    /// A stored webhook event run again (`…/events/{id}/replay`).
    Replay { event: WebhookEventId },
    /// A `flow.run_workflow` step of run `parent` (see [`RunStarter::start_for_engine`]).
    SubWorkflow { parent: ExecutionId },
    /// The error workflow of run `failed`, which failed for good.
    ErrorWorkflow { failed: ExecutionId },
    /// An MCP client called the workflow's tool; audited as `mcp.tool_called`.
    Mcp,
}

impl Trigger {
    /// The trigger kind the execution is stored with.
    pub const fn kind(self) -> TriggerKind {
        match self {
            Trigger::Run => TriggerKind::Run,
            Trigger::Retry { .. } => TriggerKind::Retry,
            Trigger::Replay { .. } => TriggerKind::Webhook,
            Trigger::SubWorkflow { .. } => TriggerKind::SubWorkflow,
            Trigger::ErrorWorkflow { .. } => TriggerKind::ErrorWorkflow,
            Trigger::Mcp => TriggerKind::Mcp,
        }
    }

    /// The run that started this one through a `flow.run_workflow` step.
    pub const fn parent(self) -> Option<ExecutionId> {
        match self {
            Trigger::SubWorkflow { parent } => Some(parent),
            _ => None,
        }
    }

    /// The activity a started run leaves, if any.
    fn audit(
        self,
        workspace: WorkspaceId,
        principal: &Principal,
        (workflow, run): (WorkflowId, ExecutionId),
    ) -> Option<AuditEvent> {
        let (action, target) = match self {
            // The execution records its parent (or its input the failed run).
            Trigger::Run | Trigger::SubWorkflow { .. } | Trigger::ErrorWorkflow { .. } => {
                return None;
            }
            Trigger::Retry { of } => ("execution.retried", ("execution", of.to_string())),
            Trigger::Replay { event } => (
                "webhook.event_replayed",
                ("webhook_event", event.to_string()),
            ),
            Trigger::Mcp => ("mcp.tool_called", ("workflow", workflow.to_string())),
        };
        Some(AuditEvent {
            workspace_id: workspace,
            actor: Some(principal.actor()),
            action,
            target: Some(target),
            metadata: json!({"execution_id": run.to_string()}),
        })
    }
}

/// A run asked for on behalf of `principal`.
#[derive(Clone, Debug)]
pub struct StartRequest {
    pub workflow: WorkflowId,
    /// Where it runs (already resolved and checked against the caller).
    pub environment: EnvironmentRef,
    /// The version to run; `None`: the one deployed in `environment`.
    pub version: Option<i32>,
    pub trigger: Trigger,
    pub input: Value,
}

/// The run of a schedule's slot: no one asks for it in person.
#[derive(Clone, Debug)]
pub struct ScheduledStart {
    pub workspace: WorkspaceId,
    pub workflow: WorkflowId,
    /// Where the schedule is registered; the version deployed there now runs.
    pub environment: EnvironmentRef,
    /// `{scheduled_for, fired_at}`.
    pub input: Value,
}

/// A run decided to be queued, as the queue stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedRun {
    pub id: ExecutionId,
    pub workspace_id: WorkspaceId,
    pub workflow_id: WorkflowId,
    pub version: i32,
    pub environment_id: EnvironmentId,
    pub trigger_kind: TriggerKind,
    pub input: Value,
    pub retry_of: Option<ExecutionId>,
    /// The run whose `flow.run_workflow` step started it.
    pub parent: Option<ExecutionId>,
}

/// The run a webhook delivery queues when it is stored as accepted: the workflow bound
/// to its registration, at the version deployed in the registration's environment at
/// the moment it is stored (so activation and deactivation apply at once), with the
/// delivery as input. None is queued when no workflow is bound or deployed there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryRun {
    pub id: ExecutionId,
    pub trigger_kind: TriggerKind,
}

impl DeliveryRun {
    /// The run of an admitted delivery: a new id, trigger kind `webhook`.
    pub fn webhook() -> Self {
        Self {
            id: ExecutionId::new(),
            trigger_kind: TriggerKind::Webhook,
        }
    }
}

/// Whether a delivery may start a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryAdmission {
    /// Store it; accepted, it queues this run.
    Run(DeliveryRun),
    /// Over the workspace's per-minute rate: store nothing, the sender backs off.
    RateLimited { retry_after_seconds: u64 },
    /// The period's quota is used up: store the delivery as `quota_exceeded`, run
    /// nothing.
    QuotaExceeded { retry_after_seconds: u64 },
}

/// Stores decided runs and wakes the workers. A run whose id is already stored is not
/// queued again (the engine starts children and error workflows under ids derived from
/// what started them, so a repeated attempt finds the run it started, not a second one).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RunQueue: Send + Sync {
    /// Queues `run` on its own.
    async fn queue(&self, run: &QueuedRun) -> Result<(), StorageError>;
    /// Queues `run` inside `unit` (with the audit entry that goes with it); the workers
    /// are woken when the unit commits.
    async fn queue_in(&self, unit: &mut Uow, run: &QueuedRun) -> Result<(), StorageError>;
}

/// What the start use case works with.
pub struct StartPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub workflows: Arc<dyn WorkflowRepository>,
    pub queue: Arc<dyn RunQueue>,
    pub gate: Arc<dyn UsageGate>,
    pub audit: Arc<dyn AuditLog>,
}

impl std::fmt::Debug for StartPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartPorts").finish_non_exhaustive()
    }
}

/// The execution-start use case; see the module documentation.
#[derive(Debug)]
pub struct RunStarter {
    ports: StartPorts,
}

impl RunStarter {
    pub fn new(ports: StartPorts) -> Self {
        Self { ports }
    }

    /// Queues a run for `principal`'s workspace: the version (the one asked for, else
    /// the one deployed in the environment), the quota, the audit entry in the same
    /// unit as the run. The caller has checked the permissions its route needs.
    #[tracing::instrument(name = "runs.start", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn start(
        &self,
        principal: &Principal,
        request: StartRequest,
    ) -> Result<ExecutionId, WorkflowError> {
        let workspace = principal.workspace_id();
        let version = match request.version {
            Some(version) => version,
            None => {
                self.deployed(workspace, request.workflow, &request.environment)
                    .await?
            }
        };
        self.admit(workspace).await?;
        let run = QueuedRun {
            id: ExecutionId::new(),
            workspace_id: workspace,
            workflow_id: request.workflow,
            version,
            environment_id: request.environment.id,
            trigger_kind: request.trigger.kind(),
            input: request.input,
            retry_of: match request.trigger {
                Trigger::Retry { of } => Some(of),
                _ => None,
            },
            parent: request.trigger.parent(),
        };
        match request
            .trigger
            .audit(workspace, principal, (run.workflow_id, run.id))
        {
            None => self.ports.queue.queue(&run).await?,
            Some(entry) => {
                let mut unit = self.ports.units.begin().await?;
                self.ports.queue.queue_in(unit.as_mut(), &run).await?;
                self.ports.audit.record_in(unit.as_mut(), &entry).await?;
                unit.commit().await?;
            }
        }
        Ok(run.id)
    }

    /// Queues the run of a schedule's slot inside `unit` (with the slot's claim, so the
    /// slot and its run are stored together or not at all): the version deployed in
    /// the environment now, the quota (counted exactly, as for `/run`), trigger kind
    /// `schedule`. Not audited: the execution is its own record, and the schedule keeps
    /// the slot's outcome.
    #[tracing::instrument(name = "runs.start_scheduled", skip_all, fields(workspace_id = %start.workspace, workflow_id = %start.workflow))]
    pub async fn start_scheduled(
        &self,
        unit: &mut Uow,
        start: ScheduledStart,
    ) -> Result<ExecutionId, WorkflowError> {
        let version = self
            .deployed(start.workspace, start.workflow, &start.environment)
            .await?;
        self.admit(start.workspace).await?;
        let run = QueuedRun {
            id: ExecutionId::new(),
            workspace_id: start.workspace,
            workflow_id: start.workflow,
            version,
            environment_id: start.environment.id,
            trigger_kind: TriggerKind::Schedule,
            input: start.input,
            retry_of: None,
            parent: None,
        };
        self.ports.queue.queue_in(unit, &run).await?;
        Ok(run.id)
    }

    /// Decides whether a delivery to `workspace` may start a run: the workspace's rate,
    /// then its quota (read from a cache on this hot path, see `UsageGate`).
    #[tracing::instrument(name = "runs.admit_delivery", level = "debug", skip_all, fields(workspace_id = %workspace))]
    pub async fn admit_delivery(
        &self,
        workspace: WorkspaceId,
    ) -> Result<DeliveryAdmission, StorageError> {
        Ok(match self.ports.gate.admit_delivery(workspace).await? {
            Admission::Admitted => DeliveryAdmission::Run(DeliveryRun::webhook()),
            Admission::RateLimited {
                retry_after_seconds,
            } => DeliveryAdmission::RateLimited {
                retry_after_seconds,
            },
            Admission::QuotaExceeded {
                retry_after_seconds,
            } => DeliveryAdmission::QuotaExceeded {
                retry_after_seconds,
            },
        })
    }

    /// Queues a run decided elsewhere in this crate (the engine's own runs).
    pub(crate) async fn queue_decided(&self, run: &QueuedRun) -> Result<(), StorageError> {
        self.ports.queue.queue(run).await
    }

    /// The version of `workflow` deployed in `environment`.
    pub(crate) async fn deployed(
        &self,
        workspace: WorkspaceId,
        workflow: WorkflowId,
        environment: &EnvironmentRef,
    ) -> Result<i32, WorkflowError> {
        let found = self
            .ports
            .workflows
            .find(workspace, workflow)
            .await?
            .ok_or(WorkflowError::NotFound("workflow"))?;
        found
            .version_in(environment.id)
            .ok_or_else(|| WorkflowError::NotActive {
                environment: environment.name.clone(),
            })
    }

    /// Refuses a run when the period's executions are used up (counted exactly when the
    /// plan has a quota; see `UsageGate::admit_run`).
    pub(crate) async fn admit(&self, workspace: WorkspaceId) -> Result<(), WorkflowError> {
        match self.ports.gate.admit_run(workspace).await? {
            Admission::Admitted => Ok(()),
            Admission::QuotaExceeded {
                retry_after_seconds,
            }
            | Admission::RateLimited {
                retry_after_seconds,
            } => Err(WorkflowError::QuotaExceeded {
                retry_after_seconds,
            }),
        }
    }
}

#[cfg(test)]
#[path = "start_tests.rs"]
mod tests;
