//! The start use case's decisions, with its ports mocked: which version, the quota
//! (the same for every trigger), the audit entry in the unit of its run.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::plan_guard::MockUsageGate;
use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use fluxolab_kernel::{
    Actor, Admission, EnvironmentId, EnvironmentRef, ExecutionId, Permission, Principal, UserId,
    WebhookEventId, WorkflowId, WorkspaceId,
};
use serde_json::json;
use time::OffsetDateTime;

use crate::WorkflowError;
use crate::execution::TriggerKind;
use crate::model::{Deployment, Workflow};
use crate::ports::MockWorkflowRepository;
use crate::start::{
    DeliveryAdmission, MockRunQueue, RunStarter, StartPorts, StartRequest, Trigger,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The mocked ports, set up by each test before [`Fixture::starter`].
struct Fixture {
    workspace: WorkspaceId,
    workflow: WorkflowId,
    production: EnvironmentRef,
    units: MockUnitOfWorkFactory,
    workflows: MockWorkflowRepository,
    queue: MockRunQueue,
    gate: MockUsageGate,
    audit: MockAuditLog,
}

impl Fixture {
    fn new() -> Self {
        Self {
            workspace: WorkspaceId::new(),
            workflow: WorkflowId::new(),
            production: EnvironmentRef {
                id: EnvironmentId::new(),
                name: "production".into(),
            },
            units: MockUnitOfWorkFactory::new(),
            workflows: MockWorkflowRepository::new(),
            queue: MockRunQueue::new(),
            gate: MockUsageGate::new(),
            audit: MockAuditLog::new(),
        }
    }

    fn caller(&self) -> Principal {
        Principal::new(
            Actor::User(UserId::new()),
            self.workspace,
            [Permission::WorkflowsRun],
        )
    }

    /// The workflow, active in production at `version`.
    fn deployed_at(&mut self, version: i32) {
        let workflow = Workflow {
            id: self.workflow,
            workspace_id: self.workspace,
            name: "Flow".into(),
            description: String::new(),
            deployments: vec![Deployment {
                environment: self.production.clone(),
                is_default: true,
                version,
                activated_at: OffsetDateTime::UNIX_EPOCH,
            }],
            latest_version: Some(version),
            error_workflow_id: None,
            archived_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        self.workflows
            .expect_find()
            .returning(move |_, _| Ok(Some(workflow.clone())));
    }

    fn quota(&mut self, admission: Admission) {
        self.gate
            .expect_admit_run()
            .returning(move |_| Ok(admission));
    }

    /// A unit of work is opened once; the returned flag tells whether it committed.
    fn one_unit(&mut self) -> Arc<std::sync::atomic::AtomicBool> {
        let unit = RecordingUnitOfWork::default();
        let committed = unit.committed.clone();
        self.units
            .expect_begin()
            .times(1)
            .returning(move || Ok(Box::new(unit.clone())));
        committed
    }

    fn request(&self, trigger: Trigger, version: Option<i32>) -> StartRequest {
        StartRequest {
            workflow: self.workflow,
            environment: self.production.clone(),
            version,
            trigger,
            input: json!({"n": 1}),
        }
    }

    fn starter(self) -> RunStarter {
        RunStarter::new(StartPorts {
            units: Arc::new(self.units),
            workflows: Arc::new(self.workflows),
            queue: Arc::new(self.queue),
            gate: Arc::new(self.gate),
            audit: Arc::new(self.audit),
        })
    }
}

#[tokio::test]
async fn a_run_queues_the_version_deployed_in_its_environment_without_a_unit() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.deployed_at(4);
    fixture.quota(Admission::Admitted);
    let (workspace, workflow, environment) =
        (fixture.workspace, fixture.workflow, fixture.production.id);
    fixture
        .queue
        .expect_queue()
        .withf(move |run| {
            run.workspace_id == workspace
                && run.workflow_id == workflow
                && run.environment_id == environment
                && run.version == 4
                && run.trigger_kind == TriggerKind::Run
                && run.retry_of.is_none()
                && run.input == json!({"n": 1})
        })
        .times(1)
        .returning(|_| Ok(()));
    fixture.units.expect_begin().never();
    fixture.audit.expect_record_in().never();
    let caller = fixture.caller();
    let request = fixture.request(Trigger::Run, None);
    fixture.starter().start(&caller, request).await?;
    Ok(())
}

#[tokio::test]
async fn a_workflow_not_active_in_the_environment_is_refused_before_the_quota_is_asked() {
    let mut fixture = Fixture::new();
    fixture
        .workflows
        .expect_find()
        .returning(|_, _| Ok(None))
        .times(1);
    fixture.gate.expect_admit_run().never();
    fixture.queue.expect_queue().never();
    let caller = fixture.caller();
    let request = fixture.request(Trigger::Run, None);
    let refused = fixture.starter().start(&caller, request).await;
    assert!(matches!(refused, Err(WorkflowError::NotFound("workflow"))));

    let mut fixture = Fixture::new();
    let elsewhere = EnvironmentRef {
        id: EnvironmentId::new(),
        name: "staging".into(),
    };
    fixture.deployed_at(2);
    fixture.gate.expect_admit_run().never();
    fixture.queue.expect_queue().never();
    let caller = fixture.caller();
    let mut request = fixture.request(Trigger::Run, None);
    request.environment = elsewhere;
    let refused = fixture.starter().start(&caller, request).await;
    assert!(
        matches!(&refused, Err(WorkflowError::NotActive { environment }) if environment == "staging"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_used_up_quota_refuses_every_trigger_alike_and_queues_nothing() {
    for trigger in [
        Trigger::Run,
        Trigger::Retry {
            of: ExecutionId::new(),
        },
        Trigger::Replay {
            event: WebhookEventId::new(),
        },
    ] {
        let mut fixture = Fixture::new();
        fixture.deployed_at(1);
        fixture.quota(Admission::QuotaExceeded {
            retry_after_seconds: 86_400,
        });
        fixture.queue.expect_queue().never();
        fixture.queue.expect_queue_in().never();
        fixture.units.expect_begin().never();
        let caller = fixture.caller();
        let request = fixture.request(trigger, None);
        let refused = fixture.starter().start(&caller, request).await;
        assert!(
            matches!(
                refused,
                Err(WorkflowError::QuotaExceeded {
                    retry_after_seconds: 86_400
                })
            ),
            "{trigger:?}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn a_retry_runs_its_version_and_is_audited_in_the_unit_of_its_run() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.workflows.expect_find().never();
    fixture.quota(Admission::Admitted);
    let committed = fixture.one_unit();
    let first = ExecutionId::new();
    fixture
        .queue
        .expect_queue_in()
        .withf(move |_, run| {
            run.version == 7
                && run.retry_of == Some(first)
                && run.trigger_kind == TriggerKind::Retry
        })
        .times(1)
        .returning(|_, _| Ok(()));
    fixture.queue.expect_queue().never();
    fixture
        .audit
        .expect_record_in()
        .withf(move |_, entry| {
            entry.action == "execution.retried"
                && entry.target == Some(("execution", first.to_string()))
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let caller = fixture.caller();
    let request = fixture.request(Trigger::Retry { of: first }, Some(7));
    let started = fixture.starter().start(&caller, request).await?;
    assert_ne!(started, first);
    assert!(committed.load(Ordering::SeqCst));
    Ok(())
}

#[tokio::test]
async fn a_replay_runs_as_a_webhook_and_its_audit_names_the_run() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.deployed_at(3);
    fixture.quota(Admission::Admitted);
    let committed = fixture.one_unit();
    let event = WebhookEventId::new();
    fixture
        .queue
        .expect_queue_in()
        .withf(|_, run| run.trigger_kind == TriggerKind::Webhook && run.version == 3)
        .times(1)
        .returning(|_, _| Ok(()));
    let recorded = Arc::new(std::sync::Mutex::new(None));
    let seen = recorded.clone();
    fixture
        .audit
        .expect_record_in()
        .times(1)
        .returning(move |_, entry| {
            if let Ok(mut seen) = seen.lock() {
                *seen = Some(entry.clone());
            }
            Ok(())
        });
    let caller = fixture.caller();
    let request = fixture.request(Trigger::Replay { event }, None);
    let started = fixture.starter().start(&caller, request).await?;
    let entry = recorded
        .lock()
        .map_err(|_| "poisoned")?
        .clone()
        .ok_or("no audit")?;
    assert_eq!(entry.action, "webhook.event_replayed");
    assert_eq!(entry.target, Some(("webhook_event", event.to_string())));
    assert_eq!(entry.metadata["execution_id"], started.to_string());
    assert!(committed.load(Ordering::SeqCst));
    Ok(())
}

#[tokio::test]
async fn a_failed_audit_leaves_the_run_uncommitted() {
    let mut fixture = Fixture::new();
    fixture.quota(Admission::Admitted);
    let committed = fixture.one_unit();
    fixture
        .queue
        .expect_queue_in()
        .times(1)
        .returning(|_, _| Ok(()));
    fixture.audit.expect_record_in().times(1).returning(|_, _| {
        Err(fluxolab_kernel::StorageError::new(std::io::Error::other(
            "down",
        )))
    });
    let caller = fixture.caller();
    let request = fixture.request(
        Trigger::Retry {
            of: ExecutionId::new(),
        },
        Some(1),
    );
    let failed = fixture.starter().start(&caller, request).await;
    assert!(matches!(failed, Err(WorkflowError::Storage(_))));
    assert!(!committed.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_delivery_is_admitted_with_a_webhook_run_or_told_why_not() -> TestResult {
    for (admission, expected) in [
        (
            Admission::RateLimited {
                retry_after_seconds: 3,
            },
            Some(DeliveryAdmission::RateLimited {
                retry_after_seconds: 3,
            }),
        ),
        (
            Admission::QuotaExceeded {
                retry_after_seconds: 60,
            },
            Some(DeliveryAdmission::QuotaExceeded {
                retry_after_seconds: 60,
            }),
        ),
        (Admission::Admitted, None),
    ] {
        let mut fixture = Fixture::new();
        fixture
            .gate
            .expect_admit_delivery()
            .times(1)
            .returning(move |_| Ok(admission));
        fixture.gate.expect_admit_run().never();
        let workspace = fixture.workspace;
        let decided = fixture.starter().admit_delivery(workspace).await?;
        match expected {
            Some(expected) => assert_eq!(decided, expected),
            None => assert!(
                matches!(decided, DeliveryAdmission::Run(run) if run.trigger_kind == TriggerKind::Webhook),
                "{decided:?}"
            ),
        }
    }
    Ok(())
}
