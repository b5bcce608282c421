//! What the SSO use cases need from outside: the stored configurations, the pending
//! logins and tickets, the accounts a sign-in finds or provisions, and the OpenID
//! provider itself.

use async_trait::async_trait;
use fluxolab_kernel::{SecretString, StorageError, Uow, UserId, WorkspaceId};
use time::OffsetDateTime;

use super::model::SsoConfig;
use crate::{PlanCode, Role};

/// SSO configurations in storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SsoRepository: Send + Sync {
    async fn find(&self, workspace: WorkspaceId) -> Result<Option<SsoConfig>, StorageError>;
    /// The configuration of the workspace with this slug (not archived).
    async fn find_by_slug<'a>(&self, slug: &'a str) -> Result<Option<SsoConfig>, StorageError>;
    /// Inserts or replaces the workspace's configuration.
    async fn save(&self, unit: &mut Uow, config: &SsoConfig) -> Result<(), StorageError>;
    async fn delete(&self, unit: &mut Uow, workspace: WorkspaceId) -> Result<(), StorageError>;
    /// The workspace's current plan.
    async fn plan_of(&self, workspace: WorkspaceId) -> Result<Option<PlanCode>, StorageError>;
}

/// A login waiting for the provider's answer.
#[derive(Debug)]
pub struct PendingLogin {
    /// SHA-256 of the `state` sent to the provider.
    pub state_hash: [u8; 32],
    pub workspace_id: WorkspaceId,
    pub nonce: String,
    pub code_verifier: SecretString,
    pub expires_at: OffsetDateTime,
}

/// A pending login the callback took.
#[derive(Debug)]
pub struct TakenLogin {
    pub login: PendingLogin,
    /// Whether a callback had taken it before (a replayed `state`).
    pub replayed: bool,
}

/// A ticket a finished login handed to the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub ticket_hash: [u8; 32],
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
}

/// Pending logins and tickets: each taken at most once.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SsoLogins: Send + Sync {
    async fn insert_pending(&self, login: &PendingLogin) -> Result<(), StorageError>;
    /// Marks the pending login of this state hash used and returns it, expired or not,
    /// saying whether it was used already.
    async fn take_pending(&self, state_hash: [u8; 32]) -> Result<Option<TakenLogin>, StorageError>;
    async fn insert_ticket(&self, unit: &mut Uow, ticket: &Ticket) -> Result<(), StorageError>;
    /// Removes and returns the ticket of this hash, expired or not.
    async fn take_ticket(&self, ticket_hash: [u8; 32]) -> Result<Option<Ticket>, StorageError>;
}

/// A user as a sign-in finds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownUser {
    pub id: UserId,
    /// Their role in the workspace signed into; `None`: not a member.
    pub role: Option<Role>,
}

/// The accounts a sign-in finds or provisions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SsoDirectory: Send + Sync {
    /// The user with this e-mail address (case-insensitive) and their role in
    /// `workspace`.
    async fn find_user<'a>(
        &self,
        workspace: WorkspaceId,
        email: &'a str,
    ) -> Result<Option<KnownUser>, StorageError>;
    /// Creates a user without a usable password, whose e-mail address the provider
    /// verified and whose default workspace is `workspace`.
    async fn create_user<'a>(
        &self,
        unit: &mut Uow,
        user: UserId,
        email: &'a str,
        display_name: &'a str,
        workspace: WorkspaceId,
    ) -> Result<(), StorageError>;
    /// Adds `user` to `workspace` with `role`.
    async fn add_member(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
    ) -> Result<(), StorageError>;
    /// The role of `user` in `workspace`; `None`: not a member.
    async fn role_of(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Role>, StorageError>;
}

/// What discovery found at a valid issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    pub authorization_endpoint: String,
    /// The ID token signing algorithms the provider advertises (the only ones accepted).
    pub signing_algorithms: Vec<String>,
    /// How many keys its JWKS holds.
    pub keys: usize,
}

/// Where a provider is and who FluxoLab is to it.
#[derive(Debug)]
pub struct ProviderClient {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// `{base}/api/auth/sso/callback`.
    pub redirect_uri: String,
    /// The workspace's `allow_internal_network`.
    pub allow_internal: bool,
}

/// The authorization request a login starts with.
#[derive(Debug)]
pub struct AuthorizationRequest<'a> {
    pub scopes: &'a [String],
    pub state: &'a str,
    pub nonce: &'a str,
    /// Sent as its S256 challenge only.
    pub code_verifier: &'a SecretString,
}

/// The code a provider answered with, and what the ID token must match.
#[derive(Debug)]
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub code_verifier: &'a SecretString,
    pub nonce: &'a str,
    pub groups_claim: &'a str,
}

/// What a verified ID token says about the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// Why talking to the provider failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcFailure {
    /// Refused by the SSRF guard, or no answer.
    #[error("the issuer is unreachable: {0}")]
    Unreachable(String),
    /// The discovery document or JWKS is unusable (wrong issuer, no S256, …).
    #[error("{0}")]
    BadProvider(String),
    /// The ID token's nonce is not the login's.
    #[error("the ID token's nonce does not match the login's")]
    NonceMismatch,
    /// The code exchange or the ID token was refused (signature, issuer, audience,
    /// expiry, algorithm).
    #[error("{0}")]
    Rejected(String),
}

/// An OpenID Connect relying party (authorization code flow with PKCE S256).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OidcClient: Send + Sync {
    /// Fetches `{issuer}/.well-known/openid-configuration` and its JWKS; fails unless
    /// the document names this issuer and supports S256.
    async fn discover<'a>(
        &self,
        issuer: &'a str,
        allow_internal: bool,
    ) -> Result<ProviderInfo, OidcFailure>;
    /// The provider's authorization URL for this login.
    async fn authorization_url<'a>(
        &self,
        client: &'a ProviderClient,
        request: &'a AuthorizationRequest<'a>,
    ) -> Result<String, OidcFailure>;
    /// Exchanges the code and verifies the ID token (signature against the JWKS, `iss`,
    /// `aud`, `exp`, `nonce`, the algorithm the provider advertises).
    async fn exchange<'a>(
        &self,
        client: &'a ProviderClient,
        exchange: &'a CodeExchange<'a>,
    ) -> Result<VerifiedIdentity, OidcFailure>;
}
