//! Credential kinds and their secret fields.

use serde::{Deserialize, Serialize};

/// What a credential is for; each kind has its own fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    Smtp,
    HttpBasic,
    HttpHeader,
    BearerToken,
    MetaApp,
    Generic,
}

impl CredentialKind {
    /// The fields of this kind that are secret: sealed at rest, masked on the way out.
    /// `Generic` credentials treat every value as secret and return `None`.
    pub const fn secret_fields(self) -> Option<&'static [&'static str]> {
        match self {
            CredentialKind::Smtp => Some(&["password"]),
            CredentialKind::HttpBasic => Some(&["password"]),
            CredentialKind::HttpHeader => Some(&["value"]),
            CredentialKind::BearerToken => Some(&["token"]),
            CredentialKind::MetaApp => Some(&["app_secret", "access_token", "verify_token"]),
            CredentialKind::Generic => None,
        }
    }

    /// Whether `field` of this kind is secret.
    pub fn is_secret(self, field: &str) -> bool {
        self.secret_fields()
            .is_none_or(|fields| fields.contains(&field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_fields_are_secret_except_for_generic() {
        assert!(CredentialKind::Smtp.is_secret("password"));
        assert!(!CredentialKind::Smtp.is_secret("host"));
        assert!(CredentialKind::MetaApp.is_secret("app_secret"));
        assert!(CredentialKind::Generic.is_secret("anything"));
    }
}
