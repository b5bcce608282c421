//! Registration is one unit of work: when a step fails, nothing of it remains.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_app::hasher::BlockingArgon2;
use fluxolab_app::provisioning::PersonalWorkspaces;
use fluxolab_identity::ports::WorkspaceProvisioner;
use fluxolab_identity::{
    AccountError, AccountPorts, AccountService, PasswordHash, Registration, TokenIssuer,
    TokenSettings,
};
use fluxolab_kernel::{StorageError, SystemClock, Uow, UserId, WorkspaceId};
use fluxolab_postgres::TestDb;
use fluxolab_postgres::accounts::PgAccounts;
use fluxolab_postgres::activity_log::PgAudit;
use fluxolab_postgres::seed::seed_reference_data;
use fluxolab_postgres::unit_of_work::PgUnits;
use fluxolab_postgres::workspaces::PgWorkspaces;
use fluxolab_workspace::Provisioner;
use secrecy::SecretString;

use crate::TestResult;
use crate::helpers::PASSWORD;

/// Provisions for real, then fails: the last step of registration never happens.
struct FailsAfterProvisioning(PersonalWorkspaces);

#[async_trait]
impl WorkspaceProvisioner for FailsAfterProvisioning {
    async fn provision_personal(
        &self,
        uow: &mut Uow,
        owner: UserId,
        name: &str,
    ) -> Result<WorkspaceId, StorageError> {
        self.0.provision_personal(uow, owner, name).await?;
        Err(StorageError::new(std::io::Error::other("injected failure")))
    }
}

fn service(db: &TestDb, provisioner: Arc<dyn WorkspaceProvisioner>) -> AccountService {
    let pool = db.pool().clone();
    let clock = Arc::new(SystemClock);
    let accounts = Arc::new(PgAccounts::new(pool.clone()));
    AccountService::new(
        AccountPorts {
            units: Arc::new(PgUnits::new(pool)),
            users: accounts.clone(),
            profiles: accounts.clone(),
            sessions: accounts,
            provisioner,
            hasher: Arc::new(BlockingArgon2),
            tokens: Arc::new(TokenIssuer::new(
                &[9; 32],
                TokenSettings::default(),
                clock.clone(),
            )),
            clock,
        },
        PasswordHash::from_stored("$argon2id$decoy".into()),
    )
}

fn registration() -> Registration {
    Registration {
        email: "rollback@example.com".into(),
        password: SecretString::from(PASSWORD.to_owned()),
        display_name: "Rolled Back".into(),
    }
}

async fn count(db: &TestDb, table: &str) -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
    use diesel::QueryableByName;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let mut connection = db.pool().get().await?;
    let row: Count = diesel::sql_query(format!("SELECT count(*) AS count FROM {table}"))
        .get_result(&mut connection)
        .await?;
    Ok(row.count)
}

const PROVISIONED_TABLES: [&str; 9] = [
    "users",
    "user_settings",
    "user_security_settings",
    "workspaces",
    "workspace_members",
    "workspace_settings",
    "workspace_environments",
    "subscriptions",
    "activities",
];

#[tokio::test]
async fn a_failed_registration_leaves_no_row_behind_and_the_pool_healthy() -> TestResult {
    let db = TestDb::new().await?;
    seed_reference_data(&mut *db.pool().get().await?).await?;
    let pool = db.pool().clone();
    let workspaces = PersonalWorkspaces(Arc::new(Provisioner::new(
        Arc::new(PgWorkspaces::new(pool.clone())),
        Arc::new(PgAudit::new(pool)),
        None,
        Arc::new(SystemClock),
    )));

    let failed = service(&db, Arc::new(FailsAfterProvisioning(workspaces.clone())))
        .register(registration())
        .await;
    assert!(
        matches!(failed, Err(AccountError::Storage(_))),
        "{failed:?}"
    );
    for table in PROVISIONED_TABLES {
        assert_eq!(
            count(&db, table).await?,
            0,
            "{table} kept a row of the failed registration"
        );
    }

    // The same registration then succeeds: nothing half-written blocks it.
    let user = service(&db, Arc::new(workspaces))
        .register(registration())
        .await?;
    assert!(user.default_workspace_id.is_some());
    for table in PROVISIONED_TABLES {
        assert!(
            count(&db, table).await? >= 1,
            "{table} is empty after a good registration"
        );
    }
    assert_eq!(count(&db, "workspace_environments").await?, 3);
    Ok(())
}
