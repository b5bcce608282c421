//! `/api/settings/integrations/*`: how each kind of integration is doing, and what
//! happened to them.

use actix_web::web::{Data, Query};
use actix_web::{HttpResponse, get};
use fluxolab_kernel::{Actor, IntegrationKind};
use fluxolab_workspace::integrations::{
    IntegrationEventFilter, IntegrationStatus, RecordedIntegrationEvent,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::problem::Problem;
use crate::workspaces::{PageResponse, page_request, parse_since};

/// How one kind of integration is doing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntegrationStatusResponse {
    /// `webhooks`, `secret_providers`, `sso`, `ldap`, `log_destinations`, `connectors`,
    /// or the instance's `smtp` and `otlp`.
    pub kind: String,
    pub configured: u32,
    pub enabled: u32,
    /// `ok`, `degraded` (some failed their latest check), `error` (all checked ones
    /// did) or `not_configured`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checked_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

impl From<IntegrationStatus> for IntegrationStatusResponse {
    fn from(status: IntegrationStatus) -> Self {
        Self {
            kind: status.kind.to_owned(),
            configured: status.configured,
            enabled: status.enabled,
            status: status.health.code().to_owned(),
            last_checked_at: status.last_checked_at,
            last_error: status.last_error,
        }
    }
}

/// One integration event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntegrationEventResponse {
    pub id: Uuid,
    pub kind: String,
    pub integration_id: Option<Uuid>,
    /// `configured`, `updated`, `enabled`, `disabled`, `removed`, `tested`,
    /// `test_failed` or `delivery_failed`.
    pub event: String,
    /// Names and reasons; never a secret value.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<RecordedIntegrationEvent> for IntegrationEventResponse {
    fn from(event: RecordedIntegrationEvent) -> Self {
        let (actor_user_id, actor_api_key_id) = match event.actor {
            Some(Actor::User(user)) => (Some(user.as_uuid()), None),
            Some(Actor::ApiKey(key)) => (None, Some(key.as_uuid())),
            None => (None, None),
        };
        Self {
            id: event.id,
            kind: event.kind.code().to_owned(),
            integration_id: event.integration_id,
            event: event.event.code().to_owned(),
            details: event.details,
            actor_user_id,
            actor_api_key_id,
            created_at: event.created_at,
        }
    }
}

/// `GET /api/settings/integrations/events` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IntegrationEventQuery {
    /// Only this kind.
    #[param(pattern = "^(webhooks|secret_providers|sso|ldap|log_destinations|connectors)$")]
    pub kind: Option<String>,
    /// Only events at or after this RFC 3339 time.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^([A-Za-z0-9_-]{32})?$")]
    pub cursor: Option<String>,
}

/// One entry per kind of integration, then the instance's SMTP and OTLP exporter.
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 200, description = "The status of every kind", body = [IntegrationStatusResponse]),
    (status = 403, description = "The caller may not view settings", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/integrations/status")]
pub async fn integrations_status(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let statuses = services.integrations.status(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(
        statuses
            .into_iter()
            .map(IntegrationStatusResponse::from)
            .collect::<Vec<_>>(),
    ))
}

/// What happened to the workspace's integrations, newest first.
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(IntegrationEventQuery), responses(
    (status = 200, description = "A page of events", body = PageResponse<IntegrationEventResponse>),
    (status = 422, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/integrations/events")]
pub async fn integration_events(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<IntegrationEventQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let since = parse_since(query.since.as_deref())?;
    let kind = query
        .kind
        .as_deref()
        .map(str::parse::<IntegrationKind>)
        .transpose()
        .map_err(|error| ApiError::invalid("kind", error.to_string()))?;
    let filter = IntegrationEventFilter { kind, since };
    let events = services
        .integrations
        .events(&caller.principal, &filter, page)
        .await?;
    Ok(HttpResponse::Ok().json(PageResponse::<IntegrationEventResponse>::from(events)))
}
