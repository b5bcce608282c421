//! Transactions that span ports: a use case that must write several things atomically
//! begins one unit of work and hands it to every repository call. Committing makes the
//! writes visible; dropping it uncommitted discards them all.

use std::any::Any;

use async_trait::async_trait;

/// A storage failure the domain cannot act on; its kind says what an adapter should tell
/// the caller, and the cause is kept for the log.
#[derive(Debug, thiserror::Error)]
#[error("storage failed ({kind:?})")]
pub struct StorageError {
    kind: StorageErrorKind,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// What kind of storage failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The store could not be reached, or gave no connection in time: retry later.
    Unavailable,
    /// Stored data does not decode into the domain's types (or reference data is missing).
    Corrupt,
    /// Anything else the store reported.
    Failed,
}

/// Stored data that does not fit the domain: what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CorruptData(pub String);

impl StorageError {
    /// A failure of kind [`StorageErrorKind::Failed`].
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::of_kind(StorageErrorKind::Failed, Box::new(error))
    }

    /// The store cannot be reached now.
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::of_kind(StorageErrorKind::Unavailable, Box::new(error))
    }

    /// Stored data that does not fit: `what` says how.
    pub fn corrupt(what: impl Into<String>) -> Self {
        Self::of_kind(
            StorageErrorKind::Corrupt,
            Box::new(CorruptData(what.into())),
        )
    }

    /// A failure of `kind` with its cause.
    pub fn of_kind(
        kind: StorageErrorKind,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> Self {
        Self { kind, source }
    }

    pub fn kind(&self) -> StorageErrorKind {
        self.kind
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
