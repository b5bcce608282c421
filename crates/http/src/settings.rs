//! `/api/settings/plan`, `/api/settings/billing/history` and `/api/settings/usage`:
//! where the workspace stands against its plan.

use std::collections::BTreeMap;

use actix_web::web::{Data, Query};
use actix_web::{HttpResponse, get, post};
use fluxolab_kernel::IntegrationKind;
use fluxolab_workspace::billing::{BillingEvent, Subscription, Usage};
use fluxolab_workspace::{PlanCode, PlanLimits};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::problem::Problem;
use crate::workspaces::{PageQuery, PageResponse, page_request};

/// A plan's limits; `null` is unlimited.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LimitsResponse {
    pub max_members: Option<u32>,
    pub max_workflows: Option<u32>,
    pub max_active_workflows: Option<u32>,
    pub max_credentials: Option<u32>,
    pub executions_per_month: Option<u32>,
    pub webhook_events_per_minute: Option<u32>,
    pub execution_retention_days: Option<u32>,
    pub api_keys: Option<u32>,
}

impl From<PlanLimits> for LimitsResponse {
    fn from(limits: PlanLimits) -> Self {
        Self {
            max_members: limits.max_members,
            max_workflows: limits.max_workflows,
            max_active_workflows: limits.max_active_workflows,
            max_credentials: limits.max_credentials,
            executions_per_month: limits.executions_per_month,
            webhook_events_per_minute: limits.webhook_events_per_minute,
            execution_retention_days: limits.execution_retention_days,
            api_keys: limits.api_keys,
        }
    }
}

/// A plan FluxoLab offers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanResponse {
    /// `free`, `pro`, `business` or `enterprise`.
    pub code: String,
    pub name: String,
    pub monthly_price_cents: u32,
    pub limits: LimitsResponse,
}

impl From<PlanCode> for PlanResponse {
    fn from(plan: PlanCode) -> Self {
        Self {
            code: plan.code().to_owned(),
            name: plan.display_name().to_owned(),
            monthly_price_cents: plan.monthly_price_cents(),
            limits: plan.default_limits().into(),
        }
    }
}

/// `GET /api/settings/plan`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionResponse {
    /// The current plan, with the limits in force.
    pub plan: PlanResponse,
    /// `active`, `past_due` or `canceled`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub current_period_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub current_period_end: OffsetDateTime,
    /// Every plan, cheapest first.
    pub available_plans: Vec<PlanResponse>,
}

impl From<Subscription> for SubscriptionResponse {
    fn from(subscription: Subscription) -> Self {
        let mut plan = PlanResponse::from(subscription.plan);
        plan.limits = subscription.limits.into();
        Self {
            plan,
            status: subscription.status,
            current_period_start: subscription.current_period_start,
            current_period_end: subscription.current_period_end,
            available_plans: PlanCode::ALL.into_iter().map(PlanResponse::from).collect(),
        }
    }
}

/// `POST /api/settings/plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanRequest {
    /// `free`, `pro`, `business` or `enterprise`.
    pub plan: String,
}

/// An entry of the billing history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BillingEventResponse {
    pub id: Uuid,
    /// `plan_changed` or `period_renewed`.
    pub kind: String,
    pub from_plan: Option<String>,
    pub to_plan: String,
    pub actor_user_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub period_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub period_end: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<BillingEvent> for BillingEventResponse {
    fn from(event: BillingEvent) -> Self {
        Self {
            id: event.id,
            kind: event.kind,
            from_plan: event.from_plan.map(|plan| plan.code().to_owned()),
            to_plan: event.to_plan.code().to_owned(),
            actor_user_id: event.actor_user_id.map(|user| user.as_uuid()),
            period_start: event.period_start,
            period_end: event.period_end,
            created_at: event.created_at,
        }
    }
}

/// One counter against its limit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageMetric {
    pub used: u32,
    /// `null`: unlimited.
    pub limit: Option<u32>,
    /// `used` as a percentage of `limit` (one decimal); `null` when unlimited.
    pub percent: Option<f64>,
}

impl UsageMetric {
    fn new(used: u32, limit: Option<u32>) -> Self {
        Self {
            used,
            limit,
            percent: limit.map(|limit| {
                if limit == 0 {
                    100.0
                } else {
                    (f64::from(used) * 1000.0 / f64::from(limit)).round() / 10.0
                }
            }),
        }
    }
}

/// `GET /api/settings/usage`: the current period against the plan.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageResponse {
    pub plan: String,
    #[serde(with = "time::serde::rfc3339")]
    pub period_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub period_end: OffsetDateTime,
    pub members: UsageMetric,
    pub workflows: UsageMetric,
    pub active_workflows: UsageMetric,
    pub credentials: UsageMetric,
    /// Active API keys against `api_keys`.
    pub api_keys: UsageMetric,
    /// Executions created this period against `executions_per_month`.
    pub executions: UsageMetric,
    /// This period's executions by status (every status present).
    pub executions_by_status: BTreeMap<String, u32>,
    /// This period's webhook events by verdict (every verdict present).
    pub webhook_events_by_verdict: BTreeMap<String, u32>,
}

fn complete(mut counts: BTreeMap<String, u32>, keys: &[&str]) -> BTreeMap<String, u32> {
    for key in keys {
        counts.entry((*key).to_owned()).or_insert(0);
    }
    counts
}

impl UsageResponse {
    fn new(subscription: &Subscription, usage: Usage) -> Self {
        let limits = subscription.limits;
        Self {
            plan: subscription.plan.code().to_owned(),
            period_start: subscription.current_period_start,
            period_end: subscription.current_period_end,
            members: UsageMetric::new(usage.members, limits.max_members),
            workflows: UsageMetric::new(usage.workflows, limits.max_workflows),
            active_workflows: UsageMetric::new(usage.active_workflows, limits.max_active_workflows),
            credentials: UsageMetric::new(usage.credentials, limits.max_credentials),
            api_keys: UsageMetric::new(usage.api_keys, limits.api_keys),
            executions: UsageMetric::new(usage.executions_total(), limits.executions_per_month),
            executions_by_status: complete(
                usage.executions,
                &["queued", "running", "succeeded", "failed", "cancelled"],
            ),
            webhook_events_by_verdict: complete(
                usage.webhook_events,
                &["accepted", "duplicate", "rejected", "quota_exceeded"],
            ),
        }
    }
}

/// The workspace's plan, its limits and period, and the plans on offer.
#[utoipa::path(tag = "plans", security(("bearer" = [])), responses(
    (status = 200, description = "The subscription", body = SubscriptionResponse),
))]
#[get("/api/settings/plan")]
pub async fn get_plan(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let subscription = services.billing.plan(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(SubscriptionResponse::from(subscription)))
}

/// Moves the workspace to another plan (owners: `billing.manage`). A downgrade that the
/// current usage would break is refused, naming every limit exceeded.
#[utoipa::path(tag = "plans", security(("bearer" = [])), request_body = ChangePlanRequest, responses(
    (status = 200, description = "The subscription on its new plan", body = SubscriptionResponse),
    (status = 403, description = "Not allowed (`billing.manage`)", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Usage exceeds the plan's limits (`plan_limit`, with `limits`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Unknown plan", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/plan")]
pub async fn change_plan(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<ChangePlanRequest>,
) -> Result<HttpResponse, ApiError> {
    let subscription = services
        .billing
        .change_plan(&caller.principal, &body.0.plan)
        .await?;
    Ok(HttpResponse::Ok().json(SubscriptionResponse::from(subscription)))
}

/// Plan changes and period renewals, newest first.
#[utoipa::path(tag = "plans", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "A page of billing events", body = PageResponse<BillingEventResponse>),
))]
#[get("/api/settings/billing/history")]
pub async fn billing_history(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let events = services.billing.history(&caller.principal, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<BillingEventResponse>::from(events)))
}

/// The current period's usage against the plan, as numbers and percentages.
#[utoipa::path(tag = "plans", security(("bearer" = [])), responses(
    (status = 200, description = "Usage against limits", body = UsageResponse),
))]
#[get("/api/settings/usage")]
pub async fn get_usage(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let (subscription, usage) = services.billing.usage(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(UsageResponse::new(&subscription, usage)))
}

/// An environment, as the summary lists it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SummaryEnvironment {
    pub id: Uuid,
    pub name: String,
    /// How many variables it defines.
    pub variables: u32,
}

/// What is configured, by kind.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SummaryIntegrations {
    /// Webhook registrations.
    pub webhooks: u32,
    pub secret_providers: u32,
    pub sso: u32,
    pub ldap: u32,
    pub log_destinations: u32,
    pub connectors: u32,
}

/// `GET /api/settings/summary`: the settings page's first paint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SummaryResponse {
    pub subscription: SubscriptionResponse,
    pub usage: UsageResponse,
    pub environments: Vec<SummaryEnvironment>,
    pub integrations: SummaryIntegrations,
    /// The workspace settings, as `GET /api/settings/workspace` gives them.
    pub settings: crate::workspace_settings::WorkspaceSettingsResponse,
}

/// Plan and limits, usage against them, environments and integrations, assembled in one
/// round of queries.
#[utoipa::path(tag = "plans", security(("bearer" = [])), responses(
    (status = 200, description = "The summary", body = SummaryResponse),
))]
#[get("/api/settings/summary")]
pub async fn summary(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let summary = services.billing.summary(&caller.principal).await?;
    let settings = services.settings.get(&caller.principal).await?;
    let integrations = services.integrations.counts(&caller.principal).await?;
    let configured = |kind| integrations.get(&kind).copied().unwrap_or_default();
    Ok(HttpResponse::Ok().json(SummaryResponse {
        usage: UsageResponse::new(&summary.subscription, summary.usage),
        subscription: SubscriptionResponse::from(summary.subscription),
        environments: summary
            .environments
            .into_iter()
            .map(|environment| SummaryEnvironment {
                id: environment.id.as_uuid(),
                name: environment.name,
                variables: environment.variables,
            })
            .collect(),
        integrations: SummaryIntegrations {
            webhooks: summary.webhooks,
            secret_providers: configured(IntegrationKind::SecretProviders),
            sso: configured(IntegrationKind::Sso),
            ldap: configured(IntegrationKind::Ldap),
            log_destinations: configured(IntegrationKind::LogDestinations),
            connectors: configured(IntegrationKind::Connectors),
        },
        settings: settings.into(),
    }))
}

/// `GET /api/settings/usage/history` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageHistoryQuery {
    /// First day (`YYYY-MM-DD`, UTC); default 29 days before `to`.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day, inclusive; default today.
    #[param(format = Date)]
    pub to: Option<String>,
    /// `executions` (default), `executions_succeeded`, `executions_failed`,
    /// `webhook_events`, `members`, `workflows`, `active_workflows` or `credentials`.
    #[param(
        pattern = "^(executions|executions_succeeded|executions_failed|webhook_events|members|workflows|active_workflows|credentials)$"
    )]
    pub metric: Option<String>,
}

/// One day of a usage series.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsagePoint {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub value: i64,
}

/// A daily usage series.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageHistoryResponse {
    pub metric: String,
    /// Days with a snapshot, oldest first.
    pub points: Vec<UsagePoint>,
}

fn parse_day(field: &str, raw: Option<&str>) -> Result<Option<time::Date>, ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    raw.map(|text| time::Date::parse(text, &format))
        .transpose()
        .map_err(|_| ApiError::invalid(field, "must be a day such as 2026-11-25"))
}

/// The daily snapshots of one usage metric.
#[utoipa::path(tag = "plans", security(("bearer" = [])), params(UsageHistoryQuery), responses(
    (status = 200, description = "The daily series", body = UsageHistoryResponse),
    (status = 422, description = "Unknown metric or bad range", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/usage/history")]
pub async fn usage_history(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<UsageHistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let from = parse_day("from", query.from.as_deref())?;
    let to = parse_day("to", query.to.as_deref())?;
    let (metric, series) = services
        .billing
        .usage_history(&caller.principal, query.metric.as_deref(), from, to)
        .await?;
    Ok(HttpResponse::Ok().json(UsageHistoryResponse {
        metric: metric.code().to_owned(),
        points: series
            .into_iter()
            .map(|(day, value)| UsagePoint {
                day: day.to_string(),
                value,
            })
            .collect(),
    }))
}
