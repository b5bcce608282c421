//! The OpenAPI 3.1 document (every route registered through `utoipa-actix-web` is in it)
//! and the browsable Swagger UI, whose assets are compiled into the binary.

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{ops, problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FluxoLab API",
        description = "Multi-tenant workflow automation. Errors are RFC 9457 problem+json.",
    ),
    components(schemas(problem::Problem, problem::ProblemFieldError)),
    tags(
        (name = "ops", description = "Liveness, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

/// The serialised document, served as is.
#[derive(Debug)]
pub struct OpenApiJson(pub String);

/// Registers every documented route.
pub fn routes(config: &mut ServiceConfig) {
    config
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(openapi_json);
}

/// The OpenAPI document of every route in [`routes`].
pub fn document() -> utoipa::openapi::OpenApi {
    actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts()
        .1
}

/// This document.
#[utoipa::path(tag = "ops", responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
#[get("/api/openapi.json")]
pub async fn openapi_json(document: Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}
