//! `WebhookService`'s decisions with its ports mocked: who may change registrations,
//! validation before any write, the signing secret sealed in the vault in the unit of its
//! registration (a generated one returned once), the activity in the same unit, and what
//! a replay may start — never a rejected event, only a bound workflow's version deployed
//! in the registration's environment, within the quota, audited in the unit of its run.

use std::sync::{Arc, Mutex};

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::environment::MockEnvironmentDirectory;
use fluxolab_kernel::owned_secrets::MockOwnedSecrets;
use fluxolab_kernel::plan_guard::MockUsageGate;
use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use fluxolab_kernel::{
    Actor, Admission, CredentialId, EnvironmentId, ExposeSecret, ManualClock, SecretString, UserId,
    WorkspaceId,
};
use fluxolab_workflows::execution::TriggerKind;
use fluxolab_workflows::model::{Deployment, Workflow};
use fluxolab_workflows::start::QueuedRun;
use time::OffsetDateTime;

use super::*;
use crate::intake::IntakeSettings;
use crate::ports::{MockConversationRepository, MockEventStore, MockRegistrationRepository};
use crate::test_support::StartMocks;

use fluxolab_kernel::testing::{Captured, Journal, place};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn committed(unit: &RecordingUnitOfWork) -> bool {
    unit.committed.load(std::sync::atomic::Ordering::SeqCst)
}

fn environment(name: &str) -> EnvironmentRef {
    EnvironmentRef {
        id: EnvironmentId::new(),
        name: name.to_owned(),
    }
}

/// The fields a validation error names, sorted.
fn fields(error: &Result<impl std::fmt::Debug, WebhookError>) -> Vec<String> {
    let mut fields: Vec<String> = match error {
        Err(WebhookError::Invalid(errors)) => errors
            .errors()
            .iter()
            .map(|error| error.field.clone())
            .collect(),
        other => vec![format!("not a validation error: {other:?}")],
    };
    fields.sort();
    fields.dedup();
    fields
}

fn conflict_code(error: &Result<ExecutionId, WebhookError>) -> Option<&'static str> {
    match error {
        Err(WebhookError::Conflict(conflict)) => Some(conflict.code.as_str()),
        _ => None,
    }
}

/// Webhook use cases over mocked ports, in one workspace with `production` (the
/// default) and `staging`. Each test sets the mocks up, then calls
/// [`Webhooks::service`]; a port called without an expectation fails the test.
struct Webhooks {
    workspace: WorkspaceId,
    user: UserId,
    production: EnvironmentRef,
    staging: EnvironmentRef,
    /// The unit the service is handed.
    unit: RecordingUnitOfWork,
    /// The unit the start use case is handed.
    start_unit: RecordingUnitOfWork,
    journal: Journal,
    units: MockUnitOfWorkFactory,
    registrations: MockRegistrationRepository,
    events: MockEventStore,
    secrets: MockOwnedSecrets,
    audit: MockAuditLog,
    environments: MockEnvironmentDirectory,
    start: StartMocks,
    /// What the intake reads registrations from.
    intake_registrations: MockRegistrationRepository,
}

impl Webhooks {
    fn new() -> Self {
        Self {
            workspace: WorkspaceId::new(),
            user: UserId::new(),
            production: environment("production"),
            staging: environment("staging"),
            unit: RecordingUnitOfWork::default(),
            start_unit: RecordingUnitOfWork::default(),
            journal: Journal::default(),
            units: MockUnitOfWorkFactory::new(),
            registrations: MockRegistrationRepository::new(),
            events: MockEventStore::new(),
            secrets: MockOwnedSecrets::new(),
            audit: MockAuditLog::new(),
            environments: MockEnvironmentDirectory::new(),
            start: StartMocks::default(),
            intake_registrations: MockRegistrationRepository::new(),
        }
    }

    fn member_with(&self, permissions: impl IntoIterator<Item = Permission>) -> Principal {
        Principal::new(Actor::User(self.user), self.workspace, permissions)
    }

    fn editor(&self) -> Principal {
        self.member_with([
            Permission::WebhooksRead,
            Permission::WebhooksWrite,
            Permission::WorkflowsRun,
        ])
    }

    /// A registration of the workspace in `staging`, bound to no workflow.
    fn registration(&self, provider: Provider, secret: Option<CredentialId>) -> Registration {
        Registration {
            id: WebhookRegistrationId::new(),
            workspace_id: self.workspace,
            name: "Orders".to_owned(),
            provider,
            public_id: "pub-orders".to_owned(),
            verify_token_hash: Some(token_hash("let-me-in")),
            signing_credential_id: secret,
            workflow_id: None,
            environment: self.staging.clone(),
            response_mode: ResponseMode::Immediate,
            enabled: true,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// The directory knows `production` and `staging`, by name or id.
    fn knows_environments(&mut self) {
        let known = [self.production.clone(), self.staging.clone()];
        self.environments
            .expect_resolve()
            .returning(move |_, reference| {
                let reference = reference.unwrap_or("production");
                Ok(known
                    .iter()
                    .find(|environment| {
                        environment.name == reference || environment.id.to_string() == reference
                    })
                    .cloned())
            });
    }

    fn workflows_exist(&mut self, exist: bool) {
        self.registrations
            .expect_workflow_exists()
            .returning(move |_, _| Ok(exist));
    }

    /// `registration` is found by its id.
    fn finds(&mut self, registration: &Registration) {
        let found = registration.clone();
        self.registrations
            .expect_find()
            .withf(move |workspace, id| *workspace == found.workspace_id && *id == found.id)
            .returning({
                let found = registration.clone();
                move |_, _| Ok(Some(found.clone()))
            });
    }

    /// One unit is handed out.
    fn one_unit(&mut self) {
        let unit = self.unit.clone();
        self.units
            .expect_begin()
            .times(1)
            .returning(move || Ok(Box::new(unit.clone())));
    }

    /// Nothing may be written.
    fn writes_nothing(&mut self) {
        self.units.expect_begin().never();
        self.secrets.expect_store().never();
        self.secrets.expect_discard().never();
        self.registrations.expect_insert().never();
        self.registrations.expect_update().never();
        self.audit.expect_record_in().never();
    }

    /// Secrets are sealed (noted with where), each given `credential`; returns what
    /// was sealed.
    fn seals(&mut self, credential: CredentialId) -> Captured<String> {
        let sealed: Captured<String> = Captured::default();
        let (keep, journal, unit) = (sealed.clone(), self.journal.clone(), self.unit.clone());
        self.secrets
            .expect_store()
            .times(1)
            .returning(move |uow, _, _, secret, _| {
                journal.note(format!("seal {}", place(uow, &unit)));
                keep.keep(&secret.expose_secret().to_owned());
                Ok(credential)
            });
        sealed
    }

    /// Vault entries are discarded (noted with which and where).
    fn discards(&mut self) {
        let (journal, unit) = (self.journal.clone(), self.unit.clone());
        self.secrets
            .expect_discard()
            .times(1)
            .returning(move |uow, _, credential| {
                journal.note(format!("discard {credential} {}", place(uow, &unit)));
                Ok(())
            });
    }

    /// Audit entries are written (noted with their action and where); returns them.
    fn audits(&mut self) -> Captured<AuditEvent> {
        let entries: Captured<AuditEvent> = Captured::default();
        let (keep, journal, unit) = (entries.clone(), self.journal.clone(), self.unit.clone());
        self.audit
            .expect_record_in()
            .times(1)
            .returning(move |uow, entry| {
                journal.note(format!("audit {} {}", entry.action, place(uow, &unit)));
                keep.keep(entry);
                Ok(())
            });
        entries
    }

    /// A replayable event of `registration`.
    fn event(&self, registration: &Registration, verdict: Verdict) -> WebhookEvent {
        WebhookEvent {
            id: WebhookEventId::new(),
            workspace_id: self.workspace,
            registration_id: registration.id,
            verdict,
            reason: (verdict == Verdict::Rejected).then(|| "bad_signature".to_owned()),
            body_digest: String::new(),
            headers: serde_json::Value::Null,
            body: br#"{"order":7}"#.to_vec(),
            payload: Some(json!({"order": 7})),
            execution_id: None,
            received_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn stored_event(&mut self, event: &WebhookEvent) {
        let found = event.clone();
        self.events
            .expect_find()
            .returning(move |_, _| Ok(Some(found.clone())));
    }

    /// The workflow, as the start use case reads it: version 2 in production, and 5 in
    /// staging when `in_staging`.
    fn deployed(&mut self, workflow: WorkflowId, in_staging: bool) {
        let at = OffsetDateTime::UNIX_EPOCH;
        let deployment = |environment: &EnvironmentRef, version| Deployment {
            environment: environment.clone(),
            is_default: environment.name == "production",
            version,
            activated_at: at,
        };
        let mut deployments = vec![deployment(&self.production, 2)];
        if in_staging {
            deployments.push(deployment(&self.staging, 5));
        }
        let found = Workflow {
            id: workflow,
            workspace_id: self.workspace,
            name: "Orders".to_owned(),
            description: String::new(),
            deployments,
            latest_version: Some(5),
            error_workflow_id: None,
            archived_at: None,
            created_at: at,
            updated_at: at,
        };
        self.start
            .workflows
            .expect_find()
            .returning(move |_, _| Ok(Some(found.clone())));
    }

    /// The start use case may queue nothing.
    fn starts_nothing(&mut self) {
        self.start.gate.expect_admit_run().never();
        self.start.queue.expect_queue().never();
        self.start.queue.expect_queue_in().never();
        self.start.units.expect_begin().never();
    }

    fn service(&mut self) -> WebhookService {
        let intake = Intake::new(
            Arc::new(std::mem::take(&mut self.intake_registrations)),
            Arc::new(MockEventStore::new()),
            Arc::new(MockOwnedSecrets::new()),
            Arc::new(crate::test_support::starter(MockUsageGate::new())),
            Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
            IntakeSettings {
                rejected_per_minute: 1,
            },
        );
        WebhookService::new(
            WebhookPorts {
                units: Arc::new(std::mem::take(&mut self.units)),
                registrations: Arc::new(std::mem::take(&mut self.registrations)),
                events: Arc::new(std::mem::take(&mut self.events)),
                conversations: Arc::new(MockConversationRepository::new()),
                secrets: Arc::new(std::mem::take(&mut self.secrets)),
                audit: Arc::new(std::mem::take(&mut self.audit)),
                integration_events: Arc::new(recorded_anything()),
                clock: Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
                environments: Arc::new(std::mem::take(&mut self.environments)),
                starter: Arc::new(std::mem::take(&mut self.start).starter()),
            },
            Arc::new(intake),
        )
    }
}

/// Integration events: recorded alongside the audit entries the tests check.
fn recorded_anything() -> fluxolab_kernel::integrations::MockIntegrationEvents {
    let mut events = fluxolab_kernel::integrations::MockIntegrationEvents::new();
    events.expect_record_in().returning(|_, _| Ok(()));
    events
}

#[tokio::test]
async fn a_caller_without_webhooks_write_may_not_create_update_or_delete_registrations() {
    let mut webhooks = Webhooks::new();
    let service = webhooks.service();
    let reader = webhooks.member_with([Permission::WebhooksRead, Permission::WorkflowsRun]);
    let id = WebhookRegistrationId::new();
    let refusals = [
        service
            .create(
                &reader,
                NewRegistration {
                    name: "Orders".to_owned(),
                    provider: "none".to_owned(),
                    ..NewRegistration::default()
                },
            )
            .await
            .err(),
        service
            .update(&reader, id, RegistrationPatch::default())
            .await
            .err(),
        service.delete(&reader, id).await.err(),
    ];
    for refused in refusals {
        assert!(
            matches!(
                refused,
                Some(WebhookError::Forbidden(Forbidden(
                    Permission::WebhooksWrite
                )))
            ),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn an_invalid_registration_is_refused_with_every_problem_and_nothing_is_written() {
    let mut webhooks = Webhooks::new();
    webhooks.knows_environments();
    webhooks.workflows_exist(false);
    webhooks.writes_nothing();
    let service = webhooks.service();
    let refused = service
        .create(
            &webhooks.editor(),
            NewRegistration {
                name: "   ".to_owned(),
                provider: "carrier_pigeon".to_owned(),
                workflow_id: Some(WorkflowId::new()),
                verify_token: Some(SecretString::from("tiny")),
                signing_secret: Some(SecretString::from("short")),
                response_mode: Some("later".to_owned()),
                environment: Some("moon".to_owned()),
            },
        )
        .await;
    assert_eq!(
        fields(&refused),
        [
            "environment",
            "name",
            "provider",
            "response_mode",
            "signing_secret",
            "verify_token",
            "workflow_id"
        ]
    );
}

#[tokio::test]
async fn a_signing_secret_for_an_unsigned_provider_is_refused_without_writing() {
    let mut webhooks = Webhooks::new();
    webhooks.knows_environments();
    webhooks.writes_nothing();
    let service = webhooks.service();
    let refused = service
        .create(
            &webhooks.editor(),
            NewRegistration {
                name: "Orders".to_owned(),
                provider: "none".to_owned(),
                signing_secret: Some(SecretString::from("a-long-enough-secret")),
                ..NewRegistration::default()
            },
        )
        .await;
    assert_eq!(fields(&refused), ["signing_secret"]);
}

#[tokio::test]
async fn a_signed_registration_without_a_secret_gets_one_generated_sealed_in_its_unit_and_shown_once()
-> TestResult {
    let mut webhooks = Webhooks::new();
    webhooks.knows_environments();
    webhooks.one_unit();
    let credential = CredentialId::new();
    let sealed = webhooks.seals(credential);
    let inserted = Captured::default();
    let (keep, journal, unit) = (
        inserted.clone(),
        webhooks.journal.clone(),
        webhooks.unit.clone(),
    );
    webhooks.registrations.expect_insert().times(1).returning(
        move |uow, registration: &Registration, _| {
            journal.note(format!("insert {}", place(uow, &unit)));
            keep.keep(registration);
            Ok(())
        },
    );
    let audited = webhooks.audits();
    let service = webhooks.service();
    let created = service
        .create(
            &webhooks.editor(),
            NewRegistration {
                name: "Orders".to_owned(),
                provider: "meta".to_owned(),
                ..NewRegistration::default()
            },
        )
        .await?;
    let generated = created
        .generated_secret
        .ok_or("no secret was generated")?
        .expose_secret()
        .to_owned();
    assert_eq!(generated.len(), 64);
    assert!(
        generated.chars().all(|c| c.is_ascii_hexdigit()),
        "{generated}"
    );
    assert_eq!(sealed.only()?, generated, "the vault keeps what is shown");
    let registration = created.registration;
    assert_eq!(registration.signing_credential_id, Some(credential));
    assert_eq!(registration.environment, webhooks.production);
    assert_eq!(inserted.only()?, registration);
    assert_eq!(
        webhooks.journal.entries(),
        [
            "seal in the unit",
            "insert in the unit",
            "audit webhook.created in the unit"
        ]
    );
    let entry = audited.only()?;
    assert_eq!(entry.target, Some(("webhook", registration.id.to_string())));
    assert!(committed(&webhooks.unit));
    assert!(
        !format!("{entry:?}").contains(&generated),
        "the secret stays out of the activity log"
    );
    Ok(())
}

#[tokio::test]
async fn a_supplied_signing_secret_is_sealed_and_never_returned() -> TestResult {
    let mut webhooks = Webhooks::new();
    webhooks.knows_environments();
    webhooks.workflows_exist(true);
    webhooks.one_unit();
    let credential = CredentialId::new();
    let sealed = webhooks.seals(credential);
    webhooks
        .registrations
        .expect_insert()
        .times(1)
        .returning(|_, _, _| Ok(()));
    webhooks.audits();
    let service = webhooks.service();
    let workflow = WorkflowId::new();
    let created = service
        .create(
            &webhooks.editor(),
            NewRegistration {
                name: "Orders".to_owned(),
                provider: "hmac_sha256".to_owned(),
                workflow_id: Some(workflow),
                verify_token: Some(SecretString::from("let-me-in")),
                signing_secret: Some(SecretString::from("supplied-secret-1")),
                response_mode: Some("respond_node".to_owned()),
                environment: Some("staging".to_owned()),
            },
        )
        .await?;
    assert!(created.generated_secret.is_none());
    assert_eq!(sealed.only()?, "supplied-secret-1");
    let registration = created.registration;
    assert_eq!(registration.signing_credential_id, Some(credential));
    assert_eq!(registration.workflow_id, Some(workflow));
    assert_eq!(registration.environment, webhooks.staging);
    assert_eq!(registration.response_mode, ResponseMode::RespondNode);
    assert_eq!(
        registration.verify_token_hash,
        Some(token_hash("let-me-in")),
        "only the token's digest is kept"
    );
    assert!(committed(&webhooks.unit));
    Ok(())
}

#[tokio::test]
async fn an_unsigned_registration_seals_no_secret() -> TestResult {
    let mut webhooks = Webhooks::new();
    webhooks.knows_environments();
    webhooks.one_unit();
    webhooks.secrets.expect_store().never();
    webhooks
        .registrations
        .expect_insert()
        .times(1)
        .returning(|_, _, _| Ok(()));
    webhooks.audits();
    let service = webhooks.service();
    let created = service
        .create(
            &webhooks.editor(),
            NewRegistration {
                name: "Orders".to_owned(),
                provider: "none".to_owned(),
                ..NewRegistration::default()
            },
        )
        .await?;
    assert!(created.generated_secret.is_none());
    assert_eq!(created.registration.signing_credential_id, None);
    assert!(committed(&webhooks.unit));
    Ok(())
}

#[tokio::test]
async fn a_new_signing_secret_replaces_the_old_one_in_the_vault_in_the_same_unit() -> TestResult {
    let mut webhooks = Webhooks::new();
    let old = CredentialId::new();
    let existing = webhooks.registration(Provider::HmacSha256, Some(old));
    webhooks.finds(&existing);
    webhooks.one_unit();
    webhooks.discards();
    let new = CredentialId::new();
    let sealed = webhooks.seals(new);
    let (journal, unit) = (webhooks.journal.clone(), webhooks.unit.clone());
    webhooks
        .registrations
        .expect_update()
        .withf(move |_, registration| registration.signing_credential_id == Some(new))
        .times(1)
        .returning(move |uow, _| {
            journal.note(format!("update {}", place(uow, &unit)));
            Ok(())
        });
    webhooks.audits();
    let service = webhooks.service();
    let updated = service
        .update(
            &webhooks.editor(),
            existing.id,
            RegistrationPatch {
                signing_secret: Some(SecretString::from("rotated-secret-2")),
                ..RegistrationPatch::default()
            },
        )
        .await?;
    assert_eq!(updated.signing_credential_id, Some(new));
    assert_eq!(sealed.only()?, "rotated-secret-2");
    assert_eq!(
        webhooks.journal.entries(),
        [
            format!("discard {old} in the unit"),
            "seal in the unit".to_owned(),
            "update in the unit".to_owned(),
            "audit webhook.updated in the unit".to_owned(),
        ]
    );
    assert!(committed(&webhooks.unit));
    Ok(())
}

#[tokio::test]
async fn an_invalid_update_is_refused_without_writing() {
    let cases: [(&str, RegistrationPatch, &[&str]); 3] = [
        (
            "a signed provider with no secret stored or given",
            RegistrationPatch {
                provider: Some("hmac_sha256".to_owned()),
                ..RegistrationPatch::default()
            },
            &["signing_secret"],
        ),
        (
            "an unknown workflow and environment",
            RegistrationPatch {
                workflow_id: Some(Some(WorkflowId::new())),
                environment: Some("moon".to_owned()),
                ..RegistrationPatch::default()
            },
            &["environment", "workflow_id"],
        ),
        (
            "an empty name and an unknown response mode",
            RegistrationPatch {
                name: Some(" ".to_owned()),
                response_mode: Some("later".to_owned()),
                ..RegistrationPatch::default()
            },
            &["name", "response_mode"],
        ),
    ];
    for (case, patch, expected) in cases {
        let mut webhooks = Webhooks::new();
        let existing = webhooks.registration(Provider::None, None);
        webhooks.finds(&existing);
        webhooks.knows_environments();
        webhooks.workflows_exist(false);
        webhooks.writes_nothing();
        let service = webhooks.service();
        let refused = service.update(&webhooks.editor(), existing.id, patch).await;
        assert_eq!(fields(&refused), expected, "{case}");
    }
}

#[tokio::test]
async fn an_updated_registration_is_read_again_by_the_intake_of_this_process() -> TestResult {
    let mut webhooks = Webhooks::new();
    let existing = webhooks.registration(Provider::None, None);
    webhooks.finds(&existing);
    webhooks.one_unit();
    let current = Arc::new(Mutex::new(existing.clone()));
    let stored = current.clone();
    webhooks
        .registrations
        .expect_update()
        .times(1)
        .returning(move |_, registration| {
            *stored.lock().expect("registration lock") = registration.clone();
            Ok(())
        });
    webhooks.audits();
    webhooks
        .intake_registrations
        .expect_find_public()
        .times(2)
        .returning(move |_| Ok(Some(current.lock().expect("registration lock").clone())));
    let service = webhooks.service();
    let handshake = |token: &'static str| {
        service
            .intake
            .handshake("pub-orders", Some("subscribe"), Some(token), Some("42"))
    };
    assert_eq!(handshake("let-me-in").await.ok().as_deref(), Some("42"));
    service
        .update(
            &webhooks.editor(),
            existing.id,
            RegistrationPatch {
                verify_token: Some(Some(SecretString::from("a-new-token"))),
                ..RegistrationPatch::default()
            },
        )
        .await?;
    assert_eq!(handshake("a-new-token").await.ok().as_deref(), Some("42"));
    Ok(())
}

#[tokio::test]
async fn deleting_a_registration_discards_its_secret_and_is_audited_in_its_unit() -> TestResult {
    let mut webhooks = Webhooks::new();
    let secret = CredentialId::new();
    let existing = webhooks.registration(Provider::Meta, Some(secret));
    webhooks.finds(&existing);
    webhooks.one_unit();
    let (journal, unit) = (webhooks.journal.clone(), webhooks.unit.clone());
    webhooks
        .registrations
        .expect_delete()
        .times(1)
        .returning(move |uow, _, _| {
            journal.note(format!("delete {}", place(uow, &unit)));
            Ok(true)
        });
    webhooks.discards();
    webhooks.audits();
    let service = webhooks.service();
    service.delete(&webhooks.editor(), existing.id).await?;
    assert_eq!(
        webhooks.journal.entries(),
        [
            "delete in the unit".to_owned(),
            format!("discard {secret} in the unit"),
            "audit webhook.deleted in the unit".to_owned(),
        ]
    );
    assert!(committed(&webhooks.unit));
    Ok(())
}

#[tokio::test]
async fn deleting_a_registration_gone_meanwhile_is_not_found_and_commits_nothing() {
    let mut webhooks = Webhooks::new();
    let existing = webhooks.registration(Provider::Meta, Some(CredentialId::new()));
    webhooks.finds(&existing);
    webhooks.one_unit();
    webhooks
        .registrations
        .expect_delete()
        .times(1)
        .returning(|_, _, _| Ok(false));
    webhooks.secrets.expect_discard().never();
    webhooks.audit.expect_record_in().never();
    let service = webhooks.service();
    let refused = service.delete(&webhooks.editor(), existing.id).await;
    assert!(
        matches!(refused, Err(WebhookError::NotFound("webhook"))),
        "{refused:?}"
    );
    assert!(!committed(&webhooks.unit));
}

#[tokio::test]
async fn a_replay_needs_both_webhooks_write_and_workflows_run() {
    let mut webhooks = Webhooks::new();
    let service = webhooks.service();
    for (permissions, missing) in [
        (
            [Permission::WebhooksRead, Permission::WebhooksWrite],
            Permission::WorkflowsRun,
        ),
        (
            [Permission::WebhooksRead, Permission::WorkflowsRun],
            Permission::WebhooksWrite,
        ),
    ] {
        let refused = service
            .replay(
                &webhooks.member_with(permissions),
                None,
                WebhookEventId::new(),
            )
            .await;
        assert!(
            matches!(refused, Err(WebhookError::Forbidden(Forbidden(permission))) if permission == missing),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn a_rejected_event_is_never_replayed() {
    let mut webhooks = Webhooks::new();
    let mut registration = webhooks.registration(Provider::Meta, Some(CredentialId::new()));
    registration.workflow_id = Some(WorkflowId::new());
    let event = webhooks.event(&registration, Verdict::Rejected);
    webhooks.stored_event(&event);
    webhooks.registrations.expect_find().never();
    webhooks.starts_nothing();
    let service = webhooks.service();
    let refused = service.replay(&webhooks.editor(), None, event.id).await;
    assert_eq!(
        conflict_code(&refused),
        Some("event_rejected"),
        "{refused:?}"
    );
    assert!(
        refused
            .as_ref()
            .is_err_and(|error| error.to_string().contains("bad_signature")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn replaying_an_event_whose_registration_has_no_bound_workflow_answers_no_active_workflow() {
    let mut webhooks = Webhooks::new();
    let registration = webhooks.registration(Provider::None, None);
    let event = webhooks.event(&registration, Verdict::Accepted);
    webhooks.stored_event(&event);
    webhooks.finds(&registration);
    webhooks.starts_nothing();
    let service = webhooks.service();
    let refused = service.replay(&webhooks.editor(), None, event.id).await;
    assert_eq!(
        conflict_code(&refused),
        Some("no_active_workflow"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn replaying_for_a_workflow_not_active_in_the_registrations_environment_answers_no_active_workflow()
 {
    let mut webhooks = Webhooks::new();
    let workflow = WorkflowId::new();
    let mut registration = webhooks.registration(Provider::None, None);
    registration.workflow_id = Some(workflow);
    let event = webhooks.event(&registration, Verdict::Accepted);
    webhooks.stored_event(&event);
    webhooks.finds(&registration);
    // Active in production only; the registration is in staging.
    webhooks.deployed(workflow, false);
    webhooks.starts_nothing();
    let service = webhooks.service();
    let refused = service.replay(&webhooks.editor(), None, event.id).await;
    assert_eq!(
        conflict_code(&refused),
        Some("no_active_workflow"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_replay_with_the_quota_used_up_is_refused_and_queues_nothing() {
    let mut webhooks = Webhooks::new();
    let workflow = WorkflowId::new();
    let mut registration = webhooks.registration(Provider::None, None);
    registration.workflow_id = Some(workflow);
    let event = webhooks.event(&registration, Verdict::QuotaExceeded);
    webhooks.stored_event(&event);
    webhooks.finds(&registration);
    webhooks.deployed(workflow, true);
    webhooks
        .start
        .gate
        .expect_admit_run()
        .times(1)
        .returning(|_| {
            Ok(Admission::QuotaExceeded {
                retry_after_seconds: 3600,
            })
        });
    webhooks.start.queue.expect_queue().never();
    webhooks.start.queue.expect_queue_in().never();
    webhooks.start.units.expect_begin().never();
    webhooks.start.audit.expect_record_in().never();
    let service = webhooks.service();
    let refused = service.replay(&webhooks.editor(), None, event.id).await;
    assert!(
        matches!(
            refused,
            Err(WebhookError::QuotaExceeded {
                retry_after_seconds: 3600
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_accepted_replay_queues_the_version_deployed_in_the_registrations_environment_as_a_webhook_run()
-> TestResult {
    let mut webhooks = Webhooks::new();
    let workflow = WorkflowId::new();
    let mut registration = webhooks.registration(Provider::Meta, Some(CredentialId::new()));
    registration.workflow_id = Some(workflow);
    let event = webhooks.event(&registration, Verdict::Accepted);
    webhooks.stored_event(&event);
    webhooks.finds(&registration);
    webhooks.deployed(workflow, true);
    webhooks
        .start
        .gate
        .expect_admit_run()
        .times(1)
        .returning(|_| Ok(Admission::Admitted));
    let start_unit = webhooks.start_unit.clone();
    webhooks
        .start
        .units
        .expect_begin()
        .times(1)
        .returning(move || Ok(Box::new(start_unit.clone())));
    let (queued, audited) = (Captured::default(), Captured::default());
    let (keep, unit) = (queued.clone(), webhooks.start_unit.clone());
    webhooks
        .start
        .queue
        .expect_queue_in()
        .times(1)
        .returning(move |uow, run: &QueuedRun| {
            keep.keep(&(place(uow, &unit), run.clone()));
            Ok(())
        });
    let (keep, unit) = (audited.clone(), webhooks.start_unit.clone());
    webhooks
        .start
        .audit
        .expect_record_in()
        .times(1)
        .returning(move |uow, entry: &AuditEvent| {
            keep.keep(&(place(uow, &unit), entry.clone()));
            Ok(())
        });
    let service = webhooks.service();
    let started = service
        .replay(&webhooks.editor(), Some(registration.id), event.id)
        .await?;
    let (queued_where, run) = queued.only()?;
    assert_eq!(queued_where, "in the unit");
    assert_eq!(run.id, started);
    assert_eq!(run.workflow_id, workflow);
    assert_eq!(run.environment_id, webhooks.staging.id);
    assert_eq!(run.version, 5, "the version deployed in staging");
    assert_eq!(run.trigger_kind, TriggerKind::Webhook);
    assert_eq!(run.input, json!({"order": 7}));
    assert_eq!(run.retry_of, None);
    let (audited_where, entry) = audited.only()?;
    assert_eq!(audited_where, "in the unit");
    assert_eq!(entry.action, "webhook.event_replayed");
    assert_eq!(entry.target, Some(("webhook_event", event.id.to_string())));
    assert_eq!(entry.metadata["execution_id"], started.to_string());
    assert!(committed(&webhooks.start_unit));
    Ok(())
}
