//! Usage alerts going out: e-mail through the platform's SMTP server (`SMTP_URL`), and
//! webhooks signed with the alert's secret (Standard Webhooks headers), behind the same
//! SSRF guard as nodes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fluxolab_credentials::ports::NetworkPolicy;
use fluxolab_kernel::WorkspaceId;
use fluxolab_kernel::outbox::AttemptFailure;
use fluxolab_kernel::standard_webhooks::SignedHeaders;
use fluxolab_workspace::alerts::AlertNotifier;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::guard::{GuardedResolver, allowed_addresses};

/// The production [`AlertNotifier`].
pub struct OutboundAlerts {
    /// `smtp://user:pass@host:port` (or `smtps://…`); e-mail alerts fail without it.
    pub smtp_url: Option<String>,
    /// The sender of alert e-mails.
    pub from: String,
    pub network: Arc<dyn NetworkPolicy>,
}

impl std::fmt::Debug for OutboundAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundAlerts")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl AlertNotifier for OutboundAlerts {
    async fn email(&self, to: &str, subject: &str, body: &str) -> Result<(), AttemptFailure> {
        self.send_email(to, subject, body)
            .await
            .map_err(AttemptFailure::new)
    }

    async fn webhook(
        &self,
        workspace: WorkspaceId,
        url: &str,
        body: &[u8],
        signed: &SignedHeaders,
    ) -> Result<(), AttemptFailure> {
        let allow_internal = self
            .network
            .allows_internal(workspace)
            .await
            .map_err(|error| AttemptFailure::new(error.to_string()))?;
        let parsed = url::Url::parse(url)
            .map_err(|error| AttemptFailure::new(format!("not a URL: {error}")))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        allowed_addresses(
            &host,
            parsed.port_or_known_default().unwrap_or(80),
            allow_internal,
        )
        .await
        .map_err(|error| AttemptFailure::new(format!("refused: {error}")))?;
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_internal }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| AttemptFailure::new(error.to_string()))?;
        let mut request = client
            .post(parsed)
            .header("content-type", "application/json");
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let response = request
            .body(body.to_vec())
            .send()
            .await
            .map_err(|error| AttemptFailure::new(format!("request failed: {error}")))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(AttemptFailure {
                error: format!("the receiver answered {}", response.status()),
                retry_after: retry_after(&response),
            })
        }
    }
}

/// The seconds of a `Retry-After` header (an HTTP date is not read: the backoff then
/// decides).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

impl OutboundAlerts {
    async fn send_email(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let url = self.smtp_url.as_deref().ok_or(
            "SMTP_URL is not configured, so e-mail alerts and notifications cannot be sent",
        )?;
        let parse = |text: &str| text.parse::<Mailbox>().map_err(|error| error.to_string());
        let message = Message::builder()
            .from(parse(&self.from)?)
            .to(parse(to)?)
            .subject(subject)
            .body(body.to_owned())
            .map_err(|error| error.to_string())?;
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| format!("SMTP_URL: {error}"))?
            .timeout(Some(Duration::from_secs(30)))
            .build()
            .send(message)
            .await
            .map(drop)
            .map_err(|error| format!("SMTP failed: {error}"))
    }
}
