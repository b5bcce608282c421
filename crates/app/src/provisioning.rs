//! Registration reaches the workspace domain's provisioning through identity's
//! `WorkspaceProvisioner` port; neither domain depends on the other, `app` joins them.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_identity::ports::WorkspaceProvisioner;
use fluxolab_kernel::{StorageError, Uow, UserId, WorkspaceId};
use fluxolab_workspace::Provisioner;

/// A new account's personal workspace, as the workspace domain plans it.
#[derive(Debug, Clone)]
pub struct PersonalWorkspaces(pub Arc<Provisioner>);

#[async_trait]
impl WorkspaceProvisioner for PersonalWorkspaces {
    async fn provision_personal(
        &self,
        uow: &mut Uow,
        owner: UserId,
        owner_name: &str,
    ) -> Result<WorkspaceId, StorageError> {
        Ok(self.0.provision_personal(uow, owner, owner_name).await?)
    }
}
