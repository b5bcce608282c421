//! Field-level validation errors, reported all at once.

use std::fmt;

use serde::Serialize;

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
