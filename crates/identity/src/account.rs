//! Accounts as the domain sees them.

use fluxolab_kernel::{UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{EmailAddress, PasswordHash};

fluxolab_kernel::define_id!(
    /// One refresh token of a session family (each rotation stores a new one).
    SessionId
);
fluxolab_kernel::define_id!(
    /// A session: the chain of refresh tokens one login started, revoked together.
    /// Access tokens name it (`sid`).
    SessionFamilyId
);

/// A display name: trimmed, 1–120 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        fluxolab_kernel::validation::bounded_name(raw).map(Self)
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
    pub id: SessionId,
    pub user_id: UserId,
    pub family_id: SessionFamilyId,
    pub token_digest: [u8; 32],
    pub workspace_id: Option<WorkspaceId>,
    pub user_agent: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub method: SignInMethod,
}

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub family_id: SessionFamilyId,
    pub workspace_id: Option<WorkspaceId>,
    pub user_agent: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub rotated_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub method: SignInMethod,
}

/// How a session was opened; its access tokens say so (`auth_method`), so a workspace
/// that enforces SSO can refuse password sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInMethod {
    #[default]
    Password,
    Sso,
}

impl SignInMethod {
    /// The code stored with the session and carried by its tokens.
    pub const fn code(self) -> &'static str {
        match self {
            SignInMethod::Password => "password",
            SignInMethod::Sso => "sso",
        }
    }

    /// The method stored as `code`, if it names one.
    pub fn from_code(code: &str) -> Option<Self> {
        [SignInMethod::Password, SignInMethod::Sso]
            .into_iter()
            .find(|method| method.code() == code)
    }
}

/// Where a request comes from, for sessions and the audit trail.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
}

/// A user's preferences.
#[derive(Clone, Debug, PartialEq)]
pub struct UserSettings {
    pub locale: String,
    pub timezone: String,
    /// `light`, `dark` or `system`.
    pub theme: String,
    /// Notification switches by name, e.g. `{"execution_failed": true}`.
    pub notifications: serde_json::Map<String, serde_json::Value>,
}

impl UserSettings {
    /// Checks every field; all problems at once.
    pub fn validate(&self) -> Result<(), fluxolab_kernel::ValidationErrors> {
        let mut errors = fluxolab_kernel::ValidationErrors::new();
        let locale_ok = {
            let mut parts = self.locale.split('-');
            let language = parts.next().unwrap_or_default();
            (2..=3).contains(&language.len())
                && language.chars().all(|c| c.is_ascii_lowercase())
                && parts.all(|part| {
                    (2..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
                })
        };
        if !locale_ok {
            errors.add("locale", "must be a language tag such as en or pt-BR");
        }
        let timezone_ok = (1..=64).contains(&self.timezone.len())
            && self
                .timezone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
        if !timezone_ok {
            errors.add(
                "timezone",
                "must be an IANA time zone such as Europe/Lisbon or UTC",
            );
        }
        if !matches!(self.theme.as_str(), "light" | "dark" | "system") {
            errors.add("theme", "must be light, dark or system");
        }
        if self.notifications.len() > 50 {
            errors.add("notifications", "must have at most 50 entries");
        }
        for (name, value) in &self.notifications {
            if !value.is_boolean() || name.is_empty() || name.chars().count() > 64 {
                errors.add(
                    format!("notifications.{name}"),
                    "must be true or false, under a name of at most 64 characters",
                );
            }
        }
        errors.into_result(())
    }
}

/// What `GET /api/users/me/security` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityOverview {
    pub password_changed_at: OffsetDateTime,
    /// The live session of each family.
    pub sessions: Vec<Session>,
}
