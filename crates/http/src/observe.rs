//! The middleware every request passes through: it assigns the request id, opens the
//! request's tracing span, records metrics, and makes sure every error leaves as
//! problem+json carrying the request id.

use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpMessage, HttpResponse};
use tracing::Instrument;
use tracing::field::Empty;

use crate::HttpMetrics;
use crate::metrics::RequestLabels;
use crate::problem::{PROBLEM_JSON, Problem};

/// The header carrying the request id, in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Error bodies larger than this are not rewritten (none of ours comes close).
const MAX_PROBLEM_BYTES: u64 = 64 * 1024;

/// The id of the current request, in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// An incoming id is honoured when it is 1–128 characters of `[A-Za-z0-9._-]`.
fn well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

fn request_id_of(request: &ServiceRequest) -> String {
    request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| well_formed(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// The middleware function; wrap the app with `from_fn(observe)`.
pub async fn observe(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let method = request.method().to_string();
    if request.method() == Method::HEAD {
        // `HEAD` works wherever `GET` does: routed as `GET`; the connection still knows
        // it was `HEAD` and sends the headers without the body.
        request.head_mut().method = Method::GET;
    }
    let request_id = request_id_of(&request);
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let metrics = request.app_data::<Data<HttpMetrics>>().cloned();
    // The route template, resolved up front: the span's name must be known before the span
    // is first entered (OpenTelemetry fixes it then), and raw paths would explode metrics.
    // The web console's pages (any other `GET`) are one route, `console`.
    let route = request
        .resource_map()
        .match_pattern(request.path())
        .unwrap_or_else(|| {
            if request.method() == Method::GET && !crate::console::is_reserved(request.path()) {
                "console".to_owned()
            } else {
                "unmatched".to_owned()
            }
        });
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        url.path = %request.path(),
        http.route = %route,
        http.response.status_code = Empty,
        request_id = %request_id,
        latency_ms = Empty,
        workspace_id = Empty,
        principal_kind = Empty,
    );

    // Handlers' errors arrive as error responses; only a middleware inside this one could
    // fail the call itself, and there is none (cloning the request to answer such an error
    // here would break actix's routing, which needs the request uniquely owned).
    let response = next
        .call(request)
        .instrument(span.clone())
        .await?
        .map_into_boxed_body();

    let mut response = finish_errors(response, &request_id).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }

    let status = response.status();
    let elapsed = started.elapsed();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), "request answered");
        }
    });
    if let Some(metrics) = metrics {
        metrics.observe_request(
            &RequestLabels {
                method,
                route,
                status: status.as_u16(),
            },
            elapsed.as_secs_f64(),
        );
    }
    Ok(response)
}

fn is_json(response: &ServiceResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

fn is_problem(response: &ServiceResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_JSON))
}

/// Makes every error response a problem document that names the request id: actix's own
/// errors (unknown route, wrong method, …) get the generic problem for their status, a
/// 500 becomes opaque whatever it said (its cause is logged), and our own problems keep
/// their content. The MCP endpoint's JSON-RPC errors stay as they are.
async fn finish_errors(
    response: ServiceResponse<BoxBody>,
    request_id: &str,
) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    if let Some(error) = response.response().error()
        && status.is_server_error()
    {
        tracing::error!(error = %error, cause = ?error, "request failed");
    }
    // The MCP transport's refusals are JSON-RPC errors, the body its clients read.
    if response.request().path() == crate::mcp::PATH && is_json(&response) {
        return response;
    }
    let ours = is_problem(&response);
    let (request, response) = response.into_parts();
    let headers = response.headers().clone();
    let body = response.into_body();

    let mut problem = if status == StatusCode::INTERNAL_SERVER_ERROR || !ours {
        Problem::for_status(status)
    } else {
        read_problem(body)
            .await
            .unwrap_or_else(|| Problem::for_status(status))
    };
    problem.request_id = Some(request_id.to_owned());

    let mut rebuilt: HttpResponse = problem.into_response();
    for (name, value) in &headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(request, rebuilt)
}

async fn read_problem(body: BoxBody) -> Option<Problem> {
    let small = matches!(body.size(), BodySize::Sized(size) if size <= MAX_PROBLEM_BYTES);
    if !small {
        return None;
    }
    let bytes = to_bytes(body).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_incoming_ids_are_honoured() {
        assert!(well_formed("abc-123_DEF.4"));
        assert!(!well_formed(""));
        assert!(!well_formed("has space"));
        assert!(!well_formed("line\nbreak"));
        assert!(!well_formed(&"x".repeat(129)));
    }
}
