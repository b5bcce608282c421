//! The MCP methods this server answers: `initialize`, `ping`, `tools/list`,
//! `tools/call`, `resources/list`, `resources/templates/list` and `resources/read`.
//! Refusals of the use cases become JSON-RPC errors (a missing scope, an unknown tool or
//! resource) or, for a call the tool could not make, a tool result with `isError` that
//! names the reason (invalid arguments by field, the quota, a failed run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use fluxolab_kernel::{ExecutionId, Failure, PageRequest, Permission, Principal, WorkflowId};
use fluxolab_workflows::WorkflowError;
use fluxolab_workflows::execution::{Execution, ExecutionFilter};
use fluxolab_workflows::mcp_service::{CallOutcome, StartedCall};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ContentBlock, ErrorCode, ErrorData,
    Implementation, InitializeResult, JsonObject, JsonRpcRequest, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, ProgressNotificationParam, ProgressToken,
    ProtocolVersion, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ServerCapabilities, ServerJsonRpcMessage, ServerNotification, ServerResult, Tool,
};
use serde_json::{Value, json};

use crate::extract::Services;

/// The JSON-RPC error code of a missing scope (the server's own range).
const FORBIDDEN: ErrorCode = ErrorCode(-32003);
/// How many workflows and executions `resources/list` names.
const LISTED_RESOURCES: u32 = 50;
const WORKFLOW_URI: &str = "fluxolab://workflows/";
const EXECUTION_URI: &str = "fluxolab://executions/";

/// What this server tells a client in `initialize`.
pub(super) fn initialize_result(version: ProtocolVersion) -> ServerResult {
    // Tools and resources, neither with change notifications nor subscriptions (the
    // builder needs rmcp's `server` feature, which brings its handler and transports).
    let capabilities: ServerCapabilities =
        serde_json::from_value(json!({"tools": {}, "resources": {}})).unwrap_or_default();
    ServerResult::InitializeResult(
        InitializeResult::new(capabilities)
            .with_protocol_version(version)
            .with_server_info(Implementation::new("fluxolab", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Each tool runs a FluxoLab workflow of this API key's environment. \
                 Workflows and executions are resources: fluxolab://workflows/{id}, \
                 fluxolab://executions/{id}.",
            ),
    )
}

/// A use case's refusal as a JSON-RPC error; a storage failure stays opaque.
pub(super) fn error_of(error: WorkflowError) -> ErrorData {
    match Failure::from(error) {
        Failure::Forbidden(permission) => ErrorData::new(
            FORBIDDEN,
            format!("this API key lacks the `{}` scope", permission.code()),
            Some(json!({"code": "forbidden", "permission": permission.code()})),
        ),
        Failure::NotFound(what) => ErrorData::invalid_params(format!("{what} not found"), None),
        Failure::Invalid(errors) => {
            ErrorData::invalid_params(describe(&errors), serde_json::to_value(&errors).ok())
        }
        failure @ (Failure::Unavailable(_) | Failure::Internal(_)) => {
            tracing::error!(error = %failure, cause = ?std::error::Error::source(&failure), "MCP request failed");
            ErrorData::internal_error("internal error", None)
        }
        other => ErrorData::new(ErrorCode::INVALID_REQUEST, other.to_string(), None),
    }
}

fn describe(errors: &fluxolab_kernel::ValidationErrors) -> String {
    errors
        .errors()
        .iter()
        .map(|error| format!("{}: {}", error.field, error.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Answers one request, as JSON or (a `tools/call` with a progress token) as an event
/// stream.
pub(super) async fn answer(
    services: Arc<Services>,
    principal: Principal,
    rpc: JsonRpcRequest<ClientRequest>,
    raw: &Value,
) -> HttpResponse {
    let id = rpc.id;
    let result = match rpc.request {
        ClientRequest::PingRequest(_) => Ok(ServerResult::empty(())),
        ClientRequest::ListToolsRequest(_) => list_tools(&services, &principal).await,
        ClientRequest::CallToolRequest(call) => {
            let progress = raw["params"]["_meta"]["progressToken"].clone();
            let progress = (!progress.is_null())
                .then(|| serde_json::from_value::<ProgressToken>(progress).ok())
                .flatten();
            return call_tool(services, principal, id, call.params, progress).await;
        }
        ClientRequest::ListResourcesRequest(_) => list_resources(&services, &principal).await,
        ClientRequest::ListResourceTemplatesRequest(_) => Ok(templates()),
        ClientRequest::ReadResourceRequest(read) => {
            read_resource(&services, &principal, &read.params.uri).await
        }
        other => Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("method `{}` is not offered by this server", other.method()),
            None,
        )),
    };
    let message = match result {
        Ok(mut result) => {
            // Every version this server speaks predates the `resultType` field.
            result.strip_result_type_for_legacy_peer();
            ServerJsonRpcMessage::response(result, id)
        }
        Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
    };
    HttpResponse::Ok()
        .content_type("application/json")
        .json(message)
}

async fn list_tools(services: &Services, principal: &Principal) -> Result<ServerResult, ErrorData> {
    let tools = services.mcp.tools(principal).await.map_err(error_of)?;
    let tools = tools
        .into_iter()
        .map(|tool| {
            let schema: JsonObject = tool.input_schema.as_object().cloned().unwrap_or_default();
            Tool::new(tool.name, tool.description, Arc::new(schema))
        })
        .collect();
    Ok(ServerResult::ListToolsResult(
        ListToolsResult::with_all_items(tools),
    ))
}

/// A tool result: text for people (and models), structured content for programs.
fn tool_result(is_error: bool, text: String, structured: Value) -> CallToolResult {
    let mut result = if is_error {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    // Before 2026-07-28 structured content is an object.
    result.structured_content = Some(match structured {
        Value::Object(_) => structured,
        other => json!({"result": other}),
    });
    result.result_type = None;
    result
}

/// What a refused call tells the model: invalid arguments by field, the quota.
fn refused_call(error: WorkflowError) -> Result<CallToolResult, ErrorData> {
    Ok(match Failure::from(error) {
        Failure::Invalid(errors) => tool_result(
            true,
            format!("invalid arguments: {}", describe(&errors)),
            json!({"code": "invalid_arguments", "errors": errors}),
        ),
        Failure::QuotaExceeded {
            retry_after_seconds,
        } => tool_result(
            true,
            format!(
                "the workspace's executions for this period are used up (quota_exceeded); retry in {retry_after_seconds} s or upgrade the plan"
            ),
            json!({"code": "quota_exceeded", "retry_after_seconds": retry_after_seconds}),
        ),
        Failure::RateLimited {
            retry_after_seconds,
        } => tool_result(
            true,
            format!("over the workspace's rate (rate_limited); retry in {retry_after_seconds} s"),
            json!({"code": "rate_limited", "retry_after_seconds": retry_after_seconds}),
        ),
        other => return Err(error_of_failure(other)),
    })
}

fn error_of_failure(failure: Failure) -> ErrorData {
    match failure {
        Failure::NotFound("tool") => ErrorData::invalid_params("unknown tool", None),
        Failure::NotFound(what) => ErrorData::invalid_params(format!("{what} not found"), None),
        Failure::Forbidden(permission) => ErrorData::new(
            FORBIDDEN,
            format!("this API key lacks the `{}` scope", permission.code()),
            Some(json!({"code": "forbidden", "permission": permission.code()})),
        ),
        failure @ (Failure::Unavailable(_) | Failure::Internal(_)) => {
            tracing::error!(error = %failure, "MCP tool call failed");
            ErrorData::internal_error("internal error", None)
        }
        other => ErrorData::new(ErrorCode::INVALID_REQUEST, other.to_string(), None),
    }
}

/// The result of a run the caller waited for.
fn outcome_result(
    execution: ExecutionId,
    outcome: CallOutcome,
    waited: Duration,
) -> CallToolResult {
    match outcome {
        CallOutcome::Answered(output) => {
            let failed = output["status"]
                .as_u64()
                .is_some_and(|status| status >= 400);
            let body = output.get("body").cloned().unwrap_or(Value::Null);
            tool_result(failed, text_of(&body), body)
        }
        CallOutcome::Finished(output) => tool_result(false, text_of(&output), output),
        CallOutcome::Failed { status, error } => tool_result(
            true,
            format!(
                "execution {execution} ended `{status}`: {}",
                error.as_deref().unwrap_or("no error recorded")
            ),
            json!({"code": "run_failed", "execution_id": execution, "status": status.code(), "error": error}),
        ),
        CallOutcome::StillRunning => tool_result(
            false,
            format!(
                "the run did not finish within {} s; it goes on as execution {execution} (read {EXECUTION_URI}{execution} for its result)",
                waited.as_secs()
            ),
            json!({"execution_id": execution, "status": "running"}),
        ),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Starts the call and waits for it: one JSON answer, or with a progress token an event
/// stream that reports progress every `progress_interval` until the answer.
async fn call_tool(
    services: Arc<Services>,
    principal: Principal,
    id: rmcp::model::RequestId,
    params: CallToolRequestParams,
    progress: Option<ProgressToken>,
) -> HttpResponse {
    let arguments = Value::Object(params.arguments.unwrap_or_default());
    let started = services.mcp.call(&principal, &params.name, arguments).await;
    let limits = services.mcp_limits;
    let mut call = match started {
        Ok(call) => call,
        Err(error) => {
            let message = match refused_call(error) {
                Ok(result) => {
                    ServerJsonRpcMessage::response(ServerResult::CallToolResult(result), id)
                }
                Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
            };
            return HttpResponse::Ok()
                .content_type("application/json")
                .json(message);
        }
    };
    let Some(token) = progress else {
        let message = finish(&services, &principal, &mut call, limits.call_timeout, id).await;
        return HttpResponse::Ok()
            .content_type("application/json")
            .json(message);
    };
    let state = Some(Waiting {
        services,
        principal,
        call,
        id,
        token,
        began: Instant::now(),
    });
    let events = futures_util::stream::unfold(state, |state| async move {
        let mut waiting = state?;
        let limits = waiting.services.mcp_limits;
        let left = limits.call_timeout.saturating_sub(waiting.began.elapsed());
        let slice = left.min(limits.progress_interval);
        let outcome = waiting
            .services
            .mcp
            .wait(&waiting.principal, &mut waiting.call, slice)
            .await;
        let elapsed = waiting.began.elapsed();
        match outcome {
            Ok(CallOutcome::StillRunning) if elapsed < limits.call_timeout => {
                let note = ServerJsonRpcMessage::notification(
                    ServerNotification::ProgressNotification(rmcp::model::Notification::new(
                        ProgressNotificationParam::new(
                            waiting.token.clone(),
                            elapsed.as_secs_f64().floor(),
                        )
                        .with_total(limits.call_timeout.as_secs_f64())
                        .with_message(format!("execution {} is running", waiting.call.execution)),
                    )),
                );
                Some((event(&note), Some(waiting)))
            }
            outcome => {
                let message = respond(waiting.call.execution, outcome, elapsed, waiting.id.clone());
                Some((event(&message), None))
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(events)
}

/// A call with a progress token, between waits.
struct Waiting {
    services: Arc<Services>,
    principal: Principal,
    call: StartedCall,
    id: rmcp::model::RequestId,
    token: ProgressToken,
    began: Instant,
}

/// One server-sent event carrying `message`.
fn event(message: &ServerJsonRpcMessage) -> Result<Bytes, actix_web::Error> {
    let data = serde_json::to_string(message).unwrap_or_default();
    Ok(Bytes::from(format!("event: message\ndata: {data}\n\n")))
}

async fn finish(
    services: &Services,
    principal: &Principal,
    call: &mut StartedCall,
    timeout: Duration,
    id: rmcp::model::RequestId,
) -> ServerJsonRpcMessage {
    let outcome = services.mcp.wait(principal, call, timeout).await;
    respond(call.execution, outcome, timeout, id)
}

fn respond(
    execution: ExecutionId,
    outcome: Result<CallOutcome, WorkflowError>,
    waited: Duration,
    id: rmcp::model::RequestId,
) -> ServerJsonRpcMessage {
    match outcome {
        Ok(outcome) => ServerJsonRpcMessage::response(
            ServerResult::CallToolResult(outcome_result(execution, outcome, waited)),
            id,
        ),
        Err(error) => ServerJsonRpcMessage::error(error_of(error), Some(id)),
    }
}

async fn list_resources(
    services: &Services,
    principal: &Principal,
) -> Result<ServerResult, ErrorData> {
    let workflows = services
        .workflows
        .list(principal, PageRequest::first(LISTED_RESOURCES))
        .await
        .map_err(error_of)?;
    // A key that may not read executions lists workflows only.
    let executions = if principal.has(Permission::ExecutionsRead) {
        services
            .executions
            .list(
                principal,
                &ExecutionFilter::default(),
                PageRequest::first(LISTED_RESOURCES),
            )
            .await
            .map_err(error_of)?
            .items
    } else {
        Vec::new()
    };
    let resources = workflows
        .items
        .into_iter()
        .filter(|workflow| workflow.archived_at.is_none())
        .map(|workflow| {
            Resource::new(format!("{WORKFLOW_URI}{}", workflow.id), workflow.name)
                .with_description("A workflow and the definition it runs here")
                .with_mime_type("application/json")
        })
        .chain(executions.into_iter().map(|execution| {
            Resource::new(
                format!("{EXECUTION_URI}{}", execution.id),
                format!("execution {} ({})", execution.id, execution.status),
            )
            .with_mime_type("application/json")
        }))
        .collect();
    Ok(ServerResult::ListResourcesResult(
        ListResourcesResult::with_all_items(resources),
    ))
}

fn templates() -> ServerResult {
    ServerResult::ListResourceTemplatesResult(ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(format!("{WORKFLOW_URI}{{id}}"), "workflow")
            .with_mime_type("application/json"),
        ResourceTemplate::new(format!("{EXECUTION_URI}{{id}}"), "execution")
            .with_mime_type("application/json"),
    ]))
}

async fn read_resource(
    services: &Services,
    principal: &Principal,
    uri: &str,
) -> Result<ServerResult, ErrorData> {
    let not_found = || ErrorData::resource_not_found(format!("no resource `{uri}`"), None);
    let body = if let Some(id) = uri.strip_prefix(WORKFLOW_URI) {
        let id: WorkflowId = id.parse().map_err(|_| not_found())?;
        let (workflow, version) = services
            .mcp
            .workflow(principal, id)
            .await
            .map_err(|error| resource_error(error, not_found()))?;
        json!({
            "id": workflow.id,
            "name": workflow.name,
            "description": workflow.description,
            "deployments": workflow.deployments.iter().map(|deployment| json!({
                "environment": deployment.environment.name,
                "version": deployment.version,
            })).collect::<Vec<_>>(),
            "version": version.as_ref().map(|version| version.version),
            "definition": version.map(|version| version.definition),
        })
    } else if let Some(id) = uri.strip_prefix(EXECUTION_URI) {
        let id: ExecutionId = id.parse().map_err(|_| not_found())?;
        let execution = services
            .executions
            .get(principal, id)
            .await
            .map_err(|error| resource_error(error, not_found()))?;
        execution_json(&execution)
    } else {
        return Err(not_found());
    };
    let text = serde_json::to_string_pretty(&body).unwrap_or_default();
    Ok(ServerResult::ReadResourceResult(ReadResourceResult::new(
        vec![ResourceContents::text(text, uri).with_mime_type("application/json")],
    )))
}

/// Not found stays "resource not found"; a missing scope or a failure as usual.
fn resource_error(error: WorkflowError, not_found: ErrorData) -> ErrorData {
    match error {
        WorkflowError::NotFound(_) => not_found,
        other => error_of(other),
    }
}

fn execution_json(execution: &Execution) -> Value {
    json!({
        "id": execution.id,
        "workflow_id": execution.workflow_id,
        "version": execution.version,
        "environment": execution.environment.name,
        "status": execution.status.code(),
        "trigger_kind": execution.trigger_kind,
        "input": execution.input,
        "output": execution.output,
        "error": execution.error,
        "created_at": execution.created_at.unix_timestamp(),
        "steps": execution.steps.iter().map(|step| json!({
            "node_id": step.node_id,
            "node_type": step.node_type,
            "output": step.output,
            "error": step.error,
        })).collect::<Vec<_>>(),
    })
}
