//! Configuration: read from the environment (and an optional `.env`) once, validated at
//! start. Every problem is reported at once, one line each, before anything starts.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use fluxolab_telemetry::LogFormat;
use ring::hkdf;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use url::Url;

#[path = "config_code.rs"]
mod code;
mod mcp;
pub use mcp::McpSettings;

/// The shortest `APP_SECRET` / `JWT_SECRET` accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Everything `fluxolab serve` needs.
#[derive(Debug)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub app_secret: SecretString,
    /// The master secret being rotated away from; still accepted for unwrapping keys.
    pub app_secret_previous: Option<SecretString>,
    /// The JWT signing key: `JWT_SECRET`, or derived from `APP_SECRET` with HKDF-SHA256.
    pub jwt_secret: SecretBox<[u8]>,
    pub bind_addr: SocketAddr,
    pub http_workers: usize,
    /// How this process's workers run executions.
    pub workers: crate::workers::WorkerSettings,
    pub body_limit_bytes: usize,
    pub shutdown_timeout: Duration,
    pub telemetry: fluxolab_telemetry::TelemetrySettings,
    pub webhooks: WebhookSettings,
    pub alerts: AlertSettings,
    /// `AUTH_CACHE_CAPACITY`, `AUTH_CACHE_TTL_SECONDS`: the per-process cache of who may
    /// do what (memberships, API keys) and of what requests read most (environments,
    /// profiles, workflows).
    pub auth_cache: fluxolab_postgres::auth_cache::AuthCacheSettings,
    /// `CODE_MAX_MEMORY_MB`, `CODE_MAX_TIMEOUT_MS`, `CODE_CONCURRENCY`: the bounds of
    /// `code.javascript` steps.
    pub code: fluxolab_jsruntime::JsSettings,
    /// `MCP_*`: the MCP server's waits and sessions.
    pub mcp: McpSettings,
}

/// How the webhook intake behaves.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// `WEBHOOK_MAX_BODY_BYTES`: the largest delivery accepted (413 above it).
    pub max_body_bytes: usize,
    /// `WEBHOOK_REJECTED_PER_MINUTE`: rejected deliveries stored per registration per
    /// minute (the rest are only counted in metrics).
    pub rejected_per_minute: u32,
    /// `WEBHOOK_RESPONSE_TIMEOUT_SECONDS`: how long a `respond_node` registration waits.
    pub response_timeout: Duration,
    /// `PUBLIC_BASE_URL`: the base of intake URLs shown in responses; when unset, the
    /// scheme and host each request came in on.
    pub public_base_url: Option<String>,
}

/// How usage alerts and notifications are sent.
#[derive(Clone, Debug)]
pub struct AlertSettings {
    /// `SMTP_URL`: where alert and notification e-mails go (`smtp://user:pass@host:587`,
    /// `smtps://…`); unset, they fail their delivery with a clear error.
    pub smtp_url: Option<String>,
    /// `ALERT_EMAIL_FROM`: the sender of alert and notification e-mails.
    pub email_from: String,
    /// `OUTBOX_RETENTION_DAYS` (1–90, default 7): how long an undelivered outbound
    /// message (an alert, a log event) waits for its receiver before it is dropped,
    /// counted in `outbound_dropped_total` and recorded as an integration event.
    pub outbox_retention: std::time::Duration,
}

/// What the database-only commands (`migrate`, `seed`) need.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: usize,
    pub acquire_timeout: Duration,
}

/// One invalid or missing variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: &'static str,
    pub message: String,
}

/// Every problem found, printed one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "  {}: {}", problem.variable, problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads variables through a lookup function and collects problems as it goes.
struct Reader<F> {
    lookup: F,
    problems: Vec<ConfigProblem>,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    fn new(lookup: F) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, variable: &'static str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            variable,
            message: message.into(),
        });
    }

    /// The value, or `None` when unset or blank.
    fn optional(&self, variable: &str) -> Option<String> {
        (self.lookup)(variable).filter(|value| !value.trim().is_empty())
    }

    fn required(&mut self, variable: &'static str, hint: &str) -> Option<String> {
        let value = self.optional(variable);
        if value.is_none() {
            self.problem(variable, format!("is required ({hint})"));
        }
        value
    }

    /// Parses an optional value with `parse`, falling back to `default` when unset.
    fn parsed<T>(
        &mut self,
        variable: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.optional(variable) {
            None => default,
            Some(raw) => match parse(raw.trim()) {
                Ok(value) => value,
                Err(message) => {
                    self.problem(variable, message);
                    default
                }
            },
        }
    }

    fn number(
        &mut self,
        variable: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        self.parsed(variable, default, |raw| {
            let value: u64 = raw
                .parse()
                .map_err(|_| format!("must be a whole number, not `{raw}`"))?;
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(format!(
                    "must be between {} and {}, not {value}",
                    range.start(),
                    range.end()
                ))
            }
        })
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ConfigErrors> {
        match value {
            Some(value) if self.problems.is_empty() => Ok(value),
            _ => Err(ConfigErrors(self.problems)),
        }
    }
}

fn parse_database_url(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw).map_err(|error| format!("is not a valid URL ({error})"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "must be a postgres:// or postgresql:// URL, not {}://",
            url.scheme()
        ));
    }
    Ok(raw.to_owned())
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    fn database(&mut self) -> Option<DatabaseSettings> {
        let url = self
            .required(
                "DATABASE_URL",
                "e.g. postgres://postgres@127.0.0.1:5432/fluxolab",
            )
            .and_then(|raw| match parse_database_url(raw.trim()) {
                Ok(url) => Some(url),
                Err(message) => {
                    self.problem("DATABASE_URL", message);
                    None
                }
            });
        let pool_size = self.number("DATABASE_POOL_SIZE", 10, 1..=500);
        let acquire_timeout = self.number("DATABASE_ACQUIRE_TIMEOUT_SECONDS", 5, 1..=300);
        url.map(|url| DatabaseSettings {
            url,
            pool_size: usize::try_from(pool_size).unwrap_or(10),
            acquire_timeout: Duration::from_secs(acquire_timeout),
        })
    }

    fn secret(&mut self, variable: &'static str, value: Option<String>) -> Option<String> {
        match value {
            Some(secret) if secret.len() < MIN_SECRET_BYTES => {
                self.problem(
                    variable,
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes, got {} (generate one with `openssl rand -hex 32`)",
                        secret.len()
                    ),
                );
                None
            }
            other => other,
        }
    }

    fn telemetry(&mut self) -> fluxolab_telemetry::TelemetrySettings {
        let log_format = self.parsed("LOG_FORMAT", LogFormat::Pretty, |raw| {
            raw.parse()
                .map_err(|error: fluxolab_telemetry::UnknownLogFormat| error.to_string())
        });
        let default_filter = self
            .optional("RUST_LOG")
            .unwrap_or_else(|| "info".to_owned());
        let log_filter = self.parsed("LOG_LEVEL", default_filter, |raw| {
            fluxolab_telemetry::check_filter(raw).map(|()| raw.to_owned())
        });
        let otlp_endpoint = self.parsed("OTEL_EXPORTER_OTLP_ENDPOINT", None, |raw| {
            let url = Url::parse(raw).map_err(|error| format!("is not a valid URL ({error})"))?;
            if matches!(url.scheme(), "http" | "https") {
                Ok(Some(raw.to_owned()))
            } else {
                Err("must be an http:// or https:// URL of an OTLP/HTTP collector".to_owned())
            }
        });
        let service_name = self
            .optional("OTEL_SERVICE_NAME")
            .unwrap_or_else(|| "fluxolab".to_owned());
        fluxolab_telemetry::TelemetrySettings {
            log_format,
            log_filter,
            otlp_endpoint,
            service_name,
        }
    }
}

/// Derives the JWT signing key from the master secret, so one secret is enough to run.
fn derive_jwt_key(app_secret: &str) -> Vec<u8> {
    struct KeyLength;
    impl hkdf::KeyType for KeyLength {
        fn len(&self) -> usize {
            32
        }
    }
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"fluxolab");
    let prk = salt.extract(app_secret.as_bytes());
    let mut key = vec![0; 32];
    // Both can only fail for an output longer than 255 hash lengths; 32 bytes is not.
    if let Ok(okm) = prk.expand(&[b"jwt-signing-key-v1"], KeyLength) {
        let _ = okm.fill(&mut key);
    }
    key
}

impl DatabaseSettings {
    /// Reads only the database variables (for `migrate` and `seed`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut reader = Reader::new(lookup);
        let database = reader.database();
        reader.finish(database)
    }
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    fn webhooks(&mut self) -> WebhookSettings {
        let max_body = self.number(
            "WEBHOOK_MAX_BODY_BYTES",
            1024 * 1024,
            1024..=64 * 1024 * 1024,
        );
        let rejected = self.number("WEBHOOK_REJECTED_PER_MINUTE", 60, 0..=100_000);
        let timeout = self.number("WEBHOOK_RESPONSE_TIMEOUT_SECONDS", 10, 1..=300);
        let public_base_url = self.parsed("PUBLIC_BASE_URL", None, |raw| match Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Ok(Some(raw.trim_end_matches('/').to_owned()))
            }
            _ => Err(format!(
                "must be an http(s) URL such as https://hooks.example.com, not `{raw}`"
            )),
        });
        WebhookSettings {
            max_body_bytes: usize::try_from(max_body).unwrap_or(1024 * 1024),
            rejected_per_minute: u32::try_from(rejected).unwrap_or(60),
            response_timeout: Duration::from_secs(timeout),
            public_base_url,
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    fn alerts(&mut self) -> AlertSettings {
        let smtp_url = self.parsed("SMTP_URL", None, |raw| match Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "smtp" | "smtps") && url.host().is_some() => {
                Ok(Some(raw.to_owned()))
            }
            _ => Err(
                "must be an smtp:// or smtps:// URL such as smtp://user:pass@mail.example.com:587"
                    .to_owned(),
            ),
        });
        let alert_email_from = self.parsed(
            "ALERT_EMAIL_FROM",
            "FluxoLab <alerts@fluxolab.localhost>".to_owned(),
            |raw| {
                let address = raw.rsplit('<').next().unwrap_or(raw).trim_end_matches('>');
                if address.contains('@') && !address.contains(char::is_whitespace) {
                    Ok(raw.to_owned())
                } else {
                    Err(format!("must be an e-mail address such as `FluxoLab <alerts@example.com>`, not `{raw}`"))
                }
            },
        );
        let retention_days = self.number("OUTBOX_RETENTION_DAYS", 7, 1..=90);
        AlertSettings {
            smtp_url,
            email_from: alert_email_from,
            outbox_retention: std::time::Duration::from_secs(retention_days * 86_400),
        }
    }
}

/// Executions a process runs at once unless `WORKERS` says otherwise: twice what one
/// claim takes ([`fluxolab_postgres`] claims at most 64 runs a statement), so the next
/// claims run while the runs of the last one finish, instead of the slots emptying and
/// filling in turns (docs/benchmarks.md, "fourth sitting" and "fifth sitting").
pub const DEFAULT_EXECUTION_SLOTS: u64 = 128;

impl Settings {
    /// Reads and validates every variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut reader = Reader::new(lookup);
        let database = reader.database();
        let app_secret = reader.required("APP_SECRET", "at least 32 random bytes");
        let app_secret = reader.secret("APP_SECRET", app_secret);
        let previous = reader.optional("APP_SECRET_PREVIOUS");
        let previous = reader.secret("APP_SECRET_PREVIOUS", previous);
        let jwt_secret = reader.optional("JWT_SECRET");
        let jwt_secret = reader.secret("JWT_SECRET", jwt_secret);
        let bind_addr = reader.parsed(
            "BIND_ADDR",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            |raw| {
                raw.parse()
                    .map_err(|_| format!("must be host:port such as 127.0.0.1:8080, not `{raw}`"))
            },
        );
        let default_workers = std::thread::available_parallelism().map_or(2, usize::from) as u64;
        let http_workers = reader.number("HTTP_WORKERS", default_workers, 1..=256);
        // A run mostly waits (on the database, on remote APIs): slots are sized for
        // waiting, not for the CPU count; the pool's acquire timeout is the back-pressure.
        let workers = reader.number("WORKERS", DEFAULT_EXECUTION_SLOTS, 1..=1024);
        let lease = reader.number("EXECUTION_LEASE_SECONDS", 30, 3..=3600);
        let execution_timeout = reader.number("EXECUTION_TIMEOUT_SECONDS", 300, 1..=86_400);
        let body_limit = reader.number(
            "HTTP_BODY_LIMIT_BYTES",
            1024 * 1024,
            1024..=64 * 1024 * 1024,
        );
        let shutdown = reader.number("SHUTDOWN_TIMEOUT_SECONDS", 30, 1..=600);
        let drain = reader.number("SHUTDOWN_DRAIN_SECONDS", 30, 0..=3600);
        let telemetry = reader.telemetry();
        let webhooks = reader.webhooks();
        let alerts = reader.alerts();
        let mcp = reader.mcp();
        let auth_cache_capacity = reader.number("AUTH_CACHE_CAPACITY", 100_000, 100..=10_000_000);
        let auth_cache_ttl = reader.number("AUTH_CACHE_TTL_SECONDS", 60, 1..=3600);
        let code = reader.code();

        let settings = match (database, app_secret) {
            (Some(database), Some(app_secret)) => {
                let jwt_key = jwt_secret
                    .map(String::into_bytes)
                    .unwrap_or_else(|| derive_jwt_key(&app_secret));
                Some(Settings {
                    database,
                    app_secret: SecretString::from(app_secret),
                    app_secret_previous: previous.map(SecretString::from),
                    jwt_secret: SecretBox::new(jwt_key.into_boxed_slice()),
                    bind_addr,
                    http_workers: usize::try_from(http_workers).unwrap_or(2),
                    workers: crate::workers::WorkerSettings {
                        concurrency: usize::try_from(workers).unwrap_or(2),
                        lease_seconds: i64::try_from(lease).unwrap_or(30),
                        timeout: Duration::from_secs(execution_timeout),
                        drain: Duration::from_secs(drain),
                    },
                    body_limit_bytes: usize::try_from(body_limit).unwrap_or(1024 * 1024),
                    shutdown_timeout: Duration::from_secs(shutdown),
                    telemetry,
                    webhooks,
                    alerts,
                    auth_cache: fluxolab_postgres::auth_cache::AuthCacheSettings {
                        capacity: auth_cache_capacity,
                        ttl: Duration::from_secs(auth_cache_ttl),
                    },
                    code,
                    mcp,
                })
            }
            _ => None,
        };
        reader.finish(settings)
    }

    /// The master keys of the credentials vault.
    pub fn master_keys(
        &self,
    ) -> Result<
        fluxolab_credentials::envelope::MasterKeys,
        fluxolab_credentials::envelope::EnvelopeError,
    > {
        fluxolab_credentials::envelope::MasterKeys::new(
            self.app_secret.expose_secret().as_bytes(),
            self.app_secret_previous
                .as_ref()
                .map(|secret| secret.expose_secret().as_bytes()),
        )
    }

    /// The JWT signing key's bytes.
    pub fn jwt_key(&self) -> &[u8] {
        self.jwt_secret.expose_secret()
    }
}

/// The process environment, after loading `.env` when one exists.
pub fn environment() -> Result<impl Fn(&str) -> Option<String>, ConfigErrors> {
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(error) if error.not_found() => {}
        Err(error) => {
            return Err(ConfigErrors(vec![ConfigProblem {
                variable: ".env",
                message: format!("could not be read: {error}"),
            }]));
        }
    }
    Ok(|name: &str| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(super) fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    pub(super) const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn two_variables_are_enough_and_the_rest_have_defaults() -> Result<(), ConfigErrors> {
        let settings = Settings::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/fluxolab"),
            ("APP_SECRET", SECRET),
        ]))?;
        assert_eq!(settings.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database.pool_size, 10);
        assert_eq!(settings.body_limit_bytes, 1024 * 1024);
        assert_eq!(settings.telemetry.log_format, LogFormat::Pretty);
        assert_eq!(settings.telemetry.otlp_endpoint, None);
        assert_eq!(settings.jwt_key().len(), 32);
        assert_ne!(settings.jwt_key(), SECRET.as_bytes());
        // A workspace that sets no timeout reads the limit its runs get.
        let workspace_default = fluxolab_workspace::settings::ExecutionDefaults::default();
        assert_eq!(
            settings.workers.timeout,
            Duration::from_secs(u64::from(workspace_default.timeout_seconds))
        );
        Ok(())
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = Settings::from_lookup(lookup(&[
            ("DATABASE_URL", "not a url"),
            ("APP_SECRET", "short"),
            ("BIND_ADDR", "everywhere"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_POOL_SIZE", "0"),
            ("SHUTDOWN_DRAIN_SECONDS", "3601"),
        ]))
        .err()
        .map(|errors| errors.0)
        .unwrap_or_default();
        let variables: Vec<_> = errors.iter().map(|problem| problem.variable).collect();
        assert_eq!(
            variables,
            [
                "DATABASE_URL",
                "DATABASE_POOL_SIZE",
                "APP_SECRET",
                "BIND_ADDR",
                "SHUTDOWN_DRAIN_SECONDS",
                "LOG_FORMAT"
            ]
        );
        assert!(errors[2].message.contains("at least 32 bytes, got 5"));
    }

    #[test]
    fn webhook_settings_have_defaults_and_are_checked() -> Result<(), ConfigErrors> {
        let base = [
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/fluxolab"),
            ("APP_SECRET", SECRET),
        ];
        let settings = Settings::from_lookup(lookup(&base))?;
        assert_eq!(settings.webhooks.max_body_bytes, 1024 * 1024);
        assert_eq!(settings.webhooks.rejected_per_minute, 60);
        assert_eq!(settings.webhooks.response_timeout, Duration::from_secs(10));
        assert_eq!(settings.webhooks.public_base_url, None);

        let set = Settings::from_lookup(lookup(&[
            base[0],
            base[1],
            ("PUBLIC_BASE_URL", "https://hooks.example.com/"),
            ("WEBHOOK_MAX_BODY_BYTES", "4096"),
        ]))?;
        assert_eq!(
            set.webhooks.public_base_url.as_deref(),
            Some("https://hooks.example.com")
        );
        assert_eq!(set.webhooks.max_body_bytes, 4096);

        let errors = Settings::from_lookup(lookup(&[
            base[0],
            base[1],
            ("PUBLIC_BASE_URL", "hooks.example.com"),
            ("WEBHOOK_MAX_BODY_BYTES", "12"),
            ("WEBHOOK_RESPONSE_TIMEOUT_SECONDS", "0"),
        ]))
        .err()
        .map(|errors| errors.0)
        .unwrap_or_default();
        let variables: Vec<_> = errors.iter().map(|problem| problem.variable).collect();
        assert_eq!(
            variables,
            [
                "WEBHOOK_MAX_BODY_BYTES",
                "WEBHOOK_RESPONSE_TIMEOUT_SECONDS",
                "PUBLIC_BASE_URL"
            ]
        );
        Ok(())
    }

    #[test]
    fn auth_cache_settings_have_defaults_and_are_checked() -> Result<(), ConfigErrors> {
        let base = [
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/fluxolab"),
            ("APP_SECRET", SECRET),
        ];
        let settings = Settings::from_lookup(lookup(&base))?;
        assert_eq!(settings.auth_cache.capacity, 100_000);
        assert_eq!(settings.auth_cache.ttl, Duration::from_secs(60));
        let set = Settings::from_lookup(lookup(&[
            base[0],
            base[1],
            ("AUTH_CACHE_CAPACITY", "5000"),
            ("AUTH_CACHE_TTL_SECONDS", "5"),
        ]))?;
        assert_eq!(set.auth_cache.capacity, 5000);
        assert_eq!(set.auth_cache.ttl, Duration::from_secs(5));

        let errors = Settings::from_lookup(lookup(&[
            base[0],
            base[1],
            ("AUTH_CACHE_CAPACITY", "10"),
            ("AUTH_CACHE_TTL_SECONDS", "0"),
        ]))
        .err()
        .map(|errors| errors.0)
        .unwrap_or_default();
        let variables: Vec<_> = errors.iter().map(|problem| problem.variable).collect();
        assert_eq!(variables, ["AUTH_CACHE_CAPACITY", "AUTH_CACHE_TTL_SECONDS"]);
        Ok(())
    }

    #[test]
    fn missing_required_variables_are_named() {
        let errors = Settings::from_lookup(lookup(&[]))
            .err()
            .map(|e| e.to_string());
        let text = errors.unwrap_or_default();
        assert!(text.contains("DATABASE_URL: is required"));
        assert!(text.contains("APP_SECRET: is required"));
    }

    #[test]
    fn a_non_postgres_url_is_refused() {
        let errors =
            DatabaseSettings::from_lookup(lookup(&[("DATABASE_URL", "mysql://root@localhost/db")]));
        assert!(errors.is_err_and(|e| e.to_string().contains("postgres://")));
    }

    #[test]
    fn an_explicit_jwt_secret_wins_and_is_checked() -> Result<(), ConfigErrors> {
        let other = "fedcba9876543210fedcba9876543210";
        let settings = Settings::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://localhost/fluxolab"),
            ("APP_SECRET", SECRET),
            ("JWT_SECRET", other),
        ]))?;
        assert_eq!(settings.jwt_key(), other.as_bytes());
        let short = Settings::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://localhost/fluxolab"),
            ("APP_SECRET", SECRET),
            ("JWT_SECRET", "tiny"),
        ]));
        assert!(short.is_err_and(|e| e.to_string().contains("JWT_SECRET")));
        Ok(())
    }
}
