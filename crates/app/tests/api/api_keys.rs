//! API keys: shown once, stored as a digest, scoped within their creator's permissions,
//! capped by the plan, rotated with a grace period, revoked, and audited.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, TestApp, call};

async fn create(app: &TestApp, owner: &Account, name: &str) -> Result<(u16, Value), Error> {
    call(
        app,
        owner,
        Method::POST,
        "/api/settings/api/keys",
        &json!({"name": name, "scopes": ["workflows.read", "executions.read"], "environment": "production"}),
    )
    .await
}

#[tokio::test]
async fn keys_are_shown_once_capped_by_the_plan_rotated_revoked_and_audited() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("keys@example.com").await?;
    let (status, first) = create(&app, &owner, "CI").await?;
    assert_eq!(status, 201, "{first}");
    let secret = first["key"].as_str().unwrap_or_default().to_owned();
    assert!(
        secret.starts_with("flx_") && secret.len() >= 4 + 43,
        "{secret}"
    );
    assert_eq!(first["prefix"], &secret[..12]);
    assert_eq!(first["last_four"], &secret[secret.len() - 4..]);
    assert_eq!(first["status"], "active");
    assert_eq!(
        first["scopes"],
        json!(["workflows.read", "executions.read"])
    );
    let id = first["id"].as_str().unwrap_or_default().to_owned();

    // Never shown again, and never stored in clear.
    let (_, listed) = call(
        &app,
        &owner,
        Method::GET,
        "/api/settings/api/keys",
        &json!({}),
    )
    .await?;
    assert!(!listed.to_string().contains(&secret), "{listed}");
    assert_eq!(listed["items"][0]["created_by"], owner.id.as_str());
    {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Stored {
            #[diesel(sql_type = diesel::sql_types::Bytea)]
            secret_hash: Vec<u8>,
        }
        let stored: Stored = diesel::sql_query("SELECT secret_hash FROM workspace_api_keys")
            .get_result(&mut app.db.pool().get().await?)
            .await?;
        assert_eq!(stored.secret_hash.len(), 32, "a SHA-256 digest");
        assert!(!String::from_utf8_lossy(&stored.secret_hash).contains(&secret[4..]));
    }

    // The free plan allows two keys.
    assert_eq!(create(&app, &owner, "Second").await?.0, 201);
    let (status, problem) = create(&app, &owner, "Third").await?;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "plan_limit");
    assert_eq!(
        problem["limit"],
        json!({"name": "api_keys", "value": 2, "current": 2})
    );
    let (status, _) = call(
        &app,
        &owner,
        Method::POST,
        "/api/settings/plan",
        &json!({"plan": "pro"}),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(create(&app, &owner, "Third").await?.0, 201);
    let (_, usage) = call(&app, &owner, Method::GET, "/api/settings/usage", &json!({})).await?;
    assert_eq!(
        usage["api_keys"],
        json!({"used": 3, "limit": 10, "percent": 30.0})
    );
    let (status, problem) = call(
        &app,
        &owner,
        Method::POST,
        "/api/settings/plan",
        &json!({"plan": "free"}),
    )
    .await?;
    assert_eq!(
        status, 409,
        "three keys do not fit the free plan: {problem}"
    );
    assert_eq!(problem["limits"][0]["name"], "api_keys", "{problem}");

    // A key never exceeds its creator: a viewer cannot even manage keys, and unknown or
    // oversized scopes are named.
    let (status, problem) = call(
        &app,
        &owner,
        Method::POST,
        "/api/settings/api/keys",
        &json!({
            "name": "Bad", "scopes": ["workflows.fly"], "environment": "moon"
        }),
    )
    .await?;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["scopes", "environment"]);
    app.signed_up("viewer@example.com").await?;
    call(
        &app,
        &owner,
        Method::POST,
        "/api/workspace/members",
        &json!({"email": "viewer@example.com", "role": "viewer"}),
    )
    .await?;
    let viewer_login: Value = app
        .login("viewer@example.com", crate::helpers::PASSWORD)
        .await?
        .json()
        .await?;
    let viewer = Account {
        access_token: viewer_login["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        workspace_id: owner.workspace_id.clone(),
        ..owner.clone()
    };
    let (status, _) = create(&app, &viewer, "Sneaky").await?;
    assert_eq!(status, 403);

    // Rotation: a new secret, the old one valid for the grace period.
    let (status, rotated) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/settings/api/keys/{id}/rotate"),
        &json!({"grace_seconds": 3600}),
    )
    .await?;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["key"].as_str().unwrap_or_default();
    assert!(new_secret.starts_with("flx_") && new_secret != secret);
    assert!(rotated["previous_valid_until"].is_string(), "{rotated}");
    let (status, _) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/settings/api/keys/{id}/rotate"),
        &json!({"grace_seconds": -1}),
    )
    .await?;
    assert_eq!(status, 422);

    // Revocation, then rotating is refused.
    let (status, revoked) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/settings/api/keys/{id}/revoke"),
        &json!({}),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(revoked["status"], "revoked");
    let (status, problem) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/settings/api/keys/{id}/rotate"),
        &json!({}),
    )
    .await?;
    assert_eq!(status, 409, "{problem}");

    // The audit says who, from where, with what, and so does the activity log.
    let (_, audit) = call(
        &app,
        &owner,
        Method::GET,
        &format!("/api/settings/api/keys/{id}/audit"),
        &json!({}),
    )
    .await?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["revoked", "rotated", "created"], "{audit}");
    assert_eq!(audit["items"][0]["actor_user_id"], owner.id.as_str());
    assert!(
        audit["items"][0]["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("127.0.0.1")),
        "{audit}"
    );
    let (_, activities) = call(
        &app,
        &owner,
        Method::GET,
        "/api/workspace/activities?action=api_key.rotated",
        &json!({}),
    )
    .await?;
    assert_eq!(activities["items"].as_array().map(Vec::len), Some(1));

    // Another workspace sees none of it.
    let outsider = app.signed_up("outsider@example.com").await?;
    for (method, path) in [
        (Method::POST, format!("/api/settings/api/keys/{id}/revoke")),
        (Method::POST, format!("/api/settings/api/keys/{id}/rotate")),
        (Method::GET, format!("/api/settings/api/keys/{id}/audit")),
    ] {
        let (status, _) = call(&app, &outsider, method.clone(), &path, &json!({})).await?;
        assert_eq!(status, 404, "{method} {path}");
    }
    Ok(())
}
