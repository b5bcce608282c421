//! The four roles (the `profiles` table) and the permissions each grants.

use std::fmt;
use std::str::FromStr;

use fluxolab_kernel::Permission;
use serde::{Deserialize, Serialize};

/// A member's role in a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Editor,
    Viewer,
}

/// A role code FluxoLab does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; expected owner, admin, editor or viewer")]
pub struct UnknownRole(pub String);

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Editor, Role::Viewer];

    pub const fn code(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    pub const fn display_name(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Editor => "Editor",
            Role::Viewer => "Viewer",
        }
    }

    /// The permissions seeded for this role.
    pub fn grants(self) -> Vec<Permission> {
        use Permission::*;
        let read = [
            WorkflowsRead,
            ExecutionsRead,
            CredentialsRead,
            WebhooksRead,
            MembersRead,
            SettingsRead,
            ActivitiesRead,
        ];
        let edit = [
            WorkflowsWrite,
            WorkflowsRun,
            CredentialsWrite,
            WebhooksWrite,
        ];
        let administer = [MembersManage, SettingsManage, ApiKeysManage];
        match self {
            Role::Owner => Permission::ALL.to_vec(),
            Role::Admin => [&read[..], &edit[..], &administer[..]].concat(),
            Role::Editor => [&read[..], &edit[..]].concat(),
            Role::Viewer => read.to_vec(),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.code() == code)
            .ok_or_else(|| UnknownRole(code.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_manages_billing() {
        for role in Role::ALL {
            assert_eq!(
                role.grants().contains(&Permission::BillingManage),
                role == Role::Owner,
                "{role}"
            );
        }
    }

    #[test]
    fn each_role_holds_everything_the_next_one_holds() {
        for pair in Role::ALL.windows(2) {
            let (stronger, weaker) = (pair[0].grants(), pair[1].grants());
            assert!(
                weaker.iter().all(|p| stronger.contains(p)),
                "{} lacks a grant of {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn viewers_cannot_write() {
        let grants = Role::Viewer.grants();
        assert!(grants.contains(&Permission::WorkflowsRead));
        assert!(!grants.contains(&Permission::WorkflowsWrite));
        assert!(!grants.contains(&Permission::CredentialsWrite));
    }

    #[test]
    fn codes_parse_back() {
        for role in Role::ALL {
            assert_eq!(role.code().parse::<Role>(), Ok(role));
        }
        assert!("superuser".parse::<Role>().is_err());
    }
}
