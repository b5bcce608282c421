//! Delivering usage alert firings from the outbox: an e-mail, or a webhook signed with
//! the alert's `whsec_…` secret (Standard Webhooks; the message id is the firing's, the
//! same on every retry). Each attempt is counted on the firing.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::outbox::{AttemptFailure, Deliverer, Pending};
use fluxolab_kernel::standard_webhooks::{self, SigningKey};
use fluxolab_kernel::{Clock, OwnedSecrets};
use serde_json::json;

use crate::alerts::{AlertChannel, AlertEventId, AlertNotifier, AlertRepository, Delivery};

/// The JSON an alert sends.
pub fn alert_payload(delivery: &Delivery) -> serde_json::Value {
    json!({
        "alert_id": delivery.alert.id.to_string(),
        "workspace_id": delivery.alert.workspace_id.to_string(),
        "metric": delivery.alert.metric,
        "threshold_percent": delivery.event.threshold_percent,
        "used": delivery.event.used,
        "limit": delivery.event.limit,
        "period_start": delivery.event.period_start.unix_timestamp(),
        "event_id": delivery.event.id.to_string(),
    })
}

/// The outbox's deliverer of `usage_alert` messages.
pub struct AlertDeliverer {
    pub alerts: Arc<dyn AlertRepository>,
    pub secrets: Arc<dyn OwnedSecrets>,
    pub notifier: Arc<dyn AlertNotifier>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AlertDeliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertDeliverer").finish_non_exhaustive()
    }
}

impl AlertDeliverer {
    async fn send(&self, delivery: &Delivery) -> Result<(), AttemptFailure> {
        let alert = &delivery.alert;
        let event = &delivery.event;
        match alert.channel {
            AlertChannel::Email => {
                let metric = alert.metric.replace('_', " ");
                let subject = format!(
                    "FluxoLab: {metric} at {} % of your plan",
                    event.threshold_percent
                );
                let body = format!(
                    "Your workspace has used {} of its {} {metric} this period ({} % alert).\n",
                    event.used, event.limit, event.threshold_percent
                );
                self.notifier.email(&alert.target, &subject, &body).await
            }
            AlertChannel::Webhook => {
                let current = alert
                    .secret_credential_id
                    .ok_or_else(|| AttemptFailure::new("the alert's signing secret is gone"))?;
                let mut keys = Vec::new();
                for credential in standard_webhooks::signing_secrets(
                    current,
                    alert.previous_secret,
                    self.clock.now(),
                ) {
                    let secret = self
                        .secrets
                        .open(alert.workspace_id, credential)
                        .await
                        .map_err(|error| AttemptFailure::new(error.to_string()))?;
                    keys.push(SigningKey::parse(&secret).ok_or_else(|| {
                        AttemptFailure::new(
                            "the alert's signing secret is not a Standard Webhooks secret",
                        )
                    })?);
                }
                let body = alert_payload(delivery).to_string();
                let signed = standard_webhooks::sign(
                    &keys,
                    &format!("msg_{}", event.id),
                    self.clock.now(),
                    body.as_bytes(),
                );
                self.notifier
                    .webhook(alert.workspace_id, &alert.target, body.as_bytes(), &signed)
                    .await
            }
        }
    }
}

#[async_trait]
impl Deliverer for AlertDeliverer {
    async fn deliver(&self, messages: &[Pending]) -> Result<(), AttemptFailure> {
        for pending in messages {
            let Some(event) = pending.message.payload["alert_event_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .map(AlertEventId::from_uuid)
            else {
                tracing::error!(message_id = %pending.message.id, "an alert message without its event; dropped");
                continue;
            };
            let storage =
                |error: fluxolab_kernel::StorageError| AttemptFailure::new(error.to_string());
            // A deleted alert takes its firings with it: nothing left to send.
            let Some(delivery) = self.alerts.delivery(event).await.map_err(storage)? else {
                continue;
            };
            let outcome = self.send(&delivery).await;
            self.alerts
                .attempted(
                    event,
                    outcome.as_ref().err().map(|failure| failure.error.as_str()),
                )
                .await
                .map_err(storage)?;
            outcome?;
        }
        Ok(())
    }
}
