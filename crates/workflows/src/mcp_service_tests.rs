//! The MCP use cases' decisions, with their ports mocked: who may list and call, the
//! arguments checked against the tool's schema, sessions for API keys only.

use std::sync::Arc;

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::environment::MockEnvironmentDirectory;
use fluxolab_kernel::plan_guard::MockUsageGate;
use fluxolab_kernel::unit_of_work::MockUnitOfWorkFactory;
use fluxolab_kernel::{
    Actor, ApiKeyId, EnvironmentId, EnvironmentRef, Permission, Principal, WorkflowId, WorkspaceId,
};
use serde_json::json;

use super::*;
use crate::execution::MockExecutionRepository;
use crate::mcp::MockMcpSessions;
use crate::model::DeployedTrigger;
use crate::ports::MockWorkflowRepository;
use crate::responses::MockRunSignals;
use crate::start::{MockRunQueue, StartPorts};

fn key(permissions: &[Permission]) -> Principal {
    Principal::new(
        Actor::ApiKey(ApiKeyId::new()),
        WorkspaceId::new(),
        permissions.iter().copied(),
    )
}

fn production() -> EnvironmentRef {
    EnvironmentRef {
        id: EnvironmentId::new(),
        name: "production".to_owned(),
    }
}

/// A service whose workspace has one active tool, `greet`, requiring `name`.
fn service(workflows: MockWorkflowRepository) -> McpService {
    let mut environments = MockEnvironmentDirectory::new();
    environments
        .expect_resolve()
        .returning(|_, _| Ok(Some(production())));
    McpService::new(McpPorts {
        workflows: Arc::new(workflows),
        executions: Arc::new(MockExecutionRepository::new()),
        starter: Arc::new(RunStarter::new(StartPorts {
            units: Arc::new(MockUnitOfWorkFactory::new()),
            workflows: Arc::new(MockWorkflowRepository::new()),
            queue: Arc::new(MockRunQueue::new()),
            gate: Arc::new(MockUsageGate::new()),
            audit: Arc::new(MockAuditLog::new()),
        })),
        signals: Arc::new(MockRunSignals::new()),
        environments: Arc::new(environments),
        sessions: Arc::new(MockMcpSessions::new()),
    })
}

fn with_greet() -> MockWorkflowRepository {
    let mut workflows = MockWorkflowRepository::new();
    workflows
        .expect_deployed_triggers()
        .returning(|_, _, _| {
            Ok(vec![DeployedTrigger {
                workflow_id: WorkflowId::new(),
                workflow_name: "Greeter".to_owned(),
                version: 1,
                params: json!({
                    "tool_name": "greet",
                    "description": "Says hi",
                    "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
                }),
            }])
        });
    workflows
}

#[tokio::test]
async fn listing_tools_needs_workflows_read() {
    let service = service(with_greet());
    let listed = service.tools(&key(&[Permission::WorkflowsRead])).await;
    assert_eq!(
        listed
            .ok()
            .map(|tools| tools.into_iter().map(|tool| tool.name).collect::<Vec<_>>()),
        Some(vec!["greet".to_owned()])
    );
    let refused = service.tools(&key(&[Permission::WorkflowsRun])).await;
    assert!(
        matches!(refused, Err(WorkflowError::Forbidden(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn calling_needs_workflows_run_and_valid_arguments() {
    let service = service(with_greet());
    let refused = service
        .call(
            &key(&[Permission::WorkflowsRead]),
            "greet",
            json!({"name": "Ada"}),
        )
        .await;
    assert!(
        matches!(refused, Err(WorkflowError::Forbidden(_))),
        "{refused:?}"
    );
    let invalid = service
        .call(
            &key(&[Permission::WorkflowsRun]),
            "greet",
            json!({"name": 5}),
        )
        .await;
    match invalid {
        Err(WorkflowError::Invalid(errors)) => {
            assert_eq!(errors.errors()[0].field, "arguments.name");
        }
        other => panic!("expected invalid arguments, got {other:?}"),
    }
    let unknown = service
        .call(&key(&[Permission::WorkflowsRun]), "nope", json!({}))
        .await;
    assert!(
        matches!(unknown, Err(WorkflowError::NotFound("tool"))),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn sessions_belong_to_api_keys() {
    let service = service(MockWorkflowRepository::new());
    let user = Principal::new(
        Actor::User(fluxolab_kernel::UserId::new()),
        WorkspaceId::new(),
        [Permission::WorkflowsRead],
    );
    let refused = service
        .open_session(&user, "2025-11-25", std::time::Duration::from_secs(60))
        .await;
    assert!(
        matches!(refused, Err(WorkflowError::Invalid(_))),
        "{refused:?}"
    );
    assert!(service.admit(&key(&[Permission::ExecutionsRead])).is_err());
    assert!(service.admit(&key(&[Permission::WorkflowsRun])).is_ok());
}
