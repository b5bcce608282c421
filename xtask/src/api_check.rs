//! `cargo xtask api-check`: schemathesis against a server on a fresh test database.
//!
//! Installs schemathesis at [`SCHEMATHESIS_VERSION`] into a virtualenv under
//! `.fluxolab/schemathesis` (reused while it holds that version), finds a database server
//! as `cargo xtask test` does, and runs the `api_check` example of `fluxolab-app`, which
//! starts the application on a `TestDb`, signs in and runs `st run` with the checks. The
//! exit code is schemathesis's.

use std::path::PathBuf;

use crate::discovery;
use crate::process;
use crate::venv::Tool;

/// The schemathesis release the check is pinned to.
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

pub fn run(extra: &[String]) -> Result<u8, String> {
    let st = install()?;
    let server = discovery::test_server()?;
    eprintln!("xtask: api-check against {}", server.description);
    let mut command = process::cargo();
    command
        .args([
            "run",
            "--quiet",
            "--package",
            "fluxolab-app",
            "--example",
            "api_check",
            "--",
        ])
        .args(extra)
        .env("TEST_DATABASE_URL", &server.url)
        .env("SCHEMATHESIS", &st);
    process::status_code(&mut command)
}

/// The `st` executable of the pinned schemathesis, installed when missing.
fn install() -> Result<PathBuf, String> {
    Tool {
        dir: "schemathesis",
        package: "schemathesis",
        extras: "",
        version: SCHEMATHESIS_VERSION,
        executable: "st",
    }
    .install()
}
