use std::collections::HashSet;

use actix_web::body::MessageBody;
use fluxolab_kernel::{ConflictCode, Failure, StorageError};

use super::*;
use crate::problem::PROBLEM_JSON;

fn body_of(error: &ApiError) -> Result<(StatusCode, String, Problem), Box<dyn std::error::Error>> {
    let response = error.error_response();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .ok_or("no content type")?
        .to_owned();
    let bytes = response
        .into_body()
        .try_into_bytes()
        .map_err(|_| "streaming body")?;
    Ok((status, content_type, serde_json::from_slice(&bytes)?))
}

fn reached() -> PlanLimitReached {
    PlanLimitReached {
        name: "max_workflows",
        value: 5,
        current: 5,
    }
}

/// One error of every variant a handler can return (request-shape errors, intake
/// refusals) and of every failure a use case can report.
fn one_of_each() -> Vec<ApiError> {
    let mut errors = vec![
        ApiError::NotJson,
        ApiError::PayloadTooLarge { limit: 10 },
        ApiError::RouteNotFound,
        ApiError::MethodNotAllowed {
            allow: vec!["GET", "POST"],
        },
        ApiError::NotReady("db down".into()),
        ApiError::Refused {
            code: ProblemCode::WebhookDisabled,
            detail: "this webhook is disabled".into(),
        },
        ApiError::Refused {
            code: ProblemCode::MissingSignature,
            detail: "no signature".into(),
        },
    ];
    let failures = vec![
        Failure::Invalid(ValidationErrors::single("name", "is required")),
        Failure::Forbidden(Permission::WorkflowsWrite),
        Failure::NotFound("workflow"),
        Failure::PlanLimit(reached()),
        Failure::PlanDowngrade(vec![reached()]),
        Failure::QuotaExceeded {
            retry_after_seconds: 60,
        },
        Failure::RateLimited {
            retry_after_seconds: 7,
        },
        Failure::Unavailable(StorageError::unavailable(std::fmt::Error)),
        Failure::Internal("boom".into()),
    ];
    errors.extend(failures.into_iter().map(ApiError::from));
    errors.extend(
        Unauthenticated::ALL
            .into_iter()
            .map(|reason| ApiError::from(Failure::Unauthenticated(reason))),
    );
    errors.extend(
        ConflictCode::ALL
            .into_iter()
            .map(|code| ApiError::from(Failure::Conflict(Conflict::new(code, "in the way")))),
    );
    errors
}

#[test]
fn every_error_answers_its_codes_status_type_and_media_type()
-> Result<(), Box<dyn std::error::Error>> {
    let mut seen = HashSet::new();
    for error in one_of_each() {
        let code = error.code();
        let (status, content_type, problem) = body_of(&error)?;
        assert_eq!(status, code.status(), "{error:?}");
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(problem.code, code.as_str());
        assert_eq!(problem.status, status.as_u16());
        assert_eq!(problem.problem_type, code.type_url());
        seen.insert(code);
    }
    for reason in Unauthenticated::ALL {
        assert!(seen.contains(&ProblemCode::Unauthenticated(reason)));
    }
    for cause in ConflictCode::ALL {
        assert!(seen.contains(&ProblemCode::Conflict(cause)));
    }
    Ok(())
}

#[test]
fn waiting_problems_say_how_long_to_wait() -> Result<(), Box<dyn std::error::Error>> {
    for (error, wait) in [
        (
            ApiError::from(Failure::QuotaExceeded {
                retry_after_seconds: 60,
            }),
            "60",
        ),
        (
            ApiError::from(Failure::Unavailable(StorageError::unavailable(
                std::fmt::Error,
            ))),
            UNAVAILABLE_RETRY_SECONDS,
        ),
    ] {
        let response = error.error_response();
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .ok_or("no Retry-After")?,
            wait
        );
    }
    Ok(())
}

#[test]
fn a_broken_store_is_an_internal_error_and_an_unreachable_one_a_503() {
    let corrupt = ApiError::from(StorageError::corrupt("stored plan is not valid"));
    assert_eq!(corrupt.code(), ProblemCode::InternalError);
    let down = ApiError::from(StorageError::unavailable(std::fmt::Error));
    assert_eq!(down.code(), ProblemCode::StorageUnavailable);
}

#[test]
fn internal_errors_never_show_their_cause() -> Result<(), Box<dyn std::error::Error>> {
    let (_, _, problem) = body_of(&ApiError::Internal("password=hunter2".into()))?;
    assert_eq!(problem.detail, None);
    assert!(!serde_json::to_string(&problem)?.contains("hunter2"));
    Ok(())
}

#[test]
fn plan_problems_name_their_limits() -> Result<(), Box<dyn std::error::Error>> {
    let (_, _, problem) = body_of(&ApiError::PlanLimit(reached()))?;
    assert_eq!(problem.limit, Some(PlanLimitDetail::from(&reached())));
    let (_, _, problem) = body_of(&ApiError::PlanDowngrade(vec![reached()]))?;
    assert_eq!(problem.limits, vec![PlanLimitDetail::from(&reached())]);
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
