//! The vault as the [`OwnedSecrets`] other features keep their secrets in (webhook
//! signing secrets, alert secrets, secret environment variables).

use async_trait::async_trait;
use fluxolab_kernel::{
    CredentialId, ExposeSecret, OwnedSecrets, SecretString, StorageError, Uow, UserId, WorkspaceId,
};

use crate::ports::ResolveError;
use crate::{VaultError, VaultService};

/// A vault failure as the storage failure of the feature keeping its secret there.
fn storage(error: VaultError) -> StorageError {
    match error {
        VaultError::Storage(error) => error,
        other => StorageError::new(other),
    }
}

/// A secret that cannot be opened: missing or unreadable data is corrupt storage.
fn unopened(error: ResolveError) -> StorageError {
    match error {
        ResolveError::Storage(error) => error,
        other => StorageError::corrupt(other.to_string()),
    }
}

#[async_trait]
impl OwnedSecrets for VaultService {
    async fn store(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
        secret: &SecretString,
        created_by: Option<UserId>,
    ) -> Result<CredentialId, StorageError> {
        self.store_owned_secret(unit, workspace, name, secret.expose_secret(), created_by)
            .await
            .map_err(storage)
    }

    async fn discard(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        credential: CredentialId,
    ) -> Result<(), StorageError> {
        self.delete_in(unit, workspace, credential)
            .await
            .map(drop)
            .map_err(storage)
    }

    async fn open(
        &self,
        workspace: WorkspaceId,
        credential: CredentialId,
    ) -> Result<SecretString, StorageError> {
        self.open_owned_secret(workspace, credential)
            .await
            .map(SecretString::from)
            .map_err(unopened)
    }
}
