//! `/api/settings/log-destinations*`: where a workspace streams its activity log,
//! API-key audit, finished runs and webhook verdicts (HTTP batches signed with Standard
//! Webhooks, or syslog). Secret header values and signing secrets are never returned,
//! except a signing secret once, when it is made.

use actix_web::web::{Bytes, Data, Path, Query};
use actix_web::{HttpResponse, delete, get, patch, post};
use fluxolab_kernel::ExposeSecret;
use fluxolab_workspace::log_destinations::{
    DeliveryAttempt, DestinationPatch, LogDestination, NewDestination, TestReport,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::path_id::path_id;
use crate::problem::Problem;
use crate::workspaces::{PageQuery, PageResponse, page_request};

/// A log destination.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogDestinationResponse {
    pub id: Uuid,
    pub name: String,
    /// `http` or `syslog`.
    pub kind: String,
    /// Among `activities`, `api_key_audit`, `executions`, `webhook_events`.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// `http`: `{url, headers: [{name, value, secret}]}` (a secret header's `value` is
    /// `null`); `syslog`: `{host, port, transport, app_name}`.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// `active`, or `failing` once deliveries have failed for 24 hours.
    pub status: String,
    /// When the current run of failed deliveries began.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_delivered_at: Option<OffsetDateTime>,
    /// Whether batches are signed (every `http` destination).
    pub has_signing_secret: bool,
    /// Until when the secret a rotation replaced still signs beside the new one.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    /// Only in the answer to a create or a rotation: the `whsec_…` secret, shown this
    /// once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<LogDestination> for LogDestinationResponse {
    fn from(destination: LogDestination) -> Self {
        Self {
            id: destination.id.as_uuid(),
            name: destination.name,
            kind: destination.config.kind().to_owned(),
            event_types: destination
                .event_types
                .iter()
                .map(|kind| kind.code().to_owned())
                .collect(),
            enabled: destination.enabled,
            config: destination.config.to_json(),
            status: destination.status.code().to_owned(),
            failing_since: destination.failing_since,
            last_delivered_at: destination.last_delivered_at,
            has_signing_secret: destination.signing_secret.is_some(),
            previous_secret_expires_at: destination.previous_secret.map(|(_, until)| until),
            signing_secret: None,
            created_at: destination.created_at,
            updated_at: destination.updated_at,
        }
    }
}

/// `POST /api/settings/log-destinations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLogDestinationRequest {
    /// Unique in the workspace.
    pub name: String,
    /// `http` or `syslog`.
    pub kind: String,
    /// At least one of `activities`, `api_key_audit`, `executions`, `webhook_events`.
    pub event_types: Vec<String>,
    /// Default `true`.
    pub enabled: Option<bool>,
    /// `http`: `{url, headers?: [{name, value, secret?}]}` (a secret header's value is
    /// sealed in the vault); `syslog`: `{host, port, transport? ("tcp" | "tls", default
    /// "tcp"), app_name? (default "fluxolab")}`.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

/// `PATCH /api/settings/log-destinations/{id}`: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLogDestinationRequest {
    pub name: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// The whole configuration of the destination's kind; a secret header given
    /// without a `value` keeps its sealed one.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
}

/// What a test delivery got.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogDestinationTestResponse {
    pub delivered: bool,
    /// The receiver's HTTP status (`http` destinations).
    pub status_code: Option<u16>,
    pub latency_ms: u32,
    pub error: Option<String>,
}

impl From<TestReport> for LogDestinationTestResponse {
    fn from(report: TestReport) -> Self {
        Self {
            delivered: report.delivered,
            status_code: report.status_code,
            latency_ms: report.latency_ms,
            error: report.error,
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogDeliveryResponse {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub attempted_at: OffsetDateTime,
    /// Events the attempt carried.
    pub events: u32,
    /// `delivered` or `failed`.
    pub outcome: String,
    pub status_code: Option<u16>,
    pub latency_ms: u32,
    pub error: Option<String>,
    /// A `POST …/test` delivery.
    pub test: bool,
}

impl From<DeliveryAttempt> for LogDeliveryResponse {
    fn from(attempt: DeliveryAttempt) -> Self {
        Self {
            id: attempt.id,
            attempted_at: attempt.attempted_at,
            events: attempt.events,
            outcome: if attempt.delivered {
                "delivered"
            } else {
                "failed"
            }
            .to_owned(),
            status_code: attempt.status_code,
            latency_ms: attempt.latency_ms,
            error: attempt.error,
            test: attempt.test,
        }
    }
}

/// The workspace's log destinations, oldest first.
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 200, description = "The destinations (secret values never shown)", body = [LogDestinationResponse]),
    (status = 403, description = "The caller may not view settings", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/log-destinations")]
pub async fn list_log_destinations(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let destinations = services.log_destinations.list(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(
        destinations
            .into_iter()
            .map(LogDestinationResponse::from)
            .collect::<Vec<_>>(),
    ))
}

/// Adds a destination; an `http` one answers its signing secret this once.
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body = CreateLogDestinationRequest, responses(
    (status = 201, description = "The destination, with `signing_secret` for `http`", body = LogDestinationResponse),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Another destination has this name (`name_taken`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/log-destinations")]
pub async fn create_log_destination(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<CreateLogDestinationRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let created = services
        .log_destinations
        .create(
            &caller.principal,
            NewDestination {
                name: body.name,
                kind: body.kind,
                event_types: body.event_types,
                enabled: body.enabled,
                config: body.config,
            },
        )
        .await?;
    let mut answer = LogDestinationResponse::from(created.destination);
    answer.signing_secret = created
        .signing_secret
        .map(|secret| secret.expose_secret().to_owned());
    Ok(HttpResponse::Created().json(answer))
}

/// One destination.
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Destination id")), responses(
    (status = 200, description = "The destination", body = LogDestinationResponse),
    (status = 404, description = "No such destination in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/log-destinations/{id}")]
pub async fn get_log_destination(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let destination = services
        .log_destinations
        .get(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::Ok().json(LogDestinationResponse::from(destination)))
}

/// Changes a destination (its kind stays).
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body = UpdateLogDestinationRequest, params(("id" = Uuid, Path, description = "Destination id")), responses(
    (status = 200, description = "The destination", body = LogDestinationResponse),
    (status = 404, description = "No such destination in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The name is taken (`name_taken`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/settings/log-destinations/{id}")]
pub async fn update_log_destination(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<UpdateLogDestinationRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let destination = services
        .log_destinations
        .update(
            &caller.principal,
            path_id(&id)?,
            DestinationPatch {
                name: body.name,
                event_types: body.event_types,
                enabled: body.enabled,
                config: body.config,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(LogDestinationResponse::from(destination)))
}

/// Deletes a destination, its secrets and its undelivered events.
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Destination id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such destination in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/settings/log-destinations/{id}")]
pub async fn delete_log_destination(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    services
        .log_destinations
        .delete(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sends one sample event now and reports the receiver's answer (recorded as `tested`
/// or `test_failed`, and listed with the deliveries).
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Destination id")), responses(
    (status = 200, description = "What the test delivery got", body = LogDestinationTestResponse),
    (status = 404, description = "No such destination in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/log-destinations/{id}/test")]
pub async fn test_log_destination(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let report = services
        .log_destinations
        .test(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::Ok().json(LogDestinationTestResponse::from(report)))
}

/// A new signing secret, shown this once; the old one keeps signing beside it for the
/// grace period (`http` destinations).
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body(content = crate::rotate::RotateSecretRequest, description = "Optional"), params(("id" = Uuid, Path, description = "Destination id")), responses(
    (status = 200, description = "The destination, with its new `signing_secret`", body = LogDestinationResponse),
    (status = 404, description = "No such destination in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "An invalid grace period, or a destination that does not sign (`syslog`)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/log-destinations/{id}/rotate-secret")]
pub async fn rotate_log_destination_secret(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let grace = crate::rotate::grace_seconds(&body)?;
    let (destination, secret) = services
        .log_destinations
        .rotate_secret(&caller.principal, path_id(&id)?, grace)
        .await?;
    let mut answer = LogDestinationResponse::from(destination);
    answer.signing_secret = Some(secret.expose_secret().to_owned());
    Ok(HttpResponse::Ok().json(answer))
}

/// Recent delivery attempts (batches and tests), newest first.
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Destination id"), PageQuery), responses(
    (status = 200, description = "A page of attempts", body = PageResponse<LogDeliveryResponse>),
    (status = 404, description = "No such destination in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/log-destinations/{id}/deliveries")]
pub async fn list_log_deliveries(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let attempts = services
        .log_destinations
        .deliveries(&caller.principal, path_id(&id)?, page)
        .await?;
    Ok(HttpResponse::Ok().json(PageResponse::<LogDeliveryResponse>::from(attempts)))
}
