//! Secrets a feature owns (a webhook signing secret, a secret environment variable…),
//! sealed in the credentials vault but managed by that feature, not listed as the
//! workspace's credentials.

use async_trait::async_trait;
use uuid::Uuid;

use crate::{SecretString, StorageError, Uow, UserId, WorkspaceId};

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
    ) -> Result<Uuid, StorageError>;
    /// Deletes a vault entry inside `unit`.
    async fn discard(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        credential: Uuid,
    ) -> Result<(), StorageError>;
    /// The secret, to be exposed only where it is used.
    async fn open(
        &self,
        workspace: WorkspaceId,
        credential: Uuid,
    ) -> Result<SecretString, StorageError>;
}
