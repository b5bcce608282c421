//! API keys and their audit.

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bytea, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{
    EnvironmentId, EnvironmentRef, Page, PageRequest, Permission, StorageError, Uow, UserId,
    WorkspaceId,
};
use fluxolab_workspace::api_keys::{ApiKey, ApiKeyRepository, KeyAuditEntry, Secret, StoredKey};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::DbPool;
use crate::error::storage;
use crate::pool::pooled;
use crate::unit_of_work::connection_of;

/// API keys over the pool.
#[derive(Clone)]
pub struct PgApiKeys {
    pool: DbPool,
}

impl std::fmt::Debug for PgApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgApiKeys").finish_non_exhaustive()
    }
}

impl PgApiKeys {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }
}

/// A key's columns, `k` being the key and `e` its environment (see [`KEYS`]).
const KEY_COLUMNS: &str = "k.id, k.workspace_id, k.name, k.prefix, k.last_four, k.scopes, \
    k.environment_id, e.name AS environment, k.created_by, k.created_at, k.expires_at, \
    k.last_used_at, k.revoked_at, k.previous_valid_until";
/// The keys with the name of the environment each is bound to.
const KEYS: &str =
    "workspace_api_keys k LEFT JOIN workspace_environments e ON e.id = k.environment_id";

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    prefix: String,
    #[diesel(sql_type = Text)]
    last_four: String,
    #[diesel(sql_type = Array<Text>)]
    scopes: Vec<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    environment_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    environment: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    created_by: Option<Uuid>,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_used_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    revoked_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    previous_valid_until: Option<OffsetDateTime>,
}

fn key(row: KeyRow) -> Result<ApiKey, StorageError> {
    let scopes = row
        .scopes
        .iter()
        .map(|code| code.parse::<Permission>().map_err(storage))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ApiKey {
        id: row.id,
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        name: row.name,
        prefix: row.prefix,
        last_four: row.last_four,
        scopes,
        environment: row
            .environment_id
            .zip(row.environment)
            .map(|(id, name)| EnvironmentRef {
                id: EnvironmentId::from_uuid(id),
                name,
            }),
        created_by: row.created_by.map(UserId::from_uuid),
        created_at: row.created_at,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
        previous_valid_until: row.previous_valid_until,
    })
}

#[derive(QueryableByName)]
struct AuditRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    key_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    actor_user_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    ip_address: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    user_agent: Option<String>,
    #[diesel(sql_type = Jsonb)]
    details: Value,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
}

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(embed)]
    key: KeyRow,
    #[diesel(sql_type = Bytea)]
    secret_hash: Vec<u8>,
    #[diesel(sql_type = Nullable<Bytea>)]
    previous_hash: Option<Vec<u8>>,
}

#[async_trait]
impl ApiKeyRepository for PgApiKeys {
    async fn find_by_prefix(&self, prefix: &str) -> Result<Option<StoredKey>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<StoredRow> = diesel::sql_query(format!(
            "SELECT {KEY_COLUMNS}, k.secret_hash, k.previous_hash FROM {KEYS} \
             WHERE k.prefix = $1 OR k.previous_prefix = $1"
        ))
        .bind::<Text, _>(prefix)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        rows.into_iter()
            .next()
            .map(|row| {
                Ok(StoredKey {
                    key: key(row.key)?,
                    hash: row.secret_hash,
                    previous_hash: row.previous_hash,
                })
            })
            .transpose()
    }

    async fn touch(&self, id: Uuid, at: OffsetDateTime) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::sql_query("UPDATE workspace_api_keys SET last_used_at = $2 WHERE id = $1")
            .bind::<SqlUuid, _>(id)
            .bind::<Timestamptz, _>(at)
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn audit_refusal(&self, entry: &KeyAuditEntry) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::sql_query(
            "INSERT INTO workspace_api_key_audit (id, key_id, workspace_id, action, ip_address, \
               user_agent, details, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind::<SqlUuid, _>(entry.id)
        .bind::<SqlUuid, _>(entry.key_id)
        .bind::<SqlUuid, _>(entry.workspace_id.as_uuid())
        .bind::<Text, _>(&entry.action)
        .bind::<Nullable<Text>, _>(entry.ip.as_deref())
        .bind::<Nullable<Text>, _>(entry.user_agent.as_deref())
        .bind::<Jsonb, _>(&entry.details)
        .bind::<Timestamptz, _>(entry.created_at)
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let after = page.after();
        let rows: Vec<KeyRow> = diesel::sql_query(format!(
            "SELECT {KEY_COLUMNS} FROM {KEYS} WHERE k.workspace_id = $1 \
               AND ($2::timestamptz IS NULL OR (k.created_at, k.id) < ($2, $3)) \
             ORDER BY k.created_at DESC, k.id DESC LIMIT $4"
        ))
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<Nullable<Timestamptz>, _>(after.as_ref().map(|cursor| cursor.created_at))
        .bind::<SqlUuid, _>(after.as_ref().map_or(Uuid::nil(), |cursor| cursor.id))
        .bind::<BigInt, _>(page.fetch_limit())
        .load(&mut connection)
        .await
        .map_err(storage)?;
        let items = rows.into_iter().map(key).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(items, page, ApiKey::cursor))
    }

    async fn find(&self, workspace: WorkspaceId, id: Uuid) -> Result<Option<ApiKey>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<KeyRow> = diesel::sql_query(format!(
            "SELECT {KEY_COLUMNS} FROM {KEYS} WHERE k.workspace_id = $1 AND k.id = $2"
        ))
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(id)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        rows.into_iter().next().map(key).transpose()
    }

    async fn insert(&self, unit: &mut Uow, key: &ApiKey, hash: &[u8]) -> Result<(), StorageError> {
        let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.code()).collect();
        diesel::sql_query(
            "INSERT INTO workspace_api_keys (id, workspace_id, name, prefix, last_four, secret_hash, \
               scopes, environment_id, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind::<SqlUuid, _>(key.id)
        .bind::<SqlUuid, _>(key.workspace_id.as_uuid())
        .bind::<Text, _>(&key.name)
        .bind::<Text, _>(&key.prefix)
        .bind::<Text, _>(&key.last_four)
        .bind::<Bytea, _>(hash)
        .bind::<Array<Text>, _>(&scopes)
        .bind::<Nullable<SqlUuid>, _>(
            key.environment
                .as_ref()
                .map(|environment| environment.id.as_uuid()),
        )
        .bind::<Nullable<SqlUuid>, _>(key.created_by.map(|user| user.as_uuid()))
        .bind::<Timestamptz, _>(key.created_at)
        .bind::<Nullable<Timestamptz>, _>(key.expires_at)
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn revoke(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: Uuid,
        at: OffsetDateTime,
    ) -> Result<(), StorageError> {
        diesel::sql_query(
            "UPDATE workspace_api_keys SET revoked_at = $3, previous_valid_until = NULL \
             WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(id)
        .bind::<Timestamptz, _>(at)
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn rotate(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: Uuid,
        secret: &Secret,
        previous_valid_until: OffsetDateTime,
    ) -> Result<(), StorageError> {
        diesel::sql_query(
            "UPDATE workspace_api_keys SET previous_prefix = prefix, previous_hash = secret_hash, \
               previous_valid_until = $6, prefix = $3, last_four = $4, secret_hash = $5 \
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(&secret.prefix)
        .bind::<Text, _>(&secret.last_four)
        .bind::<Bytea, _>(&secret.hash)
        .bind::<Timestamptz, _>(previous_valid_until)
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn audit(&self, unit: &mut Uow, entry: &KeyAuditEntry) -> Result<(), StorageError> {
        diesel::sql_query(
            "INSERT INTO workspace_api_key_audit (id, key_id, workspace_id, action, actor_user_id, \
               ip_address, user_agent, details, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind::<SqlUuid, _>(entry.id)
        .bind::<SqlUuid, _>(entry.key_id)
        .bind::<SqlUuid, _>(entry.workspace_id.as_uuid())
        .bind::<Text, _>(&entry.action)
        .bind::<Nullable<SqlUuid>, _>(entry.actor_user_id.map(|user| user.as_uuid()))
        .bind::<Nullable<Text>, _>(entry.ip.as_deref())
        .bind::<Nullable<Text>, _>(entry.user_agent.as_deref())
        .bind::<Jsonb, _>(&entry.details)
        .bind::<Timestamptz, _>(entry.created_at)
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn audit_log(
        &self,
        workspace: WorkspaceId,
        key_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<KeyAuditEntry>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let after = page.after();
        let rows: Vec<AuditRow> = diesel::sql_query(
            "SELECT id, key_id, workspace_id, action, actor_user_id, ip_address, user_agent, details, created_at \
             FROM workspace_api_key_audit WHERE workspace_id = $1 AND key_id = $2 \
               AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(key_id)
        .bind::<Nullable<Timestamptz>, _>(after.as_ref().map(|cursor| cursor.created_at))
        .bind::<SqlUuid, _>(after.as_ref().map_or(Uuid::nil(), |cursor| cursor.id))
        .bind::<BigInt, _>(page.fetch_limit())
        .load(&mut connection)
        .await
        .map_err(storage)?;
        let items = rows
            .into_iter()
            .map(|row| KeyAuditEntry {
                id: row.id,
                key_id: row.key_id,
                workspace_id: WorkspaceId::from_uuid(row.workspace_id),
                action: row.action,
                actor_user_id: row.actor_user_id.map(UserId::from_uuid),
                ip: row.ip_address,
                user_agent: row.user_agent,
                details: row.details,
                created_at: row.created_at,
            })
            .collect();
        Ok(Page::from_rows(items, page, KeyAuditEntry::cursor))
    }
}
