//! AWS Secrets Manager against moto's server (`moto[server]`, started per test on a
//! free loopback port). Secrets are put there through the Secrets Manager API itself.

use fluxolab_kernel::{ExposeSecret, SecretStoreClient, StoreFailure, StoreKind};
use fluxolab_outbound::SecretStores;
use fluxolab_outbound::testing::Moto;
use serde_json::json;

use crate::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, TestResult, aws_connection};

#[tokio::test]
async fn aws_secrets_are_read_by_name_and_key_and_rotations_are_seen() -> TestResult {
    let Some(moto) = Moto::start().await? else {
        return Ok(());
    };
    let api = moto.api(REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY);
    api.create_secret("fluxolab/api-token", "t0ken-v1").await?;
    api.create_secret(
        "fluxolab/db",
        &json!({ "user": "app", "password": "p@ss-v1", "port": 5432 }).to_string(),
    )
    .await?;
    api.secrets_manager(
        "CreateSecret",
        // "héllo" as bytes: SecretBinary is read as text when it is UTF-8.
        &json!({ "Name": "fluxolab/binary", "SecretBinary": "aMOpbGxv" }),
    )
    .await?;
    let stores = SecretStores::new()?;
    let connection = aws_connection(moto.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY);

    let plain = stores.read(&connection, "fluxolab/api-token").await?;
    assert_eq!(plain.expose_secret(), "t0ken-v1");
    let password = stores
        .resolve(&connection, "fluxolab/db", Some("password"))
        .await?;
    assert_eq!(password.expose_secret(), "p@ss-v1");
    let port = stores
        .resolve(&connection, "fluxolab/db", Some("port"))
        .await?;
    assert_eq!(port.expose_secret(), "5432");
    let whole = stores.resolve(&connection, "fluxolab/db", None).await?;
    assert!(whole.expose_secret().contains(r#""user":"app""#));
    let missing_key = stores
        .resolve(&connection, "fluxolab/db", Some("host"))
        .await
        .expect_err("no such key");
    assert!(
        matches!(missing_key, StoreFailure::NotFound(_)),
        "{missing_key}"
    );
    let binary = stores.read(&connection, "fluxolab/binary").await?;
    assert_eq!(binary.expose_secret(), "héllo");

    api.put_secret_value("fluxolab/api-token", "t0ken-v2")
        .await?;
    let rotated = stores.read(&connection, "fluxolab/api-token").await?;
    assert_eq!(rotated.expose_secret(), "t0ken-v2");
    Ok(())
}

#[tokio::test]
async fn a_missing_aws_secret_is_not_found_and_named() -> TestResult {
    let Some(moto) = Moto::start().await? else {
        return Ok(());
    };
    let stores = SecretStores::new()?;
    let connection = aws_connection(moto.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY);
    let failure = stores
        .read(&connection, "fluxolab/never-created")
        .await
        .expect_err("missing");
    let StoreFailure::NotFound(message) = &failure else {
        return Err(format!("expected NotFound, got {failure:?}").into());
    };
    assert!(message.contains("fluxolab/never-created"), "{message}");
    assert!(message.contains("ResourceNotFoundException"), "{message}");
    // AWS answers 400, moto 404: the status is named either way.
    assert!(message.contains("HTTP 4"), "{message}");
    Ok(())
}

#[tokio::test]
async fn aws_probe_lists_one_name_or_reads_the_probe_secret_without_showing_it() -> TestResult {
    let Some(moto) = Moto::start().await? else {
        return Ok(());
    };
    let api = moto.api(REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY);
    let stores = SecretStores::new()?;
    let connection = aws_connection(moto.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY);

    let empty = stores.probe(&connection, None).await?;
    assert!(empty.reachable && empty.authenticated, "{empty:?}");
    assert!(empty.detail.contains("0 name(s)"), "{empty:?}");
    api.create_secret("fluxolab/probe", "pr0be-value").await?;
    api.create_secret("fluxolab/other", "other-value").await?;
    let listed = stores.probe(&connection, None).await?;
    assert!(
        listed.detail.contains("1 name(s)"),
        "at most one name: {listed:?}"
    );

    let read = stores.probe(&connection, Some("fluxolab/probe")).await?;
    assert!(read.reachable && read.authenticated, "{read:?}");
    assert!(!read.detail.contains("pr0be-value"), "{read:?}");
    let missing = stores.probe(&connection, Some("fluxolab/absent")).await?;
    assert!(missing.reachable && missing.authenticated, "{missing:?}");
    assert!(missing.detail.contains("fluxolab/absent"), "{missing:?}");
    Ok(())
}

#[tokio::test]
async fn moto_verifying_signatures_accepts_only_requests_signed_with_the_right_key() -> TestResult {
    // Three unauthenticated setup actions (the IAM user, its policy, its key); every
    // request after them has its SigV4 signature recomputed and checked by moto.
    let Some(moto) = Moto::start_enforcing_auth(3).await? else {
        return Ok(());
    };
    let (key_id, secret) = moto
        .api(REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        .create_iam_key("fluxolab-reader")
        .await?;
    moto.api(REGION, &key_id, &secret)
        .create_secret("fluxolab/signed", "s1gned-value")
        .await?;
    let stores = SecretStores::new()?;

    let right = aws_connection(moto.endpoint(), &key_id, &secret);
    let value = stores.read(&right, "fluxolab/signed").await?;
    assert_eq!(value.expose_secret(), "s1gned-value");
    let probed = stores.probe(&right, None).await?;
    assert!(probed.authenticated, "{probed:?}");

    let wrong_secret = aws_connection(moto.endpoint(), &key_id, "not-the-secret-key");
    let failure = stores
        .read(&wrong_secret, "fluxolab/signed")
        .await
        .expect_err("bad signature");
    assert!(
        matches!(failure, StoreFailure::Unauthenticated(_)),
        "{failure:?}"
    );
    assert!(failure.to_string().contains("HTTP 403"), "{failure}");
    assert!(
        failure.to_string().contains("SignatureDoesNotMatch"),
        "{failure}"
    );

    let unknown_key = aws_connection(moto.endpoint(), "AKIAUNKNOWN000000000", &secret);
    let failure = stores
        .read(&unknown_key, "fluxolab/signed")
        .await
        .expect_err("unknown key");
    assert!(
        matches!(failure, StoreFailure::Unauthenticated(_)),
        "{failure:?}"
    );
    let report = stores.probe(&unknown_key, None).await?;
    assert!(report.reachable && !report.authenticated, "{report:?}");
    Ok(())
}

#[tokio::test]
async fn the_guard_refuses_a_loopback_aws_endpoint_unless_the_workspace_allows_it() -> TestResult {
    let Some(moto) = Moto::start().await? else {
        return Ok(());
    };
    moto.api(REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        .create_secret("fluxolab/internal", "1nternal-value")
        .await?;
    let stores = SecretStores::new()?;
    let allowed = aws_connection(moto.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY);
    // The same server is there: only the policy differs.
    assert!(stores.read(&allowed, "fluxolab/internal").await.is_ok());

    let by_name = moto.endpoint().replace("127.0.0.1", "localhost");
    for endpoint in [moto.endpoint().to_owned(), by_name] {
        let mut refused = aws_connection(&endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY);
        refused.allow_internal_network = false;
        let failure = stores
            .read(&refused, "fluxolab/internal")
            .await
            .expect_err("internal address refused");
        let StoreFailure::Unreachable(message) = &failure else {
            return Err(format!("expected Unreachable for {endpoint}, got {failure:?}").into());
        };
        assert!(message.contains("internal"), "{message}");
        let report = stores.probe(&refused, None).await?;
        assert!(!report.reachable && !report.authenticated, "{report:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_region_that_is_not_one_is_refused_before_any_request() -> TestResult {
    let stores = SecretStores::new()?;
    let mut connection = aws_connection("", ACCESS_KEY_ID, SECRET_ACCESS_KEY);
    if let StoreKind::AwsSecretsManager {
        endpoint_url,
        region,
        ..
    } = &mut connection.kind
    {
        *endpoint_url = None;
        *region = "eu-west-1.evil.example/".to_owned();
    }
    let failure = stores
        .probe(&connection, None)
        .await
        .expect_err("bad region");
    assert!(matches!(failure, StoreFailure::Failed(_)), "{failure:?}");
    assert!(
        failure.to_string().contains("not an AWS region"),
        "{failure}"
    );
    Ok(())
}
