//! [`ErrorWorkflows`]' decisions over mocked ports and the real start use case: which
//! run starts, with what, under which id; when none does.

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::plan_guard::MockUsageGate;
use fluxolab_kernel::testing::Captured;
use fluxolab_kernel::unit_of_work::MockUnitOfWorkFactory;
use fluxolab_kernel::{Admission, EnvironmentId, EnvironmentRef, WorkflowId, WorkspaceId};
use time::OffsetDateTime;

use super::*;
use crate::model::{Deployment, Workflow};
use crate::ports::MockWorkflowRepository;
use crate::start::{MockRunQueue, QueuedRun, StartPorts};
use crate::sub_workflows::{Ancestor, MockExecutionLineage};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const AT: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

/// A run `failed` of workflow `failing` (whose error workflow is `handler`, active in
/// `staging` at version 2) failed in `staging`.
struct Fixture {
    workspace: WorkspaceId,
    failed: ExecutionId,
    failing: WorkflowId,
    handler: WorkflowId,
    staging: EnvironmentRef,
    lineage: MockExecutionLineage,
    workflows: MockWorkflowRepository,
    queue: MockRunQueue,
    gate: MockUsageGate,
}

impl Fixture {
    fn new() -> Self {
        Self {
            workspace: WorkspaceId::new(),
            failed: ExecutionId::new(),
            failing: WorkflowId::new(),
            handler: WorkflowId::new(),
            staging: EnvironmentRef {
                id: EnvironmentId::new(),
                name: "staging".into(),
            },
            lineage: MockExecutionLineage::new(),
            workflows: MockWorkflowRepository::new(),
            queue: MockRunQueue::new(),
            gate: MockUsageGate::new(),
        }
    }

    /// The failed run's chain: the run (trigger `kind`), then runs with `above` kinds.
    fn chain(&mut self, kind: &str, above: &[&str]) {
        let run = |execution, kind: &str| Ancestor {
            execution,
            workspace: self.workspace,
            workflow: self.failing,
            environment: self.staging.clone(),
            trigger_kind: kind.to_owned(),
        };
        let mut chain = vec![run(self.failed, kind)];
        chain.extend(above.iter().map(|kind| run(ExecutionId::new(), kind)));
        self.lineage
            .expect_lineage()
            .returning(move |_, _| Ok(chain.clone()));
    }

    fn workflow(&self, id: WorkflowId, error_workflow_id: Option<WorkflowId>) -> Workflow {
        Workflow {
            id,
            workspace_id: self.workspace,
            name: "Flow".into(),
            description: String::new(),
            deployments: vec![Deployment {
                environment: self.staging.clone(),
                is_default: false,
                version: 2,
                activated_at: AT,
            }],
            latest_version: Some(2),
            error_workflow_id,
            archived_at: None,
            created_at: AT,
            updated_at: AT,
        }
    }

    /// The failing workflow names the handler (or, `false`, no error workflow).
    fn handled(&mut self, handled: bool) {
        let failing = self.workflow(self.failing, handled.then_some(self.handler));
        let mut handler = self.workflow(self.handler, None);
        if !handled {
            handler.deployments.clear();
        }
        self.workflows.expect_find().returning(move |_, id| {
            Ok(Some(if id == failing.id {
                failing.clone()
            } else {
                handler.clone()
            }))
        });
    }

    fn error_workflows(self) -> ErrorWorkflows {
        let starter = RunStarter::new(StartPorts {
            units: Arc::new(MockUnitOfWorkFactory::new()),
            workflows: Arc::new(self.workflows),
            queue: Arc::new(self.queue),
            gate: Arc::new(self.gate),
            audit: Arc::new(MockAuditLog::new()),
        });
        ErrorWorkflows::new(
            Arc::new(starter),
            Arc::new(MockWorkflowRepository::new()),
            Arc::new(self.lineage),
        )
    }
}

#[tokio::test]
async fn a_final_failure_starts_the_error_workflow_once_under_an_id_of_its_own() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.chain("run", &[]);
    fixture.handled(true);
    fixture
        .gate
        .expect_admit_run()
        .returning(|_| Ok(Admission::Admitted));
    let queued = Captured::<QueuedRun>::default();
    let keep = queued.clone();
    fixture.queue.expect_queue().returning(move |run| {
        keep.keep(run);
        Ok(())
    });
    let (failed, failing, handler, staging) = (
        fixture.failed,
        fixture.failing,
        fixture.handler,
        fixture.staging.id,
    );
    let mut own = MockWorkflowRepository::new();
    let failing_workflow = fixture.workflow(failing, Some(handler));
    own.expect_find()
        .returning(move |_, _| Ok(Some(failing_workflow.clone())));
    let error_workflows = ErrorWorkflows {
        workflows: Arc::new(own),
        ..fixture.error_workflows()
    };

    let first = error_workflows
        .report(failed, Some("charge"), "node `charge`: declined")
        .await;
    let again = error_workflows
        .report(failed, Some("charge"), "node `charge`: declined")
        .await;

    assert_eq!(first, ErrorRun::Started(error_run_id(failed)));
    assert_eq!(again, first, "a repeated report names the same run");
    let runs = queued.all();
    assert_eq!(runs.len(), 2, "queued by id: the store keeps the first");
    assert_eq!(runs[0], runs[1]);
    let run = &runs[0];
    assert_eq!(run.id, error_run_id(failed));
    assert_eq!(run.workflow_id, handler);
    assert_eq!(run.environment_id, staging);
    assert_eq!(run.version, 2);
    assert_eq!(run.trigger_kind, TriggerKind::ErrorWorkflow);
    assert_eq!(run.parent, None);
    assert_eq!(
        run.input,
        json!({
            "execution_id": failed.to_string(),
            "workflow_id": failing.to_string(),
            "error": "node `charge`: declined",
            "failed_node": "charge",
        })
    );
    Ok(())
}

#[tokio::test]
async fn an_error_workflows_own_failure_and_its_childrens_start_nothing() -> TestResult {
    for (kind, above) in [
        ("error_workflow", &[][..]),
        ("sub_workflow", &["sub_workflow", "error_workflow"][..]),
    ] {
        let mut fixture = Fixture::new();
        fixture.chain(kind, above);
        fixture.queue.expect_queue().never();
        let failed = fixture.failed;
        let outcome = fixture.error_workflows().report(failed, None, "boom").await;
        assert_eq!(outcome, ErrorRun::NotWanted, "{kind} under {above:?}");
    }
    Ok(())
}

#[tokio::test]
async fn without_an_error_workflow_or_an_active_version_nothing_starts() -> TestResult {
    // No error workflow set.
    let mut fixture = Fixture::new();
    fixture.chain("webhook", &[]);
    fixture.queue.expect_queue().never();
    let failing = fixture.workflow(fixture.failing, None);
    let mut own = MockWorkflowRepository::new();
    own.expect_find()
        .returning(move |_, _| Ok(Some(failing.clone())));
    let failed = fixture.failed;
    let error_workflows = ErrorWorkflows {
        workflows: Arc::new(own),
        ..fixture.error_workflows()
    };
    assert_eq!(
        error_workflows.report(failed, None, "boom").await,
        ErrorRun::NotWanted
    );

    // Set, but not active in the failed run's environment: skipped (logged).
    let mut fixture = Fixture::new();
    fixture.chain("run", &[]);
    fixture.handled(false);
    fixture.gate.expect_admit_run().never();
    fixture.queue.expect_queue().never();
    let failing = fixture.workflow(fixture.failing, Some(fixture.handler));
    let mut own = MockWorkflowRepository::new();
    own.expect_find()
        .returning(move |_, _| Ok(Some(failing.clone())));
    let failed = fixture.failed;
    let error_workflows = ErrorWorkflows {
        workflows: Arc::new(own),
        ..fixture.error_workflows()
    };
    assert_eq!(
        error_workflows.report(failed, None, "boom").await,
        ErrorRun::Skipped
    );
    Ok(())
}
