//! The embedded migrations and their runner.
//!
//! Migrations are compiled into the binary and run over diesel-async's connection wrapper
//! (tokio-postgres underneath), so neither the binary nor a deployment needs libpq or the
//! diesel CLI. The runner is synchronous: call it from a plain thread or through
//! [`run_off_runtime`] from async code.

use diesel::Connection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StoreError;

/// Every migration under `migrations/`, embedded at compile time.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

type SyncPgConnection = AsyncConnectionWrapper<AsyncPgConnection>;

/// One migration and whether the database has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: String,
    pub name: String,
    pub applied: bool,
}

fn migration_error(error: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    StoreError::Migration(error)
}

fn connect(database_url: &str) -> Result<SyncPgConnection, StoreError> {
    Ok(SyncPgConnection::establish(database_url)?)
}

/// The versions of every embedded migration, oldest first (e.g. `20261125000001`).
pub fn embedded_versions() -> Result<Vec<String>, StoreError> {
    let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(migration_error)?;
    Ok(migrations
        .iter()
        .map(|migration| migration.name().version().to_string())
        .collect())
}

/// Applies every pending migration; returns the names applied.
pub fn run_pending(database_url: &str) -> Result<Vec<String>, StoreError> {
    let mut connection = connect(database_url)?;
    let applied = connection
        .run_pending_migrations(MIGRATIONS)
        .map_err(migration_error)?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Reverts the `steps` most recent migrations; returns the versions reverted.
pub fn revert(database_url: &str, steps: usize) -> Result<Vec<String>, StoreError> {
    let mut connection = connect(database_url)?;
    let mut reverted = Vec::new();
    for _ in 0..steps {
        let applied = connection.applied_migrations().map_err(migration_error)?;
        if applied.is_empty() {
            break;
        }
        let version = connection
            .revert_last_migration(MIGRATIONS)
            .map_err(migration_error)?;
        reverted.push(version.to_string());
    }
    Ok(reverted)
}

/// Every embedded migration with whether it is applied, oldest first.
pub fn status(database_url: &str) -> Result<Vec<MigrationStatus>, StoreError> {
    let mut connection = connect(database_url)?;
    let applied: Vec<String> = connection
        .applied_migrations()
        .map_err(migration_error)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(migration_error)?;
    Ok(migrations
        .iter()
        .map(|migration| {
            let name = migration.name();
            let version = name.version().to_string();
            MigrationStatus {
                applied: applied.contains(&version),
                version,
                name: name.to_string(),
            }
        })
        .collect())
}

/// Runs blocking migration work on a thread of its own, outside any tokio runtime, so the
/// connection wrapper drives its own runtime whatever flavour the caller uses.
pub async fn run_off_runtime<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        // The receiver only goes away when the caller stopped waiting.
        let _ = sender.send(work());
    });
    receiver.await.map_err(|_| StoreError::TaskAborted)?
}
