//! Storage errors. Database errors are translated here, once; none crosses into a domain
//! crate or the HTTP layer.

use fluxolab_kernel::StorageErrorKind;

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
    #[error("the unit of work is already finished")]
    UnitFinished,
    #[error("the unit of work is not a Postgres one")]
    ForeignUnit,
    #[error("the intake's writer has stopped")]
    IntakeStopped,
    #[error("the notification stream ended")]
    ListenerEnded,
    #[error("the listening connection did not answer its check in time")]
    ListenerUnresponsive,
}

/// Whether `error` is a unique violation of `constraint`.
pub fn is_unique_violation(error: &diesel::result::Error, constraint: &str) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(constraint)
    )
}

/// Any adapter error as the domain's storage error, of the kind its cause says: a pool
/// that gives no connection in time, a refused connection or one that closed under the
/// query is `Unavailable` (retry later); everything else `Failed`.
pub(crate) fn storage(
    error: impl std::error::Error + Send + Sync + 'static,
) -> fluxolab_kernel::StorageError {
    let error: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
    let kind = if is_unavailable(error.as_ref()) {
        StorageErrorKind::Unavailable
    } else {
        StorageErrorKind::Failed
    };
    fluxolab_kernel::StorageError::of_kind(kind, error)
}

/// Stored data that does not fit the domain.
pub(crate) fn corrupt(what: impl Into<String>) -> fluxolab_kernel::StorageError {
    fluxolab_kernel::StorageError::corrupt(what)
}

/// Whether `error` (or what it wraps) says the database cannot be reached now.
fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(store) = error.downcast_ref::<StoreError>() {
            if matches!(store, StoreError::Connect(_) | StoreError::Pool(_)) {
                return true;
            }
        } else if let Some(pool) = error.downcast_ref::<PoolError>() {
            return matches!(
                pool,
                deadpool::managed::PoolError::Timeout(_) | deadpool::managed::PoolError::Backend(_)
            );
        } else if let Some(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ClosedConnection,
            _,
        )) = error.downcast_ref::<diesel::result::Error>()
        {
            return true;
        } else if error.downcast_ref::<diesel::ConnectionError>().is_some() {
            return true;
        }
        current = error.source();
    }
    false
}

type PoolError = deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>;
