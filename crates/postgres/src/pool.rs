//! The connection pool: diesel-async connections (tokio-postgres, no libpq) in deadpool.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};

/// Opens a connection with PostgreSQL's JIT compilation off. Our statements are short
/// and indexed; JIT pays only for long scans, yet PostgreSQL decides it on the planner's
/// estimates: the usage snapshot (`LATERAL generate_series`, estimated at millions of
/// rows) spent ~0.5-0.9 s compiling for a statement that ran in under 1 ms (measured with
/// `EXPLAIN ANALYZE` on PostgreSQL 15's default `jit = on`), at every worker process's
/// start.
async fn establish_without_jit(url: String) -> diesel::ConnectionResult<AsyncPgConnection> {
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    let mut connection = AsyncPgConnection::establish(&url).await?;
    connection
        .batch_execute("SET jit = off")
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(connection)
}

/// The pool every repository draws from.
pub type DbPool = Pool<AsyncPgConnection>;

/// How the pool is sized and how long a caller waits for a connection.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_size: usize,
    pub acquire_timeout: Duration,
}

/// The pool could not be built (bad settings; nothing is connected yet).
#[derive(Debug, thiserror::Error)]
#[error("could not build the database pool: {0}")]
pub struct PoolBuildError(#[from] deadpool::managed::BuildError);

/// Builds a pool for `database_url`. Connections are opened lazily, on first use.
pub fn connect_pool(database_url: &str, settings: &PoolSettings) -> Result<DbPool, PoolBuildError> {
    // `Fast` recycling: no `SELECT 1` round trip each time a connection leaves the pool.
    // A connection that broke is still dropped (its failed query marks it broken and the
    // pool discards it); a request that meets a freshly dead one answers 503 once.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| Box::pin(establish_without_jit(url.to_owned())));
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Ok(Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.acquire_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?)
}

/// A pooled connection, or the domain's storage error.
pub async fn pooled(
    pool: &DbPool,
) -> Result<
    diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>,
    fluxolab_kernel::StorageError,
> {
    pool.get().await.map_err(crate::error::storage)
}

#[cfg(test)]
mod tests {
    use fluxolab_kernel::StorageErrorKind;

    use super::*;

    #[tokio::test]
    async fn an_unreachable_database_is_unavailable_storage() -> Result<(), PoolBuildError> {
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        let pool = connect_pool(
            "postgres://postgres@127.0.0.1:1/fluxolab",
            &PoolSettings {
                max_size: 1,
                acquire_timeout: Duration::from_secs(2),
            },
        )?;
        let error = pooled(&pool).await.err().map(|error| error.kind());
        assert_eq!(error, Some(StorageErrorKind::Unavailable));
        Ok(())
    }
}
