//! Vault / OpenBao KV v2 against the stand-in that follows Vault's documented API (see
//! `vault_stand_in.rs`: no real Vault is installable here).

use std::sync::Arc;

use fluxolab_kernel::{ExposeSecret, ManualClock, SecretStoreClient, StoreFailure};
use serde_json::json;

use crate::vault_stand_in::{ROLE_ID, ROOT_TOKEN, SECRET_ID, VaultStandIn};
use crate::{TestResult, app_role, stores_on_a_manual_clock, token, vault_connection};

fn stand_in(
    clock: &Arc<ManualClock>,
    lease_seconds: i64,
) -> Result<VaultStandIn, crate::TestError> {
    VaultStandIn::start(Arc::clone(clock), lease_seconds)
}

#[tokio::test]
async fn a_token_reads_a_kv_v2_secret_and_sends_the_namespace() -> TestResult {
    let (stores, clock) = stores_on_a_manual_clock()?;
    let vault = stand_in(&clock, 60)?;
    vault.put(
        "team-a",
        "secret",
        "db/password",
        json!({ "value": "p@ss-team-a" }),
    )?;

    let in_namespace = vault_connection(vault.address(), Some("team-a"), token(ROOT_TOKEN));
    let value = stores.read(&in_namespace, "db/password").await?;
    assert_eq!(value.expose_secret(), "p@ss-team-a");
    assert_eq!(vault.namespaces_seen()?, vec![Some("team-a".to_owned())]);

    // The same path outside the namespace is another secret: there is none.
    let root = vault_connection(vault.address(), None, token(ROOT_TOKEN));
    let failure = stores
        .read(&root, "db/password")
        .await
        .expect_err("not in root");
    assert!(matches!(failure, StoreFailure::NotFound(_)), "{failure:?}");
    assert_eq!(vault.namespaces_seen()?.last(), Some(&None));
    Ok(())
}

#[tokio::test]
async fn approle_logs_in_once_and_again_when_two_thirds_of_the_lease_have_passed() -> TestResult {
    let (stores, clock) = stores_on_a_manual_clock()?;
    let vault = stand_in(&clock, 3)?;
    vault.put("", "secret", "api", json!({ "token": "v1" }))?;
    let connection = vault_connection(vault.address(), None, app_role(ROLE_ID, SECRET_ID));

    assert_eq!(stores.read(&connection, "api").await?.expose_secret(), "v1");
    assert_eq!(stores.read(&connection, "api").await?.expose_secret(), "v1");
    assert_eq!(vault.logins()?, 1, "the token is kept");

    // 1 s of a 3 s lease left: less than a third, so a new login before the next read.
    clock.advance(time::Duration::seconds(2));
    assert_eq!(stores.read(&connection, "api").await?.expose_secret(), "v1");
    assert_eq!(vault.logins()?, 2);

    // Well past the second token's expiry: logged in again, not refused.
    clock.advance(time::Duration::seconds(10));
    vault.put("", "secret", "api", json!({ "token": "v2" }))?;
    assert_eq!(stores.read(&connection, "api").await?.expose_secret(), "v2");
    assert_eq!(vault.logins()?, 3);
    Ok(())
}

#[tokio::test]
async fn a_refused_approle_token_is_replaced_by_one_new_login_and_a_new_revision_logs_in()
-> TestResult {
    let (stores, clock) = stores_on_a_manual_clock()?;
    let vault = stand_in(&clock, 3600)?;
    vault.put("", "secret", "api", json!({ "token": "v1" }))?;
    let mut connection = vault_connection(vault.address(), None, app_role(ROLE_ID, SECRET_ID));
    stores.read(&connection, "api").await?;
    assert_eq!(vault.logins()?, 1);

    vault.revoke_login_tokens()?;
    assert_eq!(stores.read(&connection, "api").await?.expose_secret(), "v1");
    assert_eq!(vault.logins()?, 2, "one login after the 403");

    connection.revision += 1;
    stores.read(&connection, "api").await?;
    assert_eq!(
        vault.logins()?,
        3,
        "state of an older revision is not reused"
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_token_or_secret_id_is_unauthenticated() -> TestResult {
    let (stores, clock) = stores_on_a_manual_clock()?;
    let vault = stand_in(&clock, 60)?;
    vault.put("", "secret", "api", json!({ "token": "v1" }))?;

    let wrong_token = vault_connection(vault.address(), None, token("hvs.not-a-token"));
    let failure = stores.read(&wrong_token, "api").await.expect_err("403");
    assert!(
        matches!(failure, StoreFailure::Unauthenticated(_)),
        "{failure:?}"
    );
    assert!(
        failure.to_string().contains("HTTP 403: permission denied"),
        "{failure}"
    );

    let wrong_secret_id = vault_connection(vault.address(), None, app_role(ROLE_ID, "wrong"));
    let failure = stores.read(&wrong_secret_id, "api").await.expect_err("400");
    assert!(
        matches!(failure, StoreFailure::Unauthenticated(_)),
        "{failure:?}"
    );
    assert!(
        failure
            .to_string()
            .contains("HTTP 400: invalid role or secret ID"),
        "{failure}"
    );
    assert_eq!(vault.logins()?, 0);
    Ok(())
}

#[tokio::test]
async fn a_missing_path_is_not_found_and_named() -> TestResult {
    let (stores, clock) = stores_on_a_manual_clock()?;
    let vault = stand_in(&clock, 60)?;
    let connection = vault_connection(vault.address(), None, token(ROOT_TOKEN));
    let failure = stores
        .read(&connection, "apps/never-written")
        .await
        .expect_err("missing");
    let StoreFailure::NotFound(message) = &failure else {
        return Err(format!("expected NotFound, got {failure:?}").into());
    };
    assert!(message.contains("apps/never-written"), "{message}");
    assert!(message.contains("mount `secret`"), "{message}");
    assert!(message.contains("HTTP 404"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_multi_field_secret_is_json_and_a_key_picks_a_field() -> TestResult {
    let (stores, clock) = stores_on_a_manual_clock()?;
    let vault = stand_in(&clock, 60)?;
    vault.put(
        "",
        "secret",
        "db",
        json!({ "user": "app", "password": "p@ss", "port": 5432 }),
    )?;
    vault.put("", "secret", "single", json!({ "password": "0nly" }))?;
    let connection = vault_connection(vault.address(), None, token(ROOT_TOKEN));

    let whole = stores.read(&connection, "db").await?;
    let parsed: serde_json::Value = serde_json::from_str(whole.expose_secret())?;
    assert_eq!(
        parsed,
        json!({ "user": "app", "password": "p@ss", "port": 5432 })
    );
    let password = stores.resolve(&connection, "db", Some("password")).await?;
    assert_eq!(password.expose_secret(), "p@ss");
    let port = stores.resolve(&connection, "db", Some("port")).await?;
    assert_eq!(port.expose_secret(), "5432");
    let ambiguous = stores
        .resolve(&connection, "db", None)
        .await
        .expect_err("several fields need a key");
    assert!(ambiguous.to_string().contains("3 fields"), "{ambiguous}");
    let missing = stores
        .resolve(&connection, "db", Some("host"))
        .await
        .expect_err("no such field");
    assert!(matches!(missing, StoreFailure::NotFound(_)), "{missing:?}");

    // One field: the value itself, and its key still finds it.
    let single = stores.read(&connection, "single").await?;
    assert_eq!(single.expose_secret(), "0nly");
    let by_key = stores
        .resolve(&connection, "single", Some("password"))
        .await?;
    assert_eq!(by_key.expose_secret(), "0nly");
    Ok(())
}

#[tokio::test]
async fn vault_probe_lists_the_mount_or_reads_the_probe_path_without_showing_it() -> TestResult {
    let (stores, clock) = stores_on_a_manual_clock()?;
    let vault = stand_in(&clock, 60)?;
    let connection = vault_connection(vault.address(), None, app_role(ROLE_ID, SECRET_ID));

    let empty = stores.probe(&connection, None).await?;
    assert!(empty.reachable && empty.authenticated, "{empty:?}");
    assert!(empty.detail.contains("empty"), "{empty:?}");
    vault.put(
        "",
        "secret",
        "apps/probe",
        json!({ "value": "pr0be-value" }),
    )?;
    vault.put("", "secret", "top", json!({ "value": "t0p-value" }))?;
    let listed = stores.probe(&connection, None).await?;
    assert!(
        listed.detail.contains("2 key(s)"),
        "apps/ and top: {listed:?}"
    );

    let read = stores.probe(&connection, Some("apps/probe")).await?;
    assert!(read.reachable && read.authenticated, "{read:?}");
    assert!(!read.detail.contains("pr0be-value"), "{read:?}");

    let refused = vault_connection(vault.address(), None, app_role(ROLE_ID, "wrong"));
    let report = stores.probe(&refused, None).await?;
    assert!(report.reachable && !report.authenticated, "{report:?}");
    Ok(())
}

#[tokio::test]
async fn the_guard_refuses_a_loopback_vault_unless_the_workspace_allows_it() -> TestResult {
    let (stores, clock) = stores_on_a_manual_clock()?;
    let vault = stand_in(&clock, 60)?;
    vault.put("", "secret", "api", json!({ "token": "1nternal" }))?;
    let allowed = vault_connection(vault.address(), None, app_role(ROLE_ID, SECRET_ID));
    assert!(stores.read(&allowed, "api").await.is_ok());

    let mut refused = allowed.clone();
    refused.allow_internal_network = false;
    refused.revision += 1;
    let failure = stores
        .read(&refused, "api")
        .await
        .expect_err("loopback refused");
    assert!(
        matches!(failure, StoreFailure::Unreachable(_)),
        "{failure:?}"
    );
    assert!(failure.to_string().contains("internal"), "{failure}");
    assert_eq!(vault.logins()?, 1, "not even the login left the process");
    let report = stores.probe(&refused, None).await?;
    assert!(!report.reachable, "{report:?}");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_vault_is_unreachable() -> TestResult {
    let (stores, _clock) = stores_on_a_manual_clock()?;
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let connection = vault_connection(&format!("http://127.0.0.1:{port}"), None, token(ROOT_TOKEN));
    let failure = stores
        .read(&connection, "api")
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(failure, StoreFailure::Unreachable(_)),
        "{failure:?}"
    );
    Ok(())
}
