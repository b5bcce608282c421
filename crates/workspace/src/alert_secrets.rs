//! Alert webhook secrets kept in the credentials vault: a `generic` credential with one
//! secret field, sealed under the workspace's data key.

use async_trait::async_trait;
use fluxolab_credentials::ports::CredentialResolver;
use fluxolab_credentials::{CredentialKind, VaultService};
use fluxolab_kernel::{StorageError, Uow, UserId, WorkspaceId};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::alerts::AlertSecrets;

const FIELD: &str = "signing_secret";

fn storage(error: impl std::fmt::Display) -> StorageError {
    StorageError::new(std::io::Error::other(error.to_string()))
}

#[async_trait]
impl AlertSecrets for VaultService {
    async fn store(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
        secret: &str,
        created_by: Option<UserId>,
    ) -> Result<Uuid, StorageError> {
        let secrets = Map::from_iter([(FIELD.to_owned(), Value::String(secret.to_owned()))]);
        let record = self
            .create_in(
                unit,
                workspace,
                name,
                CredentialKind::Generic,
                secrets,
                created_by.map(|user| user.as_uuid()),
            )
            .await
            .map_err(storage)?;
        Ok(record.id)
    }

    async fn open(&self, workspace: WorkspaceId, credential: Uuid) -> Result<String, StorageError> {
        let resolved = self
            .resolve(workspace, credential, &[CredentialKind::Generic], None)
            .await
            .map_err(storage)?;
        let secrets: Map<String, Value> =
            serde_json::from_slice(&resolved.secrets).map_err(storage)?;
        secrets
            .get(FIELD)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| storage("the alert's secret credential holds no secret"))
    }
}
