//! `/api/auth/*`: register, log in, refresh, log out, who am I, change the password.

use actix_web::http::header::USER_AGENT;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, get, post};
use fluxolab_identity::{ClientInfo, Membership, Registration, TokenPair, User};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{CurrentUser, Services};
use crate::json::Json;
use crate::problem::Problem;

/// `POST /api/auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Trimmed and lower-cased; unique.
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
    /// At least 12 characters, not the e-mail address.
    #[schema(format = Password, min_length = 12)]
    pub password: String,
    /// Trimmed: 1–120 characters, not only spaces.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub display_name: String,
}

/// `POST /api/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

/// `POST /api/auth/refresh` and `POST /api/auth/logout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /api/auth/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(format = Password)]
    pub current_password: String,
    /// At least 12 characters, not the e-mail address.
    #[schema(format = Password, min_length = 12)]
    pub new_password: String,
}

/// Tokens, OAuth 2 style.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token.expose_secret().to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: pair.expires_in,
        }
    }
}

/// A user account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub default_workspace_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email,
            display_name: user.display_name,
            default_workspace_id: user.default_workspace_id.map(|id| id.as_uuid()),
            created_at: user.created_at,
        }
    }
}

/// A workspace the user belongs to, with their role in it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipResponse {
    pub workspace_id: Uuid,
    pub name: String,
    /// `owner`, `admin`, `editor` or `viewer`.
    pub role: String,
}

impl From<Membership> for MembershipResponse {
    fn from(membership: Membership) -> Self {
        Self {
            workspace_id: membership.workspace_id.as_uuid(),
            name: membership.name,
            role: membership.role,
        }
    }
}

/// `GET /api/auth/me`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    #[serde(flatten)]
    pub user: UserResponse,
    pub memberships: Vec<MembershipResponse>,
}

/// The client facts a session keeps (its user agent).
pub(crate) fn client_info(request: &HttpRequest) -> ClientInfo {
    ClientInfo {
        user_agent: request
            .headers()
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(512).collect()),
    }
}

/// Creates an account with its personal workspace (free plan, three environments).
#[utoipa::path(tag = "auth", request_body = RegisterRequest, responses(
    (status = 201, description = "The new user", body = UserResponse),
    (status = 409, description = "The e-mail address is taken (`email_taken`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/auth/register")]
pub async fn register(
    services: Data<Services>,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let user = services
        .accounts
        .register(Registration {
            email: body.email,
            password: SecretString::from(body.password),
            display_name: body.display_name,
        })
        .await?;
    Ok(HttpResponse::Created().json(UserResponse::from(user)))
}

/// Exchanges an e-mail address and password for tokens. Five wrong passwords in a row
/// lock the account for 15 minutes; every failure answers the same.
#[utoipa::path(tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "Tokens", body = TokenResponse),
    (status = 401, description = "Wrong e-mail address or password, or locked (`invalid_credentials`)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/auth/login")]
pub async fn login(
    request: HttpRequest,
    services: Data<Services>,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let tokens = services
        .accounts
        .login(
            &body.email,
            SecretString::from(body.password),
            client_info(&request),
        )
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(tokens)))
}

/// Rotates a refresh token. Presenting one that was already rotated revokes its family.
#[utoipa::path(tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, description = "New tokens; the presented refresh token is spent", body = TokenResponse),
    (status = 401, description = "Invalid, expired, revoked or reused (`invalid_refresh_token`)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/auth/refresh")]
pub async fn refresh(
    request: HttpRequest,
    services: Data<Services>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tokens = services
        .accounts
        .refresh(&body.0.refresh_token, client_info(&request))
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(tokens)))
}

/// Ends the session of a refresh token (idempotent).
#[utoipa::path(tag = "auth", request_body = RefreshRequest, responses(
    (status = 204, description = "Logged out"),
))]
#[post("/api/auth/logout")]
pub async fn logout(
    services: Data<Services>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    services.accounts.logout(&body.0.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user, their default workspace and memberships.
#[utoipa::path(tag = "auth", security(("bearer" = [])), responses(
    (status = 200, description = "The user", body = MeResponse),
    (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/auth/me")]
pub async fn me(services: Data<Services>, user: CurrentUser) -> Result<HttpResponse, ApiError> {
    let (found, memberships) = services.accounts.me(user.id()).await?;
    Ok(HttpResponse::Ok().json(MeResponse {
        user: found.into(),
        memberships: memberships.into_iter().map(Into::into).collect(),
    }))
}

/// Changes the password and revokes every other session.
#[utoipa::path(tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest, responses(
    (status = 204, description = "Changed; other sessions are revoked"),
    (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Wrong current password or weak new one", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/auth/password")]
pub async fn change_password(
    services: Data<Services>,
    user: CurrentUser,
    body: Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    services
        .accounts
        .change_password(
            user.id(),
            user.session_family(),
            SecretString::from(body.current_password),
            SecretString::from(body.new_password),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
