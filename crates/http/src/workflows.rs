//! `/api/workflows*`: workflows, their immutable versions, activation, and the node
//! registry.

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, delete, get, patch, post};
use fluxolab_kernel::WorkflowId;
use fluxolab_workflows::Definition;
use fluxolab_workflows::connectors::{KnownType, node_type};
use fluxolab_workflows::model::{Version, Workflow};
use fluxolab_workflows::registry::{CredentialUse, NODE_TYPES};
use fluxolab_workflows::service::{CreateWorkflow, WorkflowChanges};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::path_id::path_id;
use crate::problem::Problem;
use crate::workspaces::{PageQuery, PageResponse, page_request};

/// A workflow.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkflowResponse {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// The version active in the default environment (`production`).
    pub active_version: Option<i32>,
    /// The version active in each environment the workflow is active in.
    pub deployments: Vec<DeploymentResponse>,
    pub latest_version: Option<i32>,
    /// The workflow started when a run of this one fails for good (its last attempt),
    /// with `{execution_id, workflow_id, error, failed_node}` as input.
    pub error_workflow_id: Option<Uuid>,
    pub archived: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Workflow> for WorkflowResponse {
    fn from(workflow: Workflow) -> Self {
        Self {
            active_version: workflow.active_version(),
            id: workflow.id.as_uuid(),
            name: workflow.name,
            description: workflow.description,
            deployments: workflow
                .deployments
                .into_iter()
                .map(|deployment| DeploymentResponse {
                    environment_id: deployment.environment.id.as_uuid(),
                    environment: deployment.environment.name,
                    version: deployment.version,
                    activated_at: deployment.activated_at,
                })
                .collect(),
            latest_version: workflow.latest_version,
            error_workflow_id: workflow.error_workflow_id.map(|id| id.as_uuid()),
            archived: workflow.archived_at.is_some(),
            created_at: workflow.created_at,
            updated_at: workflow.updated_at,
        }
    }
}

/// A workflow's version active in one environment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentResponse {
    pub environment_id: Uuid,
    /// The environment's name (`production`…).
    pub environment: String,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub activated_at: OffsetDateTime,
}

/// An immutable version of a workflow.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionResponse {
    pub workflow_id: Uuid,
    pub version: i32,
    #[schema(value_type = Object)]
    pub definition: Value,
    /// SHA-256 of the definition's JSON.
    pub checksum: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Version> for VersionResponse {
    fn from(version: Version) -> Self {
        Self {
            workflow_id: version.workflow_id.as_uuid(),
            version: version.version,
            definition: serde_json::to_value(&version.definition).unwrap_or(Value::Null),
            checksum: version.checksum,
            created_at: version.created_at,
        }
    }
}

/// A node type of the registry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeTypeResponse {
    #[serde(rename = "type")]
    pub node_type: String,
    pub description: String,
    pub trigger: bool,
    /// JSON Schema of `params`.
    #[schema(value_type = Object)]
    pub params_schema: Value,
    /// Output names; `flow.switch` has one per case plus `default`.
    pub outputs: Vec<String>,
    /// Credential kinds it takes (empty: none).
    pub credential_kinds: Vec<String>,
    pub credential_required: bool,
}

/// `POST /api/workflows`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkflowRequest {
    /// Trimmed: 1–120 characters, not only spaces.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub name: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Becomes version 1 when given; validated against the node registry.
    #[schema(value_type = Option<Object>, example = json!({"nodes": [{"id": "start", "type": "trigger.manual", "name": "Start"}], "connections": []}))]
    pub definition: Option<Definition>,
    /// Another workflow of the workspace, started when a run of this one fails for good.
    pub error_workflow_id: Option<Uuid>,
}

/// `PATCH /api/workflows/{id}`: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkflowRequest {
    /// Trimmed: 1–120 characters, not only spaces.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Another workflow of the workspace, started when a run of this one fails for good;
    /// `null` removes it.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<Uuid>)]
    pub error_workflow_id: Option<Option<Uuid>>,
}

/// `POST /api/workflows/{id}/versions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRequest {
    /// The graph: `nodes` (`id`, `type`, `name`, `params`, `credential_id`) and
    /// `connections` (`from`, `to`, `output`), validated against the node registry.
    #[schema(value_type = Object, example = json!({"nodes": [{"id": "start", "type": "trigger.manual", "name": "Start"}], "connections": []}))]
    pub definition: Definition,
}

/// `POST /api/workflows/{id}/activate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    #[schema(minimum = 1)]
    pub version: i32,
    /// The environment's name or id; default `production`.
    pub environment: Option<String>,
}

/// `POST /api/workflows/{id}/deactivate` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeactivateRequest {
    /// The environment's name or id; default `production`.
    pub environment: Option<String>,
}

/// `POST /api/workflows/{id}/promote`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// The environment whose active version is promoted (`staging`).
    pub from: String,
    /// The environment it becomes active in (`production`).
    pub to: String,
}

/// Every node type of the active workspace — the built-ins (among them `code.javascript`:
/// params `code`, and optional `memory_limit_mb` and `timeout_ms` within the instance's
/// maxima), then the actions of its enabled connectors (`connector.<name>.<action>`) —
/// with its params schema, outputs and credential kinds.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), responses(
    (status = 200, description = "The node registry", body = Vec<NodeTypeResponse>),
))]
#[get("/api/workflows/nodes")]
pub async fn node_types(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let credential = |usage: CredentialUse| {
        let (kinds, required) = match usage {
            CredentialUse::None => (&[][..], false),
            CredentialUse::Optional(kinds) => (kinds, false),
            CredentialUse::Required(kinds) => (kinds, true),
        };
        (
            kinds.iter().map(|kind| kind.code().to_owned()).collect(),
            required,
        )
    };
    let mut nodes: Vec<NodeTypeResponse> = NODE_TYPES
        .iter()
        .map(|node| {
            let (credential_kinds, credential_required) = credential(node.credential);
            NodeTypeResponse {
                node_type: node.code.to_owned(),
                description: node.description.to_owned(),
                trigger: node.trigger,
                params_schema: node.params_schema(),
                outputs: node.outputs_for(&Value::Null),
                credential_kinds,
                credential_required,
            }
        })
        .collect();
    let connectors = services.connectors.enabled(&caller.principal).await?;
    for connector in &connectors {
        for action in &connector.manifest.actions {
            let kind = KnownType::Action { connector, action };
            let (credential_kinds, credential_required) = credential(kind.credential());
            nodes.push(NodeTypeResponse {
                node_type: node_type(connector.name(), &action.name),
                description: action.description.clone(),
                trigger: false,
                params_schema: action.params_schema.clone(),
                outputs: kind.outputs_for(&Value::Null),
                credential_kinds,
                credential_required,
            });
        }
    }
    Ok(HttpResponse::Ok().json(nodes))
}

/// Workflows of the active workspace.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "A page of workflows", body = PageResponse<WorkflowResponse>),
))]
#[get("/api/workflows")]
pub async fn list_workflows(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let workflows = services.workflows.list(&caller.principal, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<WorkflowResponse>::from(workflows)))
}

/// Creates a workflow; a definition given here is validated and becomes version 1.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), request_body = CreateWorkflowRequest, responses(
    (status = 201, description = "The workflow", body = WorkflowResponse),
    (status = 409, description = "A plan limit is reached (`plan_limit`, with `limit`)", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not allowed (`workflows.write`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields; definition problems name the node", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workflows")]
pub async fn create_workflow(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<CreateWorkflowRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let workflow = services
        .workflows
        .create(
            &caller.principal,
            CreateWorkflow {
                name: body.name,
                description: body.description,
                definition: body.definition,
                error_workflow_id: body.error_workflow_id.map(WorkflowId::from_uuid),
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(WorkflowResponse::from(workflow)))
}

/// One workflow.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 200, description = "The workflow", body = WorkflowResponse),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/workflows/{id}")]
pub async fn get_workflow(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let workflow = services
        .workflows
        .get(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::Ok().json(WorkflowResponse::from(workflow)))
}

/// Renames or re-describes a workflow, or sets its error workflow.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), request_body = UpdateWorkflowRequest, params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 200, description = "The workflow", body = WorkflowResponse),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields (`error_workflow_id`: not another workflow of the workspace, or archived)", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/workflows/{id}")]
pub async fn update_workflow(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<UpdateWorkflowRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let workflow = services
        .workflows
        .update_with(
            &caller.principal,
            path_id(&id)?,
            WorkflowChanges {
                name: body.name,
                description: body.description,
                error_workflow_id: body
                    .error_workflow_id
                    .map(|target| target.map(WorkflowId::from_uuid)),
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(WorkflowResponse::from(workflow)))
}

/// Archives a workflow (deactivating it); it stays readable.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 204, description = "Archived"),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/workflows/{id}")]
pub async fn archive_workflow(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    services
        .workflows
        .archive(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every version of a workflow, oldest first.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 200, description = "The versions", body = Vec<VersionResponse>),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/workflows/{id}/versions")]
pub async fn list_versions(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let versions = services
        .workflows
        .versions(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::Ok().json(
        versions
            .into_iter()
            .map(VersionResponse::from)
            .collect::<Vec<_>>(),
    ))
}

/// Saves a new, immutable version (numbered 1, 2, 3…) after validating it.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), request_body = VersionRequest, params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 201, description = "The version", body = VersionResponse),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Definition problems, each naming the node and field", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workflows/{id}/versions")]
pub async fn create_version(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<VersionRequest>,
) -> Result<HttpResponse, ApiError> {
    let version = services
        .workflows
        .add_version(&caller.principal, path_id(&id)?, body.0.definition)
        .await?;
    Ok(HttpResponse::Created().json(VersionResponse::from(version)))
}

/// Makes a version the one active in an environment (default `production`).
#[utoipa::path(tag = "workflows", security(("bearer" = [])), request_body = ActivateRequest, params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 200, description = "The workflow", body = WorkflowResponse),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No such version or environment, or the version no longer validates", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "A plan limit is reached (`plan_limit`, with `limit`)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workflows/{id}/activate")]
pub async fn activate_workflow(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<ActivateRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let workflow = services
        .workflows
        .set_active(
            &caller.principal,
            path_id(&id)?,
            body.environment.as_deref(),
            Some(body.version),
        )
        .await?;
    Ok(HttpResponse::Ok().json(WorkflowResponse::from(workflow)))
}

/// Deactivates the workflow in an environment (default `production`); it stays
/// active in the others.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), request_body(content = DeactivateRequest, description = "Optional"), params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 200, description = "The workflow", body = WorkflowResponse),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No such environment", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workflows/{id}/deactivate")]
pub async fn deactivate_workflow(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: actix_web::web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: DeactivateRequest = crate::json::optional(&body)?;
    let workflow = services
        .workflows
        .set_active(
            &caller.principal,
            path_id(&id)?,
            body.environment.as_deref(),
            None,
        )
        .await?;
    Ok(HttpResponse::Ok().json(WorkflowResponse::from(workflow)))
}

/// Activates in `to` the version active in `from`; the workflow stays active in
/// `from`. Recorded as a `workflow.promoted` activity.
#[utoipa::path(tag = "workflows", security(("bearer" = [])), request_body = PromoteRequest, params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 200, description = "The workflow with its deployments", body = WorkflowResponse),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No such environment, the same one twice, or the workflow is not active in `from`", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "A plan limit is reached (`plan_limit`, with `limit`)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workflows/{id}/promote")]
pub async fn promote_workflow(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<PromoteRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let workflow = services
        .workflows
        .promote(&caller.principal, path_id(&id)?, &body.from, &body.to)
        .await?;
    Ok(HttpResponse::Ok().json(WorkflowResponse::from(workflow)))
}
