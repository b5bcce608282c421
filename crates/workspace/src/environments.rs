//! Environments (`development`, `staging`, `production`, created with the workspace):
//! their names, descriptions and variables (plain values, or secrets sealed in the
//! vault and masked on the way out), and a status of what runs in each. Runs read the
//! variables through [`EnvironmentVariables`], secrets opened, cached briefly.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fluxolab_kernel::{
    AuditEvent, AuditLog, CredentialId, EnvironmentId, EnvironmentVariables, ExecutionId,
    ExposeSecret, Failure, Forbidden, OwnedSecrets, Permission, Principal, RunEnvironment,
    SecretRef, SecretResolver, SecretString, StorageError, UnitOfWorkFactory, Uow,
    ValidationErrors, VariablesError, WorkflowId, WorkspaceId,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// The most variables one environment holds.
pub const MAX_VARIABLES: usize = 100;
/// The longest variable value, in characters.
pub const MAX_VALUE_CHARS: usize = 8192;
/// How long a process trusts the variables it loaded for runs.
const VARIABLES_TTL: Duration = Duration::from_secs(5);

/// A variable's value as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredValue {
    Plain(String),
    /// Sealed in the vault: the credential holding it.
    Secret(CredentialId),
    /// A secret in an external provider, resolved at run time only.
    Reference(SecretRef),
}

/// One variable of an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub value: StoredValue,
    pub updated_at: OffsetDateTime,
}

/// An environment with its variables.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    pub id: EnvironmentId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: String,
    /// Runs that name no environment run in this one.
    pub is_default: bool,
    pub variables: Vec<Variable>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A variable as submitted: a plain value, a secret (its value left out keeps the
/// secret stored before), or a reference to a secret provider's secret. Its `Debug`
/// never shows a secret's value.
#[derive(Clone, Default)]
pub struct VariableInput {
    pub name: String,
    pub value: Option<String>,
    pub secret: bool,
    pub secret_ref: Option<SecretRef>,
}

impl std::fmt::Debug for VariableInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = match (&self.value, self.secret) {
            (Some(_), true) => Some("[REDACTED]"),
            (Some(value), false) => Some(value.as_str()),
            (None, _) => None,
        };
        f.debug_struct("VariableInput")
            .field("name", &self.name)
            .field("value", &value)
            .field("secret", &self.secret)
            .field("secret_ref", &self.secret_ref)
            .finish()
    }
}

/// Changes to an environment; `None` leaves a field as it is. `variables` replaces the
/// whole set.
#[derive(Clone, Debug, Default)]
pub struct EnvironmentPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub variables: Option<Vec<VariableInput>>,
}

/// The latest failed execution of an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct LastFailure {
    pub execution_id: ExecutionId,
    pub workflow_id: WorkflowId,
    pub error: Option<String>,
    pub at: OffsetDateTime,
}

/// What runs in an environment, counted now.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentStatus {
    pub environment: Environment,
    /// Workflows with a version active in this environment.
    pub active_workflows: u32,
    /// Executions created in the last 24 hours, by status (every status, zeros too).
    pub executions_24h: BTreeMap<String, u32>,
    pub last_failure: Option<LastFailure>,
}

/// The counts behind an [`EnvironmentStatus`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusCounts {
    pub active_workflows: u32,
    pub executions_by_status: Vec<(String, u32)>,
    pub last_failure: Option<LastFailure>,
}

/// Why an environment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("environment not found")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<EnvironmentError> for Failure {
    fn from(error: EnvironmentError) -> Self {
        match error {
            EnvironmentError::Invalid(errors) => Failure::Invalid(errors),
            EnvironmentError::Forbidden(forbidden) => forbidden.into(),
            EnvironmentError::NotFound => Failure::NotFound("environment"),
            EnvironmentError::Storage(error) => error.into(),
        }
    }
}

/// Environments in storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EnvironmentRepository: Send + Sync {
    /// The workspace's environments, oldest first, with their variables.
    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Environment>, StorageError>;
    /// One environment by id, with its variables.
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: EnvironmentId,
    ) -> Result<Option<Environment>, StorageError>;
    /// Writes name, description and the whole set of variables.
    async fn save(&self, unit: &mut Uow, environment: &Environment) -> Result<(), StorageError>;
    /// Active workflows, executions since `since` by status, and the last failure.
    async fn status(
        &self,
        workspace: WorkspaceId,
        id: EnvironmentId,
        since: OffsetDateTime,
    ) -> Result<StatusCounts, StorageError>;
}

/// What the environment use cases work with.
pub struct EnvironmentPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub environments: Arc<dyn EnvironmentRepository>,
    /// Secret values, sealed in the credentials vault.
    pub secrets: Arc<dyn OwnedSecrets>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn fluxolab_kernel::Clock>,
    /// Resolves variables that reference a secret provider (and checks, on save, that
    /// the provider exists).
    pub references: Arc<dyn SecretResolver>,
}

impl std::fmt::Debug for EnvironmentPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentPorts").finish_non_exhaustive()
    }
}

/// The environment use cases.
pub struct EnvironmentService {
    ports: EnvironmentPorts,
    /// Variables loaded for runs, by environment (secrets opened; references to
    /// resolve on each load, through the providers' own caches).
    loaded: moka::sync::Cache<EnvironmentId, Arc<Loaded>>,
}

impl std::fmt::Debug for EnvironmentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentService").finish_non_exhaustive()
    }
}

/// An environment's variables as loaded: values (vault secrets opened) and the
/// references still to resolve.
#[derive(Clone, Debug, Default)]
struct Loaded {
    run: RunEnvironment,
    references: Vec<(String, SecretRef)>,
}

/// Whether `name` is a valid environment name (`staging`, `qa-2`…).
fn valid_environment_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && name.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Whether `name` is a valid variable name (`API_URL`, `_token`…): `env.NAME` in a
/// template.
fn valid_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl EnvironmentService {
    pub fn new(ports: EnvironmentPorts) -> Self {
        Self {
            ports,
            loaded: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(VARIABLES_TTL)
                .build(),
        }
    }

    #[tracing::instrument(name = "environments.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(&self, principal: &Principal) -> Result<Vec<Environment>, EnvironmentError> {
        principal.require(Permission::SettingsRead)?;
        Ok(self
            .ports
            .environments
            .list(principal.workspace_id())
            .await?)
    }

    /// The environment `reference` names: its id, or its name.
    #[tracing::instrument(name = "environments.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(
        &self,
        principal: &Principal,
        reference: &str,
    ) -> Result<Environment, EnvironmentError> {
        principal.require(Permission::SettingsRead)?;
        let workspace = principal.workspace_id();
        if let Ok(id) = reference.parse::<EnvironmentId>() {
            return self
                .ports
                .environments
                .find(workspace, id)
                .await?
                .ok_or(EnvironmentError::NotFound);
        }
        self.ports
            .environments
            .list(workspace)
            .await?
            .into_iter()
            .find(|environment| environment.name == reference)
            .ok_or(EnvironmentError::NotFound)
    }

    /// Renames, describes, or replaces the variables of an environment. A secret given
    /// a value is sealed anew (the old one is discarded); a secret without a value
    /// keeps the one stored; secrets left out are discarded.
    #[tracing::instrument(name = "environments.update", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn update(
        &self,
        principal: &Principal,
        reference: &str,
        patch: EnvironmentPatch,
    ) -> Result<Environment, EnvironmentError> {
        principal.require(Permission::SettingsManage)?;
        let current = self.get(principal, reference).await?;
        let mut errors = ValidationErrors::new();
        let mut updated = current.clone();
        if let Some(name) = &patch.name {
            let name = name.trim();
            if !valid_environment_name(name) {
                errors.add(
                    "name",
                    "must be 1 to 40 lowercase letters, digits, `-` or `_`, starting with a letter",
                );
            } else if name != current.name
                && self
                    .ports
                    .environments
                    .list(principal.workspace_id())
                    .await?
                    .iter()
                    .any(|other| other.name == name)
            {
                errors.add("name", format!("another environment is called `{name}`"));
            }
            updated.name = name.to_owned();
        }
        if let Some(description) = &patch.description {
            if description.chars().count() > 500 {
                errors.add("description", "must be at most 500 characters");
            }
            description.clone_into(&mut updated.description);
        }
        let now = self.ports.clock.now();
        // Secrets to seal (variable index, value) once the unit is open.
        let mut to_seal: Vec<(usize, SecretString)> = Vec::new();
        if let Some(inputs) = &patch.variables {
            updated.variables =
                Self::check_variables(&current, inputs, now, &mut errors, &mut to_seal);
            self.check_references(principal.workspace_id(), inputs, &mut errors)
                .await?;
        }
        if !errors.is_empty() {
            return Err(EnvironmentError::Invalid(errors));
        }
        let workspace = principal.workspace_id();
        let user = principal.user();
        let mut unit = self.ports.units.begin().await?;
        for (index, secret) in &to_seal {
            let Some(variable) = updated.variables.get_mut(*index) else {
                continue;
            };
            let credential = self
                .ports
                .secrets
                .store(
                    unit.as_mut(),
                    workspace,
                    &format!("Environment {} variable {}", updated.name, variable.name),
                    secret,
                    user,
                )
                .await?;
            variable.value = StoredValue::Secret(credential);
        }
        updated.updated_at = now;
        self.ports
            .environments
            .save(unit.as_mut(), &updated)
            .await?;
        // Sealed values no variable holds any more go (after the rows that held them).
        let kept: HashSet<CredentialId> = updated.variables.iter().filter_map(secret_of).collect();
        for replaced in current.variables.iter().filter_map(secret_of) {
            if !kept.contains(&replaced) {
                self.ports
                    .secrets
                    .discard(unit.as_mut(), workspace, replaced)
                    .await?;
            }
        }
        let names: Vec<&str> = updated.variables.iter().map(|v| v.name.as_str()).collect();
        self.ports
            .audit
            .record_in(
                unit.as_mut(),
                &AuditEvent::by(
                    principal,
                    "environment.updated",
                    ("environment", updated.id.to_string()),
                    // Names only: values (secret or not) stay out of the activity log.
                    json!({
                        "name": updated.name,
                        "renamed_from": (updated.name != current.name).then_some(&current.name),
                        "variables": names,
                    }),
                ),
            )
            .await?;
        unit.commit().await?;
        self.loaded.invalidate(&updated.id);
        Ok(updated)
    }

    /// Every provider a submitted reference names must exist in the workspace.
    async fn check_references(
        &self,
        workspace: WorkspaceId,
        inputs: &[VariableInput],
        errors: &mut ValidationErrors,
    ) -> Result<(), StorageError> {
        for (index, input) in inputs.iter().enumerate() {
            let Some(reference) = &input.secret_ref else {
                continue;
            };
            if !reference.provider.is_empty()
                && !self
                    .ports
                    .references
                    .provider_exists(workspace, &reference.provider)
                    .await?
            {
                errors.add(
                    format!("variables[{index}].secret_ref.provider"),
                    format!(
                        "no secret provider `{}` in this workspace",
                        reference.provider
                    ),
                );
            }
        }
        Ok(())
    }

    /// Validates the submitted variables against the current ones; secrets with a new
    /// value are listed in `to_seal` (their index in the result) for the caller.
    fn check_variables(
        current: &Environment,
        inputs: &[VariableInput],
        now: OffsetDateTime,
        errors: &mut ValidationErrors,
        to_seal: &mut Vec<(usize, SecretString)>,
    ) -> Vec<Variable> {
        if inputs.len() > MAX_VARIABLES {
            errors.add(
                "variables",
                format!("at most {MAX_VARIABLES} variables per environment"),
            );
            return current.variables.clone();
        }
        let mut seen = HashSet::new();
        let mut variables = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            let field = format!("variables[{index}]");
            let name = input.name.trim();
            if !valid_variable_name(name) {
                errors.add(
                    format!("{field}.name"),
                    "must be 1 to 64 letters, digits or `_`, not starting with a digit",
                );
                continue;
            }
            if !seen.insert(name.to_owned()) {
                errors.add(format!("{field}.name"), format!("`{name}` is given twice"));
                continue;
            }
            if input
                .value
                .as_ref()
                .is_some_and(|value| value.chars().count() > MAX_VALUE_CHARS)
            {
                errors.add(
                    format!("{field}.value"),
                    format!("must be at most {MAX_VALUE_CHARS} characters"),
                );
                continue;
            }
            let before = current.variables.iter().find(|v| v.name == name);
            let value = match (&input.secret_ref, &input.value, input.secret) {
                (Some(_), Some(_), _) => {
                    errors.add(
                        format!("{field}.value"),
                        "give either a value or a secret_ref",
                    );
                    continue;
                }
                (Some(reference), None, _) => {
                    if !reference.is_well_formed() {
                        errors.add(
                            format!("{field}.secret_ref"),
                            fluxolab_kernel::secret_store::REF_RULE,
                        );
                        continue;
                    }
                    StoredValue::Reference(reference.clone())
                }
                (None, Some(value), false) => StoredValue::Plain(value.clone()),
                (None, None, false) => {
                    errors.add(format!("{field}.value"), "is required for a plain variable");
                    continue;
                }
                (None, Some(value), true) => {
                    if value.is_empty() {
                        errors.add(format!("{field}.value"), "a secret cannot be empty");
                        continue;
                    }
                    to_seal.push((variables.len(), SecretString::from(value.clone())));
                    // Replaced by the sealed credential before saving.
                    StoredValue::Secret(CredentialId::from_uuid(Uuid::nil()))
                }
                (None, None, true) => match before.map(|v| &v.value) {
                    Some(StoredValue::Secret(credential)) => StoredValue::Secret(*credential),
                    _ => {
                        errors.add(
                            format!("{field}.value"),
                            format!("is required: `{name}` has no secret stored yet"),
                        );
                        continue;
                    }
                },
            };
            let updated_at = match before {
                Some(previous) if previous.value == value => previous.updated_at,
                _ => now,
            };
            variables.push(Variable {
                name: name.to_owned(),
                value,
                updated_at,
            });
        }
        variables
    }

    /// What runs in an environment: active workflows, executions of the last 24 hours
    /// by status, the last failure, and its variables.
    #[tracing::instrument(name = "environments.status", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn status(
        &self,
        principal: &Principal,
        reference: &str,
    ) -> Result<EnvironmentStatus, EnvironmentError> {
        let environment = self.get(principal, reference).await?;
        let since = self.ports.clock.now() - time::Duration::hours(24);
        let counts = self
            .ports
            .environments
            .status(principal.workspace_id(), environment.id, since)
            .await?;
        let mut executions_24h: BTreeMap<String, u32> =
            ["queued", "running", "succeeded", "failed", "cancelled"]
                .into_iter()
                .map(|status| (status.to_owned(), 0))
                .collect();
        for (status, count) in counts.executions_by_status {
            executions_24h.insert(status, count);
        }
        Ok(EnvironmentStatus {
            environment,
            active_workflows: counts.active_workflows,
            executions_24h,
            last_failure: counts.last_failure,
        })
    }

    async fn open_all(
        &self,
        workspace: WorkspaceId,
        environment: EnvironmentId,
    ) -> Result<Loaded, StorageError> {
        let Some(found) = self.ports.environments.find(workspace, environment).await? else {
            return Ok(Loaded::default());
        };
        let mut loaded = Loaded::default();
        for variable in found.variables {
            let value = match variable.value {
                StoredValue::Plain(value) => value,
                StoredValue::Secret(credential) => {
                    let secret = self.ports.secrets.open(workspace, credential).await?;
                    let secret = secret.expose_secret().to_owned();
                    loaded.run.secrets.push(secret.clone());
                    secret
                }
                StoredValue::Reference(reference) => {
                    loaded.references.push((variable.name, reference));
                    continue;
                }
            };
            loaded
                .run
                .variables
                .insert(variable.name, Value::String(value));
        }
        Ok(loaded)
    }
}

fn secret_of(variable: &Variable) -> Option<CredentialId> {
    match variable.value {
        StoredValue::Secret(credential) => Some(credential),
        StoredValue::Plain(_) | StoredValue::Reference(_) => None,
    }
}

#[async_trait]
impl EnvironmentVariables for EnvironmentService {
    async fn load(
        &self,
        workspace: WorkspaceId,
        environment: EnvironmentId,
    ) -> Result<RunEnvironment, VariablesError> {
        let loaded = match self.loaded.get(&environment) {
            Some(loaded) => loaded,
            None => {
                let loaded = Arc::new(self.open_all(workspace, environment).await?);
                self.loaded.insert(environment, loaded.clone());
                loaded
            }
        };
        let mut run = loaded.run.clone();
        for (name, reference) in &loaded.references {
            // A provider's failure names the provider and the reason, never a value.
            let value = self.ports.references.resolve(workspace, reference).await?;
            let value = value.expose_secret().to_owned();
            run.secrets.push(value.clone());
            run.variables.insert(name.clone(), Value::String(value));
        }
        Ok(run)
    }
}

#[cfg(test)]
#[path = "environments_tests.rs"]
mod tests;
