//! `WorkflowService`'s decisions with its ports mocked: who may act, validation before
//! any write, the plan guard asked inside the unit, version numbers from the repository,
//! webhook bindings and the activity written in the same unit, and the commit.

use std::sync::Arc;

use fluxolab_credentials::CredentialKind;
use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::environment::MockEnvironmentDirectory;
use fluxolab_kernel::plan_guard::MockPlanGuard;
use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use fluxolab_kernel::{Actor, CredentialId, EnvironmentId, EnvironmentRef, UserId, WorkspaceId};
use serde_json::Value;

use super::*;
use crate::model::Deployment;
use crate::ports::{MockCredentialCatalog, MockWebhookBindings, MockWorkflowRepository};
use crate::scheduler::MockScheduleStore;
use fluxolab_kernel::testing::{Captured, Journal, opens_once, place};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[path = "service_error_workflow_tests.rs"]
mod error_workflow;

fn environment(name: &str) -> EnvironmentRef {
    EnvironmentRef {
        id: EnvironmentId::new(),
        name: name.to_owned(),
    }
}

fn definition(value: Value) -> Result<Definition, serde_json::Error> {
    serde_json::from_value(value)
}

/// A manual trigger feeding one `data.set`.
fn manual_definition() -> Result<Definition, serde_json::Error> {
    definition(json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"a": 1}}}
        ],
        "connections": [{"from": "start", "to": "shape"}]
    }))
}

/// A workflow started by its webhook.
fn webhook_definition() -> Result<Definition, serde_json::Error> {
    definition(json!({
        "nodes": [
            {"id": "hook", "type": "trigger.webhook", "name": "Incoming"},
            {"id": "answer", "type": "webhook.respond", "name": "Answer"}
        ],
        "connections": [{"from": "hook", "to": "answer"}]
    }))
}

/// Workflow use cases over mocked ports, in one workspace with `production` and
/// `staging`.
struct Workflows {
    workspace: WorkspaceId,
    user: UserId,
    production: EnvironmentRef,
    staging: EnvironmentRef,
    unit: RecordingUnitOfWork,
    journal: Journal,
    versions_written: Captured<Version>,
    events: Captured<AuditEvent>,
    units: MockUnitOfWorkFactory,
    workflows: MockWorkflowRepository,
    credentials: MockCredentialCatalog,
    webhooks: MockWebhookBindings,
    plans: MockPlanGuard,
    audit: MockAuditLog,
    environments: MockEnvironmentDirectory,
    schedules: MockScheduleStore,
    /// Whether a test set what `schedules` expects; if not, removing a schedule is
    /// allowed (and not journaled) and registering one is not.
    schedules_expected: bool,
}

impl Workflows {
    fn new() -> Self {
        Self {
            workspace: WorkspaceId::new(),
            user: UserId::new(),
            production: environment("production"),
            staging: environment("staging"),
            unit: RecordingUnitOfWork::default(),
            journal: Journal::default(),
            versions_written: Captured::default(),
            events: Captured::default(),
            units: MockUnitOfWorkFactory::new(),
            workflows: MockWorkflowRepository::new(),
            credentials: MockCredentialCatalog::new(),
            webhooks: MockWebhookBindings::new(),
            plans: MockPlanGuard::new(),
            audit: MockAuditLog::new(),
            environments: MockEnvironmentDirectory::new(),
            schedules: MockScheduleStore::new(),
            schedules_expected: false,
        }
    }

    fn member_with(&self, permissions: impl IntoIterator<Item = Permission>) -> Principal {
        Principal::new(Actor::User(self.user), self.workspace, permissions)
    }

    fn viewer(&self) -> Principal {
        self.member_with([Permission::WorkflowsRead])
    }

    fn editor(&self) -> Principal {
        self.member_with([Permission::WorkflowsRead, Permission::WorkflowsWrite])
    }

    fn committed(&self) -> bool {
        self.unit
            .committed
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A workflow of the workspace, active nowhere.
    fn workflow(&self) -> Workflow {
        let at = OffsetDateTime::UNIX_EPOCH;
        Workflow {
            id: WorkflowId::new(),
            workspace_id: self.workspace,
            name: "Onboarding".to_owned(),
            description: String::new(),
            deployments: Vec::new(),
            latest_version: Some(2),
            error_workflow_id: None,
            archived_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// A workflow active in `staging` at version 1.
    fn workflow_active_in_staging(&self) -> Workflow {
        Workflow {
            deployments: vec![Deployment {
                environment: self.staging.clone(),
                is_default: false,
                version: 1,
                activated_at: OffsetDateTime::UNIX_EPOCH,
            }],
            ..self.workflow()
        }
    }

    fn service(&mut self) -> WorkflowService {
        if !self.schedules_expected {
            self.schedules.expect_register().never();
            self.schedules
                .expect_unregister()
                .returning(|_, _, _, _| Ok(()));
        }
        WorkflowService::new(WorkflowPorts {
            units: Arc::new(std::mem::take(&mut self.units)),
            workflows: Arc::new(std::mem::take(&mut self.workflows)),
            credentials: Arc::new(std::mem::take(&mut self.credentials)),
            webhooks: Arc::new(std::mem::take(&mut self.webhooks)),
            plans: Arc::new(std::mem::take(&mut self.plans)),
            audit: Arc::new(std::mem::take(&mut self.audit)),
            environments: Arc::new(std::mem::take(&mut self.environments)),
            schedules: Arc::new(std::mem::take(&mut self.schedules)),
            clock: Arc::new(fluxolab_kernel::ManualClock::new(
                OffsetDateTime::UNIX_EPOCH,
            )),
            code: Arc::new(crate::code::NoCodeRunner),
            code_maxima: Arc::new(crate::code::MockWorkspaceCodeMaxima::new()),
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
        self.workflows.expect_insert().never();
        self.workflows.expect_insert_version().never();
        self.workflows.expect_next_version().never();
        self.workflows.expect_set_active().never();
        self.webhooks.expect_bind().never();
        self.webhooks.expect_unbind().never();
        self.schedules.expect_register().never();
        self.schedules.expect_unregister().never();
        self.schedules_expected = true;
        self.audit.expect_record_in().never();
        self
    }

    /// `find` answers `workflow` for its own id, and any other id as a copy of it (the
    /// row a create just wrote).
    fn holding(mut self, workflow: &Workflow) -> Self {
        let workflow = workflow.clone();
        self.workflows
            .expect_find()
            .returning(move |workspace, id| {
                Ok((workspace == workflow.workspace_id).then(|| Workflow {
                    id,
                    ..workflow.clone()
                }))
            });
        self
    }

    fn with_version(mut self, number: i32, definition: Definition) -> Self {
        let workspace = self.workspace;
        self.workflows
            .expect_version()
            .withf(move |asked, _, wanted| *asked == workspace && *wanted == number)
            .returning(move |_, id, _| {
                Ok(Some(Version {
                    workflow_id: id,
                    version: number,
                    checksum: checksum(&definition),
                    definition: definition.clone(),
                    created_at: OffsetDateTime::UNIX_EPOCH,
                }))
            });
        self
    }

    /// The directory knows `production` (the default) and `staging`, by name or id.
    fn with_environments(mut self) -> Self {
        let (workspace, known) = (
            self.workspace,
            [self.production.clone(), self.staging.clone()],
        );
        self.environments
            .expect_resolve()
            .returning(move |asked, reference| {
                let reference = reference.unwrap_or("production");
                Ok(known
                    .iter()
                    .find(|environment| {
                        asked == workspace
                            && (environment.name == reference
                                || environment.id.to_string() == reference)
                    })
                    .cloned())
            });
        self
    }

    fn with_a_plan_that(
        mut self,
        resource: LimitedResource,
        answer: Option<PlanLimitReached>,
    ) -> Self {
        let (journal, unit, workspace) = (self.journal.clone(), self.unit.clone(), self.workspace);
        self.plans
            .expect_admit()
            .withf(move |_, asked, counted| *asked == workspace && *counted == resource)
            .times(1)
            .returning(move |uow, _, counted| {
                journal.note(format!("plans.admit {counted:?} {}", place(uow, &unit)));
                Ok(answer.clone())
            });
        self
    }

    fn inserting_the_workflow(mut self) -> Self {
        let (journal, unit, user) = (self.journal.clone(), self.unit.clone(), self.user);
        self.workflows
            .expect_insert()
            .withf(move |_, workflow| workflow.created_by == Some(user))
            .times(1)
            .returning(move |uow, workflow| {
                journal.note(format!(
                    "workflows.insert {} {}",
                    workflow.name,
                    place(uow, &unit)
                ));
                Ok(())
            });
        self
    }

    fn inserting_one_version(mut self) -> Self {
        let (journal, unit, written, user) = (
            self.journal.clone(),
            self.unit.clone(),
            self.versions_written.clone(),
            self.user,
        );
        self.workflows
            .expect_insert_version()
            .withf(move |_, _, _, created_by| *created_by == Some(user))
            .times(1)
            .returning(move |uow, _, version, _| {
                journal.note(format!(
                    "workflows.insert_version {} {}",
                    version.version,
                    place(uow, &unit)
                ));
                written.keep(version);
                Ok(())
            });
        self
    }

    fn numbering_the_next_version(mut self, number: i32) -> Self {
        let (journal, unit) = (self.journal.clone(), self.unit.clone());
        self.workflows
            .expect_next_version()
            .times(1)
            .returning(move |uow, _, _| {
                journal.note(format!("workflows.next_version {}", place(uow, &unit)));
                Ok(number)
            });
        self
    }

    fn setting_the_active_version(mut self) -> Self {
        let (journal, unit, user) = (self.journal.clone(), self.unit.clone(), self.user);
        let names = [self.production.clone(), self.staging.clone()];
        self.workflows
            .expect_set_active()
            .withf(move |_, _, _, _, _, by| *by == Some(user))
            .times(1)
            .returning(move |uow, _, _, environment, version, _| {
                let name = names
                    .iter()
                    .find(|known| known.id == environment)
                    .map_or("?", |known| known.name.as_str());
                journal.note(format!(
                    "workflows.set_active {name} {version:?} {}",
                    place(uow, &unit)
                ));
                Ok(())
            });
        self
    }

    fn binding_webhooks(mut self) -> Self {
        let (journal, unit) = (self.journal.clone(), self.unit.clone());
        let names = [self.production.clone(), self.staging.clone()];
        self.webhooks
            .expect_bind()
            .times(1)
            .returning(move |uow, _, _, environment, _| {
                let name = names
                    .iter()
                    .find(|known| known.id == environment)
                    .map_or("?", |known| known.name.as_str());
                journal.note(format!("webhooks.bind {name} {}", place(uow, &unit)));
                Ok(())
            });
        self.webhooks.expect_unbind().never();
        self
    }

    fn unbinding_webhooks(mut self) -> Self {
        let (journal, unit) = (self.journal.clone(), self.unit.clone());
        let names = [self.production.clone(), self.staging.clone()];
        self.webhooks
            .expect_unbind()
            .times(1)
            .returning(move |uow, _, _, environment| {
                let name = match environment {
                    None => "everywhere",
                    Some(id) => names
                        .iter()
                        .find(|known| known.id == id)
                        .map_or("?", |known| known.name.as_str()),
                };
                journal.note(format!("webhooks.unbind {name} {}", place(uow, &unit)));
                Ok(())
            });
        self.webhooks.expect_bind().never();
        self
    }

    fn recording_activity_in_the_unit(mut self) -> Self {
        let (journal, unit, events) =
            (self.journal.clone(), self.unit.clone(), self.events.clone());
        self.audit
            .expect_record_in()
            .times(1)
            .returning(move |uow, event| {
                journal.note(format!(
                    "audit.record_in {} {}",
                    event.action,
                    place(uow, &unit)
                ));
                events.keep(event);
                Ok(())
            });
        self.audit.expect_record().never();
        self
    }
}

fn named(name: &str) -> CreateWorkflow {
    CreateWorkflow {
        name: name.to_owned(),
        description: None,
        definition: None,
        error_workflow_id: None,
    }
}

#[tokio::test]
async fn a_viewer_cannot_create_a_workflow() -> TestResult {
    let mut workflows = Workflows::new().opening_no_unit().writing_nothing();
    workflows.plans.expect_admit().never();

    let result = workflows
        .service()
        .create(&workflows.viewer(), named("Onboarding"))
        .await;

    assert!(
        matches!(
            result,
            Err(WorkflowError::Forbidden(Forbidden(
                Permission::WorkflowsWrite
            )))
        ),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_member_without_read_permission_cannot_see_a_workflow_or_its_versions() -> TestResult {
    let mut workflows = Workflows::new();
    workflows.workflows.expect_find().never();
    workflows.workflows.expect_versions().never();
    let runner = workflows.member_with([Permission::WorkflowsRun, Permission::ExecutionsRead]);
    let service = workflows.service();

    let shown = service.get(&runner, WorkflowId::new()).await;
    let versions = service.versions(&runner, WorkflowId::new()).await;

    for result in [shown.map(drop), versions.map(drop)] {
        assert!(
            matches!(
                result,
                Err(WorkflowError::Forbidden(Forbidden(
                    Permission::WorkflowsRead
                )))
            ),
            "{result:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_invalid_definition_is_returned_with_every_problem_and_nothing_is_written() -> TestResult
{
    let mut workflows = Workflows::new().opening_no_unit().writing_nothing();
    workflows.plans.expect_admit().never();
    let elsewhere = CredentialId::new();
    let workspace = workflows.workspace;
    workflows
        .credentials
        .expect_kinds()
        .withf(move |asked, ids| *asked == workspace && ids == [elsewhere])
        .times(1)
        .returning(|_, _| Ok(Default::default()));

    let result = workflows
        .service()
        .create(
            &workflows.editor(),
            CreateWorkflow {
                definition: Some(definition(json!({
                    "nodes": [
                        {"id": "start", "type": "trigger.manual", "name": "Start"},
                        {"id": "call", "type": "http.request", "name": "Call",
                         "params": {"method": "GET", "url": "https://x.test"},
                         "credential_id": elsewhere},
                        {"id": "odd", "type": "ftp.upload", "name": "Upload"}
                    ],
                    "connections": [{"from": "start", "to": "call"}]
                }))?),
                ..named("Onboarding")
            },
        )
        .await;

    let Err(WorkflowError::Invalid(errors)) = result else {
        return Err(format!("expected validation errors, got {result:?}").into());
    };
    let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "definition.nodes[1].credential_id",
            "definition.nodes[2].type"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_workflow_beyond_the_plan_is_refused_inside_the_unit_and_nothing_is_written() -> TestResult
{
    let reached = PlanLimitReached {
        name: "max_workflows",
        value: 3,
        current: 3,
    };
    let mut workflows = Workflows::new()
        .opening_one_unit()
        .with_a_plan_that(LimitedResource::Workflows, Some(reached.clone()))
        .writing_nothing();
    workflows.workflows.expect_find().never();

    let result = workflows
        .service()
        .create(&workflows.editor(), named("Onboarding"))
        .await;

    assert!(
        matches!(&result, Err(WorkflowError::PlanLimit(refused)) if *refused == reached),
        "{result:?}"
    );
    assert_eq!(
        workflows.journal.entries(),
        ["plans.admit Workflows in the unit"]
    );
    assert!(!workflows.committed(), "a refused create must not commit");
    Ok(())
}

#[tokio::test]
async fn a_workflow_created_with_a_definition_gets_version_one_and_its_activity_in_one_unit()
-> TestResult {
    let mut workflows = Workflows::new();
    let template = workflows.workflow();
    workflows = workflows
        .opening_one_unit()
        .with_a_plan_that(LimitedResource::Workflows, None)
        .inserting_the_workflow()
        .inserting_one_version()
        .recording_activity_in_the_unit()
        .holding(&template);
    let editor = workflows.editor();

    let created = workflows
        .service()
        .create(
            &editor,
            CreateWorkflow {
                definition: Some(manual_definition()?),
                ..named(" Onboarding ")
            },
        )
        .await?;

    assert_eq!(
        workflows.journal.entries(),
        [
            "plans.admit Workflows in the unit",
            "workflows.insert Onboarding in the unit",
            "workflows.insert_version 1 in the unit",
            "audit.record_in workflow.created in the unit",
        ]
    );
    assert!(workflows.committed(), "the unit must be committed");
    let version = workflows.versions_written.only()?;
    assert_eq!(version.workflow_id, created.id);
    assert_eq!(version.checksum, checksum(&manual_definition()?));
    assert_eq!(
        workflows.events.only()?,
        AuditEvent {
            workspace_id: workflows.workspace,
            actor: Some(editor.actor()),
            action: "workflow.created",
            target: Some(("workflow", created.id.to_string())),
            metadata: json!({"name": "Onboarding"}),
        }
    );
    Ok(())
}

#[tokio::test]
async fn a_new_version_takes_the_number_the_repository_hands_out_inside_the_unit() -> TestResult {
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow();
    workflows = workflows
        .holding(&workflow)
        .opening_one_unit()
        .numbering_the_next_version(4)
        .inserting_one_version()
        .recording_activity_in_the_unit();

    let version = workflows
        .service()
        .add_version(&workflows.editor(), workflow.id, manual_definition()?)
        .await?;

    assert_eq!(version.version, 4);
    assert_eq!(workflows.versions_written.only()?, version);
    assert_eq!(
        workflows.journal.entries(),
        [
            "workflows.next_version in the unit",
            "workflows.insert_version 4 in the unit",
            "audit.record_in workflow.version_created in the unit",
        ]
    );
    assert_eq!(workflows.events.only()?.metadata, json!({"version": 4}));
    assert!(workflows.committed());
    Ok(())
}

#[tokio::test]
async fn an_archived_workflow_gets_no_new_version() -> TestResult {
    let mut workflows = Workflows::new();
    let archived = Workflow {
        archived_at: Some(OffsetDateTime::UNIX_EPOCH),
        ..workflows.workflow()
    };
    workflows = workflows
        .holding(&archived)
        .opening_no_unit()
        .writing_nothing();

    let result = workflows
        .service()
        .add_version(&workflows.editor(), archived.id, manual_definition()?)
        .await;

    assert!(
        matches!(&result, Err(WorkflowError::Invalid(errors)) if errors.errors()[0].field == "workflow"),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn activating_a_webhook_workflow_counts_it_and_binds_its_webhook_in_the_same_unit()
-> TestResult {
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow();
    workflows = workflows
        .holding(&workflow)
        .with_environments()
        .with_version(2, webhook_definition()?)
        .opening_one_unit()
        .with_a_plan_that(LimitedResource::ActiveWorkflows, None)
        .setting_the_active_version()
        .binding_webhooks()
        .recording_activity_in_the_unit();

    workflows
        .service()
        .set_active(&workflows.editor(), workflow.id, None, Some(2))
        .await?;

    assert_eq!(
        workflows.journal.entries(),
        [
            "plans.admit ActiveWorkflows in the unit",
            "workflows.set_active production Some(2) in the unit",
            "webhooks.bind production in the unit",
            "audit.record_in workflow.activated in the unit",
        ]
    );
    assert!(workflows.committed());
    assert_eq!(
        workflows.events.only()?.metadata,
        json!({"version": 2, "environment": "production"})
    );
    Ok(())
}

#[tokio::test]
async fn activation_beyond_the_active_workflow_limit_is_refused_and_nothing_is_bound() -> TestResult
{
    let reached = PlanLimitReached {
        name: "max_active_workflows",
        value: 1,
        current: 1,
    };
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow();
    workflows = workflows
        .holding(&workflow)
        .with_environments()
        .with_version(2, webhook_definition()?)
        .opening_one_unit()
        .with_a_plan_that(LimitedResource::ActiveWorkflows, Some(reached.clone()))
        .writing_nothing();

    let result = workflows
        .service()
        .set_active(&workflows.editor(), workflow.id, None, Some(2))
        .await;

    assert!(
        matches!(&result, Err(WorkflowError::PlanLimit(refused)) if *refused == reached),
        "{result:?}"
    );
    assert!(!workflows.committed());
    Ok(())
}

#[tokio::test]
async fn a_workflow_already_active_elsewhere_is_not_counted_again() -> TestResult {
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow_active_in_staging();
    workflows = workflows
        .holding(&workflow)
        .with_environments()
        .with_version(2, manual_definition()?)
        .opening_one_unit()
        .setting_the_active_version()
        .unbinding_webhooks()
        .recording_activity_in_the_unit();
    workflows.plans.expect_admit().never();

    workflows
        .service()
        .set_active(
            &workflows.editor(),
            workflow.id,
            Some("production"),
            Some(2),
        )
        .await?;

    assert_eq!(
        workflows.journal.entries(),
        [
            "workflows.set_active production Some(2) in the unit",
            "webhooks.unbind production in the unit",
            "audit.record_in workflow.activated in the unit",
        ]
    );
    assert!(workflows.committed());
    Ok(())
}

#[tokio::test]
async fn deactivating_unbinds_the_webhook_of_that_environment_only() -> TestResult {
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow_active_in_staging();
    workflows = workflows
        .holding(&workflow)
        .with_environments()
        .opening_one_unit()
        .setting_the_active_version()
        .unbinding_webhooks()
        .recording_activity_in_the_unit();
    workflows.workflows.expect_version().never();
    workflows.plans.expect_admit().never();

    workflows
        .service()
        .set_active(&workflows.editor(), workflow.id, Some("staging"), None)
        .await?;

    assert_eq!(
        workflows.journal.entries(),
        [
            "workflows.set_active staging None in the unit",
            "webhooks.unbind staging in the unit",
            "audit.record_in workflow.deactivated in the unit",
        ]
    );
    assert!(workflows.committed());
    Ok(())
}

#[tokio::test]
async fn a_version_that_does_not_exist_cannot_be_activated() -> TestResult {
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow();
    workflows = workflows
        .holding(&workflow)
        .with_environments()
        .opening_no_unit()
        .writing_nothing();
    workflows
        .workflows
        .expect_version()
        .times(1)
        .returning(|_, _, _| Ok(None));

    let result = workflows
        .service()
        .set_active(&workflows.editor(), workflow.id, None, Some(9))
        .await;

    assert!(
        matches!(&result, Err(WorkflowError::Invalid(errors)) if errors.errors()[0].field == "version"),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_api_key_bound_to_staging_cannot_activate_in_production() -> TestResult {
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow();
    workflows = workflows
        .holding(&workflow)
        .with_environments()
        .opening_no_unit()
        .writing_nothing();
    workflows.workflows.expect_version().never();
    let key = Principal::new(
        Actor::ApiKey(fluxolab_kernel::ApiKeyId::new()),
        workflows.workspace,
        [Permission::WorkflowsRead, Permission::WorkflowsWrite],
    )
    .bound_to(Some(workflows.staging.id.to_string()));

    let result = workflows
        .service()
        .set_active(&key, workflow.id, Some("production"), Some(2))
        .await;

    let Err(WorkflowError::Invalid(errors)) = result else {
        return Err(format!("expected a validation error, got {result:?}").into());
    };
    assert_eq!(
        errors.errors()[0].message,
        "this API key is bound to the `staging` environment"
    );
    Ok(())
}

#[tokio::test]
async fn archiving_unbinds_the_webhooks_of_every_environment_in_the_same_unit() -> TestResult {
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow_active_in_staging();
    workflows = workflows
        .holding(&workflow)
        .opening_one_unit()
        .unbinding_webhooks()
        .recording_activity_in_the_unit();
    let (journal, unit) = (workflows.journal.clone(), workflows.unit.clone());
    let id = workflow.id;
    workflows
        .workflows
        .expect_archive()
        .withf(move |_, _, archived| *archived == id)
        .times(1)
        .returning(move |uow, _, _| {
            journal.note(format!("workflows.archive {}", place(uow, &unit)));
            Ok(())
        });

    workflows
        .service()
        .archive(&workflows.editor(), workflow.id)
        .await?;

    assert_eq!(
        workflows.journal.entries(),
        [
            "workflows.archive in the unit",
            "webhooks.unbind everywhere in the unit",
            "audit.record_in workflow.archived in the unit",
        ]
    );
    assert!(workflows.committed());
    Ok(())
}

#[tokio::test]
async fn a_credential_of_the_right_kind_passes_validation_through_the_catalog() -> TestResult {
    let mut workflows = Workflows::new();
    let workflow = workflows.workflow();
    let smtp = CredentialId::new();
    workflows = workflows
        .holding(&workflow)
        .opening_one_unit()
        .numbering_the_next_version(3)
        .inserting_one_version()
        .recording_activity_in_the_unit();
    workflows
        .credentials
        .expect_kinds()
        .withf(move |_, ids| ids == [smtp])
        .times(1)
        .returning(move |_, _| Ok([(smtp, CredentialKind::Smtp)].into_iter().collect()));

    let version = workflows
        .service()
        .add_version(
            &workflows.editor(),
            workflow.id,
            definition(json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual", "name": "Start"},
                    {"id": "mail", "type": "email.send", "name": "Mail",
                     "params": {"to": "ada@example.com", "subject": "Hi", "body": "Hello"},
                     "credential_id": smtp}
                ],
                "connections": [{"from": "start", "to": "mail"}]
            }))?,
        )
        .await?;

    assert_eq!(version.version, 3);
    assert!(workflows.committed());
    Ok(())
}

#[path = "service_schedules_tests.rs"]
mod schedules;
