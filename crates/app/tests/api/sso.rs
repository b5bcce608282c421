//! OpenID Connect single sign-on against a real, certified provider (`oidc-provider` from
//! npm, started by the test, its login and consent forms submitted over HTTP): the
//! configuration checked by discovery and gated by plan, the secret never shown or
//! stored in clear; a browser's sign-in, JIT provisioning with the mapped role and the
//! one-use ticket; refusals (replayed state, wrong nonce, expired ticket, foreign domain,
//! unverified e-mail, no JIT) recorded; and `enforce_sso`.

use reqwest::header::LOCATION;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::oidc::{Browser, CLIENT_ID, CLIENT_SECRET, OidcProvider};
use crate::helpers::{Account, Error, TestApp};

const CONFIGURE: &str = "/api/settings/sso/configure";

/// The provider's accounts: their e-mail addresses, whether verified, their groups.
fn accounts() -> Value {
    json!({
        "ada": {"email": "ada@corp.test", "email_verified": true, "name": "Ada Lovelace", "groups": ["eng"]},
        "eve": {"email": "eve@evil.test", "email_verified": true, "name": "Eve", "groups": []},
        "bob": {"email": "bob@corp.test", "email_verified": false, "name": "Bob", "groups": []},
        "cat": {"email": "cat@corp.test", "email_verified": true, "name": "Cat", "groups": ["ops"]},
    })
}

/// An app whose owner is on the business plan and may reach loopback, and a provider
/// redirecting to the app; `None` when the provider is not installed (outside CI).
async fn setup(owner_email: &str) -> Result<Option<(TestApp, Account, OidcProvider)>, Error> {
    let app = TestApp::spawn().await?;
    let Some(provider) =
        OidcProvider::start(&app.url("/api/auth/sso/callback"), &accounts()).await?
    else {
        return Ok(None);
    };
    let owner = app.signed_up(owner_email).await?;
    app.allow_internal_network().await?;
    let (status, body) = app
        .post_in(&owner, "/api/settings/plan", &json!({"plan": "business"}))
        .await?;
    assert_eq!(status, 200, "{body}");
    Ok(Some((app, owner, provider)))
}

fn configuration(provider: &OidcProvider, extra: &Value) -> Value {
    let mut body = json!({
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "allowed_domains": ["corp.test"],
        "role_mapping": {"eng": "editor"},
        "jit_provisioning": true,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// Configures SSO with [`configuration`] and `extra`, which must succeed.
async fn configured(
    app: &TestApp,
    owner: &Account,
    provider: &OidcProvider,
    extra: &Value,
) -> Result<(), Error> {
    let (status, body) = app
        .put_in(owner, CONFIGURE, &configuration(provider, extra))
        .await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

async fn slug_of(app: &TestApp, who: &Account) -> Result<String, Error> {
    let (status, workspace) = app
        .get_in(who, &format!("/api/workspaces/{}", who.workspace_id))
        .await?;
    assert_eq!(status, 200, "{workspace}");
    Ok(workspace["slug"].as_str().ok_or("no slug")?.to_owned())
}

/// `login` signs in at the provider; the callback's answer (status, `Location`).
async fn callback_as(app: &TestApp, slug: &str, login: &str) -> Result<(u16, String), Error> {
    let callback = Browser::new()?
        .sign_in(
            &app.url(&format!("/api/auth/sso/{slug}/start")),
            login,
            &app.url("/api/auth/sso/callback"),
        )
        .await?;
    follow_callback(callback.as_str()).await
}

async fn follow_callback(url: &str) -> Result<(u16, String), Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client.get(url).send().await?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await?;
    Ok((status, location.unwrap_or(text)))
}

fn ticket_of(location: &str) -> Result<String, Error> {
    let (_, ticket) = location
        .split_once("#/sso?ticket=")
        .ok_or_else(|| format!("no ticket in {location}"))?;
    Ok(ticket.to_owned())
}

async fn exchange(app: &TestApp, ticket: &str) -> Result<(u16, Value), Error> {
    let response = app
        .post_json("/api/auth/sso/exchange", &json!({"ticket": ticket}))
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

async fn activities(app: &TestApp, owner: &Account) -> Result<Vec<Value>, Error> {
    let (_, page) = app
        .get_in(owner, "/api/workspace/activities?limit=100")
        .await?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn sso_is_configured_once_discovery_checks_out_on_plans_that_have_it() -> TestResult {
    let Some((app, owner, provider)) = setup("sso-owner@example.com").await? else {
        return Ok(());
    };
    app.post_in(&owner, "/api/settings/plan", &json!({"plan": "pro"}))
        .await?;
    let put = |body: Value| {
        let (app, owner) = (&app, &owner);
        async move { app.put_in(owner, CONFIGURE, &body).await }
    };
    let (status, problem) = put(configuration(&provider, &json!({}))).await?;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "plan_limit");
    assert_eq!(problem["limit"]["name"], "sso");

    app.post_in(&owner, "/api/settings/plan", &json!({"plan": "business"}))
        .await?;
    // An issuer whose document names another one, one that is not there, a field wrong.
    for (issuer, expected) in [
        (format!("{}/other", provider.issuer), "issuer"),
        ("http://127.0.0.1:9".to_owned(), "issuer"),
    ] {
        let (status, problem) = put(configuration(&provider, &json!({"issuer": issuer}))).await?;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], expected, "{problem}");
    }
    for (wrong, field) in [
        (json!({"default_role": "owner"}), "default_role"),
        (json!({"scopes": ["email"]}), "scopes"),
        (
            json!({"allowed_domains": ["Corp.Test"]}),
            "allowed_domains[0]",
        ),
    ] {
        let (status, problem) = put(configuration(&provider, &wrong)).await?;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, configured) = put(configuration(&provider, &json!({}))).await?;
    assert_eq!(status, 200, "{configured}");
    assert_eq!(configured["has_client_secret"], true);
    assert_eq!(configured["scopes"], json!(["openid", "email", "profile"]));
    assert_eq!(configured["default_role"], "viewer");
    assert!(!configured.to_string().contains(CLIENT_SECRET));
    // Reconfigured without the secret: the sealed one is kept.
    let mut keep = configuration(&provider, &json!({"enforce_sso": false}));
    keep.as_object_mut()
        .map(|body| body.remove("client_secret"));
    let (status, kept) = put(keep).await?;
    assert_eq!(status, 200, "{kept}");
    let (status, read) = app.get_in(&owner, "/api/settings/sso").await?;
    assert_eq!((status, &read["issuer"]), (200, &json!(provider.issuer)));

    let (status, tested) = app
        .post_in(&owner, "/api/settings/sso/test", &json!({}))
        .await?;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["ok"], true, "{tested}");
    let (_, summary) = app.get_in(&owner, "/api/settings/summary").await?;
    assert_eq!(summary["integrations"]["sso"], 1, "{summary}");
    let (_, statuses) = app
        .get_in(&owner, "/api/settings/integrations/status")
        .await?;
    let sso = statuses["items"]
        .as_array()
        .or(statuses.as_array())
        .and_then(|items| items.iter().find(|item| item["kind"] == "sso"))
        .cloned()
        .ok_or("no sso status")?;
    assert_eq!(
        (sso["configured"].clone(), sso["status"].clone()),
        (json!(1), json!("ok"))
    );
    let (_, events) = app
        .get_in(&owner, "/api/settings/integrations/events?kind=sso")
        .await?;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|e| e["event"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["tested", "updated", "configured"]);
    let actions: Vec<Value> = activities(&app, &owner).await?;
    assert!(actions.iter().any(|a| a["action"] == "sso.configured"));
    assert!(!app.pg_dump_data().await?.contains(CLIENT_SECRET));

    let (status, _) = app.delete_in(&owner, "/api/settings/sso").await?;
    assert_eq!(status, 204);
    let (status, _) = app.get_in(&owner, "/api/settings/sso").await?;
    assert_eq!(status, 404);
    Ok(())
}

#[tokio::test]
async fn a_browser_signs_in_and_its_ticket_opens_the_workspace_once() -> TestResult {
    let Some((app, owner, provider)) = setup("sso-jit@example.com").await? else {
        return Ok(());
    };
    configured(&app, &owner, &provider, &json!({})).await?;
    let slug = slug_of(&app, &owner).await?;

    let callback = Browser::new()?
        .sign_in(
            &app.url(&format!("/api/auth/sso/{slug}/start")),
            "ada",
            &app.url("/api/auth/sso/callback"),
        )
        .await?;
    assert!(callback.query().is_some_and(|q| q.contains("state=")));
    let (status, location) = follow_callback(callback.as_str()).await?;
    assert_eq!(status, 302, "{location}");
    assert!(
        location.starts_with(&app.url("/#/sso?ticket=")),
        "{location}"
    );
    let ticket = ticket_of(&location)?;

    let (status, tokens) = exchange(&app, &ticket).await?;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().ok_or("no token")?;
    let me: Value = app
        .get_as(access, "/api/auth/me", None)
        .await?
        .json()
        .await?;
    assert_eq!(me["email"], "ada@corp.test");
    let membership = me["memberships"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|m| m["workspace_id"] == owner.workspace_id.as_str())
        })
        .cloned()
        .ok_or("not a member")?;
    assert_eq!(membership["role"], "editor", "{me}");

    // The ticket is spent; the state too.
    let (status, problem) = exchange(&app, &ticket).await?;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_sso_ticket"))
    );
    let (status, problem) = follow_callback(callback.as_str()).await?;
    assert_eq!(status, 403, "{problem}");
    assert!(problem.contains("sso_login_refused") && problem.contains("bad_state"));

    // A second sign-in finds the member; its ticket expires after 60 seconds.
    let (status, location) = callback_as(&app, &slug, "ada").await?;
    assert_eq!(status, 302, "{location}");
    app.execute("UPDATE sso_tickets SET expires_at = now() - interval '1 second'")
        .await?;
    let (status, _) = exchange(&app, &ticket_of(&location)?).await?;
    assert_eq!(status, 401);
    let users = app
        .scalar("SELECT count(*) FROM users WHERE email = 'ada@corp.test'")
        .await?;
    assert_eq!(users, 1);

    let actions = activities(&app, &owner).await?;
    let logins = actions
        .iter()
        .filter(|a| a["action"] == "sso.login")
        .count();
    assert_eq!(logins, 2);
    assert!(
        actions
            .iter()
            .any(|a| a["action"] == "sso.login_refused" && a["metadata"]["reason"] == "bad_state")
    );
    Ok(())
}

#[tokio::test]
async fn foreign_domains_unverified_addresses_wrong_nonces_and_strangers_are_refused() -> TestResult
{
    let Some((app, owner, provider)) = setup("sso-refusals@example.com").await? else {
        return Ok(());
    };
    configured(&app, &owner, &provider, &json!({"jit_provisioning": false})).await?;
    let slug = slug_of(&app, &owner).await?;
    for (login, reason) in [
        ("eve", "domain_not_allowed"),
        ("bob", "unverified_email"),
        ("cat", "no_jit"),
    ] {
        let (status, problem) = callback_as(&app, &slug, login).await?;
        assert_eq!(status, 403, "{login}: {problem}");
        assert!(problem.contains(reason), "{login}: {problem}");
    }
    // The nonce kept for the login is not the one the provider put in the ID token.
    let callback = Browser::new()?
        .sign_in(
            &app.url(&format!("/api/auth/sso/{slug}/start")),
            "ada",
            &app.url("/api/auth/sso/callback"),
        )
        .await?;
    app.execute("UPDATE sso_login_states SET nonce = 'not-the-nonce-sent'")
        .await?;
    let (status, problem) = follow_callback(callback.as_str()).await?;
    assert_eq!(status, 403, "{problem}");
    assert!(problem.contains("bad_nonce"), "{problem}");

    let reasons: Vec<Value> = activities(&app, &owner)
        .await?
        .into_iter()
        .filter(|a| a["action"] == "sso.login_refused")
        .map(|a| a["metadata"]["reason"].clone())
        .collect();
    for reason in [
        "domain_not_allowed",
        "unverified_email",
        "no_jit",
        "bad_nonce",
    ] {
        assert!(reasons.contains(&json!(reason)), "{reason} in {reasons:?}");
    }
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM users WHERE email LIKE '%corp.test' OR email LIKE '%evil.test'"
        )
        .await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn enforced_sso_closes_the_workspace_to_password_tokens_but_its_owners() -> TestResult {
    let Some((app, owner, provider)) = setup("sso-enforce@example.com").await? else {
        return Ok(());
    };
    let member = app.signed_up("password-member@example.com").await?;
    let (status, added) = app
        .post_in(
            &owner,
            "/api/workspace/members",
            &json!({"email": "password-member@example.com", "role": "editor"}),
        )
        .await?;
    assert_eq!(status, 201, "{added}");
    configured(&app, &owner, &provider, &json!({"enforce_sso": true})).await?;

    let as_member = Account {
        workspace_id: owner.workspace_id.clone(),
        ..member.clone()
    };
    let (status, problem) = app.get_in(&as_member, "/api/workflows").await?;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("sso_required")),
        "{problem}"
    );
    // Elsewhere the member's password token still works; the owner's works here.
    let (status, _) = app.get_in(&member, "/api/workflows").await?;
    assert_eq!(status, 200);
    let (status, _) = app.get_in(&owner, "/api/workflows").await?;
    assert_eq!(status, 200);

    // An SSO session opens it, and keeps doing so after a refresh.
    let slug = slug_of(&app, &owner).await?;
    let (_, location) = callback_as(&app, &slug, "ada").await?;
    let (status, tokens) = exchange(&app, &ticket_of(&location)?).await?;
    assert_eq!(status, 200, "{tokens}");
    let refreshed: Value = app
        .post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await?
        .json()
        .await?;
    let sso_user = Account {
        id: String::new(),
        workspace_id: owner.workspace_id.clone(),
        access_token: refreshed["access_token"]
            .as_str()
            .ok_or("no token")?
            .to_owned(),
        refresh_token: String::new(),
    };
    let (status, body) = app.get_in(&sso_user, "/api/workflows").await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}
