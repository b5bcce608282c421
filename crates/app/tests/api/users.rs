//! The signed-in user's preferences and sessions, end to end over HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn settings_have_defaults_are_saved_and_validated() -> TestResult {
    let app = TestApp::spawn().await?;
    let user = app.signed_up("prefs@example.com").await?;
    let defaults: Value = app
        .get_as(&user.access_token, "/api/users/me/settings", None)
        .await?
        .json()
        .await?;
    assert_eq!(
        defaults,
        json!({"locale": "en", "timezone": "UTC", "theme": "system", "notifications": {}})
    );

    let wanted = json!({"locale": "pt-BR", "timezone": "America/Sao_Paulo", "theme": "dark",
                        "notifications": {"execution_failed": true, "weekly_digest": false}});
    let saved = app
        .send_as(
            Method::PUT,
            &user.access_token,
            "/api/users/me/settings",
            None,
            &wanted,
        )
        .await?;
    assert_eq!(saved.status(), 200);
    let read: Value = app
        .get_as(&user.access_token, "/api/users/me/settings", None)
        .await?
        .json()
        .await?;
    assert_eq!(read, wanted);

    let bad = app
        .send_as(
            Method::PUT,
            &user.access_token,
            "/api/users/me/settings",
            None,
            &json!({"locale": "EN_us", "timezone": "", "theme": "neon", "notifications": {"x": "yes"}}),
        )
        .await?;
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await?;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|error| error["field"].as_str())
        .collect();
    assert_eq!(fields, ["locale", "timezone", "theme", "notifications.x"]);
    let unchanged: Value = app
        .get_as(&user.access_token, "/api/users/me/settings", None)
        .await?
        .json()
        .await?;
    assert_eq!(unchanged, wanted, "nothing half-written");
    Ok(())
}

#[tokio::test]
async fn sessions_are_listed_and_one_can_be_signed_out() -> TestResult {
    let app = TestApp::spawn().await?;
    let user = app.signed_up("devices@example.com").await?;
    let other = app.signed_up("stranger@example.com").await?;
    let second: Value = app
        .login("devices@example.com", PASSWORD)
        .await?
        .json()
        .await?;

    let overview: Value = app
        .get_as(&user.access_token, "/api/users/me/security", None)
        .await?
        .json()
        .await?;
    assert!(overview["password_changed_at"].is_string());
    let sessions = overview["sessions"]
        .as_array()
        .ok_or_else(|| format!("no sessions: {overview}"))?;
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other_session = sessions
        .iter()
        .find(|s| s["current"] == false)
        .and_then(|s| s["id"].as_str())
        .ok_or("no other session with an id")?
        .to_owned();

    // Someone else's session id is not found for this user.
    let foreign = app
        .send_as(
            Method::DELETE,
            &other.access_token,
            &format!("/api/users/me/sessions/{other_session}"),
            None,
            &json!({}),
        )
        .await?;
    assert_eq!(foreign.status(), 404);

    let revoked = app
        .send_as(
            Method::DELETE,
            &user.access_token,
            &format!("/api/users/me/sessions/{other_session}"),
            None,
            &json!({}),
        )
        .await?;
    assert_eq!(revoked.status(), 204);
    let refresh = app
        .post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": second["refresh_token"]}),
        )
        .await?;
    assert_eq!(refresh.status(), 401);
    let again = app
        .send_as(
            Method::DELETE,
            &user.access_token,
            &format!("/api/users/me/sessions/{other_session}"),
            None,
            &json!({}),
        )
        .await?;
    assert_eq!(again.status(), 404);
    Ok(())
}
