//! Delivering log events from the outbox: up to 500 per HTTP batch (signed with the
//! destination's current secret, and its previous one during a rotation's grace) or as
//! syslog messages over one connection. Each attempt is listed with the destination's
//! deliveries; 24 hours of failures turn it `failing` (an integration event and an
//! activity), the next success turns it back.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::outbox::{AttemptFailure, Deliverer, Expired, Pending};
use fluxolab_kernel::standard_webhooks::{self, SigningKey};
use fluxolab_kernel::{
    AuditEvent, AuditLog, Clock, IntegrationEvent, IntegrationEventKind, IntegrationEvents,
    IntegrationKind, OwnedSecrets, StorageError, UnitOfWorkFactory, integrations::record_change,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::FAILING_AFTER;
use super::model::{self, DestinationConfig, DestinationStatus, LogDestination};
use super::ports::{
    DeliveryAttempt, LogDestinationRepository, LogSink, SinkAnswer, SyslogMessage, SyslogTarget,
};

/// The most events one HTTP batch carries.
pub const BATCH_SIZE: usize = 500;

/// Sends events to one destination.
pub(crate) struct Sender<'a> {
    pub secrets: &'a dyn OwnedSecrets,
    pub sink: &'a dyn LogSink,
    pub clock: &'a dyn Clock,
}

impl Sender<'_> {
    /// Sends `events` to `destination`; `batch_id` names an HTTP batch (the same on
    /// every retry of it).
    pub async fn send(
        &self,
        destination: &LogDestination,
        events: &[Value],
        batch_id: &str,
    ) -> Result<SinkAnswer, StorageError> {
        match &destination.config {
            DestinationConfig::Http { url, headers } => {
                let Some(keys) = self.signing_keys(destination).await? else {
                    return Ok(SinkAnswer::refused(
                        "the destination's signing secret is gone",
                    ));
                };
                let body = json!({"workspace_id": destination.workspace_id, "events": events})
                    .to_string()
                    .into_bytes();
                let signed = standard_webhooks::sign(&keys, batch_id, self.clock.now(), &body);
                let sealed = super::sealed_headers(self.secrets, destination).await?;
                let mut sent: Vec<(String, String)> = headers
                    .iter()
                    .filter_map(|header| {
                        let value = match &header.value {
                            Some(value) => Some(value.clone()),
                            None => sealed.get(&header.name.to_ascii_lowercase()).cloned(),
                        };
                        value.map(|value| (header.name.clone(), value))
                    })
                    .collect();
                sent.extend(
                    signed
                        .pairs()
                        .into_iter()
                        .map(|(name, value)| (name.to_owned(), value.to_owned())),
                );
                Ok(self
                    .sink
                    .post(destination.workspace_id, url, sent, body)
                    .await)
            }
            DestinationConfig::Syslog {
                host,
                port,
                transport,
                app_name,
            } => {
                let target = SyslogTarget {
                    host: host.clone(),
                    port: *port,
                    transport: *transport,
                    app_name: app_name.clone(),
                };
                let messages: Vec<SyslogMessage> = events
                    .iter()
                    .map(|event| syslog_message(event, self.clock.now()))
                    .collect();
                Ok(self
                    .sink
                    .syslog(destination.workspace_id, &target, &messages)
                    .await)
            }
        }
    }

    /// The current secret, and the previous one while its grace lasts; `None` when the
    /// current one is missing.
    async fn signing_keys(
        &self,
        destination: &LogDestination,
    ) -> Result<Option<Vec<SigningKey>>, StorageError> {
        let Some(current) = destination.signing_secret else {
            return Ok(None);
        };
        let credentials = standard_webhooks::signing_secrets(
            current,
            destination.previous_secret,
            self.clock.now(),
        );
        let mut keys = Vec::new();
        for credential in credentials {
            let secret = self
                .secrets
                .open(destination.workspace_id, credential)
                .await?;
            keys.push(SigningKey::parse(&secret).ok_or_else(|| {
                StorageError::corrupt("a log destination's signing secret is not a whsec_ secret")
            })?);
        }
        Ok(Some(keys))
    }
}

/// An event as a syslog message: its type, workspace and time, with a warning severity
/// for a failed run or a refused webhook delivery.
fn syslog_message(event: &Value, now: OffsetDateTime) -> SyslogMessage {
    let text = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
    let failed = event["status"] == "failed" || event["verdict"] == "rejected";
    SyslogMessage {
        timestamp: OffsetDateTime::parse(&text("occurred_at"), &Rfc3339).unwrap_or(now),
        severity: if failed { 4 } else { 6 },
        event_type: text("type"),
        workspace_id: text("workspace_id"),
        message: event.to_string(),
    }
}

/// The outbox's deliverer of `log_event` messages.
pub struct LogDeliverer {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub destinations: Arc<dyn LogDestinationRepository>,
    pub secrets: Arc<dyn OwnedSecrets>,
    pub sink: Arc<dyn LogSink>,
    pub audit: Arc<dyn AuditLog>,
    pub integration_events: Arc<dyn IntegrationEvents>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LogDeliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDeliverer").finish_non_exhaustive()
    }
}

#[allow(clippy::needless_pass_by_value)] // a `map_err` adapter
fn storage(error: StorageError) -> AttemptFailure {
    AttemptFailure::new(error.to_string())
}

impl LogDeliverer {
    /// Records how the attempt went on the destination: a success clears a run of
    /// failures (and a `failing` status), a failure starts one or, after
    /// [`FAILING_AFTER`], turns the destination `failing`.
    async fn record_health(
        &self,
        destination: &LogDestination,
        at: OffsetDateTime,
        failure: Option<&AttemptFailure>,
    ) -> Result<(), StorageError> {
        let (status, failing_since, delivered_at) = match failure {
            None => (DestinationStatus::Active, None, Some(at)),
            Some(_) => {
                let since = destination.failing_since.unwrap_or(at);
                let status = if at - since >= FAILING_AFTER {
                    DestinationStatus::Failing
                } else {
                    destination.status
                };
                (status, Some(since), destination.last_delivered_at)
            }
        };
        let turned = status != destination.status;
        if !turned && failing_since == destination.failing_since && failure.is_some() {
            return Ok(());
        }
        let mut unit = self.units.begin().await?;
        self.destinations
            .set_health(
                unit.as_mut(),
                destination.id,
                status,
                failing_since,
                delivered_at,
            )
            .await?;
        if turned {
            let (action, event, details) = match (status, failure) {
                (DestinationStatus::Failing, Some(failure)) => (
                    "log_destination.failing",
                    IntegrationEventKind::DeliveryFailed,
                    json!({"name": destination.name, "status": "failing", "error": failure.error,
                           "failing_since": failing_since.and_then(|since| since.format(&Rfc3339).ok())}),
                ),
                _ => (
                    "log_destination.recovered",
                    IntegrationEventKind::Tested,
                    json!({"name": destination.name, "status": "active", "detail": "delivering again"}),
                ),
            };
            let activity = AuditEvent {
                workspace_id: destination.workspace_id,
                actor: None,
                action,
                target: Some(("log_destination", destination.id.to_string())),
                metadata: details.clone(),
            };
            let event = IntegrationEvent {
                workspace_id: destination.workspace_id,
                kind: IntegrationKind::LogDestinations,
                integration_id: Some(destination.id.as_uuid()),
                event,
                details,
                actor: None,
            };
            record_change(
                (&*self.audit, &*self.integration_events),
                unit.as_mut(),
                &activity,
                &event,
            )
            .await?;
        }
        unit.commit().await
    }
}

#[async_trait]
impl Deliverer for LogDeliverer {
    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }

    async fn deliver(&self, messages: &[Pending]) -> Result<(), AttemptFailure> {
        let Some(first) = messages.first() else {
            return Ok(());
        };
        let Some(id) = model::destination_of(&first.message.destination) else {
            tracing::error!(destination = %first.message.destination, "a log event for no log destination; dropped");
            return Ok(());
        };
        // A deleted destination took its queue with it: nothing left to send.
        let Some(destination) = self.destinations.get(id).await.map_err(storage)? else {
            return Ok(());
        };
        if !destination.enabled {
            return Err(AttemptFailure {
                error: "the destination is disabled".into(),
                retry_after: Some(std::time::Duration::from_secs(60)),
            });
        }
        let events: Vec<Value> = messages
            .iter()
            .map(|pending| pending.message.payload.clone())
            .collect();
        let sender = Sender {
            secrets: &*self.secrets,
            sink: &*self.sink,
            clock: &*self.clock,
        };
        let batch_id = format!("msg_{}_{}", first.message.id, messages.len());
        let at = self.clock.now();
        let answer = sender
            .send(&destination, &events, &batch_id)
            .await
            .map_err(storage)?;
        self.destinations
            .record_attempt(&DeliveryAttempt::of(
                &destination,
                at,
                events.len(),
                &answer,
                false,
            ))
            .await
            .map_err(storage)?;
        self.record_health(&destination, at, answer.result.as_ref().err())
            .await
            .map_err(storage)?;
        answer.result
    }

    async fn sweep(&self, retention: std::time::Duration) -> Result<(), StorageError> {
        let pruned = self.destinations.prune_attempts(retention).await?;
        tracing::debug!(pruned, "old log delivery attempts deleted");
        Ok(())
    }

    async fn expired(&self, expired: &Expired) -> Result<(), StorageError> {
        let Some(id) = model::destination_of(&expired.destination) else {
            return Ok(());
        };
        let Some(destination) = self.destinations.get(id).await? else {
            return Ok(());
        };
        self.integration_events
            .record(&IntegrationEvent {
                workspace_id: destination.workspace_id,
                kind: IntegrationKind::LogDestinations,
                integration_id: Some(destination.id.as_uuid()),
                event: IntegrationEventKind::DeliveryFailed,
                details: json!({
                    "name": destination.name,
                    "dropped": expired.dropped,
                    "error": format!("{} undelivered events were older than the retention and were dropped", expired.dropped),
                }),
                actor: None,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_is_a_warning_and_keeps_its_time() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let message = syslog_message(
            &json!({"type": "executions", "status": "failed", "workspace_id": "w",
                    "occurred_at": "2026-12-07T01:02:03.5+00:00"}),
            now,
        );
        assert_eq!(message.severity, 4);
        assert_eq!(message.event_type, "executions");
        assert_eq!(message.timestamp.unix_timestamp(), 1_796_605_323);
        let info = syslog_message(&json!({"type": "activities", "occurred_at": "nope"}), now);
        assert_eq!((info.severity, info.timestamp), (6, now));
    }
}
