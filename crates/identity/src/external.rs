//! Accounts of users another authority vouches for (an LDAP directory, an identity
//! provider): created with no usable password, and signed in without one.

use fluxolab_kernel::{UserId, WorkspaceId};

use crate::PasswordHash;
use crate::account::{ClientInfo, SignInMethod};
use crate::service::{AccountError, AccountService, TokenPair};

/// What is stored as the password hash of such an account: not a PHC string, so no
/// password ever verifies against it.
const NO_PASSWORD: &str = "!external";

impl PasswordHash {
    /// The hash of an account that has no local password.
    pub fn unusable() -> Self {
        Self::from_stored(NO_PASSWORD.to_owned())
    }
}

impl AccountService {
    /// Opens a session in `workspace` for `user`, whose directory password the caller
    /// checked (and lockout with it). It counts as a password sign-in: a workspace that
    /// enforces SSO stays closed to it, as to a local password.
    #[tracing::instrument(name = "accounts.sign_in_verified", skip_all)]
    pub async fn sign_in_verified(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        client: ClientInfo,
    ) -> Result<TokenPair, AccountError> {
        self.open_session(user, Some(workspace), SignInMethod::Password, client)
            .await
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn no_password_verifies_against_an_unusable_hash() {
        for password in ["", "!external", "correct horse battery"] {
            assert!(!PasswordHash::unusable().verify(&SecretString::from(password.to_owned())));
        }
    }
}
