//! API keys: shown once, stored as a digest, scoped within their creator's permissions,
//! capped by the plan, rotated with a grace period, revoked, and audited.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp, call};

async fn create(app: &TestApp, owner: &Account, name: &str) -> Result<(u16, Value), Error> {
    app.post_in(owner, "/api/settings/api/keys", &json!({"name": name, "scopes": ["workflows.read", "executions.read"], "environment": "production"}))
    .await
}

#[tokio::test]
async fn keys_are_shown_once_capped_by_the_plan_rotated_revoked_and_audited() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("keys@example.com").await?;
    let (status, first) = create(&app, &owner, "CI").await?;
    assert_eq!(status, 201, "{first}");
    let secret = first.text("key")?;
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
    let id = first.text("id")?;

    // Never shown again, and never stored in clear.
    let (_, listed) = app.get_in(&owner, "/api/settings/api/keys").await?;
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
    let (status, _) = app
        .post_in(&owner, "/api/settings/plan", &json!({"plan": "pro"}))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(create(&app, &owner, "Third").await?.0, 201);
    let (_, usage) = app.get_in(&owner, "/api/settings/usage").await?;
    assert_eq!(
        usage["api_keys"],
        json!({"used": 3, "limit": 10, "percent": 30.0})
    );
    let (status, problem) = app
        .post_in(&owner, "/api/settings/plan", &json!({"plan": "free"}))
        .await?;
    assert_eq!(
        status, 409,
        "three keys do not fit the free plan: {problem}"
    );
    assert_eq!(problem["limits"][0]["name"], "api_keys", "{problem}");

    // A key never exceeds its creator: a viewer cannot even manage keys, and unknown or
    // oversized scopes are named.
    let (status, problem) = app
        .post_in(
            &owner,
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
    app.post_in(
        &owner,
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
        access_token: viewer_login.text("access_token")?,
        workspace_id: owner.workspace_id.clone(),
        ..owner.clone()
    };
    let (status, _) = create(&app, &viewer, "Sneaky").await?;
    assert_eq!(status, 403);

    // Rotation: a new secret, the old one valid for the grace period.
    let (status, rotated) = app
        .post_in(
            &owner,
            &format!("/api/settings/api/keys/{id}/rotate"),
            &json!({"grace_seconds": 3600}),
        )
        .await?;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated.text("key")?;
    assert!(new_secret.starts_with("flx_") && new_secret != secret);
    assert!(rotated["previous_valid_until"].is_string(), "{rotated}");
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/settings/api/keys/{id}/rotate"),
            &json!({"grace_seconds": -1}),
        )
        .await?;
    assert_eq!(status, 422);

    // Revocation, then rotating is refused.
    let (status, revoked) = app
        .post_in(
            &owner,
            &format!("/api/settings/api/keys/{id}/revoke"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(revoked["status"], "revoked");
    let (status, problem) = app
        .post_in(
            &owner,
            &format!("/api/settings/api/keys/{id}/rotate"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 409, "{problem}");

    // The audit says who, from where, with what, and so does the activity log.
    let (_, audit) = app
        .get_in(&owner, &format!("/api/settings/api/keys/{id}/audit"))
        .await?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["revoked", "rotated", "created"], "{audit}");
    for entry in audit["items"].as_array().into_iter().flatten() {
        assert_eq!(entry["actor_user_id"], owner.id.as_str(), "{entry}");
        assert!(
            entry["ip"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("127.0.0.1")),
            "{entry}"
        );
    }
    let (_, activities) = app
        .get_in(&owner, "/api/workspace/activities?action=api_key.rotated")
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

async fn with_key(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    workspace: Option<&str>,
) -> Result<u16, Error> {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(workspace) = workspace {
        request = request.header("x-workspace-id", workspace);
    }
    if matches!(path, "/api/workflows") {
        request = request.json(&json!({"name": "By key"}));
    }
    Ok(request.send().await?.status().as_u16())
}

#[tokio::test]
async fn a_key_authenticates_within_its_scopes_and_its_workspace_only() -> TestResult {
    use fluxolab_kernel::ManualClock;
    use std::sync::Arc;
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(clock.clone()).await?;
    let mut owner = app.signed_up("keyed@example.com").await?;
    let (_, created) = app.post_in(&owner, "/api/settings/api/keys", &json!({
        "name": "Reader", "scopes": ["workflows.read"], "expires_at": (time::OffsetDateTime::now_utc() + time::Duration::days(10)).format(&time::format_description::well_known::Rfc3339)?
    }))
    .await?;
    let key = created.text("key")?;
    let id = created.text("id")?;

    // Reads, but cannot write.
    assert_eq!(
        with_key(&app, &key, Method::GET, "/api/workflows", None).await?,
        200
    );
    let denied = app
        .client
        .post(app.url("/api/workflows"))
        .bearer_auth(&key)
        .json(&json!({"name": "x"}))
        .send()
        .await?;
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.headers()["content-type"], "application/problem+json");
    // Not on account routes, and not as someone else's key.
    assert_eq!(
        with_key(&app, &key, Method::GET, "/api/auth/me", None).await?,
        401
    );
    assert_eq!(
        with_key(
            &app,
            "flx_madeUpmadeUpmadeUpmadeUpmadeUpmadeUpmadeUpmadeUp",
            Method::GET,
            "/api/workflows",
            None
        )
        .await?,
        401
    );

    // Bound to its workspace: another's ids are 404 even when named.
    let other = app.signed_up("neighbour@example.com").await?;
    let (_, theirs) = app
        .post_in(&other, "/api/workflows", &json!({"name": "Theirs"}))
        .await?;
    let theirs = theirs.text("id")?;
    assert_eq!(
        with_key(
            &app,
            &key,
            Method::GET,
            &format!("/api/workflows/{theirs}"),
            Some(&other.workspace_id)
        )
        .await?,
        404
    );
    assert_eq!(
        with_key(
            &app,
            &key,
            Method::GET,
            &format!("/api/workflows/{theirs}"),
            None
        )
        .await?,
        404
    );
    assert_eq!(
        with_key(
            &app,
            &key,
            Method::GET,
            "/api/workflows",
            Some(&owner.workspace_id)
        )
        .await?,
        200
    );

    // Rotation: the old secret works through the grace period, then stops.
    let (_, rotated) = app
        .post_in(
            &owner,
            &format!("/api/settings/api/keys/{id}/rotate"),
            &json!({"grace_seconds": 600}),
        )
        .await?;
    let new_key = rotated.text("key")?;
    assert_eq!(
        with_key(&app, &key, Method::GET, "/api/workflows", None).await?,
        200,
        "old secret in its grace"
    );
    assert_eq!(
        with_key(&app, &new_key, Method::GET, "/api/workflows", None).await?,
        200
    );
    clock.advance(time::Duration::seconds(601));
    assert_eq!(
        with_key(&app, &key, Method::GET, "/api/workflows", None).await?,
        401,
        "grace over"
    );
    assert_eq!(
        with_key(&app, &new_key, Method::GET, "/api/workflows", None).await?,
        200
    );
    let login: Value = app
        .login("keyed@example.com", crate::helpers::PASSWORD)
        .await?
        .json()
        .await?;
    owner.access_token = login.text("access_token")?;
    let (_, listed) = app.get_in(&owner, "/api/settings/api/keys").await?;
    assert!(listed["items"][0]["last_used_at"].is_string(), "{listed}");

    // Grace 0 stops the old secret at once.
    let (_, again) = app
        .post_in(
            &owner,
            &format!("/api/settings/api/keys/{id}/rotate"),
            &json!({"grace_seconds": 0}),
        )
        .await?;
    assert_eq!(
        with_key(&app, &new_key, Method::GET, "/api/workflows", None).await?,
        401
    );
    let newest = again.text("key")?;
    assert_eq!(
        with_key(&app, &newest, Method::GET, "/api/workflows", None).await?,
        200
    );

    // Revoked: refused at once (this process drops its cached copy).
    let (_, second) = app
        .post_in(
            &owner,
            "/api/settings/api/keys",
            &json!({"name": "Short-lived", "scopes": ["workflows.read"]}),
        )
        .await?;
    let second_key = second.text("key")?;
    assert_eq!(
        with_key(&app, &second_key, Method::GET, "/api/workflows", None).await?,
        200
    );
    let second_id = second.text("id")?;
    app.post_in(
        &owner,
        &format!("/api/settings/api/keys/{second_id}/revoke"),
        &json!({}),
    )
    .await?;
    assert_eq!(
        with_key(&app, &second_key, Method::GET, "/api/workflows", None).await?,
        401
    );

    // Expired: 401, and the refusal is in the audit.
    clock.advance(time::Duration::days(11));
    assert_eq!(
        with_key(&app, &newest, Method::GET, "/api/workflows", None).await?,
        401
    );
    let login: Value = app
        .login("keyed@example.com", crate::helpers::PASSWORD)
        .await?
        .json()
        .await?;
    owner.access_token = login.text("access_token")?;
    let (_, audit) = app
        .get_in(&owner, &format!("/api/settings/api/keys/{id}/audit"))
        .await?;
    assert_eq!(audit["items"][0]["action"], "expired_refused", "{audit}");
    Ok(())
}

/// The key's audit lines (newest first), as the owner sees them.
async fn audit_of(app: &TestApp, owner: &Account, id: &str) -> Result<Vec<Value>, Error> {
    let (status, audit) = app
        .get_in(owner, &format!("/api/settings/api/keys/{id}/audit"))
        .await?;
    assert_eq!(status, 200, "{audit}");
    audit.items()
}

fn with_action<'a>(audit: &'a [Value], action: &str) -> Vec<&'a Value> {
    audit
        .iter()
        .filter(|entry| entry["action"] == action)
        .collect()
}

/// A request with `key` from a client behind a proxy, with its own user agent.
async fn as_client(app: &TestApp, key: &str, method: Method, path: &str) -> Result<u16, Error> {
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(key)
        .header("user-agent", "audit-probe/1.0")
        .header("x-forwarded-for", "203.0.113.7, 10.0.0.1");
    if method == Method::POST {
        request = request.json(&json!({"name": "By key"}));
    }
    Ok(request.send().await?.status().as_u16())
}

#[tokio::test]
async fn refused_uses_of_a_key_are_audited_once_with_ip_and_user_agent() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("refusals@example.com").await?;
    let (status, created) = app
        .post_in(
            &owner,
            "/api/settings/api/keys",
            &json!({"name": "Reader", "scopes": ["workflows.read"]}),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    let key = created.text("key")?;
    let id = created.text("id")?;

    // A read-only key writing: 403 each time, one sampled `scope_denied` line.
    for _ in 0..2 {
        assert_eq!(
            as_client(&app, &key, Method::POST, "/api/workflows").await?,
            403
        );
    }
    assert_eq!(
        as_client(&app, &key, Method::GET, "/api/workflows").await?,
        200
    );
    let audit = audit_of(&app, &owner, &id).await?;
    let denied = with_action(&audit, "scope_denied");
    assert_eq!(denied.len(), 1, "{audit:?}");
    assert_eq!(
        denied[0]["details"],
        json!({"permission": "workflows.write", "method": "POST", "path": "/api/workflows"})
    );
    assert_eq!(denied[0]["ip"], "203.0.113.7", "the first forwarded hop");
    assert_eq!(denied[0]["user_agent"], "audit-probe/1.0");
    assert!(denied[0]["actor_user_id"].is_null(), "{audit:?}");

    // Revoked: 401 each time, one `revoked_refused` line.
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/settings/api/keys/{id}/revoke"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 200);
    for _ in 0..2 {
        assert_eq!(
            as_client(&app, &key, Method::GET, "/api/workflows").await?,
            401
        );
    }
    let audit = audit_of(&app, &owner, &id).await?;
    let refused = with_action(&audit, "revoked_refused");
    assert_eq!(refused.len(), 1, "{audit:?}");
    assert_eq!(refused[0]["ip"], "203.0.113.7");
    assert_eq!(refused[0]["user_agent"], "audit-probe/1.0");
    assert_eq!(
        audit[0]["action"], "revoked_refused",
        "newest first: {audit:?}"
    );
    assert_eq!(with_action(&audit, "revoked").len(), 1, "{audit:?}");

    // A rotated-away secret past its grace: 401 each time, one `grace_ended_refused`.
    let (_, second) = app
        .post_in(
            &owner,
            "/api/settings/api/keys",
            &json!({"name": "Rotated", "scopes": ["workflows.read"]}),
        )
        .await?;
    let old = second.text("key")?;
    let second_id = second.text("id")?;
    let (status, rotated) = app
        .post_in(
            &owner,
            &format!("/api/settings/api/keys/{second_id}/rotate"),
            &json!({"grace_seconds": 0}),
        )
        .await?;
    assert_eq!(status, 200, "{rotated}");
    for _ in 0..2 {
        assert_eq!(
            as_client(&app, &old, Method::GET, "/api/workflows").await?,
            401
        );
    }
    let audit = audit_of(&app, &owner, &second_id).await?;
    let ended = with_action(&audit, "grace_ended_refused");
    assert_eq!(ended.len(), 1, "{audit:?}");
    assert_eq!(ended[0]["user_agent"], "audit-probe/1.0");

    // A made-up key has no row: it is counted, not audited.
    assert_eq!(
        as_client(
            &app,
            "flx_madeUpmadeUpmadeUpmadeUpmadeUpmadeUpmadeUpmadeUp",
            Method::GET,
            "/api/workflows"
        )
        .await?,
        401
    );
    let metrics = app.get("/metrics").await?.text().await?;
    for (reason, count) in [
        ("unknown", 1),
        ("revoked", 2),
        ("grace_ended", 2),
        ("scope_denied", 2),
    ] {
        assert!(
            metrics.contains(&format!(
                "api_key_refusals_total{{reason=\"{reason}\"}} {count}"
            )),
            "{reason}: {metrics}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_key_secret_reaches_no_log_line_and_no_dump_only_its_digest() -> TestResult {
    use crate::binary::LoggedServer;
    use fluxolab_postgres::TestDb;

    let db = TestDb::new().await?;
    fluxolab_postgres::seed::seed_reference_data(&mut *db.pool().get().await?).await?;
    let server = LoggedServer::start(&db).await?;
    let base = server.base.clone();
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "dump@example.com", "password": crate::helpers::PASSWORD, "display_name": "Dump"}))
        .send()
        .await?;
    let tokens: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "dump@example.com", "password": crate::helpers::PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let access = &tokens.text("access_token")?;
    let created: Value = client
        .post(format!("{base}/api/settings/api/keys"))
        .bearer_auth(access)
        .json(&json!({"name": "Dumped", "scopes": ["workflows.read"]}))
        .send()
        .await?
        .json()
        .await?;
    let old = created.text("key")?;
    let id = created.text("id")?;
    assert!(old.starts_with("flx_"), "{created}");
    let key_status = |key: &str, method: Method| {
        let request = client
            .request(method.clone(), format!("{base}/api/workflows"))
            .bearer_auth(key);
        let request = if method == Method::POST {
            request.json(&json!({"name": "By key"}))
        } else {
            request
        };
        async move { Ok::<u16, Error>(request.send().await?.status().as_u16()) }
    };
    assert_eq!(key_status(&old, Method::GET).await?, 200);
    assert_eq!(key_status(&old, Method::POST).await?, 403);
    let rotated: Value = client
        .post(format!("{base}/api/settings/api/keys/{id}/rotate"))
        .bearer_auth(access)
        .json(&json!({"grace_seconds": 0}))
        .send()
        .await?
        .json()
        .await?;
    let new = rotated.text("key")?;
    assert!(new.starts_with("flx_") && new != old, "{rotated}");
    assert_eq!(key_status(&old, Method::GET).await?, 401, "grace 0");
    assert_eq!(key_status(&new, Method::GET).await?, 200);
    let listed = client
        .get(format!("{base}/api/settings/api/keys"))
        .bearer_auth(access)
        .send()
        .await?
        .text()
        .await?;
    assert!(!listed.contains(&old) && !listed.contains(&new), "{listed}");
    let logged = server.stop().await?;

    // The log knows the key by its prefix only (which shows it was captured at all).
    assert!(
        logged.contains(&old[..12]),
        "the refusal is logged by prefix"
    );
    for secret in [&old, &new] {
        assert!(
            !logged.contains(secret.as_str()),
            "a secret reached the log"
        );
        assert!(
            !logged.contains(&secret[12..]),
            "the secret part of a key reached the log"
        );
    }

    // The database holds digests, never secrets.
    let Ok(dump) = std::process::Command::new("pg_dump")
        .args(["--data-only", "--dbname", db.url()])
        .output()
    else {
        eprintln!("SKIPPED the pg_dump half: no pg_dump on PATH");
        return Ok(());
    };
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("workspace_api_keys"), "the keys were dumped");
    for secret in [&old, &new] {
        assert!(!dump.contains(&secret[12..]), "a secret is in the dump");
        assert!(
            dump.contains(&hex::encode(fluxolab_workspace::api_keys::key_hash(secret))),
            "its SHA-256 is"
        );
    }
    assert!(dump.contains(&new[..12]), "and its lookup prefix");
    Ok(())
}
