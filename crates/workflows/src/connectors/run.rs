//! Running a connector action's node: the installed manifest's templates rendered over
//! the node's (already rendered) params into an `http.request`, sent through the
//! [`NodeEffects`] port with the node's credential, and the answer mapped by the
//! action's `output` pointers. The manifest's templates see `params` only — not the
//! run's trigger, other nodes or environment.

use serde_json::{Map, Value, json};

use super::{Action, ConnectorCatalog, Manifest, action_of};
use crate::definition::Node;
use crate::engine::{EffectContext, NodeEffects, NodeFailure};
use crate::template::Templates;

/// How much of an error answer's body a step's error quotes.
const QUOTED_BODY_CHARS: usize = 300;

/// Runs `node` (a `connector.<name>.<action>` with rendered params `input`).
pub async fn run_action(
    catalog: &dyn ConnectorCatalog,
    effects: &dyn NodeEffects,
    templates: &Templates,
    node: &Node,
    input: &Value,
    context: EffectContext,
) -> Result<Value, NodeFailure> {
    let (name, action_name) = action_of(&node.node_type)
        .ok_or_else(|| NodeFailure::permanent(format!("unknown node type `{}`", node.node_type)))?;
    let connector = catalog
        .named(context.workspace_id, name)
        .await
        .map_err(|error| {
            NodeFailure::transient(format!("the connector could not be read: {error}"))
        })?
        .ok_or_else(|| NodeFailure::permanent(format!("no connector `{name}` is installed")))?;
    if !connector.enabled {
        return Err(NodeFailure::permanent(format!(
            "the connector `{name}` is disabled"
        )));
    }
    let manifest = &connector.manifest;
    let action = manifest.action(action_name).ok_or_else(|| {
        NodeFailure::permanent(format!(
            "the connector `{name}` (version {}) has no action `{action_name}`",
            manifest.version
        ))
    })?;
    let request = request(manifest, action, input, templates)?;
    let response = effects
        .http_request(context, request, node.credential_id)
        .await?;
    outcome(manifest, action, response)
}

fn text_of(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// Whether a rendered path stays a plain path below the base URL.
fn plain_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains(['?', '#', '\\'])
        && !path.contains(char::is_whitespace)
        && path
            .split('/')
            .all(|segment| segment != "." && segment != "..")
}

/// The `http.request` params of `action` with the node's rendered params `input`.
pub fn request(
    manifest: &Manifest,
    action: &Action,
    input: &Value,
    templates: &Templates,
) -> Result<Value, NodeFailure> {
    let problems = super::params::check(&action.params_schema, input, false);
    if !problems.is_empty() {
        let listed: Vec<String> = problems
            .into_iter()
            .map(|(field, message)| {
                if field.is_empty() {
                    message
                } else {
                    format!("params.{field}: {message}")
                }
            })
            .collect();
        return Err(NodeFailure::permanent(format!(
            "the params do not match the action's schema: {}",
            listed.join("; ")
        )));
    }
    let scope = json!({"params": input});
    let render = |value: &Value| {
        templates
            .render(value, &scope)
            .map_err(|error| NodeFailure::permanent(format!("the manifest's {error}")))
    };
    let path = text_of(&render(&Value::String(action.path.clone()))?);
    if !plain_path(&path) {
        return Err(NodeFailure::permanent(format!(
            "the rendered path `{path}` is not a plain path (no `?`, `#`, spaces, `.` or `..` segments)"
        )));
    }
    let query: Map<String, Value> = render(&Value::Object(action.query.clone()))?
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| (name.clone(), Value::String(text_of(value))))
        .collect();
    let headers: Map<String, Value> = render(&Value::Object(action.headers.clone()))?
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), Value::String(text_of(value))))
        .collect();
    let body = match &action.body {
        Some(body) => render(body)?,
        None => Value::Null,
    };
    Ok(json!({
        "method": action.method,
        "url": format!("{}{path}", manifest.base_url),
        "query": query,
        "headers": headers,
        "body": body,
    }))
}

/// The node's output from the `http.request` answer `response` (`{status, headers,
/// body}`): a status outside 2xx fails the step (429 and 5xx may pass on a later
/// attempt); else the `output` pointers pick from it (a pointer that finds nothing
/// gives `null`), or, with none, the answer is the output.
pub fn outcome(
    manifest: &Manifest,
    action: &Action,
    response: Value,
) -> Result<Value, NodeFailure> {
    let status = response["status"].as_u64().unwrap_or(0);
    if !(200..300).contains(&status) {
        let body = text_of(&response["body"]);
        let quoted: String = body.chars().take(QUOTED_BODY_CHARS).collect();
        let message = format!(
            "{}.{} answered HTTP {status}: {quoted}",
            manifest.name, action.name
        );
        return Err(if status == 429 || status >= 500 {
            NodeFailure::transient(message)
        } else {
            NodeFailure::permanent(message)
        });
    }
    if action.output.is_empty() {
        return Ok(response);
    }
    Ok(Value::Object(
        action
            .output
            .iter()
            .map(|(key, pointer)| {
                let found = pointer
                    .as_str()
                    .and_then(|pointer| response.pointer(pointer))
                    .cloned()
                    .unwrap_or(Value::Null);
                (key.clone(), found)
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::manifest::parse;

    fn manifest() -> Manifest {
        let value = json!({
            "name": "chat", "version": "1.2.0", "description": "Chat API",
            "base_url": "http://127.0.0.1:9/api",
            "actions": [{
                "name": "send", "description": "Sends", "method": "POST",
                "path": "/{{ params.account }}/messages",
                "query": {"dry": "{{ params.dry }}", "skip": null},
                "headers": {"X-Count": "{{ params.count }}"},
                "body": {"to": "{{ params.to }}", "count": "{{ params.count }}"},
                "params_schema": {"type": "object", "required": ["account", "to"],
                                  "properties": {"account": {"type": "string"}, "to": {"type": "string"},
                                                 "count": {"type": "integer"}, "dry": {"type": "boolean"}}},
                "output": {"id": "/body/id", "status": "/status", "missing": "/body/nope"}
            }]
        });
        parse(&value, "").unwrap_or_else(|errors| panic!("{errors}"))
    }

    #[test]
    fn the_request_is_built_from_the_templates_and_the_params() -> Result<(), NodeFailure> {
        let manifest = manifest();
        let built = request(
            &manifest,
            &manifest.actions[0],
            &json!({"account": "acc-1", "to": "+351", "count": 2, "dry": true}),
            &Templates::new(),
        )?;
        assert_eq!(
            built,
            json!({"method": "POST", "url": "http://127.0.0.1:9/api/acc-1/messages",
                   "query": {"dry": "true"}, "headers": {"X-Count": "2"},
                   "body": {"to": "+351", "count": 2}})
        );
        Ok(())
    }

    #[test]
    fn bad_params_and_escaping_paths_fail_the_step() {
        let manifest = manifest();
        let action = &manifest.actions[0];
        let templates = Templates::new();
        let wrong = request(
            &manifest,
            action,
            &json!({"account": "a", "to": 5}),
            &templates,
        );
        assert!(
            wrong
                .as_ref()
                .is_err_and(|failure| !failure.retryable && failure.message.contains("params.to")),
            "{wrong:?}"
        );
        let escaping = request(
            &manifest,
            action,
            &json!({"account": "../admin", "to": "x", "dry": false}),
            &templates,
        );
        assert!(escaping.is_err_and(|failure| failure.message.contains("not a plain path")));
    }

    #[test]
    fn the_shipped_whatsapp_manifest_builds_its_request() -> Result<(), NodeFailure> {
        let value: Value = serde_json::from_str(include_str!(
            "../../../../examples/connectors/whatsapp-cloud.json"
        ))
        .map_err(|error| NodeFailure::permanent(error.to_string()))?;
        let manifest =
            parse(&value, "").map_err(|errors| NodeFailure::permanent(errors.to_string()))?;
        let send = manifest
            .action("send_text")
            .ok_or_else(|| NodeFailure::permanent("no send_text"))?;
        let built = request(
            &manifest,
            send,
            &json!({"phone_number_id": "1098765", "to": "+351912345678", "body": "Olá"}),
            &Templates::new(),
        )?;
        assert_eq!(
            built["url"],
            "https://graph.facebook.com/v21.0/1098765/messages"
        );
        assert_eq!(built["body"]["to"], "+351912345678");
        assert_eq!(
            built["body"]["text"],
            json!({"preview_url": false, "body": "Olá"})
        );
        let template = manifest
            .action("send_template")
            .ok_or_else(|| NodeFailure::permanent("no send_template"))?;
        let built = request(
            &manifest,
            template,
            &json!({"phone_number_id": "1098765", "to": "351912345678", "template": "hello_world", "language": "en_US"}),
            &Templates::new(),
        )?;
        assert_eq!(built["body"]["template"]["components"], json!([]));
        Ok(())
    }

    #[tokio::test]
    async fn an_action_runs_through_the_effects_with_the_nodes_credential() {
        use crate::connectors::{Connector, ConnectorId, MockConnectorCatalog};
        use crate::engine::{MockNodeEffects, RunMode};
        use fluxolab_kernel::{CredentialId, ExecutionId, WorkspaceId};

        let workspace = WorkspaceId::new();
        let credential = CredentialId::new();
        let installed = Connector {
            id: ConnectorId::new(),
            workspace_id: workspace,
            manifest: manifest(),
            enabled: true,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let mut disabled = installed.clone();
        disabled.enabled = false;
        let mut catalog = MockConnectorCatalog::new();
        let mut answers = vec![Some(disabled), Some(installed)];
        catalog
            .expect_named()
            .withf(|_, name| name == "chat")
            .times(2)
            .returning(move |_, _| Ok(answers.pop().flatten()));
        let mut effects = MockNodeEffects::new();
        effects
            .expect_http_request()
            .withf(move |_, params, used| {
                params["url"] == "http://127.0.0.1:9/api/a/messages" && *used == Some(credential)
            })
            .times(1)
            .returning(|_, _, _| Ok(json!({"status": 200, "headers": {}, "body": {"id": "m-9"}})));
        let node: Node = serde_json::from_value(json!({
            "id": "send", "type": "connector.chat.send", "name": "Send", "credential_id": credential,
            "params": {}
        }))
        .unwrap_or_else(|error| panic!("{error}"));
        let context = EffectContext::of_run(workspace, ExecutionId::new(), RunMode::Inline);
        let input = json!({"account": "a", "to": "x", "dry": false});
        let templates = Templates::new();
        let output = run_action(&catalog, &effects, &templates, &node, &input, context).await;
        assert_eq!(
            output,
            Ok(json!({"id": "m-9", "status": 200, "missing": null}))
        );
        let refused = run_action(&catalog, &effects, &templates, &node, &input, context).await;
        assert_eq!(
            refused,
            Err(NodeFailure::permanent("the connector `chat` is disabled"))
        );
    }

    #[test]
    fn answers_are_mapped_and_error_statuses_fail() {
        let manifest = manifest();
        let action = &manifest.actions[0];
        let mapped = outcome(
            &manifest,
            action,
            json!({"status": 201, "headers": {}, "body": {"id": "m-1"}}),
        );
        assert_eq!(
            mapped,
            Ok(json!({"id": "m-1", "status": 201, "missing": null}))
        );
        let refused = outcome(
            &manifest,
            action,
            json!({"status": 400, "body": {"error": "bad"}}),
        );
        assert!(
            refused.is_err_and(|failure| !failure.retryable
                && failure.message.contains("chat.send answered HTTP 400"))
        );
        let busy = outcome(&manifest, action, json!({"status": 503, "body": ""}));
        assert!(busy.is_err_and(|failure| failure.retryable));
    }
}
