//! The directory sync: every member an LDAP login brought in is looked up again; when
//! the role their groups map to changed, their role changes; when they are no longer
//! found, they lose the membership — never the last owner. Each change is an activity;
//! the outcome is recorded (`last_sync_at`, counts, errors) and, as an integration
//! event, shown in the integrations status. Run by hand (`POST /api/settings/ldap/sync`)
//! or by the workers, which claim due workspaces with `SKIP LOCKED`.

use fluxolab_kernel::{
    Actor, AuditEvent, IntegrationEvent, IntegrationEventKind, IntegrationKind, Principal,
    StorageError, Uow, UserId, WorkspaceId,
};
use serde_json::{Value, json};

use super::model::{LdapConfig, LdapLink, LdapSettings, SyncRecord, SyncResult};
use super::ports::DirectoryEntry;
use super::{LdapError, LdapPorts, LdapService, connection_of, require_plan};
use crate::Role;
use crate::default_workspace::repick_default;

/// How long a worker holds a workspace it syncs before another may take it over.
pub const SYNC_HOLD: time::Duration = time::Duration::minutes(5);

/// What to do with one member LDAP brought in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing changed.
    Keep,
    /// The mapping changed to `mapped`; the member's role becomes it unless it already is.
    Remap { mapped: Role, dn: String },
    /// No longer in the directory.
    Remove,
}

/// What to do with `link`, given what the directory says now (`entry`).
pub fn decide(config: &LdapConfig, link: &LdapLink, entry: Option<&DirectoryEntry>) -> Decision {
    match entry {
        None => Decision::Remove,
        Some(entry) => {
            let mapped = config.role_for(&entry.groups);
            if mapped == link.mapped_role && entry.dn == link.dn {
                Decision::Keep
            } else {
                Decision::Remap {
                    mapped,
                    dn: entry.dn.clone(),
                }
            }
        }
    }
}

/// An activity of the sync (or of a login) about `user`.
pub(crate) fn member_activity(
    workspace: WorkspaceId,
    actor: Option<Actor>,
    action: &'static str,
    user: UserId,
    metadata: Value,
) -> AuditEvent {
    AuditEvent {
        workspace_id: workspace,
        actor,
        action,
        target: Some(("user", user.to_string())),
        metadata,
    }
}

/// Whether `role` is the last owner's, counted inside `unit` (which holds the members'
/// lock): such a member is neither demoted nor removed.
pub(crate) async fn is_last_owner(
    ports: &LdapPorts,
    unit: &mut Uow,
    workspace: WorkspaceId,
    role: Role,
) -> Result<bool, StorageError> {
    Ok(role == Role::Owner && ports.members.count_owners(unit, workspace).await? <= 1)
}

/// Gives `user` the role `to` (from `from`) inside `unit`, with its activity; `false`
/// (and nothing written) when that would demote the last owner.
pub(crate) async fn change_role(
    ports: &LdapPorts,
    unit: &mut Uow,
    (workspace, user, actor): (WorkspaceId, UserId, Option<Actor>),
    from: Role,
    to: Role,
) -> Result<bool, StorageError> {
    if from == to {
        return Ok(true);
    }
    if is_last_owner(ports, unit, workspace, from).await? {
        return Ok(false);
    }
    ports.members.set_role(unit, workspace, user, to).await?;
    let metadata = json!({"from": from.code(), "to": to.code(), "via": "ldap"});
    let activity = member_activity(workspace, actor, "member.role_changed", user, metadata);
    ports.audit.record_in(unit, &activity).await?;
    Ok(true)
}

impl LdapService {
    /// Syncs the workspace now and returns what was done.
    #[tracing::instrument(name = "ldap.sync", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn sync_now(&self, principal: &Principal) -> Result<SyncRecord, LdapError> {
        principal.require(fluxolab_kernel::Permission::SettingsManage)?;
        let settings = self.get(principal).await?;
        require_plan(&*self.ports.billing, settings.workspace_id).await?;
        Ok(sync(&self.ports, &settings, Some(principal.actor())).await?)
    }

    /// Syncs up to `limit` workspaces whose periodic sync is due (claimed so that no
    /// other process syncs them at once); returns how many were synced.
    #[tracing::instrument(name = "ldap.sync_due", skip_all)]
    pub async fn sync_due(&self, limit: u32) -> Result<u32, StorageError> {
        let now = self.ports.clock.now();
        let due = self
            .ports
            .repository
            .claim_due(now, limit, SYNC_HOLD)
            .await?;
        let mut synced = 0;
        for workspace in due {
            let Some(settings) = self.ports.repository.find(workspace).await? else {
                continue;
            };
            let outcome = match require_plan(&*self.ports.billing, workspace).await {
                Ok(()) => sync(&self.ports, &settings, None).await,
                Err(refused) => {
                    let result = SyncResult {
                        errors: vec![refused.to_string()],
                        ..SyncResult::default()
                    };
                    finish(&self.ports, workspace, None, result).await
                }
            };
            match outcome {
                Ok(_) => synced += 1,
                Err(error) => {
                    tracing::warn!(error = %error, workspace_id = %workspace, "LDAP sync failed");
                }
            }
        }
        Ok(synced)
    }
}

/// Looks every linked member up and applies the decisions in one unit of work.
async fn sync(
    ports: &LdapPorts,
    settings: &LdapSettings,
    actor: Option<Actor>,
) -> Result<SyncRecord, StorageError> {
    let workspace = settings.workspace_id;
    let links = ports.repository.links(workspace).await?;
    let mut result = SyncResult {
        checked: u32::try_from(links.len()).unwrap_or(u32::MAX),
        ..SyncResult::default()
    };
    let connection = connection_of(ports, settings).await?;
    let usernames: Vec<String> = links.iter().map(|link| link.username.clone()).collect();
    match ports.directory.lookup(&connection, &usernames).await {
        Err(failure) => result.errors.push(failure.to_string()),
        Ok(found) => {
            let mut unit = ports.units.begin().await?;
            ports.members.lock(unit.as_mut(), workspace).await?;
            for (link, entry) in links.iter().zip(found) {
                let decision = decide(&settings.config, link, entry.as_ref());
                apply(ports, unit.as_mut(), link, decision, actor, &mut result).await?;
            }
            unit.commit().await?;
        }
    }
    finish(ports, workspace, actor, result).await
}

/// Applies one decision about `link` inside `unit`, counting it in `result`.
async fn apply(
    ports: &LdapPorts,
    unit: &mut Uow,
    link: &LdapLink,
    decision: Decision,
    actor: Option<Actor>,
    result: &mut SyncResult,
) -> Result<(), StorageError> {
    let (workspace, user) = (link.workspace_id, link.user_id);
    if decision == Decision::Keep {
        return Ok(());
    }
    let Some(member) = ports.members.find(workspace, user).await? else {
        // The member left or was removed since: nothing to keep in step.
        return ports.repository.delete_link(unit, workspace, user).await;
    };
    match decision {
        Decision::Keep => {}
        Decision::Remove => {
            if is_last_owner(ports, unit, workspace, member.role).await? {
                result.errors.push(format!(
                    "`{}` is no longer in the directory but is the last owner: kept",
                    link.username
                ));
                return Ok(());
            }
            ports.members.remove(unit, workspace, user).await?;
            repick_default(&*ports.members, unit, workspace, user).await?;
            ports.repository.delete_link(unit, workspace, user).await?;
            let metadata =
                json!({"role": member.role.code(), "via": "ldap", "username": link.username});
            let activity = member_activity(workspace, actor, "member.removed", user, metadata);
            ports.audit.record_in(unit, &activity).await?;
            result.removed += 1;
        }
        Decision::Remap { mapped, dn } => {
            let scope = (workspace, user, actor);
            if !change_role(ports, unit, scope, member.role, mapped).await? {
                result.errors.push(format!(
                    "`{}` maps to {mapped} but is the last owner: kept",
                    link.username
                ));
                return Ok(());
            }
            if member.role != mapped {
                result.role_changes += 1;
            }
            let relinked = LdapLink {
                dn,
                mapped_role: mapped,
                ..link.clone()
            };
            ports.repository.save_link(unit, &relinked).await?;
        }
    }
    Ok(())
}

/// Records the outcome: on the settings, and as a `tested` / `test_failed` event.
async fn finish(
    ports: &LdapPorts,
    workspace: WorkspaceId,
    actor: Option<Actor>,
    result: SyncResult,
) -> Result<SyncRecord, StorageError> {
    let record = SyncRecord {
        at: ports.clock.now(),
        result,
    };
    ports.repository.record_sync(workspace, &record).await?;
    let mut details = record.result.to_json();
    let event = match record.result.errors.first() {
        None => IntegrationEventKind::Tested,
        Some(error) => {
            details["error"] = Value::String(error.clone());
            IntegrationEventKind::TestFailed
        }
    };
    details["operation"] = Value::String("sync".to_owned());
    ports
        .integration_events
        .record(&IntegrationEvent {
            workspace_id: workspace,
            kind: IntegrationKind::Ldap,
            integration_id: None,
            event,
            details,
            actor,
        })
        .await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn config() -> LdapConfig {
        LdapConfig {
            url: "ldap://127.0.0.1".to_owned(),
            start_tls: false,
            bind_dn: "cn=svc,dc=x".to_owned(),
            base_dn: "dc=x".to_owned(),
            user_filter: "(uid={username})".to_owned(),
            email_attribute: "mail".to_owned(),
            name_attribute: "cn".to_owned(),
            group_base_dn: None,
            group_filter: "(member={dn})".to_owned(),
            role_mapping: BTreeMap::from([("cn=admins,dc=x".to_owned(), Role::Admin)]),
            default_role: Role::Viewer,
            sync_interval_minutes: 0,
            enabled: true,
        }
    }

    fn link(mapped_role: Role) -> LdapLink {
        LdapLink {
            workspace_id: WorkspaceId::new(),
            user_id: UserId::new(),
            username: "ada".to_owned(),
            dn: "uid=ada,dc=x".to_owned(),
            mapped_role,
        }
    }

    fn entry(groups: &[&str]) -> DirectoryEntry {
        DirectoryEntry {
            dn: "uid=ada,dc=x".to_owned(),
            email: Some("ada@example.com".to_owned()),
            name: Some("Ada".to_owned()),
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
        }
    }

    #[test]
    fn an_unchanged_mapping_is_kept_and_a_changed_one_remapped() {
        let config = config();
        assert_eq!(
            decide(&config, &link(Role::Viewer), Some(&entry(&[]))),
            Decision::Keep
        );
        assert_eq!(
            decide(
                &config,
                &link(Role::Viewer),
                Some(&entry(&["cn=admins,dc=x"]))
            ),
            Decision::Remap {
                mapped: Role::Admin,
                dn: "uid=ada,dc=x".to_owned()
            }
        );
    }

    #[test]
    fn a_member_no_longer_found_is_removed() {
        assert_eq!(
            decide(&config(), &link(Role::Admin), None),
            Decision::Remove
        );
    }
}
