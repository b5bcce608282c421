//! Usage alerts and their events; each firing is delivered through the outbox, written
//! in the statement that records it.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{CredentialId, Page, PageRequest, StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::alerts::{
    AlertChannel, AlertEvent, AlertEventId, AlertId, AlertRepository, Delivery, UsageAlert,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{credentials, workspace_usage_alert_events, workspace_usage_alerts};
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// Usage alerts over the pool.
    PgAlerts
);

type AlertRow = (
    Uuid,
    Uuid,
    String,
    i32,
    String,
    String,
    Option<Uuid>,
    bool,
    OffsetDateTime,
    OffsetDateTime,
    Option<Uuid>,
    Option<OffsetDateTime>,
);

/// The columns of an [`AlertRow`].
macro_rules! alert_columns {
    () => {
        (
            workspace_usage_alerts::id,
            workspace_usage_alerts::workspace_id,
            workspace_usage_alerts::metric,
            workspace_usage_alerts::threshold_percent,
            workspace_usage_alerts::channel,
            workspace_usage_alerts::target,
            workspace_usage_alerts::secret_credential_id,
            workspace_usage_alerts::enabled,
            workspace_usage_alerts::created_at,
            workspace_usage_alerts::updated_at,
            workspace_usage_alerts::previous_secret_credential_id,
            workspace_usage_alerts::previous_secret_expires_at,
        )
    };
}

fn alert(row: AlertRow) -> Result<UsageAlert, StorageError> {
    let (
        id,
        workspace_id,
        metric,
        threshold_percent,
        channel,
        target,
        secret_credential_id,
        enabled,
        created_at,
        updated_at,
        previous_secret,
        previous_secret_expires_at,
    ) = row;
    Ok(UsageAlert {
        id: AlertId::from_uuid(id),
        workspace_id: WorkspaceId::from_uuid(workspace_id),
        metric,
        threshold_percent,
        channel: AlertChannel::from_code(&channel)
            .ok_or_else(|| corrupt("stored alert channel is not valid"))?,
        target,
        secret_credential_id: secret_credential_id.map(CredentialId::from_uuid),
        previous_secret: previous_secret
            .map(CredentialId::from_uuid)
            .zip(previous_secret_expires_at),
        enabled,
        created_at,
        updated_at,
    })
}

/// An event row.
#[derive(Queryable)]
struct EventRow {
    id: Uuid,
    alert_id: Uuid,
    workspace_id: Uuid,
    period_start: OffsetDateTime,
    threshold_percent: i32,
    used: i64,
    limit_value: i64,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    delivered_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

/// The columns of an [`EventRow`], in its field order.
macro_rules! event_columns {
    () => {
        (
            workspace_usage_alert_events::id,
            workspace_usage_alert_events::alert_id,
            workspace_usage_alert_events::workspace_id,
            workspace_usage_alert_events::period_start,
            workspace_usage_alert_events::threshold_percent,
            workspace_usage_alert_events::used,
            workspace_usage_alert_events::limit_value,
            workspace_usage_alert_events::status,
            workspace_usage_alert_events::attempts,
            workspace_usage_alert_events::last_error,
            workspace_usage_alert_events::delivered_at,
            workspace_usage_alert_events::created_at,
        )
    };
}

fn event(row: EventRow) -> AlertEvent {
    AlertEvent {
        id: AlertEventId::from_uuid(row.id),
        alert_id: AlertId::from_uuid(row.alert_id),
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

/// Fires every enabled alert whose threshold the current period's usage reached, each
/// firing with its outbox message, and counts the firings.
// Raw: per-metric CASE subqueries (one over a view) feeding INSERT … SELECT … ON CONFLICT.
const EVALUATE: &str = concat!(
    "\
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
), fired AS ( \
  INSERT INTO workspace_usage_alert_events (id, alert_id, workspace_id, period_start, threshold_percent, used, limit_value) \
  SELECT gen_random_uuid(), alert_id, workspace_id, current_period_start, threshold_percent, used, limit_value \
  FROM measured WHERE limit_value > 0 AND used * 100 >= limit_value * threshold_percent \
  ON CONFLICT ON CONSTRAINT workspace_usage_alert_events_once DO NOTHING \
  RETURNING id, alert_id, workspace_id, created_at \
), ",
    crate::outbox::enqueue!(
        name: "alert",
        rows: "fired",
        destination: "'usage_alert:' || alert_id",
        kind: "usage_alert",
        payload: "jsonb_build_object('alert_event_id', id)",
        due: "now()",
        order: "created_at, id",
    ),
    " SELECT count(*) AS fired FROM fired"
);

#[derive(QueryableByName)]
struct Fired {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    fired: i64,
}

#[async_trait]
impl AlertRepository for PgAlerts {
    #[tracing::instrument(name = "db.alerts.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<UsageAlert>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::newest_first!(
            workspace_usage_alerts::table
                .filter(workspace_usage_alerts::workspace_id.eq(workspace.as_uuid()))
                .select(alert_columns!()),
            page,
            workspace_usage_alerts::created_at,
            workspace_usage_alerts::id
        );
        let rows: Vec<AlertRow> = query.load(&mut connection).await.map_err(storage)?;
        crate::keyset::page_of(rows, page, alert, UsageAlert::cursor)
    }

    #[tracing::instrument(name = "db.alerts.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: AlertId,
    ) -> Result<Option<UsageAlert>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<AlertRow> = workspace_usage_alerts::table
            .filter(workspace_usage_alerts::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_usage_alerts::id.eq(id.as_uuid()))
            .select(alert_columns!())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(alert).transpose()
    }

    #[tracing::instrument(name = "db.alerts.insert", level = "debug", skip_all)]
    async fn insert(
        &self,
        unit: &mut Uow,
        alert: &UsageAlert,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError> {
        diesel::insert_into(workspace_usage_alerts::table)
            .values((
                workspace_usage_alerts::id.eq(alert.id.as_uuid()),
                workspace_usage_alerts::workspace_id.eq(alert.workspace_id.as_uuid()),
                workspace_usage_alerts::metric.eq(&alert.metric),
                workspace_usage_alerts::threshold_percent.eq(alert.threshold_percent),
                workspace_usage_alerts::channel.eq(alert.channel.code()),
                workspace_usage_alerts::target.eq(&alert.target),
                workspace_usage_alerts::secret_credential_id
                    .eq(alert.secret_credential_id.map(|id| id.as_uuid())),
                workspace_usage_alerts::enabled.eq(alert.enabled),
                workspace_usage_alerts::created_by.eq(created_by.map(|user| user.as_uuid())),
                workspace_usage_alerts::created_at.eq(alert.created_at),
                workspace_usage_alerts::updated_at.eq(alert.created_at),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.alerts.update", level = "debug", skip_all)]
    async fn update(&self, unit: &mut Uow, alert: &UsageAlert) -> Result<(), StorageError> {
        diesel::update(
            workspace_usage_alerts::table
                .filter(workspace_usage_alerts::workspace_id.eq(alert.workspace_id.as_uuid()))
                .filter(workspace_usage_alerts::id.eq(alert.id.as_uuid())),
        )
        .set((
            workspace_usage_alerts::threshold_percent.eq(alert.threshold_percent),
            workspace_usage_alerts::target.eq(&alert.target),
            workspace_usage_alerts::enabled.eq(alert.enabled),
            workspace_usage_alerts::secret_credential_id
                .eq(alert.secret_credential_id.map(|id| id.as_uuid())),
            workspace_usage_alerts::previous_secret_credential_id
                .eq(alert.previous_secret.map(|(id, _)| id.as_uuid())),
            workspace_usage_alerts::previous_secret_expires_at
                .eq(alert.previous_secret.map(|(_, until)| until)),
            workspace_usage_alerts::updated_at.eq(alert.updated_at),
        ))
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.alerts.delete", level = "debug", skip_all)]
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: AlertId,
    ) -> Result<bool, StorageError> {
        let connection = connection_of(unit)?;
        let gone: Vec<(Option<Uuid>, Option<Uuid>)> = diesel::delete(
            workspace_usage_alerts::table
                .filter(workspace_usage_alerts::workspace_id.eq(workspace.as_uuid()))
                .filter(workspace_usage_alerts::id.eq(id.as_uuid())),
        )
        .returning((
            workspace_usage_alerts::secret_credential_id,
            workspace_usage_alerts::previous_secret_credential_id,
        ))
        .get_results(&mut *connection)
        .await
        .map_err(storage)?;
        // Its signing secrets go with it, in the same unit.
        let secrets: Vec<Uuid> = gone
            .iter()
            .flat_map(|(current, previous)| [*current, *previous])
            .flatten()
            .collect();
        if !secrets.is_empty() {
            diesel::delete(credentials::table.filter(credentials::id.eq_any(&secrets)))
                .execute(&mut *connection)
                .await
                .map_err(storage)?;
        }
        Ok(gone.len() == 1)
    }

    #[tracing::instrument(name = "db.alerts.events", level = "debug", skip_all)]
    async fn events(
        &self,
        workspace: WorkspaceId,
        alert: AlertId,
        page: PageRequest,
    ) -> Result<Page<AlertEvent>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::newest_first!(
            workspace_usage_alert_events::table
                .filter(workspace_usage_alert_events::workspace_id.eq(workspace.as_uuid()))
                .filter(workspace_usage_alert_events::alert_id.eq(alert.as_uuid()))
                .select(event_columns!()),
            page,
            workspace_usage_alert_events::created_at,
            workspace_usage_alert_events::id
        );
        let rows: Vec<EventRow> = query.load(&mut connection).await.map_err(storage)?;
        Ok(Page::from_rows(
            rows.into_iter().map(event).collect(),
            page,
            AlertEvent::cursor,
        ))
    }

    #[tracing::instrument(name = "db.alerts.evaluate", level = "debug", skip_all)]
    async fn evaluate(&self) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: see EVALUATE (CASE subqueries over a view into an INSERT … SELECT).
        let row: Fired = diesel::sql_query(EVALUATE)
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        Ok(u64::try_from(row.fired).unwrap_or_default())
    }

    #[tracing::instrument(name = "db.alerts.delivery", level = "debug", skip_all)]
    async fn delivery(&self, id: AlertEventId) -> Result<Option<Delivery>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let found: Option<(EventRow, AlertRow)> = workspace_usage_alert_events::table
            .inner_join(workspace_usage_alerts::table)
            .filter(workspace_usage_alert_events::id.eq(id.as_uuid()))
            .select((event_columns!(), alert_columns!()))
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        found
            .map(|(row, alert_row)| {
                Ok(Delivery {
                    event: event(row),
                    alert: alert(alert_row)?,
                })
            })
            .transpose()
    }

    #[tracing::instrument(name = "db.alerts.attempted", level = "debug", skip_all)]
    async fn attempted<'a>(
        &self,
        event: AlertEventId,
        error: Option<&'a str>,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row = workspace_usage_alert_events::table.find(event.as_uuid());
        let attempts =
            workspace_usage_alert_events::attempts.eq(workspace_usage_alert_events::attempts + 1);
        match error {
            None => {
                diesel::update(row)
                    .set((
                        attempts,
                        workspace_usage_alert_events::status.eq("delivered"),
                        workspace_usage_alert_events::delivered_at.eq(diesel::dsl::now),
                        workspace_usage_alert_events::last_error.eq(None::<String>),
                    ))
                    .execute(&mut connection)
                    .await
            }
            Some(error) => {
                diesel::update(row)
                    .set((attempts, workspace_usage_alert_events::last_error.eq(error)))
                    .execute(&mut connection)
                    .await
            }
        }
        .map_err(storage)?;
        Ok(())
    }
}
