//! The `fluxolab` binary itself: configuration errors and signals.

use std::process::{Command, Stdio};
use std::time::Duration;

use fluxolab_postgres::TestDb;

use crate::TestResult;
use crate::helpers::{Fields, TEST_SECRET, exit_of, healthz_answered};

fn fluxolab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fluxolab"));
    // A directory without a .env, and none of the caller's settings.
    command.current_dir(std::env::temp_dir());
    for variable in [
        "DATABASE_URL",
        "APP_SECRET",
        "JWT_SECRET",
        "BIND_ADDR",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        command.env_remove(variable);
    }
    command
}

#[test]
fn serve_reports_every_bad_setting_and_exits_without_starting() -> TestResult {
    let output = fluxolab()
        .args(["serve"])
        .env("APP_SECRET", "short")
        .env("DATABASE_URL", "definitely not a url")
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("APP_SECRET: must be at least 32 bytes"),
        "{stderr}"
    );
    assert!(
        stderr.contains("DATABASE_URL: is not a valid URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() -> TestResult {
    let db = TestDb::new().await?;
    fluxolab_postgres::seed::seed_reference_data(&mut *db.pool().get().await?).await?;
    let port = free_port()?;
    let mut child = fluxolab()
        .args(["serve", "--no-workers"])
        .env("DATABASE_URL", db.url())
        .env("APP_SECRET", TEST_SECRET)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("HTTP_WORKERS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;

    let up = healthz_answered(&format!("http://127.0.0.1:{port}")).await?;
    assert_eq!(up, 200, "the server never answered /healthz");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    let status = exit_of(&mut child, Duration::from_secs(20)).await?;
    if status.is_none() {
        child.kill()?;
    }
    assert!(
        status.is_some_and(|status| status.success()),
        "exit: {status:?}"
    );
    Ok(())
}

/// Starts `fluxolab serve` on `db` with every log line at TRACE going to `log`.
fn serve_logging_to(
    db: &TestDb,
    log: &std::path::Path,
) -> Result<(std::process::Child, u16), Box<dyn std::error::Error + Send + Sync>> {
    let port = free_port()?;
    let child = fluxolab()
        .args(["serve", "--no-workers"])
        .env("DATABASE_URL", db.url())
        .env("APP_SECRET", TEST_SECRET)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("HTTP_WORKERS", "1")
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "trace")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    Ok((child, port))
}

/// The real binary serving `db` with every log line at TRACE going to a file.
pub(crate) struct LoggedServer {
    child: std::process::Child,
    log: std::path::PathBuf,
    /// `http://127.0.0.1:{port}`.
    pub base: String,
}

impl LoggedServer {
    /// Starts `fluxolab serve --no-workers` on `db` and waits until it answers.
    pub(crate) async fn start(
        db: &TestDb,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let log = std::env::temp_dir().join(format!("fluxolab-log-{}.jsonl", uuid::Uuid::new_v4()));
        let (child, port) = serve_logging_to(db, &log)?;
        let server = Self {
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
        };
        healthz_answered(&server.base).await?;
        Ok(server)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 20 s) and returns everything it
    /// logged.
    pub(crate) async fn stop(mut self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        exit_of(&mut self.child, Duration::from_secs(20)).await?;
        let _ = self.child.kill();
        let logged = std::fs::read_to_string(&self.log)?;
        let _ = std::fs::remove_file(&self.log);
        Ok(logged)
    }
}

#[tokio::test]
async fn no_secret_reaches_a_log_line_even_at_trace_level() -> TestResult {
    use serde_json::{Value, json};

    let db = TestDb::new().await?;
    fluxolab_postgres::seed::seed_reference_data(&mut *db.pool().get().await?).await?;
    let server = LoggedServer::start(&db).await?;
    let base = server.base.clone();
    let client = reqwest::Client::new();

    let password = "LOGCHECK-login-password-0001";
    let secrets = [
        "LOGCHECK-smtp-secret-2222",
        "LOGCHECK-bearer-secret-3333",
        "LOGCHECK-vault-token-4444",
        "LOGCHECK-aws-secret-key-5555",
    ];
    client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "logs@example.com", "password": password, "display_name": "Logs"}))
        .send()
        .await?;
    let tokens: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "logs@example.com", "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let access = &tokens.text("access_token")?;
    for body in [
        json!({"name": "Mail", "kind": "smtp", "data": {"host": "mail.example.com", "port": 25, "password": secrets[0], "tls_mode": "none"}}),
        json!({"name": "Token", "kind": "bearer_token", "data": {"token": secrets[1]}}),
    ] {
        let created: Value = client
            .post(format!("{base}/api/workflows/credentials"))
            .bearer_auth(access)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        // Opening the secret server-side (a test against a refused internal target).
        client
            .post(format!(
                "{base}/api/workflows/credentials/{}/test",
                &created.text("id")?
            ))
            .bearer_auth(access)
            .json(&json!({"url": "http://127.0.0.1:9/"}))
            .send()
            .await?;
    }
    // Secret providers: their credentials sealed, opened for a test (refused internal
    // targets), and replaced.
    for body in [
        json!({"name": "vault-logs", "kind": "vault", "config": {"address": "http://127.0.0.1:9"},
               "credentials": {"token": secrets[2]}}),
        json!({"name": "aws-logs", "kind": "aws_secrets_manager",
               "config": {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"},
               "credentials": {"access_key_id": "AKIDLOGCHECK", "secret_access_key": secrets[3]}}),
    ] {
        let created: Value = client
            .post(format!("{base}/api/settings/secret-providers"))
            .bearer_auth(access)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let provider = format!(
            "{base}/api/settings/secret-providers/{}",
            created.text("id")?
        );
        let tested = client
            .post(format!("{provider}/test"))
            .bearer_auth(access)
            .json(&json!({"probe": "app/secret"}))
            .send()
            .await?;
        assert_eq!(tested.status(), 200);
        client
            .patch(&provider)
            .bearer_auth(access)
            .json(&json!({"credentials": body["credentials"]}))
            .send()
            .await?;
    }
    let logged = server.stop().await?;
    assert!(
        logged.contains("/api/workflows/credentials")
            && logged.contains("/api/settings/secret-providers"),
        "the requests were logged"
    );
    for secret in secrets.iter().chain([&password]) {
        assert!(!logged.contains(secret), "{secret} reached the log");
    }
    Ok(())
}

#[tokio::test]
async fn keys_rotate_rewraps_under_the_new_secret_once() -> TestResult {
    use fluxolab_credentials::envelope::{DataKey, MasterKeys};
    use fluxolab_credentials::model::StoredDataKey;
    use fluxolab_credentials::ports::DataKeyRepository;

    let db = TestDb::new().await?;
    fluxolab_postgres::seed::seed_reference_data(&mut *db.pool().get().await?).await?;
    // A workspace whose data key is wrapped by the old master secret.
    let old_secret = "the-previous-master-secret-0123456789";
    let workspace = fluxolab_kernel::WorkspaceId::new();
    {
        use diesel_async::RunQueryDsl;
        diesel::sql_query("INSERT INTO workspaces (id, name, slug) VALUES ($1, 'Old', 'old')")
            .bind::<diesel::sql_types::Uuid, _>(workspace.as_uuid())
            .execute(&mut *db.pool().get().await?)
            .await?;
    }
    let old = MasterKeys::new(old_secret.as_bytes(), None)?;
    let stored = StoredDataKey {
        id: fluxolab_credentials::model::DataKeyId::new(),
        workspace_id: workspace,
        version: 1,
        wrapped: DataKey::generate()?.wrap(&old, workspace)?,
    };
    let vault = fluxolab_postgres::vault::PgVault::new(db.pool().clone());
    assert!(vault.activate(&stored).await?);

    let rotate = || {
        fluxolab()
            .args(["keys", "rotate"])
            .env("DATABASE_URL", db.url())
            .env("APP_SECRET", TEST_SECRET)
            .env("APP_SECRET_PREVIOUS", old_secret)
            .output()
    };
    let first = rotate()?;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("re-wrapped 1 data key(s)"));
    let second = rotate()?;
    assert!(String::from_utf8_lossy(&second.stdout).contains("re-wrapped 0 data key(s)"));

    let current = MasterKeys::new(TEST_SECRET.as_bytes(), None)?;
    let rewrapped = vault
        .find(workspace, stored.id)
        .await?
        .ok_or("the key is gone")?;
    assert_eq!(rewrapped.wrapped.kek_id, current.current().id());
    assert!(DataKey::unwrap(&current, workspace, &rewrapped.wrapped).is_ok());
    Ok(())
}

/// A `fluxolab worker` process on `db`, killed when dropped.
struct WorkerProcess(std::process::Child);

impl WorkerProcess {
    /// Its ops routes on `port` (0: any free one).
    fn start(db: &TestDb, port: u16) -> std::io::Result<Self> {
        fluxolab()
            .args(["worker"])
            .env("DATABASE_URL", db.url())
            .env("APP_SECRET", TEST_SECRET)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("WORKERS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Self)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_respond_node_webhook_is_answered_by_a_run_in_another_process() -> TestResult {
    // The API runs no workers: the run executes in the `fluxolab worker` process, and
    // its answer reaches the waiting request through the database.
    let app = crate::helpers::TestApp::spawn_api_only().await?;
    let owner = app.signed_up("far-reply@example.com").await?;
    let (url, secret) = crate::webhooks::echo_hook(&app, &owner).await?;
    let _worker = WorkerProcess::start(&app.db, 0)?;
    crate::webhooks::echo_answers(&app, &url, &secret).await
}

#[tokio::test]
async fn a_migrated_database_serves_its_first_registration() -> TestResult {
    // The test database has every migration but no reference data, as a deployment
    // that ran the migrations some other way would.
    let db = TestDb::new().await?;
    let port = free_port()?;
    let serve = |port: u16| {
        let mut command = fluxolab();
        command
            .args(["serve", "--no-workers"])
            .env("DATABASE_URL", db.url())
            .env("APP_SECRET", TEST_SECRET)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("HTTP_WORKERS", "1");
        command
    };
    let refused = serve(port).output()?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("lacks its reference data") && stderr.contains("fluxolab migrate"),
        "{stderr}"
    );

    let migrated = fluxolab()
        .args(["migrate"])
        .env("DATABASE_URL", db.url())
        .output()?;
    let stdout = String::from_utf8_lossy(&migrated.stdout);
    assert!(migrated.status.success(), "{stdout}");
    assert!(stdout.contains("reference data: "), "{stdout}");

    // Pretty logs (the default) into a pipe: no colour codes.
    let mut child = serve(port)
        .env("LOG_FORMAT", "pretty")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    healthz_answered(&base).await?;
    let registered = client
        .post(format!("{base}/api/auth/register"))
        .json(&serde_json::json!({
            "email": "first@example.com",
            "password": crate::helpers::PASSWORD,
            "display_name": "First"
        }))
        .send()
        .await?;
    let status = registered.status();
    let _ = child.kill();
    let logged = String::from_utf8_lossy(&child.wait_with_output()?.stderr).into_owned();
    assert_eq!(status, 201, "{}", registered.text().await?);
    assert!(logged.contains("FluxoLab is listening"), "{logged}");
    assert!(
        !logged.contains('\u{1b}'),
        "no ANSI escapes off a terminal: {logged}"
    );
    Ok(())
}

#[tokio::test]
async fn a_worker_process_serves_health_and_the_metrics_of_its_runs() -> TestResult {
    use serde_json::json;

    use crate::helpers::wait_finished;

    let app = crate::helpers::TestApp::spawn_api_only().await?;
    let owner = app.signed_up("worker-metrics@example.com").await?;
    let workflow = crate::queue::active_workflow(&app, &owner, None).await?;
    let (status, queued) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{workflow}/run"),
            &json!({"payload": {"n": 1}}),
        )
        .await?;
    assert_eq!(status, 202, "{queued}");
    let execution = queued["execution_id"].as_str().ok_or("no execution id")?;

    let port = free_port()?;
    let _worker = WorkerProcess::start(&app.db, port)?;
    let finished = wait_finished(&app, &owner, execution).await?;
    assert_eq!(finished["status"], "succeeded", "{finished}");

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(format!("{base}/healthz")).send().await?.status(),
        200
    );
    assert_eq!(
        client.get(format!("{base}/readyz")).send().await?.status(),
        200
    );
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(r#"executions_settled_total{status="succeeded"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("execution_step_duration_seconds"),
        "{metrics}"
    );
    assert_eq!(
        client
            .get(format!("{base}/api/workflows"))
            .send()
            .await?
            .status(),
        404,
        "a worker serves no API"
    );
    Ok(())
}
