//! argon2id hashing on tokio's blocking pool, so it never stalls the async workers.

use async_trait::async_trait;
use fluxolab_identity::PasswordHash;
use fluxolab_identity::password::HashingFailed;
use fluxolab_identity::ports::PasswordHasher;
use secrecy::SecretString;

/// The production [`PasswordHasher`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockingArgon2;

#[async_trait]
impl PasswordHasher for BlockingArgon2 {
    async fn hash(&self, password: SecretString) -> Result<PasswordHash, HashingFailed> {
        tokio::task::spawn_blocking(move || PasswordHash::create(&password))
            .await
            .unwrap_or_else(|join| Err(HashingFailed::aborted(&join)))
    }

    async fn verify(&self, hash: PasswordHash, password: SecretString) -> bool {
        tokio::task::spawn_blocking(move || hash.verify(&password))
            .await
            .unwrap_or(false)
    }
}
