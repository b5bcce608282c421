//! Seed data: the reference rows every installation needs (permissions, the four
//! profiles and their grants, the plans) and an optional demo user and workspace.
//! Every function is idempotent: running it again converges on the same rows.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use fluxolab_identity::ports::{InsertUserError, UserRepository};
use fluxolab_identity::{DisplayName, EmailAddress, NewUser, PasswordHash};
use fluxolab_kernel::{Permission, StorageError, UnitOfWorkFactory, UserId, WorkspaceId};
use fluxolab_workspace::model::WorkspaceName;
use fluxolab_workspace::ports::WorkspaceRepository;
use fluxolab_workspace::provisioning::ProvisioningPlan;
use fluxolab_workspace::{PlanCode, Role};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::accounts::PgAccounts;
use crate::schema::{permissions, plans, profile_permissions, profiles};
use crate::unit_of_work::PgUnits;
use crate::workspaces::PgWorkspaces;
use crate::{DbPool, StoreError};

/// What of the reference data is missing, in one line; `None` when every permission,
/// role profile and plan is there (a database `fluxolab migrate` prepared).
pub async fn missing_reference_data(
    connection: &mut AsyncPgConnection,
) -> Result<Option<String>, StoreError> {
    let codes: Vec<String> = permissions::table
        .select(permissions::code)
        .load(connection)
        .await?;
    let roles: Vec<String> = profiles::table
        .select(profiles::code)
        .load(connection)
        .await?;
    let plan_codes: Vec<String> = plans::table.select(plans::code).load(connection).await?;
    let missing: Vec<&str> = Permission::ALL
        .iter()
        .map(|permission| permission.code())
        .filter(|code| !codes.iter().any(|found| found == code))
        .chain(
            Role::ALL
                .iter()
                .map(|role| role.code())
                .filter(|code| !roles.iter().any(|found| found == code)),
        )
        .chain(
            PlanCode::ALL
                .iter()
                .map(|plan| plan.code())
                .filter(|code| !plan_codes.iter().any(|found| found == code)),
        )
        .collect();
    Ok((!missing.is_empty()).then(|| missing.join(", ")))
}

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
    pub display_name: &'a DisplayName,
    pub password_hash: &'a PasswordHash,
    pub workspace_name: &'a WorkspaceName,
}

/// What the demo seed left in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoSeed {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    /// False when the demo user already existed (it is left unchanged).
    pub created_user: bool,
}

/// Ensures the demo user exists with a provisioned workspace it owns, exactly as
/// registration would leave it. Needs the reference data (plans and profiles).
pub async fn seed_demo(pool: &DbPool, account: &DemoAccount<'_>) -> Result<DemoSeed, StoreError> {
    let accounts = PgAccounts::new(pool.clone());
    if let Some(existing) = accounts
        .find_for_login(account.email)
        .await
        .map_err(|error| StoreError::Seed(Box::new(error)))?
        && let Some(workspace_id) = existing.default_workspace_id
    {
        return Ok(DemoSeed {
            user_id: existing.user_id,
            workspace_id,
            created_user: false,
        });
    }
    let workspaces = PgWorkspaces::new(pool.clone());
    let user = NewUser {
        id: UserId::new(),
        email: account.email.clone(),
        display_name: account.display_name.clone(),
        password_hash: account.password_hash.clone(),
    };
    // What any new account's first workspace gets (the workspace domain's plan), under
    // the demo's name. No data key: the seed runs without `APP_SECRET`; the vault makes
    // one on first use.
    let plan = ProvisioningPlan::for_new_account(
        user.id,
        account.workspace_name.clone(),
        OffsetDateTime::now_utc(),
    );
    let failed = |error: StorageError| StoreError::Seed(Box::new(error));
    let mut unit = PgUnits::new(pool.clone()).begin().await.map_err(failed)?;
    accounts
        .insert(unit.as_mut(), &user)
        .await
        .map_err(|error| match error {
            InsertUserError::EmailTaken => {
                StoreError::Seed("the demo e-mail is taken by a user without a workspace".into())
            }
            InsertUserError::Storage(error) => failed(error),
        })?;
    workspaces
        .provision(unit.as_mut(), &plan)
        .await
        .map_err(failed)?;
    unit.commit().await.map_err(failed)?;
    Ok(DemoSeed {
        user_id: user.id,
        workspace_id: plan.workspace.id,
        created_user: true,
    })
}
