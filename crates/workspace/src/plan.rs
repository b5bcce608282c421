//! Plans and their limits (stored as jsonb in `plans.limits`, typed here).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The plans FluxoLab sells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanCode {
    Free,
    Pro,
    Business,
    Enterprise,
}

/// A plan code FluxoLab does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan `{0}`; expected free, pro, business or enterprise")]
pub struct UnknownPlan(pub String);

/// What a plan allows. `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanLimits {
    pub max_members: Option<u32>,
    pub max_workflows: Option<u32>,
    pub max_active_workflows: Option<u32>,
    pub max_credentials: Option<u32>,
    pub executions_per_month: Option<u32>,
    pub webhook_events_per_minute: Option<u32>,
    pub execution_retention_days: Option<u32>,
    pub api_keys: Option<u32>,
}

impl PlanCode {
    /// Every plan, cheapest first.
    pub const ALL: [PlanCode; 4] = [
        PlanCode::Free,
        PlanCode::Pro,
        PlanCode::Business,
        PlanCode::Enterprise,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            PlanCode::Free => "free",
            PlanCode::Pro => "pro",
            PlanCode::Business => "business",
            PlanCode::Enterprise => "enterprise",
        }
    }

    pub const fn display_name(self) -> &'static str {
        match self {
            PlanCode::Free => "Free",
            PlanCode::Pro => "Pro",
            PlanCode::Business => "Business",
            PlanCode::Enterprise => "Enterprise",
        }
    }

    /// Monthly price in cents, shown in the settings; no payment provider is wired.
    pub const fn monthly_price_cents(self) -> u32 {
        match self {
            PlanCode::Free => 0,
            PlanCode::Pro => 2_000,
            PlanCode::Business => 8_000,
            PlanCode::Enterprise => 40_000,
        }
    }

    /// The limits seeded for this plan.
    pub const fn default_limits(self) -> PlanLimits {
        match self {
            PlanCode::Free => PlanLimits {
                max_members: Some(3),
                max_workflows: Some(10),
                max_active_workflows: Some(5),
                max_credentials: Some(10),
                executions_per_month: Some(2_500),
                webhook_events_per_minute: Some(60),
                execution_retention_days: Some(7),
                api_keys: Some(2),
            },
            PlanCode::Pro => PlanLimits {
                max_members: Some(10),
                max_workflows: Some(100),
                max_active_workflows: Some(50),
                max_credentials: Some(100),
                executions_per_month: Some(50_000),
                webhook_events_per_minute: Some(600),
                execution_retention_days: Some(30),
                api_keys: Some(10),
            },
            PlanCode::Business => PlanLimits {
                max_members: Some(50),
                max_workflows: Some(1_000),
                max_active_workflows: Some(500),
                max_credentials: Some(1_000),
                executions_per_month: Some(500_000),
                webhook_events_per_minute: Some(6_000),
                execution_retention_days: Some(90),
                api_keys: Some(50),
            },
            PlanCode::Enterprise => PlanLimits {
                max_members: None,
                max_workflows: None,
                max_active_workflows: None,
                max_credentials: None,
                executions_per_month: None,
                webhook_events_per_minute: None,
                execution_retention_days: Some(365),
                api_keys: None,
            },
        }
    }
}

impl fmt::Display for PlanCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for PlanCode {
    type Err = UnknownPlan;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        PlanCode::ALL
            .into_iter()
            .find(|plan| plan.code() == code)
            .ok_or_else(|| UnknownPlan(code.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(limit: Option<u32>) -> u64 {
        limit.map_or(u64::MAX, u64::from)
    }

    #[test]
    fn dearer_plans_never_allow_less() {
        for pair in PlanCode::ALL.windows(2) {
            let (cheaper, dearer) = (pair[0].default_limits(), pair[1].default_limits());
            for (a, b) in [
                (cheaper.max_members, dearer.max_members),
                (cheaper.max_workflows, dearer.max_workflows),
                (cheaper.max_active_workflows, dearer.max_active_workflows),
                (cheaper.max_credentials, dearer.max_credentials),
                (cheaper.executions_per_month, dearer.executions_per_month),
                (
                    cheaper.webhook_events_per_minute,
                    dearer.webhook_events_per_minute,
                ),
                (
                    cheaper.execution_retention_days,
                    dearer.execution_retention_days,
                ),
                (cheaper.api_keys, dearer.api_keys),
            ] {
                assert!(allows(a) <= allows(b), "{} vs {}", pair[0], pair[1]);
            }
        }
    }

    #[test]
    fn limits_serialise_with_their_documented_names() -> Result<(), serde_json::Error> {
        let json = serde_json::to_value(PlanCode::Enterprise.default_limits())?;
        assert_eq!(json["max_members"], serde_json::Value::Null);
        assert_eq!(json["execution_retention_days"], 365);
        let back: PlanLimits = serde_json::from_value(json)?;
        assert_eq!(back, PlanCode::Enterprise.default_limits());
        Ok(())
    }
}
