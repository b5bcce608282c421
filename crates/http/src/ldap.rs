//! `/api/settings/ldap*` (the workspace's LDAP directory: settings, test, sync) and
//! `POST /api/auth/ldap/login`. The bind password is sealed in the vault and never
//! returned; a test never returns a password either.

use std::collections::BTreeMap;

use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put};
use fluxolab_kernel::SecretString;
use fluxolab_workspace::Role;
use fluxolab_workspace::ldap::{LdapSettings, LdapTestReport, SubmittedLdap, SyncRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::{TokenResponse, client_info};
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::problem::Problem;

/// A role LDAP may grant (never `owner`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LdapRole {
    Admin,
    Editor,
    Viewer,
}

impl From<Role> for LdapRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin | Role::Owner => LdapRole::Admin,
            Role::Editor => LdapRole::Editor,
            Role::Viewer => LdapRole::Viewer,
        }
    }
}

impl LdapRole {
    fn code(self) -> String {
        match self {
            LdapRole::Admin => "admin",
            LdapRole::Editor => "editor",
            LdapRole::Viewer => "viewer",
        }
        .to_owned()
    }
}

/// `PUT /api/settings/ldap`: the whole configuration. Left-out fields take their
/// defaults; a left-out `bind_password` keeps the sealed one (required the first time).
/// Its `Debug` shows no field (the bind password is one).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapSettingsRequest {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    #[schema(pattern = "^ldaps?://[^/?#@ ]+/?$", max_length = 1024)]
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS (not with `ldaps://`). Default false.
    pub start_tls: Option<bool>,
    /// The service account's DN.
    #[schema(min_length = 1, max_length = 1024, pattern = "=")]
    pub bind_dn: String,
    /// Sealed in the vault; never returned.
    #[schema(format = Password, min_length = 1, max_length = 1024)]
    pub bind_password: Option<String>,
    /// Where users are searched.
    #[schema(min_length = 1, max_length = 1024, pattern = "=")]
    pub base_dn: String,
    /// Default `(uid={username})`; the username is escaped per RFC 4515.
    #[schema(min_length = 1, max_length = 1024, pattern = r"^\(.*\{username\}.*\)$")]
    pub user_filter: Option<String>,
    /// Default `mail`.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9;-]{0,63}$")]
    pub email_attribute: Option<String>,
    /// Default `cn`.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9;-]{0,63}$")]
    pub name_attribute: Option<String>,
    /// Where groups are searched; default `base_dn`.
    #[schema(min_length = 1, max_length = 1024, pattern = "=")]
    pub group_base_dn: Option<String>,
    /// Default `(member={dn})`; `{dn}` and `{username}` are escaped per RFC 4515.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^\(.*\{(dn|username)\}.*\)$"
    )]
    pub group_filter: Option<String>,
    /// Group DN → role; a member of several groups gets the most powerful role.
    pub role_mapping: Option<BTreeMap<String, LdapRole>>,
    /// The role of users no mapped group names. Default `viewer`.
    pub default_role: Option<LdapRole>,
    /// Minutes between periodic syncs; 0 (the default) turns them off.
    #[schema(minimum = 0, maximum = 10080)]
    pub sync_interval_minutes: Option<u32>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// What the latest sync did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LdapSyncResult {
    /// Members brought in by LDAP that were looked up.
    pub checked: u32,
    pub role_changes: u32,
    pub removed: u32,
    /// What could not be done (the directory unreachable, a last owner kept…).
    pub errors: Vec<String>,
}

/// The outcome of a sync.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LdapSyncResponse {
    #[serde(with = "time::serde::rfc3339")]
    pub last_sync_at: OffsetDateTime,
    pub result: LdapSyncResult,
}

impl From<SyncRecord> for LdapSyncResponse {
    fn from(record: SyncRecord) -> Self {
        Self {
            last_sync_at: record.at,
            result: LdapSyncResult {
                checked: record.result.checked,
                role_changes: record.result.role_changes,
                removed: record.result.removed,
                errors: record.result.errors,
            },
        }
    }
}

/// The LDAP settings; the bind password is never shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LdapSettingsResponse {
    pub url: String,
    pub start_tls: bool,
    pub bind_dn: String,
    /// Always true: the password is sealed in the vault, never returned.
    pub has_bind_password: bool,
    pub base_dn: String,
    pub user_filter: String,
    pub email_attribute: String,
    pub name_attribute: String,
    pub group_base_dn: Option<String>,
    pub group_filter: String,
    pub role_mapping: BTreeMap<String, LdapRole>,
    pub default_role: LdapRole,
    pub sync_interval_minutes: u32,
    pub enabled: bool,
    /// The latest sync, if any.
    pub last_sync: Option<LdapSyncResponse>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<LdapSettings> for LdapSettingsResponse {
    fn from(settings: LdapSettings) -> Self {
        let config = settings.config;
        Self {
            url: config.url,
            start_tls: config.start_tls,
            bind_dn: config.bind_dn,
            has_bind_password: true,
            base_dn: config.base_dn,
            user_filter: config.user_filter,
            email_attribute: config.email_attribute,
            name_attribute: config.name_attribute,
            group_base_dn: config.group_base_dn,
            group_filter: config.group_filter,
            role_mapping: config
                .role_mapping
                .into_iter()
                .map(|(group, role)| (group, role.into()))
                .collect(),
            default_role: config.default_role.into(),
            sync_interval_minutes: config.sync_interval_minutes,
            enabled: config.enabled,
            last_sync: settings.last_sync.map(LdapSyncResponse::from),
            created_at: settings.created_at,
            updated_at: settings.updated_at,
        }
    }
}

/// `POST /api/settings/ldap/test` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapTestRequest {
    /// A user to look up as a login would (no bind as them: no password is asked).
    #[schema(min_length = 1, max_length = 256)]
    pub username: Option<String>,
}

/// A user as a login would see them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LdapTestUser {
    pub dn: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// DNs of the groups the group filter found.
    pub groups: Vec<String>,
    /// The role a login would get.
    pub role: LdapRole,
}

/// What a test found; never a password.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LdapTestResponse {
    /// The service account bound and searched (and the user, when asked, was found).
    pub ok: bool,
    pub detail: String,
    pub user: Option<LdapTestUser>,
}

impl From<LdapTestReport> for LdapTestResponse {
    fn from(report: LdapTestReport) -> Self {
        Self {
            ok: report.ok,
            detail: report.detail,
            user: report.user.map(|(entry, role)| LdapTestUser {
                dn: entry.dn,
                email: entry.email,
                name: entry.name,
                groups: entry.groups,
                role: role.into(),
            }),
        }
    }
}

/// `POST /api/auth/ldap/login`. Its `Debug` shows no field (the password is one).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapLoginRequest {
    /// The workspace's id or slug.
    #[schema(min_length = 1, max_length = 100)]
    pub workspace: String,
    /// No control characters.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub username: String,
    #[schema(format = Password, min_length = 1, max_length = 1024)]
    pub password: String,
}

/// `Debug` without the fields of a request that carries a password.
macro_rules! redacted_debug {
    ($($request:ty),+) => {
        $(impl std::fmt::Debug for $request {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($request)).finish_non_exhaustive()
            }
        })+
    };
}

redacted_debug!(LdapSettingsRequest, LdapLoginRequest);

/// The workspace's LDAP settings (the bind password is never shown).
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 200, description = "The settings", body = LdapSettingsResponse),
    (status = 403, description = "The caller may not view settings", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "LDAP is not configured", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/ldap")]
pub async fn get_ldap(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let settings = services.ldap.get(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(LdapSettingsResponse::from(settings)))
}

/// Configures LDAP (`business` and `enterprise` plans); the bind password is sealed.
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body = LdapSettingsRequest, responses(
    (status = 200, description = "The settings", body = LdapSettingsResponse),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The plan does not include LDAP (`plan_limit`, limit `ldap`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[put("/api/settings/ldap")]
pub async fn put_ldap(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<LdapSettingsRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let submitted = SubmittedLdap {
        url: body.url,
        start_tls: body.start_tls,
        bind_dn: body.bind_dn,
        bind_password: body.bind_password.map(SecretString::from),
        base_dn: body.base_dn,
        user_filter: body.user_filter,
        email_attribute: body.email_attribute,
        name_attribute: body.name_attribute,
        group_base_dn: body.group_base_dn,
        group_filter: body.group_filter,
        role_mapping: body.role_mapping.map(|mapping| {
            mapping
                .into_iter()
                .map(|(group, role)| (group, role.code()))
                .collect()
        }),
        default_role: body.default_role.map(LdapRole::code),
        sync_interval_minutes: body.sync_interval_minutes,
        enabled: body.enabled,
    };
    let settings = services.ldap.put(&caller.principal, submitted).await?;
    Ok(HttpResponse::Ok().json(LdapSettingsResponse::from(settings)))
}

/// Removes the LDAP settings and their sealed password; members LDAP brought in stay.
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "LDAP is not configured", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/settings/ldap")]
pub async fn delete_ldap(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    services.ldap.delete(&caller.principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Binds with the service account and searches; given a username, tells what a login
/// would get (DN, e-mail, name, groups, mapped role). Recorded as `tested` or
/// `test_failed`.
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body(content = LdapTestRequest, description = "Optional"), responses(
    (status = 200, description = "What the test found", body = LdapTestResponse),
    (status = 404, description = "LDAP is not configured", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The plan does not include LDAP (`plan_limit`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "An invalid username", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/ldap/test")]
pub async fn test_ldap(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let username = crate::json::optional::<LdapTestRequest>(&body)?.username;
    if username
        .as_ref()
        .is_some_and(|name| !(1..=256).contains(&name.chars().count()))
    {
        return Err(ApiError::invalid("username", "must be 1 to 256 characters"));
    }
    let report = services.ldap.test(&caller.principal, username).await?;
    Ok(HttpResponse::Ok().json(LdapTestResponse::from(report)))
}

/// Syncs now: members LDAP brought in get the role their groups map to, or lose the
/// membership when no longer found (never the last owner).
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 200, description = "What the sync did", body = LdapSyncResponse),
    (status = 404, description = "LDAP is not configured", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The plan does not include LDAP (`plan_limit`)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/ldap/sync")]
pub async fn sync_ldap(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let record = services.ldap.sync_now(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(LdapSyncResponse::from(record)))
}

/// Signs in with a directory username and password. The account and the membership
/// are created on the first login, with the role the user's groups map to. A wrong
/// password counts towards the account's lockout; every failure answers the same.
#[utoipa::path(tag = "auth", request_body = LdapLoginRequest, responses(
    (status = 200, description = "Tokens", body = TokenResponse),
    (status = 401, description = "Unknown workspace or user, wrong password, locked account or LDAP off (`invalid_credentials`)", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The workspace has no room for another member (`plan_limit`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/auth/ldap/login")]
pub async fn ldap_login(
    request: HttpRequest,
    services: Data<Services>,
    body: Json<LdapLoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let password = SecretString::from(body.password);
    let signed_in = services
        .ldap_login
        .login(&body.workspace, &body.username, &password)
        .await?;
    let tokens = services
        .accounts
        .sign_in_verified(signed_in.user, signed_in.workspace, client_info(&request))
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(tokens)))
}
