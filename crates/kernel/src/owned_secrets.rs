//! Secrets a feature owns (a webhook signing secret, a secret environment variable…),
//! sealed in the credentials vault but managed by that feature, not listed as the
//! workspace's credentials.

use crate::{CredentialId, SecretString, StorageError, Uow, UserId, WorkspaceId};
use async_trait::async_trait;

/// Seals, opens and discards owned secrets.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OwnedSecrets: Send + Sync {
    /// Seals `secret` inside `unit`; returns the vault entry's id.
    async fn store(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
        secret: &SecretString,
        created_by: Option<UserId>,
    ) -> Result<CredentialId, StorageError>;
    /// Deletes a vault entry inside `unit`.
    async fn discard(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        credential: CredentialId,
    ) -> Result<(), StorageError>;
    /// The secret, to be exposed only where it is used.
    async fn open(
        &self,
        workspace: WorkspaceId,
        credential: CredentialId,
    ) -> Result<SecretString, StorageError>;
}
