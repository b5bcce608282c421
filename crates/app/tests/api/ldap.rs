//! LDAP (#20): settings (plan-gated, the bind password sealed and never shown), logins
//! against a real private slapd that provision users and memberships just in time, the
//! test endpoint, and the sync (by hand and periodic) — with filter-injection attempts
//! and the lockout of wrong passwords.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::slapd::{BASE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd};
use crate::helpers::{Account, Error, Fields, TestApp, call, eventually};

const ADMINS: &str = "cn=admins,ou=groups,dc=example,dc=com";
const DEVS: &str = "cn=devs,ou=groups,dc=example,dc=com";

async fn change_plan(app: &TestApp, who: &Account, plan: &str) -> Result<(), Error> {
    let (status, body) = app
        .post_in(who, "/api/settings/plan", &json!({"plan": plan}))
        .await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

fn settings(url: &str) -> Value {
    json!({
        "url": url,
        "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD,
        "base_dn": BASE_DN,
        "group_base_dn": "ou=groups,dc=example,dc=com",
        "role_mapping": {ADMINS: "admin", DEVS: "editor"},
    })
}

async fn put(app: &TestApp, who: &Account, body: &Value) -> Result<(u16, Value), Error> {
    call(app, who, Method::PUT, "/api/settings/ldap", body).await
}

/// A business workspace configured against `slapd`, reachable on loopback.
async fn configured(app: &TestApp, slapd: &Slapd, email: &str) -> Result<Account, Error> {
    let owner = app.signed_up(email).await?;
    change_plan(app, &owner, "business").await?;
    app.allow_internal_network().await?;
    let (status, body) = put(app, &owner, &settings(slapd.url())).await?;
    assert_eq!(status, 200, "{body}");
    Ok(owner)
}

async fn ldap_login(
    app: &TestApp,
    workspace: &str,
    username: &str,
    password: &str,
) -> Result<(u16, Value), Error> {
    let response = app
        .post_json(
            "/api/auth/ldap/login",
            &json!({"workspace": workspace, "username": username, "password": password}),
        )
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// The role of the member with `email`, if any.
async fn role_of(app: &TestApp, owner: &Account, email: &str) -> Result<Option<String>, Error> {
    let (_, members) = app
        .get_in(owner, "/api/workspace/members?limit=100")
        .await?;
    Ok(members
        .items()?
        .iter()
        .find(|member| member["email"] == email)
        .map(|member| member["role"].as_str().unwrap_or_default().to_owned()))
}

/// The `ldap` entry of the integrations status.
async fn ldap_status(app: &TestApp, owner: &Account) -> Result<Value, Error> {
    let (_, statuses) = app
        .get_in(owner, "/api/settings/integrations/status")
        .await?;
    Ok(statuses
        .as_array()
        .and_then(|all| all.iter().find(|entry| entry["kind"] == "ldap"))
        .cloned()
        .unwrap_or_default())
}

/// A problem without what differs per request.
fn answer(mut problem: Value) -> Value {
    if let Some(object) = problem.as_object_mut() {
        object.remove("instance");
        object.remove("request_id");
    }
    problem
}

#[tokio::test]
async fn ldap_settings_are_plan_gated_sealed_validated_and_removable() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("ldap-settings@example.com").await?;
    let body = settings("ldap://directory.example.com");

    let (status, problem) = put(&app, &owner, &body).await?;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "plan_limit");
    assert_eq!(problem["limit"]["name"], "ldap");

    change_plan(&app, &owner, "business").await?;
    let mut invalid = body.clone();
    invalid["url"] = json!("http://directory.example.com");
    invalid["role_mapping"] = json!({"nodn": "admin"});
    invalid
        .as_object_mut()
        .map(|object| object.remove("bind_password"));
    let (status, problem) = put(&app, &owner, &invalid).await?;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["url", "bind_password", "role_mapping.nodn"],
        "{problem}"
    );
    let (status, _) = app.get_in(&owner, "/api/settings/ldap").await?;
    assert_eq!(status, 404, "nothing was written");

    let (status, saved) = put(&app, &owner, &body).await?;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["user_filter"], "(uid={username})");
    assert_eq!(saved["group_filter"], "(member={dn})");
    assert_eq!(saved["default_role"], "viewer");
    assert_eq!(saved["role_mapping"][ADMINS], "admin");
    assert_eq!(saved["has_bind_password"], true);
    assert!(saved.get("bind_password").is_none());
    assert!(!saved.to_string().contains(SERVICE_PASSWORD));

    // Without a password, the sealed one stays; everything else is replaced.
    let mut changed = body.clone();
    changed
        .as_object_mut()
        .map(|object| object.remove("bind_password"));
    changed["enabled"] = json!(false);
    let (status, saved) = put(&app, &owner, &changed).await?;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["enabled"], false);
    let (status, read) = app.get_in(&owner, "/api/settings/ldap").await?;
    assert_eq!(status, 200);
    assert!(!read.to_string().contains(SERVICE_PASSWORD));
    let sealed = app
        .scalar("SELECT count(*) FROM credentials WHERE id IN (SELECT bind_password_id FROM workspace_ldap_configs)")
        .await?;
    assert_eq!(sealed, 1);

    let (_, summary) = app.get_in(&owner, "/api/settings/summary").await?;
    assert_eq!(summary["integrations"]["ldap"], 1, "{summary}");
    let ldap = ldap_status(&app, &owner).await?;
    assert_eq!(
        (ldap["configured"].clone(), ldap["enabled"].clone()),
        (json!(1), json!(0))
    );

    let (status, _) = app.delete_in(&owner, "/api/settings/ldap").await?;
    assert_eq!(status, 204);
    let (status, _) = app.get_in(&owner, "/api/settings/ldap").await?;
    assert_eq!(status, 404);
    assert_eq!(app.count("workspace_ldap_configs").await?, 0);
    let (_, events) = app
        .get_in(&owner, "/api/settings/integrations/events?kind=ldap")
        .await?;
    let kinds: Vec<String> = events
        .items()?
        .iter()
        .map(|event| event.text("event"))
        .collect::<Result<_, _>>()?;
    assert_eq!(kinds, ["removed", "disabled", "configured"]);
    let (_, activities) = app
        .get_in(&owner, "/api/workspace/activities?action=ldap.configured")
        .await?;
    assert_eq!(activities.items()?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn ldap_logins_provision_just_in_time_and_refuse_wrong_passwords_and_injections_alike()
-> TestResult {
    let Some(slapd) = Slapd::start().await? else {
        return Ok(());
    };
    let app = TestApp::spawn().await?;
    let owner = configured(&app, &slapd, "ldap-login@example.com").await?;
    let (_, workspace) = app
        .get_in(&owner, &format!("/api/workspaces/{}", owner.workspace_id))
        .await?;
    let slug = workspace.text("slug")?;

    // First login: the account and the membership are created with the mapped role.
    let (status, tokens) = ldap_login(&app, &slug, "ada", "ada-password").await?;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let me = app
        .get_as(&tokens.text("access_token")?, "/api/auth/me", None)
        .await?
        .json::<Value>()
        .await?;
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["display_name"], "Ada Lovelace");
    assert_eq!(me["default_workspace_id"], owner.workspace_id.as_str());
    assert_eq!(
        role_of(&app, &owner, "ada@example.com").await?.as_deref(),
        Some("admin")
    );
    // By id too, and a second login creates nothing more.
    let (status, _) = ldap_login(&app, &owner.workspace_id, "ada", "ada-password").await?;
    assert_eq!(status, 200);
    assert_eq!(
        app.scalar("SELECT count(*) FROM users WHERE email = 'ada@example.com'")
            .await?,
        1
    );
    // The account has no local password.
    let response = app.login("ada@example.com", "ada-password").await?;
    assert_eq!(response.status(), 401);

    // A wrong password answers as an unknown user does, and as injections do.
    let (status, wrong) = ldap_login(&app, &slug, "ada", "not-her-password").await?;
    assert_eq!(status, 401, "{wrong}");
    let (_, unknown) = ldap_login(&app, &slug, "nobody", "whatever").await?;
    assert_eq!(answer(wrong.clone()), answer(unknown));
    for injection in ["*", "ada)(uid=*", "*)(|(uid=*", "ada*", "*)(objectClass=*"] {
        let (status, refused) = ldap_login(&app, &slug, injection, "ada-password").await?;
        assert_eq!(status, 401, "{injection}: {refused}");
        assert_eq!(answer(refused), answer(wrong.clone()), "{injection}");
    }
    let (status, _) = ldap_login(&app, "no-such-workspace", "ada", "ada-password").await?;
    assert_eq!(status, 401);
    let (status, problem) = ldap_login(&app, &slug, "ada", "").await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "password");

    // The lockout of password logins applies: five wrong passwords lock the account.
    for _ in 0..4 {
        ldap_login(&app, &slug, "ada", "still-wrong").await?;
    }
    let (status, locked) = ldap_login(&app, &slug, "ada", "ada-password").await?;
    assert_eq!(status, 401, "locked: {locked}");

    // A user in no mapped group gets the default role.
    let (status, _) = ldap_login(&app, &slug, "carol", "carol-password").await?;
    assert_eq!(status, 200);
    assert_eq!(
        role_of(&app, &owner, "carol@example.com").await?.as_deref(),
        Some("viewer")
    );
    Ok(())
}

#[tokio::test]
async fn first_logins_racing_for_one_new_account_both_get_in() -> TestResult {
    let Some(slapd) = Slapd::start().await? else {
        return Ok(());
    };
    let app = TestApp::spawn().await?;
    let owner = configured(&app, &slapd, "ldap-race@example.com").await?;
    // The sealed bind password is the LDAP configuration's, not a user's credential.
    let (status, listed) = app.get_in(&owner, "/api/workflows/credentials").await?;
    assert_eq!((status, listed["items"].clone()), (200, json!([])));
    let workspace = owner.workspace_id.as_str();
    let (first, second) = tokio::join!(
        ldap_login(&app, workspace, "ada", "ada-password"),
        ldap_login(&app, workspace, "ada", "ada-password"),
    );
    for (status, answer) in [first?, second?] {
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(
        app.scalar("SELECT count(*) AS count FROM users WHERE email = 'ada@example.com'")
            .await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn an_ldap_test_tells_what_a_login_would_get_and_records_failures() -> TestResult {
    let Some(slapd) = Slapd::start().await? else {
        return Ok(());
    };
    let app = TestApp::spawn().await?;
    let owner = configured(&app, &slapd, "ldap-test@example.com").await?;

    let (status, report) = app
        .post_in(
            &owner,
            "/api/settings/ldap/test",
            &json!({"username": "bob"}),
        )
        .await?;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["user"]["dn"], "uid=bob,ou=people,dc=example,dc=com");
    assert_eq!(report["user"]["email"], "bob@example.com");
    assert_eq!(report["user"]["name"], "Bob Builder");
    assert_eq!(report["user"]["groups"], json!([DEVS]));
    assert_eq!(report["user"]["role"], "editor");
    assert!(!report.to_string().contains("password"), "{report}");

    let (_, report) = app
        .post_in(&owner, "/api/settings/ldap/test", &json!({"username": "*"}))
        .await?;
    assert_eq!(
        report["ok"], false,
        "a wildcard matches more than one: {report}"
    );

    let mut wrong = settings(slapd.url());
    wrong["bind_password"] = json!("not-the-service-password");
    let (status, body) = put(&app, &owner, &wrong).await?;
    assert_eq!(status, 200, "{body}");
    let (_, report) = app
        .post_in(&owner, "/api/settings/ldap/test", &json!({}))
        .await?;
    assert_eq!(report["ok"], false, "{report}");
    let ldap = ldap_status(&app, &owner).await?;
    assert_eq!(ldap["status"], "error", "{ldap}");

    // A directory on loopback is reached only when the workspace allows internal networks.
    app.execute("UPDATE workspace_settings SET allow_internal_network = false")
        .await?;
    let (_, report) = app
        .post_in(&owner, "/api/settings/ldap/test", &json!({}))
        .await?;
    assert_eq!(report["ok"], false, "{report}");
    assert!(report.text("detail")?.contains("internal"), "{report}");
    Ok(())
}

#[tokio::test]
async fn the_ldap_sync_follows_the_directory_by_hand_and_periodically() -> TestResult {
    let Some(slapd) = Slapd::start().await? else {
        return Ok(());
    };
    let app = TestApp::spawn().await?;
    let owner = configured(&app, &slapd, "ldap-sync@example.com").await?;
    for (user, password) in [("bob", "bob-password"), ("carol", "carol-password")] {
        let (status, body) = ldap_login(&app, &owner.workspace_id, user, password).await?;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        role_of(&app, &owner, "bob@example.com").await?.as_deref(),
        Some("editor")
    );

    // bob leaves devs and joins admins; carol leaves the directory.
    slapd
        .modify(&format!(
            "dn: {DEVS}\nchangetype: modify\nadd: member\nmember: {SERVICE_DN}\n-\n\
             delete: member\nmember: uid=bob,ou=people,{BASE_DN}\n\n\
             dn: {ADMINS}\nchangetype: modify\nadd: member\nmember: uid=bob,ou=people,{BASE_DN}\n\n\
             dn: uid=carol,ou=people,{BASE_DN}\nchangetype: delete\n"
        ))
        .await?;
    let (status, synced) = app
        .post_in(&owner, "/api/settings/ldap/sync", &json!({}))
        .await?;
    assert_eq!(status, 200, "{synced}");
    assert_eq!(
        synced["result"],
        json!({"checked": 2, "role_changes": 1, "removed": 1, "errors": []})
    );
    assert_eq!(
        role_of(&app, &owner, "bob@example.com").await?.as_deref(),
        Some("admin")
    );
    assert_eq!(role_of(&app, &owner, "carol@example.com").await?, None);
    assert_eq!(
        role_of(&app, &owner, "ldap-sync@example.com")
            .await?
            .as_deref(),
        Some("owner")
    );
    for action in ["member.role_changed", "member.removed"] {
        let (_, activities) = app
            .get_in(
                &owner,
                &format!("/api/workspace/activities?action={action}"),
            )
            .await?;
        assert_eq!(activities.items()?.len(), 1, "{action}");
    }
    let (_, read) = app.get_in(&owner, "/api/settings/ldap").await?;
    assert_eq!(read["last_sync"]["result"]["removed"], 1, "{read}");
    assert!(read["last_sync"]["last_sync_at"].is_string());
    let ldap = ldap_status(&app, &owner).await?;
    assert_eq!(ldap["status"], "ok", "{ldap}");
    assert!(ldap["last_checked_at"].is_string(), "{ldap}");

    // Periodic: due every minute and last synced long ago, the workers sync it.
    let mut periodic = settings(slapd.url());
    periodic["sync_interval_minutes"] = json!(1);
    let (status, body) = put(&app, &owner, &periodic).await?;
    assert_eq!(status, 200, "{body}");
    app.execute("UPDATE workspace_ldap_configs SET last_sync_at = now() - interval '1 hour'")
        .await?;
    slapd
        .modify(&format!(
            "dn: {ADMINS}\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=people,{BASE_DN}\n"
        ))
        .await?;
    eventually(
        "the periodic sync making bob a viewer",
        std::time::Duration::from_secs(30),
        async || Ok(role_of(&app, &owner, "bob@example.com").await?.as_deref() == Some("viewer")),
    )
    .await?;
    Ok(())
}
