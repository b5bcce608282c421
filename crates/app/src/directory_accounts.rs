//! The user accounts an LDAP login works with, as the identity domain keeps them: the
//! same lockout as a password login, and accounts created with no usable password.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_identity::ports::{InsertUserError, UserRepository};
use fluxolab_identity::service::{LOCKOUT, MAX_FAILED_LOGINS};
use fluxolab_identity::{DisplayName, EmailAddress, NewUser, PasswordHash};
use fluxolab_kernel::{Clock, StorageError, Uow, UserId};
use fluxolab_workspace::ldap::{DirectoryAccounts, LocalAccount};

/// [`DirectoryAccounts`] over the identity domain's user repository.
pub struct IdentityAccounts {
    pub users: Arc<dyn UserRepository>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IdentityAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityAccounts").finish_non_exhaustive()
    }
}

#[async_trait]
impl DirectoryAccounts for IdentityAccounts {
    async fn find<'a>(&self, email: &'a str) -> Result<Option<LocalAccount>, StorageError> {
        let Ok(email) = EmailAddress::parse(email) else {
            return Ok(None);
        };
        Ok(self
            .users
            .find_for_login(&email)
            .await?
            .map(|record| LocalAccount {
                user_id: record.user_id,
                locked_until: record.locked_until,
            }))
    }

    async fn create<'a>(
        &self,
        unit: &mut Uow,
        email: &'a str,
        display_name: &'a str,
    ) -> Result<UserId, StorageError> {
        let email = EmailAddress::parse(email)
            .map_err(|error| StorageError::corrupt(format!("directory e-mail: {error}")))?;
        // A directory name too long or blank for a display name falls back to the address.
        let display_name = DisplayName::parse(display_name)
            .or_else(|_| DisplayName::parse(email.as_str()))
            .map_err(|error| StorageError::corrupt(format!("directory name: {error}")))?;
        let user = NewUser {
            id: UserId::new(),
            email,
            display_name,
            password_hash: PasswordHash::unusable(),
        };
        self.users
            .insert(unit, &user)
            .await
            .map_err(|error| match error {
                // Found absent a moment ago: another login created it since.
                InsertUserError::EmailTaken => {
                    StorageError::corrupt("the account was created concurrently")
                }
                InsertUserError::Storage(error) => error,
            })?;
        Ok(user.id)
    }

    async fn failed_login(&self, user: UserId) -> Result<(), StorageError> {
        self.users
            .record_failed_login(user, self.clock.now(), MAX_FAILED_LOGINS, LOCKOUT)
            .await
    }

    async fn succeeded_login(&self, user: UserId) -> Result<(), StorageError> {
        self.users
            .record_successful_login(user, self.clock.now())
            .await
    }
}
