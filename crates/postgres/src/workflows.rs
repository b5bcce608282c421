//! Workflows and versions (the workflows domain's port), and which active workflows use
//! a credential (the vault's port).

use std::collections::HashMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_credentials::CredentialKind;
use fluxolab_credentials::ports::CredentialUsage;
use fluxolab_kernel::{
    CredentialId, EnvironmentId, EnvironmentRef, Page, PageRequest, StorageError, Uow, UserId,
    WorkflowId, WorkspaceId,
};
use fluxolab_workflows::Definition;
use fluxolab_workflows::model::{DeployedTrigger, Deployment, NewWorkflow, Version, Workflow};
use fluxolab_workflows::ports::{CredentialCatalog, WorkflowRepository};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::storage;
use crate::pool::pooled;
use crate::schema::{credentials, workflow_deployments, workflow_versions, workflows};
use crate::sql::Prepared;
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// Workflows over the pool.
    PgWorkflows
);

#[derive(QueryableByName)]
struct WorkflowRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Jsonb)]
    deployments: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Int4>)]
    latest_version: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<SqlUuid>)]
    error_workflow_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    archived_at: Option<OffsetDateTime>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    updated_at: OffsetDateTime,
}

/// One element of [`WORKFLOW_SELECT`]'s `deployments`.
#[derive(serde::Deserialize)]
struct DeploymentJson {
    environment_id: Uuid,
    environment: String,
    is_default: bool,
    version: i32,
    #[serde(with = "time::serde::rfc3339")]
    activated_at: OffsetDateTime,
}

impl TryFrom<WorkflowRow> for Workflow {
    type Error = StorageError;

    fn try_from(row: WorkflowRow) -> Result<Self, StorageError> {
        let deployments: Vec<DeploymentJson> =
            serde_json::from_value(row.deployments).map_err(storage)?;
        Ok(Workflow {
            id: WorkflowId::from_uuid(row.id),
            workspace_id: WorkspaceId::from_uuid(row.workspace_id),
            name: row.name,
            description: row.description,
            deployments: deployments
                .into_iter()
                .map(|deployment| Deployment {
                    environment: EnvironmentRef {
                        id: EnvironmentId::from_uuid(deployment.environment_id),
                        name: deployment.environment,
                    },
                    is_default: deployment.is_default,
                    version: deployment.version,
                    activated_at: deployment.activated_at,
                })
                .collect(),
            latest_version: row.latest_version,
            error_workflow_id: row.error_workflow_id.map(WorkflowId::from_uuid),
            archived_at: row.archived_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Workflows of a workspace with their deployments (oldest environment first) and
/// latest version number.
const WORKFLOW_SELECT: &str = "SELECT w.id, w.workspace_id, w.name, w.description, \
     (SELECT coalesce(jsonb_agg(jsonb_build_object('environment_id', e.id, 'environment', e.name, \
        'is_default', e.is_default, 'version', d.version, \
        'activated_at', to_char(d.activated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')) \
        ORDER BY e.created_at, e.id), '[]'::jsonb) \
      FROM workflow_deployments d JOIN workspace_environments e ON e.id = d.environment_id \
      WHERE d.workflow_id = w.id) AS deployments, \
     (SELECT max(v.version) FROM workflow_versions v WHERE v.workflow_id = w.id) AS latest_version, \
     w.error_workflow_id, w.archived_at, w.created_at, w.updated_at \
     FROM workflows w WHERE w.workspace_id = $1";

#[derive(Queryable, Selectable)]
#[diesel(table_name = workflow_versions, check_for_backend(diesel::pg::Pg))]
struct VersionRow {
    workflow_id: Uuid,
    version: i32,
    definition: serde_json::Value,
    checksum: String,
    created_at: OffsetDateTime,
}

fn version(row: VersionRow) -> Result<Version, StorageError> {
    Ok(Version {
        workflow_id: WorkflowId::from_uuid(row.workflow_id),
        version: row.version,
        definition: serde_json::from_value::<Definition>(row.definition).map_err(storage)?,
        checksum: row.checksum,
        created_at: row.created_at,
    })
}

#[async_trait]
impl WorkflowRepository for PgWorkflows {
    #[tracing::instrument(name = "db.workflows.insert", level = "debug", skip_all)]
    async fn insert(&self, uow: &mut Uow, workflow: &NewWorkflow) -> Result<(), StorageError> {
        diesel::insert_into(workflows::table)
            .values((
                workflows::id.eq(workflow.id.as_uuid()),
                workflows::workspace_id.eq(workflow.workspace_id.as_uuid()),
                workflows::name.eq(&workflow.name),
                workflows::description.eq(&workflow.description),
                workflows::created_by.eq(workflow.created_by.map(|id| id.as_uuid())),
            ))
            .execute(connection_of(uow)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.workflows.next_version", level = "debug", skip_all)]
    async fn next_version(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
    ) -> Result<i32, StorageError> {
        let connection = connection_of(uow)?;
        workflows::table
            .filter(workflows::id.eq(workflow.as_uuid()))
            .filter(workflows::workspace_id.eq(workspace.as_uuid()))
            .select(workflows::id)
            .for_update()
            .execute(&mut *connection)
            .await
            .map_err(storage)?;
        let latest: Option<i32> = workflow_versions::table
            .filter(workflow_versions::workflow_id.eq(workflow.as_uuid()))
            .select(diesel::dsl::max(workflow_versions::version))
            .first(connection)
            .await
            .map_err(storage)?;
        Ok(latest.unwrap_or(0) + 1)
    }

    #[tracing::instrument(name = "db.workflows.insert_version", level = "debug", skip_all)]
    async fn insert_version(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        version: &Version,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError> {
        let definition = serde_json::to_value(&version.definition).map_err(storage)?;
        diesel::insert_into(workflow_versions::table)
            .values((
                workflow_versions::workflow_id.eq(version.workflow_id.as_uuid()),
                workflow_versions::workspace_id.eq(workspace.as_uuid()),
                workflow_versions::version.eq(version.version),
                workflow_versions::definition.eq(&definition),
                workflow_versions::checksum.eq(&version.checksum),
                workflow_versions::created_by.eq(created_by.map(|id| id.as_uuid())),
            ))
            .execute(connection_of(uow)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.workflows.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: WorkflowId,
    ) -> Result<Option<Workflow>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: a jsonb_agg of the deployments in a scalar subquery (WORKFLOW_SELECT);
        // prepared once per connection, as every authenticated read of one runs it.
        let row: Option<WorkflowRow> = Prepared::new(format!("{WORKFLOW_SELECT} AND w.id = $2"))
            .bind::<SqlUuid, _>(workspace.as_uuid())
            .bind::<SqlUuid, _>(id.as_uuid())
            .get_result(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(Workflow::try_from).transpose()
    }

    #[tracing::instrument(name = "db.workflows.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Workflow>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let after = page.after();
        // Raw: a jsonb_agg of the deployments in a scalar subquery (WORKFLOW_SELECT);
        // prepared once per connection.
        let rows: Vec<WorkflowRow> = Prepared::new(format!(
            "{WORKFLOW_SELECT} AND ($2::timestamptz IS NULL OR (w.created_at, w.id) > ($3, $4)) \
             ORDER BY w.created_at, w.id LIMIT $5"
        ))
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>, _>(
            after.map(|cursor| cursor.created_at),
        )
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>, _>(
            after.map(|cursor| cursor.created_at),
        )
        .bind::<SqlUuid, _>(after.map_or(Uuid::nil(), |cursor| cursor.id))
        .bind::<diesel::sql_types::BigInt, _>(page.fetch_limit())
        .load(&mut connection)
        .await
        .map_err(storage)?;
        Ok(Page::from_rows(
            rows.into_iter()
                .map(Workflow::try_from)
                .collect::<Result<_, _>>()?,
            page,
            Workflow::cursor,
        ))
    }

    #[tracing::instrument(name = "db.workflows.update", level = "debug", skip_all)]
    async fn update(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
        name: &str,
        description: &str,
    ) -> Result<(), StorageError> {
        diesel::update(
            workflows::table
                .filter(workflows::id.eq(id.as_uuid()))
                .filter(workflows::workspace_id.eq(workspace.as_uuid())),
        )
        .set((
            workflows::name.eq(name),
            workflows::description.eq(description),
            workflows::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection_of(uow)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.workflows.set_error_workflow", level = "debug", skip_all)]
    async fn set_error_workflow(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
        error_workflow: Option<WorkflowId>,
    ) -> Result<(), StorageError> {
        diesel::update(
            workflows::table
                .filter(workflows::id.eq(id.as_uuid()))
                .filter(workflows::workspace_id.eq(workspace.as_uuid())),
        )
        .set((
            workflows::error_workflow_id.eq(error_workflow.map(|target| target.as_uuid())),
            workflows::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection_of(uow)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.workflows.archive", level = "debug", skip_all)]
    async fn archive(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
    ) -> Result<(), StorageError> {
        diesel::update(
            workflows::table
                .filter(workflows::id.eq(id.as_uuid()))
                .filter(workflows::workspace_id.eq(workspace.as_uuid())),
        )
        .set((
            workflows::archived_at.eq(diesel::dsl::now),
            workflows::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection_of(uow)?)
        .await
        .map_err(storage)?;
        diesel::delete(
            workflow_deployments::table
                .filter(workflow_deployments::workflow_id.eq(id.as_uuid()))
                .filter(workflow_deployments::workspace_id.eq(workspace.as_uuid())),
        )
        .execute(connection_of(uow)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.workflows.set_active", level = "debug", skip_all)]
    async fn set_active(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: WorkflowId,
        environment: EnvironmentId,
        version: Option<i32>,
        by: Option<UserId>,
    ) -> Result<(), StorageError> {
        let connection = connection_of(uow)?;
        match version {
            Some(version) => {
                diesel::insert_into(workflow_deployments::table)
                    .values((
                        workflow_deployments::workflow_id.eq(id.as_uuid()),
                        workflow_deployments::environment_id.eq(environment.as_uuid()),
                        workflow_deployments::workspace_id.eq(workspace.as_uuid()),
                        workflow_deployments::version.eq(version),
                        workflow_deployments::activated_by.eq(by.map(|user| user.as_uuid())),
                    ))
                    .on_conflict((
                        workflow_deployments::workflow_id,
                        workflow_deployments::environment_id,
                    ))
                    .do_update()
                    .set((
                        workflow_deployments::version.eq(version),
                        workflow_deployments::activated_by.eq(by.map(|user| user.as_uuid())),
                        workflow_deployments::activated_at.eq(diesel::dsl::now),
                    ))
                    .execute(connection)
                    .await
                    .map_err(storage)?;
            }
            None => {
                diesel::delete(
                    workflow_deployments::table
                        .filter(workflow_deployments::workflow_id.eq(id.as_uuid()))
                        .filter(workflow_deployments::environment_id.eq(environment.as_uuid()))
                        .filter(workflow_deployments::workspace_id.eq(workspace.as_uuid())),
                )
                .execute(connection)
                .await
                .map_err(storage)?;
            }
        }
        diesel::update(
            workflows::table
                .filter(workflows::id.eq(id.as_uuid()))
                .filter(workflows::workspace_id.eq(workspace.as_uuid())),
        )
        .set(workflows::updated_at.eq(diesel::dsl::now))
        .execute(connection)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.workflows.versions", level = "debug", skip_all)]
    async fn versions(
        &self,
        workspace: WorkspaceId,
        id: WorkflowId,
    ) -> Result<Vec<Version>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<VersionRow> = workflow_versions::table
            .filter(workflow_versions::workspace_id.eq(workspace.as_uuid()))
            .filter(workflow_versions::workflow_id.eq(id.as_uuid()))
            .order(workflow_versions::version.asc())
            .select(VersionRow::as_select())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        rows.into_iter().map(version).collect()
    }

    #[tracing::instrument(name = "db.workflows.version", level = "debug", skip_all)]
    async fn version(
        &self,
        workspace: WorkspaceId,
        id: WorkflowId,
        number: i32,
    ) -> Result<Option<Version>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<VersionRow> = workflow_versions::table
            .filter(workflow_versions::workspace_id.eq(workspace.as_uuid()))
            .filter(workflow_versions::workflow_id.eq(id.as_uuid()))
            .filter(workflow_versions::version.eq(number))
            .select(VersionRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(version).transpose()
    }

    #[tracing::instrument(name = "db.workflows.deployed_triggers", level = "debug", skip_all)]
    async fn deployed_triggers(
        &self,
        workspace: WorkspaceId,
        environment: EnvironmentId,
        trigger: &str,
    ) -> Result<Vec<DeployedTrigger>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        load_deployed_triggers(&mut connection, workspace, environment, trigger).await
    }

    #[tracing::instrument(
        name = "db.workflows.deployed_triggers_locked",
        level = "debug",
        skip_all
    )]
    async fn deployed_triggers_locked(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        environment: EnvironmentId,
        trigger: &str,
    ) -> Result<Vec<DeployedTrigger>, StorageError> {
        let connection = connection_of(uow)?;
        // Raw: a transaction-scoped advisory lock has no table. The key is the
        // workspace, environment and trigger type; a hash collision only serialises two
        // unrelated activations a little longer.
        diesel::sql_query(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2 || ':' || $3, 0))",
        )
        .bind::<Text, _>(workspace.as_uuid().to_string())
        .bind::<Text, _>(environment.as_uuid().to_string())
        .bind::<Text, _>(trigger)
        .execute(connection)
        .await
        .map_err(storage)?;
        load_deployed_triggers(connection, workspace, environment, trigger).await
    }
}

/// The deployed definitions' `trigger` nodes, read on `connection` (a pooled one or a
/// unit's).
async fn load_deployed_triggers(
    connection: &mut diesel_async::AsyncPgConnection,
    workspace: WorkspaceId,
    environment: EnvironmentId,
    trigger: &str,
) -> Result<Vec<DeployedTrigger>, StorageError> {
    // Raw: the nodes of each deployed definition, unnested from its jsonb.
    let rows: Vec<TriggerRow> = diesel::sql_query(
        "SELECT w.id, w.name, d.version, coalesce(n.node -> 'params', '{}'::jsonb) AS params \
         FROM workflow_deployments d \
         JOIN workflows w ON w.id = d.workflow_id \
         JOIN workflow_versions v ON v.workflow_id = d.workflow_id AND v.version = d.version \
         CROSS JOIN LATERAL jsonb_array_elements(v.definition -> 'nodes') AS n(node) \
         WHERE d.workspace_id = $1 AND d.environment_id = $2 AND w.archived_at IS NULL \
           AND n.node ->> 'type' = $3 \
         ORDER BY w.name, w.id",
    )
    .bind::<SqlUuid, _>(workspace.as_uuid())
    .bind::<SqlUuid, _>(environment.as_uuid())
    .bind::<Text, _>(trigger)
    .load(connection)
    .await
    .map_err(storage)?;
    Ok(rows
        .into_iter()
        .map(|row| DeployedTrigger {
            workflow_id: WorkflowId::from_uuid(row.id),
            workflow_name: row.name,
            version: row.version,
            params: row.params,
        })
        .collect())
}

#[derive(QueryableByName)]
struct TriggerRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Int4)]
    version: i32,
    #[diesel(sql_type = Jsonb)]
    params: serde_json::Value,
}

#[async_trait]
impl CredentialCatalog for PgWorkflows {
    #[tracing::instrument(name = "db.credential_catalog.kinds", level = "debug", skip_all)]
    async fn kinds(
        &self,
        workspace: WorkspaceId,
        ids: &[CredentialId],
    ) -> Result<HashMap<CredentialId, CredentialKind>, StorageError> {
        let ids: Vec<Uuid> = ids.iter().map(CredentialId::as_uuid).collect();
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<(Uuid, String)> = credentials::table
            .filter(credentials::workspace_id.eq(workspace.as_uuid()))
            .filter(credentials::id.eq_any(&ids))
            // Secrets other features own are not for nodes.
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "EXISTS (SELECT 1 FROM user_credentials u WHERE u.id = credentials.id)",
            ))
            .select((credentials::id, credentials::kind))
            .load(&mut connection)
            .await
            .map_err(storage)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, kind)| {
                CredentialKind::from_code(&kind).map(|kind| (CredentialId::from_uuid(id), kind))
            })
            .collect())
    }
}

#[derive(QueryableByName)]
struct UsingWorkflow {
    #[diesel(sql_type = Text)]
    name: String,
}

#[async_trait]
impl CredentialUsage for PgWorkflows {
    #[tracing::instrument(
        name = "db.credential_usage.active_workflows_using",
        level = "debug",
        skip_all
    )]
    async fn active_workflows_using(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        credential: CredentialId,
    ) -> Result<Vec<String>, StorageError> {
        let needle = serde_json::json!({"nodes": [{"credential_id": credential}]});
        // Raw: `FOR SHARE OF w` locks one table of a join, which the builder cannot say.
        let rows: Vec<UsingWorkflow> = diesel::sql_query(
            "SELECT w.name FROM workflows w \
             JOIN workflow_deployments d ON d.workflow_id = w.id \
             JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = d.version \
             WHERE w.workspace_id = $1 AND w.archived_at IS NULL AND v.definition @> $2 \
             ORDER BY w.name FOR SHARE OF w",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<Jsonb, _>(needle)
        .load(connection_of(uow)?)
        .await
        .map_err(storage)?;
        let mut names: Vec<String> = rows.into_iter().map(|row| row.name).collect();
        // Active in several environments: named once.
        names.dedup();
        Ok(names)
    }
}
