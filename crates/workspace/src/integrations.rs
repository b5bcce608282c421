//! The integrations status (one entry per kind, plus the instance's SMTP and OTLP
//! exporter) and the list of integration events, both read with `settings.read`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    Actor, Cursor, Failure, Forbidden, IntegrationEventKind, IntegrationKind, Page, PageRequest,
    Permission, Principal, StorageError, WorkspaceId,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// How an integration kind is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Configured, and its latest checks passed (or none was made yet).
    Ok,
    /// Some integrations of the kind failed their latest check, others passed.
    Degraded,
    /// Every integration of the kind that was checked failed its latest check.
    Error,
    NotConfigured,
}

impl Health {
    pub const fn code(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Error => "error",
            Health::NotConfigured => "not_configured",
        }
    }
}

/// One entry of the status: a kind of integration, or an instance-level one (`smtp`,
/// `otlp`).
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationStatus {
    pub kind: &'static str,
    pub configured: u32,
    pub enabled: u32,
    pub health: Health,
    pub last_checked_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// How many integrations of a kind a workspace has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    pub configured: u32,
    pub enabled: u32,
}

/// The latest check (test or delivery) of one integration.
#[derive(Clone, Debug, PartialEq)]
pub struct LatestCheck {
    pub kind: IntegrationKind,
    pub integration_id: Option<Uuid>,
    pub event: IntegrationEventKind,
    pub at: OffsetDateTime,
    /// `details.error` of a failure.
    pub error: Option<String>,
}

/// What the instance itself has configured (from its environment at start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceIntegrations {
    /// `SMTP_URL` is set.
    pub smtp: bool,
    /// The OTLP exporter is on.
    pub otlp: bool,
}

/// An integration event as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedIntegrationEvent {
    pub id: Uuid,
    pub kind: IntegrationKind,
    pub integration_id: Option<Uuid>,
    pub event: IntegrationEventKind,
    pub details: Value,
    pub actor: Option<Actor>,
    pub created_at: OffsetDateTime,
}

impl RecordedIntegrationEvent {
    /// The page cursor after this event.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// Filters of the event list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IntegrationEventFilter {
    pub kind: Option<IntegrationKind>,
    pub since: Option<OffsetDateTime>,
}

/// Integrations in storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IntegrationRepository: Send + Sync {
    /// How many of each kind are configured and enabled (kinds with none left out).
    async fn counts(
        &self,
        workspace: WorkspaceId,
    ) -> Result<BTreeMap<IntegrationKind, KindCounts>, StorageError>;
    /// The latest check of every integration that was checked.
    async fn latest_checks(&self, workspace: WorkspaceId)
    -> Result<Vec<LatestCheck>, StorageError>;
    /// Events, newest first.
    async fn events(
        &self,
        workspace: WorkspaceId,
        filter: &IntegrationEventFilter,
        page: PageRequest,
    ) -> Result<Page<RecordedIntegrationEvent>, StorageError>;
}

/// Why reading integrations failed.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<IntegrationError> for Failure {
    fn from(error: IntegrationError) -> Self {
        match error {
            IntegrationError::Forbidden(forbidden) => forbidden.into(),
            IntegrationError::Storage(error) => error.into(),
        }
    }
}

/// The integrations use cases.
pub struct IntegrationService {
    repository: Arc<dyn IntegrationRepository>,
    instance: InstanceIntegrations,
}

impl std::fmt::Debug for IntegrationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationService")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The status of one kind from its counts and its integrations' latest checks.
fn status_of(kind: &'static str, counts: KindCounts, checks: &[&LatestCheck]) -> IntegrationStatus {
    let failed = checks
        .iter()
        .filter(|check| check.event.is_failure())
        .count();
    let health = if counts.configured == 0 {
        Health::NotConfigured
    } else if failed == 0 {
        Health::Ok
    } else if failed == checks.len() {
        Health::Error
    } else {
        Health::Degraded
    };
    let latest = checks.iter().max_by_key(|check| check.at);
    let last_error = checks
        .iter()
        .filter(|check| check.event.is_failure())
        .max_by_key(|check| check.at)
        .and_then(|check| check.error.clone());
    IntegrationStatus {
        kind,
        configured: counts.configured,
        enabled: counts.enabled,
        health,
        last_checked_at: latest.map(|check| check.at),
        last_error,
    }
}

impl IntegrationService {
    pub fn new(repository: Arc<dyn IntegrationRepository>, instance: InstanceIntegrations) -> Self {
        Self {
            repository,
            instance,
        }
    }

    /// One entry per kind (in [`IntegrationKind::ALL`] order), then `smtp` and `otlp`.
    #[tracing::instrument(name = "integrations.status", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn status(
        &self,
        principal: &Principal,
    ) -> Result<Vec<IntegrationStatus>, IntegrationError> {
        principal.require(Permission::SettingsRead)?;
        let workspace = principal.workspace_id();
        let counts = self.repository.counts(workspace).await?;
        let checks = self.repository.latest_checks(workspace).await?;
        let mut statuses: Vec<IntegrationStatus> = IntegrationKind::ALL
            .into_iter()
            .map(|kind| {
                let of_kind: Vec<&LatestCheck> =
                    checks.iter().filter(|check| check.kind == kind).collect();
                let counts = counts.get(&kind).copied().unwrap_or_default();
                status_of(kind.code(), counts, &of_kind)
            })
            .collect();
        for (kind, on) in [("smtp", self.instance.smtp), ("otlp", self.instance.otlp)] {
            let counts = KindCounts {
                configured: u32::from(on),
                enabled: u32::from(on),
            };
            statuses.push(status_of(kind, counts, &[]));
        }
        Ok(statuses)
    }

    /// How many integrations of each kind are configured (every kind, zeros too).
    #[tracing::instrument(name = "integrations.counts", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn counts(
        &self,
        principal: &Principal,
    ) -> Result<BTreeMap<IntegrationKind, u32>, IntegrationError> {
        principal.require(Permission::SettingsRead)?;
        let counts = self.repository.counts(principal.workspace_id()).await?;
        Ok(IntegrationKind::ALL
            .into_iter()
            .map(|kind| {
                let configured = counts.get(&kind).map_or(0, |counts| counts.configured);
                (kind, configured)
            })
            .collect())
    }

    /// Integration events, newest first.
    #[tracing::instrument(name = "integrations.events", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn events(
        &self,
        principal: &Principal,
        filter: &IntegrationEventFilter,
        page: PageRequest,
    ) -> Result<Page<RecordedIntegrationEvent>, IntegrationError> {
        principal.require(Permission::SettingsRead)?;
        Ok(self
            .repository
            .events(principal.workspace_id(), filter, page)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(event: IntegrationEventKind, minute: i64, error: Option<&str>) -> LatestCheck {
        LatestCheck {
            kind: IntegrationKind::SecretProviders,
            integration_id: Some(Uuid::now_v7()),
            event,
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minute),
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn health_follows_the_latest_check_of_each_integration() {
        let two = KindCounts {
            configured: 2,
            enabled: 2,
        };
        let passed = check(IntegrationEventKind::Tested, 1, None);
        let failed = check(IntegrationEventKind::TestFailed, 2, Some("unreachable"));
        let older_failure = check(IntegrationEventKind::DeliveryFailed, 0, Some("old"));

        let none = status_of("x", KindCounts::default(), &[]);
        assert_eq!(none.health, Health::NotConfigured);
        assert_eq!(status_of("x", two, &[]).health, Health::Ok);
        assert_eq!(status_of("x", two, &[&passed]).health, Health::Ok);
        let degraded = status_of("x", two, &[&passed, &failed]);
        assert_eq!(degraded.health, Health::Degraded);
        assert_eq!(degraded.last_error.as_deref(), Some("unreachable"));
        assert_eq!(degraded.last_checked_at, Some(failed.at));
        let error = status_of("x", two, &[&failed, &older_failure]);
        assert_eq!(error.health, Health::Error);
        assert_eq!(error.last_error.as_deref(), Some("unreachable"));
    }
}
