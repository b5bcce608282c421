//! A workflow's error workflow: checked before anything is written (another,
//! unarchived workflow of the workspace), then set in the unit of the change with its
//! activity.

use super::*;

/// `PATCH` of `error_workflow_id` to `target`, where `find` knows `known` (and `own`).
async fn change(
    workflows: &mut Workflows,
    own: &Workflow,
    target: WorkflowId,
) -> Result<Workflow, WorkflowError> {
    let principal = workflows.editor();
    workflows
        .service()
        .update_with(
            &principal,
            own.id,
            WorkflowChanges {
                error_workflow_id: Some(Some(target)),
                ..WorkflowChanges::default()
            },
        )
        .await
}

fn refused_on_the_field(result: Result<Workflow, WorkflowError>, says: &str) -> TestResult {
    let Err(WorkflowError::Invalid(errors)) = result else {
        return Err(format!("expected a refusal, got {result:?}").into());
    };
    let error = errors.errors().first().ok_or("one error")?;
    assert_eq!(error.field, "error_workflow_id");
    assert!(error.message.contains(says), "{}", error.message);
    Ok(())
}

#[tokio::test]
async fn itself_a_stranger_or_an_archived_workflow_is_refused_before_any_write() -> TestResult {
    let fixture = Workflows::new();
    let own = fixture.workflow();
    let mut workflows = fixture.holding(&own).opening_no_unit().writing_nothing();
    workflows.workflows.expect_set_error_workflow().never();
    refused_on_the_field(
        change(&mut workflows, &own, own.id).await,
        "must be another workflow, not this one",
    )?;

    let fixture = Workflows::new();
    let own = fixture.workflow();
    let stranger = WorkflowId::new();
    let mut workflows = fixture.opening_no_unit().writing_nothing();
    let found = own.clone();
    workflows
        .workflows
        .expect_find()
        .returning(move |_, id| Ok((id == found.id).then(|| found.clone())));
    workflows.workflows.expect_set_error_workflow().never();
    refused_on_the_field(
        change(&mut workflows, &own, stranger).await,
        "does not exist in this workspace",
    )?;

    let fixture = Workflows::new();
    let own = fixture.workflow();
    let archived = Workflow {
        archived_at: Some(OffsetDateTime::UNIX_EPOCH),
        ..own.clone()
    };
    let mut workflows = fixture.opening_no_unit().writing_nothing();
    let found = own.clone();
    workflows.workflows.expect_find().returning(move |_, id| {
        Ok(Some(if id == found.id {
            found.clone()
        } else {
            Workflow {
                id,
                ..archived.clone()
            }
        }))
    });
    workflows.workflows.expect_set_error_workflow().never();
    refused_on_the_field(
        change(&mut workflows, &own, WorkflowId::new()).await,
        "is archived",
    )
}

#[tokio::test]
async fn an_error_workflow_is_set_in_the_unit_of_the_change_with_its_activity() -> TestResult {
    let fixture = Workflows::new();
    let own = fixture.workflow();
    let target = WorkflowId::new();
    let mut workflows = fixture.holding(&own).opening_one_unit();
    let (journal, unit) = (workflows.journal.clone(), workflows.unit.clone());
    workflows
        .workflows
        .expect_set_error_workflow()
        .times(1)
        .returning(move |uow, _, _, error_workflow| {
            journal.note(format!(
                "set_error_workflow {} {}",
                error_workflow.map(|id| id.to_string()).unwrap_or_default(),
                place(uow, &unit)
            ));
            Ok(())
        });
    workflows
        .workflows
        .expect_update()
        .returning(|_, _, _, _, _| Ok(()));
    let events = workflows.events.clone();
    workflows
        .audit
        .expect_record_in()
        .returning(move |_, event| {
            events.keep(event);
            Ok(())
        });

    change(&mut workflows, &own, target).await?;

    assert_eq!(
        workflows.journal.entries(),
        [format!("set_error_workflow {target} in the unit")]
    );
    assert!(workflows.committed());
    let event = workflows.events.only()?;
    assert_eq!(event.action, "workflow.updated");
    assert_eq!(event.metadata["error_workflow_id"], json!(target));
    Ok(())
}
