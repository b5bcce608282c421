//! Workspaces, memberships and the activity log (the workspace domain's ports).
//! Provisioning stores the workspace domain's `ProvisioningPlan` as given.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{Page, PageRequest, Permission, StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::Role;
use fluxolab_workspace::default_workspace::HeldMembership;
use fluxolab_workspace::model::{Activity, ActivityFilter, Member, Workspace};
use fluxolab_workspace::ports::{
    ActivityRepository, AddMemberError, MemberRepository, WorkspaceRepository,
};
use fluxolab_workspace::provisioning::ProvisioningPlan;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::is_unique_violation;
use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{
    activities, permissions, plans, profile_permissions, profiles, subscriptions, users,
    workspace_data_keys, workspace_environments, workspace_members, workspace_settings, workspaces,
};
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// The workspace domain's storage over the pool.
    PgWorkspaces
);

fn role_of(code: &str) -> Result<Role, StorageError> {
    code.parse().map_err(storage)
}

impl PgWorkspaces {
    async fn workspaces_of(
        &self,
        user: UserId,
        only: Option<WorkspaceId>,
    ) -> Result<Vec<Workspace>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let mut query = workspace_members::table
            .inner_join(workspaces::table)
            .inner_join(profiles::table)
            .inner_join(
                subscriptions::table
                    .on(subscriptions::workspace_id.eq(workspace_members::workspace_id)),
            )
            .inner_join(plans::table.on(plans::id.eq(subscriptions::plan_id)))
            .filter(workspace_members::user_id.eq(user.as_uuid()))
            .filter(workspaces::archived_at.is_null())
            .select((
                workspaces::id,
                workspaces::name,
                workspaces::slug,
                profiles::code,
                plans::code,
                workspaces::created_at,
                workspaces::updated_at,
            ))
            .order(workspaces::created_at.asc())
            .into_boxed();
        if let Some(workspace) = only {
            query = query.filter(workspaces::id.eq(workspace.as_uuid()));
        }
        let rows: Vec<(
            Uuid,
            String,
            String,
            String,
            String,
            OffsetDateTime,
            OffsetDateTime,
        )> = query.load(&mut connection).await.map_err(storage)?;
        rows.into_iter()
            .map(|(id, name, slug, role, plan, created_at, updated_at)| {
                Ok(Workspace {
                    id: WorkspaceId::from_uuid(id),
                    name,
                    slug,
                    role: role_of(&role)?,
                    plan,
                    created_at,
                    updated_at,
                })
            })
            .collect()
    }
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
}

#[async_trait]
impl WorkspaceRepository for PgWorkspaces {
    #[tracing::instrument(name = "db.workspaces.provision", level = "debug", skip_all)]
    async fn provision(&self, uow: &mut Uow, plan: &ProvisioningPlan) -> Result<(), StorageError> {
        let connection = connection_of(uow)?;
        let workspace = &plan.workspace;
        let id = workspace.id.as_uuid();
        diesel::insert_into(workspaces::table)
            .values((
                workspaces::id.eq(id),
                workspaces::name.eq(workspace.name.as_str()),
                workspaces::slug.eq(&workspace.slug),
            ))
            .execute(connection)
            .await
            .map_err(storage)?;
        diesel::insert_into(workspace_settings::table)
            .values(workspace_settings::workspace_id.eq(id))
            .execute(connection)
            .await
            .map_err(storage)?;
        let environments: Vec<_> = plan
            .environments
            .iter()
            .map(|environment| {
                (
                    workspace_environments::id.eq(environment.id.as_uuid()),
                    workspace_environments::workspace_id.eq(id),
                    workspace_environments::name.eq(environment.name.as_str()),
                    workspace_environments::is_default.eq(environment.is_default),
                )
            })
            .collect();
        diesel::insert_into(workspace_environments::table)
            .values(&environments)
            .execute(connection)
            .await
            .map_err(storage)?;
        // Raw: an INSERT … SELECT in a CTE whose row count tells whether the plan exists.
        let subscribed: Inserted = diesel::sql_query(
            "WITH inserted AS ( \
               INSERT INTO subscriptions (id, workspace_id, plan_id, current_period_start, current_period_end) \
               SELECT $1, $2, id, $4, $5 FROM plans WHERE code = $3 RETURNING 1) \
             SELECT count(*) AS rows FROM inserted",
        )
        .bind::<SqlUuid, _>(Uuid::now_v7())
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(plan.plan.code())
        .bind::<Timestamptz, _>(plan.period.start)
        .bind::<Timestamptz, _>(plan.period.end)
        .get_result(connection)
        .await
        .map_err(storage)?;
        if subscribed.rows != 1 {
            return Err(corrupt(format!(
                "the `{}` plan is missing: run `fluxolab migrate`",
                plan.plan.code()
            )));
        }
        insert_member(
            connection,
            workspace.id,
            workspace.owner,
            plan.owner_role,
            None,
        )
        .await
        .map_err(storage)?;
        if let Some(key) = &plan.data_key {
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
                .map_err(storage)?;
        }
        if plan.set_as_default {
            store_default_workspace(connection, workspace.owner, Some(workspace.id)).await?;
        }
        Ok(())
    }

    #[tracing::instrument(name = "db.workspaces.list_for_user", level = "debug", skip_all)]
    async fn list_for_user(&self, user: UserId) -> Result<Vec<Workspace>, StorageError> {
        self.workspaces_of(user, None).await
    }

    #[tracing::instrument(name = "db.workspaces.find_for_member", level = "debug", skip_all)]
    async fn find_for_member(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Workspace>, StorageError> {
        Ok(self
            .workspaces_of(user, Some(workspace))
            .await?
            .into_iter()
            .next())
    }

    #[tracing::instrument(name = "db.workspaces.rename", level = "debug", skip_all)]
    async fn rename(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
    ) -> Result<(), StorageError> {
        diesel::update(workspaces::table.find(workspace.as_uuid()))
            .set((
                workspaces::name.eq(name),
                workspaces::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection_of(uow)?)
            .await
            .map_err(storage)?;
        Ok(())
    }
}

async fn store_default_workspace(
    connection: &mut diesel_async::AsyncPgConnection,
    user: UserId,
    workspace: Option<WorkspaceId>,
) -> Result<(), StorageError> {
    diesel::update(users::table.find(user.as_uuid()))
        .set((
            users::default_workspace_id.eq(workspace.map(|id| id.as_uuid())),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection)
        .await
        .map_err(storage)?;
    Ok(())
}

/// The user with this e-mail address (stored lower-cased).
pub(crate) async fn user_by_email(
    connection: &mut diesel_async::AsyncPgConnection,
    email: &str,
) -> Result<Option<UserId>, StorageError> {
    let id: Option<Uuid> = users::table
        .filter(users::email.eq(email.to_lowercase()))
        .select(users::id)
        .first(connection)
        .await
        .optional()
        .map_err(storage)?;
    Ok(id.map(UserId::from_uuid))
}

/// Adds `user` to `workspace` with `role` (invited by `invited_by`, if anyone).
pub(crate) async fn insert_member(
    connection: &mut diesel_async::AsyncPgConnection,
    workspace: WorkspaceId,
    user: UserId,
    role: Role,
    invited_by: Option<UserId>,
) -> Result<(), diesel::result::Error> {
    // Raw: INSERT … SELECT mixing bound values with the role's looked-up id.
    diesel::sql_query(
        "INSERT INTO workspace_members (workspace_id, user_id, profile_id, invited_by) \
         SELECT $1, $2, id, $4 FROM profiles WHERE code = $3",
    )
    .bind::<SqlUuid, _>(workspace.as_uuid())
    .bind::<SqlUuid, _>(user.as_uuid())
    .bind::<Text, _>(role.code())
    .bind::<diesel::sql_types::Nullable<SqlUuid>, _>(invited_by.map(|id| id.as_uuid()))
    .execute(connection)
    .await
    .map(drop)
}

type MemberRow = (Uuid, String, String, String, OffsetDateTime);

fn member((user, email, display_name, role, joined_at): MemberRow) -> Result<Member, StorageError> {
    Ok(Member {
        user_id: UserId::from_uuid(user),
        email,
        display_name,
        role: role_of(&role)?,
        joined_at,
    })
}

#[async_trait]
impl MemberRepository for PgWorkspaces {
    #[tracing::instrument(name = "db.members.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Member>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::oldest_first!(
            workspace_members::table
                .inner_join(users::table)
                .inner_join(profiles::table)
                .filter(workspace_members::workspace_id.eq(workspace.as_uuid()))
                .select((
                    users::id,
                    users::email,
                    users::display_name,
                    profiles::code,
                    workspace_members::created_at,
                )),
            page,
            workspace_members::created_at,
            users::id
        );
        let rows: Vec<MemberRow> = query.load(&mut connection).await.map_err(storage)?;
        crate::keyset::page_of(rows, page, member, Member::cursor)
    }

    #[tracing::instrument(name = "db.members.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Member>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<MemberRow> = workspace_members::table
            .inner_join(users::table)
            .inner_join(profiles::table)
            .filter(workspace_members::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_members::user_id.eq(user.as_uuid()))
            .select((
                users::id,
                users::email,
                users::display_name,
                profiles::code,
                workspace_members::created_at,
            ))
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(member).transpose()
    }

    #[tracing::instrument(name = "db.members.user_by_email", level = "debug", skip_all)]
    async fn user_by_email(&self, email: &str) -> Result<Option<UserId>, StorageError> {
        user_by_email(&mut *pooled(&self.pool).await?, email).await
    }

    #[tracing::instrument(name = "db.members.lock", level = "debug", skip_all)]
    async fn lock(&self, uow: &mut Uow, workspace: WorkspaceId) -> Result<(), StorageError> {
        workspaces::table
            .find(workspace.as_uuid())
            .select(workspaces::id)
            .for_update()
            .execute(connection_of(uow)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.members.count_owners", level = "debug", skip_all)]
    async fn count_owners(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
    ) -> Result<u32, StorageError> {
        let count: i64 = workspace_members::table
            .inner_join(profiles::table)
            .filter(workspace_members::workspace_id.eq(workspace.as_uuid()))
            .filter(profiles::code.eq(Role::Owner.code()))
            .count()
            .get_result(connection_of(uow)?)
            .await
            .map_err(storage)?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    #[tracing::instrument(name = "db.members.add", level = "debug", skip_all)]
    async fn add(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
        invited_by: UserId,
    ) -> Result<(), AddMemberError> {
        insert_member(connection_of(uow)?, workspace, user, role, Some(invited_by))
            .await
            .map_err(|error| {
                if is_unique_violation(&error, "workspace_members_pkey") {
                    AddMemberError::AlreadyMember
                } else {
                    AddMemberError::Storage(storage(error))
                }
            })
    }

    #[tracing::instrument(name = "db.members.set_role", level = "debug", skip_all)]
    async fn set_role(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
    ) -> Result<(), StorageError> {
        let profile_id = profiles::table
            .filter(profiles::code.eq(role.code()))
            .select(profiles::id)
            .single_value()
            .assume_not_null();
        diesel::update(workspace_members::table)
            .filter(workspace_members::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_members::user_id.eq(user.as_uuid()))
            .set((
                workspace_members::profile_id.eq(profile_id),
                workspace_members::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection_of(uow)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.members.remove", level = "debug", skip_all)]
    async fn remove(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<(), StorageError> {
        diesel::delete(
            workspace_members::table
                .filter(workspace_members::workspace_id.eq(workspace.as_uuid()))
                .filter(workspace_members::user_id.eq(user.as_uuid())),
        )
        .execute(connection_of(uow)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.members.lock_default_of", level = "debug", skip_all)]
    async fn lock_default_of(
        &self,
        uow: &mut Uow,
        user: UserId,
    ) -> Result<Option<WorkspaceId>, StorageError> {
        let default: Option<Option<Uuid>> = users::table
            .find(user.as_uuid())
            .select(users::default_workspace_id)
            .for_update()
            .first(connection_of(uow)?)
            .await
            .optional()
            .map_err(storage)?;
        Ok(default.flatten().map(WorkspaceId::from_uuid))
    }

    #[tracing::instrument(name = "db.members.held_by", level = "debug", skip_all)]
    async fn held_by(
        &self,
        uow: &mut Uow,
        user: UserId,
    ) -> Result<Vec<HeldMembership>, StorageError> {
        let rows: Vec<(Uuid, String, OffsetDateTime)> = workspace_members::table
            .inner_join(workspaces::table)
            .inner_join(profiles::table)
            .filter(workspace_members::user_id.eq(user.as_uuid()))
            .filter(workspaces::archived_at.is_null())
            .select((
                workspace_members::workspace_id,
                profiles::code,
                workspace_members::created_at,
            ))
            .load(connection_of(uow)?)
            .await
            .map_err(storage)?;
        rows.into_iter()
            .map(|(workspace, role, joined_at)| {
                Ok(HeldMembership {
                    workspace_id: WorkspaceId::from_uuid(workspace),
                    role: role_of(&role)?,
                    joined_at,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "db.members.store_default", level = "debug", skip_all)]
    async fn store_default(
        &self,
        uow: &mut Uow,
        user: UserId,
        workspace: Option<WorkspaceId>,
    ) -> Result<(), StorageError> {
        store_default_workspace(connection_of(uow)?, user, workspace).await
    }

    #[tracing::instrument(name = "db.members.access", level = "debug", skip_all)]
    async fn access(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<(Role, Vec<Permission>)>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<(String, Option<String>)> = workspace_members::table
            .inner_join(workspaces::table)
            .inner_join(profiles::table)
            .left_join(
                profile_permissions::table.on(profile_permissions::profile_id.eq(profiles::id)),
            )
            .left_join(
                permissions::table.on(permissions::id.eq(profile_permissions::permission_id)),
            )
            .filter(workspace_members::workspace_id.eq(workspace.as_uuid()))
            .filter(workspace_members::user_id.eq(user.as_uuid()))
            .filter(workspaces::archived_at.is_null())
            .select((profiles::code, permissions::code.nullable()))
            .load(&mut connection)
            .await
            .map_err(storage)?;
        // Spelled out: diesel's blanket `RunQueryDsl::first` would shadow the slice method.
        let Some((role, _)) = <[_]>::first(&rows) else {
            return Ok(None);
        };
        let role = role_of(role)?;
        // Codes this build does not know (seeded by a newer one) grant nothing.
        let granted = rows
            .iter()
            .filter_map(|(_, code)| code.as_deref()?.parse().ok())
            .collect();
        Ok(Some((role, granted)))
    }
}

#[async_trait]
impl ActivityRepository for PgWorkspaces {
    #[tracing::instrument(name = "db.activity.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        filter: &ActivityFilter,
        page: PageRequest,
    ) -> Result<Page<Activity>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let mut query = crate::keyset::newest_first!(
            activities::table
                .filter(activities::workspace_id.eq(workspace.as_uuid()))
                .select((
                    activities::id,
                    activities::actor_user_id,
                    activities::actor_api_key_id,
                    activities::action,
                    activities::target_type,
                    activities::target_id,
                    activities::metadata,
                    activities::created_at,
                )),
            page,
            activities::created_at,
            activities::id
        );
        if let Some(action) = &filter.action {
            query = query.filter(activities::action.eq(action.clone()));
        }
        if let Some(actor) = filter.actor_user_id {
            query = query.filter(activities::actor_user_id.eq(actor.as_uuid()));
        }
        if let Some(since) = filter.since {
            query = query.filter(activities::created_at.ge(since));
        }
        type Row = (
            Uuid,
            Option<Uuid>,
            Option<Uuid>,
            String,
            Option<String>,
            Option<String>,
            serde_json::Value,
            OffsetDateTime,
        );
        let rows: Vec<Row> = query.load(&mut connection).await.map_err(storage)?;
        let items = rows
            .into_iter()
            .map(
                |(id, user, key, action, target_type, target_id, metadata, created_at)| Activity {
                    id,
                    actor_user_id: user.map(UserId::from_uuid),
                    actor_api_key_id: key.map(fluxolab_kernel::ApiKeyId::from_uuid),
                    action,
                    target_type,
                    target_id,
                    metadata,
                    created_at,
                },
            )
            .collect();
        Ok(Page::from_rows(items, page, Activity::cursor))
    }
}
