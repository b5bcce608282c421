//! Which ends of a run its workspace's failure notifications hear of: a queued run's
//! final failure (whatever made it final), never a success nor an inline `/test` run.

use super::*;

#[tokio::test]
async fn a_final_failure_is_notified_and_a_success_is_not() -> TestResult {
    for (failure, attempt, notified) in [
        (Some(NodeFailure::transient("connection reset")), 3, true),
        (Some(NodeFailure::permanent("401 unauthorized")), 1, true),
        (None, 1, false),
    ] {
        let mut fixture = Fixture::new();
        fixture.variables_load();
        fixture.checkpoints_recorded();
        fixture
            .effects
            .expect_http_request()
            .times(1)
            .returning(move |_, _, _| match failure.clone() {
                Some(failure) => Err(failure),
                None => Ok(json!({"status": 200})),
            });
        let finished = fixture.finished_only();
        let claimed = fixture.claimed(calling_definition()?, attempt, 3);
        let service = fixture.service();
        service.process(claimed, held()).await?;
        let (outcome, _) = finished.only()?;
        assert_eq!(outcome.notify_failure, notified, "{outcome:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_run_abandoned_when_it_ran_out_of_time_is_notified() -> TestResult {
    let mut fixture = Fixture::new();
    let finished = fixture.finished_only();
    let service = fixture.service();
    let written = service
        .abandon(
            (ExecutionId::new(), LeaseToken::new(4)),
            ExecutionStatus::Failed,
            "timed out after 5 seconds",
        )
        .await?;
    assert_eq!(written, Fenced::Written);
    let (outcome, _) = finished.only()?;
    assert!(outcome.notify_failure, "{outcome:?}");
    Ok(())
}

#[tokio::test]
async fn an_inline_test_run_that_fails_notifies_nobody() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.knows_environments();
    let (workspace, workflow) = (fixture.workspace, fixture.workflow);
    let latest = Workflow {
        id: workflow,
        workspace_id: workspace,
        name: "Calls".to_owned(),
        description: String::new(),
        deployments: Vec::new(),
        latest_version: Some(1),
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
        version: 1,
        definition: calling_definition()?,
        checksum: String::new(),
        created_at: OffsetDateTime::UNIX_EPOCH,
    };
    fixture
        .workflows
        .expect_version()
        .returning(move |_, _, _| Ok(Some(version.clone())));
    fixture
        .executions
        .expect_create_inline()
        .returning(|_| Ok(()));
    fixture.variables_load();
    fixture.checkpoints_recorded();
    fixture
        .effects
        .expect_http_request()
        .returning(|_, _, _| Err(NodeFailure::permanent("401 unauthorized")));
    let finished = fixture.finished_only();
    let stored = fixture.execution(ExecutionStatus::Failed);
    fixture.reads(vec![stored]);
    let service = fixture.service();
    service
        .test(
            &fixture.runner(),
            workflow,
            None,
            Some("staging"),
            json!({}),
        )
        .await?;
    let (outcome, _) = finished.only()?;
    assert_eq!(outcome.status, ExecutionStatus::Failed);
    assert!(!outcome.notify_failure, "{outcome:?}");
    Ok(())
}
