//! Who is calling: the signed-in user from the bearer token, and the principal in the
//! active workspace (`X-Workspace-Id`, else the token's workspace), checked against
//! membership on every request (a lookup each process caches, evicted on every change:
//! see `fluxolab_postgres::auth_cache`).

use fluxolab_workspace::api_keys::KEY_PREFIX;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use fluxolab_credentials::VaultService;
use fluxolab_identity::{AccessClaims, AccountService, SessionFamilyId, SignInMethod};
use fluxolab_kernel::{Principal, UserId, WorkspaceId};
use fluxolab_workflows::WorkflowService;
use fluxolab_workflows::execution::ExecutionRepository;
use fluxolab_workflows::execution_service::ExecutionService;
use fluxolab_workspace::WorkspaceService;

use crate::ApiError;

/// The header that picks the active workspace.
pub const WORKSPACE_HEADER: &str = "x-workspace-id";

/// The use cases handlers call.
#[derive(Clone)]
pub struct Services {
    pub accounts: Arc<AccountService>,
    pub workspaces: Arc<WorkspaceService>,
    pub vault: Arc<VaultService>,
    pub workflows: Arc<WorkflowService>,
    pub executions: Arc<ExecutionService>,
    /// The queue, for the workers that run beside the API.
    pub queue: Arc<dyn ExecutionRepository>,
    /// Fires due schedules, for the workers that run beside the API.
    pub scheduler: Arc<fluxolab_workflows::scheduler::Scheduler>,
    pub webhooks: Arc<fluxolab_webhooks::WebhookService>,
    pub billing: Arc<fluxolab_workspace::BillingService>,
    pub alerts: Arc<fluxolab_workspace::alerts::AlertService>,
    /// Delivers what FluxoLab sends on its own, for the workers that run beside the API.
    pub outbox: Arc<fluxolab_kernel::outbox::Dispatcher>,
    /// Records the weekly usage reports that are due, for the workers beside the API.
    pub weekly_reports: Arc<fluxolab_workspace::notifications::WeeklyReports>,
    pub api_keys: Arc<fluxolab_workspace::api_keys::ApiKeyService>,
    pub environments: Arc<fluxolab_workspace::environments::EnvironmentService>,
    pub settings: Arc<fluxolab_workspace::settings::SettingsService>,
    pub integrations: Arc<fluxolab_workspace::integrations::IntegrationService>,
    pub secret_providers: Arc<fluxolab_workspace::secret_providers::ProviderService>,
    pub log_destinations: Arc<fluxolab_workspace::log_destinations::DestinationService>,
    /// LDAP settings, test and sync.
    pub ldap: Arc<fluxolab_workspace::ldap::LdapService>,
    /// `POST /api/auth/ldap/login`.
    pub ldap_login: Arc<fluxolab_workspace::ldap::login::LdapLogin>,
    /// OpenID Connect single sign-on, and whether a workspace admits password tokens.
    pub sso: Arc<fluxolab_workspace::sso::SsoService>,
    pub connectors: Arc<fluxolab_workflows::connectors::ConnectorService>,
    /// The public webhook intake's hot path.
    pub intake: Arc<fluxolab_webhooks::Intake>,
    pub intake_limits: crate::intake::IntakeLimits,
    /// The MCP server's use cases (`/api/mcp`).
    pub mcp: Arc<fluxolab_workflows::mcp_service::McpService>,
    pub mcp_limits: crate::mcp::McpLimits,
    pub overview: Arc<dyn fluxolab_webhooks::overview::OverviewSource>,
    /// The base of intake URLs in responses (`PUBLIC_BASE_URL`); `None`: the scheme
    /// and host of each request.
    pub public_base_url: Option<String>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

fn services(request: &HttpRequest) -> Result<Data<Services>, ApiError> {
    request
        .app_data::<Data<Services>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("services are not configured".into()))
}

/// The signed-in user, from a valid bearer access token.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub claims: AccessClaims,
}

impl CurrentUser {
    pub fn id(&self) -> UserId {
        self.claims.user_id()
    }

    /// The session family the token belongs to.
    pub fn session_family(&self) -> SessionFamilyId {
        self.claims.session_family()
    }
}

fn authenticate(request: &HttpRequest, services: &Services) -> Result<CurrentUser, ApiError> {
    let token = bearer(request).ok_or(ApiError::unauthorized())?;
    let claims = services
        .accounts
        .tokens()
        .verify(token)
        .map_err(|_| ApiError::unauthorized())?;
    Ok(CurrentUser { claims })
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(services(request).and_then(|services| authenticate(request, &services)))
    }
}

/// The caller as a principal of the active workspace: a signed-in user (any workspace
/// they belong to, by `X-Workspace-Id` or the token's), or an API key (its own workspace
/// only, with its scopes).
#[derive(Clone, Debug)]
pub struct ActiveWorkspace {
    /// `None` when an API key made the request.
    pub user: Option<CurrentUser>,
    pub principal: Principal,
}

/// The bearer token of the request, if any.
pub(crate) fn bearer(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
}

fn active_workspace_id(request: &HttpRequest, user: &CurrentUser) -> Result<WorkspaceId, ApiError> {
    match request.headers().get(WORKSPACE_HEADER) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<WorkspaceId>().ok())
            .ok_or_else(|| ApiError::invalid("X-Workspace-Id", "must be a workspace id (UUID)")),
        None => user.claims.workspace_id().ok_or_else(|| {
            ApiError::invalid("X-Workspace-Id", "no active workspace: send this header")
        }),
    }
}

/// Names the caller on the request's span (opened by `observe`): the workspace and
/// whether a user or an API key acts.
pub(crate) fn record_caller(principal: &Principal) {
    let span = tracing::Span::current();
    span.record(
        "workspace_id",
        tracing::field::display(principal.workspace_id()),
    );
    span.record(
        "principal_kind",
        match principal.actor() {
            fluxolab_kernel::Actor::User(_) => "user",
            fluxolab_kernel::Actor::ApiKey(_) => "api_key",
        },
    );
}

impl FromRequest for ActiveWorkspace {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(key) = bearer(request).filter(|token| token.starts_with(KEY_PREFIX)) {
            let key = key.to_owned();
            let named = request.headers().get(WORKSPACE_HEADER).map(|value| {
                value
                    .to_str()
                    .ok()
                    .and_then(|text| text.trim().parse::<WorkspaceId>().ok())
            });
            let services = services(request);
            let origin = crate::api_keys::origin(request);
            let request = request.clone();
            return Box::pin(async move {
                let services = services?;
                let principal = match services.api_keys.authenticate(&key, &origin).await {
                    Ok(principal) => principal,
                    Err(refusal) => {
                        if let Some(metrics) = request.app_data::<Data<crate::HttpMetrics>>() {
                            metrics.observe_key_refusal(refusal.code());
                        }
                        return Err(ApiError::unauthorized());
                    }
                };
                // For the audit of a 403 this key may earn (`api_keys::audit_scope_denials`).
                request
                    .extensions_mut()
                    .insert(crate::api_keys::KeyCaller(principal.clone()));
                // A key is bound to its workspace: naming another finds nothing there.
                if let Some(named) = named
                    && named != Some(principal.workspace_id())
                {
                    return Err(ApiError::NotFound("workspace"));
                }
                record_caller(&principal);
                Ok(ActiveWorkspace {
                    user: None,
                    principal,
                })
            });
        }
        let resolved = services(request).and_then(|services| {
            let user = authenticate(request, &services)?;
            let workspace = active_workspace_id(request, &user)?;
            Ok((services, user, workspace))
        });
        Box::pin(async move {
            let (services, user, workspace) = resolved?;
            // A workspace the caller does not belong to does not exist for them.
            let principal = services
                .workspaces
                .principal_for(user.id(), workspace)
                .await?
                .ok_or(ApiError::NotFound("workspace"))?;
            // A workspace that enforces SSO opens to password tokens of its owners only.
            if user.claims.auth_method == SignInMethod::Password
                && !services.sso.admits_password(workspace, user.id()).await?
            {
                return Err(ApiError::Refused {
                    code: crate::problem::ProblemCode::SsoRequired,
                    detail: "this workspace requires signing in with SSO".to_owned(),
                });
            }
            record_caller(&principal);
            Ok(ActiveWorkspace {
                user: Some(user),
                principal,
            })
        })
    }
}
