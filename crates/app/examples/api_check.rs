//! `cargo xtask api-check`: the OpenAPI document checked against the server it describes
//! by schemathesis, a property-based API client.
//!
//! Starts the application as `fluxolab serve` does on a fresh `TestDb` (seeded reference
//! data, a free port), registers a user and logs in, then runs schemathesis (the `st`
//! executable named by `SCHEMATHESIS`, which `cargo xtask api-check` installs at a pinned
//! version) against `/api/openapi.json` with the bearer token, the checks
//! `not_a_server_error`, `response_schema_conformance`, `positive_data_acceptance` and
//! `negative_data_rejection`, and every phase (examples, coverage, fuzzing and the
//! stateful phase, which follows the document's links), `X-Workspace-Id` mostly taking
//! the user's workspace ([`with_workspace`]); then the stateful phase again, in a new
//! workspace, on the operations in a workspace alone ([`OUTSIDE_WORKSPACES`] says why).
//! Exits with schemathesis's first failing exit code. Needs `TEST_DATABASE_URL` (as
//! `cargo xtask test` does).
//!
//! `API_CHECK_MAX_EXAMPLES` (default 20) bounds the examples per operation,
//! `API_CHECK_SEED` (default 1) fixes the random seed; extra arguments go to `st run`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use serde_json::{Value, json};

#[path = "support/scratch_server.rs"]
mod scratch_server;

use scratch_server::{Error, ScratchServer};

const SECRET: &str = "api-check-secret-api-check-secret!!";
const EMAIL: &str = "api-check@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// Which operations may answer what beyond their schemas, each with its reason.
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/api_check.toml");

/// The operations outside a workspace: the account's (`/api/auth/*`, `/api/users/*`,
/// `/api/workspaces*`) and the public intake's, which take no `X-Workspace-Id`.
///
/// schemathesis (4.32) starts a stateful scenario only at an operation none of whose
/// inputs names a resource no operation creates, while there is one; it reads
/// `X-Workspace-Id` as naming an `XWorkspace` resource, so while these operations are in
/// the run, no operation in a workspace starts a scenario and their links are not
/// followed. A second, stateful-only run leaves these out: then every creating or listing
/// operation in a workspace starts scenarios.
const OUTSIDE_WORKSPACES: &str = "^/api/(auth/|users/|workspaces)|^/api/webhooks/in/";

const CHECKS: &str = "not_a_server_error,response_schema_conformance,positive_data_acceptance,negative_data_rejection";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("api-check: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<u8, Error> {
    let schemathesis = std::env::var("SCHEMATHESIS")
        .map_err(|_| "SCHEMATHESIS (the `st` executable) is required")?;
    let max_examples = std::env::var("API_CHECK_MAX_EXAMPLES").unwrap_or_else(|_| "20".into());
    let seed = std::env::var("API_CHECK_SEED").unwrap_or_else(|_| "1".into());

    let server = ScratchServer::start(SECRET).await?;
    let address = server.address.clone();

    let (token, workspace) = sign_in(&address).await?;
    eprintln!("api-check: server at {address}, running {schemathesis}");
    let extra: Vec<String> = std::env::args().skip(1).collect();
    // schemathesis keeps a cache in its working directory: not in the checkout.
    let workdir = std::env::temp_dir().join("fluxolab-api-check");
    std::fs::create_dir_all(&workdir)?;
    let static_config = std::fs::read_to_string(CONFIG)?;
    let config = workdir.join("api_check.toml");
    std::fs::write(&config, with_workspace(&static_config, &workspace))?;
    let run = |config: &std::path::Path, phases: &[&str]| {
        tokio::process::Command::new(&schemathesis)
            .current_dir(&workdir)
            .arg("--config-file")
            .arg(config)
            .arg("run")
            .arg(format!("{address}/api/openapi.json"))
            .args(["--checks", CHECKS])
            .args(["--max-examples", &max_examples])
            .args(["--seed", &seed])
            // One worker: with several threads, CPython 3.11 (before 3.11.8) may fail
            // hypothesis's `ast.parse` with "AST constructor recursion depth mismatch"
            // (python/cpython#106905). About 80 s of checks on two cores.
            .args(["--workers", "1"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--no-color"])
            .args(phases)
            .args(&extra)
            .status()
    };
    let mut code = exit_code(
        run(&config, &[])
            .await
            .map_err(|error| format!("could not run {schemathesis}: {error}"))?,
    );
    if !extra
        .iter()
        .any(|argument| argument.starts_with("--phases"))
    {
        // In a new workspace: the first run leaves the plan's limits reached.
        let fresh = create_workspace(&address, &token).await?;
        let fresh_config = workdir.join("api_check_fresh_workspace.toml");
        std::fs::write(&fresh_config, with_workspace(&static_config, &fresh))?;
        eprintln!(
            "api-check: the stateful phase again in a new workspace, without {OUTSIDE_WORKSPACES}"
        );
        let second = run(
            &fresh_config,
            &[
                "--phases",
                "stateful",
                "--exclude-path-regex",
                OUTSIDE_WORKSPACES,
            ],
        )
        .await
        .map_err(|error| format!("could not run {schemathesis}: {error}"))?;
        if code == 0 {
            code = exit_code(second);
        }
    }
    server.stop();
    Ok(code)
}

/// schemathesis's exit code (1 when it has none).
fn exit_code(status: std::process::ExitStatus) -> u8 {
    status
        .code()
        .map_or(1, |code| u8::try_from(code).unwrap_or(1))
}

/// [`CONFIG`] with the checking user's workspace as the value `X-Workspace-Id` takes in
/// most cases that follow the document (the others leave the header out — the token's
/// workspace — or send a random id, another workspace: 404), so that those requests
/// reach the operation rather than the membership check.
fn with_workspace(config: &str, workspace: &str) -> String {
    format!(
        "{config}
# Added by api_check.rs: the signed-in user's workspace.
[dictionaries.workspace]
values = [\"{workspace}\"]

[parameters]
\"header.X-Workspace-Id\" = {{ dictionary = \"workspace\", probability = 0.8 }}
"
    )
}

/// Registers the checking user and returns an access token and the user's workspace.
async fn sign_in(address: &str) -> Result<(String, String), Error> {
    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{address}/api/auth/register"))
        .json(&json!({"email": EMAIL, "password": PASSWORD, "display_name": "API check"}))
        .send()
        .await?;
    if !registered.status().is_success() {
        return Err(format!("register answered {}", registered.status()).into());
    }
    let user: Value = registered.json().await?;
    let workspace = user["default_workspace_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or("register gave no default workspace")?;
    let tokens: Value = client
        .post(format!("{address}/api/auth/login"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = tokens["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or("login gave no access token")?;
    Ok((token, workspace))
}

/// Creates a workspace for the checking user and returns its id.
async fn create_workspace(address: &str, token: &str) -> Result<String, Error> {
    let created: Value = reqwest::Client::new()
        .post(format!("{address}/api/workspaces"))
        .bearer_auth(token)
        .json(&json!({"name": "API check, stateful"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    created["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "creating a workspace gave no id".into())
}
