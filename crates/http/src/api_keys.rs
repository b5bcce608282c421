//! `/api/settings/api/keys*`: API keys, shown once, revocable, rotatable, audited.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post};
use fluxolab_kernel::Principal;
use fluxolab_workspace::api_keys::{ApiKey, KeyAuditEntry, NewApiKey, Origin};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::path_id::path_id;
use crate::problem::Problem;
use crate::workspaces::{PageQuery, PageResponse, page_request};
use crate::{ApiError, HttpMetrics};

/// An API key (never its secret, except once in `key`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyResponse {
    pub id: Uuid,
    pub name: String,
    /// `flx_` and the first characters: how the key is recognised in logs and lists.
    pub prefix: String,
    pub last_four: String,
    /// Permission codes, e.g. `workflows.read`.
    pub scopes: Vec<String>,
    pub environment: Option<String>,
    pub created_by: Option<Uuid>,
    /// `active`, `revoked` or `expired`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// After a rotation: until when the previous secret still works.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_valid_until: Option<OffsetDateTime>,
    /// Only in the answers to create and rotate: the secret, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<ApiKey> for ApiKeyResponse {
    fn from(key: ApiKey) -> Self {
        Self {
            status: key.status(OffsetDateTime::now_utc()).to_owned(),
            id: key.id.as_uuid(),
            name: key.name,
            prefix: key.prefix,
            last_four: key.last_four,
            scopes: key
                .scopes
                .iter()
                .map(|scope| scope.code().to_owned())
                .collect(),
            environment: key.environment.map(|environment| environment.name),
            created_by: key.created_by.map(|user| user.as_uuid()),
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
            previous_valid_until: key.previous_valid_until,
            key: None,
        }
    }
}

/// `POST /api/settings/api/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Trimmed: 1–120 characters, not only spaces.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub name: String,
    /// Permission codes; never more than the creator's own.
    pub scopes: Vec<String>,
    /// RFC 3339, in the future.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// `development`, `staging` or `production`.
    pub environment: Option<String>,
}

/// A line of a key's audit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyAuditResponse {
    pub id: Uuid,
    pub action: String,
    pub actor_user_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<KeyAuditEntry> for KeyAuditResponse {
    fn from(entry: KeyAuditEntry) -> Self {
        Self {
            id: entry.id,
            action: entry.action,
            actor_user_id: entry.actor_user_id.map(|user| user.as_uuid()),
            ip: entry.ip,
            user_agent: entry.user_agent,
            details: entry.details,
            created_at: entry.created_at,
        }
    }
}

/// Where the request came from: the client address (the first `X-Forwarded-For` /
/// `Forwarded` hop, else the peer) and the user agent (at most 512 characters).
pub(crate) fn origin(request: &HttpRequest) -> Origin {
    Origin {
        ip: request
            .connection_info()
            .realip_remote_addr()
            .map(str::to_owned),
        user_agent: request
            .headers()
            .get("user-agent")
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(512).collect()),
    }
}

/// The principal of a request an API key authenticated, in the request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct KeyCaller(pub(crate) Principal);

/// Middleware: when a request an API key authenticated is answered 403 because the key
/// lacks a permission, the key's audit gets a (sampled) `scope_denied` line with the
/// permission, method, path, IP and user agent. Wrap it inside `observe`.
pub async fn audit_scope_denials(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(request).await?;
    if response.status() != StatusCode::FORBIDDEN {
        return Ok(response);
    }
    let needed = match response
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>())
    {
        Some(ApiError::Forbidden(needed)) => *needed,
        _ => return Ok(response),
    };
    let http = response.request();
    let caller = http.extensions().get::<KeyCaller>().cloned();
    if let (Some(KeyCaller(principal)), Some(services)) =
        (caller, http.app_data::<Data<Services>>())
    {
        if let Some(metrics) = http.app_data::<Data<HttpMetrics>>() {
            metrics.observe_key_refusal("scope_denied");
        }
        services
            .api_keys
            .scope_denied(
                &principal,
                needed,
                http.method().as_str(),
                http.path(),
                &origin(http),
            )
            .await;
    }
    Ok(response)
}

/// The workspace's API keys.
#[utoipa::path(tag = "api keys", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "A page of keys", body = PageResponse<ApiKeyResponse>),
    (status = 403, description = "Not allowed (`api_keys.manage`)", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/api/keys")]
pub async fn list_keys(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let keys = services.api_keys.list(&caller.principal, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<ApiKeyResponse>::from(keys)))
}

/// Creates a key; its secret is in this answer only.
#[utoipa::path(tag = "api keys", security(("bearer" = [])), request_body = CreateApiKeyRequest, responses(
    (status = 201, description = "The key, with `key` shown once", body = ApiKeyResponse),
    (status = 403, description = "Not allowed (`api_keys.manage`)", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The plan's `api_keys` limit is reached (`plan_limit`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields (scopes beyond the creator's included)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/api/keys")]
pub async fn create_key(
    request: HttpRequest,
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let (key, secret) = services
        .api_keys
        .create(
            &caller.principal,
            &origin(&request),
            NewApiKey {
                name: body.name,
                scopes: body.scopes,
                expires_at: body.expires_at,
                environment: body.environment,
            },
        )
        .await?;
    let mut response = ApiKeyResponse::from(key);
    response.key = Some(secret);
    Ok(HttpResponse::Created().json(response))
}

/// Revokes a key at once.
#[utoipa::path(tag = "api keys", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Key id")), responses(
    (status = 200, description = "The revoked key", body = ApiKeyResponse),
    (status = 404, description = "No such key in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/api/keys/{id}/revoke")]
pub async fn revoke_key(
    request: HttpRequest,
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = services
        .api_keys
        .revoke(&caller.principal, &origin(&request), path_id(&id)?)
        .await?;
    Ok(HttpResponse::Ok().json(ApiKeyResponse::from(key)))
}

/// A new secret for the key (shown once); the old one works for the grace period.
#[utoipa::path(tag = "api keys", security(("bearer" = [])), request_body(content = crate::rotate::RotateSecretRequest, description = "Optional"), params(("id" = Uuid, Path, description = "Key id")), responses(
    (status = 200, description = "The key, with its new `key` shown once", body = ApiKeyResponse),
    (status = 404, description = "No such key in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The key is revoked or expired (`api_key_inactive`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid grace period", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/api/keys/{id}/rotate")]
pub async fn rotate_key(
    request: HttpRequest,
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: actix_web::web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let grace = crate::rotate::grace_seconds(&body)?;
    let (key, secret) = services
        .api_keys
        .rotate(&caller.principal, &origin(&request), path_id(&id)?, grace)
        .await?;
    let mut response = ApiKeyResponse::from(key);
    response.key = Some(secret);
    Ok(HttpResponse::Ok().json(response))
}

/// The key's audit: created, rotated, revoked… with actor, IP and user agent.
#[utoipa::path(tag = "api keys", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Key id"), PageQuery), responses(
    (status = 200, description = "A page of audit lines", body = PageResponse<KeyAuditResponse>),
    (status = 404, description = "No such key in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/api/keys/{id}/audit")]
pub async fn key_audit(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let entries = services
        .api_keys
        .audit_log(&caller.principal, path_id(&id)?, page)
        .await?;
    Ok(HttpResponse::Ok().json(PageResponse::<KeyAuditResponse>::from(entries)))
}
