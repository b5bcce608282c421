//! What the account service needs from the outside world.

use async_trait::async_trait;
use fluxolab_kernel::{StorageError, Uow, UserId, WorkspaceId};
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::account::{
    LoginRecord, Membership, NewSession, NewUser, Session, SessionFamilyId, SessionId, User,
    UserSettings,
};
use crate::password::HashingFailed;
use crate::{EmailAddress, PasswordHash};

/// Why a user could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Users and their security state.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Inserts the user with default settings and security rows.
    async fn insert(&self, uow: &mut Uow, user: &NewUser) -> Result<(), InsertUserError>;
    async fn find_for_login(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<LoginRecord>, StorageError>;
    async fn find_for_login_by_id(&self, user: UserId)
    -> Result<Option<LoginRecord>, StorageError>;
    /// Counts a failure; at `max_attempts` consecutive failures locks until `now + lock`.
    async fn record_failed_login(
        &self,
        user: UserId,
        now: OffsetDateTime,
        max_attempts: u32,
        lock: time::Duration,
    ) -> Result<(), StorageError>;
    async fn record_successful_login(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;
    async fn set_password(
        &self,
        uow: &mut Uow,
        user: UserId,
        hash: &PasswordHash,
        now: OffsetDateTime,
    ) -> Result<(), StorageError>;
    async fn find(&self, user: UserId) -> Result<Option<User>, StorageError>;
    async fn settings(&self, user: UserId) -> Result<Option<UserSettings>, StorageError>;
    async fn save_settings(
        &self,
        user: UserId,
        settings: &UserSettings,
    ) -> Result<(), StorageError>;
    async fn password_changed_at(
        &self,
        user: UserId,
    ) -> Result<Option<OffsetDateTime>, StorageError>;
}

/// A user as `GET /api/auth/me` shows them: their row with the memberships they hold.
/// Kept apart from [`UserRepository`] so that an adapter may serve it from a cache.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserProfiles: Send + Sync {
    /// The user with the memberships they hold in workspaces not archived (oldest
    /// workspace first), read together: one round trip at most.
    async fn find_with_memberships(
        &self,
        user: UserId,
    ) -> Result<Option<(User, Vec<Membership>)>, StorageError>;
}

/// Refresh-token sessions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    async fn create(&self, session: &NewSession) -> Result<(), StorageError>;
    async fn find_by_digest(&self, digest: &[u8; 32]) -> Result<Option<Session>, StorageError>;
    /// Marks `old` rotated and stores `new`, atomically; `false` when `old` was already
    /// rotated or revoked (a concurrent refresh won).
    async fn rotate(
        &self,
        old: SessionId,
        new: &NewSession,
        now: OffsetDateTime,
    ) -> Result<bool, StorageError>;
    async fn revoke_family(
        &self,
        family: SessionFamilyId,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StorageError>;
    /// The live (neither rotated nor revoked nor expired) session of each of the user's
    /// families, newest first.
    async fn list_live(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StorageError>;
    /// Revokes every live session of `user` outside `keep_family`.
    async fn revoke_all_but(
        &self,
        uow: &mut Uow,
        user: UserId,
        keep_family: SessionFamilyId,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StorageError>;
}

/// Creates a new user's personal workspace — everything the workspace domain decides a
/// new account gets, its default workspace included — inside the registration's unit.
/// Implemented outside this crate (`app` hands it to the workspace domain's
/// `Provisioner`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WorkspaceProvisioner: Send + Sync {
    async fn provision_personal(
        &self,
        uow: &mut Uow,
        owner: UserId,
        owner_name: &str,
    ) -> Result<WorkspaceId, StorageError>;
}

/// Password hashing, off the async threads.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: SecretString) -> Result<PasswordHash, HashingFailed>;
    async fn verify(&self, hash: PasswordHash, password: SecretString) -> bool;
}
