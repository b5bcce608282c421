//! `/api/workspace/conversations*` (WhatsApp conversations the intake fills) and
//! `/api/workspace/overview` (the dashboard).

use std::collections::BTreeMap;

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, get};
use fluxolab_webhooks::model::{Conversation, ConversationId, Message};
use fluxolab_webhooks::overview::{ActivityLine, Overview, overview_for};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, Services};
use crate::problem::Problem;
use crate::webhooks::WebhookEventSummary;
use crate::workspaces::{PageQuery, PageResponse, page_request};

/// A conversation with one WhatsApp contact.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationResponse {
    pub id: Uuid,
    /// The contact's WhatsApp id (their number).
    pub wa_id: String,
    pub name: Option<String>,
    /// The business number that received the messages.
    pub phone_number_id: Option<String>,
    /// `open` or `closed`.
    pub status: String,
    pub message_count: i32,
    pub unread_count: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_message_at: Option<OffsetDateTime>,
    pub last_message_preview: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Conversation> for ConversationResponse {
    fn from(conversation: Conversation) -> Self {
        Self {
            id: conversation.id.as_uuid(),
            wa_id: conversation.wa_id,
            name: conversation.name,
            phone_number_id: conversation.phone_number_id,
            status: conversation.status,
            message_count: conversation.message_count,
            unread_count: conversation.unread_count,
            last_message_at: conversation.last_message_at,
            last_message_preview: conversation.last_message_preview,
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
        }
    }
}

/// A message of a conversation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageResponse {
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// WhatsApp's message id (`wamid…`).
    pub message_id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `text`, `image`, …
    #[serde(rename = "type")]
    pub message_type: String,
    pub body: Option<String>,
    /// The message as received.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// The last delivery status reported for it, if any.
    pub status: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Message> for MessageResponse {
    fn from(message: Message) -> Self {
        Self {
            id: message.id,
            conversation_id: message.conversation_id.as_uuid(),
            message_id: message.message_id,
            direction: message.direction,
            message_type: message.message_type,
            body: message.body,
            payload: message.payload,
            status: message.status,
            sent_at: message.sent_at,
            created_at: message.created_at,
        }
    }
}

/// A line of the activity log, as the overview shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OverviewActivity {
    pub id: Uuid,
    pub action: String,
    pub actor_user_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<ActivityLine> for OverviewActivity {
    fn from(line: ActivityLine) -> Self {
        Self {
            id: line.id,
            action: line.action,
            actor_user_id: line.actor_user_id.map(|user| user.as_uuid()),
            target_type: line.target_type,
            target_id: line.target_id,
            metadata: line.metadata,
            created_at: line.created_at,
        }
    }
}

/// The numbers on the dashboard's cards.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OverviewCountsResponse {
    pub workflows: i64,
    pub active_workflows: i64,
    /// Executions created in the last 24 hours, by status (every status present).
    pub executions_24h: BTreeMap<String, i64>,
    /// Webhook events received in the last 24 hours, by verdict (every verdict present).
    pub webhook_events_24h: BTreeMap<String, i64>,
    pub members: i64,
    pub credentials: i64,
}

/// `GET /api/workspace/overview`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OverviewResponse {
    pub counts: OverviewCountsResponse,
    /// The 10 latest activities.
    pub latest_activities: Vec<OverviewActivity>,
    /// The 10 latest webhook events.
    pub latest_webhook_events: Vec<WebhookEventSummary>,
    /// The 5 most recent conversations.
    pub recent_conversations: Vec<ConversationResponse>,
}

/// Every key present, zero when nothing was counted.
fn complete(mut counts: BTreeMap<String, i64>, keys: &[&str]) -> BTreeMap<String, i64> {
    for key in keys {
        counts.entry((*key).to_owned()).or_insert(0);
    }
    counts
}

impl From<Overview> for OverviewResponse {
    fn from(overview: Overview) -> Self {
        let counts = overview.counts;
        Self {
            counts: OverviewCountsResponse {
                workflows: counts.workflows,
                active_workflows: counts.active_workflows,
                executions_24h: complete(
                    counts.executions_24h,
                    &["queued", "running", "succeeded", "failed", "cancelled"],
                ),
                webhook_events_24h: complete(
                    counts.webhook_events_24h,
                    &["accepted", "duplicate", "rejected", "quota_exceeded"],
                ),
                members: counts.members,
                credentials: counts.credentials,
            },
            latest_activities: overview
                .latest_activities
                .into_iter()
                .map(OverviewActivity::from)
                .collect(),
            latest_webhook_events: overview
                .latest_webhook_events
                .into_iter()
                .map(WebhookEventSummary::from)
                .collect(),
            recent_conversations: overview
                .recent_conversations
                .into_iter()
                .map(ConversationResponse::from)
                .collect(),
        }
    }
}

/// Conversations of the active workspace, most recent message first.
#[utoipa::path(tag = "conversations", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "A page of conversations", body = PageResponse<ConversationResponse>),
))]
#[get("/api/workspace/conversations")]
pub async fn list_conversations(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let found = services
        .webhooks
        .conversations(&caller.principal, page)
        .await?;
    Ok(HttpResponse::Ok().json(PageResponse::<ConversationResponse>::from(found)))
}

/// Messages of a conversation, newest first.
#[utoipa::path(tag = "conversations", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Conversation id"), PageQuery), responses(
    (status = 200, description = "A page of messages", body = PageResponse<MessageResponse>),
    (status = 404, description = "No such conversation in the active workspace", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/workspace/conversations/{id}/messages")]
pub async fn list_messages(
    services: Data<Services>,
    caller: ActiveWorkspace,
    id: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let conversation = id
        .parse::<ConversationId>()
        .map_err(|_| ApiError::NotFound("conversation"))?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let found = services
        .webhooks
        .messages(&caller.principal, conversation, page)
        .await?;
    Ok(HttpResponse::Ok().json(PageResponse::<MessageResponse>::from(found)))
}

/// The dashboard: counts, latest activities and webhook events, recent conversations,
/// read in one round trip.
#[utoipa::path(tag = "conversations", security(("bearer" = [])), responses(
    (status = 200, description = "The overview", body = OverviewResponse),
))]
#[get("/api/workspace/overview")]
pub async fn workspace_overview(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    let overview = overview_for(
        services.overview.as_ref(),
        &caller.principal,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(OverviewResponse::from(overview)))
}
