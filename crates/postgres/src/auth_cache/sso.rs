//! The accounts an SSO sign-in provisions: a membership it adds is evicted in this
//! process right after it commits.

use async_trait::async_trait;
use fluxolab_kernel::{StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::Role;
use fluxolab_workspace::sso::SsoDirectory;
use fluxolab_workspace::sso::ports::KnownUser;

use super::Change;

super::cached_repository!(
    /// An `SsoDirectory` whose `add_member` evicts the membership (and the user's
    /// profile) once its unit commits, so the user's first request after signing in is
    /// let in by this process whatever the announcement's delay (it may have cached
    /// them as no member when they tried before).
    CachedSsoDirectory wraps SsoDirectory
);

#[async_trait]
impl SsoDirectory for CachedSsoDirectory {
    async fn find_user<'a>(
        &self,
        workspace: WorkspaceId,
        email: &'a str,
    ) -> Result<Option<KnownUser>, StorageError> {
        self.inner.find_user(workspace, email).await
    }

    async fn create_user<'a>(
        &self,
        unit: &mut Uow,
        user: UserId,
        email: &'a str,
        display_name: &'a str,
        workspace: WorkspaceId,
    ) -> Result<(), StorageError> {
        self.inner
            .create_user(unit, user, email, display_name, workspace)
            .await
    }

    async fn add_member(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
    ) -> Result<(), StorageError> {
        self.inner.add_member(unit, workspace, user, role).await?;
        self.cache
            .evict_after_commit(unit, Change::Member { workspace, user })
    }

    async fn role_of(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Role>, StorageError> {
        self.inner.role_of(workspace, user).await
    }
}
