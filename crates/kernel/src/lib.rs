#![doc = include_str!("../README.md")]

pub mod audit;
pub mod clock;
pub mod environment;
pub mod failure;
pub mod ids;
pub mod integrations;
pub mod outbox;
pub mod owned_secrets;
pub mod pagination;
pub mod permission;
pub mod plan_guard;
pub mod principal;
pub mod secret_store;
pub mod standard_webhooks;
#[cfg(any(test, feature = "mocks"))]
pub mod testing;
pub mod unit_of_work;
pub mod validation;

/// Whether two byte strings (digests, tokens) are equal, without stopping at the first
/// difference.
pub fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0_u8, |differences, (a, b)| differences | (a ^ b))
            == 0
}

pub use audit::{AuditEvent, AuditLog};
pub use clock::{Clock, ManualClock, SystemClock};
pub use environment::{
    EnvironmentDirectory, EnvironmentLookup, EnvironmentRef, EnvironmentVariables, RunEnvironment,
    VariablesError,
};
pub use failure::{Conflict, ConflictCode, Failure, NoRandomness, Unauthenticated};
pub use ids::{
    ApiKeyId, CredentialId, EnvironmentId, ExecutionId, UserId, WebhookEventId, WorkflowId,
    WorkspaceId,
};
pub use integrations::{
    IntegrationEvent, IntegrationEventKind, IntegrationEvents, IntegrationKind,
};
pub use owned_secrets::OwnedSecrets;
pub use pagination::{Cursor, Page, PageRequest};
pub use permission::Permission;
pub use plan_guard::{Admission, LimitedResource, PlanGuard, PlanLimitReached, UsageGate};
pub use principal::{Actor, Forbidden, Principal};
/// Secret text whose `Debug` shows `[REDACTED]`; read it with [`ExposeSecret`].
pub use secrecy::{ExposeSecret, SecretString};
pub use secret_store::{
    ProbeReport, ResolveFailure, SecretRef, SecretResolver, SecretStoreClient, StoreConnection,
    StoreFailure, StoreKind, VaultAuth,
};
pub use unit_of_work::{
    CorruptData, StorageError, StorageErrorKind, UnitOfWork, UnitOfWorkFactory, Uow,
};
pub use validation::{
    FieldError, HTTP_URL_PATTERN, HTTPS_URL_PATTERN, PLAUSIBLE_EMAIL_PATTERN, ValidationErrors,
    plain_http_url, plausible_email,
};
