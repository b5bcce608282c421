//! API keys and their audit.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{
    ApiKeyId, EnvironmentId, EnvironmentRef, Page, PageRequest, Permission, StorageError, Uow,
    UserId, WorkspaceId,
};
use fluxolab_workspace::api_keys::{ApiKey, ApiKeyRepository, KeyAuditEntry, Secret, StoredKey};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::storage;
use crate::pool::pooled;
use crate::schema::{workspace_api_key_audit, workspace_api_keys, workspace_environments};
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// API keys over the pool.
    PgApiKeys
);

type KeyRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    Vec<Option<String>>,
    Option<Uuid>,
    Option<String>,
    Option<Uuid>,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
);

/// The columns of a [`KeyRow`], from a key left-joined to the environment it is bound to.
macro_rules! key_columns {
    () => {
        (
            workspace_api_keys::id,
            workspace_api_keys::workspace_id,
            workspace_api_keys::name,
            workspace_api_keys::prefix,
            workspace_api_keys::last_four,
            workspace_api_keys::scopes,
            workspace_api_keys::environment_id,
            workspace_environments::name.nullable(),
            workspace_api_keys::created_by,
            workspace_api_keys::created_at,
            workspace_api_keys::expires_at,
            workspace_api_keys::last_used_at,
            workspace_api_keys::revoked_at,
            workspace_api_keys::previous_valid_until,
        )
    };
}

fn key(row: KeyRow) -> Result<ApiKey, StorageError> {
    let (
        id,
        workspace_id,
        name,
        prefix,
        last_four,
        scopes,
        environment_id,
        environment,
        created_by,
        created_at,
        expires_at,
        last_used_at,
        revoked_at,
        previous_valid_until,
    ) = row;
    let scopes = scopes
        .iter()
        .map(|code| {
            code.as_deref()
                .unwrap_or_default()
                .parse::<Permission>()
                .map_err(storage)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ApiKey {
        id: ApiKeyId::from_uuid(id),
        workspace_id: WorkspaceId::from_uuid(workspace_id),
        name,
        prefix,
        last_four,
        scopes,
        environment: environment_id
            .zip(environment)
            .map(|(id, name)| EnvironmentRef {
                id: EnvironmentId::from_uuid(id),
                name,
            }),
        created_by: created_by.map(UserId::from_uuid),
        created_at,
        expires_at,
        last_used_at,
        revoked_at,
        previous_valid_until,
    })
}

type AuditRow = (
    Uuid,
    Uuid,
    Uuid,
    String,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Value,
    OffsetDateTime,
);

#[async_trait]
impl ApiKeyRepository for PgApiKeys {
    #[tracing::instrument(name = "db.api_keys.find_by_prefix", level = "debug", skip_all)]
    async fn find_by_prefix(&self, prefix: &str) -> Result<Option<StoredKey>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<(KeyRow, Vec<u8>, Option<Vec<u8>>)> = workspace_api_keys::table
            .left_join(workspace_environments::table)
            .filter(
                workspace_api_keys::prefix
                    .eq(prefix)
                    .or(workspace_api_keys::previous_prefix.eq(prefix)),
            )
            .select((
                key_columns!(),
                workspace_api_keys::secret_hash,
                workspace_api_keys::previous_hash,
            ))
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(|(row, hash, previous_hash)| {
            Ok(StoredKey {
                key: key(row)?,
                hash,
                previous_hash,
            })
        })
        .transpose()
    }

    #[tracing::instrument(name = "db.api_keys.touch", level = "debug", skip_all)]
    async fn touch(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::update(workspace_api_keys::table.find(id.as_uuid()))
            .set(workspace_api_keys::last_used_at.eq(at))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.api_keys.audit_refusal", level = "debug", skip_all)]
    async fn audit_refusal(&self, entry: &KeyAuditEntry) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::insert_into(workspace_api_key_audit::table)
            .values((
                workspace_api_key_audit::id.eq(entry.id),
                workspace_api_key_audit::key_id.eq(entry.key_id.as_uuid()),
                workspace_api_key_audit::workspace_id.eq(entry.workspace_id.as_uuid()),
                workspace_api_key_audit::action.eq(&entry.action),
                workspace_api_key_audit::ip_address.eq(entry.ip.as_deref()),
                workspace_api_key_audit::user_agent.eq(entry.user_agent.as_deref()),
                workspace_api_key_audit::details.eq(&entry.details),
                workspace_api_key_audit::created_at.eq(entry.created_at),
            ))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.api_keys.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::newest_first!(
            workspace_api_keys::table
                .left_join(workspace_environments::table)
                .filter(workspace_api_keys::workspace_id.eq(workspace.as_uuid()))
                .select(key_columns!()),
            page,
            workspace_api_keys::created_at,
            workspace_api_keys::id
        );
        let rows: Vec<KeyRow> = query.load(&mut connection).await.map_err(storage)?;
        crate::keyset::page_of(rows, page, key, ApiKey::cursor)
    }

    #[tracing::instrument(name = "db.api_keys.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<KeyRow> = workspace_api_keys::table
            .left_join(workspace_environments::table)
            .filter(workspace_api_keys::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_api_keys::id.eq(id.as_uuid()))
            .select(key_columns!())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(key).transpose()
    }

    #[tracing::instrument(name = "db.api_keys.insert", level = "debug", skip_all)]
    async fn insert(&self, unit: &mut Uow, key: &ApiKey, hash: &[u8]) -> Result<(), StorageError> {
        let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.code()).collect();
        diesel::insert_into(workspace_api_keys::table)
            .values((
                workspace_api_keys::id.eq(key.id.as_uuid()),
                workspace_api_keys::workspace_id.eq(key.workspace_id.as_uuid()),
                workspace_api_keys::name.eq(&key.name),
                workspace_api_keys::prefix.eq(&key.prefix),
                workspace_api_keys::last_four.eq(&key.last_four),
                workspace_api_keys::secret_hash.eq(hash),
                workspace_api_keys::scopes.eq(&scopes),
                workspace_api_keys::environment_id.eq(key
                    .environment
                    .as_ref()
                    .map(|environment| environment.id.as_uuid())),
                workspace_api_keys::created_by.eq(key.created_by.map(|user| user.as_uuid())),
                workspace_api_keys::created_at.eq(key.created_at),
                workspace_api_keys::expires_at.eq(key.expires_at),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.api_keys.revoke", level = "debug", skip_all)]
    async fn revoke(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: ApiKeyId,
        at: OffsetDateTime,
    ) -> Result<(), StorageError> {
        diesel::update(
            workspace_api_keys::table
                .filter(workspace_api_keys::workspace_id.eq(workspace.as_uuid()))
                .filter(workspace_api_keys::id.eq(id.as_uuid()))
                .filter(workspace_api_keys::revoked_at.is_null()),
        )
        .set((
            workspace_api_keys::revoked_at.eq(at),
            workspace_api_keys::previous_valid_until.eq(None::<OffsetDateTime>),
        ))
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.api_keys.rotate", level = "debug", skip_all)]
    async fn rotate(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: ApiKeyId,
        secret: &Secret,
        previous_valid_until: OffsetDateTime,
    ) -> Result<(), StorageError> {
        // The right-hand sides are the row's values before the update.
        diesel::update(
            workspace_api_keys::table
                .filter(workspace_api_keys::workspace_id.eq(workspace.as_uuid()))
                .filter(workspace_api_keys::id.eq(id.as_uuid())),
        )
        .set((
            workspace_api_keys::previous_prefix.eq(workspace_api_keys::prefix.nullable()),
            workspace_api_keys::previous_hash.eq(workspace_api_keys::secret_hash.nullable()),
            workspace_api_keys::previous_valid_until.eq(previous_valid_until),
            workspace_api_keys::prefix.eq(&secret.prefix),
            workspace_api_keys::last_four.eq(&secret.last_four),
            workspace_api_keys::secret_hash.eq(&secret.hash),
        ))
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.api_keys.audit", level = "debug", skip_all)]
    async fn audit(&self, unit: &mut Uow, entry: &KeyAuditEntry) -> Result<(), StorageError> {
        diesel::insert_into(workspace_api_key_audit::table)
            .values((
                workspace_api_key_audit::id.eq(entry.id),
                workspace_api_key_audit::key_id.eq(entry.key_id.as_uuid()),
                workspace_api_key_audit::workspace_id.eq(entry.workspace_id.as_uuid()),
                workspace_api_key_audit::action.eq(&entry.action),
                workspace_api_key_audit::actor_user_id
                    .eq(entry.actor_user_id.map(|user| user.as_uuid())),
                workspace_api_key_audit::ip_address.eq(entry.ip.as_deref()),
                workspace_api_key_audit::user_agent.eq(entry.user_agent.as_deref()),
                workspace_api_key_audit::details.eq(&entry.details),
                workspace_api_key_audit::created_at.eq(entry.created_at),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.api_keys.audit_log", level = "debug", skip_all)]
    async fn audit_log(
        &self,
        workspace: WorkspaceId,
        key_id: ApiKeyId,
        page: PageRequest,
    ) -> Result<Page<KeyAuditEntry>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::newest_first!(
            workspace_api_key_audit::table
                .filter(workspace_api_key_audit::workspace_id.eq(workspace.as_uuid()))
                .filter(workspace_api_key_audit::key_id.eq(key_id.as_uuid()))
                .select((
                    workspace_api_key_audit::id,
                    workspace_api_key_audit::key_id,
                    workspace_api_key_audit::workspace_id,
                    workspace_api_key_audit::action,
                    workspace_api_key_audit::actor_user_id,
                    workspace_api_key_audit::ip_address,
                    workspace_api_key_audit::user_agent,
                    workspace_api_key_audit::details,
                    workspace_api_key_audit::created_at,
                )),
            page,
            workspace_api_key_audit::created_at,
            workspace_api_key_audit::id
        );
        let rows: Vec<AuditRow> = query.load(&mut connection).await.map_err(storage)?;
        let items = rows
            .into_iter()
            .map(
                |(id, key_id, workspace_id, action, actor, ip, user_agent, details, created_at)| {
                    KeyAuditEntry {
                        id,
                        key_id: ApiKeyId::from_uuid(key_id),
                        workspace_id: WorkspaceId::from_uuid(workspace_id),
                        action,
                        actor_user_id: actor.map(UserId::from_uuid),
                        ip,
                        user_agent,
                        details,
                        created_at,
                    }
                },
            )
            .collect();
        Ok(Page::from_rows(items, page, KeyAuditEntry::cursor))
    }
}
