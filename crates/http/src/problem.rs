//! The problem document (RFC 9457 `application/problem+json`) and the one list of problem
//! codes, each with its fixed status and type URL. docs/api.md lists them all; a test
//! keeps the two in step.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use fluxolab_kernel::{ConflictCode, Unauthenticated};
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

impl From<&fluxolab_kernel::PlanLimitReached> for PlanLimitDetail {
    fn from(reached: &fluxolab_kernel::PlanLimitReached) -> Self {
        Self {
            name: reached.name.to_owned(),
            value: reached.value,
            current: reached.current,
        }
    }
}

/// One invalid field in a `validation_failed` problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProblemFieldError {
    pub field: String,
    pub message: String,
}

/// Every problem `code` FluxoLab answers with. The status belongs to the code: no caller
/// picks one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemCode {
    /// A request the server could not process for another client-side reason.
    BadRequest,
    InvalidJson,
    InvalidQuery,
    InvalidPath,
    /// The body could not be read.
    InvalidBody,
    UnsupportedMediaType,
    PayloadTooLarge,
    UriTooLong,
    HeadersTooLarge,
    ValidationFailed,
    NotFound,
    MethodNotAllowed,
    /// No principal: each reason is its own code.
    Unauthenticated(Unauthenticated),
    /// A webhook delivery without the provider's signature.
    MissingSignature,
    /// A webhook delivery whose signature does not match.
    BadSignature,
    /// A Standard Webhooks delivery whose timestamp is more than five minutes off.
    StaleTimestamp,
    Forbidden,
    /// The workspace enforces SSO and the token comes from a password sign-in.
    SsoRequired,
    /// A single sign-on was refused (bad state or nonce, domain, unverified e-mail…).
    SsoLoginRefused,
    /// An SSO ticket that is unknown, used or expired.
    InvalidSsoTicket,
    /// A provider's verification handshake with a wrong token.
    HandshakeRefused,
    WebhookDisabled,
    /// The state does not allow it: each cause is its own code.
    Conflict(ConflictCode),
    PlanLimit,
    QuotaExceeded,
    RateLimited,
    /// A responding webhook's run ended without answering.
    NoResponse,
    /// A responding webhook's run did not answer in time.
    ResponseTimeout,
    NotReady,
    StorageUnavailable,
    InternalError,
}

impl ProblemCode {
    /// Every code, in the order docs/api.md lists them.
    pub fn all() -> Vec<ProblemCode> {
        let mut codes = vec![
            ProblemCode::BadRequest,
            ProblemCode::InvalidJson,
            ProblemCode::InvalidQuery,
            ProblemCode::InvalidPath,
            ProblemCode::InvalidBody,
            ProblemCode::UnsupportedMediaType,
            ProblemCode::PayloadTooLarge,
            ProblemCode::UriTooLong,
            ProblemCode::HeadersTooLarge,
            ProblemCode::ValidationFailed,
            ProblemCode::NotFound,
            ProblemCode::MethodNotAllowed,
        ];
        codes.extend(Unauthenticated::ALL.map(ProblemCode::Unauthenticated));
        codes.extend([
            ProblemCode::MissingSignature,
            ProblemCode::BadSignature,
            ProblemCode::StaleTimestamp,
            ProblemCode::Forbidden,
            ProblemCode::SsoRequired,
            ProblemCode::SsoLoginRefused,
            ProblemCode::InvalidSsoTicket,
            ProblemCode::HandshakeRefused,
            ProblemCode::WebhookDisabled,
        ]);
        codes.extend(ConflictCode::ALL.map(ProblemCode::Conflict));
        codes.extend([
            ProblemCode::PlanLimit,
            ProblemCode::QuotaExceeded,
            ProblemCode::RateLimited,
            ProblemCode::NoResponse,
            ProblemCode::ResponseTimeout,
            ProblemCode::NotReady,
            ProblemCode::StorageUnavailable,
            ProblemCode::InternalError,
        ]);
        codes
    }

    /// The code as clients see it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProblemCode::BadRequest => "bad_request",
            ProblemCode::InvalidJson => "invalid_json",
            ProblemCode::InvalidQuery => "invalid_query",
            ProblemCode::InvalidPath => "invalid_path",
            ProblemCode::InvalidBody => "invalid_body",
            ProblemCode::UnsupportedMediaType => "unsupported_media_type",
            ProblemCode::PayloadTooLarge => "payload_too_large",
            ProblemCode::UriTooLong => "uri_too_long",
            ProblemCode::HeadersTooLarge => "headers_too_large",
            ProblemCode::ValidationFailed => "validation_failed",
            ProblemCode::NotFound => "not_found",
            ProblemCode::MethodNotAllowed => "method_not_allowed",
            ProblemCode::Unauthenticated(reason) => match reason {
                Unauthenticated::TokenRequired => "unauthorized",
                Unauthenticated::InvalidCredentials => "invalid_credentials",
                Unauthenticated::InvalidRefreshToken => "invalid_refresh_token",
                Unauthenticated::UserTokenRequired => "user_token_required",
            },
            ProblemCode::MissingSignature => "missing_signature",
            ProblemCode::BadSignature => "bad_signature",
            ProblemCode::StaleTimestamp => "stale_timestamp",
            ProblemCode::Forbidden => "forbidden",
            ProblemCode::SsoRequired => "sso_required",
            ProblemCode::SsoLoginRefused => "sso_login_refused",
            ProblemCode::InvalidSsoTicket => "invalid_sso_ticket",
            ProblemCode::HandshakeRefused => "handshake_refused",
            ProblemCode::WebhookDisabled => "webhook_disabled",
            ProblemCode::Conflict(cause) => cause.as_str(),
            ProblemCode::PlanLimit => "plan_limit",
            ProblemCode::QuotaExceeded => "quota_exceeded",
            ProblemCode::RateLimited => "rate_limited",
            ProblemCode::NoResponse => "no_response",
            ProblemCode::ResponseTimeout => "response_timeout",
            ProblemCode::NotReady => "not_ready",
            ProblemCode::StorageUnavailable => "storage_unavailable",
            ProblemCode::InternalError => "internal_error",
        }
    }

    /// The status every problem of this code has.
    pub const fn status(self) -> StatusCode {
        match self {
            ProblemCode::BadRequest
            | ProblemCode::InvalidJson
            | ProblemCode::InvalidQuery
            | ProblemCode::InvalidPath
            | ProblemCode::InvalidBody => StatusCode::BAD_REQUEST,
            ProblemCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemCode::UriTooLong => StatusCode::URI_TOO_LONG,
            ProblemCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProblemCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::NotFound => StatusCode::NOT_FOUND,
            ProblemCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemCode::Unauthenticated(_)
            | ProblemCode::MissingSignature
            | ProblemCode::BadSignature
            | ProblemCode::StaleTimestamp
            | ProblemCode::InvalidSsoTicket => StatusCode::UNAUTHORIZED,
            ProblemCode::Forbidden
            | ProblemCode::SsoRequired
            | ProblemCode::SsoLoginRefused
            | ProblemCode::HandshakeRefused => StatusCode::FORBIDDEN,
            ProblemCode::WebhookDisabled => StatusCode::GONE,
            ProblemCode::Conflict(_) | ProblemCode::PlanLimit => StatusCode::CONFLICT,
            ProblemCode::QuotaExceeded | ProblemCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ProblemCode::NoResponse => StatusCode::BAD_GATEWAY,
            ProblemCode::ResponseTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProblemCode::NotReady | ProblemCode::StorageUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProblemCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type URI of this code.
    pub fn type_url(self) -> String {
        format!("https://fluxolab.dev/problems/{}", self.as_str())
    }

    /// The code of a generic problem for an error status that carried no body (actix's
    /// own 404, 413, …).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => ProblemCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ProblemCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ProblemCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemCode::UnsupportedMediaType,
            StatusCode::URI_TOO_LONG => ProblemCode::UriTooLong,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ProblemCode::HeadersTooLarge,
            StatusCode::SERVICE_UNAVAILABLE => ProblemCode::NotReady,
            status if status.is_server_error() => ProblemCode::InternalError,
            _ => ProblemCode::BadRequest,
        }
    }

    fn generic_detail(self) -> &'static str {
        match self {
            ProblemCode::NotFound => "no resource at this path",
            ProblemCode::MethodNotAllowed => "this path does not accept that method",
            ProblemCode::PayloadTooLarge => "the request body is larger than allowed",
            ProblemCode::UnsupportedMediaType => "the request body has an unsupported content type",
            ProblemCode::UriTooLong => "the request URI is too long",
            ProblemCode::HeadersTooLarge => "the request headers are too large",
            ProblemCode::NotReady => "the service cannot answer now; retry later",
            ProblemCode::InternalError => {
                "the server failed; quote the request id when reporting it"
            }
            _ => "the request could not be processed",
        }
    }
}

impl Problem {
    /// A problem of `code` (and its status); the title is the status's reason phrase.
    pub fn new(code: ProblemCode, detail: Option<String>) -> Self {
        let status = code.status();
        Self {
            problem_type: code.type_url(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.as_str().to_owned(),
            request_id: None,
            errors: Vec::new(),
            limit: None,
            limits: Vec::new(),
        }
    }

    /// The generic problem for an error status that carried no problem body. The status
    /// is kept even where the closest code has another (a 408 stays a 408).
    pub fn for_status(status: StatusCode) -> Self {
        let code = ProblemCode::for_status(status);
        let mut problem = Self::new(code, Some(code.generic_detail().to_owned()));
        problem.status = status.as_u16();
        problem.title = status.canonical_reason().unwrap_or("Error").to_owned();
        problem
    }

    /// The response carrying this problem.
    pub fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .json(self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_distinct_and_an_error_status() {
        let codes = ProblemCode::all();
        let names: HashSet<_> = codes.iter().map(|code| code.as_str()).collect();
        assert_eq!(names.len(), codes.len(), "two codes share a name");
        for code in codes {
            let status = code.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code:?}"
            );
            let problem = Problem::new(code, None);
            assert_eq!(problem.status, status.as_u16());
            assert_eq!(
                problem.problem_type,
                format!("https://fluxolab.dev/problems/{}", code.as_str())
            );
        }
    }

    #[test]
    fn docs_list_every_code_with_its_status() -> Result<(), std::io::Error> {
        let api_md =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))?;
        for code in ProblemCode::all() {
            let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
            assert!(
                api_md.contains(&row),
                "docs/api.md has no row starting `{row}`"
            );
        }
        Ok(())
    }

    #[test]
    fn a_bodiless_status_keeps_its_status_under_the_closest_code() {
        let problem = Problem::for_status(StatusCode::REQUEST_TIMEOUT);
        assert_eq!(problem.status, 408);
        assert_eq!(problem.code, "bad_request");
        assert_eq!(
            Problem::for_status(StatusCode::METHOD_NOT_ALLOWED).code,
            "method_not_allowed"
        );
    }
}
