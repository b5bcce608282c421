//! A secret provider as stored, and how its submitted configuration and credentials
//! are checked.

use fluxolab_kernel::{
    CredentialId, ExposeSecret, SecretString, StoreKind, ValidationErrors, VaultAuth, WorkspaceId,
    plain_http_url,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

fluxolab_kernel::define_id!(
    /// An external secret provider of a workspace.
    SecretProviderId
);

/// The default of [`SecretProvider::cache_ttl_seconds`].
pub const DEFAULT_CACHE_TTL_SECONDS: u32 = 60;
/// The longest cache a provider may ask for.
pub const MAX_CACHE_TTL_SECONDS: u32 = 86_400;
/// The kinds of provider, by code.
pub const KINDS: [&str; 2] = ["aws_secrets_manager", "vault"];

/// Where a provider is, without its credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderConfig {
    AwsSecretsManager {
        region: String,
        endpoint_url: Option<String>,
    },
    Vault {
        address: String,
        mount: String,
        namespace: Option<String>,
    },
}

impl ProviderConfig {
    /// `aws_secrets_manager` or `vault`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::AwsSecretsManager { .. } => KINDS[0],
            ProviderConfig::Vault { .. } => KINDS[1],
        }
    }

    /// The configuration as stored and shown (no secrets in it).
    pub fn to_json(&self) -> Value {
        match self {
            ProviderConfig::AwsSecretsManager {
                region,
                endpoint_url,
            } => json!({"region": region, "endpoint_url": endpoint_url}),
            ProviderConfig::Vault {
                address,
                mount,
                namespace,
            } => json!({"address": address, "mount": mount, "namespace": namespace}),
        }
    }

    /// Checks `config` for a provider of `kind`, naming each problem under `config.*`.
    pub fn parse(kind: &str, config: &Value, errors: &mut ValidationErrors) -> Option<Self> {
        let Some(object) = config.as_object() else {
            errors.add("config", "must be an object");
            return None;
        };
        let mut fields = Fields::new("config", object, errors);
        let parsed = match kind {
            "aws_secrets_manager" => {
                let region = fields.required(
                    "region",
                    valid_region,
                    "must be an AWS region such as `eu-west-1`",
                );
                let endpoint_url = fields.optional("endpoint_url", url_rule, URL_MESSAGE);
                fields.no_others(&["region", "endpoint_url"]);
                Some(ProviderConfig::AwsSecretsManager {
                    region: region?,
                    endpoint_url,
                })
            }
            "vault" => {
                let address = fields.required("address", url_rule, URL_MESSAGE);
                let mount = fields
                    .optional(
                        "mount",
                        valid_mount,
                        "must be 1 to 64 letters, digits, `-`, `_` or `/`",
                    )
                    .unwrap_or_else(|| "secret".to_owned());
                let namespace = fields.optional(
                    "namespace",
                    valid_mount,
                    "must be 1 to 64 letters, digits, `-`, `_` or `/`",
                );
                fields.no_others(&["address", "mount", "namespace"]);
                Some(ProviderConfig::Vault {
                    address: address?,
                    mount,
                    namespace,
                })
            }
            _ => None,
        };
        parsed.filter(|_| errors.is_empty())
    }
}

const URL_MESSAGE: &str = "must be an http(s) URL";

fn url_rule(value: &str) -> bool {
    plain_http_url(value, true)
}

fn valid_region(value: &str) -> bool {
    (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_mount(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))
}

fn valid_secret_text(value: &str) -> bool {
    (1..=4096).contains(&value.chars().count())
}

/// The string fields of one submitted object, checked one by one.
struct Fields<'a> {
    prefix: &'static str,
    object: &'a Map<String, Value>,
    errors: &'a mut ValidationErrors,
}

impl<'a> Fields<'a> {
    fn new(
        prefix: &'static str,
        object: &'a Map<String, Value>,
        errors: &'a mut ValidationErrors,
    ) -> Self {
        Self {
            prefix,
            object,
            errors,
        }
    }

    fn optional(&mut self, name: &str, rule: fn(&str) -> bool, message: &str) -> Option<String> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if rule(text) => Some(text.clone()),
            Some(_) => {
                self.errors.add(format!("{}.{name}", self.prefix), message);
                None
            }
        }
    }

    fn required(&mut self, name: &str, rule: fn(&str) -> bool, message: &str) -> Option<String> {
        if matches!(self.object.get(name), None | Some(Value::Null)) {
            self.errors
                .add(format!("{}.{name}", self.prefix), "is required");
            return None;
        }
        self.optional(name, rule, message)
    }

    fn no_others(&mut self, known: &[&str]) {
        for name in self
            .object
            .keys()
            .filter(|name| !known.contains(&name.as_str()))
        {
            self.errors.add(
                format!("{}.{name}", self.prefix),
                format!("is not a field; expected one of {}", known.join(", ")),
            );
        }
    }
}

/// A provider's credentials as submitted: a JSON object of secret strings. Its `Debug`
/// shows nothing of them.
#[derive(Clone)]
pub struct SubmittedCredentials(pub Value);

impl std::fmt::Debug for SubmittedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubmittedCredentials([REDACTED])")
    }
}

/// Credentials of a provider of `kind`, checked (under `credentials.*`) and ready to
/// seal as one JSON text.
pub fn check_credentials(
    kind: &str,
    credentials: &SubmittedCredentials,
    errors: &mut ValidationErrors,
) -> Option<SecretString> {
    let Some(object) = credentials.0.as_object() else {
        errors.add("credentials", "must be an object");
        return None;
    };
    let before = errors.errors().len();
    let mut fields = Fields::new("credentials", object, errors);
    let message = "must be 1 to 4096 characters";
    match kind {
        "aws_secrets_manager" => {
            fields.required("access_key_id", valid_secret_text, message);
            fields.required("secret_access_key", valid_secret_text, message);
            fields.optional("session_token", valid_secret_text, message);
            fields.no_others(&["access_key_id", "secret_access_key", "session_token"]);
        }
        "vault" => {
            if object.contains_key("token") {
                fields.required("token", valid_secret_text, message);
                fields.no_others(&["token"]);
            } else {
                fields.required("role_id", valid_secret_text, message);
                fields.required("secret_id", valid_secret_text, message);
                fields.no_others(&["role_id", "secret_id"]);
            }
        }
        _ => return None,
    }
    (errors.errors().len() == before).then(|| SecretString::from(credentials.0.to_string()))
}

/// The store connection of `config` with its sealed `credentials` opened.
pub fn store_kind(config: &ProviderConfig, credentials: &SecretString) -> Option<StoreKind> {
    let opened: Value = serde_json::from_str(credentials.expose_secret()).ok()?;
    let text = |name: &str| opened.get(name).and_then(Value::as_str).map(str::to_owned);
    let secret = |name: &str| text(name).map(SecretString::from);
    Some(match config {
        ProviderConfig::AwsSecretsManager {
            region,
            endpoint_url,
        } => StoreKind::AwsSecretsManager {
            region: region.clone(),
            endpoint_url: endpoint_url.clone(),
            access_key_id: text("access_key_id")?,
            secret_access_key: secret("secret_access_key")?,
            session_token: secret("session_token"),
        },
        ProviderConfig::Vault {
            address,
            mount,
            namespace,
        } => StoreKind::Vault {
            address: address.clone(),
            mount: mount.clone(),
            namespace: namespace.clone(),
            auth: match secret("token") {
                Some(token) => VaultAuth::Token(token),
                None => VaultAuth::AppRole {
                    role_id: text("role_id")?,
                    secret_id: secret("secret_id")?,
                },
            },
        },
    })
}

/// Whether `name` is a valid provider name: 1–40 of `a-z`, `0-9`, `-`.
pub fn valid_provider_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A workspace's secret provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretProvider {
    pub id: SecretProviderId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub config: ProviderConfig,
    /// The vault entry sealing the credentials.
    pub credentials: CredentialId,
    pub enabled: bool,
    pub cache_ttl_seconds: u32,
    /// Bumped on every change of configuration or credentials.
    pub revision: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_are_checked_field_by_field() {
        let mut errors = ValidationErrors::new();
        let config = ProviderConfig::parse(
            "vault",
            &json!({"address": "http://127.0.0.1:8200"}),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            config.expect("valid").to_json(),
            json!({"address": "http://127.0.0.1:8200", "mount": "secret", "namespace": null})
        );
        let mut errors = ValidationErrors::new();
        let config = ProviderConfig::parse(
            "aws_secrets_manager",
            &json!({"region": "Mars 1", "endpoint_url": "ftp://x", "colour": 1}),
            &mut errors,
        );
        assert_eq!(config, None);
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["config.region", "config.endpoint_url", "config.colour"]
        );
    }

    #[test]
    fn credentials_are_checked_and_never_shown() {
        let config = ProviderConfig::Vault {
            address: "https://vault.example.com".to_owned(),
            mount: "secret".to_owned(),
            namespace: None,
        };
        let submitted = SubmittedCredentials(json!({"role_id": "r", "secret_id": "s3cr3t-id"}));
        assert!(!format!("{submitted:?}").contains("s3cr3t"));
        let mut errors = ValidationErrors::new();
        let sealed = check_credentials("vault", &submitted, &mut errors).expect("valid");
        assert!(matches!(
            store_kind(&config, &sealed),
            Some(StoreKind::Vault {
                auth: VaultAuth::AppRole { .. },
                ..
            })
        ));
        let mut errors = ValidationErrors::new();
        let missing = SubmittedCredentials(json!({"role_id": "r"}));
        assert!(check_credentials("vault", &missing, &mut errors).is_none());
        assert_eq!(errors.errors()[0].field, "credentials.secret_id");
    }
}
