//! What migrations 16, 31, 33 and 34's triggers announce on `fluxolab_auth` (read by every
//! process's auth cache): each change of a membership, a workspace's archival or
//! rename, a user's profile (e-mail, name, default workspace), an API key (but its last
//! use), the roles' grants and a workflow (its row, versions, deployments) — at its commit, and nothing for a change rolled
//! back. Notifications arrive in commit order, so a marker sent after the changes tells
//! when everything they announced has arrived: no waiting for silence.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use fluxolab_postgres::TestDb;
use fluxolab_postgres::seed::seed_reference_data;
use futures_util::StreamExt;

use crate::TestResult;

type Error = Box<dyn std::error::Error + Send + Sync>;

const WORKSPACE: &str = "0190a000-0000-7000-8000-000000000001";
const OWNER: &str = "0190a000-0000-7000-8000-000000000002";
const MEMBER: &str = "0190a000-0000-7000-8000-000000000003";
const KEY: &str = "0190a000-0000-7000-8000-000000000004";

/// A connection listening on the channel, and one making changes; the workspace with
/// its owner and an editor.
async fn connections(db: &TestDb) -> Result<(AsyncPgConnection, AsyncPgConnection), Error> {
    let mut writer = AsyncPgConnection::establish(db.url()).await?;
    seed_reference_data(&mut writer).await?;
    writer
        .batch_execute(&format!(
            "INSERT INTO users (id, email, password_hash, display_name) VALUES \
               ('{OWNER}', 'owner@example.com', 'x', 'Owner'), \
               ('{MEMBER}', 'member@example.com', 'x', 'Member'); \
             INSERT INTO workspaces (id, name, slug) VALUES ('{WORKSPACE}', 'W', 'w'); \
             INSERT INTO workspace_members (workspace_id, user_id, profile_id) \
               SELECT '{WORKSPACE}', '{OWNER}', id FROM profiles WHERE code = 'owner'; \
             INSERT INTO workspace_members (workspace_id, user_id, profile_id) \
               SELECT '{WORKSPACE}', '{MEMBER}', id FROM profiles WHERE code = 'editor'"
        ))
        .await?;
    let mut listener = AsyncPgConnection::establish(db.url()).await?;
    listener.batch_execute("LISTEN fluxolab_auth").await?;
    Ok((listener, writer))
}

/// Runs `sql` on `writer`, then returns what was announced since (sorted).
async fn announced(
    listener: &mut AsyncPgConnection,
    writer: &mut AsyncPgConnection,
    sql: &str,
) -> Result<Vec<String>, Error> {
    writer.batch_execute(sql).await?;
    writer
        .batch_execute("NOTIFY fluxolab_auth, 'marker'")
        .await?;
    let mut payloads = Vec::new();
    let mut stream = std::pin::pin!(listener.notifications_stream());
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await?;
        let payload = next.ok_or("the listener's connection ended")??.payload;
        if payload == "marker" {
            break;
        }
        payloads.push(payload);
    }
    payloads.sort();
    Ok(payloads)
}

fn member(user: &str) -> String {
    format!("member:{WORKSPACE}:{user}")
}

#[tokio::test]
async fn membership_and_profile_changes_are_announced_at_commit_and_never_when_rolled_back()
-> TestResult {
    let db = TestDb::new().await?;
    let (mut listener, mut writer) = connections(&db).await?;
    let membership = format!("workspace_id = '{WORKSPACE}' AND user_id = '{MEMBER}'");

    let rolled_back = format!("BEGIN; DELETE FROM workspace_members WHERE {membership}; ROLLBACK");
    assert_eq!(
        announced(&mut listener, &mut writer, &rolled_back).await?,
        Vec::<String>::new()
    );
    let lowered = format!(
        "UPDATE workspace_members SET profile_id = (SELECT id FROM profiles WHERE code = 'viewer') \
         WHERE {membership}"
    );
    assert_eq!(
        announced(&mut listener, &mut writer, &lowered).await?,
        [member(MEMBER)]
    );
    let removed = format!("DELETE FROM workspace_members WHERE {membership}");
    assert_eq!(
        announced(&mut listener, &mut writer, &removed).await?,
        [member(MEMBER)]
    );
    let added = format!(
        "INSERT INTO workspace_members (workspace_id, user_id, profile_id) \
         SELECT '{WORKSPACE}', '{MEMBER}', id FROM profiles WHERE code = 'admin'"
    );
    assert_eq!(
        announced(&mut listener, &mut writer, &added).await?,
        [member(MEMBER)]
    );
    // A user's profile: what `/me` shows announces itself, nothing else does.
    let user_renamed = format!("UPDATE users SET display_name = 'Renamed' WHERE id = '{MEMBER}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &user_renamed).await?,
        [format!("user:{MEMBER}")]
    );
    let unchanged = format!("UPDATE users SET display_name = 'Renamed' WHERE id = '{MEMBER}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &unchanged).await?,
        Vec::<String>::new()
    );
    let password = format!("UPDATE users SET password_hash = 'y' WHERE id = '{MEMBER}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &password).await?,
        Vec::<String>::new()
    );
    let default_workspace =
        format!("UPDATE users SET default_workspace_id = '{WORKSPACE}' WHERE id = '{MEMBER}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &default_workspace).await?,
        [format!("user:{MEMBER}")]
    );
    // A deleted user's memberships go by cascade, and say so.
    let user_deleted = format!("DELETE FROM users WHERE id = '{MEMBER}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &user_deleted).await?,
        [member(MEMBER), format!("user:{MEMBER}")]
    );
    let archived = format!("UPDATE workspaces SET archived_at = now() WHERE id = '{WORKSPACE}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &archived).await?,
        [format!("workspace:{WORKSPACE}")]
    );
    let renamed = format!("UPDATE workspaces SET name = 'Renamed' WHERE id = '{WORKSPACE}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &renamed).await?,
        [format!("workspace:{WORKSPACE}")]
    );
    let touched = format!("UPDATE workspaces SET updated_at = now() WHERE id = '{WORKSPACE}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &touched).await?,
        Vec::<String>::new()
    );
    let workspace_deleted = format!("DELETE FROM workspaces WHERE id = '{WORKSPACE}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &workspace_deleted).await?,
        [member(OWNER)]
    );
    Ok(())
}

#[tokio::test]
async fn key_changes_announce_their_prefixes_but_a_use_announces_nothing() -> TestResult {
    let db = TestDb::new().await?;
    let (mut listener, mut writer) = connections(&db).await?;
    let created = format!(
        "INSERT INTO workspace_api_keys (id, workspace_id, name, prefix, last_four, secret_hash, scopes) \
         VALUES ('{KEY}', '{WORKSPACE}', 'CI', 'flx_first000', 'abcd', '\\x00', '{{workflows.read}}')"
    );
    assert_eq!(
        announced(&mut listener, &mut writer, &created).await?,
        ["api_key:flx_first000"]
    );
    let key = format!("WHERE id = '{KEY}'");
    let used = format!("UPDATE workspace_api_keys SET last_used_at = now() {key}");
    assert_eq!(
        announced(&mut listener, &mut writer, &used).await?,
        Vec::<String>::new()
    );
    let rotated = format!(
        "UPDATE workspace_api_keys SET prefix = 'flx_second00', previous_prefix = prefix, \
         previous_hash = secret_hash, secret_hash = '\\x01', previous_valid_until = now() {key}"
    );
    assert_eq!(
        announced(&mut listener, &mut writer, &rotated).await?,
        ["api_key:flx_first000", "api_key:flx_second00"]
    );
    let revoked = format!("UPDATE workspace_api_keys SET revoked_at = now() {key}");
    assert_eq!(
        announced(&mut listener, &mut writer, &revoked).await?,
        ["api_key:flx_first000", "api_key:flx_second00"]
    );
    let deleted = format!("DELETE FROM workspace_api_keys {key}");
    assert_eq!(
        announced(&mut listener, &mut writer, &deleted).await?,
        ["api_key:flx_first000", "api_key:flx_second00"]
    );
    Ok(())
}

#[tokio::test]
async fn only_a_real_change_of_the_grants_announces_everything() -> TestResult {
    let db = TestDb::new().await?;
    let (mut listener, mut writer) = connections(&db).await?;
    // Seeding again (every `fluxolab migrate` does) changes nothing.
    seed_reference_data(&mut writer).await?;
    assert_eq!(
        announced(&mut listener, &mut writer, "SELECT 1").await?,
        Vec::<String>::new()
    );
    let revoked_grant = "DELETE FROM profile_permissions WHERE profile_id = \
        (SELECT id FROM profiles WHERE code = 'viewer')";
    assert_eq!(
        announced(&mut listener, &mut writer, revoked_grant).await?,
        ["all"]
    );
    // The seed puts the grants back, and says so.
    seed_reference_data(&mut writer).await?;
    assert_eq!(
        announced(&mut listener, &mut writer, "SELECT 1").await?,
        ["all"]
    );
    Ok(())
}

#[tokio::test]
async fn workflow_changes_announce_the_workflow_and_a_new_one_announces_nothing() -> TestResult {
    const WORKFLOW: &str = "0190a000-0000-7000-8000-000000000005";
    const ENVIRONMENT: &str = "0190a000-0000-7000-8000-000000000006";
    let db = TestDb::new().await?;
    let (mut listener, mut writer) = connections(&db).await?;
    let workflow = format!("workflow:{WORKFLOW}");
    let created = format!(
        "INSERT INTO workflows (id, workspace_id, name) VALUES ('{WORKFLOW}', '{WORKSPACE}', 'Orders')"
    );
    assert_eq!(
        announced(&mut listener, &mut writer, &created).await?,
        Vec::<String>::new()
    );
    let versioned = format!(
        "INSERT INTO workflow_versions (workflow_id, workspace_id, version, definition, checksum) \
         VALUES ('{WORKFLOW}', '{WORKSPACE}', 1, '{{}}', 'x')"
    );
    assert_eq!(
        announced(&mut listener, &mut writer, &versioned).await?,
        std::slice::from_ref(&workflow)
    );
    let environment = format!(
        "INSERT INTO workspace_environments (id, workspace_id, name) \
         VALUES ('{ENVIRONMENT}', '{WORKSPACE}', 'production')"
    );
    announced(&mut listener, &mut writer, &environment).await?;
    let activated = format!(
        "INSERT INTO workflow_deployments (workflow_id, environment_id, workspace_id, version) \
         VALUES ('{WORKFLOW}', '{ENVIRONMENT}', '{WORKSPACE}', 1)"
    );
    assert_eq!(
        announced(&mut listener, &mut writer, &activated).await?,
        std::slice::from_ref(&workflow)
    );
    let renamed = format!("UPDATE workflows SET name = 'Renamed' WHERE id = '{WORKFLOW}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &renamed).await?,
        std::slice::from_ref(&workflow)
    );
    let rolled_back = format!(
        "BEGIN; DELETE FROM workflow_deployments WHERE workflow_id = '{WORKFLOW}'; ROLLBACK"
    );
    assert_eq!(
        announced(&mut listener, &mut writer, &rolled_back).await?,
        Vec::<String>::new()
    );
    // An environment's deletion takes the deployment with it, and both say so.
    let environment_deleted =
        format!("DELETE FROM workspace_environments WHERE id = '{ENVIRONMENT}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &environment_deleted).await?,
        [format!("environments:{WORKSPACE}"), workflow.clone()]
    );
    let deleted = format!("DELETE FROM workflows WHERE id = '{WORKFLOW}'");
    assert_eq!(
        announced(&mut listener, &mut writer, &deleted).await?,
        [workflow]
    );
    assert_eq!(
        announced(&mut listener, &mut writer, "TRUNCATE workflow_deployments").await?,
        ["all"]
    );
    Ok(())
}
