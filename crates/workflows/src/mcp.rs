//! Workflows as MCP tools: a workflow whose trigger is `trigger.mcp` is a tool of the MCP
//! server in every environment it is active in. Its params name the tool, describe it and
//! give the JSON Schema its arguments must satisfy; they are checked when a version is
//! saved (the schema must compile), and the name is checked unique among the active tools
//! of an environment when the workflow is activated there.
//!
//! MCP sessions (`Mcp-Session-Id`) belong to the API key that opened them and expire
//! after a while without use; [`McpSessions`] stores them so that any API process can
//! serve any request of a session.

use std::time::Duration;

use async_trait::async_trait;
use fluxolab_kernel::{ApiKeyId, StorageError, WorkflowId, WorkspaceId};
use serde_json::{Map, Value};

use crate::model::DeployedTrigger;

/// The node type that makes a workflow an MCP tool.
pub const MCP_TRIGGER: &str = "trigger.mcp";

/// The longest tool name.
pub const MAX_TOOL_NAME: usize = 64;

fluxolab_kernel::define_id!(
    /// An MCP session (`Mcp-Session-Id`); random (v4), so it cannot be guessed from
    /// another.
    McpSessionId
);

/// A tool: the `trigger.mcp` node of a workflow's version active in an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct McpTool {
    pub workflow_id: WorkflowId,
    /// The active version, which a call runs.
    pub version: i32,
    pub name: String,
    pub description: String,
    /// A JSON Schema object (`type: object`).
    pub input_schema: Value,
}

impl McpTool {
    /// The tool a deployed `trigger.mcp` node defines; `None` when its params are not
    /// a tool's (they were validated on save, so only a hand-edited row could be).
    pub fn from_deployed(trigger: DeployedTrigger) -> Option<Self> {
        let mut params = trigger.params;
        let name = params["tool_name"].as_str()?.to_owned();
        let input_schema = params["input_schema"].take();
        if !valid_tool_name(&name) || !input_schema.is_object() {
            return None;
        }
        Some(Self {
            workflow_id: trigger.workflow_id,
            version: trigger.version,
            name,
            description: params["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            input_schema,
        })
    }
}

/// Whether `name` is a tool name: 1–64 of `a-z`, `0-9` and `_`.
pub fn valid_tool_name(name: &str) -> bool {
    (1..=MAX_TOOL_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Problems with a `trigger.mcp` node's params beyond their types, as (param, message):
/// the tool name's form, and an input schema that is an object schema and compiles.
pub(crate) fn check_tool_params(params: &Map<String, Value>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if let Some(name) = params.get("tool_name").and_then(Value::as_str)
        && !valid_tool_name(name)
    {
        problems.push((
            "tool_name".to_owned(),
            format!("must be 1–{MAX_TOOL_NAME} characters of a-z, 0-9 and `_`"),
        ));
    }
    if let Some(schema) = params
        .get("input_schema")
        .filter(|schema| schema.is_object())
    {
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            problems.push((
                "input_schema.type".to_owned(),
                "must be `object`: a tool takes its arguments as an object".to_owned(),
            ));
        }
        if let Err(error) = jsonschema::validator_for(schema) {
            problems.push((
                "input_schema".to_owned(),
                format!("is not a valid JSON Schema: {error}"),
            ));
        }
    }
    problems
}

/// What is wrong with `arguments` against `schema`, as (field, message) pairs; the field
/// is `arguments` or `arguments.<path>` (dots between the path's parts). A schema that
/// does not compile (it was checked on save) is reported against `arguments`.
pub fn argument_problems(schema: &Value, arguments: &Value) -> Vec<(String, String)> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(validator) => validator,
        Err(error) => {
            return vec![(
                "arguments".to_owned(),
                format!("the tool's input schema is not valid: {error}"),
            )];
        }
    };
    validator
        .iter_errors(arguments)
        .map(|error| {
            let mut field = String::from("arguments");
            for part in error
                .instance_path()
                .as_str()
                .split('/')
                .filter(|part| !part.is_empty())
            {
                field.push('.');
                field.push_str(&part.replace("~1", "/").replace("~0", "~"));
            }
            // A missing property is named by its own path, not its parent's.
            if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind()
                && let Some(name) = property.as_str()
            {
                field.push('.');
                field.push_str(name);
                return (field, "is required".to_owned());
            }
            (field, error.to_string())
        })
        .collect()
}

/// A session to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMcpSession {
    pub id: McpSessionId,
    pub workspace_id: WorkspaceId,
    /// The key that opened it; only that key may use it.
    pub api_key_id: ApiKeyId,
    /// The protocol version negotiated in `initialize`.
    pub protocol_version: String,
    /// How long it lives without use.
    pub idle_ttl: Duration,
}

/// MCP sessions, shared by every API process.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait McpSessions: Send + Sync {
    /// Stores a new session, expiring `idle_ttl` from now; sessions that expired are
    /// cleared on the way.
    async fn open(&self, session: &NewMcpSession) -> Result<(), StorageError>;
    /// The protocol version of session `id` of `key` when it has not expired, and then
    /// pushes its expiry `idle_ttl` from now; `None` for an unknown, expired or ended
    /// session, or one of another key.
    async fn touch(
        &self,
        id: McpSessionId,
        key: ApiKeyId,
        idle_ttl: Duration,
    ) -> Result<Option<String>, StorageError>;
    /// Ends session `id` of `key`; `false` when there was none to end.
    async fn close(&self, id: McpSessionId, key: ApiKeyId) -> Result<bool, StorageError>;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn tool_names_are_lowercase_words_of_at_most_64() {
        assert!(valid_tool_name("send_invoice_2"));
        assert!(!valid_tool_name(""));
        assert!(!valid_tool_name("Send"));
        assert!(!valid_tool_name("send-invoice"));
        assert!(valid_tool_name(&"a".repeat(64)));
        assert!(!valid_tool_name(&"a".repeat(65)));
    }

    #[test]
    fn a_schema_that_does_not_compile_is_refused_on_save() {
        let problems = check_tool_params(&params(json!({
            "tool_name": "Bad Name",
            "description": "x",
            "input_schema": {"type": "object", "properties": {"n": {"type": 5}}},
        })));
        let fields: Vec<&str> = problems.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(fields, ["tool_name", "input_schema"], "{problems:?}");
        let not_an_object = check_tool_params(&params(json!({
            "tool_name": "ok", "description": "x", "input_schema": {"type": "string"},
        })));
        assert_eq!(not_an_object.len(), 1);
        assert_eq!(not_an_object[0].0, "input_schema.type");
    }

    #[test]
    fn argument_problems_name_the_field() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "address": {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}},
            },
            "required": ["name"],
        });
        assert_eq!(argument_problems(&schema, &json!({"name": "Ada"})), vec![]);
        let problems = argument_problems(&schema, &json!({"address": {"zip": "abc"}}));
        let fields: Vec<&str> = problems.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(fields.len(), 2, "{problems:?}");
        assert!(fields.contains(&"arguments.name"), "{problems:?}");
        assert!(fields.contains(&"arguments.address.zip"), "{problems:?}");
    }

    #[test]
    fn a_deployed_trigger_becomes_a_tool() {
        let workflow = WorkflowId::new();
        let tool = McpTool::from_deployed(DeployedTrigger {
            workflow_id: workflow,
            workflow_name: "Greeter".to_owned(),
            version: 3,
            params: json!({"tool_name": "greet", "description": "Says hi", "input_schema": {"type": "object"}}),
        });
        assert_eq!(
            tool.map(|tool| (tool.workflow_id, tool.version, tool.name)),
            Some((workflow, 3, "greet".to_owned()))
        );
    }
}
