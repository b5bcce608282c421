//! Plan limits where they bite: before a use case adds a counted thing (a workflow, an
//! active workflow, a credential…), it asks the [`PlanGuard`] inside its unit of work.

use async_trait::async_trait;

use crate::{StorageError, Uow, WorkspaceId};

/// Something a plan counts and caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitedResource {
    Members,
    Workflows,
    ActiveWorkflows,
    Credentials,
    ApiKeys,
}

impl LimitedResource {
    /// The name of the limit in the plan (`plans.limits` key).
    pub const fn limit_name(self) -> &'static str {
        match self {
            LimitedResource::Members => "max_members",
            LimitedResource::Workflows => "max_workflows",
            LimitedResource::ActiveWorkflows => "max_active_workflows",
            LimitedResource::Credentials => "max_credentials",
            LimitedResource::ApiKeys => "api_keys",
        }
    }
}

/// The plan allows no more of something.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("plan limit reached: {name} allows {value}, the workspace has {current}")]
pub struct PlanLimitReached {
    /// The limit's name (`max_workflows`…).
    pub name: &'static str,
    pub value: u32,
    pub current: u32,
}

/// Checks plan limits.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PlanGuard: Send + Sync {
    /// Whether one more `resource` fits the workspace's plan. Checked inside `unit`,
    /// which it locks against concurrent checks of the same workspace until it ends.
    async fn admit(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        resource: LimitedResource,
    ) -> Result<Option<PlanLimitReached>, StorageError>;
}

/// Whether new work may start now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Over the workspace's per-minute rate: back off briefly.
    RateLimited {
        retry_after_seconds: u64,
    },
    /// The period's quota is used up: nothing more until the period ends.
    QuotaExceeded {
        retry_after_seconds: u64,
    },
}

/// Quotas and rates of the plan, told apart: `executions_per_month` (the period's
/// quota) and `webhook_events_per_minute` (a rate).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UsageGate: Send + Sync {
    /// A run asked for through the API (`/run`, retries): counted exactly, when the
    /// plan has a quota (a plan without one may be known from a reading a second old).
    async fn admit_run(&self, workspace: WorkspaceId) -> Result<Admission, StorageError>;
    /// A webhook delivery: the workspace's rate, then its quota (which may be up to a
    /// second stale on this hot path).
    async fn admit_delivery(&self, workspace: WorkspaceId) -> Result<Admission, StorageError>;
}
