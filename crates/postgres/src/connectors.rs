//! Installed connectors: their rows (the normalised manifest), and which active
//! workflows use their actions.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{Page, PageRequest, StorageError, Uow, WorkspaceId};
use fluxolab_workflows::connectors::{
    Connector, ConnectorCatalog, ConnectorId, ConnectorRepository, ConnectorUse, manifest,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, is_unique_violation, storage};
use crate::pool::pooled;
use crate::schema::workspace_connectors;
use crate::unit_of_work::connection_of;

use workspace_connectors as connectors;

crate::repository::pg_repository!(
    /// Connectors over the pool: the repository of their use cases and the catalogue
    /// validation and the engine read.
    PgConnectors
);

#[derive(Queryable, Selectable)]
#[diesel(table_name = workspace_connectors, check_for_backend(diesel::pg::Pg))]
struct ConnectorRow {
    id: Uuid,
    workspace_id: Uuid,
    manifest: Value,
    enabled: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn connector(row: &ConnectorRow) -> Result<Connector, StorageError> {
    let manifest = manifest::parse(&row.manifest, "")
        .map_err(|errors| corrupt(format!("connector {}: manifest {errors}", row.id)))?;
    Ok(Connector {
        id: ConnectorId::from_uuid(row.id),
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        manifest,
        enabled: row.enabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// A row of the active workflows' connector nodes.
#[derive(QueryableByName)]
struct UseRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    workflow: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    node_type: String,
}

#[async_trait]
impl ConnectorRepository for PgConnectors {
    #[tracing::instrument(name = "db.connectors.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Connector>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::oldest_first!(
            connectors::table
                .filter(connectors::workspace_id.eq(workspace.as_uuid()))
                .select(ConnectorRow::as_select()),
            page,
            connectors::created_at,
            connectors::id
        );
        let rows: Vec<ConnectorRow> = query.load(&mut connection).await.map_err(storage)?;
        crate::keyset::page_of(rows, page, |row| connector(&row), Connector::cursor)
    }

    #[tracing::instrument(name = "db.connectors.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: ConnectorId,
    ) -> Result<Option<Connector>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<ConnectorRow> = connectors::table
            .filter(connectors::workspace_id.eq(workspace.as_uuid()))
            .filter(connectors::id.eq(id.as_uuid()))
            .select(ConnectorRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.as_ref().map(connector).transpose()
    }

    #[tracing::instrument(name = "db.connectors.insert", level = "debug", skip_all)]
    async fn insert(&self, unit: &mut Uow, connector: &Connector) -> Result<bool, StorageError> {
        let outcome = diesel::insert_into(connectors::table)
            .values((
                connectors::id.eq(connector.id.as_uuid()),
                connectors::workspace_id.eq(connector.workspace_id.as_uuid()),
                connectors::name.eq(connector.name()),
                connectors::version.eq(connector.manifest.version.to_string()),
                connectors::manifest.eq(connector.manifest.to_json()),
                connectors::enabled.eq(connector.enabled),
                connectors::created_at.eq(connector.created_at),
                connectors::updated_at.eq(connector.updated_at),
            ))
            .execute(connection_of(unit)?)
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error) if is_unique_violation(&error, "workspace_connectors_name_key") => Ok(false),
            Err(error) => Err(storage(error)),
        }
    }

    #[tracing::instrument(name = "db.connectors.update", level = "debug", skip_all)]
    async fn update(&self, unit: &mut Uow, connector: &Connector) -> Result<(), StorageError> {
        diesel::update(
            connectors::table
                .filter(connectors::workspace_id.eq(connector.workspace_id.as_uuid()))
                .filter(connectors::id.eq(connector.id.as_uuid())),
        )
        .set((
            connectors::version.eq(connector.manifest.version.to_string()),
            connectors::manifest.eq(connector.manifest.to_json()),
            connectors::enabled.eq(connector.enabled),
            connectors::updated_at.eq(connector.updated_at),
        ))
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.connectors.delete", level = "debug", skip_all)]
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: ConnectorId,
    ) -> Result<(), StorageError> {
        diesel::delete(
            connectors::table
                .filter(connectors::workspace_id.eq(workspace.as_uuid()))
                .filter(connectors::id.eq(id.as_uuid())),
        )
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.connectors.uses", level = "debug", skip_all)]
    async fn uses<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Vec<ConnectorUse>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: the builder has no `jsonb_array_elements`. Every environment counts.
        let rows: Vec<UseRow> = diesel::sql_query(
            "SELECT DISTINCT w.name AS workflow, node ->> 'type' AS node_type \
             FROM workflow_deployments d \
             JOIN workflows w ON w.id = d.workflow_id \
             JOIN workflow_versions v ON v.workflow_id = d.workflow_id AND v.version = d.version \
             CROSS JOIN LATERAL jsonb_array_elements(v.definition -> 'nodes') AS node \
             WHERE d.workspace_id = $1 AND w.archived_at IS NULL \
               AND starts_with(node ->> 'type', 'connector.' || $2 || '.') \
             ORDER BY 1, 2",
        )
        .bind::<diesel::sql_types::Uuid, _>(workspace.as_uuid())
        .bind::<diesel::sql_types::Text, _>(name)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|row| ConnectorUse {
                workflow: row.workflow,
                node_type: row.node_type,
            })
            .collect())
    }
}

#[async_trait]
impl ConnectorCatalog for PgConnectors {
    #[tracing::instrument(name = "db.connectors.installed", level = "debug", skip_all)]
    async fn installed(&self, workspace: WorkspaceId) -> Result<Vec<Connector>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<ConnectorRow> = connectors::table
            .filter(connectors::workspace_id.eq(workspace.as_uuid()))
            .order(connectors::name)
            .select(ConnectorRow::as_select())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        rows.iter().map(connector).collect()
    }

    #[tracing::instrument(name = "db.connectors.named", level = "debug", skip_all)]
    async fn named<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Option<Connector>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<ConnectorRow> = connectors::table
            .filter(connectors::workspace_id.eq(workspace.as_uuid()))
            .filter(connectors::name.eq(name))
            .select(ConnectorRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.as_ref().map(connector).transpose()
    }
}
