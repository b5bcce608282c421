//! Domain errors become `ApiError`s here.

use fluxolab_identity::AccountError;
use fluxolab_workspace::WorkspaceError;

use crate::ApiError;

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid(errors) => ApiError::Validation(errors),
            AccountError::EmailTaken => ApiError::Conflict {
                code: "email_taken",
                detail: "an account with this e-mail address already exists".to_owned(),
            },
            AccountError::InvalidCredentials => ApiError::Unauthenticated {
                code: "invalid_credentials",
                detail: "the e-mail address or password is wrong",
            },
            AccountError::InvalidRefreshToken => ApiError::Unauthenticated {
                code: "invalid_refresh_token",
                detail: "the refresh token is invalid, expired or revoked",
            },
            AccountError::WrongPassword => ApiError::invalid("current_password", "is wrong"),
            AccountError::UnknownUser => ApiError::Unauthorized,
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<WorkspaceError> for ApiError {
    fn from(error: WorkspaceError) -> Self {
        match error {
            WorkspaceError::Invalid(errors) => ApiError::Validation(errors),
            WorkspaceError::Forbidden(forbidden) => ApiError::Forbidden(forbidden.0),
            WorkspaceError::NotFound(what) => ApiError::NotFound(what),
            WorkspaceError::Conflict(detail) => ApiError::Conflict {
                code: "conflict",
                detail: detail.to_owned(),
            },
            WorkspaceError::PlanLimit(reached) => reached.into(),
            WorkspaceError::Storage(error) => ApiError::Internal(Box::new(error)),
        }
    }
}

impl From<fluxolab_kernel::StorageError> for ApiError {
    fn from(error: fluxolab_kernel::StorageError) -> Self {
        ApiError::Internal(Box::new(error))
    }
}
