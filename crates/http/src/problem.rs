//! Errors become HTTP here, and only here: RFC 9457 `application/problem+json` with a
//! stable `code` per variant.
//!
//! Which variant to use:
//! - bad input that a client can fix → `InvalidJson`, `InvalidQuery`, `InvalidPath`,
//!   `Validation` (field-level errors), `PayloadTooLarge`;
//! - the service cannot answer now → `NotReady` (503, reason shown);
//! - anything else that went wrong → `Internal`: the body is opaque (`internal_error` and
//!   the request id) and the cause goes to the log.
//!
//! The `observe` middleware adds the request id to every problem and turns any error
//! response that is not yet a problem (actix's own 404/405/413…) into one.

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use fluxolab_kernel::ValidationErrors;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; stable per `code`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A stable machine-readable code, e.g. `invalid_json`.
    pub code: String,
    /// The request id (also in the `x-request-id` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level errors, for `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<ProblemFieldError>,
    /// The limit that was hit, for `plan_limit`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub limit: Option<PlanLimitDetail>,
    /// Every limit a refused plan change would break, for `plan_limit` on a downgrade.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub limits: Vec<PlanLimitDetail>,
}

/// Which plan limit a `plan_limit` problem is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanLimitDetail {
    /// The limit's name, e.g. `max_members`.
    pub name: String,
    /// What the plan allows.
    pub value: u32,
    /// What the workspace has now.
    pub current: u32,
}

/// One invalid field in a `validation_failed` problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProblemFieldError {
    pub field: String,
    pub message: String,
}

impl Problem {
    /// A problem of `status` with `code`; the title is the status's reason phrase.
    pub fn new(status: StatusCode, code: &str, detail: Option<String>) -> Self {
        Self {
            problem_type: format!("https://fluxolab.dev/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            request_id: None,
            errors: Vec::new(),
            limit: None,
            limits: Vec::new(),
        }
    }

    /// The generic problem for an error status that carried no problem body.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no resource at this path"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this path does not accept that method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is larger than allowed",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "the request body has an unsupported content type",
            ),
            StatusCode::URI_TOO_LONG => ("uri_too_long", "the request URI is too long"),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                ("headers_too_large", "the request headers are too large")
            }
            status if status.is_server_error() => (
                "internal_error",
                "the server failed; quote the request id when reporting it",
            ),
            _ => ("bad_request", "the request could not be processed"),
        };
        Self::new(status, code, Some(detail.to_owned()))
    }

    /// The response carrying this problem.
    pub fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .json(self)
    }
}

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
    #[error("a valid bearer access token is required")]
    Unauthorized,
    #[error("{detail}")]
    Unauthenticated {
        code: &'static str,
        detail: &'static str,
    },
    #[error("missing permission `{0}`")]
    Forbidden(fluxolab_kernel::Permission),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("plan limit reached: {limit} allows {value}, the workspace has {current}")]
    PlanLimit {
        limit: &'static str,
        value: u32,
        current: u32,
    },
    #[error("not ready: {0}")]
    NotReady(String),
    /// Back-pressure: `quota_exceeded` (the period's quota) or `rate_limited` (a
    /// per-minute rate), with the seconds to wait.
    #[error("{detail}")]
    TooManyRequests {
        code: &'static str,
        detail: String,
        retry_after_seconds: u64,
    },
    /// A plan change refused because current usage exceeds these limits of the plan.
    #[error("current usage exceeds the plan's limits: {}", .0.iter().map(|limit| format!("{} allows {}, the workspace has {}", limit.name, limit.value, limit.current)).collect::<Vec<_>>().join("; "))]
    PlanDowngrade(Vec<PlanLimitDetail>),
    /// Any other refusal with its own status and stable code (webhook intake: 403
    /// handshake, 410 disabled, 401 signatures, 503 storage).
    #[error("{detail}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<fluxolab_kernel::PlanLimitReached> for ApiError {
    fn from(reached: fluxolab_kernel::PlanLimitReached) -> Self {
        ApiError::PlanLimit {
            limit: reached.name,
            value: reached.value,
            current: reached.current,
        }
    }
}

impl From<&fluxolab_kernel::PlanLimitReached> for PlanLimitDetail {
    fn from(reached: &fluxolab_kernel::PlanLimitReached) -> Self {
        Self {
            name: reached.name.to_owned(),
            value: reached.value,
            current: reached.current,
        }
    }
}

impl ApiError {
    /// A `validation_failed` error about one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(ValidationErrors::single(field, message))
    }

    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::NotJson => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::InvalidPath(_) => "invalid_path",
            ApiError::Payload(_) => "invalid_body",
            ApiError::Validation(_) => "validation_failed",
            ApiError::RouteNotFound | ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Unauthenticated { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Refused { code, .. }
            | ApiError::TooManyRequests { code, .. } => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PlanLimit { .. } | ApiError::PlanDowngrade(_) => "plan_limit",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Internal(_) => "internal_error",
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
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::InvalidQuery(_)
            | ApiError::InvalidPath(_)
            | ApiError::Payload(_) => StatusCode::BAD_REQUEST,
            ApiError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RouteNotFound | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized | ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict { .. } | ApiError::PlanLimit { .. } | ApiError::PlanDowngrade(_) => {
                StatusCode::CONFLICT
            }
            ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Refused { status, .. } => *status,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut problem = Problem::new(self.status_code(), self.code(), self.detail());
        if let ApiError::PlanLimit {
            limit,
            value,
            current,
        } = self
        {
            problem.limit = Some(PlanLimitDetail {
                name: (*limit).to_owned(),
                value: *value,
                current: *current,
            });
        }
        if let ApiError::PlanDowngrade(limits) = self {
            problem.limits.clone_from(limits);
        }
        if let ApiError::Validation(errors) = self {
            problem.errors = errors
                .errors()
                .iter()
                .map(|error| ProblemFieldError {
                    field: error.field.clone(),
                    message: error.message.clone(),
                })
                .collect();
        }
        let mut response = problem.into_response();
        if matches!(
            self,
            ApiError::Unauthorized | ApiError::Unauthenticated { .. }
        ) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::MethodNotAllowed { allow } = self
            && let Ok(value) = HeaderValue::from_str(&allow.join(", "))
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        if let ApiError::TooManyRequests {
            retry_after_seconds,
            ..
        } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn body_of(
        error: &ApiError,
    ) -> Result<(StatusCode, String, Problem), Box<dyn std::error::Error>> {
        let response = error.error_response();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response
            .into_body()
            .try_into_bytes()
            .map_err(|_| "streaming body")?;
        Ok((status, content_type, serde_json::from_slice(&bytes)?))
    }

    #[test]
    fn every_variant_maps_to_its_status_and_code() -> Result<(), Box<dyn std::error::Error>> {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::NotJson, 415, "unsupported_media_type"),
            (
                ApiError::PayloadTooLarge { limit: 10 },
                413,
                "payload_too_large",
            ),
            (
                ApiError::Validation(ValidationErrors::new()),
                422,
                "validation_failed",
            ),
            (ApiError::RouteNotFound, 404, "not_found"),
            (
                ApiError::MethodNotAllowed {
                    allow: vec!["GET", "POST"],
                },
                405,
                "method_not_allowed",
            ),
            (ApiError::NotReady("db down".into()), 503, "not_ready"),
            (ApiError::Internal("boom".into()), 500, "internal_error"),
        ];
        for (error, status, code) in cases {
            let (actual_status, content_type, problem) = body_of(&error)?;
            assert_eq!(actual_status.as_u16(), status, "{error:?}");
            assert_eq!(content_type, PROBLEM_JSON);
            assert_eq!(problem.code, code);
            assert_eq!(problem.status, status);
            assert_eq!(
                problem.problem_type,
                format!("https://fluxolab.dev/problems/{code}")
            );
        }
        Ok(())
    }

    #[test]
    fn internal_errors_never_show_their_cause() -> Result<(), Box<dyn std::error::Error>> {
        let (_, _, problem) = body_of(&ApiError::Internal("password=hunter2".into()))?;
        assert_eq!(problem.detail, None);
        assert!(!serde_json::to_string(&problem)?.contains("hunter2"));
        Ok(())
    }

    #[test]
    fn validation_problems_name_each_field() -> Result<(), Box<dyn std::error::Error>> {
        let mut errors = ValidationErrors::new();
        errors.add("email", "must look like name@example.com");
        let (_, _, problem) = body_of(&ApiError::Validation(errors))?;
        assert_eq!(
            problem.errors,
            vec![ProblemFieldError {
                field: "email".into(),
                message: "must look like name@example.com".into()
            }]
        );
        Ok(())
    }

    #[test]
    fn a_size_overflow_in_json_is_a_413_naming_the_limit() {
        let error = ApiError::from_json(
            JsonPayloadError::OverflowKnownLength {
                length: 99,
                limit: 10,
            },
            10,
        );
        assert_eq!(error.status_code(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            error.to_string(),
            "request body is larger than the 10-byte limit"
        );
    }
}
