//! Single sign-on: each workspace's OpenID Connect configuration (the client secret a
//! vault entry), the pending logins and tickets (taken once, by `DELETE … RETURNING`),
//! and the accounts a sign-in finds or provisions.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::Bytea;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{
    CredentialId, ExposeSecret, SecretString, StorageError, Uow, UserId, WorkspaceId,
};
use fluxolab_workspace::sso::model::{SsoConfig, SsoConfigId};
use fluxolab_workspace::sso::ports::{
    KnownUser, PendingLogin, SsoDirectory, SsoLogins, SsoRepository, TakenLogin, Ticket,
};
use fluxolab_workspace::{PlanCode, Role};

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::accounts::{UserRow, insert_user_rows};
use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{
    plans, profiles, sso_login_states, sso_tickets, subscriptions, users, workspace_members,
    workspace_sso_configs, workspaces,
};
use crate::unit_of_work::connection_of;
use crate::workspaces::{insert_member, user_by_email};

use workspace_sso_configs as configs;

/// What a user provisioned at sign-in has instead of a password hash: no password
/// verifies against it (it is not a PHC string), so only SSO (or a reset) lets them in.
pub const NO_PASSWORD: &str = "!sso";

crate::repository::pg_repository!(
    /// SSO configurations, pending logins, tickets and provisioned accounts over the pool.
    PgSso
);

#[derive(Queryable, Selectable)]
#[diesel(table_name = workspace_sso_configs, check_for_backend(diesel::pg::Pg))]
struct ConfigRow {
    id: Uuid,
    workspace_id: Uuid,
    issuer: String,
    client_id: String,
    client_secret_id: Uuid,
    scopes: Value,
    allowed_domains: Value,
    groups_claim: String,
    role_mapping: Value,
    default_role: String,
    jit_provisioning: bool,
    enforce_sso: bool,
    enabled: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn config(row: ConfigRow) -> Result<SsoConfig, StorageError> {
    let id = row.id;
    let bad = |what: &str| corrupt(format!("SSO configuration {id}: {what}"));
    let strings = |value: Value, what: &str| {
        serde_json::from_value::<Vec<String>>(value).map_err(|_| bad(what))
    };
    let mapping: BTreeMap<String, String> =
        serde_json::from_value(row.role_mapping).map_err(|_| bad("role_mapping"))?;
    let role_mapping = mapping
        .into_iter()
        .map(|(group, role)| role.parse::<Role>().map(|role| (group, role)))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("role_mapping"))?;
    Ok(SsoConfig {
        id: SsoConfigId::from_uuid(id),
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        issuer: row.issuer,
        client_id: row.client_id,
        client_secret: CredentialId::from_uuid(row.client_secret_id),
        scopes: strings(row.scopes, "scopes")?,
        allowed_domains: strings(row.allowed_domains, "allowed_domains")?,
        groups_claim: row.groups_claim,
        role_mapping,
        default_role: row.default_role.parse().map_err(|_| bad("default_role"))?,
        jit_provisioning: row.jit_provisioning,
        enforce_sso: row.enforce_sso,
        enabled: row.enabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// A pending login as the callback took it.
#[derive(QueryableByName)]
struct TakenRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    nonce: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    code_verifier: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    expires_at: OffsetDateTime,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    replayed: bool,
}

/// A stored code (a plan's, a role's) read as its type.
fn parsed<T: std::str::FromStr>(
    code: Option<String>,
    what: &str,
) -> Result<Option<T>, StorageError> {
    code.map(|code| {
        code.parse()
            .map_err(|_| corrupt(format!("unknown {what} `{code}`")))
    })
    .transpose()
}

fn hash_of(bytes: &[u8]) -> Result<[u8; 32], StorageError> {
    bytes
        .try_into()
        .map_err(|_| corrupt("an SSO hash is not 32 bytes"))
}

#[async_trait]
impl SsoRepository for PgSso {
    #[tracing::instrument(name = "db.sso.find", level = "debug", skip_all)]
    async fn find(&self, workspace: WorkspaceId) -> Result<Option<SsoConfig>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<ConfigRow> = configs::table
            .filter(configs::workspace_id.eq(workspace.as_uuid()))
            .select(ConfigRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(config).transpose()
    }

    #[tracing::instrument(name = "db.sso.find_by_slug", level = "debug", skip_all)]
    async fn find_by_slug<'a>(&self, slug: &'a str) -> Result<Option<SsoConfig>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<ConfigRow> = configs::table
            .inner_join(workspaces::table)
            .filter(workspaces::slug.eq(slug))
            .filter(workspaces::archived_at.is_null())
            .select(ConfigRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(config).transpose()
    }

    #[tracing::instrument(name = "db.sso.save", level = "debug", skip_all)]
    async fn save(&self, unit: &mut Uow, config: &SsoConfig) -> Result<(), StorageError> {
        let mapping: BTreeMap<&str, &str> = config
            .role_mapping
            .iter()
            .map(|(group, role)| (group.as_str(), role.code()))
            .collect();
        diesel::insert_into(configs::table)
            .values((
                configs::id.eq(config.id.as_uuid()),
                configs::workspace_id.eq(config.workspace_id.as_uuid()),
                configs::issuer.eq(&config.issuer),
                configs::client_id.eq(&config.client_id),
                configs::client_secret_id.eq(config.client_secret.as_uuid()),
                configs::scopes.eq(serde_json::json!(config.scopes)),
                configs::allowed_domains.eq(serde_json::json!(config.allowed_domains)),
                configs::groups_claim.eq(&config.groups_claim),
                configs::role_mapping.eq(serde_json::json!(mapping)),
                configs::default_role.eq(config.default_role.code()),
                configs::jit_provisioning.eq(config.jit_provisioning),
                configs::enforce_sso.eq(config.enforce_sso),
                configs::enabled.eq(config.enabled),
                configs::created_at.eq(config.created_at),
                configs::updated_at.eq(config.updated_at),
            ))
            .on_conflict(configs::workspace_id)
            .do_update()
            .set((
                configs::issuer.eq(excluded(configs::issuer)),
                configs::client_id.eq(excluded(configs::client_id)),
                configs::client_secret_id.eq(excluded(configs::client_secret_id)),
                configs::scopes.eq(excluded(configs::scopes)),
                configs::allowed_domains.eq(excluded(configs::allowed_domains)),
                configs::groups_claim.eq(excluded(configs::groups_claim)),
                configs::role_mapping.eq(excluded(configs::role_mapping)),
                configs::default_role.eq(excluded(configs::default_role)),
                configs::jit_provisioning.eq(excluded(configs::jit_provisioning)),
                configs::enforce_sso.eq(excluded(configs::enforce_sso)),
                configs::enabled.eq(excluded(configs::enabled)),
                configs::updated_at.eq(excluded(configs::updated_at)),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.sso.delete", level = "debug", skip_all)]
    async fn delete(&self, unit: &mut Uow, workspace: WorkspaceId) -> Result<(), StorageError> {
        diesel::delete(configs::table.filter(configs::workspace_id.eq(workspace.as_uuid())))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.sso.plan_of", level = "debug", skip_all)]
    async fn plan_of(&self, workspace: WorkspaceId) -> Result<Option<PlanCode>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let code: Option<String> = subscriptions::table
            .inner_join(plans::table)
            .filter(subscriptions::workspace_id.eq(workspace.as_uuid()))
            .select(plans::code)
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        parsed(code, "plan")
    }
}

#[async_trait]
impl SsoLogins for PgSso {
    #[tracing::instrument(name = "db.sso.insert_pending", level = "debug", skip_all)]
    async fn insert_pending(&self, login: &PendingLogin) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Logins abandoned at the provider go when the next one of the workspace starts.
        diesel::delete(
            sso_login_states::table
                .filter(sso_login_states::workspace_id.eq(login.workspace_id.as_uuid()))
                .filter(sso_login_states::expires_at.lt(diesel::dsl::now)),
        )
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        diesel::insert_into(sso_login_states::table)
            .values((
                sso_login_states::state_hash.eq(&login.state_hash[..]),
                sso_login_states::workspace_id.eq(login.workspace_id.as_uuid()),
                sso_login_states::nonce.eq(&login.nonce),
                sso_login_states::code_verifier.eq(login.code_verifier.expose_secret()),
                sso_login_states::expires_at.eq(login.expires_at),
            ))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.sso.take_pending", level = "debug", skip_all)]
    async fn take_pending(&self, state_hash: [u8; 32]) -> Result<Option<TakenLogin>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: RETURNING what the row held before the update (read and locked by the CTE).
        // The verifier is blanked once used; the row stays until it expires so that a
        // replay is recognised.
        let row: Option<TakenRow> = diesel::sql_query(
            "WITH previous AS (SELECT state_hash, code_verifier, used_at FROM sso_login_states \
             WHERE state_hash = $1 FOR UPDATE) \
             UPDATE sso_login_states s SET used_at = now(), code_verifier = '' FROM previous \
             WHERE s.state_hash = previous.state_hash \
             RETURNING s.workspace_id, s.nonce, previous.code_verifier, s.expires_at, \
             previous.used_at IS NOT NULL AS replayed",
        )
        .bind::<Bytea, _>(&state_hash[..])
        .get_result(&mut connection)
        .await
        .optional()
        .map_err(storage)?;
        Ok(row.map(|row| TakenLogin {
            login: PendingLogin {
                state_hash,
                workspace_id: WorkspaceId::from_uuid(row.workspace_id),
                nonce: row.nonce,
                code_verifier: SecretString::from(row.code_verifier),
                expires_at: row.expires_at,
            },
            replayed: row.replayed,
        }))
    }

    #[tracing::instrument(name = "db.sso.insert_ticket", level = "debug", skip_all)]
    async fn insert_ticket(&self, unit: &mut Uow, ticket: &Ticket) -> Result<(), StorageError> {
        let connection = connection_of(unit)?;
        diesel::delete(
            sso_tickets::table
                .filter(sso_tickets::workspace_id.eq(ticket.workspace_id.as_uuid()))
                .filter(sso_tickets::expires_at.lt(diesel::dsl::now)),
        )
        .execute(&mut *connection)
        .await
        .map_err(storage)?;
        diesel::insert_into(sso_tickets::table)
            .values((
                sso_tickets::ticket_hash.eq(&ticket.ticket_hash[..]),
                sso_tickets::workspace_id.eq(ticket.workspace_id.as_uuid()),
                sso_tickets::user_id.eq(ticket.user_id.as_uuid()),
                sso_tickets::expires_at.eq(ticket.expires_at),
            ))
            .execute(connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.sso.take_ticket", level = "debug", skip_all)]
    async fn take_ticket(&self, ticket_hash: [u8; 32]) -> Result<Option<Ticket>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<(Vec<u8>, Uuid, Uuid, OffsetDateTime)> = diesel::delete(
            sso_tickets::table.filter(sso_tickets::ticket_hash.eq(&ticket_hash[..])),
        )
        .returning((
            sso_tickets::ticket_hash,
            sso_tickets::workspace_id,
            sso_tickets::user_id,
            sso_tickets::expires_at,
        ))
        .get_result(&mut connection)
        .await
        .optional()
        .map_err(storage)?;
        row.map(|(hash, workspace, user, expires_at)| {
            Ok(Ticket {
                ticket_hash: hash_of(&hash)?,
                workspace_id: WorkspaceId::from_uuid(workspace),
                user_id: UserId::from_uuid(user),
                expires_at,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl SsoDirectory for PgSso {
    #[tracing::instrument(name = "db.sso.find_user", level = "debug", skip_all)]
    async fn find_user<'a>(
        &self,
        workspace: WorkspaceId,
        email: &'a str,
    ) -> Result<Option<KnownUser>, StorageError> {
        let found = user_by_email(&mut *pooled(&self.pool).await?, email).await?;
        let Some(id) = found else {
            return Ok(None);
        };
        Ok(Some(KnownUser {
            id,
            role: self.role_of(workspace, id).await?,
        }))
    }

    #[tracing::instrument(name = "db.sso.create_user", level = "debug", skip_all)]
    async fn create_user<'a>(
        &self,
        unit: &mut Uow,
        user: UserId,
        email: &'a str,
        display_name: &'a str,
        workspace: WorkspaceId,
    ) -> Result<(), StorageError> {
        let connection = connection_of(unit)?;
        let email = email.to_lowercase();
        let display_name: String = display_name.trim().chars().take(120).collect();
        let row = UserRow {
            id: user.as_uuid(),
            email: &email,
            password_hash: NO_PASSWORD,
            display_name: &display_name,
        };
        insert_user_rows(&mut *connection, &row)
            .await
            .map_err(storage)?;
        diesel::update(users::table.find(user.as_uuid()))
            .set((
                users::default_workspace_id.eq(workspace.as_uuid()),
                users::email_verified_at.eq(diesel::dsl::now),
            ))
            .execute(connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.sso.add_member", level = "debug", skip_all)]
    async fn add_member(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
    ) -> Result<(), StorageError> {
        insert_member(connection_of(unit)?, workspace, user, role, None)
            .await
            .map_err(storage)
    }

    #[tracing::instrument(name = "db.sso.role_of", level = "debug", skip_all)]
    async fn role_of(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Role>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let code: Option<String> = workspace_members::table
            .inner_join(profiles::table)
            .filter(workspace_members::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_members::user_id.eq(user.as_uuid()))
            .select(profiles::code)
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        parsed(code, "role")
    }
}
