//! Usage alerts: an e-mail alert fires once when usage crosses its threshold, however
//! many workers evaluate it, and arrives at a real SMTP server; a webhook alert arrives
//! signed, and a failed delivery is retried.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use diesel_async::RunQueryDsl;
use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{
    Account, Error, TEST_SECRET, TestApp, call, fake_smtp, set_free_limit, three_nodes,
};

async fn events_of(app: &TestApp, owner: &Account, alert: &str) -> Result<Vec<Value>, Error> {
    let (status, events) = call(
        app,
        owner,
        Method::GET,
        &format!("/api/settings/usage/alerts/{alert}/events"),
        &json!({}),
    )
    .await?;
    assert_eq!(status, 200, "{events}");
    Ok(events["items"].as_array().cloned().unwrap_or_default())
}

/// Waits until `done` holds (checked every 100 ms), up to 20 s.
async fn eventually<F, Fut>(mut done: F) -> Result<bool, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if done().await? {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_alert_fires_once_when_usage_crosses_it() -> TestResult {
    let messages = Arc::new(Mutex::new(Vec::new()));
    let port = fake_smtp(messages.clone()).await?;
    let smtp = format!("smtp://mailer:smtp-password@127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[
        ("SMTP_URL", &smtp),
        ("ALERT_EMAIL_FROM", "FluxoLab <alerts@example.com>"),
    ])
    .await?;
    set_free_limit(&app, "executions_per_month", 5).await?;
    let owner = app.signed_up("alerted@example.com").await?;
    let (status, alert) = call(&app, &owner, Method::POST, "/api/settings/usage/alerts", &json!({
        "metric": "executions", "threshold_percent": 80, "channel": "email", "target": "ops@example.com"
    }))
    .await?;
    assert_eq!(status, 201, "{alert}");
    assert!(
        alert.get("secret").is_none(),
        "e-mail alerts have no secret"
    );
    let alert = alert["id"].as_str().unwrap_or_default().to_owned();
    let (_, workflow) = call(
        &app,
        &owner,
        Method::POST,
        "/api/workflows",
        &json!({"name": "Sum", "definition": three_nodes()}),
    )
    .await?;
    let workflow = workflow["id"].as_str().unwrap_or_default().to_owned();
    call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/workflows/{workflow}/activate"),
        &json!({"version": 1}),
    )
    .await?;
    for _ in 0..3 {
        call(
            &app,
            &owner,
            Method::POST,
            &format!("/api/workflows/{workflow}/run"),
            &json!({"payload": {"a": 1, "b": 2}}),
        )
        .await?;
    }
    // 3 of 5 is 60 %: nothing yet, even after the job ran.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(events_of(&app, &owner, &alert).await?.is_empty());

    call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/workflows/{workflow}/run"),
        &json!({"payload": {"a": 1, "b": 2}}),
    )
    .await?;
    // Several workers race to evaluate and deliver: the app's own and four more.
    let settings = fluxolab_app::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(app.db.url().to_owned()),
        "APP_SECRET" => Some(TEST_SECRET.to_owned()),
        "SMTP_URL" => Some(smtp.clone()),
        _ => None,
    })?;
    let pool = fluxolab_app::startup::pool(&settings.database)?;
    let racing: Vec<_> = (0..4)
        .map(|_| {
            fluxolab_app::startup::services(
                &pool,
                &settings,
                Arc::new(fluxolab_kernel::SystemClock),
                Arc::new(fluxolab_workflows::execution_service::Unobserved),
            )
        })
        .collect::<Result<_, _>>()?;
    let runs = racing.iter().map(|services| services.alerts.run_due());
    for outcome in futures_util::future::join_all(runs).await {
        outcome?;
    }
    let arrived = eventually(|| {
        let messages = messages.clone();
        async move { Ok(messages.lock().map(|m| !m.is_empty()).unwrap_or(false)) }
    })
    .await?;
    assert!(arrived, "the alert e-mail never arrived");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let delivered = messages.lock().map(|m| m.clone()).unwrap_or_default();
    assert_eq!(delivered.len(), 1, "exactly one e-mail: {delivered:?}");
    assert!(
        delivered[0].contains("executions at 80 % of your plan"),
        "{}",
        delivered[0]
    );
    assert!(delivered[0].contains("ops@example.com"));
    let events = events_of(&app, &owner, &alert).await?;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["status"], "delivered");
    assert_eq!(events[0]["used"], 4);
    assert_eq!(events[0]["limit"], 5);

    // Isolation and roles.
    let outsider = app.signed_up("other@example.com").await?;
    for (method, path) in [
        (Method::PATCH, format!("/api/settings/usage/alerts/{alert}")),
        (
            Method::DELETE,
            format!("/api/settings/usage/alerts/{alert}"),
        ),
        (
            Method::GET,
            format!("/api/settings/usage/alerts/{alert}/events"),
        ),
    ] {
        let (status, _) = call(&app, &outsider, method.clone(), &path, &json!({})).await?;
        assert_eq!(status, 404, "{method} {path}");
    }
    call(
        &app,
        &owner,
        Method::POST,
        "/api/workspace/members",
        &json!({"email": "other@example.com", "role": "viewer"}),
    )
    .await?;
    let viewer = Account {
        workspace_id: owner.workspace_id.clone(),
        ..outsider
    };
    let (status, _) = call(&app, &viewer, Method::POST, "/api/settings/usage/alerts", &json!({
        "metric": "executions", "threshold_percent": 90, "channel": "email", "target": "ops@example.com"
    }))
    .await?;
    assert_eq!(status, 403);
    let (status, problem) = call(
        &app,
        &owner,
        Method::POST,
        "/api/settings/usage/alerts",
        &json!({
            "metric": "vibes", "threshold_percent": 0, "channel": "pigeon", "target": "x"
        }),
    )
    .await?;
    assert_eq!(status, 422);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["metric", "threshold_percent", "channel"],
        "{problem}"
    );
    Ok(())
}

/// What the receiver saw: bodies and signatures; it fails the first delivery.
type Received = Arc<Mutex<Vec<(String, String)>>>;

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    seen: web::Data<Received>,
) -> HttpResponse {
    let signature = request
        .headers()
        .get("x-fluxolab-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Ok(mut seen) = seen.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    seen.push((String::from_utf8_lossy(&body).into_owned(), signature));
    if seen.len() == 1 {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::Ok().finish()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_alert_arrives_signed_and_a_failed_delivery_is_retried() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("hooked@example.com").await?;
    diesel::sql_query("UPDATE workspace_settings SET allow_internal_network = true")
        .execute(&mut app.db.pool().get().await?)
        .await?;
    let seen: Received = Arc::default();
    let data = web::Data::new(seen.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/alerts", listener.local_addr()?);
    tokio::spawn(
        HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)?
        .run(),
    );
    let (status, alert) = call(
        &app,
        &owner,
        Method::POST,
        "/api/settings/usage/alerts",
        &json!({
            "metric": "workflows", "threshold_percent": 10, "channel": "webhook", "target": url
        }),
    )
    .await?;
    assert_eq!(status, 201, "{alert}");
    let secret = alert["secret"].as_str().unwrap_or_default().to_owned();
    assert_eq!(secret.len(), 64, "the secret is shown once: {alert}");
    let id = alert["id"].as_str().unwrap_or_default().to_owned();
    let (_, listed) = call(
        &app,
        &owner,
        Method::GET,
        "/api/settings/usage/alerts",
        &json!({}),
    )
    .await?;
    assert!(listed["items"][0].get("secret").is_none(), "{listed}");

    // One workflow of the free plan's ten: 10 %.
    call(
        &app,
        &owner,
        Method::POST,
        "/api/workflows",
        &json!({"name": "One", "definition": three_nodes()}),
    )
    .await?;
    let delivered = eventually(|| {
        let (app, owner, id) = (&app, &owner, id.clone());
        async move {
            let events = events_of(app, owner, &id).await?;
            Ok(<[Value]>::first(&events).is_some_and(|event| event["status"] == "delivered"))
        }
    })
    .await?;
    assert!(
        delivered,
        "never delivered: {:?}",
        events_of(&app, &owner, &id).await?
    );
    let events = events_of(&app, &owner, &id).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["attempts"], 2,
        "the first attempt failed and was retried"
    );

    let seen = seen.lock().map(|seen| seen.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (body, signature) in &seen {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let expected = format!(
            "sha256={}",
            hex::encode(ring::hmac::sign(&key, body.as_bytes()).as_ref())
        );
        assert_eq!(signature, &expected, "signed with the alert's secret");
        let payload: Value = serde_json::from_str(body)?;
        assert_eq!(payload["metric"], "workflows");
        assert_eq!(payload["used"], 1);
        assert_eq!(payload["limit"], 10);
    }

    // Deleting the alert deletes its secret from the vault too.
    let secrets = app.count("credentials").await?;
    let (status, _) = call(
        &app,
        &owner,
        Method::DELETE,
        &format!("/api/settings/usage/alerts/{id}"),
        &json!({}),
    )
    .await?;
    assert_eq!(status, 204);
    assert_eq!(app.count("credentials").await?, secrets - 1);
    let (status, _) = call(
        &app,
        &owner,
        Method::GET,
        &format!("/api/settings/usage/alerts/{id}/events"),
        &json!({}),
    )
    .await?;
    assert_eq!(status, 404);
    Ok(())
}
