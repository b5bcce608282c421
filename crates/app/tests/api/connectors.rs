//! Declarative connectors through the API, against a local HTTP API the test starts:
//! installed from a manifest, listed among the node types, used in a workflow and run
//! (request built from the manifest, credential applied, answer mapped), upgraded,
//! disabled (validation refuses it), kept while active workflows use it; bad manifests
//! named field by field, roles, isolation, activities and integration events.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp, wait_finished};

const CONNECTORS: &str = "/api/settings/connectors";
const TOKEN: &str = "chat-api-token-s3cr3t";

/// What the local API was sent: `METHOD path?query authorization body`.
type Seen = Arc<Mutex<Vec<String>>>;

/// A loopback "chat API": `POST /v1/{account}/messages` answers a message id (and
/// echoes what it got); any other path answers 404. Its base URL.
fn chat_api(seen: Seen) -> Result<String, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let data = web::Data::new(seen);
    tokio::spawn(
        HttpServer::new(move || {
            App::new().app_data(data.clone()).default_service(web::to(
                |request: HttpRequest, body: web::Bytes, seen: web::Data<Seen>| async move {
                    let authorization = request
                        .headers()
                        .get("authorization")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("-")
                        .to_owned();
                    let line = format!(
                        "{} {}?{} {authorization} {}",
                        request.method(),
                        request.path(),
                        request.query_string(),
                        String::from_utf8_lossy(&body)
                    );
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(line);
                    }
                    let segments: Vec<&str> = request.path().split('/').collect();
                    match segments.as_slice() {
                        ["", "v1", account, "messages"] => HttpResponse::Ok().json(json!({
                            "messages": [{"id": format!("msg-{account}-1")}],
                            "received": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
                        })),
                        _ => HttpResponse::NotFound().json(json!({"error": "no such route"})),
                    }
                },
            ))
        })
        .workers(1)
        .listen(listener)?
        .run(),
    );
    Ok(url)
}

/// A manifest of the chat API at `base_url`, version `version`, with `send` (and
/// `ping` when `with_ping`).
fn manifest(base_url: &str, version: &str, with_ping: bool) -> Value {
    let mut actions = vec![json!({
        "name": "send",
        "description": "Sends a message",
        "method": "POST",
        "path": "/{{ params.account }}/messages",
        "query": {"priority": "{{ params.priority | default(none) }}"},
        "headers": {"X-Client": "fluxolab"},
        "body": {"to": "{{ params.to }}", "text": {"body": "{{ params.text }}"}},
        "params_schema": {
            "type": "object", "required": ["account", "to", "text"], "additionalProperties": false,
            "properties": {"account": {"type": "string", "pattern": "^[a-z0-9]+$"},
                           "to": {"type": "string"}, "text": {"type": "string"},
                           "priority": {"type": "string", "enum": ["high", "low"]}}
        },
        "output": {"message_id": "/body/messages/0/id", "status": "/status", "echo": "/body/received/text/body"}
    })];
    if with_ping {
        actions.push(json!({
            "name": "ping", "description": "Checks the API", "method": "GET", "path": "/ping",
            "params_schema": {"type": "object"}
        }));
    }
    json!({
        "name": "chat-api", "version": version, "description": "A chat API on loopback",
        "credential_kind": "bearer_token", "base_url": base_url, "actions": actions
    })
}

/// Trigger → `connector.chat-api.send` with `credential`.
fn send_workflow(credential: &str, action: &str) -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "send", "type": format!("connector.chat-api.{action}"), "name": "Send",
             "credential_id": credential,
             "params": {"account": "acme", "to": "{{ trigger.body.to }}", "text": "Hello {{ trigger.body.name }}",
                        "priority": "high"}}
        ],
        "connections": [{"from": "start", "to": "send"}]
    })
}

fn fields_of(problem: &Value) -> Result<Vec<String>, Error> {
    problem["errors"]
        .as_array()
        .ok_or_else(|| format!("no errors in {problem}"))?
        .iter()
        .map(|error| error.text("field"))
        .collect()
}

/// A viewer of `owner`'s workspace.
async fn viewer_of(app: &TestApp, owner: &Account, email: &str) -> Result<Account, Error> {
    app.signed_up(email).await?;
    let (status, _) = app
        .post_in(
            owner,
            "/api/workspace/members",
            &json!({"email": email, "role": "viewer"}),
        )
        .await?;
    assert_eq!(status, 201);
    let login: Value = app
        .login(email, crate::helpers::PASSWORD)
        .await?
        .json()
        .await?;
    Ok(Account {
        id: String::new(),
        workspace_id: owner.workspace_id.clone(),
        access_token: login.text("access_token")?,
        refresh_token: String::new(),
    })
}

#[tokio::test]
async fn a_connector_is_installed_run_upgraded_disabled_and_kept_while_in_use() -> TestResult {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let base_url = chat_api(seen.clone())?;
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("connectors-owner@example.com").await?;
    // The API is on loopback: the workspace must allow internal networks, as for
    // `http.request`.
    let (status, _) = app
        .patch_in(
            &owner,
            "/api/settings/workspace",
            &json!({"allow_internal_network": true}),
        )
        .await?;
    assert_eq!(status, 200);

    let (status, installed) = app
        .post_in(
            &owner,
            CONNECTORS,
            &manifest(&format!("{base_url}/"), "1.0.0", true),
        )
        .await?;
    assert_eq!(status, 201, "{installed}");
    assert_eq!(installed["version"], "1.0.0");
    assert_eq!(installed["enabled"], true);
    assert_eq!(installed["manifest"]["base_url"], base_url.as_str());
    assert_eq!(
        installed["node_types"],
        json!(["connector.chat-api.send", "connector.chat-api.ping"])
    );
    let id = installed.text("id")?;
    let path = format!("{CONNECTORS}/{id}");
    let (status, again) = app
        .post_in(&owner, CONNECTORS, &manifest(&base_url, "2.0.0", true))
        .await?;
    assert_eq!(
        (status, again["code"].clone()),
        (409, json!("name_taken")),
        "{again}"
    );

    // Its actions are node types of this workspace, with their schema and credential.
    let (status, nodes) = app.get_in(&owner, "/api/workflows/nodes").await?;
    assert_eq!(status, 200);
    let send = nodes
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|node| node["type"] == "connector.chat-api.send")
        })
        .cloned()
        .ok_or_else(|| format!("no connector node in {nodes}"))?;
    assert_eq!(
        send["params_schema"]["required"],
        json!(["account", "to", "text"])
    );
    assert_eq!(send["credential_kinds"], json!(["bearer_token"]));
    assert_eq!(send["credential_required"], true);
    assert_eq!(send["outputs"], json!(["main"]));

    // Validated like a built-in: params against its schema, its credential required.
    let (status, credential) = app
        .post_in(
            &owner,
            "/api/workflows/credentials",
            &json!({"name": "Chat token", "kind": "bearer_token", "data": {"token": TOKEN}}),
        )
        .await?;
    assert_eq!(status, 201, "{credential}");
    let credential = credential.text("id")?;
    let mut wrong = send_workflow(&credential, "send");
    wrong["nodes"][1]["params"] = json!({"account": "Not Valid", "to": "{{ trigger.body.to }}"});
    wrong["nodes"][1]["credential_id"] = Value::Null;
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Wrong", "definition": wrong}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    let mut fields = fields_of(&problem)?;
    fields.sort();
    assert_eq!(
        fields,
        [
            "definition.nodes[1].credential_id",
            "definition.nodes[1].params",
            "definition.nodes[1].params.account",
        ],
        "{problem}"
    );

    // Run: the request is built from the manifest, the credential applied, the answer
    // mapped to the output.
    let workflow = app
        .active_workflow(
            &owner,
            "Greets by chat",
            &send_workflow(&credential, "send"),
        )
        .await?
        .id;
    let queued = app
        .run(
            &owner,
            &workflow,
            &json!({"to": "+351900000000", "name": "Ada"}),
        )
        .await?;
    let run = wait_finished(&app, &owner, &queued.execution_id).await?;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["output"],
        json!({"message_id": "msg-acme-1", "status": 200, "echo": "Hello Ada"}),
        "{run}"
    );
    let sent = seen.lock().map(|seen| seen.clone()).unwrap_or_default();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with(&format!(
            "POST /v1/acme/messages?priority=high Bearer {TOKEN} "
        )) && sent[0].contains(r#""to":"+351900000000""#),
        "{sent:?}"
    );
    assert!(!run.to_string().contains(TOKEN), "{run}");

    // An error answer fails the step, naming the action and the status.
    let mut missing = manifest(&format!("{base_url}/nowhere"), "1.0.0", false);
    missing["name"] = json!("chat-missing");
    let (status, _) = app.post_in(&owner, CONNECTORS, &missing).await?;
    assert_eq!(status, 201);
    let mut failing = send_workflow(&credential, "send");
    failing["nodes"][1]["type"] = json!("connector.chat-missing.send");
    let tested = app.create_workflow(&owner, "Fails", &failing).await?.id;
    let (status, run) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{tested}/test"),
            &json!({"payload": {"to": "1", "name": "x"}}),
        )
        .await?;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run.text("error")?
            .contains("chat-missing.send answered HTTP 404"),
        "{run}"
    );

    // Upgrades: only to a higher version, never dropping an action in use.
    for version in ["1.0.0", "0.9.0", "1.0.0+build.2"] {
        let (status, problem) = app
            .patch_in(
                &owner,
                &path,
                &json!({"manifest": manifest(&base_url, version, true)}),
            )
            .await?;
        assert_eq!(
            (status, problem["code"].clone()),
            (409, json!("version_not_higher")),
            "{version}: {problem}"
        );
    }
    let mut renamed = manifest(&base_url, "1.1.0", true);
    renamed["name"] = json!("other-name");
    let (status, problem) = app
        .patch_in(&owner, &path, &json!({"manifest": renamed}))
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields_of(&problem)?, ["manifest.name"]);
    let mut dropping = manifest(&base_url, "2.0.0", false);
    dropping["actions"][0]["name"] = json!("post");
    let (status, problem) = app
        .patch_in(&owner, &path, &json!({"manifest": dropping}))
        .await?;
    assert_eq!(
        (status, problem["code"].clone()),
        (409, json!("connector_in_use")),
        "{problem}"
    );
    assert!(
        problem.text("detail")?.contains("Greets by chat"),
        "{problem}"
    );
    let (status, upgraded) = app
        .patch_in(
            &owner,
            &path,
            &json!({"manifest": manifest(&base_url, "1.1.0", false)}),
        )
        .await?;
    assert_eq!(status, 200, "{upgraded}");
    assert_eq!(upgraded["version"], "1.1.0");
    assert_eq!(upgraded["node_types"], json!(["connector.chat-api.send"]));

    // Deleting is refused while an active workflow uses it, naming the workflow.
    let (status, problem) = app.delete_in(&owner, &path).await?;
    assert_eq!(
        (status, problem["code"].clone()),
        (409, json!("connector_in_use")),
        "{problem}"
    );
    let detail = problem.text("detail")?;
    assert!(
        detail.contains("Greets by chat") && detail.contains("connector.chat-api.send"),
        "{detail}"
    );

    // Disabled: gone from the node types, and validation refuses it naming the node.
    let (status, disabled) = app
        .patch_in(&owner, &path, &json!({"enabled": false}))
        .await?;
    assert_eq!(
        (status, disabled["enabled"].clone()),
        (200, json!(false)),
        "{disabled}"
    );
    let (_, nodes) = app.get_in(&owner, "/api/workflows/nodes").await?;
    assert!(
        !nodes.to_string().contains("connector.chat-api."),
        "{nodes}"
    );
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Too late", "definition": send_workflow(&credential, "send")}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields_of(&problem)?, ["definition.nodes[1].type"]);
    assert!(
        problem.to_string().contains("node `send`")
            && problem
                .to_string()
                .contains("the connector `chat-api` is disabled"),
        "{problem}"
    );
    // A run of the still-active workflow fails at the step.
    let queued = app
        .run(&owner, &workflow, &json!({"to": "1", "name": "x"}))
        .await?;
    let run = wait_finished(&app, &owner, &queued.execution_id).await?;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run.text("error")?.contains("is disabled"), "{run}");

    // Deactivated, it may go; then its node type is unknown.
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{workflow}/deactivate"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 200);
    let (status, _) = app.delete_in(&owner, &path).await?;
    assert_eq!(status, 204);
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Gone", "definition": send_workflow(&credential, "send")}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem
            .to_string()
            .contains("no connector `chat-api` is installed"),
        "{problem}"
    );

    // Every change is in the activity log and the integration events.
    let (_, activities) = app
        .get_in(&owner, "/api/workspace/activities?limit=200")
        .await?;
    let actions: Vec<String> = activities
        .items()?
        .iter()
        .filter_map(|item| item["action"].as_str())
        .filter(|action| action.starts_with("connector."))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        actions,
        [
            "connector.deleted",
            "connector.updated",
            "connector.updated",
            "connector.installed",
            "connector.installed"
        ],
        "{activities}"
    );
    let (_, events) = app
        .get_in(&owner, "/api/settings/integrations/events?kind=connectors")
        .await?;
    let kinds: Vec<String> = events
        .items()?
        .iter()
        .map(|event| event.text("event"))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        kinds,
        ["removed", "disabled", "updated", "configured", "configured"],
        "{events}"
    );
    let upgrade = events
        .items()?
        .into_iter()
        .find(|event| event["event"] == "updated")
        .ok_or("no upgrade event")?;
    assert_eq!(upgrade["details"]["previous_version"], "1.0.0", "{upgrade}");
    assert_eq!(upgrade["details"]["version"], "1.1.0", "{upgrade}");
    Ok(())
}

#[tokio::test]
async fn manifests_are_checked_field_by_field_and_connectors_kept_to_managers() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("connectors-checks@example.com").await?;

    let (status, problem) = app
        .post_in(
            &owner,
            CONNECTORS,
            &json!({
                "name": "Bad Name", "version": "v1", "description": "x", "credential_kind": "smtp",
                "base_url": "ftp://example.com", "colour": "red",
                "actions": [{
                    "name": "Send!", "description": "Sends", "method": "FETCH", "path": "messages",
                    "headers": {"Authorization": "Bearer {{ params.token }}"},
                    "body": {"text": "{{ params.text "},
                    "params_schema": {"type": "object", "properties": {"text": {"type": "text"}}},
                    "output": {"id": "body.id"}
                }]
            }),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        fields_of(&problem)?,
        [
            "name",
            "version",
            "credential_kind",
            "base_url",
            "actions[0].name",
            "actions[0].method",
            "actions[0].path",
            "actions[0].headers.Authorization",
            "actions[0].body.text",
            "actions[0].params_schema",
            "actions[0].output.id",
            "colour"
        ],
        "{problem}"
    );
    let (status, problem) = app
        .post_in(
            &owner,
            CONNECTORS,
            &json!({"name": "empty", "version": "1.0.0"}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields_of(&problem)?, ["description", "base_url", "actions"]);

    // The shipped WhatsApp Cloud API manifest installs (validation only: nothing is sent).
    let whatsapp: Value = serde_json::from_str(include_str!(
        "../../../../examples/connectors/whatsapp-cloud.json"
    ))?;
    let (status, installed) = app.post_in(&owner, CONNECTORS, &whatsapp).await?;
    assert_eq!(status, 201, "{installed}");
    assert_eq!(
        installed["node_types"],
        json!([
            "connector.whatsapp-cloud.send_text",
            "connector.whatsapp-cloud.send_template"
        ])
    );
    let id = installed.text("id")?;
    let path = format!("{CONNECTORS}/{id}");
    let (status, listed) = app.get_in(&owner, &format!("{CONNECTORS}?limit=1")).await?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed.items()?.len(), 1);
    assert_eq!(listed["next_cursor"], Value::Null);

    // Viewers read; only managers change.
    let viewer = viewer_of(&app, &owner, "connectors-viewer@example.com").await?;
    let (status, _) = app.get_in(&viewer, &path).await?;
    assert_eq!(status, 200);
    for (status, problem) in [
        app.post_in(&viewer, CONNECTORS, &whatsapp).await?,
        app.patch_in(&viewer, &path, &json!({"enabled": false}))
            .await?,
        app.delete_in(&viewer, &path).await?,
    ] {
        assert_eq!(status, 403, "{problem}");
    }

    // Another workspace neither sees it nor gets its node types.
    let outsider = app.signed_up("connectors-outsider@example.com").await?;
    for (status, _) in [
        app.get_in(&outsider, &path).await?,
        app.patch_in(&outsider, &path, &json!({"enabled": false}))
            .await?,
        app.delete_in(&outsider, &path).await?,
    ] {
        assert_eq!(status, 404);
    }
    let (_, nodes) = app.get_in(&outsider, "/api/workflows/nodes").await?;
    assert!(!nodes.to_string().contains("whatsapp-cloud"), "{nodes}");
    let (_, listed) = app.get_in(&outsider, CONNECTORS).await?;
    assert_eq!(listed.items()?.len(), 0);

    // The integrations status counts it.
    let (_, statuses) = app
        .get_in(&owner, "/api/settings/integrations/status")
        .await?;
    let entry = statuses
        .as_array()
        .and_then(|all| all.iter().find(|entry| entry["kind"] == "connectors"))
        .cloned()
        .ok_or("no connectors entry")?;
    assert_eq!(
        (entry["configured"].clone(), entry["enabled"].clone()),
        (json!(1), json!(1)),
        "{statuses}"
    );
    Ok(())
}
