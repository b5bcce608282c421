//! Workflows, versions, activation and definition validation, end to end over HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Fields, TestApp, call, three_nodes};

#[tokio::test]
async fn versions_are_numbered_immutable_and_activated() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("flows@example.com").await?;
    let (status, created) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Sum", "description": "adds", "definition": three_nodes()}),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["latest_version"], 1);
    assert_eq!(created["active_version"], Value::Null);
    let id = created.text("id")?;

    let mut second = three_nodes();
    second["nodes"][2]["params"]["condition"] = json!("{{ nodes.shape.output.total > 100 }}");
    let (status, version) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/versions"),
            &json!({"definition": second}),
        )
        .await?;
    assert_eq!((status, version["version"].as_i64()), (201, Some(2)));
    assert_eq!(version["checksum"].as_str().map(str::len), Some(64));

    let (_, versions) = app
        .get_in(&owner, &format!("/api/workflows/{id}/versions"))
        .await?;
    assert_eq!(versions.as_array().map(Vec::len), Some(2));
    assert_eq!(
        versions[0]["definition"]["nodes"][2]["params"]["condition"],
        "{{ nodes.shape.output.total > 10 }}"
    );

    let (status, active) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/activate"),
            &json!({"version": 2}),
        )
        .await?;
    assert_eq!((status, active["active_version"].as_i64()), (200, Some(2)));
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/activate"),
            &json!({"version": 9}),
        )
        .await?;
    assert_eq!(status, 422);
    let (_, inactive) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/deactivate"),
            &json!({}),
        )
        .await?;
    assert_eq!(inactive["active_version"], Value::Null);

    let (status, _) = app
        .delete_in(&owner, &format!("/api/workflows/{id}"))
        .await?;
    assert_eq!(status, 204);
    let (_, archived) = app.get_in(&owner, &format!("/api/workflows/{id}")).await?;
    assert_eq!(archived["archived"], true);

    let (_, nodes) = app.get_in(&owner, "/api/workflows/nodes").await?;
    assert_eq!(
        nodes.as_array().map(Vec::len),
        Some(fluxolab_workflows::registry::NODE_TYPES.len())
    );
    Ok(())
}

#[tokio::test]
async fn invalid_definitions_name_the_node_and_save_nothing() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("checks@example.com").await?;
    let other = app.signed_up("elsewhere@example.com").await?;
    let (_, foreign) = app.post_in(&other, "/api/workflows/credentials", &json!({"name": "Theirs", "kind": "smtp", "data": {"host": "h.example.com", "port": 25, "tls_mode": "none"}})).await?;
    let (_, token) = app
        .post_in(
            &owner,
            "/api/workflows/credentials",
            &json!({"name": "Token", "kind": "bearer_token", "data": {"token": "a-bearer-token"}}),
        )
        .await?;

    let mail = |credential: &Value| {
        json!({"nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "mail", "type": "email.send", "name": "Mail", "credential_id": credential["id"],
             "params": {"to": "a@example.com", "subject": "s", "body": "b"}}],
          "connections": [{"from": "start", "to": "mail"}]})
    };
    let mut cycle = three_nodes();
    cycle["connections"] = json!([{"from": "start", "to": "shape"}, {"from": "shape", "to": "check"}, {"from": "check", "output": "false", "to": "shape"}]);
    let mut two_triggers = three_nodes();
    two_triggers["nodes"][1] = json!({"id": "shape", "type": "trigger.webhook", "name": "Hook"});
    let mut unknown = three_nodes();
    unknown["nodes"][2]["type"] = json!("shell.exec");
    let mut bad_param = three_nodes();
    bad_param["nodes"][1]["params"] = json!({"values": 42});

    let cases = [
        (cycle, "part of a cycle"),
        (two_triggers, "exactly one trigger"),
        (unknown, "node `check`: unknown node type"),
        (bad_param, "node `shape`: must be an object"),
        (mail(&foreign), "does not exist in this workspace"),
        (mail(&token), "needs a smtp credential, not bearer_token"),
    ];
    for (definition, expected) in cases {
        let (status, problem) = app
            .post_in(
                &owner,
                "/api/workflows",
                &json!({"name": "Bad", "definition": definition}),
            )
            .await?;
        assert_eq!(status, 422, "{problem}");
        let messages: Vec<&str> = problem["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .collect();
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected}: {problem}"
        );
    }
    assert_eq!(app.count("workflows").await?, 0);
    assert_eq!(app.count("workflow_versions").await?, 0);
    Ok(())
}

#[tokio::test]
async fn other_workspaces_workflows_are_404_and_viewers_only_read() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("wf-owner@example.com").await?;
    let outsider = app.signed_up("wf-outsider@example.com").await?;
    let viewer = app.signed_up("wf-viewer@example.com").await?;
    let (_, created) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Mine", "definition": three_nodes()}),
        )
        .await?;
    let id = created.text("id")?;
    for (method, path, body) in [
        (Method::GET, format!("/api/workflows/{id}"), json!({})),
        (
            Method::PATCH,
            format!("/api/workflows/{id}"),
            json!({"name": "x"}),
        ),
        (Method::DELETE, format!("/api/workflows/{id}"), json!({})),
        (
            Method::GET,
            format!("/api/workflows/{id}/versions"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/workflows/{id}/versions"),
            json!({"definition": three_nodes()}),
        ),
        (
            Method::POST,
            format!("/api/workflows/{id}/activate"),
            json!({"version": 1}),
        ),
        (
            Method::POST,
            format!("/api/workflows/{id}/deactivate"),
            json!({}),
        ),
    ] {
        let (status, _) = call(&app, &outsider, method.clone(), &path, &body).await?;
        assert_eq!(status, 404, "{method} {path}");
    }

    app.send_as(
        Method::POST,
        &owner.access_token,
        "/api/workspace/members",
        Some(&owner.workspace_id),
        &json!({"email": "wf-viewer@example.com", "role": "viewer"}),
    )
    .await?;
    let as_viewer = Account {
        workspace_id: owner.workspace_id.clone(),
        ..viewer
    };
    let (status, _) = app.get_in(&as_viewer, "/api/workflows").await?;
    assert_eq!(status, 200);
    let (status, _) = app
        .post_in(&as_viewer, "/api/workflows", &json!({"name": "No"}))
        .await?;
    assert_eq!(status, 403);
    let (status, _) = app
        .post_in(
            &as_viewer,
            &format!("/api/workflows/{id}/activate"),
            &json!({"version": 1}),
        )
        .await?;
    assert_eq!(status, 403);
    Ok(())
}

#[tokio::test]
async fn a_credential_used_by_an_active_workflow_cannot_be_deleted() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("inuse@example.com").await?;
    let (_, smtp) = app.post_in(&owner, "/api/workflows/credentials", &json!({"name": "Mailer", "kind": "smtp", "data": {"host": "mail.example.com", "port": 587, "tls_mode": "starttls"}})).await?;
    let credential = smtp.text("id")?;
    let definition = json!({"nodes": [
        {"id": "start", "type": "trigger.manual", "name": "Start"},
        {"id": "mail", "type": "email.send", "name": "Mail", "credential_id": credential,
         "params": {"to": "a@example.com", "subject": "Hi {{ trigger.body.name }}", "body": "b"}}],
      "connections": [{"from": "start", "to": "mail"}]});
    let (_, workflow) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Newsletter", "definition": definition}),
        )
        .await?;
    let id = workflow.text("id")?;
    let (status, activated) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/activate"),
            &json!({"version": 1}),
        )
        .await?;
    assert_eq!(
        (status, activated["active_version"].as_i64()),
        (200, Some(1)),
        "{activated}"
    );

    let (status, problem) = app
        .delete_in(&owner, &format!("/api/workflows/credentials/{credential}"))
        .await?;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("credential_in_use"))
    );
    assert!(problem.text("detail")?.contains("Newsletter"), "{problem}");

    app.post_in(
        &owner,
        &format!("/api/workflows/{id}/deactivate"),
        &json!({}),
    )
    .await?;
    let (status, _) = app
        .delete_in(&owner, &format!("/api/workflows/credentials/{credential}"))
        .await?;
    assert_eq!(status, 204);
    // The version that referenced it can no longer be activated.
    let (status, problem) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{id}/activate"),
            &json!({"version": 1}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    Ok(())
}

#[tokio::test]
async fn text_holding_a_nul_character_is_refused_before_it_reaches_the_database() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("nul@example.com").await?;
    for (path, body, field) in [
        (
            "/api/workflows",
            json!({"name": "Flow\u{0}", "definition": three_nodes()}),
            "name",
        ),
        (
            "/api/workflows/credentials",
            json!({"name": "Key\u{0}", "kind": "generic", "data": {"value": "x"}}),
            "name",
        ),
    ] {
        let (status, problem) = app.post_in(&owner, path, &body).await?;
        assert_eq!(status, 422, "{path}: {problem}");
        assert_eq!(problem["code"], "validation_failed", "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    assert_eq!(app.count("workflows").await?, 0);
    Ok(())
}
