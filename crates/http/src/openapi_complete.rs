//! The generated document, completed where the `#[utoipa::path]` and `ToSchema`
//! annotations cannot say it (or would repeat it on every route):
//!
//! - request schemas: one schema per credential kind (each with the JSON Schema of its
//!   `data`), enumerations taken from the domain's own lists (roles, plans, providers,
//!   permissions, alert metrics), rules between fields (`if`/`then`), optional bodies,
//!   properties that hold any JSON value;
//! - the error responses every operation can give, each with the [`Problem`] schema:
//!   400/413/415/422 for a JSON body, 400/422 for a query string, 404 for a path
//!   parameter, 401 for a bearer token, 403/404/422 for the active workspace
//!   (membership, permission or an API key's scope, a malformed `X-Workspace-Id`), 500
//!   everywhere, and a few of single operations (`OWN_ERRORS`). A status an annotation
//!   already lists keeps its own description;
//! - the `X-Workspace-Id` header of every operation in a workspace ([`workspace_header`]);
//! - OpenAPI `links` between operations ([`links`]);
//! - `\s` and `\S` in patterns spelled out as the server counts whitespace
//!   ([`whitespace`]).
//!
//! [`Problem`]: crate::problem::Problem

use fluxolab_credentials::CredentialKind;
use fluxolab_kernel::{HTTP_URL_PATTERN, HTTPS_URL_PATTERN, PLAUSIBLE_EMAIL_PATTERN, Permission};
use fluxolab_webhooks::model::Provider;
use fluxolab_workflows::connectors::manifest::{
    HEADER_NAME_PATTERN, MAP_KEY_MAX_CHARS, RESERVED_HEADERS,
};
use fluxolab_workflows::execution::TriggerKind;
use fluxolab_workflows::scheduler::FireOutcome;
use fluxolab_workspace::alerts::METRICS;
use fluxolab_workspace::secret_providers::KINDS;
use fluxolab_workspace::settings::timezone_names;
use fluxolab_workspace::{PlanCode, Role};
use serde_json::{Map, Value, json};

use crate::problem::PROBLEM_JSON;

mod links;
mod log_destinations;
mod sso;
mod whitespace;
mod workspace_header;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Paths that act on the signed-in user rather than on an active workspace.
const ACCOUNT_PREFIXES: [&str; 3] = ["/api/auth/", "/api/users/", "/api/workspaces"];

/// The MCP server: API keys only (their own workspace, no `X-Workspace-Id`), and a body
/// of JSON-RPC that the transport itself answers errors about (400 as JSON-RPC).
const MCP_PATH: &str = crate::mcp::PATH;

/// `path` as one token of a JSON pointer (`/paths/{token}`).
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

/// A problem+json response.
fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { PROBLEM_JSON: { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

/// Completes `document` (the generated OpenAPI document as JSON).
pub fn complete(document: &mut Value) {
    optional_bodies(document);
    intake_body(document);
    credential_requests(document);
    log_destinations::constrain(document);
    constrain_schemas(document);
    workspace_header::add(document);
    add_error_responses(document);
    links::add_links(document);
    whitespace::spell_out(document);
}

/// Operations whose body may be left out.
const OPTIONAL_BODIES: [(&str, &str); 6] = [
    ("/api/workflows/{id}/deactivate", "post"),
    (
        "/api/settings/workspace/notifications/rotate-secret",
        "post",
    ),
    ("/api/settings/usage/alerts/{id}/rotate-secret", "post"),
    ("/api/settings/log-destinations/{id}/rotate-secret", "post"),
    ("/api/settings/api/keys/{id}/rotate", "post"),
    ("/api/settings/secret-providers/{id}/test", "post"),
];

fn optional_bodies(document: &mut Value) {
    for (path, method) in OPTIONAL_BODIES {
        let pointer = format!("/paths/{}/{method}/requestBody", escape(path));
        if let Some(body) = document
            .pointer_mut(&pointer)
            .and_then(Value::as_object_mut)
        {
            body.insert("required".to_owned(), Value::Bool(false));
        }
    }
}

/// The schema of a human-given name (`fluxolab_kernel::validation::bounded_name`):
/// trimmed, 1–120 characters, not only spaces.
pub fn name_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 120, "pattern": "\\S"})
}

/// The values of the code fields, from the domain's own lists.
fn enumerations() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let providers: Vec<&str> = Provider::ALL.iter().map(|p| p.code()).collect();
    let modes = vec!["immediate", "respond_node"];
    let roles: Vec<&str> = Role::ALL.iter().map(|role| role.code()).collect();
    let plans: Vec<&str> = PlanCode::ALL.iter().map(|plan| plan.code()).collect();
    let metrics: Vec<&str> = METRICS.iter().map(|(metric, _)| *metric).collect();
    let trigger_kinds: Vec<&str> = TriggerKind::ALL.iter().map(|kind| kind.code()).collect();
    let fire_outcomes: Vec<&str> = FireOutcome::ALL.iter().map(|o| o.code()).collect();
    vec![
        ("SettingsBody", "theme", vec!["light", "dark", "system"]),
        ("CreateWebhookRequest", "provider", providers.clone()),
        ("CreateWebhookRequest", "response_mode", modes.clone()),
        ("UpdateWebhookRequest", "provider", providers),
        ("UpdateWebhookRequest", "response_mode", modes),
        ("AddMemberRequest", "role", roles.clone()),
        ("ChangeRoleRequest", "role", roles),
        ("ChangePlanRequest", "plan", plans),
        ("CreateAlertRequest", "metric", metrics),
        ("CreateAlertRequest", "channel", vec!["email", "webhook"]),
        ("CreateSecretProviderRequest", "kind", KINDS.to_vec()),
        ("ExecutionResponse", "trigger_kind", trigger_kinds),
        ("LastFireResponse", "outcome", fire_outcomes),
    ]
}

/// Sets `enum` on `property` of the component schema `schema`; a nullable property
/// keeps `null` among its values.
fn set_enum(document: &mut Value, schema: &str, property: &str, values: &[&str]) {
    let Some(target) = document.pointer_mut(&format!(
        "/components/schemas/{schema}/properties/{property}"
    )) else {
        return;
    };
    let nullable = match target.get("type") {
        Some(Value::Array(types)) => types.iter().any(|t| t == "null"),
        _ => false,
    };
    let mut listed: Vec<Value> = values.iter().map(|value| json!(value)).collect();
    if nullable {
        listed.push(Value::Null);
    }
    if let Some(object) = target.as_object_mut() {
        object.insert("enum".to_owned(), Value::Array(listed));
    }
}

/// Merges `extra` into the component schema at `pointer` (under `/components/schemas`).
fn merge(document: &mut Value, pointer: &str, extra: Value) {
    let (Some(target), Value::Object(extra)) = (
        document
            .pointer_mut(&format!("/components/schemas/{pointer}"))
            .and_then(Value::as_object_mut),
        extra,
    ) else {
        return;
    };
    for (key, value) in extra {
        target.insert(key, value);
    }
}

/// A pattern matching any of `names` exactly, in any case (`[hH][oO][sS][tT]`: JSON
/// Schema patterns have no case-insensitive flag).
pub(crate) fn any_case_names(names: &[&str]) -> String {
    let alternatives: Vec<String> = names
        .iter()
        .map(|name| {
            let letters: String = name
                .chars()
                .map(|c| match c.is_ascii_alphabetic() {
                    true => format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()),
                    false => c.to_string(),
                })
                .collect();
            format!("^{letters}$")
        })
        .collect();
    alternatives.join("|")
}

/// The keys of a connector action's maps as the manifest check takes them: header
/// names are HTTP tokens other than the reserved ones (in any case), query names and
/// output keys 1–100 characters, output values JSON pointers.
fn connector_maps(document: &mut Value) {
    let key = json!({"minLength": 1, "maxLength": MAP_KEY_MAX_CHARS});
    merge(
        document,
        "ConnectorAction/properties/headers",
        json!({"propertyNames": {
            "pattern": HEADER_NAME_PATTERN,
            "not": {"pattern": any_case_names(&RESERVED_HEADERS)},
        }}),
    );
    merge(
        document,
        "ConnectorAction/properties/query",
        json!({"propertyNames": key}),
    );
    merge(
        document,
        "ConnectorAction/properties/output",
        json!({
            "propertyNames": key,
            "additionalProperties": {"type": "string", "pattern": "^(/.*)?$"},
        }),
    );
}

/// Properties that hold any JSON value (a trigger's payload, a node's output, a
/// delivery's parsed body): utoipa can only call them objects.
const ANY_VALUES: [(&str, &str); 9] = [
    ("StepResponse", "input"),
    ("StepResponse", "output"),
    ("ExecutionResponse", "input"),
    ("ExecutionResponse", "output"),
    ("TestRunRequest", "payload"),
    ("RunRequest", "payload"),
    ("WebhookEventDetail", "payload"),
    ("MessageResponse", "payload"),
    ("ActivityResponse", "metadata"),
];

/// Makes `property` of `schema` (or of the object in its `allOf`) any JSON value,
/// keeping its description.
fn any_value(document: &mut Value, schema: &str, property: &str) {
    let Some(root) = document.pointer_mut(&format!("/components/schemas/{schema}")) else {
        return;
    };
    let mut targets = vec![root];
    let mut found = None;
    while let Some(node) = targets.pop() {
        if node.pointer(&format!("/properties/{property}")).is_some() {
            found = node.pointer_mut(&format!("/properties/{property}"));
            break;
        }
        if let Some(Value::Array(parts)) = node.get_mut("allOf") {
            targets.extend(parts.iter_mut());
        }
    }
    if let Some(target) = found {
        let description = target.get("description").cloned();
        *target = match description {
            Some(description) => json!({ "description": description }),
            None => json!({}),
        };
    }
}

/// What the annotations cannot say: enumerations, rules between fields and item
/// constraints.
fn constrain_schemas(document: &mut Value) {
    for (schema, property) in ANY_VALUES {
        any_value(document, schema, property);
    }
    for (schema, property, values) in enumerations() {
        set_enum(document, schema, property, &values);
    }
    merge(
        document,
        "SettingsBody/properties/notifications",
        json!({"maxProperties": 50, "propertyNames": {"minLength": 1, "maxLength": 64}}),
    );
    connector_maps(document);
    let scopes: Vec<&str> = Permission::ALL.iter().map(|p| p.code()).collect();
    merge(
        document,
        "CreateApiKeyRequest/properties/scopes",
        json!({"minItems": 1, "items": {"type": "string", "enum": scopes}}),
    );
    // A `none` provider checks no signature, so it takes no signing secret; a `standard`
    // one takes a `whsec_…` secret (16–64 bytes as base64).
    for schema in ["CreateWebhookRequest", "UpdateWebhookRequest"] {
        let given = |provider: &str| json!({"properties": {"provider": {"const": provider}}, "required": ["provider"]});
        merge(
            document,
            schema,
            json!({"allOf": [
                {
                    "if": given("none"),
                    "then": {"properties": {"signing_secret": {"type": "null"}}},
                },
                {
                    "if": given("standard"),
                    "then": {"properties": {"signing_secret": {
                        "pattern": fluxolab_kernel::standard_webhooks::SECRET_PATTERN
                    }}},
                },
            ]}),
        );
    }
    // Workspace settings: e-mail addresses and URLs as the domain checks them.
    merge(
        document,
        "FailureNotificationsRequest/properties/emails",
        json!({"items": {"type": "string", "maxLength": 254, "pattern": PLAUSIBLE_EMAIL_PATTERN}}),
    );
    for (property, pattern) in [
        (
            "FailureNotificationsRequest/properties/webhook_url",
            HTTP_URL_PATTERN,
        ),
        ("BrandingRequest/properties/logo_url", HTTPS_URL_PATTERN),
    ] {
        merge(
            document,
            property,
            json!({"maxLength": 2048, "pattern": pattern}),
        );
    }
    secret_provider_requests(document);
    sso::constrain(document);
    let zones: Vec<&str> = timezone_names().iter().map(String::as_str).collect();
    set_enum(
        document,
        "UpdateWorkspaceSettingsRequest",
        "timezone",
        &zones,
    );
    // An alert's target is an e-mail address or an http(s) URL, by channel.
    merge(
        document,
        "CreateAlertRequest",
        json!({
            "if": {"properties": {"channel": {"const": "email"}}, "required": ["channel"]},
            "then": {"properties": {"target": {"pattern": "^\\s*[^@\\s]+@[^@\\s]*\\.[^@\\s]*\\s*$"}}},
            "else": {"properties": {"target": {"pattern": "^\\s*https?://[^\\s/?#@\\[\\]]+([/?#]\\S*)?\\s*$", "maxLength": 2048}}},
        }),
    );
}

/// A secret provider's `config` and `credentials` depend on its `kind`, as the domain
/// checks them (`fluxolab_workspace::secret_providers::model`).
fn secret_provider_requests(document: &mut Value) {
    let text = |max: u32| json!({"type": "string", "minLength": 1, "maxLength": max});
    let optional = |schema: Value| json!({"anyOf": [schema, {"type": "null"}]});
    let url = json!({"type": "string", "maxLength": 2048, "pattern": HTTP_URL_PATTERN});
    let mount = json!({"type": "string", "pattern": "^[A-Za-z0-9_/-]{1,64}$"});
    let object = |required: &[&str], properties: Value| json!({"type": "object", "required": required, "additionalProperties": false, "properties": properties});
    let aws = json!({
        "properties": {
            "config": object(&["region"], json!({
                "region": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$"},
                "endpoint_url": optional(url.clone()),
            })),
            "credentials": object(&["access_key_id", "secret_access_key"], json!({
                "access_key_id": text(4096),
                "secret_access_key": text(4096),
                "session_token": optional(text(4096)),
            })),
        }
    });
    let vault = json!({
        "properties": {
            "config": object(&["address"], json!({
                "address": url,
                "mount": optional(mount.clone()),
                "namespace": optional(mount),
            })),
            "credentials": {"oneOf": [
                object(&["token"], json!({"token": text(4096)})),
                object(&["role_id", "secret_id"], json!({"role_id": text(4096), "secret_id": text(4096)})),
            ]},
        }
    });
    merge(
        document,
        "CreateSecretProviderRequest",
        json!({
            "allOf": [
                {"if": {"properties": {"kind": {"const": "aws_secrets_manager"}}, "required": ["kind"]}, "then": aws},
                {"if": {"properties": {"kind": {"const": "vault"}}, "required": ["kind"]}, "then": vault},
            ]
        }),
    );
}

/// A credential's `data` depends on its `kind`: the create body is one schema per kind
/// (`CreateCredentialRequest_smtp`…, each with the JSON Schema its `data` is validated
/// against), told apart by `kind`.
fn credential_requests(document: &mut Value) {
    let mut variants = Vec::new();
    let mut mapping = Map::new();
    for kind in CredentialKind::ALL {
        let name = format!("CreateCredentialRequest_{}", kind.code());
        let reference = format!("#/components/schemas/{name}");
        let variant = json!({
            "type": "object",
            "required": ["name", "kind", "data"],
            "additionalProperties": false,
            "properties": {
                "name": name_schema(),
                "kind": {"type": "string", "enum": [kind.code()]},
                "data": kind.json_schema(),
            }
        });
        if let Some(schemas) = document
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
        {
            schemas.insert(name, variant);
        }
        variants.push(json!({"$ref": reference}));
        mapping.insert(kind.code().to_owned(), json!(reference));
    }
    if let Some(schema) = document.pointer_mut("/components/schemas/CreateCredentialRequest") {
        *schema = json!({
            "description": "`POST /api/workflows/credentials`: a name, a kind and the kind's `data` (see `GET /api/workflows/credentials/types`).",
            "oneOf": variants,
            "discriminator": {"propertyName": "kind", "mapping": mapping},
        });
    }
}

/// The intake takes any body: JSON for `meta`, anything for the others.
fn intake_body(document: &mut Value) {
    if let Some(body) = document
        .pointer_mut("/paths/~1api~1webhooks~1in~1{public_id}/post/requestBody")
        .and_then(Value::as_object_mut)
    {
        body.insert("required".to_owned(), Value::Bool(false));
        body.insert(
            "content".to_owned(),
            json!({"application/json": {"schema": {}}}),
        );
    }
}

/// Errors of single operations that their annotations do not list: `(operation,
/// status, description)`.
const OWN_ERRORS: [(&str, &str, &str); 11] = [
    (
        "update_credential",
        "409",
        "Another credential has this name (`name_taken`)",
    ),
    (
        "delete_credential",
        "409",
        "Active workflows use the credential (`credential_in_use`)",
    ),
    (
        "test_workflow",
        "409",
        "The run did not finish in time (`test_timeout`)",
    ),
    (
        "create_webhook",
        "409",
        "Binding the workflow would pass a plan limit (`plan_limit`)",
    ),
    (
        "update_webhook",
        "409",
        "Binding the workflow would pass a plan limit (`plan_limit`)",
    ),
    (
        "get_workspace",
        "400",
        "The id is not a UUID (`invalid_path`)",
    ),
    (
        "update_workspace",
        "400",
        "The id is not a UUID (`invalid_path`)",
    ),
    (
        "set_default_workspace",
        "400",
        "The id is not a UUID (`invalid_path`)",
    ),
    (
        "change_member_role",
        "400",
        "The user id is not a UUID (`invalid_path`)",
    ),
    (
        "remove_member",
        "400",
        "The user id is not a UUID (`invalid_path`)",
    ),
    (
        "revoke_session",
        "400",
        "The id is not a UUID (`invalid_path`)",
    ),
];

fn add_error_responses(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            let Some(operation) = item.get_mut(method) else {
                continue;
            };
            let mut errors = errors_of(path, operation);
            let id = operation.get("operationId").and_then(Value::as_str);
            errors.extend(
                OWN_ERRORS
                    .iter()
                    .filter(|(operation, _, _)| Some(*operation) == id)
                    .map(|(_, status, description)| (*status, *description)),
            );
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (status, description) in errors {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(description));
            }
        }
    }
}

/// Whether `operation` takes a bearer token (an access token or an API key).
fn secured(operation: &Value) -> bool {
    operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|schemes| {
            schemes
                .iter()
                .any(|scheme| scheme.as_object().is_some_and(|scheme| !scheme.is_empty()))
        })
}

/// Whether `operation` at `path` acts in the active workspace (`X-Workspace-Id`): it
/// takes a token and is not on the caller's own account or workspaces.
fn in_workspace(path: &str, operation: &Value) -> bool {
    secured(operation)
        && path != MCP_PATH
        && !ACCOUNT_PREFIXES
            .iter()
            .any(|prefix| path.starts_with(prefix))
}

/// The statuses `operation` at `path` can answer besides its own, with a description.
fn errors_of(path: &str, operation: &Value) -> Vec<(&'static str, &'static str)> {
    let parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let located = |place: &str| {
        parameters
            .iter()
            .any(|parameter| parameter.get("in").and_then(Value::as_str) == Some(place))
    };

    let mut errors = Vec::new();
    if path == MCP_PATH && operation.get("requestBody").is_some() {
        errors.push((
            "413",
            "The body is larger than `HTTP_BODY_LIMIT_BYTES` (`payload_too_large`)",
        ));
    } else if operation.get("requestBody").is_some() {
        errors.extend([
            ("400", "The body is not JSON (`invalid_json`)"),
            (
                "413",
                "The body is larger than `HTTP_BODY_LIMIT_BYTES` (`payload_too_large`)",
            ),
            (
                "415",
                "The body is not `application/json` (`unsupported_media_type`)",
            ),
            (
                "422",
                "Invalid fields, each named in `errors[]` (`validation_failed`)",
            ),
        ]);
    }
    if located("query") {
        errors.extend([
            ("400", "The query string is not valid (`invalid_query`)"),
            (
                "422",
                "An invalid query parameter, named in `errors[]` (`validation_failed`)",
            ),
        ]);
    }
    if secured(operation) {
        errors.push(("401", "No valid access token or API key (`unauthorized`)"));
    }
    if in_workspace(path, operation) {
        errors.extend([
            (
                "403",
                "The role or the API key's scopes lack the permission (`forbidden`), or the workspace enforces SSO and the token comes from a password sign-in of a non-owner (`sso_required`)",
            ),
            (
                "404",
                "The `X-Workspace-Id` workspace is not one of the caller's (`not_found`)",
            ),
            (
                "422",
                "`X-Workspace-Id` is not a UUID, or it is left out and the token names no workspace (`validation_failed`)",
            ),
        ]);
    }
    if located("path") {
        errors.push(("404", "No such resource for the caller (`not_found`)"));
    }
    errors.push((
        "500",
        "The server failed (`internal_error`: the request id only)",
    ));
    errors.push((
        "503",
        "The database cannot be reached now (`storage_unavailable`; `Retry-After`)",
    ));
    errors
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Result<Value, serde_json::Error> {
        crate::openapi::document()
    }

    #[test]
    fn every_operation_lists_the_errors_it_can_give_as_problems() -> Result<(), serde_json::Error> {
        let document = document()?;
        let Some(paths) = document["paths"].as_object() else {
            panic!("no paths");
        };
        for (path, item) in paths {
            for method in super::METHODS {
                let operation = &item[method];
                if !operation.is_object() {
                    continue;
                }
                let responses = &operation["responses"];
                let mut expected = vec!["500", "503"];
                let body = operation.get("requestBody").is_some();
                if path == super::MCP_PATH && body {
                    // JSON-RPC: the transport answers a bad body itself (400 as JSON-RPC).
                    expected.push("413");
                } else if body {
                    expected.extend(["400", "413", "415", "422"]);
                }
                if operation["security"].is_array() {
                    expected.push("401");
                }
                if path.contains('{') {
                    expected.push("404");
                }
                for status in expected {
                    let schema =
                        &responses[status]["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/Problem",
                        "{method} {path} does not list {status} as a problem"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn request_schemas_carry_the_rules_the_server_enforces() -> Result<(), serde_json::Error> {
        let document = document()?;
        let schemas = &document["components"]["schemas"];
        let register = &schemas["RegisterRequest"]["properties"];
        assert_eq!(register["email"]["format"], "email");
        assert_eq!(register["password"]["minLength"], 12);
        assert_eq!(register["display_name"]["maxLength"], 120);
        assert_eq!(
            schemas["AddMemberRequest"]["properties"]["role"]["enum"],
            serde_json::json!(["owner", "admin", "editor", "viewer"])
        );
        assert_eq!(
            schemas["CreateAlertRequest"]["properties"]["threshold_percent"]["maximum"],
            1000
        );
        let credential_kinds = schemas["CreateCredentialRequest"]["oneOf"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default();
        assert_eq!(credential_kinds, 6, "one schema per kind");
        assert_eq!(
            schemas["CreateCredentialRequest_smtp"]["properties"]["data"]["properties"]["port"]["maximum"],
            65535
        );
        let limit = document["paths"]["/api/workflows"]["get"]["parameters"]
            .as_array()
            .and_then(|parameters| parameters.iter().find(|p| p["name"] == "limit"))
            .map(|parameter| parameter["schema"].clone())
            .unwrap_or_default();
        assert_eq!(limit["maximum"], 200);
        assert_eq!(limit["minimum"], 1);
        let action = &schemas["ConnectorAction"]["properties"];
        assert_eq!(
            action["headers"]["propertyNames"]["pattern"],
            super::HEADER_NAME_PATTERN
        );
        assert!(
            action["headers"]["propertyNames"]["not"]["pattern"]
                .as_str()
                .is_some_and(|reserved| reserved.contains("^[hH][oO][sS][tT]$")),
            "{action}"
        );
        assert_eq!(action["query"]["propertyNames"]["maxLength"], 100);
        assert_eq!(
            action["output"]["additionalProperties"]["pattern"],
            "^(/.*)?$"
        );
        Ok(())
    }
}
