//! What the workspace use cases need from storage.

use async_trait::async_trait;
use fluxolab_kernel::{Page, PageRequest, Permission, StorageError, Uow, UserId, WorkspaceId};

use crate::Role;
use crate::default_workspace::HeldMembership;
use crate::model::{Activity, ActivityFilter, Member, Workspace};
use crate::provisioning::ProvisioningPlan;

/// Workspaces and their provisioning.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WorkspaceRepository: Send + Sync {
    /// Writes exactly what `plan` says, inside `uow`: the workspace (id, name, slug)
    /// with its settings, the planned environments, the subscription to the planned
    /// plan for the planned period, the owner's membership with the planned role, the
    /// data key when there is one, and the owner's default workspace when the plan sets
    /// it. Chooses nothing itself.
    async fn provision(&self, uow: &mut Uow, plan: &ProvisioningPlan) -> Result<(), StorageError>;
    async fn list_for_user(&self, user: UserId) -> Result<Vec<Workspace>, StorageError>;
    /// The workspace when `user` is a member of it.
    async fn find_for_member(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Workspace>, StorageError>;
    async fn rename(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
    ) -> Result<(), StorageError>;
}

/// Why a member could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddMemberError {
    #[error("already a member")]
    AlreadyMember,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Memberships.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MemberRepository: Send + Sync {
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Member>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Member>, StorageError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<UserId>, StorageError>;
    /// Locks the workspace's membership for the rest of the unit (so counts stay true).
    async fn lock(&self, uow: &mut Uow, workspace: WorkspaceId) -> Result<(), StorageError>;
    async fn count_owners(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
    ) -> Result<u32, StorageError>;
    async fn add(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
        invited_by: UserId,
    ) -> Result<(), AddMemberError>;
    async fn set_role(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
    ) -> Result<(), StorageError>;
    async fn remove(
        &self,
        uow: &mut Uow,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<(), StorageError>;
    /// The user's default workspace, the user's row locked for the rest of the unit (so
    /// the default cannot change under a use case that is about to re-pick it).
    async fn lock_default_of(
        &self,
        uow: &mut Uow,
        user: UserId,
    ) -> Result<Option<WorkspaceId>, StorageError>;
    /// Every membership `user` holds (in workspaces not archived), as `uow` sees them.
    async fn held_by(
        &self,
        uow: &mut Uow,
        user: UserId,
    ) -> Result<Vec<HeldMembership>, StorageError>;
    /// Stores the user's default workspace; `None` clears it.
    async fn store_default(
        &self,
        uow: &mut Uow,
        user: UserId,
        workspace: Option<WorkspaceId>,
    ) -> Result<(), StorageError>;
    /// The role and permissions of `user` in `workspace`; `None` when not a member.
    async fn access(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<(Role, Vec<Permission>)>, StorageError>;
}

/// Reading the activity log (every domain writes it through `kernel::AuditLog`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ActivityRepository: Send + Sync {
    async fn list(
        &self,
        workspace: WorkspaceId,
        filter: &ActivityFilter,
        page: PageRequest,
    ) -> Result<Page<Activity>, StorageError>;
}
