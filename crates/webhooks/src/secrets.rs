//! Signing secrets kept in the credentials vault (as secrets the vault's owner feature
//! seals and opens; see [`VaultService::store_owned_secret`]).

use async_trait::async_trait;
use fluxolab_credentials::VaultService;
use fluxolab_kernel::{StorageError, Uow, UserId, WorkspaceId};
use uuid::Uuid;

use crate::ports::SigningSecrets;

fn storage(error: impl std::fmt::Display) -> StorageError {
    StorageError::new(std::io::Error::other(error.to_string()))
}

#[async_trait]
impl SigningSecrets for VaultService {
    async fn store(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
        secret: &str,
        created_by: Option<UserId>,
    ) -> Result<Uuid, StorageError> {
        self.store_owned_secret(
            unit,
            workspace,
            name,
            secret,
            created_by.map(|u| u.as_uuid()),
        )
        .await
        .map_err(storage)
    }

    async fn discard(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        credential: Uuid,
    ) -> Result<(), StorageError> {
        self.delete_in(unit, workspace, credential)
            .await
            .map(drop)
            .map_err(storage)
    }

    async fn open(&self, workspace: WorkspaceId, credential: Uuid) -> Result<String, StorageError> {
        self.open_owned_secret(workspace, credential)
            .await
            .map_err(storage)
    }
}
