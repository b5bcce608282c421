//! Errors become HTTP here, and only here: every `ApiError` has one [`ProblemCode`], and
//! the code fixes the status.
//!
//! Which variant to use:
//! - bad input that a client can fix → `InvalidJson`, `InvalidQuery`, `InvalidPath`,
//!   `Validation` (field-level errors), `PayloadTooLarge`;
//! - a use case's refusal → the domain error, which converts through
//!   [`fluxolab_kernel::Failure`] (see `errors.rs`);
//! - the service cannot answer now → `NotReady` or `StorageUnavailable` (503);
//! - anything else that went wrong → `Internal`: the body is opaque (`internal_error` and
//!   the request id) and the cause goes to the log.
//!
//! The `observe` middleware adds the request id to every problem and turns any error
//! response that is not yet a problem (actix's own 404/413…) into one.

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use fluxolab_kernel::{
    Conflict, Permission, PlanLimitReached, StorageError, Unauthenticated, ValidationErrors,
};

use crate::problem::{PlanLimitDetail, Problem, ProblemCode, ProblemFieldError};

/// Seconds a client should wait after a 503 before retrying.
const UNAVAILABLE_RETRY_SECONDS: &str = "5";

/// Every error an HTTP handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is not valid JSON for this endpoint: {0}")]
    InvalidJson(#[source] JsonPayloadError),
    #[error("request body must be sent as application/json")]
    NotJson,
    #[error("request body is larger than the {limit}-byte limit")]
    PayloadTooLarge { limit: usize },
    #[error("query string is not valid: {0}")]
    InvalidQuery(#[source] QueryPayloadError),
    #[error("path is not valid: {0}")]
    InvalidPath(#[source] PathError),
    #[error("request body could not be read: {0}")]
    Payload(#[source] PayloadError),
    #[error("the request has invalid fields: {0}")]
    Validation(ValidationErrors),
    #[error("no route matches this path")]
    RouteNotFound,
    /// The path exists, but not with this method; `allow` lists the methods it takes.
    #[error("this path takes {}, not this method", .allow.join(", "))]
    MethodNotAllowed { allow: Vec<&'static str> },
    #[error("{}", .0.message())]
    Unauthenticated(Unauthenticated),
    #[error("missing permission `{0}`")]
    Forbidden(Permission),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Conflict(Conflict),
    #[error(transparent)]
    PlanLimit(PlanLimitReached),
    /// A plan change refused because current usage exceeds these limits of the plan.
    #[error("current usage exceeds the plan's limits: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    PlanDowngrade(Vec<PlanLimitReached>),
    /// The period's execution quota is used up.
    #[error("{detail}")]
    QuotaExceeded {
        detail: String,
        retry_after_seconds: u64,
    },
    /// Over a per-minute rate.
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after_seconds: u64,
    },
    #[error("not ready: {0}")]
    NotReady(String),
    /// The database cannot be reached now (the cause goes to the log).
    #[error("storage is unavailable; retry later")]
    StorageUnavailable(#[source] StorageError),
    /// A protocol refusal of the webhook intake (handshake, signature, disabled, a
    /// responding run that did not answer); `code` fixes its status.
    #[error("{detail}")]
    Refused { code: ProblemCode, detail: String },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<PlanLimitReached> for ApiError {
    fn from(reached: PlanLimitReached) -> Self {
        ApiError::PlanLimit(reached)
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        fluxolab_kernel::Failure::from(error).into()
    }
}

impl ApiError {
    /// A `validation_failed` error about one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(ValidationErrors::single(field, message))
    }

    /// No valid bearer token.
    pub const fn unauthorized() -> Self {
        ApiError::Unauthenticated(Unauthenticated::TokenRequired)
    }

    /// The stable code of this error.
    pub fn code(&self) -> ProblemCode {
        match self {
            ApiError::InvalidJson(_) => ProblemCode::InvalidJson,
            ApiError::NotJson => ProblemCode::UnsupportedMediaType,
            ApiError::PayloadTooLarge { .. } => ProblemCode::PayloadTooLarge,
            ApiError::InvalidQuery(_) => ProblemCode::InvalidQuery,
            ApiError::InvalidPath(_) => ProblemCode::InvalidPath,
            ApiError::Payload(_) => ProblemCode::InvalidBody,
            ApiError::Validation(_) => ProblemCode::ValidationFailed,
            ApiError::RouteNotFound | ApiError::NotFound(_) => ProblemCode::NotFound,
            ApiError::MethodNotAllowed { .. } => ProblemCode::MethodNotAllowed,
            ApiError::Unauthenticated(reason) => ProblemCode::Unauthenticated(*reason),
            ApiError::Forbidden(_) => ProblemCode::Forbidden,
            ApiError::Conflict(conflict) => ProblemCode::Conflict(conflict.code),
            ApiError::PlanLimit(_) | ApiError::PlanDowngrade(_) => ProblemCode::PlanLimit,
            ApiError::QuotaExceeded { .. } => ProblemCode::QuotaExceeded,
            ApiError::RateLimited { .. } => ProblemCode::RateLimited,
            ApiError::NotReady(_) => ProblemCode::NotReady,
            ApiError::StorageUnavailable(_) => ProblemCode::StorageUnavailable,
            ApiError::Refused { code, .. } => *code,
            ApiError::Internal(_) => ProblemCode::InternalError,
        }
    }

    /// Maps actix's JSON extractor errors, keeping the size limit when it is the cause.
    pub fn from_json(error: JsonPayloadError, limit: usize) -> Self {
        match error {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ApiError::PayloadTooLarge { limit }
            }
            JsonPayloadError::ContentType => ApiError::NotJson,
            JsonPayloadError::Payload(PayloadError::Overflow) => {
                ApiError::PayloadTooLarge { limit }
            }
            other => ApiError::InvalidJson(other),
        }
    }

    /// Maps actix's raw-payload errors.
    pub fn from_payload(error: PayloadError, limit: usize) -> Self {
        match error {
            PayloadError::Overflow => ApiError::PayloadTooLarge { limit },
            other => ApiError::Payload(other),
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            // The cause of an internal error is logged, never shown.
            ApiError::Internal(_) => None,
            ApiError::InvalidJson(JsonPayloadError::Deserialize(error)) => Some(format!(
                "request body is not valid JSON for this endpoint: {error}"
            )),
            other => Some(other.to_string()),
        }
    }

    fn retry_after(&self) -> Option<HeaderValue> {
        match self {
            ApiError::QuotaExceeded {
                retry_after_seconds,
                ..
            }
            | ApiError::RateLimited {
                retry_after_seconds,
                ..
            } => HeaderValue::from_str(&retry_after_seconds.to_string()).ok(),
            _ if self.code().status() == StatusCode::SERVICE_UNAVAILABLE => {
                Some(HeaderValue::from_static(UNAVAILABLE_RETRY_SECONDS))
            }
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut problem = Problem::new(self.code(), self.detail());
        match self {
            ApiError::PlanLimit(reached) => problem.limit = Some(reached.into()),
            ApiError::PlanDowngrade(limits) => {
                problem.limits = limits.iter().map(PlanLimitDetail::from).collect();
            }
            ApiError::Validation(errors) => {
                problem.errors = errors
                    .errors()
                    .iter()
                    .map(|error| ProblemFieldError {
                        field: error.field.clone(),
                        message: error.message.clone(),
                    })
                    .collect();
            }
            _ => {}
        }
        let mut response = problem.into_response();
        let headers = response.headers_mut();
        if matches!(self, ApiError::Unauthenticated(_)) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::MethodNotAllowed { allow } = self
            && let Ok(value) = HeaderValue::from_str(&allow.join(", "))
        {
            headers.insert(header::ALLOW, value);
        }
        if let Some(value) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
#[path = "api_error_tests.rs"]
mod tests;
