//! The credentials vault, end to end: over HTTP as a client sees it, and server-side as
//! nodes resolve it.

use std::sync::Arc;

use fluxolab_credentials::CredentialKind;
use fluxolab_credentials::envelope::{DataKey, MasterKeys};
use fluxolab_credentials::model::{DataKeyId, StoredDataKey};
use fluxolab_credentials::ports::{CredentialResolver, DataKeyRepository, ResolveError};
use fluxolab_credentials::service::rewrap_all_data_keys;
use fluxolab_credentials::{VaultPorts, VaultService};
use fluxolab_kernel::{CredentialId, SystemClock, WorkspaceId};
use fluxolab_postgres::TestDb;
use fluxolab_postgres::unit_of_work::PgUnits;
use fluxolab_postgres::vault::PgVault;
use reqwest::Method;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TEST_SECRET, TestApp};

const OLD_SECRET: &str = "an-older-master-secret-0123456789abcdef";

/// The vault as the server builds it, on the test's database.
fn vault(db: &TestDb, current: &str, previous: Option<&str>) -> Result<VaultService, Error> {
    let store = PgVault::new(db.pool().clone());
    Ok(VaultService::new(VaultPorts {
        units: Arc::new(PgUnits::new(db.pool().clone())),
        keys: Arc::new(store.clone()),
        credentials: Arc::new(store.clone()),
        audit: Arc::new(fluxolab_postgres::activity_log::PgAudit::new(
            db.pool().clone(),
        )),
        tester: Arc::new(fluxolab_outbound::OutboundTester),
        network: Arc::new(store),
        usage: Arc::new(fluxolab_postgres::workflows::PgWorkflows::new(
            db.pool().clone(),
        )),
        plans: Arc::new(fluxolab_postgres::plans::PgPlanGuard),
        master: Arc::new(MasterKeys::new(
            current.as_bytes(),
            previous.map(str::as_bytes),
        )?),
        clock: Arc::new(SystemClock),
    }))
}

async fn create(
    app: &TestApp,
    account: &Account,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    app.send_as(
        Method::POST,
        &account.access_token,
        "/api/workflows/credentials",
        Some(&account.workspace_id),
        body,
    )
    .await
}

fn smtp(name: &str, password: &str) -> Value {
    json!({"name": name, "kind": "smtp", "data": {
        "host": "smtp.example.com", "port": 587, "username": "mailer", "password": password, "tls_mode": "starttls"}})
}

fn workspace_of(account: &Account) -> Result<WorkspaceId, Error> {
    Ok(WorkspaceId::from_uuid(account.workspace_id.parse()?))
}

async fn resolve_password(
    vault: &VaultService,
    account: &Account,
    id: CredentialId,
) -> Result<Option<String>, Error> {
    let resolved = vault
        .resolve(workspace_of(account)?, id, &[CredentialKind::Smtp], None)
        .await?;
    Ok(resolved.field("password"))
}

#[tokio::test]
async fn a_credential_round_trips_masked_outside_and_whole_inside() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("vault@example.com").await?;
    let secret = "pw-7f3a9c1e5b2d4a68";
    let created = create(&app, &owner, &smtp("Mailer", secret)).await?;
    assert_eq!(created.status(), 201);
    let body = created.text().await?;
    assert!(!body.contains(secret), "the secret came back: {body}");
    let created: Value = serde_json::from_str(&body)?;
    assert_eq!(
        created["data"]["password"],
        json!({"has_value": true, "hint": "••••4a68"})
    );
    assert_eq!(created["data"]["host"], "smtp.example.com");
    assert_eq!(created["key_version"], 1);
    let id: CredentialId = created.text("id")?.parse()?;

    let fetched: Value = app
        .get_as(
            &owner.access_token,
            &format!("/api/workflows/credentials/{id}"),
            Some(&owner.workspace_id),
        )
        .await?
        .json()
        .await?;
    assert_eq!(fetched["data"], created["data"]);

    let server = vault(&app.db, TEST_SECRET, None)?;
    assert_eq!(
        resolve_password(&server, &owner, id).await?.as_deref(),
        Some(secret)
    );
    assert!(matches!(
        server
            .resolve(
                workspace_of(&owner)?,
                id,
                &[CredentialKind::HttpBasic],
                None
            )
            .await,
        Err(ResolveError::WrongKind { .. })
    ));

    let patched = app
        .send_as(
            Method::PATCH,
            &owner.access_token,
            &format!("/api/workflows/credentials/{id}"),
            Some(&owner.workspace_id),
            &json!({"data": {"port": 465, "tls_mode": "tls"}}),
        )
        .await?;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await?;
    assert_eq!(patched["data"]["port"], 465);
    assert_eq!(patched["data"]["password"]["has_value"], true);
    assert_eq!(
        resolve_password(&server, &owner, id).await?.as_deref(),
        Some(secret)
    );

    let activities: Value = app
        .get_as(
            &owner.access_token,
            "/api/workspace/activities?limit=10",
            Some(&owner.workspace_id),
        )
        .await?
        .json()
        .await?;
    let actions: Vec<&str> = activities["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["action"].as_str())
        .collect();
    assert!(actions.contains(&"credential.created"));
    assert!(actions.contains(&"credential.updated"));
    assert!(actions.contains(&"credential.used"));

    let deleted = app
        .send_as(
            Method::DELETE,
            &owner.access_token,
            &format!("/api/workflows/credentials/{id}"),
            Some(&owner.workspace_id),
            &json!({}),
        )
        .await?;
    assert_eq!(deleted.status(), 204);
    assert!(matches!(
        server
            .resolve(workspace_of(&owner)?, id, &[CredentialKind::Smtp], None)
            .await,
        Err(ResolveError::NotFound(_))
    ));
    Ok(())
}

#[tokio::test]
async fn no_secret_is_ever_stored_or_shown_in_plaintext() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("leak@example.com").await?;
    let secrets = [
        "LEAKCHECK-smtp-91827364",
        "LEAKCHECK-token-55aa77bb",
        "LEAKCHECK-generic-0f0f0f0f",
    ];
    let mut bodies = Vec::new();
    for (index, body) in [
        smtp("Mail", secrets[0]),
        json!({"name": "Token", "kind": "bearer_token", "data": {"token": secrets[1]}}),
        json!({"name": "Misc", "kind": "generic", "data": {"api_key": secrets[2]}}),
    ]
    .iter()
    .enumerate()
    {
        let response = create(&app, &owner, body).await?;
        assert_eq!(response.status(), 201, "credential {index}");
        bodies.push(response.text().await?);
    }
    bodies.push(
        app.get_as(
            &owner.access_token,
            "/api/workflows/credentials",
            Some(&owner.workspace_id),
        )
        .await?
        .text()
        .await?,
    );
    bodies.push(
        app.get_as(
            &owner.access_token,
            "/api/workspace/activities",
            Some(&owner.workspace_id),
        )
        .await?
        .text()
        .await?,
    );
    for body in &bodies {
        for secret in secrets {
            assert!(!body.contains(secret), "{secret} appeared in a response");
        }
    }

    let dump = app.pg_dump_data().await?;
    assert!(
        dump.contains("LEAKCHECK") || dump.contains("credentials"),
        "the dump has the credential rows"
    );
    for secret in secrets {
        assert!(!dump.contains(secret), "{secret} is stored in plaintext");
    }
    Ok(())
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_or_workspace_does_not_open() -> TestResult {
    let app = TestApp::spawn().await?;
    let alice = app.signed_up("tamper-a@example.com").await?;
    let bob = app.signed_up("tamper-b@example.com").await?;
    let id_of = |value: &Value| -> Result<CredentialId, Error> { Ok(value.text("id")?.parse()?) };
    let first = id_of(
        &create(&app, &alice, &smtp("One", "first-secret-1234"))
            .await?
            .json()
            .await?,
    )?;
    let second = id_of(
        &create(&app, &alice, &smtp("Two", "second-secret-5678"))
            .await?
            .json()
            .await?,
    )?;
    let foreign = id_of(
        &create(&app, &bob, &smtp("Bob's", "bobs-secret-9012"))
            .await?
            .json()
            .await?,
    )?;

    use diesel_async::RunQueryDsl;
    let mut connection = app.db.pool().get().await?;
    for target in [second, foreign] {
        diesel::sql_query(
            "UPDATE credentials SET secret_nonce = source.secret_nonce, secret_ciphertext = source.secret_ciphertext \
             FROM credentials AS source WHERE source.id = $1 AND credentials.id = $2",
        )
        .bind::<diesel::sql_types::Uuid, _>(first.as_uuid())
        .bind::<diesel::sql_types::Uuid, _>(target.as_uuid())
        .execute(&mut connection)
        .await?;
    }
    drop(connection);

    let server = vault(&app.db, TEST_SECRET, None)?;
    assert_eq!(
        resolve_password(&server, &alice, first).await?.as_deref(),
        Some("first-secret-1234")
    );
    for (account, id) in [(&alice, second), (&bob, foreign)] {
        let outcome = server
            .resolve(workspace_of(account)?, id, &[CredentialKind::Smtp], None)
            .await;
        let Err(ResolveError::Unreadable { reason, .. }) = outcome else {
            panic!("a moved ciphertext opened: {outcome:?}");
        };
        assert!(
            reason.contains("altered or belongs to another record"),
            "{reason}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_master_secret_rotates_without_a_secret_becoming_unreadable() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("rotate@example.com").await?;
    let workspace = workspace_of(&owner)?;
    // The world before the rotation: the workspace's key wrapped by OLD_SECRET, and a
    // credential sealed under it.
    {
        use diesel_async::RunQueryDsl;
        diesel::sql_query("DELETE FROM workspace_data_keys")
            .execute(&mut app.db.pool().get().await?)
            .await?;
    }
    let old = vault(&app.db, OLD_SECRET, None)?;
    let principal = fluxolab_kernel::Principal::new(
        fluxolab_kernel::Actor::User(fluxolab_kernel::UserId::from_uuid(owner.id.parse()?)),
        workspace,
        fluxolab_workspace::Role::Owner.grants(),
    );
    let record = old
        .create(
            &principal,
            fluxolab_credentials::service::NewCredential {
                name: "Legacy".into(),
                kind: "bearer_token".into(),
                data: serde_json::from_value(json!({"token": "legacy-token-abcdef"}))?,
            },
        )
        .await?;
    let resolve = |vault: VaultService| async move {
        vault
            .resolve(workspace, record.id, &[CredentialKind::BearerToken], None)
            .await
            .map(|resolved| resolved.field("token"))
    };

    // New secret alone cannot read it; with the old one as previous it can.
    assert!(matches!(
        resolve(vault(&app.db, TEST_SECRET, None)?).await,
        Err(ResolveError::Unreadable { .. })
    ));
    assert_eq!(
        resolve(vault(&app.db, TEST_SECRET, Some(OLD_SECRET))?)
            .await?
            .as_deref(),
        Some("legacy-token-abcdef")
    );

    let keys = PgVault::new(app.db.pool().clone());
    let rotating = MasterKeys::new(TEST_SECRET.as_bytes(), Some(OLD_SECRET.as_bytes()))?;
    let first = rewrap_all_data_keys(&keys, &rotating).await?;
    assert_eq!(first.rewrapped, 1);
    let second = rewrap_all_data_keys(&keys, &rotating).await?;
    assert_eq!(
        (second.rewrapped, second.already_current),
        (0, 1),
        "idempotent"
    );

    assert_eq!(
        resolve(vault(&app.db, TEST_SECRET, None)?)
            .await?
            .as_deref(),
        Some("legacy-token-abcdef"),
        "readable with the old secret gone"
    );
    Ok(())
}

#[tokio::test]
async fn an_interrupted_data_key_rotation_finishes_on_the_next_call() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("dek@example.com").await?;
    let workspace = workspace_of(&owner)?;
    let mut ids = Vec::new();
    for index in 0..3 {
        let created: Value = create(
            &app,
            &owner,
            &smtp(
                &format!("Mailer {index}"),
                &format!("secret-number-{index}"),
            ),
        )
        .await?
        .json()
        .await?;
        ids.push(created.text("id")?.parse::<CredentialId>()?);
    }
    // The first step of a rotation, then the process dies: a new key is active and no
    // row has been re-sealed yet.
    let master = MasterKeys::new(TEST_SECRET.as_bytes(), None)?;
    let store = PgVault::new(app.db.pool().clone());
    let interrupted = StoredDataKey {
        id: DataKeyId::new(),
        workspace_id: workspace,
        version: 2,
        wrapped: DataKey::generate()?.wrap(&master, workspace)?,
    };
    assert!(store.activate(&interrupted).await?);
    let server = vault(&app.db, TEST_SECRET, None)?;
    for (index, id) in ids.iter().enumerate() {
        assert_eq!(
            resolve_password(&server, &owner, *id).await?,
            Some(format!("secret-number-{index}")),
            "readable mid-rotation"
        );
    }

    let empty = json!({});
    let rotate = || {
        app.send_as(
            Method::POST,
            &owner.access_token,
            "/api/settings/security/rotate-data-key",
            Some(&owner.workspace_id),
            &empty,
        )
    };
    let finished: Value = rotate().await?.json().await?;
    assert_eq!(
        finished,
        json!({"key_version": 2, "new_key": false, "resealed": 3})
    );
    let again: Value = rotate().await?.json().await?;
    assert_eq!(
        again,
        json!({"key_version": 3, "new_key": true, "resealed": 3})
    );
    for (index, id) in ids.iter().enumerate() {
        assert_eq!(
            resolve_password(&server, &owner, *id).await?,
            Some(format!("secret-number-{index}"))
        );
    }
    let listed: Value = app
        .get_as(
            &owner.access_token,
            "/api/workflows/credentials",
            Some(&owner.workspace_id),
        )
        .await?
        .json()
        .await?;
    assert!(
        listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|item| item["key_version"] == 3)
    );
    Ok(())
}

#[tokio::test]
async fn other_workspaces_credentials_do_not_exist_and_viewers_only_read() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("keeper@example.com").await?;
    let outsider = app.signed_up("outsider@example.com").await?;
    let viewer = app.signed_up("looker@example.com").await?;
    let created: Value = create(&app, &owner, &smtp("Private", "private-secret-777"))
        .await?
        .json()
        .await?;
    let path = format!("/api/workflows/credentials/{}", &created.text("id")?);

    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let response = app
            .send_as(
                method.clone(),
                &outsider.access_token,
                &path,
                Some(&outsider.workspace_id),
                &json!({"name": "x"}),
            )
            .await?;
        assert_eq!(
            response.status(),
            404,
            "{method} in the outsider's own workspace"
        );
        let response = app
            .send_as(
                method.clone(),
                &outsider.access_token,
                &path,
                Some(&owner.workspace_id),
                &json!({"name": "x"}),
            )
            .await?;
        assert_eq!(
            response.status(),
            404,
            "{method} naming the owner's workspace"
        );
    }

    // Server-side, too: resolving it in another workspace finds nothing.
    let id: CredentialId = created.text("id")?.parse()?;
    let server = vault(&app.db, TEST_SECRET, None)?;
    assert!(matches!(
        server
            .resolve(workspace_of(&outsider)?, id, &[CredentialKind::Smtp], None)
            .await,
        Err(ResolveError::NotFound(_))
    ));

    app.send_as(
        Method::POST,
        &owner.access_token,
        "/api/workspace/members",
        Some(&owner.workspace_id),
        &json!({"email": "looker@example.com", "role": "viewer"}),
    )
    .await?;
    let list = app
        .get_as(
            &viewer.access_token,
            "/api/workflows/credentials",
            Some(&owner.workspace_id),
        )
        .await?;
    assert_eq!(list.status(), 200);
    let create_as_viewer = create(
        &app,
        &Account {
            workspace_id: owner.workspace_id.clone(),
            ..viewer.clone()
        },
        &smtp("Nope", "viewer-secret-000"),
    )
    .await?;
    assert_eq!(create_as_viewer.status(), 403);
    for method in [Method::PATCH, Method::DELETE] {
        let response = app
            .send_as(
                method.clone(),
                &viewer.access_token,
                &path,
                Some(&owner.workspace_id),
                &json!({"name": "x"}),
            )
            .await?;
        assert_eq!(response.status(), 403, "{method} as a viewer");
    }
    Ok(())
}

#[tokio::test]
async fn bad_credentials_name_the_field_and_write_nothing() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("strict@example.com").await?;
    let cases = [
        (json!({"name": "X", "kind": "ftp", "data": {}}), "kind"),
        (
            json!({"name": "X", "kind": "http_basic", "data": {"username": "u"}}),
            "data.password",
        ),
        (
            json!({"name": "X", "kind": "smtp", "data": {"host": "h", "port": "25", "tls_mode": "none"}}),
            "data.port",
        ),
        (
            json!({"name": "", "kind": "bearer_token", "data": {"token": "t"}}),
            "name",
        ),
        (
            json!({"name": "X", "kind": "bearer_token", "data": {"token": 5}}),
            "data.token",
        ),
        (
            json!({"name": "X", "kind": "bearer_token", "data": "token"}),
            "data",
        ),
    ];
    for (body, field) in cases {
        let response = create(&app, &owner, &body).await?;
        assert_eq!(response.status(), 422, "{body}");
        let problem: Value = response.json().await?;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|error| error["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
    }
    assert_eq!(app.count("credentials").await?, 0);
    let types: Value = app
        .get_as(
            &owner.access_token,
            "/api/workflows/credentials/types",
            Some(&owner.workspace_id),
        )
        .await?
        .json()
        .await?;
    assert_eq!(types.as_array().map(Vec::len), Some(6));
    Ok(())
}
