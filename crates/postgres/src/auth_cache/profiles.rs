//! Users' profiles (`GET /api/auth/me`) cached, and the workspace writes that change
//! them evicted in this process right after they commit.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_identity::account::{Membership, User};
use fluxolab_identity::ports::UserProfiles;
use fluxolab_kernel::{StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::model::Workspace;
use fluxolab_workspace::ports::WorkspaceRepository;
use fluxolab_workspace::provisioning::ProvisioningPlan;

use super::Change;

super::cached_repository!(
    /// `UserProfiles` served from the [`AuthCache`](super::AuthCache): a warm
    /// `GET /api/auth/me` reads nothing.
    CachedProfiles wraps UserProfiles
);

#[async_trait]
impl UserProfiles for CachedProfiles {
    async fn find_with_memberships(
        &self,
        user: UserId,
    ) -> Result<Option<(User, Vec<Membership>)>, StorageError> {
        let inner = &self.inner;
        let profile = self
            .cache
            .read_through(&self.cache.shared.profiles, user, async {
                Ok(inner.find_with_memberships(user).await?.map(Arc::new))
            })
            .await?;
        Ok(profile.map(|profile| profile.as_ref().clone()))
    }
}

super::cached_repository!(
    /// A `WorkspaceRepository` whose writes evict, once their unit commits, the profiles
    /// they change in this process (the announcement reaches the others): a new
    /// workspace's owner gains a membership, a renamed workspace shows its new name.
    CachedWorkspaces wraps WorkspaceRepository
);

#[async_trait]
impl WorkspaceRepository for CachedWorkspaces {
    async fn provision(&self, uow: &mut Uow, plan: &ProvisioningPlan) -> Result<(), StorageError> {
        self.inner.provision(uow, plan).await?;
        self.cache
            .evict_after_commit(uow, Change::User(plan.workspace.owner))
    }

    async fn list_for_user(&self, user: UserId) -> Result<Vec<Workspace>, StorageError> {
        self.inner.list_for_user(user).await
    }

    async fn find_for_member(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Workspace>, StorageError> {
        self.inner.find_for_member(workspace, user).await
    }

    async fn rename(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
    ) -> Result<(), StorageError> {
        self.inner.rename(uow, workspace, name).await?;
        self.cache
            .evict_after_commit(uow, Change::Workspace(workspace))
    }
}
