//! `POST /api/workflows/credentials/{id}/test` against real local servers, and the SSRF
//! guard in front of them.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp};

async fn protected(request: HttpRequest) -> HttpResponse {
    let expected = format!("Basic {}", STANDARD.encode("robot:right-password"));
    let given = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    if given == Some(expected.as_str()) {
        HttpResponse::Ok().finish()
    } else {
        HttpResponse::Unauthorized().finish()
    }
}

/// An HTTP server on loopback that wants `robot:right-password`.
fn protected_server() -> Result<String, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/protected", listener.local_addr()?);
    let server = HttpServer::new(|| App::new().route("/protected", web::get().to(protected)))
        .workers(1)
        .listen(listener)?
        .run();
    tokio::spawn(server);
    Ok(url)
}

async fn create(app: &TestApp, owner: &Account, body: Value) -> Result<String, Error> {
    let created: Value = app
        .send_as(
            Method::POST,
            &owner.access_token,
            "/api/workflows/credentials",
            Some(&owner.workspace_id),
            &body,
        )
        .await?
        .json()
        .await?;
    created.text("id")
}

async fn test(
    app: &TestApp,
    owner: &Account,
    id: &str,
    body: Value,
) -> Result<(u16, Value), Error> {
    let response = app
        .send_as(
            Method::POST,
            &owner.access_token,
            &format!("/api/workflows/credentials/{id}/test"),
            Some(&owner.workspace_id),
            &body,
        )
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

async fn allow_internal_targets(app: &TestApp) -> Result<(), Error> {
    use diesel_async::RunQueryDsl;
    diesel::sql_query("UPDATE workspace_settings SET allow_internal_network = true")
        .execute(&mut app.db.pool().get().await?)
        .await?;
    Ok(())
}

#[tokio::test]
async fn http_credentials_are_tested_behind_the_ssrf_guard() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("tester@example.com").await?;
    let url = protected_server()?;
    let right = create(
        &app,
        &owner,
        json!({"name": "Right", "kind": "http_basic",
        "data": {"username": "robot", "password": "right-password"}}),
    )
    .await?;
    let wrong = create(
        &app,
        &owner,
        json!({"name": "Wrong", "kind": "http_basic",
        "data": {"username": "robot", "password": "wrong-password"}}),
    )
    .await?;

    let (status, refused) = test(&app, &owner, &right, json!({"url": url})).await?;
    assert_eq!(status, 200);
    assert_eq!(refused["ok"], false);
    assert!(refused.text("message")?.contains("internal"), "{refused}");
    let (_, metadata) = test(
        &app,
        &owner,
        &right,
        json!({"url": "http://169.254.169.254/latest/meta-data"}),
    )
    .await?;
    assert_eq!(metadata["ok"], false);

    allow_internal_targets(&app).await?;
    let (_, passed) = test(&app, &owner, &right, json!({"url": url})).await?;
    assert_eq!(passed, json!({"ok": true, "message": "HTTP 200 OK"}));
    let (_, failed) = test(&app, &owner, &wrong, json!({"url": url})).await?;
    assert_eq!(
        failed,
        json!({"ok": false, "message": "HTTP 401 Unauthorized"})
    );

    let (status, problem) = test(&app, &owner, &right, json!({})).await?;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("url"))
    );
    let (status, _) = test(&app, &owner, &right, json!({"url": "ftp://example.com"})).await?;
    assert_eq!(status, 422);
    let meta = create(&app, &owner, json!({"name": "Meta", "kind": "meta_app",
        "data": {"app_secret": "a-secret-value", "access_token": "an-access-token", "verify_token": "verify-me"}})).await?;
    let (status, problem) = test(&app, &owner, &meta, json!({})).await?;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("kind"))
    );
    Ok(())
}

#[tokio::test]
async fn smtp_credentials_log_in_to_the_server() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("mailer@example.com").await?;
    allow_internal_targets(&app).await?;
    let port = crate::helpers::fake_smtp(std::sync::Arc::default()).await?;
    let smtp = |password: &str| {
        json!({"name": format!("SMTP {password}"), "kind": "smtp", "data": {
            "host": "127.0.0.1", "port": port, "username": "mailer", "password": password, "tls_mode": "none"}})
    };
    let good = create(&app, &owner, smtp("smtp-password")).await?;
    let bad = create(&app, &owner, smtp("not-the-password")).await?;
    let (status, passed) = test(&app, &owner, &good, json!({})).await?;
    assert_eq!(status, 200);
    assert_eq!(passed["ok"], true, "{passed}");
    let (_, failed) = test(&app, &owner, &bad, json!({})).await?;
    assert_eq!(failed["ok"], false, "{failed}");
    assert!(failed.text("message")?.contains("SMTP"), "{failed}");
    Ok(())
}
