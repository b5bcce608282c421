//! What the LDAP use cases need from the outside: the directory itself, their storage,
//! and the user accounts a login creates or counts failures on.

use async_trait::async_trait;
use fluxolab_kernel::{SecretString, StorageError, Uow, UserId, WorkspaceId};
use time::OffsetDateTime;

use super::model::{LdapLink, LdapSettings, SyncRecord};

/// How to reach and search a directory, the service account's password opened.
#[derive(Clone, Debug)]
pub struct DirectoryConnection {
    pub url: String,
    pub start_tls: bool,
    pub bind_dn: String,
    pub bind_password: SecretString,
    pub base_dn: String,
    /// With `{username}`, replaced by the escaped username.
    pub user_filter: String,
    pub email_attribute: String,
    pub name_attribute: String,
    pub group_base_dn: String,
    /// With `{dn}` and/or `{username}`, replaced by escaped values.
    pub group_filter: String,
    /// Whether the workspace lets integrations reach private networks.
    pub allow_internal_network: bool,
}

/// A user as the directory describes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub dn: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The DNs of the groups the group filter found.
    pub groups: Vec<String>,
}

/// What binding as a user told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// The user filter found no entry (or more than one).
    UnknownUser,
    /// The entry exists; the password was refused.
    WrongPassword(DirectoryEntry),
    Authenticated(DirectoryEntry),
}

/// Why the directory could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryFailure {
    /// Not reachable (DNS, connect, TLS, timeout) or refused by the network guard.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The service account's bind was refused.
    #[error("the service account was refused: {0}")]
    ServiceBindRefused(String),
    /// The directory answered with an error (a bad base DN, a bad filter…).
    #[error("the directory answered: {0}")]
    Protocol(String),
}

/// An LDAP directory.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Directory: Send + Sync {
    /// Looks each username up with the service account, on one connection; `None` for
    /// a username no entry (or more than one) matches.
    async fn lookup(
        &self,
        connection: &DirectoryConnection,
        usernames: &[String],
    ) -> Result<Vec<Option<DirectoryEntry>>, DirectoryFailure>;
    /// Finds the user with the service account, then binds as them with `password`.
    async fn authenticate(
        &self,
        connection: &DirectoryConnection,
        username: &str,
        password: &SecretString,
    ) -> Result<Authentication, DirectoryFailure>;
}

/// LDAP settings and the members LDAP brought in, in storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LdapRepository: Send + Sync {
    async fn find(&self, workspace: WorkspaceId) -> Result<Option<LdapSettings>, StorageError>;
    /// Inserts or replaces the workspace's settings (the sync record is kept).
    async fn save(&self, unit: &mut Uow, settings: &LdapSettings) -> Result<(), StorageError>;
    /// Deletes the settings and the links of the members LDAP brought in.
    async fn delete(&self, unit: &mut Uow, workspace: WorkspaceId) -> Result<(), StorageError>;
    /// The workspace whose id or slug is `reference`.
    async fn resolve_workspace<'a>(
        &self,
        reference: &'a str,
    ) -> Result<Option<WorkspaceId>, StorageError>;
    async fn links(&self, workspace: WorkspaceId) -> Result<Vec<LdapLink>, StorageError>;
    /// Inserts or replaces a link.
    async fn save_link(&self, unit: &mut Uow, link: &LdapLink) -> Result<(), StorageError>;
    async fn delete_link(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<(), StorageError>;
    /// Stores the outcome of a sync and lets the workspace be claimed again.
    async fn record_sync(
        &self,
        workspace: WorkspaceId,
        record: &SyncRecord,
    ) -> Result<(), StorageError>;
    /// Claims up to `limit` workspaces whose periodic sync is due at `now` and that no
    /// other process holds (`SKIP LOCKED`), holding them until `now + hold`.
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
        hold: time::Duration,
    ) -> Result<Vec<WorkspaceId>, StorageError>;
}

/// A user account as an LDAP login needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAccount {
    pub user_id: UserId,
    pub locked_until: Option<OffsetDateTime>,
}

/// The user accounts (identity) an LDAP login reads, creates and counts failures on.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DirectoryAccounts: Send + Sync {
    /// The account with this e-mail address.
    async fn find<'a>(&self, email: &'a str) -> Result<Option<LocalAccount>, StorageError>;
    /// Creates an account with no usable password, inside `unit`.
    async fn create<'a>(
        &self,
        unit: &mut Uow,
        email: &'a str,
        display_name: &'a str,
    ) -> Result<UserId, StorageError>;
    /// Counts a failed login the way password logins do (locking after too many).
    async fn failed_login(&self, user: UserId) -> Result<(), StorageError>;
    async fn succeeded_login(&self, user: UserId) -> Result<(), StorageError>;
}
