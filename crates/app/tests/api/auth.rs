//! Accounts and tokens, end to end over HTTP.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fluxolab_identity::{SessionFamilyId, TokenIssuer, TokenSettings};
use fluxolab_kernel::{ManualClock, UserId};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::TestResult;
use crate::helpers::{Fields, PASSWORD, TEST_SECRET, TestApp};

async fn problem(response: reqwest::Response) -> Result<(u16, Value), reqwest::Error> {
    let status = response.status().as_u16();
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..])
    );
    Ok((status, response.json().await?))
}

#[tokio::test]
async fn the_full_journey_register_login_me_refresh_reuse_logout() -> TestResult {
    let app = TestApp::spawn().await?;
    let user = app.register("ada@example.com").await?;
    assert_eq!(user["email"], "ada@example.com");
    assert!(user["default_workspace_id"].is_string());

    let login = app.login("Ada@Example.com", PASSWORD).await?;
    assert_eq!(login.status(), 200);
    let tokens: Value = login.json().await?;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = &tokens.text("access_token")?;
    let first_refresh = tokens.text("refresh_token")?;

    let me: Value = app
        .get_as(access, "/api/auth/me", None)
        .await?
        .json()
        .await?;
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["default_workspace_id"], user["default_workspace_id"]);
    assert_eq!(
        me["memberships"][0]["workspace_id"],
        user["default_workspace_id"]
    );
    assert_eq!(me["memberships"][0]["role"], "owner");

    let refreshed = app
        .post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": first_refresh}),
        )
        .await?;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await?;
    let second_refresh = refreshed.text("refresh_token")?;
    assert_ne!(second_refresh, first_refresh);

    // The spent token again: theft is assumed and the whole family goes.
    let (status, reuse) = problem(
        app.post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": first_refresh}),
        )
        .await?,
    )
    .await?;
    assert_eq!(
        (status, reuse["code"].as_str()),
        (401, Some("invalid_refresh_token"))
    );
    let (status, _) = problem(
        app.post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": second_refresh}),
        )
        .await?,
    )
    .await?;
    assert_eq!(status, 401, "the rotated-to token died with its family");

    // A new login gives a new family; logging out ends it.
    let tokens: Value = app.login("ada@example.com", PASSWORD).await?.json().await?;
    let refresh = &tokens.text("refresh_token")?;
    let logout = app
        .post_json("/api/auth/logout", &json!({"refresh_token": refresh}))
        .await?;
    assert_eq!(logout.status(), 204);
    let (status, _) = problem(
        app.post_json("/api/auth/refresh", &json!({"refresh_token": refresh}))
            .await?,
    )
    .await?;
    assert_eq!(status, 401);
    Ok(())
}

#[tokio::test]
async fn a_taken_email_is_a_409_whatever_its_case() -> TestResult {
    let app = TestApp::spawn().await?;
    app.register("grace@example.com").await?;
    let (status, body) = problem(
        app.post_json(
            "/api/auth/register",
            &json!({"email": "GRACE@example.com", "password": PASSWORD, "display_name": "G"}),
        )
        .await?,
    )
    .await?;
    assert_eq!((status, body["code"].as_str()), (409, Some("email_taken")));
    assert_eq!(app.count("users").await?, 1);
    Ok(())
}

#[tokio::test]
async fn bad_registrations_name_the_field_and_write_nothing() -> TestResult {
    let app = TestApp::spawn().await?;
    let long_name = "n".repeat(121);
    let cases = [
        (json!({"password": PASSWORD, "display_name": "A"}), "email"),
        (
            json!({"email": "ada@example.com", "display_name": "A"}),
            "password",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD, "display_name": "A"}),
            "email",
        ),
        (
            json!({"email": "ada@example.com", "password": "short", "display_name": "A"}),
            "password",
        ),
        (
            json!({"email": "ada@example.com", "password": "ada@example.com", "display_name": "A"}),
            "password",
        ),
        (
            json!({"email": "ada@example.com", "password": PASSWORD, "display_name": long_name}),
            "display_name",
        ),
        (
            json!({"email": "ada@example.com", "password": PASSWORD, "display_name": 42}),
            "display_name",
        ),
        (
            json!({"email": ["ada@example.com"], "password": PASSWORD, "display_name": "A"}),
            "email",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = problem(app.post_json("/api/auth/register", &body).await?).await?;
        assert_eq!(status, 422, "{body}");
        assert_eq!(problem["code"], "validation_failed");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|error| error["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
    }
    let not_json = app
        .client
        .post(app.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await?;
    assert_eq!(not_json.status(), 400);
    for table in ["users", "workspaces", "workspace_members", "sessions"] {
        assert_eq!(app.count(table).await?, 0, "{table}");
    }
    Ok(())
}

#[tokio::test]
async fn registering_provisions_the_personal_workspace() -> TestResult {
    let app = TestApp::spawn().await?;
    let account = app.signed_up("lin@example.com").await?;
    assert_eq!(app.count("user_settings").await?, 1);
    assert_eq!(app.count("user_security_settings").await?, 1);
    assert_eq!(app.count("workspace_settings").await?, 1);
    assert_eq!(app.count("workspace_environments").await?, 3);
    assert_eq!(app.count("subscriptions").await?, 1);
    assert_eq!(
        app.count("workspace_data_keys").await?,
        1,
        "the vault key comes with the workspace"
    );
    let workspace: Value = app
        .get_as(
            &account.access_token,
            &format!("/api/workspaces/{}", account.workspace_id),
            None,
        )
        .await?
        .json()
        .await?;
    assert_eq!(workspace["role"], "owner");
    assert_eq!(workspace["plan"], "free");
    Ok(())
}

#[tokio::test]
async fn unknown_email_and_wrong_password_answer_alike() -> TestResult {
    let app = TestApp::spawn().await?;
    app.register("kim@example.com").await?;
    let (status_a, unknown) = problem(app.login("nobody@example.com", PASSWORD).await?).await?;
    let (status_b, wrong) =
        problem(app.login("kim@example.com", "wrong password!!").await?).await?;
    assert_eq!(status_a, 401);
    assert_eq!(status_b, 401);
    for field in ["type", "title", "status", "detail", "code"] {
        assert_eq!(unknown[field], wrong[field], "{field}");
    }
    Ok(())
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_until_the_window_passes() -> TestResult {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(clock.clone()).await?;
    app.register("eve@example.com").await?;
    for _ in 0..5 {
        assert_eq!(
            app.login("eve@example.com", "not the password")
                .await?
                .status(),
            401
        );
    }
    assert_eq!(
        app.login("eve@example.com", PASSWORD).await?.status(),
        401,
        "locked: even the right password is refused"
    );
    clock.advance(Duration::minutes(14));
    assert_eq!(app.login("eve@example.com", PASSWORD).await?.status(), 401);
    clock.advance(Duration::minutes(2));
    assert_eq!(app.login("eve@example.com", PASSWORD).await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_401() -> TestResult {
    let app = TestApp::spawn().await?;
    let account = app.signed_up("max@example.com").await?;
    let user = UserId::from_uuid(account.id.parse()?);

    let other_key = TokenIssuer::new(
        b"some-other-key-some-other-key-123",
        TokenSettings::default(),
        Arc::new(ManualClock::new(OffsetDateTime::now_utc())),
    )
    .issue(user, None, SessionFamilyId::new())?
    .token;
    // Signed with the server's own key (derived as the server derives it) but long ago.
    let settings = fluxolab_app::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some("postgres://localhost/x".to_owned()),
        "APP_SECRET" => Some(TEST_SECRET.to_owned()),
        _ => None,
    })?;
    let expired = TokenIssuer::new(
        settings.jwt_key(),
        TokenSettings::default(),
        Arc::new(ManualClock::new(
            OffsetDateTime::now_utc() - Duration::hours(1),
        )),
    )
    .issue(user, None, SessionFamilyId::new())?
    .token;
    let other_audience = TokenIssuer::new(
        settings.jwt_key(),
        TokenSettings {
            audience: "another-service".to_owned(),
            ..TokenSettings::default()
        },
        Arc::new(ManualClock::new(OffsetDateTime::now_utc())),
    )
    .issue(user, None, SessionFamilyId::new())?
    .token;
    let payload = account
        .access_token
        .split('.')
        .nth(1)
        .ok_or("an access token has three parts")?;
    let unsigned = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );

    assert_eq!(
        app.get_as(&account.access_token, "/api/auth/me", None)
            .await?
            .status(),
        200
    );
    for (name, token) in [
        ("alg none", unsigned.as_str()),
        ("another key", other_key.as_str()),
        ("expired", expired.as_str()),
        ("another audience", other_audience.as_str()),
        ("garbage", "not.a.token"),
    ] {
        let response = app.get_as(token, "/api/auth/me", None).await?;
        assert_eq!(response.status(), 401, "{name}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
    }
    assert_eq!(
        app.get("/api/auth/me").await?.status(),
        401,
        "no token at all"
    );
    Ok(())
}

#[tokio::test]
async fn changing_the_password_revokes_every_other_session() -> TestResult {
    let app = TestApp::spawn().await?;
    let account = app.signed_up("zoe@example.com").await?;
    let other: Value = app.login("zoe@example.com", PASSWORD).await?.json().await?;

    let wrong = app
        .send_as(
            reqwest::Method::POST,
            &account.access_token,
            "/api/auth/password",
            None,
            &json!({"current_password": "not it at all", "new_password": "a brand new passphrase"}),
        )
        .await?;
    assert_eq!(wrong.status(), 422);

    let changed = app
        .send_as(
            reqwest::Method::POST,
            &account.access_token,
            "/api/auth/password",
            None,
            &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await?;
    assert_eq!(changed.status(), 204);
    let other_refresh = app
        .post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": other["refresh_token"]}),
        )
        .await?;
    assert_eq!(other_refresh.status(), 401, "the other session is revoked");
    let own_refresh = app
        .post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": account.refresh_token}),
        )
        .await?;
    assert_eq!(
        own_refresh.status(),
        200,
        "the caller's own session lives on"
    );
    assert_eq!(app.login("zoe@example.com", PASSWORD).await?.status(), 401);
    assert_eq!(
        app.login("zoe@example.com", "a brand new passphrase")
            .await?
            .status(),
        200
    );
    Ok(())
}
