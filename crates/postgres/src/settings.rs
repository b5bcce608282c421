//! Workspace settings: the columns the database itself reads (`allow_internal_network`
//! for the network guard) and one JSON document for the rest.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{CredentialId, StorageError, Uow, WorkspaceId};
use fluxolab_workspace::settings::{SettingsDocument, SettingsRepository, WorkspaceSettings};
use time::OffsetDateTime;

use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::workspace_settings;
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// Workspace settings over the pool.
    PgSettings
);

#[derive(Queryable, Selectable)]
#[diesel(table_name = workspace_settings, check_for_backend(diesel::pg::Pg))]
struct SettingsRow {
    timezone: String,
    locale: String,
    allow_internal_network: bool,
    settings: serde_json::Value,
    failure_webhook_secret_id: Option<uuid::Uuid>,
    failure_webhook_previous_secret_id: Option<uuid::Uuid>,
    failure_webhook_previous_secret_expires_at: Option<OffsetDateTime>,
    updated_at: OffsetDateTime,
}

fn settings_of(row: SettingsRow) -> Result<WorkspaceSettings, StorageError> {
    let document: SettingsDocument = serde_json::from_value(row.settings)
        .map_err(|error| corrupt(format!("workspace_settings.settings: {error}")))?;
    Ok(WorkspaceSettings {
        timezone: row.timezone,
        locale: row.locale,
        allow_internal_network: row.allow_internal_network,
        document,
        failure_webhook_secret: row.failure_webhook_secret_id.map(CredentialId::from_uuid),
        failure_webhook_previous_secret: row
            .failure_webhook_previous_secret_id
            .map(CredentialId::from_uuid)
            .zip(row.failure_webhook_previous_secret_expires_at),
        updated_at: row.updated_at,
    })
}

#[async_trait]
impl SettingsRepository for PgSettings {
    #[tracing::instrument(name = "db.settings.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<WorkspaceSettings>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<SettingsRow> = workspace_settings::table
            .find(workspace.as_uuid())
            .select(SettingsRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(settings_of).transpose()
    }

    #[tracing::instrument(name = "db.settings.lock", level = "debug", skip_all)]
    async fn lock(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
    ) -> Result<Option<WorkspaceSettings>, StorageError> {
        let connection = connection_of(unit)?;
        let row: Option<SettingsRow> = workspace_settings::table
            .find(workspace.as_uuid())
            .select(SettingsRow::as_select())
            .for_update()
            .first(connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(settings_of).transpose()
    }

    #[tracing::instrument(name = "db.settings.save", level = "debug", skip_all)]
    async fn save(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        settings: &WorkspaceSettings,
    ) -> Result<(), StorageError> {
        let connection = connection_of(unit)?;
        let document = serde_json::to_value(&settings.document)
            .map_err(|error| corrupt(format!("settings document: {error}")))?;
        diesel::update(workspace_settings::table.find(workspace.as_uuid()))
            .set((
                workspace_settings::timezone.eq(&settings.timezone),
                workspace_settings::locale.eq(&settings.locale),
                workspace_settings::allow_internal_network.eq(settings.allow_internal_network),
                workspace_settings::settings.eq(document),
                workspace_settings::failure_webhook_secret_id
                    .eq(settings.failure_webhook_secret.map(|id| id.as_uuid())),
                workspace_settings::failure_webhook_previous_secret_id.eq(settings
                    .failure_webhook_previous_secret
                    .map(|(id, _)| id.as_uuid())),
                workspace_settings::failure_webhook_previous_secret_expires_at.eq(settings
                    .failure_webhook_previous_secret
                    .map(|(_, until)| until)),
                workspace_settings::updated_at.eq(settings.updated_at),
            ))
            .execute(connection)
            .await
            .map_err(storage)?;
        Ok(())
    }
}
