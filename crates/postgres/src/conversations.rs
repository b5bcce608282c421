//! WhatsApp conversations and messages (written by the intake's statement), and the
//! workspace overview, read in one pipelined round trip.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{Page, PageRequest, StorageError, UserId, WorkspaceId};
use fluxolab_webhooks::model::{Conversation, ConversationId, Message};
use fluxolab_webhooks::overview::{
    ActivityLine, LATEST_ACTIVITIES, LATEST_EVENTS, Overview, OverviewCounts, OverviewSource,
    RECENT_CONVERSATIONS,
};
use fluxolab_webhooks::ports::ConversationRepository;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::storage;
use crate::pool::pooled;
use crate::schema::{
    activities, conversations, executions, messages, webhook_events, workflows, workspace_members,
};
use crate::webhook_events::{event, event_columns};
use crate::webhooks::PgWebhooks;

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversations, check_for_backend(diesel::pg::Pg))]
struct ConversationRow {
    id: Uuid,
    workspace_id: Uuid,
    wa_id: String,
    name: Option<String>,
    phone_number_id: Option<String>,
    status: String,
    message_count: i32,
    unread_count: i32,
    last_message_at: Option<OffsetDateTime>,
    last_message_preview: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn conversation(row: ConversationRow) -> Conversation {
    Conversation {
        id: ConversationId::from_uuid(row.id),
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        wa_id: row.wa_id,
        name: row.name,
        phone_number_id: row.phone_number_id,
        status: row.status,
        message_count: row.message_count,
        unread_count: row.unread_count,
        last_message_at: row.last_message_at,
        last_message_preview: row.last_message_preview,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// The conversation list's order: most recent message first, never-messaged last.
fn conversation_cursor(conversation: &Conversation) -> fluxolab_kernel::Cursor {
    fluxolab_kernel::Cursor {
        created_at: conversation
            .last_message_at
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        id: conversation.id.as_uuid(),
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
struct MessageRow {
    id: Uuid,
    conversation_id: Uuid,
    message_id: String,
    direction: String,
    message_type: String,
    body: Option<String>,
    payload: Value,
    status: Option<String>,
    sent_at: OffsetDateTime,
    created_at: OffsetDateTime,
}

fn message(row: MessageRow) -> Message {
    Message {
        id: row.id,
        conversation_id: ConversationId::from_uuid(row.conversation_id),
        message_id: row.message_id,
        direction: row.direction,
        message_type: row.message_type,
        body: row.body,
        payload: row.payload,
        status: row.status,
        sent_at: row.sent_at,
        created_at: row.created_at,
    }
}

#[async_trait]
impl ConversationRepository for PgWebhooks {
    #[tracing::instrument(name = "db.conversations.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Conversation>, StorageError> {
        let mut connection = pooled(self.pool()).await?;
        let last = diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
            "coalesce(conversations.last_message_at, 'epoch'::timestamptz)",
        );
        let query = crate::keyset::newest_first!(
            conversations::table
                .filter(conversations::workspace_id.eq(workspace.as_uuid()))
                .select(ConversationRow::as_select()),
            page,
            last.clone(),
            conversations::id
        );
        let rows: Vec<ConversationRow> = query.load(&mut connection).await.map_err(storage)?;
        Ok(Page::from_rows(
            rows.into_iter().map(conversation).collect(),
            page,
            conversation_cursor,
        ))
    }

    #[tracing::instrument(name = "db.conversations.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: ConversationId,
    ) -> Result<Option<Conversation>, StorageError> {
        let mut connection = pooled(self.pool()).await?;
        let row: Option<ConversationRow> = conversations::table
            .filter(conversations::workspace_id.eq(workspace.as_uuid()))
            .filter(conversations::id.eq(id.as_uuid()))
            .select(ConversationRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        Ok(row.map(conversation))
    }

    #[tracing::instrument(name = "db.conversations.messages", level = "debug", skip_all)]
    async fn messages(
        &self,
        workspace: WorkspaceId,
        conversation: ConversationId,
        page: PageRequest,
    ) -> Result<Page<Message>, StorageError> {
        let mut connection = pooled(self.pool()).await?;
        let query = crate::keyset::newest_first!(
            messages::table
                .filter(messages::workspace_id.eq(workspace.as_uuid()))
                .filter(messages::conversation_id.eq(conversation.as_uuid()))
                .select(MessageRow::as_select()),
            page,
            messages::sent_at,
            messages::id
        );
        let rows: Vec<MessageRow> = query.load(&mut connection).await.map_err(storage)?;
        Ok(Page::from_rows(
            rows.into_iter().map(message).collect(),
            page,
            Message::cursor,
        ))
    }
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

type ActivityRow = (
    Uuid,
    String,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Value,
    OffsetDateTime,
);

#[async_trait]
impl OverviewSource for PgWebhooks {
    #[tracing::instrument(name = "db.overview.overview", level = "debug", skip_all)]
    async fn overview(
        &self,
        workspace: WorkspaceId,
        now: OffsetDateTime,
    ) -> Result<Overview, StorageError> {
        let id = workspace.as_uuid();
        let since = now - time::Duration::hours(24);
        let connection = pooled(self.pool()).await?;
        // Pipelined: `&AsyncPgConnection` runs queries concurrently on one connection.
        let shared: &diesel_async::AsyncPgConnection = &connection;
        // Every query is sent before any answer is awaited: one round trip's worth.
        let workflow_counts = workflows::table
            .filter(workflows::workspace_id.eq(id))
            .filter(workflows::archived_at.is_null())
            .select((
                diesel::dsl::count_star(),
                // Active in at least one environment.
                diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM workflow_deployments d \
                     WHERE d.workflow_id = workflows.id))",
                ),
            ))
            .get_result::<(i64, i64)>(&mut { shared });
        let execution_counts = executions::table
            .filter(executions::workspace_id.eq(id))
            .filter(executions::created_at.ge(since))
            .group_by(executions::status)
            .select((executions::status, diesel::dsl::count_star()))
            .load::<(String, i64)>(&mut { shared });
        let event_counts = webhook_events::table
            .filter(webhook_events::workspace_id.eq(id))
            .filter(webhook_events::received_at.ge(since))
            .group_by(webhook_events::verdict)
            .select((webhook_events::verdict, diesel::dsl::count_star()))
            .load::<(String, i64)>(&mut { shared });
        let members = workspace_members::table
            .filter(workspace_members::workspace_id.eq(id))
            .count()
            .get_result::<i64>(&mut { shared });
        // Secrets other features keep in the vault are not the user's credentials.
        // Raw: `user_credentials` is a view, which the generated schema does not describe.
        let credential_count = diesel::sql_query(
            "SELECT count(*) AS count FROM user_credentials WHERE workspace_id = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(id)
        .get_result::<CountRow>(&mut { shared });
        let latest_activities = activities::table
            .filter(activities::workspace_id.eq(id))
            .order((activities::created_at.desc(), activities::id.desc()))
            .limit(LATEST_ACTIVITIES)
            .select((
                activities::id,
                activities::action,
                activities::actor_user_id,
                activities::target_type,
                activities::target_id,
                activities::metadata,
                activities::created_at,
            ))
            .load::<ActivityRow>(&mut { shared });
        let latest_events = webhook_events::table
            .filter(webhook_events::workspace_id.eq(id))
            .order((
                webhook_events::received_at.desc(),
                webhook_events::id.desc(),
            ))
            .limit(LATEST_EVENTS)
            .select(event_columns!())
            .load(&mut { shared });
        let recent_conversations = conversations::table
            .filter(conversations::workspace_id.eq(id))
            .order((
                conversations::last_message_at.desc().nulls_last(),
                conversations::id.desc(),
            ))
            .limit(RECENT_CONVERSATIONS)
            .select(ConversationRow::as_select())
            .load::<ConversationRow>(&mut { shared });
        let (
            (workflow_total, active),
            executions_24h,
            events_24h,
            members,
            credential_count,
            activity_rows,
            event_rows,
            conversation_rows,
        ) = tokio::try_join!(
            workflow_counts,
            execution_counts,
            event_counts,
            members,
            credential_count,
            latest_activities,
            latest_events,
            recent_conversations,
        )
        .map_err(storage)?;
        let by_key = |rows: Vec<(String, i64)>| rows.into_iter().collect::<BTreeMap<_, _>>();
        Ok(Overview {
            counts: OverviewCounts {
                workflows: workflow_total,
                active_workflows: active,
                executions_24h: by_key(executions_24h),
                webhook_events_24h: by_key(events_24h),
                members,
                credentials: credential_count.count,
            },
            latest_activities: activity_rows
                .into_iter()
                .map(
                    |(id, action, actor_user_id, target_type, target_id, metadata, created_at)| {
                        ActivityLine {
                            id,
                            action,
                            actor_user_id: actor_user_id.map(UserId::from_uuid),
                            target_type,
                            target_id,
                            metadata,
                            created_at,
                        }
                    },
                )
                .collect(),
            latest_webhook_events: event_rows
                .into_iter()
                .map(event)
                .collect::<Result<Vec<_>, _>>()?,
            recent_conversations: conversation_rows.into_iter().map(conversation).collect(),
        })
    }
}
