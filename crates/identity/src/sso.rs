//! Sessions opened by single sign-on: the workspace's identity provider vouched for the
//! user (the workspace domain checked the login and its ticket), so no password is
//! asked; the tokens say `auth_method: sso`.

use fluxolab_kernel::{UserId, WorkspaceId};

use crate::account::{ClientInfo, SignInMethod};
use crate::service::{AccountError, AccountService, TokenPair};

impl AccountService {
    /// Opens an SSO session for `user`, active in `workspace`.
    #[tracing::instrument(name = "accounts.sign_in_by_sso", skip_all, fields(workspace_id = %workspace))]
    pub async fn sign_in_by_sso(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        client: ClientInfo,
    ) -> Result<TokenPair, AccountError> {
        self.open_session(user, Some(workspace), SignInMethod::Sso, client)
            .await
    }
}
