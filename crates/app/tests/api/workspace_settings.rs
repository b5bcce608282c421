//! `/api/settings/workspace`: defaults, partial changes, every invalid field named with
//! nothing written, roles (viewers read only, only owners open internal networks), the
//! activity entry and the summary.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, TestApp, call, execution, three_nodes};

const PATH: &str = "/api/settings/workspace";

async fn patch(app: &TestApp, who: &Account, body: Value) -> Result<(u16, Value), Error> {
    call(app, who, Method::PATCH, PATH, &body).await
}

/// `who` joins `owner`'s workspace as `role`, and acts there.
async fn member(app: &TestApp, owner: &Account, email: &str, role: &str) -> Result<Account, Error> {
    let joined = app.signed_up(email).await?;
    let (status, added) = call(
        app,
        owner,
        Method::POST,
        "/api/workspace/members",
        &json!({"email": email, "role": role}),
    )
    .await?;
    assert_eq!(status, 201, "{added}");
    Ok(Account {
        workspace_id: owner.workspace_id.clone(),
        ..joined
    })
}

fn fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .expect("a 422 lists its errors")
        .iter()
        .map(|error| error["field"].as_str().expect("each error names a field"))
        .collect()
}

#[tokio::test]
async fn settings_start_at_their_defaults_and_change_field_by_field() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("settings@example.com").await?;

    let (status, settings) = call(&app, &owner, Method::GET, PATH, &json!({})).await?;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["timezone"], "UTC");
    assert_eq!(settings["locale"], "en");
    assert_eq!(settings["allow_internal_network"], false);
    assert_eq!(
        settings["execution_defaults"],
        json!({"timeout_seconds": 300, "max_attempts": 3, "save_successful_steps": true,
               "code_max_memory_mb": 128, "code_max_timeout_ms": 10000})
    );
    assert_eq!(
        settings["notifications"],
        json!({"execution_failed": {"emails": [], "webhook_url": null}, "weekly_usage_report": false})
    );
    assert_eq!(
        settings["branding"],
        json!({"display_name": null, "logo_url": null, "primary_color": null})
    );

    let (status, changed) = patch(
        &app,
        &owner,
        json!({
            "timezone": "Europe/Lisbon",
            "locale": "pt-BR",
            "execution_defaults": {"max_attempts": 5},
            "notifications": {"execution_failed": {"emails": ["ops@example.com"], "webhook_url": "https://hooks.example.com/failed"}},
            "branding": {"display_name": "Acme Ops", "logo_url": "https://cdn.example.com/logo.png", "primary_color": "#1a2B3c"}
        }),
    )
    .await?;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["timezone"], "Europe/Lisbon");
    assert_eq!(changed["locale"], "pt-BR");
    assert_eq!(changed["execution_defaults"]["max_attempts"], 5);
    assert_eq!(changed["execution_defaults"]["timeout_seconds"], 300);
    assert_eq!(
        changed["notifications"]["execution_failed"]["emails"],
        json!(["ops@example.com"])
    );
    assert_eq!(changed["branding"]["primary_color"], "#1a2B3c");

    // `null` clears a field; what is left out stays.
    let (status, cleared) = patch(&app, &owner, json!({"branding": {"logo_url": null}})).await?;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["branding"]["logo_url"], Value::Null);
    assert_eq!(cleared["branding"]["display_name"], "Acme Ops");
    let (_, read) = call(&app, &owner, Method::GET, PATH, &json!({})).await?;
    assert_eq!(read, cleared);

    // One activity per change, naming the keys that changed (no values).
    let (status, activities) = call(
        &app,
        &owner,
        Method::GET,
        "/api/workspace/activities?action=workspace.settings_updated",
        &json!({}),
    )
    .await?;
    assert_eq!(status, 200, "{activities}");
    let items = activities["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{activities}");
    assert_eq!(
        items[0]["metadata"]["changed"],
        json!(["branding.logo_url"])
    );
    let first = &items[1]["metadata"]["changed"];
    for key in [
        "timezone",
        "locale",
        "execution_defaults.max_attempts",
        "branding.primary_color",
    ] {
        assert!(
            first.as_array().expect("keys").contains(&json!(key)),
            "{first}"
        );
    }
    assert!(!items[1]["metadata"].to_string().contains("ops@example.com"));

    // Runs queued from now on take the workspace's default attempts.
    let (status, created) = call(
        &app,
        &owner,
        Method::POST,
        "/api/workflows",
        &json!({"name": "Defaults", "definition": three_nodes()}),
    )
    .await?;
    assert_eq!(status, 201, "{created}");
    let workflow = created["id"].as_str().expect("an id");
    let (status, _) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/workflows/{workflow}/activate"),
        &json!({"version": 1}),
    )
    .await?;
    assert_eq!(status, 200);
    let (status, queued) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/workflows/{workflow}/run"),
        &json!({"payload": {}}),
    )
    .await?;
    assert_eq!(status, 202, "{queued}");
    let run = execution(
        &app,
        &owner,
        queued["execution_id"].as_str().expect("an id"),
    )
    .await?;
    assert_eq!(run["max_attempts"], 5, "{run}");

    // The summary carries the settings.
    let (status, summary) = call(
        &app,
        &owner,
        Method::GET,
        "/api/settings/summary",
        &json!({}),
    )
    .await?;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["settings"]["timezone"], "Europe/Lisbon");
    Ok(())
}

#[tokio::test]
async fn invalid_settings_name_every_field_and_change_nothing() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("bad-settings@example.com").await?;
    let (_, before) = call(&app, &owner, Method::GET, PATH, &json!({})).await?;

    let (status, problem) = patch(
        &app,
        &owner,
        json!({
            "timezone": "Mars/Base",
            "locale": "pt-BR",
            "execution_defaults": {"timeout_seconds": 0, "max_attempts": 11},
            "notifications": {"execution_failed": {"emails": ["not-an-address"], "webhook_url": "ftp://x.example"}},
            "branding": {"logo_url": "http://cdn.example.com/logo.png", "primary_color": "red"}
        }),
    )
    .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        fields(&problem),
        [
            "timezone",
            "execution_defaults.timeout_seconds",
            "execution_defaults.max_attempts",
            "notifications.execution_failed.emails",
            "notifications.execution_failed.webhook_url",
            "branding.logo_url",
            "branding.primary_color",
        ]
    );
    let (_, after) = call(&app, &owner, Method::GET, PATH, &json!({})).await?;
    assert_eq!(
        after, before,
        "a refused change writes nothing (locale included)"
    );

    for body in [
        json!({"colour": "#ffffff"}),
        json!({"branding": {"logo": "https://cdn.example.com/l.png"}}),
    ] {
        let (status, problem) = patch(&app, &owner, body.clone()).await?;
        assert_eq!(status, 422, "{body}: {problem}");
    }
    let (status, problem) = patch(&app, &owner, json!({"timezone": 7})).await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["timezone"]);
    Ok(())
}

#[tokio::test]
async fn viewers_read_admins_change_and_only_owners_open_internal_networks() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("owner-settings@example.com").await?;
    let admin = member(&app, &owner, "admin-settings@example.com", "admin").await?;
    let viewer = member(&app, &owner, "viewer-settings@example.com", "viewer").await?;

    let (status, _) = call(&app, &viewer, Method::GET, PATH, &json!({})).await?;
    assert_eq!(status, 200);
    let (status, problem) = patch(&app, &viewer, json!({"locale": "de"})).await?;
    assert_eq!(status, 403, "{problem}");

    let (status, changed) = patch(&app, &admin, json!({"locale": "de"})).await?;
    assert_eq!(status, 200, "{changed}");
    let (status, problem) = patch(
        &app,
        &admin,
        json!({"allow_internal_network": true, "locale": "fr"}),
    )
    .await?;
    assert_eq!(status, 403, "{problem}");
    assert!(
        problem["detail"].to_string().contains("network.manage"),
        "{problem}"
    );
    let (_, unchanged) = call(&app, &owner, Method::GET, PATH, &json!({})).await?;
    assert_eq!(unchanged["allow_internal_network"], false);
    assert_eq!(unchanged["locale"], "de");

    let (status, opened) = patch(&app, &owner, json!({"allow_internal_network": true})).await?;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["allow_internal_network"], true);
    let (_, activities) = call(
        &app,
        &owner,
        Method::GET,
        "/api/workspace/activities?action=workspace.settings_updated",
        &json!({}),
    )
    .await?;
    let latest = &activities["items"][0]["metadata"];
    assert_eq!(latest["severity"], "warning", "{activities}");
    assert_eq!(latest["changed"], json!(["allow_internal_network"]));

    // Another workspace's settings are its own.
    let outsider = app.signed_up("outsider-settings@example.com").await?;
    let (_, theirs) = call(&app, &outsider, Method::GET, PATH, &json!({})).await?;
    assert_eq!(theirs["allow_internal_network"], false);
    assert_eq!(theirs["locale"], "en");
    Ok(())
}

#[tokio::test]
async fn webhook_changes_are_integration_events_and_the_status_counts_them() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("integrations@example.com").await?;
    let (status, statuses) = app
        .get_in(&owner, "/api/settings/integrations/status")
        .await?;
    assert_eq!(status, 200, "{statuses}");
    let kinds: Vec<&str> = statuses
        .as_array()
        .expect("a list")
        .iter()
        .map(|entry| entry["kind"].as_str().expect("a kind"))
        .collect();
    assert_eq!(
        kinds,
        [
            "webhooks",
            "secret_providers",
            "sso",
            "ldap",
            "log_destinations",
            "connectors",
            "smtp",
            "otlp"
        ]
    );
    assert!(
        statuses
            .as_array()
            .expect("a list")
            .iter()
            .all(|entry| entry["status"] == "not_configured" && entry["configured"] == 0),
        "{statuses}"
    );

    let registration = app
        .create_webhook(&owner, &json!({"name": "Inbound", "provider": "none"}))
        .await?;
    let path = format!("/api/webhooks/{}", registration.id);
    let (status, _) = app
        .patch_in(&owner, &path, &json!({"enabled": false}))
        .await?;
    assert_eq!(status, 200);
    let (status, _) = app
        .patch_in(&owner, &path, &json!({"name": "Inbound 2"}))
        .await?;
    assert_eq!(status, 200);

    let (_, statuses) = app
        .get_in(&owner, "/api/settings/integrations/status")
        .await?;
    assert_eq!(statuses[0]["kind"], "webhooks");
    assert_eq!(statuses[0]["configured"], 1, "{statuses}");
    assert_eq!(statuses[0]["enabled"], 0, "{statuses}");
    assert_eq!(statuses[0]["status"], "ok", "{statuses}");
    let (status, events) = app
        .get_in(
            &owner,
            "/api/settings/integrations/events?kind=webhooks&limit=2",
        )
        .await?;
    assert_eq!(status, 200, "{events}");
    let page: Vec<&str> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|event| event["event"].as_str().expect("an event"))
        .collect();
    assert_eq!(page, ["updated", "disabled"]);
    assert_eq!(events["items"][0]["integration_id"], json!(registration.id));
    let cursor = events["next_cursor"].as_str().expect("a second page");
    let (_, rest) = app
        .get_in(
            &owner,
            &format!("/api/settings/integrations/events?kind=webhooks&cursor={cursor}"),
        )
        .await?;
    assert_eq!(rest["items"][0]["event"], "configured", "{rest}");
    assert_eq!(rest["next_cursor"], Value::Null);

    let (status, problem) = app
        .get_in(&owner, "/api/settings/integrations/events?kind=pigeons")
        .await?;
    assert_eq!(status, 422, "{problem}");
    let outsider = app.signed_up("integrations-outsider@example.com").await?;
    let (_, theirs) = app
        .get_in(&outsider, "/api/settings/integrations/events")
        .await?;
    assert_eq!(theirs["items"], json!([]), "{theirs}");
    Ok(())
}
