//! How a processed run settles under its workspace's `execution_defaults`: a success
//! keeps its steps only when the workspace saves them (the answer to a webhook sender
//! always stays), a failure keeps them whatever the setting.

use super::*;

/// `claimed` with the workspace's defaults saying successful runs keep no steps.
fn not_saving(mut claimed: ClaimedExecution) -> ClaimedExecution {
    claimed.defaults = RunDefaults {
        timeout_seconds: Some(60),
        save_successful_steps: false,
    };
    claimed
}

#[tokio::test]
async fn a_success_in_a_workspace_that_saves_no_steps_is_finished_without_them() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.variables_load();
    let finished = fixture.finished_only();
    let claimed = not_saving(fixture.claimed(manual_definition()?, 1, 3));
    let service = fixture.service();
    let status = service.process(claimed, held()).await?;
    assert_eq!(status, Some(ExecutionStatus::Succeeded));
    let (outcome, steps) = finished.only()?;
    assert_eq!(outcome.output, Some(json!({"done": true})));
    assert_eq!(outcome.steps_kept, StepsKept::Answers);
    assert!(steps.is_empty(), "{steps:?}");
    Ok(())
}

#[tokio::test]
async fn a_success_that_answered_its_sender_keeps_the_answer() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.variables_load();
    fixture.checkpoints_recorded();
    let finished = fixture.finished_only();
    let claimed = not_saving(fixture.claimed(answering_definition()?, 1, 3));
    let service = fixture.service();
    assert_eq!(
        service.process(claimed, held()).await?,
        Some(ExecutionStatus::Succeeded)
    );
    let (outcome, _) = finished.only()?;
    // The stored answer survives the finish (the sender may read it after the run ends).
    assert_eq!(outcome.steps_kept, StepsKept::Answers);
    assert!(
        fixture
            .journal
            .entries()
            .contains(&"record answer".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn a_failure_keeps_its_steps_whatever_the_workspace_saves() -> TestResult {
    let mut fixture = Fixture::new();
    fixture.variables_load();
    fixture.checkpoints_recorded();
    fixture
        .effects
        .expect_http_request()
        .times(1)
        .returning(|_, _, _| Err(NodeFailure::permanent("401 unauthorized")));
    let finished = fixture.finished_only();
    let claimed = not_saving(fixture.claimed(calling_definition()?, 1, 3));
    let service = fixture.service();
    assert_eq!(
        service.process(claimed, held()).await?,
        Some(ExecutionStatus::Failed)
    );
    let (outcome, steps) = finished.only()?;
    assert_eq!(outcome.steps_kept, StepsKept::All);
    assert!(
        steps.iter().any(|step| step.error.is_some()),
        "the failed step is stored: {steps:?}"
    );
    Ok(())
}
