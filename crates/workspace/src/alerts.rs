//! Usage alerts: "tell me when executions reach 80 % of the plan". Evaluated by the
//! workers' periodic job; each alert fires at most once per period per threshold (a
//! unique row, however many workers race), written with its outbox message in one
//! statement; the outbox delivers it after commit (see [`crate::alert_delivery`]).

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::outbox::AttemptFailure;
use fluxolab_kernel::standard_webhooks::{self, SignedHeaders};
use fluxolab_kernel::{
    AuditEvent, AuditLog, Clock, CredentialId, Cursor, Failure, Forbidden, NoRandomness, Page,
    PageRequest, Permission, Principal, SecretString, StorageError, UnitOfWorkFactory, Uow, UserId,
    ValidationErrors, WorkspaceId,
};
use serde_json::json;
use time::OffsetDateTime;

fluxolab_kernel::define_id!(
    /// A usage alert.
    AlertId
);
fluxolab_kernel::define_id!(
    /// One firing of a usage alert (and its delivery).
    AlertEventId
);

/// Metrics an alert may watch, with the plan limit each is measured against.
pub const METRICS: [(&str, &str); 5] = [
    ("executions", "executions_per_month"),
    ("members", "max_members"),
    ("workflows", "max_workflows"),
    ("active_workflows", "max_active_workflows"),
    ("credentials", "max_credentials"),
];

/// How an alert is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertChannel {
    Email,
    Webhook,
}

impl AlertChannel {
    pub const fn code(self) -> &'static str {
        match self {
            AlertChannel::Email => "email",
            AlertChannel::Webhook => "webhook",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [AlertChannel::Email, AlertChannel::Webhook]
            .into_iter()
            .find(|channel| channel.code() == code)
    }
}

/// A usage alert.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageAlert {
    pub id: AlertId,
    pub workspace_id: WorkspaceId,
    pub metric: String,
    pub threshold_percent: i32,
    pub channel: AlertChannel,
    /// An e-mail address or an http(s) URL.
    pub target: String,
    pub secret_credential_id: Option<CredentialId>,
    /// The secret a rotation replaced, still signing until its expiry.
    pub previous_secret: Option<(CredentialId, OffsetDateTime)>,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl UsageAlert {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }
}

/// One firing of an alert, and its delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    pub id: AlertEventId,
    pub alert_id: AlertId,
    pub workspace_id: WorkspaceId,
    pub period_start: OffsetDateTime,
    pub threshold_percent: i32,
    pub used: i64,
    pub limit: i64,
    /// `pending` or `delivered`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub delivered_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl AlertEvent {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }
}

/// A firing to deliver: the event and its alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub event: AlertEvent,
    pub alert: UsageAlert,
}

/// Usage alerts and their events.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AlertRepository: Send + Sync {
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<UsageAlert>, StorageError>;
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: AlertId,
    ) -> Result<Option<UsageAlert>, StorageError>;
    async fn insert(
        &self,
        unit: &mut Uow,
        alert: &UsageAlert,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError>;
    async fn update(&self, unit: &mut Uow, alert: &UsageAlert) -> Result<(), StorageError>;
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: AlertId,
    ) -> Result<bool, StorageError>;
    async fn events(
        &self,
        workspace: WorkspaceId,
        alert: AlertId,
        page: PageRequest,
    ) -> Result<Page<AlertEvent>, StorageError>;
    /// Records a firing for every enabled alert whose threshold the current period's
    /// usage has reached (once per period and threshold), each with its outbox message
    /// (kind `usage_alert`, destination `usage_alert:<alert id>`, payload
    /// `{"alert_event_id"}`) in the same statement; returns how many fired.
    async fn evaluate(&self) -> Result<u64, StorageError>;
    /// A firing with its alert (`None` once the alert is deleted).
    async fn delivery(&self, event: AlertEventId) -> Result<Option<Delivery>, StorageError>;
    /// Counts an attempt: `delivered` without an error, else its `last_error`.
    async fn attempted<'a>(
        &self,
        event: AlertEventId,
        error: Option<&'a str>,
    ) -> Result<(), StorageError>;
}

/// Sends alerts out.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AlertNotifier: Send + Sync {
    async fn email(&self, to: &str, subject: &str, body: &str) -> Result<(), AttemptFailure>;
    /// POSTs `body` (JSON) to `url` with the Standard Webhooks headers `signed`; a
    /// refusal carries the receiver's `Retry-After`.
    async fn webhook(
        &self,
        workspace: WorkspaceId,
        url: &str,
        body: &[u8],
        signed: &SignedHeaders,
    ) -> Result<(), AttemptFailure>;
}

/// Why an alert operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("usage alert not found")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
}

impl From<AlertError> for Failure {
    fn from(error: AlertError) -> Self {
        match error {
            AlertError::Invalid(errors) => Failure::Invalid(errors),
            AlertError::Forbidden(forbidden) => forbidden.into(),
            AlertError::NotFound => Failure::NotFound("usage alert"),
            AlertError::Storage(error) => error.into(),
            AlertError::Randomness(error) => error.into(),
        }
    }
}

/// What the alert use cases work with.
pub struct AlertPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub alerts: Arc<dyn AlertRepository>,
    pub secrets: Arc<dyn fluxolab_kernel::OwnedSecrets>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AlertPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertPorts").finish_non_exhaustive()
    }
}

/// An alert to create, as submitted.
#[derive(Clone, Debug, Default)]
pub struct NewAlert {
    pub metric: String,
    pub threshold_percent: i32,
    pub channel: String,
    pub target: String,
}

/// Changes to an alert.
#[derive(Clone, Debug, Default)]
pub struct AlertPatch {
    pub threshold_percent: Option<i32>,
    pub target: Option<String>,
    pub enabled: Option<bool>,
}

/// The usage alert use cases.
#[derive(Debug)]
pub struct AlertService {
    ports: AlertPorts,
}

fn check_target(channel: AlertChannel, target: &str, errors: &mut ValidationErrors) {
    let target = target.trim();
    let fine = match channel {
        AlertChannel::Email => {
            let mut parts = target.split('@');
            matches!((parts.next(), parts.next(), parts.next()), (Some(user), Some(domain), None)
                if !user.is_empty() && domain.contains('.') && !target.contains(char::is_whitespace))
        }
        AlertChannel::Webhook => fluxolab_kernel::plain_http_url(target, true),
    };
    if !fine {
        errors.add(
            "target",
            match channel {
                AlertChannel::Email => "must be an e-mail address",
                AlertChannel::Webhook => "must be an http(s) URL",
            },
        );
    }
}

fn check_threshold(threshold: i32, errors: &mut ValidationErrors) {
    if !(1..=1000).contains(&threshold) {
        errors.add("threshold_percent", "must be between 1 and 1000");
    }
}

impl AlertService {
    pub fn new(ports: AlertPorts) -> Self {
        Self { ports }
    }

    #[tracing::instrument(name = "alerts.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<UsageAlert>, AlertError> {
        principal.require(Permission::SettingsRead)?;
        Ok(self
            .ports
            .alerts
            .list(principal.workspace_id(), page)
            .await?)
    }

    async fn get(&self, principal: &Principal, id: AlertId) -> Result<UsageAlert, AlertError> {
        self.ports
            .alerts
            .find(principal.workspace_id(), id)
            .await?
            .ok_or(AlertError::NotFound)
    }

    /// Creates an alert; a webhook alert's signing secret is returned this once.
    #[tracing::instrument(name = "alerts.create", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn create(
        &self,
        principal: &Principal,
        input: NewAlert,
    ) -> Result<(UsageAlert, Option<SecretString>), AlertError> {
        principal.require(Permission::SettingsManage)?;
        let mut errors = ValidationErrors::new();
        if !METRICS.iter().any(|(metric, _)| *metric == input.metric) {
            let known: Vec<&str> = METRICS.iter().map(|(metric, _)| *metric).collect();
            errors.add("metric", format!("must be one of {}", known.join(", ")));
        }
        check_threshold(input.threshold_percent, &mut errors);
        let channel = AlertChannel::from_code(&input.channel);
        match channel {
            Some(channel) => check_target(channel, &input.target, &mut errors),
            None => errors.add("channel", "must be email or webhook"),
        }
        let (Some(channel), true) = (channel, errors.is_empty()) else {
            return Err(AlertError::Invalid(errors));
        };
        let now = self.ports.clock.now();
        let mut alert = UsageAlert {
            id: AlertId::new(),
            workspace_id: principal.workspace_id(),
            metric: input.metric,
            threshold_percent: input.threshold_percent,
            channel,
            target: input.target.trim().to_owned(),
            secret_credential_id: None,
            previous_secret: None,
            enabled: true,
            created_at: now,
            updated_at: now,
        };
        let mut unit = self.ports.units.begin().await?;
        let secret = if channel == AlertChannel::Webhook {
            let secret = standard_webhooks::generate_secret()?;
            alert.secret_credential_id = Some(
                self.ports
                    .secrets
                    .store(
                        unit.as_mut(),
                        alert.workspace_id,
                        &format!("Usage alert {} signing secret", alert.id),
                        &secret,
                        principal.user(),
                    )
                    .await?,
            );
            Some(secret)
        } else {
            None
        };
        self.ports
            .alerts
            .insert(unit.as_mut(), &alert, principal.user())
            .await?;
        self.audit(unit.as_mut(), principal, "usage_alert.created", &alert)
            .await?;
        unit.commit().await?;
        Ok((alert, secret))
    }

    async fn audit(
        &self,
        unit: &mut Uow,
        principal: &Principal,
        action: &'static str,
        alert: &UsageAlert,
    ) -> Result<(), StorageError> {
        self.ports
            .audit
            .record_in(
                unit,
                &AuditEvent::by(
                    principal,
                    action,
                    ("usage_alert", alert.id.to_string()),
                    json!({
                        "metric": alert.metric,
                        "threshold_percent": alert.threshold_percent,
                        "channel": alert.channel.code(),
                        "enabled": alert.enabled,
                    }),
                ),
            )
            .await
    }

    #[tracing::instrument(name = "alerts.update", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn update(
        &self,
        principal: &Principal,
        id: AlertId,
        patch: AlertPatch,
    ) -> Result<UsageAlert, AlertError> {
        principal.require(Permission::SettingsManage)?;
        let mut alert = self.get(principal, id).await?;
        let mut errors = ValidationErrors::new();
        if let Some(threshold) = patch.threshold_percent {
            check_threshold(threshold, &mut errors);
            alert.threshold_percent = threshold;
        }
        if let Some(target) = patch.target {
            check_target(alert.channel, &target, &mut errors);
            alert.target = target.trim().to_owned();
        }
        if let Some(enabled) = patch.enabled {
            alert.enabled = enabled;
        }
        if !errors.is_empty() {
            return Err(AlertError::Invalid(errors));
        }
        alert.updated_at = self.ports.clock.now();
        let mut unit = self.ports.units.begin().await?;
        self.ports.alerts.update(unit.as_mut(), &alert).await?;
        self.audit(unit.as_mut(), principal, "usage_alert.updated", &alert)
            .await?;
        unit.commit().await?;
        Ok(alert)
    }

    #[tracing::instrument(name = "alerts.delete", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn delete(&self, principal: &Principal, id: AlertId) -> Result<(), AlertError> {
        principal.require(Permission::SettingsManage)?;
        let alert = self.get(principal, id).await?;
        let mut unit = self.ports.units.begin().await?;
        if !self
            .ports
            .alerts
            .delete(unit.as_mut(), alert.workspace_id, id)
            .await?
        {
            return Err(AlertError::NotFound);
        }
        self.audit(unit.as_mut(), principal, "usage_alert.deleted", &alert)
            .await?;
        unit.commit().await?;
        Ok(())
    }

    /// A new signing secret for a webhook alert (returned once); the old one keeps
    /// signing beside it for `grace_seconds` (default a day, at most 30 days; 0 drops it
    /// at once).
    #[tracing::instrument(name = "alerts.rotate_secret", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn rotate_secret(
        &self,
        principal: &Principal,
        id: AlertId,
        grace_seconds: Option<i64>,
    ) -> Result<(UsageAlert, SecretString), AlertError> {
        principal.require(Permission::SettingsManage)?;
        let grace =
            standard_webhooks::rotation_grace(grace_seconds).map_err(AlertError::Invalid)?;
        let mut alert = self.get(principal, id).await?;
        let Some(current) = alert.secret_credential_id else {
            return Err(AlertError::Invalid(ValidationErrors::single(
                "channel",
                "only a webhook alert signs what it sends",
            )));
        };
        let now = self.ports.clock.now();
        let mut unit = self.ports.units.begin().await?;
        let secret = standard_webhooks::generate_secret()?;
        alert.secret_credential_id = Some(
            self.ports
                .secrets
                .store(
                    unit.as_mut(),
                    alert.workspace_id,
                    &format!("Usage alert {} signing secret", alert.id),
                    &secret,
                    principal.user(),
                )
                .await?,
        );
        // The secret an earlier rotation kept goes; so does the current one without grace.
        let mut discarded: Vec<CredentialId> = alert
            .previous_secret
            .map(|(old, _)| old)
            .into_iter()
            .collect();
        alert.previous_secret =
            (grace > 0).then(|| (current, now + time::Duration::seconds(grace)));
        if grace == 0 {
            discarded.push(current);
        }
        alert.updated_at = now;
        self.ports.alerts.update(unit.as_mut(), &alert).await?;
        for old in discarded {
            self.ports
                .secrets
                .discard(unit.as_mut(), alert.workspace_id, old)
                .await?;
        }
        self.audit(
            unit.as_mut(),
            principal,
            "usage_alert.secret_rotated",
            &alert,
        )
        .await?;
        unit.commit().await?;
        Ok((alert, secret))
    }

    #[tracing::instrument(name = "alerts.events", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn events(
        &self,
        principal: &Principal,
        id: AlertId,
        page: PageRequest,
    ) -> Result<Page<AlertEvent>, AlertError> {
        principal.require(Permission::SettingsRead)?;
        self.get(principal, id).await?;
        Ok(self
            .ports
            .alerts
            .events(principal.workspace_id(), id, page)
            .await?)
    }

    /// The workers' job: records a firing (and its outbox message) for every alert
    /// whose threshold was reached. Returns how many fired.
    #[tracing::instrument(name = "alerts.evaluate", skip_all)]
    pub async fn evaluate(&self) -> Result<u64, AlertError> {
        let fired = self.ports.alerts.evaluate().await?;
        if fired > 0 {
            tracing::info!(fired, "usage alerts fired");
        }
        Ok(fired)
    }
}

#[cfg(test)]
mod target_tests {
    use super::*;

    fn fine(channel: AlertChannel, target: &str) -> bool {
        let mut errors = ValidationErrors::new();
        check_target(channel, target, &mut errors);
        errors.is_empty()
    }

    #[test]
    fn a_webhook_target_is_an_http_url_with_a_plain_host() {
        for target in [
            "https://hooks.example.com/alerts?x=1",
            "http://127.0.0.1:8080",
            " https://a.example#top ",
        ] {
            assert!(fine(AlertChannel::Webhook, target), "{target}");
        }
        for target in [
            "https://",
            "http://[",
            "http://user@host/",
            "ftp://example.com",
            "https://a b.example",
        ] {
            assert!(!fine(AlertChannel::Webhook, target), "{target}");
        }
        assert!(fine(AlertChannel::Email, "ops@example.com"));
    }
}
