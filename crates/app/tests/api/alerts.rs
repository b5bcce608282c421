//! Usage alerts: an e-mail alert fires once when usage crosses its threshold, however
//! many workers evaluate it, and arrives at a real SMTP server; a webhook alert arrives
//! signed (Standard Webhooks, verified by the reference library), and a refused delivery
//! is retried with the same message id once the receiver's `Retry-After` has passed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{
    Account, Error, Fields, ReferenceWebhooks, TEST_SECRET, TestApp, WebhookReceiver, call,
    eventually, fake_smtp, three_nodes,
};

async fn events_of(app: &TestApp, owner: &Account, alert: &str) -> Result<Vec<Value>, Error> {
    let (status, events) = app
        .get_in(owner, &format!("/api/settings/usage/alerts/{alert}/events"))
        .await?;
    assert_eq!(status, 200, "{events}");
    events.items()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_alert_fires_once_when_usage_crosses_it() -> TestResult {
    let messages = Arc::new(Mutex::new(Vec::new()));
    let port = fake_smtp(messages.clone()).await?;
    let smtp = format!("smtp://mailer:smtp-password@127.0.0.1:{port}");
    // No background workers: the test runs the alerts job itself, so it knows when the
    // job has run and when every delivery is over.
    let app = TestApp::spawn_with(&[
        ("SMTP_URL", &smtp),
        ("ALERT_EMAIL_FROM", "FluxoLab <alerts@example.com>"),
        ("FLUXOLAB_TEST_NO_WORKERS", "1"),
    ])
    .await?;
    app.set_free_limit("executions_per_month", 5).await?;
    let owner = app.signed_up("alerted@example.com").await?;
    let alert = app.create_alert(&owner, &json!({
        "metric": "executions", "threshold_percent": 80, "channel": "email", "target": "ops@example.com"
    }))
    .await?;
    assert!(alert.secret.is_none(), "e-mail alerts have no secret");
    let alert = alert.id;
    let (status, problem) = app
        .post_in(
            &owner,
            &format!("/api/settings/usage/alerts/{alert}/rotate-secret"),
            &json!({}),
        )
        .await?;
    assert_eq!(
        status, 422,
        "an e-mail alert has no secret to rotate: {problem}"
    );
    let workflow = app.active_workflow(&owner, "Sum", &three_nodes()).await?.id;
    for _ in 0..3 {
        app.run(&owner, &workflow, &json!({"a": 1, "b": 2})).await?;
    }
    // Several workers race to evaluate and deliver.
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
    let run_jobs = async || -> TestResult {
        let evaluations = racing.iter().map(|services| services.alerts.evaluate());
        for outcome in futures_util::future::join_all(evaluations).await {
            outcome?;
        }
        let deliveries = racing.iter().map(|services| services.outbox.run_due());
        for outcome in futures_util::future::join_all(deliveries).await {
            outcome?;
        }
        Ok(())
    };
    // 3 of 5 is 60 %: nothing yet, even after the job ran.
    run_jobs().await?;
    assert!(events_of(&app, &owner, &alert).await?.is_empty());

    app.run(&owner, &workflow, &json!({"a": 1, "b": 2})).await?;
    // Every racer has evaluated and delivered what it claimed once they all return.
    run_jobs().await?;
    let delivered = messages.lock().map_err(|_| "a poisoned lock")?.clone();
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
    app.post_in(
        &owner,
        "/api/workspace/members",
        &json!({"email": "other@example.com", "role": "viewer"}),
    )
    .await?;
    let viewer = Account {
        workspace_id: owner.workspace_id.clone(),
        ..outsider
    };
    let (status, _) = app.post_in(&viewer, "/api/settings/usage/alerts", &json!({
        "metric": "executions", "threshold_percent": 90, "channel": "email", "target": "ops@example.com"
    }))
    .await?;
    assert_eq!(status, 403);
    let (status, problem) = app
        .post_in(
            &owner,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_alert_arrives_signed_and_a_failed_delivery_is_retried() -> TestResult {
    let Some(reference) = ReferenceWebhooks::find()? else {
        return Ok(());
    };
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("hooked@example.com").await?;
    app.allow_internal_network().await?;
    // The receiver refuses the first delivery with `Retry-After: 5`.
    let receiver = WebhookReceiver::refusing_first();
    let (port, _) = receiver.serve(0)?;
    let url = format!("http://127.0.0.1:{port}/alerts");
    let alert = app
        .create_alert(
            &owner,
            &json!({
                "metric": "workflows", "threshold_percent": 10, "channel": "webhook", "target": url
            }),
        )
        .await?;
    let secret = alert
        .secret
        .clone()
        .ok_or("a webhook alert's secret is shown once")?;
    assert!(
        secret.starts_with("whsec_"),
        "a Standard Webhooks secret, shown once: {alert:?}"
    );
    let id = alert.id;
    let (_, listed) = app.get_in(&owner, "/api/settings/usage/alerts").await?;
    assert!(listed["items"][0].get("secret").is_none(), "{listed}");
    // A rotation: the new secret is shown once, and both sign during the grace.
    let (status, rotated) = app
        .post_in(
            &owner,
            &format!("/api/settings/usage/alerts/{id}/rotate-secret"),
            &json!({"grace_seconds": 600}),
        )
        .await?;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"]
        .as_str()
        .ok_or("the new secret")?
        .to_owned();
    assert!(
        new_secret.starts_with("whsec_") && new_secret != secret,
        "{rotated}"
    );
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );

    // One workflow of the free plan's ten: 10 %.
    app.create_workflow(&owner, "One", &three_nodes()).await?;
    eventually("the alert's delivery", Duration::from_secs(20), || async {
        let events = events_of(&app, &owner, &id).await?;
        Ok(<[Value]>::first(&events).is_some_and(|event| event["status"] == "delivered"))
    })
    .await?;
    let events = events_of(&app, &owner, &id).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["attempts"], 2,
        "the first attempt failed and was retried"
    );

    let seen = receiver.seen()?;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].1["webhook-id"], seen[1].1["webhook-id"],
        "a retry is the same message"
    );
    let sent_at = |n: usize| {
        seen[n].1["webhook-timestamp"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
    };
    let waited = sent_at(1)
        .zip(sent_at(0))
        .map(|(second, first)| second - first);
    assert!(
        waited.is_some_and(|seconds| seconds >= 5),
        "the receiver's Retry-After (5 s) was honoured: {waited:?}"
    );
    for (body, headers) in &seen {
        reference.verify(&new_secret, headers, body).await?;
        reference.verify(&secret, headers, body).await?;
        let payload: Value = serde_json::from_str(body)?;
        assert_eq!(payload["metric"], "workflows");
        assert_eq!(payload["used"], 1);
        assert_eq!(payload["limit"], 10);
    }

    // Deleting the alert deletes its secrets (the current and the rotated-away one) from
    // the vault too.
    let secrets = app.count("credentials").await?;
    let (status, _) = app
        .delete_in(&owner, &format!("/api/settings/usage/alerts/{id}"))
        .await?;
    assert_eq!(status, 204);
    assert_eq!(app.count("credentials").await?, secrets - 2);
    let (status, _) = app
        .get_in(&owner, &format!("/api/settings/usage/alerts/{id}/events"))
        .await?;
    assert_eq!(status, 404);
    Ok(())
}
