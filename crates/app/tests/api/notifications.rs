//! Notifications: a run that fails for good (after its retries) is e-mailed through a
//! real SMTP exchange (not to a user who switched `execution_failed` off) and posted to
//! the webhook, signed as the reference Standard Webhooks library verifies; failures of
//! one workflow within ten minutes make one message, then one covering the rest; the
//! weekly usage report goes out once for its Monday 08:00 in the workspace's time zone,
//! however many workers look.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fluxolab_kernel::{Clock, ManualClock};
use reqwest::Method;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::TestResult;
use crate::helpers::{
    Account, Error, Fields, ReferenceWebhooks, TEST_SECRET, TestApp, WebhookReceiver, eventually,
    fake_smtp, wait_finished,
};

/// A webhook receiver on loopback: its URL and what it sees.
fn receiver() -> Result<(String, WebhookReceiver), Error> {
    let receiver = WebhookReceiver::new(&[]);
    let (port, _) = receiver.serve(0)?;
    Ok((format!("http://127.0.0.1:{port}/failed"), receiver))
}

/// trigger.manual → an `http.request` to a loopback port nobody listens on: each
/// attempt fails, and may be retried.
fn unreachable_call() -> Result<Value, Error> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    Ok(json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "call", "type": "http.request", "name": "Call",
             "params": {"method": "GET", "url": format!("http://{closed}/")}}
        ],
        "connections": [{"from": "start", "to": "call"}]
    }))
}

/// trigger.manual → a `flow.delay` whose milliseconds are no number: fails for good at
/// once.
fn broken() -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "broken", "type": "flow.delay", "name": "Broken", "params": {"milliseconds": "{{ trigger.body.nothing }}"}}
        ],
        "connections": [{"from": "start", "to": "broken"}]
    })
}

async fn set_settings(app: &TestApp, who: &Account, change: Value) -> Result<Value, Error> {
    let (status, changed) = app
        .patch_in(who, "/api/settings/workspace", &change)
        .await?;
    assert_eq!(status, 200, "{changed}");
    Ok(changed)
}

/// Switches `who`'s own notification `name` off.
async fn switch_off(app: &TestApp, who: &Account, name: &str) -> TestResult {
    let saved = app
        .send_as(
            Method::PUT,
            &who.access_token,
            "/api/users/me/settings",
            None,
            &json!({"locale": "en", "timezone": "UTC", "theme": "system",
                    "notifications": {name: false}}),
        )
        .await?;
    assert_eq!(saved.status(), 200);
    Ok(())
}

fn lock<T: Clone>(shared: &Mutex<T>) -> Result<T, Error> {
    Ok(shared.lock().map_err(|_| "a poisoned lock")?.clone())
}

/// Runs `workflow` once; the execution once it has finished.
async fn run_to_end(app: &TestApp, who: &Account, workflow: &str) -> Result<Value, Error> {
    let queued = app.run(who, workflow, &json!({})).await?;
    wait_finished(app, who, &queued.execution_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_for_good_is_emailed_once_and_posted_signed_but_not_its_retries()
-> TestResult {
    let Some(reference) = ReferenceWebhooks::find()? else {
        return Ok(());
    };
    let mails = Arc::new(Mutex::new(Vec::new()));
    let port = fake_smtp(mails.clone()).await?;
    let smtp = format!("smtp://mailer:smtp-password@127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[
        ("SMTP_URL", &smtp),
        ("ALERT_EMAIL_FROM", "FluxoLab <alerts@example.com>"),
    ])
    .await?;
    let owner = app.signed_up("failing@example.com").await?;
    let quiet = app.signed_up("quiet@example.com").await?;
    switch_off(&app, &quiet, "execution_failed").await?;
    app.allow_internal_network().await?;
    let (url, hook) = receiver()?;
    let changed = set_settings(
        &app,
        &owner,
        json!({
            "execution_defaults": {"max_attempts": 2},
            "notifications": {"execution_failed": {
                "emails": ["ops@example.com", "Quiet@Example.com"], "webhook_url": url}}
        }),
    )
    .await?;
    let secret = changed["notifications"]["execution_failed"].text("signing_secret")?;
    assert!(secret.starts_with("whsec_"), "{changed}");
    let (_, read) = app.get_in(&owner, "/api/settings/workspace").await?;
    assert!(
        read["notifications"]["execution_failed"]
            .get("signing_secret")
            .is_none(),
        "shown once: {read}"
    );
    // A rotation: the new secret is shown once, and both sign during the grace.
    let (status, rotated) = app
        .post_in(
            &owner,
            "/api/settings/workspace/notifications/rotate-secret",
            &json!({"grace_seconds": 600}),
        )
        .await?;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["notifications"]["execution_failed"].text("signing_secret")?;
    assert!(
        new_secret.starts_with("whsec_") && new_secret != secret,
        "{rotated}"
    );
    let (_, credentials) = app.get_in(&owner, "/api/workflows/credentials").await?;
    assert_eq!(
        credentials.items()?.len(),
        0,
        "the signing secrets are no user credentials"
    );

    let workflow = app
        .active_workflow(&owner, "Unreachable", &unreachable_call()?)
        .await?;
    let failed = run_to_end(&app, &owner, &workflow.id).await?;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempt"], 2, "retried once: {failed}");

    eventually(
        "the notification's delivery",
        Duration::from_secs(30),
        || async { Ok(app.count("outbox").await? == 0 && !hook.seen()?.is_empty()) },
    )
    .await?;
    let mails = lock(&mails)?;
    assert_eq!(
        mails.len(),
        1,
        "one e-mail, for the final failure: {mails:?}"
    );
    assert!(mails[0].contains("ops@example.com"), "{}", mails[0]);
    assert!(
        !mails[0].to_lowercase().contains("quiet@example.com"),
        "the user who switched it off is skipped: {}",
        mails[0]
    );
    assert!(
        mails[0].contains("a run of Unreachable failed"),
        "{}",
        mails[0]
    );

    let seen = hook.seen()?;
    assert_eq!(seen.len(), 1, "one webhook: {seen:?}");
    let (body, headers) = &seen[0];
    reference.verify(&new_secret, headers, body).await?;
    reference.verify(&secret, headers, body).await?;
    let payload: Value = serde_json::from_str(body)?;
    assert_eq!(payload["type"], "execution_failed");
    assert_eq!(payload["workspace_id"], owner.workspace_id.as_str());
    assert_eq!(payload["workflow_id"], workflow.id.as_str());
    assert_eq!(payload["count"], 1);
    assert_eq!(payload["execution_ids"], json!([failed.text("id")?]));
    assert_eq!(payload["error"], failed["error"]);
    for field in ["first_failed_at", "last_failed_at"] {
        assert!(payload[field].is_string(), "{payload}");
    }
    assert!(
        !body.contains(&secret) && !body.contains(&new_secret),
        "no secret in the body"
    );

    // Another change keeps the secret; a new URL replaces it; no URL, no secret.
    let sealed = app.count("credentials").await?;
    let kept = set_settings(
        &app,
        &owner,
        json!({"notifications": {"execution_failed": {"emails": ["ops@example.com"]}}}),
    )
    .await?;
    assert!(
        kept["notifications"]["execution_failed"]
            .get("signing_secret")
            .is_none()
    );
    let moved = set_settings(
        &app,
        &owner,
        json!({"notifications": {"execution_failed": {"webhook_url": format!("{url}/v2")}}}),
    )
    .await?;
    let replaced = moved["notifications"]["execution_failed"].text("signing_secret")?;
    assert_ne!(replaced, new_secret);
    assert_eq!(
        app.count("credentials").await?,
        sealed - 1,
        "the old ones (current and rotated-away) went"
    );
    set_settings(
        &app,
        &owner,
        json!({"notifications": {"execution_failed": {"webhook_url": null}}}),
    )
    .await?;
    assert_eq!(app.count("credentials").await?, sealed - 2);
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/settings/workspace/notifications/rotate-secret",
            &json!({}),
        )
        .await?;
    assert_eq!(status, 422, "no URL, nothing signs: {problem}");
    Ok(())
}

/// Ten minutes pass for the notices: what was taken, and what waits, moves back.
async fn ten_minutes_pass(app: &TestApp) -> TestResult {
    app.execute(
        "UPDATE execution_failure_notices SET closed_at = closed_at - interval '10 minutes', \
         due_at = due_at - interval '10 minutes'",
    )
    .await?;
    app.execute("UPDATE outbox SET next_attempt_at = next_attempt_at - interval '10 minutes'")
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_within_ten_minutes_make_one_message_then_one_covering_the_rest() -> TestResult {
    let mails = Arc::new(Mutex::new(Vec::new()));
    let port = fake_smtp(mails.clone()).await?;
    let smtp = format!("smtp://mailer:smtp-password@127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[("SMTP_URL", &smtp)]).await?;
    let owner = app.signed_up("coalesced@example.com").await?;
    set_settings(
        &app,
        &owner,
        json!({"notifications": {"execution_failed": {"emails": ["ops@example.com"]}}}),
    )
    .await?;
    let workflow = app.active_workflow(&owner, "Broken", &broken()).await?;
    run_to_end(&app, &owner, &workflow.id).await?;
    eventually(
        "the first failure's e-mail",
        Duration::from_secs(30),
        || async { Ok(lock(&mails)?.len() == 1) },
    )
    .await?;

    // Two more within ten minutes: they wait, together, for the ten minutes to pass.
    let second = run_to_end(&app, &owner, &workflow.id).await?;
    let third = run_to_end(&app, &owner, &workflow.id).await?;
    let waiting = app
        .scalar(
            "SELECT count(*) AS count FROM outbox \
             WHERE kind = 'notification' AND next_attempt_at > now() + interval '9 minutes'",
        )
        .await?;
    assert_eq!(waiting, 1, "one message waits for both");
    assert_eq!(lock(&mails)?.len(), 1);

    ten_minutes_pass(&app).await?;
    eventually("the coalesced e-mail", Duration::from_secs(30), || async {
        Ok(app.count("outbox").await? == 0)
    })
    .await?;
    let mails = lock(&mails)?;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails[1].contains("2 runs of Broken failed"), "{}", mails[1]);
    for run in [&second, &third] {
        assert!(mails[1].contains(&run.text("id")?), "{}", mails[1]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_report_goes_out_once_for_monday_eight_in_the_workspace_time_zone() -> TestResult
{
    let mails = Arc::new(Mutex::new(Vec::new()));
    let port = fake_smtp(mails.clone()).await?;
    let smtp = format!("smtp://mailer:smtp-password@127.0.0.1:{port}");
    // Monday 2026-12-14, 07:59 in São Paulo (UTC-3).
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-14 10:59 UTC)));
    let app = TestApp::spawn_api_only_with_clock(clock.clone()).await?;
    let owner = app.signed_up("weekly@example.com").await?;
    let other = app.signed_up("second.owner@example.com").await?;
    let (status, added) = app
        .post_in(
            &owner,
            "/api/workspace/members",
            &json!({"email": "second.owner@example.com", "role": "owner"}),
        )
        .await?;
    assert_eq!(status, 201, "{added}");
    switch_off(&app, &other, "weekly_usage_report").await?;
    set_settings(
        &app,
        &owner,
        json!({"timezone": "America/Sao_Paulo", "notifications": {"weekly_usage_report": true}}),
    )
    .await?;
    app.create_workflow(&owner, "Counted", &broken()).await?;

    // Three worker processes look at once.
    let settings = fluxolab_app::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(app.db.url().to_owned()),
        "APP_SECRET" => Some(TEST_SECRET.to_owned()),
        "SMTP_URL" => Some(smtp.clone()),
        _ => None,
    })?;
    let pool = fluxolab_app::startup::pool(&settings.database)?;
    let workers: Vec<_> = (0..3)
        .map(|_| {
            fluxolab_app::startup::services(
                &pool,
                &settings,
                clock.clone(),
                Arc::new(fluxolab_workflows::execution_service::Unobserved),
            )
        })
        .collect::<Result<_, _>>()?;
    let look = async || -> Result<u64, Error> {
        let looks = workers.iter().map(|services| services.weekly_reports.run());
        let mut recorded = 0;
        for outcome in futures_util::future::join_all(looks).await {
            recorded += outcome?;
        }
        let deliveries = workers.iter().map(|services| services.outbox.run_due());
        for outcome in futures_util::future::join_all(deliveries).await {
            outcome?;
        }
        Ok(recorded)
    };
    assert_eq!(look().await?, 0, "07:59 in São Paulo: not yet");
    assert!(lock(&mails)?.is_empty());

    clock.advance(time::Duration::minutes(1));
    assert_eq!(look().await?, 1, "08:00: one report, whoever looks");
    assert_eq!(look().await?, 0, "and only one");
    let mails = lock(&mails)?;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("weekly@example.com"), "{}", mails[0]);
    assert!(
        !mails[0].contains("second.owner@example.com"),
        "the owner who switched it off gets none"
    );
    assert!(mails[0].contains("- workflows: 1 of"), "{}", mails[0]);
    assert_eq!(app.count("weekly_usage_reports").await?, 1);

    clock.advance(time::Duration::days(2));
    assert_eq!(look().await?, 0, "Wednesday: nothing more this week");
    assert_eq!(
        clock.now(),
        datetime!(2026-12-16 11:00 UTC),
        "the clock moved as told"
    );
    Ok(())
}
