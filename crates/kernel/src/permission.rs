//! Permission codes. Roles grant them (seeded in the database); services check them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One thing a principal may do inside a workspace. The code (`workflows.read`) is what
/// the database, API keys' scopes and the API use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Permission {
    WorkflowsRead,
    WorkflowsWrite,
    WorkflowsRun,
    ExecutionsRead,
    CredentialsRead,
    CredentialsWrite,
    WebhooksRead,
    WebhooksWrite,
    MembersRead,
    MembersManage,
    SettingsRead,
    SettingsManage,
    BillingManage,
    ApiKeysManage,
    ActivitiesRead,
    /// Opening runs and integrations to internal networks: owners only.
    NetworkManage,
}

/// A permission code that FluxoLab does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission code `{0}`")]
pub struct UnknownPermission(pub String);

impl Permission {
    /// Every permission, in a stable order.
    pub const ALL: [Permission; 16] = [
        Permission::WorkflowsRead,
        Permission::WorkflowsWrite,
        Permission::WorkflowsRun,
        Permission::ExecutionsRead,
        Permission::CredentialsRead,
        Permission::CredentialsWrite,
        Permission::WebhooksRead,
        Permission::WebhooksWrite,
        Permission::MembersRead,
        Permission::MembersManage,
        Permission::SettingsRead,
        Permission::SettingsManage,
        Permission::BillingManage,
        Permission::ApiKeysManage,
        Permission::ActivitiesRead,
        Permission::NetworkManage,
    ];

    /// The stable code, e.g. `workflows.read`.
    pub const fn code(self) -> &'static str {
        match self {
            Permission::WorkflowsRead => "workflows.read",
            Permission::WorkflowsWrite => "workflows.write",
            Permission::WorkflowsRun => "workflows.run",
            Permission::ExecutionsRead => "executions.read",
            Permission::CredentialsRead => "credentials.read",
            Permission::CredentialsWrite => "credentials.write",
            Permission::WebhooksRead => "webhooks.read",
            Permission::WebhooksWrite => "webhooks.write",
            Permission::MembersRead => "members.read",
            Permission::MembersManage => "members.manage",
            Permission::SettingsRead => "settings.read",
            Permission::SettingsManage => "settings.manage",
            Permission::BillingManage => "billing.manage",
            Permission::ApiKeysManage => "api_keys.manage",
            Permission::ActivitiesRead => "activities.read",
            Permission::NetworkManage => "network.manage",
        }
    }

    /// A human description, seeded beside the code.
    pub const fn description(self) -> &'static str {
        match self {
            Permission::WorkflowsRead => "View workflows and their versions",
            Permission::WorkflowsWrite => "Create, edit, activate and archive workflows",
            Permission::WorkflowsRun => "Run and test workflows",
            Permission::ExecutionsRead => "View executions and their steps",
            Permission::CredentialsRead => "View credentials (masked)",
            Permission::CredentialsWrite => "Create, edit, test and delete credentials",
            Permission::WebhooksRead => "View webhook registrations and events",
            Permission::WebhooksWrite => "Manage webhook registrations and replay events",
            Permission::MembersRead => "View workspace members",
            Permission::MembersManage => "Add, remove and change roles of members",
            Permission::SettingsRead => "View workspace settings and usage",
            Permission::SettingsManage => "Change workspace settings and integrations",
            Permission::BillingManage => "Change the plan and view billing history",
            Permission::ApiKeysManage => "Create, rotate and revoke API keys",
            Permission::ActivitiesRead => "View the activity log",
            Permission::NetworkManage => "Let runs and integrations reach internal networks",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|permission| permission.code() == code)
            .ok_or_else(|| UnknownPermission(code.to_owned()))
    }
}

impl From<Permission> for &'static str {
    fn from(permission: Permission) -> Self {
        permission.code()
    }
}

impl TryFrom<String> for Permission {
    type Error = UnknownPermission;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        code.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back_to_its_permission() {
        for permission in Permission::ALL {
            assert_eq!(permission.code().parse::<Permission>(), Ok(permission));
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<_> = Permission::ALL.iter().map(|p| p.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Permission::ALL.len());
    }

    #[test]
    fn unknown_codes_are_refused_by_name() {
        assert_eq!(
            "workflows.delete_everything".parse::<Permission>(),
            Err(UnknownPermission("workflows.delete_everything".into()))
        );
    }

    #[test]
    fn serialises_as_its_code() -> Result<(), serde_json::Error> {
        assert_eq!(
            serde_json::to_string(&Permission::MembersManage)?,
            "\"members.manage\""
        );
        assert_eq!(
            serde_json::from_str::<Permission>("\"billing.manage\"")?,
            Permission::BillingManage
        );
        Ok(())
    }
}
