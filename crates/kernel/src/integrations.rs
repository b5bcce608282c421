//! What happens to a workspace's integrations (webhooks, secret providers, SSO, LDAP,
//! log destinations, connectors), recorded by each feature in the same transaction as
//! the change, and read back by the integrations status and its event list.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use crate::{Actor, StorageError, Uow, WorkspaceId};

/// A kind of integration a workspace configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntegrationKind {
    Webhooks,
    SecretProviders,
    Sso,
    Ldap,
    LogDestinations,
    Connectors,
}

impl IntegrationKind {
    /// Every kind, in the order the status lists them.
    pub const ALL: [IntegrationKind; 6] = [
        IntegrationKind::Webhooks,
        IntegrationKind::SecretProviders,
        IntegrationKind::Sso,
        IntegrationKind::Ldap,
        IntegrationKind::LogDestinations,
        IntegrationKind::Connectors,
    ];

    /// The code the API and the database use, e.g. `secret_providers`.
    pub const fn code(self) -> &'static str {
        match self {
            IntegrationKind::Webhooks => "webhooks",
            IntegrationKind::SecretProviders => "secret_providers",
            IntegrationKind::Sso => "sso",
            IntegrationKind::Ldap => "ldap",
            IntegrationKind::LogDestinations => "log_destinations",
            IntegrationKind::Connectors => "connectors",
        }
    }
}

/// What happened to an integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntegrationEventKind {
    Configured,
    Updated,
    Enabled,
    Disabled,
    Removed,
    /// A test (or a check) succeeded.
    Tested,
    TestFailed,
    DeliveryFailed,
}

impl IntegrationEventKind {
    /// Every event, in a stable order.
    pub const ALL: [IntegrationEventKind; 8] = [
        IntegrationEventKind::Configured,
        IntegrationEventKind::Updated,
        IntegrationEventKind::Enabled,
        IntegrationEventKind::Disabled,
        IntegrationEventKind::Removed,
        IntegrationEventKind::Tested,
        IntegrationEventKind::TestFailed,
        IntegrationEventKind::DeliveryFailed,
    ];

    /// The code the API and the database use, e.g. `test_failed`.
    pub const fn code(self) -> &'static str {
        match self {
            IntegrationEventKind::Configured => "configured",
            IntegrationEventKind::Updated => "updated",
            IntegrationEventKind::Enabled => "enabled",
            IntegrationEventKind::Disabled => "disabled",
            IntegrationEventKind::Removed => "removed",
            IntegrationEventKind::Tested => "tested",
            IntegrationEventKind::TestFailed => "test_failed",
            IntegrationEventKind::DeliveryFailed => "delivery_failed",
        }
    }

    /// Whether the event says how a use or a test of the integration went.
    pub const fn is_check(self) -> bool {
        matches!(
            self,
            IntegrationEventKind::Tested
                | IntegrationEventKind::TestFailed
                | IntegrationEventKind::DeliveryFailed
        )
    }

    /// Whether the event is a failure.
    pub const fn is_failure(self) -> bool {
        matches!(
            self,
            IntegrationEventKind::TestFailed | IntegrationEventKind::DeliveryFailed
        )
    }
}

/// A code that names no kind or event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown integration code `{0}`")]
pub struct UnknownIntegrationCode(pub String);

macro_rules! from_code {
    ($type:ty) => {
        impl FromStr for $type {
            type Err = UnknownIntegrationCode;

            fn from_str(code: &str) -> Result<Self, Self::Err> {
                <$type>::ALL
                    .into_iter()
                    .find(|item| item.code() == code)
                    .ok_or_else(|| UnknownIntegrationCode(code.to_owned()))
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

from_code!(IntegrationKind);
from_code!(IntegrationEventKind);

/// One event of one integration. `details` never holds a secret value.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationEvent {
    pub workspace_id: WorkspaceId,
    pub kind: IntegrationKind,
    /// The integration's id (a provider's, a registration's…), when there is one.
    pub integration_id: Option<Uuid>,
    pub event: IntegrationEventKind,
    /// What changed or failed: names and reasons, no values.
    pub details: Value,
    /// `None` for the system itself (a run resolving a secret, a delivery).
    pub actor: Option<Actor>,
}

/// Writes integration events.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IntegrationEvents: Send + Sync {
    /// Records inside a unit of work, with the change it describes.
    async fn record_in(&self, uow: &mut Uow, event: &IntegrationEvent) -> Result<(), StorageError>;
    /// Records on its own (a test's outcome, a failed delivery).
    async fn record(&self, event: &IntegrationEvent) -> Result<(), StorageError>;
}

/// Records a change of an integration inside `unit` in both places it is told: the
/// activity log (`activity`) and the integration events (`event`).
pub async fn record_change(
    (audit, events): (&dyn crate::AuditLog, &dyn IntegrationEvents),
    unit: &mut Uow,
    activity: &crate::AuditEvent,
    event: &IntegrationEvent,
) -> Result<(), StorageError> {
    events.record_in(unit, event).await?;
    audit.record_in(unit, activity).await
}

/// An integration as the records of a change name it.
#[derive(Debug)]
pub struct Changed {
    pub kind: IntegrationKind,
    /// The activity log's target: a type and an id (`("log_destination", id)`).
    pub target: (&'static str, String),
    /// The integration's id among its events, when it has one.
    pub id: Option<Uuid>,
    /// What every record of its changes says of it (a JSON object: its name, kind…);
    /// never a secret value.
    pub details: Value,
}

/// Records `principal`'s change of `integration` inside `unit`, in the workspace it acts
/// in: `action` in the activity log and `event` among the integration events, both with
/// the integration's details and the fields of `extra` (an object, or `null` for none).
pub async fn record_change_by(
    logs: (&dyn crate::AuditLog, &dyn IntegrationEvents),
    unit: &mut Uow,
    principal: &crate::Principal,
    (action, event): (&'static str, IntegrationEventKind),
    integration: Changed,
    extra: Value,
) -> Result<(), StorageError> {
    let mut details = integration.details;
    if let (Some(details), Value::Object(extra)) = (details.as_object_mut(), extra) {
        details.extend(extra);
    }
    let event = IntegrationEvent {
        workspace_id: principal.workspace_id(),
        kind: integration.kind,
        integration_id: integration.id,
        event,
        details: details.clone(),
        actor: Some(principal.actor()),
    };
    let activity = crate::AuditEvent::by(principal, action, integration.target, details);
    record_change(logs, unit, &activity, &event).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_are_named() {
        for kind in IntegrationKind::ALL {
            assert_eq!(kind.code().parse::<IntegrationKind>(), Ok(kind));
        }
        for event in IntegrationEventKind::ALL {
            assert_eq!(event.code().parse::<IntegrationEventKind>(), Ok(event));
        }
        assert_eq!(
            "pigeons".parse::<IntegrationKind>(),
            Err(UnknownIntegrationCode("pigeons".to_owned()))
        );
    }

    #[test]
    fn only_tests_and_deliveries_are_checks_and_only_their_failures_fail() {
        let checks: Vec<_> = IntegrationEventKind::ALL
            .into_iter()
            .filter(|event| event.is_check())
            .map(IntegrationEventKind::code)
            .collect();
        assert_eq!(checks, ["tested", "test_failed", "delivery_failed"]);
        assert!(!IntegrationEventKind::Tested.is_failure());
        assert!(IntegrationEventKind::DeliveryFailed.is_failure());
    }
}
