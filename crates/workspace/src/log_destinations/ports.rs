//! What the log destination use cases need from outside: storage and the senders.

use async_trait::async_trait;
use fluxolab_kernel::outbox::AttemptFailure;
use fluxolab_kernel::{Cursor, PageRequest, StorageError, Uow, WorkspaceId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{DestinationStatus, LogDestination, LogDestinationId, Transport};

/// One delivery attempt (a batch, or a test), as listed by `GET …/deliveries`.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryAttempt {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub destination_id: LogDestinationId,
    pub attempted_at: OffsetDateTime,
    /// Events the attempt carried.
    pub events: u32,
    pub delivered: bool,
    /// The receiver's HTTP status, when it answered one.
    pub status_code: Option<u16>,
    pub latency_ms: u32,
    pub error: Option<String>,
    /// A `POST …/test` delivery.
    pub test: bool,
}

impl DeliveryAttempt {
    /// The attempt that got `answer` for `events` events.
    pub fn of(
        destination: &LogDestination,
        attempted_at: OffsetDateTime,
        events: usize,
        answer: &SinkAnswer,
        test: bool,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            workspace_id: destination.workspace_id,
            destination_id: destination.id,
            attempted_at,
            events: u32::try_from(events).unwrap_or(u32::MAX),
            delivered: answer.result.is_ok(),
            status_code: answer.status_code,
            latency_ms: answer.latency_ms,
            error: answer
                .result
                .as_ref()
                .err()
                .map(|failure| failure.error.clone()),
            test,
        }
    }

    /// The page cursor after this attempt.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.attempted_at,
            id: self.id,
        }
    }
}

/// Destinations in storage. Inserting one also opens its outbox queue, deleting one
/// drops its queue and undelivered events.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LogDestinationRepository: Send + Sync {
    /// The workspace's destinations, oldest first.
    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<LogDestination>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: LogDestinationId,
    ) -> Result<Option<LogDestination>, StorageError>;
    async fn find_by_name<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Option<LogDestination>, StorageError>;
    /// A destination whichever its workspace (for the deliverer, which has only its id).
    async fn get(&self, id: LogDestinationId) -> Result<Option<LogDestination>, StorageError>;
    async fn insert(
        &self,
        unit: &mut Uow,
        destination: &LogDestination,
    ) -> Result<(), StorageError>;
    async fn update(
        &self,
        unit: &mut Uow,
        destination: &LogDestination,
    ) -> Result<(), StorageError>;
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: LogDestinationId,
    ) -> Result<(), StorageError>;
    /// Records how deliveries go (not a change of the configuration: no revision).
    async fn set_health(
        &self,
        unit: &mut Uow,
        id: LogDestinationId,
        status: DestinationStatus,
        failing_since: Option<OffsetDateTime>,
        last_delivered_at: Option<OffsetDateTime>,
    ) -> Result<(), StorageError>;
    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StorageError>;
    /// Deletes the attempts made more than `age` ago (every destination's).
    async fn prune_attempts(&self, age: std::time::Duration) -> Result<u64, StorageError>;
    /// Attempts, newest first, up to `page.fetch_limit()`.
    async fn attempts(
        &self,
        workspace: WorkspaceId,
        id: LogDestinationId,
        page: PageRequest,
    ) -> Result<Vec<DeliveryAttempt>, StorageError>;
}

/// How a send went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkAnswer {
    pub status_code: Option<u16>,
    pub latency_ms: u32,
    pub result: Result<(), AttemptFailure>,
}

impl SinkAnswer {
    /// A send that did not start (no connection was tried).
    pub fn refused(error: impl Into<String>) -> Self {
        Self {
            status_code: None,
            latency_ms: 0,
            result: Err(AttemptFailure::new(error)),
        }
    }
}

/// A syslog receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogTarget {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub app_name: String,
}

/// One RFC 5424 message, before framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogMessage {
    pub timestamp: OffsetDateTime,
    /// RFC 5424 severity: 4 (warning) for failures, 6 (informational) otherwise.
    pub severity: u8,
    /// The event type (`activities`…), also the MSGID.
    pub event_type: String,
    pub workspace_id: String,
    /// The event as JSON.
    pub message: String,
}

/// Sends to receivers, behind the SSRF guard of the workspace.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LogSink: Send + Sync {
    /// POSTs `body` (JSON) with `headers`.
    async fn post(
        &self,
        workspace: WorkspaceId,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> SinkAnswer;
    /// Sends `messages` octet-counted over one connection.
    async fn syslog(
        &self,
        workspace: WorkspaceId,
        target: &SyslogTarget,
        messages: &[SyslogMessage],
    ) -> SinkAnswer;
}
