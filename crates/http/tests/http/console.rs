//! The web console's serving rules (`fluxolab_http::console`), through the real app
//! configuration with a small fake build.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::test;
use fluxolab_http::console::{
    CONTENT_SECURITY_POLICY, ConsoleFile, ConsoleFiles, IMMUTABLE, NO_CACHE,
};
use fluxolab_http::{ApiState, configure_app};

use super::{BODY_LIMIT, StubProbe, TestResult, problem_of};

const INDEX: &str = "<!doctype html><title>console</title><script type=\"module\" src=\"/assets/index-abc123.js\"></script>";
const SCRIPT: &str = "console.log('hello')";
/// Stand-ins for the gzipped copies the build writes (the server never reads them).
const SCRIPT_GZ: &str = "gzipped script";
const INDEX_GZ: &str = "gzipped page";

/// A build of three files, as `vite build` lays them out, and the gzipped copies
/// `console/scripts/precompress.mjs` adds (none for the icon).
#[derive(Debug)]
struct FakeBuild(HashMap<&'static str, ConsoleFile>);

impl FakeBuild {
    fn new() -> Self {
        let file = |body: &'static str, content_type: &str, etag: &str| ConsoleFile {
            body: Cow::Borrowed(body.as_bytes()),
            content_type: content_type.to_owned(),
            etag: etag.to_owned(),
        };
        Self(HashMap::from([
            (
                "index.html",
                file(INDEX, "text/html; charset=utf-8", "index-hash"),
            ),
            (
                "assets/index-abc123.js",
                file(SCRIPT, "text/javascript; charset=utf-8", "script-hash"),
            ),
            ("favicon.svg", file("<svg/>", "image/svg+xml", "icon-hash")),
            (
                "index.html.gz",
                file(INDEX_GZ, "application/gzip", "index-gz-hash"),
            ),
            (
                "assets/index-abc123.js.gz",
                file(SCRIPT_GZ, "application/gzip", "script-gz-hash"),
            ),
        ]))
    }
}

impl ConsoleFiles for FakeBuild {
    fn get(&self, path: &str) -> Option<ConsoleFile> {
        self.0.get(path).cloned()
    }
}

async fn app_with(
    console: Option<Arc<dyn ConsoleFiles>>,
) -> Result<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    serde_json::Error,
> {
    let mut state = ApiState::new(Arc::new(StubProbe::default()))?;
    if let Some(console) = console {
        state = state.with_console(console);
    }
    Ok(test::init_service(configure_app(state, BODY_LIMIT)).await)
}

async fn built_app() -> Result<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    serde_json::Error,
> {
    app_with(Some(Arc::new(FakeBuild::new()))).await
}

fn header<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

fn assert_strict_csp(headers: &HeaderMap) {
    let csp = header(headers, &header::CONTENT_SECURITY_POLICY);
    assert_eq!(csp, CONTENT_SECURITY_POLICY);
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(headers, &header::X_CONTENT_TYPE_OPTIONS), "nosniff");
}

async fn get(
    app: &impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    uri: &str,
) -> ServiceResponse<impl MessageBody> {
    test::call_service(app, test::TestRequest::get().uri(uri).to_request()).await
}

#[actix_web::test]
async fn the_root_serves_the_console_page_uncached_under_a_strict_csp() -> TestResult {
    let app = built_app().await?;
    let response = get(&app, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        header(&headers, &header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header(&headers, &header::CACHE_CONTROL), NO_CACHE);
    assert_eq!(header(&headers, &header::ETAG), "\"index-hash\"");
    assert_strict_csp(&headers);
    assert_eq!(test::read_body(response).await, INDEX.as_bytes());
    Ok(())
}

#[actix_web::test]
async fn client_side_routes_answer_the_console_page() -> TestResult {
    let app = built_app().await?;
    for path in [
        "/workflows",
        "/workflows/0193c7a2-0000-7000-8000-000000000000",
        "/settings/api-keys?tab=x",
        "/apis",
        "/healthz/extra",
    ] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_strict_csp(response.headers());
        assert_eq!(test::read_body(response).await, INDEX.as_bytes(), "{path}");
    }
    Ok(())
}

#[actix_web::test]
async fn hashed_assets_are_cached_for_a_year_and_other_files_revalidated() -> TestResult {
    let app = built_app().await?;
    let script = get(&app, "/assets/index-abc123.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(header(script.headers(), &header::CACHE_CONTROL), IMMUTABLE);
    assert_eq!(
        header(script.headers(), &header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_strict_csp(script.headers());
    assert_eq!(test::read_body(script).await, SCRIPT.as_bytes());

    let icon = get(&app, "/favicon.svg").await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(header(icon.headers(), &header::CACHE_CONTROL), NO_CACHE);
    assert_eq!(
        header(icon.headers(), &header::CONTENT_TYPE),
        "image/svg+xml"
    );
    Ok(())
}

async fn get_accepting(
    app: &impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    uri: &str,
    accept_encoding: &str,
) -> ServiceResponse<impl MessageBody> {
    test::call_service(
        app,
        test::TestRequest::get()
            .uri(uri)
            .insert_header((header::ACCEPT_ENCODING, accept_encoding))
            .to_request(),
    )
    .await
}

#[actix_web::test]
async fn a_file_the_build_gzipped_is_answered_gzipped_to_whoever_accepts_gzip() -> TestResult {
    let app = built_app().await?;
    let script = get_accepting(&app, "/assets/index-abc123.js", "br, gzip;q=0.8").await;
    assert_eq!(script.status(), StatusCode::OK);
    let headers = script.headers().clone();
    assert_eq!(header(&headers, &header::CONTENT_ENCODING), "gzip");
    assert_eq!(header(&headers, &header::VARY), "accept-encoding");
    // The file's own type and caching, the copy's own validator.
    assert_eq!(
        header(&headers, &header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&headers, &header::CACHE_CONTROL), IMMUTABLE);
    assert_eq!(header(&headers, &header::ETAG), "\"script-gz-hash\"");
    assert_strict_csp(&headers);
    assert_eq!(test::read_body(script).await, SCRIPT_GZ.as_bytes());

    // The console's page, at a client-side route, too.
    let page = get_accepting(&app, "/workflows", "gzip, deflate").await;
    assert_eq!(header(page.headers(), &header::CONTENT_ENCODING), "gzip");
    assert_eq!(
        header(page.headers(), &header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(test::read_body(page).await, INDEX_GZ.as_bytes());

    // Not accepted (left out, refused with q=0, another coding): the file as it is,
    // still varying by the header.
    for accept_encoding in ["identity", "gzip;q=0", "br", "xgzip"] {
        let plain = get_accepting(&app, "/assets/index-abc123.js", accept_encoding).await;
        assert_eq!(
            header(plain.headers(), &header::CONTENT_ENCODING),
            "",
            "{accept_encoding}"
        );
        assert_eq!(header(plain.headers(), &header::VARY), "accept-encoding");
        assert_eq!(header(plain.headers(), &header::ETAG), "\"script-hash\"");
        assert_eq!(test::read_body(plain).await, SCRIPT.as_bytes());
    }
    let plain = get(&app, "/assets/index-abc123.js").await;
    assert_eq!(header(plain.headers(), &header::CONTENT_ENCODING), "");

    // A file without a gzipped copy, and the API's own answers, are not encoded.
    let icon = get_accepting(&app, "/favicon.svg", "gzip").await;
    assert_eq!(header(icon.headers(), &header::CONTENT_ENCODING), "");
    assert_eq!(header(icon.headers(), &header::VARY), "");
    for path in ["/healthz", "/api/no-such-route"] {
        let api = get_accepting(&app, path, "gzip").await;
        assert_eq!(
            header(api.headers(), &header::CONTENT_ENCODING),
            "",
            "{path}"
        );
    }
    Ok(())
}

#[actix_web::test]
async fn a_missing_asset_is_a_404_problem_not_the_page() -> TestResult {
    let app = built_app().await?;
    let (status, problem) = problem_of(get(&app, "/assets/index-old999.js").await).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem.code, "not_found");
    Ok(())
}

#[actix_web::test]
async fn an_unchanged_file_answers_304() -> TestResult {
    let app = built_app().await?;
    let response = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/assets/index-abc123.js")
            .insert_header((header::IF_NONE_MATCH, "\"other\", \"script-hash\""))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(response.headers(), &header::ETAG), "\"script-hash\"");
    assert!(test::read_body(response).await.is_empty());
    Ok(())
}

#[actix_web::test]
async fn head_answers_the_page_headers() -> TestResult {
    let app = built_app().await?;
    let response = test::call_service(
        &app,
        test::TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri("/workflows")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_strict_csp(response.headers());
    Ok(())
}

#[actix_web::test]
async fn the_console_never_shadows_the_api_or_the_ops_routes() -> TestResult {
    let app = built_app().await?;
    for path in ["/api", "/api/", "/api/nope", "/api/workflows/x/y/z"] {
        let (status, problem) = problem_of(get(&app, path).await).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(problem.code, "not_found", "{path}");
    }
    let health = get(&app, "/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        health
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .is_none()
    );
    let health: serde_json::Value = serde_json::from_slice(&test::read_body(health).await)?;
    assert_eq!(health["status"], "ok");
    let ready = get(&app, "/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let metrics = get(&app, "/metrics").await;
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        header(metrics.headers(), &header::CONTENT_TYPE)
            .starts_with("application/openmetrics-text")
    );
    let document = get(&app, "/api/openapi.json").await;
    assert_eq!(
        header(document.headers(), &header::CONTENT_TYPE),
        "application/json"
    );
    // Another method on a console path is not the console's: 404 problem.
    let (status, _) = problem_of(
        test::call_service(
            &app,
            test::TestRequest::post().uri("/workflows").to_request(),
        )
        .await,
    )
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A wrong method on an API route keeps its 405.
    let (status, problem) = problem_of(
        test::call_service(
            &app,
            test::TestRequest::put().uri("/api/workflows").to_request(),
        )
        .await,
    )
    .await?;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(problem.code, "method_not_allowed");
    Ok(())
}

#[actix_web::test]
async fn console_pages_are_one_route_in_the_metrics() -> TestResult {
    let app = built_app().await?;
    get(&app, "/workflows/1").await;
    get(&app, "/executions").await;
    let text = String::from_utf8(test::read_body(get(&app, "/metrics").await).await.to_vec())?;
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="console",status="200"} 2"#),
        "{text}"
    );
    Ok(())
}

#[actix_web::test]
async fn without_a_built_console_the_root_says_how_to_build_it() -> TestResult {
    let app = app_with(None).await?;
    for path in ["/", "/workflows"] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(response.headers(), &header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_strict_csp(response.headers());
        let page = String::from_utf8(test::read_body(response).await.to_vec())?;
        assert!(page.contains("cargo xtask console"), "{page}");
        assert!(
            !page.contains("<script") && !page.contains("<style"),
            "{page}"
        );
    }
    let (status, _) = problem_of(get(&app, "/api/nope").await).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[actix_web::test]
async fn an_empty_build_counts_as_no_console() -> TestResult {
    #[derive(Debug)]
    struct Empty;
    impl ConsoleFiles for Empty {
        fn get(&self, _: &str) -> Option<ConsoleFile> {
            None
        }
    }
    let app = app_with(Some(Arc::new(Empty))).await?;
    let page = String::from_utf8(test::read_body(get(&app, "/").await).await.to_vec())?;
    assert!(page.contains("cargo xtask console"));
    Ok(())
}
