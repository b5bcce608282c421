//! The password policy and argon2id hashing.
//!
//! Hashing is deliberately slow (OWASP's argon2id parameters: 19 MiB, 2 passes, 1 lane);
//! callers on an async runtime must run it on a blocking thread.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 12;

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    #[error("must be at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("must not be the e-mail address")]
    SameAsEmail,
}

/// Checks a new password against the policy.
pub fn check_policy(password: &SecretString, email: &str) -> Result<(), PasswordPolicyError> {
    let password = password.expose_secret();
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordPolicyError::TooShort);
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(PasswordPolicyError::SameAsEmail);
    }
    Ok(())
}

/// A stored argon2id hash in PHC string format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordHash(String);

/// Hashing failed (only on resource exhaustion; never for a given password).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingFailed(String);

impl HashingFailed {
    /// The task that was hashing stopped before it finished.
    pub fn aborted(cause: &dyn std::fmt::Display) -> Self {
        Self(format!("the hashing task stopped: {cause}"))
    }
}

fn hasher() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: argon2id, m=19456 KiB, t=2, p=1.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt. Slow: call off the async threads.
    pub fn create(password: &SecretString) -> Result<Self, HashingFailed> {
        hasher()
            .hash_password(password.expose_secret().as_bytes())
            .map(|hash| Self(hash.to_string()))
            .map_err(|error| HashingFailed(error.to_string()))
    }

    /// Wraps a hash read from storage.
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `password` matches. Slow: call off the async threads.
    pub fn verify(&self, password: &SecretString) -> bool {
        argon2::password_hash::phc::PasswordHash::new(&self.0)
            .map_err(|_| ())
            .and_then(|parsed| {
                hasher()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .map_err(|_| ())
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn short_passwords_and_the_email_itself_are_refused() {
        assert_eq!(
            check_policy(&secret("short"), "ada@example.com"),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(
            check_policy(&secret("Ada@Example.com"), "ada@example.com"),
            Err(PasswordPolicyError::SameAsEmail)
        );
        assert_eq!(
            check_policy(&secret("correct horse battery"), "ada@example.com"),
            Ok(())
        );
    }

    #[test]
    fn a_hash_verifies_only_its_own_password() -> Result<(), HashingFailed> {
        let hash = PasswordHash::create(&secret("correct horse battery"))?;
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hash.verify(&secret("correct horse battery")));
        assert!(!hash.verify(&secret("correct horse battery!")));
        assert!(!PasswordHash::from_stored("garbage".into()).verify(&secret("x")));
        Ok(())
    }
}
