//! `ExecutionService`'s own decisions with its ports mocked: who may run and read, the
//! environment a run happens in, what a retry runs again, what cancelling changes, how a
//! processed run is settled (finished, requeued with backoff, suspended), when waiting
//! senders are told, and what a waiting sender is given. The engine is the real one over
//! mocked effects and a clock that does not move; the start use case is the real one over
//! mocked ports.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::environment::{MockEnvironmentDirectory, MockEnvironmentVariables};
use fluxolab_kernel::plan_guard::MockUsageGate;
use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use fluxolab_kernel::{
    Actor, Admission, ApiKeyId, EnvironmentRef, Forbidden, ManualClock, RunEnvironment,
    StorageError, UserId,
};
use serde_json::json;
use time::OffsetDateTime;

use super::*;
use crate::Definition;
use crate::engine::{MockNodeEffects, NodeFailure};
use crate::execution::{MockExecutionRepository, StepsKept, TriggerKind};
use crate::model::{Deployment, Version, Workflow};
use crate::ports::MockWorkflowRepository;
use crate::responses::Subscription;
use crate::start::{MockRunQueue, QueuedRun, StartPorts};

use fluxolab_kernel::testing::{Captured, Journal};

#[path = "execution_service_children_tests.rs"]
mod children;
#[path = "execution_service_defaults_tests.rs"]
mod defaults;
#[path = "execution_service_notify_tests.rs"]
mod notify;

/// A lease that lasts the whole test.
fn held() -> Arc<LeaseClock> {
    Arc::new(LeaseClock::unbounded())
}

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Run news through the journal: `announce <id>` and `subscribe <id>`. Each
/// subscription hears `announcements` announcements at once, then times out at once.
struct FakeSignals {
    journal: Journal,
    announcements: usize,
}

#[async_trait]
impl RunSignals for FakeSignals {
    async fn announce(&self, execution: ExecutionId) -> Result<(), StorageError> {
        self.journal.note(format!("announce {execution}"));
        Ok(())
    }

    async fn subscribe(
        &self,
        execution: ExecutionId,
    ) -> Result<Box<dyn Subscription>, StorageError> {
        self.journal.note(format!("subscribe {execution}"));
        Ok(Box::new(Announced(self.announcements)))
    }
}

/// A subscription that answers without waiting: announced while any are left.
struct Announced(usize);

#[async_trait]
impl Subscription for Announced {
    async fn next(&mut self, _timeout: Duration) -> bool {
        let announced = self.0 > 0;
        self.0 = self.0.saturating_sub(1);
        announced
    }
}

/// What the service told its observer.
#[derive(Debug, Default)]
struct Observed {
    settled: Mutex<Vec<ExecutionStatus>>,
    /// `(node type, failed)` per reported step.
    steps: Mutex<Vec<(String, bool)>>,
}

impl Observed {
    fn settled(&self) -> Vec<ExecutionStatus> {
        self.settled.lock().expect("observer lock").clone()
    }

    fn steps(&self) -> Vec<(String, bool)> {
        self.steps.lock().expect("observer lock").clone()
    }
}

impl ExecutionObserver for Observed {
    fn step_finished(&self, node_type: &str, _seconds: f64, failed: bool) {
        self.steps
            .lock()
            .expect("observer lock")
            .push((node_type.to_owned(), failed));
    }

    fn execution_settled(&self, status: ExecutionStatus) {
        self.settled.lock().expect("observer lock").push(status);
    }
}

fn environment(name: &str) -> EnvironmentRef {
    EnvironmentRef {
        id: EnvironmentId::new(),
        name: name.to_owned(),
    }
}

fn definition(value: Value) -> Result<Definition, serde_json::Error> {
    serde_json::from_value(value)
}

/// A manual trigger feeding one `data.set`.
fn manual_definition() -> Result<Definition, serde_json::Error> {
    definition(json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"done": true}}}
        ],
        "connections": [{"from": "start", "to": "shape"}]
    }))
}

/// A manual trigger feeding one `http.request`.
fn calling_definition() -> Result<Definition, serde_json::Error> {
    definition(json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "call", "type": "http.request", "name": "Call", "params": {"method": "GET", "url": "https://api.example.com"}}
        ],
        "connections": [{"from": "start", "to": "call"}]
    }))
}

/// A webhook answered straight away.
fn answering_definition() -> Result<Definition, serde_json::Error> {
    definition(json!({
        "nodes": [
            {"id": "hook", "type": "trigger.webhook", "name": "Incoming"},
            {"id": "answer", "type": "webhook.respond", "name": "Answer", "params": {"status": 201, "body": {"ok": true}}}
        ],
        "connections": [{"from": "hook", "to": "answer"}]
    }))
}

/// A webhook answered only when its body says `answer: true`.
fn answering_sometimes_definition() -> Result<Definition, serde_json::Error> {
    definition(json!({
        "nodes": [
            {"id": "hook", "type": "trigger.webhook", "name": "Incoming"},
            {"id": "check", "type": "flow.if", "name": "Answer?", "params": {"condition": "{{ trigger.body.answer }}"}},
            {"id": "answer", "type": "webhook.respond", "name": "Answer"}
        ],
        "connections": [
            {"from": "hook", "to": "check"},
            {"from": "check", "output": "true", "to": "answer"}
        ]
    }))
}

/// A minute's `flow.delay` between the trigger and `then`.
fn delaying_definition(then: &str) -> Result<Definition, serde_json::Error> {
    definition(json!({
        "nodes": [
            {"id": "start", "type": "trigger.webhook", "name": "Start"},
            {"id": "wait", "type": "flow.delay", "name": "Wait", "params": {"milliseconds": 60000}},
            {"id": "after", "type": then, "name": "After", "params": {"values": {"ok": true}}}
        ],
        "connections": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "after"}]
    }))
}

fn node_ids(steps: &[StepRecord]) -> Vec<&str> {
    steps.iter().map(|step| step.node_id.as_str()).collect()
}

/// Execution use cases over mocked ports, in one workspace with `production` (the
/// default) and `staging`. Each test sets the mocks up, then calls [`Fixture::service`];
/// a port called without an expectation fails the test.
struct Fixture {
    workspace: WorkspaceId,
    workflow: WorkflowId,
    production: EnvironmentRef,
    staging: EnvironmentRef,
    journal: Journal,
    observed: Arc<Observed>,
    /// Announcements each subscription hears.
    announcements: usize,
    workflows: MockWorkflowRepository,
    executions: MockExecutionRepository,
    effects: MockNodeEffects,
    environments: MockEnvironmentDirectory,
    variables: MockEnvironmentVariables,
    start_units: MockUnitOfWorkFactory,
    start_workflows: MockWorkflowRepository,
    queue: MockRunQueue,
    gate: MockUsageGate,
    audit: MockAuditLog,
}

impl Fixture {
    fn new() -> Self {
        Self {
            workspace: WorkspaceId::new(),
            workflow: WorkflowId::new(),
            production: environment("production"),
            staging: environment("staging"),
            journal: Journal::default(),
            observed: Arc::default(),
            announcements: 0,
            workflows: MockWorkflowRepository::new(),
            executions: MockExecutionRepository::new(),
            effects: MockNodeEffects::new(),
            environments: MockEnvironmentDirectory::new(),
            variables: MockEnvironmentVariables::new(),
            start_units: MockUnitOfWorkFactory::new(),
            start_workflows: MockWorkflowRepository::new(),
            queue: MockRunQueue::new(),
            gate: MockUsageGate::new(),
            audit: MockAuditLog::new(),
        }
    }

    fn member_with(&self, permissions: impl IntoIterator<Item = Permission>) -> Principal {
        Principal::new(Actor::User(UserId::new()), self.workspace, permissions)
    }

    fn runner(&self) -> Principal {
        self.member_with([Permission::WorkflowsRun, Permission::ExecutionsRead])
    }

    /// An API key that may run, bound to `staging` (keys hold their environment's id).
    fn staging_key(&self) -> Principal {
        Principal::new(
            Actor::ApiKey(ApiKeyId::new()),
            self.workspace,
            [Permission::WorkflowsRun, Permission::ExecutionsRead],
        )
        .bound_to(Some(self.staging.id.to_string()))
    }

    /// The directory knows `production` and `staging`, by name or id.
    fn knows_environments(&mut self) {
        let (workspace, known) = (
            self.workspace,
            [self.production.clone(), self.staging.clone()],
        );
        self.environments
            .expect_resolve()
            .returning(move |asked, reference| {
                let reference = reference.unwrap_or("production");
                Ok(known
                    .iter()
                    .find(|environment| {
                        asked == workspace
                            && (environment.name == reference
                                || environment.id.to_string() == reference)
                    })
                    .cloned())
            });
    }

    /// The workflow, as the start use case reads it: version 2 in production, 5 in
    /// staging.
    fn deployed(&mut self) {
        let at = OffsetDateTime::UNIX_EPOCH;
        let deployment = |environment: &EnvironmentRef, version| Deployment {
            environment: environment.clone(),
            is_default: environment.name == "production",
            version,
            activated_at: at,
        };
        let workflow = Workflow {
            id: self.workflow,
            workspace_id: self.workspace,
            name: "Onboarding".to_owned(),
            description: String::new(),
            deployments: vec![
                deployment(&self.production, 2),
                deployment(&self.staging, 5),
            ],
            latest_version: Some(5),
            error_workflow_id: None,
            archived_at: None,
            created_at: at,
            updated_at: at,
        };
        self.start_workflows
            .expect_find()
            .returning(move |_, _| Ok(Some(workflow.clone())));
    }

    fn quota_admits(&mut self) {
        self.gate
            .expect_admit_run()
            .returning(|_| Ok(Admission::Admitted));
    }

    /// Runs queued on their own (no audit entry).
    fn queued_alone(&mut self) -> Captured<QueuedRun> {
        let queued = Captured::default();
        let keep = queued.clone();
        self.queue.expect_queue().times(1).returning(move |run| {
            keep.keep(run);
            Ok(())
        });
        queued
    }

    /// No run may be queued, and the quota is not even asked.
    fn queues_nothing(&mut self) {
        self.gate.expect_admit_run().never();
        self.queue.expect_queue().never();
        self.queue.expect_queue_in().never();
    }

    /// An execution of the workflow in `staging`, at version 3, `status`.
    fn execution(&self, status: ExecutionStatus) -> Execution {
        Execution {
            id: ExecutionId::new(),
            workspace_id: self.workspace,
            workflow_id: self.workflow,
            version: 3,
            environment: self.staging.clone(),
            status,
            trigger_kind: "run".to_owned(),
            input: json!({"order": 42}),
            output: None,
            error: None,
            attempt: 1,
            max_attempts: 3,
            retry_of: None,
            parent_execution_id: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            started_at: None,
            finished_at: None,
            steps: Vec::new(),
        }
    }

    /// `execution` claimed by a worker to run `definition`, at `attempt` of `max`.
    fn claimed(&self, definition: Definition, attempt: i32, max: i32) -> ClaimedExecution {
        ClaimedExecution {
            execution: Execution {
                status: ExecutionStatus::Running,
                attempt,
                max_attempts: max,
                ..self.execution(ExecutionStatus::Running)
            },
            lease: LeaseToken::new(7),
            definition,
            completed: Vec::new(),
            defaults: RunDefaults::NONE,
        }
    }

    /// `find` reads `reads` in turn (the last one again after that), each read noted.
    fn reads(&mut self, reads: Vec<Execution>) {
        let left = Mutex::new(VecDeque::from(reads));
        let journal = self.journal.clone();
        self.executions.expect_find().returning(move |_, _| {
            journal.note("find");
            let mut left = left.lock().expect("reads lock");
            let read = if left.len() > 1 {
                left.pop_front()
            } else {
                left.front().cloned()
            };
            Ok(read)
        });
    }

    /// The staging variables load (empty).
    fn variables_load(&mut self) {
        let (workspace, staging) = (self.workspace, self.staging.id);
        self.variables
            .expect_load()
            .withf(move |asked, environment| *asked == workspace && *environment == staging)
            .returning(|_, _| Ok(RunEnvironment::default()));
    }

    /// Checkpoints succeed and are noted as `record <node ids>`.
    fn checkpoints_recorded(&mut self) {
        let journal = self.journal.clone();
        self.executions
            .expect_record_steps()
            .returning(move |_, _, steps| {
                journal.note(format!("record {}", node_ids(steps).join(",")));
                Ok(Fenced::Written)
            });
    }

    /// The run may only be finished: no requeue, no suspension.
    fn finished_only(&mut self) -> Captured<(Finished, Vec<StepRecord>)> {
        self.executions.expect_requeue().never();
        self.executions.expect_suspend().never();
        let finished = Captured::default();
        let keep = finished.clone();
        let journal = self.journal.clone();
        self.executions
            .expect_finish()
            .times(1)
            .returning(move |_, _, outcome, steps| {
                journal.note(format!("finish {}", outcome.status));
                keep.keep(&(outcome, steps.to_vec()));
                Ok(Fenced::Written)
            });
        finished
    }

    fn service(&mut self) -> ExecutionService {
        let starter = RunStarter::new(StartPorts {
            units: Arc::new(std::mem::take(&mut self.start_units)),
            workflows: Arc::new(std::mem::take(&mut self.start_workflows)),
            queue: Arc::new(std::mem::take(&mut self.queue)),
            gate: Arc::new(std::mem::take(&mut self.gate)),
            audit: Arc::new(std::mem::take(&mut self.audit)),
        });
        let clock = Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH));
        ExecutionService::new(ExecutionPorts {
            workflows: Arc::new(std::mem::take(&mut self.workflows)),
            executions: Arc::new(std::mem::take(&mut self.executions)),
            engine: Arc::new(Engine::new(
                Arc::new(std::mem::take(&mut self.effects)),
                clock,
            )),
            observer: self.observed.clone(),
            starter: Arc::new(starter),
            signals: Arc::new(FakeSignals {
                journal: self.journal.clone(),
                announcements: self.announcements,
            }),
            environments: Arc::new(std::mem::take(&mut self.environments)),
            variables: Arc::new(std::mem::take(&mut self.variables)),
        })
    }
}

#[tokio::test]
async fn a_caller_without_workflows_run_may_not_test_enqueue_retry_or_cancel() {
    let mut fixture = Fixture::new();
    let service = fixture.service();
    let reader = fixture.member_with([Permission::WorkflowsRead, Permission::ExecutionsRead]);
    let workflow = fixture.workflow;
    let refusals = [
        service
            .test(&reader, workflow, None, None, json!({}))
            .await
            .err(),
        service
            .enqueue(&reader, workflow, None, json!({}))
            .await
            .err(),
        service.retry(&reader, ExecutionId::new()).await.err(),
        service.cancel(&reader, ExecutionId::new()).await.err(),
    ];
    for refused in refusals {
        assert!(
            matches!(
                refused,
                Some(WorkflowError::Forbidden(Forbidden(
                    Permission::WorkflowsRun
                )))
            ),
            "{refused:?}"
        );
    }
    assert!(fixture.journal.entries().is_empty());
    assert!(fixture.observed.settled().is_empty());
}

#[tokio::test]
async fn a_caller_without_executions_read_may_not_read_executions() -> TestResult {
    let mut fixture = Fixture::new();
    let service = fixture.service();
    let runner = fixture.member_with([Permission::WorkflowsRun]);
    let refusals = [
        service.get(&runner, ExecutionId::new()).await.err(),
        service
            .list(
                &runner,
                &ExecutionFilter::default(),
                PageRequest::new(None, None)?,
            )
            .await
            .err(),
    ];
    for refused in refusals {
        assert!(
            matches!(
                refused,
                Some(WorkflowError::Forbidden(Forbidden(
                    Permission::ExecutionsRead
                )))
            ),
            "{refused:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn enqueue_queues_the_version_deployed_in_the_environment_it_names() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.knows_environments();
    fixture.deployed();
    fixture.quota_admits();
    let queued = fixture.queued_alone();
    let service = fixture.service();
    let started = service
        .enqueue(
            &fixture.runner(),
            fixture.workflow,
            Some("staging"),
            json!({"order": 7}),
        )
        .await?;
    let run = queued.only()?;
    assert_eq!(run.id, started);
    assert_eq!(run.workflow_id, fixture.workflow);
    assert_eq!(run.environment_id, fixture.staging.id);
    assert_eq!(run.version, 5, "the version deployed in staging");
    assert_eq!(run.trigger_kind, TriggerKind::Run);
    assert_eq!(run.input, json!({"order": 7}));
    assert_eq!(run.retry_of, None);
    Ok(())
}

#[tokio::test]
async fn an_api_key_bound_to_one_environment_cannot_run_in_another() {
    let mut fixture = Fixture::new();
    fixture.knows_environments();
    fixture.queues_nothing();
    let service = fixture.service();
    let refused = service
        .enqueue(
            &fixture.staging_key(),
            fixture.workflow,
            Some("production"),
            json!({}),
        )
        .await;
    let Err(WorkflowError::Invalid(errors)) = &refused else {
        panic!("expected a validation error, got {refused:?}");
    };
    assert_eq!(errors.errors().len(), 1);
    assert_eq!(errors.errors()[0].field, "environment");
    assert!(errors.errors()[0].message.contains("`staging`"), "{errors}");
}

#[tokio::test]
async fn an_api_key_bound_to_an_environment_runs_there_when_none_is_named() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.knows_environments();
    fixture.deployed();
    fixture.quota_admits();
    let queued = fixture.queued_alone();
    let service = fixture.service();
    service
        .enqueue(&fixture.staging_key(), fixture.workflow, None, json!({}))
        .await?;
    let run = queued.only()?;
    assert_eq!(run.environment_id, fixture.staging.id);
    assert_eq!(run.version, 5);
    Ok(())
}

#[tokio::test]
async fn a_retry_runs_the_previous_version_environment_and_input_again_linked_to_it() -> TestResult
{
    let mut fixture = Fixture::new();
    let previous = fixture.execution(ExecutionStatus::Failed);
    fixture.reads(vec![previous.clone()]);
    // The version is the previous run's, not the one deployed now.
    fixture.start_workflows.expect_find().never();
    fixture.quota_admits();
    let unit = RecordingUnitOfWork::default();
    let handed = unit.clone();
    fixture
        .start_units
        .expect_begin()
        .times(1)
        .returning(move || Ok(Box::new(handed.clone())));
    let queued = Captured::default();
    let keep = queued.clone();
    fixture
        .queue
        .expect_queue_in()
        .times(1)
        .returning(move |_, run| {
            keep.keep(run);
            Ok(())
        });
    fixture
        .audit
        .expect_record_in()
        .withf(|_, entry| entry.action == "execution.retried")
        .times(1)
        .returning(|_, _| Ok(()));
    let service = fixture.service();
    let started = service.retry(&fixture.runner(), previous.id).await?;
    let run: QueuedRun = queued.only()?;
    assert_eq!(run.id, started);
    assert_ne!(run.id, previous.id);
    assert_eq!(run.workflow_id, previous.workflow_id);
    assert_eq!(run.version, 3);
    assert_eq!(run.environment_id, fixture.staging.id);
    assert_eq!(run.input, json!({"order": 42}));
    assert_eq!(run.retry_of, Some(previous.id));
    assert_eq!(run.trigger_kind, TriggerKind::Retry);
    assert!(unit.committed.load(Ordering::SeqCst));
    Ok(())
}

#[tokio::test]
async fn cancelling_a_queued_run_reports_it_cancelled_and_tells_its_waiters() -> TestResult {
    let mut fixture = Fixture::new();
    let queued = fixture.execution(ExecutionStatus::Queued);
    let id = queued.id;
    let cancelled = Execution {
        status: ExecutionStatus::Cancelled,
        ..queued.clone()
    };
    fixture.reads(vec![queued, cancelled]);
    let workspace = fixture.workspace;
    fixture
        .executions
        .expect_cancel()
        .withf(move |asked, cancelled| *asked == workspace && *cancelled == id)
        .times(1)
        .returning(|_, _| Ok(true));
    let service = fixture.service();
    let after = service.cancel(&fixture.runner(), id).await?;
    assert_eq!(after.status, ExecutionStatus::Cancelled);
    assert_eq!(fixture.observed.settled(), [ExecutionStatus::Cancelled]);
    assert_eq!(
        fixture.journal.entries(),
        [
            "find".to_owned(),
            format!("announce {id}"),
            "find".to_owned()
        ]
    );
    Ok(())
}

#[tokio::test]
async fn cancelling_a_finished_run_changes_nothing() -> TestResult {
    for status in [
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::Cancelled,
    ] {
        let mut fixture = Fixture::new();
        let finished = fixture.execution(status);
        fixture.reads(vec![finished.clone()]);
        fixture.executions.expect_cancel().never();
        let service = fixture.service();
        let after = service.cancel(&fixture.runner(), finished.id).await?;
        assert_eq!(after, finished);
        assert!(fixture.observed.settled().is_empty(), "{status}");
        assert_eq!(fixture.journal.entries(), ["find", "find"], "{status}");
    }
    Ok(())
}

#[tokio::test]
async fn cancelling_a_running_run_only_asks_its_worker_to_stop() -> TestResult {
    let mut fixture = Fixture::new();
    let running = fixture.execution(ExecutionStatus::Running);
    fixture.reads(vec![running.clone()]);
    fixture
        .executions
        .expect_cancel()
        .times(1)
        .returning(|_, _| Ok(false));
    let service = fixture.service();
    let after = service.cancel(&fixture.runner(), running.id).await?;
    assert_eq!(after.status, ExecutionStatus::Running);
    assert!(fixture.observed.settled().is_empty());
    assert!(
        !fixture
            .journal
            .entries()
            .iter()
            .any(|entry| entry.starts_with("announce")),
        "the worker announces when it stops"
    );
    Ok(())
}

#[tokio::test]
async fn a_processed_run_that_succeeds_is_finished_with_its_output_and_steps() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.variables_load();
    let finished = fixture.finished_only();
    let claimed = fixture.claimed(manual_definition()?, 1, 3);
    let service = fixture.service();
    let status = service.process(claimed, held()).await?;
    assert_eq!(status, Some(ExecutionStatus::Succeeded));
    let (outcome, steps) = finished.only()?;
    assert_eq!(
        outcome,
        Finished {
            status: ExecutionStatus::Succeeded,
            output: Some(json!({"done": true})),
            error: None,
            steps_kept: StepsKept::All,
            notify_failure: false,
        }
    );
    assert_eq!(
        node_ids(&steps),
        ["start", "shape"],
        "stored with the outcome"
    );
    assert_eq!(fixture.observed.settled(), [ExecutionStatus::Succeeded]);
    assert_eq!(
        fixture.observed.steps(),
        [
            ("trigger.manual".to_owned(), false),
            ("data.set".to_owned(), false)
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_retryable_failure_is_requeued_with_exponential_backoff_while_attempts_remain()
-> TestResult {
    for (attempt, delay) in [(1, 2), (2, 4), (3, 8)] {
        let mut fixture = Fixture::new();
        fixture.variables_load();
        fixture.checkpoints_recorded();
        fixture
            .effects
            .expect_http_request()
            .times(1)
            .returning(|_, _, _| Err(NodeFailure::transient("connection reset")));
        fixture.executions.expect_finish().never();
        let requeued = Captured::default();
        let keep = requeued.clone();
        fixture.executions.expect_requeue().times(1).returning(
            move |_, _, delay: i64, error: &str, steps: &[StepRecord]| {
                keep.keep(&(delay, error.to_owned(), steps.to_vec()));
                Ok(Fenced::Written)
            },
        );
        let claimed = fixture.claimed(calling_definition()?, attempt, 5);
        let service = fixture.service();
        let status = service.process(claimed, held()).await?;
        assert_eq!(status, Some(ExecutionStatus::Queued));
        let (waited, error, steps) = requeued.only()?;
        assert_eq!(waited, delay, "attempt {attempt}");
        assert!(error.contains("connection reset"), "{error}");
        assert_eq!(node_ids(&steps), ["call"], "the trigger was checkpointed");
        assert_eq!(fixture.observed.settled(), [ExecutionStatus::Queued]);
        assert_eq!(
            fixture.observed.steps().last(),
            Some(&("http.request".to_owned(), true))
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_failure_ends_the_run_failed_on_its_last_attempt_or_when_retrying_cannot_help()
-> TestResult {
    for (failure, attempt) in [
        (NodeFailure::transient("connection reset"), 3),
        (NodeFailure::permanent("401 unauthorized"), 1),
    ] {
        let mut fixture = Fixture::new();
        fixture.variables_load();
        fixture.checkpoints_recorded();
        let message = failure.message.clone();
        fixture
            .effects
            .expect_http_request()
            .times(1)
            .returning(move |_, _, _| Err(failure.clone()));
        let finished = fixture.finished_only();
        let claimed = fixture.claimed(calling_definition()?, attempt, 3);
        let service = fixture.service();
        let status = service.process(claimed, held()).await?;
        assert_eq!(status, Some(ExecutionStatus::Failed));
        let (outcome, _) = finished.only()?;
        assert_eq!(outcome.status, ExecutionStatus::Failed);
        assert_eq!(outcome.output, None);
        assert!(
            outcome
                .error
                .as_deref()
                .is_some_and(|e| e.contains(&message)),
            "{outcome:?}"
        );
        assert_eq!(fixture.observed.settled(), [ExecutionStatus::Failed]);
    }
    Ok(())
}

#[tokio::test]
async fn a_run_whose_variables_cannot_be_loaded_is_requeued_without_running_a_node() -> TestResult {
    let mut fixture = Fixture::new();
    fixture
        .variables
        .expect_load()
        .times(1)
        .returning(|_, _| Err(StorageError::new(std::io::Error::other("vault sealed")).into()));
    fixture.executions.expect_finish().never();
    let requeued = Captured::default();
    let keep = requeued.clone();
    fixture.executions.expect_requeue().times(1).returning(
        move |_, _, delay: i64, error: &str, steps: &[StepRecord]| {
            keep.keep(&(delay, error.to_owned(), steps.len()));
            Ok(Fenced::Written)
        },
    );
    let claimed = fixture.claimed(calling_definition()?, 1, 3);
    let service = fixture.service();
    assert_eq!(
        service.process(claimed, held()).await?,
        Some(ExecutionStatus::Queued)
    );
    let (delay, error, steps) = requeued.only()?;
    assert_eq!(delay, 2);
    assert!(
        error.contains("could not load the environment's variables"),
        "{error}"
    );
    assert_eq!(steps, 0);
    assert!(fixture.observed.steps().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_long_delay_suspends_the_run_until_the_wait_ends_without_telling_waiters() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.variables_load();
    fixture.executions.expect_finish().never();
    fixture.executions.expect_requeue().never();
    let suspended = Captured::default();
    let keep = suspended.clone();
    fixture.executions.expect_suspend().times(1).returning(
        move |_, _, until: OffsetDateTime, steps: &[StepRecord]| {
            keep.keep(&(until, steps.to_vec()));
            Ok(Fenced::Written)
        },
    );
    // The definition could answer a sender, but has not ended yet.
    let claimed = fixture.claimed(delaying_definition("webhook.respond")?, 1, 3);
    let service = fixture.service();
    assert_eq!(
        service.process(claimed, held()).await?,
        Some(ExecutionStatus::Queued)
    );
    let (until, steps) = suspended.only()?;
    assert_eq!(
        until,
        OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(1)
    );
    assert_eq!(node_ids(&steps), ["start", "wait"]);
    assert_eq!(fixture.observed.settled(), [ExecutionStatus::Queued]);
    assert!(fixture.journal.entries().is_empty(), "nobody is told");
    Ok(())
}

#[tokio::test]
async fn only_a_run_that_could_answer_its_sender_is_announced_when_it_ends() -> TestResult {
    for (definition, announced) in [
        (answering_sometimes_definition()?, true),
        (manual_definition()?, false),
    ] {
        let mut fixture = Fixture::new();
        fixture.variables_load();
        let finished = fixture.finished_only();
        let mut claimed = fixture.claimed(definition, 1, 3);
        claimed.execution.input = json!({"answer": false});
        let id = claimed.execution.id;
        let service = fixture.service();
        assert_eq!(
            service.process(claimed, held()).await?,
            Some(ExecutionStatus::Succeeded)
        );
        finished.only()?;
        let expected = if announced {
            vec!["finish succeeded".to_owned(), format!("announce {id}")]
        } else {
            vec!["finish succeeded".to_owned()]
        };
        assert_eq!(fixture.journal.entries(), expected);
    }
    Ok(())
}

#[tokio::test]
async fn a_checkpoint_holding_the_answer_is_announced_before_the_run_ends() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.variables_load();
    fixture.checkpoints_recorded();
    fixture.finished_only();
    let claimed = fixture.claimed(answering_definition()?, 1, 3);
    let id = claimed.execution.id;
    let service = fixture.service();
    assert_eq!(
        service.process(claimed, held()).await?,
        Some(ExecutionStatus::Succeeded)
    );
    assert_eq!(
        fixture.journal.entries(),
        [
            "record hook".to_owned(),
            "record answer".to_owned(),
            format!("announce {id}"),
            "finish succeeded".to_owned(),
            format!("announce {id}"),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_waiter_subscribes_before_it_reads_and_is_given_the_answer() -> TestResult {
    let mut fixture = Fixture::new();
    let mut answered = fixture.execution(ExecutionStatus::Running);
    let answer = json!({"status": 201, "headers": {}, "body": {"ok": true}});
    answered.steps = vec![StepRecord {
        node_id: "answer".to_owned(),
        node_type: "webhook.respond".to_owned(),
        input: json!({}),
        output: Some(answer.clone()),
        error: None,
        route: None,
        started_at: OffsetDateTime::UNIX_EPOCH,
        finished_at: OffsetDateTime::UNIX_EPOCH,
        effect_key: None,
        logs: Vec::new(),
    }];
    let id = answered.id;
    fixture.reads(vec![answered]);
    let service = fixture.service();
    let response = service
        .await_response(fixture.workspace, id, Duration::from_secs(5))
        .await?;
    assert_eq!(response, RunResponse::Answered(answer));
    assert_eq!(
        fixture.journal.entries(),
        [format!("subscribe {id}"), "find".to_owned()]
    );
    Ok(())
}

#[tokio::test]
async fn a_waiter_is_told_when_the_run_ends_without_answering() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.announcements = 1;
    let running = fixture.execution(ExecutionStatus::Running);
    let id = running.id;
    let failed = Execution {
        status: ExecutionStatus::Failed,
        ..running.clone()
    };
    fixture.reads(vec![running, failed]);
    let service = fixture.service();
    let response = service
        .await_response(fixture.workspace, id, Duration::from_secs(5))
        .await?;
    assert_eq!(response, RunResponse::EndedWithout(ExecutionStatus::Failed));
    assert_eq!(
        fixture.journal.entries(),
        [
            format!("subscribe {id}"),
            "find".to_owned(),
            "find".to_owned()
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_waiter_without_news_times_out_while_the_run_goes_on() -> TestResult {
    let mut fixture = Fixture::new();
    let running = fixture.execution(ExecutionStatus::Running);
    let id = running.id;
    fixture.reads(vec![running]);
    let service = fixture.service();
    let response = service
        .await_response(fixture.workspace, id, Duration::from_secs(5))
        .await?;
    assert_eq!(response, RunResponse::TimedOut);
    assert_eq!(
        fixture.journal.entries(),
        [
            format!("subscribe {id}"),
            "find".to_owned(),
            "find".to_owned()
        ],
        "read once more when the time is up"
    );
    Ok(())
}

#[tokio::test]
async fn a_test_run_runs_inline_in_its_environment_and_waits_out_long_delays_in_place() -> TestResult
{
    let mut fixture = Fixture::new();
    fixture.knows_environments();
    let (workspace, workflow, staging) = (fixture.workspace, fixture.workflow, fixture.staging.id);
    let latest = Workflow {
        id: workflow,
        workspace_id: workspace,
        name: "Onboarding".to_owned(),
        description: String::new(),
        deployments: Vec::new(),
        latest_version: Some(4),
        error_workflow_id: None,
        archived_at: None,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    };
    fixture
        .workflows
        .expect_find()
        .returning(move |_, _| Ok(Some(latest.clone())));
    let version = Version {
        workflow_id: workflow,
        version: 4,
        definition: delaying_definition("data.set")?,
        checksum: String::new(),
        created_at: OffsetDateTime::UNIX_EPOCH,
    };
    fixture
        .workflows
        .expect_version()
        .withf(|_, _, number| *number == 4)
        .returning(move |_, _, _| Ok(Some(version.clone())));
    let created = Captured::default();
    let keep = created.clone();
    fixture
        .executions
        .expect_create_inline()
        .times(1)
        .returning(move |run| {
            keep.keep(&(run.id, run.version, run.environment_id, run.input.clone()));
            Ok(())
        });
    fixture.variables_load();
    fixture
        .effects
        .expect_delay()
        .withf(|milliseconds| *milliseconds == 60_000)
        .times(1)
        .return_const(());
    let finished = fixture.finished_only();
    let stored = fixture.execution(ExecutionStatus::Succeeded);
    fixture.reads(vec![stored.clone()]);
    let service = fixture.service();
    let execution = service
        .test(
            &fixture.runner(),
            workflow,
            None,
            Some("staging"),
            json!({"n": 1}),
        )
        .await?;
    assert_eq!(execution, stored);
    let (_, version, environment, input) = created.only()?;
    assert_eq!(version, 4, "the latest version");
    assert_eq!(environment, staging);
    assert_eq!(input, json!({"n": 1}));
    let (outcome, steps) = finished.only()?;
    assert_eq!(outcome.status, ExecutionStatus::Succeeded);
    assert_eq!(node_ids(&steps), ["start", "wait", "after"]);
    Ok(())
}

#[tokio::test]
async fn a_caller_who_may_not_read_executions_may_not_test_a_workflow() {
    let mut fixture = Fixture::new();
    let service = fixture.service();
    let runner_only = fixture.member_with([Permission::WorkflowsRun]);
    let refused = service
        .test(&runner_only, fixture.workflow, None, None, json!({}))
        .await;
    assert!(
        matches!(
            refused,
            Err(WorkflowError::Forbidden(Forbidden(
                Permission::ExecutionsRead
            )))
        ),
        "nothing runs for a caller who cannot see the result: {refused:?}"
    );
    assert!(fixture.journal.entries().is_empty());
}

/// Run news that cannot be sent.
struct Unreachable;

#[async_trait]
impl RunSignals for Unreachable {
    async fn announce(&self, _execution: ExecutionId) -> Result<(), StorageError> {
        Err(StorageError::new(std::io::Error::other("down")))
    }

    async fn subscribe(
        &self,
        _execution: ExecutionId,
    ) -> Result<Box<dyn Subscription>, StorageError> {
        Err(StorageError::new(std::io::Error::other("down")))
    }
}

#[tokio::test]
async fn a_failed_announcement_does_not_fail_the_checkpoint_it_follows() -> TestResult {
    let mut executions = MockExecutionRepository::new();
    executions
        .expect_record_steps()
        .times(1)
        .returning(|_, _, _| Ok(Fenced::Written));
    let sink = RepositorySink {
        executions: Arc::new(executions),
        signals: Arc::new(Unreachable),
        execution_id: ExecutionId::new(),
        lease: LeaseToken::new(1),
        clock: held(),
    };
    let answer = StepRecord {
        node_id: "answer".to_owned(),
        node_type: "webhook.respond".to_owned(),
        input: json!({}),
        output: Some(json!({"status": 200})),
        error: None,
        route: None,
        started_at: OffsetDateTime::UNIX_EPOCH,
        finished_at: OffsetDateTime::UNIX_EPOCH,
        effect_key: None,
        logs: Vec::new(),
    };
    crate::engine::StepSink::record(&sink, &[answer]).await?;
    Ok(())
}
