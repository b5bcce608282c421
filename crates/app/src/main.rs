//! `fluxolab`: serve the API, run workers, migrate and seed the database.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fluxolab_app::commands::{self, MigrateAction};
use fluxolab_app::config::{self, ConfigErrors, DatabaseSettings, Settings};

#[derive(Debug, Parser)]
#[command(name = "fluxolab", version, about = "FluxoLab workflow automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API and run workers in the same process.
    Serve {
        /// Serve the API only; run workers with `fluxolab worker` elsewhere.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run background workers only.
    Worker,
    /// Apply pending migrations (the default), show their status, or revert some.
    Migrate {
        /// List every migration and whether it is applied.
        #[arg(long, conflicts_with = "down")]
        status: bool,
        /// Revert the N most recent migrations.
        #[arg(long, value_name = "N")]
        down: Option<usize>,
    },
    /// Manage the master secret's keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Insert the reference data (permissions, roles, plans); idempotent.
    Seed {
        /// Also create the demo user and workspace.
        #[arg(long)]
        demo: bool,
    },
}

#[allow(clippy::print_stderr)]
#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Re-wrap every workspace data key under the current APP_SECRET (run with the old
    /// one in APP_SECRET_PREVIOUS); touches no credential row; idempotent.
    Rotate,
}

#[allow(clippy::print_stderr)]
fn report_config(errors: &ConfigErrors) -> ExitCode {
    eprintln!("fluxolab: the configuration is invalid:\n{errors}");
    eprintln!("See .env.example and the README's configuration table.");
    ExitCode::from(2)
}

#[allow(clippy::print_stdout)]
fn print_lines(lines: &[String]) {
    for line in lines {
        println!("{line}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let environment = match config::environment() {
        Ok(environment) => environment,
        Err(errors) => return report_config(&errors),
    };
    match cli.command {
        Command::Serve { no_workers } => match Settings::from_lookup(&environment) {
            Ok(settings) => run(
                &settings.telemetry.clone(),
                commands::serve(&settings, !no_workers),
            ),
            Err(errors) => report_config(&errors),
        },
        Command::Worker => match Settings::from_lookup(&environment) {
            Ok(settings) => run(&settings.telemetry.clone(), commands::worker(&settings)),
            Err(errors) => report_config(&errors),
        },
        Command::Migrate { status, down } => {
            let action = match (status, down) {
                (true, _) => MigrateAction::Status,
                (false, Some(steps)) => MigrateAction::Down(steps),
                (false, None) => MigrateAction::Up,
            };
            database_command(&environment, |database| async move {
                commands::migrate(&database, action)
                    .await
                    .map(|lines| print_lines(&lines))
            })
        }
        Command::Keys {
            action: KeysAction::Rotate,
        } => match Settings::from_lookup(&environment) {
            Ok(settings) => run(&quiet_telemetry(), async {
                commands::rotate_master_keys(&settings)
                    .await
                    .map(|lines| print_lines(&lines))
            }),
            Err(errors) => report_config(&errors),
        },
        Command::Seed { demo } => database_command(&environment, |database| async move {
            commands::seed(&database, demo)
                .await
                .map(|lines| print_lines(&lines))
        }),
    }
}

/// Runs a command that needs only `DATABASE_URL`, with plain logs.
fn database_command<F, Fut>(environment: &impl Fn(&str) -> Option<String>, command: F) -> ExitCode
where
    F: FnOnce(DatabaseSettings) -> Fut,
    Fut: Future<Output = Result<(), commands::CommandError>>,
{
    match DatabaseSettings::from_lookup(environment) {
        Ok(database) => run(&quiet_telemetry(), command(database)),
        Err(errors) => report_config(&errors),
    }
}

/// Plain warnings-only logs for one-shot commands.
fn quiet_telemetry() -> fluxolab_telemetry::TelemetrySettings {
    fluxolab_telemetry::TelemetrySettings {
        log_format: fluxolab_telemetry::LogFormat::Pretty,
        log_filter: "warn".to_owned(),
        otlp_endpoint: None,
        service_name: "fluxolab".to_owned(),
    }
}

/// Sets up telemetry and a runtime, runs `work`, and reports its outcome.
#[allow(clippy::print_stderr)]
fn run(
    telemetry: &fluxolab_telemetry::TelemetrySettings,
    work: impl Future<Output = Result<(), commands::CommandError>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fluxolab: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let _guard = match fluxolab_telemetry::init(telemetry) {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("fluxolab: could not set up telemetry: {error}");
                return ExitCode::FAILURE;
            }
        };
        match work.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                let mut message = format!("fluxolab: {error}");
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    message.push_str(&format!("\n  caused by: {cause}"));
                    source = cause.source();
                }
                tracing::error!("{message}");
                eprintln!("{message}");
                ExitCode::FAILURE
            }
        }
    })
}
