//! `ApiKeyService`'s decisions with its ports mocked: who may manage keys, scopes within
//! the creator's permissions, the plan's `api_keys` limit asked inside the unit, a secret
//! shown once and stored as its SHA-256 only, the key's audit line and the activity
//! written in the same unit, and which presented keys authenticate.

use std::sync::Arc;

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::environment::MockEnvironmentDirectory;
use fluxolab_kernel::plan_guard::MockPlanGuard;
use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use fluxolab_kernel::{EnvironmentId, EnvironmentRef, ManualClock};
use time::macros::datetime;

use super::*;
use fluxolab_kernel::testing::{
    Captured, Journal, admits_once, opens_once, place, records_once_in_the_unit,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// SHA-256 of `text`, computed here rather than through the code under test.
fn sha256(text: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

/// API key use cases over mocked ports, in one workspace whose clock stands at [`NOW`].
struct Keys {
    workspace: WorkspaceId,
    user: UserId,
    staging: EnvironmentRef,
    unit: RecordingUnitOfWork,
    journal: Journal,
    stored: Captured<(ApiKey, Vec<u8>)>,
    rotated: Captured<(Secret, OffsetDateTime)>,
    key_audit: Captured<KeyAuditEntry>,
    events: Captured<AuditEvent>,
    units: MockUnitOfWorkFactory,
    keys: MockApiKeyRepository,
    plans: MockPlanGuard,
    audit: MockAuditLog,
    environments: MockEnvironmentDirectory,
}

impl Keys {
    fn new() -> Self {
        Self {
            workspace: WorkspaceId::new(),
            user: UserId::new(),
            staging: EnvironmentRef {
                id: EnvironmentId::new(),
                name: "staging".to_owned(),
            },
            unit: RecordingUnitOfWork::default(),
            journal: Journal::default(),
            stored: Captured::default(),
            rotated: Captured::default(),
            key_audit: Captured::default(),
            events: Captured::default(),
            units: MockUnitOfWorkFactory::new(),
            keys: MockApiKeyRepository::new(),
            plans: MockPlanGuard::new(),
            audit: MockAuditLog::new(),
            environments: MockEnvironmentDirectory::new(),
        }
    }

    fn member_with(&self, permissions: impl IntoIterator<Item = Permission>) -> Principal {
        Principal::new(Actor::User(self.user), self.workspace, permissions)
    }

    /// An admin: every permission but billing.
    fn admin(&self) -> Principal {
        self.member_with(
            Permission::ALL
                .into_iter()
                .filter(|permission| *permission != Permission::BillingManage),
        )
    }

    fn committed(&self) -> bool {
        self.unit
            .committed
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn origin() -> Origin {
        Origin {
            ip: Some("203.0.113.7".to_owned()),
            user_agent: Some("curl/8.5".to_owned()),
        }
    }

    /// An active key of the workspace.
    fn key(&self) -> ApiKey {
        ApiKey {
            id: ApiKeyId::new(),
            workspace_id: self.workspace,
            name: "CI".to_owned(),
            prefix: "flx_abcdefgh".to_owned(),
            last_four: "wxyz".to_owned(),
            scopes: vec![Permission::WorkflowsRead, Permission::WorkflowsRun],
            environment: None,
            created_by: Some(self.user),
            created_at: NOW - time::Duration::days(10),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            previous_valid_until: None,
        }
    }

    fn service(&mut self) -> ApiKeyService {
        ApiKeyService::new(ApiKeyPorts {
            units: Arc::new(std::mem::take(&mut self.units)),
            keys: Arc::new(std::mem::take(&mut self.keys)),
            plans: Arc::new(std::mem::take(&mut self.plans)),
            audit: Arc::new(std::mem::take(&mut self.audit)),
            clock: Arc::new(ManualClock::new(NOW)),
            environments: Arc::new(std::mem::take(&mut self.environments)),
        })
    }

    // ----- expectations, each reading as what the port does -----

    fn opening_one_unit(mut self) -> Self {
        opens_once(&mut self.units, &self.unit);
        self
    }

    fn opening_no_unit(mut self) -> Self {
        self.units.expect_begin().never();
        self
    }

    fn writing_nothing(mut self) -> Self {
        self.keys.expect_insert().never();
        self.keys.expect_revoke().never();
        self.keys.expect_rotate().never();
        self.keys.expect_audit().never();
        self.audit.expect_record_in().never();
        self.audit.expect_record().never();
        self
    }

    fn with_a_plan_that(mut self, answer: Option<PlanLimitReached>) -> Self {
        let asked = (self.workspace, LimitedResource::ApiKeys);
        admits_once(&mut self.plans, &self.journal, &self.unit, asked, answer);
        self
    }

    fn with_the_staging_environment(mut self) -> Self {
        let (workspace, staging) = (self.workspace, self.staging.clone());
        self.environments
            .expect_resolve()
            .returning(move |asked, reference| {
                Ok((asked == workspace && reference == Some("staging")).then(|| staging.clone()))
            });
        self
    }

    fn inserting_keys(mut self) -> Self {
        let (journal, unit, stored) =
            (self.journal.clone(), self.unit.clone(), self.stored.clone());
        self.keys
            .expect_insert()
            .times(1)
            .returning(move |uow, key, hash| {
                journal.note(format!("keys.insert {}", place(uow, &unit)));
                stored.keep(&(key.clone(), hash.to_vec()));
                Ok(())
            });
        self
    }

    fn holding(mut self, key: &ApiKey) -> Self {
        let key = key.clone();
        self.keys.expect_find().returning(move |workspace, id| {
            Ok((workspace == key.workspace_id && id == key.id).then(|| key.clone()))
        });
        self
    }

    fn revoking_it(mut self) -> Self {
        let (journal, unit) = (self.journal.clone(), self.unit.clone());
        self.keys
            .expect_revoke()
            .withf(|_, _, _, at| *at == NOW)
            .times(1)
            .returning(move |uow, _, _, _| {
                journal.note(format!("keys.revoke {}", place(uow, &unit)));
                Ok(())
            });
        self
    }

    fn rotating_it(mut self) -> Self {
        let (journal, unit, rotated) = (
            self.journal.clone(),
            self.unit.clone(),
            self.rotated.clone(),
        );
        self.keys
            .expect_rotate()
            .times(1)
            .returning(move |uow, _, _, secret, until| {
                journal.note(format!("keys.rotate {}", place(uow, &unit)));
                rotated.keep(&(secret.clone(), until));
                Ok(())
            });
        self
    }

    /// The key's own audit line and the workspace activity, both in the unit.
    fn auditing_in_the_unit(mut self) -> Self {
        let (journal, unit, lines) = (
            self.journal.clone(),
            self.unit.clone(),
            self.key_audit.clone(),
        );
        self.keys
            .expect_audit()
            .times(1)
            .returning(move |uow, entry| {
                journal.note(format!("keys.audit {} {}", entry.action, place(uow, &unit)));
                lines.keep(entry);
                Ok(())
            });
        records_once_in_the_unit(&mut self.audit, &self.journal, &self.unit, &self.events);
        self
    }
}

fn scoped(scopes: &[&str]) -> NewApiKey {
    NewApiKey {
        name: "CI".to_owned(),
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        expires_at: None,
        environment: None,
    }
}

fn messages_of(
    result: Result<(ApiKey, String), ApiKeyError>,
) -> Result<Vec<(String, String)>, String> {
    match result {
        Err(ApiKeyError::Invalid(errors)) => Ok(errors
            .errors()
            .iter()
            .map(|error| (error.field.clone(), error.message.clone()))
            .collect()),
        other => Err(format!("expected validation errors, got {other:?}")),
    }
}

#[tokio::test]
async fn a_member_who_may_not_manage_keys_cannot_create_one() -> TestResult {
    let mut keys = Keys::new().opening_no_unit().writing_nothing();
    keys.plans.expect_admit().never();
    let editor = keys.member_with([Permission::WorkflowsRead, Permission::WorkflowsWrite]);

    let result = keys
        .service()
        .create(&editor, &Keys::origin(), scoped(&["workflows.read"]))
        .await;

    assert!(
        matches!(
            result,
            Err(ApiKeyError::Forbidden(Forbidden(Permission::ApiKeysManage)))
        ),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_key_cannot_be_given_a_scope_its_creator_lacks() -> TestResult {
    let mut keys = Keys::new().opening_no_unit().writing_nothing();
    keys.plans.expect_admit().never();

    let result = keys
        .service()
        .create(
            &keys.admin(),
            &Keys::origin(),
            scoped(&[
                "workflows.read",
                "billing.manage",
                "workflows.delete_everything",
            ]),
        )
        .await;

    assert_eq!(
        messages_of(result)?,
        [
            (
                "scopes".to_owned(),
                "`billing.manage` is more than you may do yourself; a key never exceeds its creator"
                    .to_owned()
            ),
            (
                "scopes".to_owned(),
                "unknown permission code `workflows.delete_everything`".to_owned()
            ),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn no_scopes_a_past_expiry_and_an_unknown_environment_are_reported_together() -> TestResult {
    let mut keys = Keys::new()
        .with_the_staging_environment()
        .opening_no_unit()
        .writing_nothing();

    let result = keys
        .service()
        .create(
            &keys.admin(),
            &Keys::origin(),
            NewApiKey {
                expires_at: Some(NOW),
                environment: Some("qa".to_owned()),
                ..scoped(&[])
            },
        )
        .await;

    let fields: Vec<String> = messages_of(result)?
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert_eq!(fields, ["scopes", "expires_at", "environment"]);
    Ok(())
}

#[tokio::test]
async fn a_key_beyond_the_plan_is_refused_inside_the_unit_and_nothing_is_stored() -> TestResult {
    let reached = PlanLimitReached {
        name: "api_keys",
        value: 0,
        current: 0,
    };
    let mut keys = Keys::new()
        .opening_one_unit()
        .with_a_plan_that(Some(reached.clone()))
        .writing_nothing();

    let result = keys
        .service()
        .create(&keys.admin(), &Keys::origin(), scoped(&["workflows.read"]))
        .await;

    assert!(
        matches!(&result, Err(ApiKeyError::PlanLimit(refused)) if *refused == reached),
        "{result:?}"
    );
    assert_eq!(keys.journal.entries(), ["plans.admit in the unit"]);
    assert!(!keys.committed(), "a refused create must not commit");
    Ok(())
}

#[tokio::test]
async fn a_new_key_is_shown_once_and_only_its_sha256_is_stored() -> TestResult {
    let mut keys = Keys::new()
        .opening_one_unit()
        .with_a_plan_that(None)
        .inserting_keys()
        .auditing_in_the_unit();

    let (key, secret) = keys
        .service()
        .create(&keys.admin(), &Keys::origin(), scoped(&["workflows.read"]))
        .await?;

    let (stored, hash) = keys.stored.only()?;
    assert_eq!(stored, key);
    assert_eq!(hash, sha256(&secret), "the repository receives the digest");
    assert!(
        secret.starts_with("flx_") && secret.len() == 52,
        "{}",
        secret.len()
    );
    assert_eq!(key.prefix, secret[..12]);
    assert_eq!(key.last_four, secret[48..]);
    assert!(!format!("{stored:?}").contains(&secret[12..]));
    let line = keys.key_audit.only()?;
    assert!(!line.details.to_string().contains(&secret[12..]));
    assert!(
        !keys
            .events
            .only()?
            .metadata
            .to_string()
            .contains(&secret[12..])
    );
    assert_eq!(
        hex::encode(key_hash("abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "a presented key is looked up by its SHA-256 too"
    );
    Ok(())
}

#[tokio::test]
async fn creating_a_key_writes_its_audit_line_and_activity_in_one_committed_unit() -> TestResult {
    let mut keys = Keys::new()
        .with_the_staging_environment()
        .opening_one_unit()
        .with_a_plan_that(None)
        .inserting_keys()
        .auditing_in_the_unit();
    let admin = keys.admin();

    let (key, _) = keys
        .service()
        .create(
            &admin,
            &Keys::origin(),
            NewApiKey {
                environment: Some("staging".to_owned()),
                ..scoped(&["workflows.run", "workflows.read", "workflows.run"])
            },
        )
        .await?;

    assert_eq!(
        keys.journal.entries(),
        [
            "plans.admit in the unit",
            "keys.insert in the unit",
            "keys.audit created in the unit",
            "audit.record_in api_key.created in the unit",
        ]
    );
    assert!(keys.committed(), "the unit must be committed");
    assert_eq!(
        key.scopes,
        [Permission::WorkflowsRun, Permission::WorkflowsRead]
    );
    assert_eq!(key.environment, Some(keys.staging.clone()));
    assert_eq!(key.created_by, Some(keys.user));
    let line = keys.key_audit.only()?;
    assert_eq!(
        (line.key_id, line.action.as_str(), line.actor_user_id),
        (key.id, "created", Some(keys.user))
    );
    assert_eq!(
        (line.ip.as_deref(), line.user_agent.as_deref()),
        (Some("203.0.113.7"), Some("curl/8.5"))
    );
    let event = keys.events.only()?;
    assert_eq!(event.actor, Some(admin.actor()));
    assert_eq!(event.target, Some(("api_key", key.id.to_string())));
    Ok(())
}

#[tokio::test]
async fn revoking_a_key_records_it_in_the_same_unit() -> TestResult {
    let mut keys = Keys::new();
    let key = keys.key();
    keys = keys
        .holding(&key)
        .opening_one_unit()
        .revoking_it()
        .auditing_in_the_unit();

    keys.service()
        .revoke(&keys.admin(), &Keys::origin(), key.id)
        .await?;

    assert_eq!(
        keys.journal.entries(),
        [
            "keys.revoke in the unit",
            "keys.audit revoked in the unit",
            "audit.record_in api_key.revoked in the unit",
        ]
    );
    assert!(keys.committed());
    Ok(())
}

#[tokio::test]
async fn revoking_a_revoked_key_writes_nothing() -> TestResult {
    let mut keys = Keys::new();
    let revoked = ApiKey {
        revoked_at: Some(NOW - time::Duration::hours(1)),
        ..keys.key()
    };
    keys = keys.holding(&revoked).opening_no_unit().writing_nothing();

    let answer = keys
        .service()
        .revoke(&keys.admin(), &Keys::origin(), revoked.id)
        .await?;

    assert_eq!(answer, revoked);
    Ok(())
}

#[tokio::test]
async fn rotating_stores_the_new_digest_and_keeps_the_old_secret_for_the_grace_period() -> TestResult
{
    let mut keys = Keys::new();
    let key = keys.key();
    keys = keys
        .holding(&key)
        .opening_one_unit()
        .rotating_it()
        .auditing_in_the_unit();

    let (_, shown) = keys
        .service()
        .rotate(&keys.admin(), &Keys::origin(), key.id, Some(3600))
        .await?;

    let (secret, valid_until) = keys.rotated.only()?;
    assert_eq!(secret.hash, sha256(&shown));
    assert_eq!(secret.prefix, shown[..12]);
    assert_ne!(secret.prefix, key.prefix);
    assert_eq!(valid_until, NOW + time::Duration::hours(1));
    assert_eq!(
        keys.journal.entries(),
        [
            "keys.rotate in the unit",
            "keys.audit rotated in the unit",
            "audit.record_in api_key.rotated in the unit",
        ]
    );
    assert_eq!(
        keys.key_audit.only()?.details,
        json!({"grace_seconds": 3600, "new_prefix": secret.prefix})
    );
    assert!(keys.committed());
    Ok(())
}

#[tokio::test]
async fn a_grace_period_beyond_thirty_days_is_refused_before_the_key_is_read() -> TestResult {
    let mut keys = Keys::new().opening_no_unit().writing_nothing();
    keys.keys.expect_find().never();

    let result = keys
        .service()
        .rotate(
            &keys.admin(),
            &Keys::origin(),
            ApiKeyId::new(),
            Some(MAX_GRACE_SECONDS + 1),
        )
        .await;

    assert!(
        matches!(&result, Err(ApiKeyError::Invalid(errors)) if errors.errors()[0].field == "grace_seconds"),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn only_an_active_key_can_be_rotated() -> TestResult {
    let mut keys = Keys::new();
    let expired = ApiKey {
        expires_at: Some(NOW - time::Duration::seconds(1)),
        ..keys.key()
    };
    keys = keys.holding(&expired).opening_no_unit().writing_nothing();

    let result = keys
        .service()
        .rotate(&keys.admin(), &Keys::origin(), expired.id, None)
        .await;

    assert!(
        matches!(result, Err(ApiKeyError::Conflict(_))),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_presented_key_acts_with_exactly_its_scopes_in_its_environment() -> TestResult {
    let mut keys = Keys::new();
    let presented = format!("{KEY_PREFIX}{}", "K".repeat(48));
    let key = ApiKey {
        prefix: presented[..12].to_owned(),
        environment: Some(keys.staging.clone()),
        ..keys.key()
    };
    let stored = StoredKey {
        key: key.clone(),
        hash: sha256(&presented),
        previous_hash: None,
    };
    let prefix = key.prefix.clone();
    keys.keys
        .expect_find_by_prefix()
        .withf(move |asked| asked == prefix)
        .times(1)
        .returning(move |_| Ok(Some(stored.clone())));
    let id = key.id;
    keys.keys
        .expect_touch()
        .withf(move |touched, at| *touched == id && *at == NOW)
        .times(1)
        .returning(|_, _| Ok(()));
    keys.keys.expect_audit_refusal().never();

    let principal = keys
        .service()
        .authenticate(&presented, &Keys::origin())
        .await
        .map_err(|refusal| refusal.code())?;

    assert_eq!(principal.workspace_id(), keys.workspace);
    assert!(principal.has(Permission::WorkflowsRun));
    assert!(!principal.has(Permission::WorkflowsWrite));
    assert_eq!(
        principal.environment(),
        Some(keys.staging.id.to_string().as_str())
    );
    Ok(())
}

#[tokio::test]
async fn a_revoked_key_is_refused_and_its_refusal_audited_once_per_window() -> TestResult {
    let mut keys = Keys::new();
    let presented = format!("{KEY_PREFIX}{}", "R".repeat(48));
    let key = ApiKey {
        prefix: presented[..12].to_owned(),
        revoked_at: Some(NOW - time::Duration::hours(1)),
        ..keys.key()
    };
    let stored = StoredKey {
        key: key.clone(),
        hash: sha256(&presented),
        previous_hash: None,
    };
    keys.keys
        .expect_find_by_prefix()
        .times(3)
        .returning(move |_| Ok(Some(stored.clone())));
    let id = key.id;
    keys.keys
        .expect_audit_refusal()
        .withf(move |entry| {
            entry.key_id == id
                && entry.action == "revoked_refused"
                && entry.ip.as_deref() == Some("203.0.113.7")
        })
        .times(1)
        .returning(|_| Ok(()));
    keys.keys.expect_touch().never();
    let service = keys.service();

    for _ in 0..3 {
        let refused = service.authenticate(&presented, &Keys::origin()).await;
        assert_eq!(refused, Err(KeyRefusal::Revoked));
    }
    Ok(())
}

impl Keys {
    /// An API key of the workspace bound to staging, allowed to manage keys.
    fn staging_key(&self) -> Principal {
        Principal::new(
            Actor::ApiKey(fluxolab_kernel::ApiKeyId::new()),
            self.workspace,
            [Permission::ApiKeysManage, Permission::WorkflowsRead],
        )
        .bound_to(Some(self.staging.id.to_string()))
    }

    /// The directory knows staging by name and id, and production by name.
    fn with_staging_and_production(mut self) -> Self {
        let staging = self.staging.clone();
        let production = EnvironmentRef {
            id: EnvironmentId::new(),
            name: "production".to_owned(),
        };
        self.environments
            .expect_resolve()
            .returning(move |_, reference| {
                Ok(match reference {
                    Some("production") => Some(production.clone()),
                    Some(named) if named == "staging" || named == staging.id.to_string() => {
                        Some(staging.clone())
                    }
                    _ => None,
                })
            });
        self
    }
}

#[tokio::test]
async fn a_key_bound_to_staging_creates_staging_keys_only() -> TestResult {
    let mut keys = Keys::new()
        .with_staging_and_production()
        .opening_one_unit()
        .with_a_plan_that(None)
        .inserting_keys()
        .auditing_in_the_unit();
    let creator = keys.staging_key();
    keys.service()
        .create(&creator, &Keys::origin(), scoped(&["workflows.read"]))
        .await?;
    let (stored, _) = keys.stored.only()?;
    assert_eq!(
        stored.environment.map(|environment| environment.name),
        Some("staging".to_owned()),
        "a key named no environment gets its creator's"
    );

    let mut keys = Keys::new()
        .with_staging_and_production()
        .opening_no_unit()
        .writing_nothing();
    let creator = keys.staging_key();
    let result = keys
        .service()
        .create(
            &creator,
            &Keys::origin(),
            NewApiKey {
                environment: Some("production".to_owned()),
                ..scoped(&["workflows.read"])
            },
        )
        .await;
    let fields: Vec<String> = messages_of(result)?
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert_eq!(fields, ["environment"]);
    Ok(())
}

#[tokio::test]
async fn a_key_bound_to_staging_cannot_revoke_or_rotate_a_key_of_another_environment() {
    let mut keys = Keys::new();
    let unbound = keys.key();
    keys = keys.holding(&unbound).opening_no_unit().writing_nothing();
    let caller = keys.staging_key();
    let service = keys.service();
    let revoked = service.revoke(&caller, &Keys::origin(), unbound.id).await;
    assert!(matches!(revoked, Err(ApiKeyError::NotFound)), "{revoked:?}");
    let rotated = service
        .rotate(&caller, &Keys::origin(), unbound.id, None)
        .await;
    assert!(matches!(rotated, Err(ApiKeyError::NotFound)), "{rotated:?}");
}
