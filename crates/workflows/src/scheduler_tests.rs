//! The scheduler's decisions with its ports mocked: one unit per schedule, the slot
//! claimed, the run queued and the schedule advanced in that unit; a quota refusal
//! consumes the slot and is recorded; missed slots are caught up by one run.

use std::sync::Arc;

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::plan_guard::MockUsageGate;
use fluxolab_kernel::testing::{Captured, Journal, place};
use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use fluxolab_kernel::{Admission, EnvironmentId, ManualClock};
use serde_json::{Value, json};
use time::macros::datetime;

use super::*;
use crate::model::{Deployment, Workflow};
use crate::ports::MockWorkflowRepository;
use crate::start::{MockRunQueue, QueuedRun, StartPorts};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Fixture {
    schedule: RegisteredSchedule,
    now: OffsetDateTime,
    unit: RecordingUnitOfWork,
    journal: Journal,
    runs: Captured<QueuedRun>,
    advances: Captured<Advance>,
    events: Captured<AuditEvent>,
    units: MockUnitOfWorkFactory,
    schedules: MockScheduleStore,
    workflows: MockWorkflowRepository,
    queue: MockRunQueue,
    gate: MockUsageGate,
    audit: MockAuditLog,
}

impl Fixture {
    /// An hourly schedule due at 10:00, active at version 3; the clock at `now`.
    fn new(now: OffsetDateTime) -> Self {
        let environment = EnvironmentRef {
            id: EnvironmentId::new(),
            name: "production".to_owned(),
        };
        let schedule = RegisteredSchedule {
            id: ScheduleId::new(),
            workspace_id: WorkspaceId::new(),
            workflow_id: WorkflowId::new(),
            environment,
            version: 3,
            cadence: Cadence::Cron {
                expression: "0 * * * *".to_owned(),
                timezone: "UTC".to_owned(),
            },
            next_at: Some(datetime!(2027-01-01 10:00 UTC)),
            last: None,
            quota_refused_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        Self {
            schedule,
            now,
            unit: RecordingUnitOfWork::default(),
            journal: Journal::default(),
            runs: Captured::default(),
            advances: Captured::default(),
            events: Captured::default(),
            units: MockUnitOfWorkFactory::new(),
            schedules: MockScheduleStore::new(),
            workflows: MockWorkflowRepository::new(),
            queue: MockRunQueue::new(),
            gate: MockUsageGate::new(),
            audit: MockAuditLog::new(),
        }
    }

    /// One schedule due in the first unit; none in the next.
    fn with_the_schedule_due(mut self) -> Self {
        let (unit, schedule) = (self.unit.clone(), self.schedule.clone());
        let mut handed = false;
        self.units.expect_begin().times(2).returning(move || {
            let given = if handed {
                RecordingUnitOfWork::default()
            } else {
                unit.clone()
            };
            handed = true;
            Ok(Box::new(given))
        });
        let mut claimed = false;
        let journal = self.journal.clone();
        let unit = self.unit.clone();
        self.schedules
            .expect_claim_due()
            .times(2)
            .returning(move |uow, _| {
                if claimed {
                    return Ok(None);
                }
                claimed = true;
                journal.note(format!("schedules.claim_due {}", place(uow, &unit)));
                Ok(Some(schedule.clone()))
            });
        let (journal, unit) = (self.journal.clone(), self.unit.clone());
        self.schedules
            .expect_claim_slot()
            .times(1)
            .returning(move |uow, _, slot, _| {
                journal.note(format!("schedules.claim_slot {slot} {}", place(uow, &unit)));
                Ok(true)
            });
        let (journal, unit, advances) = (
            self.journal.clone(),
            self.unit.clone(),
            self.advances.clone(),
        );
        self.schedules
            .expect_advance()
            .times(1)
            .returning(move |uow, advance| {
                journal.note(format!("schedules.advance {}", place(uow, &unit)));
                advances.keep(advance);
                Ok(())
            });
        let workflow = Workflow {
            id: self.schedule.workflow_id,
            workspace_id: self.schedule.workspace_id,
            name: "Hourly".to_owned(),
            description: String::new(),
            deployments: vec![Deployment {
                environment: self.schedule.environment.clone(),
                is_default: true,
                version: 3,
                activated_at: OffsetDateTime::UNIX_EPOCH,
            }],
            latest_version: Some(3),
            error_workflow_id: None,
            archived_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        self.workflows
            .expect_find()
            .returning(move |_, _| Ok(Some(workflow.clone())));
        self
    }

    fn with_quota(mut self, admission: Admission) -> Self {
        self.gate
            .expect_admit_run()
            .times(1)
            .returning(move |_| Ok(admission));
        self
    }

    fn queueing_runs(mut self) -> Self {
        let (journal, unit, runs) = (self.journal.clone(), self.unit.clone(), self.runs.clone());
        self.queue.expect_queue().never();
        self.queue
            .expect_queue_in()
            .times(1)
            .returning(move |uow, run| {
                journal.note(format!("queue.queue_in {}", place(uow, &unit)));
                runs.keep(run);
                Ok(())
            });
        self
    }

    fn recording_activity(mut self) -> Self {
        let (journal, unit, events) =
            (self.journal.clone(), self.unit.clone(), self.events.clone());
        self.audit
            .expect_record_in()
            .times(1)
            .returning(move |uow, event| {
                journal.note(format!(
                    "audit.record_in {} {}",
                    event.action,
                    place(uow, &unit)
                ));
                events.keep(event);
                Ok(())
            });
        self
    }

    async fn tick(&mut self) -> Result<TickReport, StorageError> {
        let starter = RunStarter::new(StartPorts {
            units: Arc::new(MockUnitOfWorkFactory::new()),
            workflows: Arc::new(std::mem::take(&mut self.workflows)),
            queue: Arc::new(std::mem::take(&mut self.queue)),
            gate: Arc::new(std::mem::take(&mut self.gate)),
            audit: Arc::new(MockAuditLog::new()),
        });
        let scheduler = Scheduler::new(SchedulerPorts {
            units: Arc::new(std::mem::take(&mut self.units)),
            schedules: Arc::new(std::mem::take(&mut self.schedules)),
            starter: Arc::new(starter),
            audit: Arc::new(std::mem::take(&mut self.audit)),
            clock: Arc::new(ManualClock::new(self.now)),
        });
        scheduler.tick(10).await
    }

    fn committed(&self) -> bool {
        self.unit
            .committed
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_due_slot_queues_one_run_with_its_times_and_advances_in_the_same_unit() -> TestResult {
    let mut fixture = Fixture::new(datetime!(2027-01-01 10:00:00.4 UTC))
        .with_the_schedule_due()
        .with_quota(Admission::Admitted)
        .queueing_runs();
    fixture.audit.expect_record_in().never();

    let report = fixture.tick().await?;

    assert_eq!(report.started, 1);
    assert_eq!(
        fixture.journal.entries(),
        [
            "schedules.claim_due in the unit",
            "schedules.claim_slot 2027-01-01 10:00:00.0 +00:00:00 in the unit",
            "queue.queue_in in the unit",
            "schedules.advance in the unit",
        ]
    );
    assert!(fixture.committed());
    let run = fixture.runs.only()?;
    assert_eq!(run.trigger_kind, crate::execution::TriggerKind::Schedule);
    assert_eq!(run.version, 3);
    assert_eq!(
        run.input,
        json!({"scheduled_for": "2027-01-01T10:00:00Z", "fired_at": "2027-01-01T10:00:00.4Z"})
    );
    let advance = fixture.advances.only()?;
    assert_eq!(advance.next_at, Some(datetime!(2027-01-01 11:00 UTC)));
    assert_eq!(
        advance
            .fired
            .map(|fired| (fired.outcome, fired.execution_id)),
        Some((FireOutcome::Started, Some(run.id)))
    );
    Ok(())
}

#[tokio::test]
async fn slots_missed_while_down_are_caught_up_by_one_run_for_the_latest() -> TestResult {
    let mut fixture = Fixture::new(datetime!(2027-01-01 15:20 UTC))
        .with_the_schedule_due()
        .with_quota(Admission::Admitted)
        .queueing_runs();

    let report = fixture.tick().await?;

    assert_eq!(report.started, 1);
    let run = fixture.runs.only()?;
    assert_eq!(
        run.input["scheduled_for"],
        Value::from("2027-01-01T15:00:00Z")
    );
    let advance = fixture.advances.only()?;
    assert_eq!(advance.next_at, Some(datetime!(2027-01-01 16:00 UTC)));
    assert_eq!(advance.fired.map(|fired| fired.skipped), Some(5));
    Ok(())
}

#[tokio::test]
async fn a_slot_the_quota_refuses_is_consumed_and_recorded_without_a_run() -> TestResult {
    let mut fixture = Fixture::new(datetime!(2027-01-01 10:00:01 UTC))
        .with_the_schedule_due()
        .with_quota(Admission::QuotaExceeded {
            retry_after_seconds: 60,
        })
        .recording_activity();
    fixture.queue.expect_queue_in().never();

    let report = fixture.tick().await?;

    assert_eq!(report.quota_exceeded, 1);
    assert_eq!(
        fixture.journal.entries(),
        [
            "schedules.claim_due in the unit",
            "schedules.claim_slot 2027-01-01 10:00:00.0 +00:00:00 in the unit",
            "audit.record_in schedule.quota_exceeded in the unit",
            "schedules.advance in the unit",
        ]
    );
    assert!(fixture.committed());
    let event = fixture.events.only()?;
    assert_eq!(event.actor, None);
    assert_eq!(
        event.metadata,
        json!({"environment": "production", "scheduled_for": "2027-01-01T10:00:00Z"})
    );
    let advance = fixture.advances.only()?;
    assert_eq!(advance.next_at, Some(datetime!(2027-01-01 11:00 UTC)));
    assert_eq!(
        advance
            .fired
            .map(|fired| (fired.outcome, fired.execution_id)),
        Some((FireOutcome::QuotaExceeded, None))
    );
    Ok(())
}
