//! What the webhook use cases need from storage and the vault.

use async_trait::async_trait;
use fluxolab_kernel::{
    ExecutionId, Page, PageRequest, StorageError, Uow, UserId, WebhookEventId, WorkflowId,
    WorkspaceId,
};
use serde_json::Value;

use crate::model::{
    Conversation, ConversationId, EventFilter, Message, Registration, Verdict, WebhookEvent,
    WebhookRegistrationId,
};
use crate::whatsapp::Extracted;
use fluxolab_workflows::start::DeliveryRun;

/// Webhook registrations.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RegistrationRepository: Send + Sync {
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Registration>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: WebhookRegistrationId,
    ) -> Result<Option<Registration>, StorageError>;
    /// The registration behind an intake URL (any workspace).
    async fn find_public(&self, public_id: &str) -> Result<Option<Registration>, StorageError>;
    async fn insert(
        &self,
        unit: &mut Uow,
        registration: &Registration,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError>;
    async fn update(&self, unit: &mut Uow, registration: &Registration)
    -> Result<(), StorageError>;
    /// Deletes it with its events; `false` when there was none.
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: WebhookRegistrationId,
    ) -> Result<bool, StorageError>;
    /// Whether `workflow` exists (not archived) in `workspace`.
    async fn workflow_exists(
        &self,
        workspace: WorkspaceId,
        workflow: WorkflowId,
    ) -> Result<bool, StorageError>;
}

/// A delivery to store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub id: WebhookEventId,
    pub workspace_id: WorkspaceId,
    pub registration_id: WebhookRegistrationId,
    pub body_digest: String,
    pub headers: Value,
    pub body: Vec<u8>,
    pub payload: Option<Value>,
}

impl NewEvent {
    /// A delivery to `registration` as received: a new id, the body's digest, and its
    /// JSON parse when it parses.
    pub fn received(
        workspace_id: WorkspaceId,
        registration_id: WebhookRegistrationId,
        body: Vec<u8>,
        headers: Value,
    ) -> Self {
        Self {
            id: WebhookEventId::new(),
            workspace_id,
            registration_id,
            body_digest: crate::intake::body_digest(&body),
            headers,
            payload: serde_json::from_slice(&body).ok(),
            body,
        }
    }
}

/// What makes a delivery a repeat of one seen before for its registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupeKeys {
    /// The body digest's key: a delivery whose body was seen is a duplicate.
    pub body: String,
    /// One per WhatsApp message id: a delivery whose every message was seen is a
    /// duplicate too (Meta may resend a message in a new body).
    pub messages: Vec<String>,
}

impl DedupeKeys {
    /// The keys of a delivery its sender identified (Standard Webhooks' `webhook-id`):
    /// the id alone, so a retry is a duplicate and a new message with the same body is not.
    pub fn sent_as(id: &str) -> Self {
        Self {
            body: format!("webhook-id:{id}"),
            messages: Vec::new(),
        }
    }

    /// The keys of a delivery with body digest `body_digest` carrying `extracted`.
    pub fn of(body_digest: &str, extracted: &Extracted) -> Self {
        Self {
            body: format!("body:{body_digest}"),
            messages: extracted
                .message_ids()
                .map(|id| format!("message:{id}"))
                .collect(),
        }
    }
}

/// An accepted-looking delivery to store with what it starts.
#[derive(Clone, Debug)]
pub struct Recording {
    pub event: NewEvent,
    pub dedupe_keys: DedupeKeys,
    /// The run it queues if it is accepted, as the start use case decided it.
    pub run: DeliveryRun,
    /// The conversations, messages and statuses the payload carries.
    pub extracted: Extracted,
}

impl Recording {
    /// `event` to store with the conversations `extracted` from it: its dedupe keys and
    /// the run it queues when accepted.
    pub fn new(event: NewEvent, extracted: Extracted, run: DeliveryRun) -> Self {
        Self {
            dedupe_keys: DedupeKeys::of(&event.body_digest, &extracted),
            event,
            run,
            extracted,
        }
    }
}

/// What storing an accepted-looking delivery found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub verdict: Verdict,
    /// The execution queued for it (a bound, active workflow and a new delivery).
    pub execution_id: Option<ExecutionId>,
}

/// Webhook events, written by the intake and read by the API.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// In one transaction: the event (a duplicate when its body key, or every one of
    /// its message keys, was seen before for the registration), and for a new one its
    /// decided run (see [`DeliveryRun`]: the bound workflow's deployed version, its
    /// input the payload, or the body as text when it is not JSON) and the
    /// conversations and messages the payload describes. Stores may write deliveries
    /// that arrive together in one transaction; each is judged as if alone.
    async fn record(&self, recording: Recording) -> Result<Recorded, StorageError>;
    /// Gets ready to record, so that the first deliveries wait for nothing else (a server
    /// calls it as it starts). Nothing to do by default.
    fn start(&self) {}
    /// Stores a delivery that is not run: `rejected` (with the reason) or
    /// `quota_exceeded`.
    async fn record_unrun<'a>(
        &self,
        event: &NewEvent,
        verdict: Verdict,
        reason: Option<&'a str>,
    ) -> Result<(), StorageError>;
    async fn list(
        &self,
        workspace: WorkspaceId,
        filter: &EventFilter,
        page: PageRequest,
    ) -> Result<Page<WebhookEvent>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: WebhookEventId,
    ) -> Result<Option<WebhookEvent>, StorageError>;
}

/// Conversations and their messages.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConversationRepository: Send + Sync {
    /// Most recent first.
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Conversation>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: ConversationId,
    ) -> Result<Option<Conversation>, StorageError>;
    /// Newest first.
    async fn messages(
        &self,
        workspace: WorkspaceId,
        conversation: ConversationId,
        page: PageRequest,
    ) -> Result<Page<Message>, StorageError>;
}
