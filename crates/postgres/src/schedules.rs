//! Registered schedules (`workflow_schedules`) and the slots they fired
//! (`workflow_schedule_fires`, whose key — schedule and slot — makes a slot one run).
//! The scheduler's decisions arrive made (`fluxolab_workflows::scheduler`); this module
//! stores them.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{
    EnvironmentId, EnvironmentRef, ExecutionId, StorageError, Uow, WorkflowId, WorkspaceId,
};
use fluxolab_workflows::schedule::{Cadence, ScheduleId};
use fluxolab_workflows::scheduler::{
    Advance, FireOutcome, LastFire, NewSchedule, RegisteredSchedule, ScheduleStore,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{workflow_schedule_fires, workflow_schedules, workspace_settings};
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// Schedules over the pool.
    PgSchedules
);

/// How long the claims of past slots are kept (a slot is only ever claimed again
/// around its own time; these rows are the history of the last days).
const KEEP_FIRES_DAYS: i64 = 7;

/// A schedule with its environment's name.
#[derive(QueryableByName)]
#[diesel(table_name = workflow_schedules)]
struct ScheduleRow {
    id: Uuid,
    workspace_id: Uuid,
    workflow_id: Uuid,
    environment_id: Uuid,
    version: i32,
    cron: Option<String>,
    timezone: Option<String>,
    interval_seconds: Option<i32>,
    next_at: Option<OffsetDateTime>,
    last_slot: Option<OffsetDateTime>,
    last_fired_at: Option<OffsetDateTime>,
    last_outcome: Option<String>,
    last_execution_id: Option<Uuid>,
    last_skipped: i64,
    quota_refused_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    #[diesel(sql_type = Text)]
    environment_name: String,
}

/// The columns of a [`ScheduleRow`], from `workflow_schedules s` joined to its
/// environment `e`.
const SELECT_SCHEDULES: &str = "SELECT s.id, s.workspace_id, s.workflow_id, s.environment_id, \
  s.version, s.cron, s.timezone, s.interval_seconds, s.next_at, s.last_slot, s.last_fired_at, \
  s.last_outcome, s.last_execution_id, s.last_skipped, s.quota_refused_at, s.created_at, \
  e.name AS environment_name \
  FROM workflow_schedules s JOIN workspace_environments e ON e.id = s.environment_id";

fn schedule_of(row: ScheduleRow) -> Result<RegisteredSchedule, StorageError> {
    let cadence = match (row.cron, row.timezone, row.interval_seconds) {
        (Some(expression), Some(timezone), None) => Cadence::Cron {
            expression,
            timezone,
        },
        (None, None, Some(seconds)) => Cadence::Interval {
            seconds: i64::from(seconds),
        },
        _ => {
            return Err(corrupt(
                "workflow_schedules: neither a cron nor an interval",
            ));
        }
    };
    let last = match (row.last_slot, row.last_fired_at, row.last_outcome) {
        (Some(slot), Some(fired_at), Some(outcome)) => Some(LastFire {
            slot,
            fired_at,
            outcome: FireOutcome::from_code(&outcome)
                .ok_or_else(|| corrupt("workflow_schedules.last_outcome is not valid"))?,
            execution_id: row.last_execution_id.map(ExecutionId::from_uuid),
            skipped: row.last_skipped,
        }),
        _ => None,
    };
    Ok(RegisteredSchedule {
        id: ScheduleId::from_uuid(row.id),
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        workflow_id: WorkflowId::from_uuid(row.workflow_id),
        environment: EnvironmentRef {
            id: EnvironmentId::from_uuid(row.environment_id),
            name: row.environment_name,
        },
        version: row.version,
        cadence,
        next_at: row.next_at,
        last,
        quota_refused_at: row.quota_refused_at,
        created_at: row.created_at,
    })
}

/// The stored columns of a cadence: cron, timezone, interval_seconds.
fn cadence_columns(cadence: &Cadence) -> (Option<&str>, Option<&str>, Option<i32>) {
    match cadence {
        Cadence::Cron {
            expression,
            timezone,
        } => (Some(expression), Some(timezone), None),
        Cadence::Interval { seconds } => (
            None,
            None,
            Some(i32::try_from(*seconds).unwrap_or(i32::MAX)),
        ),
    }
}

#[async_trait]
impl ScheduleStore for PgSchedules {
    #[tracing::instrument(name = "db.schedules.register", level = "debug", skip_all)]
    async fn register(&self, unit: &mut Uow, schedule: &NewSchedule) -> Result<(), StorageError> {
        let (cron, timezone, interval) = cadence_columns(&schedule.cadence);
        // Raw: an upsert that keeps the fire times when the cadence is unchanged.
        diesel::sql_query(
            "INSERT INTO workflow_schedules (id, workspace_id, workflow_id, environment_id, version, \
               cron, timezone, interval_seconds, next_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT ON CONSTRAINT workflow_schedules_one_per_environment DO UPDATE SET \
               version = EXCLUDED.version, cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, \
               interval_seconds = EXCLUDED.interval_seconds, updated_at = now(), \
               next_at = CASE WHEN (workflow_schedules.cron, workflow_schedules.timezone, \
                   workflow_schedules.interval_seconds) IS NOT DISTINCT FROM \
                   (EXCLUDED.cron, EXCLUDED.timezone, EXCLUDED.interval_seconds) \
                 THEN workflow_schedules.next_at ELSE EXCLUDED.next_at END",
        )
        .bind::<SqlUuid, _>(schedule.id.as_uuid())
        .bind::<SqlUuid, _>(schedule.workspace_id.as_uuid())
        .bind::<SqlUuid, _>(schedule.workflow_id.as_uuid())
        .bind::<SqlUuid, _>(schedule.environment_id.as_uuid())
        .bind::<Integer, _>(schedule.version)
        .bind::<Nullable<Text>, _>(cron)
        .bind::<Nullable<Text>, _>(timezone)
        .bind::<Nullable<Integer>, _>(interval)
        .bind::<Nullable<Timestamptz>, _>(schedule.next_at)
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.schedules.unregister", level = "debug", skip_all)]
    async fn unregister(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
        environment: Option<EnvironmentId>,
    ) -> Result<(), StorageError> {
        let mut query = diesel::delete(workflow_schedules::table)
            .filter(workflow_schedules::workspace_id.eq(workspace.as_uuid()))
            .filter(workflow_schedules::workflow_id.eq(workflow.as_uuid()))
            .into_boxed();
        if let Some(environment) = environment {
            query = query.filter(workflow_schedules::environment_id.eq(environment.as_uuid()));
        }
        query.execute(connection_of(unit)?).await.map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.schedules.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        workflow: WorkflowId,
    ) -> Result<Vec<RegisteredSchedule>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: the shared select of a schedule with its environment's name.
        let rows: Vec<ScheduleRow> = diesel::sql_query(format!(
            "{SELECT_SCHEDULES} WHERE s.workspace_id = $1 AND s.workflow_id = $2 ORDER BY e.name"
        ))
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(workflow.as_uuid())
        .load(&mut connection)
        .await
        .map_err(storage)?;
        rows.into_iter().map(schedule_of).collect()
    }

    #[tracing::instrument(name = "db.schedules.default_timezone", level = "debug", skip_all)]
    async fn default_timezone(&self, workspace: WorkspaceId) -> Result<String, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let zone: Option<String> = workspace_settings::table
            .find(workspace.as_uuid())
            .select(workspace_settings::timezone)
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(zone.unwrap_or_else(|| "UTC".to_owned()))
    }

    #[tracing::instrument(name = "db.schedules.claim_due", level = "debug", skip_all)]
    async fn claim_due(
        &self,
        unit: &mut Uow,
        now: OffsetDateTime,
    ) -> Result<Option<RegisteredSchedule>, StorageError> {
        // Raw: FOR UPDATE OF one table of a join, SKIP LOCKED.
        let row: Option<ScheduleRow> = diesel::sql_query(format!(
            "{SELECT_SCHEDULES} WHERE s.next_at <= $1 ORDER BY s.next_at LIMIT 1 \
             FOR UPDATE OF s SKIP LOCKED"
        ))
        .bind::<Timestamptz, _>(now)
        .get_result(connection_of(unit)?)
        .await
        .optional()
        .map_err(storage)?;
        row.map(schedule_of).transpose()
    }

    #[tracing::instrument(name = "db.schedules.claim_slot", level = "debug", skip_all)]
    async fn claim_slot(
        &self,
        unit: &mut Uow,
        schedule: &RegisteredSchedule,
        slot: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<bool, StorageError> {
        let inserted = diesel::insert_into(workflow_schedule_fires::table)
            .values((
                workflow_schedule_fires::schedule_id.eq(schedule.id.as_uuid()),
                workflow_schedule_fires::slot.eq(slot),
                workflow_schedule_fires::workspace_id.eq(schedule.workspace_id.as_uuid()),
                workflow_schedule_fires::fired_at.eq(at),
            ))
            .on_conflict_do_nothing()
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(inserted == 1)
    }

    #[tracing::instrument(name = "db.schedules.advance", level = "debug", skip_all)]
    async fn advance(&self, unit: &mut Uow, advance: &Advance) -> Result<(), StorageError> {
        let connection = connection_of(unit)?;
        let id = advance.schedule.as_uuid();
        let Some(fired) = &advance.fired else {
            diesel::update(workflow_schedules::table.find(id))
                .set((
                    workflow_schedules::next_at.eq(advance.next_at),
                    workflow_schedules::updated_at.eq(diesel::dsl::now),
                ))
                .execute(connection)
                .await
                .map_err(storage)?;
            return Ok(());
        };
        let refused = fired.outcome == FireOutcome::QuotaExceeded;
        let execution = fired.execution_id.map(|id| id.as_uuid());
        diesel::update(workflow_schedules::table.find(id))
            .set((
                workflow_schedules::next_at.eq(advance.next_at),
                workflow_schedules::last_slot.eq(fired.slot),
                workflow_schedules::last_fired_at.eq(fired.fired_at),
                workflow_schedules::last_outcome.eq(fired.outcome.code()),
                workflow_schedules::last_execution_id.eq(execution),
                workflow_schedules::last_skipped.eq(fired.skipped.max(0)),
                workflow_schedules::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection)
            .await
            .map_err(storage)?;
        if refused {
            diesel::update(workflow_schedules::table.find(id))
                .set(workflow_schedules::quota_refused_at.eq(fired.fired_at))
                .execute(connection)
                .await
                .map_err(storage)?;
        }
        diesel::update(workflow_schedule_fires::table.find((id, fired.slot)))
            .set((
                workflow_schedule_fires::outcome.eq(fired.outcome.code()),
                workflow_schedule_fires::execution_id.eq(execution),
            ))
            .execute(connection)
            .await
            .map_err(storage)?;
        diesel::delete(
            workflow_schedule_fires::table
                .filter(workflow_schedule_fires::schedule_id.eq(id))
                .filter(
                    workflow_schedule_fires::slot
                        .lt(fired.slot - time::Duration::days(KEEP_FIRES_DAYS)),
                ),
        )
        .execute(connection)
        .await
        .map_err(storage)?;
        Ok(())
    }
}
