//! Running workflows: `/api/workflows/{id}/test` (inline) and `/run` (queued), and
//! `/api/executions*`.

use std::time::Duration;

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, get, post};
use fluxolab_kernel::{Conflict, ConflictCode, WorkflowId};
use fluxolab_workflows::engine::StepRecord;
use fluxolab_workflows::execution::{Execution, ExecutionFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::path_id::path_id;
use crate::problem::Problem;
use crate::workspaces::{PageResponse, page_request, parse_since};

/// How long `/test` waits for an inline run.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One node run of an execution.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepResponse {
    pub node_id: String,
    pub node_type: String,
    #[schema(value_type = Object)]
    pub input: Value,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub error: Option<String>,
    /// The output the run continued on.
    pub route: Option<String>,
    /// The idempotency key an effectful step (`http.request`, `email.send`,
    /// `webhook.respond`) was sent with: the same on every attempt of that step.
    pub idempotency_key: Option<String>,
    /// What a `code.javascript` step wrote to `console` (at most 100 lines and 16 KiB,
    /// secret values redacted); empty for other steps.
    pub logs: Vec<String>,
    pub duration_ms: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

impl From<StepRecord> for StepResponse {
    fn from(step: StepRecord) -> Self {
        Self {
            duration_ms: i64::try_from((step.finished_at - step.started_at).whole_milliseconds())
                .unwrap_or(i64::MAX),
            node_id: step.node_id,
            node_type: step.node_type,
            input: step.input,
            output: step.output,
            error: step.error,
            route: step.route,
            idempotency_key: step.effect_key,
            logs: step.logs,
            started_at: step.started_at,
        }
    }
}

/// An execution.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecutionResponse {
    pub id: Uuid,
    pub workflow_id: Uuid,
    pub version: i32,
    pub environment_id: Uuid,
    /// The environment's name (`production`…).
    pub environment: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// `test`, `run`, `retry`, `webhook` (a delivery or a replay), `schedule` (a
    /// `trigger.schedule` slot), `sub_workflow` (a `flow.run_workflow` step of
    /// `parent_execution_id`) or `error_workflow` (the error workflow of a run that failed
    /// for good).
    pub trigger_kind: String,
    #[schema(value_type = Object)]
    pub input: Value,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub error: Option<String>,
    pub attempt: i32,
    /// Attempts before the run fails for good (the workspace's
    /// `execution_defaults.max_attempts` when it was queued).
    pub max_attempts: i32,
    pub retry_of: Option<Uuid>,
    /// The run whose `flow.run_workflow` step started this one.
    pub parent_execution_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The steps (only when one execution is read).
    pub steps: Vec<StepResponse>,
}

impl From<Execution> for ExecutionResponse {
    fn from(execution: Execution) -> Self {
        Self {
            id: execution.id.as_uuid(),
            workflow_id: execution.workflow_id.as_uuid(),
            version: execution.version,
            environment_id: execution.environment.id.as_uuid(),
            environment: execution.environment.name,
            status: execution.status.code().to_owned(),
            trigger_kind: execution.trigger_kind,
            input: execution.input,
            output: execution.output,
            error: execution.error,
            attempt: execution.attempt,
            max_attempts: execution.max_attempts,
            retry_of: execution.retry_of.map(|id| id.as_uuid()),
            parent_execution_id: execution.parent_execution_id.map(|id| id.as_uuid()),
            created_at: execution.created_at,
            started_at: execution.started_at,
            finished_at: execution.finished_at,
            steps: execution.steps.into_iter().map(Into::into).collect(),
        }
    }
}

/// `POST /api/workflows/{id}/test`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRunRequest {
    /// The trigger's body (`trigger.body` in templates).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Default: the latest version.
    pub version: Option<i32>,
    /// The environment (name or id) whose variables the run sees; default
    /// `production`.
    pub environment: Option<String>,
}

/// `POST /api/workflows/{id}/run`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Value,
    /// The environment (name or id) whose active version runs; default `production`.
    pub environment: Option<String>,
}

/// A queued execution.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueuedResponse {
    pub execution_id: Uuid,
}

/// `GET /api/executions` filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ExecutionQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^([A-Za-z0-9_-]{32})?$")]
    pub cursor: Option<String>,
    pub workflow_id: Option<Uuid>,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    #[param(pattern = "^(queued|running|succeeded|failed|cancelled)$")]
    pub status: Option<String>,
    /// RFC 3339; only executions created at or after it.
    #[param(format = DateTime)]
    pub since: Option<String>,
}

/// Runs a version inline with a payload and returns the execution with its steps.
#[utoipa::path(tag = "executions", security(("bearer" = [])), request_body = TestRunRequest, params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 200, description = "The finished execution with its steps", body = ExecutionResponse),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No such version or environment", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workflows/{id}/test")]
pub async fn test_workflow(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<TestRunRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let run = services.executions.test(
        &caller.principal,
        path_id(&id)?,
        body.version,
        body.environment.as_deref(),
        body.payload,
    );
    let execution = actix_web::rt::time::timeout(TEST_TIMEOUT, run)
        .await
        .map_err(|_| {
            ApiError::Conflict(Conflict::new(
                ConflictCode::TestTimeout,
                format!(
                    "the test run did not finish within {} seconds",
                    TEST_TIMEOUT.as_secs()
                ),
            ))
        })??;
    Ok(HttpResponse::Ok().json(ExecutionResponse::from(execution)))
}

/// Queues a run of the version active in an environment (default `production`).
#[utoipa::path(tag = "executions", security(("bearer" = [])), request_body = RunRequest, params(("id" = Uuid, Path, description = "Workflow id")), responses(
    (status = 202, description = "Queued", body = QueuedResponse),
    (status = 429, description = "The period's execution quota is used up (`quota_exceeded`; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such workflow in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No such environment, or the workflow is not active in it", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workflows/{id}/run")]
pub async fn run_workflow(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<RunRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let execution = services
        .executions
        .enqueue(
            &caller.principal,
            path_id(&id)?,
            body.environment.as_deref(),
            body.payload,
        )
        .await?;
    Ok(HttpResponse::Accepted().json(QueuedResponse {
        execution_id: execution.as_uuid(),
    }))
}

/// Executions of the active workspace, newest first.
#[utoipa::path(tag = "executions", security(("bearer" = [])), params(ExecutionQuery), responses(
    (status = 200, description = "A page of executions (without steps)", body = PageResponse<ExecutionResponse>),
    (status = 422, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/executions")]
pub async fn list_executions(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<ExecutionQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let status = query
        .status
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|message: String| ApiError::invalid("status", message))?;
    let since = parse_since(query.since.as_deref())?;
    let filter = ExecutionFilter {
        workflow_id: query.workflow_id.map(WorkflowId::from_uuid),
        status,
        since,
    };
    let executions = services
        .executions
        .list(&caller.principal, &filter, page)
        .await?;
    Ok(HttpResponse::Ok().json(PageResponse::<ExecutionResponse>::from(executions)))
}

/// One execution with its steps.
#[utoipa::path(tag = "executions", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Execution id")), responses(
    (status = 200, description = "The execution", body = ExecutionResponse),
    (status = 404, description = "No such execution in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/executions/{id}")]
pub async fn get_execution(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let execution = services
        .executions
        .get(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::Ok().json(ExecutionResponse::from(execution)))
}

/// Queues a new execution with the same version and input, linked to this one.
#[utoipa::path(tag = "executions", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Execution id")), responses(
    (status = 202, description = "Queued", body = QueuedResponse),
    (status = 429, description = "The period's execution quota is used up (`quota_exceeded`; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such execution in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/executions/{id}/retry")]
pub async fn retry_execution(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let execution = services
        .executions
        .retry(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::Accepted().json(QueuedResponse {
        execution_id: execution.as_uuid(),
    }))
}

/// Cancels a queued execution (a running one is asked to stop).
#[utoipa::path(tag = "executions", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Execution id")), responses(
    (status = 200, description = "The execution", body = ExecutionResponse),
    (status = 404, description = "No such execution in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/executions/{id}/cancel")]
pub async fn cancel_execution(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let execution = services
        .executions
        .cancel(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::Ok().json(ExecutionResponse::from(execution)))
}
