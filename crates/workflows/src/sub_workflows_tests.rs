//! `flow.run_workflow` through the real engine over a mocked [`ChildRuns`], and
//! [`SubWorkflows`]' own decisions (depth, cycles, quota, environment, the same child on
//! every attempt) over mocked ports and the real start use case.

use std::sync::Arc;

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::plan_guard::MockUsageGate;
use fluxolab_kernel::testing::Captured;
use fluxolab_kernel::unit_of_work::MockUnitOfWorkFactory;
use fluxolab_kernel::{Admission, EnvironmentId, ManualClock, RunEnvironment};

use super::*;
use crate::Definition;
use crate::engine::{Engine, MockNodeEffects, NoSink, RunOutcome, RunResult};
use crate::execution::{Execution, MockExecutionRepository, TriggerKind};
use crate::model::{Deployment, Workflow};
use crate::ports::MockWorkflowRepository;
use crate::start::{MockRunQueue, StartPorts};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const AT: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

/// A manual trigger, then a `flow.run_workflow` step `call` with `params`.
fn calling(params: &Value) -> Result<Definition, serde_json::Error> {
    serde_json::from_value(json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "call", "type": "flow.run_workflow", "name": "Call", "params": params}
        ],
        "connections": [{"from": "start", "to": "call"}]
    }))
}

fn production() -> EnvironmentRef {
    EnvironmentRef {
        id: EnvironmentId::new(),
        name: "production".to_owned(),
    }
}

async fn run(
    children: MockChildRuns,
    effects: MockNodeEffects,
    definition: &Definition,
    context: EffectContext,
) -> RunResult {
    Engine::new(Arc::new(effects), Arc::new(ManualClock::new(AT)))
        .with_children(Arc::new(children))
        .run(
            definition,
            json!({"order": 7}),
            &RunEnvironment::default(),
            context,
            &[],
            &NoSink,
        )
        .await
}

fn queued() -> EffectContext {
    EffectContext::of_run(WorkspaceId::new(), ExecutionId::new(), RunMode::Queued)
}

/// The child id the step `call` of `context`'s run asks for.
fn child_of(context: EffectContext) -> Option<ExecutionId> {
    context
        .for_step("call")
        .idempotency_key
        .map(ExecutionId::from_uuid)
}

#[tokio::test]
async fn a_waiting_step_suspends_its_queued_run_without_recording_the_step() -> TestResult {
    let context = queued();
    let target = WorkflowId::new();
    let expected = child_of(context).ok_or("a key")?;
    let asked = Captured::<(ExecutionId, ChildRequest)>::default();
    let keep = asked.clone();
    let mut children = MockChildRuns::new();
    children
        .expect_ensure()
        .times(1)
        .returning(move |_, parent, request| {
            keep.keep(&(parent, request));
            Ok(ChildState::Pending)
        });
    let definition = calling(&json!({
        "workflow_id": target.to_string(),
        "payload": {"order": "{{ trigger.body.order }}"}
    }))?;

    let result = run(children, MockNodeEffects::new(), &definition, context).await;

    assert_eq!(
        result.outcome,
        RunOutcome::AwaitingChild {
            child: expected,
            until: AT + WAIT_RECHECK
        }
    );
    let ran: Vec<&str> = result.steps.iter().map(|s| s.node_id.as_str()).collect();
    assert_eq!(
        ran,
        ["start"],
        "the waiting step is visited again on resume"
    );
    let (parent, request) = asked.only()?;
    assert_eq!(parent, context.execution_id);
    assert_eq!(
        request,
        ChildRequest {
            id: expected,
            workflow: target,
            input: json!({"order": 7}),
        }
    );
    Ok(())
}

#[tokio::test]
async fn every_attempt_asks_for_the_same_child_and_continues_on_its_output() -> TestResult {
    let context = queued();
    let ids = Captured::<ExecutionId>::default();
    let keep = ids.clone();
    let mut children = MockChildRuns::new();
    children
        .expect_ensure()
        .times(2)
        .returning(move |_, _, request| {
            keep.keep(&request.id);
            Ok(ChildState::Succeeded(json!({"total": 42})))
        });
    let children = Arc::new(children);
    let definition = calling(&json!({"workflow_id": WorkflowId::new().to_string()}))?;
    let engine = Engine::new(
        Arc::new(MockNodeEffects::new()),
        Arc::new(ManualClock::new(AT)),
    )
    .with_children(children);
    for _ in 0..2 {
        let result = engine
            .run(
                &definition,
                json!({}),
                &RunEnvironment::default(),
                context,
                &[],
                &NoSink,
            )
            .await;
        assert_eq!(result.outcome, RunOutcome::Succeeded(json!({"total": 42})));
        let step = result.steps.last().ok_or("the call step")?;
        assert_eq!(step.output, Some(json!({"total": 42})));
        assert_eq!(
            step.effect_key,
            child_of(context).map(|id| id.to_string()),
            "the step records the child's id as its key"
        );
    }
    let ids = ids.all();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    Ok(())
}

#[tokio::test]
async fn a_failed_or_cancelled_child_fails_the_step_for_good_naming_it() -> TestResult {
    for (state, says) in [
        (
            ChildState::Failed("node `x`: boom".into()),
            "failed: node `x`: boom",
        ),
        (ChildState::Cancelled, "was cancelled"),
    ] {
        let context = queued();
        let child = child_of(context).ok_or("a key")?;
        let mut children = MockChildRuns::new();
        children
            .expect_ensure()
            .returning(move |_, _, _| Ok(state.clone()));
        let definition = calling(&json!({"workflow_id": WorkflowId::new().to_string()}))?;
        let result = run(children, MockNodeEffects::new(), &definition, context).await;
        let RunOutcome::Failed {
            node_id,
            error,
            retryable,
        } = result.outcome
        else {
            return Err(format!("expected a failure, got {:?}", result.outcome).into());
        };
        assert_eq!(node_id, "call");
        assert!(!retryable);
        assert!(
            error.contains(&format!("the sub-workflow run {child} {says}")),
            "{error}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn without_wait_the_step_outputs_the_child_id_at_once() -> TestResult {
    let context = queued();
    let mut children = MockChildRuns::new();
    children
        .expect_ensure()
        .returning(|_, _, _| Ok(ChildState::Pending));
    children.expect_state().never();
    let definition = calling(&json!({
        "workflow_id": "{{ trigger.body.target }}",
        "wait": "{{ trigger.body.wait }}"
    }))?;
    let target = WorkflowId::new();
    let result = Engine::new(
        Arc::new(MockNodeEffects::new()),
        Arc::new(ManualClock::new(AT)),
    )
    .with_children(Arc::new(children))
    .run(
        &definition,
        json!({"target": target.to_string(), "wait": false}),
        &RunEnvironment::default(),
        context,
        &[],
        &NoSink,
    )
    .await;
    let child = child_of(context).ok_or("a key")?;
    assert_eq!(
        result.outcome,
        RunOutcome::Succeeded(json!({"execution_id": child.to_string()}))
    );
    Ok(())
}

#[tokio::test]
async fn an_inline_run_polls_its_child_and_gives_up_after_its_bound() -> TestResult {
    let context = EffectContext::of_run(WorkspaceId::new(), ExecutionId::new(), RunMode::Inline);
    let definition = calling(&json!({"workflow_id": WorkflowId::new().to_string()}))?;

    // Done on the third look.
    let mut children = MockChildRuns::new();
    children
        .expect_ensure()
        .returning(|_, _, _| Ok(ChildState::Pending));
    let mut looks = 0;
    children.expect_state().times(3).returning(move |_, _| {
        looks += 1;
        Ok(if looks < 3 {
            ChildState::Pending
        } else {
            ChildState::Succeeded(json!("done"))
        })
    });
    let mut effects = MockNodeEffects::new();
    effects
        .expect_delay()
        .withf(|ms| *ms == INLINE_POLL_MS)
        .times(3)
        .returning(|_| ());
    let result = run(children, effects, &definition, context).await;
    assert_eq!(result.outcome, RunOutcome::Succeeded(json!("done")));

    // Never done: bounded.
    let mut children = MockChildRuns::new();
    children
        .expect_ensure()
        .returning(|_, _, _| Ok(ChildState::Pending));
    children
        .expect_state()
        .returning(|_, _| Ok(ChildState::Pending));
    let mut effects = MockNodeEffects::new();
    effects
        .expect_delay()
        .times(usize::try_from(INLINE_WAIT_MS / INLINE_POLL_MS)?)
        .returning(|_| ());
    let result = run(children, effects, &definition, context).await;
    let RunOutcome::Failed { error, .. } = result.outcome else {
        return Err(format!("expected a failure, got {:?}", result.outcome).into());
    };
    assert!(
        error.contains("did not finish within 25 seconds"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn a_step_with_a_bad_id_or_no_child_runs_fails_for_good() -> TestResult {
    let mut children = MockChildRuns::new();
    children.expect_ensure().never();
    let definition = calling(&json!({"workflow_id": "{{ trigger.body.order }}"}))?;
    let result = run(children, MockNodeEffects::new(), &definition, queued()).await;
    assert!(
        matches!(&result.outcome, RunOutcome::Failed { error, retryable: false, .. }
            if error.contains("params.workflow_id must be a workflow id (a UUID), not 7")),
        "{:?}",
        result.outcome
    );

    let definition = calling(&json!({"workflow_id": WorkflowId::new().to_string()}))?;
    let result = Engine::new(
        Arc::new(MockNodeEffects::new()),
        Arc::new(ManualClock::new(AT)),
    )
    .run(
        &definition,
        json!({}),
        &RunEnvironment::default(),
        queued(),
        &[],
        &NoSink,
    )
    .await;
    assert!(
        matches!(&result.outcome, RunOutcome::Failed { error, retryable: false, .. }
            if error.contains("sub-workflows cannot run here")),
        "{:?}",
        result.outcome
    );
    Ok(())
}

/// [`SubWorkflows`] over mocked ports: the parent `parent` runs workflow `own` in
/// production; the target workflow is deployed there at version 3.
struct Fixture {
    workspace: WorkspaceId,
    parent: ExecutionId,
    own: WorkflowId,
    target: WorkflowId,
    environment: EnvironmentRef,
    executions: MockExecutionRepository,
    lineage: MockExecutionLineage,
    workflows: MockWorkflowRepository,
    queue: MockRunQueue,
    gate: MockUsageGate,
}

impl Fixture {
    fn new() -> Self {
        let mut executions = MockExecutionRepository::new();
        executions.expect_find().returning(|_, _| Ok(None));
        Self {
            workspace: WorkspaceId::new(),
            parent: ExecutionId::new(),
            own: WorkflowId::new(),
            target: WorkflowId::new(),
            environment: production(),
            executions,
            lineage: MockExecutionLineage::new(),
            workflows: MockWorkflowRepository::new(),
            queue: MockRunQueue::new(),
            gate: MockUsageGate::new(),
        }
    }

    fn ancestor(&self, workflow: WorkflowId) -> Ancestor {
        Ancestor {
            execution: ExecutionId::new(),
            workspace: self.workspace,
            workflow,
            environment: self.environment.clone(),
            trigger_kind: "sub_workflow".to_owned(),
        }
    }

    /// The parent's chain: the parent (running `own`), then runs of `above`.
    fn chain(&mut self, above: Vec<WorkflowId>) {
        let mut chain = vec![Ancestor {
            execution: self.parent,
            ..self.ancestor(self.own)
        }];
        chain.extend(above.into_iter().map(|workflow| self.ancestor(workflow)));
        self.lineage
            .expect_lineage()
            .returning(move |_, _| Ok(chain.clone()));
    }

    fn target_deployed(&mut self, environment: &EnvironmentRef) {
        let workflow = Workflow {
            id: self.target,
            workspace_id: self.workspace,
            name: "Child".into(),
            description: String::new(),
            deployments: vec![Deployment {
                environment: environment.clone(),
                is_default: true,
                version: 3,
                activated_at: AT,
            }],
            latest_version: Some(3),
            error_workflow_id: None,
            archived_at: None,
            created_at: AT,
            updated_at: AT,
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

    fn request(&self) -> ChildRequest {
        ChildRequest {
            id: ExecutionId::new(),
            workflow: self.target,
            input: json!({"n": 1}),
        }
    }

    fn sub_workflows(self) -> SubWorkflows {
        let starter = RunStarter::new(StartPorts {
            units: Arc::new(MockUnitOfWorkFactory::new()),
            workflows: Arc::new(self.workflows),
            queue: Arc::new(self.queue),
            gate: Arc::new(self.gate),
            audit: Arc::new(MockAuditLog::new()),
        });
        SubWorkflows::new(
            Arc::new(starter),
            Arc::new(self.executions),
            Arc::new(self.lineage),
        )
    }
}

#[tokio::test]
async fn a_child_starts_in_its_parents_environment_with_the_parent_recorded() -> TestResult {
    let mut fixture = Fixture::new();
    let staging = EnvironmentRef {
        id: EnvironmentId::new(),
        name: "staging".into(),
    };
    fixture.environment = staging.clone();
    fixture.chain(vec![]);
    fixture.target_deployed(&staging);
    fixture.quota(Admission::Admitted);
    let queued = Captured::<QueuedRun>::default();
    let keep = queued.clone();
    fixture.queue.expect_queue().times(1).returning(move |run| {
        keep.keep(run);
        Ok(())
    });
    let (workspace, parent, target) = (fixture.workspace, fixture.parent, fixture.target);
    let request = fixture.request();
    let id = request.id;

    let state = fixture
        .sub_workflows()
        .ensure(workspace, parent, request)
        .await
        .map_err(|failure| failure.message)?;

    assert_eq!(state, ChildState::Pending);
    let run = queued.only()?;
    assert_eq!(run.id, id);
    assert_eq!(run.parent, Some(parent));
    assert_eq!(run.workflow_id, target);
    assert_eq!(run.environment_id, staging.id);
    assert_eq!(run.version, 3);
    assert_eq!(run.trigger_kind, TriggerKind::SubWorkflow);
    assert_eq!(run.input, json!({"n": 1}));
    assert_eq!(run.retry_of, None);
    Ok(())
}

#[tokio::test]
async fn a_child_already_started_is_read_not_started_again() -> TestResult {
    let mut fixture = Fixture::new();
    let mut executions = MockExecutionRepository::new();
    let (workspace, target) = (fixture.workspace, fixture.target);
    let environment = fixture.environment.clone();
    executions.expect_find().returning(move |_, id| {
        Ok(Some(Execution {
            id,
            workspace_id: workspace,
            workflow_id: target,
            version: 3,
            environment: environment.clone(),
            status: ExecutionStatus::Succeeded,
            trigger_kind: "sub_workflow".into(),
            input: json!({}),
            output: Some(json!({"ok": true})),
            error: None,
            attempt: 1,
            max_attempts: 3,
            retry_of: None,
            parent_execution_id: None,
            created_at: AT,
            started_at: None,
            finished_at: None,
            steps: Vec::new(),
        }))
    });
    fixture.executions = executions;
    fixture.lineage.expect_lineage().never();
    fixture.queue.expect_queue().never();
    fixture.gate.expect_admit_run().never();
    let (parent, request) = (fixture.parent, fixture.request());

    let state = fixture
        .sub_workflows()
        .ensure(workspace, parent, request)
        .await
        .map_err(|failure| failure.message)?;
    assert_eq!(state, ChildState::Succeeded(json!({"ok": true})));
    Ok(())
}

/// `ensure` refused with a permanent failure that says `says`; nothing queued.
async fn refused(mut fixture: Fixture, says: &str) -> TestResult {
    fixture.queue.expect_queue().never();
    let (workspace, parent, request) = (fixture.workspace, fixture.parent, fixture.request());
    let refusal = fixture
        .sub_workflows()
        .ensure(workspace, parent, request)
        .await;
    match refusal {
        Err(failure) if !failure.retryable && failure.message.contains(says) => Ok(()),
        other => Err(format!("expected a refusal saying `{says}`, got {other:?}").into()),
    }
}

#[tokio::test]
async fn a_chain_already_at_the_depth_limit_starts_no_child() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.chain((1..MAX_DEPTH).map(|_| WorkflowId::new()).collect());
    fixture.gate.expect_admit_run().never();
    refused(
        fixture,
        "sub-workflows nest at most 8 runs deep; this run is already at depth 8",
    )
    .await?;

    // One less is fine.
    let mut fixture = Fixture::new();
    fixture.chain((2..MAX_DEPTH).map(|_| WorkflowId::new()).collect());
    let environment = fixture.environment.clone();
    fixture.target_deployed(&environment);
    fixture.quota(Admission::Admitted);
    fixture.queue.expect_queue().times(1).returning(|_| Ok(()));
    let (workspace, parent, request) = (fixture.workspace, fixture.parent, fixture.request());
    fixture
        .sub_workflows()
        .ensure(workspace, parent, request)
        .await
        .map_err(|failure| failure.message)?;
    Ok(())
}

#[tokio::test]
async fn a_workflow_already_in_the_chain_is_a_cycle() -> TestResult {
    // Through another workflow…
    let mut fixture = Fixture::new();
    let target = fixture.target;
    fixture.chain(vec![WorkflowId::new(), target]);
    refused(
        fixture,
        &format!("workflow {target} is already running in this chain"),
    )
    .await?;
    // …or itself.
    let mut fixture = Fixture::new();
    fixture.target = fixture.own;
    fixture.chain(vec![]);
    let own = fixture.own;
    refused(
        fixture,
        &format!("workflow {own} is already running in this chain"),
    )
    .await
}

#[tokio::test]
async fn the_quota_and_the_targets_environment_are_checked_before_a_child_starts() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.chain(vec![]);
    let environment = fixture.environment.clone();
    fixture.target_deployed(&environment);
    fixture.quota(Admission::QuotaExceeded {
        retry_after_seconds: 60,
    });
    refused(
        fixture,
        "the workspace's executions for this period are used up: the sub-workflow was not started",
    )
    .await?;

    let mut fixture = Fixture::new();
    fixture.chain(vec![]);
    fixture.target_deployed(&EnvironmentRef {
        id: EnvironmentId::new(),
        name: "staging".into(),
    });
    fixture.gate.expect_admit_run().never();
    let target = fixture.target;
    refused(
        fixture,
        &format!("workflow {target} is not active in `production`"),
    )
    .await?;

    let mut fixture = Fixture::new();
    fixture.chain(vec![]);
    fixture.workflows.expect_find().returning(|_, _| Ok(None));
    let target = fixture.target;
    refused(
        fixture,
        &format!("workflow {target} does not exist in this workspace"),
    )
    .await
}
