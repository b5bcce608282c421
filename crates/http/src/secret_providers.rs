//! `/api/settings/secret-providers*`: external secret stores a workspace's credentials
//! and environment variables may reference. Their credentials are sealed in the vault
//! and never returned.

use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpResponse, delete, get, patch, post};
use fluxolab_kernel::ProbeReport;
use fluxolab_workspace::secret_providers::{
    NewProvider, ProviderPatch, SecretProvider, SecretProviderId, SubmittedCredentials,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::problem::Problem;

/// A secret provider; its credentials are never shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretProviderResponse {
    pub id: Uuid,
    pub name: String,
    /// `aws_secrets_manager` or `vault`.
    pub kind: String,
    /// `{region, endpoint_url}` (AWS) or `{address, mount, namespace}` (Vault).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Always `true`: credentials are sealed in the vault, never returned.
    pub has_credentials: bool,
    pub enabled: bool,
    /// How long a process keeps a value it read (0: not at all).
    pub cache_ttl_seconds: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<SecretProvider> for SecretProviderResponse {
    fn from(provider: SecretProvider) -> Self {
        Self {
            id: provider.id.as_uuid(),
            name: provider.name,
            kind: provider.config.kind().to_owned(),
            config: provider.config.to_json(),
            has_credentials: true,
            enabled: provider.enabled,
            cache_ttl_seconds: provider.cache_ttl_seconds,
            created_at: provider.created_at,
            updated_at: provider.updated_at,
        }
    }
}

/// `POST /api/settings/secret-providers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecretProviderRequest {
    /// Unique in the workspace: 1–40 of `a-z`, `0-9`, `-`.
    #[schema(pattern = "^[a-z0-9-]{1,40}$")]
    pub name: String,
    /// `aws_secrets_manager` or `vault`.
    pub kind: String,
    /// AWS: `{region, endpoint_url?}`; Vault: `{address, mount? (default "secret"),
    /// namespace?}`.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// AWS: `{access_key_id, secret_access_key, session_token?}`; Vault: `{token}` or
    /// `{role_id, secret_id}`. Sealed in the vault; never returned.
    #[schema(value_type = Object)]
    pub credentials: serde_json::Value,
    /// 0–86400, default 60.
    #[schema(minimum = 0, maximum = 86400)]
    pub cache_ttl_seconds: Option<u32>,
    /// Default `true`.
    pub enabled: Option<bool>,
}

/// `PATCH /api/settings/secret-providers/{id}`: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSecretProviderRequest {
    /// Refused (409 `provider_in_use`) while something references the old name.
    #[schema(pattern = "^[a-z0-9-]{1,40}$")]
    pub name: Option<String>,
    /// The whole configuration of the provider's kind.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// Replaces the sealed credentials whole.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Value>,
    #[schema(minimum = 0, maximum = 86400)]
    pub cache_ttl_seconds: Option<u32>,
    pub enabled: Option<bool>,
}

/// `POST /api/settings/secret-providers/{id}/test` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSecretProviderRequest {
    /// A secret to read (its value is not returned); left out, one name is listed.
    #[schema(min_length = 1, max_length = 512)]
    pub probe: Option<String>,
}

/// What a test found; never a value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretProviderTestResponse {
    pub reachable: bool,
    pub authenticated: bool,
    pub detail: String,
}

impl From<ProbeReport> for SecretProviderTestResponse {
    fn from(report: ProbeReport) -> Self {
        Self {
            reachable: report.reachable,
            authenticated: report.authenticated,
            detail: report.detail,
        }
    }
}

fn provider_id(raw: &str) -> Result<SecretProviderId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("secret provider"))
}

/// The workspace's secret providers, oldest first.
#[utoipa::path(tag = "settings", security(("bearer" = [])), responses(
    (status = 200, description = "The providers (credentials never shown)", body = [SecretProviderResponse]),
    (status = 403, description = "The caller may not view settings", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/secret-providers")]
pub async fn list_secret_providers(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let providers = services.secret_providers.list(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(
        providers
            .into_iter()
            .map(SecretProviderResponse::from)
            .collect::<Vec<_>>(),
    ))
}

/// Adds a provider; its credentials are sealed in the vault.
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body = CreateSecretProviderRequest, responses(
    (status = 201, description = "The provider", body = SecretProviderResponse),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Another provider has this name (`name_taken`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/secret-providers")]
pub async fn create_secret_provider(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<CreateSecretProviderRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let provider = services
        .secret_providers
        .create(
            &caller.principal,
            NewProvider {
                name: body.name,
                kind: body.kind,
                config: body.config,
                credentials: SubmittedCredentials(body.credentials),
                cache_ttl_seconds: body.cache_ttl_seconds,
                enabled: body.enabled,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(SecretProviderResponse::from(provider)))
}

/// One provider.
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Provider id")), responses(
    (status = 200, description = "The provider", body = SecretProviderResponse),
    (status = 404, description = "No such provider in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/secret-providers/{id}")]
pub async fn get_secret_provider(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = services
        .secret_providers
        .get(&caller.principal, provider_id(&id)?)
        .await?;
    Ok(HttpResponse::Ok().json(SecretProviderResponse::from(provider)))
}

/// Changes a provider; new credentials replace the sealed ones.
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body = UpdateSecretProviderRequest, params(("id" = Uuid, Path, description = "Provider id")), responses(
    (status = 200, description = "The provider", body = SecretProviderResponse),
    (status = 404, description = "No such provider in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The name is taken (`name_taken`), or the old name is referenced (`provider_in_use`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/settings/secret-providers/{id}")]
pub async fn update_secret_provider(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<UpdateSecretProviderRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let provider = services
        .secret_providers
        .update(
            &caller.principal,
            provider_id(&id)?,
            ProviderPatch {
                name: body.name,
                config: body.config,
                credentials: body.credentials.map(SubmittedCredentials),
                cache_ttl_seconds: body.cache_ttl_seconds,
                enabled: body.enabled,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(SecretProviderResponse::from(provider)))
}

/// Deletes a provider and its sealed credentials.
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Provider id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such provider in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Environment variables or credentials reference it (`provider_in_use`, naming them)", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/settings/secret-providers/{id}")]
pub async fn delete_secret_provider(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    services
        .secret_providers
        .delete(&caller.principal, provider_id(&id)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Whether the provider is reachable and accepts its credentials; never returns a
/// value. Recorded as `tested` or `test_failed` in the integration events.
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body(content = TestSecretProviderRequest, description = "Optional"), params(("id" = Uuid, Path, description = "Provider id")), responses(
    (status = 200, description = "What the test found", body = SecretProviderTestResponse),
    (status = 404, description = "No such provider in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "An invalid probe", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/secret-providers/{id}/test")]
pub async fn test_secret_provider(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let probe = crate::json::optional::<TestSecretProviderRequest>(&body)?.probe;
    if probe
        .as_ref()
        .is_some_and(|probe| !(1..=512).contains(&probe.chars().count()))
    {
        return Err(ApiError::invalid("probe", "must be 1 to 512 characters"));
    }
    let report = services
        .secret_providers
        .test(&caller.principal, provider_id(&id)?, probe)
        .await?;
    Ok(HttpResponse::Ok().json(SecretProviderTestResponse::from(report)))
}
