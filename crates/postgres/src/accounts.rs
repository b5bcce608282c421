//! Users, their security state and refresh-token sessions (identity's ports).

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Interval, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use fluxolab_identity::UserSettings;
use fluxolab_identity::account::LoginRecord;
use fluxolab_identity::ports::{InsertUserError, SessionRepository, UserProfiles, UserRepository};
use fluxolab_identity::{
    EmailAddress, Membership, NewSession, NewUser, PasswordHash, Session, SessionFamilyId,
    SessionId, SignInMethod, User,
};
use fluxolab_kernel::{StorageError, Uow, UserId, WorkspaceId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{is_unique_violation, storage};
use crate::pool::pooled;
use crate::schema::{
    profiles, sessions, user_security_settings, user_settings, users, workspace_members, workspaces,
};
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// Identity's storage over the pool.
    PgAccounts
);

type LoginRow = (Uuid, String, Option<Uuid>, Option<OffsetDateTime>);

/// A user as shown to themselves, as [`USER_COLUMNS`] reads it.
type ShownUser = (Uuid, String, String, Option<Uuid>, OffsetDateTime);

/// The columns of a [`ShownUser`].
const USER_COLUMNS: (
    users::id,
    users::email,
    users::display_name,
    users::default_workspace_id,
    users::created_at,
) = (
    users::id,
    users::email,
    users::display_name,
    users::default_workspace_id,
    users::created_at,
);

fn user((id, email, display_name, workspace, created_at): ShownUser) -> User {
    User {
        id: UserId::from_uuid(id),
        email,
        display_name,
        default_workspace_id: workspace.map(WorkspaceId::from_uuid),
        created_at,
    }
}

/// How login finds its user.
enum LoginKey<'a> {
    Email(&'a str),
    Id(Uuid),
}

impl PgAccounts {
    async fn login_record(&self, key: LoginKey<'_>) -> Result<Option<LoginRecord>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let mut query = users::table
            .inner_join(user_security_settings::table)
            .select((
                users::id,
                users::password_hash,
                users::default_workspace_id,
                user_security_settings::locked_until,
            ))
            .into_boxed();
        query = match key {
            LoginKey::Email(email) => query.filter(users::email.eq(email)),
            LoginKey::Id(id) => query.filter(users::id.eq(id)),
        };
        let row: Option<LoginRow> = query
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(row.map(login_record))
    }
}

fn login_record((id, hash, workspace, locked_until): LoginRow) -> LoginRecord {
    LoginRecord {
        user_id: UserId::from_uuid(id),
        password_hash: PasswordHash::from_stored(hash),
        default_workspace_id: workspace.map(WorkspaceId::from_uuid),
        locked_until,
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    family_id: Uuid,
    workspace_id: Option<Uuid>,
    user_agent: Option<String>,
    created_at: OffsetDateTime,
    last_used_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    rotated_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    auth_method: String,
}

fn session(row: SessionRow) -> Session {
    Session {
        id: SessionId::from_uuid(row.id),
        user_id: UserId::from_uuid(row.user_id),
        family_id: SessionFamilyId::from_uuid(row.family_id),
        workspace_id: row.workspace_id.map(WorkspaceId::from_uuid),
        user_agent: row.user_agent,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        expires_at: row.expires_at,
        rotated_at: row.rotated_at,
        revoked_at: row.revoked_at,
        // The column's CHECK admits only the two codes.
        method: SignInMethod::from_code(&row.auth_method).unwrap_or_default(),
    }
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
struct SessionInsert<'a> {
    id: Uuid,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: &'a [u8],
    workspace_id: Option<Uuid>,
    user_agent: Option<&'a str>,
    created_at: OffsetDateTime,
    last_used_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    auth_method: &'static str,
}

fn insert_session_values(new: &NewSession) -> SessionInsert<'_> {
    SessionInsert {
        id: new.id.as_uuid(),
        user_id: new.user_id.as_uuid(),
        family_id: new.family_id.as_uuid(),
        token_hash: &new.token_digest,
        workspace_id: new.workspace_id.map(|id| id.as_uuid()),
        user_agent: new.user_agent.as_deref(),
        created_at: new.created_at,
        last_used_at: new.created_at,
        expires_at: new.expires_at,
        auth_method: new.method.code(),
    }
}

/// A new user's own row.
pub(crate) struct UserRow<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub display_name: &'a str,
}

/// The rows every new user has: the user, their settings and their security settings.
pub(crate) async fn insert_user_rows(
    connection: &mut diesel_async::AsyncPgConnection,
    user: &UserRow<'_>,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(user.id),
            users::email.eq(user.email),
            users::password_hash.eq(user.password_hash),
            users::display_name.eq(user.display_name),
        ))
        .execute(connection)
        .await?;
    diesel::insert_into(user_settings::table)
        .values(user_settings::user_id.eq(user.id))
        .execute(connection)
        .await?;
    diesel::insert_into(user_security_settings::table)
        .values(user_security_settings::user_id.eq(user.id))
        .execute(connection)
        .await?;
    Ok(())
}

#[async_trait]
impl UserRepository for PgAccounts {
    #[tracing::instrument(name = "db.users.insert", level = "debug", skip_all)]
    async fn insert(&self, uow: &mut Uow, user: &NewUser) -> Result<(), InsertUserError> {
        let row = UserRow {
            id: user.id.as_uuid(),
            email: user.email.as_str(),
            password_hash: user.password_hash.as_str(),
            display_name: user.display_name.as_str(),
        };
        insert_user_rows(connection_of(uow)?, &row)
            .await
            .map_err(|error| {
                if is_unique_violation(&error, "users_email_key") {
                    InsertUserError::EmailTaken
                } else {
                    InsertUserError::Storage(storage(error))
                }
            })?;
        Ok(())
    }

    #[tracing::instrument(name = "db.users.find_for_login", level = "debug", skip_all)]
    async fn find_for_login(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<LoginRecord>, StorageError> {
        self.login_record(LoginKey::Email(email.as_str())).await
    }

    #[tracing::instrument(name = "db.users.find_for_login_by_id", level = "debug", skip_all)]
    async fn find_for_login_by_id(
        &self,
        user: UserId,
    ) -> Result<Option<LoginRecord>, StorageError> {
        self.login_record(LoginKey::Id(user.as_uuid())).await
    }

    #[tracing::instrument(name = "db.users.record_failed_login", level = "debug", skip_all)]
    async fn record_failed_login(
        &self,
        user: UserId,
        now: OffsetDateTime,
        max_attempts: u32,
        lock: time::Duration,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // A lock that has run out starts the count afresh.
        // Raw: nested CASE expressions over the row's own lock and count.
        diesel::sql_query(
            "UPDATE user_security_settings SET \
               failed_login_attempts = CASE WHEN locked_until IS NOT NULL AND locked_until <= $2 \
                                            THEN 1 ELSE failed_login_attempts + 1 END, \
               locked_until = CASE \
                 WHEN (CASE WHEN locked_until IS NOT NULL AND locked_until <= $2 \
                            THEN 1 ELSE failed_login_attempts + 1 END) >= $3 THEN $2 + $4 \
                 WHEN locked_until IS NOT NULL AND locked_until <= $2 THEN NULL \
                 ELSE locked_until END, \
               updated_at = $2 \
             WHERE user_id = $1",
        )
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<Timestamptz, _>(now)
        .bind::<Integer, _>(i32::try_from(max_attempts).unwrap_or(i32::MAX))
        .bind::<Interval, _>(diesel::data_types::PgInterval::from_microseconds(
            i64::try_from(lock.whole_microseconds()).unwrap_or(i64::MAX),
        ))
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.users.record_successful_login", level = "debug", skip_all)]
    async fn record_successful_login(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        connection
            .transaction(async |connection| {
                diesel::update(user_security_settings::table.find(user.as_uuid()))
                    .set((
                        user_security_settings::failed_login_attempts.eq(0),
                        user_security_settings::locked_until.eq(None::<OffsetDateTime>),
                        user_security_settings::updated_at.eq(now),
                    ))
                    .execute(connection)
                    .await?;
                diesel::update(users::table.find(user.as_uuid()))
                    .set(users::last_login_at.eq(now))
                    .execute(connection)
                    .await
            })
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.users.set_password", level = "debug", skip_all)]
    async fn set_password(
        &self,
        uow: &mut Uow,
        user: UserId,
        hash: &PasswordHash,
        now: OffsetDateTime,
    ) -> Result<(), StorageError> {
        let connection = connection_of(uow)?;
        diesel::update(users::table.find(user.as_uuid()))
            .set((
                users::password_hash.eq(hash.as_str()),
                users::updated_at.eq(now),
            ))
            .execute(connection)
            .await
            .map_err(storage)?;
        diesel::update(user_security_settings::table.find(user.as_uuid()))
            .set((
                user_security_settings::password_changed_at.eq(now),
                user_security_settings::updated_at.eq(now),
            ))
            .execute(connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.users.find", level = "debug", skip_all)]
    async fn find(&self, found: UserId) -> Result<Option<User>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<ShownUser> = users::table
            .find(found.as_uuid())
            .select(USER_COLUMNS)
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(row.map(user))
    }

    #[tracing::instrument(name = "db.users.settings", level = "debug", skip_all)]
    async fn settings(&self, user: UserId) -> Result<Option<UserSettings>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<(String, String, String, serde_json::Value)> = user_settings::table
            .find(user.as_uuid())
            .select((
                user_settings::locale,
                user_settings::timezone,
                user_settings::theme,
                user_settings::notifications,
            ))
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(
            row.map(|(locale, timezone, theme, notifications)| UserSettings {
                locale,
                timezone,
                theme,
                notifications: match notifications {
                    serde_json::Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                },
            }),
        )
    }

    #[tracing::instrument(name = "db.users.save_settings", level = "debug", skip_all)]
    async fn save_settings(
        &self,
        user: UserId,
        settings: &UserSettings,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::update(user_settings::table.find(user.as_uuid()))
            .set((
                user_settings::locale.eq(&settings.locale),
                user_settings::timezone.eq(&settings.timezone),
                user_settings::theme.eq(&settings.theme),
                user_settings::notifications
                    .eq(serde_json::Value::Object(settings.notifications.clone())),
                user_settings::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.users.password_changed_at", level = "debug", skip_all)]
    async fn password_changed_at(
        &self,
        user: UserId,
    ) -> Result<Option<OffsetDateTime>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        user_security_settings::table
            .find(user.as_uuid())
            .select(user_security_settings::password_changed_at)
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)
    }
}

#[async_trait]
impl UserProfiles for PgAccounts {
    #[tracing::instrument(name = "db.users.find_with_memberships", level = "debug", skip_all)]
    async fn find_with_memberships(
        &self,
        found: UserId,
    ) -> Result<Option<(User, Vec<Membership>)>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // One statement: the user's row once per membership (once, with none).
        let held = workspace_members::table
            .inner_join(
                workspaces::table.on(workspaces::id
                    .eq(workspace_members::workspace_id)
                    .and(workspaces::archived_at.is_null())),
            )
            .inner_join(profiles::table);
        let rows: Vec<(ShownUser, Option<(Uuid, String, String)>)> = users::table
            .left_join(held)
            .filter(users::id.eq(found.as_uuid()))
            .order(workspaces::created_at.nullable().asc())
            .select((
                USER_COLUMNS,
                (workspaces::id, workspaces::name, profiles::code).nullable(),
            ))
            .load(&mut connection)
            .await
            .map_err(storage)?;
        let mut rows = rows.into_iter().peekable();
        let Some((row, _)) = rows.peek().cloned() else {
            return Ok(None);
        };
        let memberships = rows
            .filter_map(|(_, membership)| membership)
            .map(|(id, name, role)| Membership {
                workspace_id: WorkspaceId::from_uuid(id),
                name,
                role,
            })
            .collect();
        Ok(Some((user(row), memberships)))
    }
}

#[async_trait]
impl SessionRepository for PgAccounts {
    #[tracing::instrument(name = "db.sessions.create", level = "debug", skip_all)]
    async fn create(&self, new: &NewSession) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::insert_into(sessions::table)
            .values(insert_session_values(new))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.sessions.find_by_digest", level = "debug", skip_all)]
    async fn find_by_digest(&self, digest: &[u8; 32]) -> Result<Option<Session>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<SessionRow> = sessions::table
            .filter(sessions::token_hash.eq(&digest[..]))
            .select(SessionRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(row.map(session))
    }

    #[tracing::instrument(name = "db.sessions.rotate", level = "debug", skip_all)]
    async fn rotate(
        &self,
        old: SessionId,
        new: &NewSession,
        now: OffsetDateTime,
    ) -> Result<bool, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        connection
            .transaction(async |connection| {
                let claimed = diesel::update(
                    sessions::table
                        .find(old.as_uuid())
                        .filter(sessions::rotated_at.is_null())
                        .filter(sessions::revoked_at.is_null()),
                )
                .set((sessions::rotated_at.eq(now), sessions::last_used_at.eq(now)))
                .execute(connection)
                .await?;
                if claimed == 0 {
                    return Ok(false);
                }
                diesel::insert_into(sessions::table)
                    .values(insert_session_values(new))
                    .execute(connection)
                    .await?;
                Ok::<_, diesel::result::Error>(true)
            })
            .await
            .map_err(storage)
    }

    #[tracing::instrument(name = "db.sessions.revoke_family", level = "debug", skip_all)]
    async fn revoke_family(
        &self,
        family: SessionFamilyId,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::update(
            sessions::table
                .filter(sessions::family_id.eq(family.as_uuid()))
                .filter(sessions::revoked_at.is_null()),
        )
        .set((
            sessions::revoked_at.eq(now),
            sessions::revoked_reason.eq(reason),
        ))
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.sessions.list_live", level = "debug", skip_all)]
    async fn list_live(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<SessionRow> = sessions::table
            .filter(sessions::user_id.eq(user.as_uuid()))
            .filter(sessions::rotated_at.is_null())
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .order(sessions::created_at.desc())
            .select(SessionRow::as_select())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        Ok(rows.into_iter().map(session).collect())
    }

    #[tracing::instrument(name = "db.sessions.revoke_all_but", level = "debug", skip_all)]
    async fn revoke_all_but(
        &self,
        uow: &mut Uow,
        user: UserId,
        keep_family: SessionFamilyId,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StorageError> {
        diesel::update(
            sessions::table
                .filter(sessions::user_id.eq(user.as_uuid()))
                .filter(sessions::family_id.ne(keep_family.as_uuid()))
                .filter(sessions::revoked_at.is_null()),
        )
        .set((
            sessions::revoked_at.eq(now),
            sessions::revoked_reason.eq(reason),
        ))
        .execute(connection_of(uow)?)
        .await
        .map_err(storage)?;
        Ok(())
    }
}
