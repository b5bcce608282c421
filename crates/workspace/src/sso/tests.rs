//! The SSO decisions with every port mocked: plan gating and discovery before anything
//! is written, refusals recorded, provisioning in one transaction, tickets used once.

use std::collections::BTreeMap;
use std::sync::Arc;

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::integrations::MockIntegrationEvents;
use fluxolab_kernel::owned_secrets::MockOwnedSecrets;
use fluxolab_kernel::plan_guard::MockPlanGuard;
use fluxolab_kernel::testing::{
    Captured, Journal, admits_once, opens_once, records_once_in_the_unit,
};
use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use fluxolab_kernel::{
    Actor, AuditEvent, CredentialId, ManualClock, Permission, Principal, SecretString, UserId,
    WorkspaceId,
};
use time::OffsetDateTime;

use super::login::{LoginError, LoginRefusal, TICKET_TTL, digest_of};
use super::ports::{
    MockOidcClient, MockSsoDirectory, MockSsoLogins, MockSsoRepository, PendingLogin, TakenLogin,
    Ticket, VerifiedIdentity,
};
use super::*;
use crate::settings::MockSettingsRepository;
use crate::{PlanCode, Role};

const STATE: &str = "state-from-the-provider";

struct Mocks {
    units: MockUnitOfWorkFactory,
    configs: MockSsoRepository,
    logins: MockSsoLogins,
    directory: MockSsoDirectory,
    secrets: MockOwnedSecrets,
    client: MockOidcClient,
    plans: MockPlanGuard,
    audit: MockAuditLog,
    events: MockIntegrationEvents,
    clock: Arc<ManualClock>,
}

impl Mocks {
    fn new() -> Self {
        Self {
            units: MockUnitOfWorkFactory::new(),
            configs: MockSsoRepository::new(),
            logins: MockSsoLogins::new(),
            directory: MockSsoDirectory::new(),
            secrets: MockOwnedSecrets::new(),
            client: MockOidcClient::new(),
            plans: MockPlanGuard::new(),
            audit: MockAuditLog::new(),
            events: MockIntegrationEvents::new(),
            clock: Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
        }
    }

    fn service(self) -> SsoService {
        let mut settings = MockSettingsRepository::new();
        settings.expect_find().returning(|_| Ok(None));
        SsoService::new(Arc::new(SsoPorts {
            units: Arc::new(self.units),
            configs: Arc::new(self.configs),
            logins: Arc::new(self.logins),
            directory: Arc::new(self.directory),
            secrets: Arc::new(self.secrets),
            settings: Arc::new(settings),
            client: Arc::new(self.client),
            plans: Arc::new(self.plans),
            audit: Arc::new(self.audit),
            integration_events: Arc::new(self.events),
            clock: self.clock,
        }))
    }
}

fn admin(workspace: WorkspaceId) -> Principal {
    Principal::new(
        Actor::User(UserId::new()),
        workspace,
        vec![Permission::SettingsRead, Permission::SettingsManage],
    )
}

fn submission() -> SsoSubmission {
    SsoSubmission {
        issuer: "https://id.example.com".into(),
        client_id: "fluxolab".into(),
        client_secret: Some(SecretString::from("s3cret".to_owned())),
        ..SsoSubmission::default()
    }
}

fn config(workspace: WorkspaceId, jit: bool) -> SsoConfig {
    SsoConfig {
        id: SsoConfigId::new(),
        workspace_id: workspace,
        issuer: "https://id.example.com".into(),
        client_id: "fluxolab".into(),
        client_secret: CredentialId::new(),
        scopes: vec!["openid".into(), "email".into()],
        allowed_domains: vec!["corp.test".into()],
        groups_claim: "groups".into(),
        role_mapping: BTreeMap::from([("eng".to_owned(), Role::Editor)]),
        default_role: Role::Viewer,
        jit_provisioning: jit,
        enforce_sso: true,
        enabled: true,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

fn on_plan(configs: &mut MockSsoRepository, plan: PlanCode) {
    configs.expect_plan_of().returning(move |_| Ok(Some(plan)));
}

#[tokio::test]
async fn a_plan_without_sso_is_refused_before_anything_is_checked_or_begun() {
    let workspace = WorkspaceId::new();
    let mut mocks = Mocks::new();
    on_plan(&mut mocks.configs, PlanCode::Pro);
    mocks.client.expect_discover().never();
    mocks.units.expect_begin().never();
    let result = mocks
        .service()
        .configure(&admin(workspace), submission())
        .await;
    assert!(matches!(result, Err(SsoError::PlanLimit(reached)) if reached.name == "sso"));
}

#[tokio::test]
async fn an_issuer_that_fails_discovery_is_named_and_nothing_is_written() {
    let workspace = WorkspaceId::new();
    let mut mocks = Mocks::new();
    on_plan(&mut mocks.configs, PlanCode::Business);
    mocks.configs.expect_find().returning(|_| Ok(None));
    mocks.client.expect_discover().returning(|_, _| {
        Err(OidcFailure::BadProvider(
            "the document names another issuer".into(),
        ))
    });
    mocks.units.expect_begin().never();
    let result = mocks
        .service()
        .configure(&admin(workspace), submission())
        .await;
    let Err(SsoError::Invalid(errors)) = result else {
        panic!("expected a validation error, got {result:?}");
    };
    assert_eq!(errors.errors()[0].field, "issuer");
    assert!(errors.errors()[0].message.contains("another issuer"));
}

#[tokio::test]
async fn an_unknown_state_is_refused_without_asking_the_provider() {
    let mut mocks = Mocks::new();
    mocks.logins.expect_take_pending().returning(|_| Ok(None));
    mocks.client.expect_exchange().never();
    mocks.audit.expect_record().never();
    let result = call_back(mocks).await;
    assert!(matches!(
        result,
        Err(LoginError::Refused(LoginRefusal::BadState))
    ));
}

fn pending(mocks: &mut Mocks, config: &SsoConfig) {
    let workspace = config.workspace_id;
    mocks.logins.expect_take_pending().returning(move |hash| {
        assert_eq!(hash, digest_of(STATE));
        Ok(Some(TakenLogin {
            login: PendingLogin {
                state_hash: hash,
                workspace_id: workspace,
                nonce: "nonce".into(),
                code_verifier: SecretString::from("verifier".to_owned()),
                expires_at: OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(10),
            },
            replayed: false,
        }))
    });
    let found = config.clone();
    mocks
        .configs
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    mocks
        .secrets
        .expect_open()
        .returning(|_, _| Ok(SecretString::from("s3cret".to_owned())));
}

fn identity(email: &str, verified: bool) -> VerifiedIdentity {
    VerifiedIdentity {
        subject: "sub-1".into(),
        email: Some(email.into()),
        email_verified: verified,
        name: Some("Ada".into()),
        groups: vec!["eng".into()],
    }
}

/// The provider vouches for ada@corp.test, whom FluxoLab does not know.
fn a_stranger_signs_in(mocks: &mut Mocks) {
    mocks
        .client
        .expect_exchange()
        .returning(|_, _| Ok(identity("ada@corp.test", true)));
    mocks
        .directory
        .expect_find_user()
        .returning(|_, _| Ok(None));
}

/// The provider's answer to a login started with [`STATE`].
async fn call_back(mocks: Mocks) -> Result<SecretString, LoginError> {
    mocks
        .service()
        .callback("code", STATE, "https://x/cb")
        .await
}

fn refused_with(mocks: &mut Mocks, events: &Captured<AuditEvent>) {
    let events = events.clone();
    mocks
        .audit
        .expect_record()
        .times(1)
        .returning(move |event| {
            events.keep(event);
            Ok(())
        });
    mocks.units.expect_begin().never();
}

#[tokio::test]
async fn foreign_domains_and_unverified_addresses_are_refused_and_recorded() -> Result<(), String> {
    for (email, verified, reason) in [
        ("eve@evil.test", true, "domain_not_allowed"),
        ("ada@corp.test", false, "unverified_email"),
    ] {
        let config = config(WorkspaceId::new(), true);
        let mut mocks = Mocks::new();
        pending(&mut mocks, &config);
        let given = identity(email, verified);
        mocks
            .client
            .expect_exchange()
            .returning(move |_, _| Ok(given.clone()));
        let events = Captured::default();
        refused_with(&mut mocks, &events);
        let result = call_back(mocks).await;
        assert!(
            matches!(&result, Err(LoginError::Refused(refusal)) if refusal.code() == reason),
            "{result:?}"
        );
        let event = events.only()?;
        assert_eq!(event.action, "sso.login_refused");
        assert_eq!(event.metadata["reason"], reason);
    }
    Ok(())
}

#[tokio::test]
async fn a_wrong_nonce_is_refused_as_such() -> Result<(), String> {
    let config = config(WorkspaceId::new(), true);
    let mut mocks = Mocks::new();
    pending(&mut mocks, &config);
    mocks
        .client
        .expect_exchange()
        .returning(|_, _| Err(OidcFailure::NonceMismatch));
    let events = Captured::default();
    refused_with(&mut mocks, &events);
    let result = call_back(mocks).await;
    assert!(matches!(
        result,
        Err(LoginError::Refused(LoginRefusal::BadNonce))
    ));
    assert_eq!(events.only()?.metadata["reason"], "bad_nonce");
    Ok(())
}

#[tokio::test]
async fn without_jit_a_stranger_is_refused() {
    let config = config(WorkspaceId::new(), false);
    let mut mocks = Mocks::new();
    pending(&mut mocks, &config);
    a_stranger_signs_in(&mut mocks);
    refused_with(&mut mocks, &Captured::default());
    let result = call_back(mocks).await;
    assert!(matches!(
        result,
        Err(LoginError::Refused(LoginRefusal::NoJit))
    ));
}

#[tokio::test]
async fn jit_provisions_user_membership_and_ticket_in_one_transaction() -> Result<(), String> {
    let config = config(WorkspaceId::new(), true);
    let workspace = config.workspace_id;
    let mut mocks = Mocks::new();
    pending(&mut mocks, &config);
    a_stranger_signs_in(&mut mocks);
    let (journal, unit, events) = (
        Journal::default(),
        RecordingUnitOfWork::default(),
        Captured::default(),
    );
    opens_once(&mut mocks.units, &unit);
    admits_once(
        &mut mocks.plans,
        &journal,
        &unit,
        (workspace, fluxolab_kernel::LimitedResource::Members),
        None,
    );
    let (j, u) = (journal.clone(), unit.clone());
    mocks
        .directory
        .expect_create_user()
        .times(1)
        .returning(move |uow, _, email, name, _| {
            j.note(format!(
                "create_user {email} {name} {}",
                fluxolab_kernel::testing::place(uow, &u)
            ));
            Ok(())
        });
    let (j, u) = (journal.clone(), unit.clone());
    mocks
        .directory
        .expect_add_member()
        .times(1)
        .returning(move |uow, _, _, role| {
            j.note(format!(
                "add_member {} {}",
                role.code(),
                fluxolab_kernel::testing::place(uow, &u)
            ));
            Ok(())
        });
    let tickets: Captured<Ticket> = Captured::default();
    let (j, u, kept) = (journal.clone(), unit.clone(), tickets.clone());
    mocks
        .logins
        .expect_insert_ticket()
        .times(1)
        .returning(move |uow, ticket| {
            j.note(format!(
                "insert_ticket {}",
                fluxolab_kernel::testing::place(uow, &u)
            ));
            kept.keep(ticket);
            Ok(())
        });
    records_once_in_the_unit(&mut mocks.audit, &journal, &unit, &events);
    let ticket = call_back(mocks).await.map_err(|error| error.to_string())?;
    assert_eq!(
        journal.entries(),
        [
            "plans.admit in the unit",
            "create_user ada@corp.test Ada in the unit",
            "add_member editor in the unit",
            "insert_ticket in the unit",
            "audit.record_in sso.login in the unit",
        ]
    );
    let stored = tickets.only()?;
    assert_eq!(
        stored.ticket_hash,
        digest_of(fluxolab_kernel::ExposeSecret::expose_secret(&ticket))
    );
    assert_eq!(stored.expires_at, OffsetDateTime::UNIX_EPOCH + TICKET_TTL);
    assert!(unit.committed.load(std::sync::atomic::Ordering::SeqCst));
    Ok(())
}

#[tokio::test]
async fn an_expired_ticket_is_refused() {
    let mut mocks = Mocks::new();
    let clock = mocks.clock.clone();
    mocks.logins.expect_take_ticket().returning(|hash| {
        Ok(Some(Ticket {
            ticket_hash: hash,
            workspace_id: WorkspaceId::new(),
            user_id: UserId::new(),
            expires_at: OffsetDateTime::UNIX_EPOCH + TICKET_TTL,
        }))
    });
    let service = mocks.service();
    clock.advance(TICKET_TTL);
    let ticket = SecretString::from("t".to_owned());
    assert!(matches!(
        service.redeem(&ticket).await,
        Err(LoginError::TicketInvalid)
    ));
}

#[tokio::test]
async fn enforced_sso_leaves_password_access_to_owners_only() -> Result<(), StorageError> {
    let workspace = WorkspaceId::new();
    let (owner, editor) = (UserId::new(), UserId::new());
    let mut mocks = Mocks::new();
    let found = config(workspace, true);
    mocks
        .configs
        .expect_find()
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
    mocks.directory.expect_role_of().returning(move |_, user| {
        Ok(Some(if user == owner {
            Role::Owner
        } else {
            Role::Editor
        }))
    });
    let service = mocks.service();
    assert!(service.admits_password(workspace, owner).await?);
    assert!(!service.admits_password(workspace, editor).await?);
    Ok(())
}
