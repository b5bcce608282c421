//! A connector's manifest: what it calls (`base_url`), with which credential kind, and
//! its actions — each a request built from templates over the node's params, a JSON
//! Schema for those params and a mapping of the response to the node's output. Parsed
//! field by field, so that every problem of a submitted manifest is named at once.

use fluxolab_credentials::CredentialKind;
use fluxolab_kernel::{ValidationErrors, plain_http_url};
use serde_json::{Map, Value, json};

/// The methods an action may use.
pub const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];
/// The vault's kinds a connector may take: those an HTTP request applies.
pub const CREDENTIAL_KINDS: [CredentialKind; 3] = [
    CredentialKind::HttpBasic,
    CredentialKind::HttpHeader,
    CredentialKind::BearerToken,
];
/// The most actions one connector may have.
pub const MAX_ACTIONS: usize = 50;
/// The largest manifest, as JSON text.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;
/// The JSON Schema pattern of a connector's name.
pub const NAME_PATTERN: &str = "^[a-z0-9-]{1,40}$";
/// The JSON Schema pattern of an action's name.
pub const ACTION_NAME_PATTERN: &str = "^[a-z][a-z0-9_]{0,39}$";
/// Headers a manifest may not set (in any case): the credential carries authorisation,
/// the client the framing.
pub const RESERVED_HEADERS: [&str; 4] = [
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
];

/// A parsed, valid manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub version: semver::Version,
    pub description: String,
    /// The credential kind its nodes take (and must be given), if any.
    pub credential_kind: Option<CredentialKind>,
    /// Without a trailing `/`; every action's path is appended to it.
    pub base_url: String,
    pub actions: Vec<Action>,
}

/// One action of a manifest: a node type `connector.<name>.<action>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub name: String,
    pub description: String,
    pub method: String,
    /// A template starting with `/`, appended to the base URL.
    pub path: String,
    /// Query parameters: names to templates.
    pub query: Map<String, Value>,
    /// Header names to templates.
    pub headers: Map<String, Value>,
    /// A JSON body whose strings may be templates.
    pub body: Option<Value>,
    /// The JSON Schema of the node's params (an object schema).
    pub params_schema: Value,
    /// Output keys to JSON pointers into the response `{status, headers, body}`; empty:
    /// the whole response is the output.
    pub output: Map<String, Value>,
}

impl Manifest {
    /// The action called `name`.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|action| action.name == name)
    }

    /// The manifest as stored and shown.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "version": self.version.to_string(),
            "description": self.description,
            "credential_kind": self.credential_kind.map(CredentialKind::code),
            "base_url": self.base_url,
            "actions": self.actions.iter().map(Action::to_json).collect::<Vec<_>>(),
        })
    }
}

impl Action {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "params_schema": self.params_schema,
            "output": self.output,
        })
    }
}

/// A field's path under `prefix` (`""`: the body itself is the manifest).
fn at(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// The fields of one submitted object, checked one by one.
struct Fields<'a> {
    prefix: String,
    object: &'a Map<String, Value>,
    errors: &'a mut ValidationErrors,
}

impl<'a> Fields<'a> {
    fn field(&self, name: &str) -> String {
        at(&self.prefix, name)
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    fn text(
        &mut self,
        name: &str,
        required: bool,
        rule: impl Fn(&str) -> bool,
        message: &str,
    ) -> Option<String> {
        match self.present(name) {
            None if required => {
                let field = self.field(name);
                self.errors.add(field, "is required");
                None
            }
            None => None,
            Some(Value::String(text)) if rule(text) => Some(text.clone()),
            Some(_) => {
                let field = self.field(name);
                self.errors.add(field, message);
                None
            }
        }
    }

    fn object(&mut self, name: &str) -> Map<String, Value> {
        match self.present(name) {
            None => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => {
                let field = self.field(name);
                self.errors.add(field, "must be an object");
                Map::new()
            }
        }
    }

    fn no_others(&mut self, known: &[&str]) {
        let unknown: Vec<String> = self
            .object
            .keys()
            .filter(|name| !known.contains(&name.as_str()))
            .cloned()
            .collect();
        for name in unknown {
            let field = self.field(&name);
            self.errors.add(
                field,
                format!("is not a field; expected one of {}", known.join(", ")),
            );
        }
    }
}

/// Whether `name` is a connector name: 1–40 of `a-z`, `0-9`, `-`.
pub fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `name` is an action name: a lowercase letter, then up to 39 of `a-z`,
/// `0-9`, `_`.
pub fn valid_action_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && name.len() <= 40
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn valid_description(text: &str) -> bool {
    (1..=500).contains(&text.chars().count()) && !text.trim().is_empty()
}

/// A header name a manifest may use: an HTTP token of 1–100 characters.
pub const HEADER_NAME_PATTERN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$";

/// The most characters a query parameter name or an output key has.
pub const MAP_KEY_MAX_CHARS: usize = 100;

fn valid_header_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `key` is 1 to [`MAP_KEY_MAX_CHARS`] characters long.
fn valid_map_key(key: &str) -> bool {
    (1..=MAP_KEY_MAX_CHARS).contains(&key.chars().count())
}

/// Problems of the templates inside `value`, under `field`.
fn check_templates(value: &Value, field: &str, errors: &mut ValidationErrors) {
    match value {
        Value::String(text) if text.contains("{{") || text.contains("{%") => {
            if let Err(message) = crate::connectors::params::check_template(text) {
                errors.add(field, format!("is not a valid template: {message}"));
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check_templates(item, &format!("{field}[{index}]"), errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                check_templates(item, &format!("{field}.{key}"), errors);
            }
        }
        _ => {}
    }
}

/// Parses a submitted manifest; problems are named under `prefix` (`""` when the body
/// is the manifest, `manifest` when it is a field of the body).
pub fn parse(value: &Value, prefix: &str) -> Result<Manifest, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let root = if prefix.is_empty() {
        "manifest"
    } else {
        prefix
    };
    let Some(object) = value.as_object() else {
        errors.add(root, "must be an object");
        return Err(errors);
    };
    if serde_json::to_vec(value).map_or(0, |bytes| bytes.len()) > MAX_MANIFEST_BYTES {
        errors.add(
            root,
            format!("must be at most {MAX_MANIFEST_BYTES} bytes of JSON"),
        );
        return Err(errors);
    }
    let mut fields = Fields {
        prefix: prefix.to_owned(),
        object,
        errors: &mut errors,
    };
    let name = fields.text(
        "name",
        true,
        valid_name,
        "must be 1 to 40 of a-z, 0-9 and `-`",
    );
    let version = fields
        .text("version", true, |_| true, "must be a string")
        .and_then(|text| match semver::Version::parse(&text) {
            Ok(version) => Some(version),
            Err(error) => {
                let field = fields.field("version");
                fields.errors.add(
                    field,
                    format!("must be a semantic version such as `1.2.0`: {error}"),
                );
                None
            }
        });
    let description = fields.text(
        "description",
        true,
        valid_description,
        "must be 1 to 500 characters, not only spaces",
    );
    let kinds: Vec<&str> = CREDENTIAL_KINDS.iter().map(|kind| kind.code()).collect();
    let credential_kind = fields
        .text(
            "credential_kind",
            false,
            |code| kinds.contains(&code),
            &format!(
                "must be one of {} (the vault's kinds an HTTP request applies)",
                kinds.join(", ")
            ),
        )
        .and_then(|code| {
            CREDENTIAL_KINDS
                .into_iter()
                .find(|kind| kind.code() == code)
        });
    let base_url = fields
        .text(
            "base_url",
            true,
            |url| plain_http_url(url, true) && !url.contains(['?', '#']),
            "must be an http(s) URL without a query or fragment",
        )
        .map(|url| url.trim_end_matches('/').to_owned());
    let actions = match fields.present("actions") {
        None => {
            let field = fields.field("actions");
            fields.errors.add(field, "is required");
            Vec::new()
        }
        Some(Value::Array(items)) if (1..=MAX_ACTIONS).contains(&items.len()) => {
            let mut actions = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let field = fields.field(&format!("actions[{index}]"));
                if let Some(action) = parse_action(item, &field, fields.errors) {
                    if actions.iter().any(|seen: &Action| seen.name == action.name) {
                        fields.errors.add(
                            format!("{field}.name"),
                            format!("`{}` names another action too", action.name),
                        );
                    }
                    actions.push(action);
                }
            }
            actions
        }
        Some(_) => {
            let field = fields.field("actions");
            fields.errors.add(
                field,
                format!("must be a list of 1 to {MAX_ACTIONS} actions"),
            );
            Vec::new()
        }
    };
    fields.no_others(&[
        "name",
        "version",
        "description",
        "credential_kind",
        "base_url",
        "actions",
    ]);
    match (name, version, description, base_url) {
        (Some(name), Some(version), Some(description), Some(base_url)) if errors.is_empty() => {
            Ok(Manifest {
                name,
                version,
                description,
                credential_kind,
                base_url,
                actions,
            })
        }
        _ => Err(errors),
    }
}

fn parse_action(value: &Value, prefix: &str, errors: &mut ValidationErrors) -> Option<Action> {
    let Some(object) = value.as_object() else {
        errors.add(prefix, "must be an object");
        return None;
    };
    let before = errors.errors().len();
    let mut fields = Fields {
        prefix: prefix.to_owned(),
        object,
        errors,
    };
    let name = fields.text(
        "name",
        true,
        valid_action_name,
        "must be a lowercase letter then up to 39 of a-z, 0-9 and `_`",
    );
    let description = fields.text(
        "description",
        true,
        valid_description,
        "must be 1 to 500 characters, not only spaces",
    );
    let method = fields.text(
        "method",
        true,
        |method| METHODS.contains(&method),
        &format!("must be one of {}", METHODS.join(", ")),
    );
    let path = fields.text(
        "path",
        true,
        |path| path.starts_with('/') && path.chars().count() <= 2000 && !path.contains(['?', '#']),
        "must be a template starting with `/`, at most 2000 characters, without `?` or `#` (use `query`)",
    );
    if let Some(path) = &path {
        let field = fields.field("path");
        check_templates(&Value::String(path.clone()), &field, fields.errors);
    }
    let query = fields.object("query");
    for (key, item) in &query {
        let field = format!("{}.{key}", fields.field("query"));
        if !valid_map_key(key) {
            fields
                .errors
                .add(field.clone(), "names must be 1 to 100 characters");
        }
        if item.is_object() || item.is_array() {
            fields.errors.add(
                field.clone(),
                "must be a string, number, boolean or template",
            );
        }
        check_templates(item, &field, fields.errors);
    }
    let headers = fields.object("headers");
    for (key, item) in &headers {
        let field = format!("{}.{key}", fields.field("headers"));
        if !valid_header_name(key) {
            fields
                .errors
                .add(field.clone(), "is not a valid header name");
        } else if RESERVED_HEADERS.contains(&key.to_ascii_lowercase().as_str()) {
            fields.errors.add(
                field.clone(),
                "may not be set by a manifest (the credential carries authorisation)",
            );
        }
        if !item.is_string() {
            fields
                .errors
                .add(field.clone(), "must be a string or template");
        }
        check_templates(item, &field, fields.errors);
    }
    let body = fields.present("body").cloned();
    if let Some(body) = &body {
        let field = fields.field("body");
        check_templates(body, &field, fields.errors);
    }
    let params_schema = match fields.present("params_schema") {
        None => {
            let field = fields.field("params_schema");
            fields.errors.add(field, "is required");
            None
        }
        Some(schema) => {
            let field = fields.field("params_schema");
            match crate::connectors::params::compile(schema) {
                Ok(_) if schema.get("type") == Some(&json!("object")) => Some(schema.clone()),
                Ok(_) => {
                    fields
                        .errors
                        .add(field, "must be a JSON Schema of `\"type\": \"object\"`");
                    None
                }
                Err(message) => {
                    fields
                        .errors
                        .add(field, format!("is not a valid JSON Schema: {message}"));
                    None
                }
            }
        }
    };
    let output = fields.object("output");
    for (key, pointer) in &output {
        let field = format!("{}.{key}", fields.field("output"));
        let valid = pointer
            .as_str()
            .is_some_and(|text| text.is_empty() || text.starts_with('/'));
        if !valid || !valid_map_key(key) {
            fields.errors.add(
                field,
                "must be a JSON pointer into the response (`/status`, `/body/id`, `/headers/etag`)",
            );
        }
    }
    fields.no_others(&[
        "name",
        "description",
        "method",
        "path",
        "query",
        "headers",
        "body",
        "params_schema",
        "output",
    ]);
    if errors.errors().len() != before {
        return None;
    }
    Some(Action {
        name: name?,
        description: description?,
        method: method?,
        path: path?,
        query,
        headers,
        body,
        params_schema: params_schema?,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<Manifest, ValidationErrors>) -> Vec<String> {
        result
            .err()
            .map(|errors| errors.errors().iter().map(|e| e.field.clone()).collect())
            .unwrap_or_default()
    }

    fn sound() -> Value {
        json!({
            "name": "demo-api", "version": "1.0.0", "description": "A demo",
            "credential_kind": "bearer_token", "base_url": "https://api.example.com/v1/",
            "actions": [{
                "name": "send_message", "description": "Sends", "method": "POST",
                "path": "/{{ params.account }}/messages",
                "headers": {"X-Trace": "{{ params.trace }}"},
                "body": {"to": "{{ params.to }}", "text": {"body": "{{ params.text }}"}},
                "params_schema": {"type": "object", "required": ["to"], "properties": {"to": {"type": "string"}}},
                "output": {"id": "/body/messages/0/id", "status": "/status"}
            }]
        })
    }

    #[test]
    fn a_sound_manifest_parses_and_round_trips() -> Result<(), ValidationErrors> {
        let manifest = parse(&sound(), "")?;
        assert_eq!(manifest.base_url, "https://api.example.com/v1");
        assert_eq!(manifest.version, semver::Version::new(1, 0, 0));
        assert_eq!(manifest.credential_kind, Some(CredentialKind::BearerToken));
        assert_eq!(parse(&manifest.to_json(), "")?, manifest);
        Ok(())
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut value = sound();
        value["name"] = json!("Demo API");
        value["version"] = json!("one");
        value["credential_kind"] = json!("smtp");
        value["base_url"] = json!("ftp://example.com");
        value["colour"] = json!("red");
        value["actions"][0]["method"] = json!("FETCH");
        value["actions"][0]["path"] = json!("messages");
        value["actions"][0]["headers"] = json!({"Authorization": "Bearer {{ params.t }}"});
        value["actions"][0]["body"] = json!({"to": "{{ params.to "});
        value["actions"][0]["params_schema"] =
            json!({"type": "object", "properties": {"to": {"type": "strin"}}});
        value["actions"][0]["output"] = json!({"id": "body.id"});
        assert_eq!(
            fields(parse(&value, "manifest")),
            [
                "manifest.name",
                "manifest.version",
                "manifest.credential_kind",
                "manifest.base_url",
                "manifest.actions[0].method",
                "manifest.actions[0].path",
                "manifest.actions[0].headers.Authorization",
                "manifest.actions[0].body.to",
                "manifest.actions[0].params_schema",
                "manifest.actions[0].output.id",
                "manifest.colour",
            ]
        );
    }

    #[test]
    fn actions_are_required_and_their_names_unique() {
        let mut value = sound();
        value["actions"] = json!([]);
        assert_eq!(fields(parse(&value, "")), ["actions"]);
        let mut value = sound();
        let action = value["actions"][0].clone();
        value["actions"] = json!([action.clone(), action]);
        assert_eq!(fields(parse(&value, "")), ["actions[1].name"]);
        let mut value = sound();
        value["actions"][0]["params_schema"] = json!({"type": "string"});
        assert_eq!(fields(parse(&value, "")), ["actions[0].params_schema"]);
    }
}
