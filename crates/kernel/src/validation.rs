//! Field-level validation errors, reported all at once.

use std::fmt;

use serde::Serialize;

/// Whether `value` is plausibly an email address: `local@domain.tld`, one `@`, no
/// spaces, at most 254 characters. (Deliverability is for the mail server to say.)
pub fn plausible_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && value.chars().count() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
}

/// The JSON Schema pattern [`plausible_email`] accepts exactly (with `maxLength` 254).
pub const PLAUSIBLE_EMAIL_PATTERN: &str = r"^[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]$";

/// Whether `value` is an `http(s)://` URL (only `https://` unless `allow_http`) whose
/// authority (a host, maybe a port) has no user info or brackets, followed by a path,
/// query or fragment, with no whitespace, at most 2048 characters.
pub fn plain_http_url(value: &str, allow_http: bool) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://").filter(|_| allow_http));
    let authority = rest.and_then(|rest| rest.split(['/', '?', '#']).next());
    authority.is_some_and(|authority| !authority.is_empty() && !authority.contains(['@', '[', ']']))
        && value.chars().count() <= 2048
        && !value.contains(char::is_whitespace)
}

/// The JSON Schema pattern [`plain_http_url`] accepts exactly with `allow_http` (with
/// `maxLength` 2048); [`HTTPS_URL_PATTERN`] without.
pub const HTTP_URL_PATTERN: &str = r"^https?://[^\s/?#@\[\]]+([/?#]\S*)?$";
/// See [`HTTP_URL_PATTERN`].
pub const HTTPS_URL_PATTERN: &str = r"^https://[^\s/?#@\[\]]+([/?#]\S*)?$";

/// One invalid field: its JSON path and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem found in one input. Empty means valid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Errors holding one problem.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    /// Records a problem with `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// `Ok(value)` when nothing was recorded, else the errors.
    pub fn into_result<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", error.field, error.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// The rule for human-given names (people, workspaces): trimmed, 1–120 characters.
pub fn bounded_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    match name.chars().count() {
        0 => Err("must not be empty"),
        1..=120 => Ok(name.to_owned()),
        _ => Err("must be at most 120 characters"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_problem_and_reports_them_together() {
        let mut errors = ValidationErrors::new();
        errors.add("email", "must contain @");
        errors.add("password", "must be at least 12 characters");
        assert_eq!(
            errors.to_string(),
            "email: must contain @; password: must be at least 12 characters"
        );
        assert_eq!(errors.clone().into_result(()), Err(errors));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(bounded_name("  Ada  "), Ok("Ada".to_owned()));
        assert!(bounded_name("   ").is_err());
        assert!(bounded_name(&"é".repeat(120)).is_ok());
        assert!(bounded_name(&"é".repeat(121)).is_err());
    }

    #[test]
    fn no_problem_means_ok() {
        assert_eq!(ValidationErrors::new().into_result(7), Ok(7));
    }
}
