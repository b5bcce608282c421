//! Seed data: the reference rows every installation needs (permissions, the four
//! profiles and their grants, the plans) and an optional demo user and workspace.
//! Every function is idempotent: running it again converges on the same rows.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use fluxolab_identity::{EmailAddress, PasswordHash};
use fluxolab_kernel::{Permission, UserId, WorkspaceId};
use fluxolab_workspace::{PlanCode, Role};
use uuid::Uuid;

use crate::StoreError;
use crate::schema::{
    permissions, plans, profile_permissions, profiles, users, workspace_members, workspaces,
};

/// What a reference seed wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReferenceSeed {
    pub permissions: usize,
    pub profiles: usize,
    pub grants: usize,
    pub plans: usize,
}

/// Upserts permissions, profiles with exactly their role's grants, and plans with their
/// default limits, in one transaction.
pub async fn seed_reference_data(
    connection: &mut AsyncPgConnection,
) -> Result<ReferenceSeed, StoreError> {
    connection
        .transaction(async |connection| {
            for permission in Permission::ALL {
                diesel::insert_into(permissions::table)
                    .values((
                        permissions::code.eq(permission.code()),
                        permissions::description.eq(permission.description()),
                    ))
                    .on_conflict(permissions::code)
                    .do_update()
                    .set(permissions::description.eq(excluded(permissions::description)))
                    .execute(connection)
                    .await?;
            }

            let mut grants = 0;
            for role in Role::ALL {
                let profile_id: Uuid = diesel::insert_into(profiles::table)
                    .values((
                        profiles::code.eq(role.code()),
                        profiles::name.eq(role.display_name()),
                    ))
                    .on_conflict(profiles::code)
                    .do_update()
                    .set(profiles::name.eq(excluded(profiles::name)))
                    .returning(profiles::id)
                    .get_result(connection)
                    .await?;
                let codes: Vec<&str> = role.grants().into_iter().map(Permission::code).collect();
                let granted: Vec<Uuid> = permissions::table
                    .filter(permissions::code.eq_any(&codes))
                    .select(permissions::id)
                    .load(connection)
                    .await?;
                diesel::delete(
                    profile_permissions::table
                        .filter(profile_permissions::profile_id.eq(profile_id))
                        .filter(profile_permissions::permission_id.ne_all(&granted)),
                )
                .execute(connection)
                .await?;
                let rows: Vec<_> = granted
                    .iter()
                    .map(|permission_id| {
                        (
                            profile_permissions::profile_id.eq(profile_id),
                            profile_permissions::permission_id.eq(*permission_id),
                        )
                    })
                    .collect();
                diesel::insert_into(profile_permissions::table)
                    .values(&rows)
                    .on_conflict_do_nothing()
                    .execute(connection)
                    .await?;
                grants += rows.len();
            }

            for plan in PlanCode::ALL {
                let limits = serde_json::to_value(plan.default_limits())
                    .map_err(|error| diesel::result::Error::SerializationError(Box::new(error)))?;
                let price = i32::try_from(plan.monthly_price_cents()).unwrap_or(i32::MAX);
                diesel::insert_into(plans::table)
                    .values((
                        plans::code.eq(plan.code()),
                        plans::name.eq(plan.display_name()),
                        plans::monthly_price_cents.eq(price),
                        plans::limits.eq(&limits),
                    ))
                    .on_conflict(plans::code)
                    .do_update()
                    .set((
                        plans::name.eq(excluded(plans::name)),
                        plans::monthly_price_cents.eq(excluded(plans::monthly_price_cents)),
                        plans::limits.eq(excluded(plans::limits)),
                        plans::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(connection)
                    .await?;
            }

            Ok(ReferenceSeed {
                permissions: Permission::ALL.len(),
                profiles: Role::ALL.len(),
                grants,
                plans: PlanCode::ALL.len(),
            })
        })
        .await
}

/// The demo account to create.
#[derive(Debug)]
pub struct DemoAccount<'a> {
    pub email: &'a EmailAddress,
    pub display_name: &'a str,
    pub password_hash: &'a PasswordHash,
    pub workspace_name: &'a str,
    pub workspace_slug: &'a str,
}

/// What the demo seed left in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoSeed {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    /// False when the demo user already existed (its password is left unchanged).
    pub created_user: bool,
}

/// Ensures the demo workspace, the demo user and the user's owner membership exist.
/// Needs the reference data (the `owner` profile).
pub async fn seed_demo(
    connection: &mut AsyncPgConnection,
    account: &DemoAccount<'_>,
) -> Result<DemoSeed, StoreError> {
    connection
        .transaction(async |connection| {
            diesel::insert_into(workspaces::table)
                .values((
                    workspaces::id.eq(WorkspaceId::new().as_uuid()),
                    workspaces::name.eq(account.workspace_name),
                    workspaces::slug.eq(account.workspace_slug),
                ))
                .on_conflict(workspaces::slug)
                .do_nothing()
                .execute(connection)
                .await?;
            let workspace_id: Uuid = workspaces::table
                .filter(workspaces::slug.eq(account.workspace_slug))
                .select(workspaces::id)
                .get_result(connection)
                .await?;

            let existing: Option<Uuid> = users::table
                .filter(users::email.eq(account.email.as_str()))
                .select(users::id)
                .first(connection)
                .await
                .optional()?;
            let (user_id, created_user) = match existing {
                Some(id) => (id, false),
                None => {
                    let id = UserId::new().as_uuid();
                    diesel::insert_into(users::table)
                        .values((
                            users::id.eq(id),
                            users::email.eq(account.email.as_str()),
                            users::password_hash.eq(account.password_hash.as_str()),
                            users::display_name.eq(account.display_name),
                            users::default_workspace_id.eq(workspace_id),
                            users::email_verified_at.eq(diesel::dsl::now),
                        ))
                        .execute(connection)
                        .await?;
                    (id, true)
                }
            };

            let owner_profile: Uuid = profiles::table
                .filter(profiles::code.eq(Role::Owner.code()))
                .select(profiles::id)
                .get_result(connection)
                .await?;
            diesel::insert_into(workspace_members::table)
                .values((
                    workspace_members::workspace_id.eq(workspace_id),
                    workspace_members::user_id.eq(user_id),
                    workspace_members::profile_id.eq(owner_profile),
                ))
                .on_conflict_do_nothing()
                .execute(connection)
                .await?;

            Ok(DemoSeed {
                user_id: UserId::from_uuid(user_id),
                workspace_id: WorkspaceId::from_uuid(workspace_id),
                created_user,
            })
        })
        .await
}
