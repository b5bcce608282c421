//! Running workflows end to end: inline tests, the queue and its workers, and nodes that
//! reach out (HTTP behind the SSRF guard, e-mail through a real SMTP exchange).

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{
    Account, Error, Fields, TestApp, call, execution, three_nodes, wait_finished,
    wait_for_execution,
};

async fn workflow(app: &TestApp, who: &Account, definition: Value) -> Result<String, Error> {
    Ok(app.create_workflow(who, "Flow", &definition).await?.id)
}

async fn allow_internal_targets(app: &TestApp) -> Result<(), Error> {
    use diesel_async::RunQueryDsl;
    diesel::sql_query("UPDATE workspace_settings SET allow_internal_network = true")
        .execute(&mut app.db.pool().get().await?)
        .await?;
    Ok(())
}

#[tokio::test]
async fn three_nodes_run_inline_and_through_the_queue() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("runner@example.com").await?;
    let id = workflow(&app, &owner, three_nodes()).await?;

    let (status, tested) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/test"),
            &json!({"payload": {"a": 4, "b": 8}}),
        )
        .await?;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["status"], "succeeded");
    assert_eq!(tested["output"], json!({"result": true}));
    let steps: Vec<&str> = tested["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["node_id"].as_str())
        .collect();
    assert_eq!(steps, ["start", "shape", "check"]);
    assert_eq!(tested["steps"][1]["output"], json!({"total": 12}));

    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/run"),
            &json!({"payload": {}}),
        )
        .await?;
    assert_eq!(status, 422, "not active yet");
    app.activate(&owner, &id, 1).await?;
    let execution = app
        .run(&owner, &id, &json!({"a": 1, "b": 2}))
        .await?
        .execution_id;
    let finished = wait_finished(&app, &owner, &execution).await?;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["output"], json!({"result": false}));
    assert_eq!(finished["trigger_kind"], "run");
    assert_eq!(finished["attempt"], 1);
    assert_eq!(app.count("execution_steps").await?, 6);

    let (status, retried) = app
        .post_in(
            &owner,
            &format!("/api/executions/{execution}/retry"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 202);
    let retry = wait_finished(&app, &owner, &retried.text("execution_id")?).await?;
    assert_eq!(retry["retry_of"], execution.as_str());

    let (_, listed) = app
        .get_in(
            &owner,
            &format!("/api/executions?workflow_id={id}&status=succeeded"),
        )
        .await?;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(3));
    let (status, _) = app.get_in(&owner, "/api/executions?status=stuck").await?;
    assert_eq!(status, 422);

    // Every run settled through this process is counted, and its steps timed.
    let metrics = app.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains(r#"executions_settled_total{status="succeeded"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"execution_step_duration_seconds_count{node_type="data.set",outcome="succeeded"} 3"#
        ),
        "{metrics}"
    );

    let outsider = app.signed_up("peeker@example.com").await?;
    for (method, path) in [
        (Method::GET, format!("/api/executions/{execution}")),
        (Method::POST, format!("/api/executions/{execution}/retry")),
        (Method::POST, format!("/api/executions/{execution}/cancel")),
        (Method::POST, format!("/api/workflows/{id}/test")),
        (Method::POST, format!("/api/workflows/{id}/run")),
    ] {
        let (status, _) = call(&app, &outsider, method.clone(), &path, &json!({})).await?;
        assert_eq!(status, 404, "{method} {path}");
    }
    Ok(())
}

#[tokio::test]
async fn a_template_error_fails_the_step_with_node_and_message() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("typo@example.com").await?;
    let id = workflow(&app, &owner, three_nodes()).await?;
    let (_, tested) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/test"),
            &json!({"payload": {"a": 1}}),
        )
        .await?;
    assert_eq!(tested["status"], "failed");
    let error = tested.text("error")?;
    assert!(
        error.starts_with("node `shape`: template at `params.values.total`"),
        "{error}"
    );
    assert_eq!(tested["steps"].as_array().map(Vec::len), Some(2));
    Ok(())
}

type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

async fn echo(request: HttpRequest, body: web::Bytes, seen: web::Data<Seen>) -> HttpResponse {
    if let Ok(mut seen) = seen.lock() {
        seen.push((
            request.uri().to_string(),
            // Not a response field: the request this receiver got, where a missing
            // header is kept as "" for the test to compare.
            request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            String::from_utf8_lossy(&body).into_owned(),
        ));
    }
    HttpResponse::Ok().json(json!({"received": true}))
}

#[tokio::test]
async fn http_requests_carry_templates_and_credentials_and_respect_the_guard() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("caller@example.com").await?;
    let seen: Seen = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let data = web::Data::new(seen.clone());
    tokio::spawn(
        HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(echo))
        })
        .workers(1)
        .listen(listener)?
        .run(),
    );
    let (_, token) = app
        .post_in(
            &owner,
            "/api/workflows/credentials",
            &json!({"name": "API", "kind": "bearer_token", "data": {"token": "node-bearer-token"}}),
        )
        .await?;
    let flow = |url: String| {
        json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "call", "type": "http.request", "name": "Call", "credential_id": token["id"],
                 "params": {"method": "POST", "url": url, "query": {"q": "{{ trigger.body.q }}"},
                            "body": {"user": "{{ trigger.body.user }}", "n": "{{ trigger.body.n }}"}}}
            ],
            "connections": [{"from": "start", "to": "call"}]
        })
    };

    let local = workflow(
        &app,
        &owner,
        flow(format!("{base}/users/{{{{ trigger.body.user }}}}")),
    )
    .await?;
    let payload = json!({"payload": {"user": "ada", "n": 3, "q": "x y"}});
    let (_, refused) = app
        .post_in(&owner, &format!("/api/workflows/{local}/test"), &payload)
        .await?;
    assert_eq!(refused["status"], "failed");
    assert!(refused.text("error")?.contains("refused"), "{refused}");

    let metadata = workflow(
        &app,
        &owner,
        flow("http://169.254.169.254/latest/meta-data".to_owned()),
    )
    .await?;
    let (_, blocked) = app
        .post_in(&owner, &format!("/api/workflows/{metadata}/test"), &payload)
        .await?;
    assert!(
        &blocked.text("error")?.contains("CloudMetadata"),
        "{blocked}"
    );
    let named = workflow(&app, &owner, flow("http://localhost:9/".to_owned())).await?;
    let (_, private_name) = app
        .post_in(&owner, &format!("/api/workflows/{named}/test"), &payload)
        .await?;
    assert!(
        &private_name.text("error")?.contains("internal"),
        "{private_name}"
    );
    assert!(
        seen.lock().map(|s| s.is_empty()).unwrap_or(false),
        "nothing reached the server"
    );

    allow_internal_targets(&app).await?;
    let (_, passed) = app
        .post_in(&owner, &format!("/api/workflows/{local}/test"), &payload)
        .await?;
    assert_eq!(passed["status"], "succeeded", "{passed}");
    assert_eq!(passed["output"]["body"], json!({"received": true}));
    let requests = seen.lock().map_err(|_| "a poisoned lock")?.clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].0, "/users/ada?q=x+y");
    assert_eq!(requests[0].1, "Bearer node-bearer-token");
    assert_eq!(
        serde_json::from_str::<Value>(&requests[0].2)?,
        json!({"user": "ada", "n": 3})
    );
    Ok(())
}

#[tokio::test]
async fn email_send_delivers_the_templated_message() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("newsletter@example.com").await?;
    allow_internal_targets(&app).await?;
    let messages = Arc::new(Mutex::new(Vec::new()));
    let port = crate::helpers::fake_smtp(messages.clone()).await?;
    let (_, smtp) = app.post_in(&owner, "/api/workflows/credentials", &json!({"name": "Mail", "kind": "smtp",
        "data": {"host": "127.0.0.1", "port": port, "username": "mailer", "password": "smtp-password", "tls_mode": "none"}})).await?;
    let id = workflow(&app, &owner, json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "mail", "type": "email.send", "name": "Mail", "credential_id": smtp["id"],
             "params": {"from": "robot@example.com", "to": "{{ trigger.body.to }}",
                        "subject": "Hello {{ trigger.body.name }}", "body": "Your total is {{ trigger.body.total }}."}}
        ],
        "connections": [{"from": "start", "to": "mail"}]
    })).await?;
    let (_, tested) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/test"),
            &json!({"payload": {"to": "ada@example.com", "name": "Ada", "total": 42}}),
        )
        .await?;
    assert_eq!(tested["status"], "succeeded", "{tested}");
    let delivered = messages.lock().map_err(|_| "a poisoned lock")?.clone();
    assert_eq!(delivered.len(), 1);
    assert!(
        delivered[0].contains("Subject: Hello Ada"),
        "{}",
        delivered[0]
    );
    assert!(
        delivered[0].contains("To: ada@example.com"),
        "{}",
        delivered[0]
    );
    assert!(
        delivered[0].contains("Your total is 42."),
        "{}",
        delivered[0]
    );
    // The step's idempotency key is the message's id, the same on every attempt.
    let execution: uuid::Uuid = tested["id"].as_str().ok_or("no id")?.parse()?;
    let key = uuid::Uuid::new_v5(&execution, b"mail").to_string();
    assert_eq!(
        tested["steps"][1]["idempotency_key"],
        key.as_str(),
        "{tested}"
    );
    assert!(
        delivered[0].contains(&format!("Message-ID: <{key}@example.com>")),
        "{}",
        delivered[0]
    );
    Ok(())
}

/// A TCP server that accepts connections and never answers: a node calling it stays
/// running until its own timeout.
async fn silent_server() -> Result<String, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/slow", listener.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    Ok(url)
}

#[tokio::test]
async fn a_running_execution_is_cancelled_on_request() -> TestResult {
    let app = TestApp::spawn_with(&[("EXECUTION_LEASE_SECONDS", "3")]).await?;
    let owner = app.signed_up("stopper@example.com").await?;
    allow_internal_targets(&app).await?;
    let slow = silent_server().await?;
    let id = workflow(&app, &owner, json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "call", "type": "http.request", "name": "Call", "params": {"method": "GET", "url": slow, "timeout_ms": 60000}},
            {"id": "after", "type": "data.set", "name": "After", "params": {"values": {"ran": true}}}
        ],
        "connections": [{"from": "start", "to": "call"}, {"from": "call", "to": "after"}]
    })).await?;
    app.post_in(
        &owner,
        &format!("/api/workflows/{id}/activate"),
        &json!({"version": 1}),
    )
    .await?;
    let (_, queued) = app
        .post_in(&owner, &format!("/api/workflows/{id}/run"), &json!({}))
        .await?;
    let execution = queued.text("execution_id")?;
    wait_for_execution(&app, &owner, &execution, |found| {
        found["status"] == "running"
    })
    .await?;
    app.post_in(
        &owner,
        &format!("/api/executions/{execution}/cancel"),
        &json!({}),
    )
    .await?;
    let finished = wait_finished(&app, &owner, &execution).await?;
    assert_eq!(finished["status"], "cancelled", "{finished}");
    let ran: Vec<&str> = finished["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["node_id"].as_str())
        .collect();
    assert_eq!(ran, ["start"], "nothing after the cancellation ran");
    let metrics = app.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains(r#"executions_settled_total{status="cancelled"} 1"#),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn a_long_delay_frees_its_worker_and_resumes_after_the_wait() -> TestResult {
    // One execution slot: a run waiting in a delay must not block the next one.
    let app = TestApp::spawn_with(&[("WORKERS", "1")]).await?;
    let owner = app.signed_up("patient@example.com").await?;
    let waiting = workflow(&app, &owner, json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "wait", "type": "flow.delay", "name": "Wait", "params": {"milliseconds": 3000}},
            {"id": "after", "type": "data.set", "name": "After", "params": {"values": {"waited": "{{ nodes.wait.output.waited_ms }}"}}}
        ],
        "connections": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "after"}]
    })).await?;
    let quick = workflow(&app, &owner, three_nodes()).await?;
    let mut executions = Vec::new();
    for id in [&waiting, &quick] {
        app.post_in(
            &owner,
            &format!("/api/workflows/{id}/activate"),
            &json!({"version": 1}),
        )
        .await?;
        let (status, queued) = app
            .post_in(
                &owner,
                &format!("/api/workflows/{id}/run"),
                &json!({"payload": {"a": 1, "b": 2, "name": "Q"}}),
            )
            .await?;
        assert_eq!(status, 202, "{queued}");
        executions.push(queued.text("execution_id")?);
    }
    let quick_done = wait_finished(&app, &owner, &executions[1]).await?;
    assert_eq!(quick_done["status"], "succeeded", "{quick_done}");
    let paused = execution(&app, &owner, &executions[0]).await?;
    assert_eq!(
        paused["status"], "queued",
        "the delayed run waits in the queue, not in a worker: {paused}"
    );

    let resumed = wait_finished(&app, &owner, &executions[0]).await?;
    assert_eq!(resumed["status"], "succeeded", "{resumed}");
    assert_eq!(resumed["output"], json!({"waited": 3000}));
    assert_eq!(
        resumed["attempt"], 1,
        "the wait is not an attempt: {resumed}"
    );
    let ran: Vec<&str> = resumed["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|step| step["node_id"].as_str())
        .collect();
    assert_eq!(ran, ["start", "wait", "after"], "each node once");
    let started = time::OffsetDateTime::parse(
        &resumed.text("/steps/1/started_at")?,
        &time::format_description::well_known::Rfc3339,
    )?;
    let after = time::OffsetDateTime::parse(
        &resumed.text("/steps/2/started_at")?,
        &time::format_description::well_known::Rfc3339,
    )?;
    assert!(
        after - started >= time::Duration::seconds(3),
        "the next node ran only after the wait"
    );
    Ok(())
}
