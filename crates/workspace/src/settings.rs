//! Workspace settings: time zone and locale, whether runs may reach internal
//! networks, the defaults of runs that set none, notification targets and branding.
//! Reads need `settings.read`, changes `settings.manage`; opening internal networks
//! needs `network.manage` (owners only) and is recorded as a warning.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::{
    AuditEvent, AuditLog, Clock, CredentialId, Failure, Forbidden, NoRandomness, OwnedSecrets,
    Permission, Principal, SecretString, StorageError, UnitOfWorkFactory, Uow, ValidationErrors,
    WorkspaceId,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::settings_rules::Checked;

/// The bounds of [`ExecutionDefaults::timeout_seconds`].
pub const TIMEOUT_SECONDS: std::ops::RangeInclusive<u32> = 1..=86_400;
/// The bounds of [`ExecutionDefaults::max_attempts`].
pub const MAX_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=10;
/// The most addresses [`FailureNotifications::emails`] holds.
pub const MAX_NOTIFICATION_EMAILS: usize = 20;
/// The longest [`Branding::display_name`], in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 80;

/// What runs that set none of their own use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionDefaults {
    /// How long one attempt of a run may last, in seconds; the instance's
    /// `EXECUTION_TIMEOUT_SECONDS` caps it.
    pub timeout_seconds: u32,
    /// How many times a run is tried before it fails for good.
    pub max_attempts: u32,
    /// Whether the steps of successful runs are kept.
    pub save_successful_steps: bool,
}

impl Default for ExecutionDefaults {
    /// The timeout is the instance's default limit, so that what a workspace reads is
    /// what its runs get until it sets its own (and an operator raising the limit for
    /// long runs does not lengthen every workspace's).
    fn default() -> Self {
        Self {
            timeout_seconds: 300,
            max_attempts: 3,
            save_successful_steps: true,
        }
    }
}

/// Who hears of a failed run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailureNotifications {
    pub emails: Vec<String>,
    pub webhook_url: Option<String>,
}

/// Notification targets (delivered by the outbound features).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Notifications {
    pub execution_failed: FailureNotifications,
    pub weekly_usage_report: bool,
}

/// How the workspace presents itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Branding {
    pub display_name: Option<String>,
    /// An `https://` URL.
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub primary_color: Option<String>,
}

/// The settings kept in one JSON document beside the columns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SettingsDocument {
    pub execution_defaults: ExecutionDefaults,
    pub notifications: Notifications,
    pub branding: Branding,
}

/// A workspace's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceSettings {
    /// An IANA time zone name.
    pub timezone: String,
    /// A BCP 47 language tag.
    pub locale: String,
    /// Whether runs and integrations may reach loopback and private addresses.
    pub allow_internal_network: bool,
    pub document: SettingsDocument,
    /// The vault entry holding the failure webhook's `whsec_…` signing secret (made
    /// whenever `notifications.execution_failed.webhook_url` is set or changed).
    pub failure_webhook_secret: Option<CredentialId>,
    /// The secret a rotation replaced, still signing until its expiry.
    pub failure_webhook_previous_secret: Option<(CredentialId, OffsetDateTime)>,
    pub updated_at: OffsetDateTime,
}

/// A value a PATCH may set, clear (`null`) or leave out.
pub type Nullable<T> = Option<Option<T>>;

/// Changes to [`ExecutionDefaults`]; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct ExecutionDefaultsPatch {
    pub timeout_seconds: Option<u32>,
    pub max_attempts: Option<u32>,
    pub save_successful_steps: Option<bool>,
}

/// Changes to [`FailureNotifications`]; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct FailureNotificationsPatch {
    pub emails: Option<Vec<String>>,
    pub webhook_url: Nullable<String>,
}

/// Changes to [`Notifications`]; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct NotificationsPatch {
    pub execution_failed: Option<FailureNotificationsPatch>,
    pub weekly_usage_report: Option<bool>,
}

/// Changes to [`Branding`]; `None` keeps a field, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct BrandingPatch {
    pub display_name: Nullable<String>,
    pub logo_url: Nullable<String>,
    pub primary_color: Nullable<String>,
}

/// Changes to the settings; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct SettingsPatch {
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub allow_internal_network: Option<bool>,
    pub execution_defaults: Option<ExecutionDefaultsPatch>,
    pub notifications: Option<NotificationsPatch>,
    pub branding: Option<BrandingPatch>,
}

/// Why a settings operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
}

impl From<SettingsError> for Failure {
    fn from(error: SettingsError) -> Self {
        match error {
            SettingsError::Invalid(errors) => Failure::Invalid(errors),
            SettingsError::Forbidden(forbidden) => forbidden.into(),
            SettingsError::Storage(error) => error.into(),
            SettingsError::Randomness(error) => error.into(),
        }
    }
}

/// Settings in storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SettingsRepository: Send + Sync {
    /// The settings of `workspace`; `None` when it has no row (a workspace being
    /// deleted).
    async fn find(&self, workspace: WorkspaceId)
    -> Result<Option<WorkspaceSettings>, StorageError>;
    /// The settings, locked for update inside `unit`.
    async fn lock(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
    ) -> Result<Option<WorkspaceSettings>, StorageError>;
    /// Writes every field.
    async fn save(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        settings: &WorkspaceSettings,
    ) -> Result<(), StorageError>;
}

/// What the settings use cases work with.
pub struct SettingsPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub settings: Arc<dyn SettingsRepository>,
    /// Where the failure webhook's signing secret is sealed.
    pub secrets: Arc<dyn OwnedSecrets>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

/// Settings after a change, with the failure webhook's new signing secret (`whsec_…`)
/// when the change set or changed its URL: shown this once.
#[derive(Debug)]
pub struct UpdatedSettings {
    pub settings: WorkspaceSettings,
    pub signing_secret: Option<SecretString>,
}

impl std::fmt::Debug for SettingsPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsPorts").finish_non_exhaustive()
    }
}

/// The settings use cases.
pub struct SettingsService {
    ports: SettingsPorts,
}

impl std::fmt::Debug for SettingsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsService").finish_non_exhaustive()
    }
}

impl SettingsService {
    pub fn new(ports: SettingsPorts) -> Self {
        Self { ports }
    }

    /// The settings of the principal's workspace.
    #[tracing::instrument(name = "settings.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(&self, principal: &Principal) -> Result<WorkspaceSettings, SettingsError> {
        principal.require(Permission::SettingsRead)?;
        self.ports
            .settings
            .find(principal.workspace_id())
            .await?
            .ok_or_else(|| StorageError::corrupt("the workspace has no settings row").into())
    }

    /// Applies `patch`: every field is checked first, all problems reported at once;
    /// one activity `workspace.settings_updated` lists the keys that changed. Setting or
    /// changing the failure webhook's URL seals a new signing secret (the old one goes),
    /// returned this once; clearing the URL discards it.
    #[tracing::instrument(name = "settings.update", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn update(
        &self,
        principal: &Principal,
        patch: SettingsPatch,
    ) -> Result<UpdatedSettings, SettingsError> {
        principal.require(Permission::SettingsManage)?;
        if patch.allow_internal_network.is_some() {
            principal.require(Permission::NetworkManage)?;
        }
        let workspace = principal.workspace_id();
        let mut unit = self.ports.units.begin().await?;
        let current = self
            .ports
            .settings
            .lock(unit.as_mut(), workspace)
            .await?
            .ok_or_else(|| StorageError::corrupt("the workspace has no settings row"))?;
        let mut checked = Checked::new(current.clone());
        checked.apply(patch);
        let (mut updated, changed) = checked.finish().map_err(SettingsError::Invalid)?;
        if changed.is_empty() {
            return Ok(UpdatedSettings {
                settings: current,
                signing_secret: None,
            });
        }
        let signing_secret = if changed.contains(&"notifications.execution_failed.webhook_url") {
            self.replace_webhook_secret(unit.as_mut(), principal, &mut updated)
                .await?
        } else {
            None
        };
        // Microseconds, as the database keeps it: the answer equals a later read.
        let now = self.ports.clock.now();
        updated.updated_at = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now);
        self.ports
            .settings
            .save(unit.as_mut(), workspace, &updated)
            .await?;
        let network_changed = changed.contains(&"allow_internal_network");
        let mut metadata = json!({ "changed": changed });
        if network_changed {
            metadata["severity"] = json!("warning");
            metadata["allow_internal_network"] = json!(updated.allow_internal_network);
        }
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &AuditEvent::by(
                    principal,
                    "workspace.settings_updated",
                    ("workspace", workspace.to_string()),
                    metadata,
                ),
            )
            .await?;
        unit.commit().await?;
        Ok(UpdatedSettings {
            settings: updated,
            signing_secret,
        })
    }

    /// A new signing secret for the failure notifications webhook (returned once); the
    /// old one keeps signing beside it for `grace_seconds` (default a day, at most 30
    /// days; 0 drops it at once). Refused while no webhook URL is set.
    #[tracing::instrument(name = "settings.rotate_failure_webhook_secret", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn rotate_failure_webhook_secret(
        &self,
        principal: &Principal,
        grace_seconds: Option<i64>,
    ) -> Result<UpdatedSettings, SettingsError> {
        principal.require(Permission::SettingsManage)?;
        let grace = fluxolab_kernel::standard_webhooks::rotation_grace(grace_seconds)
            .map_err(SettingsError::Invalid)?;
        let workspace = principal.workspace_id();
        let mut unit = self.ports.units.begin().await?;
        let mut settings = self
            .ports
            .settings
            .lock(unit.as_mut(), workspace)
            .await?
            .ok_or_else(|| StorageError::corrupt("the workspace has no settings row"))?;
        let url_set = settings
            .document
            .notifications
            .execution_failed
            .webhook_url
            .is_some();
        let Some(current) = settings.failure_webhook_secret.filter(|_| url_set) else {
            return Err(SettingsError::Invalid(ValidationErrors::single(
                "notifications.execution_failed.webhook_url",
                "is not set, so nothing signs",
            )));
        };
        let now = self.ports.clock.now();
        let secret = fluxolab_kernel::standard_webhooks::generate_secret()?;
        let stored = self
            .ports
            .secrets
            .store(
                unit.as_mut(),
                workspace,
                "Failure notifications webhook signing secret",
                &secret,
                principal.user(),
            )
            .await?;
        // The secret an earlier rotation kept goes; so does the current one without grace.
        let mut discarded: Vec<CredentialId> = settings
            .failure_webhook_previous_secret
            .map(|(old, _)| old)
            .into_iter()
            .collect();
        settings.failure_webhook_previous_secret =
            (grace > 0).then(|| (current, now + time::Duration::seconds(grace)));
        if grace == 0 {
            discarded.push(current);
        }
        settings.failure_webhook_secret = Some(stored);
        settings.updated_at = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now);
        self.ports
            .settings
            .save(unit.as_mut(), workspace, &settings)
            .await?;
        for old in discarded {
            self.ports
                .secrets
                .discard(unit.as_mut(), workspace, old)
                .await?;
        }
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &AuditEvent::by(
                    principal,
                    "workspace.failure_webhook_secret_rotated",
                    ("workspace", workspace.to_string()),
                    json!({ "grace_seconds": grace }),
                ),
            )
            .await?;
        unit.commit().await?;
        Ok(UpdatedSettings {
            settings,
            signing_secret: Some(secret),
        })
    }

    /// Discards the failure webhook's secret and, when a URL is set, seals a new one.
    async fn replace_webhook_secret(
        &self,
        unit: &mut Uow,
        principal: &Principal,
        settings: &mut WorkspaceSettings,
    ) -> Result<Option<SecretString>, SettingsError> {
        let workspace = principal.workspace_id();
        let previous = settings.failure_webhook_previous_secret.take();
        for old in [
            settings.failure_webhook_secret.take(),
            previous.map(|(old, _)| old),
        ]
        .into_iter()
        .flatten()
        {
            self.ports.secrets.discard(unit, workspace, old).await?;
        }
        if settings
            .document
            .notifications
            .execution_failed
            .webhook_url
            .is_none()
        {
            return Ok(None);
        }
        let secret = fluxolab_kernel::standard_webhooks::generate_secret()?;
        settings.failure_webhook_secret = Some(
            self.ports
                .secrets
                .store(
                    unit,
                    workspace,
                    "Failure notifications webhook signing secret",
                    &secret,
                    principal.user(),
                )
                .await?,
        );
        Ok(Some(secret))
    }
}

/// Whether `value` is a time zone name FluxoLab knows (`Europe/Lisbon`, `UTC`). For
/// other features that take one (schedules).
pub use crate::settings_rules::{timezone_names, valid_timezone};
