//! The LDAP use cases' decisions, with their ports mocked: the plan gate, the lockout of
//! wrong passwords, and the last owner the sync keeps.

use std::collections::BTreeMap;
use std::sync::Arc;

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::integrations::MockIntegrationEvents;
use fluxolab_kernel::owned_secrets::MockOwnedSecrets;
use fluxolab_kernel::plan_guard::MockPlanGuard;
use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use fluxolab_kernel::{
    Actor, CredentialId, IntegrationEventKind, Permission, Principal, SecretString, SystemClock,
    UserId, WorkspaceId,
};
use time::OffsetDateTime;

use super::login::{LdapLogin, LdapLoginError};
use super::ports::{MockDirectory, MockDirectoryAccounts, MockLdapRepository};
use super::*;
use crate::billing::{MockBillingRepository, Subscription};
use crate::model::Member;
use crate::ports::MockMemberRepository;
use crate::settings::MockSettingsRepository;

/// Every port, mocked; each test sets what it expects.
#[derive(Default)]
struct Mocks {
    units: MockUnitOfWorkFactory,
    repository: MockLdapRepository,
    secrets: MockOwnedSecrets,
    settings: MockSettingsRepository,
    billing: MockBillingRepository,
    directory: MockDirectory,
    members: MockMemberRepository,
    plans: MockPlanGuard,
    accounts: MockDirectoryAccounts,
    audit: MockAuditLog,
    events: MockIntegrationEvents,
}

impl Mocks {
    fn on_plan(mut self, plan: PlanCode) -> Self {
        self.billing.expect_subscription().returning(move |_| {
            Ok(Subscription {
                plan,
                limits: plan.default_limits(),
                status: "active".to_owned(),
                current_period_start: OffsetDateTime::UNIX_EPOCH,
                current_period_end: OffsetDateTime::UNIX_EPOCH,
            })
        });
        self
    }

    /// Settings stored for `workspace`, their password opened, no internal networks.
    fn configured(mut self, workspace: WorkspaceId) -> Self {
        self.repository
            .expect_find()
            .returning(move |_| Ok(Some(settings(workspace))));
        self.secrets
            .expect_open()
            .returning(|_, _| Ok(SecretString::from("svc".to_owned())));
        self.settings.expect_find().returning(|_| Ok(None));
        self
    }

    fn ports(self) -> Arc<LdapPorts> {
        Arc::new(LdapPorts {
            units: Arc::new(self.units),
            repository: Arc::new(self.repository),
            secrets: Arc::new(self.secrets),
            settings: Arc::new(self.settings),
            billing: Arc::new(self.billing),
            directory: Arc::new(self.directory),
            members: Arc::new(self.members),
            plans: Arc::new(self.plans),
            accounts: Arc::new(self.accounts),
            audit: Arc::new(self.audit),
            integration_events: Arc::new(self.events),
            clock: Arc::new(SystemClock),
        })
    }
}

fn settings(workspace: WorkspaceId) -> LdapSettings {
    LdapSettings {
        workspace_id: workspace,
        config: LdapConfig {
            url: "ldap://directory.example.com".to_owned(),
            start_tls: false,
            bind_dn: "cn=svc,dc=x".to_owned(),
            base_dn: "dc=x".to_owned(),
            user_filter: "(uid={username})".to_owned(),
            email_attribute: "mail".to_owned(),
            name_attribute: "cn".to_owned(),
            group_base_dn: None,
            group_filter: "(member={dn})".to_owned(),
            role_mapping: BTreeMap::new(),
            default_role: Role::Viewer,
            sync_interval_minutes: 0,
            enabled: true,
        },
        bind_password: CredentialId::new(),
        last_sync: None,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

fn admin(workspace: WorkspaceId) -> Principal {
    Principal::new(
        Actor::User(UserId::new()),
        workspace,
        [Permission::SettingsRead, Permission::SettingsManage],
    )
}

fn ada() -> DirectoryEntry {
    DirectoryEntry {
        dn: "uid=ada,dc=x".to_owned(),
        email: Some("ada@example.com".to_owned()),
        name: Some("Ada".to_owned()),
        groups: Vec::new(),
    }
}

#[tokio::test]
async fn a_plan_without_ldap_is_refused_before_anything_is_written() {
    let workspace = WorkspaceId::new();
    let mut mocks = Mocks::default().on_plan(PlanCode::Pro);
    mocks.repository.expect_find().returning(|_| Ok(None));
    mocks.units.expect_begin().never();
    let submitted = SubmittedLdap {
        url: "ldap://directory.example.com".to_owned(),
        start_tls: None,
        bind_dn: "cn=svc,dc=x".to_owned(),
        bind_password: Some(SecretString::from("svc".to_owned())),
        base_dn: "dc=x".to_owned(),
        user_filter: None,
        email_attribute: None,
        name_attribute: None,
        group_base_dn: None,
        group_filter: None,
        role_mapping: None,
        default_role: None,
        sync_interval_minutes: None,
        enabled: None,
    };
    let result = LdapService::new(mocks.ports())
        .put(&admin(workspace), submitted)
        .await;
    assert!(
        matches!(&result, Err(LdapError::PlanLimit(reached)) if reached.name == "ldap"),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_counts_towards_the_lockout_and_writes_nothing() {
    let workspace = WorkspaceId::new();
    let local = UserId::new();
    let mut mocks = Mocks::default()
        .on_plan(PlanCode::Business)
        .configured(workspace);
    mocks
        .repository
        .expect_resolve_workspace()
        .returning(move |_| Ok(Some(workspace)));
    mocks
        .directory
        .expect_authenticate()
        .returning(|_, _, _| Ok(Authentication::WrongPassword(ada())));
    mocks.accounts.expect_find().returning(move |_| {
        Ok(Some(LocalAccount {
            user_id: local,
            locked_until: None,
        }))
    });
    mocks
        .accounts
        .expect_failed_login()
        .withf(move |user| *user == local)
        .times(1)
        .returning(|_| Ok(()));
    mocks.units.expect_begin().never();
    let result = LdapLogin::new(mocks.ports())
        .login("acme", "ada", &SecretString::from("wrong".to_owned()))
        .await;
    assert!(
        matches!(result, Err(LdapLoginError::InvalidCredentials)),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_sync_keeps_the_last_owner_and_says_so() {
    let workspace = WorkspaceId::new();
    let owner = UserId::new();
    let unit = RecordingUnitOfWork::default();
    let mut mocks = Mocks::default()
        .on_plan(PlanCode::Enterprise)
        .configured(workspace);
    mocks
        .units
        .expect_begin()
        .returning(move || Ok(Box::new(unit.clone())));
    mocks.repository.expect_links().returning(move |_| {
        Ok(vec![LdapLink {
            workspace_id: workspace,
            user_id: owner,
            username: "ada".to_owned(),
            dn: "uid=ada,dc=x".to_owned(),
            mapped_role: Role::Viewer,
        }])
    });
    // ada is no longer in the directory.
    mocks
        .directory
        .expect_lookup()
        .returning(|_, _| Ok(vec![None]));
    mocks.members.expect_lock().returning(|_, _| Ok(()));
    mocks.members.expect_find().returning(move |_, _| {
        Ok(Some(Member {
            user_id: owner,
            email: "ada@example.com".to_owned(),
            display_name: "Ada".to_owned(),
            role: Role::Owner,
            joined_at: OffsetDateTime::UNIX_EPOCH,
        }))
    });
    mocks.members.expect_count_owners().returning(|_, _| Ok(1));
    mocks.members.expect_remove().never();
    mocks
        .repository
        .expect_record_sync()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .events
        .expect_record()
        .withf(|event| event.event == IntegrationEventKind::TestFailed)
        .times(1)
        .returning(|_| Ok(()));
    let record = LdapService::new(mocks.ports())
        .sync_now(&admin(workspace))
        .await
        .expect("the sync runs");
    assert_eq!(record.result.removed, 0);
    assert_eq!(record.result.errors.len(), 1, "{:?}", record.result.errors);
    assert!(record.result.errors[0].contains("last owner"));
}
