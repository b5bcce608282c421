//! The MCP server (`/api/mcp`): an independent client (the official MCP Python SDK, see
//! `crates/app/tests/mcp_client.py`) over Streamable HTTP, and the transport's contract
//! spoken directly: auth, scopes, sessions, the call timeout, tool-name conflicts.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, TestApp};

/// A `trigger.mcp` node.
fn mcp_trigger(tool: &str, schema: Value) -> Value {
    let mut node = json!({"id": "start", "type": "trigger.mcp", "name": "Tool", "params": {
        "tool_name": tool, "description": format!("The {tool} tool"),
    }});
    node["params"]["input_schema"] = schema;
    node
}

/// `greet`: answers `{"greeting": "Hello, <name>"}` from a `webhook.respond` step.
fn greeter(tool: &str) -> Value {
    json!({
        "nodes": [
            mcp_trigger(tool, json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})),
            {"id": "answer", "type": "webhook.respond", "name": "Answer", "params": {
                "body": {"greeting": "Hello, {{ trigger.body.name }}"}}},
        ],
        "connections": [{"from": "start", "output": "main", "to": "answer"}],
    })
}

/// `slow_sum`: waits `milliseconds`, then ends with `{"sum": a + b}` (no answer step).
fn slow_sum(milliseconds: u64) -> Value {
    json!({
        "nodes": [
            mcp_trigger("slow_sum", json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}})),
            {"id": "wait", "type": "flow.delay", "name": "Wait", "params": {"milliseconds": milliseconds}},
            {"id": "sum", "type": "data.set", "name": "Sum", "params": {"values": {"sum": "{{ trigger.body.a + trigger.body.b }}"}}},
        ],
        "connections": [
            {"from": "start", "output": "main", "to": "wait"},
            {"from": "wait", "output": "main", "to": "sum"},
        ],
    })
}

async fn key(app: &TestApp, owner: &Account, scopes: &[&str]) -> Result<String, Error> {
    Ok(app
        .create_api_key(owner, &json!({"name": "MCP", "scopes": scopes}))
        .await?
        .key)
}

/// One JSON-RPC message to `/api/mcp` as `key`, in `session` when given.
async fn rpc(
    app: &TestApp,
    key: &str,
    session: Option<&str>,
    body: &Value,
) -> Result<(u16, reqwest::header::HeaderMap, Value), Error> {
    let mut request = app
        .client
        .post(app.url("/api/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    };
    Ok((status, headers, value))
}

/// `initialize` as `key`; the new session's id.
async fn initialize(app: &TestApp, key: &str) -> Result<String, Error> {
    let (status, headers, answer) = rpc(
        app,
        key,
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["result"]["protocolVersion"], "2025-06-18",
        "{answer}"
    );
    Ok(headers
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .ok_or("initialize set no Mcp-Session-Id")?
        .to_owned())
}

fn request(id: u32, method: &str, params: Value) -> Value {
    let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
    message["params"] = params;
    message
}

#[tokio::test]
async fn mcp_without_a_valid_api_key_is_401_with_www_authenticate() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("mcp-auth@example.com").await?;
    let body = request(1, "tools/list", json!({}));
    let anonymous = app
        .client
        .post(app.url("/api/mcp"))
        .json(&body)
        .send()
        .await?;
    let made_up = app
        .client
        .post(app.url("/api/mcp"))
        .bearer_auth("flx_notarealkeynotarealkeynotarealkeynotarealkey1234")
        .json(&body)
        .send()
        .await?;
    let user_token = app
        .client
        .post(app.url("/api/mcp"))
        .bearer_auth(&owner.access_token)
        .json(&body)
        .send()
        .await?;
    for response in [anonymous, made_up, user_token] {
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|value| value.to_str().ok()),
            Some("Bearer")
        );
    }
    Ok(())
}

#[tokio::test]
async fn scopes_bound_listing_and_calling() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("mcp-scopes@example.com").await?;
    app.set_free_limit("api_keys", 5).await?;
    app.active_workflow(&owner, "Greeter", &greeter("greet"))
        .await?;

    let runner = key(&app, &owner, &["workflows.run"]).await?;
    let session = initialize(&app, &runner).await?;
    let (_, _, listed) = rpc(
        &app,
        &runner,
        Some(&session),
        &request(2, "tools/list", json!({})),
    )
    .await?;
    assert_eq!(listed["error"]["code"], -32003, "{listed}");
    assert_eq!(listed["error"]["data"]["permission"], "workflows.read");

    let reader = key(&app, &owner, &["workflows.read"]).await?;
    let session = initialize(&app, &reader).await?;
    let (_, _, listed) = rpc(
        &app,
        &reader,
        Some(&session),
        &request(2, "tools/list", json!({})),
    )
    .await?;
    assert_eq!(listed["result"]["tools"][0]["name"], "greet", "{listed}");
    let call = request(
        3,
        "tools/call",
        json!({"name": "greet", "arguments": {"name": "Ada"}}),
    );
    let (_, _, refused) = rpc(&app, &reader, Some(&session), &call).await?;
    assert_eq!(refused["error"]["code"], -32003, "{refused}");
    assert_eq!(refused["error"]["data"]["permission"], "workflows.run");
    assert_eq!(app.scalar("SELECT count(*) FROM executions").await?, 0);

    // A key with neither scope cannot even initialize.
    let neither = key(&app, &owner, &["executions.read"]).await?;
    let (status, _, refused) = rpc(
        &app,
        &neither,
        None,
        &request(1, "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})),
    )
    .await?;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (200, json!(-32003))
    );
    Ok(())
}

#[tokio::test]
async fn sessions_are_required_end_on_delete_and_expire() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("mcp-sessions@example.com").await?;
    let key = key(&app, &owner, &["workflows.read"]).await?;
    let ping = request(2, "ping", json!({}));

    let (status, _, answer) = rpc(&app, &key, None, &ping).await?;
    assert_eq!(status, 400, "{answer}");
    let session = initialize(&app, &key).await?;
    let (status, _, answer) = rpc(&app, &key, Some(&session), &ping).await?;
    assert_eq!((status, answer["result"].clone()), (200, json!({})));
    let notified = rpc(
        &app,
        &key,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await?;
    assert_eq!(notified.0, 202);

    // The version header, when sent, must be the one the session negotiated.
    for (named, expected) in [
        ("2025-06-18", 200),
        ("2025-03-26", 400),
        ("1999-01-01", 400),
    ] {
        let answer = app
            .client
            .post(app.url("/api/mcp"))
            .bearer_auth(&key)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", named)
            .json(&ping)
            .send()
            .await?;
        assert_eq!(answer.status().as_u16(), expected, "{named}");
    }

    // Another key does not find the session.
    let other = self::key(&app, &owner, &["workflows.read"]).await?;
    assert_eq!(rpc(&app, &other, Some(&session), &ping).await?.0, 404);

    // DELETE ends it.
    let ended = app
        .client
        .delete(app.url("/api/mcp"))
        .bearer_auth(&key)
        .header("mcp-session-id", &session)
        .send()
        .await?;
    assert_eq!(ended.status().as_u16(), 204);
    assert_eq!(rpc(&app, &key, Some(&session), &ping).await?.0, 404);

    // A session left idle past its time expires.
    let session = initialize(&app, &key).await?;
    app.execute(&format!(
        "UPDATE mcp_sessions SET expires_at = now() - interval '1 second' WHERE id = '{session}'"
    ))
    .await?;
    let (status, _, answer) = rpc(&app, &key, Some(&session), &ping).await?;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], -32001);

    // No server-initiated stream.
    let stream = app
        .client
        .get(app.url("/api/mcp"))
        .bearer_auth(&key)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    assert_eq!(stream.status().as_u16(), 405);
    Ok(())
}

#[tokio::test]
async fn a_tool_name_active_twice_in_an_environment_is_a_conflict() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("mcp-conflict@example.com").await?;
    let first = app
        .active_workflow(&owner, "Greeter", &greeter("greet"))
        .await?;
    let second = app
        .create_workflow(&owner, "Other greeter", &greeter("greet"))
        .await?;
    let path = format!("/api/workflows/{}/activate", second.id);
    let (status, problem) = app.post_in(&owner, &path, &json!({"version": 1})).await?;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "mcp_tool_name_taken");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("Greeter")),
        "{problem}"
    );
    // Another environment is another set of tools; the same workflow again is no clash.
    let (status, answer) = app
        .post_in(
            &owner,
            &path,
            &json!({"version": 1, "environment": "staging"}),
        )
        .await?;
    assert_eq!(status, 200, "{answer}");
    app.activate(&owner, &first.id, 1).await?;

    // A schema that does not compile is refused on save, naming the field.
    let broken = json!({"nodes": [mcp_trigger("broken", json!({"type": "object", "properties": {"n": {"type": 5}}}))], "connections": []});
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Broken", "definition": broken}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem
            .to_string()
            .contains("definition.nodes[0].params.input_schema"),
        "{problem}"
    );
    Ok(())
}

#[tokio::test]
async fn racing_activations_of_one_tool_name_let_exactly_one_through() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("mcp-race@example.com").await?;
    let mut paths = Vec::new();
    for name in ["Racer A", "Racer B", "Racer C", "Racer D"] {
        let workflow = app.create_workflow(&owner, name, &greeter("race")).await?;
        paths.push(format!("/api/workflows/{}/activate", workflow.id));
    }
    let body = json!({"version": 1});
    let answers =
        futures_util::future::join_all(paths.iter().map(|path| app.post_in(&owner, path, &body)))
            .await;
    let mut statuses = Vec::new();
    for answer in answers {
        let (status, body) = answer?;
        if status == 409 {
            assert_eq!(body["code"], "mcp_tool_name_taken", "{body}");
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409]);
    Ok(())
}

#[tokio::test]
async fn a_call_that_outlasts_the_timeout_returns_the_execution_id() -> TestResult {
    let app = TestApp::spawn_with(&[("MCP_CALL_TIMEOUT_SECONDS", "1")]).await?;
    let owner = app.signed_up("mcp-timeout@example.com").await?;
    app.active_workflow(&owner, "Slow", &slow_sum(4000)).await?;
    let key = key(
        &app,
        &owner,
        &["workflows.run", "workflows.read", "executions.read"],
    )
    .await?;
    let session = initialize(&app, &key).await?;
    let call = request(
        2,
        "tools/call",
        json!({"name": "slow_sum", "arguments": {"a": 1, "b": 2}}),
    );
    let (status, _, answer) = rpc(&app, &key, Some(&session), &call).await?;
    assert_eq!(status, 200, "{answer}");
    let result = &answer["result"];
    assert_eq!(result["isError"], false, "{answer}");
    assert_eq!(result["structuredContent"]["status"], "running");
    let execution = result["structuredContent"]["execution_id"]
        .as_str()
        .ok_or("no execution_id")?;
    assert!(
        result["content"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("goes on"))
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM executions WHERE id = '{execution}' AND trigger_kind = 'mcp'"
        ))
        .await?,
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM activities WHERE action = 'mcp.tool_called'")
            .await?,
        1
    );
    // The execution is a resource the key may read.
    let read = request(
        3,
        "resources/read",
        json!({"uri": format!("fluxolab://executions/{execution}")}),
    );
    let (_, _, answer) = rpc(&app, &key, Some(&session), &read).await?;
    let text = answer["result"]["contents"][0]["text"]
        .as_str()
        .ok_or("no text")?;
    assert_eq!(serde_json::from_str::<Value>(text)?["trigger_kind"], "mcp");
    Ok(())
}

/// The Python of the virtualenv `cargo xtask mcp-client` makes: `MCP_CLIENT_PYTHON`, else
/// the workspace's `.fluxolab/mcp-client`.
fn client_python() -> Option<PathBuf> {
    if let Some(given) = std::env::var_os("MCP_CLIENT_PYTHON").filter(|value| !value.is_empty()) {
        return Some(PathBuf::from(given));
    }
    let installed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.fluxolab/mcp-client/bin/python");
    installed.exists().then_some(installed)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// Runs `mcp_client.py PHASE` with `env`; its output on failure.
async fn client(python: &PathBuf, phase: &str, env: &[(&str, String)]) -> TestResult {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py");
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .arg(phase)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim_end().ends_with("ok"),
        "mcp client ({phase}) failed: {}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    Ok(())
}

#[tokio::test]
async fn an_independent_mcp_client_lists_calls_and_reads() -> TestResult {
    let Some(python) = client_python() else {
        let why = "the MCP client is not installed: run `cargo xtask mcp-client` or set MCP_CLIENT_PYTHON";
        assert!(!in_ci(), "{why}");
        eprintln!("skipped: {why}");
        return Ok(());
    };
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("mcp-client@example.com").await?;
    let greet = app
        .active_workflow(&owner, "Greeter", &greeter("greet"))
        .await?;
    app.active_workflow(&owner, "Slow sum", &slow_sum(2500))
        .await?;
    // A tool of another workspace, which the key must not see or call.
    let stranger = app.signed_up("mcp-stranger@example.com").await?;
    app.active_workflow(&stranger, "Secret", &greeter("secret_tool"))
        .await?;
    let key = key(
        &app,
        &owner,
        &["workflows.read", "workflows.run", "executions.read"],
    )
    .await?;
    let env = [
        ("MCP_URL", app.url("/api/mcp")),
        ("MCP_KEY", key),
        ("MCP_WORKFLOW_ID", greet.id.clone()),
        ("MCP_FOREIGN_TOOL", "secret_tool".to_owned()),
    ];
    client(&python, "main", &env).await?;
    assert_eq!(
        app.scalar("SELECT count(*) FROM executions WHERE trigger_kind = 'mcp'")
            .await?,
        2
    );

    // Over the quota, a call is a tool error and nothing runs.
    app.set_free_limit("executions_per_month", 2).await?;
    client(&python, "quota", &env).await?;
    assert_eq!(
        app.scalar("SELECT count(*) FROM executions WHERE trigger_kind = 'mcp'")
            .await?,
        2
    );
    Ok(())
}
