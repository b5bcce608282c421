//! Domain errors become `ApiError`s here, through the kernel's one vocabulary: each
//! domain converts its error into a [`Failure`] (exhaustively, in its own crate), and a
//! `Failure` becomes an `ApiError` in one exhaustive match.

use fluxolab_kernel::Failure;

use crate::ApiError;

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Invalid(errors) => ApiError::Validation(errors),
            Failure::Unauthenticated(reason) => ApiError::Unauthenticated(reason),
            Failure::Forbidden(permission) => ApiError::Forbidden(permission),
            Failure::NotFound(what) => ApiError::NotFound(what),
            Failure::Conflict(conflict) => ApiError::Conflict(conflict),
            Failure::PlanLimit(reached) => ApiError::PlanLimit(reached),
            Failure::PlanDowngrade(exceeded) => ApiError::PlanDowngrade(exceeded),
            Failure::QuotaExceeded {
                retry_after_seconds,
            } => quota_exceeded(retry_after_seconds),
            Failure::RateLimited {
                retry_after_seconds,
            } => ApiError::RateLimited {
                detail: format!("over the workspace's rate; retry in {retry_after_seconds} s"),
                retry_after_seconds,
            },
            Failure::Unavailable(error) => ApiError::StorageUnavailable(error),
            Failure::Internal(error) => ApiError::Internal(error),
        }
    }
}

/// `429 quota_exceeded` for a run refused by the period's execution quota.
pub(crate) fn quota_exceeded(retry_after_seconds: u64) -> ApiError {
    ApiError::QuotaExceeded {
        detail: "the workspace's executions for this period are used up; upgrade the plan or wait for the next period".to_owned(),
        retry_after_seconds,
    }
}

/// `From<DomainError> for ApiError` through [`Failure`], for each domain error.
macro_rules! through_failure {
    ($($error:ty),+ $(,)?) => {
        $(
            impl From<$error> for ApiError {
                fn from(error: $error) -> Self {
                    Failure::from(error).into()
                }
            }
        )+
    };
}

through_failure!(
    fluxolab_identity::AccountError,
    fluxolab_workspace::WorkspaceError,
    fluxolab_workspace::BillingError,
    fluxolab_workspace::api_keys::ApiKeyError,
    fluxolab_workspace::alerts::AlertError,
    fluxolab_workspace::environments::EnvironmentError,
    fluxolab_workspace::settings::SettingsError,
    fluxolab_workspace::integrations::IntegrationError,
    fluxolab_workspace::secret_providers::ProviderError,
    fluxolab_workspace::log_destinations::DestinationError,
    fluxolab_workspace::ldap::LdapError,
    fluxolab_workspace::ldap::login::LdapLoginError,
    fluxolab_workspace::sso::SsoError,
    fluxolab_credentials::VaultError,
    fluxolab_workflows::WorkflowError,
    fluxolab_workflows::connectors::ConnectorError,
    fluxolab_webhooks::WebhookError,
);
