//! The shape of a workflow definition, as stored in `workflow_versions.definition`.

use fluxolab_kernel::CredentialId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One node of the graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Unique within the definition; templates refer to it (`nodes.<id>.output`).
    pub id: String,
    /// The node type, e.g. `http.request`.
    #[serde(rename = "type")]
    pub node_type: String,
    pub name: String,
    #[serde(default)]
    pub params: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<CredentialId>,
}

/// An edge: the `output` of node `from` feeds node `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub from: String,
    #[serde(default = "main_output")]
    pub output: String,
    pub to: String,
}

fn main_output() -> String {
    "main".to_owned()
}

/// A whole workflow graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub connections: Vec<Connection>,
}

impl Definition {
    /// The node with `id`, if any.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_reads_from_its_json_form() -> Result<(), serde_json::Error> {
        let definition: Definition = serde_json::from_value(serde_json::json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "fetch", "type": "http.request", "name": "Fetch",
                 "params": {"method": "GET", "url": "https://example.com"}}
            ],
            "connections": [{"from": "start", "to": "fetch"}]
        }))?;
        assert_eq!(definition.connections[0].output, "main");
        assert_eq!(
            definition.node("fetch").map(|n| n.node_type.as_str()),
            Some("http.request")
        );
        assert!(definition.node("missing").is_none());
        Ok(())
    }
}
