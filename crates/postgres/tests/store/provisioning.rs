//! The provisioning port's contract (`WorkspaceRepository::provision`), written once
//! against the ports and run against Postgres: the plan given is stored exactly — the
//! workspace with its name and slug, its environments and which is the default, the
//! subscription's plan and period, the owner's role, the data key, the owner's default
//! workspace — and the adapter adds no choice of its own. Everything is read back
//! through ports too.

use async_trait::async_trait;
use fluxolab_credentials::envelope::MasterKeys;
use fluxolab_credentials::ports::DataKeyRepository;
use fluxolab_identity::ports::UserRepository;
use fluxolab_identity::{DisplayName, EmailAddress, NewUser, PasswordHash};
use fluxolab_kernel::{EnvironmentId, UnitOfWorkFactory, UserId};
use fluxolab_postgres::TestDb;
use fluxolab_postgres::accounts::PgAccounts;
use fluxolab_postgres::billing::PgBilling;
use fluxolab_postgres::environments::PgEnvironments;
use fluxolab_postgres::seed::seed_reference_data;
use fluxolab_postgres::unit_of_work::PgUnits;
use fluxolab_postgres::vault::PgVault;
use fluxolab_postgres::workspaces::PgWorkspaces;
use fluxolab_workspace::billing::BillingRepository;
use fluxolab_workspace::environments::EnvironmentRepository;
use fluxolab_workspace::model::WorkspaceName;
use fluxolab_workspace::ports::WorkspaceRepository;
use fluxolab_workspace::provisioning::{PlannedEnvironment, ProvisioningPlan, personal_name};
use fluxolab_workspace::{PlanCode, Role};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::TestResult;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Accounts to own the provisioned workspaces (provisioning needs an existing user).
#[async_trait]
pub trait Owners: Send + Sync {
    async fn new_owner(&self) -> Result<UserId, Error>;
}

/// The ports the suite provisions through and reads back with.
pub struct ProvisioningPorts<'a> {
    pub units: &'a dyn UnitOfWorkFactory,
    pub workspaces: &'a dyn WorkspaceRepository,
    pub environments: &'a dyn EnvironmentRepository,
    pub billing: &'a dyn BillingRepository,
    pub keys: &'a dyn DataKeyRepository,
    pub users: &'a dyn UserRepository,
    pub owners: &'a dyn Owners,
}

/// Provisions `plan` in a unit of its own and checks every part of it was stored.
async fn stores_exactly(ports: &ProvisioningPorts<'_>, plan: &ProvisioningPlan) -> TestResult {
    let mut unit = ports.units.begin().await?;
    ports.workspaces.provision(unit.as_mut(), plan).await?;
    unit.commit().await?;
    let id = plan.workspace.id;
    let owner = plan.workspace.owner;

    let workspace = ports
        .workspaces
        .find_for_member(id, owner)
        .await?
        .ok_or("the owner is not a member")?;
    assert_eq!(workspace.name, plan.workspace.name.as_str());
    assert_eq!(workspace.slug, plan.workspace.slug);
    assert_eq!(workspace.role, plan.owner_role);
    assert_eq!(workspace.plan, plan.plan.code());

    let mut stored: Vec<(EnvironmentId, String, bool)> = ports
        .environments
        .list(id)
        .await?
        .into_iter()
        .map(|environment| (environment.id, environment.name, environment.is_default))
        .collect();
    let mut planned: Vec<(EnvironmentId, String, bool)> = plan
        .environments
        .iter()
        .map(|environment| {
            (
                environment.id,
                environment.name.clone(),
                environment.is_default,
            )
        })
        .collect();
    stored.sort_by(|a, b| a.1.cmp(&b.1));
    planned.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(stored, planned);

    let subscription = ports.billing.subscription(id).await?;
    assert_eq!(subscription.plan, plan.plan);
    assert_eq!(subscription.current_period_start, plan.period.start);
    assert_eq!(subscription.current_period_end, plan.period.end);

    assert_eq!(ports.keys.active(id).await?, plan.data_key);

    let user = ports.users.find(owner).await?.ok_or("the owner is gone")?;
    if plan.set_as_default {
        assert_eq!(user.default_workspace_id, Some(id));
    } else {
        assert_ne!(user.default_workspace_id, Some(id));
    }
    Ok(())
}

/// A new account's plan, as the domain builds it (with a data key): stored as given.
pub async fn stores_a_new_accounts_plan(
    ports: &ProvisioningPorts<'_>,
    keys: &MasterKeys,
) -> TestResult {
    let owner = ports.owners.new_owner().await?;
    let plan =
        ProvisioningPlan::for_new_account(owner, personal_name("Ada"), OffsetDateTime::now_utc())
            .with_data_key(keys)?;
    assert_eq!(plan.environments.len(), 3);
    stores_exactly(ports, &plan).await
}

/// A plan unlike any the domain makes today — other names, another default, another
/// plan, role and period, no data key, no default workspace: stored as given too, so
/// the adapter supplies none of these itself.
pub async fn stores_an_unusual_plan_as_given(ports: &ProvisioningPorts<'_>) -> TestResult {
    let owner = ports.owners.new_owner().await?;
    let mut plan = ProvisioningPlan::additional(
        owner,
        WorkspaceName::parse("Unusual")?,
        datetime!(2031-07-09 10:00 UTC),
    );
    plan.workspace.slug = format!("chosen-by-the-domain-{}", plan.workspace.id);
    plan.environments = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|name| PlannedEnvironment {
            id: EnvironmentId::new(),
            name: name.to_owned(),
            is_default: name == "beta",
        })
        .collect();
    plan.plan = PlanCode::Business;
    plan.owner_role = Role::Admin;
    assert_eq!(plan.period.start, datetime!(2031-07-01 00:00 UTC));
    stores_exactly(ports, &plan).await?;
    let user = ports.users.find(owner).await?.ok_or("the owner is gone")?;
    assert_eq!(user.default_workspace_id, None, "a default was set unasked");
    Ok(())
}

/// The whole contract.
pub async fn provisioning_contract(ports: &ProvisioningPorts<'_>, keys: &MasterKeys) -> TestResult {
    stores_a_new_accounts_plan(ports, keys).await?;
    stores_an_unusual_plan_as_given(ports).await
}

struct PgOwners {
    units: PgUnits,
    accounts: PgAccounts,
}

#[async_trait]
impl Owners for PgOwners {
    async fn new_owner(&self) -> Result<UserId, Error> {
        let user = NewUser {
            id: UserId::new(),
            email: EmailAddress::parse(&format!("{}@example.com", uuid::Uuid::new_v4()))?,
            display_name: DisplayName::parse("Owner")?,
            password_hash: PasswordHash::from_stored("$argon2id$fixture".into()),
        };
        let mut unit = self.units.begin().await?;
        self.accounts.insert(unit.as_mut(), &user).await?;
        unit.commit().await?;
        Ok(user.id)
    }
}

#[tokio::test]
async fn postgres_provisioning_keeps_the_provisioning_contract() -> TestResult {
    let db = TestDb::new().await?;
    seed_reference_data(&mut *db.pool().get().await?).await?;
    let pool = db.pool();
    let (units, workspaces) = (PgUnits::new(pool.clone()), PgWorkspaces::new(pool.clone()));
    let (environments, billing) = (
        PgEnvironments::new(pool.clone()),
        PgBilling::new(pool.clone()),
    );
    let (vault, accounts) = (PgVault::new(pool.clone()), PgAccounts::new(pool.clone()));
    let owners = PgOwners {
        units: PgUnits::new(db.pool().clone()),
        accounts: PgAccounts::new(db.pool().clone()),
    };
    let ports = ProvisioningPorts {
        units: &units,
        workspaces: &workspaces,
        environments: &environments,
        billing: &billing,
        keys: &vault,
        users: &accounts,
        owners: &owners,
    };
    let keys = MasterKeys::new(b"contract-test-secret-0123456789abcdef", None)?;
    provisioning_contract(&ports, &keys).await
}
