//! The HTTP layer's contract, exercised through the real app configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, test, web};
use async_trait::async_trait;
use fluxolab_http::problem::PROBLEM_JSON;
use fluxolab_http::{ApiError, ApiState, DatabaseProbe, PoolStatus, Problem, configure_app};
use serde_json::Value;

mod console;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BODY_LIMIT: usize = 1024;

/// A database probe whose readiness the test controls.
#[derive(Default)]
struct StubProbe {
    down: AtomicBool,
}

#[async_trait]
impl DatabaseProbe for StubProbe {
    async fn readiness(&self) -> Result<(), String> {
        if self.down.load(Ordering::SeqCst) {
            Err("database unreachable: connection refused".into())
        } else {
            Ok(())
        }
    }

    async fn queue_status(&self) -> Option<fluxolab_http::QueueStatus> {
        None
    }

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            max_size: 8,
            size: 2,
            available: 1,
            waiting: 0,
        }
    }
}

async fn echo(body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

async fn explode() -> Result<HttpResponse, ApiError> {
    Err(ApiError::Internal("secret connection string leaked".into()))
}

async fn app(
    probe: Arc<StubProbe>,
) -> Result<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    serde_json::Error,
> {
    let state = ApiState::new(probe)?;
    Ok(test::init_service(
        configure_app(state, BODY_LIMIT)
            .route("/test/echo", web::post().to(echo))
            .route("/test/explode", web::get().to(explode))
            .service(web::resource("/test/resource").route(web::get().to(HttpResponse::Ok))),
    )
    .await)
}

fn content_type(response: &ServiceResponse<impl MessageBody>) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .expect("a content-type header")
        .to_owned()
}

async fn problem_of(
    response: ServiceResponse<impl MessageBody>,
) -> Result<(StatusCode, Problem), Box<dyn std::error::Error>> {
    let status = response.status();
    assert_eq!(content_type(&response), PROBLEM_JSON);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let problem: Problem = serde_json::from_slice(&test::read_body(response).await)?;
    assert_eq!(
        problem.request_id, request_id,
        "problem and header name the same request"
    );
    assert!(problem.request_id.is_some());
    Ok((status, problem))
}

#[actix_web::test]
async fn an_unknown_route_is_a_404_problem() -> TestResult {
    let app = app(Arc::default()).await?;
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/api/nope").to_request()).await;
    let (status, problem) = problem_of(response).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem.code, "not_found");
    Ok(())
}

#[actix_web::test]
async fn actix_own_empty_405_becomes_a_problem() -> TestResult {
    let app = app(Arc::default()).await?;
    let response = test::call_service(
        &app,
        test::TestRequest::delete()
            .uri("/test/resource")
            .to_request(),
    )
    .await;
    let (status, problem) = problem_of(response).await?;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(problem.code, "method_not_allowed");
    Ok(())
}

#[actix_web::test]
async fn a_wrong_method_on_a_route_is_a_405_problem_naming_the_allowed_ones() -> TestResult {
    let app = app(Arc::default()).await?;
    let response = test::call_service(
        &app,
        test::TestRequest::put().uri("/api/workflows").to_request(),
    )
    .await;
    let allow = response
        .headers()
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (status, problem) = problem_of(response).await?;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(problem.code, "method_not_allowed");
    assert_eq!(allow.as_deref(), Some("GET, POST"));

    let response = test::call_service(
        &app,
        test::TestRequest::delete()
            .uri("/api/workflows/0190a2e4-0000-7000-8000-000000000001/versions")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().get("allow").is_some());
    Ok(())
}

#[actix_web::test]
async fn malformed_json_is_a_400_problem_that_says_where() -> TestResult {
    let app = app(Arc::default()).await?;
    let request = test::TestRequest::post()
        .uri("/test/echo")
        .insert_header((CONTENT_TYPE, "application/json"))
        .set_payload(r#"{"name": "unterminated"#)
        .to_request();
    let (status, problem) = problem_of(test::call_service(&app, request).await).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem.code, "invalid_json");
    assert!(
        problem
            .detail
            .is_some_and(|detail| detail.contains("line 1"))
    );
    Ok(())
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_a_415_problem() -> TestResult {
    let app = app(Arc::default()).await?;
    let request = test::TestRequest::post()
        .uri("/test/echo")
        .insert_header((CONTENT_TYPE, "text/plain"))
        .set_payload("{}")
        .to_request();
    let (status, problem) = problem_of(test::call_service(&app, request).await).await?;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(problem.code, "unsupported_media_type");
    Ok(())
}

#[actix_web::test]
async fn an_oversize_body_is_a_413_problem_naming_the_limit() -> TestResult {
    let app = app(Arc::default()).await?;
    let big = format!(r#"{{"padding": "{}"}}"#, "x".repeat(BODY_LIMIT * 2));
    let request = test::TestRequest::post()
        .uri("/test/echo")
        .insert_header((CONTENT_TYPE, "application/json"))
        .set_payload(big)
        .to_request();
    let (status, problem) = problem_of(test::call_service(&app, request).await).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem.code, "payload_too_large");
    assert!(
        problem
            .detail
            .is_some_and(|detail| detail.contains("1024-byte"))
    );
    Ok(())
}

#[actix_web::test]
async fn a_500_is_opaque_but_names_the_request() -> TestResult {
    let app = app(Arc::default()).await?;
    let response = test::call_service(
        &app,
        test::TestRequest::get().uri("/test/explode").to_request(),
    )
    .await;
    let (status, problem) = problem_of(response).await?;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(problem.code, "internal_error");
    assert!(!serde_json::to_string(&problem)?.contains("secret"));
    Ok(())
}

#[actix_web::test]
async fn a_well_formed_incoming_request_id_is_kept_and_a_bad_one_replaced() -> TestResult {
    let app = app(Arc::default()).await?;
    let kept = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/healthz")
            .insert_header(("x-request-id", "trace-abc.123"))
            .to_request(),
    )
    .await;
    assert_eq!(
        kept.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"trace-abc.123"[..])
    );

    let replaced = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/healthz")
            .insert_header(("x-request-id", "bad id with spaces"))
            .to_request(),
    )
    .await;
    let id = replaced
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .ok_or("no x-request-id header")?;
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "expected a generated id, got {id:?}"
    );
    Ok(())
}

#[actix_web::test]
async fn readiness_follows_the_database() -> TestResult {
    let probe = Arc::new(StubProbe::default());
    let app = app(probe.clone()).await?;
    let ready =
        test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(ready.status(), StatusCode::OK);

    probe.down.store(true, Ordering::SeqCst);
    let (status, problem) = problem_of(
        test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await,
    )
    .await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem.code, "not_ready");
    assert_eq!(
        problem.detail.as_deref(),
        Some("not ready: database unreachable: connection refused")
    );
    Ok(())
}

#[actix_web::test]
async fn metrics_count_requests_by_route_template() -> TestResult {
    let app = app(Arc::default()).await?;
    for _ in 0..3 {
        test::call_service(&app, test::TestRequest::get().uri("/healthz").to_request()).await;
    }
    test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/no/such/thing")
            .to_request(),
    )
    .await;
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(test::read_body(response).await.to_vec())?;
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"http_request_duration_seconds_bucket{"#));
    assert!(text.contains(r#"db_pool_connections{state="idle"} 1"#));
    assert!(text.contains("db_pool_max_connections 8"));
    Ok(())
}

#[actix_web::test]
async fn the_openapi_document_lists_every_route() -> TestResult {
    let app = app(Arc::default()).await?;
    let document: Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/api/openapi.json")
            .to_request(),
    )
    .await;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    for path in ["/healthz", "/readyz", "/metrics", "/api/openapi.json"] {
        assert!(
            document["paths"][path]["get"].is_object(),
            "{path} is missing"
        );
    }
    assert!(document["components"]["schemas"]["Problem"].is_object());
    Ok(())
}

#[actix_web::test]
async fn the_api_browser_is_served_from_the_binary() -> TestResult {
    let app = app(Arc::default()).await?;
    let page = test::call_service(
        &app,
        test::TestRequest::get().uri("/api/docs/").to_request(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = String::from_utf8(test::read_body(page).await.to_vec())?;
    assert!(html.contains("swagger-ui"));
    assert!(
        !html.contains("https://"),
        "the page must not load anything from the internet"
    );
    let script = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/docs/swagger-ui-bundle.js")
            .to_request(),
    )
    .await;
    assert_eq!(script.status(), StatusCode::OK);
    Ok(())
}
