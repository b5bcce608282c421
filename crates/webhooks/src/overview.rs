//! The dashboard overview of a workspace: counts, and the latest activity, webhook
//! events and conversations. It lives beside the webhooks because events and
//! conversations are most of it; the store assembles it in one round trip.

use std::collections::BTreeMap;

use async_trait::async_trait;
use fluxolab_kernel::{Permission, Principal, StorageError, UserId, WorkspaceId};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{Conversation, WebhookEvent};
use crate::service::WebhookError;

/// How many of each list the overview shows.
pub const LATEST_ACTIVITIES: i64 = 10;
pub const LATEST_EVENTS: i64 = 10;
pub const RECENT_CONVERSATIONS: i64 = 5;

/// One line of the activity log.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityLine {
    pub id: Uuid,
    pub action: String,
    pub actor_user_id: Option<UserId>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub metadata: Value,
    pub created_at: OffsetDateTime,
}

/// The numbers on the dashboard's cards.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OverviewCounts {
    pub workflows: i64,
    pub active_workflows: i64,
    /// Executions created in the last 24 hours, by status.
    pub executions_24h: BTreeMap<String, i64>,
    /// Webhook events received in the last 24 hours, by verdict.
    pub webhook_events_24h: BTreeMap<String, i64>,
    pub members: i64,
    pub credentials: i64,
}

/// The overview of one workspace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overview {
    pub counts: OverviewCounts,
    pub latest_activities: Vec<ActivityLine>,
    pub latest_webhook_events: Vec<WebhookEvent>,
    pub recent_conversations: Vec<Conversation>,
}

/// Where the overview comes from.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OverviewSource: Send + Sync {
    /// Everything, as of `now` (the 24-hour windows end there).
    async fn overview(
        &self,
        workspace: WorkspaceId,
        now: OffsetDateTime,
    ) -> Result<Overview, StorageError>;
}

/// The overview the principal's workspace shows its members.
#[tracing::instrument(name = "webhooks.overview", skip_all, fields(workspace_id = %principal.workspace_id()))]
pub async fn overview_for(
    source: &dyn OverviewSource,
    principal: &Principal,
    now: OffsetDateTime,
) -> Result<Overview, WebhookError> {
    principal.require(Permission::WorkflowsRead)?;
    Ok(source.overview(principal.workspace_id(), now).await?)
}
