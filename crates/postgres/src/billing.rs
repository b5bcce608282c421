//! Subscriptions, usage counted from the source tables (indexed range scans of the
//! period), and the billing history.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{Page, PageRequest, StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::billing::{BillingEvent, BillingRepository, Subscription, Usage};
use fluxolab_workspace::quota::{QuotaSource, QuotaStatus};
use fluxolab_workspace::{PlanCode, PlanLimits};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::DbPool;
use crate::error::storage;
use crate::pool::pooled;
use crate::unit_of_work::connection_of;

/// Billing over the pool.
#[derive(Clone)]
pub struct PgBilling {
    pool: DbPool,
}

impl std::fmt::Debug for PgBilling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBilling").finish_non_exhaustive()
    }
}

impl PgBilling {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }
}

fn corrupt(what: &str) -> StorageError {
    storage(std::io::Error::other(format!("stored {what} is not valid")))
}

#[derive(QueryableByName)]
struct SubscriptionRow {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Jsonb)]
    limits: Value,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Timestamptz)]
    current_period_start: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    current_period_end: OffsetDateTime,
}

const SUBSCRIPTION: &str = "SELECT p.code, p.limits, s.status, s.current_period_start, s.current_period_end \
    FROM subscriptions s JOIN plans p ON p.id = s.plan_id WHERE s.workspace_id = $1";

fn subscription(row: SubscriptionRow) -> Result<Subscription, StorageError> {
    Ok(Subscription {
        plan: row.code.parse().map_err(|_| corrupt("plan code"))?,
        limits: serde_json::from_value::<PlanLimits>(row.limits).map_err(storage)?,
        status: row.status,
        current_period_start: row.current_period_start,
        current_period_end: row.current_period_end,
    })
}

#[derive(QueryableByName)]
struct UsageRow {
    #[diesel(sql_type = BigInt)]
    members: i64,
    #[diesel(sql_type = BigInt)]
    workflows: i64,
    #[diesel(sql_type = BigInt)]
    active_workflows: i64,
    #[diesel(sql_type = BigInt)]
    credentials: i64,
    #[diesel(sql_type = Jsonb)]
    executions: Value,
    #[diesel(sql_type = Jsonb)]
    webhook_events: Value,
}

/// Every counter in one statement; the period's executions and events are range scans
/// of their `(workspace_id, created_at / received_at)` indexes.
const USAGE: &str = "SELECT \
    (SELECT count(*) FROM workspace_members WHERE workspace_id = $1) AS members, \
    (SELECT count(*) FROM workflows WHERE workspace_id = $1 AND archived_at IS NULL) AS workflows, \
    (SELECT count(*) FROM workflows WHERE workspace_id = $1 AND archived_at IS NULL AND active_version IS NOT NULL) AS active_workflows, \
    (SELECT count(*) FROM credentials c WHERE c.workspace_id = $1 \
       AND NOT EXISTS (SELECT 1 FROM webhook_registrations r WHERE r.signing_credential_id = c.id)) AS credentials, \
    (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb) FROM \
       (SELECT status, count(*) AS n FROM executions WHERE workspace_id = $1 AND created_at >= $2 GROUP BY status) e) AS executions, \
    (SELECT coalesce(jsonb_object_agg(verdict, n), '{}'::jsonb) FROM \
       (SELECT verdict, count(*) AS n FROM webhook_events WHERE workspace_id = $1 AND received_at >= $2 GROUP BY verdict) w) AS webhook_events";

fn counts(value: &Value) -> BTreeMap<String, u32> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, count)| {
            let count = count.as_u64().unwrap_or_default();
            (key.clone(), u32::try_from(count).unwrap_or(u32::MAX))
        })
        .collect()
}

async fn usage_on(
    connection: &mut AsyncPgConnection,
    workspace: WorkspaceId,
    period_start: OffsetDateTime,
) -> Result<Usage, StorageError> {
    let row: UsageRow = diesel::sql_query(USAGE)
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<Timestamptz, _>(period_start)
        .get_result(connection)
        .await
        .map_err(storage)?;
    let small = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    Ok(Usage {
        members: small(row.members),
        workflows: small(row.workflows),
        active_workflows: small(row.active_workflows),
        credentials: small(row.credentials),
        executions: counts(&row.executions),
        webhook_events: counts(&row.webhook_events),
    })
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    from_plan: Option<String>,
    #[diesel(sql_type = Text)]
    to_plan: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    actor_user_id: Option<Uuid>,
    #[diesel(sql_type = Timestamptz)]
    period_start: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    period_end: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
}

fn billing_event(row: EventRow) -> Result<BillingEvent, StorageError> {
    let plan = |code: &str| code.parse::<PlanCode>().map_err(|_| corrupt("plan code"));
    Ok(BillingEvent {
        id: row.id,
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        kind: row.kind,
        from_plan: row.from_plan.as_deref().map(plan).transpose()?,
        to_plan: plan(&row.to_plan)?,
        actor_user_id: row.actor_user_id.map(UserId::from_uuid),
        period_start: row.period_start,
        period_end: row.period_end,
        created_at: row.created_at,
    })
}

#[async_trait]
impl BillingRepository for PgBilling {
    async fn subscription(&self, workspace: WorkspaceId) -> Result<Subscription, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: SubscriptionRow = diesel::sql_query(SUBSCRIPTION)
            .bind::<SqlUuid, _>(workspace.as_uuid())
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        subscription(row)
    }

    async fn lock_subscription(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
    ) -> Result<Subscription, StorageError> {
        let row: SubscriptionRow = diesel::sql_query(format!("{SUBSCRIPTION} FOR UPDATE OF s"))
            .bind::<SqlUuid, _>(workspace.as_uuid())
            .get_result(connection_of(unit)?)
            .await
            .map_err(storage)?;
        subscription(row)
    }

    async fn usage(
        &self,
        workspace: WorkspaceId,
        period_start: OffsetDateTime,
    ) -> Result<Usage, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        usage_on(&mut connection, workspace, period_start).await
    }

    async fn usage_in(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        period_start: OffsetDateTime,
    ) -> Result<Usage, StorageError> {
        usage_on(connection_of(unit)?, workspace, period_start).await
    }

    async fn set_plan(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        plan: PlanCode,
    ) -> Result<(), StorageError> {
        diesel::sql_query(
            "UPDATE subscriptions SET plan_id = (SELECT id FROM plans WHERE code = $2), updated_at = now() \
             WHERE workspace_id = $1",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<Text, _>(plan.code())
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn record(&self, unit: &mut Uow, event: &BillingEvent) -> Result<(), StorageError> {
        diesel::sql_query(
            "INSERT INTO billing_events (id, workspace_id, kind, from_plan, to_plan, actor_user_id, period_start, period_end, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind::<SqlUuid, _>(event.id)
        .bind::<SqlUuid, _>(event.workspace_id.as_uuid())
        .bind::<Text, _>(&event.kind)
        .bind::<Nullable<Text>, _>(event.from_plan.map(PlanCode::code))
        .bind::<Text, _>(event.to_plan.code())
        .bind::<Nullable<SqlUuid>, _>(event.actor_user_id.map(|user| user.as_uuid()))
        .bind::<Timestamptz, _>(event.period_start)
        .bind::<Timestamptz, _>(event.period_end)
        .bind::<Timestamptz, _>(event.created_at)
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn history(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<BillingEvent>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let after = page.after();
        let rows: Vec<EventRow> = diesel::sql_query(
            "SELECT id, workspace_id, kind, from_plan, to_plan, actor_user_id, period_start, period_end, created_at \
             FROM billing_events WHERE workspace_id = $1 \
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<Nullable<Timestamptz>, _>(after.as_ref().map(|cursor| cursor.created_at))
        .bind::<SqlUuid, _>(after.as_ref().map_or(Uuid::nil(), |cursor| cursor.id))
        .bind::<BigInt, _>(page.fetch_limit())
        .load(&mut connection)
        .await
        .map_err(storage)?;
        let items = rows
            .into_iter()
            .map(billing_event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(items, page, BillingEvent::cursor))
    }
}

#[derive(QueryableByName)]
struct QuotaRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    executions_limit: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    events_limit: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    current_period_end: OffsetDateTime,
    #[diesel(sql_type = BigInt)]
    used: i64,
}

#[async_trait]
impl QuotaSource for PgBilling {
    async fn status(&self, workspace: WorkspaceId) -> Result<QuotaStatus, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: QuotaRow = diesel::sql_query(
            "SELECT (p.limits ->> 'executions_per_month')::bigint AS executions_limit, \
               (p.limits ->> 'webhook_events_per_minute')::bigint AS events_limit, \
               s.current_period_end, \
               (SELECT count(*) FROM executions e \
                 WHERE e.workspace_id = $1 AND e.created_at >= s.current_period_start) AS used \
             FROM subscriptions s JOIN plans p ON p.id = s.plan_id WHERE s.workspace_id = $1",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .get_result(&mut connection)
        .await
        .map_err(storage)?;
        let small = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        Ok(QuotaStatus {
            executions_per_month: row.executions_limit.map(small),
            executions_used: small(row.used),
            period_end: row.current_period_end,
            webhook_events_per_minute: row.events_limit.map(small),
        })
    }
}
