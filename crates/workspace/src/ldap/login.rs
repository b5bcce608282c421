//! An LDAP login: the user is found with the service account and bound as with their
//! password; on success the account and the membership are provisioned just in time
//! (one unit of work), with the role the user's groups map to. An unknown workspace or
//! user, a wrong password and a locked account all answer alike; a wrong password
//! counts towards the lockout of the local account, as a password login's does.

use std::sync::Arc;

use fluxolab_kernel::{
    Actor, ExposeSecret, Failure, LimitedResource, PlanLimitReached, SecretString, StorageError,
    Unauthenticated, UserId, ValidationErrors, WorkspaceId, plausible_email,
};
use serde_json::json;

use super::model::{LdapLink, LdapSettings, MAX_PASSWORD};
use super::ports::{Authentication, DirectoryEntry};
use super::sync::{change_role, member_activity};
use super::{LdapPorts, connection_of, require_plan};
use crate::ports::AddMemberError;

/// The longest username accepted.
pub const MAX_USERNAME: usize = 256;

/// Who signed in, and where: the session to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LdapSignIn {
    pub user: UserId,
    pub workspace: WorkspaceId,
}

/// Why an LDAP login failed.
#[derive(Debug, thiserror::Error)]
pub enum LdapLoginError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    /// Unknown workspace or user, wrong password, locked account, LDAP off: alike.
    #[error("the username or password is wrong")]
    InvalidCredentials,
    /// The workspace has no room for one more member.
    #[error(transparent)]
    PlanLimit(#[from] PlanLimitReached),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<LdapLoginError> for Failure {
    fn from(error: LdapLoginError) -> Self {
        match error {
            LdapLoginError::Invalid(errors) => Failure::Invalid(errors),
            LdapLoginError::InvalidCredentials => {
                Failure::Unauthenticated(Unauthenticated::InvalidCredentials)
            }
            LdapLoginError::PlanLimit(reached) => Failure::PlanLimit(reached),
            LdapLoginError::Storage(error) => error.into(),
        }
    }
}

/// The LDAP login use case.
#[derive(Debug)]
pub struct LdapLogin {
    ports: Arc<LdapPorts>,
}

fn check_input(username: &str, password: &SecretString) -> Result<(), LdapLoginError> {
    let mut errors = ValidationErrors::new();
    let length = username.chars().count();
    if !(1..=MAX_USERNAME).contains(&length) || username.chars().any(char::is_control) {
        errors.add("username", "must be 1 to 256 characters, none a control");
    }
    // An empty password would be an unauthenticated bind, which directories accept.
    if !(1..=MAX_PASSWORD).contains(&password.expose_secret().chars().count()) {
        errors.add("password", "must be 1 to 1024 characters");
    }
    errors.into_result(()).map_err(LdapLoginError::Invalid)
}

impl LdapLogin {
    pub fn new(ports: Arc<LdapPorts>) -> Self {
        Self { ports }
    }

    /// Signs `username` in to the workspace whose id or slug is `workspace`.
    #[tracing::instrument(name = "ldap.login", skip_all)]
    pub async fn login(
        &self,
        workspace: &str,
        username: &str,
        password: &SecretString,
    ) -> Result<LdapSignIn, LdapLoginError> {
        check_input(username, password)?;
        let repository = &self.ports.repository;
        let Some(workspace) = repository.resolve_workspace(workspace).await? else {
            return Err(LdapLoginError::InvalidCredentials);
        };
        let settings = match repository.find(workspace).await? {
            Some(settings) if settings.config.enabled => settings,
            _ => return Err(LdapLoginError::InvalidCredentials),
        };
        if require_plan(&*self.ports.billing, workspace).await.is_err() {
            return Err(LdapLoginError::InvalidCredentials);
        }
        let connection = connection_of(&self.ports, &settings).await?;
        let outcome = self
            .ports
            .directory
            .authenticate(&connection, username, password)
            .await;
        let entry = match outcome {
            Ok(Authentication::Authenticated(entry)) => entry,
            Ok(Authentication::WrongPassword(entry)) => {
                if let Some(email) = entry.email.as_deref()
                    && let Some(account) = self.ports.accounts.find(email).await?
                {
                    self.ports.accounts.failed_login(account.user_id).await?;
                }
                return Err(LdapLoginError::InvalidCredentials);
            }
            Ok(Authentication::UnknownUser) => return Err(LdapLoginError::InvalidCredentials),
            Err(failure) => {
                tracing::warn!(error = %failure, workspace_id = %workspace, "LDAP login could not reach the directory");
                return Err(LdapLoginError::InvalidCredentials);
            }
        };
        let Some(email) = entry.email.clone().filter(|email| plausible_email(email)) else {
            tracing::warn!(workspace_id = %workspace, "the directory entry has no usable e-mail address");
            return Err(LdapLoginError::InvalidCredentials);
        };
        let account = self.ports.accounts.find(&email).await?;
        let now = self.ports.clock.now();
        if account.is_some_and(|account| account.locked_until.is_some_and(|until| until > now)) {
            return Err(LdapLoginError::InvalidCredentials);
        }
        let user = self
            .provision(
                &settings,
                username,
                &entry,
                (&email, account.map(|a| a.user_id)),
            )
            .await?;
        self.ports.accounts.succeeded_login(user).await?;
        Ok(LdapSignIn { user, workspace })
    }

    /// Creates the account when there is none, the membership when there is none (with
    /// the mapped role, within the plan's member limit), applies a changed mapping to a
    /// member LDAP brought in before, and links the member; one unit of work.
    async fn provision(
        &self,
        settings: &LdapSettings,
        username: &str,
        entry: &DirectoryEntry,
        (email, account): (&str, Option<UserId>),
    ) -> Result<UserId, LdapLoginError> {
        let ports = &self.ports;
        let workspace = settings.workspace_id;
        let mapped = settings.config.role_for(&entry.groups);
        let mut unit = ports.units.begin().await?;
        ports.members.lock(unit.as_mut(), workspace).await?;
        // Logins to this workspace wait for each other here: one that found no account
        // before looks again, since the login it waited for may have created it.
        let account = match account {
            Some(user) => Some(user),
            None => ports.accounts.find(email).await?.map(|found| found.user_id),
        };
        let user = match account {
            Some(user) => user,
            None => {
                let name = entry.name.as_deref().unwrap_or(username);
                let user = ports.accounts.create(unit.as_mut(), email, name).await?;
                ports
                    .members
                    .store_default(unit.as_mut(), user, Some(workspace))
                    .await?;
                user
            }
        };
        let actor = Some(Actor::User(user));
        let link = ports
            .repository
            .links(workspace)
            .await?
            .into_iter()
            .find(|link| link.user_id == user);
        match ports.members.find(workspace, user).await? {
            None => {
                let admitted = ports
                    .plans
                    .admit(unit.as_mut(), workspace, LimitedResource::Members)
                    .await?;
                if let Some(reached) = admitted {
                    return Err(reached.into());
                }
                // Nobody invited them: the directory did, on their own login.
                ports
                    .members
                    .add(unit.as_mut(), workspace, user, mapped, user)
                    .await
                    .map_err(|error| match error {
                        AddMemberError::AlreadyMember => LdapLoginError::InvalidCredentials,
                        AddMemberError::Storage(error) => error.into(),
                    })?;
                let metadata = json!({"role": mapped.code(), "via": "ldap"});
                let activity = member_activity(workspace, actor, "member.added", user, metadata);
                ports.audit.record_in(unit.as_mut(), &activity).await?;
            }
            // A member linked before whose groups now map elsewhere: as the sync would.
            Some(member) if link.as_ref().is_some_and(|link| link.mapped_role != mapped) => {
                let scope = (workspace, user, actor);
                change_role(ports, unit.as_mut(), scope, member.role, mapped).await?;
            }
            // A member not linked keeps the role an admin gave them.
            Some(_) => {}
        }
        let link = LdapLink {
            workspace_id: workspace,
            user_id: user,
            username: username.to_owned(),
            dn: entry.dn.clone(),
            mapped_role: mapped,
        };
        ports.repository.save_link(unit.as_mut(), &link).await?;
        unit.commit().await?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_password_is_refused_before_any_bind() {
        let empty = SecretString::from(String::new());
        let Err(LdapLoginError::Invalid(errors)) = check_input("ada", &empty) else {
            panic!("expected a validation error");
        };
        assert_eq!(errors.errors()[0].field, "password");
        let control = SecretString::from("pw".to_owned());
        assert!(check_input("ada\u{0}", &control).is_err());
        assert!(check_input("ada", &control).is_ok());
    }
}
