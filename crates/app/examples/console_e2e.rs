//! `cargo xtask e2e`: the web console end to end in a real browser.
//!
//! Starts the application as `fluxolab serve` does (API, workers, the console embedded in
//! this build) on a fresh `TestDb` with its reference data and a free port, then runs the
//! console's Playwright tests (`console/e2e/`, Debian's Chromium) against it with
//! `FLUXOLAB_URL`. Exits with Playwright's exit code. Needs `TEST_DATABASE_URL` (as
//! `cargo xtask test` does) and a built console (`cargo xtask console`); extra arguments
//! go to `playwright test`.

#![allow(clippy::print_stderr)]

use std::path::Path;
use std::process::ExitCode;

use fluxolab_console::Console;

#[path = "support/scratch_server.rs"]
mod scratch_server;

use scratch_server::{Error, ScratchServer};

const SECRET: &str = "console-e2e-secret-console-e2e-secret";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("console-e2e: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<u8, Error> {
    if !Console.is_built() {
        return Err("this build embeds no console: run `cargo xtask console` first".into());
    }
    let server = ScratchServer::start(SECRET).await?;
    let address = server.address.clone();

    let console = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../console");
    eprintln!("console-e2e: server at {address}, running playwright");
    let status = tokio::process::Command::new(console.join("node_modules/.bin/playwright"))
        .current_dir(&console)
        .arg("test")
        .args(std::env::args().skip(1))
        .env("FLUXOLAB_URL", &address)
        .status()
        .await
        .map_err(|error| format!("could not run playwright (npm ci in console/?): {error}"))?;
    server.stop();
    Ok(status
        .code()
        .map_or(1, |code| u8::try_from(code).unwrap_or(1)))
}
