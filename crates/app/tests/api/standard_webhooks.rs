//! Standard Webhooks on the intake: a `standard` registration accepts what the reference
//! implementation signs, dedupes on `webhook-id`, and refuses (and records) missing,
//! wrong and stale signatures. Outgoing signatures are checked in `alerts.rs`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, ReferenceWebhooks, TestApp};

/// Posts `body` to an intake URL with the given Standard Webhooks headers.
async fn deliver(
    app: &TestApp,
    url: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<(u16, Value), Error> {
    let mut request = app
        .client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

fn now() -> Result<i64, Error> {
    Ok(i64::try_from(
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    )?)
}

/// Sends `body` as message `id`, signed by the reference library at `timestamp`.
async fn send_signed(
    app: &TestApp,
    reference: &ReferenceWebhooks,
    (url, secret): (&str, &str),
    (id, timestamp): (&str, i64),
    body: &[u8],
) -> Result<(u16, Value), Error> {
    let signature = reference.sign(secret, id, timestamp, body).await?;
    let timestamp = timestamp.to_string();
    deliver(
        app,
        url,
        body,
        &[
            ("webhook-id", id),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &signature),
        ],
    )
    .await
}

async fn rejected_reasons(app: &TestApp, owner: &Account, id: &str) -> Result<Vec<String>, Error> {
    let (_, events) = app
        .get_in(
            owner,
            &format!("/api/webhooks/{id}/events?verdict=rejected"),
        )
        .await?;
    Ok(events
        .items()?
        .iter()
        .filter_map(|event| event["reason"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn a_standard_webhook_accepts_what_the_reference_library_signs_once_per_id() -> TestResult {
    let Some(reference) = ReferenceWebhooks::find()? else {
        return Ok(());
    };
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("standard@example.com").await?;
    let created = app
        .create_webhook(&owner, &json!({"name": "Billing", "provider": "standard"}))
        .await?;
    let secret = created
        .signing_secret
        .clone()
        .ok_or("a generated secret is shown once")?;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let target = (created.url.as_str(), secret.as_str());
    let body = br#"{"type":"invoice.paid","data":{"id":"in_1"}}"#;

    let (status, first) = send_signed(&app, &reference, target, ("msg_1", now()?), body).await?;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["verdict"], "accepted");
    // The sender's retry: the same id, a new timestamp and signature.
    let (status, retry) =
        send_signed(&app, &reference, target, ("msg_1", now()? + 1), body).await?;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(retry["verdict"], "duplicate");
    // Another message that happens to have the same body is not a repeat.
    let (_, other) = send_signed(&app, &reference, target, ("msg_2", now()?), body).await?;
    assert_eq!(other["verdict"], "accepted", "{other}");

    // Wrong, missing and stale signatures: 401, recorded with their reason.
    let (status, problem) = send_signed(
        &app,
        &reference,
        (target.0, "whsec_c2VjcmV0LXRoYXQtaXMtbG9uZy1lbm91Z2g="),
        ("msg_3", now()?),
        body,
    )
    .await?;
    assert_eq!(
        (status, problem.text("code")?.as_str()),
        (401, "bad_signature")
    );
    let (status, problem) = deliver(&app, target.0, body, &[("webhook-id", "msg_4")]).await?;
    assert_eq!(
        (status, problem.text("code")?.as_str()),
        (401, "missing_signature")
    );
    let (status, problem) =
        send_signed(&app, &reference, target, ("msg_5", now()? - 600), body).await?;
    assert_eq!(
        (status, problem.text("code")?.as_str()),
        (401, "stale_timestamp")
    );
    // A signature over other bytes.
    let signature = reference
        .sign(secret.as_str(), "msg_6", now()?, b"{}")
        .await?;
    let timestamp = now()?.to_string();
    let (status, _) = deliver(
        &app,
        target.0,
        body,
        &[
            ("webhook-id", "msg_6"),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &signature),
        ],
    )
    .await?;
    assert_eq!(status, 401);
    assert_eq!(
        rejected_reasons(&app, &owner, &created.id).await?,
        [
            "bad_signature",
            "stale_timestamp",
            "missing_signature",
            "bad_signature"
        ],
        "newest first"
    );
    Ok(())
}

#[tokio::test]
async fn a_standard_secret_must_be_a_whsec_secret() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("whsec@example.com").await?;
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/webhooks",
            &json!({"name": "Bad", "provider": "standard", "signing_secret": "hunter2hunter2"}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "signing_secret", "{problem}");

    // Switching a registration to `standard` needs a new whsec_ secret.
    let meta = app
        .create_webhook(&owner, &json!({"name": "Was meta", "provider": "meta"}))
        .await?;
    let path = format!("/api/webhooks/{}", meta.id);
    let (status, problem) = app
        .patch_in(&owner, &path, &json!({"provider": "standard"}))
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "signing_secret", "{problem}");
    let (status, changed) = app
        .patch_in(
            &owner,
            &path,
            &json!({"provider": "standard", "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        )
        .await?;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["provider"], "standard");
    Ok(())
}
