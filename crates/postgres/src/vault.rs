//! The credentials vault's storage: data keys, sealed credential rows and their audit
//! entries (in the activity log).

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_credentials::CredentialKind;
use fluxolab_credentials::envelope::{Sealed, WrappedKey};
use fluxolab_credentials::model::{CredentialRecord, DataKeyId, StoredDataKey};
use fluxolab_credentials::ports::{CredentialRepository, DataKeyRepository, WriteCredentialError};
use fluxolab_kernel::{CredentialId, Page, PageRequest, StorageError, Uow, UserId, WorkspaceId};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::is_unique_violation;
use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{credentials, workspace_data_keys};
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// The vault's storage over the pool.
    PgVault
);

#[derive(Queryable, Selectable)]
#[diesel(table_name = workspace_data_keys, check_for_backend(diesel::pg::Pg))]
struct KeyRow {
    id: Uuid,
    workspace_id: Uuid,
    version: i32,
    wrapped_key: Vec<u8>,
    kek_id: String,
}

fn stored_key(row: KeyRow) -> StoredDataKey {
    StoredDataKey {
        id: DataKeyId::from_uuid(row.id),
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        version: row.version,
        wrapped: WrappedKey {
            bytes: row.wrapped_key,
            kek_id: row.kek_id,
        },
    }
}

#[async_trait]
impl DataKeyRepository for PgVault {
    #[tracing::instrument(name = "db.data_keys.active", level = "debug", skip_all)]
    async fn active(&self, workspace: WorkspaceId) -> Result<Option<StoredDataKey>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<KeyRow> = workspace_data_keys::table
            .filter(workspace_data_keys::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_data_keys::active)
            .select(KeyRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(row.map(stored_key))
    }

    #[tracing::instrument(name = "db.data_keys.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: DataKeyId,
    ) -> Result<Option<StoredDataKey>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<KeyRow> = workspace_data_keys::table
            .filter(workspace_data_keys::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_data_keys::id.eq(id.as_uuid()))
            .select(KeyRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(row.map(stored_key))
    }

    #[tracing::instrument(name = "db.data_keys.activate", level = "debug", skip_all)]
    async fn activate(&self, key: &StoredDataKey) -> Result<bool, StorageError> {
        use diesel_async::AsyncConnection;
        let mut connection = pooled(&self.pool).await?;
        let outcome = connection
            .transaction(async |connection| {
                diesel::update(
                    workspace_data_keys::table
                        .filter(workspace_data_keys::workspace_id.eq(key.workspace_id.as_uuid()))
                        .filter(workspace_data_keys::active),
                )
                .set((
                    workspace_data_keys::active.eq(false),
                    workspace_data_keys::retired_at.eq(diesel::dsl::now),
                ))
                .execute(connection)
                .await?;
                diesel::insert_into(workspace_data_keys::table)
                    .values((
                        workspace_data_keys::id.eq(key.id.as_uuid()),
                        workspace_data_keys::workspace_id.eq(key.workspace_id.as_uuid()),
                        workspace_data_keys::version.eq(key.version),
                        workspace_data_keys::wrapped_key.eq(&key.wrapped.bytes),
                        workspace_data_keys::kek_id.eq(&key.wrapped.kek_id),
                    ))
                    .execute(connection)
                    .await
            })
            .await;
        match outcome {
            Ok(_) => Ok(true),
            // Another writer created this version (or an active key) first.
            Err(error)
                if is_unique_violation(&error, "workspace_data_keys_version_key")
                    || is_unique_violation(&error, "workspace_data_keys_active_key") =>
            {
                Ok(false)
            }
            Err(error) => Err(storage(error)),
        }
    }

    #[tracing::instrument(name = "db.data_keys.count_wrapped_by", level = "debug", skip_all)]
    async fn count_wrapped_by(&self, kek_id: &str) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let count: i64 = workspace_data_keys::table
            .filter(workspace_data_keys::kek_id.eq(kek_id))
            .count()
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    #[tracing::instrument(name = "db.data_keys.wrapped_by_others", level = "debug", skip_all)]
    async fn wrapped_by_others(
        &self,
        kek_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredDataKey>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<KeyRow> = workspace_data_keys::table
            .filter(workspace_data_keys::kek_id.ne(kek_id))
            .order(workspace_data_keys::id)
            .limit(limit)
            .select(KeyRow::as_select())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        Ok(rows.into_iter().map(stored_key).collect())
    }

    #[tracing::instrument(name = "db.data_keys.rewrap", level = "debug", skip_all)]
    async fn rewrap(
        &self,
        id: DataKeyId,
        old_kek_id: &str,
        wrapped: &WrappedKey,
    ) -> Result<bool, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let updated = diesel::update(
            workspace_data_keys::table
                .filter(workspace_data_keys::id.eq(id.as_uuid()))
                .filter(workspace_data_keys::kek_id.eq(old_kek_id)),
        )
        .set((
            workspace_data_keys::wrapped_key.eq(&wrapped.bytes),
            workspace_data_keys::kek_id.eq(&wrapped.kek_id),
        ))
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(updated == 1)
    }
}

type CredentialRow = (
    Uuid,
    Uuid,
    String,
    String,
    Value,
    Vec<u8>,
    Vec<u8>,
    Uuid,
    i32,
    Value,
    OffsetDateTime,
    OffsetDateTime,
);

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn record(row: CredentialRow) -> Result<CredentialRecord, StorageError> {
    let (
        id,
        workspace,
        name,
        kind,
        public,
        nonce,
        ciphertext,
        key,
        version,
        hints,
        created_at,
        updated_at,
    ) = row;
    Ok(CredentialRecord {
        id: CredentialId::from_uuid(id),
        workspace_id: WorkspaceId::from_uuid(workspace),
        name,
        kind: CredentialKind::from_code(&kind)
            .ok_or_else(|| corrupt(format!("unknown credential kind `{kind}`")))?,
        public: object(public),
        sealed: Sealed { nonce, ciphertext },
        data_key_id: DataKeyId::from_uuid(key),
        key_version: version,
        hints: object(hints),
        created_at,
        updated_at,
    })
}

macro_rules! credential_select {
    () => {
        credentials::table
            .inner_join(workspace_data_keys::table)
            .select((
                credentials::id,
                credentials::workspace_id,
                credentials::name,
                credentials::kind,
                credentials::public_data,
                credentials::secret_nonce,
                credentials::secret_ciphertext,
                credentials::data_key_id,
                workspace_data_keys::version,
                credentials::masked_hints,
                credentials::created_at,
                credentials::updated_at,
            ))
    };
}

fn name_taken(error: diesel::result::Error) -> WriteCredentialError {
    if is_unique_violation(&error, "credentials_name_key") {
        WriteCredentialError::NameTaken
    } else {
        WriteCredentialError::Storage(storage(error))
    }
}

#[async_trait]
impl CredentialRepository for PgVault {
    #[tracing::instrument(name = "db.credentials.insert", level = "debug", skip_all)]
    async fn insert(
        &self,
        uow: &mut Uow,
        record: &CredentialRecord,
        created_by: Option<UserId>,
    ) -> Result<(), WriteCredentialError> {
        diesel::insert_into(credentials::table)
            .values((
                credentials::id.eq(record.id.as_uuid()),
                credentials::workspace_id.eq(record.workspace_id.as_uuid()),
                credentials::name.eq(&record.name),
                credentials::kind.eq(record.kind.code()),
                credentials::public_data.eq(Value::Object(record.public.clone())),
                credentials::secret_nonce.eq(&record.sealed.nonce),
                credentials::secret_ciphertext.eq(&record.sealed.ciphertext),
                credentials::data_key_id.eq(record.data_key_id.as_uuid()),
                credentials::masked_hints.eq(Value::Object(record.hints.clone())),
                credentials::created_by.eq(created_by.map(|user| user.as_uuid())),
                credentials::created_at.eq(record.created_at),
                credentials::updated_at.eq(record.updated_at),
            ))
            .execute(connection_of(uow)?)
            .await
            .map_err(name_taken)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.credentials.update", level = "debug", skip_all)]
    async fn update(
        &self,
        uow: &mut Uow,
        record: &CredentialRecord,
    ) -> Result<(), WriteCredentialError> {
        diesel::update(
            credentials::table
                .filter(credentials::id.eq(record.id.as_uuid()))
                .filter(credentials::workspace_id.eq(record.workspace_id.as_uuid())),
        )
        .set((
            credentials::name.eq(&record.name),
            credentials::public_data.eq(Value::Object(record.public.clone())),
            credentials::secret_nonce.eq(&record.sealed.nonce),
            credentials::secret_ciphertext.eq(&record.sealed.ciphertext),
            credentials::data_key_id.eq(record.data_key_id.as_uuid()),
            credentials::masked_hints.eq(Value::Object(record.hints.clone())),
            credentials::updated_at.eq(record.updated_at),
        ))
        .execute(connection_of(uow)?)
        .await
        .map_err(name_taken)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.credentials.reseal", level = "debug", skip_all)]
    async fn reseal(
        &self,
        record: &CredentialRecord,
        from_key: DataKeyId,
    ) -> Result<bool, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let updated = diesel::update(
            credentials::table
                .filter(credentials::id.eq(record.id.as_uuid()))
                .filter(credentials::data_key_id.eq(from_key.as_uuid())),
        )
        .set((
            credentials::secret_nonce.eq(&record.sealed.nonce),
            credentials::secret_ciphertext.eq(&record.sealed.ciphertext),
            credentials::data_key_id.eq(record.data_key_id.as_uuid()),
        ))
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(updated == 1)
    }

    #[tracing::instrument(name = "db.credentials.delete", level = "debug", skip_all)]
    async fn delete(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: CredentialId,
    ) -> Result<bool, StorageError> {
        let deleted = diesel::delete(
            credentials::table
                .filter(credentials::id.eq(id.as_uuid()))
                .filter(credentials::workspace_id.eq(workspace.as_uuid())),
        )
        .execute(connection_of(uow)?)
        .await
        .map_err(storage)?;
        Ok(deleted == 1)
    }

    #[tracing::instrument(name = "db.credentials.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: CredentialId,
    ) -> Result<Option<CredentialRecord>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<CredentialRow> = credential_select!()
            .filter(credentials::workspace_id.eq(workspace.as_uuid()))
            .filter(credentials::id.eq(id.as_uuid()))
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(record).transpose()
    }

    #[tracing::instrument(name = "db.credentials.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<CredentialRecord>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::oldest_first!(
            credential_select!()
                .filter(credentials::workspace_id.eq(workspace.as_uuid()))
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "EXISTS (SELECT 1 FROM user_credentials u WHERE u.id = credentials.id)",
                )),
            page,
            credentials::created_at,
            credentials::id
        );
        let rows: Vec<CredentialRow> = query.load(&mut connection).await.map_err(storage)?;
        crate::keyset::page_of(rows, page, record, CredentialRecord::cursor)
    }

    #[tracing::instrument(name = "db.credentials.is_owned", level = "debug", skip_all)]
    async fn is_owned(
        &self,
        workspace: WorkspaceId,
        id: CredentialId,
    ) -> Result<bool, StorageError> {
        #[derive(QueryableByName)]
        struct Owned {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            owned: bool,
        }
        let mut connection = pooled(&self.pool).await?;
        // Raw: `user_credentials` is a view, which the generated schema does not describe.
        let found: Owned = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM credentials c WHERE c.workspace_id = $1 AND c.id = $2) \
               AND NOT EXISTS (SELECT 1 FROM user_credentials u WHERE u.id = $2) AS owned",
        )
        .bind::<diesel::sql_types::Uuid, _>(workspace.as_uuid())
        .bind::<diesel::sql_types::Uuid, _>(id.as_uuid())
        .get_result(&mut connection)
        .await
        .map_err(storage)?;
        Ok(found.owned)
    }

    #[tracing::instrument(
        name = "db.credentials.sealed_under_other_keys",
        level = "debug",
        skip_all
    )]
    async fn sealed_under_other_keys(
        &self,
        workspace: WorkspaceId,
        key: DataKeyId,
        limit: i64,
    ) -> Result<Vec<CredentialRecord>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<CredentialRow> = credential_select!()
            .filter(credentials::workspace_id.eq(workspace.as_uuid()))
            .filter(credentials::data_key_id.ne(key.as_uuid()))
            .order(credentials::id)
            .limit(limit)
            .load(&mut connection)
            .await
            .map_err(storage)?;
        rows.into_iter().map(record).collect()
    }
}

#[async_trait]
impl fluxolab_credentials::ports::NetworkPolicy for PgVault {
    #[tracing::instrument(name = "db.network_policy.allows_internal", level = "debug", skip_all)]
    async fn allows_internal(&self, workspace: WorkspaceId) -> Result<bool, StorageError> {
        use crate::schema::workspace_settings;
        let mut connection = pooled(&self.pool).await?;
        let allowed: Option<bool> = workspace_settings::table
            .find(workspace.as_uuid())
            .select(workspace_settings::allow_internal_network)
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(allowed.unwrap_or(false))
    }
}
