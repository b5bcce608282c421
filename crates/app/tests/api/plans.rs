//! Plans and limits: each limit refuses the first request over it with a `plan_limit`
//! problem and allows it again after an upgrade; a downgrade the usage would break is
//! refused and changes nothing; usage counts what the database holds.

use std::sync::Arc;

use fluxolab_kernel::Clock;
use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp, three_nodes};

async fn create_workflow(app: &TestApp, owner: &Account, n: usize) -> Result<(u16, Value), Error> {
    app.post_in(
        owner,
        "/api/workflows",
        &json!({"name": format!("Flow {n}"), "definition": three_nodes()}),
    )
    .await
}

async fn create_credential(
    app: &TestApp,
    owner: &Account,
    n: usize,
) -> Result<(u16, Value), Error> {
    app.post_in(owner, "/api/workflows/credentials", &json!({"name": format!("Token {n}"), "kind": "bearer_token", "data": {"token": "t0k3n-value"}}))
    .await
}

async fn activate(app: &TestApp, owner: &Account, id: &str) -> Result<(u16, Value), Error> {
    app.post_in(
        owner,
        &format!("/api/workflows/{id}/activate"),
        &json!({"version": 1}),
    )
    .await
}

fn assert_limit(status: u16, problem: &Value, name: &str, value: u64) {
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "plan_limit", "{problem}");
    assert_eq!(problem["limit"]["name"], name, "{problem}");
    assert_eq!(problem["limit"]["value"], value, "{problem}");
    assert_eq!(problem["limit"]["current"], value, "{problem}");
}

async fn change_plan(app: &TestApp, who: &Account, plan: &str) -> Result<(u16, Value), Error> {
    app.post_in(who, "/api/settings/plan", &json!({"plan": plan}))
        .await
}

#[tokio::test]
async fn each_limit_refuses_the_first_request_over_it_until_an_upgrade() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("limits@example.com").await?;
    let (status, plan) = app.get_in(&owner, "/api/settings/plan").await?;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["plan"]["code"], "free");
    assert_eq!(plan["plan"]["limits"]["max_workflows"], 10);
    assert_eq!(plan["available_plans"].as_array().map(Vec::len), Some(4));

    // Workflows: 10 fit the free plan, the 11th does not.
    let mut workflows = Vec::new();
    for n in 0..10 {
        let (status, created) = create_workflow(&app, &owner, n).await?;
        assert_eq!(status, 201, "{created}");
        workflows.push(created.text("id")?);
    }
    let (status, problem) = create_workflow(&app, &owner, 10).await?;
    assert_limit(status, &problem, "max_workflows", 10);
    assert_eq!(app.count("workflows").await?, 10, "nothing was written");

    // Active workflows: 5 fit.
    for id in &workflows[..5] {
        let (status, body) = activate(&app, &owner, id).await?;
        assert_eq!(status, 200, "{body}");
    }
    let (status, problem) = activate(&app, &owner, &workflows[5]).await?;
    assert_limit(status, &problem, "max_active_workflows", 5);
    let (status, _) = activate(&app, &owner, &workflows[0]).await?;
    assert_eq!(status, 200, "re-activating an active workflow adds nothing");

    // Credentials: 10 fit; a webhook's signing secret is not counted.
    app.post_in(
        &owner,
        "/api/webhooks",
        &json!({"name": "Hook", "provider": "hmac_sha256"}),
    )
    .await?;
    for n in 0..10 {
        let (status, created) = create_credential(&app, &owner, n).await?;
        assert_eq!(status, 201, "{created}");
    }
    let (status, problem) = create_credential(&app, &owner, 10).await?;
    assert_limit(status, &problem, "max_credentials", 10);

    // Members: the owner and two more fit.
    for email in ["m1@example.com", "m2@example.com", "m3@example.com"] {
        app.signed_up(email).await?;
    }
    for email in ["m1@example.com", "m2@example.com"] {
        let (status, body) = app
            .post_in(
                &owner,
                "/api/workspace/members",
                &json!({"email": email, "role": "viewer"}),
            )
            .await?;
        assert_eq!(status, 201, "{body}");
    }
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workspace/members",
            &json!({"email": "m3@example.com", "role": "viewer"}),
        )
        .await?;
    assert_limit(status, &problem, "max_members", 3);

    // Upgrade: every one of them goes through now.
    let (status, upgraded) = change_plan(&app, &owner, "pro").await?;
    assert_eq!(status, 200, "{upgraded}");
    assert_eq!(upgraded["plan"]["code"], "pro");
    assert_eq!(create_workflow(&app, &owner, 10).await?.0, 201);
    assert_eq!(activate(&app, &owner, &workflows[5]).await?.0, 200);
    assert_eq!(create_credential(&app, &owner, 10).await?.0, 201);
    let (status, _) = app
        .post_in(
            &owner,
            "/api/workspace/members",
            &json!({"email": "m3@example.com", "role": "viewer"}),
        )
        .await?;
    assert_eq!(status, 201);

    // Usage equals what the database holds.
    let (status, usage) = app.get_in(&owner, "/api/settings/usage").await?;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["plan"], "pro");
    assert_eq!(
        usage["workflows"],
        json!({"used": 11, "limit": 100, "percent": 11.0})
    );
    assert_eq!(usage["active_workflows"]["used"], 6);
    assert_eq!(usage["credentials"]["used"], 11);
    assert_eq!(usage["members"]["used"], 4);
    assert_eq!(usage["executions"]["used"], 0);
    assert_eq!(usage["executions_by_status"]["succeeded"], 0);
    assert_eq!(usage["webhook_events_by_verdict"]["accepted"], 0);

    // The summary says the same, with environments and integrations.
    let (status, summary) = app.get_in(&owner, "/api/settings/summary").await?;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["subscription"]["plan"]["code"], "pro");
    assert_eq!(summary["usage"], usage);
    let environments: Vec<&str> = summary["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(environments.len(), 3, "{summary}");
    assert_eq!(summary["integrations"]["webhooks"], 1);

    // A downgrade the usage would break is refused, naming every limit; nothing changes.
    let (status, problem) = change_plan(&app, &owner, "free").await?;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "plan_limit");
    let names: Vec<&str> = problem["limits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "max_members",
            "max_workflows",
            "max_active_workflows",
            "max_credentials"
        ],
        "{problem}"
    );
    let (_, plan) = app.get_in(&owner, "/api/settings/plan").await?;
    assert_eq!(plan["plan"]["code"], "pro");

    // One billing event and one activity for the one change that happened.
    let (status, history) = app.get_in(&owner, "/api/settings/billing/history").await?;
    assert_eq!(status, 200, "{history}");
    let items = history.items()?;
    assert_eq!(items.len(), 1, "{history}");
    assert_eq!(items[0]["kind"], "plan_changed");
    assert_eq!(items[0]["from_plan"], "free");
    assert_eq!(items[0]["to_plan"], "pro");
    assert_eq!(items[0]["actor_user_id"], owner.id.as_str());
    let (_, activities) = app
        .get_in(&owner, "/api/workspace/activities?action=plan.changed")
        .await?;
    assert_eq!(
        activities["items"].as_array().map(Vec::len),
        Some(1),
        "{activities}"
    );
    Ok(())
}

#[tokio::test]
async fn plans_are_changed_by_owners_only_and_named_exactly() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("boss@example.com").await?;
    let viewer = app.signed_up("looker@example.com").await?;
    app.post_in(
        &owner,
        "/api/workspace/members",
        &json!({"email": "looker@example.com", "role": "viewer"}),
    )
    .await?;
    let as_viewer = Account {
        workspace_id: owner.workspace_id.clone(),
        ..viewer
    };
    let (status, plan) = app.get_in(&as_viewer, "/api/settings/plan").await?;
    assert_eq!(status, 200, "viewers may look: {plan}");
    let (status, problem) = change_plan(&app, &as_viewer, "pro").await?;
    assert_eq!(status, 403, "{problem}");
    let (status, problem) = change_plan(&app, &owner, "platinum").await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "plan");
    let (status, same) = change_plan(&app, &owner, "free").await?;
    assert_eq!(status, 200, "{same}");
    let (_, history) = app.get_in(&owner, "/api/settings/billing/history").await?;
    assert_eq!(
        history["items"],
        json!([]),
        "staying on a plan is no change"
    );
    Ok(())
}

/// An active workflow with a bound, unsigned webhook; its intake URL.
async fn hooked_workflow(app: &TestApp, owner: &Account) -> Result<(String, String), Error> {
    let (_, created) = app.post_in(owner, "/api/workflows", &json!({
        "name": "Hooked",
        "definition": {"nodes": [{"id": "in", "type": "trigger.webhook", "name": "In"}], "connections": []}
    }))
    .await?;
    let id = created.text("id")?;
    let (status, body) = activate(app, owner, &id).await?;
    assert_eq!(status, 200, "{body}");
    let (_, hooks) = app.get_in(owner, "/api/webhooks").await?;
    Ok((id, hooks.text("/items/0/url")?))
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("a Retry-After header in whole seconds")
}

#[tokio::test]
async fn a_used_up_quota_and_an_exceeded_rate_are_told_apart() -> TestResult {
    let clock = Arc::new(fluxolab_kernel::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let app = TestApp::spawn_with_clock(clock.clone()).await?;
    app.set_free_limit("executions_per_month", 2).await?;
    let owner = app.signed_up("quota@example.com").await?;
    let (workflow, url) = hooked_workflow(&app, &owner).await?;
    for _ in 0..2 {
        app.run(&owner, &workflow, &Value::Null).await?;
    }
    let response = app
        .send_as(
            Method::POST,
            &owner.access_token,
            &format!("/api/workflows/{workflow}/run"),
            Some(&owner.workspace_id),
            &json!({}),
        )
        .await?;
    assert_eq!(response.status(), 429);
    let wait = retry_after(&response);
    let problem: Value = response.json().await?;
    assert_eq!(problem["code"], "quota_exceeded", "{problem}");
    assert!(
        (1..=31 * 86_400).contains(&wait),
        "Retry-After is the time to the period's end: {wait}"
    );

    // A webhook delivery over quota is kept (nothing the sender delivered is lost) but not run.
    // (Once the intake's reading of the quota, trusted for a second, is out of date.)
    clock.advance(time::Duration::milliseconds(1100));
    let response = app.client.post(&url).body("{\"n\":1}").send().await?;
    assert_eq!(response.status(), 429);
    assert!((1..=31 * 86_400).contains(&retry_after(&response)));
    let problem: Value = response.json().await?;
    assert_eq!(problem["code"], "quota_exceeded");
    let (_, events) = app
        .get_in(
            &owner,
            "/api/workspace/webhook-events?verdict=quota_exceeded",
        )
        .await?;
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
    assert_eq!(events["items"][0]["execution_id"], Value::Null);
    assert_eq!(app.count("executions").await?, 2);

    // The rate is another matter: a short wait, a different code, nothing stored.
    let app = TestApp::spawn().await?;
    app.set_free_limit("webhook_events_per_minute", 2).await?;
    let owner = app.signed_up("rate@example.com").await?;
    let (_, url) = hooked_workflow(&app, &owner).await?;
    for n in 0..2 {
        let response = app
            .client
            .post(&url)
            .body(format!("{{\"n\":{n}}}"))
            .send()
            .await?;
        assert_eq!(response.status(), 200);
    }
    let response = app.client.post(&url).body("{\"n\":3}").send().await?;
    assert_eq!(response.status(), 429);
    let wait = retry_after(&response);
    assert!((1..=60).contains(&wait), "{wait}");
    let problem: Value = response.json().await?;
    assert_eq!(problem["code"], "rate_limited", "{problem}");
    assert_eq!(app.count("webhook_events").await?, 2);
    Ok(())
}

/// A new access token (the clock moved past the old one's expiry).
async fn fresh_token(app: &TestApp, email: &str) -> Result<String, Error> {
    let tokens: Value = app
        .login(email, crate::helpers::PASSWORD)
        .await?
        .json()
        .await?;
    tokens.text("access_token")
}

#[tokio::test]
async fn the_snapshot_job_is_idempotent_and_fills_the_days_it_missed() -> TestResult {
    use diesel_async::RunQueryDsl;
    use fluxolab_kernel::ManualClock;
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(clock.clone()).await?;
    let mut owner = app.signed_up("snapshots@example.com").await?;
    let (_, created) = create_workflow(&app, &owner, 1).await?;
    let workflow = created.text("id")?;
    activate(&app, &owner, &workflow).await?;
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{workflow}/run"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 202);

    // The job as the workers run it, on the same database and clock.
    let url = app.db.url().to_owned();
    let settings = fluxolab_app::Settings::from_lookup(|variable| match variable {
        "DATABASE_URL" => Some(url.clone()),
        "APP_SECRET" => Some(crate::helpers::TEST_SECRET.to_owned()),
        _ => None,
    })?;
    let pool = fluxolab_app::startup::pool(&settings.database)?;
    let services = fluxolab_app::startup::services(
        &pool,
        &settings,
        clock.clone(),
        Arc::new(fluxolab_workflows::execution_service::Unobserved),
    )?;
    let rows = |workspace: String| {
        let pool = pool.clone();
        async move {
            #[derive(diesel::QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                count: i64,
            }
            let row: Count = diesel::sql_query(
                "SELECT count(*) AS count FROM workspace_usage_snapshots WHERE workspace_id = $1",
            )
            .bind::<diesel::sql_types::Uuid, _>(workspace.parse::<uuid::Uuid>()?)
            .get_result(&mut pool.get().await?)
            .await?;
            Ok::<i64, Error>(row.count)
        }
    };
    // Another process writing the snapshots (it holds their lock): this one skips.
    {
        use diesel_async::AsyncConnection;
        let mut other = diesel_async::AsyncPgConnection::establish(&url).await?;
        other.begin_test_transaction().await?;
        diesel::sql_query(
            "SELECT pg_advisory_xact_lock(hashtextextended('fluxolab.usage_snapshots', 0))",
        )
        .execute(&mut other)
        .await?;
        assert_eq!(services.billing.snapshot_usage().await?, 0);
        assert_eq!(rows(owner.workspace_id.clone()).await?, 0, "skipped");
    }
    services.billing.snapshot_usage().await?;
    services.billing.snapshot_usage().await?;
    assert_eq!(
        rows(owner.workspace_id.clone()).await?,
        1,
        "twice the same day: one row"
    );

    // Two days of downtime: the next run fills both.
    let today = clock.now().date();
    clock.advance(time::Duration::days(2));
    owner.access_token = fresh_token(&app, "snapshots@example.com").await?;
    services.billing.snapshot_usage().await?;
    assert_eq!(rows(owner.workspace_id.clone()).await?, 3);

    let to = today + time::Duration::days(2);
    let (status, history) = app
        .get_in(
            &owner,
            &format!("/api/settings/usage/history?metric=executions&from={today}&to={to}"),
        )
        .await?;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["metric"], "executions");
    let values: Vec<i64> = history["points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["value"].as_i64())
        .collect();
    assert_eq!(values, [1, 0, 0], "{history}");
    assert_eq!(history["points"][0]["day"], today.to_string());
    let (status, problem) = app
        .get_in(&owner, "/api/settings/usage/history?metric=vibes")
        .await?;
    assert_eq!(status, 422, "{problem}");
    let (status, _) = app
        .get_in(
            &owner,
            &format!("/api/settings/usage/history?from={to}&to={today}"),
        )
        .await?;
    assert_eq!(status, 422);

    // A month later the job also starts the billing periods that began meanwhile (one,
    // or two when the days above crossed a month's end), each once.
    let signed_up = clock.now().date() - time::Duration::days(2);
    clock.advance(time::Duration::days(33));
    let periods_begun = (1..=35)
        .map(|day| signed_up + time::Duration::days(day))
        .filter(|date| date.day() == 1)
        .count();
    owner.access_token = fresh_token(&app, "snapshots@example.com").await?;
    services.billing.snapshot_usage().await?;
    services.billing.snapshot_usage().await?;
    let (_, history) = app.get_in(&owner, "/api/settings/billing/history").await?;
    let kinds: Vec<&str> = history["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, vec!["period_renewed"; periods_begun], "{history}");
    Ok(())
}

#[tokio::test]
async fn every_way_of_starting_a_run_refuses_alike_once_the_quota_is_used_up() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    app.set_free_limit("executions_per_month", 1).await?;
    let owner = app.signed_up("alike@example.com").await?;
    let (workflow, url) = hooked_workflow(&app, &owner).await?;
    let delivered: Value = app
        .client
        .post(&url)
        .body("{\"n\":1}")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(delivered["verdict"], "accepted", "{delivered}");
    let execution = delivered["execution_id"].as_str().ok_or("no execution")?;
    let event = delivered["event_id"].as_str().ok_or("no event")?;
    let (_, hooks) = app.get_in(&owner, "/api/webhooks").await?;
    let hook = hooks["items"][0]["id"].as_str().ok_or("no webhook")?;

    for path in [
        format!("/api/workflows/{workflow}/run"),
        format!("/api/executions/{execution}/retry"),
        format!("/api/workspace/webhook-events/{event}/replay"),
        format!("/api/webhooks/{hook}/events/{event}/replay"),
    ] {
        let response = app
            .send_as(
                Method::POST,
                &owner.access_token,
                &path,
                Some(&owner.workspace_id),
                &json!({}),
            )
            .await?;
        assert_eq!(response.status(), 429, "{path}");
        let wait = retry_after(&response);
        assert!(
            (1..=31 * 86_400).contains(&wait),
            "{path}: Retry-After is the time to the period's end, not {wait}"
        );
        let problem: Value = response.json().await?;
        assert_eq!(problem["code"], "quota_exceeded", "{path}: {problem}");
    }
    assert_eq!(app.count("executions").await?, 1, "nothing more was queued");
    Ok(())
}
