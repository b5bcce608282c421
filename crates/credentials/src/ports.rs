//! What the vault needs from storage.

use async_trait::async_trait;
use fluxolab_kernel::{
    CredentialId, ExecutionId, Page, PageRequest, StorageError, Uow, UserId, WorkspaceId,
};

use crate::CredentialKind;
use crate::envelope::WrappedKey;
use crate::model::{CredentialRecord, DataKeyId, ResolvedCredential, StoredDataKey};

/// Why a credential could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteCredentialError {
    #[error("a credential with this name already exists in the workspace")]
    NameTaken,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Workspace data keys.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DataKeyRepository: Send + Sync {
    async fn active(&self, workspace: WorkspaceId) -> Result<Option<StoredDataKey>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: DataKeyId,
    ) -> Result<Option<StoredDataKey>, StorageError>;
    /// Makes `key` the workspace's only active key; `false` when another writer made a
    /// key active first (at `key.version`).
    async fn activate(&self, key: &StoredDataKey) -> Result<bool, StorageError>;
    /// How many keys (of every workspace) are wrapped by KEK `kek_id`.
    async fn count_wrapped_by(&self, kek_id: &str) -> Result<u64, StorageError>;
    /// Up to `limit` keys (of every workspace) wrapped by another KEK than `kek_id`.
    async fn wrapped_by_others(
        &self,
        kek_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredDataKey>, StorageError>;
    /// Replaces a key's wrapping, only if it is still wrapped by `old_kek_id`.
    async fn rewrap(
        &self,
        id: DataKeyId,
        old_kek_id: &str,
        wrapped: &WrappedKey,
    ) -> Result<bool, StorageError>;
}

/// Credential rows.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CredentialRepository: Send + Sync {
    async fn insert(
        &self,
        uow: &mut Uow,
        record: &CredentialRecord,
        created_by: Option<UserId>,
    ) -> Result<(), WriteCredentialError>;
    async fn update(
        &self,
        uow: &mut Uow,
        record: &CredentialRecord,
    ) -> Result<(), WriteCredentialError>;
    /// Re-seals a row under another key, only if it is still sealed under `from_key`.
    async fn reseal(
        &self,
        record: &CredentialRecord,
        from_key: DataKeyId,
    ) -> Result<bool, StorageError>;
    async fn delete(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        id: CredentialId,
    ) -> Result<bool, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: CredentialId,
    ) -> Result<Option<CredentialRecord>, StorageError>;
    /// The workspace's own credentials: every entry but the secrets other features own
    /// (webhook signing secrets, alert secrets, secret environment variables).
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<CredentialRecord>, StorageError>;
    /// Whether `id` is a secret another feature owns (managed there, not through the
    /// credentials API).
    async fn is_owned(
        &self,
        workspace: WorkspaceId,
        id: CredentialId,
    ) -> Result<bool, StorageError>;
    /// Up to `limit` rows of the workspace not sealed under `key`.
    async fn sealed_under_other_keys(
        &self,
        workspace: WorkspaceId,
        key: DataKeyId,
        limit: i64,
    ) -> Result<Vec<CredentialRecord>, StorageError>;
}

/// Why a credential could not be resolved for use.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("credential {0} not found in this workspace")]
    NotFound(CredentialId),
    #[error("credential {id} is a {actual} credential, not {expected}")]
    WrongKind {
        id: CredentialId,
        /// The kinds asked for, e.g. `http_basic or bearer_token`.
        expected: String,
        actual: &'static str,
    },
    #[error("credential {id} cannot be decrypted: {reason}")]
    Unreadable { id: CredentialId, reason: String },
    /// A secret field names a secret provider's secret that could not be read.
    #[error("credential {id}: {failure}")]
    Reference {
        id: CredentialId,
        failure: fluxolab_kernel::ResolveFailure,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What nodes and integrations call to use a credential server-side.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CredentialResolver: Send + Sync {
    async fn resolve(
        &self,
        workspace: WorkspaceId,
        credential: CredentialId,
        expected: &[CredentialKind],
        execution: Option<ExecutionId>,
    ) -> Result<ResolvedCredential, ResolveError>;
}

/// How an SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Tls,
}

/// An SMTP server to try: connect, secure as configured, authenticate.
#[derive(Debug)]
pub struct SmtpProbe {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<secrecy::SecretString>,
    /// Whether the workspace allows loopback/private/link-local targets.
    pub allow_internal: bool,
}

/// How an HTTP probe authenticates.
#[derive(Debug)]
pub enum HttpAuth {
    Basic {
        username: String,
        password: secrecy::SecretString,
    },
    Header {
        name: String,
        value: secrecy::SecretString,
    },
    Bearer(secrecy::SecretString),
}

/// An HTTP endpoint to try with a credential.
#[derive(Debug)]
pub struct HttpProbe {
    pub url: url::Url,
    pub auth: HttpAuth,
    pub allow_internal: bool,
}

/// What a connection test found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub ok: bool,
    /// For people, e.g. `HTTP 401 Unauthorized` or `authenticated`.
    pub message: String,
}

/// Reaches out to check a credential (implemented in `outbound`, behind the SSRF guard).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConnectionTester: Send + Sync {
    async fn smtp(&self, probe: SmtpProbe) -> ProbeOutcome;
    async fn http(&self, probe: HttpProbe) -> ProbeOutcome;
}

/// Whether a workspace lets outbound connections reach internal networks.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NetworkPolicy: Send + Sync {
    async fn allows_internal(&self, workspace: WorkspaceId) -> Result<bool, StorageError>;
}

/// Which active workflows use a credential (implemented beside the workflows' storage).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CredentialUsage: Send + Sync {
    /// Names of the workflows whose active version references `credential`; the rows are
    /// locked for the rest of the unit so no activation slips in before a delete.
    async fn active_workflows_using(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        credential: CredentialId,
    ) -> Result<Vec<String>, StorageError>;
}
