//! Registered schedules and the scheduler that fires them.
//!
//! Activating a `trigger.schedule` workflow in an environment registers its schedule
//! there ([`ScheduleStore::register`], from [`crate::WorkflowService`]); deactivating or
//! archiving removes it, and promoting a version applies that version's params.
//!
//! [`Scheduler::tick`] runs in every worker process. Each round takes one due schedule
//! in its own unit of work, locked with `SKIP LOCKED` so that processes racing on one
//! database never take the same one, claims its slot (unique per schedule and slot, so a
//! slot never starts two runs), starts the run through [`RunStarter::start_scheduled`]
//! (quota included, trigger kind `schedule`), records the outcome and moves the schedule
//! to its next fire time, all in that unit. Slots missed while every process was down are
//! caught up by one run, for the latest of them ([`ScheduleSpec::due`]). A slot the quota
//! refuses is consumed, recorded on the schedule and in the activity log, not retried.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    AuditEvent, AuditLog, Clock, EnvironmentId, EnvironmentRef, ExecutionId, StorageError,
    UnitOfWorkFactory, Uow, WorkflowId, WorkspaceId,
};
use serde_json::json;
use time::OffsetDateTime;

use crate::WorkflowError;
use crate::schedule::{Cadence, ScheduleId, ScheduleSpec, rfc3339};
use crate::start::{RunStarter, ScheduledStart};

/// What became of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FireOutcome {
    /// A run was queued.
    Started,
    /// The period's executions were used up: no run; the slot is consumed.
    QuotaExceeded,
    /// The workflow was no longer active there: no run.
    NotActive,
}

impl FireOutcome {
    /// Every outcome, as the API lists them.
    pub const ALL: &'static [FireOutcome] = &[
        FireOutcome::Started,
        FireOutcome::QuotaExceeded,
        FireOutcome::NotActive,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            FireOutcome::Started => "started",
            FireOutcome::QuotaExceeded => "quota_exceeded",
            FireOutcome::NotActive => "not_active",
        }
    }

    /// The outcome stored as `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|outcome| outcome.code() == code)
    }
}

/// The last slot a schedule fired for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastFire {
    pub slot: OffsetDateTime,
    pub fired_at: OffsetDateTime,
    pub outcome: FireOutcome,
    pub execution_id: Option<ExecutionId>,
    /// Earlier slots this one caught up (they passed while nothing ran).
    pub skipped: i64,
}

/// A schedule as stored: one workflow in one environment.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisteredSchedule {
    pub id: ScheduleId,
    pub workspace_id: WorkspaceId,
    pub workflow_id: WorkflowId,
    pub environment: EnvironmentRef,
    /// The version whose params it follows (the one activated there).
    pub version: i32,
    pub cadence: Cadence,
    /// The next fire time; `None`: the pattern fires no more.
    pub next_at: Option<OffsetDateTime>,
    pub last: Option<LastFire>,
    /// When the quota last refused one of its slots.
    pub quota_refused_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// A schedule to register (or to update, when the workflow has one there already).
#[derive(Clone, Debug, PartialEq)]
pub struct NewSchedule {
    pub id: ScheduleId,
    pub workspace_id: WorkspaceId,
    pub workflow_id: WorkflowId,
    pub environment_id: EnvironmentId,
    pub version: i32,
    pub cadence: Cadence,
    /// The first fire time from now; kept as it was when the cadence is unchanged.
    pub next_at: Option<OffsetDateTime>,
}

/// How a fired schedule moves on.
#[derive(Clone, Debug, PartialEq)]
pub struct Advance {
    pub schedule: ScheduleId,
    pub next_at: Option<OffsetDateTime>,
    /// What its slot gave; `None` when the slot had been fired already.
    pub fired: Option<LastFire>,
}

/// Registered schedules, and the slots they fired.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Registers `schedule` for its workflow and environment, or updates the one there
    /// (its fire times stay when the cadence is unchanged).
    async fn register(&self, unit: &mut Uow, schedule: &NewSchedule) -> Result<(), StorageError>;
    /// Removes the schedule of `workflow` in `environment`, or in every environment.
    async fn unregister(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
        environment: Option<EnvironmentId>,
    ) -> Result<(), StorageError>;
    /// The schedules of `workflow`, by environment name.
    async fn list(
        &self,
        workspace: WorkspaceId,
        workflow: WorkflowId,
    ) -> Result<Vec<RegisteredSchedule>, StorageError>;
    /// The workspace's time zone (its settings'; `UTC` when it has none).
    async fn default_timezone(&self, workspace: WorkspaceId) -> Result<String, StorageError>;
    /// One schedule due at `now` (its next fire time not after it), locked for the rest
    /// of `unit`; schedules other units hold are skipped.
    async fn claim_due(
        &self,
        unit: &mut Uow,
        now: OffsetDateTime,
    ) -> Result<Option<RegisteredSchedule>, StorageError>;
    /// Claims `slot` of `schedule`, fired `at`; `false` when it was claimed before.
    async fn claim_slot(
        &self,
        unit: &mut Uow,
        schedule: &RegisteredSchedule,
        slot: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<bool, StorageError>;
    /// Records what the slot gave and moves the schedule to its next fire time.
    async fn advance(&self, unit: &mut Uow, advance: &Advance) -> Result<(), StorageError>;
}

/// What the scheduler works with.
pub struct SchedulerPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub schedules: Arc<dyn ScheduleStore>,
    pub starter: Arc<RunStarter>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SchedulerPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerPorts").finish_non_exhaustive()
    }
}

/// What one [`Scheduler::tick`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub started: u32,
    pub quota_exceeded: u32,
    pub not_active: u32,
    /// Schedules whose stored cadence no longer parses (their firing stops).
    pub invalid: u32,
    /// Slots found claimed already (moved past without a run).
    pub already_fired: u32,
}

impl TickReport {
    /// Schedules acted on.
    pub fn total(&self) -> u32 {
        self.started + self.quota_exceeded + self.not_active + self.invalid + self.already_fired
    }
}

/// What one round did with the schedule it took.
enum Round {
    Fired(FireOutcome),
    AlreadyFired,
    Invalid,
}

/// Fires due schedules; see the module documentation.
#[derive(Debug)]
pub struct Scheduler {
    ports: SchedulerPorts,
}

impl Scheduler {
    pub fn new(ports: SchedulerPorts) -> Self {
        Self { ports }
    }

    /// Fires the schedules due now, at most `limit` of them, one unit each.
    #[tracing::instrument(name = "schedules.tick", level = "debug", skip_all)]
    pub async fn tick(&self, limit: u32) -> Result<TickReport, StorageError> {
        let mut report = TickReport::default();
        while report.total() < limit {
            let now = self.ports.clock.now();
            let mut unit = self.ports.units.begin().await?;
            let Some(schedule) = self.ports.schedules.claim_due(unit.as_mut(), now).await? else {
                break;
            };
            let outcome = self.fire(unit.as_mut(), &schedule, now).await?;
            unit.commit().await?;
            match outcome {
                Round::Fired(FireOutcome::Started) => report.started += 1,
                Round::Fired(FireOutcome::QuotaExceeded) => report.quota_exceeded += 1,
                Round::Fired(FireOutcome::NotActive) => report.not_active += 1,
                Round::AlreadyFired => report.already_fired += 1,
                Round::Invalid => report.invalid += 1,
            }
        }
        Ok(report)
    }

    /// Fires `schedule`'s due slot inside `unit`.
    async fn fire(
        &self,
        unit: &mut Uow,
        schedule: &RegisteredSchedule,
        now: OffsetDateTime,
    ) -> Result<Round, StorageError> {
        let due = match (ScheduleSpec::of(&schedule.cadence), schedule.next_at) {
            (Ok(spec), Some(next_at)) => spec.due(next_at, now),
            _ => None,
        };
        let Some(due) = due else {
            tracing::warn!(schedule_id = %schedule.id, "a stored schedule no longer parses; it stops firing");
            let advance = Advance {
                schedule: schedule.id,
                next_at: None,
                fired: None,
            };
            self.ports.schedules.advance(unit, &advance).await?;
            return Ok(Round::Invalid);
        };
        if !self
            .ports
            .schedules
            .claim_slot(unit, schedule, due.slot, now)
            .await?
        {
            // Fired before (not possible while the row lock holds; kept as the last word).
            let advance = Advance {
                schedule: schedule.id,
                next_at: due.next,
                fired: None,
            };
            self.ports.schedules.advance(unit, &advance).await?;
            return Ok(Round::AlreadyFired);
        }
        let input = json!({
            "scheduled_for": rfc3339(due.slot),
            "fired_at": rfc3339(now),
        });
        let start = ScheduledStart {
            workspace: schedule.workspace_id,
            workflow: schedule.workflow_id,
            environment: schedule.environment.clone(),
            input,
        };
        let (outcome, execution_id) = match self.ports.starter.start_scheduled(unit, start).await {
            Ok(id) => (FireOutcome::Started, Some(id)),
            Err(WorkflowError::QuotaExceeded { .. }) => {
                self.ports
                    .audit
                    .record_in(unit, &quota_refused(schedule, due.slot))
                    .await?;
                (FireOutcome::QuotaExceeded, None)
            }
            Err(WorkflowError::NotActive { .. } | WorkflowError::NotFound(_)) => {
                (FireOutcome::NotActive, None)
            }
            Err(WorkflowError::Storage(error)) => return Err(error),
            Err(other) => {
                tracing::warn!(schedule_id = %schedule.id, error = %other, "a scheduled run could not start");
                (FireOutcome::NotActive, None)
            }
        };
        tracing::info!(
            schedule_id = %schedule.id,
            workflow_id = %schedule.workflow_id,
            workspace_id = %schedule.workspace_id,
            outcome = outcome.code(),
            skipped = due.skipped,
            "schedule fired"
        );
        let advance = Advance {
            schedule: schedule.id,
            next_at: due.next,
            fired: Some(LastFire {
                slot: due.slot,
                fired_at: now,
                outcome,
                execution_id,
                skipped: due.skipped,
            }),
        };
        self.ports.schedules.advance(unit, &advance).await?;
        Ok(Round::Fired(outcome))
    }
}

/// The activity a slot refused by the quota leaves (no actor: the scheduler).
fn quota_refused(schedule: &RegisteredSchedule, slot: OffsetDateTime) -> AuditEvent {
    AuditEvent {
        workspace_id: schedule.workspace_id,
        actor: None,
        action: "schedule.quota_exceeded",
        target: Some(("workflow", schedule.workflow_id.to_string())),
        metadata: json!({
            "environment": schedule.environment.name,
            "scheduled_for": rfc3339(slot),
        }),
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
