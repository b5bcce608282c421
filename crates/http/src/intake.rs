//! The public webhook intake, `/api/webhooks/in/{public_id}`: the Meta subscription
//! handshake (GET) and deliveries (POST). No bearer token: the URL and the signature
//! are the credentials.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use fluxolab_kernel::ExecutionId;
use fluxolab_kernel::standard_webhooks::ReceivedHeaders;
use fluxolab_webhooks::model::{RejectReason, ResponseMode, Verdict};
use fluxolab_webhooks::{Delivery, IntakeError, Received};
use fluxolab_workflows::responses::RunResponse;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::Services;
use crate::problem::{Problem, ProblemCode};
use crate::{ApiError, HttpMetrics};

/// How the intake bounds what it accepts and how long it waits.
#[derive(Clone, Copy, Debug)]
pub struct IntakeLimits {
    /// The largest body accepted (`WEBHOOK_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// How long a `respond_node` registration waits for its workflow's answer.
    pub respond_timeout: Duration,
}

/// Headers kept with an event (never authorisation or cookies).
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-hub-signature-256",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-forwarded-for",
    "x-request-id",
];

impl From<IntakeError> for ApiError {
    fn from(error: IntakeError) -> Self {
        let refused = |code| ApiError::Refused {
            code,
            detail: error.to_string(),
        };
        match error {
            IntakeError::NotFound => ApiError::NotFound("webhook"),
            IntakeError::Disabled => refused(ProblemCode::WebhookDisabled),
            IntakeError::HandshakeRefused => refused(ProblemCode::HandshakeRefused),
            IntakeError::Rejected(RejectReason::InvalidJson) => refused(ProblemCode::InvalidJson),
            IntakeError::Rejected(RejectReason::MissingSignature) => {
                refused(ProblemCode::MissingSignature)
            }
            IntakeError::Rejected(RejectReason::BadSignature) => refused(ProblemCode::BadSignature),
            IntakeError::Rejected(RejectReason::StaleTimestamp) => {
                refused(ProblemCode::StaleTimestamp)
            }
            IntakeError::RateLimited(retry_after_seconds) => ApiError::RateLimited {
                detail: error.to_string(),
                retry_after_seconds,
            },
            IntakeError::QuotaExceeded(retry_after_seconds) => ApiError::QuotaExceeded {
                detail: error.to_string(),
                retry_after_seconds,
            },
            // Whatever the kind: the delivery is not stored, so the sender must retry.
            IntakeError::Storage(source) => {
                tracing::error!(error = %source, cause = ?std::error::Error::source(&source), "webhook delivery could not be stored");
                ApiError::StorageUnavailable(source)
            }
        }
    }
}

/// The answer to an accepted (or duplicate) delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryResponse {
    pub event_id: Uuid,
    /// `accepted` or `duplicate`.
    pub verdict: String,
    pub execution_id: Option<Uuid>,
}

/// The Meta subscription handshake: answers `hub.challenge` as plain text when
/// `hub.mode=subscribe` and `hub.verify_token` matches.
#[utoipa::path(tag = "webhook intake", params(
    ("public_id" = String, Path, description = "The registration's public id"),
    ("hub.mode" = String, Query, description = "`subscribe`"),
    ("hub.verify_token" = String, Query, description = "The registration's verify token"),
    ("hub.challenge" = String, Query, description = "Echoed back on success"),
), responses(
    (status = 200, description = "The challenge", body = String, content_type = "text/plain"),
    (status = 403, description = "Wrong or missing token (`handshake_refused`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No webhook at this address", body = Problem, content_type = "application/problem+json"),
    (status = 410, description = "The webhook is disabled", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/webhooks/in/{public_id}")]
pub async fn handshake(
    services: Data<Services>,
    public_id: Path<String>,
    query: Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let param = |name: &str| query.get(name).map(String::as_str);
    let challenge = services
        .intake
        .handshake(
            &public_id,
            param("hub.mode"),
            param("hub.verify_token"),
            param("hub.challenge"),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(challenge))
}

async fn read_body(payload: &mut Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| ApiError::from_payload(error, limit))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn kept_headers(request: &HttpRequest) -> Value {
    let mut kept = Map::new();
    for name in KEPT_HEADERS {
        if let Some(value) = request.headers().get(*name).and_then(|v| v.to_str().ok()) {
            kept.insert((*name).to_owned(), Value::String(value.to_owned()));
        }
    }
    Value::Object(kept)
}

/// Receives a delivery: checks the signature over the raw bytes, stores the event and
/// (for a new delivery to a bound, active workflow) its execution in one transaction,
/// and answers without waiting for the run — unless the registration responds from a
/// node of its workflow that answers the sender.
#[utoipa::path(tag = "webhook intake", params(("public_id" = String, Path, description = "The registration's public id")),
    request_body(content = Object, description = "The raw delivery (JSON for `meta`)"),
    responses(
    (status = 200, description = "Stored (`accepted` or `duplicate`); for `respond_node` registrations, the workflow's answer", body = DeliveryResponse),
    (status = 400, description = "Not JSON on a `meta` registration (`invalid_json`); recorded as rejected", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Missing or wrong signature: X-Hub-Signature-256 (`meta`, `hmac_sha256`) or the Standard Webhooks headers (`standard`) (`missing_signature`, `bad_signature`, `stale_timestamp`); recorded as rejected", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No webhook at this address", body = Problem, content_type = "application/problem+json"),
    (status = 410, description = "The webhook is disabled", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over WEBHOOK_MAX_BODY_BYTES", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Over the workspace's webhook rate (`rate_limited`, not stored) or its execution quota (`quota_exceeded`, stored, not run); `Retry-After`", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "Could not be stored; nothing was kept, retry (`storage_unavailable`)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/webhooks/in/{public_id}")]
pub async fn deliver(
    request: HttpRequest,
    services: Data<Services>,
    metrics: Data<HttpMetrics>,
    public_id: Path<String>,
    mut payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let limits = services.intake_limits;
    let body = read_body(&mut payload, limits.max_body_bytes).await?;
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let delivery = Delivery {
        body,
        signature: header("x-hub-signature-256"),
        standard: ReceivedHeaders {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
        },
        headers: kept_headers(&request),
    };
    let received = match services.intake.receive(&public_id, delivery).await {
        Ok(received) => received,
        Err(error) => {
            match &error {
                IntakeError::Rejected(reason) => {
                    metrics.observe_webhook(Verdict::Rejected.code(), Some(reason.code()));
                }
                IntakeError::QuotaExceeded(_) => {
                    metrics.observe_webhook(Verdict::QuotaExceeded.code(), None);
                }
                IntakeError::RateLimited(_) => metrics.observe_webhook("rate_limited", None),
                _ => {}
            }
            return Err(error.into());
        }
    };
    metrics.observe_webhook(received.verdict.code(), None);
    match (received.response_mode, received.execution_id) {
        (ResponseMode::RespondNode, Some(execution)) if received.verdict == Verdict::Accepted => {
            respond_from_workflow(&services, &received, execution, limits.respond_timeout).await
        }
        _ => Ok(HttpResponse::Ok().json(DeliveryResponse {
            event_id: received.event_id.as_uuid(),
            verdict: received.verdict.code().to_owned(),
            execution_id: received.execution_id.map(|id| id.as_uuid()),
        })),
    }
}

/// Waits (bounded) for the run's answer to its sender and replies with its status,
/// headers and body.
async fn respond_from_workflow(
    services: &Services,
    received: &Received,
    execution: ExecutionId,
    timeout: Duration,
) -> Result<HttpResponse, ApiError> {
    let response = services
        .executions
        .await_response(received.workspace_id, execution, timeout)
        .await?;
    match response {
        RunResponse::Answered(output) => Ok(reply(&output)),
        RunResponse::EndedWithout(status) => Err(ApiError::Refused {
            code: ProblemCode::NoResponse,
            detail: format!(
                "execution {execution} ended `{status}` without reaching a node that answers the sender"
            ),
        }),
        RunResponse::TimedOut => Err(ApiError::Refused {
            code: ProblemCode::ResponseTimeout,
            detail: format!(
                "the workflow did not respond within {} s; execution {execution} goes on",
                timeout.as_secs()
            ),
        }),
    }
}

/// The HTTP answer an answering node's output describes.
fn reply(output: &Value) -> HttpResponse {
    let status = output["status"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    let mut has_content_type = false;
    for (name, value) in output["headers"].as_object().into_iter().flatten() {
        // Names or values that are not valid HTTP are left out.
        let parsed = value.as_str().and_then(|value| {
            Some((
                actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).ok()?,
                actix_web::http::header::HeaderValue::from_str(value).ok()?,
            ))
        });
        if let Some((name, value)) = parsed {
            has_content_type |= name == actix_web::http::header::CONTENT_TYPE;
            response.insert_header((name, value));
        }
    }
    match &output["body"] {
        Value::Null => response.finish(),
        Value::String(text) => {
            if !has_content_type {
                response.content_type("text/plain; charset=utf-8");
            }
            response.body(text.clone())
        }
        other => {
            if !has_content_type {
                response.content_type("application/json");
            }
            response.body(other.to_string())
        }
    }
}
