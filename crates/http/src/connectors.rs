//! `/api/settings/connectors*`: declarative connectors. A manifest installed here adds
//! its actions to the workspace's node types as `connector.<name>.<action>`.

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, delete, get, patch, post};
use fluxolab_workflows::connectors::{Connector, ConnectorId, ConnectorPatch, node_type};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::json::Json;
use crate::path_id::path_id;
use crate::problem::Problem;
use crate::workspaces::{PageQuery, PageResponse, page_request};

/// A semantic version, as semver.org gives its grammar.
pub const SEMVER_PATTERN: &str = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$";

/// An HTTP method an action may use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConnectorMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

/// The vault's credential kinds a connector may take (those an HTTP request applies).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorCredentialKind {
    HttpBasic,
    HttpHeader,
    BearerToken,
}

/// A connector's manifest (the body of `POST /api/settings/connectors`). Templates
/// (`{{ params.to }}`) see the node's params only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorManifest {
    /// Unique in the workspace; the node types are `connector.<name>.<action>`.
    #[schema(pattern = "^[a-z0-9-]{1,40}$")]
    pub name: String,
    /// A semantic version (`1.2.0`); an upgrade must be higher.
    #[schema(
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
        max_length = 256
    )]
    pub version: String,
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub description: String,
    /// The credential kind its nodes need (then each node must name one); left out,
    /// they take none.
    pub credential_kind: Option<ConnectorCredentialKind>,
    /// An `http(s)://` URL without query or fragment; each action's path is appended.
    #[schema(pattern = r"^https?://[^\s/?#@\[\]]+(/[^\s?#]*)?$", max_length = 2048)]
    pub base_url: String,
    #[schema(min_items = 1, max_items = 50)]
    pub actions: Vec<ConnectorAction>,
}

/// One action: a node type `connector.<name>.<action>`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorAction {
    /// Unique in the manifest.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,39}$")]
    pub name: String,
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub description: String,
    pub method: ConnectorMethod,
    /// A template starting with `/` (`/{{ params.phone_number_id }}/messages`); once
    /// rendered it may hold no `?`, `#`, spaces, `.` or `..` segments.
    #[schema(pattern = "^/[^?#]*$", max_length = 2000)]
    pub path: String,
    /// Query parameters: names to templates (a value rendering to `null` is left out).
    #[schema(value_type = Option<HashMap<String, Object>>)]
    pub query: Option<Value>,
    /// Header names to templates (`Authorization`, `Host`, `Content-Length` and
    /// `Transfer-Encoding` are refused: the credential carries authorisation).
    pub headers: Option<std::collections::HashMap<String, String>>,
    /// A JSON body whose strings may be templates.
    #[schema(value_type = Object)]
    pub body: Option<Value>,
    /// The JSON Schema (`"type": "object"`) of the node's params; no remote `$ref`.
    #[schema(schema_with = object_json_schema)]
    pub params_schema: Value,
    /// Output keys to JSON pointers into the answer `{status, headers, body}`
    /// (`/body/messages/0/id`); left out, the answer is the output.
    pub output: Option<std::collections::HashMap<String, String>>,
}

/// An installed connector.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectorResponse {
    pub id: Uuid,
    pub name: String,
    pub version: String,
    pub description: String,
    /// Disabled: its node types are refused by validation and fail when run.
    pub enabled: bool,
    /// The node types its actions add (`connector.<name>.<action>`).
    pub node_types: Vec<String>,
    /// The manifest as installed (normalised: `base_url` without a trailing `/`).
    #[schema(value_type = ConnectorManifest)]
    pub manifest: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Connector> for ConnectorResponse {
    fn from(connector: Connector) -> Self {
        let manifest = &connector.manifest;
        Self {
            id: connector.id.as_uuid(),
            name: manifest.name.clone(),
            version: manifest.version.to_string(),
            description: manifest.description.clone(),
            enabled: connector.enabled,
            node_types: manifest
                .actions
                .iter()
                .map(|action| node_type(&manifest.name, &action.name))
                .collect(),
            manifest: manifest.to_json(),
            created_at: connector.created_at,
            updated_at: connector.updated_at,
        }
    }
}

/// `PATCH /api/settings/connectors/{id}`: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectorRequest {
    pub enabled: Option<bool>,
    /// An upgrade: the same `name`, a higher `version` (else 409 `version_not_higher`).
    #[schema(value_type = Option<ConnectorManifest>)]
    pub manifest: Option<Value>,
}

/// The workspace's connectors, oldest first.
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "A page of connectors", body = PageResponse<ConnectorResponse>),
    (status = 403, description = "The caller may not view settings", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/connectors")]
pub async fn list_connectors(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let connectors = services.connectors.list(&caller.principal, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<ConnectorResponse>::from(connectors)))
}

/// Installs a connector from its manifest (the body).
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body = ConnectorManifest, responses(
    (status = 201, description = "The connector, enabled", body = ConnectorResponse),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "A connector of this name is installed (`name_taken`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields of the manifest, each named (`actions[0].path`)", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/settings/connectors")]
pub async fn install_connector(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let connector = services
        .connectors
        .install(&caller.principal, &body.0)
        .await?;
    Ok(HttpResponse::Created().json(ConnectorResponse::from(connector)))
}

/// One connector.
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Connector id")), responses(
    (status = 200, description = "The connector", body = ConnectorResponse),
    (status = 404, description = "No such connector in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/settings/connectors/{id}")]
pub async fn get_connector(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ConnectorId = path_id(&id)?;
    let connector = services.connectors.get(&caller.principal, id).await?;
    Ok(HttpResponse::Ok().json(ConnectorResponse::from(connector)))
}

/// Enables, disables or upgrades a connector.
#[utoipa::path(tag = "settings", security(("bearer" = [])), request_body = UpdateConnectorRequest, params(("id" = Uuid, Path, description = "Connector id")), responses(
    (status = 200, description = "The connector", body = ConnectorResponse),
    (status = 404, description = "No such connector in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The version is not higher than the installed one (`version_not_higher`), or the upgrade drops actions active workflows use (`connector_in_use`, naming them)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields of the manifest, each named (`manifest.actions[0].path`)", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/settings/connectors/{id}")]
pub async fn update_connector(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    body: Json<UpdateConnectorRequest>,
) -> Result<HttpResponse, ApiError> {
    let id: ConnectorId = path_id(&id)?;
    let body = body.0;
    let connector = services
        .connectors
        .update(
            &caller.principal,
            id,
            ConnectorPatch {
                enabled: body.enabled,
                manifest: body.manifest,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ConnectorResponse::from(connector)))
}

/// Uninstalls a connector.
#[utoipa::path(tag = "settings", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Connector id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such connector in the active workspace", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Active workflows use its actions (`connector_in_use`, naming them)", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/settings/connectors/{id}")]
pub async fn delete_connector(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ConnectorId = path_id(&id)?;
    services.connectors.delete(&caller.principal, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// How `params_schema` is documented: a JSON Schema whose `type` is `"object"` (any other
/// keywords are free).
fn object_json_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["object"])),
        )
        .required("type")
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .description(Some(
            "The JSON Schema (`\"type\": \"object\"`) of the node's params; no remote `$ref`",
        ))
        .build()
}
