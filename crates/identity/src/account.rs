//! Accounts as the domain sees them.

use fluxolab_kernel::{UserId, WorkspaceId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{EmailAddress, PasswordHash};

/// A display name: trimmed, 1–120 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        match name.chars().count() {
            0 => Err("must not be empty"),
            1..=120 => Ok(Self(name.to_owned())),
            _ => Err("must be at most 120 characters"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub email: EmailAddress,
    pub display_name: DisplayName,
    pub password_hash: PasswordHash,
}

/// A user as shown to themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub default_workspace_id: Option<WorkspaceId>,
    pub created_at: OffsetDateTime,
}

/// One workspace a user belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub role: String,
}

/// What login needs to know about an account.
#[derive(Clone, Debug)]
pub struct LoginRecord {
    pub user_id: UserId,
    pub password_hash: PasswordHash,
    pub default_workspace_id: Option<WorkspaceId>,
    pub locked_until: Option<OffsetDateTime>,
}

/// A refresh-token session to store.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: UserId,
    pub family_id: Uuid,
    pub token_digest: [u8; 32],
    pub workspace_id: Option<WorkspaceId>,
    pub user_agent: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: UserId,
    pub family_id: Uuid,
    pub workspace_id: Option<WorkspaceId>,
    pub user_agent: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub rotated_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Where a request comes from, for sessions and the audit trail.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
}
