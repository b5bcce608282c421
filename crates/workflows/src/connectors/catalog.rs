//! The node types of one workspace as validation sees them: the built-ins and the
//! actions of its installed connectors (a disabled one's are named as such).

use fluxolab_credentials::CredentialKind;
use serde_json::Value;

use super::{Action, Connector, action_of};
use crate::registry::{CredentialUse, NodeType, node_type};

/// The node types a definition of one workspace may use.
#[derive(Clone, Debug, Default)]
pub struct NodeCatalog {
    connectors: Vec<Connector>,
}

/// A node type found in a [`NodeCatalog`].
#[derive(Clone, Copy, Debug)]
pub enum KnownType<'a> {
    BuiltIn(&'static NodeType),
    /// An action of an enabled connector.
    Action {
        connector: &'a Connector,
        action: &'a Action,
    },
}

/// A one-kind list that lives as long as the program (what [`CredentialUse`] holds).
fn only(kind: CredentialKind) -> &'static [CredentialKind] {
    match kind {
        CredentialKind::Smtp => &[CredentialKind::Smtp],
        CredentialKind::HttpBasic => &[CredentialKind::HttpBasic],
        CredentialKind::HttpHeader => &[CredentialKind::HttpHeader],
        CredentialKind::BearerToken => &[CredentialKind::BearerToken],
        CredentialKind::MetaApp => &[CredentialKind::MetaApp],
        CredentialKind::Generic => &[CredentialKind::Generic],
    }
}

impl KnownType<'_> {
    /// Whether nodes of this type start runs.
    pub fn trigger(&self) -> bool {
        match self {
            KnownType::BuiltIn(kind) => kind.trigger,
            KnownType::Action { .. } => false,
        }
    }

    /// Whether it takes a credential, and of which kinds: a connector's action needs
    /// one of the manifest's kind when it names one.
    pub fn credential(&self) -> CredentialUse {
        match self {
            KnownType::BuiltIn(kind) => kind.credential,
            KnownType::Action { connector, .. } => match connector.manifest.credential_kind {
                Some(kind) => CredentialUse::Required(only(kind)),
                None => CredentialUse::None,
            },
        }
    }

    /// The outputs of a node of this type with `params`.
    pub fn outputs_for(&self, params: &Value) -> Vec<String> {
        match self {
            KnownType::BuiltIn(kind) => kind.outputs_for(params),
            KnownType::Action { .. } => vec!["main".to_owned()],
        }
    }

    /// Problems with `params`, as (param, message) pairs; a connector action's values
    /// that are templates pass (they are checked once rendered, when the step runs).
    pub fn check_params(&self, params: &Value) -> Vec<(String, String)> {
        match self {
            KnownType::BuiltIn(kind) => kind.check_params(params),
            KnownType::Action { action, .. } => {
                if !(params.is_object() || params.is_null()) {
                    return vec![(String::new(), "params must be an object".to_owned())];
                }
                super::params::check(&action.params_schema, params, true)
            }
        }
    }
}

impl NodeCatalog {
    /// The built-ins and the actions of `connectors`.
    pub fn with(connectors: Vec<Connector>) -> Self {
        Self { connectors }
    }

    /// The enabled connectors.
    pub fn enabled(&self) -> impl Iterator<Item = &Connector> {
        self.connectors.iter().filter(|connector| connector.enabled)
    }

    /// The type called `code`, or why a node may not use it.
    pub fn lookup(&self, code: &str) -> Result<KnownType<'_>, String> {
        if let Some(kind) = node_type(code) {
            return Ok(KnownType::BuiltIn(kind));
        }
        let Some((name, action)) = action_of(code) else {
            return Err(format!("unknown node type `{code}`"));
        };
        let connector = self
            .connectors
            .iter()
            .find(|connector| connector.name() == name)
            .ok_or_else(|| format!("`{code}`: no connector `{name}` is installed"))?;
        if !connector.enabled {
            return Err(format!("`{code}`: the connector `{name}` is disabled"));
        }
        let action = connector.manifest.action(action).ok_or_else(|| {
            format!(
                "`{code}`: the connector `{name}` (version {}) has no action `{action}`",
                connector.manifest.version
            )
        })?;
        Ok(KnownType::Action { connector, action })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use fluxolab_kernel::{CredentialId, ValidationErrors, WorkspaceId};
    use serde_json::json;

    use super::*;
    use crate::connectors::{ConnectorId, manifest};
    use crate::validate::validate_in;

    fn connector(enabled: bool) -> Result<Connector, ValidationErrors> {
        let manifest = manifest::parse(
            &json!({
                "name": "chat", "version": "1.0.0", "description": "Chat",
                "credential_kind": "bearer_token", "base_url": "https://chat.example.com",
                "actions": [{"name": "send", "description": "Sends", "method": "POST", "path": "/send",
                             "params_schema": {"type": "object", "required": ["to"],
                                               "properties": {"to": {"type": "string"}}}}]
            }),
            "",
        )?;
        Ok(Connector {
            id: ConnectorId::new(),
            workspace_id: WorkspaceId::new(),
            manifest,
            enabled,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    fn problems(catalog: &NodeCatalog, credential: Option<CredentialId>) -> Vec<String> {
        let definition = serde_json::from_value(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "send", "type": "connector.chat.send", "name": "Send",
                 "credential_id": credential, "params": {"to": "{{ trigger.body.to }}"}}
            ],
            "connections": [{"from": "start", "to": "send"}]
        }))
        .unwrap_or_default();
        let known = credential
            .map(|id| HashMap::from([(id, CredentialKind::BearerToken)]))
            .unwrap_or_default();
        validate_in(
            &definition,
            &known,
            catalog,
            time::OffsetDateTime::now_utc(),
        )
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

    #[test]
    fn actions_validate_like_built_ins_until_disabled() -> Result<(), ValidationErrors> {
        let enabled = NodeCatalog::with(vec![connector(true)?]);
        assert_eq!(
            problems(&enabled, Some(CredentialId::new())),
            Vec::<String>::new()
        );
        assert_eq!(
            problems(&enabled, None),
            [
                "definition.nodes[1].credential_id: node `send`: connector.chat.send needs a credential"
            ]
        );
        let disabled = NodeCatalog::with(vec![connector(false)?]);
        assert_eq!(
            problems(&disabled, Some(CredentialId::new())),
            [
                "definition.nodes[1].type: node `send`: `connector.chat.send`: the connector `chat` is disabled"
            ]
        );
        assert_eq!(
            problems(&NodeCatalog::default(), None),
            [
                "definition.nodes[1].type: node `send`: `connector.chat.send`: no connector `chat` is installed"
            ]
        );
        Ok(())
    }
}
