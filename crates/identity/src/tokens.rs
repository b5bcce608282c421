//! Access tokens: short-lived HS256 JWTs, algorithm pinned, with `exp`, `iat`, `iss` and
//! `aud` checked against an injected clock.

use std::sync::Arc;

use fluxolab_kernel::{Clock, UserId, WorkspaceId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::Duration;
use uuid::Uuid;

use crate::account::{SessionFamilyId, SignInMethod};

/// What an access token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The active workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wid: Option<Uuid>,
    /// The session family the token was issued for.
    pub sid: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// How the session was opened; tokens issued before the claim existed were all
    /// password sessions.
    #[serde(default)]
    pub auth_method: SignInMethod,
}

impl AccessClaims {
    pub fn user_id(&self) -> UserId {
        UserId::from_uuid(self.sub)
    }

    pub fn workspace_id(&self) -> Option<WorkspaceId> {
        self.wid.map(WorkspaceId::from_uuid)
    }

    /// The session the token was issued for.
    pub fn session_family(&self) -> SessionFamilyId {
        SessionFamilyId::from_uuid(self.sid)
    }
}

/// A freshly issued access token.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
}

/// Why a token is refused. Deliberately coarse: callers answer 401 either way.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed, not ours, or for another audience")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the token has expired")]
    Expired,
    #[error("could not sign the token")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// Issuer name, audience and lifetimes.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: "fluxolab".to_owned(),
            audience: "fluxolab-api".to_owned(),
            access_ttl: Duration::minutes(15),
            refresh_ttl: Duration::days(30),
        }
    }
}

/// Signs and verifies access tokens.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    settings: TokenSettings,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(key: &[u8], settings: TokenSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            settings,
            clock,
        }
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// A token for `user`, active in `workspace`, within the password session family
    /// `family`.
    pub fn issue(
        &self,
        user: UserId,
        workspace: Option<WorkspaceId>,
        family: SessionFamilyId,
    ) -> Result<IssuedToken, TokenError> {
        self.issue_for(user, workspace, family, SignInMethod::Password)
    }

    /// A token for `user`, active in `workspace`, within session family `family` opened
    /// by `method`.
    pub fn issue_for(
        &self,
        user: UserId,
        workspace: Option<WorkspaceId>,
        family: SessionFamilyId,
        method: SignInMethod,
    ) -> Result<IssuedToken, TokenError> {
        let now = self.clock.now().unix_timestamp();
        let expires_in = self.settings.access_ttl.whole_seconds();
        let claims = AccessClaims {
            sub: user.as_uuid(),
            wid: workspace.map(|id| id.as_uuid()),
            sid: family.as_uuid(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat: now,
            exp: now + expires_in,
            auth_method: method,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(TokenError::Signing)?;
        Ok(IssuedToken { token, expires_in })
    }

    /// Checks signature (HS256 only), issuer, audience and expiry (by the injected clock).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is checked below against our clock, which tests can move.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map_err(TokenError::Invalid)?
            .claims;
        if claims.exp <= self.clock.now().unix_timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use fluxolab_kernel::ManualClock;
    use time::OffsetDateTime;

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn issuer(clock: Arc<ManualClock>) -> TokenIssuer {
        TokenIssuer::new(KEY, TokenSettings::default(), clock)
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(OffsetDateTime::now_utc()))
    }

    #[test]
    fn an_issued_token_verifies_until_it_expires() -> Result<(), TokenError> {
        let clock = clock();
        let issuer = issuer(clock.clone());
        let user = UserId::new();
        let token = issuer.issue(user, None, SessionFamilyId::new())?;
        assert_eq!(token.expires_in, 900);
        assert_eq!(issuer.verify(&token.token)?.user_id(), user);
        clock.advance(Duration::minutes(15));
        assert!(matches!(
            issuer.verify(&token.token),
            Err(TokenError::Expired)
        ));
        Ok(())
    }

    #[test]
    fn tokens_of_another_key_or_audience_are_refused() -> Result<(), TokenError> {
        let clock = clock();
        let token = issuer(clock.clone()).issue(UserId::new(), None, SessionFamilyId::new())?;
        let other_key = TokenIssuer::new(
            b"another-key-another-key-another-k",
            TokenSettings::default(),
            clock.clone(),
        );
        assert!(other_key.verify(&token.token).is_err());
        let other_audience = TokenIssuer::new(
            KEY,
            TokenSettings {
                audience: "someone-else".into(),
                ..TokenSettings::default()
            },
            clock,
        );
        assert!(other_audience.verify(&token.token).is_err());
        Ok(())
    }

    #[test]
    fn unsigned_tokens_are_refused() -> Result<(), TokenError> {
        let clock = clock();
        let issuer = issuer(clock);
        let signed = issuer
            .issue(UserId::new(), None, SessionFamilyId::new())?
            .token;
        let payload = signed.split('.').nth(1).unwrap_or_default();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(issuer.verify(&format!("{header}.{payload}.")).is_err());
        Ok(())
    }

    #[test]
    fn tokens_say_how_their_session_was_opened_and_older_ones_were_by_password()
    -> Result<(), Box<dyn std::error::Error>> {
        let issuer = issuer(clock());
        let family = SessionFamilyId::new();
        let sso = issuer.issue_for(UserId::new(), None, family, SignInMethod::Sso)?;
        assert_eq!(issuer.verify(&sso.token)?.auth_method, SignInMethod::Sso);
        // A token signed before the claim existed: the same claims without it.
        let mut claims = serde_json::to_value(issuer.verify(&sso.token)?)?;
        claims
            .as_object_mut()
            .map(|claims| claims.remove("auth_method"));
        let older = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(KEY),
        )?;
        assert_eq!(issuer.verify(&older)?.auth_method, SignInMethod::Password);
        Ok(())
    }
}
