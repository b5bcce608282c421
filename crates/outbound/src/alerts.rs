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

use crate::webhook_post::post_json;

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
        let headers: Vec<(String, String)> = signed
            .pairs()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        post_json(allow_internal, url, &headers, body.to_vec())
            .await
            .result
    }
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
