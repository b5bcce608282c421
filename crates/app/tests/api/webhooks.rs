//! The webhook intake end to end: Meta's handshake, signed WhatsApp deliveries that
//! run workflows and fill conversations, duplicates, rejections, atomicity, isolation,
//! replays, `respond_node` answers and the overview.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp, call, wait_finished};

const TEXT_MESSAGE: &str = include_str!("../../../../fixtures/meta/text-message.json");
const UNICODE_ESCAPED: &str = include_str!("../../../../fixtures/meta/unicode-escaped.txt");
const APP_SECRET: &str = "meta-app-secret-123";

fn sign(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// Posts `body` to an intake URL with an optional signature header.
async fn deliver(
    app: &TestApp,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(u16, String), Error> {
    let mut request = app
        .client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    let response = request.send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// A workflow started by `trigger.webhook` that reads the message text, activated.
async fn webhook_workflow(app: &TestApp, owner: &Account) -> Result<String, Error> {
    let definition = json!({
        "nodes": [
            {"id": "in", "type": "trigger.webhook", "name": "In"},
            {"id": "read", "type": "data.set", "name": "Read", "params": {"values": {
                "text": "{{ trigger.body.entry[0].changes[0].value.messages[0].text.body }}"
            }}}
        ],
        "connections": [{"from": "in", "to": "read"}]
    });
    let workflow = app
        .active_workflow(owner, "WhatsApp inbox", &definition)
        .await?;
    Ok(workflow.id)
}

/// A `meta` registration with a known secret and verify token.
async fn meta_registration(
    app: &TestApp,
    owner: &Account,
    workflow: Option<&str>,
) -> Result<Value, Error> {
    let (status, created) = app
        .post_in(
            owner,
            "/api/webhooks",
            &json!({
                "name": "WhatsApp", "provider": "meta", "workflow_id": workflow,
                "verify_token": "verify-me-please", "signing_secret": APP_SECRET
            }),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    Ok(created)
}

#[tokio::test]
async fn the_handshake_echoes_the_challenge_only_for_the_right_token() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("meta@example.com").await?;
    let created = meta_registration(&app, &owner, None).await?;
    let url = created.text("url")?;
    assert!(
        url.ends_with(&format!("/api/webhooks/in/{}", &created.text("public_id")?)),
        "{url}"
    );
    assert!(
        created.get("signing_secret").is_none(),
        "a supplied secret is never echoed"
    );
    assert!(!created.to_string().contains("verify-me-please"));

    let answer = app
        .client
        .get(format!(
            "{url}?hub.mode=subscribe&hub.verify_token=verify-me-please&hub.challenge=1158201444"
        ))
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-type"]
            .to_str()?
            .starts_with("text/plain")
    );
    assert_eq!(answer.text().await?, "1158201444");

    let wrong = app
        .client
        .get(format!(
            "{url}?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"
        ))
        .send()
        .await?;
    assert_eq!(wrong.status(), 403);
    assert_eq!(
        wrong.headers()["content-type"].to_str()?,
        "application/problem+json"
    );
    let unknown = app
        .client
        .get(app.url("/api/webhooks/in/nope?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1"))
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);
    Ok(())
}

#[tokio::test]
async fn a_signed_whatsapp_message_runs_once_and_fills_the_conversation() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("inbox@example.com").await?;
    let workflow = webhook_workflow(&app, &owner).await?;
    // Activation bound an unsigned registration to the workflow; make it Meta's.
    let (_, listed) = app.get_in(&owner, "/api/webhooks").await?;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let registration = &listed["items"][0];
    assert_eq!(registration["workflow_id"], workflow.as_str());
    assert_eq!(registration["provider"], "none");
    let id = registration.text("id")?;
    let (status, refused) = app
        .patch_in(
            &owner,
            &format!("/api/webhooks/{id}"),
            &json!({"provider": "meta"}),
        )
        .await?;
    assert_eq!(status, 422, "a signed provider needs a secret: {refused}");
    let (status, patched) = app
        .patch_in(
            &owner,
            &format!("/api/webhooks/{id}"),
            &json!({
                "provider": "meta", "signing_secret": APP_SECRET
            }),
        )
        .await?;
    assert_eq!(status, 200, "{patched}");
    let url = patched.text("url")?;

    let body = TEXT_MESSAGE.as_bytes();
    let (status, answer) = deliver(&app, &url, body, Some(&sign(APP_SECRET, body))).await?;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer)?;
    assert_eq!(answer["verdict"], "accepted");
    let execution = answer.text("execution_id")?;
    let finished = wait_finished(&app, &owner, &execution).await?;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(
        finished["output"]["text"],
        "Oi! Quero saber o status do meu pedido 4821"
    );
    assert_eq!(finished["trigger_kind"], "webhook");

    // Meta retries the same delivery: 200, nothing new runs or is stored twice.
    let (status, again) = deliver(&app, &url, body, Some(&sign(APP_SECRET, body))).await?;
    assert_eq!(status, 200, "{again}");
    let again: Value = serde_json::from_str(&again)?;
    assert_eq!(again["verdict"], "duplicate");
    assert_eq!(again["execution_id"], Value::Null);
    assert_eq!(app.count("executions").await?, 1);
    assert_eq!(app.count("messages").await?, 1);
    assert_eq!(app.count("webhook_events").await?, 2);

    let (_, conversations) = app.get_in(&owner, "/api/workspace/conversations").await?;
    let items = conversations.items()?;
    assert_eq!(items.len(), 1, "{conversations}");
    assert_eq!(items[0]["wa_id"], "5511987654321");
    assert_eq!(items[0]["name"], "Ana Souza");
    assert_eq!(items[0]["message_count"], 1);
    assert_eq!(
        items[0]["last_message_preview"],
        "Oi! Quero saber o status do meu pedido 4821"
    );
    let conversation = items[0].text("id")?;
    let (_, messages) = app
        .get_in(
            &owner,
            &format!("/api/workspace/conversations/{conversation}/messages"),
        )
        .await?;
    assert_eq!(
        messages["items"].as_array().map(Vec::len),
        Some(1),
        "{messages}"
    );
    assert_eq!(messages["items"][0]["type"], "text");
    assert_eq!(messages["items"][0]["sent_at"], "2025-11-25T12:00:00Z");

    let (_, events) = app
        .get_in(
            &owner,
            &format!("/api/webhooks/{id}/events?verdict=duplicate"),
        )
        .await?;
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
    let (_, accepted) = app
        .get_in(&owner, "/api/workspace/webhook-events?verdict=accepted")
        .await?;
    let event = accepted.text("/items/0/id")?;
    let (status, detail) = app
        .get_in(&owner, &format!("/api/webhooks/{id}/events/{event}"))
        .await?;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(
        detail["body"], TEXT_MESSAGE,
        "the raw body is kept as received"
    );
    assert_eq!(detail["headers"]["content-type"], "application/json");
    assert_eq!(detail["execution_id"], execution.as_str());

    // A replay runs the workflow again from the stored body.
    let (status, replayed) = app
        .post_in(
            &owner,
            &format!("/api/workspace/webhook-events/{event}/replay"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 202, "{replayed}");
    let rerun = wait_finished(&app, &owner, &replayed.text("execution_id")?).await?;
    assert_eq!(rerun["output"], finished["output"]);

    // The overview counts what happened.
    let (status, overview) = app.get_in(&owner, "/api/workspace/overview").await?;
    assert_eq!(status, 200, "{overview}");
    assert_eq!(overview["counts"]["workflows"], 1);
    assert_eq!(overview["counts"]["active_workflows"], 1);
    assert_eq!(overview["counts"]["executions_24h"]["succeeded"], 2);
    assert_eq!(overview["counts"]["webhook_events_24h"]["accepted"], 1);
    assert_eq!(overview["counts"]["webhook_events_24h"]["duplicate"], 1);
    assert_eq!(overview["counts"]["members"], 1);
    assert_eq!(
        overview["counts"]["credentials"], 0,
        "the signing secret lives in the vault but is not a user credential"
    );
    assert_eq!(
        overview["latest_webhook_events"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        overview["recent_conversations"][0]["wa_id"],
        "5511987654321"
    );
    assert!(
        overview["latest_activities"]
            .as_array()
            .is_some_and(|activities| !activities.is_empty()),
        "{overview}"
    );

    let metrics = app.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains(r#"webhook_events_total{verdict="duplicate",reason=""} 1"#),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_signatures_are_refused_recorded_and_run_nothing() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("guard@example.com").await?;
    let workflow = webhook_workflow(&app, &owner).await?;
    let created = meta_registration(&app, &owner, Some(&workflow)).await?;
    let url = created.text("url")?;
    let id = created.text("id")?;
    let body = TEXT_MESSAGE.as_bytes();

    let (status, problem) = deliver(&app, &url, body, Some(&sign("not-the-secret", body))).await?;
    assert_eq!(status, 401, "{problem}");
    assert!(problem.contains("bad_signature"), "{problem}");
    let (status, problem) = deliver(&app, &url, body, None).await?;
    assert_eq!(status, 401);
    assert!(problem.contains("missing_signature"), "{problem}");
    let (status, _) = deliver(&app, &url, body, Some(&sign(APP_SECRET, b"{\"other\":1}"))).await?;
    assert_eq!(status, 401, "a signature over another body");

    assert_eq!(app.count("executions").await?, 0);
    let (_, events) = app
        .get_in(
            &owner,
            &format!("/api/webhooks/{id}/events?verdict=rejected"),
        )
        .await?;
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["bad_signature", "missing_signature", "bad_signature"]
    );

    // Meta escapes non-ASCII text; the bytes as received are what is signed.
    let escaped = UNICODE_ESCAPED.trim_end().as_bytes();
    let (status, answer) = deliver(&app, &url, escaped, Some(&sign(APP_SECRET, escaped))).await?;
    assert_eq!(status, 200, "{answer}");

    // Oversize, not JSON, unknown, disabled.
    let huge = vec![b' '; 1024 * 1024 + 1];
    let (status, _) = deliver(&app, &url, &huge, Some(&sign(APP_SECRET, &huge))).await?;
    assert_eq!(status, 413);
    let (status, problem) = deliver(
        &app,
        &url,
        b"not json",
        Some(&sign(APP_SECRET, b"not json")),
    )
    .await?;
    assert_eq!(status, 400, "{problem}");
    let (_, invalid) = app
        .get_in(&owner, "/api/workspace/webhook-events?verdict=rejected")
        .await?;
    assert_eq!(invalid["items"][0]["reason"], "invalid_json");
    let (status, _) = deliver(&app, &app.url("/api/webhooks/in/unknown-id"), body, None).await?;
    assert_eq!(status, 404);
    let (status, _) = app
        .patch_in(
            &owner,
            &format!("/api/webhooks/{id}"),
            &json!({"enabled": false}),
        )
        .await?;
    assert_eq!(status, 200);
    let (status, _) = deliver(&app, &url, body, Some(&sign(APP_SECRET, body))).await?;
    assert_eq!(
        status, 410,
        "a disabled webhook is gone, at once in this process"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_execution_insert_keeps_no_event_and_answers_503() -> TestResult {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("atomic@example.com").await?;
    let workflow = webhook_workflow(&app, &owner).await?;
    let created = meta_registration(&app, &owner, Some(&workflow)).await?;
    let url = created.text("url")?;
    let mut connection = app.db.pool().get().await?;
    diesel::sql_query(
        "CREATE FUNCTION refuse_execution() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
    )
    .execute(&mut connection)
    .await?;
    diesel::sql_query(
        "CREATE TRIGGER refuse_execution BEFORE INSERT ON executions \
         FOR EACH ROW EXECUTE FUNCTION refuse_execution()",
    )
    .execute(&mut connection)
    .await?;
    let body = TEXT_MESSAGE.as_bytes();
    let (status, problem) = deliver(&app, &url, body, Some(&sign(APP_SECRET, body))).await?;
    assert_eq!(status, 503, "{problem}");
    assert!(
        !problem.contains("injected"),
        "no internals leak: {problem}"
    );
    assert_eq!(app.count("webhook_events").await?, 0);
    assert_eq!(app.count("webhook_dedupe_keys").await?, 0);
    assert_eq!(app.count("messages").await?, 0);
    assert_eq!(app.count("conversations").await?, 0);

    // Once the fault is gone, Meta's retry goes through as new.
    diesel::sql_query("DROP TRIGGER refuse_execution ON executions")
        .execute(&mut connection)
        .await?;
    let (status, answer) = deliver(&app, &url, body, Some(&sign(APP_SECRET, body))).await?;
    assert_eq!(status, 200);
    assert!(answer.contains("\"accepted\""), "{answer}");
    Ok(())
}

#[tokio::test]
async fn another_workspace_sees_none_of_it() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("owner@example.com").await?;
    let workflow = webhook_workflow(&app, &owner).await?;
    let created = meta_registration(&app, &owner, Some(&workflow)).await?;
    let url = created.text("url")?;
    let id = created.text("id")?;
    let body = TEXT_MESSAGE.as_bytes();
    deliver(&app, &url, body, Some(&sign(APP_SECRET, body))).await?;
    let (_, events) = app.get_in(&owner, "/api/workspace/webhook-events").await?;
    let event = events.text("/items/0/id")?;
    let (_, conversations) = app.get_in(&owner, "/api/workspace/conversations").await?;
    let conversation = conversations.text("/items/0/id")?;

    assert!(
        !event.is_empty() && !conversation.is_empty(),
        "{events} {conversations}"
    );
    let outsider = app.signed_up("outsider@example.com").await?;
    for (method, path) in [
        (Method::GET, format!("/api/webhooks/{id}")),
        (Method::PATCH, format!("/api/webhooks/{id}")),
        (Method::DELETE, format!("/api/webhooks/{id}")),
        (Method::GET, format!("/api/webhooks/{id}/events")),
        (Method::GET, format!("/api/webhooks/{id}/events/{event}")),
        (
            Method::POST,
            format!("/api/webhooks/{id}/events/{event}/replay"),
        ),
        (
            Method::GET,
            format!("/api/workspace/webhook-events/{event}"),
        ),
        (
            Method::POST,
            format!("/api/workspace/webhook-events/{event}/replay"),
        ),
        (
            Method::GET,
            format!("/api/workspace/conversations/{conversation}/messages"),
        ),
    ] {
        let (status, _) = call(&app, &outsider, method.clone(), &path, &json!({})).await?;
        assert_eq!(status, 404, "{method} {path}");
    }
    for path in [
        "/api/webhooks",
        "/api/workspace/webhook-events",
        "/api/workspace/conversations",
    ] {
        let (_, listed) = app.get_in(&outsider, path).await?;
        assert_eq!(listed["items"], json!([]), "{path}");
    }
    let (_, overview) = app.get_in(&outsider, "/api/workspace/overview").await?;
    assert_eq!(overview["latest_webhook_events"], json!([]));
    assert_eq!(overview["recent_conversations"], json!([]));
    Ok(())
}

/// An active `Echo` workflow answering `201 {"hello": <trigger.body.name>}` with header
/// `x-echo: yes`, behind a new signed `respond_node` registration: its intake URL and
/// its signing secret.
pub(crate) async fn echo_hook(app: &TestApp, owner: &Account) -> Result<(String, String), Error> {
    let definition = json!({
        "nodes": [
            {"id": "in", "type": "trigger.webhook", "name": "In"},
            {"id": "answer", "type": "webhook.respond", "name": "Answer", "params": {
                "status": 201,
                "headers": {"x-echo": "yes"},
                "body": {"hello": "{{ trigger.body.name }}"}
            }}
        ],
        "connections": [{"from": "in", "to": "answer"}]
    });
    let workflow = app.active_workflow(owner, "Echo", &definition).await?.id;
    let registration = app.create_webhook(owner, &json!({
        "name": "Echo", "provider": "hmac_sha256", "workflow_id": workflow, "response_mode": "respond_node"
    })).await?;
    let secret = registration
        .signing_secret
        .ok_or("a generated secret is shown once")?;
    assert_eq!(secret.len(), 64, "a generated secret is shown once");
    let (_, shown) = app
        .get_in(owner, &format!("/api/webhooks/{}", registration.id))
        .await?;
    assert!(shown.get("signing_secret").is_none());
    assert_eq!(shown["has_signing_secret"], true);
    Ok((registration.url, secret))
}

/// Delivers `{"name":"Ada"}` to an [`echo_hook`] and checks the workflow's answer.
pub(crate) async fn echo_answers(app: &TestApp, url: &str, secret: &str) -> TestResult {
    let body = br#"{"name":"Ada"}"#;
    let response = app
        .client
        .post(url)
        .header("x-hub-signature-256", sign(secret, body))
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-echo"], "yes");
    assert_eq!(response.json::<Value>().await?, json!({"hello": "Ada"}));
    Ok(())
}

#[tokio::test]
async fn a_respond_node_webhook_answers_with_the_workflow_reply() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("reply@example.com").await?;
    let (url, secret) = echo_hook(&app, &owner).await?;
    echo_answers(&app, &url, &secret).await
}

#[tokio::test]
async fn deactivation_unbinds_the_registration_and_activation_binds_it_again() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("binder@example.com").await?;
    let workflow = webhook_workflow(&app, &owner).await?;
    let (_, listed) = app.get_in(&owner, "/api/webhooks").await?;
    let id = listed.text("/items/0/id")?;
    let url = listed.text("/items/0/url")?;
    app.post_in(
        &owner,
        &format!("/api/workflows/{workflow}/deactivate"),
        &json!({}),
    )
    .await?;
    let (_, unbound) = app.get_in(&owner, &format!("/api/webhooks/{id}")).await?;
    assert_eq!(unbound["workflow_id"], Value::Null, "{unbound}");
    let (status, answer) = deliver(&app, &url, b"{\"n\":1}", None).await?;
    assert_eq!(status, 200);
    assert!(
        answer.contains("\"execution_id\":null"),
        "nothing bound, nothing runs: {answer}"
    );

    app.post_in(
        &owner,
        &format!("/api/workflows/{workflow}/activate"),
        &json!({"version": 1}),
    )
    .await?;
    let (_, listed) = app.get_in(&owner, "/api/webhooks").await?;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "the same one, not a new one"
    );
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert_eq!(listed["items"][0]["workflow_id"], workflow.as_str());
    let (_, answer) = deliver(&app, &url, b"{\"n\":2}", None).await?;
    assert!(!answer.contains("\"execution_id\":null"), "{answer}");

    let (status, problem) = app
        .post_in(
            &owner,
            "/api/webhooks",
            &json!({"name": "", "provider": "carrier-pigeon", "workflow_id": uuid::Uuid::new_v4()}),
        )
        .await?;
    assert_eq!(status, 422);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["name", "provider", "workflow_id"], "{problem}");
    Ok(())
}

#[tokio::test]
async fn a_redelivery_with_one_new_message_stores_and_counts_only_that_one() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("batch@example.com").await?;
    let workflow = webhook_workflow(&app, &owner).await?;
    let created = meta_registration(&app, &owner, Some(&workflow)).await?;
    let url = created.text("url")?;
    let message = |id: &str, text: &str| json!({"from": "5511900000001", "id": id, "timestamp": "1764072000", "type": "text", "text": {"body": text}});
    let delivery = |messages: Vec<Value>| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "contacts": [{"wa_id": "5511900000001", "profile": {"name": "Bia"}}],
            "messages": messages
        }}]}]})
        .to_string()
    };
    let first = delivery(vec![message("wamid.one", "first")]);
    let (status, answer) = deliver(
        &app,
        &url,
        first.as_bytes(),
        Some(&sign(APP_SECRET, first.as_bytes())),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    // Meta batches the old message with a new one: the new one is not lost.
    let second = delivery(vec![
        message("wamid.one", "first"),
        message("wamid.two", "second"),
    ]);
    let (_, answer) = deliver(
        &app,
        &url,
        second.as_bytes(),
        Some(&sign(APP_SECRET, second.as_bytes())),
    )
    .await?;
    assert!(answer.contains("\"accepted\""), "{answer}");
    // Both already seen: a duplicate.
    let third = delivery(vec![
        message("wamid.two", "second"),
        message("wamid.one", "first"),
    ]);
    let (_, answer) = deliver(
        &app,
        &url,
        third.as_bytes(),
        Some(&sign(APP_SECRET, third.as_bytes())),
    )
    .await?;
    assert!(answer.contains("\"duplicate\""), "{answer}");

    assert_eq!(app.count("messages").await?, 2);
    assert_eq!(app.count("executions").await?, 2);
    let (_, conversations) = app.get_in(&owner, "/api/workspace/conversations").await?;
    assert_eq!(
        conversations["items"][0]["message_count"], 2,
        "{conversations}"
    );

    // A rejected event is never replayed.
    let (status, _) = deliver(&app, &url, first.as_bytes(), Some("sha256=00")).await?;
    assert_eq!(status, 401);
    let (_, rejected) = app
        .get_in(&owner, "/api/workspace/webhook-events?verdict=rejected")
        .await?;
    let event = rejected.text("/items/0/id")?;
    let (status, problem) = app
        .post_in(
            &owner,
            &format!("/api/workspace/webhook-events/{event}/replay"),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "event_rejected");
    Ok(())
}
