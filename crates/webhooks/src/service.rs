//! The webhook management use cases: registrations, their events and replays, and the
//! conversations the intake fills.

use std::sync::Arc;

use fluxolab_kernel::standard_webhooks::{self, SigningKey};
use fluxolab_kernel::{
    AuditEvent, AuditLog, Clock, Conflict, ConflictCode, EnvironmentDirectory, EnvironmentRef,
    ExecutionId, ExposeSecret, Failure, Forbidden, IntegrationEvent, IntegrationEventKind,
    IntegrationKind, NoRandomness, Page, PageRequest, Permission, PlanLimitReached, Principal,
    SecretString, StorageError, UnitOfWorkFactory, ValidationErrors, WebhookEventId, WorkflowId,
};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;

use fluxolab_workflows::{RunStarter, StartRequest, Trigger, WorkflowError};

use crate::intake::{Intake, run_input};
use crate::model::{
    Conversation, ConversationId, CreatedRegistration, EventFilter, Message, NewRegistration,
    Provider, Registration, RegistrationPatch, ResponseMode, Verdict, WebhookEvent,
    WebhookRegistrationId,
};
use crate::ports::{ConversationRepository, EventStore, RegistrationRepository};

/// Why a webhook operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is valid but the state does not allow it (its code names why).
    #[error(transparent)]
    Conflict(Conflict),
    #[error(transparent)]
    PlanLimit(#[from] PlanLimitReached),
    /// The period's execution quota is used up (a replay).
    #[error("the workspace's executions for this period are used up")]
    QuotaExceeded { retry_after_seconds: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
}

impl From<WebhookError> for Failure {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Invalid(errors) => Failure::Invalid(errors),
            WebhookError::Forbidden(forbidden) => forbidden.into(),
            WebhookError::NotFound(what) => Failure::NotFound(what),
            WebhookError::Conflict(conflict) => Failure::Conflict(conflict),
            WebhookError::PlanLimit(reached) => reached.into(),
            WebhookError::QuotaExceeded {
                retry_after_seconds,
            } => Failure::QuotaExceeded {
                retry_after_seconds,
            },
            WebhookError::Storage(error) => error.into(),
            WebhookError::Randomness(error) => error.into(),
        }
    }
}

impl From<WorkflowError> for WebhookError {
    fn from(error: WorkflowError) -> Self {
        match error {
            WorkflowError::Invalid(errors) => WebhookError::Invalid(errors),
            WorkflowError::Forbidden(forbidden) => WebhookError::Forbidden(forbidden),
            WorkflowError::NotFound(what) => WebhookError::NotFound(what),
            WorkflowError::PlanLimit(reached) => WebhookError::PlanLimit(reached),
            WorkflowError::QuotaExceeded {
                retry_after_seconds,
            } => WebhookError::QuotaExceeded {
                retry_after_seconds,
            },
            WorkflowError::NotActive { environment } => WebhookError::Conflict(Conflict::new(
                ConflictCode::NoActiveWorkflow,
                format!("the bound workflow is not active in `{environment}`"),
            )),
            WorkflowError::Conflict(conflict) => WebhookError::Conflict(conflict),
            WorkflowError::Storage(error) => WebhookError::Storage(error),
        }
    }
}

/// Bytes of randomness in a generated public id (base62-encoded in the URL).
const PUBLIC_ID_BYTES: usize = 24;
/// Bytes of randomness in a generated signing secret (hex-encoded).
const SECRET_BYTES: usize = 32;
/// The shortest signing secret or verify token accepted.
const MIN_SECRET_CHARS: usize = 8;
/// The longest signing secret or verify token accepted.
const MAX_SECRET_CHARS: usize = 512;

/// What the webhook use cases work with.
pub struct WebhookPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub registrations: Arc<dyn RegistrationRepository>,
    pub events: Arc<dyn EventStore>,
    pub conversations: Arc<dyn ConversationRepository>,
    pub secrets: Arc<dyn fluxolab_kernel::OwnedSecrets>,
    pub audit: Arc<dyn AuditLog>,
    /// Where each change is also recorded as an integration event.
    pub integration_events: Arc<dyn fluxolab_kernel::IntegrationEvents>,
    pub clock: Arc<dyn Clock>,
    pub environments: Arc<dyn EnvironmentDirectory>,
    /// Where a replay's run starts, like every queued run.
    pub starter: Arc<RunStarter>,
}

impl std::fmt::Debug for WebhookPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookPorts").finish_non_exhaustive()
    }
}

/// The webhook management use cases.
#[derive(Debug)]
pub struct WebhookService {
    ports: WebhookPorts,
    intake: Arc<Intake>,
}

/// Random bytes as base62 (URL-safe, no padding).
fn base62(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

fn random(length: usize) -> Result<Vec<u8>, WebhookError> {
    let mut bytes = vec![0_u8; length];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| NoRandomness)?;
    Ok(bytes)
}

/// SHA-256 (hex) of a verify token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(digest(&SHA256, token.as_bytes()).as_ref())
}

fn secret_field(
    field: &str,
    value: Option<&SecretString>,
    errors: &mut ValidationErrors,
) -> Option<SecretString> {
    let value = value?;
    let length = value.expose_secret().chars().count();
    if !(MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&length) {
        errors.add(
            field,
            format!("must be {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters"),
        );
        return None;
    }
    Some(value.clone())
}

/// The message of an unknown provider.
const PROVIDERS: &str = "must be one of meta, hmac_sha256, standard, none";

/// A `standard` registration's secret, when given, is `whsec_` + base64 of 24–64 bytes.
fn check_standard_secret(secret: Option<&SecretString>, errors: &mut ValidationErrors) {
    if secret.is_some_and(|secret| SigningKey::parse(secret).is_none()) {
        errors.add(
            "signing_secret",
            "a `standard` secret is whsec_ followed by the base64 of 24 to 64 bytes",
        );
    }
}

impl WebhookService {
    pub fn new(ports: WebhookPorts, intake: Arc<Intake>) -> Self {
        Self { ports, intake }
    }

    #[tracing::instrument(name = "webhooks.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<Registration>, WebhookError> {
        principal.require(Permission::WebhooksRead)?;
        Ok(self
            .ports
            .registrations
            .list(principal.workspace_id(), page)
            .await?)
    }

    #[tracing::instrument(name = "webhooks.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(
        &self,
        principal: &Principal,
        id: WebhookRegistrationId,
    ) -> Result<Registration, WebhookError> {
        principal.require(Permission::WebhooksRead)?;
        self.ports
            .registrations
            .find(principal.workspace_id(), id)
            .await?
            .ok_or(WebhookError::NotFound("webhook"))
    }

    async fn check_workflow(
        &self,
        principal: &Principal,
        workflow: Option<WorkflowId>,
        errors: &mut ValidationErrors,
    ) -> Result<Option<WorkflowId>, WebhookError> {
        let Some(workflow) = workflow else {
            return Ok(None);
        };
        if self
            .ports
            .registrations
            .workflow_exists(principal.workspace_id(), workflow)
            .await?
        {
            Ok(Some(workflow))
        } else {
            errors.add("workflow_id", "no such workflow in this workspace");
            Ok(None)
        }
    }

    /// The environment `reference` names (default: `production`), or an error on
    /// `environment` in `errors`.
    async fn check_environment(
        &self,
        principal: &Principal,
        reference: Option<&str>,
        errors: &mut ValidationErrors,
    ) -> Result<Option<EnvironmentRef>, WebhookError> {
        let found = self
            .ports
            .environments
            .resolve(principal.workspace_id(), reference)
            .await?;
        if found.is_none() {
            errors.add(
                "environment",
                fluxolab_kernel::environment::unknown_environment(reference),
            );
        }
        Ok(found)
    }

    /// Creates a registration; a signing secret left out of a signed provider is
    /// generated and returned this once.
    #[tracing::instrument(name = "webhooks.create", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn create(
        &self,
        principal: &Principal,
        input: NewRegistration,
    ) -> Result<CreatedRegistration, WebhookError> {
        principal.require(Permission::WebhooksWrite)?;
        let mut errors = ValidationErrors::new();
        let name = fluxolab_kernel::validation::bounded_name(&input.name)
            .map_err(|message| errors.add("name", message))
            .ok();
        let provider = Provider::from_code(&input.provider);
        if provider.is_none() {
            errors.add("provider", PROVIDERS);
        }
        let response_mode = match input.response_mode.as_deref() {
            None => Some(ResponseMode::Immediate),
            Some(code) => ResponseMode::from_code(code).or_else(|| {
                errors.add("response_mode", "must be immediate or respond_node");
                None
            }),
        };
        let verify_token = secret_field("verify_token", input.verify_token.as_ref(), &mut errors);
        let supplied = secret_field("signing_secret", input.signing_secret.as_ref(), &mut errors);
        if provider == Some(Provider::None) && input.signing_secret.is_some() {
            errors.add("signing_secret", "a `none` provider checks no signature");
        }
        if provider == Some(Provider::Standard) {
            check_standard_secret(supplied.as_ref(), &mut errors);
        }
        let workflow = self
            .check_workflow(principal, input.workflow_id, &mut errors)
            .await?;
        let environment = self
            .check_environment(principal, input.environment.as_deref(), &mut errors)
            .await?;
        let (Some(name), Some(provider), Some(response_mode), Some(environment), true) = (
            name,
            provider,
            response_mode,
            environment,
            errors.is_empty(),
        ) else {
            return Err(WebhookError::Invalid(errors));
        };
        let generated_secret = match (provider, &supplied) {
            (Provider::None, _) | (_, Some(_)) => None,
            (Provider::Standard, None) => Some(standard_webhooks::generate_secret()?),
            (Provider::Meta | Provider::HmacSha256, None) => {
                Some(SecretString::from(hex::encode(random(SECRET_BYTES)?)))
            }
        };
        let now = self.ports.clock.now();
        let mut registration = Registration {
            id: WebhookRegistrationId::new(),
            workspace_id: principal.workspace_id(),
            name,
            provider,
            public_id: base62(&random(PUBLIC_ID_BYTES)?),
            verify_token_hash: verify_token
                .as_ref()
                .map(|token| token_hash(token.expose_secret())),
            signing_credential_id: None,
            workflow_id: workflow,
            environment,
            response_mode,
            enabled: true,
            created_at: now,
            updated_at: now,
        };
        let mut unit = self.ports.units.begin().await?;
        if let Some(secret) = supplied.as_ref().or(generated_secret.as_ref()) {
            registration.signing_credential_id = Some(
                self.ports
                    .secrets
                    .store(
                        unit.as_mut(),
                        registration.workspace_id,
                        &format!("Webhook {} signing secret", registration.public_id),
                        secret,
                        principal.user(),
                    )
                    .await?,
            );
        }
        self.ports
            .registrations
            .insert(unit.as_mut(), &registration, principal.user())
            .await?;
        self.audit(
            unit.as_mut(),
            principal,
            ("webhook.created", IntegrationEventKind::Configured),
            &registration,
        )
        .await?;
        unit.commit().await?;
        Ok(CreatedRegistration {
            registration,
            generated_secret,
        })
    }

    /// Records a change in the activity log and as an integration event (`event`).
    async fn audit(
        &self,
        unit: &mut fluxolab_kernel::Uow,
        principal: &Principal,
        (action, event): (&'static str, IntegrationEventKind),
        registration: &Registration,
    ) -> Result<(), StorageError> {
        let name = &registration.name;
        let provider = registration.provider.code();
        let event = IntegrationEvent {
            workspace_id: registration.workspace_id,
            kind: IntegrationKind::Webhooks,
            integration_id: Some(registration.id.as_uuid()),
            event,
            details: json!({"name": name, "provider": provider}),
            actor: Some(principal.actor()),
        };
        let activity = AuditEvent::by(
            principal,
            action,
            ("webhook", registration.id.to_string()),
            json!({
                "name": name,
                "provider": provider,
                "workflow_id": registration.workflow_id.map(|id| id.to_string()),
                "environment": registration.environment.name,
                "enabled": registration.enabled,
            }),
        );
        let logs = (&*self.ports.audit, &*self.ports.integration_events);
        fluxolab_kernel::integrations::record_change(logs, unit, &activity, &event).await
    }

    /// Changes a registration; the intake sees it at once in this process and within
    /// a minute in others (its cache).
    #[tracing::instrument(name = "webhooks.update", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn update(
        &self,
        principal: &Principal,
        id: WebhookRegistrationId,
        patch: RegistrationPatch,
    ) -> Result<Registration, WebhookError> {
        principal.require(Permission::WebhooksWrite)?;
        let mut registration = self.get(principal, id).await?;
        let was_enabled = registration.enabled;
        let mut errors = ValidationErrors::new();
        if let Some(name) = &patch.name {
            match fluxolab_kernel::validation::bounded_name(name) {
                Ok(name) => registration.name = name,
                Err(message) => errors.add("name", message),
            }
        }
        let was_standard = registration.provider == Provider::Standard;
        if let Some(code) = &patch.provider {
            match Provider::from_code(code) {
                Some(provider) => registration.provider = provider,
                None => errors.add("provider", PROVIDERS),
            }
        }
        if let Some(code) = &patch.response_mode {
            match ResponseMode::from_code(code) {
                Some(mode) => registration.response_mode = mode,
                None => errors.add("response_mode", "must be immediate or respond_node"),
            }
        }
        if let Some(token) = &patch.verify_token {
            registration.verify_token_hash = match token {
                None => None,
                Some(token) => secret_field("verify_token", Some(token), &mut errors)
                    .map(|token| token_hash(token.expose_secret())),
            };
        }
        let secret = secret_field("signing_secret", patch.signing_secret.as_ref(), &mut errors);
        if secret.is_some() && !registration.provider.signed() {
            errors.add("signing_secret", "a `none` provider checks no signature");
        }
        if registration.provider == Provider::Standard {
            check_standard_secret(secret.as_ref(), &mut errors);
            if !was_standard && secret.is_none() {
                errors.add(
                    "signing_secret",
                    "is required when switching to `standard`: a whsec_… secret",
                );
            }
        }
        if registration.provider.signed()
            && registration.signing_credential_id.is_none()
            && patch.signing_secret.is_none()
        {
            errors.add(
                "signing_secret",
                "is required: a signed provider needs a secret to check deliveries with",
            );
        }
        if let Some(workflow) = patch.workflow_id {
            registration.workflow_id = self
                .check_workflow(principal, workflow, &mut errors)
                .await?;
        }
        if let Some(enabled) = patch.enabled {
            registration.enabled = enabled;
        }
        if let Some(reference) = patch.environment.as_deref()
            && let Some(environment) = self
                .check_environment(principal, Some(reference), &mut errors)
                .await?
        {
            registration.environment = environment;
        }
        if !errors.is_empty() {
            return Err(WebhookError::Invalid(errors));
        }
        registration.updated_at = self.ports.clock.now();
        let integration_event = match (was_enabled, registration.enabled) {
            (false, true) => IntegrationEventKind::Enabled,
            (true, false) => IntegrationEventKind::Disabled,
            _ => IntegrationEventKind::Updated,
        };
        let mut unit = self.ports.units.begin().await?;
        if let Some(secret) = secret {
            if let Some(replaced) = registration.signing_credential_id {
                self.ports
                    .secrets
                    .discard(unit.as_mut(), registration.workspace_id, replaced)
                    .await?;
            }
            registration.signing_credential_id = Some(
                self.ports
                    .secrets
                    .store(
                        unit.as_mut(),
                        registration.workspace_id,
                        &format!(
                            "Webhook {} signing secret {}",
                            registration.public_id,
                            registration.updated_at.unix_timestamp_nanos()
                        ),
                        &secret,
                        principal.user(),
                    )
                    .await?,
            );
        }
        self.ports
            .registrations
            .update(unit.as_mut(), &registration)
            .await?;
        self.audit(
            unit.as_mut(),
            principal,
            ("webhook.updated", integration_event),
            &registration,
        )
        .await?;
        unit.commit().await?;
        self.intake.forget(&registration.public_id);
        Ok(registration)
    }

    /// Deletes a registration and its events; its URL answers 404 from then on.
    #[tracing::instrument(name = "webhooks.delete", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn delete(
        &self,
        principal: &Principal,
        id: WebhookRegistrationId,
    ) -> Result<(), WebhookError> {
        principal.require(Permission::WebhooksWrite)?;
        let registration = self.get(principal, id).await?;
        let mut unit = self.ports.units.begin().await?;
        if !self
            .ports
            .registrations
            .delete(unit.as_mut(), registration.workspace_id, id)
            .await?
        {
            return Err(WebhookError::NotFound("webhook"));
        }
        if let Some(secret) = registration.signing_credential_id {
            self.ports
                .secrets
                .discard(unit.as_mut(), registration.workspace_id, secret)
                .await?;
        }
        self.audit(
            unit.as_mut(),
            principal,
            ("webhook.deleted", IntegrationEventKind::Removed),
            &registration,
        )
        .await?;
        unit.commit().await?;
        self.intake.forget(&registration.public_id);
        Ok(())
    }

    /// Events of the workspace, or of one registration of it.
    #[tracing::instrument(name = "webhooks.events", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn events(
        &self,
        principal: &Principal,
        filter: &EventFilter,
        page: PageRequest,
    ) -> Result<Page<WebhookEvent>, WebhookError> {
        principal.require(Permission::WebhooksRead)?;
        if let Some(registration) = filter.registration_id {
            self.get(principal, registration).await?;
        }
        Ok(self
            .ports
            .events
            .list(principal.workspace_id(), filter, page)
            .await?)
    }

    /// One event with its headers and body; `registration` (when the path names one)
    /// must be the event's.
    #[tracing::instrument(name = "webhooks.event", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn event(
        &self,
        principal: &Principal,
        registration: Option<WebhookRegistrationId>,
        id: WebhookEventId,
    ) -> Result<WebhookEvent, WebhookError> {
        principal.require(Permission::WebhooksRead)?;
        self.ports
            .events
            .find(principal.workspace_id(), id)
            .await?
            .filter(|event| registration.is_none_or(|wanted| wanted == event.registration_id))
            .ok_or(WebhookError::NotFound("webhook event"))
    }

    /// Runs the registration's active workflow again with the event's stored body.
    #[tracing::instrument(name = "webhooks.replay", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn replay(
        &self,
        principal: &Principal,
        registration: Option<WebhookRegistrationId>,
        id: WebhookEventId,
    ) -> Result<ExecutionId, WebhookError> {
        principal.require(Permission::WebhooksWrite)?;
        principal.require(Permission::WorkflowsRun)?;
        let event = self.event(principal, registration, id).await?;
        if event.verdict == Verdict::Rejected {
            return Err(WebhookError::Conflict(Conflict::new(
                ConflictCode::EventRejected,
                format!(
                    "a rejected event ({}) is never run: its sender was not verified",
                    event.reason.as_deref().unwrap_or("rejected")
                ),
            )));
        }
        let no_active_workflow = || {
            WebhookError::Conflict(Conflict::new(
                ConflictCode::NoActiveWorkflow,
                "the webhook has no active workflow bound to run",
            ))
        };
        let registration = self
            .ports
            .registrations
            .find(event.workspace_id, event.registration_id)
            .await?
            .ok_or(WebhookError::NotFound("webhook"))?;
        let workflow = registration.workflow_id.ok_or_else(no_active_workflow)?;
        self.ports
            .starter
            .start(
                principal,
                StartRequest {
                    workflow,
                    environment: registration.environment,
                    version: None,
                    trigger: Trigger::Replay { event: event.id },
                    input: run_input(event.payload.as_ref(), &event.body),
                },
            )
            .await
            .map_err(|error| match error {
                WorkflowError::NotActive { .. } | WorkflowError::NotFound(_) => {
                    no_active_workflow()
                }
                other => other.into(),
            })
    }

    #[tracing::instrument(name = "webhooks.conversations", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn conversations(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<Conversation>, WebhookError> {
        principal.require(Permission::WebhooksRead)?;
        Ok(self
            .ports
            .conversations
            .list(principal.workspace_id(), page)
            .await?)
    }

    #[tracing::instrument(name = "webhooks.messages", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn messages(
        &self,
        principal: &Principal,
        conversation: ConversationId,
        page: PageRequest,
    ) -> Result<Page<Message>, WebhookError> {
        principal.require(Permission::WebhooksRead)?;
        let workspace = principal.workspace_id();
        self.ports
            .conversations
            .find(workspace, conversation)
            .await?
            .ok_or(WebhookError::NotFound("conversation"))?;
        Ok(self
            .ports
            .conversations
            .messages(workspace, conversation, page)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_are_long_and_url_safe() {
        let id = base62(&[0, 61, 62, 255]);
        assert_eq!(id, "0z07");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn tokens_are_stored_as_their_digest() {
        assert_eq!(token_hash("abc").len(), 64);
        assert_ne!(token_hash("abc"), token_hash("abd"));
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod decisions;
