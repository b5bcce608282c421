//! Webhook registrations, the events they receive, and WhatsApp conversations.

use std::fmt;

use fluxolab_kernel::{
    CredentialId, Cursor, EnvironmentRef, ExecutionId, SecretString, WebhookEventId, WorkflowId,
    WorkspaceId,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

fluxolab_kernel::define_id!(
    /// A webhook registration (not its public intake id, which is a separate secret).
    WebhookRegistrationId
);
fluxolab_kernel::define_id!(
    /// A WhatsApp contact's conversation with a workspace.
    ConversationId
);

/// How deliveries to a registration are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// Meta / WhatsApp Cloud API: `X-Hub-Signature-256` with the app secret, JSON bodies,
    /// the `hub.*` handshake.
    Meta,
    /// Any sender signing the raw body with HMAC-SHA256 in `X-Hub-Signature-256`.
    HmacSha256,
    /// Standard Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature` with a `whsec_…` secret; `webhook-id` is the dedupe key.
    Standard,
    /// Unsigned: the unguessable URL is the only secret.
    None,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Meta,
        Provider::HmacSha256,
        Provider::Standard,
        Provider::None,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            Provider::Meta => "meta",
            Provider::HmacSha256 => "hmac_sha256",
            Provider::Standard => "standard",
            Provider::None => "none",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|provider| provider.code() == code)
    }

    /// Whether deliveries must carry a valid signature.
    pub const fn signed(self) -> bool {
        !matches!(self, Provider::None)
    }
}

/// When the intake answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseMode {
    /// At once, after the event (and its execution) are stored.
    Immediate,
    /// With what the workflow's `webhook.respond` node says (bounded by a timeout).
    RespondNode,
}

impl ResponseMode {
    pub const fn code(self) -> &'static str {
        match self {
            ResponseMode::Immediate => "immediate",
            ResponseMode::RespondNode => "respond_node",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [ResponseMode::Immediate, ResponseMode::RespondNode]
            .into_iter()
            .find(|mode| mode.code() == code)
    }
}

/// What became of a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Accepted,
    /// A retry of a delivery already accepted (same body, or same message ids).
    Duplicate,
    /// Refused (see the event's reason).
    Rejected,
    /// Kept, but not run: the workspace's execution quota is used up.
    QuotaExceeded,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Accepted,
        Verdict::Duplicate,
        Verdict::Rejected,
        Verdict::QuotaExceeded,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Duplicate => "duplicate",
            Verdict::Rejected => "rejected",
            Verdict::QuotaExceeded => "quota_exceeded",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|verdict| verdict.code() == code)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a delivery was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    MissingSignature,
    BadSignature,
    /// A Standard Webhooks timestamp that is not a number or more than five minutes
    /// from now.
    StaleTimestamp,
    InvalidJson,
}

impl RejectReason {
    pub const fn code(self) -> &'static str {
        match self {
            RejectReason::MissingSignature => "missing_signature",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::StaleTimestamp => "stale_timestamp",
            RejectReason::InvalidJson => "invalid_json",
        }
    }
}

/// A webhook registration as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    pub id: WebhookRegistrationId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub provider: Provider,
    pub public_id: String,
    /// SHA-256 (hex) of the handshake token, when one is set.
    pub verify_token_hash: Option<String>,
    pub signing_credential_id: Option<CredentialId>,
    pub workflow_id: Option<WorkflowId>,
    /// The environment its deliveries run in (the version active there).
    pub environment: EnvironmentRef,
    pub response_mode: ResponseMode,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Registration {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }
}

/// A registration to create, as submitted.
#[derive(Clone, Debug, Default)]
pub struct NewRegistration {
    pub name: String,
    pub provider: String,
    pub workflow_id: Option<WorkflowId>,
    pub verify_token: Option<SecretString>,
    pub signing_secret: Option<SecretString>,
    pub response_mode: Option<String>,
    /// An environment's name or id (default: `production`).
    pub environment: Option<String>,
}

/// Changes to a registration; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct RegistrationPatch {
    pub name: Option<String>,
    /// A signed provider needs a secret: one already stored or one given here.
    pub provider: Option<String>,
    /// `Some(None)` unbinds the workflow.
    pub workflow_id: Option<Option<WorkflowId>>,
    /// `Some(None)` removes the token (the handshake then always fails).
    pub verify_token: Option<Option<SecretString>>,
    /// A new signing secret (the old one stops verifying at once).
    pub signing_secret: Option<SecretString>,
    pub response_mode: Option<String>,
    pub enabled: Option<bool>,
    /// Another environment, by name or id.
    pub environment: Option<String>,
}

/// A created registration with the secret it was given, shown this once.
#[derive(Clone, Debug)]
pub struct CreatedRegistration {
    pub registration: Registration,
    /// Set when the secret was generated rather than supplied.
    pub generated_secret: Option<SecretString>,
}

/// One delivery as received and judged.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEvent {
    pub id: WebhookEventId,
    pub workspace_id: WorkspaceId,
    pub registration_id: WebhookRegistrationId,
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub body_digest: String,
    pub headers: Value,
    pub body: Vec<u8>,
    pub payload: Option<Value>,
    pub execution_id: Option<ExecutionId>,
    pub received_at: OffsetDateTime,
}

impl WebhookEvent {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.received_at,
            id: self.id.as_uuid(),
        }
    }
}

/// Filters of event lists.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub registration_id: Option<WebhookRegistrationId>,
    pub verdict: Option<Verdict>,
    pub since: Option<OffsetDateTime>,
}

/// A WhatsApp contact's conversation with the workspace.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub wa_id: String,
    pub name: Option<String>,
    pub phone_number_id: Option<String>,
    pub status: String,
    pub message_count: i32,
    pub unread_count: i32,
    pub last_message_at: Option<OffsetDateTime>,
    pub last_message_preview: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A message of a conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: ConversationId,
    pub message_id: String,
    pub direction: String,
    pub message_type: String,
    pub body: Option<String>,
    pub payload: Value,
    pub status: Option<String>,
    pub sent_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

impl Message {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.sent_at,
            id: self.id,
        }
    }
}
