//! What each `fluxolab` subcommand does.

use std::sync::Arc;

use fluxolab_credentials::service::rewrap_all_data_keys;
use fluxolab_http::{ApiState, ServerSettings, build_ops_server};
use fluxolab_identity::{DisplayName, EmailAddress, PasswordHash};
use fluxolab_postgres::seed::{self, DemoAccount};
use fluxolab_postgres::vault::PgVault;
use fluxolab_postgres::{StoreError, migrations};
use fluxolab_telemetry::MetricsRegistry;
use fluxolab_workspace::model::WorkspaceName;
use secrecy::SecretString;

use crate::config::{DatabaseSettings, Settings};
use crate::probe::PostgresProbe;
use crate::startup::{self, Application, StartupError};
use crate::workers::WorkerPool;

/// The demo login that `seed --demo` creates and `cargo xtask dev` prints.
pub const DEMO_EMAIL: &str = "demo@fluxolab.dev";
/// The demo password. Only ever seeded on request, for local development.
pub const DEMO_PASSWORD: &str = "fluxolab-demo-password";

/// A command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("the server stopped with an error")]
    Serve(#[source] std::io::Error),
    #[error("could not hash the demo password")]
    Hash(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("could not wait for a shutdown signal")]
    Signal(#[source] std::io::Error),
    #[error("key rotation failed")]
    Keys(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database is migrated but lacks the plans, roles or permissions every
    /// request needs.
    #[error(
        "the database lacks its reference data ({0}); run `fluxolab migrate`, which applies it"
    )]
    ReferenceDataMissing(String),
}

/// Refuses to start on a database that lacks its reference data (it would answer 500 to
/// the first registration). A database that cannot be read yet (down, or not migrated)
/// is left to `/readyz`.
async fn require_reference_data(settings: &DatabaseSettings) -> Result<(), CommandError> {
    let pool = startup::pool(settings).map_err(StartupError::from)?;
    let checked = match pool.get().await {
        Ok(mut connection) => seed::missing_reference_data(&mut connection).await,
        Err(error) => Err(StoreError::from(error)),
    };
    match checked {
        Ok(None) => Ok(()),
        Ok(Some(missing)) => Err(CommandError::ReferenceDataMissing(missing)),
        Err(error) => {
            tracing::warn!(%error, "could not check the reference data; see /readyz");
            Ok(())
        }
    }
}

/// `fluxolab serve`: the API and (unless `with_workers` is false) the workers, until a signal.
pub async fn serve(settings: &Settings, with_workers: bool) -> Result<(), CommandError> {
    require_reference_data(&settings.database).await?;
    let mut application = Application::build(settings)?;
    if !with_workers {
        application = application.without_workers();
    }
    tracing::info!(
        address = %settings.bind_addr,
        port = application.port(),
        workers = with_workers,
        "FluxoLab is listening"
    );
    application
        .run_until_stopped()
        .await
        .map_err(CommandError::Serve)?;
    tracing::info!("FluxoLab stopped");
    Ok(())
}

/// `fluxolab worker`: runs executions from the queue, without the API, until a signal;
/// serves `/healthz`, `/readyz` and `/metrics` (its executions' metrics) on `BIND_ADDR`.
pub async fn worker(settings: &Settings) -> Result<(), CommandError> {
    require_reference_data(&settings.database).await?;
    let pool = startup::pool(&settings.database).map_err(StartupError::from)?;
    let embedded = migrations::embedded_versions()?;
    if let Err(reason) = fluxolab_postgres::readiness::check(&pool, &embedded).await {
        tracing::warn!(%reason, "the database is not ready; claims will fail until it is");
    }
    let metrics = MetricsRegistry::new();
    let services = startup::services(
        &pool,
        settings,
        Arc::new(fluxolab_kernel::SystemClock),
        Arc::new(metrics.executions().clone()),
    )?;
    let state = ApiState::new(Arc::new(PostgresProbe::new(pool, embedded)))
        .map_err(StartupError::from)?
        .with_metrics(metrics.clone());
    // Without its ops routes a worker still runs executions: a taken address is logged,
    // and its health checks then fail where they are watched.
    let ops = match ops_server(settings, state) {
        Ok((server, port)) => {
            tracing::info!(address = %settings.bind_addr, port, "worker running; /healthz, /readyz and /metrics served");
            let handle = server.handle();
            Some((handle, tokio::spawn(server)))
        }
        Err(error) => {
            tracing::error!(%error, address = %settings.bind_addr, "worker running without /healthz, /readyz and /metrics; set BIND_ADDR to a free address");
            None
        }
    };
    let workers = WorkerPool::start(services.executions, services.queue, settings.workers)
        .with_usage_snapshots(services.billing)
        .with_usage_alerts(services.alerts)
        .with_outbox(
            services.outbox,
            metrics.outbound().clone(),
            settings.alerts.outbox_retention,
        )
        .with_weekly_reports(services.weekly_reports)
        .with_schedules(services.scheduler)
        .with_ldap_sync(services.ldap);
    shutdown_signal().await.map_err(CommandError::Signal)?;
    workers.shutdown().await;
    if let Some((handle, served)) = ops {
        handle.stop(true).await;
        let _ = served.await;
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// The worker's ops server on `BIND_ADDR`, and the port it got.
fn ops_server(
    settings: &Settings,
    state: ApiState,
) -> Result<(actix_web::dev::Server, u16), StartupError> {
    let listener =
        std::net::TcpListener::bind(settings.bind_addr).map_err(|source| StartupError::Bind {
            addr: settings.bind_addr,
            source,
        })?;
    let port = listener.local_addr().map_err(StartupError::Server)?.port();
    let server = build_ops_server(
        listener,
        state,
        &ServerSettings {
            body_limit: settings.body_limit_bytes,
            workers: 1,
            shutdown_timeout: settings.shutdown_timeout,
        },
    )
    .map_err(StartupError::Server)?;
    Ok((server, port))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

/// What `migrate` should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateAction {
    Up,
    Status,
    Down(usize),
}

/// `fluxolab migrate`: returns the lines to print.
pub async fn migrate(
    settings: &DatabaseSettings,
    action: MigrateAction,
) -> Result<Vec<String>, CommandError> {
    let url = settings.url.clone();
    let mut lines = migrations::run_off_runtime(move || match action {
        MigrateAction::Up => migrations::run_pending(&url).map(|applied| {
            if applied.is_empty() {
                vec!["database is up to date; no pending migration".to_owned()]
            } else {
                applied
                    .into_iter()
                    .map(|name| format!("applied  {name}"))
                    .collect()
            }
        }),
        MigrateAction::Down(steps) => migrations::revert(&url, steps).map(|reverted| {
            if reverted.is_empty() {
                vec!["nothing to revert".to_owned()]
            } else {
                reverted
                    .into_iter()
                    .map(|version| format!("reverted {version}"))
                    .collect()
            }
        }),
        MigrateAction::Status => migrations::status(&url).map(|all| {
            all.into_iter()
                .map(|migration| {
                    let state = if migration.applied {
                        "applied"
                    } else {
                        "pending"
                    };
                    format!("{state:8} {}", migration.name)
                })
                .collect()
        }),
    })
    .await?;
    if action == MigrateAction::Up {
        // A migrated database is a working one: plans, roles and permissions too.
        lines.push(seed_reference(settings).await?);
    }
    Ok(lines)
}

/// Applies the reference data (idempotent); the line saying what it holds.
async fn seed_reference(settings: &DatabaseSettings) -> Result<String, CommandError> {
    let pool = startup::pool(settings).map_err(StartupError::from)?;
    let mut connection = pool.get().await.map_err(StoreError::from)?;
    let reference = seed::seed_reference_data(&mut connection).await?;
    Ok(format!(
        "reference data: {} permissions, {} profiles ({} grants), {} plans",
        reference.permissions, reference.profiles, reference.grants, reference.plans
    ))
}

/// `fluxolab seed`: reference data, and the demo account with `demo`.
pub async fn seed(settings: &DatabaseSettings, demo: bool) -> Result<Vec<String>, CommandError> {
    let mut lines = vec![seed_reference(settings).await?];
    if demo {
        let pool = startup::pool(settings).map_err(StartupError::from)?;
        let hash = tokio::task::spawn_blocking(|| {
            PasswordHash::create(&SecretString::from(DEMO_PASSWORD.to_owned()))
        })
        .await
        .map_err(|error| CommandError::Hash(Box::new(error)))?
        .map_err(|error| CommandError::Hash(Box::new(error)))?;
        let invalid = |error: &dyn std::fmt::Display| CommandError::Hash(error.to_string().into());
        let email = EmailAddress::parse(DEMO_EMAIL).map_err(|error| invalid(&error))?;
        let display_name = DisplayName::parse("Demo User").map_err(|error| invalid(&error))?;
        let workspace_name =
            WorkspaceName::parse("Demo workspace").map_err(|error| invalid(&error))?;
        let seeded = seed::seed_demo(
            &pool,
            &DemoAccount {
                email: &email,
                display_name: &display_name,
                password_hash: &hash,
                workspace_name: &workspace_name,
            },
        )
        .await?;
        lines.push(format!(
            "demo: user {DEMO_EMAIL} ({}), workspace {}",
            if seeded.created_user {
                "created"
            } else {
                "already present"
            },
            seeded.workspace_id
        ));
    }
    Ok(lines)
}

/// `fluxolab keys rotate`: re-wraps every data key under the current master secret.
pub async fn rotate_master_keys(settings: &Settings) -> Result<Vec<String>, CommandError> {
    let pool = startup::pool(&settings.database).map_err(StartupError::from)?;
    let master = settings
        .master_keys()
        .map_err(|error| CommandError::Keys(Box::new(error)))?;
    let report = rewrap_all_data_keys(&PgVault::new(pool), &master)
        .await
        .map_err(|error| CommandError::Keys(Box::new(error)))?;
    Ok(vec![format!(
        "re-wrapped {} data key(s) under the current APP_SECRET; {} were already current",
        report.rewrapped, report.already_current
    )])
}
