//! The schemas of a log destination's create body: `event_types` from the domain's list,
//! and `config` by `kind` (`http` or `syslog`), stated as the domain checks them.

use fluxolab_kernel::HTTP_URL_PATTERN;
use fluxolab_workspace::log_destinations::EventType;
use fluxolab_workspace::log_destinations::model::{
    HEADER_NAME_PATTERN, KINDS, MAX_HEADER_VALUE, MAX_HEADERS, RESERVED_HEADERS,
};
use serde_json::{Value, json};

use super::{any_case_names, merge, name_schema};

/// A DNS name (an IPv4 address is one too): labels of 1–63 letters, digits and inner
/// `-`, at most 253 characters.
pub const HOST_PATTERN: &str = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$";

/// Completes `CreateLogDestinationRequest` and `UpdateLogDestinationRequest`.
pub fn constrain(document: &mut Value) {
    let event_types: Vec<&str> = EventType::ALL.iter().map(|kind| kind.code()).collect();
    let types =
        json!({"type": "array", "minItems": 1, "items": {"type": "string", "enum": event_types}});
    let header_value = json!({
        "type": "string", "maxLength": MAX_HEADER_VALUE, "pattern": "^[^\\u0000-\\u001f\\u007f]*$"
    });
    let header = json!({
        "type": "object",
        "required": ["name", "value"],
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "pattern": HEADER_NAME_PATTERN,
                     "not": {"pattern": any_case_names(&RESERVED_HEADERS)}},
            "value": header_value,
            "secret": {"type": ["boolean", "null"]},
        }
    });
    let http = json!({
        "type": "object",
        "required": ["url"],
        "additionalProperties": false,
        "properties": {
            "url": {"type": "string", "maxLength": 2048, "pattern": HTTP_URL_PATTERN},
            "headers": {"type": ["array", "null"], "maxItems": MAX_HEADERS, "items": header},
        }
    });
    let syslog = json!({
        "type": "object",
        "required": ["host", "port"],
        "additionalProperties": false,
        "properties": {
            "host": {"type": "string", "maxLength": 253, "pattern": HOST_PATTERN},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "transport": {"enum": ["tcp", "tls", null]},
            "app_name": {"anyOf": [{"type": "string", "pattern": "^[!-~]{1,48}$"}, {"type": "null"}]},
        }
    });
    merge(
        document,
        "CreateLogDestinationRequest",
        json!({
            "allOf": [
                {"if": {"properties": {"kind": {"const": "http"}}, "required": ["kind"]},
                 "then": {"properties": {"config": http}}},
                {"if": {"properties": {"kind": {"const": "syslog"}}, "required": ["kind"]},
                 "then": {"properties": {"config": syslog}}},
            ]
        }),
    );
    merge(
        document,
        "CreateLogDestinationRequest/properties/kind",
        json!({"enum": KINDS}),
    );
    merge(
        document,
        "CreateLogDestinationRequest/properties/name",
        name_schema(),
    );
    merge(
        document,
        "CreateLogDestinationRequest/properties/event_types",
        types.clone(),
    );
    merge(
        document,
        "UpdateLogDestinationRequest/properties/name",
        nullable(&name_schema()),
    );
    merge(
        document,
        "UpdateLogDestinationRequest/properties/event_types",
        nullable(&types),
    );
}

fn nullable(schema: &Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}
