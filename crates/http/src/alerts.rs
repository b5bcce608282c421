//! `/api/settings/usage/alerts*`: usage alerts and the events they fired.

use actix_web::web::{Bytes, Data, Path, Query};
use actix_web::{HttpResponse, delete, get, patch, post};
use fluxolab_kernel::ExposeSecret;
use fluxolab_workspace::alerts::{AlertEvent, AlertPatch, NewAlert, UsageAlert};
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

/// A usage alert.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertResponse {
    pub id: Uuid,
    /// `executions`, `members`, `workflows`, `active_workflows` or `credentials`.
    pub metric: String,
    /// The share of the plan limit that fires it (1–1000).
    pub threshold_percent: i32,
    /// `email` or `webhook`.
    pub channel: String,
    /// The e-mail address or the URL.
    pub target: String,
    pub enabled: bool,
    /// Only in the answer to creating a webhook alert or rotating its secret: the
    /// `whsec_…` Standard Webhooks secret it signs with, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Until when the secret a rotation replaced still signs beside the new one.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<UsageAlert> for AlertResponse {
    fn from(alert: UsageAlert) -> Self {
        Self {
            id: alert.id.as_uuid(),
            metric: alert.metric,
            threshold_percent: alert.threshold_percent,
            channel: alert.channel.code().to_owned(),
            target: alert.target,
            enabled: alert.enabled,
            secret: None,
            previous_secret_expires_at: alert.previous_secret.map(|(_, until)| until),
            created_at: alert.created_at,
            updated_at: alert.updated_at,
        }
    }
}

/// `POST /api/settings/usage/alerts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlertRequest {
    pub metric: String,
    /// The share of the plan limit that fires it.
    #[schema(minimum = 1, maximum = 1000)]
    pub threshold_percent: i32,
    pub channel: String,
    pub target: String,
}

/// `PATCH /api/settings/usage/alerts/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAlertRequest {
    #[schema(minimum = 1, maximum = 1000)]
    pub threshold_percent: Option<i32>,
    pub target: Option<String>,
    pub enabled: Option<bool>,
}

/// A firing of an alert and its delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertEventResponse {
    pub id: Uuid,
    pub alert_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub period_start: OffsetDateTime,
    pub threshold_percent: i32,
    pub used: i64,
    pub limit: i64,
    /// `pending` or `delivered` (`failed`: given up on before deliveries went through
    /// the outbox, which never gives up).
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<AlertEvent> for AlertEventResponse {
    fn from(event: AlertEvent) -> Self {
        Self {
            id: event.id.as_uuid(),
            alert_id: event.alert_id.as_uuid(),
            period_start: event.period_start,
            threshold_percent: event.threshold_percent,
            used: event.used,
            limit: event.limit,
            status: event.status,
            attempts: event.attempts,
            last_error: event.last_error,
            delivered_at: event.delivered_at,
            created_at: event.created_at,
        }
    }
}

/// Usage alerts of the active workspace.
#[utoipa::path(tag = "plans", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "A page of alerts", body = PageResponse<AlertResponse>),
))]
#[get("/api/settings/usage/alerts")]
pub async fn list_alerts(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let alerts = services.alerts.list(&caller.principal, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<AlertResponse>::from(alerts)))
}

/// Creates an alert; a webhook alert's signing secret is in this answer only.
#[utoipa::path(tag = "plans", security(("bearer" = [])), request_body = CreateAlertRequest, responses(
    (status = 201, description = "The alert", body = AlertResponse),
    (status = 403, description = "Not allowed (`settings.manage`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/usage/alerts")]
pub async fn create_alert(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<CreateAlertRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let (alert, secret) = services
        .alerts
        .create(
            &caller.principal,
            NewAlert {
                metric: body.metric,
                threshold_percent: body.threshold_percent,
                channel: body.channel,
                target: body.target,
            },
        )
        .await?;
    let mut response = AlertResponse::from(alert);
    // Shown this once.
    response.secret = secret.map(|secret| secret.expose_secret().to_owned());
    Ok(HttpResponse::Created().json(response))
}

/// Changes an alert's threshold, target or enabled flag.
#[utoipa::path(tag = "plans", security(("bearer" = [])), request_body = UpdateAlertRequest, params(("id" = Uuid, Path, description = "Alert id")), responses(
    (status = 200, description = "The alert", body = AlertResponse),
    (status = 404, description = "No such alert in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/settings/usage/alerts/{id}")]
pub async fn update_alert(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<UpdateAlertRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let alert = services
        .alerts
        .update(
            &caller.principal,
            path_id(&id)?,
            AlertPatch {
                threshold_percent: body.threshold_percent,
                target: body.target,
                enabled: body.enabled,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(AlertResponse::from(alert)))
}

/// Deletes an alert, its events and its secret.
#[utoipa::path(tag = "plans", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Alert id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such alert in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/settings/usage/alerts/{id}")]
pub async fn delete_alert(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    services
        .alerts
        .delete(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The alert's firings and their deliveries, newest first.
#[utoipa::path(tag = "plans", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Alert id"), PageQuery), responses(
    (status = 200, description = "A page of events", body = PageResponse<AlertEventResponse>),
    (status = 404, description = "No such alert in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/usage/alerts/{id}/events")]
pub async fn list_alert_events(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let events = services
        .alerts
        .events(&caller.principal, path_id(&id)?, page)
        .await?;
    Ok(HttpResponse::Ok().json(PageResponse::<AlertEventResponse>::from(events)))
}

/// A new signing secret for a webhook alert, shown this once; the old one keeps signing
/// beside it (two `webhook-signature` entries) for the grace period.
#[utoipa::path(tag = "plans", security(("bearer" = [])), request_body(content = crate::rotate::RotateSecretRequest, description = "Optional"), params(("id" = Uuid, Path, description = "Alert id")), responses(
    (status = 200, description = "The alert, with its new `secret`", body = AlertResponse),
    (status = 404, description = "No such alert in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "An invalid grace period, or an e-mail alert (it does not sign)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/usage/alerts/{id}/rotate-secret")]
pub async fn rotate_alert_secret(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let grace = crate::rotate::grace_seconds(&body)?;
    let (alert, secret) = services
        .alerts
        .rotate_secret(&caller.principal, path_id(&id)?, grace)
        .await?;
    let mut response = AlertResponse::from(alert);
    response.secret = Some(secret.expose_secret().to_owned());
    Ok(HttpResponse::Ok().json(response))
}
