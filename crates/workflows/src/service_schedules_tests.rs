//! Activation's schedule side, with the ports mocked: a `trigger.schedule` version
//! registers its schedule (the workspace's zone by default, the first fire time from the
//! clock) in the activation's unit; deactivating removes it there.

use time::macros::datetime;

use super::*;
use crate::schedule::Cadence;
use crate::scheduler::NewSchedule;

/// Every weekday at 09:00, in the workspace's zone.
fn schedule_definition() -> Result<Definition, serde_json::Error> {
    definition(json!({
        "nodes": [
            {"id": "tick", "type": "trigger.schedule", "name": "Morning",
             "params": {"cron": "0 9 * * 1-5"}},
            {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"a": 1}}}
        ],
        "connections": [{"from": "tick", "to": "shape"}]
    }))
}

impl Workflows {
    /// The workspace's zone is Tokyo; registrations are journaled and kept.
    fn registering_schedules(mut self, registered: &Captured<NewSchedule>) -> Self {
        self.schedules_expected = true;
        self.schedules
            .expect_default_timezone()
            .returning(|_| Ok("Asia/Tokyo".to_owned()));
        let (journal, unit, registered) =
            (self.journal.clone(), self.unit.clone(), registered.clone());
        let names = [self.production.clone(), self.staging.clone()];
        self.schedules
            .expect_register()
            .times(1)
            .returning(move |uow, schedule| {
                let name = names
                    .iter()
                    .find(|known| known.id == schedule.environment_id)
                    .map_or("?", |known| known.name.as_str());
                journal.note(format!("schedules.register {name} {}", place(uow, &unit)));
                registered.keep(schedule);
                Ok(())
            });
        self.schedules.expect_unregister().never();
        self
    }

    fn unregistering_schedules(mut self) -> Self {
        self.schedules_expected = true;
        let (journal, unit) = (self.journal.clone(), self.unit.clone());
        let names = [self.production.clone(), self.staging.clone()];
        self.schedules
            .expect_unregister()
            .times(1)
            .returning(move |uow, _, _, environment| {
                let name = match environment {
                    None => "everywhere",
                    Some(id) => names
                        .iter()
                        .find(|known| known.id == id)
                        .map_or("?", |known| known.name.as_str()),
                };
                journal.note(format!("schedules.unregister {name} {}", place(uow, &unit)));
                Ok(())
            });
        self.schedules.expect_register().never();
        self
    }
}

#[tokio::test]
async fn activating_a_scheduled_workflow_registers_its_schedule_in_the_same_unit() -> TestResult {
    let registered = Captured::default();
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow_active_in_staging();
    workflows = workflows
        .holding(&workflow)
        .with_environments()
        .with_version(2, schedule_definition()?)
        .opening_one_unit()
        .setting_the_active_version()
        .unbinding_webhooks()
        .registering_schedules(&registered)
        .recording_activity_in_the_unit();
    workflows.plans.expect_admit().never();

    workflows
        .service()
        .set_active(&workflows.editor(), workflow.id, None, Some(2))
        .await?;

    assert_eq!(
        workflows.journal.entries(),
        [
            "workflows.set_active production Some(2) in the unit",
            "webhooks.unbind production in the unit",
            "schedules.register production in the unit",
            "audit.record_in workflow.activated in the unit",
        ]
    );
    assert!(workflows.committed());
    let schedule = registered.only()?;
    assert_eq!(schedule.version, 2);
    assert_eq!(schedule.workspace_id, workflows.workspace);
    assert_eq!(
        schedule.cadence,
        Cadence::Cron {
            expression: "0 9 * * 1-5".to_owned(),
            timezone: "Asia/Tokyo".to_owned()
        }
    );
    // The clock says 1970-01-01 00:00 UTC, a Thursday: next is Friday 09:00 in Tokyo.
    assert_eq!(schedule.next_at, Some(datetime!(1970-01-02 00:00 UTC)));
    Ok(())
}

#[tokio::test]
async fn deactivating_removes_the_schedule_of_that_environment_only() -> TestResult {
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow_active_in_staging();
    workflows = workflows
        .holding(&workflow)
        .with_environments()
        .opening_one_unit()
        .setting_the_active_version()
        .unbinding_webhooks()
        .unregistering_schedules()
        .recording_activity_in_the_unit();

    workflows
        .service()
        .set_active(&workflows.editor(), workflow.id, Some("staging"), None)
        .await?;

    assert_eq!(
        workflows.journal.entries(),
        [
            "workflows.set_active staging None in the unit",
            "webhooks.unbind staging in the unit",
            "schedules.unregister staging in the unit",
            "audit.record_in workflow.deactivated in the unit",
        ]
    );
    assert!(workflows.committed());
    Ok(())
}
