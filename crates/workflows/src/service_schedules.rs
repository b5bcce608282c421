//! The schedule side of activation (a `trigger.schedule` workflow gets its schedule
//! registered in each environment it is active in) and the schedule read.

use fluxolab_kernel::{EnvironmentId, Principal, StorageError, Uow, WorkflowId, WorkspaceId};
use time::OffsetDateTime;

use super::{WorkflowError, WorkflowService, invalid};
use crate::Definition;
use crate::schedule::{self, ScheduleId, ScheduleSpec, UPCOMING};
use crate::scheduler::{NewSchedule, RegisteredSchedule};

/// A workflow's schedule in one environment, with its next fire times.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleView {
    pub schedule: RegisteredSchedule,
    /// The next [`UPCOMING`] fire times (the first may be overdue while no worker runs).
    pub next_fire_times: Vec<OffsetDateTime>,
}

impl WorkflowService {
    /// The schedule a definition's `trigger.schedule` node describes (a cron pattern
    /// without a zone is read in the workspace's), or `None` for other triggers.
    pub(super) async fn schedule_in(
        &self,
        workspace: WorkspaceId,
        definition: &Definition,
    ) -> Result<Option<ScheduleSpec>, WorkflowError> {
        let Some(node) = definition
            .nodes
            .iter()
            .find(|node| node.node_type == schedule::NODE_TYPE)
        else {
            return Ok(None);
        };
        let zone = self.ports.schedules.default_timezone(workspace).await?;
        ScheduleSpec::from_params(&node.params, &zone)
            .map(Some)
            .map_err(|problems| {
                let message = problems
                    .iter()
                    .map(|(param, message)| format!("{param} {message}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                invalid(
                    "version",
                    format!(
                        "node `{}`: its schedule no longer validates: {message}",
                        node.id
                    ),
                )
            })
    }

    /// Registers `spec` for `workflow` in `environment` (from now), or removes the
    /// schedule there when the version activated has none (or none is).
    pub(super) async fn bind_schedule(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
        environment: EnvironmentId,
        version: Option<i32>,
        spec: Option<&ScheduleSpec>,
    ) -> Result<(), StorageError> {
        match (version, spec) {
            (Some(version), Some(spec)) => {
                let schedule = NewSchedule {
                    id: ScheduleId::new(),
                    workspace_id: workspace,
                    workflow_id: workflow,
                    environment_id: environment,
                    version,
                    cadence: spec.cadence().clone(),
                    next_at: spec.next_after(self.ports.clock.now()),
                };
                self.ports.schedules.register(unit, &schedule).await
            }
            _ => {
                self.ports
                    .schedules
                    .unregister(unit, workspace, workflow, Some(environment))
                    .await
            }
        }
    }

    /// The workflow's schedule in each environment where it is active.
    #[tracing::instrument(name = "workflows.schedule", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn schedule(
        &self,
        principal: &Principal,
        id: WorkflowId,
    ) -> Result<Vec<ScheduleView>, WorkflowError> {
        self.get(principal, id).await?;
        let schedules = self
            .ports
            .schedules
            .list(principal.workspace_id(), id)
            .await?;
        Ok(schedules
            .into_iter()
            .map(|schedule| {
                let next_fire_times = match (ScheduleSpec::of(&schedule.cadence), schedule.next_at)
                {
                    (Ok(spec), Some(next)) => std::iter::once(next)
                        .chain(spec.upcoming(next, UPCOMING - 1))
                        .collect(),
                    _ => Vec::new(),
                };
                ScheduleView {
                    schedule,
                    next_fire_times,
                }
            })
            .collect())
    }
}
