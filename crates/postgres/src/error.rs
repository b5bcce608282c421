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
    #[error("the writer of a group commit has stopped")]
    GroupCommitStopped,
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
/// that gives no connection in time, a refused connection or one that closed or broke
/// under the query is `Unavailable` (retry later); everything else `Failed`.
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
        } else if let Some(query) = error.downcast_ref::<diesel::result::Error>() {
            return is_lost_connection(query);
        } else if error.downcast_ref::<diesel::ConnectionError>().is_some() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Whether a query failed because the connection went away under it. diesel-async
/// reports every failure that is not the server's answer — the connection closed, an
/// I/O error, its connection task gone — as `UnableToSendCommand` with only a message
/// (`connection closed`, `error communicating with the server: …`), so that kind is
/// the database being unreachable, like `ClosedConnection`. (diesel's other cause of
/// it, more than 65 535 bind parameters, is not a statement we send.) A commit that
/// failed and whose rollback failed too is judged by the commit's failure.
fn is_lost_connection(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        Error::RollbackErrorOnCommit { commit_error, .. } => is_lost_connection(commit_error),
        _ => false,
    }
}

type PoolError = deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>;

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error};
    use fluxolab_kernel::StorageErrorKind;

    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_connection_lost_under_a_query_is_unavailable_storage() {
        // What diesel-async gives for a query on a connection the server closed.
        let closed = database_error(DatabaseErrorKind::UnableToSendCommand, "connection closed");
        assert_eq!(storage(closed).kind(), StorageErrorKind::Unavailable);
        let reset = database_error(
            DatabaseErrorKind::UnableToSendCommand,
            "error communicating with the server: Connection reset by peer (os error 104)",
        );
        assert_eq!(storage(reset).kind(), StorageErrorKind::Unavailable);
        let gone = database_error(DatabaseErrorKind::ClosedConnection, "closed");
        assert_eq!(storage(gone).kind(), StorageErrorKind::Unavailable);
    }

    #[test]
    fn a_commit_lost_with_its_connection_is_unavailable_storage() {
        let lost = Error::RollbackErrorOnCommit {
            rollback_error: Box::new(database_error(
                DatabaseErrorKind::UnableToSendCommand,
                "connection closed",
            )),
            commit_error: Box::new(database_error(
                DatabaseErrorKind::UnableToSendCommand,
                "connection closed",
            )),
        };
        assert_eq!(storage(lost).kind(), StorageErrorKind::Unavailable);
    }

    #[test]
    fn the_server_refusing_a_statement_is_a_failure() {
        let refused = database_error(DatabaseErrorKind::UniqueViolation, "duplicate key");
        assert_eq!(storage(refused).kind(), StorageErrorKind::Failed);
        assert_eq!(storage(Error::NotFound).kind(), StorageErrorKind::Failed);
        let wrapped = StoreError::Query(database_error(DatabaseErrorKind::Unknown, "syntax"));
        assert_eq!(storage(wrapped).kind(), StorageErrorKind::Failed);
    }

    #[test]
    fn a_wrapped_lost_connection_is_still_unavailable() {
        let wrapped = StoreError::Query(database_error(
            DatabaseErrorKind::UnableToSendCommand,
            "connection closed",
        ));
        assert_eq!(storage(wrapped).kind(), StorageErrorKind::Unavailable);
    }
}
