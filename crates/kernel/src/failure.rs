//! The one vocabulary of why a use case did not happen. Every domain error converts into a
//! [`Failure`] (exhaustively, in its own crate); adapters translate a `Failure` once — the
//! HTTP layer into a problem document with a stable code and status.

use crate::plan_guard::PlanLimitReached;
use crate::unit_of_work::{StorageError, StorageErrorKind};
use crate::{Forbidden, Permission, ValidationErrors};

/// Why a use case refused or failed, in terms every adapter understands.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The input is wrong; each field says how.
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    /// Who is asking is not known (no token, a wrong password, a revoked session).
    #[error("{}", .0.message())]
    Unauthenticated(Unauthenticated),
    /// The principal lacks a permission.
    #[error("missing permission `{0}`")]
    Forbidden(Permission),
    /// The named resource does not exist (or is not visible to the principal).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is valid but the current state does not allow it.
    #[error("{0}")]
    Conflict(Conflict),
    /// One more of something would exceed the plan.
    #[error(transparent)]
    PlanLimit(PlanLimitReached),
    /// A plan change refused because current usage exceeds these limits of the new plan.
    #[error("current usage exceeds the plan's limits")]
    PlanDowngrade(Vec<PlanLimitReached>),
    /// The period's execution quota is used up.
    #[error("the workspace's executions for this period are used up")]
    QuotaExceeded { retry_after_seconds: u64 },
    /// Over a per-minute rate.
    #[error("over the workspace's rate; retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    /// The store cannot be reached now; the same request may succeed later.
    #[error("storage is unavailable")]
    Unavailable(#[source] StorageError),
    /// Anything else: a bug or a broken dependency. The cause is for the log only.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        match error.kind() {
            StorageErrorKind::Unavailable => Failure::Unavailable(error),
            StorageErrorKind::Corrupt | StorageErrorKind::Failed => {
                Failure::Internal(Box::new(error))
            }
        }
    }
}

impl From<Forbidden> for Failure {
    fn from(forbidden: Forbidden) -> Self {
        Failure::Forbidden(forbidden.0)
    }
}

impl From<PlanLimitReached> for Failure {
    fn from(reached: PlanLimitReached) -> Self {
        Failure::PlanLimit(reached)
    }
}

impl From<NoRandomness> for Failure {
    fn from(error: NoRandomness) -> Self {
        Failure::Internal(Box::new(error))
    }
}

/// Why a principal could not be established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unauthenticated {
    /// No valid bearer token (missing, malformed, expired, or its user is gone).
    TokenRequired,
    /// A sign-in with a wrong e-mail address or password (alike, on purpose).
    InvalidCredentials,
    /// The refresh token is invalid, expired or revoked.
    InvalidRefreshToken,
    /// The operation acts on the caller's own account: an API key cannot do it.
    UserTokenRequired,
}

impl Unauthenticated {
    /// Every reason, for tests and documentation.
    pub const ALL: [Unauthenticated; 4] = [
        Unauthenticated::TokenRequired,
        Unauthenticated::InvalidCredentials,
        Unauthenticated::InvalidRefreshToken,
        Unauthenticated::UserTokenRequired,
    ];

    /// What to tell the caller.
    pub const fn message(self) -> &'static str {
        match self {
            Unauthenticated::TokenRequired => "a valid bearer access token is required",
            Unauthenticated::InvalidCredentials => "the e-mail address or password is wrong",
            Unauthenticated::InvalidRefreshToken => {
                "the refresh token is invalid, expired or revoked"
            }
            Unauthenticated::UserTokenRequired => {
                "this operation needs a user's token, not an API key"
            }
        }
    }
}

/// A refusal because of the current state, with a code naming its cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Conflict {
    pub code: ConflictCode,
    /// A sentence for people, naming what is in the way.
    pub detail: String,
}

impl Conflict {
    pub fn new(code: ConflictCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

/// Every cause of a conflict. Each is a stable `code` clients may branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictCode {
    /// An account with this e-mail address exists.
    EmailTaken,
    /// The user is already a member of the workspace.
    AlreadyMember,
    /// The change would leave the workspace without an owner.
    LastOwner,
    /// Active workflows still use the credential.
    CredentialInUse,
    /// Another credential (or secret provider) of the workspace has this name.
    NameTaken,
    /// Only an active API key can be rotated.
    ApiKeyInactive,
    /// The webhook has no workflow active in its environment to run.
    NoActiveWorkflow,
    /// A rejected (unverified) webhook event is never run.
    EventRejected,
    /// A test run did not finish within the time a synchronous test may take.
    TestTimeout,
    /// Environment variables or credentials still reference the secret provider.
    ProviderInUse,
    /// Active workflows still use the connector (or an action an upgrade removes).
    ConnectorInUse,
    /// A connector upgrade must carry a higher version than the installed one.
    VersionNotHigher,
    /// Another workflow active in the environment already exposes an MCP tool of this
    /// name.
    McpToolNameTaken,
}

impl ConflictCode {
    /// Every conflict code, for tests and documentation.
    pub const ALL: [ConflictCode; 13] = [
        ConflictCode::EmailTaken,
        ConflictCode::AlreadyMember,
        ConflictCode::LastOwner,
        ConflictCode::CredentialInUse,
        ConflictCode::NameTaken,
        ConflictCode::ApiKeyInactive,
        ConflictCode::NoActiveWorkflow,
        ConflictCode::EventRejected,
        ConflictCode::TestTimeout,
        ConflictCode::ProviderInUse,
        ConflictCode::ConnectorInUse,
        ConflictCode::VersionNotHigher,
        ConflictCode::McpToolNameTaken,
    ];

    /// The code as clients see it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConflictCode::EmailTaken => "email_taken",
            ConflictCode::AlreadyMember => "already_member",
            ConflictCode::LastOwner => "last_owner",
            ConflictCode::CredentialInUse => "credential_in_use",
            ConflictCode::NameTaken => "name_taken",
            ConflictCode::ApiKeyInactive => "api_key_inactive",
            ConflictCode::NoActiveWorkflow => "no_active_workflow",
            ConflictCode::EventRejected => "event_rejected",
            ConflictCode::TestTimeout => "test_timeout",
            ConflictCode::ProviderInUse => "provider_in_use",
            ConflictCode::ConnectorInUse => "connector_in_use",
            ConflictCode::VersionNotHigher => "version_not_higher",
            ConflictCode::McpToolNameTaken => "mcp_tool_name_taken",
        }
    }
}

/// The randomness source failed (the OS could not provide entropy).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no randomness available")]
pub struct NoRandomness;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn conflict_codes_are_distinct() {
        let codes: HashSet<_> = ConflictCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(codes.len(), ConflictCode::ALL.len());
    }

    #[test]
    fn storage_failures_keep_their_kind() {
        let down = Failure::from(StorageError::unavailable(std::fmt::Error));
        assert!(matches!(down, Failure::Unavailable(_)), "{down:?}");
        let corrupt = Failure::from(StorageError::corrupt("stored plan is not valid"));
        assert!(matches!(corrupt, Failure::Internal(_)), "{corrupt:?}");
    }
}
