//! Subscriptions, usage counted from the source tables (indexed range scans of the
//! period), and the billing history.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{Page, PageRequest, StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::billing::{
    BillingEvent, BillingRepository, EnvironmentLine, SettingsSummary, Subscription, Usage,
    UsageMetric,
};
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
    crate::error::corrupt(format!("stored {what} is not valid"))
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
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
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
    #[diesel(sql_type = BigInt)]
    api_keys: i64,
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
    (SELECT count(DISTINCT workflow_id) FROM workflow_deployments WHERE workspace_id = $1) AS active_workflows, \
    (SELECT count(*) FROM user_credentials c WHERE c.workspace_id = $1) AS credentials, \
    (SELECT count(*) FROM workspace_api_keys k WHERE k.workspace_id = $1 AND k.revoked_at IS NULL \
       AND (k.expires_at IS NULL OR k.expires_at > now())) AS api_keys, \
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
    Ok(usage(&row))
}

fn usage(row: &UsageRow) -> Usage {
    let small = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    Usage {
        members: small(row.members),
        workflows: small(row.workflows),
        active_workflows: small(row.active_workflows),
        credentials: small(row.credentials),
        api_keys: small(row.api_keys),
        executions: counts(&row.executions),
        webhook_events: counts(&row.webhook_events),
    }
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

    async fn renew_periods(&self, now: OffsetDateTime) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let mut renewed = 0;
        // One month per pass; a subscription several periods behind takes several.
        for _ in 0..120 {
            let rows = diesel::sql_query(
                "WITH renewed AS ( \
                   UPDATE subscriptions s SET current_period_start = s.current_period_end, \
                     current_period_end = s.current_period_end + interval '1 month', updated_at = now() \
                   FROM plans p WHERE p.id = s.plan_id AND s.current_period_end <= $1 \
                   RETURNING s.workspace_id, p.code, s.current_period_start, s.current_period_end \
                 ) \
                 INSERT INTO billing_events (id, workspace_id, kind, from_plan, to_plan, period_start, period_end, created_at) \
                 SELECT gen_random_uuid(), workspace_id, 'period_renewed', code, code, \
                   current_period_start, current_period_end, $1 FROM renewed",
            )
            .bind::<Timestamptz, _>(now)
            .execute(&mut connection)
            .await
            .map_err(storage)?;
            if rows == 0 {
                break;
            }
            renewed += u64::try_from(rows).unwrap_or_default();
        }
        Ok(renewed)
    }

    async fn limits_of(&self, plan: PlanCode) -> Result<PlanLimits, StorageError> {
        #[derive(QueryableByName)]
        struct Limits {
            #[diesel(sql_type = Jsonb)]
            limits: Value,
        }
        let mut connection = pooled(&self.pool).await?;
        let row: Limits = diesel::sql_query("SELECT limits FROM plans WHERE code = $1")
            .bind::<Text, _>(plan.code())
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        serde_json::from_value(row.limits).map_err(storage)
    }

    async fn snapshot_through(&self, today: time::Date) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // From each workspace's latest snapshot day (refreshed) or its creation day,
        // through today: a run after downtime fills the days it missed.
        let written = diesel::sql_query(
            "INSERT INTO workspace_usage_snapshots (workspace_id, day, metrics) \
             SELECT w.id, d.day::date, jsonb_build_object( \
               'executions', (SELECT count(*) FROM executions e WHERE e.workspace_id = w.id \
                  AND e.created_at >= d.start AND e.created_at < d.start + interval '1 day'), \
               'executions_succeeded', (SELECT count(*) FROM executions e WHERE e.workspace_id = w.id \
                  AND e.created_at >= d.start AND e.created_at < d.start + interval '1 day' AND e.status = 'succeeded'), \
               'executions_failed', (SELECT count(*) FROM executions e WHERE e.workspace_id = w.id \
                  AND e.created_at >= d.start AND e.created_at < d.start + interval '1 day' AND e.status = 'failed'), \
               'webhook_events', (SELECT count(*) FROM webhook_events v WHERE v.workspace_id = w.id \
                  AND v.received_at >= d.start AND v.received_at < d.start + interval '1 day'), \
               'members', (SELECT count(*) FROM workspace_members m WHERE m.workspace_id = w.id), \
               'workflows', (SELECT count(*) FROM workflows f WHERE f.workspace_id = w.id AND f.archived_at IS NULL), \
               'active_workflows', (SELECT count(DISTINCT d.workflow_id) FROM workflow_deployments d \
                  WHERE d.workspace_id = w.id), \
               'credentials', (SELECT count(*) FROM user_credentials c WHERE c.workspace_id = w.id)) \
             FROM workspaces w \
             CROSS JOIN LATERAL generate_series( \
               coalesce((SELECT max(s.day) FROM workspace_usage_snapshots s WHERE s.workspace_id = w.id), \
                        (w.created_at AT TIME ZONE 'UTC')::date)::timestamp, \
               $1::timestamp, interval '1 day') AS g(day) \
             CROSS JOIN LATERAL (SELECT g.day, g.day AT TIME ZONE 'UTC' AS start) AS d \
             ON CONFLICT (workspace_id, day) DO UPDATE SET metrics = EXCLUDED.metrics, updated_at = now()",
        )
        .bind::<diesel::sql_types::Date, _>(today)
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(u64::try_from(written).unwrap_or_default())
    }

    async fn daily(
        &self,
        workspace: WorkspaceId,
        metric: UsageMetric,
        from: time::Date,
        to: time::Date,
    ) -> Result<Vec<(time::Date, i64)>, StorageError> {
        #[derive(QueryableByName)]
        struct Point {
            #[diesel(sql_type = diesel::sql_types::Date)]
            day: time::Date,
            #[diesel(sql_type = BigInt)]
            value: i64,
        }
        let mut connection = pooled(&self.pool).await?;
        let points: Vec<Point> = diesel::sql_query(
            "SELECT day, coalesce((metrics ->> $2)::bigint, 0) AS value FROM workspace_usage_snapshots \
             WHERE workspace_id = $1 AND day BETWEEN $3 AND $4 ORDER BY day",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<Text, _>(metric.code())
        .bind::<diesel::sql_types::Date, _>(from)
        .bind::<diesel::sql_types::Date, _>(to)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        Ok(points
            .into_iter()
            .map(|point| (point.day, point.value))
            .collect())
    }

    async fn summary(&self, workspace: WorkspaceId) -> Result<SettingsSummary, StorageError> {
        let connection = pooled(&self.pool).await?;
        // Pipelined on one connection: one round trip for the three queries.
        let shared: &AsyncPgConnection = &connection;
        let subscription_query = diesel::sql_query(SUBSCRIPTION)
            .bind::<SqlUuid, _>(workspace.as_uuid())
            .get_result::<SubscriptionRow>(&mut { shared });
        let environments = diesel::sql_query(
            "SELECT e.id, e.name, \
               (SELECT count(*) FROM environment_variables v WHERE v.environment_id = e.id) AS variables \
             FROM workspace_environments e WHERE e.workspace_id = $1 ORDER BY e.created_at, e.id",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .load::<EnvironmentRow>(&mut { shared });
        let webhooks = diesel::sql_query(
            "SELECT count(*) AS count FROM webhook_registrations WHERE workspace_id = $1",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .get_result::<CountRow>(&mut { shared });
        let usage_query = diesel::sql_query(USAGE.replace(
            "$2",
            "(SELECT current_period_start FROM subscriptions WHERE workspace_id = $1)",
        ))
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .get_result::<UsageRow>(&mut { shared });
        let (subscription_row, usage_row, environment_rows, webhook_count) =
            tokio::try_join!(subscription_query, usage_query, environments, webhooks)
                .map_err(storage)?;
        let subscription = subscription(subscription_row)?;
        let usage = usage(&usage_row);
        let small = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        Ok(SettingsSummary {
            subscription,
            usage,
            environments: environment_rows
                .into_iter()
                .map(|row| EnvironmentLine {
                    id: row.id,
                    name: row.name,
                    variables: small(row.variables),
                })
                .collect(),
            webhooks: small(webhook_count.count),
        })
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
struct EnvironmentRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    variables: i64,
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
               CASE WHEN p.limits ->> 'executions_per_month' IS NULL THEN 0 ELSE \
                 (SELECT count(*) FROM executions e \
                   WHERE e.workspace_id = $1 AND e.created_at >= s.current_period_start) END AS used \
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
