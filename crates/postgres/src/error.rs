//! Storage errors. Database errors are translated here, once; none crosses into a domain
//! crate or the HTTP layer.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not get a database connection")]
    Pool(#[from] deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>),
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    #[error("could not connect to the database")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migration failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("seeding failed: {0}")]
    Seed(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the blocking migration task stopped before it finished")]
    TaskAborted,
}

/// Whether `error` is a unique violation of `constraint`.
pub fn is_unique_violation(error: &diesel::result::Error, constraint: &str) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(constraint)
    )
}

/// Any adapter error as the domain's storage error.
pub(crate) fn storage(
    error: impl std::error::Error + Send + Sync + 'static,
) -> fluxolab_kernel::StorageError {
    fluxolab_kernel::StorageError::new(error)
}
