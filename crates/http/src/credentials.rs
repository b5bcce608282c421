//! `/api/workflows/credentials*`: the vault, masked on the way out; and
//! `/api/settings/security/rotate-data-key`.

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, delete, get, patch, post};
use fluxolab_credentials::CredentialKind;
use fluxolab_credentials::model::CredentialRecord;
use fluxolab_credentials::service::{CredentialPatch, NewCredential};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::path_id::path_id;
use crate::problem::Problem;
use crate::workspaces::{PageQuery, PageResponse, page_request};

/// A credential kind and the schema of its `data`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialTypeResponse {
    pub kind: String,
    /// JSON Schema of `data`; secret fields carry `"x-secret": true`.
    #[schema(value_type = Object)]
    pub schema: Value,
    pub secret_fields: Vec<String>,
}

/// A credential; secret fields appear as `{"has_value", "hint"}`, never their value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialResponse {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// The version of the workspace data key that sealed the secrets.
    pub key_version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<CredentialRecord> for CredentialResponse {
    fn from(record: CredentialRecord) -> Self {
        Self {
            data: record.masked_data(),
            id: record.id.as_uuid(),
            name: record.name,
            kind: record.kind.code().to_owned(),
            key_version: record.key_version,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// `POST /api/workflows/credentials`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredentialRequest {
    pub name: String,
    /// `smtp`, `http_basic`, `http_header`, `bearer_token`, `meta_app` or `generic`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `PATCH /api/workflows/credentials/{id}`: absent fields, secret ones included, keep
/// their values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateCredentialRequest {
    /// Trimmed: 1–120 characters, not only spaces.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Map<String, Value>>,
}

/// What a data-key rotation did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotationResponse {
    pub key_version: i32,
    /// False when this call finished an interrupted rotation instead of starting one.
    pub new_key: bool,
    pub resealed: u64,
}

/// The credential kinds and their schemas.
#[utoipa::path(tag = "credentials", security(("bearer" = [])), responses(
    (status = 200, description = "Every kind", body = Vec<CredentialTypeResponse>),
))]
#[get("/api/workflows/credentials/types")]
pub async fn credential_types(_caller: ActiveWorkspace) -> HttpResponse {
    let types: Vec<CredentialTypeResponse> = CredentialKind::ALL
        .into_iter()
        .map(|kind| CredentialTypeResponse {
            kind: kind.code().to_owned(),
            schema: kind.json_schema(),
            secret_fields: kind
                .fields()
                .iter()
                .filter(|spec| spec.secret)
                .map(|spec| spec.name.to_owned())
                .collect(),
        })
        .collect();
    HttpResponse::Ok().json(types)
}

/// Credentials of the active workspace (masked).
#[utoipa::path(tag = "credentials", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "A page of credentials", body = PageResponse<CredentialResponse>),
))]
#[get("/api/workflows/credentials")]
pub async fn list_credentials(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let records = services.vault.list(&caller.principal, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<CredentialResponse>::from(records)))
}

/// Stores a credential; its secret fields are sealed and never shown again.
#[utoipa::path(tag = "credentials", security(("bearer" = [])), request_body = CreateCredentialRequest, responses(
    (status = 201, description = "The credential, masked", body = CredentialResponse),
    (status = 409, description = "A plan limit is reached (`plan_limit`, with `limit`)", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not allowed (`credentials.write`)", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Unknown kind or invalid `data`, each field named", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workflows/credentials")]
pub async fn create_credential(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<CreateCredentialRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let record = services
        .vault
        .create(
            &caller.principal,
            NewCredential {
                name: body.name,
                kind: body.kind,
                data: body.data,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(CredentialResponse::from(record)))
}

/// One credential (masked).
#[utoipa::path(tag = "credentials", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Credential id")), responses(
    (status = 200, description = "The credential, masked", body = CredentialResponse),
    (status = 404, description = "No such credential in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/workflows/credentials/{id}")]
pub async fn get_credential(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = services.vault.get(&caller.principal, path_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(CredentialResponse::from(record)))
}

/// Changes the name or data; secret fields left out keep their values.
#[utoipa::path(tag = "credentials", security(("bearer" = [])), request_body = UpdateCredentialRequest, params(("id" = Uuid, Path, description = "Credential id")), responses(
    (status = 200, description = "The credential, masked", body = CredentialResponse),
    (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such credential in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/workflows/credentials/{id}")]
pub async fn update_credential(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<UpdateCredentialRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    if body.name.is_none() && body.data.is_none() {
        return Err(ApiError::invalid("body", "send `name`, `data` or both"));
    }
    let record = services
        .vault
        .update(
            &caller.principal,
            path_id(&id)?,
            CredentialPatch {
                name: body.name,
                data: body.data,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(CredentialResponse::from(record)))
}

/// Deletes a credential.
#[utoipa::path(tag = "credentials", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Credential id")), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such credential in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/workflows/credentials/{id}")]
pub async fn delete_credential(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    services
        .vault
        .delete(&caller.principal, path_id(&id)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/workflows/credentials/{id}/test`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCredentialRequest {
    /// For HTTP kinds: the URL to request with the credential applied.
    pub url: Option<String>,
}

/// What a credential test found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestCredentialResponse {
    pub ok: bool,
    pub message: String,
}

/// Tries a credential: SMTP connects, secures and logs in; HTTP kinds request `url` with
/// it. Outbound connections pass the SSRF guard (internal targets only when the workspace
/// allows them). A failed connection answers 200 with `ok: false`.
#[utoipa::path(tag = "credentials", security(("bearer" = [])), request_body = TestCredentialRequest, params(("id" = Uuid, Path, description = "Credential id")), responses(
    (status = 200, description = "The outcome", body = TestCredentialResponse),
    (status = 403, description = "Not allowed (`credentials.write`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such credential in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "A missing or bad `url`, or a kind that cannot be tested", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workflows/credentials/{id}/test")]
pub async fn test_credential(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<TestCredentialRequest>,
) -> Result<HttpResponse, ApiError> {
    let outcome = services
        .vault
        .test(&caller.principal, path_id(&id)?, body.0.url.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(TestCredentialResponse {
        ok: outcome.ok,
        message: outcome.message,
    }))
}

/// Gives the active workspace a new data key and re-seals its credentials (owners only).
/// An interrupted rotation is finished by calling this again.
#[utoipa::path(tag = "credentials", security(("bearer" = [])), responses(
    (status = 200, description = "What was done", body = RotationResponse),
    (status = 403, description = "Owners only", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/security/rotate-data-key")]
pub async fn rotate_data_key(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let report = services.vault.rotate_data_key(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(RotationResponse {
        key_version: report.key_version,
        new_key: report.new_key,
        resealed: report.resealed,
    }))
}
