//! `/api/webhooks*`: registrations and their events, and the workspace-wide event list
//! at `/api/workspace/webhook-events*`. The public intake is in [`crate::intake`].

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post};
use fluxolab_kernel::{ExposeSecret, SecretString, WorkflowId};
use fluxolab_webhooks::model::{
    EventFilter, NewRegistration, Registration, RegistrationPatch, Verdict, WebhookEvent,
    WebhookRegistrationId,
};
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
use crate::workspaces::{PageQuery, PageResponse, page_request, parse_since};

/// Where FluxoLab is reached from outside, without a trailing `/`: `PUBLIC_BASE_URL`
/// when set, else the scheme and host the request came in on.
pub fn public_base(request: &HttpRequest) -> String {
    let base = request
        .app_data::<Data<Services>>()
        .and_then(|services| services.public_base_url.clone())
        .unwrap_or_else(|| {
            let info = request.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        });
    base.trim_end_matches('/').to_owned()
}

/// The full intake URL of a registration, under [`public_base`].
pub fn intake_url(request: &HttpRequest, public_id: &str) -> String {
    format!("{}/api/webhooks/in/{public_id}", public_base(request))
}

/// A webhook registration (never its secret or verify token).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookResponse {
    pub id: Uuid,
    pub name: String,
    /// `meta`, `hmac_sha256`, `standard` (Standard Webhooks) or `none`.
    pub provider: String,
    pub public_id: String,
    /// The full intake URL to give the sender.
    pub url: String,
    pub workflow_id: Option<Uuid>,
    pub environment_id: Uuid,
    /// The environment deliveries run in (its active version of the workflow).
    pub environment: String,
    /// `immediate` or `respond_node`.
    pub response_mode: String,
    pub enabled: bool,
    pub has_verify_token: bool,
    pub has_signing_secret: bool,
    /// Only in the answer to a create that generated the secret: shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl WebhookResponse {
    fn new(request: &HttpRequest, registration: Registration) -> Self {
        Self {
            url: intake_url(request, &registration.public_id),
            id: registration.id.as_uuid(),
            name: registration.name,
            provider: registration.provider.code().to_owned(),
            public_id: registration.public_id,
            workflow_id: registration.workflow_id.map(|id| id.as_uuid()),
            environment_id: registration.environment.id.as_uuid(),
            environment: registration.environment.name,
            response_mode: registration.response_mode.code().to_owned(),
            enabled: registration.enabled,
            has_verify_token: registration.verify_token_hash.is_some(),
            has_signing_secret: registration.signing_credential_id.is_some(),
            signing_secret: None,
            created_at: registration.created_at,
            updated_at: registration.updated_at,
        }
    }
}

/// `POST /api/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Trimmed: 1–120 characters, not only spaces.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub name: String,
    /// `meta`, `hmac_sha256`, `standard` (Standard Webhooks) or `none`.
    pub provider: String,
    pub workflow_id: Option<Uuid>,
    /// The token Meta's handshake must present (stored hashed); 8–512 characters.
    #[schema(min_length = 8, max_length = 512)]
    pub verify_token: Option<String>,
    /// Generated (and shown once) when a signed provider is given none; 8–512
    /// characters; for `standard`, `whsec_` + base64 of 24–64 bytes.
    #[schema(min_length = 8, max_length = 512)]
    pub signing_secret: Option<String>,
    /// `immediate` (default) or `respond_node`.
    pub response_mode: Option<String>,
    /// The environment (name or id) deliveries run in; default `production`.
    pub environment: Option<String>,
}

/// `PATCH /api/webhooks/{id}`: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    /// Trimmed: 1–120 characters, not only spaces.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub name: Option<String>,
    /// `meta`, `hmac_sha256`, `standard` or `none`; a signed provider needs a secret
    /// (switching to `standard` needs a new `whsec_…` one).
    pub provider: Option<String>,
    /// `null` unbinds the workflow.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<Uuid>)]
    pub workflow_id: Option<Option<Uuid>>,
    /// `null` removes the token; 8–512 characters.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<String>, min_length = 8, max_length = 512)]
    pub verify_token: Option<Option<String>>,
    /// Replaces the secret; the old one stops verifying at once. 8–512 characters;
    /// for `standard`, `whsec_` + base64 of 24–64 bytes.
    #[schema(min_length = 8, max_length = 512)]
    pub signing_secret: Option<String>,
    pub response_mode: Option<String>,
    /// A disabled webhook answers 410.
    pub enabled: Option<bool>,
    /// Another environment (name or id) for deliveries to run in.
    pub environment: Option<String>,
}

/// A webhook event in lists.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookEventSummary {
    pub id: Uuid,
    pub registration_id: Uuid,
    /// `accepted`, `duplicate`, `rejected` or `quota_exceeded`.
    pub verdict: String,
    /// Why it was rejected (`bad_signature`, `missing_signature`, `invalid_json`…).
    pub reason: Option<String>,
    /// SHA-256 (hex) of the raw body.
    pub body_digest: String,
    pub size_bytes: usize,
    pub execution_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

impl From<&WebhookEvent> for WebhookEventSummary {
    fn from(event: &WebhookEvent) -> Self {
        Self {
            id: event.id.as_uuid(),
            registration_id: event.registration_id.as_uuid(),
            verdict: event.verdict.code().to_owned(),
            reason: event.reason.clone(),
            body_digest: event.body_digest.clone(),
            size_bytes: event.body.len(),
            execution_id: event.execution_id.map(|id| id.as_uuid()),
            received_at: event.received_at,
        }
    }
}

impl From<WebhookEvent> for WebhookEventSummary {
    fn from(event: WebhookEvent) -> Self {
        Self::from(&event)
    }
}

/// One webhook event with what was received.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookEventDetail {
    #[serde(flatten)]
    pub summary: WebhookEventSummary,
    /// The headers kept (content type, user agent, signature, forwarding).
    #[schema(value_type = Object)]
    pub headers: Value,
    /// The raw body as text (invalid UTF-8 replaced).
    pub body: String,
    /// The body parsed, when it is JSON.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
}

impl From<WebhookEvent> for WebhookEventDetail {
    fn from(event: WebhookEvent) -> Self {
        Self {
            summary: WebhookEventSummary::from(&event),
            body: String::from_utf8_lossy(&event.body).into_owned(),
            headers: event.headers,
            payload: event.payload,
        }
    }
}

/// Filters of event lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^([A-Za-z0-9_-]{32})?$")]
    pub cursor: Option<String>,
    /// `accepted`, `duplicate`, `rejected` or `quota_exceeded`.
    #[param(pattern = "^(accepted|duplicate|rejected|quota_exceeded)$")]
    pub verdict: Option<String>,
    /// RFC 3339; only events received at or after it.
    #[param(format = DateTime)]
    pub since: Option<String>,
}

/// `202` answer of a replay.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplayResponse {
    pub execution_id: Uuid,
}

fn event_filter(
    query: &EventQuery,
    registration: Option<WebhookRegistrationId>,
) -> Result<EventFilter, ApiError> {
    let verdict = query
        .verdict
        .as_deref()
        .map(|code| {
            Verdict::from_code(code).ok_or_else(|| {
                ApiError::invalid(
                    "verdict",
                    "must be one of accepted, duplicate, rejected, quota_exceeded",
                )
            })
        })
        .transpose()?;
    Ok(EventFilter {
        registration_id: registration,
        verdict,
        since: parse_since(query.since.as_deref())?,
    })
}

/// Webhook registrations of the active workspace.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "A page of registrations", body = PageResponse<WebhookResponse>),
))]
#[get("/api/webhooks")]
pub async fn list_webhooks(
    request: HttpRequest,
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let found = services.webhooks.list(&caller.principal, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse {
        items: found
            .items
            .into_iter()
            .map(|registration| WebhookResponse::new(&request, registration))
            .collect(),
        next_cursor: found.next_cursor,
    }))
}

/// Creates a registration; a generated signing secret is in this answer only.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), request_body = CreateWebhookRequest, responses(
    (status = 201, description = "The registration, with its intake URL", body = WebhookResponse),
    (status = 403, description = "Not allowed (`webhooks.write`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/webhooks")]
pub async fn create_webhook(
    request: HttpRequest,
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<CreateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let created = services
        .webhooks
        .create(
            &caller.principal,
            NewRegistration {
                name: body.name,
                provider: body.provider,
                workflow_id: body.workflow_id.map(WorkflowId::from_uuid),
                verify_token: body.verify_token.map(SecretString::from),
                signing_secret: body.signing_secret.map(SecretString::from),
                response_mode: body.response_mode,
                environment: body.environment,
            },
        )
        .await?;
    let mut response = WebhookResponse::new(&request, created.registration);
    // Shown this once.
    response.signing_secret = created
        .generated_secret
        .map(|secret| secret.expose_secret().to_owned());
    Ok(HttpResponse::Created().json(response))
}

/// One registration.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Registration id")), responses(
    (status = 200, description = "The registration", body = WebhookResponse),
    (status = 404, description = "No such registration in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/webhooks/{id}")]
pub async fn get_webhook(
    request: HttpRequest,
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let registration = services
        .webhooks
        .get(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::new(&request, registration)))
}

/// Changes a registration (name, workflow, tokens, mode, enabled).
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), request_body = UpdateWebhookRequest, params(("id" = Uuid, Path, description = "Registration id")), responses(
    (status = 200, description = "The registration", body = WebhookResponse),
    (status = 404, description = "No such registration in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/webhooks/{id}")]
pub async fn update_webhook(
    request: HttpRequest,
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<UpdateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let registration = services
        .webhooks
        .update(
            &caller.principal,
            path_id(&id)?,
            RegistrationPatch {
                name: body.name,
                provider: body.provider,
                workflow_id: body
                    .workflow_id
                    .map(|workflow| workflow.map(WorkflowId::from_uuid)),
                verify_token: body.verify_token.map(|token| token.map(SecretString::from)),
                signing_secret: body.signing_secret.map(SecretString::from),
                response_mode: body.response_mode,
                enabled: body.enabled,
                environment: body.environment,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::new(&request, registration)))
}

/// Deletes a registration and its events.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Registration id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such registration in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/webhooks/{id}")]
pub async fn delete_webhook(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    services
        .webhooks
        .delete(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_events(
    services: &Services,
    caller: &ActiveWorkspace,
    query: &EventQuery,
    registration: Option<WebhookRegistrationId>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let filter = event_filter(query, registration)?;
    let events = services
        .webhooks
        .events(&caller.principal, &filter, page)
        .await?;
    Ok(HttpResponse::Ok().json(PageResponse::<WebhookEventSummary>::from(events)))
}

async fn show_event(
    services: &Services,
    caller: &ActiveWorkspace,
    registration: Option<WebhookRegistrationId>,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let event = services
        .webhooks
        .event(&caller.principal, registration, path_id(id)?)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookEventDetail::from(event)))
}

async fn replay_event(
    services: &Services,
    caller: &ActiveWorkspace,
    registration: Option<WebhookRegistrationId>,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let execution = services
        .webhooks
        .replay(&caller.principal, registration, path_id(id)?)
        .await?;
    Ok(HttpResponse::Accepted().json(ReplayResponse {
        execution_id: execution.as_uuid(),
    }))
}

/// Events one registration received, newest first.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Registration id"), EventQuery), responses(
    (status = 200, description = "A page of events", body = PageResponse<WebhookEventSummary>),
    (status = 404, description = "No such registration in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/webhooks/{id}/events")]
pub async fn list_webhook_events(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    query: Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    list_events(&services, &caller, &query, Some(path_id(&id)?)).await
}

/// One event of a registration, with its headers and body.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Registration id"), ("event_id" = Uuid, Path, description = "Event id")), responses(
    (status = 200, description = "The event", body = WebhookEventDetail),
    (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/webhooks/{id}/events/{event_id}")]
pub async fn get_webhook_event(
    services: Data<Services>,
    caller: ActiveWorkspace,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, event) = path.into_inner();
    show_event(&services, &caller, Some(path_id(&id)?), &event).await
}

/// Runs the registration's active workflow again with the event's stored body.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Registration id"), ("event_id" = Uuid, Path, description = "Event id")), responses(
    (status = 202, description = "The new execution is queued", body = ReplayResponse),
    (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "No active workflow is bound (`no_active_workflow`), or the event was rejected (`event_rejected`)", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "The period's executions are used up (`quota_exceeded`); nothing is queued; `Retry-After`", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/webhooks/{id}/events/{event_id}/replay")]
pub async fn replay_webhook_event(
    services: Data<Services>,
    caller: ActiveWorkspace,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, event) = path.into_inner();
    replay_event(&services, &caller, Some(path_id(&id)?), &event).await
}

/// Every webhook event of the active workspace, newest first.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(EventQuery), responses(
    (status = 200, description = "A page of events", body = PageResponse<WebhookEventSummary>),
    (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/workspace/webhook-events")]
pub async fn list_workspace_events(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    list_events(&services, &caller, &query, None).await
}

/// One webhook event of the active workspace, with its headers and body.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("event_id" = Uuid, Path, description = "Event id")), responses(
    (status = 200, description = "The event", body = WebhookEventDetail),
    (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/workspace/webhook-events/{event_id}")]
pub async fn get_workspace_event(
    services: Data<Services>,
    caller: ActiveWorkspace,
    event: Path<String>,
) -> Result<HttpResponse, ApiError> {
    show_event(&services, &caller, None, &event).await
}

/// Runs the event's registration's active workflow again with its stored body.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(("event_id" = Uuid, Path, description = "Event id")), responses(
    (status = 202, description = "The new execution is queued", body = ReplayResponse),
    (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "No active workflow is bound (`no_active_workflow`), or the event was rejected (`event_rejected`)", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "The period's executions are used up (`quota_exceeded`); nothing is queued; `Retry-After`", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workspace/webhook-events/{event_id}/replay")]
pub async fn replay_workspace_event(
    services: Data<Services>,
    caller: ActiveWorkspace,
    event: Path<String>,
) -> Result<HttpResponse, ApiError> {
    replay_event(&services, &caller, None, &event).await
}
