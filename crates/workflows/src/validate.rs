//! Definition validation: known node types, params against each type, connections to
//! existing nodes and outputs, acyclic, exactly one trigger, credentials of the right
//! kind from the same workspace. Every problem names the node and field.

use std::collections::{HashMap, HashSet, VecDeque};

use fluxolab_credentials::CredentialKind;
use fluxolab_kernel::{CredentialId, ValidationErrors};
use time::OffsetDateTime;

use crate::connectors::NodeCatalog;
use crate::definition::Definition;
use crate::registry::CredentialUse;

/// The most nodes a definition may hold.
pub const MAX_NODES: usize = 200;

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Validates `definition` now against the built-in node types; `credentials` maps every
/// credential id of the workspace that the definition mentions to its kind (absent ids
/// are not in the workspace).
pub fn validate(
    definition: &Definition,
    credentials: &HashMap<CredentialId, CredentialKind>,
) -> Result<(), ValidationErrors> {
    validate_in(
        definition,
        credentials,
        &NodeCatalog::default(),
        OffsetDateTime::now_utc(),
    )
}

/// [`validate`] against the node types of `catalog` (the built-ins and the workspace's
/// connector actions), saved at `now` (a schedule's problems show its next fire times
/// from then).
pub fn validate_in(
    definition: &Definition,
    credentials: &HashMap<CredentialId, CredentialKind>,
    catalog: &NodeCatalog,
    now: OffsetDateTime,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if definition.nodes.is_empty() {
        errors.add("definition.nodes", "must have at least one node");
    }
    if definition.nodes.len() > MAX_NODES {
        errors.add(
            "definition.nodes",
            format!("must have at most {MAX_NODES} nodes"),
        );
    }
    let mut seen = HashSet::new();
    let mut triggers = Vec::new();
    for (index, node) in definition.nodes.iter().enumerate() {
        let at = format!("definition.nodes[{index}]");
        if !valid_id(&node.id) {
            errors.add(
                format!("{at}.id"),
                format!(
                    "node `{}`: ids are 1–64 letters, digits, `_` or `-`",
                    node.id
                ),
            );
        }
        if !seen.insert(node.id.as_str()) {
            errors.add(
                format!("{at}.id"),
                format!("node `{}`: the id is used twice", node.id),
            );
        }
        let kind = match catalog.lookup(&node.node_type) {
            Ok(kind) => kind,
            Err(message) => {
                errors.add(
                    format!("{at}.type"),
                    format!("node `{}`: {message}", node.id),
                );
                continue;
            }
        };
        if kind.trigger() {
            triggers.push(node.id.as_str());
        }
        let mut param_problems = kind.check_params(&node.params);
        if param_problems.is_empty() && node.node_type == crate::schedule::NODE_TYPE {
            param_problems = crate::schedule::check_params(&node.params, now)
                .into_iter()
                .map(|(param, message)| (param.to_owned(), message))
                .collect();
        }
        for (param, message) in param_problems {
            let field = if param.is_empty() {
                format!("{at}.params")
            } else {
                format!("{at}.params.{param}")
            };
            errors.add(field, format!("node `{}`: {message}", node.id));
        }
        let field = format!("{at}.credential_id");
        match (kind.credential(), node.credential_id) {
            (CredentialUse::None, Some(_)) => {
                errors.add(
                    field,
                    format!("node `{}`: {} takes no credential", node.id, node.node_type),
                );
            }
            (CredentialUse::Required(_), None) => {
                errors.add(
                    field,
                    format!("node `{}`: {} needs a credential", node.id, node.node_type),
                );
            }
            (CredentialUse::Required(kinds) | CredentialUse::Optional(kinds), Some(id)) => {
                match credentials.get(&id) {
                    None => errors.add(
                        field,
                        format!(
                            "node `{}`: credential {id} does not exist in this workspace",
                            node.id
                        ),
                    ),
                    Some(actual) if !kinds.contains(actual) => {
                        let wanted: Vec<&str> = kinds.iter().map(|kind| kind.code()).collect();
                        errors.add(
                            field,
                            format!(
                                "node `{}`: needs a {} credential, not {}",
                                node.id,
                                wanted.join(" or "),
                                actual.code()
                            ),
                        );
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    if triggers.len() != 1 && !definition.nodes.is_empty() {
        errors.add(
            "definition.nodes",
            format!(
                "must have exactly one trigger node, found {} ({})",
                triggers.len(),
                triggers.join(", ")
            ),
        );
    }

    let by_id: HashMap<&str, &crate::definition::Node> = definition
        .nodes
        .iter()
        .map(|node| (node.id.as_str(), node))
        .collect();
    for (index, connection) in definition.connections.iter().enumerate() {
        let at = format!("definition.connections[{index}]");
        match by_id.get(connection.from.as_str()) {
            None => errors.add(
                format!("{at}.from"),
                format!("node `{}` does not exist", connection.from),
            ),
            Some(from) => {
                if let Ok(kind) = catalog.lookup(&from.node_type) {
                    let outputs = kind.outputs_for(&from.params);
                    if !outputs.contains(&connection.output) {
                        errors.add(
                            format!("{at}.output"),
                            format!(
                                "node `{}` has no output `{}` (it has: {})",
                                from.id,
                                connection.output,
                                if outputs.is_empty() {
                                    "none".to_owned()
                                } else {
                                    outputs.join(", ")
                                }
                            ),
                        );
                    }
                }
            }
        }
        match by_id.get(connection.to.as_str()) {
            None => errors.add(
                format!("{at}.to"),
                format!("node `{}` does not exist", connection.to),
            ),
            Some(to)
                if catalog
                    .lookup(&to.node_type)
                    .is_ok_and(|kind| kind.trigger()) =>
            {
                errors.add(
                    format!("{at}.to"),
                    format!("node `{}` is a trigger and cannot be a target", to.id),
                );
            }
            Some(_) => {}
        }
    }
    if let Some(node) = cycle_member(definition) {
        errors.add(
            "definition.connections",
            format!("node `{node}` is part of a cycle"),
        );
    }
    errors.into_result(())
}

/// A node on a cycle, if the graph has one (Kahn's algorithm).
fn cycle_member(definition: &Definition) -> Option<String> {
    let mut incoming: HashMap<&str, usize> = definition
        .nodes
        .iter()
        .map(|node| (node.id.as_str(), 0))
        .collect();
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for connection in &definition.connections {
        if incoming.contains_key(connection.from.as_str())
            && incoming.contains_key(connection.to.as_str())
        {
            edges
                .entry(connection.from.as_str())
                .or_default()
                .push(connection.to.as_str());
            *incoming.entry(connection.to.as_str()).or_default() += 1;
        }
    }
    let mut ready: VecDeque<&str> = incoming
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(id, _)| *id)
        .collect();
    while let Some(node) = ready.pop_front() {
        for next in edges.get(node).into_iter().flatten() {
            if let Some(count) = incoming.get_mut(next) {
                *count -= 1;
                if *count == 0 {
                    ready.push_back(next);
                }
            }
        }
    }
    let mut left: Vec<&str> = incoming
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(id, _)| id)
        .collect();
    left.sort_unstable();
    left.first().map(|id| (*id).to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn definition(value: serde_json::Value) -> Definition {
        serde_json::from_value(value).unwrap_or_default()
    }

    fn fields(result: Result<(), ValidationErrors>) -> Vec<String> {
        result
            .err()
            .map(|errors| {
                errors
                    .errors()
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn three_nodes() -> serde_json::Value {
        json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"total": "{{ trigger.body.a + trigger.body.b }}"}}},
                {"id": "check", "type": "flow.if", "name": "Big?", "params": {"condition": "{{ nodes.shape.output.total > 10 }}"}}
            ],
            "connections": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "check"}]
        })
    }

    #[test]
    fn a_sound_definition_passes() {
        assert_eq!(
            fields(validate(&definition(three_nodes()), &HashMap::new())),
            Vec::<String>::new()
        );
    }

    #[test]
    fn cycles_two_triggers_unknown_types_and_bad_params_are_named() {
        let mut value = three_nodes();
        value["connections"] = json!([{"from": "start", "to": "shape"}, {"from": "shape", "to": "check"}, {"from": "check", "output": "true", "to": "shape"}]);
        assert!(
            fields(validate(&definition(value), &HashMap::new()))
                .iter()
                .any(|f| f.contains("part of a cycle"))
        );

        let mut value = three_nodes();
        value["nodes"][1]["type"] = json!("trigger.webhook");
        value["nodes"][1]["params"] = json!({});
        assert!(
            fields(validate(&definition(value), &HashMap::new()))
                .iter()
                .any(|f| f.contains("exactly one trigger node, found 2"))
        );

        let mut value = three_nodes();
        value["nodes"][2]["type"] = json!("shell.exec");
        assert_eq!(
            fields(validate(&definition(value), &HashMap::new())),
            vec![
                "definition.nodes[2].type: node `check`: unknown node type `shell.exec`".to_owned()
            ]
        );

        let mut value = three_nodes();
        value["nodes"][1]["params"] = json!({"values": "not an object"});
        assert_eq!(
            fields(validate(&definition(value), &HashMap::new())),
            vec!["definition.nodes[1].params.values: node `shape`: must be an object".to_owned()]
        );
    }

    #[test]
    fn credentials_must_exist_here_and_be_of_the_right_kind() {
        let token = CredentialId::new();
        let elsewhere = CredentialId::new();
        let value = json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "mail", "type": "email.send", "name": "Mail", "credential_id": token,
                 "params": {"to": "a@b.co", "subject": "s", "body": "b"}},
                {"id": "call", "type": "http.request", "name": "Call", "credential_id": elsewhere,
                 "params": {"method": "GET", "url": "https://example.com"}}
            ],
            "connections": [{"from": "start", "to": "mail"}, {"from": "mail", "to": "call"}]
        });
        let known = HashMap::from([(token, CredentialKind::BearerToken)]);
        let problems = fields(validate(&definition(value), &known));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("needs a smtp credential, not bearer_token"));
        assert!(problems[1].contains("does not exist in this workspace"));
    }

    #[test]
    fn connections_must_name_real_nodes_and_outputs() {
        let mut value = three_nodes();
        value["connections"] = json!([{"from": "start", "to": "shape"}, {"from": "shape", "output": "maybe", "to": "check"}, {"from": "ghost", "to": "check"}, {"from": "check", "output": "true", "to": "start"}]);
        let problems = fields(validate(&definition(value), &HashMap::new()));
        assert!(
            problems.iter().any(|p| p.contains("has no output `maybe`")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("node `ghost` does not exist"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("is a trigger and cannot be a target"))
        );
    }
}
