//! `GET /api/workflows/{id}/schedule`: where a `trigger.schedule` workflow is
//! scheduled, its next fire times and what its last slot gave.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get};
use fluxolab_workflows::schedule::Cadence;
use fluxolab_workflows::service::ScheduleView;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::path_id::path_id;
use crate::problem::Problem;

/// RFC 3339 lists of instants.
mod rfc3339_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::OffsetDateTime;

    #[derive(Serialize, Deserialize)]
    #[serde(transparent)]
    struct Instant(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

    pub fn serialize<S: Serializer>(
        times: &[OffsetDateTime],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(times.iter().map(|at| Instant(*at)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<OffsetDateTime>, D::Error> {
        let times: Vec<Instant> = Vec::deserialize(deserializer)?;
        Ok(times.into_iter().map(|Instant(at)| at).collect())
    }
}

/// A workflow's schedules, one per environment where it is active.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkflowScheduleResponse {
    pub workflow_id: Uuid,
    /// Empty when the workflow is active nowhere, or not started by `trigger.schedule`.
    pub environments: Vec<EnvironmentScheduleResponse>,
}

/// The schedule of a workflow in one environment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentScheduleResponse {
    pub environment_id: Uuid,
    /// The environment's name (`production`…).
    pub environment: String,
    /// The version whose `trigger.schedule` params apply (the one active there).
    pub version: i32,
    /// The cron pattern (`null` for an interval).
    #[schema(min_length = 1, max_length = 200)]
    pub cron: Option<String>,
    /// The IANA time zone the pattern is read in (`null` for an interval).
    #[schema(min_length = 1, max_length = 64)]
    pub timezone: Option<String>,
    /// Seconds between fire times (`null` for a cron pattern).
    #[schema(minimum = 10)]
    pub interval_seconds: Option<i64>,
    /// The next five fire times; the first is overdue while no worker runs (it fires
    /// as soon as one does). Empty when the pattern fires no more.
    #[serde(with = "rfc3339_list")]
    #[schema(max_items = 5)]
    pub next_fire_times: Vec<OffsetDateTime>,
    /// The last slot fired, if any.
    pub last_fire: Option<LastFireResponse>,
    /// When the quota last refused one of its slots (no run; the slot was consumed).
    #[serde(with = "time::serde::rfc3339::option")]
    pub quota_refused_at: Option<OffsetDateTime>,
    /// When it was first registered (activated there).
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
}

/// The last slot a schedule fired for.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LastFireResponse {
    /// The slot (the run's `trigger.body.scheduled_for`).
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_for: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub fired_at: OffsetDateTime,
    /// `started` (a run was queued), `quota_exceeded` (the period's executions were
    /// used up: no run) or `not_active`.
    pub outcome: String,
    pub execution_id: Option<Uuid>,
    /// Earlier slots that passed while no worker ran; this one run caught them up.
    #[schema(minimum = 0)]
    pub skipped_slots: i64,
}

impl From<ScheduleView> for EnvironmentScheduleResponse {
    fn from(view: ScheduleView) -> Self {
        let schedule = view.schedule;
        let (cron, timezone, interval_seconds) = match schedule.cadence {
            Cadence::Cron {
                expression,
                timezone,
            } => (Some(expression), Some(timezone), None),
            Cadence::Interval { seconds } => (None, None, Some(seconds)),
        };
        Self {
            environment_id: schedule.environment.id.as_uuid(),
            environment: schedule.environment.name,
            version: schedule.version,
            cron,
            timezone,
            interval_seconds,
            next_fire_times: view.next_fire_times,
            last_fire: schedule.last.map(|last| LastFireResponse {
                scheduled_for: last.slot,
                fired_at: last.fired_at,
                outcome: last.outcome.code().to_owned(),
                execution_id: last.execution_id.map(|id| id.as_uuid()),
                skipped_slots: last.skipped,
            }),
            quota_refused_at: schedule.quota_refused_at,
            registered_at: schedule.created_at,
        }
    }
}

/// The workflow's schedule in each environment where it is active, with the next five
/// fire times and the last slot's outcome.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 200, description = "The schedules", body = WorkflowScheduleResponse),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/workflows/{id}/schedule")]
pub async fn workflow_schedule(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let views = services.workflows.schedule(&caller.principal, id).await?;
    Ok(HttpResponse::Ok().json(WorkflowScheduleResponse {
        workflow_id: id.as_uuid(),
        environments: views
            .into_iter()
            .map(EnvironmentScheduleResponse::from)
            .collect(),
    }))
}
