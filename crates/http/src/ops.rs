//! Ops routes: liveness, readiness and metrics.

use actix_web::http::header::ContentType;
use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::Problem;
use crate::{ApiError, ApiState};

/// The body of a healthy answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` for liveness, `ready` for readiness.
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(tag = "ops", responses((status = 200, description = "The process is alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(tag = "ops", responses(
    (status = 200, description = "Ready to serve", body = Health),
    (status = 503, description = "Not ready; `detail` says why", body = Problem, content_type = "application/problem+json"),
))]
#[get("/readyz")]
pub async fn readyz(state: Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state.probe.readiness().await.map_err(ApiError::NotReady)?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

/// Prometheus metrics (OpenMetrics text): request counts and latency histograms by route
/// template and status, and database pool gauges.
#[utoipa::path(tag = "ops", responses(
    (status = 200, description = "Metrics in the OpenMetrics text format", body = String, content_type = "application/openmetrics-text"),
))]
#[get("/metrics")]
pub async fn metrics(state: Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let queue = state.probe.queue_status().await;
    let text = state
        .metrics
        .render(state.probe.pool_status(), queue)
        .map_err(|error| ApiError::Internal(Box::new(error)))?;
    Ok(HttpResponse::Ok()
        .insert_header(ContentType(
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
                .parse()
                .map_err(|error| ApiError::Internal(Box::new(error)))?,
        ))
        .body(text))
}
