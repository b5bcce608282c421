//! How a processed run settles around sub-workflows and error workflows: a step waiting
//! for its child puts the run back in the queue (not finished, not recorded), and a run
//! that fails for good — not one that will be retried — starts its error workflow.

use super::*;
use crate::error_workflows::{ErrorWorkflows, error_run_id};
use crate::sub_workflows::{
    Ancestor, ChildState, MockChildRuns, MockExecutionLineage, WAIT_RECHECK,
};

/// A manual trigger, then a `flow.run_workflow` step `call` that waits.
fn waiting_definition() -> Result<Definition, serde_json::Error> {
    definition(json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "call", "type": "flow.run_workflow", "name": "Call", "params": {"workflow_id": WorkflowId::new().to_string()}}
        ],
        "connections": [{"from": "start", "to": "call"}]
    }))
}

#[tokio::test]
async fn a_step_waiting_for_its_child_puts_the_run_back_until_the_child_ends() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.variables_load();
    fixture.checkpoints_recorded();
    fixture.executions.expect_finish().never();
    fixture.executions.expect_suspend().never();
    let waits = Captured::default();
    let keep = waits.clone();
    fixture
        .executions
        .expect_suspend_for_child()
        .times(1)
        .returning(move |_, lease, child, until, steps: &[StepRecord]| {
            keep.keep(&(lease, child, until, steps.to_vec()));
            Ok(Fenced::Written)
        });
    let claimed = fixture.claimed(waiting_definition()?, 1, 3);
    let id = claimed.execution.id;
    let mut service = fixture.service();
    let mut children = MockChildRuns::new();
    children
        .expect_ensure()
        .returning(|_, _, _| Ok(ChildState::Pending));
    service.ports.engine = Arc::new(
        Engine::new(
            Arc::new(MockNodeEffects::new()),
            Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
        )
        .with_children(Arc::new(children)),
    );

    let status = service.process(claimed, held()).await?;

    assert_eq!(status, Some(ExecutionStatus::Queued));
    let (lease, child, until, steps) = waits.only()?;
    assert_eq!(lease, LeaseToken::new(7));
    assert_eq!(
        Some(child.as_uuid()),
        EffectContext::of_run(fixture.workspace, id, RunMode::Queued)
            .for_step("call")
            .idempotency_key
    );
    assert_eq!(until, OffsetDateTime::UNIX_EPOCH + WAIT_RECHECK);
    assert!(
        steps.is_empty(),
        "the trigger was checkpointed, the call is not recorded"
    );
    assert_eq!(fixture.journal.entries(), ["record start"]);
    assert_eq!(fixture.observed.settled(), [ExecutionStatus::Queued]);
    Ok(())
}

/// Error workflows over mocked ports: the failed run's workflow names a handler active
/// in `staging`; `expected` runs may be queued (each noted).
fn error_workflows(fixture: &Fixture, expected: usize) -> (ErrorWorkflows, Captured<QueuedRun>) {
    let handler = WorkflowId::new();
    let (workspace, failing, staging) =
        (fixture.workspace, fixture.workflow, fixture.staging.clone());
    let mut lineage = MockExecutionLineage::new();
    let environment = staging.clone();
    lineage
        .expect_lineage()
        .times(expected)
        .returning(move |execution, _| {
            Ok(vec![Ancestor {
                execution,
                workspace,
                workflow: failing,
                environment: environment.clone(),
                trigger_kind: "run".into(),
            }])
        });
    let workflow = move |id, error_workflow_id| Workflow {
        id,
        workspace_id: workspace,
        name: "Flow".into(),
        description: String::new(),
        deployments: vec![Deployment {
            environment: staging.clone(),
            is_default: false,
            version: 1,
            activated_at: OffsetDateTime::UNIX_EPOCH,
        }],
        latest_version: Some(1),
        error_workflow_id,
        archived_at: None,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    };
    let mut workflows = MockWorkflowRepository::new();
    workflows.expect_find().returning(move |_, id| {
        Ok(Some(if id == failing {
            workflow(id, Some(handler))
        } else {
            workflow(id, None)
        }))
    });
    let workflows = Arc::new(workflows);
    let mut gate = MockUsageGate::new();
    gate.expect_admit_run()
        .returning(|_| Ok(Admission::Admitted));
    let queued = Captured::default();
    let keep = queued.clone();
    let mut queue = MockRunQueue::new();
    queue.expect_queue().times(expected).returning(move |run| {
        keep.keep(run);
        Ok(())
    });
    let starter = RunStarter::new(StartPorts {
        units: Arc::new(MockUnitOfWorkFactory::new()),
        workflows: workflows.clone(),
        queue: Arc::new(queue),
        gate: Arc::new(gate),
        audit: Arc::new(MockAuditLog::new()),
    });
    (
        ErrorWorkflows::new(Arc::new(starter), workflows, Arc::new(lineage)),
        queued,
    )
}

#[tokio::test]
async fn only_a_failure_for_good_starts_the_error_workflow() -> TestResult {
    // The last attempt, and a failure retrying cannot help: the error workflow starts.
    for (failure, attempt) in [
        (NodeFailure::transient("connection reset"), 3),
        (NodeFailure::permanent("401 unauthorized"), 1),
    ] {
        let mut fixture = Fixture::new();
        fixture.variables_load();
        fixture.checkpoints_recorded();
        fixture
            .effects
            .expect_http_request()
            .returning(move |_, _, _| Err(failure.clone()));
        fixture.finished_only();
        let (reporter, queued) = error_workflows(&fixture, 1);
        let claimed = fixture.claimed(calling_definition()?, attempt, 3);
        let id = claimed.execution.id;
        let service = fixture.service().with_error_workflows(Arc::new(reporter));

        assert_eq!(
            service.process(claimed, held()).await?,
            Some(ExecutionStatus::Failed)
        );
        let run = queued.only()?;
        assert_eq!(run.id, error_run_id(id));
        assert_eq!(run.trigger_kind, TriggerKind::ErrorWorkflow);
        assert_eq!(run.input["failed_node"], "call");
        assert_eq!(run.input["execution_id"], json!(id.to_string()));
    }

    // A failure that will be retried starts nothing.
    let mut fixture = Fixture::new();
    fixture.variables_load();
    fixture.checkpoints_recorded();
    fixture
        .effects
        .expect_http_request()
        .returning(|_, _, _| Err(NodeFailure::transient("connection reset")));
    fixture
        .executions
        .expect_requeue()
        .returning(|_, _, _, _, _| Ok(Fenced::Written));
    let (reporter, _) = error_workflows(&fixture, 0);
    let claimed = fixture.claimed(calling_definition()?, 1, 3);
    let service = fixture.service().with_error_workflows(Arc::new(reporter));
    assert_eq!(
        service.process(claimed, held()).await?,
        Some(ExecutionStatus::Queued)
    );
    Ok(())
}

#[tokio::test]
async fn a_run_that_timed_out_starts_its_error_workflow_and_a_cancelled_one_does_not() -> TestResult
{
    for (status, expected) in [
        (ExecutionStatus::Failed, 1),
        (ExecutionStatus::Cancelled, 0),
    ] {
        let mut fixture = Fixture::new();
        fixture
            .executions
            .expect_finish()
            .returning(|_, _, _, _| Ok(Fenced::Written));
        let (reporter, queued) = error_workflows(&fixture, expected);
        let service = fixture.service().with_error_workflows(Arc::new(reporter));
        let id = ExecutionId::new();
        let written = service
            .abandon(
                (id, LeaseToken::new(3)),
                status,
                "timed out after 60 seconds",
            )
            .await?;
        assert_eq!(written, Fenced::Written);
        let runs = queued.all();
        assert_eq!(runs.len(), expected);
        if let Some(run) = runs.first() {
            assert_eq!(run.input["failed_node"], Value::Null);
            assert_eq!(run.input["error"], "timed out after 60 seconds");
            assert_eq!(run.environment_id, fixture.staging.id);
        }
    }
    Ok(())
}
