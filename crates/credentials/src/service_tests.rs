//! `VaultService`'s decisions with its ports mocked: who may act, the plan guard asked
//! inside the unit, what is written in that unit and committed, what comes back (masked),
//! and which decryptions are audited.

use std::sync::{Arc, Mutex};

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::plan_guard::MockPlanGuard;
use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use fluxolab_kernel::{LimitedResource, PlanLimitReached, SystemClock, UserId};
use secrecy::ExposeSecret;

use super::*;
use crate::ports::{
    MockConnectionTester, MockCredentialRepository, MockCredentialUsage, MockDataKeyRepository,
    MockNetworkPolicy,
};
use fluxolab_kernel::testing::{
    Captured, Journal, admits_once, opens_once, place, records_once_in_the_unit,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOKEN: &str = "sk_live_0123456789ab1a2b";
const NEW_TOKEN: &str = "sk_live_9876543210zyx9z8";

/// A vault over mocked ports, one workspace, one member and one data key.
struct Vault {
    workspace: WorkspaceId,
    user: UserId,
    master: Arc<MasterKeys>,
    key: StoredDataKey,
    unit: RecordingUnitOfWork,
    journal: Journal,
    inserted: Captured<CredentialRecord>,
    updated: Captured<CredentialRecord>,
    events: Captured<AuditEvent>,
    units: MockUnitOfWorkFactory,
    keys: MockDataKeyRepository,
    credentials: MockCredentialRepository,
    audit: MockAuditLog,
    plans: MockPlanGuard,
    usage: MockCredentialUsage,
    tester: MockConnectionTester,
    network: MockNetworkPolicy,
}

impl Vault {
    fn new() -> Result<Self, EnvelopeError> {
        let workspace = WorkspaceId::new();
        let master = MasterKeys::new(b"a-master-secret-for-unit-tests-0123456789", None)?;
        let key = StoredDataKey {
            id: DataKeyId::new(),
            workspace_id: workspace,
            version: 3,
            wrapped: DataKey::generate()?.wrap(&master, workspace)?,
        };
        Ok(Self {
            workspace,
            user: UserId::new(),
            master: Arc::new(master),
            key,
            unit: RecordingUnitOfWork::default(),
            journal: Journal::default(),
            inserted: Captured::default(),
            updated: Captured::default(),
            events: Captured::default(),
            units: MockUnitOfWorkFactory::new(),
            keys: MockDataKeyRepository::new(),
            credentials: MockCredentialRepository::new(),
            audit: MockAuditLog::new(),
            plans: MockPlanGuard::new(),
            usage: MockCredentialUsage::new(),
            tester: MockConnectionTester::new(),
            network: MockNetworkPolicy::new(),
        })
    }

    fn member_with(&self, permissions: impl IntoIterator<Item = Permission>) -> Principal {
        Principal::new(Actor::User(self.user), self.workspace, permissions)
    }

    fn viewer(&self) -> Principal {
        self.member_with([Permission::CredentialsRead])
    }

    fn editor(&self) -> Principal {
        self.member_with([Permission::CredentialsRead, Permission::CredentialsWrite])
    }

    fn committed(&self) -> bool {
        self.unit
            .committed
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The service, over the mocks as configured so far.
    fn service(&mut self) -> VaultService {
        VaultService::new(VaultPorts {
            units: Arc::new(std::mem::take(&mut self.units)),
            keys: Arc::new(std::mem::take(&mut self.keys)),
            credentials: Arc::new(std::mem::take(&mut self.credentials)),
            audit: Arc::new(std::mem::take(&mut self.audit)),
            master: self.master.clone(),
            clock: Arc::new(SystemClock),
            tester: Arc::new(std::mem::take(&mut self.tester)),
            network: Arc::new(std::mem::take(&mut self.network)),
            usage: Arc::new(std::mem::take(&mut self.usage)),
            plans: Arc::new(std::mem::take(&mut self.plans)),
        })
    }

    /// A stored credential of the workspace, its secrets sealed under the data key.
    fn sealed(
        &self,
        kind: CredentialKind,
        public: Value,
        secrets: Value,
    ) -> Result<CredentialRecord, VaultError> {
        let id = CredentialId::new();
        let public = object(public);
        let secrets = object(secrets);
        let key = DataKey::unwrap(&self.master, self.workspace, &self.key.wrapped)?;
        let now = time::OffsetDateTime::UNIX_EPOCH;
        Ok(CredentialRecord {
            id,
            workspace_id: self.workspace,
            name: "Stripe".to_owned(),
            kind,
            public,
            sealed: VaultService::seal(&key, self.workspace, id, &secrets)?,
            data_key_id: self.key.id,
            key_version: self.key.version,
            hints: hints_of(&secrets),
            created_at: now,
            updated_at: now,
        })
    }

    fn a_bearer_token(&self) -> Result<CredentialRecord, VaultError> {
        self.sealed(
            CredentialKind::BearerToken,
            json!({}),
            json!({ "token": TOKEN }),
        )
    }

    /// The secret fields of `record`, opened with the workspace's data key.
    fn opened(&self, record: &CredentialRecord) -> Result<Map<String, Value>, VaultError> {
        let key = DataKey::unwrap(&self.master, self.workspace, &self.key.wrapped)?;
        let plaintext = key.open(self.workspace, record.id, &record.sealed)?;
        Ok(serde_json::from_slice(&plaintext).unwrap_or_default())
    }

    // ----- expectations, each reading as what the port does -----

    fn with_its_data_key(mut self) -> Self {
        let active = self.key.clone();
        self.keys
            .expect_active()
            .returning(move |_| Ok(Some(active.clone())));
        let stored = self.key.clone();
        self.keys.expect_find().returning(move |workspace, id| {
            Ok((workspace == stored.workspace_id && id == stored.id).then(|| stored.clone()))
        });
        self
    }

    fn opening_one_unit(mut self) -> Self {
        opens_once(&mut self.units, &self.unit);
        self
    }

    fn opening_no_unit(mut self) -> Self {
        self.units.expect_begin().never();
        self
    }

    fn writing_nothing(mut self) -> Self {
        self.credentials.expect_insert().never();
        self.credentials.expect_update().never();
        self.credentials.expect_delete().never();
        self.audit.expect_record_in().never();
        self.audit.expect_record().never();
        self
    }

    fn with_a_plan_that(mut self, answer: Option<PlanLimitReached>) -> Self {
        let asked = (self.workspace, LimitedResource::Credentials);
        admits_once(&mut self.plans, &self.journal, &self.unit, asked, answer);
        self
    }

    fn inserting_credentials(mut self) -> Self {
        let (journal, unit, inserted) = (
            self.journal.clone(),
            self.unit.clone(),
            self.inserted.clone(),
        );
        let creator = Some(self.user);
        self.credentials
            .expect_insert()
            .withf(move |_, _, created_by| *created_by == creator)
            .times(1)
            .returning(move |uow, record, _| {
                journal.note(format!("credentials.insert {}", place(uow, &unit)));
                inserted.keep(record);
                Ok(())
            });
        self
    }

    fn updating_credentials(mut self) -> Self {
        let (journal, unit, updated) = (
            self.journal.clone(),
            self.unit.clone(),
            self.updated.clone(),
        );
        self.credentials
            .expect_update()
            .times(1)
            .returning(move |uow, record| {
                journal.note(format!("credentials.update {}", place(uow, &unit)));
                updated.keep(record);
                Ok(())
            });
        self
    }

    fn holding(mut self, record: &CredentialRecord) -> Self {
        self.credentials
            .expect_is_owned()
            .returning(|_, _| Ok(false));
        let record = record.clone();
        self.credentials
            .expect_find()
            .returning(move |workspace, id| {
                Ok((workspace == record.workspace_id && id == record.id).then(|| record.clone()))
            });
        self
    }

    fn recording_activity_in_the_unit(mut self) -> Self {
        records_once_in_the_unit(&mut self.audit, &self.journal, &self.unit, &self.events);
        self
    }

    fn recording_one_use(mut self) -> Self {
        let (journal, events) = (self.journal.clone(), self.events.clone());
        self.audit.expect_record().times(1).returning(move |event| {
            journal.note(format!("audit.record {}", event.action));
            events.keep(event);
            Ok(())
        });
        self.audit.expect_record_in().never();
        self
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn bearer_token(name: &str, token: &str) -> NewCredential {
    NewCredential {
        name: name.to_owned(),
        kind: "bearer_token".to_owned(),
        data: object(json!({ "token": token })),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test]
async fn a_viewer_cannot_create_a_credential() -> TestResult {
    let mut vault = Vault::new()?.opening_no_unit().writing_nothing();
    vault.keys.expect_active().never();
    vault.plans.expect_admit().never();

    let result = vault
        .service()
        .create(&vault.viewer(), bearer_token("Stripe", TOKEN))
        .await;

    assert!(
        matches!(
            result,
            Err(VaultError::Forbidden(Forbidden(
                Permission::CredentialsWrite
            )))
        ),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_member_without_read_permission_cannot_list_credentials() -> TestResult {
    let mut vault = Vault::new()?;
    vault.credentials.expect_list().never();
    let outsider = vault.member_with([Permission::WorkflowsRead]);

    let result = vault
        .service()
        .list(&outsider, PageRequest::new(None, None)?)
        .await;

    assert!(
        matches!(
            result,
            Err(VaultError::Forbidden(Forbidden(
                Permission::CredentialsRead
            )))
        ),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn invalid_fields_are_all_reported_before_any_key_or_unit_is_touched() -> TestResult {
    let mut vault = Vault::new()?.opening_no_unit().writing_nothing();
    vault.keys.expect_active().never();
    vault.plans.expect_admit().never();

    let result = vault
        .service()
        .create(
            &vault.editor(),
            NewCredential {
                name: "   ".to_owned(),
                kind: "http_basic".to_owned(),
                data: object(json!({ "username": "ada", "colour": "red" })),
            },
        )
        .await;

    let Err(VaultError::Invalid(errors)) = result else {
        return Err(format!("expected validation errors, got {result:?}").into());
    };
    let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "data.colour", "data.password"]);
    Ok(())
}

#[tokio::test]
async fn a_credential_beyond_the_plan_is_refused_inside_the_unit_and_nothing_is_written()
-> TestResult {
    let reached = PlanLimitReached {
        name: "max_credentials",
        value: 5,
        current: 5,
    };
    let mut vault = Vault::new()?
        .with_its_data_key()
        .opening_one_unit()
        .with_a_plan_that(Some(reached.clone()))
        .writing_nothing();

    let result = vault
        .service()
        .create(&vault.editor(), bearer_token("Stripe", TOKEN))
        .await;

    assert!(
        matches!(&result, Err(VaultError::PlanLimit(refused)) if *refused == reached),
        "{result:?}"
    );
    assert_eq!(vault.journal.entries(), ["plans.admit in the unit"]);
    assert!(!vault.committed(), "a refused create must not commit");
    Ok(())
}

#[tokio::test]
async fn creating_a_credential_writes_it_and_its_activity_in_one_committed_unit() -> TestResult {
    let mut vault = Vault::new()?
        .with_its_data_key()
        .opening_one_unit()
        .with_a_plan_that(None)
        .inserting_credentials()
        .recording_activity_in_the_unit();
    let editor = vault.editor();

    let created = vault
        .service()
        .create(&editor, bearer_token("  Stripe  ", TOKEN))
        .await?;

    assert_eq!(
        vault.journal.entries(),
        [
            "plans.admit in the unit",
            "credentials.insert in the unit",
            "audit.record_in credential.created in the unit",
        ]
    );
    assert!(vault.committed(), "the unit must be committed");
    assert_eq!(vault.inserted.only()?, created);
    assert_eq!(created.name, "Stripe");
    assert_eq!(created.workspace_id, vault.workspace);
    assert_eq!(
        (created.data_key_id, created.key_version),
        (vault.key.id, vault.key.version)
    );
    assert_eq!(
        vault.events.only()?,
        AuditEvent {
            workspace_id: vault.workspace,
            actor: Some(editor.actor()),
            action: "credential.created",
            target: Some(("credential", created.id.to_string())),
            metadata: json!({ "name": "Stripe", "kind": "bearer_token" }),
        }
    );
    Ok(())
}

#[tokio::test]
async fn a_created_credential_comes_back_masked_and_is_stored_sealed() -> TestResult {
    let mut vault = Vault::new()?
        .with_its_data_key()
        .opening_one_unit()
        .with_a_plan_that(None)
        .inserting_credentials()
        .recording_activity_in_the_unit();

    let created = vault
        .service()
        .create(&vault.editor(), bearer_token("Stripe", TOKEN))
        .await?;

    assert!(created.public.is_empty(), "{:?}", created.public);
    assert_eq!(
        created.masked_data(),
        object(json!({ "token": { "has_value": true, "hint": "••••1a2b" } }))
    );
    let stored = vault.inserted.only()?;
    assert!(!contains(&stored.sealed.ciphertext, TOKEN.as_bytes()));
    assert!(!format!("{stored:?}").contains(TOKEN));
    assert!(!vault.events.only()?.metadata.to_string().contains(TOKEN));
    assert_eq!(
        vault.opened(&stored)?,
        object(json!({ "token": TOKEN })),
        "the sealed secret opens with the workspace's data key"
    );
    Ok(())
}

#[tokio::test]
async fn the_first_credential_of_a_workspace_gets_it_a_data_key_at_version_one() -> TestResult {
    let mut vault = Vault::new()?
        .opening_one_unit()
        .with_a_plan_that(None)
        .inserting_credentials()
        .recording_activity_in_the_unit();
    let activated: Arc<Mutex<Option<StoredDataKey>>> = Arc::default();
    let active = activated.clone();
    vault
        .keys
        .expect_active()
        .returning(move |_| Ok(active.lock().expect("key lock").clone()));
    let (stored, workspace) = (activated.clone(), vault.workspace);
    vault
        .keys
        .expect_activate()
        .withf(move |key| key.workspace_id == workspace && key.version == 1)
        .times(1)
        .returning(move |key| {
            *stored.lock().expect("key lock") = Some(key.clone());
            Ok(true)
        });

    let created = vault
        .service()
        .create(&vault.editor(), bearer_token("Stripe", TOKEN))
        .await?;

    let key = activated
        .lock()
        .expect("key lock")
        .clone()
        .ok_or("no key was activated")?;
    assert_eq!((created.data_key_id, created.key_version), (key.id, 1));
    Ok(())
}

#[tokio::test]
async fn resolving_a_credential_for_a_run_opens_it_and_records_its_use() -> TestResult {
    let vault = Vault::new()?;
    let record = vault.a_bearer_token()?;
    let mut vault = vault
        .with_its_data_key()
        .holding(&record)
        .opening_no_unit()
        .recording_one_use();
    let execution = ExecutionId::new();

    let resolved = vault
        .service()
        .resolve(
            vault.workspace,
            record.id,
            &[CredentialKind::BearerToken],
            Some(execution),
        )
        .await?;

    assert_eq!(resolved.field("token").as_deref(), Some(TOKEN));
    assert_eq!(
        vault.events.only()?,
        AuditEvent {
            workspace_id: vault.workspace,
            actor: None,
            action: "credential.used",
            target: Some(("credential", record.id.to_string())),
            metadata: json!({ "execution_id": execution.to_string() }),
        }
    );
    Ok(())
}

#[tokio::test]
async fn a_credential_of_another_kind_is_neither_opened_nor_recorded_as_used() -> TestResult {
    let vault = Vault::new()?;
    let record = vault.a_bearer_token()?;
    let mut vault = vault.holding(&record).writing_nothing();
    vault.keys.expect_find().never();

    let result = vault
        .service()
        .resolve(vault.workspace, record.id, &[CredentialKind::Smtp], None)
        .await;

    assert!(
        matches!(
            &result,
            Err(ResolveError::WrongKind { expected, actual: "bearer_token", .. }) if expected == "smtp"
        ),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_credential_that_active_workflows_use_cannot_be_deleted() -> TestResult {
    let mut vault = Vault::new()?.opening_one_unit().writing_nothing();
    let id = CredentialId::new();
    vault
        .credentials
        .expect_is_owned()
        .times(1)
        .returning(|_, _| Ok(false));
    let workspace = vault.workspace;
    vault
        .usage
        .expect_active_workflows_using()
        .withf(move |_, asked, credential| *asked == workspace && *credential == id)
        .times(1)
        .returning(|_, _, _| Ok(vec!["Onboarding".to_owned(), "Invoices".to_owned()]));

    let result = vault.service().delete(&vault.editor(), id).await;

    assert!(
        matches!(&result, Err(VaultError::InUse(names)) if names == &["Onboarding", "Invoices"]),
        "{result:?}"
    );
    assert!(!vault.committed(), "a refused delete must not commit");
    Ok(())
}

#[tokio::test]
async fn deleting_an_unused_credential_records_it_in_the_same_unit() -> TestResult {
    let mut vault = Vault::new()?
        .opening_one_unit()
        .recording_activity_in_the_unit();
    let id = CredentialId::new();
    vault
        .credentials
        .expect_is_owned()
        .returning(|_, _| Ok(false));
    let (journal, unit) = (vault.journal.clone(), vault.unit.clone());
    vault
        .usage
        .expect_active_workflows_using()
        .times(1)
        .returning(move |uow, _, _| {
            journal.note(format!(
                "usage.active_workflows_using {}",
                place(uow, &unit)
            ));
            Ok(Vec::new())
        });
    let (journal, unit) = (vault.journal.clone(), vault.unit.clone());
    vault
        .credentials
        .expect_delete()
        .withf(move |_, _, deleted| *deleted == id)
        .times(1)
        .returning(move |uow, _, _| {
            journal.note(format!("credentials.delete {}", place(uow, &unit)));
            Ok(true)
        });
    let editor = vault.editor();

    vault.service().delete(&editor, id).await?;

    assert_eq!(
        vault.journal.entries(),
        [
            "usage.active_workflows_using in the unit",
            "credentials.delete in the unit",
            "audit.record_in credential.deleted in the unit",
        ]
    );
    assert!(vault.committed());
    assert_eq!(
        vault.events.only()?.target,
        Some(("credential", id.to_string()))
    );
    Ok(())
}

#[tokio::test]
async fn a_secret_another_feature_owns_is_not_found_through_the_credentials_api() -> TestResult {
    let mut vault = Vault::new()?.opening_no_unit().writing_nothing();
    vault
        .credentials
        .expect_is_owned()
        .times(2)
        .returning(|_, _| Ok(true));
    vault.credentials.expect_find().never();
    vault.usage.expect_active_workflows_using().never();
    let service = vault.service();
    let id = CredentialId::new();

    let shown = service.get(&vault.editor(), id).await;
    let deleted = service.delete(&vault.editor(), id).await;

    assert!(matches!(shown, Err(VaultError::NotFound)), "{shown:?}");
    assert!(matches!(deleted, Err(VaultError::NotFound)), "{deleted:?}");
    Ok(())
}

#[tokio::test]
async fn an_update_reseals_the_new_secret_and_records_only_the_changed_field_names() -> TestResult {
    let vault = Vault::new()?;
    let record = vault.a_bearer_token()?;
    let mut vault = vault
        .with_its_data_key()
        .holding(&record)
        .opening_one_unit()
        .updating_credentials()
        .recording_activity_in_the_unit();

    let updated = vault
        .service()
        .update(
            &vault.editor(),
            record.id,
            CredentialPatch {
                name: None,
                data: Some(object(json!({ "token": NEW_TOKEN }))),
            },
        )
        .await?;

    assert_eq!(
        vault.journal.entries(),
        [
            "credentials.update in the unit",
            "audit.record_in credential.updated in the unit",
        ]
    );
    assert!(vault.committed());
    assert_eq!(vault.updated.only()?, updated);
    assert_eq!(updated.hints, object(json!({ "token": "••••x9z8" })));
    assert_eq!(
        vault.opened(&updated)?,
        object(json!({ "token": NEW_TOKEN }))
    );
    assert_eq!(
        vault.events.only()?.metadata,
        json!({ "fields": ["token"] })
    );
    Ok(())
}

#[tokio::test]
async fn testing_a_token_records_a_use_and_probes_with_the_opened_secret() -> TestResult {
    let vault = Vault::new()?;
    let record = vault.a_bearer_token()?;
    let mut vault = vault
        .with_its_data_key()
        .holding(&record)
        .opening_no_unit()
        .recording_one_use();
    vault
        .network
        .expect_allows_internal()
        .times(1)
        .returning(|_| Ok(false));
    let journal = vault.journal.clone();
    vault
        .tester
        .expect_http()
        .withf(|probe| {
            probe.url.as_str() == "https://api.example.com/me"
                && !probe.allow_internal
                && matches!(&probe.auth, HttpAuth::Bearer(token) if token.expose_secret() == TOKEN)
        })
        .times(1)
        .returning(move |_| {
            journal.note("tester.http".to_owned());
            ProbeOutcome {
                ok: true,
                message: "HTTP 200 OK".to_owned(),
            }
        });
    vault.tester.expect_smtp().never();

    let outcome = vault
        .service()
        .test(
            &vault.editor(),
            record.id,
            Some("https://api.example.com/me"),
        )
        .await?;

    assert!(outcome.ok);
    assert_eq!(
        vault.journal.entries(),
        ["audit.record credential.used", "tester.http"]
    );
    assert_eq!(vault.events.only()?.metadata, json!({ "test": true }));
    Ok(())
}

#[tokio::test]
async fn testing_an_http_credential_without_a_url_opens_nothing() -> TestResult {
    let vault = Vault::new()?;
    let record = vault.a_bearer_token()?;
    let mut vault = vault.holding(&record).opening_no_unit().writing_nothing();
    vault.keys.expect_find().never();
    vault.network.expect_allows_internal().never();
    vault.tester.expect_http().never();

    let result = vault.service().test(&vault.editor(), record.id, None).await;

    let Err(VaultError::Invalid(errors)) = result else {
        return Err(format!("expected a validation error, got {result:?}").into());
    };
    assert_eq!(errors.errors()[0].field, "url");
    Ok(())
}

#[test]
fn owned_names_are_unique_and_fit_the_vaults_limit() {
    let long = "Webhook ".to_owned() + &"x".repeat(200);
    let named = owned_name(&long);
    assert_eq!(named.chars().count(), 120, "{named}");
    assert!(named.starts_with("Webhook xxx"));
    assert_ne!(
        owned_name("SSO client secret"),
        owned_name("SSO client secret")
    );
    assert!(owned_name("SSO client secret").starts_with("SSO client secret ("));
}
