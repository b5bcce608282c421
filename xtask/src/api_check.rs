//! `cargo xtask api-check`: schemathesis against a server on a fresh test database.
//!
//! Installs schemathesis at [`SCHEMATHESIS_VERSION`] into a virtualenv under
//! `.fluxolab/schemathesis` (reused while it holds that version), finds a database server
//! as `cargo xtask test` does, and runs the `api_check` example of `fluxolab-app`, which
//! starts the application on a `TestDb`, signs in and runs `st run` with the checks. The
//! exit code is schemathesis's.

use std::path::PathBuf;
use std::process::Command;

use crate::discovery;
use crate::process::{self, project_root};

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
    let venv = project_root().join(".fluxolab").join("schemathesis");
    let st = venv.join("bin").join("st");
    let python = venv.join("bin").join("python");
    let installed = Command::new(&python)
        .args(["-m", "pip", "show", "schemathesis"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .is_some_and(|shown| {
            shown
                .lines()
                .any(|line| line.trim() == format!("Version: {SCHEMATHESIS_VERSION}"))
        });
    if installed && st.exists() {
        return Ok(st);
    }
    eprintln!(
        "xtask: installing schemathesis {SCHEMATHESIS_VERSION} into {}",
        venv.display()
    );
    process::checked_output(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    process::checked_output(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("schemathesis=={SCHEMATHESIS_VERSION}"),
    ]))?;
    Ok(st)
}
