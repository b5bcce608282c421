//! `/api/mcp`: the Model Context Protocol over Streamable HTTP, for API keys.
//!
//! A thin transport on actix-web over the official Rust SDK's protocol model
//! (`rmcp::model`: the JSON-RPC messages, `initialize`, tools, resources, progress). Not
//! rmcp's own server: it is a tower service with an in-process session manager, and our
//! sessions must be shared by every API process (they live in Postgres, see
//! `fluxolab_workflows::mcp::McpSessions`), and our auth, limits and problem documents
//! are the rest of the API's.
//!
//! Refusals of the transport (400, 404) carry a JSON-RPC error, not a problem document
//! (`observe` leaves them as they are); a 401 or 405 is the API's usual problem.
//!
//! - `POST` takes one JSON-RPC message. `initialize` opens a session (the answer carries
//!   `Mcp-Session-Id`); every other message needs that header (400 without it, 404 once
//!   the session expired or was ended: the client initializes again). Notifications and
//!   responses are accepted with 202. Requests are answered as `application/json`, except
//!   a `tools/call` whose `_meta.progressToken` is set: it is answered as a
//!   `text/event-stream` of progress notifications followed by the response.
//! - `GET` answers 405: this server sends nothing unasked, so it offers no stream.
//! - `DELETE` ends the session named by `Mcp-Session-Id` (204; 404 when there is none).
//!
//! The API key (`Authorization: Bearer flx_…`) is checked on every request: none or a
//! bad one is a 401 with `WWW-Authenticate: Bearer`. Its scopes bound the methods
//! (`workflows.read` lists and reads, `workflows.run` calls); a missing scope is a
//! JSON-RPC error, not an HTTP one.

mod methods;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse, delete, get, post};
use fluxolab_kernel::Principal;
use fluxolab_workflows::WorkflowError;
use fluxolab_workflows::mcp::McpSessionId;
use fluxolab_workspace::api_keys::KEY_PREFIX;
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, ErrorCode, ErrorData, ProtocolVersion,
    ServerJsonRpcMessage,
};
use serde_json::Value;

use crate::ApiError;
use crate::extract::Services;
use crate::problem::Problem;

/// Where the MCP server answers.
pub const PATH: &str = "/api/mcp";

/// The header that carries the session id.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// The header a client names its protocol version with after `initialize`.
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// The protocol revisions this server speaks, newest first: those with an `initialize`
/// handshake and the Streamable HTTP transport.
pub const SUPPORTED_VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
];

/// How long the MCP server waits and how long its sessions live.
#[derive(Clone, Copy, Debug)]
pub struct McpLimits {
    /// How long a `tools/call` waits for its run's answer (`MCP_CALL_TIMEOUT_SECONDS`).
    pub call_timeout: Duration,
    /// How long a session lives without a request (`MCP_SESSION_IDLE_SECONDS`).
    pub session_idle: Duration,
    /// How often a waiting `tools/call` with a progress token reports progress.
    pub progress_interval: Duration,
}

impl Default for McpLimits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            session_idle: Duration::from_secs(3600),
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// The version to answer `initialize` with: the client's when this server speaks it,
/// else the newest this server speaks (the client then decides whether to go on).
pub fn negotiate(requested: &ProtocolVersion) -> ProtocolVersion {
    SUPPORTED_VERSIONS
        .iter()
        .find(|supported| *supported == requested)
        .unwrap_or(&SUPPORTED_VERSIONS[0])
        .clone()
}

/// The API key's principal; anything else is a 401 (with `WWW-Authenticate: Bearer`).
async fn authenticate(request: &HttpRequest, services: &Services) -> Result<Principal, ApiError> {
    let key = crate::extract::bearer(request)
        .filter(|token| token.starts_with(KEY_PREFIX))
        .ok_or(ApiError::unauthorized())?;
    let origin = crate::api_keys::origin(request);
    let principal = services
        .api_keys
        .authenticate(key, &origin)
        .await
        .map_err(|refusal| {
            if let Some(metrics) = request.app_data::<Data<crate::HttpMetrics>>() {
                metrics.observe_key_refusal(refusal.code());
            }
            ApiError::unauthorized()
        })?;
    crate::extract::record_caller(&principal);
    Ok(principal)
}

/// A JSON-RPC message as the HTTP answer.
fn message(status: StatusCode, message: &ServerJsonRpcMessage) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .json(message)
}

/// A JSON-RPC error answered with an HTTP error status (transport-level refusals).
fn refusal(status: StatusCode, code: ErrorCode, text: &str, id: Option<Value>) -> HttpResponse {
    let id = id.and_then(|id| serde_json::from_value(id).ok());
    message(
        status,
        &ServerJsonRpcMessage::error(ErrorData::new(code, text.to_owned(), None), id),
    )
}

/// The session id a request names, when it names one that parses.
fn session_id(request: &HttpRequest) -> Option<Result<McpSessionId, ()>> {
    request.headers().get(SESSION_HEADER).map(|value| {
        value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<McpSessionId>().ok())
            .ok_or(())
    })
}

/// The session a request names (`None`: a value that names no session, which is then
/// not found), or the 400 that answers a request naming none.
fn named_session(
    request: &HttpRequest,
    missing: &str,
    id: Option<Value>,
) -> Result<Option<McpSessionId>, Box<HttpResponse>> {
    match session_id(request) {
        None => Err(Box::new(refusal(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            missing,
            id,
        ))),
        Some(named) => Ok(named.ok()),
    }
}

/// The `MCP-Protocol-Version` a request names, if any (an unreadable value is named as
/// empty, which no version matches).
fn version_header(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(VERSION_HEADER)
        .map(|value| value.to_str().map(str::trim).unwrap_or_default())
}

/// Whether the request names a protocol version this server does not speak.
fn unsupported_version_header(request: &HttpRequest) -> bool {
    version_header(request).is_some_and(|named| {
        !SUPPORTED_VERSIONS
            .iter()
            .any(|version| version.as_str() == named)
    })
}

/// Where a storage failure of the session lookup goes: the API's 503/500.
fn session_error(error: WorkflowError) -> ApiError {
    error.into()
}

/// Takes one JSON-RPC message from an MCP client (see the module documentation).
#[utoipa::path(tag = "mcp", security(("bearer" = [])),
    params(
        ("Mcp-Session-Id" = Option<String>, Header, description = "The session `initialize` opened; required on every message but `initialize`"),
        ("MCP-Protocol-Version" = Option<String>, Header, description = "The negotiated protocol version (`2025-11-25`, `2025-06-18` or `2025-03-26`)"),
    ),
    request_body(content = JsonRpcMessage, description = "One JSON-RPC 2.0 request, notification or response (no batches)"),
    responses(
        (status = 200, description = "The JSON-RPC response (`application/json`), or for a `tools/call` with a `progressToken` a `text/event-stream` of `notifications/progress` messages ending with the response. `initialize` sets `Mcp-Session-Id`.", body = JsonRpcMessage, headers(("Mcp-Session-Id" = String, description = "The new session (answers to `initialize`)"))),
        (status = 202, description = "A notification or response, accepted"),
        (status = 400, description = "Not JSON-RPC, a batch, no `Mcp-Session-Id`, or an `MCP-Protocol-Version` that is unsupported or not the session's (a JSON-RPC error)", body = JsonRpcMessage),
        (status = 401, description = "No valid API key (`WWW-Authenticate: Bearer`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The session expired or was ended: initialize again (a JSON-RPC error)", body = JsonRpcMessage),
    )
)]
#[post("/api/mcp")]
pub async fn post_mcp(
    request: HttpRequest,
    services: Data<Services>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(&request, &services).await?;
    let raw: Value = match serde_json::from_slice(&body) {
        Ok(raw) => raw,
        Err(_) => {
            return Ok(refusal(
                StatusCode::BAD_REQUEST,
                ErrorCode::PARSE_ERROR,
                "the body is not JSON",
                None,
            ));
        }
    };
    if raw.is_array() {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            "batches are not supported: send one JSON-RPC message per request",
            None,
        ));
    }
    let id = raw.get("id").cloned();
    let parsed: ClientJsonRpcMessage = match serde_json::from_value(raw.clone()) {
        Ok(parsed) => parsed,
        Err(error) => {
            return Ok(refusal(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                &format!("not a JSON-RPC 2.0 message of MCP: {error}"),
                id,
            ));
        }
    };
    let limits = services.mcp_limits;
    if let ClientJsonRpcMessage::Request(rpc) = &parsed
        && let ClientRequest::InitializeRequest(initialize) = &rpc.request
    {
        if let Err(error) = services.mcp.admit(&principal) {
            return Ok(message(
                StatusCode::OK,
                &ServerJsonRpcMessage::error(methods::error_of(error), Some(rpc.id.clone())),
            ));
        }
        let version = negotiate(&initialize.params.protocol_version);
        let session = services
            .mcp
            .open_session(&principal, version.as_str(), limits.session_idle)
            .await
            .map_err(session_error)?;
        let answer =
            ServerJsonRpcMessage::response(methods::initialize_result(version), rpc.id.clone());
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((SESSION_HEADER, session.to_string()))
            .json(answer));
    }
    let session = match named_session(
        &request,
        "the Mcp-Session-Id header is required: send `initialize` first",
        id.clone(),
    ) {
        Ok(session) => session,
        Err(refused) => return Ok(*refused),
    };
    if unsupported_version_header(&request) {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            "unsupported MCP-Protocol-Version",
            id,
        ));
    }
    let live = match session {
        Some(session) => services
            .mcp
            .session(&principal, session, limits.session_idle)
            .await
            .map_err(session_error)?,
        None => None,
    };
    let Some(negotiated) = live else {
        return Ok(refusal(
            StatusCode::NOT_FOUND,
            ErrorCode(-32001),
            "session not found: it expired or was ended; initialize again",
            id,
        ));
    };
    if let Some(named) = version_header(&request)
        && named != negotiated
    {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            &format!(
                "MCP-Protocol-Version `{named}` is not the version this session negotiated (`{negotiated}`)"
            ),
            id,
        ));
    }
    match parsed {
        ClientJsonRpcMessage::Request(rpc) => {
            Ok(methods::answer(services.into_inner(), principal, rpc, &raw).await)
        }
        // Notifications (`initialized`, `cancelled`, …) and answers to requests this
        // server never sends.
        _ => Ok(HttpResponse::Accepted().finish()),
    }
}

/// Offers no server-initiated stream: this server sends nothing unasked.
#[utoipa::path(tag = "mcp", security(("bearer" = [])), responses(
    (status = 401, description = "No valid API key (`WWW-Authenticate: Bearer`)", body = Problem, content_type = "application/problem+json"),
    (status = 405, description = "No server-initiated SSE stream is offered (`Allow: POST, DELETE`)", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/mcp")]
pub async fn get_mcp(
    request: HttpRequest,
    services: Data<Services>,
) -> Result<HttpResponse, ApiError> {
    authenticate(&request, &services).await?;
    Err(ApiError::MethodNotAllowed {
        allow: vec!["POST", "DELETE"],
    })
}

/// Ends the session named by `Mcp-Session-Id`.
#[utoipa::path(tag = "mcp", security(("bearer" = [])),
    params(("Mcp-Session-Id" = String, Header, description = "The session to end")),
    responses(
        (status = 204, description = "Ended"),
        (status = 400, description = "No `Mcp-Session-Id` (a JSON-RPC error)", body = JsonRpcMessage),
        (status = 401, description = "No valid API key (`WWW-Authenticate: Bearer`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of this key (expired, ended or never opened; a JSON-RPC error)", body = JsonRpcMessage),
    )
)]
#[delete("/api/mcp")]
pub async fn delete_mcp(
    request: HttpRequest,
    services: Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(&request, &services).await?;
    let session = match named_session(&request, "the Mcp-Session-Id header is required", None) {
        Ok(session) => session,
        Err(refused) => return Ok(*refused),
    };
    let ended = match session {
        Some(session) => services
            .mcp
            .close_session(&principal, session)
            .await
            .map_err(session_error)?,
        None => false,
    };
    if ended {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Ok(refusal(
            StatusCode::NOT_FOUND,
            ErrorCode(-32001),
            "session not found",
            None,
        ))
    }
}

/// A JSON-RPC 2.0 message (request, notification, response or error) of the Model
/// Context Protocol; see <https://modelcontextprotocol.io/specification/2025-11-25>.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct JsonRpcMessage {
    /// Always `2.0`.
    #[schema(pattern = "^2\\.0$")]
    pub jsonrpc: String,
    /// The request's id (a string or a number); absent on notifications.
    #[schema(value_type = Option<Object>)]
    pub id: Option<Value>,
    /// The method of a request or notification (`initialize`, `tools/list`,
    /// `tools/call`, `resources/list`, `resources/read`, `ping`,
    /// `notifications/initialized`, `notifications/progress`…).
    pub method: Option<String>,
    /// The method's params.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    /// A response's result.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// An error response's error: `code`, `message`, `data`.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}
