//! Opaque refresh tokens: 256 random bits, handed out once, stored only as SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

pub use fluxolab_kernel::NoRandomness;

/// A new refresh token: its text (for the client, once) and its digest (for storage).
#[derive(Debug)]
pub struct RefreshToken {
    pub secret: SecretString,
    pub digest: [u8; 32],
}

impl RefreshToken {
    pub fn generate() -> Result<Self, NoRandomness> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| NoRandomness)?;
        let text = URL_SAFE_NO_PAD.encode(bytes);
        Ok(Self {
            digest: digest_of(&text),
            secret: SecretString::from(text),
        })
    }

    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

/// The stored digest of a presented token.
pub fn digest_of(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_digest_to_what_is_stored() -> Result<(), NoRandomness> {
        let first = RefreshToken::generate()?;
        let second = RefreshToken::generate()?;
        assert_ne!(first.expose(), second.expose());
        assert_eq!(digest_of(first.expose()), first.digest);
        assert_eq!(first.expose().len(), 43);
        Ok(())
    }
}
