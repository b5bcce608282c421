//! Memberships with `access` cached.

use async_trait::async_trait;
use fluxolab_kernel::{Page, PageRequest, Permission, StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::Role;
use fluxolab_workspace::default_workspace::HeldMembership;
use fluxolab_workspace::model::Member;
use fluxolab_workspace::ports::{AddMemberError, MemberRepository};

use super::Change;

super::cached_repository!(
    /// A `MemberRepository` whose `access` (asked by every request a user makes in a
    /// workspace) is served from the [`AuthCache`](super::AuthCache); a membership it adds,
    /// changes or removes is evicted once its unit commits.
    CachedMembers wraps MemberRepository
);

#[async_trait]
impl MemberRepository for CachedMembers {
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Member>, StorageError> {
        self.inner.list(workspace, page).await
    }

    async fn find(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Member>, StorageError> {
        self.inner.find(workspace, user).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserId>, StorageError> {
        self.inner.user_by_email(email).await
    }

    async fn lock(&self, uow: &mut Uow, workspace: WorkspaceId) -> Result<(), StorageError> {
        self.inner.lock(uow, workspace).await
    }

    async fn count_owners(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
    ) -> Result<u32, StorageError> {
        self.inner.count_owners(uow, workspace).await
    }

    async fn add(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
        invited_by: UserId,
    ) -> Result<(), AddMemberError> {
        self.inner
            .add(uow, workspace, user, role, invited_by)
            .await?;
        Ok(self
            .cache
            .evict_after_commit(uow, Change::Member { workspace, user })?)
    }

    async fn set_role(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
    ) -> Result<(), StorageError> {
        self.inner.set_role(uow, workspace, user, role).await?;
        self.cache
            .evict_after_commit(uow, Change::Member { workspace, user })
    }

    async fn remove(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<(), StorageError> {
        self.inner.remove(uow, workspace, user).await?;
        self.cache
            .evict_after_commit(uow, Change::Member { workspace, user })
    }

    async fn lock_default_of(
        &self,
        uow: &mut Uow,
        user: UserId,
    ) -> Result<Option<WorkspaceId>, StorageError> {
        self.inner.lock_default_of(uow, user).await
    }

    async fn held_by(
        &self,
        uow: &mut Uow,
        user: UserId,
    ) -> Result<Vec<HeldMembership>, StorageError> {
        self.inner.held_by(uow, user).await
    }

    async fn store_default(
        &self,
        uow: &mut Uow,
        user: UserId,
        workspace: Option<WorkspaceId>,
    ) -> Result<(), StorageError> {
        self.inner.store_default(uow, user, workspace).await?;
        // The user's profile names their default workspace.
        self.cache.evict_after_commit(uow, Change::User(user))
    }

    async fn access(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<(Role, Vec<Permission>)>, StorageError> {
        self.cache
            .read_through(
                &self.cache.shared.members,
                (workspace, user),
                self.inner.access(workspace, user),
            )
            .await
    }
}
