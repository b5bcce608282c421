//! API keys with `find_by_prefix` cached.

use async_trait::async_trait;
use fluxolab_kernel::{ApiKeyId, Page, PageRequest, StorageError, Uow, WorkspaceId};
use fluxolab_workspace::api_keys::{ApiKey, ApiKeyRepository, KeyAuditEntry, Secret, StoredKey};
use time::OffsetDateTime;

use super::Change;

super::cached_repository!(
    /// An `ApiKeyRepository` whose `find_by_prefix` (asked by every request a key makes) is
    /// served from the [`AuthCache`](super::AuthCache), unknown prefixes included; a key it
    /// creates, revokes or rotates is evicted once its unit commits.
    CachedApiKeys wraps ApiKeyRepository
);

#[async_trait]
impl ApiKeyRepository for CachedApiKeys {
    async fn find_by_prefix(&self, prefix: &str) -> Result<Option<StoredKey>, StorageError> {
        self.cache
            .read_through(
                &self.cache.shared.keys,
                prefix.to_owned(),
                self.inner.find_by_prefix(prefix),
            )
            .await
    }

    async fn touch(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<(), StorageError> {
        self.inner.touch(id, at).await
    }

    async fn audit_refusal(&self, entry: &KeyAuditEntry) -> Result<(), StorageError> {
        self.inner.audit_refusal(entry).await
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, StorageError> {
        self.inner.list(workspace, page).await
    }

    async fn find(
        &self,
        workspace: WorkspaceId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StorageError> {
        self.inner.find(workspace, id).await
    }

    async fn insert(&self, unit: &mut Uow, key: &ApiKey, hash: &[u8]) -> Result<(), StorageError> {
        self.inner.insert(unit, key, hash).await?;
        // Its prefix may be cached as unknown.
        self.cache
            .evict_after_commit(unit, Change::ApiKey(key.prefix.clone()))
    }

    async fn revoke(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: ApiKeyId,
        at: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.inner.revoke(unit, workspace, id, at).await?;
        self.cache.evict_after_commit(unit, Change::ApiKeys)
    }

    async fn rotate(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: ApiKeyId,
        secret: &Secret,
        previous_valid_until: OffsetDateTime,
    ) -> Result<(), StorageError> {
        self.inner
            .rotate(unit, workspace, id, secret, previous_valid_until)
            .await?;
        self.cache.evict_after_commit(unit, Change::ApiKeys)
    }

    async fn audit(&self, unit: &mut Uow, entry: &KeyAuditEntry) -> Result<(), StorageError> {
        self.inner.audit(unit, entry).await
    }

    async fn audit_log(
        &self,
        workspace: WorkspaceId,
        key: ApiKeyId,
        page: PageRequest,
    ) -> Result<Page<KeyAuditEntry>, StorageError> {
        self.inner.audit_log(workspace, key, page).await
    }
}
