//! Reading secrets from external stores: AWS Secrets Manager ([`aws`]) and HashiCorp
//! Vault / OpenBao KV version 2 ([`vault`]), behind the kernel's [`SecretStoreClient`].
//!
//! Every request goes to the provider's configured endpoint only, through the SSRF guard
//! (internal addresses only when the workspace allows them), with a 10 s timeout and no
//! redirect to another origin. Failures name the status and the store's error type; text
//! the store sends back is cut short and scrubbed of the connection's credentials, and a
//! secret value is never part of one.

mod aws;
mod vault;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fluxolab_kernel::{
    Clock, ExposeSecret, ProbeReport, SecretStoreClient, SecretString, StoreConnection,
    StoreFailure, StoreKind, SystemClock,
};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::guard::{GuardedResolver, allowed_addresses};

#[cfg(feature = "test-support")]
pub(crate) use aws::{SigningKey, sign_request};

/// How long one request to a store may take, connection included.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a store; Secrets Manager allows 64 KiB per secret.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How much of a store's own error text a failure quotes.
const MAX_QUOTED_CHARS: usize = 200;

/// The production [`SecretStoreClient`]: one HTTP client per network policy, shared by
/// every provider, and the Vault login tokens kept per provider revision.
pub struct SecretStores {
    /// Refuses internal addresses.
    guarded: reqwest::Client,
    /// For workspaces that allow internal addresses (self-hosted stores).
    internal: reqwest::Client,
    tokens: vault::TokenCache,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SecretStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStores").finish_non_exhaustive()
    }
}

/// The HTTP client could not be built (no TLS backend).
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client for secret stores")]
pub struct ClientSetupError(#[source] reqwest::Error);

impl SecretStores {
    /// Stores read with the system clock.
    pub fn new() -> Result<Self, ClientSetupError> {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// Stores whose signing time and Vault token lifetimes follow `clock` (tests move it).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Result<Self, ClientSetupError> {
        Ok(Self {
            guarded: http_client(false)?,
            internal: http_client(true)?,
            tokens: vault::TokenCache::default(),
            clock,
        })
    }

    /// The client for `connection`'s network policy.
    fn client(&self, connection: &StoreConnection) -> &reqwest::Client {
        if connection.allow_internal_network {
            &self.internal
        } else {
            &self.guarded
        }
    }
}

fn http_client(allow_internal: bool) -> Result<reqwest::Client, ClientSetupError> {
    // A store may redirect within itself (a path), never to another origin: the
    // credentials travel in headers that would follow.
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 3 {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.error("redirected to another host")
        }
    });
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_internal }))
        .redirect(redirects)
        .timeout(STORE_TIMEOUT)
        .connect_timeout(STORE_TIMEOUT)
        .build()
        .map_err(ClientSetupError)
}

#[async_trait]
impl SecretStoreClient for SecretStores {
    #[tracing::instrument(skip_all, fields(provider_id = %connection.provider_id))]
    async fn read(
        &self,
        connection: &StoreConnection,
        name: &str,
    ) -> Result<SecretString, StoreFailure> {
        match &connection.kind {
            StoreKind::AwsSecretsManager { .. } => aws::read(self, connection, name).await,
            StoreKind::Vault { .. } => {
                let entry = vault::read(self, connection, name).await?;
                Ok(entry.whole())
            }
        }
    }

    #[tracing::instrument(skip_all, fields(provider_id = %connection.provider_id))]
    async fn resolve<'a>(
        &self,
        connection: &StoreConnection,
        name: &str,
        key: Option<&'a str>,
    ) -> Result<SecretString, StoreFailure> {
        match &connection.kind {
            StoreKind::AwsSecretsManager { .. } => {
                let value = aws::read(self, connection, name).await?;
                fluxolab_kernel::secret_store::select_key(&value, key)
            }
            StoreKind::Vault { .. } => vault::read(self, connection, name).await?.pick(key),
        }
    }

    #[tracing::instrument(skip_all, fields(provider_id = %connection.provider_id))]
    async fn probe<'a>(
        &self,
        connection: &StoreConnection,
        probe_name: Option<&'a str>,
    ) -> Result<ProbeReport, StoreFailure> {
        let outcome = match &connection.kind {
            StoreKind::AwsSecretsManager { .. } => aws::probe(self, connection, probe_name).await,
            StoreKind::Vault { .. } => vault::probe(self, connection, probe_name).await,
        };
        let report = match outcome {
            Ok(detail) => ProbeReport {
                reachable: true,
                authenticated: true,
                detail,
            },
            Err(Probed::Invalid(failure)) => return Err(failure),
            Err(Probed::Failed(failure)) => report_of(&failure),
        };
        tracing::info!(
            reachable = report.reachable,
            authenticated = report.authenticated,
            "secret store probed"
        );
        Ok(report)
    }
}

/// Why a probe did not succeed: a connection that cannot be used at all, or the store's
/// (or the network's) answer.
enum Probed {
    Invalid(StoreFailure),
    Failed(StoreFailure),
}

/// A probe that did not succeed, told as what it found out.
fn report_of(failure: &StoreFailure) -> ProbeReport {
    let (reachable, authenticated, detail) = match failure {
        StoreFailure::Unreachable(detail) => (false, false, detail.clone()),
        StoreFailure::Unauthenticated(detail) => (true, false, detail.clone()),
        // Only an authenticated caller learns that a secret is missing.
        StoreFailure::NotFound(detail) => (true, true, format!("not found: {detail}")),
        StoreFailure::Failed(detail) => (true, false, detail.clone()),
    };
    ProbeReport {
        reachable,
        authenticated,
        detail,
    }
}

/// What a store answered: the status, the headers that carry error types, and the body
/// (at most [`MAX_BODY_BYTES`]).
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The endpoint of a configured address, checked: `http` or `https`, with a host, and
/// no user name, password, query or fragment in it.
fn parse_endpoint(what: &str, text: &str) -> Result<url::Url, StoreFailure> {
    let invalid = |why: &str| StoreFailure::Failed(format!("{what} {why}"));
    let url = url::Url::parse(text.trim()).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    Ok(url)
}

/// Sends `request` to `url` once the guard allows its host (IP literals never reach
/// the guarded resolver, so they are checked here), and reads the answer.
async fn send(
    url: &url::Url,
    allow_internal: bool,
    request: reqwest::RequestBuilder,
) -> Result<Reply, StoreFailure> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    allowed_addresses(host, port, allow_internal)
        .await
        .map_err(|error| StoreFailure::Unreachable(format!("refused: {error}")))?;
    let unreachable = |error| unreachable(url, error);
    let mut response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(StoreFailure::Failed(format!(
                "HTTP {status}: the answer is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A request to `url` that got no answer, with its causes (reqwest's own message is
/// terse).
fn unreachable(url: &url::Url, error: reqwest::Error) -> StoreFailure {
    let error = error.without_url();
    let origin = url.origin().ascii_serialization();
    let mut message = if error.is_timeout() {
        format!("{origin}: no answer within {} s", STORE_TIMEOUT.as_secs())
    } else {
        format!("{origin}: {error}")
    };
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StoreFailure::Unreachable(message)
}

/// A store's own text, quotable in a failure: its credentials removed, cut short.
fn quote(text: &str, credentials: &[&SecretString], plain: &[&str]) -> String {
    let mut quoted = text.trim().to_owned();
    let secrets = credentials.iter().map(|secret| secret.expose_secret());
    for credential in secrets.chain(plain.iter().copied()) {
        if credential.len() >= 4 {
            quoted = quoted.replace(credential, "[REDACTED]");
        }
    }
    if quoted.chars().count() > MAX_QUOTED_CHARS {
        quoted = quoted.chars().take(MAX_QUOTED_CHARS).collect::<String>() + "…";
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_with_credentials_or_odd_schemes_are_refused() {
        for bad in [
            "ftp://vault.example.com",
            "https://user:pass@vault.example.com",
            "https://vault.example.com/?token=x",
            "not a url",
        ] {
            let failure = parse_endpoint("address", bad).expect_err(bad);
            assert!(
                !failure.to_string().contains("pass") && !failure.to_string().contains("token"),
                "{failure}"
            );
        }
        assert!(parse_endpoint("address", "https://vault.example.com:8200/prefix").is_ok());
    }

    #[test]
    fn quoted_store_text_loses_credentials_and_length() {
        let secret = SecretString::from("wJalrXUtnFEMI".to_owned());
        let quoted = quote(
            "bad signature for AKIAEXAMPLE with wJalrXUtnFEMI",
            &[&secret],
            &["AKIAEXAMPLE"],
        );
        assert_eq!(quoted, "bad signature for [REDACTED] with [REDACTED]");
        let long = quote(&"x".repeat(500), &[], &[]);
        assert_eq!(long.chars().count(), MAX_QUOTED_CHARS + 1);
    }

    #[test]
    fn probe_failures_become_reports() {
        let unreachable = report_of(&StoreFailure::Unreachable("refused".to_owned()));
        assert!(!unreachable.reachable && !unreachable.authenticated);
        let refused = report_of(&StoreFailure::Unauthenticated("HTTP 403".to_owned()));
        assert!(refused.reachable && !refused.authenticated);
        let missing = report_of(&StoreFailure::NotFound("secret `probe`".to_owned()));
        assert!(missing.reachable && missing.authenticated);
        assert!(missing.detail.contains("probe"), "{}", missing.detail);
    }
}
