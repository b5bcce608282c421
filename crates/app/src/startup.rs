//! Building and running the application; `main` and the tests start it the same way.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use fluxolab_http::{ApiState, ServerSettings, build_server};
use fluxolab_postgres::pool::PoolBuildError;
use fluxolab_postgres::{DbPool, PoolSettings, StoreError, connect_pool, migrations};

use crate::config::{DatabaseSettings, Settings};
use crate::probe::PostgresProbe;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Pool(#[from] PoolBuildError),
    #[error("could not read the embedded migrations")]
    Migrations(#[from] StoreError),
    #[error("could not listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not start the HTTP server")]
    Server(#[source] std::io::Error),
    #[error("could not render the OpenAPI document")]
    OpenApi(#[from] serde_json::Error),
}

/// Builds the connection pool described by `settings`.
pub fn pool(settings: &DatabaseSettings) -> Result<DbPool, PoolBuildError> {
    connect_pool(
        &settings.url,
        &PoolSettings {
            max_size: settings.pool_size,
            acquire_timeout: settings.acquire_timeout,
        },
    )
}

/// A bound, not yet running, FluxoLab API server.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects the pool (lazily), binds the listener (port 0 picks a free one) and
    /// builds the server.
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        let pool = pool(&settings.database)?;
        let probe = PostgresProbe::new(pool, migrations::embedded_versions()?);
        let state = ApiState::new(Arc::new(probe))?;
        let listener =
            TcpListener::bind(settings.bind_addr).map_err(|source| StartupError::Bind {
                addr: settings.bind_addr,
                source,
            })?;
        let port = listener.local_addr().map_err(StartupError::Server)?.port();
        let server = build_server(
            listener,
            state,
            &ServerSettings {
                body_limit: settings.body_limit_bytes,
                workers: settings.http_workers,
                shutdown_timeout: settings.shutdown_timeout,
            },
        )
        .map_err(StartupError::Server)?;
        Ok(Self { port, server })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
