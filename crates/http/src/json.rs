//! `Json<T>`: a JSON body extractor whose errors name the field that is wrong.
//!
//! actix's own `Json` reports type errors without their path ("invalid type: integer,
//! expected a string"); this one deserialises through `serde_path_to_error`, so a wrong
//! type or a missing field becomes a 422 `validation_failed` naming `display_name`, and
//! only a body that is not JSON at all is a 400 `invalid_json`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

fn is_json(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// Deserialises `bytes`, naming the path of the first problem.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() {
            // serde's message without its position suffix.
            let message = inner.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            // A missing field is reported at its parent; name the field itself.
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            let field = match (path.as_str(), missing) {
                (".", Some(name)) => name.to_owned(),
                (parent, Some(name)) => format!("{parent}.{name}"),
                (".", None) => "body".to_owned(),
                (path, None) => path.to_owned(),
            };
            ApiError::invalid(field, message)
        } else {
            ApiError::InvalidJson(actix_web::error::JsonPayloadError::Deserialize(inner))
        }
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(request);
        let limit = request
            .app_data::<BodyLimit>()
            .map_or(DEFAULT_LIMIT, |limit| limit.0);
        let body = Bytes::from_request(request, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError::NotJson);
            }
            let bytes = body
                .await
                .map_err(|error| match error.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => ApiError::PayloadTooLarge { limit },
                    _ => ApiError::Payload(PayloadError::Incomplete(None)),
                })?;
            parse(&bytes).map(Json)
        })
    }
}

/// actix's default payload limit, when none is configured.
const DEFAULT_LIMIT: usize = 256 * 1024;

/// The configured body limit, for error messages.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        display_name: String,
    }

    fn field_of(result: Result<Body, ApiError>) -> Option<String> {
        match result {
            Err(ApiError::Validation(errors)) => errors.errors().first().map(|e| e.field.clone()),
            _ => None,
        }
    }

    #[test]
    fn wrong_types_and_missing_fields_name_the_field() {
        assert_eq!(
            field_of(parse(br#"{"email": "a@b.co", "display_name": 5}"#)).as_deref(),
            Some("display_name")
        );
        assert_eq!(
            field_of(parse(br#"{"email": "a@b.co"}"#)).as_deref(),
            Some("display_name")
        );
        assert_eq!(field_of(parse(b"[]")).as_deref(), Some("body"));
    }

    #[test]
    fn broken_json_is_invalid_json() {
        assert!(matches!(
            parse::<Body>(br#"{"email""#),
            Err(ApiError::InvalidJson(_))
        ));
    }
}
