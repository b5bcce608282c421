//! Integration tests of `fluxolab-outbound` against real servers: moto for AWS Secrets
//! Manager (skipped with a reason when moto is not installed, failing under `CI`), and
//! an in-test stand-in that follows Vault's documented API (no Vault is installable).

mod aws_secrets_manager;
mod redaction;
mod vault;
mod vault_stand_in;

use std::sync::Arc;

use fluxolab_kernel::{ManualClock, SecretString, StoreConnection, StoreKind, VaultAuth};
use fluxolab_outbound::SecretStores;
use uuid::Uuid;

pub type TestError = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult = Result<(), TestError>;

/// Where and how the AWS tests reach moto.
pub const REGION: &str = "eu-west-1";
pub const ACCESS_KEY_ID: &str = "AKIAFLUXOLABTEST0001";
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/fluxolab-s3cr3t-key";

/// Stores whose clock the test moves, and the clock.
pub fn stores_on_a_manual_clock() -> Result<(SecretStores, Arc<ManualClock>), TestError> {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let stores = SecretStores::with_clock(clock.clone())?;
    Ok((stores, clock))
}

/// An AWS provider at `endpoint` (loopback: internal addresses allowed).
pub fn aws_connection(endpoint: &str, access_key_id: &str, secret: &str) -> StoreConnection {
    StoreConnection {
        provider_id: Uuid::now_v7(),
        revision: 1,
        kind: StoreKind::AwsSecretsManager {
            region: REGION.to_owned(),
            endpoint_url: Some(endpoint.to_owned()),
            access_key_id: access_key_id.to_owned(),
            secret_access_key: SecretString::from(secret.to_owned()),
            session_token: None,
        },
        allow_internal_network: true,
    }
}

/// A Vault provider at `address`, mount `secret` (loopback: internal addresses allowed).
pub fn vault_connection(
    address: &str,
    namespace: Option<&str>,
    auth: VaultAuth,
) -> StoreConnection {
    StoreConnection {
        provider_id: Uuid::now_v7(),
        revision: 1,
        kind: StoreKind::Vault {
            address: address.to_owned(),
            mount: "secret".to_owned(),
            namespace: namespace.map(str::to_owned),
            auth,
        },
        allow_internal_network: true,
    }
}

pub fn token(text: &str) -> VaultAuth {
    VaultAuth::Token(SecretString::from(text.to_owned()))
}

pub fn app_role(role_id: &str, secret_id: &str) -> VaultAuth {
    VaultAuth::AppRole {
        role_id: role_id.to_owned(),
        secret_id: SecretString::from(secret_id.to_owned()),
    }
}
