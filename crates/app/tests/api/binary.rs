//! The `fluxolab` binary itself: configuration errors and signals.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fluxolab_postgres::TestDb;

use crate::TestResult;
use crate::helpers::TEST_SECRET;

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

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut up = false;
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            up = response.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server never answered /healthz");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill()?;
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status.is_some_and(|status| status.success()),
        "exit: {status:?}"
    );
    Ok(())
}
