//! Environments: variables with vault-sealed secrets (masked, resolved at run time,
//! redacted from what runs record), runs and webhooks per environment, promotion, and
//! the status numbers.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp, call, execution, three_nodes};

const SECRET: &str = "s3cr3t-staging-value";

/// The execution a `202` answer (`{"execution_id": …}`) queued.
async fn execution_of(app: &TestApp, owner: &Account, queued: &Value) -> Result<Value, Error> {
    execution(app, owner, &queued.text("execution_id")?).await
}

async fn patch_environment(
    app: &TestApp,
    owner: &Account,
    reference: &str,
    body: &Value,
) -> Result<(u16, Value), Error> {
    app.patch_in(
        owner,
        &format!("/api/settings/environments/{reference}"),
        body,
    )
    .await
}

async fn workflow(app: &TestApp, owner: &Account, definition: Value) -> Result<String, Error> {
    Ok(app
        .create_workflow(owner, "Env flow", &definition)
        .await?
        .id)
}

async fn vault_rows(app: &TestApp) -> Result<i64, Error> {
    app.count("credentials").await
}

#[tokio::test]
async fn variables_keep_secrets_sealed_masked_and_resolved_only_inside_runs() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("envs@example.com").await?;

    let (status, listed) = app.get_in(&owner, "/api/settings/environments").await?;
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed
        .as_array()
        .map(|list| list.iter().filter_map(|e| e["name"].as_str()).collect())
        .ok_or_else(|| format!("not a list: {listed}"))?;
    assert_eq!(names, ["development", "staging", "production"]);
    assert_eq!(listed[2]["is_default"], true);
    assert_eq!(listed[1]["is_default"], false);

    let vault_before = vault_rows(&app).await?;
    let (status, staging) = patch_environment(
        &app,
        &owner,
        "staging",
        &json!({"description": "QA", "variables": [
            {"name": "API_URL", "value": "https://staging.test"},
            {"name": "TOKEN", "value": SECRET, "secret": true}
        ]}),
    )
    .await?;
    assert_eq!(status, 200, "{staging}");
    assert_eq!(staging["description"], "QA");
    assert_eq!(staging["variables"][0]["value"], "https://staging.test");
    assert_eq!(staging["variables"][1]["name"], "TOKEN");
    assert_eq!(staging["variables"][1]["secret"], true);
    assert_eq!(staging["variables"][1]["value"], "********");
    assert!(!staging.to_string().contains(SECRET));
    // Sealed in the vault: one new entry, no clear text in the variables table.
    assert_eq!(vault_rows(&app).await?, vault_before + 1);
    {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Stored {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            value: Option<String>,
            #[diesel(sql_type = diesel::sql_types::Text)]
            sealed_in: String,
        }
        let stored: Stored = diesel::sql_query(
            "SELECT value, secret_credential_id::text AS sealed_in \
             FROM environment_variables WHERE name = 'TOKEN'",
        )
        .get_result(&mut app.db.pool().get().await?)
        .await?;
        assert_eq!(stored.value, None);
        // The vault entry is the environment's: not listed, read or deleted as a credential.
        let (_, credentials) = app.get_in(&owner, "/api/workflows/credentials").await?;
        assert!(
            !credentials.to_string().contains(&stored.sealed_in),
            "{credentials}"
        );
        for method in [Method::GET, Method::DELETE] {
            let (status, _) = call(
                &app,
                &owner,
                method,
                &format!("/api/workflows/credentials/{}", stored.sealed_in),
                &json!({}),
            )
            .await?;
            assert_eq!(status, 404);
        }
    }
    let staging_id = staging.text("id")?;
    let (status, by_id) = app
        .get_in(&owner, &format!("/api/settings/environments/{staging_id}"))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(by_id["variables"][1]["value"], "********");

    // A run in staging sees both variables; what it records never holds the secret.
    let flow = workflow(
        &app,
        &owner,
        json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {
                    "url": "{{ env.API_URL }}/v1",
                    "auth": "Bearer {{ env.TOKEN }}",
                    "token_ok": format!("{{{{ env.TOKEN == '{SECRET}' }}}}"),
                    "token_length": "{{ env.TOKEN | length }}"
                }}}
            ],
            "connections": [{"from": "start", "to": "shape"}]
        }),
    )
    .await?;
    let (status, run) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/test"),
            &json!({"environment": "staging"}),
        )
        .await?;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["environment"], "staging");
    assert_eq!(run["environment_id"], staging_id.as_str());
    assert_eq!(run["output"]["url"], "https://staging.test/v1");
    assert_eq!(run["output"]["token_ok"], true);
    assert_eq!(run["output"]["token_length"], SECRET.len());
    assert_eq!(run["output"]["auth"], "Bearer [redacted]");
    assert!(!run.to_string().contains(SECRET), "{run}");
    let run_id = run.text("id")?;
    let read_back = execution(&app, &owner, &run_id).await?;
    assert!(!read_back.to_string().contains(SECRET), "{read_back}");

    // Production has no such variables: the strict template fails there.
    let (_, in_production) = app
        .post_in(&owner, &format!("/api/workflows/{flow}/test"), &json!({}))
        .await?;
    assert_eq!(in_production["environment"], "production");
    assert_eq!(in_production["status"], "failed", "{in_production}");

    // A secret without a value keeps the stored one; a changed plain value is seen.
    let (status, kept) = patch_environment(
        &app,
        &owner,
        &staging_id,
        &json!({"variables": {"API_URL": "https://staging-2.test", "TOKEN": {"secret": true}}}),
    )
    .await?;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(vault_rows(&app).await?, vault_before + 1);
    let (_, rerun) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/test"),
            &json!({"environment": "staging"}),
        )
        .await?;
    assert_eq!(
        rerun["output"]["url"], "https://staging-2.test/v1",
        "{rerun}"
    );
    assert_eq!(rerun["output"]["token_ok"], true);

    // Dropping the secret drops its vault entry.
    let (status, _) = patch_environment(
        &app,
        &owner,
        "staging",
        &json!({"variables": [{"name": "API_URL", "value": "https://staging-2.test"}]}),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(vault_rows(&app).await?, vault_before);

    // Bad input is named and changes nothing.
    for (body, field) in [
        (
            json!({"variables": [{"name": "9LIVES", "value": "x"}]}),
            "variables[0].name",
        ),
        (
            json!({"variables": [{"name": "PLAIN"}]}),
            "variables[0].value",
        ),
        (
            json!({"variables": [{"name": "NEW", "secret": true}]}),
            "variables[0].value",
        ),
        (json!({"name": "production"}), "name"),
        (json!({"name": "Not Valid"}), "name"),
    ] {
        let (status, problem) = patch_environment(&app, &owner, "staging", &body).await?;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(problem.to_string().contains(field), "{field}: {problem}");
    }
    let (status, _) =
        patch_environment(&app, &owner, "nowhere", &json!({"description": "x"})).await?;
    assert_eq!(status, 404);
    let (status, unknown) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/test"),
            &json!({"environment": "nowhere"}),
        )
        .await?;
    assert_eq!(status, 422, "{unknown}");
    assert!(
        unknown
            .to_string()
            .contains("no environment `nowhere` in this workspace"),
        "{unknown}"
    );

    // Renaming keeps references by id working; the new name works too.
    let (status, renamed) =
        patch_environment(&app, &owner, &staging_id, &json!({"name": "qa"})).await?;
    assert_eq!(status, 200, "{renamed}");
    let (status, _) = app.get_in(&owner, "/api/settings/environments/qa").await?;
    assert_eq!(status, 200);

    // Another workspace sees none of it.
    let stranger = app.signed_up("stranger@example.com").await?;
    let (status, _) = app
        .get_in(
            &stranger,
            &format!("/api/settings/environments/{staging_id}"),
        )
        .await?;
    assert_eq!(status, 404);
    let (status, _) =
        patch_environment(&app, &stranger, &staging_id, &json!({"description": "x"})).await?;
    assert_eq!(status, 404);
    Ok(())
}

fn deployment(workflow: &Value, environment: &str) -> Option<i64> {
    workflow["deployments"]
        .as_array()?
        .iter()
        .find(|d| d["environment"] == environment)
        .and_then(|d| d["version"].as_i64())
}

#[tokio::test]
async fn promotion_runs_and_status_are_per_environment() -> TestResult {
    // No workers: queued runs stay queued, so the status numbers are known.
    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("promote@example.com").await?;
    let flow = workflow(&app, &owner, three_nodes()).await?;
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/versions"),
            &json!({"definition": three_nodes()}),
        )
        .await?;
    assert_eq!(status, 201);

    let (status, activated) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/activate"),
            &json!({"version": 1, "environment": "staging"}),
        )
        .await?;
    assert_eq!(status, 200, "{activated}");
    assert_eq!(deployment(&activated, "staging"), Some(1));
    assert_eq!(activated["active_version"], Value::Null);

    // Not active in production: a run there is refused; in staging it queues v1.
    let (status, refused) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/run"),
            &json!({"payload": {"a": 1, "b": 2}}),
        )
        .await?;
    assert_eq!(status, 422, "{refused}");
    let (status, queued) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/run"),
            &json!({"payload": {"a": 1, "b": 2}, "environment": "staging"}),
        )
        .await?;
    assert_eq!(status, 202, "{queued}");
    let execution = execution_of(&app, &owner, &queued).await?;
    assert_eq!(execution["environment"], "staging");
    assert_eq!(execution["version"], 1);

    // A key bound to staging runs there by default, and only there.
    let key = app
        .create_api_key(&owner, &json!({"name": "Staging CI", "scopes": ["workflows.run", "executions.read"], "environment": "staging"}))
        .await?
        .key;
    let by_key = |body: Value| {
        app.client
            .post(app.url(&format!("/api/workflows/{flow}/run")))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let queued_by_key = by_key(json!({"payload": {"a": 1, "b": 2}})).await?;
    assert_eq!(queued_by_key.status().as_u16(), 202);
    let queued_by_key: Value = queued_by_key.json().await?;
    let keyed = execution_of(&app, &owner, &queued_by_key).await?;
    assert_eq!(keyed["environment"], "staging");
    let elsewhere = by_key(json!({"environment": "production"})).await?;
    assert_eq!(elsewhere.status().as_u16(), 422);
    assert!(elsewhere.text().await?.contains("bound to the `staging`"));

    // The key is bound by id: renaming its environment keeps it working there.
    let (status, renamed) =
        patch_environment(&app, &owner, "staging", &json!({"name": "preview"})).await?;
    assert_eq!(status, 200, "{renamed}");
    let after_rename = by_key(json!({"payload": {"a": 1, "b": 2}})).await?;
    assert_eq!(after_rename.status().as_u16(), 202);
    let after_rename: Value = after_rename.json().await?;
    let keyed = execution_of(&app, &owner, &after_rename).await?;
    assert_eq!(keyed["environment"], "preview");
    assert_eq!(
        by_key(json!({"environment": "preview"}))
            .await?
            .status()
            .as_u16(),
        202
    );
    let elsewhere = by_key(json!({"environment": "production"})).await?;
    assert_eq!(elsewhere.status().as_u16(), 422);
    assert!(elsewhere.text().await?.contains("bound to the `preview`"));
    let (_, keys) = app.get_in(&owner, "/api/settings/api/keys").await?;
    assert_eq!(keys["items"][0]["environment"], "preview", "{keys}");
    let (status, _) =
        patch_environment(&app, &owner, "preview", &json!({"name": "staging"})).await?;
    assert_eq!(status, 200);

    // Promote staging's v1 to production, then move staging on to v2.
    let (status, promoted) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/promote"),
            &json!({"from": "staging", "to": "production"}),
        )
        .await?;
    assert_eq!(status, 200, "{promoted}");
    assert_eq!(deployment(&promoted, "production"), Some(1));
    assert_eq!(promoted["active_version"], 1);
    let (_, moved) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/activate"),
            &json!({"version": 2, "environment": "staging"}),
        )
        .await?;
    assert_eq!(deployment(&moved, "staging"), Some(2));
    assert_eq!(deployment(&moved, "production"), Some(1));
    assert_eq!(deployment(&moved, "development"), None);
    let (_, activities) = app
        .get_in(&owner, "/api/workspace/activities?action=workflow.promoted")
        .await?;
    assert_eq!(
        activities["items"].as_array().map(Vec::len),
        Some(1),
        "{activities}"
    );
    assert_eq!(activities["items"][0]["metadata"]["to"], "production");

    for (body, field) in [
        (json!({"from": "development", "to": "production"}), "from"),
        (json!({"from": "staging", "to": "staging"}), "to"),
        (json!({"from": "staging", "to": "nowhere"}), "to"),
    ] {
        let (status, problem) = app
            .post_in(&owner, &format!("/api/workflows/{flow}/promote"), &body)
            .await?;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(problem.to_string().contains(field), "{problem}");
    }

    // Known state in staging: two queued runs (above), one success, one failure.
    let (_, succeeded) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/test"),
            &json!({"payload": {"a": 1, "b": 2}, "environment": "staging"}),
        )
        .await?;
    assert_eq!(succeeded["status"], "succeeded", "{succeeded}");
    let (_, failed) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/test"),
            &json!({"payload": {"a": 1}, "environment": "staging"}),
        )
        .await?;
    assert_eq!(failed["status"], "failed", "{failed}");
    let (status, staging) = app
        .get_in(&owner, "/api/settings/environments/staging/status")
        .await?;
    assert_eq!(status, 200, "{staging}");
    assert_eq!(staging["active_workflows"], 1);
    assert_eq!(
        staging["executions_24h"],
        json!({"queued": 4, "running": 0, "succeeded": 1, "failed": 1, "cancelled": 0})
    );
    assert_eq!(staging["last_failure"]["execution_id"], failed["id"]);
    assert_eq!(staging["variables_count"], 0);
    let (_, production) = app
        .get_in(&owner, "/api/settings/environments/production/status")
        .await?;
    assert_eq!(production["active_workflows"], 1);
    assert_eq!(production["executions_24h"]["succeeded"], 0);
    assert_eq!(production["last_failure"], Value::Null);

    // Deactivating in staging leaves production running v1.
    let (status, deactivated) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/deactivate"),
            &json!({"environment": "staging"}),
        )
        .await?;
    assert_eq!(status, 200, "{deactivated}");
    assert_eq!(deployment(&deactivated, "staging"), None);
    assert_eq!(deactivated["active_version"], 1);
    Ok(())
}

#[tokio::test]
async fn webhook_deliveries_run_the_version_active_in_their_environment() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("hooks-env@example.com").await?;
    let definition = json!({
        "nodes": [
            {"id": "hook", "type": "trigger.webhook", "name": "Hook"},
            {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"got": "{{ trigger.body }}"}}}
        ],
        "connections": [{"from": "hook", "to": "shape"}]
    });
    let flow = workflow(&app, &owner, definition).await?;
    let (status, activated) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{flow}/activate"),
            &json!({"version": 1, "environment": "staging"}),
        )
        .await?;
    assert_eq!(status, 200, "{activated}");
    let (_, hooks) = app.get_in(&owner, "/api/webhooks").await?;
    let bound: Vec<&Value> = hooks["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|h| h["workflow_id"] == flow.as_str())
                .collect()
        })
        .ok_or_else(|| format!("no items: {hooks}"))?;
    assert_eq!(bound.len(), 1, "{hooks}");
    assert_eq!(bound[0]["environment"], "staging");
    let public_id = bound[0].text("public_id")?;

    let delivered = app
        .client
        .post(app.url(&format!("/api/webhooks/in/{public_id}")))
        .header("content-type", "application/json")
        .body(r#"{"hello":"staging"}"#)
        .send()
        .await?;
    assert_eq!(delivered.status().as_u16(), 200);
    let (_, executions) = app
        .get_in(&owner, &format!("/api/executions?workflow_id={flow}"))
        .await?;
    assert_eq!(
        executions["items"].as_array().map(Vec::len),
        Some(1),
        "{executions}"
    );
    assert_eq!(executions["items"][0]["environment"], "staging");
    assert_eq!(executions["items"][0]["trigger_kind"], "webhook");

    // A registration names its environment; an unknown one is refused.
    let (status, created) = app
        .post_in(
            &owner,
            "/api/webhooks",
            &json!({"name": "Dev hook", "provider": "none", "environment": "development"}),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["environment"], "development");
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/webhooks",
            &json!({"name": "Lost hook", "provider": "none", "environment": "nowhere"}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert!(problem.to_string().contains("environment"), "{problem}");
    Ok(())
}
