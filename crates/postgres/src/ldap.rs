//! LDAP settings (the vault entry of the bind password, the latest sync), the members
//! LDAP brought in, and the claim of due periodic syncs.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Interval, Timestamptz, Uuid as SqlUuid};
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{CredentialId, StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::Role;
use fluxolab_workspace::ldap::{
    LdapConfig, LdapLink, LdapRepository, LdapSettings, SyncRecord, SyncResult,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{workspace_ldap_configs, workspace_ldap_members, workspaces};
use crate::unit_of_work::connection_of;

use workspace_ldap_configs as configs;
use workspace_ldap_members as links;

crate::repository::pg_repository!(
    /// LDAP settings and links over the pool.
    PgLdap
);

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = workspace_ldap_configs, check_for_backend(diesel::pg::Pg))]
struct ConfigRow {
    workspace_id: Uuid,
    url: String,
    start_tls: bool,
    bind_dn: String,
    bind_password_id: Uuid,
    base_dn: String,
    user_filter: String,
    email_attribute: String,
    name_attribute: String,
    group_base_dn: Option<String>,
    group_filter: String,
    role_mapping: Value,
    default_role: String,
    sync_interval_minutes: i32,
    enabled: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = workspace_ldap_configs, check_for_backend(diesel::pg::Pg))]
struct SyncColumns {
    last_sync_at: Option<OffsetDateTime>,
    last_sync_result: Option<Value>,
}

fn role(code: &str) -> Result<Role, StorageError> {
    code.parse()
        .map_err(|error| corrupt(format!("ldap role: {error}")))
}

fn settings((row, sync): (ConfigRow, SyncColumns)) -> Result<LdapSettings, StorageError> {
    let mapping: BTreeMap<String, String> = serde_json::from_value(row.role_mapping)
        .map_err(|error| corrupt(format!("ldap role_mapping: {error}")))?;
    let role_mapping = mapping
        .into_iter()
        .map(|(group, code)| Ok((group, role(&code)?)))
        .collect::<Result<_, StorageError>>()?;
    Ok(LdapSettings {
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        config: LdapConfig {
            url: row.url,
            start_tls: row.start_tls,
            bind_dn: row.bind_dn,
            base_dn: row.base_dn,
            user_filter: row.user_filter,
            email_attribute: row.email_attribute,
            name_attribute: row.name_attribute,
            group_base_dn: row.group_base_dn,
            group_filter: row.group_filter,
            role_mapping,
            default_role: role(&row.default_role)?,
            sync_interval_minutes: u32::try_from(row.sync_interval_minutes)
                .map_err(|_| corrupt("negative sync_interval_minutes"))?,
            enabled: row.enabled,
        },
        bind_password: CredentialId::from_uuid(row.bind_password_id),
        last_sync: sync.last_sync_at.map(|at| SyncRecord {
            at,
            result: sync
                .last_sync_result
                .as_ref()
                .map(SyncResult::from_json)
                .unwrap_or_default(),
        }),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn row_of(settings: &LdapSettings) -> ConfigRow {
    let config = &settings.config;
    let mapping: serde_json::Map<String, Value> = config
        .role_mapping
        .iter()
        .map(|(group, role)| (group.clone(), Value::String(role.code().to_owned())))
        .collect();
    ConfigRow {
        workspace_id: settings.workspace_id.as_uuid(),
        url: config.url.clone(),
        start_tls: config.start_tls,
        bind_dn: config.bind_dn.clone(),
        bind_password_id: settings.bind_password.as_uuid(),
        base_dn: config.base_dn.clone(),
        user_filter: config.user_filter.clone(),
        email_attribute: config.email_attribute.clone(),
        name_attribute: config.name_attribute.clone(),
        group_base_dn: config.group_base_dn.clone(),
        group_filter: config.group_filter.clone(),
        role_mapping: Value::Object(mapping),
        default_role: config.default_role.code().to_owned(),
        sync_interval_minutes: i32::try_from(config.sync_interval_minutes).unwrap_or(i32::MAX),
        enabled: config.enabled,
        created_at: settings.created_at,
        updated_at: settings.updated_at,
    }
}

/// A row of the claim.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
}

#[async_trait]
impl LdapRepository for PgLdap {
    #[tracing::instrument(name = "db.ldap.find", level = "debug", skip_all)]
    async fn find(&self, workspace: WorkspaceId) -> Result<Option<LdapSettings>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<(ConfigRow, SyncColumns)> = configs::table
            .filter(configs::workspace_id.eq(workspace.as_uuid()))
            .select((ConfigRow::as_select(), SyncColumns::as_select()))
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(settings).transpose()
    }

    #[tracing::instrument(name = "db.ldap.save", level = "debug", skip_all)]
    async fn save(&self, unit: &mut Uow, settings: &LdapSettings) -> Result<(), StorageError> {
        let row = row_of(settings);
        diesel::insert_into(configs::table)
            .values(&row)
            .on_conflict(configs::workspace_id)
            .do_update()
            .set(&row)
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.ldap.delete", level = "debug", skip_all)]
    async fn delete(&self, unit: &mut Uow, workspace: WorkspaceId) -> Result<(), StorageError> {
        let connection = connection_of(unit)?;
        diesel::delete(links::table.filter(links::workspace_id.eq(workspace.as_uuid())))
            .execute(&mut *connection)
            .await
            .map_err(storage)?;
        diesel::delete(configs::table.filter(configs::workspace_id.eq(workspace.as_uuid())))
            .execute(connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.ldap.resolve_workspace", level = "debug", skip_all)]
    async fn resolve_workspace<'a>(
        &self,
        reference: &'a str,
    ) -> Result<Option<WorkspaceId>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let mut query = workspaces::table
            .filter(workspaces::archived_at.is_null())
            .select(workspaces::id)
            .into_boxed();
        query = match reference.parse::<Uuid>() {
            Ok(id) => query.filter(workspaces::id.eq(id)),
            Err(_) => query.filter(workspaces::slug.eq(reference)),
        };
        let id: Option<Uuid> = query
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(id.map(WorkspaceId::from_uuid))
    }

    #[tracing::instrument(name = "db.ldap.links", level = "debug", skip_all)]
    async fn links(&self, workspace: WorkspaceId) -> Result<Vec<LdapLink>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<(Uuid, String, String, String)> = links::table
            .filter(links::workspace_id.eq(workspace.as_uuid()))
            .order(links::created_at)
            .select((
                links::user_id,
                links::username,
                links::dn,
                links::mapped_role,
            ))
            .load(&mut connection)
            .await
            .map_err(storage)?;
        rows.into_iter()
            .map(|(user, username, dn, mapped)| {
                Ok(LdapLink {
                    workspace_id: workspace,
                    user_id: UserId::from_uuid(user),
                    username,
                    dn,
                    mapped_role: role(&mapped)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "db.ldap.save_link", level = "debug", skip_all)]
    async fn save_link(&self, unit: &mut Uow, link: &LdapLink) -> Result<(), StorageError> {
        diesel::insert_into(links::table)
            .values((
                links::workspace_id.eq(link.workspace_id.as_uuid()),
                links::user_id.eq(link.user_id.as_uuid()),
                links::username.eq(&link.username),
                links::dn.eq(&link.dn),
                links::mapped_role.eq(link.mapped_role.code()),
            ))
            .on_conflict((links::workspace_id, links::user_id))
            .do_update()
            .set((
                links::username.eq(excluded(links::username)),
                links::dn.eq(excluded(links::dn)),
                links::mapped_role.eq(excluded(links::mapped_role)),
                links::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.ldap.delete_link", level = "debug", skip_all)]
    async fn delete_link(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<(), StorageError> {
        diesel::delete(
            links::table
                .filter(links::workspace_id.eq(workspace.as_uuid()))
                .filter(links::user_id.eq(user.as_uuid())),
        )
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.ldap.record_sync", level = "debug", skip_all)]
    async fn record_sync(
        &self,
        workspace: WorkspaceId,
        record: &SyncRecord,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::update(configs::table.filter(configs::workspace_id.eq(workspace.as_uuid())))
            .set((
                configs::last_sync_at.eq(record.at),
                configs::last_sync_result.eq(record.result.to_json()),
                configs::sync_claimed_until.eq(None::<OffsetDateTime>),
            ))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.ldap.claim_due", level = "debug", skip_all)]
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
        hold: time::Duration,
    ) -> Result<Vec<WorkspaceId>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: `FOR UPDATE SKIP LOCKED` inside `UPDATE … WHERE … IN (SELECT …)`, and
        // interval arithmetic on a column.
        let claimed: Vec<Claimed> = diesel::sql_query(
            "UPDATE workspace_ldap_configs SET sync_claimed_until = $1 + $2 \
             WHERE workspace_id IN ( \
               SELECT workspace_id FROM workspace_ldap_configs \
               WHERE enabled AND sync_interval_minutes > 0 \
                 AND (last_sync_at IS NULL \
                      OR last_sync_at + make_interval(mins => sync_interval_minutes) <= $1) \
                 AND (sync_claimed_until IS NULL OR sync_claimed_until <= $1) \
               ORDER BY last_sync_at NULLS FIRST \
               LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING workspace_id",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<Interval, _>(diesel::data_types::PgInterval::from_microseconds(
            i64::try_from(hold.whole_microseconds()).unwrap_or(i64::MAX),
        ))
        .bind::<Integer, _>(i32::try_from(limit).unwrap_or(i32::MAX))
        .load(&mut connection)
        .await
        .map_err(storage)?;
        Ok(claimed
            .into_iter()
            .map(|row| WorkspaceId::from_uuid(row.workspace_id))
            .collect())
    }
}
