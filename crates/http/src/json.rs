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
use serde::{Deserialize, Deserializer};

use crate::ApiError;

/// For `#[serde(default, deserialize_with = "crate::json::present")]` on an
/// `Option<Option<T>>` PATCH field: tells a field set to `null` (`Some(None)`) from one
/// left out (`None`).
pub(crate) fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

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

/// Whether JSON text holds an escaped NUL character (`\u0000`), which PostgreSQL can store
/// in neither `text` nor `jsonb`. JSON text has no raw NUL outside strings and none
/// unescaped inside them, so this escape is the only way one arrives.
fn has_nul(bytes: &[u8]) -> bool {
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'\\' {
            if bytes.get(at + 1) == Some(&b'u') && bytes.get(at + 2..at + 6) == Some(b"0000") {
                return true;
            }
            at += 2;
        } else {
            at += 1;
        }
    }
    false
}

/// The path (`definition.nodes[0].name`) of the first key or string in `value` that
/// holds a NUL character.
fn nul_path(value: &serde_json::Value, path: &str) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::String(text) => text.contains('\0').then(|| path.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_path(item, &format!("{path}[{index}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(key))
            } else {
                nul_path(item, &join(key))
            }
        }),
        _ => None,
    }
}

/// JSON Schema's `integer` is any number without a fraction, `7.0` and `7e2` included;
/// serde reads those only into floats, so they become integers here.
fn integral_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && float.abs() < 9_007_199_254_740_992.0
            {
                // Exact: an integral float below 2^53 is the integer it prints as.
                #[allow(clippy::cast_possible_truncation)]
                let integer = float as i64;
                *number = serde_json::Number::from(integer);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Deserialises `bytes`, naming the path of the first problem. Text holding a NUL
/// character is refused here, naming its field, before it can reach the database.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if has_nul(bytes) {
        let field = serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|value| nul_path(&value, ""))
            .filter(|path| !path.is_empty())
            .unwrap_or_else(|| "body".to_owned());
        return Err(ApiError::invalid(
            field,
            "must not contain the NUL character (\\u0000)",
        ));
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|error| {
        ApiError::InvalidJson(actix_web::error::JsonPayloadError::Deserialize(error))
    })?;
    // Every body is an object; serde would also read a struct from an array.
    if !value.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    integral_numbers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|error| {
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

/// An optional body: nothing (or only whitespace) is `T::default()`, anything else must
/// parse as [`parse`] does.
pub fn optional<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(bytes)
    }
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
        assert_eq!(
            field_of(parse(br#"["a@b.co", "Ada"]"#)).as_deref(),
            Some("body"),
            "an array is not read as a struct"
        );
    }

    #[test]
    fn a_nul_character_is_refused_naming_its_field_and_an_escaped_backslash_is_not_one() {
        assert_eq!(
            field_of(parse(br#"{"email": "a@b.co", "display_name": "A\u0000B"}"#)).as_deref(),
            Some("display_name")
        );
        let nested =
            parse::<serde_json::Value>(br#"{"definition": {"nodes": [{"name": "x\u0000"}]}}"#);
        assert!(
            matches!(&nested, Err(ApiError::Validation(errors))
                if errors.errors()[0].field == "definition.nodes[0].name"),
            "{nested:?}"
        );
        assert!(parse::<Body>(br#"{"email": "a@b.co", "display_name": "A\\u0000B"}"#).is_ok());
    }

    #[test]
    fn integral_floats_are_integers() {
        #[derive(Debug, Deserialize)]
        struct Counted {
            count: i32,
        }
        assert!(matches!(
            parse::<Counted>(br#"{"count": 717.0}"#),
            Ok(Counted { count: 717 })
        ));
        assert!(matches!(
            parse::<Counted>(br#"{"count": 7e2}"#),
            Ok(Counted { count: 700 })
        ));
        assert!(matches!(
            parse::<Counted>(br#"{"count": 7.5}"#),
            Err(ApiError::Validation(_))
        ));
    }

    #[test]
    fn broken_json_is_invalid_json() {
        assert!(matches!(
            parse::<Body>(br#"{"email""#),
            Err(ApiError::InvalidJson(_))
        ));
    }
}
