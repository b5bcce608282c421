//! External secret providers: their rows (configuration, the vault entry of their
//! credentials) and what references them.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{CredentialId, StorageError, Uow, WorkspaceId};
use fluxolab_workspace::secret_providers::{
    ProviderConfig, ProviderRepository, SecretProvider, SecretProviderId,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{environment_variables, workspace_environments, workspace_secret_providers};
use crate::unit_of_work::connection_of;

use workspace_secret_providers as providers;

/// A row of `SELECT name …`.
#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

crate::repository::pg_repository!(
    /// Secret providers over the pool.
    PgSecretProviders
);

#[derive(Queryable, Selectable)]
#[diesel(table_name = workspace_secret_providers, check_for_backend(diesel::pg::Pg))]
struct ProviderRow {
    id: Uuid,
    workspace_id: Uuid,
    name: String,
    kind: String,
    config: Value,
    credentials_id: Uuid,
    enabled: bool,
    cache_ttl_seconds: i32,
    revision: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn provider(row: ProviderRow) -> Result<SecretProvider, StorageError> {
    let mut errors = fluxolab_kernel::ValidationErrors::new();
    let config = ProviderConfig::parse(&row.kind, &row.config, &mut errors)
        .ok_or_else(|| corrupt(format!("secret provider {}: config {errors}", row.id)))?;
    Ok(SecretProvider {
        id: SecretProviderId::from_uuid(row.id),
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        name: row.name,
        config,
        credentials: CredentialId::from_uuid(row.credentials_id),
        enabled: row.enabled,
        cache_ttl_seconds: u32::try_from(row.cache_ttl_seconds)
            .map_err(|_| corrupt("negative cache_ttl_seconds"))?,
        revision: row.revision,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn ttl(provider: &SecretProvider) -> i32 {
    i32::try_from(provider.cache_ttl_seconds).unwrap_or(i32::MAX)
}

#[async_trait]
impl ProviderRepository for PgSecretProviders {
    #[tracing::instrument(name = "db.secret_providers.list", level = "debug", skip_all)]
    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<SecretProvider>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<ProviderRow> = providers::table
            .filter(providers::workspace_id.eq(workspace.as_uuid()))
            .order((providers::created_at, providers::id))
            .select(ProviderRow::as_select())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        rows.into_iter().map(provider).collect()
    }

    #[tracing::instrument(name = "db.secret_providers.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: SecretProviderId,
    ) -> Result<Option<SecretProvider>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<ProviderRow> = providers::table
            .filter(providers::workspace_id.eq(workspace.as_uuid()))
            .filter(providers::id.eq(id.as_uuid()))
            .select(ProviderRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(provider).transpose()
    }

    #[tracing::instrument(name = "db.secret_providers.find_by_name", level = "debug", skip_all)]
    async fn find_by_name<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Option<SecretProvider>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<ProviderRow> = providers::table
            .filter(providers::workspace_id.eq(workspace.as_uuid()))
            .filter(providers::name.eq(name))
            .select(ProviderRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(provider).transpose()
    }

    #[tracing::instrument(name = "db.secret_providers.insert", level = "debug", skip_all)]
    async fn insert(&self, unit: &mut Uow, provider: &SecretProvider) -> Result<(), StorageError> {
        diesel::insert_into(providers::table)
            .values((
                providers::id.eq(provider.id.as_uuid()),
                providers::workspace_id.eq(provider.workspace_id.as_uuid()),
                providers::name.eq(&provider.name),
                providers::kind.eq(provider.config.kind()),
                providers::config.eq(provider.config.to_json()),
                providers::credentials_id.eq(provider.credentials.as_uuid()),
                providers::enabled.eq(provider.enabled),
                providers::cache_ttl_seconds.eq(ttl(provider)),
                providers::revision.eq(provider.revision),
                providers::created_at.eq(provider.created_at),
                providers::updated_at.eq(provider.updated_at),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.secret_providers.update", level = "debug", skip_all)]
    async fn update(&self, unit: &mut Uow, provider: &SecretProvider) -> Result<(), StorageError> {
        diesel::update(
            providers::table
                .filter(providers::workspace_id.eq(provider.workspace_id.as_uuid()))
                .filter(providers::id.eq(provider.id.as_uuid())),
        )
        .set((
            providers::name.eq(&provider.name),
            providers::config.eq(provider.config.to_json()),
            providers::credentials_id.eq(provider.credentials.as_uuid()),
            providers::enabled.eq(provider.enabled),
            providers::cache_ttl_seconds.eq(ttl(provider)),
            providers::revision.eq(provider.revision),
            providers::updated_at.eq(provider.updated_at),
        ))
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.secret_providers.delete", level = "debug", skip_all)]
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: SecretProviderId,
    ) -> Result<(), StorageError> {
        diesel::delete(
            providers::table
                .filter(providers::workspace_id.eq(workspace.as_uuid()))
                .filter(providers::id.eq(id.as_uuid())),
        )
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.secret_providers.referrers", level = "debug", skip_all)]
    async fn referrers<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Vec<String>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let variables: Vec<(String, String)> = environment_variables::table
            .inner_join(workspace_environments::table)
            .filter(environment_variables::workspace_id.eq(workspace.as_uuid()))
            .filter(
                environment_variables::secret_ref
                    .retrieve_as_text("provider")
                    .eq(name),
            )
            .order((workspace_environments::name, environment_variables::name))
            .select((workspace_environments::name, environment_variables::name))
            .load(&mut connection)
            .await
            .map_err(storage)?;
        // Raw: the credentials whose masked hints (`@provider:name`, see
        // `fluxolab_credentials::service::reference_hint`) name the provider; the builder
        // has no `jsonb_each_text`.
        let credentials: Vec<NameRow> = diesel::sql_query(
            "SELECT name FROM credentials WHERE workspace_id = $1 AND EXISTS \
             (SELECT 1 FROM jsonb_each_text(masked_hints) AS hint \
              WHERE starts_with(hint.value, '@' || $2 || ':')) ORDER BY name",
        )
        .bind::<diesel::sql_types::Uuid, _>(workspace.as_uuid())
        .bind::<diesel::sql_types::Text, _>(name)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        Ok(variables
            .into_iter()
            .map(|(environment, variable)| format!("environment {environment} variable {variable}"))
            .chain(
                credentials
                    .into_iter()
                    .map(|credential| format!("credential {}", credential.name)),
            )
            .collect())
    }
}
