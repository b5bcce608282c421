use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_identity::{DisplayName, EmailAddress, PasswordHash};
use fluxolab_kernel::Permission;
use fluxolab_postgres::TestDb;
use fluxolab_postgres::schema::{
    permissions, plans, profile_permissions, profiles, users, workspace_environments,
    workspace_members,
};
use fluxolab_postgres::seed::{self, DemoAccount};
use fluxolab_workspace::model::WorkspaceName;
use fluxolab_workspace::{PlanCode, PlanLimits, Role};

use crate::TestResult;

async fn grants_of(
    connection: &mut diesel_async::AsyncPgConnection,
    role: Role,
) -> QueryResult<Vec<String>> {
    profile_permissions::table
        .inner_join(profiles::table)
        .inner_join(permissions::table)
        .filter(profiles::code.eq(role.code()))
        .select(permissions::code)
        .order(permissions::code)
        .load(connection)
        .await
}

#[tokio::test]
async fn reference_seed_is_idempotent_and_grants_each_role_its_permissions() -> TestResult {
    let db = TestDb::new().await?;
    let mut connection = db.pool().get().await?;
    let first = seed::seed_reference_data(&mut connection).await?;
    let second = seed::seed_reference_data(&mut connection).await?;
    assert_eq!(first, second);

    let permission_count: i64 = permissions::table
        .count()
        .get_result(&mut connection)
        .await?;
    assert_eq!(permission_count, Permission::ALL.len() as i64);
    let grant_count: i64 = profile_permissions::table
        .count()
        .get_result(&mut connection)
        .await?;
    assert_eq!(grant_count, first.grants as i64);

    let owner = grants_of(&mut connection, Role::Owner).await?;
    assert_eq!(owner.len(), Permission::ALL.len());
    let viewer = grants_of(&mut connection, Role::Viewer).await?;
    assert!(viewer.contains(&"workflows.read".to_owned()));
    assert!(!viewer.contains(&"workflows.write".to_owned()));
    Ok(())
}

#[tokio::test]
async fn reference_seed_restores_a_removed_grant_and_drops_a_stray_one() -> TestResult {
    let db = TestDb::new().await?;
    let mut connection = db.pool().get().await?;
    seed::seed_reference_data(&mut connection).await?;
    let viewer: uuid::Uuid = profiles::table
        .filter(profiles::code.eq("viewer"))
        .select(profiles::id)
        .get_result(&mut connection)
        .await?;
    let billing: uuid::Uuid = permissions::table
        .filter(permissions::code.eq("billing.manage"))
        .select(permissions::id)
        .get_result(&mut connection)
        .await?;
    diesel::insert_into(profile_permissions::table)
        .values((
            profile_permissions::profile_id.eq(viewer),
            profile_permissions::permission_id.eq(billing),
        ))
        .execute(&mut connection)
        .await?;
    diesel::delete(profile_permissions::table.filter(profile_permissions::profile_id.eq(viewer)))
        .filter(profile_permissions::permission_id.ne(billing))
        .execute(&mut connection)
        .await?;

    seed::seed_reference_data(&mut connection).await?;
    let expected: Vec<String> = {
        let mut codes: Vec<String> = Role::Viewer
            .grants()
            .iter()
            .map(|p| p.code().to_owned())
            .collect();
        codes.sort();
        codes
    };
    assert_eq!(grants_of(&mut connection, Role::Viewer).await?, expected);
    Ok(())
}

#[tokio::test]
async fn plans_are_seeded_with_typed_limits() -> TestResult {
    let db = TestDb::new().await?;
    let mut connection = db.pool().get().await?;
    seed::seed_reference_data(&mut connection).await?;
    for plan in PlanCode::ALL {
        let limits: serde_json::Value = plans::table
            .filter(plans::code.eq(plan.code()))
            .select(plans::limits)
            .get_result(&mut connection)
            .await?;
        let limits: PlanLimits = serde_json::from_value(limits)?;
        assert_eq!(limits, plan.default_limits());
    }
    Ok(())
}

#[tokio::test]
async fn demo_seed_provisions_an_owned_workspace_once() -> TestResult {
    let db = TestDb::new().await?;
    let mut connection = db.pool().get().await?;
    seed::seed_reference_data(&mut connection).await?;
    let email = EmailAddress::parse("demo@fluxolab.dev")?;
    let hash = PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    let display_name = DisplayName::parse("Demo")?;
    let workspace_name = WorkspaceName::parse("Demo workspace")?;
    let account = DemoAccount {
        email: &email,
        display_name: &display_name,
        password_hash: &hash,
        workspace_name: &workspace_name,
    };
    let first = seed::seed_demo(db.pool(), &account).await?;
    let second = seed::seed_demo(db.pool(), &account).await?;
    assert!(first.created_user);
    assert!(!second.created_user);
    assert_eq!(first.user_id, second.user_id);
    assert_eq!(first.workspace_id, second.workspace_id);

    let default_workspace: Option<uuid::Uuid> = users::table
        .find(first.user_id.as_uuid())
        .select(users::default_workspace_id)
        .get_result(&mut connection)
        .await?;
    assert_eq!(default_workspace, Some(first.workspace_id.as_uuid()));
    let role: String = workspace_members::table
        .inner_join(profiles::table)
        .filter(workspace_members::user_id.eq(first.user_id.as_uuid()))
        .select(profiles::code)
        .get_result(&mut connection)
        .await?;
    assert_eq!(role, "owner");
    let environments: i64 = workspace_environments::table
        .filter(workspace_environments::workspace_id.eq(first.workspace_id.as_uuid()))
        .count()
        .get_result(&mut connection)
        .await?;
    assert_eq!(environments, 3);
    Ok(())
}
