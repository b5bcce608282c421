//! External secret stores (AWS Secrets Manager, HashiCorp Vault / OpenBao KV v2) as
//! the domain sees them: how to reach one ([`StoreConnection`]) and the port that reads
//! from it ([`SecretStoreClient`]). The adapter that speaks their HTTP APIs lives in
//! `fluxolab-outbound`; which provider a reference names, caching and auditing live in
//! the domain service that owns providers.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ExposeSecret, SecretString, StorageError, WorkspaceId};

/// Where a secret value stands instead of being stored in FluxoLab:
/// `{"provider": "aws-prod", "name": "db/password", "key": "password"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// The provider's name in the workspace.
    pub provider: String,
    /// The secret's name (AWS) or path under the mount (Vault).
    pub name: String,
    /// A field of a JSON secret; `None` takes the whole value (AWS) or the only field
    /// (Vault; several fields without a key is an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl SecretRef {
    /// Whether the parts are within bounds: a provider name of 1–40 of `a-z`, `0-9`,
    /// `-`; a secret name of 1–512 characters; a key, when given, of 1–256.
    pub fn is_well_formed(&self) -> bool {
        (1..=40).contains(&self.provider.len())
            && self
                .provider
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && (1..=512).contains(&self.name.chars().count())
            && self
                .key
                .as_ref()
                .is_none_or(|key| (1..=256).contains(&key.chars().count()))
    }

    /// The reference a JSON value stands for: `{"secret_ref": {...}}` and nothing else;
    /// `None` for any other value (a plain secret). `Some(Err)` for a `secret_ref` that
    /// is malformed.
    pub fn in_value(value: &serde_json::Value) -> Option<Result<Self, String>> {
        let object = value.as_object()?;
        let reference = object.get("secret_ref")?;
        if object.len() != 1 {
            return Some(Err("a `secret_ref` object holds nothing else".to_owned()));
        }
        Some(
            serde_json::from_value::<SecretRef>(reference.clone())
                .map_err(|error| error.to_string())
                .and_then(|reference| {
                    if reference.is_well_formed() {
                        Ok(reference)
                    } else {
                        Err(REF_RULE.to_owned())
                    }
                }),
        )
    }

    /// The JSON Schema of `{"secret_ref": {...}}`, the bounds of [`Self::is_well_formed`].
    pub fn json_schema() -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "required": ["secret_ref"],
            "additionalProperties": false,
            "properties": {"secret_ref": {
                "type": "object",
                "required": ["provider", "name"],
                "additionalProperties": false,
                "properties": {
                    "provider": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
                    "name": {"type": "string", "minLength": 1, "maxLength": 512},
                    "key": {"type": ["string", "null"], "minLength": 1, "maxLength": 256},
                },
            }},
        })
    }
}

/// What a well-formed [`SecretRef`] needs, for validation messages.
pub const REF_RULE: &str = "needs a provider name (1 to 40 of a-z, 0-9, -), a secret name of 1 to 512 characters and a key of at most 256";

/// How a Vault client logs in. Its `Debug` shows only the method.
#[derive(Clone)]
pub enum VaultAuth {
    /// A token used as it is.
    Token(SecretString),
    /// AppRole login (`POST /v1/auth/approle/login`); the token it returns is renewed
    /// (logged in again) before it expires.
    AppRole {
        /// The role's id (`role_id`), a credential too: never shown.
        role_id: String,
        /// The role's `secret_id`.
        secret_id: SecretString,
    },
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the method: a role id is half of a login.
        f.write_str(match self {
            Self::Token(_) => "Token([REDACTED])",
            Self::AppRole { .. } => "AppRole([REDACTED])",
        })
    }
}

/// One kind of store, with its configuration and credentials opened. Its `Debug` shows
/// no credential, nor the access key id or role id.
#[derive(Clone)]
pub enum StoreKind {
    /// AWS Secrets Manager, or any service speaking its API, with SigV4 credentials.
    AwsSecretsManager {
        region: String,
        /// Any AWS-compatible endpoint; `None` is `https://secretsmanager.{region}.amazonaws.com`.
        endpoint_url: Option<String>,
        /// The access key id; not a secret to AWS, but never shown all the same.
        access_key_id: String,
        secret_access_key: SecretString,
        /// Temporary credentials' session token.
        session_token: Option<SecretString>,
    },
    /// HashiCorp Vault or OpenBao, KV version 2.
    Vault {
        /// `https://vault.example.com:8200`
        address: String,
        /// The KV v2 mount, `secret` by default.
        mount: String,
        /// Sent as `X-Vault-Namespace` when set.
        namespace: Option<String>,
        auth: VaultAuth,
    },
}

impl std::fmt::Debug for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AwsSecretsManager {
                region,
                endpoint_url,
                ..
            } => f
                .debug_struct("AwsSecretsManager")
                .field("region", region)
                .field("endpoint_url", endpoint_url)
                .finish_non_exhaustive(),
            Self::Vault {
                address,
                mount,
                namespace,
                auth,
            } => f
                .debug_struct("Vault")
                .field("address", address)
                .field("mount", mount)
                .field("namespace", namespace)
                .field("auth", auth)
                .finish(),
        }
    }
}

/// Everything a client needs to reach one provider.
#[derive(Clone)]
pub struct StoreConnection {
    /// The provider's id: clients may keep per-provider state (a Vault login token)
    /// under it.
    pub provider_id: Uuid,
    /// Changes whenever the provider's configuration or credentials change, so state
    /// kept under an older revision is not reused.
    pub revision: i64,
    pub kind: StoreKind,
    /// Whether loopback and private addresses may be reached (the workspace's
    /// `allow_internal_network`).
    pub allow_internal_network: bool,
}

impl std::fmt::Debug for StoreConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            StoreKind::AwsSecretsManager { .. } => "aws_secrets_manager",
            StoreKind::Vault { .. } => "vault",
        };
        f.debug_struct("StoreConnection")
            .field("provider_id", &self.provider_id)
            .field("revision", &self.revision)
            .field("kind", &kind)
            .field("allow_internal_network", &self.allow_internal_network)
            .finish_non_exhaustive()
    }
}

/// What a probe of a provider found. Never carries a secret value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// The endpoint answered.
    pub reachable: bool,
    /// The credentials were accepted.
    pub authenticated: bool,
    /// What was tried and what came back, for people (never a value).
    pub detail: String,
}

/// Why a store could not give a secret. Messages name the cause, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreFailure {
    /// The endpoint could not be reached (DNS, connect, TLS, timeout) or was refused
    /// by the network guard.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The credentials were refused.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// No such secret (or key in it).
    #[error("not found: {0}")]
    NotFound(String),
    /// The store answered something else (an error status, an unreadable body).
    #[error("{0}")]
    Failed(String),
}

/// Reads secrets from external stores.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SecretStoreClient: Send + Sync {
    /// The value of secret `name`: AWS's whole stored string; for Vault the only field
    /// of the KV entry, or all of its fields as one JSON object (see [`select_key`]).
    async fn read(
        &self,
        connection: &StoreConnection,
        name: &str,
    ) -> Result<SecretString, StoreFailure>;

    /// The value a [`SecretRef`] names: [`read`](Self::read), then field `key`.
    ///
    /// Prefer it to `read` + [`select_key`]: a Vault entry with a single field is read
    /// as that field's value, so `select_key` could not find the field by name in it;
    /// an implementation that knows the entry's fields picks the key from them (and
    /// refuses a Vault entry of several fields without a key, as [`SecretRef::key`]
    /// says).
    // The named lifetimes are for mockall, which cannot elide a reference inside `Option`.
    async fn resolve<'a>(
        &self,
        connection: &StoreConnection,
        name: &str,
        key: Option<&'a str>,
    ) -> Result<SecretString, StoreFailure> {
        let value = self.read(connection, name).await?;
        select_key(&value, key)
    }

    /// Whether the store is reachable and the credentials work: reads `probe_name` when
    /// given, else lists (at most) one secret name. Never returns a value.
    ///
    /// Every answer of the store, and the lack of one, is an `Ok` report: an unreachable
    /// store (or one the network guard refuses) is `reachable: false`, refused
    /// credentials `authenticated: false`, a missing probe secret is reported in
    /// `detail`. `Err` is kept for a connection that cannot be used at all (an address
    /// that is not a URL, a region that is not one).
    async fn probe<'a>(
        &self,
        connection: &StoreConnection,
        probe_name: Option<&'a str>,
    ) -> Result<ProbeReport, StoreFailure>;
}

/// Why a reference could not be resolved: the provider's name and the reason, never a
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret provider `{provider}`: {reason}")]
pub struct ResolveFailure {
    pub provider: String,
    pub reason: String,
}

/// Resolves [`SecretRef`]s of a workspace at run time (and checks, when one is saved,
/// that its provider exists).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SecretResolver: Send + Sync {
    /// Whether `workspace` has a provider called `provider`.
    async fn provider_exists(
        &self,
        workspace: WorkspaceId,
        provider: &str,
    ) -> Result<bool, StorageError>;
    /// The value `reference` names, from its provider (or the provider's cache).
    async fn resolve(
        &self,
        workspace: WorkspaceId,
        reference: &SecretRef,
    ) -> Result<SecretString, ResolveFailure>;
}

/// The field `key` of a JSON object secret, or the whole value when `key` is `None`.
/// A non-string field is given as its JSON text.
pub fn select_key(value: &SecretString, key: Option<&str>) -> Result<SecretString, StoreFailure> {
    let Some(key) = key else {
        return Ok(value.clone());
    };
    let parsed: serde_json::Value = serde_json::from_str(value.expose_secret())
        .map_err(|_| StoreFailure::NotFound(format!("key `{key}`: the secret is not JSON")))?;
    match parsed.get(key) {
        Some(serde_json::Value::String(text)) => Ok(SecretString::from(text.clone())),
        Some(other) => Ok(SecretString::from(other.to_string())),
        None => Err(StoreFailure::NotFound(format!(
            "key `{key}` is not in the secret"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_selects_a_field_of_a_json_secret() {
        let value = SecretString::from(r#"{"password":"p@ss","port":5432}"#.to_owned());
        let password = select_key(&value, Some("password")).expect("field");
        assert_eq!(password.expose_secret(), "p@ss");
        let port = select_key(&value, Some("port")).expect("field");
        assert_eq!(port.expose_secret(), "5432");
        let whole = select_key(&value, None).expect("whole");
        assert_eq!(whole.expose_secret(), value.expose_secret());
    }

    #[test]
    fn a_missing_key_or_a_plain_secret_names_the_key_not_the_value() {
        let value = SecretString::from("not-json-s3cr3t".to_owned());
        let error = select_key(&value, Some("password")).expect_err("not json");
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
        assert!(error.to_string().contains("password"), "{error}");
        let json = SecretString::from(r#"{"user":"u"}"#.to_owned());
        let missing = select_key(&json, Some("password")).expect_err("missing");
        assert_eq!(
            missing,
            StoreFailure::NotFound("key `password` is not in the secret".to_owned())
        );
    }

    /// A store that holds one JSON secret, to prove the provided `resolve`.
    struct OneSecret;

    #[async_trait]
    impl SecretStoreClient for OneSecret {
        async fn read(
            &self,
            _connection: &StoreConnection,
            name: &str,
        ) -> Result<SecretString, StoreFailure> {
            match name {
                "db" => Ok(SecretString::from(r#"{"password":"p@ss"}"#.to_owned())),
                _ => Err(StoreFailure::NotFound(format!("secret `{name}`"))),
            }
        }

        async fn probe<'a>(
            &self,
            _connection: &StoreConnection,
            _probe_name: Option<&'a str>,
        ) -> Result<ProbeReport, StoreFailure> {
            Err(StoreFailure::Failed("not probed here".to_owned()))
        }
    }

    fn aws_connection() -> StoreConnection {
        StoreConnection {
            provider_id: Uuid::nil(),
            revision: 1,
            kind: StoreKind::AwsSecretsManager {
                region: "eu-west-1".to_owned(),
                endpoint_url: None,
                access_key_id: "AKIAEXAMPLE".to_owned(),
                secret_access_key: SecretString::from("wJalrXUtnFEMI-s3cr3t".to_owned()),
                session_token: None,
            },
            allow_internal_network: false,
        }
    }

    #[tokio::test]
    async fn resolve_reads_then_selects_the_key_unless_a_store_knows_better() {
        let connection = aws_connection();
        let password = OneSecret
            .resolve(&connection, "db", Some("password"))
            .await
            .expect("field");
        assert_eq!(password.expose_secret(), "p@ss");
        let missing = OneSecret
            .resolve(&connection, "db", Some("user"))
            .await
            .expect_err("no such key");
        assert!(matches!(missing, StoreFailure::NotFound(_)), "{missing}");
        let absent = OneSecret
            .resolve(&connection, "other", None)
            .await
            .expect_err("no such secret");
        assert_eq!(absent, StoreFailure::NotFound("secret `other`".to_owned()));
    }

    #[test]
    fn a_connection_formatted_for_debugging_shows_no_credential() {
        let connection = aws_connection();
        let shown = format!("{connection:?}");
        assert!(shown.contains("aws_secrets_manager"), "{shown}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("AKIA"),
            "{shown}"
        );
        let kind = format!("{:?}", connection.kind);
        assert!(kind.contains("eu-west-1"), "{kind}");
        assert!(!kind.contains("s3cr3t") && !kind.contains("AKIA"), "{kind}");
    }

    #[test]
    fn vault_credentials_formatted_for_debugging_show_only_the_method() {
        let kind = StoreKind::Vault {
            address: "https://vault.example.com:8200".to_owned(),
            mount: "secret".to_owned(),
            namespace: Some("team-a".to_owned()),
            auth: VaultAuth::AppRole {
                role_id: "role-1d-b4d6".to_owned(),
                secret_id: SecretString::from("s3cr3t-1d".to_owned()),
            },
        };
        let shown = format!("{kind:?}");
        assert!(
            shown.contains("AppRole") && shown.contains("team-a"),
            "{shown}"
        );
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("b4d6"),
            "{shown}"
        );
        let token = format!(
            "{:?}",
            VaultAuth::Token(SecretString::from("hvs.t0ken".to_owned()))
        );
        assert!(!token.contains("t0ken"), "{token}");
    }
}
