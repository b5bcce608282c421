//! Who is acting, in which workspace, with which permissions.

use std::collections::BTreeSet;

use crate::{ApiKeyId, Permission, UserId, WorkspaceId};

/// The identity behind a request: a signed-in user or an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    ApiKey(ApiKeyId),
}

/// An actor resolved against one workspace, with the permissions it holds there.
/// Services call [`Principal::require`] before acting; the HTTP layer is not the only guard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    actor: Actor,
    workspace_id: WorkspaceId,
    permissions: BTreeSet<Permission>,
    /// The environment an API key is bound to: its runs and activations happen there.
    environment: Option<String>,
}

/// The principal lacks a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing permission `{0}`")]
pub struct Forbidden(pub Permission);

impl Principal {
    pub fn new(
        actor: Actor,
        workspace_id: WorkspaceId,
        permissions: impl IntoIterator<Item = Permission>,
    ) -> Self {
        Self {
            actor,
            workspace_id,
            permissions: permissions.into_iter().collect(),
            environment: None,
        }
    }

    /// The same principal, bound to the environment `name` (an API key's).
    #[must_use]
    pub fn bound_to(mut self, environment: Option<String>) -> Self {
        self.environment = environment;
        self
    }

    /// The environment the principal is bound to, if any.
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    pub fn actor(&self) -> Actor {
        self.actor
    }

    /// The user acting, when it is a user (not an API key).
    pub fn user(&self) -> Option<UserId> {
        match self.actor {
            Actor::User(user) => Some(user),
            Actor::ApiKey(_) => None,
        }
    }

    pub fn workspace_id(&self) -> WorkspaceId {
        self.workspace_id
    }

    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// Succeeds when the principal holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), Forbidden> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(Forbidden(permission))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_grants_only_held_permissions() {
        let principal = Principal::new(
            Actor::User(UserId::new()),
            WorkspaceId::new(),
            [Permission::WorkflowsRead],
        );
        assert_eq!(principal.require(Permission::WorkflowsRead), Ok(()));
        assert_eq!(
            principal.require(Permission::WorkflowsWrite),
            Err(Forbidden(Permission::WorkflowsWrite))
        );
    }
}
