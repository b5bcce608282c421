//! No secret value or credential shows in what the client lets out: failures (`{}` and
//! `{:?}`), probe reports, connections, values' `Debug`, and every log line at TRACE.

use std::io::Write;
use std::sync::{Arc, Mutex};

use fluxolab_kernel::{SecretStoreClient, StoreConnection, StoreKind};
use fluxolab_outbound::testing::Moto;
use serde_json::json;

use crate::vault_stand_in::{ROLE_ID, ROOT_TOKEN, SECRET_ID, VaultStandIn};
use crate::{
    ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, TestResult, app_role, aws_connection,
    stores_on_a_manual_clock, token, vault_connection,
};

const VAULT_VALUE: &str = "v4ult-value-never-shown";
const AWS_VALUE: &str = "aws-value-never-shown";
const WRONG_TOKEN: &str = "hvs.wr0ng-t0ken-never-shown";
const WRONG_SECRET_ID: &str = "wr0ng-secret-id-never-shown";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEJr-session-never-shown";

/// Every line written by the tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut lines) = self.0.lock() {
            lines.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn shown<T: std::fmt::Debug>(seen: &mut Vec<String>, value: &T) {
    seen.push(format!("{value:?}"));
}

#[tokio::test]
async fn failures_reports_connections_and_logs_show_no_value_or_credential() -> TestResult {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let logging = tracing::subscriber::set_default(subscriber);

    let (stores, clock) = stores_on_a_manual_clock()?;
    // This stand-in quotes the credentials it was sent in its errors, as no Vault does:
    // the client must scrub them.
    let vault = VaultStandIn::start_echoing(clock)?;
    vault.put(
        "",
        "secret",
        "db",
        json!({ "password": VAULT_VALUE, "user": "app" }),
    )?;
    let mut seen = Vec::new();
    let mut connections: Vec<StoreConnection> = vec![
        vault_connection(vault.address(), Some("team-a"), token(ROOT_TOKEN)),
        vault_connection(vault.address(), None, token(ROOT_TOKEN)),
        vault_connection(vault.address(), None, token(WRONG_TOKEN)),
        vault_connection(vault.address(), None, app_role(ROLE_ID, SECRET_ID)),
        vault_connection(vault.address(), None, app_role(ROLE_ID, WRONG_SECRET_ID)),
    ];
    let moto = Moto::start().await?;
    if let Some(moto) = &moto {
        let api = moto.api(REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY);
        api.create_secret("db", &json!({ "password": AWS_VALUE }).to_string())
            .await?;
        connections.push(aws_connection(
            moto.endpoint(),
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
        ));
        let mut with_session = aws_connection(moto.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY);
        if let StoreKind::AwsSecretsManager { session_token, .. } = &mut with_session.kind {
            *session_token = Some(SESSION_TOKEN.to_owned().into());
        }
        connections.push(with_session);
    }
    for connection in &connections {
        shown(&mut seen, connection);
        shown(&mut seen, &connection.kind);
        for key in [None, Some("password"), Some("absent")] {
            match stores.resolve(connection, "db", key).await {
                Ok(value) => shown(&mut seen, &value),
                Err(failure) => {
                    seen.push(failure.to_string());
                    shown(&mut seen, &failure);
                }
            }
        }
        match stores.read(connection, "missing/path").await {
            Ok(value) => shown(&mut seen, &value),
            Err(failure) => seen.push(failure.to_string()),
        }
        for probe in [None, Some("db")] {
            match stores.probe(connection, probe).await {
                Ok(report) => {
                    seen.push(report.detail.clone());
                    shown(&mut seen, &report);
                }
                Err(failure) => seen.push(failure.to_string()),
            }
        }
    }
    drop(logging);
    let logs = captured
        .0
        .lock()
        .map(|lines| lines.clone())
        .unwrap_or_default();
    seen.push(String::from_utf8_lossy(&logs).into_owned());

    let all = seen.join("\n");
    for forbidden in [
        VAULT_VALUE,
        AWS_VALUE,
        ROOT_TOKEN,
        WRONG_TOKEN,
        ROLE_ID,
        SECRET_ID,
        WRONG_SECRET_ID,
        SECRET_ACCESS_KEY,
        ACCESS_KEY_ID,
        SESSION_TOKEN,
    ] {
        assert!(!all.contains(forbidden), "`{forbidden}` shown in:\n{all}");
    }
    // The scenarios ran: refusals were reported (scrubbed) and something was logged.
    assert!(
        all.contains("permission denied for token [REDACTED]"),
        "{all}"
    );
    assert!(
        all.contains("invalid role or secret ID: [REDACTED]/[REDACTED]"),
        "{all}"
    );
    assert!(all.contains("secret store probed"), "{all}");
    if moto.is_some() {
        assert!(all.contains("key `absent` is not in the secret"), "{all}");
    }
    Ok(())
}
