//! The auth cache across processes: two instances of the application on one database,
//! each with its own cache and listener. A change made through one is refused by the
//! other within a second (each test polls for at most two seconds; the cache's time to
//! live is a minute, so only the announcement can make that happen).
//!
//! Each test first proves that the other instance really answers from its cache: a
//! change made *silently* (in a session whose triggers are off, so nothing is
//! announced) is not seen by it ([`served_from_cache`]).

use std::time::Duration;

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use fluxolab_postgres::auth_cache::LISTENER_APPLICATION_NAME;
use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp, eventually, poll, wait_for};

/// The longest a change may take to reach the other instance in these tests.
const WITHIN: Duration = Duration::from_secs(2);

/// Runs `sql` in a session that fires no trigger: nothing is announced.
async fn silently(app: &TestApp, sql: &str) -> Result<(), Error> {
    let mut connection = app.db.pool().get().await?;
    connection
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT;"
        ))
        .await?;
    Ok(())
}

/// Runs `sql` as anyone would: its changes are announced.
async fn announced(app: &TestApp, sql: &str) -> Result<(), Error> {
    app.db.pool().get().await?.batch_execute(sql).await?;
    Ok(())
}

/// Proves that `read` is answered from the instance's cache: after `change` is made
/// silently, it still answers `expected`. `undo` then puts things back, announced (so
/// no cache keeps what the silent change left). The announcement of a change made just
/// before (the test's setup) may still be on its way and evict the entry between the
/// warm-up and the check, so the proof is tried again, for up to 5 s.
async fn served_from_cache<F, Fut>(
    app: &TestApp,
    mut read: F,
    expected: u16,
    change: &str,
    undo: &str,
) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u16, Error>>,
{
    let what = "an answer from the instance's cache";
    eventually(what, Duration::from_secs(5), async || {
        assert_eq!(read().await?, expected, "before the silent change");
        silently(app, change).await?;
        let served = read().await? == expected;
        announced(app, undo).await?;
        Ok(served)
    })
    .await
}

/// The auth listeners' connections on this test's database.
fn listeners_where() -> String {
    format!(
        "pg_stat_activity WHERE datname = current_database() AND application_name = '{LISTENER_APPLICATION_NAME}'"
    )
}

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// The server processes of the connections `LISTEN`ing for auth changes on this test's
/// database.
async fn listeners(app: &TestApp) -> Result<Vec<i32>, Error> {
    let mut connection = app.db.pool().get().await?;
    let found: Vec<Pid> = diesel::sql_query(format!("SELECT pid FROM {}", listeners_where()))
        .load(&mut connection)
        .await?;
    Ok(found.into_iter().map(|row| row.pid).collect())
}

/// Waits (up to 10 s) until `wanted` connections listen for auth changes, none of them
/// one of `gone`; returns their server processes.
async fn await_listeners(app: &TestApp, wanted: usize, gone: &[i32]) -> Result<Vec<i32>, Error> {
    let what = format!("{wanted} auth listeners listening");
    wait_for(&what, Duration::from_secs(10), || async {
        let found = listeners(app).await?;
        let listening = found.len() == wanted && !found.iter().any(|pid| gone.contains(pid));
        Ok(listening.then_some(found))
    })
    .await
}

/// Two instances on one database, both listening.
async fn two_instances() -> Result<(TestApp, TestApp), Error> {
    let first = TestApp::spawn().await?;
    let second = first.spawn_beside().await?;
    await_listeners(&first, 2, &[]).await?;
    Ok((first, second))
}

/// Sends `request` until it answers `wanted` (then returns it), or returns the last
/// status after [`WITHIN`].
async fn poll_until<F, Fut>(wanted: u16, mut request: F) -> Result<u16, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u16, Error>>,
{
    let answered = poll(WITHIN, async || {
        let status = request().await?;
        Ok((status == wanted).then_some(status))
    })
    .await?;
    match answered {
        Some(status) => Ok(status),
        None => request().await,
    }
}

/// `who` sends `method path` to `app` in `workspace`; the status.
async fn status_as(
    app: &TestApp,
    who: &Account,
    method: Method,
    path: &str,
    workspace: &str,
    body: &Value,
) -> Result<u16, Error> {
    Ok(app
        .send_as(method, &who.access_token, path, Some(workspace), body)
        .await?
        .status()
        .as_u16())
}

/// `who` reads `workflow` of `workspace` through `app`; the status.
async fn read_workflow(
    app: &TestApp,
    who: &Account,
    workflow: &str,
    workspace: &str,
) -> Result<u16, Error> {
    status_as(
        app,
        who,
        Method::GET,
        &format!("/api/workflows/{workflow}"),
        workspace,
        &json!({}),
    )
    .await
}

/// The owner's workspace with `member` in it as `role`, and a workflow of it.
async fn shared_workflow(app: &TestApp, role: &str) -> Result<(Account, Account, String), Error> {
    let owner = app.signed_up("owner@example.com").await?;
    let member = app.signed_up("member@example.com").await?;
    let (added, _) = app
        .post_in(
            &owner,
            "/api/workspace/members",
            &json!({"email": "member@example.com", "role": role}),
        )
        .await?;
    assert_eq!(added, 201);
    let (created, workflow) = app
        .post_in(&owner, "/api/workflows", &json!({"name": "Shared"}))
        .await?;
    assert_eq!(created, 201);
    let id = workflow.text("id")?;
    Ok((owner, member, id))
}

/// Removes `member` from `workspace`, in SQL.
fn remove_sql(workspace: &str, member: &Account) -> String {
    format!(
        "DELETE FROM workspace_members WHERE workspace_id = '{workspace}' AND user_id = '{}'",
        member.id
    )
}

/// Makes `member` an editor of `workspace` again, in SQL.
fn add_sql(workspace: &str, member: &Account) -> String {
    format!(
        "INSERT INTO workspace_members (workspace_id, user_id, profile_id) \
         SELECT '{workspace}', '{}', id FROM profiles WHERE code = 'editor'",
        member.id
    )
}

#[tokio::test]
async fn a_member_removed_through_one_instance_is_refused_by_the_other() -> TestResult {
    let (first, second) = two_instances().await?;
    let (owner, member, workflow) = shared_workflow(&first, "editor").await?;
    let workspace = owner.workspace_id.clone();
    let read = || read_workflow(&second, &member, &workflow, &workspace);
    assert_eq!(read().await?, 200, "the member reads through the second");
    // Served from the second's cache: a removal nobody announces goes unseen there.
    served_from_cache(
        &first,
        read,
        200,
        &remove_sql(&workspace, &member),
        &add_sql(&workspace, &member),
    )
    .await?;

    let removed = status_as(
        &first,
        &owner,
        Method::DELETE,
        &format!("/api/workspace/members/{}", member.id),
        &workspace,
        &json!({}),
    )
    .await?;
    assert_eq!(removed, 204);
    assert_eq!(
        poll_until(404, read).await?,
        404,
        "a workspace one is not a member of is not found"
    );
    Ok(())
}

#[tokio::test]
async fn a_role_lowered_through_one_instance_is_applied_by_the_other() -> TestResult {
    let (first, second) = two_instances().await?;
    let (owner, member, workflow) = shared_workflow(&first, "editor").await?;
    let workspace = owner.workspace_id.clone();
    let mut renames = 0;
    let mut rename = || {
        renames += 1;
        let body = json!({"name": format!("Renamed {renames}")});
        let path = format!("/api/workflows/{workflow}");
        let (second, member, workspace) = (&second, &member, workspace.clone());
        async move { status_as(second, member, Method::PATCH, &path, &workspace, &body).await }
    };
    assert_eq!(rename().await?, 200, "an editor renames through the second");
    let role = |code: &str| {
        format!(
            "UPDATE workspace_members SET profile_id = (SELECT id FROM profiles WHERE code = '{code}') \
             WHERE workspace_id = '{workspace}' AND user_id = '{}'",
            member.id
        )
    };
    served_from_cache(&first, &mut rename, 200, &role("viewer"), &role("editor")).await?;

    let lowered = status_as(
        &first,
        &owner,
        Method::PATCH,
        &format!("/api/workspace/members/{}", member.id),
        &workspace,
        &json!({"role": "viewer"}),
    )
    .await?;
    assert_eq!(lowered, 200);
    assert_eq!(
        poll_until(403, &mut rename).await?,
        403,
        "a viewer may not rename"
    );
    Ok(())
}

/// `key` reads the workflows through `app`; the status.
async fn read_with_key(app: &TestApp, key: &str) -> Result<u16, Error> {
    Ok(app
        .client
        .get(app.url("/api/workflows"))
        .bearer_auth(key)
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test]
async fn a_key_revoked_through_one_instance_is_refused_by_the_other() -> TestResult {
    let (first, second) = two_instances().await?;
    let owner = first.signed_up("keys@example.com").await?;
    let (created, key) = first
        .post_in(
            &owner,
            "/api/settings/api/keys",
            &json!({"name": "Reader", "scopes": ["workflows.read"]}),
        )
        .await?;
    assert_eq!(created, 201);
    let (id, key) = (key.text("id")?, key.text("key")?);
    assert_eq!(read_with_key(&second, &key).await?, 200);

    let revoked_at = |value: &str| {
        format!("UPDATE workspace_api_keys SET revoked_at = {value} WHERE id = '{id}'")
    };
    served_from_cache(
        &first,
        || read_with_key(&second, &key),
        200,
        &revoked_at("now()"),
        &revoked_at("NULL"),
    )
    .await?;

    let (revoked, _) = first
        .post_in(
            &owner,
            &format!("/api/settings/api/keys/{id}/revoke"),
            &json!({}),
        )
        .await?;
    assert_eq!(revoked, 200);
    assert_eq!(poll_until(401, || read_with_key(&second, &key)).await?, 401);
    Ok(())
}

#[tokio::test]
async fn while_its_listener_is_lost_an_instance_reads_the_database() -> TestResult {
    let (first, second) = two_instances().await?;
    let (owner, member, workflow) = shared_workflow(&first, "editor").await?;
    let workspace = owner.workspace_id.clone();
    let read = || read_workflow(&second, &member, &workflow, &workspace);
    let (remove, add) = (
        remove_sql(&workspace, &member),
        add_sql(&workspace, &member),
    );
    served_from_cache(&first, read, 200, &remove, &add).await?;

    // Both listeners lose their connections; the removal that follows is announced to
    // nobody, yet the second reads it from the database.
    let lost = listeners(&first).await?;
    announced(
        &first,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM {}",
            listeners_where()
        ),
    )
    .await?;
    silently(&first, &remove).await?;
    assert_eq!(poll_until(404, read).await?, 404);

    // They listen again, and the cache is used again. (The member comes back
    // announced: the second may have cached them as no member since it listens.)
    await_listeners(&first, 2, &lost).await?;
    announced(&first, &add).await?;
    assert_eq!(poll_until(200, read).await?, 200);
    served_from_cache(&first, read, 200, &remove, &add).await?;
    Ok(())
}

#[tokio::test]
async fn an_environment_renamed_through_one_instance_is_resolved_by_the_other() -> TestResult {
    let (first, second) = two_instances().await?;
    let owner = first.signed_up("renamer@example.com").await?;
    let definition = json!({
        "nodes": [{"id": "start", "type": "trigger.manual", "name": "Start"}],
        "connections": []
    });
    let workflow = first
        .active_workflow(&owner, "Named", &definition)
        .await?
        .id;
    let path = format!("/api/workflows/{workflow}/run");
    let run_in = |environment: &'static str| {
        let (second, owner, path) = (&second, &owner, path.clone());
        async move {
            let (status, _) = second
                .post_in(owner, &path, &json!({"environment": environment}))
                .await?;
            Ok::<u16, Error>(status)
        }
    };
    assert_eq!(run_in("production").await?, 202);
    // Served from the second's cache: a rename nobody announces goes unseen there.
    let workspace = &owner.workspace_id;
    served_from_cache(
        &first,
        || run_in("production"),
        202,
        &format!(
            "UPDATE workspace_environments SET name = 'live' \
             WHERE workspace_id = '{workspace}' AND name = 'production'"
        ),
        &format!(
            "UPDATE workspace_environments SET name = 'production' \
             WHERE workspace_id = '{workspace}' AND name = 'live'"
        ),
    )
    .await?;

    let (renamed, body) = first
        .patch_in(
            &owner,
            "/api/settings/environments/production",
            &json!({"name": "live"}),
        )
        .await?;
    assert_eq!(renamed, 200, "{body}");
    assert_eq!(poll_until(202, || run_in("live")).await?, 202);
    assert_eq!(run_in("production").await?, 422, "the old name is gone");
    Ok(())
}

/// Whether `/api/auth/me` through `app` names `who`'s workspace `name`, as a status for
/// [`served_from_cache`] and [`poll_until`]: 200 when it does, 409 when not.
async fn me_names(app: &TestApp, who: &Account, name: &str) -> Result<u16, Error> {
    let response = app.get_as(&who.access_token, "/api/auth/me", None).await?;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await?;
    Ok(if me.text("/memberships/0/name")? == name {
        200
    } else {
        409
    })
}

#[tokio::test]
async fn a_workspace_renamed_through_one_instance_is_shown_by_both() -> TestResult {
    let (first, second) = two_instances().await?;
    let owner = first.signed_up("profile@example.com").await?;
    let me: Value = first
        .get_as(&owner.access_token, "/api/auth/me", None)
        .await?
        .json()
        .await?;
    let original = me.text("/memberships/0/name")?;
    let workspace = &owner.workspace_id;
    let named = |name: String| {
        let name = name.replace('\'', "''");
        format!("UPDATE workspaces SET name = '{name}' WHERE id = '{workspace}'")
    };
    // Served from each instance's cache: a rename nobody announces goes unseen.
    for app in [&first, &second] {
        served_from_cache(
            &first,
            || me_names(app, &owner, &original),
            200,
            &named("Silently".to_owned()),
            &named(original.clone()),
        )
        .await?;
    }

    let (renamed, body) = first
        .patch_in(
            &owner,
            &format!("/api/workspaces/{workspace}"),
            &json!({"name": "Renamed"}),
        )
        .await?;
    assert_eq!(renamed, 200, "{body}");
    // The renaming instance evicted at its commit; the other hears the announcement.
    assert_eq!(me_names(&first, &owner, "Renamed").await?, 200);
    assert_eq!(
        poll_until(200, || me_names(&second, &owner, "Renamed")).await?,
        200
    );
    Ok(())
}

#[tokio::test]
async fn a_workflow_changed_through_one_instance_is_read_and_run_so_by_the_other() -> TestResult {
    let (first, second) = two_instances().await?;
    let owner = first.signed_up("workflows@example.com").await?;
    let definition = json!({
        "nodes": [{"id": "start", "type": "trigger.manual", "name": "Start"}],
        "connections": []
    });
    let workflow = first
        .active_workflow(&owner, "Orders", &definition)
        .await?
        .id;
    let path = format!("/api/workflows/{workflow}");
    // 200 when `app` shows the workflow named `name`, 409 when another name.
    let named = |app: &'static str, name: &'static str| {
        let (app, owner, path) = (if app == "first" { &first } else { &second }, &owner, &path);
        async move {
            let (status, body) = app.get_in(owner, path).await?;
            assert_eq!(status, 200, "{body}");
            Ok::<u16, Error>(if body.text("name")? == name { 200 } else { 409 })
        }
    };
    let run = |app: &'static str| {
        let (app, owner, path) = (if app == "first" { &first } else { &second }, &owner, &path);
        async move {
            let (status, _) = app
                .post_in(owner, &format!("{path}/run"), &json!({}))
                .await?;
            Ok::<u16, Error>(status)
        }
    };
    // Served from the second's cache: a rename nobody announces goes unseen there.
    let renamed_to =
        |name: &str| format!("UPDATE workflows SET name = '{name}' WHERE id = '{workflow}'");
    served_from_cache(
        &first,
        || named("second", "Orders"),
        200,
        &renamed_to("Silently"),
        &renamed_to("Orders"),
    )
    .await?;
    assert_eq!(run("second").await?, 202);

    let (status, body) = first
        .patch_in(&owner, &path, &json!({"name": "Invoices"}))
        .await?;
    assert_eq!(status, 200, "{body}");
    // The renaming instance evicted at its commit; the other hears the announcement.
    assert_eq!(named("first", "Invoices").await?, 200);
    assert_eq!(poll_until(200, || named("second", "Invoices")).await?, 200);

    let (status, body) = first
        .post_in(&owner, &format!("{path}/deactivate"), &json!({}))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(run("first").await?, 422, "not active any more");
    assert_eq!(poll_until(422, || run("second")).await?, 422);
    Ok(())
}
