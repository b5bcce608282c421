//! Log destinations against real receivers: an HTTP receiver whose batches are verified
//! with the independent `standardwebhooks` implementation, and a real rsyslogd. An audited
//! change arrives at both; while the receivers are down the events queue, and once they
//! are back everything arrives in order, nothing twice. Then: validation, secrets never
//! shown, rotation with both secrets signing, the `failing` status after a day of
//! failures, and the retention.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::rsyslog::Rsyslog;
use crate::helpers::{
    Account, Error, Fields, ReferenceWebhooks, TestApp, WebhookReceiver, eventually, three_nodes,
};

/// Every event the HTTP receiver got, in arrival order.
fn http_events(seen: &[(String, Value)]) -> Result<Vec<Value>, Error> {
    let mut events = Vec::new();
    for (body, _) in seen {
        let batch: Value = serde_json::from_str(body)?;
        events.extend(batch["events"].as_array().cloned().unwrap_or_default());
    }
    Ok(events)
}

/// The event ids in the syslog messages, in arrival order.
fn syslog_ids(lines: &[String]) -> Result<Vec<String>, Error> {
    lines
        .iter()
        .map(|line| {
            let message = line
                .splitn(4, '|')
                .nth(3)
                .ok_or("a line without a message")?;
            let event: Value = serde_json::from_str(message.trim())?;
            event.text("id")
        })
        .collect()
}

/// The ids of the workspace's `workflow.created` activities, oldest first.
async fn created_activities(app: &TestApp, owner: &Account) -> Result<Vec<String>, Error> {
    let (status, page) = app
        .get_in(
            owner,
            "/api/workspace/activities?action=workflow.created&limit=200",
        )
        .await?;
    assert_eq!(status, 200, "{page}");
    let mut ids: Vec<String> = page
        .items()?
        .iter()
        .map(|a| a.text("id"))
        .collect::<Result<_, _>>()?;
    ids.reverse();
    Ok(ids)
}

fn only_created(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["action"] == "workflow.created")
        .filter_map(|event| event["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audited_changes_reach_http_and_syslog_in_order_once_even_across_outages() -> TestResult {
    let Some(reference) = ReferenceWebhooks::find()? else {
        return Ok(());
    };
    let Some(mut rsyslog) = Rsyslog::start().await? else {
        return Ok(());
    };
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("logs@example.com").await?;
    app.allow_internal_network().await?;
    let hook = WebhookReceiver::new(&["x-team", "authorization"]);
    let (port, receiver) = hook.serve(0)?;

    let (status, http) = app
        .post_in(
            &owner,
            "/api/settings/log-destinations",
            &json!({
                "name": "SIEM", "kind": "http", "event_types": ["activities"],
                "config": {"url": format!("http://127.0.0.1:{port}/logs"), "headers": [
                    {"name": "X-Team", "value": "ops"},
                    {"name": "Authorization", "value": "Bearer sealed-token", "secret": true},
                ]},
            }),
        )
        .await?;
    assert_eq!(status, 201, "{http}");
    let secret = http.text("signing_secret")?;
    assert!(secret.starts_with("whsec_"), "{http}");
    assert_eq!(
        http["config"]["headers"][1]["value"],
        Value::Null,
        "a secret header is never shown"
    );
    assert!(!http.to_string().contains("sealed-token"));
    let (_, credentials) = app.get_in(&owner, "/api/workflows/credentials").await?;
    assert_eq!(
        credentials.items()?.len(),
        0,
        "a destination's secrets are not credentials: {credentials}"
    );
    let (status, syslog) = app
        .post_in(&owner, "/api/settings/log-destinations", &json!({
            "name": "rsyslog", "kind": "syslog", "event_types": ["activities", "executions"],
            "config": {"host": "127.0.0.1", "port": rsyslog.port(), "app_name": "fluxolab-test"},
        }))
        .await?;
    assert_eq!(status, 201, "{syslog}");
    assert!(
        syslog.get("signing_secret").is_none(),
        "syslog does not sign: {syslog}"
    );
    let (_, shown) = app
        .get_in(
            &owner,
            &format!("/api/settings/log-destinations/{}", http.text("id")?),
        )
        .await?;
    assert!(
        shown.get("signing_secret").is_none(),
        "the secret is shown once: {shown}"
    );

    // One audited change arrives at both.
    app.create_workflow(&owner, "First", &three_nodes()).await?;
    eventually(
        "the first change at both receivers",
        Duration::from_secs(20),
        || async {
            Ok(only_created(&http_events(&hook.seen()?)?).len() == 1
                && rsyslog
                    .received()
                    .iter()
                    .any(|l| l.contains("workflow.created")))
        },
    )
    .await?;

    // Both receivers go away; the changes queue.
    receiver.stop(true).await;
    rsyslog.stop().await?;
    for name in ["Second", "Third", "Fourth"] {
        app.create_workflow(&owner, name, &three_nodes()).await?;
    }
    let http_id = http.text("id")?;
    eventually(
        "failed attempts listed",
        Duration::from_secs(20),
        || async {
            let (_, page) = app
                .get_in(
                    &owner,
                    &format!("/api/settings/log-destinations/{http_id}/deliveries"),
                )
                .await?;
            Ok(page
                .items()?
                .iter()
                .any(|attempt| attempt["outcome"] == "failed"))
        },
    )
    .await?;
    // They come back (the retries back off: allow for it).
    let (_, receiver) = hook.serve(port)?;
    rsyslog.resume().await?;
    let expected = created_activities(&app, &owner).await?;
    assert_eq!(expected.len(), 4);
    eventually(
        "every change at both receivers",
        Duration::from_secs(60),
        || async {
            let at_http = only_created(&http_events(&hook.seen()?)?).len();
            let at_syslog = rsyslog
                .received()
                .iter()
                .filter(|l| l.contains("workflow.created"))
                .count();
            Ok(at_http >= 4 && at_syslog >= 4)
        },
    )
    .await?;

    let batches = hook.seen()?;
    let events = http_events(&batches)?;
    assert_eq!(
        only_created(&events),
        expected,
        "in order, each once, over HTTP"
    );
    let syslog_lines = rsyslog.received();
    let syslog_events: Vec<String> = syslog_ids(&syslog_lines)?;
    let created_at_syslog: Vec<String> = syslog_events
        .iter()
        .filter(|id| expected.contains(id))
        .cloned()
        .collect();
    assert_eq!(
        created_at_syslog, expected,
        "in order, each once, over syslog"
    );
    let mut all_ids: Vec<String> = syslog_events.clone();
    all_ids.sort();
    all_ids.dedup();
    assert_eq!(
        all_ids.len(),
        syslog_events.len(),
        "nothing twice over syslog"
    );
    let line = &syslog_lines[0];
    let workspace = owner.workspace_id.to_string();
    assert!(
        line.starts_with("fluxolab-test|activities|[fluxolab@32473 "),
        "{line}"
    );
    assert!(
        line.contains(&format!("workspace_id=\"{workspace}\""))
            && line.contains("event_type=\"activities\""),
        "{line}"
    );

    for (body, headers) in &batches {
        reference
            .verify(&secret, headers, body)
            .await
            .map_err(|error| format!("a batch before the rotation: {error}: {headers} {body}"))?;
        assert_eq!(headers["x-team"], "ops");
        assert_eq!(
            headers["authorization"], "Bearer sealed-token",
            "the sealed header is sent"
        );
        let batch: Value = serde_json::from_str(body)?;
        assert_eq!(batch["workspace_id"], workspace.as_str());
        for event in batch["events"].as_array().ok_or("events")? {
            assert_eq!(event["type"], "activities");
            assert!(
                event.get("metadata").is_none(),
                "no metadata in an event: {event}"
            );
        }
    }
    let (_, page) = app
        .get_in(
            &owner,
            &format!("/api/settings/log-destinations/{http_id}/deliveries"),
        )
        .await?;
    let attempts = page.items()?;
    assert!(
        attempts
            .iter()
            .any(|a| a["outcome"] == "delivered" && a["status_code"] == 200),
        "{attempts:?}"
    );

    // The deliveries and the failed attempts are counted, and the backlog is sampled.
    let metrics = app.get("/metrics").await?.text().await?;
    for series in [
        "outbound_deliveries_total{kind=\"log_event\",outcome=\"delivered\"}",
        "outbound_deliveries_total{kind=\"log_event\",outcome=\"failed\"}",
        "outbound_backlog{kind=\"log_event\"}",
        "outbound_delivery_lag_seconds{kind=\"log_event\"}",
        "outbound_dropped_total{kind=\"log_event\"} 0",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }

    // A rotation: both secrets sign during the grace.
    let (status, rotated) = app
        .post_in(
            &owner,
            &format!("/api/settings/log-destinations/{http_id}/rotate-secret"),
            &json!({"grace_seconds": 600}),
        )
        .await?;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated.text("signing_secret")?;
    assert_ne!(new_secret, secret);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    let before = hook.seen()?.len();
    app.create_workflow(&owner, "Fifth", &three_nodes()).await?;
    eventually(
        "the batch after the rotation",
        Duration::from_secs(30),
        || async { Ok(hook.seen()?.len() > before) },
    )
    .await?;
    let (body, headers) = hook.seen()?.last().cloned().ok_or("a batch")?;
    reference
        .verify(&new_secret, &headers, &body)
        .await
        .map_err(|error| format!("the new secret: {error}: {headers} {body}"))?;
    reference
        .verify(&secret, &headers, &body)
        .await
        .map_err(|error| format!("the old secret in its grace: {error}: {headers} {body}"))?;

    // A test delivery reports the receiver's answer.
    let (status, report) = app
        .post_in(
            &owner,
            &format!("/api/settings/log-destinations/{http_id}/test"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["delivered"], true, "{report}");
    assert_eq!(report["status_code"], 200);
    // Opening the destination's secrets records no activity, which it would then
    // deliver, and so on without end.
    let (_, used) = app
        .get_in(&owner, "/api/workspace/activities?action=credential.used")
        .await?;
    assert_eq!(used.items()?.len(), 0, "{used}");
    receiver.stop(true).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_destinations_are_refused_naming_each_field() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("refused@example.com").await?;
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/settings/log-destinations",
            &json!({
                "name": "x", "kind": "http", "event_types": ["activities", "nope"],
                "config": {"url": "ftp://x", "headers": [{"name": "Webhook-Id", "value": "1"}]},
            }),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<String> = problem["errors"]
        .as_array()
        .ok_or("errors")?
        .iter()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect();
    for field in ["event_types", "config.url", "config.headers[0].name"] {
        assert!(fields.iter().any(|f| f == field), "{field} in {problem}");
    }
    let (status, problem) = app
        .post_in(&owner, "/api/settings/log-destinations", &json!({
            "name": "s", "kind": "syslog", "event_types": [], "config": {"host": "bad host", "port": 0},
        }))
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        app.count("log_destinations").await?,
        0,
        "nothing half-written"
    );
    let body = json!({"name": "dup", "kind": "syslog", "event_types": ["executions"], "config": {"host": "logs.example.com", "port": 6514, "transport": "tls"}});
    let (status, created) = app
        .post_in(&owner, "/api/settings/log-destinations", &body)
        .await?;
    assert_eq!(status, 201, "{created}");
    let (status, problem) = app
        .post_in(&owner, "/api/settings/log-destinations", &body)
        .await?;
    assert_eq!(
        (status, problem["code"].clone()),
        (409, json!("name_taken")),
        "{problem}"
    );
    let id = created.text("id")?;
    let (status, problem) = app
        .post_in(
            &owner,
            &format!("/api/settings/log-destinations/{id}/rotate-secret"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 422, "a syslog destination does not sign: {problem}");
    // Another workspace sees nothing of it.
    let outsider = app.signed_up("outsider@example.com").await?;
    let (status, _) = app
        .get_in(&outsider, &format!("/api/settings/log-destinations/{id}"))
        .await?;
    assert_eq!(status, 404);
    let (status, _) = app
        .delete_in(&owner, &format!("/api/settings/log-destinations/{id}"))
        .await?;
    assert_eq!(status, 204);
    assert_eq!(
        app.count("outbox_destinations").await?,
        0,
        "its queue went with it"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_failures_turns_a_destination_failing_and_old_events_are_dropped() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("failing@example.com").await?;
    app.allow_internal_network().await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (status, created) = app
        .post_in(
            &owner,
            "/api/settings/log-destinations",
            &json!({
                "name": "gone", "kind": "http", "event_types": ["activities"],
                "config": {"url": format!("http://127.0.0.1:{port}/nobody")},
            }),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    let id = created.text("id")?;
    app.create_workflow(&owner, "Queued", &three_nodes())
        .await?;
    let settings = fluxolab_app::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(app.db.url().to_owned()),
        "APP_SECRET" => Some(crate::helpers::TEST_SECRET.to_owned()),
        _ => None,
    })?;
    let pool = fluxolab_app::startup::pool(&settings.database)?;
    let services = fluxolab_app::startup::services(
        &pool,
        &settings,
        Arc::new(fluxolab_kernel::SystemClock),
        Arc::new(fluxolab_workflows::execution_service::Unobserved),
    )?;
    // The receiver has been refusing for 25 hours.
    app.execute(&format!(
        "UPDATE log_destinations SET failing_since = now() - interval '25 hours' WHERE id = '{id}'"
    ))
    .await?;
    services.outbox.run_due().await?;
    let (_, shown) = app
        .get_in(&owner, &format!("/api/settings/log-destinations/{id}"))
        .await?;
    assert_eq!(shown["status"], "failing", "{shown}");
    let (_, status) = app
        .get_in(&owner, "/api/settings/integrations/status")
        .await?;
    let entry = status
        .as_array()
        .ok_or("a list")?
        .iter()
        .find(|e| e["kind"] == "log_destinations")
        .cloned()
        .ok_or("the log destinations' entry")?;
    assert_eq!(
        (entry["configured"].clone(), entry["status"].clone()),
        (json!(1), json!("error")),
        "{entry}"
    );
    let (_, events) = app
        .get_in(
            &owner,
            "/api/settings/integrations/events?kind=log_destinations",
        )
        .await?;
    assert!(
        events
            .items()?
            .iter()
            .any(|e| e["event"] == "delivery_failed" && e["details"]["status"] == "failing"),
        "{events}"
    );
    let (_, activities) = app
        .get_in(
            &owner,
            "/api/workspace/activities?action=log_destination.failing",
        )
        .await?;
    assert_eq!(activities.items()?.len(), 1, "{activities}");
    assert!(app.count("outbox").await? >= 1, "the backlog is kept");

    // Past the retention the oldest events go, counted, and so do old attempts.
    let (_, page) = app
        .get_in(
            &owner,
            &format!("/api/settings/log-destinations/{id}/deliveries"),
        )
        .await?;
    assert!(
        !page.items()?.is_empty(),
        "the failed attempt is listed: {page}"
    );
    app.execute("UPDATE outbox SET created_at = now() - interval '8 days'")
        .await?;
    app.execute("UPDATE log_destination_deliveries SET attempted_at = now() - interval '8 days'")
        .await?;
    let expired = services
        .outbox
        .expire(Duration::from_secs(7 * 86_400))
        .await?;
    assert!(
        expired.iter().map(|e| e.dropped).sum::<u64>() >= 1,
        "{expired:?}"
    );
    assert_eq!(app.count("outbox").await?, 0);
    assert_eq!(app.count("log_destination_deliveries").await?, 0);
    let (_, events) = app
        .get_in(
            &owner,
            "/api/settings/integrations/events?kind=log_destinations",
        )
        .await?;
    assert!(events.items()?.iter().any(|e| e["event"] == "delivery_failed" && e["details"]["dropped"].as_u64() >= Some(1)), "{events}");
    Ok(())
}
