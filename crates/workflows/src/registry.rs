//! The node registry: every built-in node type, its params, outputs and credential kind.

use fluxolab_credentials::CredentialKind;
use serde_json::{Map, Value, json};

use crate::code::{CEILING_MEMORY_MB, CEILING_TIMEOUT_MS, CODE_NODE_TYPE, MAX_CODE_BYTES};

/// The type of one param.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// A string; may be a template.
    Text,
    /// A whole number, or a template.
    Integer,
    /// A JSON object (its values may be templates).
    Object,
    /// A list of strings.
    TextList,
    /// Anything JSON.
    Any,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// `true` or `false`, or a template.
    Boolean,
    /// A UUID (an id), or a template.
    Uuid,
    /// A whole number (never a template) of at least this.
    AtLeast(i64),
    /// Source code (`code.javascript`): a non-empty string of at most
    /// [`crate::code::MAX_CODE_BYTES`], never rendered as a template.
    Code,
    /// A literal whole number within these bounds (inclusive), not a template.
    Bounded(u64, u64),
}

/// One param of a node type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub param_type: ParamType,
    pub required: bool,
    pub description: &'static str,
}

const fn param(
    name: &'static str,
    param_type: ParamType,
    required: bool,
    description: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        param_type,
        required,
        description,
    }
}

/// How a node's outputs are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outputs {
    /// These fixed outputs (most nodes: `main`).
    Fixed(&'static [&'static str]),
    /// One output per entry of the `cases` param, plus `default` (`flow.switch`).
    Cases,
    /// No outputs (`webhook.respond` ends a branch).
    None,
}

/// Whether a node needs a credential, and of which kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialUse {
    None,
    Optional(&'static [CredentialKind]),
    Required(&'static [CredentialKind]),
}

/// A built-in node type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeType {
    pub code: &'static str,
    pub description: &'static str,
    pub trigger: bool,
    pub params: &'static [ParamSpec],
    pub outputs: Outputs,
    pub credential: CredentialUse,
}

const MAIN: Outputs = Outputs::Fixed(&["main"]);
const HTTP_KINDS: &[CredentialKind] = &[
    CredentialKind::HttpBasic,
    CredentialKind::HttpHeader,
    CredentialKind::BearerToken,
];

/// Every built-in node type.
pub const NODE_TYPES: &[NodeType] = &[
    NodeType {
        code: "trigger.manual",
        description: "Starts a run by hand or through the API; its output is the payload.",
        trigger: true,
        params: &[],
        outputs: MAIN,
        credential: CredentialUse::None,
    },
    NodeType {
        code: "trigger.webhook",
        description: "Starts a run when the workflow's webhook receives an event.",
        trigger: true,
        params: &[],
        outputs: MAIN,
        credential: CredentialUse::None,
    },
    NodeType {
        code: crate::schedule::NODE_TYPE,
        description: "Starts a run on a schedule: a cron pattern in a time zone, or a fixed interval.",
        trigger: true,
        params: &[
            param(
                "cron",
                ParamType::Text,
                false,
                "A cron pattern: 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first); not with interval_seconds",
            ),
            param(
                "timezone",
                ParamType::Text,
                false,
                "The IANA time zone the cron pattern is read in (default: the workspace's)",
            ),
            param(
                "interval_seconds",
                ParamType::AtLeast(crate::schedule::MIN_PERIOD_SECONDS),
                false,
                "Fire every this many seconds instead of a cron pattern",
            ),
        ],
        outputs: MAIN,
        credential: CredentialUse::None,
    },
    NodeType {
        code: crate::mcp::MCP_TRIGGER,
        description: "Exposes the workflow as a tool of the MCP server (`/api/mcp`) in each environment it is active in; its output is the tool's arguments.",
        trigger: true,
        params: &[
            param(
                "tool_name",
                ParamType::Text,
                true,
                "The tool's name: 1–64 of a-z, 0-9 and `_`; unique among the workspace's active MCP tools of an environment",
            ),
            param(
                "description",
                ParamType::Text,
                true,
                "What the tool does, for the model that calls it",
            ),
            param(
                "input_schema",
                ParamType::Object,
                true,
                "A JSON Schema (`type: object`) the arguments are validated against",
            ),
        ],
        outputs: MAIN,
        credential: CredentialUse::None,
    },
    NodeType {
        code: "data.set",
        description: "Builds an object from templates.",
        trigger: false,
        params: &[param(
            "values",
            ParamType::Object,
            true,
            "Keys to values or templates",
        )],
        outputs: MAIN,
        credential: CredentialUse::None,
    },
    NodeType {
        code: "flow.if",
        description: "Routes to `true` or `false` by a condition.",
        trigger: false,
        params: &[param(
            "condition",
            ParamType::Text,
            true,
            "A template that evaluates to a boolean",
        )],
        outputs: Outputs::Fixed(&["true", "false"]),
        credential: CredentialUse::None,
    },
    NodeType {
        code: "flow.switch",
        description: "Routes to the output named by the value, else `default`.",
        trigger: false,
        params: &[
            param(
                "value",
                ParamType::Text,
                true,
                "A template whose value picks the case",
            ),
            param(
                "cases",
                ParamType::TextList,
                true,
                "The case names; each is an output",
            ),
        ],
        outputs: Outputs::Cases,
        credential: CredentialUse::None,
    },
    NodeType {
        code: "http.request",
        description: "Makes an HTTP request (SSRF-guarded, redirects re-checked, response size capped).",
        trigger: false,
        params: &[
            param(
                "method",
                ParamType::OneOf(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
                true,
                "HTTP method",
            ),
            param("url", ParamType::Text, true, "URL or template"),
            param(
                "headers",
                ParamType::Object,
                false,
                "Header names to values or templates",
            ),
            param("query", ParamType::Object, false, "Query parameters"),
            param(
                "body",
                ParamType::Any,
                false,
                "A JSON body (templates allowed in strings)",
            ),
            param(
                "timeout_ms",
                ParamType::Integer,
                false,
                "Timeout in milliseconds (default 10000)",
            ),
        ],
        outputs: MAIN,
        credential: CredentialUse::Optional(HTTP_KINDS),
    },
    NodeType {
        code: "email.send",
        description: "Sends an e-mail through an SMTP credential.",
        trigger: false,
        params: &[
            param("to", ParamType::Text, true, "Recipient address or template"),
            param("subject", ParamType::Text, true, "Subject or template"),
            param("body", ParamType::Text, true, "Plain-text body or template"),
            param(
                "from",
                ParamType::Text,
                false,
                "Sender address (default: the credential's username)",
            ),
        ],
        outputs: MAIN,
        credential: CredentialUse::Required(&[CredentialKind::Smtp]),
    },
    NodeType {
        code: "flow.delay",
        description: "Waits before continuing.",
        trigger: false,
        params: &[param(
            "milliseconds",
            ParamType::Integer,
            true,
            "How long to wait",
        )],
        outputs: MAIN,
        credential: CredentialUse::None,
    },
    NodeType {
        code: "flow.run_workflow",
        description: "Runs another workflow's active version (same environment) as a sub-workflow; with `wait`, continues on its output.",
        trigger: false,
        params: &[
            param(
                "workflow_id",
                ParamType::Uuid,
                true,
                "The workflow to run (its id, or a template)",
            ),
            param(
                "payload",
                ParamType::Any,
                false,
                "The sub-workflow's trigger body (templates allowed in strings)",
            ),
            param(
                "wait",
                ParamType::Boolean,
                false,
                "Wait for it and output its output (default true); false outputs {execution_id} at once",
            ),
        ],
        outputs: MAIN,
        credential: CredentialUse::None,
    },
    NodeType {
        code: "webhook.respond",
        description: "Answers the webhook that started the run.",
        trigger: false,
        params: &[
            param(
                "status",
                ParamType::Integer,
                false,
                "HTTP status (default 200)",
            ),
            param("headers", ParamType::Object, false, "Response headers"),
            param("body", ParamType::Any, false, "Response body"),
        ],
        outputs: Outputs::None,
        credential: CredentialUse::None,
    },
    NodeType {
        code: CODE_NODE_TYPE,
        description: "Runs JavaScript: the body of a function of `trigger`, `nodes`, `env` and `execution` that returns the step's output (JSON). No filesystem, network, timers or modules; memory- and time-limited.",
        trigger: false,
        params: &[
            param(
                "code",
                ParamType::Code,
                true,
                "The function body (not a template); compiled when the workflow is saved",
            ),
            param(
                "memory_limit_mb",
                ParamType::Bounded(1, CEILING_MEMORY_MB),
                false,
                "Memory limit in MiB (default 32, at most the workspace's execution_defaults.code_max_memory_mb and the instance's CODE_MAX_MEMORY_MB)",
            ),
            param(
                "timeout_ms",
                ParamType::Bounded(1, CEILING_TIMEOUT_MS),
                false,
                "Time limit in milliseconds (default 2000, at most the workspace's execution_defaults.code_max_timeout_ms and the instance's CODE_MAX_TIMEOUT_MS)",
            ),
        ],
        outputs: MAIN,
        credential: CredentialUse::None,
    },
];

/// The node type with `code`.
pub fn node_type(code: &str) -> Option<&'static NodeType> {
    NODE_TYPES.iter().find(|node| node.code == code)
}

fn is_template(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.contains("{{"))
}

impl NodeType {
    /// The JSON Schema of this type's params.
    pub fn params_schema(&self) -> Value {
        let mut properties = Map::new();
        for spec in self.params {
            let schema = match spec.param_type {
                ParamType::Text => json!({"type": "string"}),
                ParamType::Integer => {
                    json!({"type": ["integer", "string"], "description": "a number or a template"})
                }
                ParamType::Object => json!({"type": "object"}),
                ParamType::TextList => {
                    json!({"type": "array", "items": {"type": "string"}, "minItems": 1})
                }
                ParamType::Any => json!({}),
                ParamType::OneOf(values) => json!({"type": "string", "enum": values}),
                ParamType::Boolean => {
                    json!({"type": ["boolean", "string"], "description": "true, false or a template"})
                }
                ParamType::Uuid => json!({"type": "string", "description": "a UUID or a template"}),
                ParamType::AtLeast(min) => json!({"type": "integer", "minimum": min}),
                ParamType::Code => json!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_CODE_BYTES,
                    "contentMediaType": "text/javascript",
                }),
                ParamType::Bounded(min, max) => {
                    json!({"type": "integer", "minimum": min, "maximum": max})
                }
            };
            let mut schema = schema;
            schema["description"] = Value::String(spec.description.to_owned());
            properties.insert(spec.name.to_owned(), schema);
        }
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|spec| spec.required)
            .map(|spec| spec.name)
            .collect();
        json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
    }

    /// The outputs a node of this type has, given its params.
    pub fn outputs_for(&self, params: &Value) -> Vec<String> {
        match self.outputs {
            Outputs::Fixed(names) => names.iter().map(|name| (*name).to_owned()).collect(),
            Outputs::None => Vec::new(),
            Outputs::Cases => params["cases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|case| case.as_str().map(str::to_owned))
                .chain(["default".to_owned()])
                .collect(),
        }
    }

    /// Problems with `params`, as (param, message) pairs.
    pub fn check_params(&self, params: &Value) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let empty = Map::new();
        let object = match params {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => return vec![(String::new(), "params must be an object".to_owned())],
        };
        for key in object.keys() {
            if !self.params.iter().any(|spec| spec.name == key) {
                problems.push((key.clone(), format!("is not a param of {}", self.code)));
            }
        }
        for spec in self.params {
            let Some(value) = object.get(spec.name).filter(|value| !value.is_null()) else {
                if spec.required {
                    problems.push((spec.name.to_owned(), "is required".to_owned()));
                }
                continue;
            };
            let ok = match spec.param_type {
                ParamType::Text => value.is_string(),
                ParamType::Integer => value.as_i64().is_some_and(|n| n >= 0) || is_template(value),
                ParamType::Object => value.is_object(),
                ParamType::TextList => value
                    .as_array()
                    .is_some_and(|items| !items.is_empty() && items.iter().all(Value::is_string)),
                ParamType::Any => true,
                ParamType::OneOf(values) => {
                    value.as_str().is_some_and(|text| values.contains(&text))
                }
                ParamType::Boolean => value.is_boolean() || is_template(value),
                ParamType::Uuid => {
                    value
                        .as_str()
                        .is_some_and(|text| uuid::Uuid::parse_str(text).is_ok())
                        || is_template(value)
                }
                ParamType::AtLeast(min) => value.as_i64().is_some_and(|n| n >= min),
                ParamType::Code => value
                    .as_str()
                    .is_some_and(|text| !text.trim().is_empty() && text.len() <= MAX_CODE_BYTES),
                ParamType::Bounded(min, max) => {
                    value.as_u64().is_some_and(|n| (min..=max).contains(&n))
                }
            };
            if !ok {
                let expected = match spec.param_type {
                    ParamType::Text => "a string".to_owned(),
                    ParamType::Integer => "a whole number or a template".to_owned(),
                    ParamType::Object => "an object".to_owned(),
                    ParamType::TextList => "a non-empty list of strings".to_owned(),
                    ParamType::Any => "any JSON".to_owned(),
                    ParamType::OneOf(values) => format!("one of {}", values.join(", ")),
                    ParamType::Boolean => "true, false or a template".to_owned(),
                    ParamType::Uuid => "a UUID or a template".to_owned(),
                    ParamType::AtLeast(min) => format!("a whole number of at least {min}"),
                    ParamType::Code => {
                        format!("non-empty source code of at most {MAX_CODE_BYTES} bytes")
                    }
                    ParamType::Bounded(min, max) => {
                        format!("a whole number from {min} to {max}")
                    }
                };
                problems.push((spec.name.to_owned(), format!("must be {expected}")));
            }
        }
        if self.code == crate::mcp::MCP_TRIGGER {
            problems.extend(crate::mcp::check_tool_params(object));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_findable() {
        for node in NODE_TYPES {
            assert_eq!(node_type(node.code), Some(node));
        }
        assert_eq!(NODE_TYPES.iter().filter(|node| node.trigger).count(), 4);
        assert!(node_type("shell.exec").is_none());
    }

    #[test]
    fn params_are_checked_against_the_type() {
        let http = node_type("http.request")
            .map(|node| node.check_params(&json!({"method": "FETCH", "url": 5, "extra": 1})));
        assert_eq!(
            http,
            Some(vec![
                (
                    "extra".to_owned(),
                    "is not a param of http.request".to_owned()
                ),
                (
                    "method".to_owned(),
                    "must be one of GET, POST, PUT, PATCH, DELETE, HEAD".to_owned()
                ),
                ("url".to_owned(), "must be a string".to_owned()),
            ])
        );
        let run = node_type("flow.run_workflow").map(|node| {
            node.check_params(&json!({"workflow_id": "not-an-id", "wait": "yes", "payload": [1]}))
        });
        assert_eq!(
            run,
            Some(vec![
                (
                    "workflow_id".to_owned(),
                    "must be a UUID or a template".to_owned()
                ),
                (
                    "wait".to_owned(),
                    "must be true, false or a template".to_owned()
                ),
            ])
        );
        let templated = node_type("flow.run_workflow").map(|node| {
            node.check_params(&json!({"workflow_id": "{{ trigger.body.target }}", "wait": false}))
        });
        assert_eq!(templated, Some(vec![]));
        let delay = node_type("flow.delay")
            .map(|node| node.check_params(&json!({"milliseconds": "{{ trigger.body.wait }}"})));
        assert_eq!(delay, Some(vec![]));
    }

    #[test]
    fn switch_outputs_follow_its_cases() {
        let outputs =
            node_type("flow.switch").map(|node| node.outputs_for(&json!({"cases": ["a", "b"]})));
        assert_eq!(
            outputs,
            Some(vec!["a".to_owned(), "b".to_owned(), "default".to_owned()])
        );
    }
}
