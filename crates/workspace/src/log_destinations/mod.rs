//! Log destinations: where a workspace streams its activity log, API-key audit, finished
//! runs and webhook verdicts — JSON batches over HTTP signed with Standard Webhooks, or
//! RFC 5424 syslog over TCP/TLS. Events are captured into the outbox by the database in
//! the transaction that records them; [`delivery::LogDeliverer`] sends them.

pub mod delivery;
pub mod model;
mod ports;

use std::sync::Arc;

use fluxolab_kernel::standard_webhooks;
use fluxolab_kernel::{
    AuditLog, Clock, Conflict, ConflictCode, CredentialId, Failure, Forbidden, IntegrationEvent,
    IntegrationEventKind, IntegrationEvents, IntegrationKind, NoRandomness, OwnedSecrets, Page,
    PageRequest, Permission, Principal, SecretString, StorageError, UnitOfWorkFactory, Uow,
    ValidationErrors, WorkspaceId,
    integrations::{Changed, record_change_by},
    validation::bounded_name,
};
use serde_json::{Value, json};
use time::Duration;

pub use model::{
    DestinationConfig, DestinationStatus, EventType, Header, LogDestination, LogDestinationId,
    Transport,
};
pub use ports::{
    DeliveryAttempt, LogDestinationRepository, LogSink, SinkAnswer, SyslogMessage, SyslogTarget,
};

/// How long deliveries may fail before a destination turns `failing`.
pub const FAILING_AFTER: Duration = Duration::hours(24);

/// A destination as submitted for creation.
#[derive(Clone, Debug)]
pub struct NewDestination {
    pub name: String,
    pub kind: String,
    pub event_types: Vec<String>,
    pub enabled: Option<bool>,
    pub config: Value,
}

/// Changes to a destination; `None` keeps a field. A new `config` keeps the kind and
/// replaces the whole configuration (a secret header without a value keeps its own).
#[derive(Clone, Debug, Default)]
pub struct DestinationPatch {
    pub name: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub config: Option<Value>,
}

/// A created destination and, for `http`, its signing secret (shown once).
#[derive(Debug)]
pub struct Created {
    pub destination: LogDestination,
    pub signing_secret: Option<SecretString>,
}

/// What a test delivery found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestReport {
    pub delivered: bool,
    pub status_code: Option<u16>,
    pub latency_ms: u32,
    pub error: Option<String>,
}

/// Why a destination operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("log destination not found")]
    NotFound,
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
}

impl From<DestinationError> for Failure {
    fn from(error: DestinationError) -> Self {
        match error {
            DestinationError::Invalid(errors) => Failure::Invalid(errors),
            DestinationError::Forbidden(forbidden) => forbidden.into(),
            DestinationError::NotFound => Failure::NotFound("log destination"),
            DestinationError::Conflict(conflict) => Failure::Conflict(conflict),
            DestinationError::Storage(error) => error.into(),
            DestinationError::Randomness(error) => error.into(),
        }
    }
}

/// What the destination use cases work with.
pub struct DestinationPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub destinations: Arc<dyn LogDestinationRepository>,
    /// Signing secrets and secret header values, sealed in the vault.
    pub secrets: Arc<dyn OwnedSecrets>,
    pub sink: Arc<dyn LogSink>,
    pub audit: Arc<dyn AuditLog>,
    pub integration_events: Arc<dyn IntegrationEvents>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DestinationPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationPorts").finish_non_exhaustive()
    }
}

/// The log destination use cases.
#[derive(Debug)]
pub struct DestinationService {
    ports: Arc<DestinationPorts>,
}

impl DestinationService {
    pub fn new(ports: Arc<DestinationPorts>) -> Self {
        Self { ports }
    }

    #[tracing::instrument(name = "log_destinations.list", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn list(
        &self,
        principal: &Principal,
    ) -> Result<Vec<LogDestination>, DestinationError> {
        principal.require(Permission::SettingsRead)?;
        Ok(self
            .ports
            .destinations
            .list(principal.workspace_id())
            .await?)
    }

    #[tracing::instrument(name = "log_destinations.get", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn get(
        &self,
        principal: &Principal,
        id: LogDestinationId,
    ) -> Result<LogDestination, DestinationError> {
        principal.require(Permission::SettingsRead)?;
        self.ports
            .destinations
            .find(principal.workspace_id(), id)
            .await?
            .ok_or(DestinationError::NotFound)
    }

    async fn check_name(
        &self,
        workspace: WorkspaceId,
        raw: &str,
        errors: &mut ValidationErrors,
    ) -> Result<Option<String>, DestinationError> {
        let name = match bounded_name(raw) {
            Ok(name) => name,
            Err(message) => {
                errors.add("name", message);
                return Ok(None);
            }
        };
        if self
            .ports
            .destinations
            .find_by_name(workspace, &name)
            .await?
            .is_some()
        {
            return Err(Conflict::new(
                ConflictCode::NameTaken,
                format!("another log destination is called `{name}`"),
            )
            .into());
        }
        Ok(Some(name))
    }

    /// Creates a destination; an `http` one gets a `whsec_…` signing secret, returned
    /// once. Its secrets, the row, its outbox queue, the activity entry and the
    /// integration event are written in one transaction.
    #[tracing::instrument(name = "log_destinations.create", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn create(
        &self,
        principal: &Principal,
        new: NewDestination,
    ) -> Result<Created, DestinationError> {
        principal.require(Permission::SettingsManage)?;
        let workspace = principal.workspace_id();
        let mut errors = ValidationErrors::new();
        if !model::KINDS.contains(&new.kind.as_str()) {
            errors.add("kind", "must be `http` or `syslog`");
        }
        let event_types = model::parse_event_types(&new.event_types, &mut errors);
        let parsed = model::parse(&new.kind, &new.config, &mut errors);
        if let Some((DestinationConfig::Http { headers, .. }, secrets)) = &parsed {
            for (index, header) in headers.iter().enumerate() {
                if header.secret && !secrets.contains_key(&header.name.to_ascii_lowercase()) {
                    errors.add(format!("config.headers[{index}].value"), "is required");
                }
            }
        }
        if !errors.is_empty() {
            return Err(DestinationError::Invalid(errors));
        }
        let name = self.check_name(workspace, &new.name, &mut errors).await?;
        let (Some(name), Some((config, secret_values))) = (name, parsed) else {
            return Err(DestinationError::Invalid(errors));
        };
        let now = self.ports.clock.now();
        let id = LogDestinationId::new();
        let mut unit = self.ports.units.begin().await?;
        let secret_headers = self
            .seal_headers(unit.as_mut(), workspace, id, &secret_values, principal)
            .await?;
        let signing = match config {
            DestinationConfig::Http { .. } => {
                let secret = standard_webhooks::generate_secret()?;
                let stored = self
                    .seal(
                        unit.as_mut(),
                        workspace,
                        &format!("Log destination {id} signing secret"),
                        &secret,
                        principal,
                    )
                    .await?;
                Some((secret, stored))
            }
            DestinationConfig::Syslog { .. } => None,
        };
        let destination = LogDestination {
            id,
            workspace_id: workspace,
            name,
            event_types,
            enabled: new.enabled.unwrap_or(true),
            config,
            secret_headers,
            signing_secret: signing.as_ref().map(|(_, stored)| *stored),
            previous_secret: None,
            status: DestinationStatus::Active,
            failing_since: None,
            last_delivered_at: None,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        self.ports
            .destinations
            .insert(unit.as_mut(), &destination)
            .await?;
        self.record(
            unit.as_mut(),
            principal,
            ("log_destination.created", IntegrationEventKind::Configured),
            &destination,
            json!({}),
        )
        .await?;
        unit.commit().await?;
        Ok(Created {
            destination,
            signing_secret: signing.map(|(secret, _)| secret),
        })
    }

    async fn seal(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        name: &str,
        secret: &SecretString,
        principal: &Principal,
    ) -> Result<CredentialId, StorageError> {
        self.ports
            .secrets
            .store(unit, workspace, name, secret, principal.user())
            .await
    }

    async fn seal_headers(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: LogDestinationId,
        values: &model::SecretValues,
        principal: &Principal,
    ) -> Result<Option<CredentialId>, StorageError> {
        if values.is_empty() {
            return Ok(None);
        }
        let sealed = SecretString::from(json!(values).to_string());
        let name = format!("Log destination {id} secret headers");
        Ok(Some(
            self.seal(unit, workspace, &name, &sealed, principal)
                .await?,
        ))
    }

    /// Changes a destination (its kind stays).
    #[tracing::instrument(name = "log_destinations.update", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn update(
        &self,
        principal: &Principal,
        id: LogDestinationId,
        patch: DestinationPatch,
    ) -> Result<LogDestination, DestinationError> {
        principal.require(Permission::SettingsManage)?;
        let current = self.get(principal, id).await?;
        let workspace = principal.workspace_id();
        let mut updated = current.clone();
        let mut errors = ValidationErrors::new();
        let mut changed: Vec<&str> = Vec::new();
        if let Some(types) = &patch.event_types {
            let types = model::parse_event_types(types, &mut errors);
            if types != current.event_types {
                updated.event_types = types;
                changed.push("event_types");
            }
        }
        let parsed = patch
            .config
            .as_ref()
            .and_then(|config| model::parse(current.config.kind(), config, &mut errors));
        let kept = self
            .kept_header_values(&current, parsed.as_ref(), &mut errors)
            .await?;
        if !errors.is_empty() {
            return Err(DestinationError::Invalid(errors));
        }
        let renamed = patch
            .name
            .as_deref()
            .map(str::trim)
            .filter(|name| *name != current.name);
        if let Some(raw) = renamed
            && let Some(name) = self.check_name(workspace, raw, &mut errors).await?
        {
            updated.name = name;
            changed.push("name");
        }
        if !errors.is_empty() {
            return Err(DestinationError::Invalid(errors));
        }
        if let Some(enabled) = patch.enabled.filter(|enabled| *enabled != current.enabled) {
            updated.enabled = enabled;
            changed.push("enabled");
        }
        let new_values = match (&parsed, kept) {
            (Some((config, _)), Some(values)) if *config != current.config || values.1 => {
                updated.config = config.clone();
                changed.push("config");
                Some(values.0)
            }
            _ => None,
        };
        if changed.is_empty() {
            return Ok(current);
        }
        updated.revision += 1;
        updated.updated_at = self.ports.clock.now();
        let mut unit = self.ports.units.begin().await?;
        if let Some(values) = &new_values {
            updated.secret_headers = self
                .seal_headers(unit.as_mut(), workspace, id, values, principal)
                .await?;
        }
        self.ports
            .destinations
            .update(unit.as_mut(), &updated)
            .await?;
        if new_values.is_some()
            && let Some(old) = current.secret_headers
        {
            self.ports
                .secrets
                .discard(unit.as_mut(), workspace, old)
                .await?;
        }
        let event = match (current.enabled, updated.enabled) {
            (false, true) => IntegrationEventKind::Enabled,
            (true, false) => IntegrationEventKind::Disabled,
            _ => IntegrationEventKind::Updated,
        };
        self.record(
            unit.as_mut(),
            principal,
            ("log_destination.updated", event),
            &updated,
            json!({"changed": changed}),
        )
        .await?;
        unit.commit().await?;
        Ok(updated)
    }

    /// The secret header values a new configuration ends with (the submitted ones, and
    /// the sealed ones of secret headers given without a value), and whether they differ
    /// from the sealed ones. `None` without a new configuration.
    async fn kept_header_values(
        &self,
        current: &LogDestination,
        parsed: Option<&(DestinationConfig, model::SecretValues)>,
        errors: &mut ValidationErrors,
    ) -> Result<Option<(model::SecretValues, bool)>, DestinationError> {
        let Some((config, submitted)) = parsed else {
            return Ok(None);
        };
        let sealed = self.sealed_headers(current).await?;
        let mut values = model::SecretValues::new();
        if let DestinationConfig::Http { headers, .. } = config {
            for (index, header) in headers.iter().enumerate().filter(|(_, h)| h.secret) {
                let key = header.name.to_ascii_lowercase();
                match submitted.get(&key).or_else(|| sealed.get(&key)) {
                    Some(value) => {
                        values.insert(key, value.clone());
                    }
                    None => errors.add(format!("config.headers[{index}].value"), "is required"),
                }
            }
        }
        let differs = values != sealed;
        Ok(Some((values, differs)))
    }

    /// The sealed secret header values of `destination`, by lower-case name.
    pub(crate) async fn sealed_headers(
        &self,
        destination: &LogDestination,
    ) -> Result<model::SecretValues, StorageError> {
        sealed_headers(&*self.ports.secrets, destination).await
    }

    /// Deletes a destination with its secrets and its undelivered events.
    #[tracing::instrument(name = "log_destinations.delete", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn delete(
        &self,
        principal: &Principal,
        id: LogDestinationId,
    ) -> Result<(), DestinationError> {
        principal.require(Permission::SettingsManage)?;
        let destination = self.get(principal, id).await?;
        let workspace = principal.workspace_id();
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .destinations
            .delete(unit.as_mut(), workspace, id)
            .await?;
        let secrets = [
            destination.secret_headers,
            destination.signing_secret,
            destination.previous_secret.map(|(secret, _)| secret),
        ];
        for secret in secrets.into_iter().flatten() {
            self.ports
                .secrets
                .discard(unit.as_mut(), workspace, secret)
                .await?;
        }
        self.record(
            unit.as_mut(),
            principal,
            ("log_destination.deleted", IntegrationEventKind::Removed),
            &destination,
            json!({}),
        )
        .await?;
        unit.commit().await?;
        Ok(())
    }

    /// A new signing secret (returned once); the old one keeps signing beside it for
    /// `grace_seconds` (default a day, at most 30 days; 0 drops it at once).
    #[tracing::instrument(name = "log_destinations.rotate", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn rotate_secret(
        &self,
        principal: &Principal,
        id: LogDestinationId,
        grace_seconds: Option<i64>,
    ) -> Result<(LogDestination, SecretString), DestinationError> {
        principal.require(Permission::SettingsManage)?;
        let grace =
            standard_webhooks::rotation_grace(grace_seconds).map_err(DestinationError::Invalid)?;
        let current = self.get(principal, id).await?;
        let Some(signing) = current.signing_secret else {
            return Err(DestinationError::Invalid(ValidationErrors::single(
                "kind",
                "only an `http` destination signs what it sends",
            )));
        };
        let workspace = principal.workspace_id();
        let now = self.ports.clock.now();
        let mut updated = current.clone();
        let mut unit = self.ports.units.begin().await?;
        let secret = standard_webhooks::generate_secret()?;
        updated.revision += 1;
        updated.updated_at = now;
        updated.signing_secret = Some(
            self.seal(
                unit.as_mut(),
                workspace,
                &format!("Log destination {id} signing secret r{}", updated.revision),
                &secret,
                principal,
            )
            .await?,
        );
        let (kept, discarded) =
            standard_webhooks::rotated(signing, current.previous_secret, grace, now);
        updated.previous_secret = kept;
        self.ports
            .destinations
            .update(unit.as_mut(), &updated)
            .await?;
        for old in discarded {
            self.ports
                .secrets
                .discard(unit.as_mut(), workspace, old)
                .await?;
        }
        self.record(
            unit.as_mut(),
            principal,
            (
                "log_destination.secret_rotated",
                IntegrationEventKind::Updated,
            ),
            &updated,
            json!({"grace_seconds": grace}),
        )
        .await?;
        unit.commit().await?;
        Ok((updated, secret))
    }

    /// Recent delivery attempts, newest first.
    #[tracing::instrument(name = "log_destinations.deliveries", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn deliveries(
        &self,
        principal: &Principal,
        id: LogDestinationId,
        page: PageRequest,
    ) -> Result<Page<DeliveryAttempt>, DestinationError> {
        let destination = self.get(principal, id).await?;
        let rows = self
            .ports
            .destinations
            .attempts(destination.workspace_id, id, page)
            .await?;
        Ok(Page::from_rows(rows, page, DeliveryAttempt::cursor))
    }

    /// Sends one sample event now (not through the queue) and reports the answer; the
    /// attempt is listed with the deliveries and recorded as `tested` or `test_failed`.
    #[tracing::instrument(name = "log_destinations.test", skip_all, fields(workspace_id = %principal.workspace_id()))]
    pub async fn test(
        &self,
        principal: &Principal,
        id: LogDestinationId,
    ) -> Result<TestReport, DestinationError> {
        principal.require(Permission::SettingsManage)?;
        let destination = self.get(principal, id).await?;
        let now = self.ports.clock.now();
        let sample = json!({
            "type": "test", "id": uuid::Uuid::now_v7(), "workspace_id": destination.workspace_id,
            "occurred_at": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "action": "log_destination.test", "actor": {"user_id": principal.user()},
        });
        let deliverer = delivery::Sender {
            secrets: &*self.ports.secrets,
            sink: &*self.ports.sink,
            clock: &*self.ports.clock,
        };
        let batch_id = format!("msg_test_{}", uuid::Uuid::now_v7());
        let answer = deliverer.send(&destination, &[sample], &batch_id).await?;
        self.ports
            .destinations
            .record_attempt(&DeliveryAttempt::of(&destination, now, 1, &answer, true))
            .await?;
        let (event, details) = match &answer.result {
            Ok(()) => (
                IntegrationEventKind::Tested,
                json!({"name": destination.name}),
            ),
            Err(failure) => (
                IntegrationEventKind::TestFailed,
                json!({"name": destination.name, "error": failure.error}),
            ),
        };
        self.ports
            .integration_events
            .record(&IntegrationEvent {
                workspace_id: destination.workspace_id,
                kind: IntegrationKind::LogDestinations,
                integration_id: Some(destination.id.as_uuid()),
                event,
                details,
                actor: Some(principal.actor()),
            })
            .await?;
        Ok(TestReport {
            delivered: answer.result.is_ok(),
            status_code: answer.status_code,
            latency_ms: answer.latency_ms,
            error: answer.result.err().map(|failure| failure.error),
        })
    }

    /// Records a change in the activity log and as an integration event.
    async fn record(
        &self,
        unit: &mut Uow,
        principal: &Principal,
        change: (&'static str, IntegrationEventKind),
        destination: &LogDestination,
        extra: Value,
    ) -> Result<(), StorageError> {
        let integration = Changed {
            kind: IntegrationKind::LogDestinations,
            target: ("log_destination", destination.id.to_string()),
            id: Some(destination.id.as_uuid()),
            details: json!({"name": destination.name, "kind": destination.config.kind()}),
        };
        let logs = (&*self.ports.audit, &*self.ports.integration_events);
        record_change_by(logs, unit, principal, change, integration, extra).await
    }
}

/// The sealed secret header values of `destination`, by lower-case name.
pub(crate) async fn sealed_headers(
    secrets: &dyn OwnedSecrets,
    destination: &LogDestination,
) -> Result<model::SecretValues, StorageError> {
    let Some(credential) = destination.secret_headers else {
        return Ok(model::SecretValues::new());
    };
    let opened = secrets.open(destination.workspace_id, credential).await?;
    serde_json::from_str(fluxolab_kernel::ExposeSecret::expose_secret(&opened)).map_err(|_| {
        StorageError::corrupt("a log destination's secret headers are not a JSON object")
    })
}
