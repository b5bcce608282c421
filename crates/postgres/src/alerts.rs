//! Usage alerts and their events; the events table is also the deliveries' queue.

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{Page, PageRequest, StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::alerts::{AlertChannel, AlertEvent, AlertRepository, Delivery, UsageAlert};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::DbPool;
use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::unit_of_work::connection_of;

/// Usage alerts over the pool.
#[derive(Clone)]
pub struct PgAlerts {
    pool: DbPool,
}

impl std::fmt::Debug for PgAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAlerts").finish_non_exhaustive()
    }
}

impl PgAlerts {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }
}

const ALERT_COLUMNS: &str = "id, workspace_id, metric, threshold_percent, channel, target, \
    secret_credential_id, enabled, created_at, updated_at";

#[derive(QueryableByName)]
struct AlertRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = Text)]
    metric: String,
    #[diesel(sql_type = Integer)]
    threshold_percent: i32,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = Text)]
    target: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    secret_credential_id: Option<Uuid>,
    #[diesel(sql_type = Bool)]
    enabled: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    updated_at: OffsetDateTime,
}

fn alert(row: AlertRow) -> Result<UsageAlert, StorageError> {
    Ok(UsageAlert {
        id: row.id,
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        metric: row.metric,
        threshold_percent: row.threshold_percent,
        channel: AlertChannel::from_code(&row.channel)
            .ok_or_else(|| corrupt("stored alert channel is not valid"))?,
        target: row.target,
        secret_credential_id: row.secret_credential_id,
        enabled: row.enabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

const EVENT_COLUMNS: &str = "id, alert_id, workspace_id, period_start, threshold_percent, used, \
    limit_value, status, attempts, last_error, delivered_at, created_at";

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    alert_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    period_start: OffsetDateTime,
    #[diesel(sql_type = Integer)]
    threshold_percent: i32,
    #[diesel(sql_type = BigInt)]
    used: i64,
    #[diesel(sql_type = BigInt)]
    limit_value: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    delivered_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
}

fn event(row: EventRow) -> AlertEvent {
    AlertEvent {
        id: row.id,
        alert_id: row.alert_id,
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        period_start: row.period_start,
        threshold_percent: row.threshold_percent,
        used: row.used,
        limit: row.limit_value,
        status: row.status,
        attempts: row.attempts,
        last_error: row.last_error,
        delivered_at: row.delivered_at,
        created_at: row.created_at,
    }
}

/// Fires every enabled alert whose threshold the current period's usage reached.
const EVALUATE: &str = "\
WITH measured AS ( \
  SELECT a.id AS alert_id, a.workspace_id, a.threshold_percent, s.current_period_start, \
    (p.limits ->> CASE a.metric WHEN 'executions' THEN 'executions_per_month' \
       WHEN 'members' THEN 'max_members' WHEN 'workflows' THEN 'max_workflows' \
       WHEN 'active_workflows' THEN 'max_active_workflows' ELSE 'max_credentials' END)::bigint AS limit_value, \
    CASE a.metric \
      WHEN 'executions' THEN (SELECT count(*) FROM executions e \
        WHERE e.workspace_id = a.workspace_id AND e.created_at >= s.current_period_start) \
      WHEN 'members' THEN (SELECT count(*) FROM workspace_members m WHERE m.workspace_id = a.workspace_id) \
      WHEN 'workflows' THEN (SELECT count(*) FROM workflows f \
        WHERE f.workspace_id = a.workspace_id AND f.archived_at IS NULL) \
      WHEN 'active_workflows' THEN (SELECT count(DISTINCT d.workflow_id) FROM workflow_deployments d \
        WHERE d.workspace_id = a.workspace_id) \
      ELSE (SELECT count(*) FROM user_credentials c WHERE c.workspace_id = a.workspace_id) \
    END AS used \
  FROM workspace_usage_alerts a \
  JOIN subscriptions s ON s.workspace_id = a.workspace_id \
  JOIN plans p ON p.id = s.plan_id \
  WHERE a.enabled \
) \
INSERT INTO workspace_usage_alert_events (id, alert_id, workspace_id, period_start, threshold_percent, used, limit_value) \
SELECT gen_random_uuid(), alert_id, workspace_id, current_period_start, threshold_percent, used, limit_value \
FROM measured WHERE limit_value > 0 AND used * 100 >= limit_value * threshold_percent \
ON CONFLICT ON CONSTRAINT workspace_usage_alert_events_once DO NOTHING";

#[async_trait]
impl AlertRepository for PgAlerts {
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<UsageAlert>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let after = page.after();
        let rows: Vec<AlertRow> = diesel::sql_query(format!(
            "SELECT {ALERT_COLUMNS} FROM workspace_usage_alerts WHERE workspace_id = $1 \
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<Nullable<Timestamptz>, _>(after.as_ref().map(|cursor| cursor.created_at))
        .bind::<SqlUuid, _>(after.as_ref().map_or(Uuid::nil(), |cursor| cursor.id))
        .bind::<BigInt, _>(page.fetch_limit())
        .load(&mut connection)
        .await
        .map_err(storage)?;
        let items = rows.into_iter().map(alert).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(items, page, UsageAlert::cursor))
    }

    async fn find(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<Option<UsageAlert>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<AlertRow> = diesel::sql_query(format!(
            "SELECT {ALERT_COLUMNS} FROM workspace_usage_alerts WHERE workspace_id = $1 AND id = $2"
        ))
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(id)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        rows.into_iter().next().map(alert).transpose()
    }

    async fn insert(
        &self,
        unit: &mut Uow,
        alert: &UsageAlert,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError> {
        diesel::sql_query(
            "INSERT INTO workspace_usage_alerts (id, workspace_id, metric, threshold_percent, channel, \
               target, secret_credential_id, enabled, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind::<SqlUuid, _>(alert.id)
        .bind::<SqlUuid, _>(alert.workspace_id.as_uuid())
        .bind::<Text, _>(&alert.metric)
        .bind::<Integer, _>(alert.threshold_percent)
        .bind::<Text, _>(alert.channel.code())
        .bind::<Text, _>(&alert.target)
        .bind::<Nullable<SqlUuid>, _>(alert.secret_credential_id)
        .bind::<Bool, _>(alert.enabled)
        .bind::<Nullable<SqlUuid>, _>(created_by.map(|user| user.as_uuid()))
        .bind::<Timestamptz, _>(alert.created_at)
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn update(&self, unit: &mut Uow, alert: &UsageAlert) -> Result<(), StorageError> {
        diesel::sql_query(
            "UPDATE workspace_usage_alerts SET threshold_percent = $3, target = $4, enabled = $5, \
               updated_at = $6 WHERE workspace_id = $1 AND id = $2",
        )
        .bind::<SqlUuid, _>(alert.workspace_id.as_uuid())
        .bind::<SqlUuid, _>(alert.id)
        .bind::<Integer, _>(alert.threshold_percent)
        .bind::<Text, _>(&alert.target)
        .bind::<Bool, _>(alert.enabled)
        .bind::<Timestamptz, _>(alert.updated_at)
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<bool, StorageError> {
        // Its signing secret goes with it.
        let deleted = diesel::sql_query(
            "WITH gone AS (DELETE FROM workspace_usage_alerts WHERE workspace_id = $1 AND id = $2 \
               RETURNING secret_credential_id), \
             secret AS (DELETE FROM credentials WHERE id IN (SELECT secret_credential_id FROM gone)) \
             SELECT 1 FROM gone",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(id)
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(deleted == 1)
    }

    async fn events(
        &self,
        workspace: WorkspaceId,
        alert: Uuid,
        page: PageRequest,
    ) -> Result<Page<AlertEvent>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let after = page.after();
        let rows: Vec<EventRow> = diesel::sql_query(format!(
            "SELECT {EVENT_COLUMNS} FROM workspace_usage_alert_events \
             WHERE workspace_id = $1 AND alert_id = $2 \
               AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(alert)
        .bind::<Nullable<Timestamptz>, _>(after.as_ref().map(|cursor| cursor.created_at))
        .bind::<SqlUuid, _>(after.as_ref().map_or(Uuid::nil(), |cursor| cursor.id))
        .bind::<BigInt, _>(page.fetch_limit())
        .load(&mut connection)
        .await
        .map_err(storage)?;
        Ok(Page::from_rows(
            rows.into_iter().map(event).collect(),
            page,
            AlertEvent::cursor,
        ))
    }

    async fn evaluate(&self) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let fired = diesel::sql_query(EVALUATE)
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(u64::try_from(fired).unwrap_or_default())
    }

    async fn claim_due(&self, limit: i64) -> Result<Vec<Delivery>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let events: Vec<EventRow> = diesel::sql_query(format!(
            "UPDATE workspace_usage_alert_events SET attempts = attempts + 1, \
               next_attempt_at = now() + interval '1 minute' \
             WHERE id IN (SELECT id FROM workspace_usage_alert_events \
               WHERE status = 'pending' AND next_attempt_at <= now() \
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING {EVENT_COLUMNS}"
        ))
        .bind::<BigInt, _>(limit)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = events.iter().map(|row| row.alert_id).collect();
        let alerts: Vec<AlertRow> = diesel::sql_query(format!(
            "SELECT {ALERT_COLUMNS} FROM workspace_usage_alerts WHERE id = ANY($1)"
        ))
        .bind::<diesel::sql_types::Array<SqlUuid>, _>(&ids)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        let alerts = alerts
            .into_iter()
            .map(alert)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(events
            .into_iter()
            .filter_map(|row| {
                let alert = alerts
                    .iter()
                    .find(|alert| alert.id == row.alert_id)?
                    .clone();
                Some(Delivery {
                    event: event(row),
                    alert,
                })
            })
            .collect())
    }

    async fn delivered(&self, event: Uuid) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::sql_query(
            "UPDATE workspace_usage_alert_events SET status = 'delivered', delivered_at = now(), \
               last_error = NULL WHERE id = $1",
        )
        .bind::<SqlUuid, _>(event)
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn attempt_failed(
        &self,
        event: Uuid,
        error: &str,
        retry_in_seconds: Option<i64>,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::sql_query(
            "UPDATE workspace_usage_alert_events SET last_error = $2, \
               status = CASE WHEN $3::bigint IS NULL THEN 'failed' ELSE 'pending' END, \
               next_attempt_at = now() + make_interval(secs => coalesce($3, 0)::double precision) \
             WHERE id = $1",
        )
        .bind::<SqlUuid, _>(event)
        .bind::<Text, _>(error)
        .bind::<Nullable<BigInt>, _>(retry_in_seconds)
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(())
    }
}
