use std::sync::Mutex;

use fluxolab_credentials::envelope::DataKey;
use fluxolab_kernel::ManualClock;
use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::unit_of_work::RecordingUnitOfWork;
use time::macros::datetime;

use super::*;
use crate::ports::MockWorkspaceRepository;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NOW: OffsetDateTime = datetime!(2026-03-14 15:09:26 UTC);

fn master() -> Result<MasterKeys, EnvelopeError> {
    MasterKeys::new(b"provisioning-test-secret-0123456789", None)
}

#[test]
fn a_new_account_gets_its_personal_workspace_made_default() {
    let owner = UserId::new();
    let plan = ProvisioningPlan::for_new_account(owner, personal_name("Ada"), NOW);
    assert_eq!(plan.workspace.name.as_str(), "Ada's workspace");
    assert_eq!(plan.workspace.owner, owner);
    assert_eq!(plan.owner_role, Role::Owner);
    assert_eq!(plan.plan, PlanCode::Free);
    assert!(plan.set_as_default);
    assert_eq!(plan.data_key, None);
    assert_eq!(
        plan.activity_metadata(),
        json!({"name": "Ada's workspace", "personal": true})
    );
}

#[test]
fn every_workspace_starts_with_three_environments_production_the_default() {
    let plan = ProvisioningPlan::additional(
        UserId::new(),
        personal_name("Grace"),
        OffsetDateTime::now_utc(),
    );
    let names: Vec<&str> = plan.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["development", "staging", "production"]);
    let defaults: Vec<&str> = plan
        .environments
        .iter()
        .filter(|e| e.is_default)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(defaults, ["production"]);
    let mut ids: Vec<_> = plan.environments.iter().map(|e| e.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each environment has its own id");
}

#[test]
fn an_additional_workspace_leaves_the_default_alone() -> TestResult {
    let plan = ProvisioningPlan::additional(UserId::new(), WorkspaceName::parse("Team")?, NOW);
    assert!(!plan.set_as_default);
    assert_eq!(plan.activity_metadata(), json!({"name": "Team"}));
    assert_eq!(plan.plan, PlanCode::Free);
    Ok(())
}

#[test]
fn the_slug_is_the_name_stem_and_a_suffix_from_the_id() -> TestResult {
    let plan =
        ProvisioningPlan::additional(UserId::new(), WorkspaceName::parse("Ada's Team!")?, NOW);
    let hex = plan.workspace.id.as_uuid().simple().to_string();
    let suffix: String = hex.chars().rev().take(8).collect();
    assert_eq!(plan.workspace.slug, format!("ada-s-team-{suffix}"));
    Ok(())
}

#[test]
fn personal_names_are_cut_to_the_limit_or_fall_back() {
    let long = "x".repeat(200);
    let name = personal_name(&long);
    assert_eq!(name.as_str().chars().count(), 120);
    assert!(name.as_str().starts_with("xxx"));
    // Only whitespace and the suffix cut away: the title is blank after trimming.
    assert_eq!(
        personal_name(&" ".repeat(130)).as_str(),
        FALLBACK_PERSONAL_NAME
    );
}

#[test]
fn the_first_period_is_the_calendar_month_in_utc() {
    let period = SubscriptionPeriod::month_of(NOW);
    assert_eq!(period.start, datetime!(2026-03-01 00:00 UTC));
    assert_eq!(period.end, datetime!(2026-04-01 00:00 UTC));
    let december = SubscriptionPeriod::month_of(datetime!(2026-12-31 23:59 -01:00));
    assert_eq!(december.start, datetime!(2027-01-01 00:00 UTC));
    assert_eq!(december.end, datetime!(2027-02-01 00:00 UTC));
    let late = SubscriptionPeriod::month_of(datetime!(2026-12-15 12:00 UTC));
    assert_eq!(late.end, datetime!(2027-01-01 00:00 UTC));
}

#[test]
fn the_data_key_is_version_one_and_opens_only_for_its_workspace() -> TestResult {
    let keys = master()?;
    let plan = ProvisioningPlan::additional(UserId::new(), personal_name("Key"), NOW)
        .with_data_key(&keys)?;
    let key = plan.data_key.as_ref().ok_or("no data key")?;
    assert_eq!(key.version, 1);
    assert_eq!(key.workspace_id, plan.workspace.id);
    assert_eq!(key.wrapped.kek_id, keys.current().id());
    assert!(DataKey::unwrap(&keys, plan.workspace.id, &key.wrapped).is_ok());
    assert!(DataKey::unwrap(&keys, WorkspaceId::new(), &key.wrapped).is_err());
    Ok(())
}

#[tokio::test]
async fn the_provisioner_stores_the_plan_it_built_and_records_the_creation() -> TestResult {
    let stored: Arc<Mutex<Option<ProvisioningPlan>>> = Arc::default();
    let mut workspaces = MockWorkspaceRepository::new();
    let sink = stored.clone();
    workspaces
        .expect_provision()
        .times(1)
        .returning(move |_, plan| {
            if let Ok(mut slot) = sink.lock() {
                *slot = Some(plan.clone());
            }
            Ok(())
        });
    let mut audit = MockAuditLog::new();
    audit
        .expect_record_in()
        .times(1)
        .withf(|_, event| {
            event.action == "workspace.created"
                && event.metadata == json!({"name": "Lin's workspace", "personal": true})
        })
        .returning(|_, _| Ok(()));
    let provisioner = Provisioner::new(
        Arc::new(workspaces),
        Arc::new(audit),
        Some(Arc::new(master()?)),
        Arc::new(ManualClock::new(NOW)),
    );
    let owner = UserId::new();
    let mut unit = RecordingUnitOfWork::default();
    let id = provisioner
        .provision_personal(&mut unit, owner, "Lin")
        .await?;

    let plan = stored
        .lock()
        .map_err(|_| "poisoned")?
        .clone()
        .ok_or("not stored")?;
    assert_eq!(plan.workspace.id, id);
    assert_eq!(plan.workspace.owner, owner);
    assert!(plan.set_as_default);
    assert_eq!(plan.period, SubscriptionPeriod::month_of(NOW));
    assert!(
        plan.data_key.is_some(),
        "master keys at hand: the key is made"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_store_records_no_activity() -> TestResult {
    let mut workspaces = MockWorkspaceRepository::new();
    workspaces
        .expect_provision()
        .returning(|_, _| Err(StorageError::new(std::io::Error::other("down"))));
    let mut audit = MockAuditLog::new();
    audit.expect_record_in().never();
    let provisioner = Provisioner::new(
        Arc::new(workspaces),
        Arc::new(audit),
        None,
        Arc::new(ManualClock::new(NOW)),
    );
    let result = provisioner
        .provision_personal(&mut RecordingUnitOfWork::default(), UserId::new(), "Lin")
        .await;
    assert!(
        matches!(result, Err(ProvisioningError::Storage(_))),
        "{result:?}"
    );
    Ok(())
}
