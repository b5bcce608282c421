//! Environments resolved from a cached list of each workspace's names and ids.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    EnvironmentDirectory, EnvironmentId, EnvironmentLookup, EnvironmentRef, StorageError, Uow,
    WorkspaceId,
};
use fluxolab_workspace::environments::{Environment, EnvironmentRepository, StatusCounts};
use time::OffsetDateTime;

use super::Change;

/// What resolving needs of one environment: how it is named, and whether it is the
/// workspace's default.
#[derive(Clone, Debug)]
pub(super) struct Known {
    reference: EnvironmentRef,
    is_default: bool,
}

/// What the decorator wraps: the environments' repository and directory in one
/// (`PgEnvironments`).
pub trait EnvironmentStore: EnvironmentRepository + EnvironmentDirectory {}

impl<T: EnvironmentRepository + EnvironmentDirectory + ?Sized> EnvironmentStore for T {}

super::cached_repository!(
    /// An `EnvironmentRepository` that is also the `EnvironmentDirectory`: `resolve`
    /// (asked by every run started through the API) picks from the workspace's names and
    /// ids kept in the [`AuthCache`](super::AuthCache), read once; an environment it saves
    /// evicts its workspace once the unit commits, and migration 31's trigger announces
    /// every other change. While the cache is not in use (no listener: `fluxolab
    /// worker`, or its connection broke) `resolve` asks the directory it wraps.
    CachedEnvironments wraps EnvironmentStore
);

/// The environment `reference` names among `known`, by the rule every directory
/// follows ([`EnvironmentLookup`]).
fn pick(known: &[Known], reference: Option<&str>) -> Option<EnvironmentRef> {
    let found = match EnvironmentLookup::of(reference) {
        EnvironmentLookup::Default => known.iter().find(|known| known.is_default),
        EnvironmentLookup::Id(id) => known.iter().find(|known| known.reference.id == id),
        EnvironmentLookup::Name(name) => known.iter().find(|known| known.reference.name == name),
    };
    found.map(|known| known.reference.clone())
}

#[async_trait]
impl EnvironmentDirectory for CachedEnvironments {
    async fn resolve<'a>(
        &self,
        workspace: WorkspaceId,
        reference: Option<&'a str>,
    ) -> Result<Option<EnvironmentRef>, StorageError> {
        if !self.cache.is_listening() {
            return self.inner.resolve(workspace, reference).await;
        }
        let load = async {
            let environments = self.inner.list(workspace).await?;
            Ok(Arc::new(
                environments
                    .into_iter()
                    .map(|environment| Known {
                        reference: EnvironmentRef {
                            id: environment.id,
                            name: environment.name,
                        },
                        is_default: environment.is_default,
                    })
                    .collect::<Vec<_>>(),
            ))
        };
        let known = self
            .cache
            .read_through(&self.cache.shared.environments, workspace, load)
            .await?;
        Ok(pick(&known, reference))
    }
}

#[async_trait]
impl EnvironmentRepository for CachedEnvironments {
    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Environment>, StorageError> {
        self.inner.list(workspace).await
    }

    async fn find(
        &self,
        workspace: WorkspaceId,
        id: EnvironmentId,
    ) -> Result<Option<Environment>, StorageError> {
        self.inner.find(workspace, id).await
    }

    async fn save(&self, unit: &mut Uow, environment: &Environment) -> Result<(), StorageError> {
        self.inner.save(unit, environment).await?;
        self.cache
            .evict_after_commit(unit, Change::Environments(environment.workspace_id))
    }

    async fn status(
        &self,
        workspace: WorkspaceId,
        id: EnvironmentId,
        since: OffsetDateTime,
    ) -> Result<StatusCounts, StorageError> {
        self.inner.status(workspace, id, since).await
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn known(name: &str, is_default: bool) -> Known {
        Known {
            reference: EnvironmentRef {
                id: EnvironmentId::new(),
                name: name.to_owned(),
            },
            is_default,
        }
    }

    #[test]
    fn a_reference_picks_as_the_database_would() {
        let known = vec![known("staging", false), known("production", true)];
        let name = |found: Option<EnvironmentRef>| found.map(|found| found.name);
        assert_eq!(name(pick(&known, None)).as_deref(), Some("production"));
        assert_eq!(
            name(pick(&known, Some(" staging "))).as_deref(),
            Some("staging")
        );
        let by_id = known[0].reference.id.to_string();
        assert_eq!(name(pick(&known, Some(&by_id))).as_deref(), Some("staging"));
        assert_eq!(pick(&known, Some("Staging")), None, "names are exact");
        assert_eq!(pick(&known, Some(&Uuid::nil().to_string())), None);
    }
}
