//! Environments: found by name or id for the features that run in one (the kernel's
//! directory), and kept with their variables for the settings use cases.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{
    CredentialId, EnvironmentDirectory, EnvironmentId, EnvironmentLookup, EnvironmentRef,
    ExecutionId, StorageError, Uow, WorkflowId, WorkspaceId,
};
use fluxolab_workspace::environments::{
    Environment, EnvironmentRepository, LastFailure, StatusCounts, StoredValue, Variable,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{
    environment_variables, executions, workflow_deployments, workspace_environments,
};
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// Environments over the pool.
    PgEnvironments
);

#[derive(Queryable, Selectable)]
#[diesel(table_name = workspace_environments, check_for_backend(diesel::pg::Pg))]
struct EnvironmentRow {
    id: Uuid,
    workspace_id: Uuid,
    name: String,
    description: String,
    is_default: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

type VariableRow = (
    Uuid,
    String,
    Option<String>,
    Option<Uuid>,
    Option<serde_json::Value>,
    OffsetDateTime,
);

fn variable(
    (_, name, value, secret, reference, updated_at): VariableRow,
) -> Result<Variable, StorageError> {
    let value = match (value, secret, reference) {
        (Some(value), None, None) => StoredValue::Plain(value),
        (None, Some(credential), None) => StoredValue::Secret(CredentialId::from_uuid(credential)),
        (None, None, Some(reference)) => StoredValue::Reference(
            serde_json::from_value(reference)
                .map_err(|error| corrupt(format!("variable `{name}`: secret_ref {error}")))?,
        ),
        _ => {
            return Err(corrupt(format!(
                "variable `{name}` holds not exactly one of a value, a secret and a reference"
            )));
        }
    };
    Ok(Variable {
        name,
        value,
        updated_at,
    })
}

/// The environments of `rows` with their variables, read on `connection`.
async fn with_variables(
    connection: &mut AsyncPgConnection,
    rows: Vec<EnvironmentRow>,
) -> Result<Vec<Environment>, StorageError> {
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let variables: Vec<VariableRow> = environment_variables::table
        .filter(environment_variables::environment_id.eq_any(&ids))
        .order((
            environment_variables::environment_id,
            environment_variables::name,
        ))
        .select((
            environment_variables::environment_id,
            environment_variables::name,
            environment_variables::value,
            environment_variables::secret_credential_id,
            environment_variables::secret_ref,
            environment_variables::updated_at,
        ))
        .load(connection)
        .await
        .map_err(storage)?;
    rows.into_iter()
        .map(|row| {
            Ok(Environment {
                id: EnvironmentId::from_uuid(row.id),
                workspace_id: WorkspaceId::from_uuid(row.workspace_id),
                name: row.name,
                description: row.description,
                is_default: row.is_default,
                variables: variables
                    .iter()
                    .filter(|stored| stored.0 == row.id)
                    .cloned()
                    .map(variable)
                    .collect::<Result<_, _>>()?,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
        })
        .collect()
}

#[async_trait]
impl EnvironmentDirectory for PgEnvironments {
    #[tracing::instrument(name = "db.environments.resolve", level = "debug", skip_all)]
    async fn resolve<'a>(
        &self,
        workspace: WorkspaceId,
        reference: Option<&'a str>,
    ) -> Result<Option<EnvironmentRef>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let of_workspace = workspace_environments::table
            .filter(workspace_environments::workspace_id.eq(workspace.as_uuid()))
            .select((workspace_environments::id, workspace_environments::name));
        // Three statements rather than one boxed query: diesel keeps a prepared statement
        // per connection only for a query whose shape is known at compile time, and every
        // run started through the API resolves its environment.
        let found: Option<(Uuid, String)> = match EnvironmentLookup::of(reference) {
            EnvironmentLookup::Default => {
                of_workspace
                    .filter(workspace_environments::is_default)
                    .first(&mut connection)
                    .await
            }
            EnvironmentLookup::Id(id) => {
                of_workspace
                    .filter(workspace_environments::id.eq(id.as_uuid()))
                    .first(&mut connection)
                    .await
            }
            EnvironmentLookup::Name(name) => {
                of_workspace
                    .filter(workspace_environments::name.eq(name))
                    .first(&mut connection)
                    .await
            }
        }
        .optional()
        .map_err(storage)?;
        Ok(found.map(|(id, name)| EnvironmentRef {
            id: EnvironmentId::from_uuid(id),
            name,
        }))
    }
}

#[async_trait]
impl EnvironmentRepository for PgEnvironments {
    #[tracing::instrument(name = "db.environments.list", level = "debug", skip_all)]
    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Environment>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<EnvironmentRow> = workspace_environments::table
            .filter(workspace_environments::workspace_id.eq(workspace.as_uuid()))
            // Creation order (ids are time-ordered): development, staging, production.
            .order((
                workspace_environments::created_at,
                workspace_environments::id,
            ))
            .select(EnvironmentRow::as_select())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        with_variables(&mut connection, rows).await
    }

    #[tracing::instrument(name = "db.environments.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: EnvironmentId,
    ) -> Result<Option<Environment>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<EnvironmentRow> = workspace_environments::table
            .filter(workspace_environments::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_environments::id.eq(id.as_uuid()))
            .select(EnvironmentRow::as_select())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        Ok(with_variables(&mut connection, rows).await?.pop())
    }

    #[tracing::instrument(name = "db.environments.save", level = "debug", skip_all)]
    async fn save(&self, unit: &mut Uow, environment: &Environment) -> Result<(), StorageError> {
        let connection = connection_of(unit)?;
        let id = environment.id.as_uuid();
        let workspace = environment.workspace_id.as_uuid();
        diesel::update(
            workspace_environments::table
                .filter(workspace_environments::workspace_id.eq(workspace))
                .filter(workspace_environments::id.eq(id)),
        )
        .set((
            workspace_environments::name.eq(&environment.name),
            workspace_environments::description.eq(&environment.description),
            workspace_environments::updated_at.eq(environment.updated_at),
        ))
        .execute(connection)
        .await
        .map_err(storage)?;
        // The set is replaced whole: few rows, one transaction.
        diesel::delete(
            environment_variables::table.filter(environment_variables::environment_id.eq(id)),
        )
        .execute(connection)
        .await
        .map_err(storage)?;
        let rows: Vec<_> = environment
            .variables
            .iter()
            .map(|variable| {
                let (value, secret, reference) = match &variable.value {
                    StoredValue::Plain(value) => (Some(value.as_str()), None, None),
                    StoredValue::Secret(credential) => (None, Some(credential.as_uuid()), None),
                    StoredValue::Reference(reference) => {
                        (None, None, serde_json::to_value(reference).ok())
                    }
                };
                (
                    environment_variables::environment_id.eq(id),
                    environment_variables::workspace_id.eq(workspace),
                    environment_variables::name.eq(variable.name.as_str()),
                    environment_variables::value.eq(value),
                    environment_variables::secret_credential_id.eq(secret),
                    environment_variables::secret_ref.eq(reference),
                    environment_variables::updated_at.eq(variable.updated_at),
                )
            })
            .collect();
        if !rows.is_empty() {
            diesel::insert_into(environment_variables::table)
                .values(&rows)
                .execute(connection)
                .await
                .map_err(storage)?;
        }
        Ok(())
    }

    #[tracing::instrument(name = "db.environments.status", level = "debug", skip_all)]
    async fn status(
        &self,
        workspace: WorkspaceId,
        id: EnvironmentId,
        since: OffsetDateTime,
    ) -> Result<StatusCounts, StorageError> {
        let connection = pooled(&self.pool).await?;
        // Pipelined on one connection: one round trip for the three queries.
        let shared: &AsyncPgConnection = &connection;
        let active = workflow_deployments::table
            .filter(workflow_deployments::workspace_id.eq(workspace.as_uuid()))
            .filter(workflow_deployments::environment_id.eq(id.as_uuid()))
            .count()
            .get_result::<i64>(&mut { shared });
        let by_status = executions::table
            .filter(executions::workspace_id.eq(workspace.as_uuid()))
            .filter(executions::environment_id.eq(id.as_uuid()))
            .filter(executions::created_at.ge(since))
            .group_by(executions::status)
            .select((executions::status, diesel::dsl::count_star()))
            .load::<(String, i64)>(&mut { shared });
        let last_failure = executions::table
            .filter(executions::workspace_id.eq(workspace.as_uuid()))
            .filter(executions::environment_id.eq(id.as_uuid()))
            .filter(executions::status.eq("failed"))
            .order((executions::created_at.desc(), executions::id.desc()))
            .select((
                executions::id,
                executions::workflow_id,
                executions::error,
                executions::finished_at,
                executions::created_at,
            ))
            .first::<(
                Uuid,
                Uuid,
                Option<String>,
                Option<OffsetDateTime>,
                OffsetDateTime,
            )>(&mut { shared });
        let (active, by_status, last_failure) = tokio::join!(active, by_status, last_failure);
        let small = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        Ok(StatusCounts {
            active_workflows: small(active.map_err(storage)?),
            executions_by_status: by_status
                .map_err(storage)?
                .into_iter()
                .map(|(status, count)| (status, small(count)))
                .collect(),
            last_failure: last_failure.optional().map_err(storage)?.map(
                |(execution_id, workflow_id, error, finished_at, created_at)| LastFailure {
                    execution_id: ExecutionId::from_uuid(execution_id),
                    workflow_id: WorkflowId::from_uuid(workflow_id),
                    error,
                    at: finished_at.unwrap_or(created_at),
                },
            ),
        })
    }
}
