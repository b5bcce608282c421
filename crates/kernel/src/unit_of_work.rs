//! Transactions that span ports: a use case that must write several things atomically
//! begins one unit of work and hands it to every repository call. Committing makes the
//! writes visible; dropping it uncommitted discards them all.

use std::any::Any;

use async_trait::async_trait;

/// A storage failure the domain cannot act on; the cause is kept for the log.
#[derive(Debug, thiserror::Error)]
#[error("storage failed")]
pub struct StorageError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl StorageError {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

/// One open transaction.
#[async_trait]
pub trait UnitOfWork: Send {
    /// The adapter's own transaction, for its repositories to downcast.
    fn as_any(&mut self) -> &mut (dyn Any + Send);

    /// Makes every write of this unit visible at once.
    async fn commit(self: Box<Self>) -> Result<(), StorageError>;
}

/// A unit of work as repositories receive it (`&mut Uow`).
pub type Uow = dyn UnitOfWork;

/// Opens units of work.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UnitOfWorkFactory: Send + Sync {
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StorageError>;
}

/// A unit of work that only records whether it was committed (for service tests; mockall
/// cannot mock `as_any`'s unsized return).
#[cfg(any(test, feature = "mocks"))]
#[derive(Debug, Default, Clone)]
pub struct RecordingUnitOfWork {
    pub committed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(any(test, feature = "mocks"))]
#[async_trait]
impl UnitOfWork for RecordingUnitOfWork {
    fn as_any(&mut self) -> &mut (dyn Any + Send) {
        self
    }

    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        self.committed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}
