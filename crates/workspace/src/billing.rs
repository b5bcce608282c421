//! Plans, subscriptions and usage: where a workspace stands against its plan, plan
//! changes (a downgrade that current usage would break is refused) and the billing
//! history they leave.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    Actor, AuditEvent, AuditLog, Clock, Cursor, EnvironmentId, Failure, Forbidden, Page,
    PageRequest, Permission, PlanLimitReached, Principal, StorageError, UnitOfWorkFactory, Uow,
    UserId, ValidationErrors, WorkspaceId,
};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::plan::{PlanCode, PlanLimits};

/// A workspace's subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    pub plan: PlanCode,
    pub limits: PlanLimits,
    pub status: String,
    pub current_period_start: OffsetDateTime,
    pub current_period_end: OffsetDateTime,
}

/// What a workspace holds and did in the current period, counted from the source tables.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub members: u32,
    pub workflows: u32,
    pub active_workflows: u32,
    pub credentials: u32,
    /// Active (not revoked, not expired) API keys.
    pub api_keys: u32,
    /// Executions created in the period, by status.
    pub executions: BTreeMap<String, u32>,
    /// Webhook events received in the period, by verdict.
    pub webhook_events: BTreeMap<String, u32>,
}

impl Usage {
    /// Executions created in the period, whatever their status.
    pub fn executions_total(&self) -> u32 {
        self.executions.values().sum()
    }

    /// The limits of `limits` that this usage exceeds (for a downgrade).
    pub fn exceeded(&self, limits: &PlanLimits) -> Vec<PlanLimitReached> {
        [
            ("max_members", limits.max_members, self.members),
            ("max_workflows", limits.max_workflows, self.workflows),
            (
                "max_active_workflows",
                limits.max_active_workflows,
                self.active_workflows,
            ),
            ("max_credentials", limits.max_credentials, self.credentials),
            ("api_keys", limits.api_keys, self.api_keys),
            (
                "executions_per_month",
                limits.executions_per_month,
                self.executions_total(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, value, current)| {
            value
                .filter(|value| current > *value)
                .map(|value| PlanLimitReached {
                    name,
                    value,
                    current,
                })
        })
        .collect()
    }
}

/// An environment of the workspace, as the summary lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentLine {
    pub id: EnvironmentId,
    pub name: String,
    pub variables: u32,
}

/// Everything the settings page shows first, read in one round of queries.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingsSummary {
    pub subscription: Subscription,
    pub usage: Usage,
    pub environments: Vec<EnvironmentLine>,
    /// Webhook registrations (the integrations configured so far).
    pub webhooks: u32,
}

/// A metric kept in the daily usage snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageMetric {
    Executions,
    ExecutionsSucceeded,
    ExecutionsFailed,
    WebhookEvents,
    Members,
    Workflows,
    ActiveWorkflows,
    Credentials,
}

impl UsageMetric {
    pub const ALL: [UsageMetric; 8] = [
        UsageMetric::Executions,
        UsageMetric::ExecutionsSucceeded,
        UsageMetric::ExecutionsFailed,
        UsageMetric::WebhookEvents,
        UsageMetric::Members,
        UsageMetric::Workflows,
        UsageMetric::ActiveWorkflows,
        UsageMetric::Credentials,
    ];

    /// Its key in a snapshot's `metrics`.
    pub const fn code(self) -> &'static str {
        match self {
            UsageMetric::Executions => "executions",
            UsageMetric::ExecutionsSucceeded => "executions_succeeded",
            UsageMetric::ExecutionsFailed => "executions_failed",
            UsageMetric::WebhookEvents => "webhook_events",
            UsageMetric::Members => "members",
            UsageMetric::Workflows => "workflows",
            UsageMetric::ActiveWorkflows => "active_workflows",
            UsageMetric::Credentials => "credentials",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|metric| metric.code() == code)
    }
}

/// The longest usage history one request may ask for.
pub const MAX_HISTORY_DAYS: i64 = 366;

/// One entry of the billing history.
#[derive(Clone, Debug, PartialEq)]
pub struct BillingEvent {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    /// `plan_changed` or `period_renewed`.
    pub kind: String,
    pub from_plan: Option<PlanCode>,
    pub to_plan: PlanCode,
    pub actor_user_id: Option<UserId>,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

impl BillingEvent {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// Subscriptions, usage and the billing history.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BillingRepository: Send + Sync {
    async fn subscription(&self, workspace: WorkspaceId) -> Result<Subscription, StorageError>;
    /// Locks the subscription inside `unit` (plan changes and limit checks of the
    /// workspace wait for each other) and reads it.
    async fn lock_subscription(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
    ) -> Result<Subscription, StorageError>;
    /// Usage since `period_start`.
    async fn usage(
        &self,
        workspace: WorkspaceId,
        period_start: OffsetDateTime,
    ) -> Result<Usage, StorageError>;
    /// Usage since `period_start`, read inside `unit`.
    async fn usage_in(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        period_start: OffsetDateTime,
    ) -> Result<Usage, StorageError>;
    /// Moves the subscription to `plan` (its limits as seeded).
    async fn set_plan(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        plan: PlanCode,
    ) -> Result<(), StorageError>;
    async fn record(&self, unit: &mut Uow, event: &BillingEvent) -> Result<(), StorageError>;
    async fn history(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<BillingEvent>, StorageError>;
    /// Starts the next period of every subscription whose period ended by `now`, each
    /// renewal a `period_renewed` billing event; returns how many.
    async fn renew_periods(&self, now: OffsetDateTime) -> Result<u64, StorageError>;
    /// The limits a plan has in the database.
    async fn limits_of(&self, plan: PlanCode) -> Result<PlanLimits, StorageError>;
    /// Upserts a usage snapshot for every workspace and every day from its latest
    /// snapshot (or its creation) through `today`; returns the rows written.
    async fn snapshot_through(&self, today: time::Date) -> Result<u64, StorageError>;
    /// The daily series of `metric` between `from` and `to` (inclusive), days without a
    /// snapshot left out.
    async fn daily(
        &self,
        workspace: WorkspaceId,
        metric: UsageMetric,
        from: time::Date,
        to: time::Date,
    ) -> Result<Vec<(time::Date, i64)>, StorageError>;
    /// The subscription, the period's usage, environments and integrations, together.
    async fn summary(&self, workspace: WorkspaceId) -> Result<SettingsSummary, StorageError>;
}

/// Why a billing operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The usage exceeds these limits of the plan asked for.
    #[error("current usage exceeds the plan's limits")]
    Downgrade(Vec<PlanLimitReached>),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<BillingError> for Failure {
    fn from(error: BillingError) -> Self {
        match error {
            BillingError::Invalid(errors) => Failure::Invalid(errors),
            BillingError::Forbidden(forbidden) => forbidden.into(),
            BillingError::Downgrade(exceeded) => Failure::PlanDowngrade(exceeded),
            BillingError::Storage(error) => error.into(),
        }
    }
}

/// What the billing use cases work with.
pub struct BillingPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub billing: Arc<dyn BillingRepository>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for BillingPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingPorts").finish_non_exhaustive()
    }
}

/// The plan and usage use cases.
#[derive(Debug)]
pub struct BillingService {
    ports: BillingPorts,
}

impl BillingService {
    pub fn new(ports: BillingPorts) -> Self {
        Self { ports }
    }

    /// The workspace's subscription.
    #[tracing::instrument(name = "billing.plan", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn plan(&self, principal: &Principal) -> Result<Subscription, BillingError> {
        principal.require(Permission::SettingsRead)?;
        Ok(self
            .ports
            .billing
            .subscription(principal.workspace_id())
            .await?)
    }

    /// The subscription and the usage of its current period.
    #[tracing::instrument(name = "billing.usage", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn usage(
        &self,
        principal: &Principal,
    ) -> Result<(Subscription, Usage), BillingError> {
        principal.require(Permission::SettingsRead)?;
        let workspace = principal.workspace_id();
        let subscription = self.ports.billing.subscription(workspace).await?;
        let usage = self
            .ports
            .billing
            .usage(workspace, subscription.current_period_start)
            .await?;
        Ok((subscription, usage))
    }

    /// Moves the workspace to `plan` (owners, or `billing.manage`). A plan whose limits
    /// the current usage exceeds is refused, naming each limit; nothing changes then.
    #[tracing::instrument(name = "billing.change_plan", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn change_plan(
        &self,
        principal: &Principal,
        plan: &str,
    ) -> Result<Subscription, BillingError> {
        principal.require(Permission::BillingManage)?;
        let plan: PlanCode = plan.parse().map_err(|error: crate::plan::UnknownPlan| {
            BillingError::Invalid(ValidationErrors::single("plan", error.to_string()))
        })?;
        let workspace = principal.workspace_id();
        let mut unit = self.ports.units.begin().await?;
        let current = self
            .ports
            .billing
            .lock_subscription(unit.as_mut(), workspace)
            .await?;
        if current.plan == plan {
            return Ok(current);
        }
        let usage = self
            .ports
            .billing
            .usage_in(unit.as_mut(), workspace, current.current_period_start)
            .await?;
        let limits = self.ports.billing.limits_of(plan).await?;
        let exceeded = usage.exceeded(&limits);
        if !exceeded.is_empty() {
            return Err(BillingError::Downgrade(exceeded));
        }
        self.ports
            .billing
            .set_plan(unit.as_mut(), workspace, plan)
            .await?;
        let actor = match principal.actor() {
            Actor::User(user) => Some(user),
            Actor::ApiKey(_) => None,
        };
        self.ports
            .billing
            .record(
                unit.as_mut(),
                &BillingEvent {
                    id: Uuid::now_v7(),
                    workspace_id: workspace,
                    kind: "plan_changed".to_owned(),
                    from_plan: Some(current.plan),
                    to_plan: plan,
                    actor_user_id: actor,
                    period_start: current.current_period_start,
                    period_end: current.current_period_end,
                    created_at: self.ports.clock.now(),
                },
            )
            .await?;
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &AuditEvent::by(
                    principal,
                    "plan.changed",
                    ("subscription", workspace.to_string()),
                    json!({"from": current.plan.code(), "to": plan.code()}),
                ),
            )
            .await?;
        unit.commit().await?;
        Ok(self.ports.billing.subscription(workspace).await?)
    }

    /// The settings page's first paint: plan, usage against limits, environments and
    /// integrations.
    #[tracing::instrument(name = "billing.summary", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn summary(&self, principal: &Principal) -> Result<SettingsSummary, BillingError> {
        principal.require(Permission::SettingsRead)?;
        Ok(self.ports.billing.summary(principal.workspace_id()).await?)
    }

    /// The daily usage job: renews subscriptions whose period ended, then upserts
    /// today's snapshot for every workspace and fills any day missed since its last run
    /// (idempotent; safe to run from several workers). Returns the snapshot rows written.
    #[tracing::instrument(name = "billing.snapshot_usage", skip_all)]
    pub async fn snapshot_usage(&self) -> Result<u64, BillingError> {
        let now = self.ports.clock.now();
        let renewed = self.ports.billing.renew_periods(now).await?;
        if renewed > 0 {
            tracing::info!(renewed, "billing periods renewed");
        }
        Ok(self.ports.billing.snapshot_through(now.date()).await?)
    }

    /// The daily series of one metric (default `executions`, last 30 days).
    #[tracing::instrument(name = "billing.usage_history", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn usage_history(
        &self,
        principal: &Principal,
        metric: Option<&str>,
        from: Option<time::Date>,
        to: Option<time::Date>,
    ) -> Result<(UsageMetric, Vec<(time::Date, i64)>), BillingError> {
        principal.require(Permission::SettingsRead)?;
        let invalid = |field: &str, message: String| {
            BillingError::Invalid(ValidationErrors::single(field, message))
        };
        let metric = match metric {
            None => UsageMetric::Executions,
            Some(code) => UsageMetric::from_code(code).ok_or_else(|| {
                let known: Vec<&str> = UsageMetric::ALL.iter().map(|m| m.code()).collect();
                invalid("metric", format!("must be one of {}", known.join(", ")))
            })?,
        };
        let to = to.unwrap_or_else(|| self.ports.clock.now().date());
        let from = from.unwrap_or(to - time::Duration::days(29));
        if from > to {
            return Err(invalid("from", "must not be after `to`".to_owned()));
        }
        if (to - from).whole_days() >= MAX_HISTORY_DAYS {
            return Err(invalid(
                "from",
                format!("the range may cover at most {MAX_HISTORY_DAYS} days"),
            ));
        }
        let series = self
            .ports
            .billing
            .daily(principal.workspace_id(), metric, from, to)
            .await?;
        Ok((metric, series))
    }

    /// The billing history, newest first.
    #[tracing::instrument(name = "billing.history", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn history(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<BillingEvent>, BillingError> {
        principal.require(Permission::SettingsRead)?;
        Ok(self
            .ports
            .billing
            .history(principal.workspace_id(), page)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_downgrade_names_every_limit_the_usage_exceeds() {
        let usage = Usage {
            members: 4,
            workflows: 10,
            active_workflows: 6,
            credentials: 1,
            api_keys: 0,
            executions: BTreeMap::from([("succeeded".to_owned(), 3000)]),
            webhook_events: BTreeMap::new(),
        };
        let names: Vec<&str> = usage
            .exceeded(&PlanCode::Free.default_limits())
            .iter()
            .map(|reached| reached.name)
            .collect();
        // 10 workflows fit a limit of 10; the rest do not.
        assert_eq!(
            names,
            [
                "max_members",
                "max_active_workflows",
                "executions_per_month"
            ]
        );
        assert!(
            usage
                .exceeded(&PlanCode::Enterprise.default_limits())
                .is_empty()
        );
    }
}
