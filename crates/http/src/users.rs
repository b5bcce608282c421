//! `/api/users/me/*`: the signed-in user's preferences and security overview.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, put};
use fluxolab_identity::{Session, SessionFamilyId, SessionId, UserSettings};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{CurrentUser, Services};
use crate::json::Json;
use crate::problem::Problem;

/// A user's preferences.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// A language tag, e.g. `en` or `pt-BR`.
    #[schema(pattern = "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
    pub locale: String,
    /// An IANA time zone, e.g. `Europe/Lisbon`.
    #[schema(pattern = "^[A-Za-z0-9/_+-]{1,64}$")]
    pub timezone: String,
    /// `light`, `dark` or `system`.
    pub theme: String,
    /// Notification switches by name (at most 50, names of 1–64 characters).
    #[schema(value_type = HashMap<String, bool>)]
    pub notifications: serde_json::Map<String, serde_json::Value>,
}

impl From<UserSettings> for SettingsBody {
    fn from(settings: UserSettings) -> Self {
        Self {
            locale: settings.locale,
            timezone: settings.timezone,
            theme: settings.theme,
            notifications: settings.notifications,
        }
    }
}

/// One live session (a signed-in device).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    pub id: Uuid,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whether the calling token belongs to this session.
    pub current: bool,
}

/// `GET /api/users/me/security`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecurityResponse {
    #[serde(with = "time::serde::rfc3339")]
    pub password_changed_at: OffsetDateTime,
    pub sessions: Vec<SessionResponse>,
}

fn session_response(session: Session, current_family: SessionFamilyId) -> SessionResponse {
    SessionResponse {
        id: session.id.as_uuid(),
        user_agent: session.user_agent,
        created_at: session.created_at,
        last_used_at: session.last_used_at,
        expires_at: session.expires_at,
        current: session.family_id == current_family,
    }
}

/// The caller's preferences.
#[utoipa::path(tag = "users", security(("bearer" = [])), responses(
    (status = 200, description = "Preferences", body = SettingsBody),
))]
#[get("/api/users/me/settings")]
pub async fn get_settings(
    services: Data<Services>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let settings = services.accounts.settings(user.id()).await?;
    Ok(HttpResponse::Ok().json(SettingsBody::from(settings)))
}

/// Replaces the caller's preferences.
#[utoipa::path(tag = "users", security(("bearer" = [])), request_body = SettingsBody, responses(
    (status = 200, description = "Saved preferences", body = SettingsBody),
    (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[put("/api/users/me/settings")]
pub async fn put_settings(
    services: Data<Services>,
    user: CurrentUser,
    body: Json<SettingsBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let saved = services
        .accounts
        .update_settings(
            user.id(),
            UserSettings {
                locale: body.locale,
                timezone: body.timezone,
                theme: body.theme,
                notifications: body.notifications,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(SettingsBody::from(saved)))
}

/// When the password last changed, and every signed-in session.
#[utoipa::path(tag = "users", security(("bearer" = [])), responses(
    (status = 200, description = "Security overview", body = SecurityResponse),
))]
#[get("/api/users/me/security")]
pub async fn security(
    services: Data<Services>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let overview = services.accounts.security(user.id()).await?;
    Ok(HttpResponse::Ok().json(SecurityResponse {
        password_changed_at: overview.password_changed_at,
        sessions: overview
            .sessions
            .into_iter()
            .map(|session| session_response(session, user.session_family()))
            .collect(),
    }))
}

/// Signs one session out (its refresh token stops working).
#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Session id")), responses(
    (status = 204, description = "Revoked"),
    (status = 404, description = "No live session of the caller has this id", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/users/me/sessions/{id}")]
pub async fn revoke_session(
    services: Data<Services>,
    user: CurrentUser,
    id: Path<SessionId>,
) -> Result<HttpResponse, ApiError> {
    if services
        .accounts
        .revoke_session(user.id(), id.into_inner())
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("session"))
    }
}
