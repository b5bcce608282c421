//! The Postgres unit of work: one pooled connection with an open transaction.
//!
//! `commit` issues `COMMIT`. A unit dropped without committing never goes back to the
//! pool: its connection is detached and closed, and the server rolls the transaction
//! back — so an early return or an error can never leave half a use case written.

use std::any::Any;

use async_trait::async_trait;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{StorageError, UnitOfWork, UnitOfWorkFactory, Uow};

use crate::DbPool;

/// A transaction on a pooled connection.
pub struct PgUnitOfWork {
    connection: Option<Object<AsyncPgConnection>>,
}

impl std::fmt::Debug for PgUnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUnitOfWork").finish_non_exhaustive()
    }
}

impl PgUnitOfWork {
    /// The connection, for repositories of this crate.
    pub fn connection(&mut self) -> Result<&mut AsyncPgConnection, StorageError> {
        self.connection.as_deref_mut().ok_or_else(|| {
            StorageError::new(std::io::Error::other("unit of work already finished"))
        })
    }
}

/// The Postgres connection inside a domain unit of work.
pub fn connection_of(unit: &mut Uow) -> Result<&mut AsyncPgConnection, StorageError> {
    unit.as_any()
        .downcast_mut::<PgUnitOfWork>()
        .ok_or_else(|| StorageError::new(std::io::Error::other("not a Postgres unit of work")))?
        .connection()
}

#[async_trait]
impl UnitOfWork for PgUnitOfWork {
    fn as_any(&mut self) -> &mut (dyn Any + Send) {
        self
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        let mut connection = self.connection.take().ok_or_else(|| {
            StorageError::new(std::io::Error::other("unit of work already finished"))
        })?;
        match diesel::sql_query("COMMIT").execute(&mut *connection).await {
            Ok(_) => Ok(()),
            Err(error) => {
                // Do not return a connection in an unknown state to the pool.
                drop(Object::take(connection));
                Err(StorageError::new(error))
            }
        }
    }
}

impl Drop for PgUnitOfWork {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // Uncommitted: close the connection instead of pooling it; the server rolls back.
            drop(Object::take(connection));
        }
    }
}

/// Opens units of work on the pool.
#[derive(Clone)]
pub struct PgUnits {
    pool: DbPool,
}

impl std::fmt::Debug for PgUnits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUnits").finish_non_exhaustive()
    }
}

impl PgUnits {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl UnitOfWorkFactory for PgUnits {
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StorageError> {
        let mut connection = self.pool.get().await.map_err(StorageError::new)?;
        diesel::sql_query("BEGIN")
            .execute(&mut *connection)
            .await
            .map_err(StorageError::new)?;
        Ok(Box::new(PgUnitOfWork {
            connection: Some(connection),
        }))
    }
}
