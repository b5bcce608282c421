//! The OpenAPI 3.1 document (every route of [`routes`] is in it, collected once through
//! `utoipa-actix-web`) and the browsable Swagger UI, whose assets are compiled into the
//! binary.

use actix_web::dev::HttpServiceFactory;
use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt, OpenApiFactory};

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{
    alerts, api_keys, auth, connectors, conversations, credentials, environments, executions,
    intake, integrations, ldap, log_destinations, mcp, openapi_complete, ops, problem, schedules,
    secret_providers, settings, sso, users, webhooks, workflows, workspace_settings, workspaces,
};

/// Declares the bearer scheme the `security(("bearer" = []))` routes refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FluxoLab API",
        description = "Multi-tenant workflow automation. Errors are RFC 9457 problem+json.",
    ),
    components(schemas(problem::Problem, problem::ProblemFieldError, problem::PlanLimitDetail)),
    modifiers(&BearerScheme),
    tags(
        (name = "ops", description = "Liveness, readiness, metrics and this document"),
        (name = "auth", description = "Accounts, tokens and sessions"),
        (name = "users", description = "The signed-in user's preferences and sessions"),
        (name = "workspaces", description = "The caller's workspaces"),
        (name = "members", description = "Members of the active workspace (`X-Workspace-Id`)"),
        (name = "activities", description = "The activity log of the active workspace"),
        (name = "workflows", description = "Workflows, versions and the node registry"),
        (name = "executions", description = "Running workflows: inline tests, the queue, executions and their steps"),
        (name = "credentials", description = "The encrypted credentials vault of the active workspace"),
        (name = "webhooks", description = "Webhook registrations, their events and replays"),
        (name = "webhook intake", description = "The public intake senders call (no bearer token: the URL and the signature authenticate)"),
        (name = "conversations", description = "WhatsApp conversations and the workspace overview"),
        (name = "api keys", description = "Scoped, rotatable, audited API keys"),
        (name = "environments", description = "Environments, their variables (secrets masked) and status"),
        (name = "settings", description = "Workspace settings: time zone, locale, internal networks, run defaults, notifications, branding"),
        (name = "plans", description = "The workspace's plan, billing history and usage against limits"),
        (name = "mcp", description = "The Model Context Protocol server (Streamable HTTP, JSON-RPC 2.0) for API keys: active `trigger.mcp` workflows as tools, workflows and executions as resources"),
    )
)]
struct ApiDoc;

/// The serialised document, served as is.
#[derive(Debug)]
pub struct OpenApiJson(pub String);

/// Where [`routes`] registers the handlers: utoipa's configuration, which also collects
/// each route's documentation (once, for [`document`]), or actix's own, for every HTTP
/// worker's app (each worker building the whole document again left ~15 MiB of freed
/// memory in that worker's allocator heap for the life of the process).
pub trait RouteRegistry {
    /// Registers one documented handler.
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static;
}

impl RouteRegistry for ServiceConfig<'_> {
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static,
    {
        ServiceConfig::service(self, factory)
    }
}

impl RouteRegistry for actix_web::web::ServiceConfig {
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static,
    {
        actix_web::web::ServiceConfig::service(self, factory)
    }
}

/// Registers every documented route. The router tries them in this order, so the
/// intake, which takes the most requests, comes first.
pub fn routes<R: RouteRegistry>(config: &mut R) {
    config
        .service(intake::deliver)
        .service(intake::handshake)
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(openapi_json)
        .service(auth::register)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(auth::me)
        .service(auth::change_password)
        .service(sso::start_sso)
        .service(sso::sso_callback)
        .service(sso::sso_exchange)
        .service(users::get_settings)
        .service(users::put_settings)
        .service(users::security)
        .service(users::revoke_session)
        .service(workspaces::list_workspaces)
        .service(workspaces::create_workspace)
        .service(workspaces::get_workspace)
        .service(workspaces::update_workspace)
        .service(workspaces::set_default_workspace)
        .service(workspaces::list_members)
        .service(workspaces::add_member)
        .service(workspaces::leave_workspace)
        .service(workspaces::change_member_role)
        .service(workspaces::remove_member)
        .service(workspaces::list_activities)
        .service(credentials::credential_types)
        .service(credentials::list_credentials)
        .service(credentials::create_credential)
        .service(credentials::get_credential)
        .service(credentials::update_credential)
        .service(credentials::delete_credential)
        .service(credentials::test_credential)
        .service(credentials::rotate_data_key)
        // After the credential routes: `/api/workflows/{id}` would match `credentials`.
        .service(workflows::node_types)
        .service(workflows::list_workflows)
        .service(workflows::create_workflow)
        .service(workflows::get_workflow)
        .service(workflows::update_workflow)
        .service(workflows::archive_workflow)
        .service(workflows::promote_workflow)
        .service(workflows::list_versions)
        .service(workflows::create_version)
        .service(workflows::activate_workflow)
        .service(workflows::deactivate_workflow)
        .service(schedules::workflow_schedule)
        .service(executions::test_workflow)
        .service(executions::run_workflow)
        .service(executions::list_executions)
        .service(executions::get_execution)
        .service(executions::retry_execution)
        .service(executions::cancel_execution)
        .service(webhooks::list_webhooks)
        .service(webhooks::create_webhook)
        .service(webhooks::get_webhook)
        .service(webhooks::update_webhook)
        .service(webhooks::delete_webhook)
        .service(webhooks::list_webhook_events)
        .service(webhooks::get_webhook_event)
        .service(webhooks::replay_webhook_event)
        .service(webhooks::list_workspace_events)
        .service(webhooks::get_workspace_event)
        .service(webhooks::replay_workspace_event)
        .service(conversations::list_conversations)
        .service(conversations::list_messages)
        .service(conversations::workspace_overview)
        .service(settings::get_plan)
        .service(settings::change_plan)
        .service(settings::billing_history)
        .service(api_keys::list_keys)
        .service(api_keys::create_key)
        .service(api_keys::revoke_key)
        .service(api_keys::rotate_key)
        .service(api_keys::key_audit)
        .service(environments::list_environments)
        .service(environments::get_environment)
        .service(environments::update_environment)
        .service(environments::environment_status)
        .service(alerts::list_alerts)
        .service(alerts::create_alert)
        .service(alerts::update_alert)
        .service(alerts::delete_alert)
        .service(alerts::list_alert_events)
        .service(alerts::rotate_alert_secret)
        .service(settings::usage_history)
        .service(settings::get_usage)
        .service(settings::summary)
        .service(workspace_settings::get_workspace_settings)
        .service(workspace_settings::update_workspace_settings)
        .service(workspace_settings::rotate_failure_webhook_secret)
        .service(integrations::integrations_status)
        .service(integrations::integration_events)
        .service(secret_providers::list_secret_providers)
        .service(secret_providers::create_secret_provider)
        .service(secret_providers::get_secret_provider)
        .service(secret_providers::update_secret_provider)
        .service(secret_providers::delete_secret_provider)
        .service(secret_providers::test_secret_provider)
        .service(log_destinations::list_log_destinations)
        .service(log_destinations::create_log_destination)
        .service(log_destinations::get_log_destination)
        .service(log_destinations::update_log_destination)
        .service(log_destinations::delete_log_destination)
        .service(log_destinations::test_log_destination)
        .service(log_destinations::rotate_log_destination_secret)
        .service(log_destinations::list_log_deliveries)
        .service(ldap::get_ldap)
        .service(ldap::put_ldap)
        .service(ldap::delete_ldap)
        .service(ldap::test_ldap)
        .service(ldap::sync_ldap)
        .service(ldap::ldap_login)
        .service(sso::get_sso)
        .service(sso::configure_sso)
        .service(sso::test_sso)
        .service(sso::delete_sso)
        .service(connectors::list_connectors)
        .service(connectors::install_connector)
        .service(connectors::get_connector)
        .service(connectors::update_connector)
        .service(connectors::delete_connector)
        .service(mcp::post_mcp)
        .service(mcp::get_mcp)
        .service(mcp::delete_mcp);
}

/// The OpenAPI document of every route in [`routes`], with the error responses every
/// operation can give and the links between operations added
/// ([`openapi_complete::complete`]).
///
/// JSON rather than utoipa's types: those cannot hold every JSON Schema keyword the
/// completion adds (`if`/`then`, `propertyNames`…).
pub fn document() -> Result<serde_json::Value, serde_json::Error> {
    let generated = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(|config| routes(config))
        .split_for_parts()
        .1;
    let mut value = serde_json::to_value(&generated)?;
    openapi_complete::complete(&mut value);
    Ok(value)
}

/// This document.
#[utoipa::path(tag = "ops", responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
#[get("/api/openapi.json")]
pub async fn openapi_json(document: Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}
