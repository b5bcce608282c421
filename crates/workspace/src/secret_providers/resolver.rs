//! Resolving `secret_ref`s at run time: the provider named in the workspace, its
//! credentials opened, the value read and kept per process for the provider's
//! `cache_ttl_seconds` (0: read every time). Every read from a provider is audited
//! (`secret.resolved`, provider and name, never the value).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fluxolab_kernel::{
    AuditEvent, ResolveFailure, SecretRef, SecretResolver, SecretString, StorageError, WorkspaceId,
};
use serde_json::json;

use super::{ProviderPorts, SecretProvider, connection_of};

/// What a cached value is kept under: the provider at one revision, and the reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    provider: uuid::Uuid,
    revision: i64,
    name: String,
    key: Option<String>,
}

/// The most values one process keeps.
const CACHE_CAPACITY: u64 = 10_000;

/// Resolves references through the workspace's providers.
pub struct ProviderResolver {
    ports: Arc<ProviderPorts>,
    /// Values read, with when they were read.
    cache: moka::sync::Cache<CacheKey, (Instant, SecretString)>,
}

impl std::fmt::Debug for ProviderResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderResolver")
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl ProviderResolver {
    pub fn new(ports: Arc<ProviderPorts>) -> Self {
        Self {
            ports,
            cache: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                // No provider caches longer than a day.
                .time_to_live(Duration::from_secs(u64::from(super::MAX_CACHE_TTL_SECONDS)))
                .build(),
        }
    }

    async fn provider(
        &self,
        workspace: WorkspaceId,
        reference: &SecretRef,
    ) -> Result<SecretProvider, ResolveFailure> {
        let failure = |reason: String| ResolveFailure {
            provider: reference.provider.clone(),
            reason,
        };
        let provider = self
            .ports
            .providers
            .find_by_name(workspace, &reference.provider)
            .await
            .map_err(|error| failure(format!("could not be read: {error}")))?
            .ok_or_else(|| failure("no such provider in this workspace".to_owned()))?;
        if !provider.enabled {
            return Err(failure("the provider is disabled".to_owned()));
        }
        Ok(provider)
    }
}

#[async_trait]
impl SecretResolver for ProviderResolver {
    async fn provider_exists(
        &self,
        workspace: WorkspaceId,
        provider: &str,
    ) -> Result<bool, StorageError> {
        Ok(self
            .ports
            .providers
            .find_by_name(workspace, provider)
            .await?
            .is_some())
    }

    #[tracing::instrument(name = "secret_providers.resolve", skip_all, fields(workspace_id = %workspace))]
    async fn resolve(
        &self,
        workspace: WorkspaceId,
        reference: &SecretRef,
    ) -> Result<SecretString, ResolveFailure> {
        let provider = self.provider(workspace, reference).await?;
        let key = CacheKey {
            provider: provider.id.as_uuid(),
            revision: provider.revision,
            name: reference.name.clone(),
            key: reference.key.clone(),
        };
        let ttl = Duration::from_secs(u64::from(provider.cache_ttl_seconds));
        if let Some((read_at, value)) = self.cache.get(&key)
            && read_at.elapsed() < ttl
        {
            return Ok(value);
        }
        let failure = |reason: String| ResolveFailure {
            provider: reference.provider.clone(),
            reason,
        };
        let connection = connection_of(&self.ports, &provider)
            .await
            .map_err(|error| failure(format!("could not be opened: {error}")))?;
        let value = self
            .ports
            .client
            .resolve(&connection, &reference.name, reference.key.as_deref())
            .await
            .map_err(|error| failure(format!("`{}`: {error}", reference.name)))?;
        if !ttl.is_zero() {
            self.cache.insert(key, (Instant::now(), value.clone()));
        }
        let audited = self
            .ports
            .audit
            .record(&AuditEvent {
                workspace_id: workspace,
                actor: None,
                action: "secret.resolved",
                target: Some(("secret_provider", provider.id.to_string())),
                metadata: json!({
                    "provider": reference.provider,
                    "name": reference.name,
                    "key": reference.key,
                }),
            })
            .await;
        if let Err(error) = audited {
            tracing::warn!(error = %error, "could not record a secret resolution");
        }
        Ok(value)
    }
}
