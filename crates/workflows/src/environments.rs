//! Resolving the environment a request names, for activation and runs.

use fluxolab_kernel::{EnvironmentDirectory, EnvironmentRef, Principal, ValidationErrors};

use crate::WorkflowError;

fn invalid(field: &str, message: String) -> WorkflowError {
    WorkflowError::Invalid(ValidationErrors::single(field, message))
}

/// The environment `reference` (a name or an id) names in the principal's workspace;
/// `None` names the workspace's default one.
pub(crate) async fn resolve(
    directory: &dyn EnvironmentDirectory,
    principal: &Principal,
    field: &str,
    reference: Option<&str>,
) -> Result<EnvironmentRef, WorkflowError> {
    directory
        .resolve(principal.workspace_id(), reference)
        .await?
        .ok_or_else(|| {
            invalid(
                field,
                fluxolab_kernel::environment::unknown_environment(reference),
            )
        })
}

/// Like [`resolve`], for something the principal does in the environment (run,
/// activate): an API key bound to an environment acts there by default, and only there.
pub(crate) async fn resolve_acting(
    directory: &dyn EnvironmentDirectory,
    principal: &Principal,
    field: &str,
    reference: Option<&str>,
) -> Result<EnvironmentRef, WorkflowError> {
    let bound = principal.environment();
    let found = resolve(directory, principal, field, reference.or(bound)).await?;
    // A key holds its environment's id, so a renamed environment stays its own.
    match bound {
        Some(bound) if found.id.to_string() != bound => {
            let bound = resolve(directory, principal, field, Some(bound)).await?;
            Err(invalid(
                field,
                format!("this API key is bound to the `{}` environment", bound.name),
            ))
        }
        _ => Ok(found),
    }
}
