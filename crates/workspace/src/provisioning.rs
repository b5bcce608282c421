//! What a new workspace gets, decided here and stored as given.
//!
//! A [`ProvisioningPlan`] is plain data: the workspace with its name and slug, the
//! environments to create (which one is the default), the plan it subscribes to and
//! the subscription's first period, the owner's membership and role, the first data key
//! (already wrapped, when master keys are at hand) and whether the workspace becomes
//! the owner's default. The storage port ([`WorkspaceRepository::provision`]) writes
//! exactly that and chooses nothing. The [`Provisioner`] builds plans and stores them
//! inside the caller's unit of work, with the `workspace.created` activity.

use std::sync::Arc;

use fluxolab_credentials::envelope::{DataKey, EnvelopeError, MasterKeys};
use fluxolab_credentials::model::{DataKeyId, StoredDataKey};
use fluxolab_kernel::{
    Actor, AuditEvent, AuditLog, Clock, EnvironmentId, StorageError, Uow, UserId, WorkspaceId,
};
use serde_json::json;
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

use crate::model::{NewWorkspace, WorkspaceName};
use crate::ports::WorkspaceRepository;
use crate::{PlanCode, Role};

/// The environments every workspace starts with, in order.
pub const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];
/// The one runs use when they name no environment.
pub const DEFAULT_ENVIRONMENT: &str = "production";
/// The plan a new workspace subscribes to.
pub const STARTING_PLAN: PlanCode = PlanCode::Free;
/// The name used when the owner's name does not make a valid one.
pub const FALLBACK_PERSONAL_NAME: &str = "Personal workspace";

/// An environment to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEnvironment {
    pub id: EnvironmentId,
    pub name: String,
    /// Exactly one environment of a plan is the default.
    pub is_default: bool,
}

/// A subscription period: from `start` (inclusive) to `end` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriptionPeriod {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl SubscriptionPeriod {
    /// The calendar month (UTC) that contains `now`.
    pub fn month_of(now: OffsetDateTime) -> Self {
        let now = now.to_offset(UtcOffset::UTC);
        let first = |year: i32, month: Month| {
            Date::from_calendar_date(year, month, 1)
                .map(|date| date.with_time(Time::MIDNIGHT).assume_utc())
        };
        let start = first(now.year(), now.month()).unwrap_or(now);
        let (year, month) = match now.month() {
            Month::December => (now.year() + 1, Month::January),
            month => (now.year(), month.next()),
        };
        let end = first(year, month).unwrap_or(start + time::Duration::days(31));
        Self { start, end }
    }
}

/// Everything a new workspace gets, decided; the adapter stores it as is.
#[derive(Clone, Debug)]
pub struct ProvisioningPlan {
    /// The workspace, its name and slug, and its first owner.
    pub workspace: NewWorkspace,
    pub environments: Vec<PlannedEnvironment>,
    /// The plan the workspace subscribes to.
    pub plan: PlanCode,
    pub period: SubscriptionPeriod,
    /// The owner's role in the new workspace.
    pub owner_role: Role,
    /// The first data key of the vault, wrapped; `None` lets the vault create it on
    /// first use (e.g. `fluxolab seed`, which runs without `APP_SECRET`).
    pub data_key: Option<StoredDataKey>,
    /// Whether the workspace becomes the owner's default (a new account's first one).
    pub set_as_default: bool,
}

impl ProvisioningPlan {
    /// The first workspace of a new account: made its default.
    pub fn for_new_account(owner: UserId, name: WorkspaceName, now: OffsetDateTime) -> Self {
        Self {
            set_as_default: true,
            ..Self::additional(owner, name, now)
        }
    }

    /// A workspace a user creates besides their others: their default stays as it is.
    pub fn additional(owner: UserId, name: WorkspaceName, now: OffsetDateTime) -> Self {
        let environments = ENVIRONMENTS
            .iter()
            .map(|name| PlannedEnvironment {
                id: EnvironmentId::new(),
                name: (*name).to_owned(),
                is_default: *name == DEFAULT_ENVIRONMENT,
            })
            .collect();
        Self {
            workspace: NewWorkspace::new(owner, name),
            environments,
            plan: STARTING_PLAN,
            period: SubscriptionPeriod::month_of(now),
            owner_role: Role::Owner,
            data_key: None,
            set_as_default: false,
        }
    }

    /// Gives the workspace its first data key (version 1), wrapped under `keys`.
    pub fn with_data_key(mut self, keys: &MasterKeys) -> Result<Self, EnvelopeError> {
        let workspace = self.workspace.id;
        self.data_key = Some(StoredDataKey {
            id: DataKeyId::new(),
            workspace_id: workspace,
            version: 1,
            wrapped: DataKey::generate()?.wrap(keys, workspace)?,
        });
        Ok(self)
    }

    /// The `workspace.created` activity's metadata.
    pub fn activity_metadata(&self) -> serde_json::Value {
        if self.set_as_default {
            json!({ "name": self.workspace.name.as_str(), "personal": true })
        } else {
            json!({ "name": self.workspace.name.as_str() })
        }
    }
}

/// The name of a new account's personal workspace: "{owner}'s workspace", cut to the
/// name's limit, or [`FALLBACK_PERSONAL_NAME`].
pub fn personal_name(owner_name: &str) -> WorkspaceName {
    let title: String = format!("{owner_name}'s workspace")
        .chars()
        .take(120)
        .collect();
    WorkspaceName::parse(&title).unwrap_or_else(|_| WorkspaceName::fallback())
}

/// Why a workspace could not be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    #[error("the workspace's data key could not be made")]
    DataKey(#[from] EnvelopeError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<ProvisioningError> for StorageError {
    fn from(error: ProvisioningError) -> Self {
        match error {
            ProvisioningError::Storage(error) => error,
            ProvisioningError::DataKey(error) => StorageError::new(error),
        }
    }
}

/// The provisioning use case: builds the plan and stores it in the caller's unit.
pub struct Provisioner {
    workspaces: Arc<dyn WorkspaceRepository>,
    audit: Arc<dyn AuditLog>,
    /// With the vault's master keys each workspace gets its first data key at once.
    master: Option<Arc<MasterKeys>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("data_keys", &self.master.is_some())
            .finish_non_exhaustive()
    }
}

impl Provisioner {
    /// `master`: `None` leaves the first data key to the vault (created on first use).
    pub fn new(
        workspaces: Arc<dyn WorkspaceRepository>,
        audit: Arc<dyn AuditLog>,
        master: Option<Arc<MasterKeys>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            workspaces,
            audit,
            master,
            clock,
        }
    }

    /// The personal workspace of a new account, named after its owner.
    pub fn personal_plan(
        &self,
        owner: UserId,
        owner_name: &str,
    ) -> Result<ProvisioningPlan, ProvisioningError> {
        self.keyed(ProvisioningPlan::for_new_account(
            owner,
            personal_name(owner_name),
            self.clock.now(),
        ))
    }

    /// Another workspace `owner` creates.
    pub fn additional_plan(
        &self,
        owner: UserId,
        name: WorkspaceName,
    ) -> Result<ProvisioningPlan, ProvisioningError> {
        self.keyed(ProvisioningPlan::additional(owner, name, self.clock.now()))
    }

    fn keyed(&self, plan: ProvisioningPlan) -> Result<ProvisioningPlan, ProvisioningError> {
        match &self.master {
            Some(master) => Ok(plan.with_data_key(master)?),
            None => Ok(plan),
        }
    }

    /// Stores `plan` and its `workspace.created` activity inside `uow`.
    #[tracing::instrument(name = "workspaces.provision", skip_all, fields(workspace_id = %plan.workspace.id))]
    pub async fn provision(
        &self,
        uow: &mut Uow,
        plan: &ProvisioningPlan,
    ) -> Result<WorkspaceId, StorageError> {
        self.workspaces.provision(uow, plan).await?;
        let workspace = plan.workspace.id;
        self.audit
            .record_in(
                uow,
                &AuditEvent {
                    workspace_id: workspace,
                    actor: Some(Actor::User(plan.workspace.owner)),
                    action: "workspace.created",
                    target: Some(("workspace", workspace.to_string())),
                    metadata: plan.activity_metadata(),
                },
            )
            .await?;
        Ok(workspace)
    }

    /// Provisions a new account's personal workspace inside the registration's unit.
    #[tracing::instrument(name = "workspaces.provision_personal", skip_all)]
    pub async fn provision_personal(
        &self,
        uow: &mut Uow,
        owner: UserId,
        owner_name: &str,
    ) -> Result<WorkspaceId, ProvisioningError> {
        let plan = self.personal_plan(owner, owner_name)?;
        Ok(self.provision(uow, &plan).await?)
    }
}

#[cfg(test)]
#[path = "provisioning_tests.rs"]
mod tests;
