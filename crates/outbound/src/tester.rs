//! Credential tests: an SMTP login or an HTTP request, through the SSRF guard.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fluxolab_credentials::ports::{
    ConnectionTester, HttpAuth, HttpProbe, ProbeOutcome, SmtpProbe, TlsMode,
};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::guard::{GuardedResolver, allowed_addresses};

/// How long a test may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed (each one re-checked by the guard).
const MAX_REDIRECTS: usize = 5;

/// The production [`ConnectionTester`].
#[derive(Clone, Copy, Debug, Default)]
pub struct OutboundTester;

fn failed(message: impl std::fmt::Display) -> ProbeOutcome {
    ProbeOutcome {
        ok: false,
        message: message.to_string(),
    }
}

#[async_trait]
impl ConnectionTester for OutboundTester {
    async fn smtp(&self, probe: SmtpProbe) -> ProbeOutcome {
        let addresses = match allowed_addresses(&probe.host, probe.port, probe.allow_internal).await
        {
            Ok(addresses) => addresses,
            Err(error) => return failed(error),
        };
        // Connect to the address the guard approved; certificates are checked against the name.
        let Some(address) = addresses.first() else {
            return failed("no address to connect to");
        };
        let tls = || TlsParameters::new(probe.host.clone());
        let tls = match probe.tls {
            TlsMode::None => Ok(Tls::None),
            TlsMode::StartTls => tls().map(Tls::Required),
            TlsMode::Tls => tls().map(Tls::Wrapper),
        };
        let tls = match tls {
            Ok(tls) => tls,
            Err(error) => return failed(format!("TLS setup failed: {error}")),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.ip().to_string())
                .port(address.port())
                .tls(tls)
                .timeout(Some(TIMEOUT));
        if let Some(username) = probe.username {
            let password = probe
                .password
                .as_ref()
                .map(|secret| secret.expose_secret().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username, password));
        }
        match builder.build::<Tokio1Executor>().test_connection().await {
            Ok(true) => ProbeOutcome {
                ok: true,
                message: "connected and authenticated".to_owned(),
            },
            Ok(false) => failed("the server did not answer"),
            Err(error) => failed(format!("SMTP failed: {error}")),
        }
    }

    async fn http(&self, probe: HttpProbe) -> ProbeOutcome {
        let allow_internal = probe.allow_internal;
        let host = probe.url.host_str().unwrap_or_default().to_owned();
        let port = probe.url.port_or_known_default().unwrap_or(80);
        // IP literals never reach the resolver: check them here.
        if let Err(error) = allowed_addresses(&host, port, allow_internal).await {
            return failed(error);
        }
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            let internal_literal = attempt
                .url()
                .host_str()
                .and_then(|host| host.trim_matches(['[', ']']).parse().ok())
                .is_some_and(|ip| {
                    crate::address_policy::classify(ip) != crate::AddressClass::Public
                });
            if internal_literal && !allow_internal {
                attempt.error("redirected to an internal address")
            } else {
                attempt.follow()
            }
        });
        let client = match reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_internal }))
            .redirect(redirects)
            .timeout(TIMEOUT)
            .build()
        {
            Ok(client) => client,
            Err(error) => return failed(format!("could not build the HTTP client: {error}")),
        };
        let request = client.get(probe.url);
        let request = match &probe.auth {
            HttpAuth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
            HttpAuth::Header { name, value } => {
                request.header(name.as_str(), value.expose_secret())
            }
            HttpAuth::Bearer(token) => request.bearer_auth(token.expose_secret()),
        };
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                ProbeOutcome {
                    ok: status.is_success(),
                    message: format!("HTTP {status}"),
                }
            }
            Err(error) => {
                let mut message = format!("request failed: {error}");
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                failed(message)
            }
        }
    }
}
