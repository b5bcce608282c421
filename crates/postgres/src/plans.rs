//! Plan limits checked where they bite ([`PlanGuard`]), inside the caller's transaction.

use async_trait::async_trait;
use diesel::sql_types::{BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{
    LimitedResource, PlanGuard, PlanLimitReached, StorageError, Uow, WorkspaceId,
};

use crate::error::storage;
use crate::unit_of_work::connection_of;

/// Plan limits over the caller's unit of work.
#[derive(Clone, Copy, Debug, Default)]
pub struct PgPlanGuard;

#[derive(QueryableByName)]
struct Limit {
    #[diesel(sql_type = Nullable<BigInt>)]
    value: Option<i64>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many of `resource` the workspace `$1` has now.
pub(crate) const fn count_sql(resource: LimitedResource) -> &'static str {
    match resource {
        LimitedResource::Members => {
            "SELECT count(*) AS count FROM workspace_members WHERE workspace_id = $1"
        }
        LimitedResource::Workflows => {
            "SELECT count(*) AS count FROM workflows WHERE workspace_id = $1 AND archived_at IS NULL"
        }
        LimitedResource::ActiveWorkflows => {
            "SELECT count(DISTINCT workflow_id) AS count FROM workflow_deployments WHERE workspace_id = $1"
        }
        LimitedResource::ApiKeys => {
            "SELECT count(*) AS count FROM workspace_api_keys \
             WHERE workspace_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
        }
        // The `user_credentials` view leaves out secrets other features keep in the vault.
        LimitedResource::Credentials => {
            "SELECT count(*) AS count FROM user_credentials c WHERE c.workspace_id = $1"
        }
    }
}

#[async_trait]
impl PlanGuard for PgPlanGuard {
    #[tracing::instrument(name = "db.plans.admit", level = "debug", skip_all)]
    async fn admit(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        resource: LimitedResource,
    ) -> Result<Option<PlanLimitReached>, StorageError> {
        let connection = connection_of(unit)?;
        // Locking the subscription serialises checks (and plan changes) per workspace.
        // Raw: `FOR UPDATE OF s` (the builder cannot lock one side of a join) and a jsonb key cast.
        let limit: Option<Limit> = diesel::sql_query(
            "SELECT (p.limits ->> $2)::bigint AS value FROM subscriptions s \
             JOIN plans p ON p.id = s.plan_id WHERE s.workspace_id = $1 FOR UPDATE OF s",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<Text, _>(resource.limit_name())
        .get_result(&mut *connection)
        .await
        .optional()
        .map_err(storage)?;
        let Some(value) = limit.and_then(|limit| limit.value) else {
            return Ok(None);
        };
        // Raw: counts over the `user_credentials` view and `count(DISTINCT …)`, one per resource.
        let current: Count = diesel::sql_query(count_sql(resource))
            .bind::<SqlUuid, _>(workspace.as_uuid())
            .get_result(connection)
            .await
            .map_err(storage)?;
        let clamp = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        Ok((current.count >= value).then(|| PlanLimitReached {
            name: resource.limit_name(),
            value: clamp(value),
            current: clamp(current.count),
        }))
    }
}
