//! The workspace use cases: workspaces, members, the activity log. Every change checks
//! the principal's permission here (not only in HTTP) and writes its activity in the
//! same unit of work as the change.

use std::sync::Arc;

use fluxolab_kernel::{
    Actor, AuditEvent, AuditLog, Conflict, ConflictCode, Failure, Forbidden, LimitedResource, Page,
    PageRequest, Permission, PlanGuard, PlanLimitReached, Principal, StorageError,
    UnitOfWorkFactory, UserId, ValidationErrors, WorkspaceId,
};
use serde_json::json;

use crate::Role;
use crate::default_workspace::repick_default;
use crate::model::{Activity, ActivityFilter, Member, Workspace, WorkspaceName};
use crate::ports::{ActivityRepository, AddMemberError, MemberRepository, WorkspaceRepository};
use crate::provisioning::Provisioner;

/// Why a workspace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Conflict(Conflict),
    #[error(transparent)]
    PlanLimit(#[from] PlanLimitReached),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The refusal to leave a workspace without an owner, saying `what` was refused.
fn last_owner(what: &'static str) -> WorkspaceError {
    WorkspaceError::Conflict(Conflict::new(ConflictCode::LastOwner, what))
}

fn already_member() -> WorkspaceError {
    WorkspaceError::Conflict(Conflict::new(
        ConflictCode::AlreadyMember,
        "that user is already a member",
    ))
}

impl From<WorkspaceError> for Failure {
    fn from(error: WorkspaceError) -> Self {
        match error {
            WorkspaceError::Invalid(errors) => Failure::Invalid(errors),
            WorkspaceError::Forbidden(forbidden) => forbidden.into(),
            WorkspaceError::NotFound(what) => Failure::NotFound(what),
            WorkspaceError::Conflict(conflict) => Failure::Conflict(conflict),
            WorkspaceError::PlanLimit(reached) => reached.into(),
            WorkspaceError::Storage(error) => error.into(),
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> WorkspaceError {
    WorkspaceError::Invalid(ValidationErrors::single(field, message))
}

/// Storage the use cases work through.
pub struct WorkspacePorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub workspaces: Arc<dyn WorkspaceRepository>,
    pub members: Arc<dyn MemberRepository>,
    pub activities: Arc<dyn ActivityRepository>,
    pub audit: Arc<dyn AuditLog>,
    /// The plan's limits, checked where members are added.
    pub plans: Arc<dyn PlanGuard>,
    /// What a new workspace gets (the same use case registration provisions with).
    pub provisioner: Arc<Provisioner>,
}

impl std::fmt::Debug for WorkspacePorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspacePorts").finish_non_exhaustive()
    }
}

/// The workspace use cases.
#[derive(Debug)]
pub struct WorkspaceService {
    ports: WorkspacePorts,
}

impl WorkspaceService {
    pub fn new(ports: WorkspacePorts) -> Self {
        Self { ports }
    }

    /// The role and permissions of `user` in `workspace`, or `None` for a non-member.
    #[tracing::instrument(name = "workspaces.principal_for", skip_all, fields(workspace_id = %workspace))]
    pub async fn principal_for(
        &self,
        user: UserId,
        workspace: WorkspaceId,
    ) -> Result<Option<Principal>, StorageError> {
        Ok(self
            .ports
            .members
            .access(workspace, user)
            .await?
            .map(|(_, permissions)| Principal::new(Actor::User(user), workspace, permissions)))
    }

    #[tracing::instrument(name = "workspaces.list", skip_all)]
    pub async fn list(&self, user: UserId) -> Result<Vec<Workspace>, WorkspaceError> {
        Ok(self.ports.workspaces.list_for_user(user).await?)
    }

    /// A workspace the user belongs to; others are "not found", never "forbidden".
    #[tracing::instrument(name = "workspaces.get", skip_all, fields(workspace_id = %workspace))]
    pub async fn get(
        &self,
        user: UserId,
        workspace: WorkspaceId,
    ) -> Result<Workspace, WorkspaceError> {
        self.ports
            .workspaces
            .find_for_member(workspace, user)
            .await?
            .ok_or(WorkspaceError::NotFound("workspace"))
    }

    /// Creates a workspace owned by `user`, provisioned like a personal one (but not
    /// made the default).
    #[tracing::instrument(name = "workspaces.create", skip_all)]
    pub async fn create(&self, user: UserId, name: &str) -> Result<Workspace, WorkspaceError> {
        let name = WorkspaceName::parse(name).map_err(|message| invalid("name", message))?;
        let plan = self
            .ports
            .provisioner
            .additional_plan(user, name)
            .map_err(StorageError::from)?;
        let mut unit = self.ports.units.begin().await?;
        let workspace = self
            .ports
            .provisioner
            .provision(unit.as_mut(), &plan)
            .await?;
        unit.commit().await?;
        self.get(user, workspace).await
    }

    #[tracing::instrument(name = "workspaces.rename", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn rename(&self, principal: &Principal, name: &str) -> Result<(), WorkspaceError> {
        principal.require(Permission::SettingsManage)?;
        let name = WorkspaceName::parse(name).map_err(|message| invalid("name", message))?;
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .workspaces
            .rename(unit.as_mut(), principal.workspace_id(), name.as_str())
            .await?;
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &AuditEvent::by(
                    principal,
                    "workspace.renamed",
                    ("workspace", principal.workspace_id().to_string()),
                    json!({ "name": name.as_str() }),
                ),
            )
            .await?;
        unit.commit().await?;
        Ok(())
    }

    /// Makes `workspace`, one `user` belongs to, their default (else not found).
    #[tracing::instrument(name = "workspaces.set_default", skip_all, fields(workspace_id = %workspace))]
    pub async fn set_default(
        &self,
        user: UserId,
        workspace: WorkspaceId,
    ) -> Result<(), WorkspaceError> {
        // Under the same lock on the user as a removal's re-pick, so a default is never
        // set to a membership being removed at the same time.
        let members = &self.ports.members;
        let mut unit = self.ports.units.begin().await?;
        members.lock_default_of(unit.as_mut(), user).await?;
        let held = members.held_by(unit.as_mut(), user).await?;
        if !held
            .iter()
            .any(|membership| membership.workspace_id == workspace)
        {
            return Err(WorkspaceError::NotFound("workspace"));
        }
        members
            .store_default(unit.as_mut(), user, Some(workspace))
            .await?;
        unit.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "workspaces.members", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn members(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<Member>, WorkspaceError> {
        principal.require(Permission::MembersRead)?;
        Ok(self
            .ports
            .members
            .list(principal.workspace_id(), page)
            .await?)
    }

    /// Adds an existing user, by e-mail, with `role`; enforces the plan's member limit.
    #[tracing::instrument(name = "workspaces.add_member", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn add_member(
        &self,
        principal: &Principal,
        email: &str,
        role: Role,
    ) -> Result<Member, WorkspaceError> {
        principal.require(Permission::MembersManage)?;
        let Actor::User(inviter) = principal.actor() else {
            return Err(Forbidden(Permission::MembersManage).into());
        };
        if role == Role::Owner && !principal.has(Permission::BillingManage) {
            return Err(Forbidden(Permission::BillingManage).into());
        }
        let workspace = principal.workspace_id();
        let user = self
            .ports
            .members
            .user_by_email(email.trim())
            .await?
            .ok_or_else(|| invalid("email", "no FluxoLab account has this e-mail address"))?;
        let mut unit = self.ports.units.begin().await?;
        if let Some(reached) = self
            .ports
            .plans
            .admit(unit.as_mut(), workspace, LimitedResource::Members)
            .await?
        {
            // A full workspace still says so when the user is already in it: that is the
            // cause a client can act on.
            if self.ports.members.find(workspace, user).await?.is_some() {
                return Err(already_member());
            }
            return Err(reached.into());
        }
        self.ports
            .members
            .add(unit.as_mut(), workspace, user, role, inviter)
            .await
            .map_err(|error| match error {
                AddMemberError::AlreadyMember => already_member(),
                AddMemberError::Storage(error) => WorkspaceError::Storage(error),
            })?;
        self.record_member_change(
            unit.as_mut(),
            principal,
            "member.added",
            user,
            json!({ "role": role.code() }),
        )
        .await?;
        unit.commit().await?;
        self.member(workspace, user).await
    }

    #[tracing::instrument(name = "workspaces.change_role", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn change_role(
        &self,
        principal: &Principal,
        user: UserId,
        role: Role,
    ) -> Result<Member, WorkspaceError> {
        principal.require(Permission::MembersManage)?;
        let workspace = principal.workspace_id();
        let member = self.member(workspace, user).await?;
        if (member.role == Role::Owner || role == Role::Owner)
            && !principal.has(Permission::BillingManage)
        {
            return Err(Forbidden(Permission::BillingManage).into());
        }
        let mut unit = self.ports.units.begin().await?;
        self.ports.members.lock(unit.as_mut(), workspace).await?;
        if member.role == Role::Owner
            && role != Role::Owner
            && self.one_owner_at_most(unit.as_mut(), workspace).await?
        {
            return Err(last_owner("the last owner cannot be demoted"));
        }
        self.ports
            .members
            .set_role(unit.as_mut(), workspace, user, role)
            .await?;
        self.record_member_change(
            unit.as_mut(),
            principal,
            "member.role_changed",
            user,
            json!({ "from": member.role.code(), "to": role.code() }),
        )
        .await?;
        unit.commit().await?;
        Ok(Member { role, ..member })
    }

    /// Removes a member; removing oneself is leaving and needs no permission.
    #[tracing::instrument(name = "workspaces.remove_member", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn remove_member(
        &self,
        principal: &Principal,
        user: UserId,
    ) -> Result<(), WorkspaceError> {
        let leaving = principal.actor() == Actor::User(user);
        if !leaving {
            principal.require(Permission::MembersManage)?;
        }
        let workspace = principal.workspace_id();
        let member = self.member(workspace, user).await?;
        if member.role == Role::Owner && !leaving && !principal.has(Permission::BillingManage) {
            return Err(Forbidden(Permission::BillingManage).into());
        }
        let mut unit = self.ports.units.begin().await?;
        self.ports.members.lock(unit.as_mut(), workspace).await?;
        if member.role == Role::Owner && self.one_owner_at_most(unit.as_mut(), workspace).await? {
            return Err(last_owner("the last owner cannot leave or be removed"));
        }
        self.ports
            .members
            .remove(unit.as_mut(), workspace, user)
            .await?;
        repick_default(&*self.ports.members, unit.as_mut(), workspace, user).await?;
        let action = if leaving {
            "member.left"
        } else {
            "member.removed"
        };
        self.record_member_change(
            unit.as_mut(),
            principal,
            action,
            user,
            json!({ "role": member.role.code() }),
        )
        .await?;
        unit.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "workspaces.activities", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn activities(
        &self,
        principal: &Principal,
        filter: &ActivityFilter,
        page: PageRequest,
    ) -> Result<Page<Activity>, WorkspaceError> {
        principal.require(Permission::ActivitiesRead)?;
        Ok(self
            .ports
            .activities
            .list(principal.workspace_id(), filter, page)
            .await?)
    }

    /// The member `user` of `workspace`, or not found.
    async fn member(&self, workspace: WorkspaceId, user: UserId) -> Result<Member, WorkspaceError> {
        self.ports
            .members
            .find(workspace, user)
            .await?
            .ok_or(WorkspaceError::NotFound("member"))
    }

    /// Whether `workspace` has one owner or none, counted inside `unit` (which should hold
    /// the members' lock).
    async fn one_owner_at_most(
        &self,
        unit: &mut fluxolab_kernel::Uow,
        workspace: WorkspaceId,
    ) -> Result<bool, StorageError> {
        Ok(self.ports.members.count_owners(unit, workspace).await? <= 1)
    }

    async fn record_member_change(
        &self,
        unit: &mut fluxolab_kernel::Uow,
        principal: &Principal,
        action: &'static str,
        user: UserId,
        metadata: serde_json::Value,
    ) -> Result<(), StorageError> {
        self.ports
            .audit
            .record_in(
                unit,
                &AuditEvent::by(principal, action, ("user", user.to_string()), metadata),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
    use time::OffsetDateTime;

    use super::*;
    use crate::default_workspace::HeldMembership;
    use crate::ports::{MockActivityRepository, MockMemberRepository, MockWorkspaceRepository};

    fn service(units: MockUnitOfWorkFactory, members: MockMemberRepository) -> WorkspaceService {
        service_with(units, members, fluxolab_kernel::audit::MockAuditLog::new())
    }

    fn service_with(
        units: MockUnitOfWorkFactory,
        members: MockMemberRepository,
        audit: fluxolab_kernel::audit::MockAuditLog,
    ) -> WorkspaceService {
        let workspaces = Arc::new(MockWorkspaceRepository::new());
        let audit = Arc::new(audit);
        WorkspaceService::new(WorkspacePorts {
            units: Arc::new(units),
            workspaces: workspaces.clone(),
            members: Arc::new(members),
            activities: Arc::new(MockActivityRepository::new()),
            audit: audit.clone(),
            plans: Arc::new(fluxolab_kernel::plan_guard::MockPlanGuard::new()),
            provisioner: Arc::new(Provisioner::new(
                workspaces,
                audit,
                None,
                Arc::new(fluxolab_kernel::SystemClock),
            )),
        })
    }

    fn units_recording() -> (MockUnitOfWorkFactory, Arc<std::sync::atomic::AtomicBool>) {
        let unit = RecordingUnitOfWork::default();
        let committed = unit.committed.clone();
        let mut units = MockUnitOfWorkFactory::new();
        units
            .expect_begin()
            .returning(move || Ok(Box::new(unit.clone())));
        (units, committed)
    }

    fn editor(user: UserId) -> Member {
        Member {
            user_id: user,
            email: "member@example.com".into(),
            display_name: "Member".into(),
            role: Role::Editor,
            joined_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn recorded() -> fluxolab_kernel::audit::MockAuditLog {
        let mut audit = fluxolab_kernel::audit::MockAuditLog::new();
        audit.expect_record_in().returning(|_, _| Ok(()));
        audit
    }

    #[tokio::test]
    async fn losing_the_default_workspace_stores_the_picked_one_in_the_same_unit()
    -> Result<(), WorkspaceError> {
        let caller = principal(Role::Admin);
        let workspace = caller.workspace_id();
        let user = UserId::new();
        let (units, committed) = units_recording();
        let admin_elsewhere = HeldMembership {
            workspace_id: WorkspaceId::new(),
            role: Role::Admin,
            joined_at: OffsetDateTime::UNIX_EPOCH + time::Duration::days(2),
        };
        let older_viewer = HeldMembership {
            workspace_id: WorkspaceId::new(),
            role: Role::Viewer,
            joined_at: OffsetDateTime::UNIX_EPOCH,
        };
        let mut members = MockMemberRepository::new();
        members
            .expect_find()
            .returning(move |_, user| Ok(Some(editor(user))));
        members.expect_lock().returning(|_, _| Ok(()));
        let mut sequence = mockall::Sequence::new();
        members
            .expect_remove()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _, _| Ok(()));
        members
            .expect_lock_default_of()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(move |_, _| Ok(Some(workspace)));
        members
            .expect_held_by()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(move |_, _| Ok(vec![older_viewer, admin_elsewhere]));
        let picked = admin_elsewhere.workspace_id;
        members
            .expect_store_default()
            .times(1)
            .in_sequence(&mut sequence)
            .withf(move |_, who, chosen| *who == user && *chosen == Some(picked))
            .returning(|_, _, _| Ok(()));

        service_with(units, members, recorded())
            .remove_member(&caller, user)
            .await?;
        assert!(committed.load(Ordering::SeqCst));
        Ok(())
    }

    #[tokio::test]
    async fn losing_another_workspace_leaves_the_default_alone() -> Result<(), WorkspaceError> {
        let caller = principal(Role::Admin);
        let user = UserId::new();
        let (units, _) = units_recording();
        let mut members = MockMemberRepository::new();
        members
            .expect_find()
            .returning(move |_, user| Ok(Some(editor(user))));
        members.expect_lock().returning(|_, _| Ok(()));
        members.expect_remove().returning(|_, _, _| Ok(()));
        let elsewhere = WorkspaceId::new();
        members
            .expect_lock_default_of()
            .returning(move |_, _| Ok(Some(elsewhere)));
        members.expect_held_by().never();
        members.expect_store_default().never();

        service_with(units, members, recorded())
            .remove_member(&caller, user)
            .await
    }

    #[tokio::test]
    async fn a_default_is_set_only_to_a_membership_held_under_the_users_lock() {
        let user = UserId::new();
        let held = HeldMembership {
            workspace_id: WorkspaceId::new(),
            role: Role::Viewer,
            joined_at: OffsetDateTime::UNIX_EPOCH,
        };
        for (wanted, stored) in [(held.workspace_id, true), (WorkspaceId::new(), false)] {
            let (units, committed) = units_recording();
            let mut members = MockMemberRepository::new();
            let mut sequence = mockall::Sequence::new();
            members
                .expect_lock_default_of()
                .times(1)
                .in_sequence(&mut sequence)
                .returning(|_, _| Ok(None));
            members
                .expect_held_by()
                .times(1)
                .in_sequence(&mut sequence)
                .returning(move |_, _| Ok(vec![held]));
            members
                .expect_store_default()
                .times(usize::from(stored))
                .withf(move |_, who, chosen| *who == user && *chosen == Some(wanted))
                .returning(|_, _, _| Ok(()));
            let result = service(units, members).set_default(user, wanted).await;
            assert_eq!(result.is_ok(), stored, "{result:?}");
            assert_eq!(committed.load(Ordering::SeqCst), stored);
        }
    }

    fn principal(role: Role) -> Principal {
        Principal::new(
            Actor::User(UserId::new()),
            WorkspaceId::new(),
            role.grants(),
        )
    }

    #[tokio::test]
    async fn the_service_refuses_a_viewer_before_touching_storage() {
        let result = service(MockUnitOfWorkFactory::new(), MockMemberRepository::new())
            .add_member(
                &principal(Role::Viewer),
                "someone@example.com",
                Role::Editor,
            )
            .await;
        assert!(matches!(
            result,
            Err(WorkspaceError::Forbidden(Forbidden(
                Permission::MembersManage
            )))
        ));
    }

    #[tokio::test]
    async fn the_last_owner_is_not_demoted_and_nothing_is_committed() {
        let caller = principal(Role::Owner);
        let Actor::User(owner) = caller.actor() else {
            return;
        };
        let unit = RecordingUnitOfWork::default();
        let committed = unit.committed.clone();
        let mut units = MockUnitOfWorkFactory::new();
        units
            .expect_begin()
            .returning(move || Ok(Box::new(unit.clone())));
        let mut members = MockMemberRepository::new();
        members.expect_find().returning(move |_, user| {
            Ok(Some(Member {
                user_id: user,
                email: "owner@example.com".into(),
                display_name: "Owner".into(),
                role: Role::Owner,
                joined_at: OffsetDateTime::UNIX_EPOCH,
            }))
        });
        members.expect_lock().returning(|_, _| Ok(()));
        members.expect_count_owners().returning(|_, _| Ok(1));
        members.expect_set_role().never();

        let result = service(units, members)
            .change_role(&caller, owner, Role::Admin)
            .await;
        assert!(
            matches!(result, Err(WorkspaceError::Conflict(_))),
            "{result:?}"
        );
        assert!(!committed.load(Ordering::SeqCst));
    }
}
