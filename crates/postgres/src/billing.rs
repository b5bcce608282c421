//! Subscriptions, usage counted from the source tables (indexed range scans of the
//! period), and the billing history.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{EnvironmentId, Page, PageRequest, StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::billing::{
    BillingEvent, BillingRepository, EnvironmentLine, SettingsSummary, Subscription, Usage,
    UsageMetric,
};
use fluxolab_workspace::quota::{QuotaSource, QuotaStatus};
use fluxolab_workspace::{PlanCode, PlanLimits};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::storage;
use crate::pool::pooled;
use crate::schema::{
    billing_events, environment_variables, plans, subscriptions, webhook_registrations,
    workspace_environments, workspace_usage_snapshots,
};
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// Billing over the pool.
    PgBilling
);

fn corrupt(what: &str) -> StorageError {
    crate::error::corrupt(format!("stored {what} is not valid"))
}

/// A subscription with its plan's code and limits, read by the query builder and by the
/// raw lock alike.
#[derive(Queryable, QueryableByName)]
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

/// The columns of a [`SubscriptionRow`], from the subscription joined to its plan.
macro_rules! subscription_columns {
    () => {
        (
            plans::code,
            plans::limits,
            subscriptions::status,
            subscriptions::current_period_start,
            subscriptions::current_period_end,
        )
    };
}

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
    #[diesel(sql_type = BigInt)]
    api_keys: i64,
    #[diesel(sql_type = Jsonb)]
    executions: Value,
    #[diesel(sql_type = Jsonb)]
    webhook_events: Value,
}

/// Every counter in one statement; the period's executions and events are range scans
/// of their `(workspace_id, created_at / received_at)` indexes.
// Raw: scalar subqueries (one over the `user_credentials` view) and jsonb_object_agg.
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
    // Raw: see USAGE (subqueries over a view and jsonb_object_agg, in one round trip).
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

#[derive(Queryable, Selectable)]
#[diesel(table_name = billing_events, check_for_backend(diesel::pg::Pg))]
struct EventRow {
    id: Uuid,
    workspace_id: Uuid,
    kind: String,
    from_plan: Option<String>,
    to_plan: String,
    actor_user_id: Option<Uuid>,
    period_start: OffsetDateTime,
    period_end: OffsetDateTime,
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
    #[tracing::instrument(name = "db.billing.subscription", level = "debug", skip_all)]
    async fn subscription(&self, workspace: WorkspaceId) -> Result<Subscription, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: SubscriptionRow = subscriptions::table
            .inner_join(plans::table)
            .filter(subscriptions::workspace_id.eq(workspace.as_uuid()))
            .select(subscription_columns!())
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        subscription(row)
    }

    #[tracing::instrument(name = "db.billing.lock_subscription", level = "debug", skip_all)]
    async fn lock_subscription(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
    ) -> Result<Subscription, StorageError> {
        // Raw: `FOR UPDATE OF s`, the subscription alone (not the plan every workspace shares).
        let row: SubscriptionRow = diesel::sql_query(
            "SELECT p.code, p.limits, s.status, s.current_period_start, s.current_period_end \
             FROM subscriptions s JOIN plans p ON p.id = s.plan_id WHERE s.workspace_id = $1 \
             FOR UPDATE OF s",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .get_result(connection_of(unit)?)
        .await
        .map_err(storage)?;
        subscription(row)
    }

    #[tracing::instrument(name = "db.billing.usage", level = "debug", skip_all)]
    async fn usage(
        &self,
        workspace: WorkspaceId,
        period_start: OffsetDateTime,
    ) -> Result<Usage, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        usage_on(&mut connection, workspace, period_start).await
    }

    #[tracing::instrument(name = "db.billing.usage_in", level = "debug", skip_all)]
    async fn usage_in(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        period_start: OffsetDateTime,
    ) -> Result<Usage, StorageError> {
        usage_on(connection_of(unit)?, workspace, period_start).await
    }

    #[tracing::instrument(name = "db.billing.set_plan", level = "debug", skip_all)]
    async fn set_plan(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        plan: PlanCode,
    ) -> Result<(), StorageError> {
        let plan_id = plans::table
            .filter(plans::code.eq(plan.code()))
            .select(plans::id)
            .single_value()
            .assume_not_null();
        diesel::update(subscriptions::table)
            .filter(subscriptions::workspace_id.eq(workspace.as_uuid()))
            .set((
                subscriptions::plan_id.eq(plan_id),
                subscriptions::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.billing.record", level = "debug", skip_all)]
    async fn record(&self, unit: &mut Uow, event: &BillingEvent) -> Result<(), StorageError> {
        diesel::insert_into(billing_events::table)
            .values((
                billing_events::id.eq(event.id),
                billing_events::workspace_id.eq(event.workspace_id.as_uuid()),
                billing_events::kind.eq(&event.kind),
                billing_events::from_plan.eq(event.from_plan.map(PlanCode::code)),
                billing_events::to_plan.eq(event.to_plan.code()),
                billing_events::actor_user_id.eq(event.actor_user_id.map(|user| user.as_uuid())),
                billing_events::period_start.eq(event.period_start),
                billing_events::period_end.eq(event.period_end),
                billing_events::created_at.eq(event.created_at),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.billing.renew_periods", level = "debug", skip_all)]
    async fn renew_periods(&self, now: OffsetDateTime) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let mut renewed = 0;
        // One month per pass; a subscription several periods behind takes several.
        for _ in 0..120 {
            // Raw: an UPDATE … FROM … RETURNING in a CTE feeding the history's INSERT … SELECT.
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

    #[tracing::instrument(name = "db.billing.limits_of", level = "debug", skip_all)]
    async fn limits_of(&self, plan: PlanCode) -> Result<PlanLimits, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let limits: Value = plans::table
            .filter(plans::code.eq(plan.code()))
            .select(plans::limits)
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        serde_json::from_value(limits).map_err(storage)
    }

    #[tracing::instrument(name = "db.billing.snapshot_through", level = "debug", skip_all)]
    async fn snapshot_through(&self, today: time::Date) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // From each workspace's latest snapshot day (refreshed) or its creation day,
        // through today: a run after downtime fills the days it missed. One process at a
        // time: a statement that finds the advisory lock taken (another worker process is
        // writing the same rows) writes nothing, so worker processes started together do
        // not all count the same executions. A day's executions are read once for
        // their three counts.
        // Raw: LATERAL generate_series, jsonb_build_object of subqueries and an upsert.
        let written = diesel::sql_query(
            "WITH turn AS (SELECT pg_try_advisory_xact_lock(hashtextextended('fluxolab.usage_snapshots', 0)) AS taken) \
             INSERT INTO workspace_usage_snapshots (workspace_id, day, metrics) \
             SELECT w.id, d.day::date, jsonb_build_object( \
               'executions', x.total, 'executions_succeeded', x.succeeded, \
               'executions_failed', x.failed, \
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
             CROSS JOIN LATERAL (SELECT count(*) AS total, \
                 count(*) FILTER (WHERE e.status = 'succeeded') AS succeeded, \
                 count(*) FILTER (WHERE e.status = 'failed') AS failed \
               FROM executions e WHERE e.workspace_id = w.id \
                 AND e.created_at >= d.start AND e.created_at < d.start + interval '1 day') AS x \
             WHERE (SELECT taken FROM turn) \
             ON CONFLICT (workspace_id, day) DO UPDATE SET metrics = EXCLUDED.metrics, updated_at = now()",
        )
        .bind::<diesel::sql_types::Date, _>(today)
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(u64::try_from(written).unwrap_or_default())
    }

    #[tracing::instrument(name = "db.billing.daily", level = "debug", skip_all)]
    async fn daily(
        &self,
        workspace: WorkspaceId,
        metric: UsageMetric,
        from: time::Date,
        to: time::Date,
    ) -> Result<Vec<(time::Date, i64)>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let points: Vec<(time::Date, Option<String>)> = workspace_usage_snapshots::table
            .filter(workspace_usage_snapshots::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_usage_snapshots::day.between(from, to))
            .select((
                workspace_usage_snapshots::day,
                workspace_usage_snapshots::metrics
                    .retrieve_as_text(metric.code())
                    .nullable(),
            ))
            .order(workspace_usage_snapshots::day)
            .load(&mut connection)
            .await
            .map_err(storage)?;
        points
            .into_iter()
            .map(|(day, value)| {
                // A missing metric counts zero; a stored one is a whole number.
                let value = value
                    .map(|text| text.parse::<i64>().map_err(|_| corrupt("usage snapshot")))
                    .transpose()?;
                Ok((day, value.unwrap_or_default()))
            })
            .collect()
    }

    #[tracing::instrument(name = "db.billing.summary", level = "debug", skip_all)]
    async fn summary(&self, workspace: WorkspaceId) -> Result<SettingsSummary, StorageError> {
        let connection = pooled(&self.pool).await?;
        // Pipelined on one connection: one round trip for the four queries.
        let shared: &AsyncPgConnection = &connection;
        let subscription_query = subscriptions::table
            .inner_join(plans::table)
            .filter(subscriptions::workspace_id.eq(workspace.as_uuid()))
            .select(subscription_columns!())
            .get_result::<SubscriptionRow>(&mut { shared });
        let variables = environment_variables::table
            .filter(environment_variables::environment_id.eq(workspace_environments::id))
            .count()
            .single_value()
            .assume_not_null();
        let environments = workspace_environments::table
            .filter(workspace_environments::workspace_id.eq(workspace.as_uuid()))
            .order((
                workspace_environments::created_at,
                workspace_environments::id,
            ))
            .select((
                workspace_environments::id,
                workspace_environments::name,
                variables,
            ))
            .load::<(Uuid, String, i64)>(&mut { shared });
        let webhooks = webhook_registrations::table
            .filter(webhook_registrations::workspace_id.eq(workspace.as_uuid()))
            .count()
            .get_result::<i64>(&mut { shared });
        // Raw: see USAGE, with the period's start looked up in the same statement.
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
                .map(|(id, name, variables)| EnvironmentLine {
                    id: EnvironmentId::from_uuid(id),
                    name,
                    variables: small(variables),
                })
                .collect(),
            webhooks: small(webhook_count),
        })
    }

    #[tracing::instrument(name = "db.billing.history", level = "debug", skip_all)]
    async fn history(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<BillingEvent>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::newest_first!(
            billing_events::table
                .filter(billing_events::workspace_id.eq(workspace.as_uuid()))
                .select(EventRow::as_select()),
            page,
            billing_events::created_at,
            billing_events::id
        );
        let rows: Vec<EventRow> = query.load(&mut connection).await.map_err(storage)?;
        crate::keyset::page_of(rows, page, billing_event, BillingEvent::cursor)
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
    #[tracing::instrument(name = "db.quotas.status", level = "debug", skip_all)]
    async fn status(&self, workspace: WorkspaceId) -> Result<QuotaStatus, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: limits cast out of the plan's jsonb and a count only when one is set.
        let row: QuotaRow = crate::sql::Prepared::new(
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
