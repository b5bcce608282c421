use fluxolab_postgres::migrations::{self, run_off_runtime};
use serde_json::Value;

use crate::TestResult;
use crate::helpers::{Fields, TestApp};

#[tokio::test]
async fn liveness_and_readiness_answer_200_on_a_migrated_database() -> TestResult {
    let app = TestApp::spawn().await?;
    let health = app.get("/healthz").await?;
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").await?;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await?["status"], "ready");
    Ok(())
}

#[tokio::test]
async fn readiness_is_503_with_the_reason_while_a_migration_is_pending() -> TestResult {
    let app = TestApp::spawn().await?;
    let url = app.db.url().to_owned();
    run_off_runtime(move || migrations::revert(&url, 1)).await?;

    let response = app.get("/readyz").await?;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await?;
    assert_eq!(problem["code"], "not_ready");
    let detail = problem.text("detail")?;
    assert!(detail.contains("1 pending migration"), "{detail}");
    Ok(())
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() -> TestResult {
    let app = TestApp::spawn_with(&[("DATABASE_ACQUIRE_TIMEOUT_SECONDS", "1")]).await?;
    let name = app.db.name().to_owned();
    // Drop the database under the running server.
    let admin = std::env::var("TEST_DATABASE_URL")?;
    if admin.is_empty() {
        return Ok(());
    }
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut connection = diesel_async::AsyncPgConnection::establish(&admin).await?;
    diesel::sql_query(format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#))
        .execute(&mut connection)
        .await?;
    let response = app.get("/readyz").await?;
    assert_eq!(response.status(), 503);
    let problem: Value = response.json().await?;
    assert!(
        &problem.text("detail")?.contains("database unreachable"),
        "{problem}"
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_route_is_a_problem_over_real_http() -> TestResult {
    let app = TestApp::spawn().await?;
    let response = app.get("/api/definitely-not-here").await?;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let request_id = response.headers()["x-request-id"].to_str()?.to_owned();
    let problem: Value = response.json().await?;
    assert_eq!(problem["code"], "not_found");
    assert_eq!(problem["request_id"], request_id.as_str());
    Ok(())
}

#[tokio::test]
async fn metrics_expose_request_counters_and_pool_gauges() -> TestResult {
    let app = TestApp::spawn().await?;
    app.get("/readyz").await?;
    let text = app.get("/metrics").await?.text().await?;
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/readyz",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("db_pool_max_connections 4"), "{text}");
    assert!(
        text.contains(r#"db_pool_connections{state="idle"}"#),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn the_openapi_document_is_served() -> TestResult {
    let app = TestApp::spawn().await?;
    let document: Value = app.get("/api/openapi.json").await?.json().await?;
    assert_eq!(document["info"]["title"], "FluxoLab API");
    let expected = [
        ("get", "/readyz"),
        ("post", "/api/auth/register"),
        ("post", "/api/auth/login"),
        ("post", "/api/auth/refresh"),
        ("post", "/api/auth/logout"),
        ("get", "/api/auth/me"),
        ("post", "/api/auth/password"),
        ("get", "/api/users/me/settings"),
        ("put", "/api/users/me/settings"),
        ("get", "/api/users/me/security"),
        ("delete", "/api/users/me/sessions/{id}"),
        ("get", "/api/workspaces"),
        ("post", "/api/workspaces"),
        ("get", "/api/workspaces/{id}"),
        ("patch", "/api/workspaces/{id}"),
        ("post", "/api/workspaces/{id}/default"),
        ("get", "/api/workspace/members"),
        ("post", "/api/workspace/members"),
        ("patch", "/api/workspace/members/{user_id}"),
        ("delete", "/api/workspace/members/{user_id}"),
        ("post", "/api/workspace/members/leave"),
        ("get", "/api/workspace/activities"),
        ("get", "/api/workflows/credentials/types"),
        ("get", "/api/workflows/credentials"),
        ("post", "/api/workflows/credentials"),
        ("get", "/api/workflows/credentials/{id}"),
        ("patch", "/api/workflows/credentials/{id}"),
        ("delete", "/api/workflows/credentials/{id}"),
        ("post", "/api/workflows/credentials/{id}/test"),
        ("post", "/api/settings/security/rotate-data-key"),
        ("get", "/api/workflows/nodes"),
        ("get", "/api/workflows"),
        ("post", "/api/workflows"),
        ("get", "/api/workflows/{id}"),
        ("patch", "/api/workflows/{id}"),
        ("delete", "/api/workflows/{id}"),
        ("get", "/api/workflows/{id}/versions"),
        ("post", "/api/workflows/{id}/versions"),
        ("post", "/api/workflows/{id}/activate"),
        ("post", "/api/workflows/{id}/deactivate"),
    ];
    for (method, path) in expected {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    Ok(())
}

#[tokio::test]
async fn head_answers_where_get_does_without_a_body_and_a_wrong_method_is_405() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    let got = app.get("/api/openapi.json").await?;
    let length = got.headers()["content-length"].to_str()?.to_owned();
    let head = app.client.head(app.url("/api/openapi.json")).send().await?;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"].to_str()?, length);
    assert!(head.bytes().await?.is_empty());
    assert_eq!(
        app.client.head(app.url("/healthz")).send().await?.status(),
        200
    );

    let wrong = app.client.put(app.url("/api/workflows")).send().await?;
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["allow"].to_str()?, "GET, POST");
    let problem: Value = wrong.json().await?;
    assert_eq!(problem["code"], "method_not_allowed");
    Ok(())
}
