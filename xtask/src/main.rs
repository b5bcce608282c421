//! `cargo xtask`: the developer commands. Plain Rust, standard library only.
//!
//! - `dev`: find or start Postgres, rebuild the web console when its sources changed (and
//!   Node is installed), migrate, seed the demo data, serve, print how to log in
//! - `console`: build the web console (`npm ci` when its lock file changed, `vite build`)
//!   into `console/dist`, which the binary embeds
//! - `openapi [--check]`: write the OpenAPI document (no server needed) and regenerate the
//!   console's API client types from it, or fail when the committed ones differ (CI)
//! - `e2e [--screenshots] [ARGS…]`: the console's Playwright tests in Debian's Chromium
//!   against a server on a fresh test database (screenshots into `docs/console/`)
//! - `test [ARGS…]`: find or start Postgres, export `TEST_DATABASE_URL` (and moto's server
//!   as `MOTO_SERVER`, the MCP client's Python as `MCP_CLIENT_PYTHON` and the Standard
//!   Webhooks library's as `STANDARD_WEBHOOKS_PYTHON`, installed when missing), run every
//!   test
//! - `migrate [--status | --down N]`, `seed [--demo]`: the binary's commands, on the
//!   discovered database
//! - `schema [--check]`: regenerate `crates/postgres/src/schema.rs` from the migrations, or
//!   fail when it differs from them (CI)
//! - `bench [--unsafe-fast] [credentials | executions | fairness | webhooks | api-keys | reads
//!   | scaleout]`: performance figures (release build) on a durable server, each with the
//!   server's settings and as a ratio of a `pgbench` reference run in the same sitting
//! - `api-check [ARGS…]`: schemathesis (pinned) against a server on a fresh test database
//! - `moto`: install moto's server (pinned) for the secret-store tests, print its path
//! - `mcp-client`: install the MCP Python SDK (pinned) for the MCP server's tests, print
//!   its Python
//! - `standard-webhooks`: install the reference Standard Webhooks library (pinned) for the
//!   signature tests, print its Python
//! - `db start | stop | remove | status | url`: manage the private cluster under
//!   `.fluxolab/pg` (stop, remove and status also the bench cluster, `.fluxolab/pg-bench`)

// A command-line tool: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api_check;
mod bench;
mod cluster;
mod console;
mod dev;
mod discovery;
mod mcp_client;
mod moto;
mod pgbench;
mod process;
mod schema;
mod standard_webhooks;
mod venv;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  dev                       find or start Postgres, rebuild the console when its
                            sources changed (and Node is installed), migrate, seed
                            demo data and serve
  console                   build the web console into console/dist (npm ci when
                            console/package-lock.json changed, then vite build)
  openapi [--check]         write the OpenAPI document to target/openapi.json and
                            regenerate console/src/api/schema.d.ts from it, or with
                            --check fail when the committed file differs
  e2e [--screenshots] [ARGS...]
                            the console's end-to-end tests (Playwright, Debian's
                            Chromium) against a server on a fresh test database;
                            --screenshots saves every page under docs/console/
  test [ARGS...]            run the whole test suite against a discovered database
                            (and moto's server, installed when missing)
  migrate [--status | --down N]
                            apply pending migrations, list them, or revert the last N
  seed [--demo]             insert reference data (and the demo user and workspace)
  schema [--check]          regenerate crates/postgres/src/schema.rs from the migrations
                            (diesel print-schema on a scratch database), or with
                            --check fail when it differs
  bench [--unsafe-fast] [credentials|executions|fairness|webhooks|api-keys|reads|scaleout]
                            print performance figures (release build) against a durable
                            server (TEST_DATABASE_URL, else the bench cluster under
                            .fluxolab/pg-bench: fsync and synchronous_commit on), with
                            the settings read from it and each figure as a ratio of a
                            pgbench reference run beside it; --unsafe-fast uses the
                            test cluster (fsync off) and is labelled UNSAFE
  api-check [ARGS...]       check the OpenAPI document against a running server
                            with schemathesis (ARGS go to `st run`)
  moto                      install moto's server (pinned, .fluxolab/moto) for the
                            AWS Secrets Manager tests and print its path
  mcp-client                install the MCP Python SDK (pinned, .fluxolab/mcp-client)
                            for the MCP server's tests and print its python
  standard-webhooks         install the Standard Webhooks reference library (pinned,
                            .fluxolab/standard-webhooks) for the signature tests and
                            print its python
  db start|stop|remove|status|url
                            manage the private PostgreSQL cluster under .fluxolab/pg
                            (stop, remove, status: also the bench cluster)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let outcome = match command.as_str() {
        "dev" => dev::run(),
        "console" => console::run(),
        "openapi" => console::openapi(rest),
        "e2e" => console::e2e(rest),
        "test" => run_tests(rest),
        "migrate" | "seed" => database_command(command, rest),
        "db" => cluster_command(rest),
        "schema" => schema::run(rest),
        "bench" => bench::run(rest),
        "api-check" => api_check::run(rest),
        "moto" => moto::run(),
        "mcp-client" => mcp_client::run(),
        "standard-webhooks" => standard_webhooks::install().map(|python| {
            println!("{}", python.display());
            0
        }),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask test`: exports `TEST_DATABASE_URL`, `MOTO_SERVER`, `MCP_CLIENT_PYTHON`
/// and `STANDARD_WEBHOOKS_PYTHON`, and runs nextest
/// (or `cargo test`).
fn run_tests(extra: &[String]) -> Result<u8, String> {
    let server = discovery::test_server()?;
    eprintln!("xtask: testing against {}", server.description);
    let mut command = process::cargo();
    // Without moto the AWS Secrets Manager tests skip, except under CI (they fail).
    match moto::install() {
        Ok(moto) => {
            command.env("MOTO_SERVER", moto);
        }
        Err(error) => eprintln!("xtask: no moto server, the AWS tests will skip: {error}"),
    }
    // Likewise the MCP client for the MCP server's end-to-end test.
    match mcp_client::install() {
        Ok(python) => {
            command.env("MCP_CLIENT_PYTHON", python);
        }
        Err(error) => eprintln!("xtask: no MCP client, the MCP client test will skip: {error}"),
    }
    // And the independent Standard Webhooks implementation for the signature tests.
    match standard_webhooks::install() {
        Ok(python) => {
            command.env("STANDARD_WEBHOOKS_PYTHON", python);
        }
        Err(error) => {
            eprintln!("xtask: no Standard Webhooks library, the signature tests will skip: {error}")
        }
    }
    if process::nextest_available() {
        command.args(["nextest", "run", "--workspace"]);
    } else {
        eprintln!("xtask: cargo-nextest not found; using cargo test");
        command.args(["test", "--workspace"]);
    }
    command.args(extra).env("TEST_DATABASE_URL", &server.url);
    process::status_code(&mut command)
}

/// `migrate` and `seed`: the `fluxolab` binary's commands on the discovered database.
fn database_command(command: &str, extra: &[String]) -> Result<u8, String> {
    let database = discovery::dev_database()?;
    eprintln!("xtask: using {}", database.description);
    let mut run = process::fluxolab();
    run.arg(command)
        .args(extra)
        .env("DATABASE_URL", &database.url);
    process::status_code(&mut run)
}

fn cluster_command(args: &[String]) -> Result<u8, String> {
    let cluster = cluster::Cluster::for_project()?;
    let bench = cluster::Cluster::new(cluster::Purpose::Bench)?;
    match args.first().map(String::as_str) {
        Some("start") => {
            let port = cluster.start()?;
            println!("{}", cluster::server_url(port, "postgres"));
        }
        Some("stop") => {
            for cluster in [&cluster, &bench] {
                let name = cluster.purpose().name();
                if cluster.stop()? {
                    eprintln!("xtask: {name} stopped");
                } else {
                    eprintln!("xtask: {name} was not running");
                }
            }
        }
        Some("remove") => {
            for cluster in [&cluster, &bench] {
                cluster.remove()?;
                eprintln!("xtask: {} removed", cluster.purpose().name());
            }
        }
        Some("status") => {
            for cluster in [&cluster, &bench] {
                let name = cluster.purpose().name();
                match cluster.running_port() {
                    Some(port) => println!(
                        "{name}: running on 127.0.0.1:{port} ({})",
                        cluster.root().display()
                    ),
                    None => println!("{name}: not running ({})", cluster.root().display()),
                }
            }
        }
        Some("url") => match cluster.running_port() {
            Some(port) => println!("{}", cluster::server_url(port, "fluxolab")),
            None => return Err("the private cluster is not running; `cargo xtask db start`".into()),
        },
        _ => {
            return Err(format!(
                "expected start, stop, remove, status or url\n\n{USAGE}"
            ));
        }
    }
    Ok(0)
}
