//! External secret providers through the API: AWS Secrets Manager for real (moto's
//! server), a secret resolved into a run and redacted from its steps, a rotation seen
//! after the cache's TTL, the integrations status and events; and isolation, roles,
//! the 409 on delete, 422s naming fields and no credential in any answer or the dump.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use fluxolab_outbound::testing::Moto;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp, eventually};

const PROVIDERS: &str = "/api/settings/secret-providers";
const AWS_SECRET_KEY: &str = "aws-secret-key-s3cr3t-value";
const VAULT_TOKEN: &str = "hvs.vault-token-s3cr3t";

/// A loopback receiver keeping what it is sent (`authorization` header, a space, the
/// body); its URL.
fn receiver(bodies: Arc<Mutex<Vec<String>>>) -> Result<String, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let data = web::Data::new(bodies);
    tokio::spawn(
        HttpServer::new(move || {
            App::new().app_data(data.clone()).default_service(web::to(
                |request: actix_web::HttpRequest,
                 body: web::Bytes,
                 seen: web::Data<Arc<Mutex<Vec<String>>>>| async move {
                    let authorization = request
                        .headers()
                        .get("authorization")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned);
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(format!(
                            "{} {}",
                            authorization.as_deref().unwrap_or("-"),
                            String::from_utf8_lossy(&body)
                        ));
                    }
                    HttpResponse::Ok().json(json!({"ok": true}))
                },
            ))
        })
        .workers(1)
        .listen(listener)?
        .run(),
    );
    Ok(url)
}

/// Sets `production`'s variables.
async fn set_variables(
    app: &TestApp,
    who: &Account,
    variables: Value,
) -> Result<(u16, Value), Error> {
    app.patch_in(
        who,
        "/api/settings/environments/production",
        &json!({ "variables": variables }),
    )
    .await
}

async fn test_run(app: &TestApp, who: &Account, workflow: &str) -> Result<Value, Error> {
    let (status, tested) = app
        .post_in(
            who,
            &format!("/api/workflows/{workflow}/test"),
            &json!({"payload": {}}),
        )
        .await?;
    assert_eq!(status, 200, "{tested}");
    Ok(tested)
}

#[tokio::test]
async fn an_aws_secret_reaches_a_run_redacted_and_its_rotation_after_the_ttl() -> TestResult {
    let Some(moto) = Moto::start().await? else {
        return Ok(());
    };
    let aws = moto.api("us-east-1", "AKIDEXAMPLE", AWS_SECRET_KEY);
    aws.create_secret("db/creds", r#"{"user":"app","password":"pw-one-s3cr3t"}"#)
        .await?;
    aws.create_secret("api/token", "bearer-from-aws-s3cr3t")
        .await?;

    let app = TestApp::spawn().await?;
    let owner = app.signed_up("aws-provider@example.com").await?;
    let (status, _) = app
        .patch_in(
            &owner,
            "/api/settings/workspace",
            &json!({"allow_internal_network": true}),
        )
        .await?;
    assert_eq!(status, 200);

    let (status, provider) = app
        .post_in(
            &owner,
            PROVIDERS,
            &json!({
                "name": "aws-local", "kind": "aws_secrets_manager",
                "config": {"region": "us-east-1", "endpoint_url": moto.endpoint()},
                "credentials": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": AWS_SECRET_KEY},
                "cache_ttl_seconds": 1
            }),
        )
        .await?;
    assert_eq!(status, 201, "{provider}");
    assert_eq!(provider["has_credentials"], true);
    assert!(provider.get("credentials").is_none(), "{provider}");
    let provider_id = provider.text("id")?;

    let (status, tested) = app
        .post_in(
            &owner,
            &format!("{PROVIDERS}/{provider_id}/test"),
            &json!({"probe": "db/creds"}),
        )
        .await?;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(
        (tested["reachable"].clone(), tested["authenticated"].clone()),
        (json!(true), json!(true)),
        "{tested}"
    );
    assert!(!tested.to_string().contains("pw-one"), "{tested}");

    let (status, environment) = set_variables(
        &app,
        &owner,
        json!([{"name": "DB_PASSWORD", "secret_ref": {"provider": "aws-local", "name": "db/creds", "key": "password"}}]),
    )
    .await?;
    assert_eq!(status, 200, "{environment}");
    let variable = &environment["variables"][0];
    assert_eq!(variable["secret"], true);
    assert_eq!(variable["value"], "********");
    assert_eq!(variable["secret_ref"]["provider"], "aws-local");

    // A credential's secret field may reference the provider too.
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workflows/credentials",
            &json!({"name": "Nowhere", "kind": "bearer_token",
                    "data": {"token": {"secret_ref": {"provider": "missing", "name": "x"}}}}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"][0]["field"],
        "data.token.secret_ref.provider"
    );
    let (status, credential) = app
        .post_in(
            &owner,
            "/api/workflows/credentials",
            &json!({"name": "API via AWS", "kind": "bearer_token",
                    "data": {"token": {"secret_ref": {"provider": "aws-local", "name": "api/token"}}}}),
        )
        .await?;
    assert_eq!(status, 201, "{credential}");
    assert!(
        !credential.to_string().contains("bearer-from-aws"),
        "{credential}"
    );

    let bodies = Arc::new(Mutex::new(Vec::new()));
    let url = receiver(bodies.clone())?;
    let workflow = app
        .create_workflow(
            &owner,
            "Uses a provider secret",
            &json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual", "name": "Start"},
                    {"id": "call", "type": "http.request", "name": "Call", "credential_id": credential["id"],
                     "params": {"method": "POST", "url": url, "body": {"password": "{{ env.DB_PASSWORD }}"}}}
                ],
                "connections": [{"from": "start", "to": "call"}]
            }),
        )
        .await?
        .id;
    let run = test_run(&app, &owner, &workflow).await?;
    assert_eq!(run["status"], "succeeded", "{run}");
    let received = bodies.lock().map(|seen| seen.clone()).unwrap_or_default();
    assert!(
        received
            .iter()
            .any(|seen| seen.starts_with("Bearer bearer-from-aws-s3cr3t ")
                && seen.contains("pw-one-s3cr3t")),
        "{received:?}"
    );
    let recorded = run["steps"].to_string();
    assert!(!recorded.contains("pw-one-s3cr3t"), "{recorded}");
    assert!(recorded.contains("[redacted]"), "{recorded}");

    // Rotated at the provider: a run after the one-second TTL sends the new value.
    aws.put_secret_value("db/creds", r#"{"user":"app","password":"pw-two-s3cr3t"}"#)
        .await?;
    eventually(
        "the rotated secret is used",
        Duration::from_secs(15),
        async || {
            test_run(&app, &owner, &workflow).await?;
            Ok(bodies
                .lock()
                .map(|seen| seen.iter().any(|body| body.contains("pw-two-s3cr3t")))
                .unwrap_or(false))
        },
    )
    .await?;

    // Reads are audited by provider and name, never with the value.
    let (_, resolved) = app
        .get_in(&owner, "/api/workspace/activities?action=secret.resolved")
        .await?;
    let items = resolved.items()?;
    assert!(items.len() >= 3, "{resolved}");
    assert!(
        items
            .iter()
            .all(|item| item["metadata"]["provider"] == "aws-local")
    );
    for name in ["db/creds", "api/token"] {
        assert!(
            items.iter().any(|item| item["metadata"]["name"] == name),
            "{name}: {resolved}"
        );
    }
    assert!(!resolved.to_string().contains("s3cr3t"), "{resolved}");

    // The integrations status and events know of it.
    let (_, statuses) = app
        .get_in(&owner, "/api/settings/integrations/status")
        .await?;
    let providers = statuses
        .as_array()
        .and_then(|all| all.iter().find(|entry| entry["kind"] == "secret_providers"))
        .cloned()
        .ok_or("no secret_providers entry")?;
    assert_eq!(providers["configured"], 1, "{statuses}");
    assert_eq!(providers["status"], "ok", "{statuses}");
    assert!(providers["last_checked_at"].is_string(), "{statuses}");
    let (_, events) = app
        .get_in(
            &owner,
            "/api/settings/integrations/events?kind=secret_providers",
        )
        .await?;
    let kinds: Vec<String> = events
        .items()?
        .iter()
        .map(|event| event.text("event"))
        .collect::<Result<_, _>>()?;
    assert_eq!(kinds, ["tested", "configured"], "{events}");

    let dump = app.pg_dump_data().await?;
    assert!(dump.contains("aws-local"), "the dump has the provider row");
    assert!(
        !dump.contains(AWS_SECRET_KEY),
        "the provider's key is stored in clear"
    );
    Ok(())
}

#[tokio::test]
async fn providers_are_checked_private_to_their_workspace_and_kept_while_referenced() -> TestResult
{
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("vault-provider@example.com").await?;
    let mut answers: Vec<String> = Vec::new();

    let (status, problem) = app
        .post_in(
            &owner,
            PROVIDERS,
            &json!({"name": "Bad Name", "kind": "vault", "config": {"mount": "kv"}, "credentials": {}}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<String> = problem["errors"]
        .as_array()
        .ok_or("errors")?
        .iter()
        .map(|error| error.text("field"))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        fields,
        [
            "name",
            "config.address",
            "credentials.role_id",
            "credentials.secret_id"
        ]
    );
    let (status, problem) = app
        .post_in(
            &owner,
            PROVIDERS,
            &json!({"name": "pigeons", "kind": "carrier", "config": {}, "credentials": {}}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "kind");

    let vault = json!({
        "name": "vault-local", "kind": "vault",
        "config": {"address": "http://127.0.0.1:9"},
        "credentials": {"token": VAULT_TOKEN}
    });
    let (status, created) = app.post_in(&owner, PROVIDERS, &vault).await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["config"]["mount"], "secret");
    answers.push(created.to_string());
    let id = created.text("id")?;
    let path = format!("{PROVIDERS}/{id}");
    // Its sealed credentials are the provider's, not one of the user's credentials.
    let (status, listed) = app.get_in(&owner, "/api/workflows/credentials").await?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"], json!([]), "{listed}");
    let (status, taken) = app.post_in(&owner, PROVIDERS, &vault).await?;
    assert_eq!(
        (status, taken["code"].clone()),
        (409, json!("name_taken")),
        "{taken}"
    );

    // A provider that cannot be reached says so, and the status turns to `error`.
    let (status, tested) = app
        .post_in(&owner, &format!("{path}/test"), &json!({}))
        .await?;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["reachable"], false, "{tested}");
    answers.push(tested.to_string());
    let (_, statuses) = app
        .get_in(&owner, "/api/settings/integrations/status")
        .await?;
    answers.push(statuses.to_string());
    let entry = statuses
        .as_array()
        .and_then(|all| all.iter().find(|entry| entry["kind"] == "secret_providers"))
        .cloned()
        .ok_or("no secret_providers entry")?;
    assert_eq!(entry["status"], "error", "{statuses}");
    assert!(entry["last_error"].is_string(), "{statuses}");
    let (status, summary) = app.get_in(&owner, "/api/settings/summary").await?;
    assert_eq!(status, 200);
    assert_eq!(summary["integrations"]["secret_providers"], 1, "{summary}");

    // Another workspace neither sees it nor may reference it.
    let outsider = app.signed_up("vault-outsider@example.com").await?;
    for (status, _) in [
        app.get_in(&outsider, &path).await?,
        app.patch_in(&outsider, &path, &json!({"enabled": false}))
            .await?,
        app.post_in(&outsider, &format!("{path}/test"), &json!({}))
            .await?,
        app.delete_in(&outsider, &path).await?,
    ] {
        assert_eq!(status, 404);
    }
    let reference =
        json!([{"name": "TOKEN", "secret_ref": {"provider": "vault-local", "name": "app/token"}}]);
    let (status, problem) = set_variables(&app, &outsider, reference.clone()).await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"][0]["field"],
        "variables[0].secret_ref.provider"
    );

    // Viewers read; only managers change.
    app.signed_up("vault-viewer@example.com").await?;
    let (status, _) = app
        .post_in(
            &owner,
            "/api/workspace/members",
            &json!({"email": "vault-viewer@example.com", "role": "viewer"}),
        )
        .await?;
    assert_eq!(status, 201);
    let viewer_login = app
        .login("vault-viewer@example.com", crate::helpers::PASSWORD)
        .await?;
    let viewer_login: Value = viewer_login.json().await?;
    let viewer = Account {
        id: String::new(),
        workspace_id: owner.workspace_id.clone(),
        access_token: viewer_login.text("access_token")?,
        refresh_token: String::new(),
    };
    let (status, listed) = app.get_in(&viewer, PROVIDERS).await?;
    assert_eq!(status, 200);
    answers.push(listed.to_string());
    for (status, _) in [
        app.post_in(
            &viewer,
            PROVIDERS,
            &json!({"name": "x", "kind": "vault", "config": {}, "credentials": {}}),
        )
        .await?,
        app.patch_in(&viewer, &path, &json!({"enabled": false}))
            .await?,
        app.post_in(&viewer, &format!("{path}/test"), &json!({}))
            .await?,
        app.delete_in(&viewer, &path).await?,
    ] {
        assert_eq!(status, 403);
    }

    // Referenced, it can be neither deleted nor renamed; unreferenced, it goes.
    let (status, environment) = set_variables(&app, &owner, reference).await?;
    assert_eq!(status, 200, "{environment}");
    // A provider that cannot give the value fails the run, naming it and why.
    let workflow = app
        .create_workflow(&owner, "Needs the token", &crate::helpers::three_nodes())
        .await?
        .id;
    let run = test_run(&app, &owner, &workflow).await?;
    assert_eq!(run["status"], "failed", "{run}");
    let error = run.text("error")?;
    assert!(
        error.contains("secret provider `vault-local`") && error.contains("app/token"),
        "{error}"
    );
    let (status, credential) = app
        .post_in(
            &owner,
            "/api/workflows/credentials",
            &json!({"name": "Vault token", "kind": "generic",
                    "data": {"token": {"secret_ref": {"provider": "vault-local", "name": "app/token"}}}}),
        )
        .await?;
    assert_eq!(status, 201, "{credential}");
    assert_eq!(
        credential["data"]["token"]["hint"], "@vault-local:app/token",
        "{credential}"
    );
    let (status, problem) = app.delete_in(&owner, &path).await?;
    assert_eq!(
        (status, problem["code"].clone()),
        (409, json!("provider_in_use")),
        "{problem}"
    );
    let detail = problem.text("detail")?;
    assert!(
        detail.contains("environment production variable TOKEN")
            && detail.contains("credential Vault token"),
        "{problem}"
    );
    let (status, problem) = app
        .patch_in(&owner, &path, &json!({"name": "renamed"}))
        .await?;
    assert_eq!(status, 409, "{problem}");
    let (status, updated) = app
        .patch_in(
            &owner,
            &path,
            &json!({"credentials": {"token": "hvs.another-s3cr3t"}, "cache_ttl_seconds": 0}),
        )
        .await?;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["cache_ttl_seconds"], 0);
    answers.push(updated.to_string());
    let (status, _) = set_variables(&app, &owner, json!([])).await?;
    assert_eq!(status, 200);
    let credential_path = format!("/api/workflows/credentials/{}", credential.text("id")?);
    let (status, _) = app.delete_in(&owner, &credential_path).await?;
    assert_eq!(status, 204);
    let other = json!({"name": "vault-other", "kind": "vault",
                       "config": {"address": "https://vault.example.com"},
                       "credentials": {"token": "hvs.other-s3cr3t"}});
    let (status, _) = app.post_in(&owner, PROVIDERS, &other).await?;
    assert_eq!(status, 201);
    let (status, _) = app.delete_in(&owner, &path).await?;
    assert_eq!(status, 204);
    let (status, _) = app.get_in(&owner, &path).await?;
    assert_eq!(status, 404);
    // The removed provider's failed test no longer colours the status.
    let (_, statuses) = app
        .get_in(&owner, "/api/settings/integrations/status")
        .await?;
    assert_eq!(statuses[1]["kind"], "secret_providers");
    assert_eq!(statuses[1]["configured"], 1, "{statuses}");
    assert_eq!(statuses[1]["status"], "ok", "{statuses}");

    let (_, events) = app
        .get_in(
            &owner,
            "/api/settings/integrations/events?kind=secret_providers",
        )
        .await?;
    answers.push(events.to_string());
    let kinds: Vec<String> = events
        .items()?
        .iter()
        .map(|event| event.text("event"))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        kinds,
        [
            "removed",
            "configured",
            "updated",
            "test_failed",
            "configured"
        ],
        "{events}"
    );

    for answer in &answers {
        assert!(!answer.contains("s3cr3t"), "a credential in {answer}");
    }
    let dump = app.pg_dump_data().await?;
    assert!(
        !dump.contains("s3cr3t"),
        "a provider credential is stored in clear"
    );
    Ok(())
}
