//! Ids in request paths. A path segment that is not an id of the resource is answered
//! like an id that names nothing in the workspace: 404, naming the resource.

use fluxolab_kernel::{ApiKeyId, CredentialId, ExecutionId, WebhookEventId, WorkflowId};
use fluxolab_webhooks::model::WebhookRegistrationId;
use fluxolab_workflows::connectors::ConnectorId;
use fluxolab_workspace::alerts::AlertId;
use fluxolab_workspace::log_destinations::LogDestinationId;

use crate::ApiError;

/// An id type that stands in request paths, with the resource its 404 names.
pub(crate) trait PathId: std::str::FromStr {
    /// The resource named by the 404 of an id that does not parse.
    const RESOURCE: &'static str;
}

/// `raw` (a path segment) as the id `T`, or 404 naming `T`'s resource.
pub(crate) fn path_id<T: PathId>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(T::RESOURCE))
}

macro_rules! path_ids {
    ($($id:ty => $resource:literal,)*) => {
        $(impl PathId for $id {
            const RESOURCE: &'static str = $resource;
        })*
    };
}

path_ids! {
    AlertId => "usage alert",
    ConnectorId => "connector",
    LogDestinationId => "log destination",
    ApiKeyId => "API key",
    CredentialId => "credential",
    ExecutionId => "execution",
    WebhookEventId => "webhook event",
    WebhookRegistrationId => "webhook",
    WorkflowId => "workflow",
}
