//! Environments as the other features see them: workflows are activated in one,
//! executions run in one (its variables are `env.NAME` in templates), webhook
//! registrations name one.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::{EnvironmentId, StorageError, WorkspaceId};

/// An environment named by a request, resolved in its workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentRef {
    pub id: EnvironmentId,
    pub name: String,
}

/// The validation message for a reference [`EnvironmentDirectory::resolve`] found
/// nothing for (the same wherever an environment is named).
pub fn unknown_environment(reference: Option<&str>) -> String {
    format!(
        "no environment `{}` in this workspace",
        reference.unwrap_or_default()
    )
}

/// What a reference given to [`EnvironmentDirectory::resolve`] asks for: the one rule
/// every directory follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvironmentLookup<'a> {
    /// No reference: the workspace's default environment.
    Default,
    /// Text that reads as a UUID (surrounding spaces ignored): that id.
    Id(EnvironmentId),
    /// Any other text (surrounding spaces ignored): that exact name.
    Name(&'a str),
}

impl<'a> EnvironmentLookup<'a> {
    pub fn of(reference: Option<&'a str>) -> Self {
        match reference.map(str::trim) {
            None => Self::Default,
            Some(reference) => match reference.parse::<uuid::Uuid>() {
                Ok(id) => Self::Id(EnvironmentId::from_uuid(id)),
                Err(_) => Self::Name(reference),
            },
        }
    }
}

/// Finds a workspace's environments by name or id.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EnvironmentDirectory: Send + Sync {
    /// The environment `reference` (its name, or its id as text) names in `workspace`,
    /// or the workspace's default one (`production`) when `reference` is `None`;
    /// `None` when there is no such environment.
    async fn resolve<'a>(
        &self,
        workspace: WorkspaceId,
        reference: Option<&'a str>,
    ) -> Result<Option<EnvironmentRef>, StorageError>;
}

/// What a run sees of its environment. Its `Debug` names the variables, never their
/// values.
#[derive(Clone, Default, PartialEq)]
pub struct RunEnvironment {
    /// Every variable by name, secret values in clear: for the engine only, never for
    /// a response or a log.
    pub variables: Map<String, Value>,
    /// The secret values among them, to redact from what a run records.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for RunEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunEnvironment")
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl RunEnvironment {
    /// Replaces every secret value inside the strings of `value` with `[redacted]`,
    /// object keys included (a code step can make a key of anything).
    pub fn redact(&self, value: &mut Value) {
        if self.secrets.is_empty() {
            return;
        }
        match value {
            Value::String(text) => self.redact_text(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact(item)),
            Value::Object(members) => {
                if members.keys().any(|key| self.holds_secret(key)) {
                    *members = std::mem::take(members)
                        .into_iter()
                        .map(|(mut key, mut item)| {
                            self.redact_text(&mut key);
                            self.redact(&mut item);
                            (key, item)
                        })
                        .collect();
                } else {
                    members.values_mut().for_each(|item| self.redact(item));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn holds_secret(&self, text: &str) -> bool {
        self.secrets
            .iter()
            .any(|secret| !secret.is_empty() && text.contains(secret.as_str()))
    }

    fn redact_text(&self, text: &mut String) {
        for secret in self.secrets.iter().filter(|secret| !secret.is_empty()) {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), "[redacted]");
            }
        }
    }
}

/// Why a run's variables could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum VariablesError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A variable references a secret provider that could not give its value (the
    /// provider's name and the reason, never a value).
    #[error(transparent)]
    Reference(#[from] crate::ResolveFailure),
}

/// The variables a run sees as `env.NAME`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EnvironmentVariables: Send + Sync {
    /// The variables of `environment`, secrets opened and references resolved.
    async fn load(
        &self,
        workspace: WorkspaceId,
        environment: EnvironmentId,
    ) -> Result<RunEnvironment, VariablesError>;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_run_environment_formatted_for_debugging_shows_names_not_values() {
        let mut variables = Map::new();
        variables.insert("API_TOKEN".to_owned(), json!("tok-s3cr3t"));
        variables.insert("REGION".to_owned(), json!("eu-west-plain"));
        let env = RunEnvironment {
            variables,
            secrets: vec!["tok-s3cr3t".to_owned()],
        };
        let shown = format!("{env:?}");
        assert!(
            shown.contains("API_TOKEN") && shown.contains("REGION"),
            "{shown}"
        );
        assert!(
            !shown.contains("tok-s3cr3t") && !shown.contains("eu-west-plain"),
            "{shown}"
        );
    }

    #[test]
    fn redaction_replaces_secrets_inside_nested_strings_and_keys_only() {
        let env = RunEnvironment {
            variables: Map::new(),
            secrets: vec!["s3cr3t".to_owned(), String::new()],
        };
        let mut value = json!({
            "url": "https://x.test/?token=s3cr3t",
            "list": ["s3cr3t", 7, null],
            "plain": "nothing here",
            "by_key": {"s3cr3t": true, "key-s3cr3t": {"s3cr3t": "s3cr3t"}},
        });
        env.redact(&mut value);
        assert_eq!(
            value,
            json!({
                "url": "https://x.test/?token=[redacted]",
                "list": ["[redacted]", 7, null],
                "plain": "nothing here",
                "by_key": {"[redacted]": true, "key-[redacted]": {"[redacted]": "[redacted]"}},
            })
        );
    }
}
