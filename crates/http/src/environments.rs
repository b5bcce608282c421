//! `/api/settings/environments*`: the workspace's environments, their variables (secret
//! ones masked) and what runs in each.

use std::collections::BTreeMap;

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get, patch};
use fluxolab_kernel::SecretRef;
use fluxolab_workspace::environments::{
    Environment, EnvironmentPatch, EnvironmentStatus, StoredValue, VariableInput,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::problem::Problem;

/// What a secret variable's value reads as in responses.
pub const MASK: &str = "********";

/// Where a value stands in an external secret provider.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRefBody {
    /// The provider's name in the workspace.
    #[schema(pattern = "^[a-z0-9-]{1,40}$")]
    pub provider: String,
    /// The secret's name (AWS) or path under the mount (Vault).
    #[schema(min_length = 1, max_length = 512)]
    pub name: String,
    /// A field of a JSON secret.
    #[schema(min_length = 1, max_length = 256)]
    pub key: Option<String>,
}

impl From<SecretRefBody> for SecretRef {
    fn from(body: SecretRefBody) -> Self {
        Self {
            provider: body.provider,
            name: body.name,
            key: body.key,
        }
    }
}

impl From<SecretRef> for SecretRefBody {
    fn from(reference: SecretRef) -> Self {
        Self {
            provider: reference.provider,
            name: reference.name,
            key: reference.key,
        }
    }
}

/// A variable; a secret's value is always masked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VariableResponse {
    pub name: String,
    /// The value, or `********` for a secret (sealed here or in a provider).
    pub value: String,
    pub secret: bool,
    /// Where the value stands, for a variable resolved from a secret provider at run
    /// time.
    pub secret_ref: Option<SecretRefBody>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An environment with its variables.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentResponse {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// Runs that name no environment run in this one.
    pub is_default: bool,
    pub variables: Vec<VariableResponse>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Environment> for EnvironmentResponse {
    fn from(environment: Environment) -> Self {
        Self {
            id: environment.id.as_uuid(),
            name: environment.name,
            description: environment.description,
            is_default: environment.is_default,
            variables: environment
                .variables
                .into_iter()
                .map(|variable| {
                    let (value, secret, secret_ref) = match variable.value {
                        StoredValue::Plain(value) => (value, false, None),
                        StoredValue::Secret(_) => (MASK.to_owned(), true, None),
                        StoredValue::Reference(reference) => {
                            (MASK.to_owned(), true, Some(reference.into()))
                        }
                    };
                    VariableResponse {
                        name: variable.name,
                        value,
                        secret,
                        secret_ref,
                        updated_at: variable.updated_at,
                    }
                })
                .collect(),
            created_at: environment.created_at,
            updated_at: environment.updated_at,
        }
    }
}

/// A variable as submitted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableRequest {
    pub name: String,
    /// Required for a plain variable; for a secret, left out keeps the stored value.
    /// Not with `secret_ref`.
    pub value: Option<String>,
    /// Sealed in the vault and masked in responses; default `false`.
    #[serde(default)]
    pub secret: bool,
    /// Instead of a value: a secret in one of the workspace's providers, resolved at
    /// run time only (and redacted from what runs record).
    pub secret_ref: Option<SecretRefBody>,
}

/// A value in the object form of `variables`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VariableValueRequest {
    /// A plain value.
    Plain(String),
    /// `{"value"?, "secret"?}`.
    Detailed {
        value: Option<String>,
        #[serde(default)]
        secret: bool,
    },
}

/// The whole set of variables: a list of `{name, value, secret}`, or an object of
/// `NAME: "value"` / `NAME: {"value", "secret"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VariablesRequest {
    List(Vec<VariableRequest>),
    Object(BTreeMap<String, VariableValueRequest>),
}

impl VariablesRequest {
    fn into_inputs(self) -> Vec<VariableInput> {
        match self {
            VariablesRequest::List(list) => list
                .into_iter()
                .map(|variable| VariableInput {
                    name: variable.name,
                    value: variable.value,
                    secret: variable.secret,
                    secret_ref: variable.secret_ref.map(SecretRef::from),
                })
                .collect(),
            VariablesRequest::Object(object) => object
                .into_iter()
                .map(|(name, value)| match value {
                    VariableValueRequest::Plain(value) => VariableInput {
                        name,
                        value: Some(value),
                        secret: false,
                        secret_ref: None,
                    },
                    VariableValueRequest::Detailed { value, secret } => VariableInput {
                        name,
                        value,
                        secret,
                        secret_ref: None,
                    },
                })
                .collect(),
        }
    }
}

/// `PATCH /api/settings/environments/{id}`: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEnvironmentRequest {
    /// 1–40 lowercase letters, digits, `-` or `_`, starting with a letter; unique.
    #[schema(pattern = r"^\s*[a-z][a-z0-9_-]{0,39}\s*$")]
    pub name: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Replaces the whole set.
    pub variables: Option<VariablesRequest>,
}

/// The latest failed execution of an environment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LastFailureResponse {
    pub execution_id: Uuid,
    pub workflow_id: Uuid,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// What runs in an environment, counted now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentStatusResponse {
    pub environment_id: Uuid,
    pub name: String,
    /// Workflows with a version active here.
    pub active_workflows: u32,
    /// Executions created in the last 24 hours, by status.
    pub executions_24h: BTreeMap<String, u32>,
    pub last_failure: Option<LastFailureResponse>,
    pub variables_count: u32,
    pub secret_variables_count: u32,
}

impl From<EnvironmentStatus> for EnvironmentStatusResponse {
    fn from(status: EnvironmentStatus) -> Self {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let variables = &status.environment.variables;
        let secrets = variables
            .iter()
            .filter(|variable| !matches!(variable.value, StoredValue::Plain(_)))
            .count();
        Self {
            environment_id: status.environment.id.as_uuid(),
            variables_count: count(variables.len()),
            secret_variables_count: count(secrets),
            name: status.environment.name,
            active_workflows: status.active_workflows,
            executions_24h: status.executions_24h,
            last_failure: status.last_failure.map(|failure| LastFailureResponse {
                execution_id: failure.execution_id.as_uuid(),
                workflow_id: failure.workflow_id.as_uuid(),
                error: failure.error,
                at: failure.at,
            }),
        }
    }
}

/// The workspace's environments, oldest first.
#[utoipa::path(tag = "environments", security(("bearer" = [])), responses(
    (status = 200, description = "The environments with their variables (secrets masked)", body = [EnvironmentResponse]),
    (status = 403, description = "The caller may not view settings", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/environments")]
pub async fn list_environments(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let environments = services.environments.list(&caller.principal).await?;
    Ok(HttpResponse::Ok().json(
        environments
            .into_iter()
            .map(EnvironmentResponse::from)
            .collect::<Vec<_>>(),
    ))
}

/// One environment, by id or name.
#[utoipa::path(tag = "environments", security(("bearer" = [])), params(("id" = String, Path, description = "Environment id or name")), responses(
    (status = 200, description = "The environment", body = EnvironmentResponse),
    (status = 404, description = "No such environment in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/environments/{id}")]
pub async fn get_environment(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let environment = services.environments.get(&caller.principal, &id).await?;
    Ok(HttpResponse::Ok().json(EnvironmentResponse::from(environment)))
}

/// Renames, describes, or replaces the variables of an environment. Secret values are
/// sealed in the vault and never shown again.
#[utoipa::path(tag = "environments", security(("bearer" = [])), request_body = UpdateEnvironmentRequest, params(("id" = String, Path, description = "Environment id or name")), responses(
    (status = 200, description = "The environment (secrets masked)", body = EnvironmentResponse),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such environment in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/settings/environments/{id}")]
pub async fn update_environment(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<UpdateEnvironmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let environment = services
        .environments
        .update(
            &caller.principal,
            &id,
            EnvironmentPatch {
                name: body.name,
                description: body.description,
                variables: body.variables.map(VariablesRequest::into_inputs),
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(EnvironmentResponse::from(environment)))
}

/// What runs in an environment: active workflows, executions of the last 24 hours by
/// status, the last failure, and how many variables it has.
#[utoipa::path(tag = "environments", security(("bearer" = [])), params(("id" = String, Path, description = "Environment id or name")), responses(
    (status = 200, description = "The status", body = EnvironmentStatusResponse),
    (status = 404, description = "No such environment in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/environments/{id}/status")]
pub async fn environment_status(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let status = services.environments.status(&caller.principal, &id).await?;
    Ok(HttpResponse::Ok().json(EnvironmentStatusResponse::from(status)))
}
