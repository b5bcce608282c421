//! The optional body of every secret rotation (`POST …/rotate`, `…/rotate-secret`): API
//! keys, webhook alerts, log destinations and the failure notifications webhook.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::ApiError;

/// A rotation's optional body: how long the old secret lasts beside the new one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// How long the old secret keeps working beside the new one (default 86400; 0 stops
    /// it at once; at most 30 days).
    #[schema(minimum = 0, maximum = 2592000)]
    pub grace_seconds: Option<i64>,
}

/// The grace period a rotation's body asks for (`None`: the default); an empty body asks
/// for nothing.
pub(crate) fn grace_seconds(body: &[u8]) -> Result<Option<i64>, ApiError> {
    Ok(crate::json::optional::<RotateSecretRequest>(body)?.grace_seconds)
}
