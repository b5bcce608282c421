//! Workspaces, members, roles and the activity log, end to end over HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Fields, TestApp};

async fn add_member(
    app: &TestApp,
    owner: &Account,
    email: &str,
    role: &str,
) -> reqwest::Result<reqwest::Response> {
    app.send_as(
        Method::POST,
        &owner.access_token,
        "/api/workspace/members",
        Some(&owner.workspace_id),
        &json!({"email": email, "role": role}),
    )
    .await
}

#[tokio::test]
async fn another_workspace_is_not_found_never_shown() -> TestResult {
    let app = TestApp::spawn().await?;
    let alice = app.signed_up("alice@example.com").await?;
    let bob = app.signed_up("bob@example.com").await?;
    let theirs = alice.workspace_id.as_str();

    let by_id = [
        (Method::GET, format!("/api/workspaces/{theirs}"), None),
        (
            Method::PATCH,
            format!("/api/workspaces/{theirs}"),
            Some(json!({"name": "Mine now"})),
        ),
        (
            Method::POST,
            format!("/api/workspaces/{theirs}/default"),
            None,
        ),
    ];
    for (method, path, body) in by_id {
        let response = app
            .send_as(
                method.clone(),
                &bob.access_token,
                &path,
                None,
                &body.unwrap_or(json!({})),
            )
            .await?;
        assert_eq!(response.status(), 404, "{method} {path}");
        let problem: Value = response.json().await?;
        assert!(problem.get("name").is_none(), "no data leaks: {problem}");
    }

    let as_member_of_theirs = [
        (Method::GET, "/api/workspace/members".to_owned()),
        (Method::GET, "/api/workspace/activities".to_owned()),
        (
            Method::DELETE,
            format!("/api/workspace/members/{}", alice.id),
        ),
        (
            Method::PATCH,
            format!("/api/workspace/members/{}", alice.id),
        ),
        (Method::POST, "/api/workspace/members/leave".to_owned()),
    ];
    for (method, path) in as_member_of_theirs {
        let response = app
            .send_as(
                method.clone(),
                &bob.access_token,
                &path,
                Some(theirs),
                &json!({"role": "viewer"}),
            )
            .await?;
        assert_eq!(
            response.status(),
            404,
            "{method} {path} with X-Workspace-Id of another"
        );
    }

    // Their own workspace still works, and lists only them.
    let members: Value = app
        .get_as(
            &bob.access_token,
            "/api/workspace/members",
            Some(&bob.workspace_id),
        )
        .await?
        .json()
        .await?;
    assert_eq!(members["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(members["items"][0]["email"], "bob@example.com");
    let listed: Value = app
        .get_as(&bob.access_token, "/api/workspaces", None)
        .await?
        .json()
        .await?;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_change_anything() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("owner@example.com").await?;
    let viewer = app.signed_up("viewer@example.com").await?;
    app.signed_up("third@example.com").await?;
    assert_eq!(
        add_member(&app, &owner, "viewer@example.com", "viewer")
            .await?
            .status(),
        201
    );
    let workspace = Some(owner.workspace_id.as_str());

    let read = app
        .get_as(&viewer.access_token, "/api/workspace/members", workspace)
        .await?;
    assert_eq!(read.status(), 200);

    let attempts = [
        (
            Method::POST,
            "/api/workspace/members".to_owned(),
            json!({"email": "third@example.com", "role": "viewer"}),
        ),
        (
            Method::PATCH,
            format!("/api/workspace/members/{}", owner.id),
            json!({"role": "viewer"}),
        ),
        (
            Method::DELETE,
            format!("/api/workspace/members/{}", owner.id),
            json!({}),
        ),
        (
            Method::PATCH,
            format!("/api/workspaces/{}", owner.workspace_id),
            json!({"name": "Renamed"}),
        ),
    ];
    for (method, path, body) in attempts {
        let response = app
            .send_as(
                method.clone(),
                &viewer.access_token,
                &path,
                workspace,
                &body,
            )
            .await?;
        assert_eq!(response.status(), 403, "{method} {path}");
        let problem: Value = response.json().await?;
        assert_eq!(problem["code"], "forbidden");
    }
    assert_eq!(
        app.count("workspace_members").await?,
        4,
        "three personal owners and one viewer"
    );
    Ok(())
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed_nor_leave() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("solo@example.com").await?;
    let workspace = Some(owner.workspace_id.as_str());
    let demote = app
        .send_as(
            Method::PATCH,
            &owner.access_token,
            &format!("/api/workspace/members/{}", owner.id),
            workspace,
            &json!({"role": "admin"}),
        )
        .await?;
    assert_eq!(demote.status(), 409);
    assert_eq!(
        demote.json::<Value>().await?["code"],
        "last_owner",
        "demote"
    );
    let remove = app
        .send_as(
            Method::DELETE,
            &owner.access_token,
            &format!("/api/workspace/members/{}", owner.id),
            workspace,
            &json!({}),
        )
        .await?;
    assert_eq!(remove.status(), 409);
    assert_eq!(
        remove.json::<Value>().await?["code"],
        "last_owner",
        "remove"
    );
    let leave = app
        .send_as(
            Method::POST,
            &owner.access_token,
            "/api/workspace/members/leave",
            workspace,
            &json!({}),
        )
        .await?;
    assert_eq!(leave.status(), 409);
    assert_eq!(leave.json::<Value>().await?["code"], "last_owner", "leave");

    // With a second owner, the first may step down.
    app.signed_up("second@example.com").await?;
    assert_eq!(
        add_member(&app, &owner, "second@example.com", "owner")
            .await?
            .status(),
        201
    );
    let step_down = app
        .send_as(
            Method::PATCH,
            &owner.access_token,
            &format!("/api/workspace/members/{}", owner.id),
            workspace,
            &json!({"role": "admin"}),
        )
        .await?;
    assert_eq!(step_down.status(), 200);
    assert_eq!(step_down.json::<Value>().await?["role"], "admin");
    Ok(())
}

#[tokio::test]
async fn the_free_plan_member_limit_is_a_clear_problem() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("boss@example.com").await?;
    for email in ["m1@example.com", "m2@example.com", "m3@example.com"] {
        app.signed_up(email).await?;
    }
    assert_eq!(
        add_member(&app, &owner, "m1@example.com", "editor")
            .await?
            .status(),
        201
    );
    assert_eq!(
        add_member(&app, &owner, "m2@example.com", "viewer")
            .await?
            .status(),
        201
    );
    let over = add_member(&app, &owner, "m3@example.com", "viewer").await?;
    assert_eq!(over.status(), 409);
    let problem: Value = over.json().await?;
    assert_eq!(problem["code"], "plan_limit");
    assert_eq!(
        problem["limit"],
        json!({"name": "max_members", "value": 3, "current": 3})
    );

    let again = add_member(&app, &owner, "m1@example.com", "viewer").await?;
    assert_eq!(again.status(), 409, "already a member");
    assert_eq!(again.json::<Value>().await?["code"], "already_member");
    let unknown = add_member(&app, &owner, "ghost@example.com", "viewer").await?;
    assert_eq!(unknown.status(), 422);
    let bad_role = add_member(&app, &owner, "m1@example.com", "emperor").await?;
    assert_eq!(bad_role.status(), 422);
    Ok(())
}

#[tokio::test]
async fn changes_are_in_the_activity_log_newest_first_and_paginated() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("log@example.com").await?;
    let member = app.signed_up("logged@example.com").await?;
    let workspace = Some(owner.workspace_id.as_str());
    add_member(&app, &owner, "logged@example.com", "editor").await?;
    app.send_as(
        Method::PATCH,
        &owner.access_token,
        &format!("/api/workspace/members/{}", member.id),
        workspace,
        &json!({"role": "viewer"}),
    )
    .await?;

    let all: Value = app
        .get_as(&owner.access_token, "/api/workspace/activities", workspace)
        .await?
        .json()
        .await?;
    let actions: Vec<&str> = all["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["member.role_changed", "member.added", "workspace.created"]
    );
    assert_eq!(all["items"][0]["actor_user_id"], owner.id.as_str());
    assert_eq!(all["items"][0]["target_id"], member.id.as_str());
    assert_eq!(
        all["items"][0]["metadata"],
        json!({"from": "editor", "to": "viewer"})
    );

    let first: Value = app
        .get_as(
            &owner.access_token,
            "/api/workspace/activities?limit=2",
            workspace,
        )
        .await?
        .json()
        .await?;
    let cursor = first.text("next_cursor")?;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    let second: Value = app
        .get_as(
            &owner.access_token,
            &format!("/api/workspace/activities?limit=2&cursor={cursor}"),
            workspace,
        )
        .await?
        .json()
        .await?;
    assert_eq!(second["items"][0]["action"], "workspace.created");
    assert_eq!(second["next_cursor"], Value::Null);

    let filtered: Value = app
        .get_as(
            &owner.access_token,
            "/api/workspace/activities?action=member.added",
            workspace,
        )
        .await?
        .json()
        .await?;
    assert_eq!(filtered["items"].as_array().map(Vec::len), Some(1));
    let bad_cursor = app
        .get_as(
            &owner.access_token,
            "/api/workspace/activities?cursor=nope",
            workspace,
        )
        .await?;
    assert_eq!(bad_cursor.status(), 422);
    Ok(())
}

#[tokio::test]
async fn workspaces_are_created_renamed_and_made_default() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("maker@example.com").await?;
    let created = app
        .send_as(
            Method::POST,
            &owner.access_token,
            "/api/workspaces",
            None,
            &json!({"name": "Side project"}),
        )
        .await?;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await?;
    let id = created.text("id")?;
    assert_eq!(created["role"], "owner");
    assert_eq!(created["plan"], "free");
    assert_eq!(app.count("workspace_environments").await?, 6);
    assert_eq!(app.count("workspace_data_keys").await?, 2);
    let me: Value = app
        .get_as(&owner.access_token, "/api/auth/me", None)
        .await?
        .json()
        .await?;
    assert_eq!(
        me["default_workspace_id"],
        owner.workspace_id.as_str(),
        "creating a workspace does not change the default"
    );

    let renamed = app
        .send_as(
            Method::PATCH,
            &owner.access_token,
            &format!("/api/workspaces/{id}"),
            None,
            &json!({"name": "  Main project "}),
        )
        .await?;
    assert_eq!(renamed.json::<Value>().await?["name"], "Main project");
    let blank = app
        .send_as(
            Method::PATCH,
            &owner.access_token,
            &format!("/api/workspaces/{id}"),
            None,
            &json!({"name": ""}),
        )
        .await?;
    assert_eq!(blank.status(), 422);

    let made_default = app
        .send_as(
            Method::POST,
            &owner.access_token,
            &format!("/api/workspaces/{id}/default"),
            None,
            &json!({}),
        )
        .await?;
    assert_eq!(made_default.status(), 204);
    let me: Value = app
        .get_as(&owner.access_token, "/api/auth/me", None)
        .await?
        .json()
        .await?;
    assert_eq!(me["default_workspace_id"], id.as_str());
    assert_eq!(me["memberships"].as_array().map(Vec::len), Some(2));
    Ok(())
}

/// `/api/auth/me`'s `default_workspace_id` for `who`.
async fn default_of(app: &TestApp, who: &Account) -> Result<Value, crate::helpers::Error> {
    let me: Value = app
        .get_as(&who.access_token, "/api/auth/me", None)
        .await?
        .json()
        .await?;
    Ok(me["default_workspace_id"].clone())
}

/// Logs in afresh and lists the members of the workspace the new token was issued for
/// (no `X-Workspace-Id`): the default login picked.
async fn members_after_login(
    app: &TestApp,
    email: &str,
) -> Result<(u16, Value), crate::helpers::Error> {
    let tokens: Value = app
        .login(email, crate::helpers::PASSWORD)
        .await?
        .json()
        .await?;
    let token = &tokens.text("access_token")?;
    let response = app.get_as(token, "/api/workspace/members", None).await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// `who` makes `workspace` their default.
async fn make_default(app: &TestApp, who: &Account, workspace: &str) -> TestResult {
    let response = app
        .send_as(
            Method::POST,
            &who.access_token,
            &format!("/api/workspaces/{workspace}/default"),
            None,
            &json!({}),
        )
        .await?;
    assert_eq!(response.status(), 204);
    Ok(())
}

#[tokio::test]
async fn a_member_removed_from_their_default_workspace_gets_their_own_back() -> TestResult {
    let app = TestApp::spawn().await?;
    let alice = app.signed_up("alice.default@example.com").await?;
    let bob = app.signed_up("bob.default@example.com").await?;
    assert_eq!(
        add_member(&app, &alice, "bob.default@example.com", "editor")
            .await?
            .status(),
        201
    );
    make_default(&app, &bob, &alice.workspace_id).await?;
    assert_eq!(default_of(&app, &bob).await?, alice.workspace_id.as_str());

    let removed = app
        .send_as(
            Method::DELETE,
            &alice.access_token,
            &format!("/api/workspace/members/{}", bob.id),
            Some(&alice.workspace_id),
            &json!({}),
        )
        .await?;
    assert_eq!(removed.status(), 204);

    assert_eq!(default_of(&app, &bob).await?, bob.workspace_id.as_str());
    let (status, members) = members_after_login(&app, "bob.default@example.com").await?;
    assert_eq!(
        status, 200,
        "login issued a token for a workspace bob left: {members}"
    );
    assert_eq!(members["items"][0]["user_id"], bob.id.as_str());
    assert_eq!(members["items"].as_array().map(Vec::len), Some(1));
    // Alice's default never moved.
    assert_eq!(default_of(&app, &alice).await?, alice.workspace_id.as_str());
    Ok(())
}

#[tokio::test]
async fn leaving_the_default_workspace_re_picks_the_default() -> TestResult {
    let app = TestApp::spawn().await?;
    let alice = app.signed_up("alice.leave@example.com").await?;
    let bob = app.signed_up("bob.leave@example.com").await?;
    assert_eq!(
        add_member(&app, &alice, "bob.leave@example.com", "viewer")
            .await?
            .status(),
        201
    );
    make_default(&app, &bob, &alice.workspace_id).await?;

    let left = app
        .send_as(
            Method::POST,
            &bob.access_token,
            "/api/workspace/members/leave",
            Some(&alice.workspace_id),
            &json!({}),
        )
        .await?;
    assert_eq!(left.status(), 204);

    assert_eq!(default_of(&app, &bob).await?, bob.workspace_id.as_str());
    let (status, members) = members_after_login(&app, "bob.leave@example.com").await?;
    assert_eq!(status, 200, "{members}");
    assert_eq!(members["items"][0]["user_id"], bob.id.as_str());
    Ok(())
}

#[tokio::test]
async fn the_re_picked_default_prefers_a_higher_role_then_the_oldest_and_can_be_none() -> TestResult
{
    let app = TestApp::spawn().await?;
    let alice = app.signed_up("alice.rank@example.com").await?;
    let carol = app.signed_up("carol.rank@example.com").await?;
    let bob = app.signed_up("bob.rank@example.com").await?;
    // Bob: viewer at Alice's first (the older membership), then admin at Carol's.
    for (owner, role) in [(&alice, "viewer"), (&carol, "admin")] {
        let added = add_member(&app, owner, "bob.rank@example.com", role).await?;
        assert_eq!(added.status(), 201);
    }
    // Bob hands his own workspace to Alice and leaves it: it was his default.
    let handed = add_member(&app, &bob, "alice.rank@example.com", "owner").await?;
    assert_eq!(handed.status(), 201);
    let leave = |workspace: String| {
        let (app, bob) = (&app, &bob);
        async move {
            app.send_as(
                Method::POST,
                &bob.access_token,
                "/api/workspace/members/leave",
                Some(&workspace),
                &json!({}),
            )
            .await
            .map(|response| response.status().as_u16())
        }
    };
    assert_eq!(leave(bob.workspace_id.clone()).await?, 204);
    assert_eq!(
        default_of(&app, &bob).await?,
        carol.workspace_id.as_str(),
        "admin must win over an older viewer membership"
    );
    let (status, members) = members_after_login(&app, "bob.rank@example.com").await?;
    assert_eq!(status, 200, "{members}");
    assert_eq!(members["items"][0]["user_id"], carol.id.as_str());

    assert_eq!(leave(carol.workspace_id.clone()).await?, 204);
    assert_eq!(default_of(&app, &bob).await?, alice.workspace_id.as_str());
    assert_eq!(leave(alice.workspace_id.clone()).await?, 204);
    assert_eq!(default_of(&app, &bob).await?, Value::Null);
    Ok(())
}
