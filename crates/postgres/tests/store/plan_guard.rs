//! The `PlanGuard` contract, written once against the port and run against
//! `PgPlanGuard`: admits under the limit, refuses at it (naming the limit, its value and
//! the current count), and two units admitting at once cannot overshoot.

use async_trait::async_trait;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use fluxolab_identity::ports::UserRepository;
use fluxolab_identity::{DisplayName, EmailAddress, NewUser, PasswordHash};
use fluxolab_kernel::{
    LimitedResource, PlanGuard, PlanLimitReached, UnitOfWorkFactory, Uow, UserId, WorkspaceId,
};
use fluxolab_postgres::accounts::PgAccounts;
use fluxolab_postgres::plans::PgPlanGuard;
use fluxolab_postgres::seed::seed_reference_data;
use fluxolab_postgres::unit_of_work::{PgUnits, connection_of};
use fluxolab_postgres::workspaces::PgWorkspaces;
use fluxolab_postgres::{DbPool, TestDb};
use fluxolab_workspace::Role;
use fluxolab_workspace::model::WorkspaceName;
use fluxolab_workspace::ports::{MemberRepository, WorkspaceRepository};
use fluxolab_workspace::provisioning::ProvisioningPlan;
use time::OffsetDateTime;

use crate::TestResult;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Workspaces with a known limit, and a way to add one more counted thing.
#[async_trait]
pub trait Limited: Send + Sync {
    /// The resource the fixture counts.
    fn resource(&self) -> LimitedResource;
    /// A workspace whose plan allows `limit` of the resource and that holds `holding`.
    async fn workspace(&self, limit: u32, holding: u32) -> Result<WorkspaceId, Error>;
    /// Adds one more of the resource inside `unit`.
    async fn add_one(&self, unit: &mut Uow, workspace: WorkspaceId) -> Result<(), Error>;
    /// How many the workspace holds (committed).
    async fn count(&self, workspace: WorkspaceId) -> Result<u32, Error>;
}

/// Under the limit: admitted.
pub async fn admits_under_the_limit(
    guard: &dyn PlanGuard,
    units: &dyn UnitOfWorkFactory,
    limited: &dyn Limited,
) -> TestResult {
    let workspace = limited.workspace(3, 2).await?;
    let mut unit = units.begin().await?;
    let verdict = guard
        .admit(unit.as_mut(), workspace, limited.resource())
        .await?;
    assert_eq!(verdict, None, "refused under the limit");
    Ok(())
}

/// At the limit: refused with the limit's name, its value and the current count.
pub async fn refuses_at_the_limit(
    guard: &dyn PlanGuard,
    units: &dyn UnitOfWorkFactory,
    limited: &dyn Limited,
) -> TestResult {
    let resource = limited.resource();
    let workspace = limited.workspace(2, 2).await?;
    let mut unit = units.begin().await?;
    let verdict = guard.admit(unit.as_mut(), workspace, resource).await?;
    assert_eq!(
        verdict,
        Some(PlanLimitReached {
            name: resource.limit_name(),
            value: 2,
            current: 2,
        })
    );
    Ok(())
}

/// Admit, and when admitted add one and commit; the refusal when refused.
async fn admit_and_add(
    guard: &dyn PlanGuard,
    units: &dyn UnitOfWorkFactory,
    limited: &dyn Limited,
    workspace: WorkspaceId,
) -> Result<Option<PlanLimitReached>, Error> {
    let mut unit = units.begin().await?;
    if let Some(reached) = guard
        .admit(unit.as_mut(), workspace, limited.resource())
        .await?
    {
        return Ok(Some(reached));
    }
    limited.add_one(unit.as_mut(), workspace).await?;
    unit.commit().await?;
    Ok(None)
}

/// One place left, two units asking at once: one is admitted, one refused.
pub async fn concurrent_admits_cannot_overshoot(
    guard: &dyn PlanGuard,
    units: &dyn UnitOfWorkFactory,
    limited: &dyn Limited,
) -> TestResult {
    let workspace = limited.workspace(3, 2).await?;
    let (one, two) = tokio::join!(
        admit_and_add(guard, units, limited, workspace),
        admit_and_add(guard, units, limited, workspace),
    );
    let (one, two) = (one?, two?);
    let refused: Vec<_> = [one, two].into_iter().flatten().collect();
    assert_eq!(refused.len(), 1, "exactly one of the two must be refused");
    assert_eq!(refused[0].current, 3);
    assert_eq!(limited.count(workspace).await?, 3, "the plan was overshot");
    Ok(())
}

/// The whole contract.
pub async fn plan_guard_contract(
    guard: &dyn PlanGuard,
    units: &dyn UnitOfWorkFactory,
    limited: &dyn Limited,
) -> TestResult {
    admits_under_the_limit(guard, units, limited).await?;
    refuses_at_the_limit(guard, units, limited).await?;
    concurrent_admits_cannot_overshoot(guard, units, limited).await
}

/// Members of workspaces on a `free` plan whose `max_members` the fixture sets.
struct PgMembers {
    pool: DbPool,
    units: PgUnits,
    accounts: PgAccounts,
    workspaces: PgWorkspaces,
}

impl PgMembers {
    async fn user(&self, unit: &mut Uow) -> Result<UserId, Error> {
        let user = NewUser {
            id: UserId::new(),
            email: EmailAddress::parse(&format!("{}@example.com", uuid::Uuid::new_v4()))?,
            display_name: DisplayName::parse("Member")?,
            password_hash: PasswordHash::from_stored("$argon2id$fixture".into()),
        };
        self.accounts.insert(unit, &user).await?;
        Ok(user.id)
    }
}

#[async_trait]
impl Limited for PgMembers {
    fn resource(&self) -> LimitedResource {
        LimitedResource::Members
    }

    async fn workspace(&self, limit: u32, holding: u32) -> Result<WorkspaceId, Error> {
        let mut unit = self.units.begin().await?;
        let owner = self.user(unit.as_mut()).await?;
        let plan = ProvisioningPlan::additional(
            owner,
            WorkspaceName::parse("Limited")?,
            OffsetDateTime::now_utc(),
        );
        self.workspaces.provision(unit.as_mut(), &plan).await?;
        let workspace = plan.workspace.id;
        for _ in 1..holding {
            self.add_one(unit.as_mut(), workspace).await?;
        }
        diesel::sql_query(
            "UPDATE plans SET limits = jsonb_set(limits, ARRAY[$1], to_jsonb($2)) WHERE code = 'free'",
        )
        .bind::<Text, _>(self.resource().limit_name())
        .bind::<BigInt, _>(i64::from(limit))
        .execute(connection_of(unit.as_mut())?)
        .await?;
        unit.commit().await?;
        assert_eq!(self.count(workspace).await?, holding);
        Ok(workspace)
    }

    async fn add_one(&self, unit: &mut Uow, workspace: WorkspaceId) -> Result<(), Error> {
        let user = self.user(unit).await?;
        let inviter = user;
        self.workspaces
            .add(unit, workspace, user, Role::Viewer, inviter)
            .await?;
        Ok(())
    }

    async fn count(&self, workspace: WorkspaceId) -> Result<u32, Error> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            count: i64,
        }
        let row: Count = diesel::sql_query(
            "SELECT count(*) AS count FROM workspace_members WHERE workspace_id = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(workspace.as_uuid())
        .get_result(&mut self.pool.get().await?)
        .await?;
        Ok(u32::try_from(row.count)?)
    }
}

#[tokio::test]
async fn the_postgres_plan_guard_keeps_the_plan_guard_contract() -> TestResult {
    let db = TestDb::new().await?;
    seed_reference_data(&mut *db.pool().get().await?).await?;
    let pool = db.pool().clone();
    let members = PgMembers {
        units: PgUnits::new(pool.clone()),
        accounts: PgAccounts::new(pool.clone()),
        workspaces: PgWorkspaces::new(pool.clone()),
        pool: pool.clone(),
    };
    plan_guard_contract(&PgPlanGuard, &PgUnits::new(pool), &members).await
}
