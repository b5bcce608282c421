//! E-mail addresses, validated once at the edge.

use std::fmt;

/// A syntactically plausible e-mail address, trimmed and lower-cased so that uniqueness
/// is case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

/// Why a text is not an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 254 characters")]
    TooLong,
    #[error("must look like name@example.com")]
    Malformed,
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(InvalidEmail::Empty);
        }
        if email.len() > 254 {
            return Err(InvalidEmail::TooLong);
        }
        let plausible = fluxolab_kernel::plausible_email(&email);
        if plausible {
            Ok(Self(email))
        } else {
            Err(InvalidEmail::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() -> Result<(), InvalidEmail> {
        assert_eq!(
            EmailAddress::parse("  Ada@Example.COM ")?.as_str(),
            "ada@example.com"
        );
        Ok(())
    }

    #[test]
    fn implausible_addresses_are_refused() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(EmailAddress::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }
}
