//! `/api/settings/workspace`: time zone, locale, internal networks, run defaults,
//! notification targets and branding.

use actix_web::web::{Bytes, Data};
use actix_web::{HttpResponse, get, patch, post};
use fluxolab_kernel::ExposeSecret;
use fluxolab_workspace::settings::{
    Branding, BrandingPatch, ExecutionDefaults, ExecutionDefaultsPatch, FailureNotifications,
    FailureNotificationsPatch, Notifications, NotificationsPatch, SettingsPatch, WorkspaceSettings,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::problem::Problem;

/// What runs that set none of their own use.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecutionDefaultsBody {
    /// How long one attempt of a run may last, in seconds (1–86400; default 300); the
    /// instance's `EXECUTION_TIMEOUT_SECONDS` caps it.
    pub timeout_seconds: u32,
    /// Attempts before a run fails for good (1–10; default 3).
    pub max_attempts: u32,
    /// Whether the steps of successful runs are kept (default true).
    pub save_successful_steps: bool,
    /// The most memory a `code.javascript` node may set, in MiB (32–1024; default
    /// 128); the instance's `CODE_MAX_MEMORY_MB` caps it.
    pub code_max_memory_mb: u32,
    /// The most time a `code.javascript` node may set, in ms (2000–60000; default
    /// 10000); the instance's `CODE_MAX_TIMEOUT_MS` caps it.
    pub code_max_timeout_ms: u32,
}

/// Who hears of a failed run (a run that failed for good; at most one message per
/// workflow per 10 minutes, the next one counting the failures since).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FailureNotificationsBody {
    /// E-mailed through `SMTP_URL`; an address of a user who switched their own
    /// `execution_failed` notification off is skipped.
    pub emails: Vec<String>,
    /// POSTed a JSON message signed with Standard Webhooks headers.
    pub webhook_url: Option<String>,
    /// Only in the answer to the change that set or changed `webhook_url`: the
    /// `whsec_…` secret its deliveries are signed with, shown this once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// Notification targets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationsBody {
    pub execution_failed: FailureNotificationsBody,
    pub weekly_usage_report: bool,
}

/// How the workspace presents itself.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BrandingBody {
    pub display_name: Option<String>,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
}

/// A workspace's settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceSettingsResponse {
    /// IANA time zone name.
    pub timezone: String,
    /// BCP 47 language tag.
    pub locale: String,
    /// Whether runs and integrations may reach loopback and private addresses.
    pub allow_internal_network: bool,
    pub execution_defaults: ExecutionDefaultsBody,
    pub notifications: NotificationsBody,
    pub branding: BrandingBody,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<WorkspaceSettings> for WorkspaceSettingsResponse {
    fn from(settings: WorkspaceSettings) -> Self {
        let ExecutionDefaults {
            timeout_seconds,
            max_attempts,
            save_successful_steps,
            code_max_memory_mb,
            code_max_timeout_ms,
        } = settings.document.execution_defaults;
        let Notifications {
            execution_failed:
                FailureNotifications {
                    emails,
                    webhook_url,
                },
            weekly_usage_report,
        } = settings.document.notifications;
        let Branding {
            display_name,
            logo_url,
            primary_color,
        } = settings.document.branding;
        Self {
            timezone: settings.timezone,
            locale: settings.locale,
            allow_internal_network: settings.allow_internal_network,
            execution_defaults: ExecutionDefaultsBody {
                timeout_seconds,
                max_attempts,
                save_successful_steps,
                code_max_memory_mb,
                code_max_timeout_ms,
            },
            notifications: NotificationsBody {
                execution_failed: FailureNotificationsBody {
                    emails,
                    webhook_url,
                    signing_secret: None,
                },
                weekly_usage_report,
            },
            branding: BrandingBody {
                display_name,
                logo_url,
                primary_color,
            },
            updated_at: settings.updated_at,
        }
    }
}

/// Changes to the run defaults; fields left out stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionDefaultsRequest {
    #[schema(minimum = 1, maximum = 86400)]
    pub timeout_seconds: Option<u32>,
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: Option<u32>,
    pub save_successful_steps: Option<bool>,
    #[schema(minimum = 32, maximum = 1024)]
    pub code_max_memory_mb: Option<u32>,
    #[schema(minimum = 2000, maximum = 60000)]
    pub code_max_timeout_ms: Option<u32>,
}

/// Changes to the failure notifications; fields left out stay, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureNotificationsRequest {
    /// Replaces the list: at most 20 addresses.
    #[schema(max_items = 20)]
    pub emails: Option<Vec<String>>,
    /// An absolute `http(s)://` URL; `null` removes it.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<String>)]
    pub webhook_url: Option<Option<String>>,
}

/// Changes to the notifications; fields left out stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsRequest {
    pub execution_failed: Option<FailureNotificationsRequest>,
    pub weekly_usage_report: Option<bool>,
}

/// Changes to the branding; fields left out stay, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingRequest {
    /// 1–80 characters, not only spaces (trimmed).
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 80, pattern = r"\S")]
    pub display_name: Option<Option<String>>,
    /// An absolute `https://` URL.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<String>)]
    pub logo_url: Option<Option<String>>,
    /// `#rrggbb`.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<String>, pattern = "^#[0-9a-fA-F]{6}$")]
    pub primary_color: Option<Option<String>>,
}

/// `PATCH /api/settings/workspace`: fields left out stay as they are; unknown fields
/// are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspaceSettingsRequest {
    /// An IANA time zone name, such as `Europe/Lisbon` or `UTC`.
    #[schema(min_length = 1, max_length = 64)]
    pub timezone: Option<String>,
    /// A BCP 47 language tag, such as `en` or `pt-BR`.
    #[schema(
        pattern = "^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$"
    )]
    pub locale: Option<String>,
    /// Owners only (`network.manage`): lets runs and integrations reach loopback and
    /// private addresses. Recorded as a warning in the activity log.
    pub allow_internal_network: Option<bool>,
    pub execution_defaults: Option<ExecutionDefaultsRequest>,
    pub notifications: Option<NotificationsRequest>,
    pub branding: Option<BrandingRequest>,
}

impl From<UpdateWorkspaceSettingsRequest> for SettingsPatch {
    fn from(body: UpdateWorkspaceSettingsRequest) -> Self {
        Self {
            timezone: body.timezone,
            locale: body.locale,
            allow_internal_network: body.allow_internal_network,
            execution_defaults: body.execution_defaults.map(|d| ExecutionDefaultsPatch {
                timeout_seconds: d.timeout_seconds,
                max_attempts: d.max_attempts,
                save_successful_steps: d.save_successful_steps,
                code_max_memory_mb: d.code_max_memory_mb,
                code_max_timeout_ms: d.code_max_timeout_ms,
            }),
            notifications: body.notifications.map(|n| NotificationsPatch {
                execution_failed: n.execution_failed.map(|f| FailureNotificationsPatch {
                    emails: f.emails,
                    webhook_url: f.webhook_url,
                }),
                weekly_usage_report: n.weekly_usage_report,
            }),
            branding: body.branding.map(|b| BrandingPatch {
                display_name: b.display_name,
                logo_url: b.logo_url,
                primary_color: b.primary_color,
            }),
        }
    }
}

/// The active workspace's settings.
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 200, description = "The settings", body = WorkspaceSettingsResponse),
    (status = 403, description = "The caller may not view settings", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/workspace")]
pub async fn get_workspace_settings(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let settings = services.settings.get(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(WorkspaceSettingsResponse::from(settings)))
}

/// Changes the active workspace's settings: every field is checked before anything is
/// written; one activity `workspace.settings_updated` lists the keys that changed.
/// Setting or changing `notifications.execution_failed.webhook_url` makes a new signing
/// secret, shown once as `notifications.execution_failed.signing_secret`.
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body = UpdateWorkspaceSettingsRequest, responses(
    (status = 200, description = "The settings after the change", body = WorkspaceSettingsResponse),
    (status = 403, description = "The caller may not change settings (or, not being an owner, `allow_internal_network`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid or unknown fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/settings/workspace")]
pub async fn update_workspace_settings(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<UpdateWorkspaceSettingsRequest>,
) -> Result<HttpResponse, ApiError> {
    let updated = services
        .settings
        .update(&caller.principal, body.0.into())
        .await?;
    let mut answer = WorkspaceSettingsResponse::from(updated.settings);
    answer.notifications.execution_failed.signing_secret = updated
        .signing_secret
        .map(|secret| secret.expose_secret().to_owned());
    Ok(HttpResponse::Ok().json(answer))
}

/// A new signing secret for the failure notifications webhook, shown this once as
/// `notifications.execution_failed.signing_secret`; the old one keeps signing beside it
/// (two `webhook-signature` entries) for the grace period.
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body(content = crate::rotate::RotateSecretRequest, description = "Optional"), responses(
    (status = 200, description = "The settings, with the new signing secret", body = WorkspaceSettingsResponse),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "An invalid grace period, or no webhook URL set", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/workspace/notifications/rotate-secret")]
pub async fn rotate_failure_webhook_secret(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let grace = crate::rotate::grace_seconds(&body)?;
    let rotated = services
        .settings
        .rotate_failure_webhook_secret(&caller.principal, grace)
        .await?;
    let mut answer = WorkspaceSettingsResponse::from(rotated.settings);
    answer.notifications.execution_failed.signing_secret = rotated
        .signing_secret
        .map(|secret| secret.expose_secret().to_owned());
    Ok(HttpResponse::Ok().json(answer))
}
