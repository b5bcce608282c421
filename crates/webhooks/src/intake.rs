//! The intake's hot path: find the registration (cached), check the handshake or the
//! signature over the raw bytes, and store the event with its execution in one write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fluxolab_kernel::standard_webhooks::{self, ReceivedHeaders, SigningKey, Verification};
use fluxolab_kernel::{
    Clock, ExecutionId, ExposeSecret, SecretString, StorageError, WebhookEventId,
};
use fluxolab_workflows::RunStarter;
use fluxolab_workflows::start::DeliveryAdmission;
use ring::digest::{SHA256, digest};
use serde_json::Value;

use crate::model::{
    Provider, Registration, RejectReason, ResponseMode, Verdict, WebhookRegistrationId,
};
use crate::ports::{DedupeKeys, EventStore, NewEvent, Recording, RegistrationRepository};
use crate::service::token_hash;
use crate::signature::{SignatureVerdict, verify_hub_signature};
use crate::whatsapp;

/// How long a registration (and its secret) is trusted from the cache: other
/// processes see a change within this.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Why a delivery or handshake was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("no webhook at this address")]
    NotFound,
    #[error("this webhook is disabled")]
    Disabled,
    #[error("the verify token does not match")]
    HandshakeRefused,
    #[error("{}", describe(*.0))]
    Rejected(RejectReason),
    /// Over the workspace's per-minute webhook rate; not stored.
    #[error("over the workspace's webhook rate; retry in {0} s")]
    RateLimited(u64),
    /// The period's execution quota is used up; stored with verdict `quota_exceeded`.
    #[error(
        "the workspace's executions for this period are used up; the event is stored but not run"
    )]
    QuotaExceeded(u64),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn describe(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::MissingSignature => {
            "the signature is missing (X-Hub-Signature-256, or webhook-id, webhook-timestamp and webhook-signature for a `standard` webhook)"
        }
        RejectReason::BadSignature => "the signature does not match the body",
        RejectReason::StaleTimestamp => {
            "webhook-timestamp is not a unix time within five minutes of now"
        }
        RejectReason::InvalidJson => "the body is not valid JSON",
    }
}

/// A delivery as received.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The raw body, exactly as received.
    pub body: Vec<u8>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<String>,
    /// The Standard Webhooks headers.
    pub standard: ReceivedHeaders,
    /// The headers worth keeping (never authorisation).
    pub headers: Value,
}

/// What the intake did with a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub event_id: WebhookEventId,
    pub verdict: Verdict,
    pub execution_id: Option<ExecutionId>,
    pub response_mode: ResponseMode,
    /// The workspace the delivery belongs to.
    pub workspace_id: fluxolab_kernel::WorkspaceId,
}

/// A registration as the intake needs it.
struct Target {
    registration: Registration,
    secret: Option<SecretString>,
    /// The key of a `standard` registration's secret (`None` when it does not parse:
    /// every delivery is then a mismatch).
    standard_key: Option<SigningKey>,
}

/// The intake settings.
#[derive(Clone, Copy, Debug)]
pub struct IntakeSettings {
    /// Rejected deliveries stored per registration per minute (the rest are counted
    /// in metrics only).
    pub rejected_per_minute: u32,
}

/// Receives deliveries.
pub struct Intake {
    registrations: Arc<dyn RegistrationRepository>,
    events: Arc<dyn EventStore>,
    secrets: Arc<dyn fluxolab_kernel::OwnedSecrets>,
    /// Decides whether a delivery may start its run (rate, quota) and which run.
    starter: Arc<RunStarter>,
    clock: Arc<dyn Clock>,
    settings: IntakeSettings,
    cache: moka::sync::Cache<String, Option<Arc<Target>>>,
    /// Per registration: the minute (unix) and the rejections stored in it.
    rejections: Mutex<HashMap<WebhookRegistrationId, (i64, u32)>>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What a run started by a delivery gets as its trigger body: the JSON payload, or the
/// raw body as text when it is not JSON.
pub fn run_input(payload: Option<&Value>, body: &[u8]) -> Value {
    match payload {
        Some(payload) => payload.clone(),
        None => Value::String(String::from_utf8_lossy(body).into_owned()),
    }
}

/// SHA-256 (hex) of a body.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(digest(&SHA256, body).as_ref())
}

impl Intake {
    pub fn new(
        registrations: Arc<dyn RegistrationRepository>,
        events: Arc<dyn EventStore>,
        secrets: Arc<dyn fluxolab_kernel::OwnedSecrets>,
        starter: Arc<RunStarter>,
        clock: Arc<dyn Clock>,
        settings: IntakeSettings,
    ) -> Self {
        Self {
            registrations,
            events,
            secrets,
            starter,
            clock,
            settings,
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
            rejections: Mutex::default(),
        }
    }

    /// Gets the event store ready for deliveries (a server calls it as it starts).
    pub fn start(&self) {
        self.events.start();
    }

    /// Drops a registration from this process's cache (after a change).
    pub fn forget(&self, public_id: &str) {
        self.cache.invalidate(public_id);
    }

    /// The registration behind `public_id`, from the cache or (at most once a
    /// minute) the database; unknown ids are cached too, so probing costs no queries.
    async fn target(&self, public_id: &str) -> Result<Arc<Target>, IntakeError> {
        if let Some(cached) = self.cache.get(public_id) {
            return cached.ok_or(IntakeError::NotFound);
        }
        let found = match self.registrations.find_public(public_id).await? {
            None => None,
            Some(registration) => {
                let secret = match (
                    registration.provider.signed(),
                    registration.signing_credential_id,
                ) {
                    (true, Some(credential)) => Some(
                        self.secrets
                            .open(registration.workspace_id, credential)
                            .await?,
                    ),
                    _ => None,
                };
                let standard_key = secret
                    .as_ref()
                    .filter(|_| registration.provider == Provider::Standard)
                    .and_then(SigningKey::parse);
                Some(Arc::new(Target {
                    registration,
                    secret,
                    standard_key,
                }))
            }
        };
        self.cache.insert(public_id.to_owned(), found.clone());
        found.ok_or(IntakeError::NotFound)
    }

    /// The subscription handshake: the challenge when `mode` is `subscribe` and the
    /// token matches the registration's.
    #[tracing::instrument(name = "webhooks.handshake", skip_all, fields(workspace_id = tracing::field::Empty))]
    pub async fn handshake(
        &self,
        public_id: &str,
        mode: Option<&str>,
        token: Option<&str>,
        challenge: Option<&str>,
    ) -> Result<String, IntakeError> {
        let target = self.target(public_id).await?;
        tracing::Span::current().record(
            "workspace_id",
            tracing::field::display(target.registration.workspace_id),
        );
        if !target.registration.enabled {
            return Err(IntakeError::Disabled);
        }
        let (Some("subscribe"), Some(token), Some(challenge), Some(expected)) = (
            mode,
            token,
            challenge,
            target.registration.verify_token_hash.as_deref(),
        ) else {
            return Err(IntakeError::HandshakeRefused);
        };
        let given = token_hash(token);
        if !fluxolab_kernel::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(IntakeError::HandshakeRefused);
        }
        Ok(challenge.to_owned())
    }

    /// Whether another rejection of `registration` may be stored this minute.
    fn may_store_rejection(&self, registration: WebhookRegistrationId) -> bool {
        let minute = self.clock.now().unix_timestamp() / 60;
        let Ok(mut counts) = self.rejections.lock() else {
            return false;
        };
        if counts.len() > 10_000 {
            counts.retain(|_, (seen, _)| *seen == minute);
        }
        let entry = counts.entry(registration).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.settings.rejected_per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }

    async fn reject(
        &self,
        event: &NewEvent,
        reason: RejectReason,
    ) -> Result<Received, IntakeError> {
        if self.may_store_rejection(event.registration_id) {
            self.events
                .record_unrun(event, Verdict::Rejected, Some(reason.code()))
                .await?;
        } else {
            tracing::debug!(registration_id = %event.registration_id, reason = reason.code(), "rejected delivery not stored (over the per-minute allowance)");
        }
        Err(IntakeError::Rejected(reason))
    }

    /// Judges and stores a delivery; a new, valid one queues the bound workflow.
    pub async fn receive(
        &self,
        public_id: &str,
        delivery: Delivery,
    ) -> Result<Received, IntakeError> {
        let target = self.target(public_id).await?;
        if !target.registration.enabled {
            return Err(IntakeError::Disabled);
        }
        self.judge(&target, delivery).await
    }

    /// `receive` for a known, enabled registration: its span is opened with the
    /// workspace already known (no field recorded later), and never for unknown ids
    /// or disabled registrations, so probing them costs no span. Nothing of the
    /// delivery (body, headers, signature) goes into the span.
    /// Whether the delivery carries a valid signature for the registration's provider.
    fn check_signature(
        &self,
        target: &Target,
        (hub_signature, standard): (Option<&str>, &ReceivedHeaders),
        body: &[u8],
    ) -> Result<(), RejectReason> {
        let verdict = match (target.registration.provider, &target.secret) {
            (Provider::None, _) => return Ok(()),
            (Provider::Standard, _) => {
                // A standard registration whose secret does not parse verifies nothing.
                let Some(key) = &target.standard_key else {
                    return Err(RejectReason::BadSignature);
                };
                return match standard_webhooks::verify(key, standard, body, self.clock.now()) {
                    Verification::Valid => Ok(()),
                    Verification::Missing => Err(RejectReason::MissingSignature),
                    Verification::BadTimestamp => Err(RejectReason::StaleTimestamp),
                    Verification::Mismatch => Err(RejectReason::BadSignature),
                };
            }
            (Provider::Meta | Provider::HmacSha256, Some(secret)) => {
                verify_hub_signature(secret.expose_secret().as_bytes(), body, hub_signature)
            }
            // A signed provider without a secret can verify nothing.
            (Provider::Meta | Provider::HmacSha256, None) => SignatureVerdict::Mismatch,
        };
        match verdict {
            SignatureVerdict::Valid => Ok(()),
            SignatureVerdict::Missing => Err(RejectReason::MissingSignature),
            SignatureVerdict::Malformed | SignatureVerdict::Mismatch => {
                Err(RejectReason::BadSignature)
            }
        }
    }

    #[tracing::instrument(name = "webhooks.receive", skip_all, fields(workspace_id = %target.registration.workspace_id))]
    async fn judge(&self, target: &Target, delivery: Delivery) -> Result<Received, IntakeError> {
        let registration = &target.registration;
        let Delivery {
            body,
            signature,
            standard,
            headers,
        } = delivery;
        let event = NewEvent::received(registration.workspace_id, registration.id, body, headers);
        if let Err(reason) =
            self.check_signature(target, (signature.as_deref(), &standard), &event.body)
        {
            return self.reject(&event, reason).await;
        }
        if registration.provider == Provider::Meta && event.payload.is_none() {
            return self.reject(&event, RejectReason::InvalidJson).await;
        }
        let run = match self
            .starter
            .admit_delivery(registration.workspace_id)
            .await?
        {
            DeliveryAdmission::Run(run) => run,
            DeliveryAdmission::RateLimited {
                retry_after_seconds,
            } => return Err(IntakeError::RateLimited(retry_after_seconds)),
            DeliveryAdmission::QuotaExceeded {
                retry_after_seconds,
            } => {
                // Kept, so nothing the sender delivered is lost; not run.
                self.events
                    .record_unrun(&event, Verdict::QuotaExceeded, None)
                    .await?;
                return Err(IntakeError::QuotaExceeded(retry_after_seconds));
            }
        };
        let extracted = event
            .payload
            .as_ref()
            .filter(|_| registration.provider == Provider::Meta)
            .map(whatsapp::extract)
            .unwrap_or_default();
        let event_id = event.id;
        let mut recording = Recording::new(event, extracted, run);
        if registration.provider == Provider::Standard
            && let Some(id) = standard.id.as_deref()
        {
            recording.dedupe_keys = DedupeKeys::sent_as(id.trim());
        }
        let recorded = self.events.record(recording).await?;
        Ok(Received {
            event_id,
            verdict: recorded.verdict,
            execution_id: recorded.execution_id,
            response_mode: registration.response_mode,
            workspace_id: registration.workspace_id,
        })
    }
}

#[cfg(test)]
#[path = "intake_tests.rs"]
mod tests;
