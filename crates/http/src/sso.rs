//! Single sign-on with OpenID Connect: `/api/settings/sso*` (the workspace's provider,
//! its client secret sealed and never returned) and `/api/auth/sso/*` (the browser's
//! login: start, the provider's callback, and the ticket exchanged for tokens).

use std::collections::BTreeMap;

use actix_web::http::header::LOCATION;
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put};
use fluxolab_kernel::{Failure, SecretString};
use fluxolab_workspace::sso::login::{LoginError, SignedIn};
use fluxolab_workspace::sso::{SsoConfig, SsoSubmission, SsoTestReport};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{TokenResponse, client_info};
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::problem::{Problem, ProblemCode};
use crate::webhooks::public_base;

/// A workspace's SSO configuration; the client secret is never shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SsoResponse {
    pub id: Uuid,
    pub issuer: String,
    pub client_id: String,
    /// Always `true`: the secret is sealed in the vault, never returned.
    pub has_client_secret: bool,
    pub scopes: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub groups_claim: String,
    /// Group → `viewer`, `editor` or `admin`.
    pub role_mapping: BTreeMap<String, String>,
    /// `viewer`, `editor` or `admin`.
    pub default_role: String,
    pub jit_provisioning: bool,
    pub enforce_sso: bool,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<SsoConfig> for SsoResponse {
    fn from(config: SsoConfig) -> Self {
        Self {
            id: config.id.as_uuid(),
            issuer: config.issuer,
            client_id: config.client_id,
            has_client_secret: true,
            scopes: config.scopes,
            allowed_domains: config.allowed_domains,
            groups_claim: config.groups_claim,
            role_mapping: config
                .role_mapping
                .into_iter()
                .map(|(group, role)| (group, role.code().to_owned()))
                .collect(),
            default_role: config.default_role.code().to_owned(),
            jit_provisioning: config.jit_provisioning,
            enforce_sso: config.enforce_sso,
            enabled: config.enabled,
            created_at: config.created_at,
            updated_at: config.updated_at,
        }
    }
}

/// A grantable role.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantedRole {
    Viewer,
    Editor,
    Admin,
}

impl GrantedRole {
    const fn code(self) -> &'static str {
        match self {
            GrantedRole::Viewer => "viewer",
            GrantedRole::Editor => "editor",
            GrantedRole::Admin => "admin",
        }
    }
}

/// `PUT /api/settings/sso/configure`: the whole configuration; left-out fields take
/// their defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigureSsoRequest {
    /// The issuer; `{issuer}/.well-known/openid-configuration` must name exactly it.
    #[schema(max_length = 2048, pattern = r"^https?://[^\s/?#@\[\]]+(/[^\s?#]*)?$")]
    pub issuer: String,
    #[schema(min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]{1,255}$")]
    pub client_id: String,
    /// Required the first time; left out later, the sealed one is kept. Never returned.
    #[schema(min_length = 1, max_length = 1024, format = Password)]
    pub client_secret: Option<String>,
    /// Default `["openid", "email", "profile"]`; must include `openid`.
    #[schema(min_items = 1, max_items = 20)]
    pub scopes: Option<Vec<String>>,
    /// Lower-case e-mail domains that may sign in; empty (the default): any.
    #[schema(max_items = 50)]
    pub allowed_domains: Option<Vec<String>>,
    /// The ID token claim listing the user's groups (default `groups`).
    #[schema(pattern = r"^[A-Za-z0-9_:./-]{1,64}$")]
    pub groups_claim: Option<String>,
    /// Group name (1–256 characters) → role of a member provisioned at sign-in.
    pub role_mapping: Option<BTreeMap<String, GrantedRole>>,
    /// Default `viewer`.
    pub default_role: Option<GrantedRole>,
    /// Whether a sign-in creates the user and the membership (default `false`).
    pub jit_provisioning: Option<bool>,
    /// Whether password tokens are refused in the workspace, owners excepted (default
    /// `false`).
    pub enforce_sso: Option<bool>,
    /// Default `true`.
    pub enabled: Option<bool>,
}

/// What a test of the provider found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SsoTestResponse {
    pub ok: bool,
    pub detail: String,
    /// The ID token signing algorithms the provider advertises (when it answered).
    pub signing_algorithms: Vec<String>,
}

impl From<SsoTestReport> for SsoTestResponse {
    fn from(report: SsoTestReport) -> Self {
        Self {
            ok: report.ok,
            detail: report.detail,
            signing_algorithms: report
                .provider
                .map(|provider| provider.signing_algorithms)
                .unwrap_or_default(),
        }
    }
}

/// `GET /api/auth/sso/callback`: what the provider sends back.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code.
    #[param(min_length = 1, max_length = 2048)]
    pub code: String,
    /// The login's state.
    #[param(min_length = 1, max_length = 256)]
    pub state: String,
}

/// `POST /api/auth/sso/exchange`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoExchangeRequest {
    /// The ticket of `#/sso?ticket=…`; valid once, for 60 seconds.
    #[schema(min_length = 1, max_length = 256)]
    pub ticket: String,
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::NotConfigured => ApiError::NotFound("SSO configuration"),
            LoginError::Refused(refusal) => ApiError::Refused {
                code: ProblemCode::SsoLoginRefused,
                detail: format!("sign-in refused ({}): {refusal}", refusal.code()),
            },
            LoginError::TicketInvalid => ApiError::Refused {
                code: ProblemCode::InvalidSsoTicket,
                detail: error.to_string(),
            },
            LoginError::Sso(error) => Failure::from(error).into(),
        }
    }
}

/// The callback URL registered at the provider.
fn redirect_uri(request: &HttpRequest) -> String {
    format!("{}/api/auth/sso/callback", public_base(request))
}

/// The workspace's SSO configuration (the client secret only as `has_client_secret`).
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 200, description = "The configuration", body = SsoResponse),
    (status = 403, description = "The caller may not view settings", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "SSO is not configured", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/sso")]
pub async fn get_sso(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let config = services.sso.get(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(SsoResponse::from(config)))
}

/// Creates or replaces the configuration once discovery checks out: the issuer's
/// document must name it and support PKCE `S256`, and its JWKS must answer (both fetched
/// through the SSRF guard).
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body = ConfigureSsoRequest, responses(
    (status = 200, description = "The configuration", body = SsoResponse),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The plan has no SSO (`plan_limit`, limit `sso`): business and enterprise only", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, each named; `issuer` when it is unreachable, names another issuer or lacks S256", body = Problem, content_type = "application/problem+json"),
))]
#[put("/api/settings/sso/configure")]
pub async fn configure_sso(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<ConfigureSsoRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let submission = SsoSubmission {
        issuer: body.issuer,
        client_id: body.client_id,
        client_secret: body.client_secret.map(SecretString::from),
        scopes: body.scopes,
        allowed_domains: body.allowed_domains,
        groups_claim: body.groups_claim,
        role_mapping: body.role_mapping.map(|mapping| {
            mapping
                .into_iter()
                .map(|(group, role)| (group, role.code().to_owned()))
                .collect()
        }),
        default_role: body.default_role.map(|role| role.code().to_owned()),
        jit_provisioning: body.jit_provisioning,
        enforce_sso: body.enforce_sso,
        enabled: body.enabled,
    };
    let config = services
        .sso
        .configure(&caller.principal, submission)
        .await?;
    Ok(HttpResponse::Ok().json(SsoResponse::from(config)))
}

/// Fetches the configured issuer's discovery document and JWKS again; recorded as
/// `tested` or `test_failed` in the integration events.
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 200, description = "What the test found", body = SsoTestResponse),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "SSO is not configured", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/sso/test")]
pub async fn test_sso(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let report = services.sso.test(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(SsoTestResponse::from(report)))
}

/// Removes the configuration and its sealed secret.
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "SSO is not configured", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/settings/sso")]
pub async fn delete_sso(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    services.sso.delete(&caller.principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Starts signing in to a workspace: a redirect to its provider's authorization
/// endpoint (authorization code, PKCE `S256`, `state` and `nonce` kept server-side for
/// 10 minutes, single use).
#[utoipa::path(tag = "auth", params(("workspace_slug" = String, Path, description = "The workspace's slug", max_length = 64)), responses(
    (status = 302, description = "To the provider's authorization endpoint (`Location`)"),
    (status = 403, description = "The provider cannot be reached (`sso_login_refused`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "The workspace has no enabled SSO", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The workspace's plan has no SSO (`plan_limit`)", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/auth/sso/{workspace_slug}/start")]
pub async fn start_sso(
    request: HttpRequest,
    services: Data<Services>,
    slug: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let url = services.sso.start(&slug, &redirect_uri(&request)).await?;
    Ok(HttpResponse::Found()
        .insert_header((LOCATION, url))
        .finish())
}

/// The provider's answer: the code is exchanged and the ID token verified, the user and
/// membership found or provisioned, then a redirect to
/// `{PUBLIC_BASE_URL}/#/sso?ticket=…` (a one-use ticket, never a token).
#[utoipa::path(tag = "auth", params(CallbackQuery), responses(
    (status = 302, description = "To `{PUBLIC_BASE_URL}/#/sso?ticket=…` (`Location`)"),
    (status = 400, description = "`code` or `state` is missing", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Sign-in refused (`sso_login_refused`; the detail names the reason: bad state or nonce, domain, unverified e-mail, no JIT, token rejected)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "The workspace no longer has enabled SSO", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Provisioning the member would pass the plan's `max_members` (`plan_limit`)", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/auth/sso/callback")]
pub async fn sso_callback(
    request: HttpRequest,
    services: Data<Services>,
    query: Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let ticket = services
        .sso
        .callback(&query.code, &query.state, &redirect_uri(&request))
        .await?;
    let location = format!(
        "{}/#/sso?ticket={}",
        public_base(&request),
        fluxolab_kernel::ExposeSecret::expose_secret(&ticket)
    );
    Ok(HttpResponse::Found()
        .insert_header((LOCATION, location))
        .finish())
}

/// Exchanges a sign-in ticket (once, within 60 seconds) for tokens, active in the
/// workspace signed into.
#[utoipa::path(tag = "auth", request_body = SsoExchangeRequest, responses(
    (status = 200, description = "Tokens", body = TokenResponse),
    (status = 401, description = "The ticket is unknown, used or expired (`invalid_sso_ticket`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/auth/sso/exchange")]
pub async fn sso_exchange(
    request: HttpRequest,
    services: Data<Services>,
    body: Json<SsoExchangeRequest>,
) -> Result<HttpResponse, ApiError> {
    let ticket = SecretString::from(body.0.ticket);
    let SignedIn { user, workspace } = services.sso.redeem(&ticket).await?;
    let pair = services
        .accounts
        .sign_in_by_sso(user, workspace, client_info(&request))
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(pair)))
}
