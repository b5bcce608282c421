//! The Postgres unit of work: one pooled connection with an open transaction.
//!
//! `commit` issues `COMMIT`. A unit dropped without committing — an early return, a
//! refused write, a cancelled request — is rolled back, so half a use case is never
//! written, and its connection goes back to the pool rather than being reconnected.
//!
//! `Drop` cannot await, so it hands the connection to a task on the current tokio
//! runtime, which issues `ROLLBACK` and only then drops the pooled object, returning it
//! to the pool. The connection is never handed out inside the aborted transaction
//! because of that order, not because of a check: until `ROLLBACK` has answered, the
//! object is held by the task and counts as in use. Whenever that cannot be guaranteed,
//! the connection is detached from the pool and closed (the server then rolls back, as
//! it does for any lost client): when there is no runtime to run the task, when
//! `ROLLBACK` fails or takes longer than [`ROLLBACK_TIMEOUT`], and when the task itself
//! is dropped unfinished (a runtime shutting down) — the object is wrapped in a guard
//! that closes it on drop unless the rollback succeeded.
//!
//! A deadpool recycle hook that asks each connection whether it is in a transaction
//! was the alternative; it costs a round trip on every checkout of every request to
//! catch a state this order of operations already rules out, so there is none.

use std::any::Any;
use std::time::Duration;

use async_trait::async_trait;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{StorageError, UnitOfWork, UnitOfWorkFactory, Uow};

use crate::DbPool;
use crate::error::{StoreError, storage};

/// A transaction on a pooled connection.
pub struct PgUnitOfWork {
    connection: Option<Object<AsyncPgConnection>>,
    /// Awaited once `COMMIT` succeeded, in order; dropped unrun when the unit rolls back.
    on_commit: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>,
}

crate::repository::opaque_debug!(PgUnitOfWork);

impl PgUnitOfWork {
    /// The connection, for repositories of this crate.
    pub fn connection(&mut self) -> Result<&mut AsyncPgConnection, StorageError> {
        self.connection
            .as_deref_mut()
            .ok_or_else(|| storage(StoreError::UnitFinished))
    }
}

/// The Postgres connection inside a domain unit of work.
pub fn connection_of(unit: &mut Uow) -> Result<&mut AsyncPgConnection, StorageError> {
    unit.as_any()
        .downcast_mut::<PgUnitOfWork>()
        .ok_or_else(|| storage(StoreError::ForeignUnit))?
        .connection()
}

/// Runs `action` right after `unit` commits, and never if it rolls back: for what this
/// process keeps of the rows a change wrote (the auth cache evicts them), so that the
/// caller's next request sees the change.
pub(crate) fn after_commit(
    unit: &mut Uow,
    action: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StorageError> {
    unit.as_any()
        .downcast_mut::<PgUnitOfWork>()
        .ok_or_else(|| storage(StoreError::ForeignUnit))?
        .on_commit
        .push(Box::pin(action));
    Ok(())
}

#[async_trait]
impl UnitOfWork for PgUnitOfWork {
    fn as_any(&mut self) -> &mut (dyn Any + Send) {
        self
    }

    #[tracing::instrument(name = "db.unit.commit", level = "debug", skip_all)]
    async fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        let mut connection = self
            .connection
            .take()
            .ok_or_else(|| storage(StoreError::UnitFinished))?;
        match diesel::sql_query("COMMIT").execute(&mut *connection).await {
            Ok(_) => {
                drop(connection);
                for action in std::mem::take(&mut self.on_commit) {
                    action.await;
                }
                Ok(())
            }
            Err(error) => {
                // Do not return a connection in an unknown state to the pool.
                drop(Object::take(connection));
                Err(storage(error))
            }
        }
    }
}

impl Drop for PgUnitOfWork {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            roll_back_and_release(connection);
        }
    }
}

/// How long an uncommitted unit's `ROLLBACK` may take before its connection is closed
/// instead (it can queue behind a statement a cancelled request left running).
pub const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection that may still be inside a transaction: dropped, it is detached from
/// the pool and closed, unless [`Aborted::release`] took it back after a `ROLLBACK`.
struct Aborted(Option<Object<AsyncPgConnection>>);

impl Aborted {
    fn connection(&mut self) -> Option<&mut AsyncPgConnection> {
        self.0.as_deref_mut()
    }

    /// Returns the connection to the pool: only after its transaction is rolled back.
    fn release(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Aborted {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            drop(Object::take(connection));
        }
    }
}

/// Rolls the connection's transaction back on a task, then returns it to the pool; when
/// that cannot be done, closes it (see the module documentation).
fn roll_back_and_release(connection: Object<AsyncPgConnection>) {
    let mut aborted = Aborted(Some(connection));
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return; // `aborted` closes the connection.
    };
    runtime.spawn(async move {
        let Some(connection) = aborted.connection() else {
            return;
        };
        let rollback = diesel::sql_query("ROLLBACK").execute(connection);
        match tokio::time::timeout(ROLLBACK_TIMEOUT, rollback).await {
            Ok(Ok(_)) => aborted.release(),
            Ok(Err(error)) => {
                tracing::warn!(%error, "ROLLBACK failed: the connection is closed instead");
            }
            Err(_) => tracing::warn!("ROLLBACK timed out: the connection is closed instead"),
        }
    });
}

/// Opens units of work on the pool.
#[derive(Clone)]
pub struct PgUnits {
    pool: DbPool,
}

crate::repository::opaque_debug!(PgUnits);

impl PgUnits {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl UnitOfWorkFactory for PgUnits {
    #[tracing::instrument(name = "db.unit.begin", level = "debug", skip_all)]
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StorageError> {
        let mut connection = self.pool.get().await.map_err(storage)?;
        diesel::sql_query("BEGIN")
            .execute(&mut *connection)
            .await
            .map_err(storage)?;
        Ok(Box::new(PgUnitOfWork {
            connection: Some(connection),
            on_commit: Vec::new(),
        }))
    }
}
