//! Webhook events: the intake's writes (accepted-looking deliveries through the
//! group-commit writer of [`crate::intake_batch`], rejected ones directly) and the event
//! list and detail.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{ExecutionId, Page, PageRequest, StorageError, WebhookEventId, WorkspaceId};
use fluxolab_webhooks::model::{EventFilter, Verdict, WebhookEvent, WebhookRegistrationId};
use fluxolab_webhooks::ports::{EventStore, NewEvent, Recorded, Recording};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::storage;
use crate::pool::pooled;
use crate::schema::webhook_events;
use crate::webhooks::{PgWebhooks, corrupt};

type EventRow = (
    Uuid,
    Uuid,
    Uuid,
    String,
    Option<String>,
    String,
    Value,
    Vec<u8>,
    Option<Value>,
    Option<Uuid>,
    OffsetDateTime,
);

macro_rules! event_columns {
    () => {
        (
            webhook_events::id,
            webhook_events::workspace_id,
            webhook_events::registration_id,
            webhook_events::verdict,
            webhook_events::reason,
            webhook_events::body_digest,
            webhook_events::headers,
            webhook_events::body,
            webhook_events::payload,
            webhook_events::execution_id,
            webhook_events::received_at,
        )
    };
}
pub(crate) use event_columns;

pub(crate) fn event(row: EventRow) -> Result<WebhookEvent, StorageError> {
    let (
        id,
        workspace,
        registration_id,
        verdict,
        reason,
        body_digest,
        headers,
        body,
        payload,
        execution,
        received_at,
    ) = row;
    Ok(WebhookEvent {
        id: WebhookEventId::from_uuid(id),
        workspace_id: WorkspaceId::from_uuid(workspace),
        registration_id: WebhookRegistrationId::from_uuid(registration_id),
        verdict: Verdict::from_code(&verdict).ok_or_else(|| corrupt("verdict"))?,
        reason,
        body_digest,
        headers,
        body,
        payload,
        execution_id: execution.map(ExecutionId::from_uuid),
        received_at,
    })
}

#[async_trait]
impl EventStore for PgWebhooks {
    #[tracing::instrument(name = "db.webhook_events.record", level = "debug", skip_all)]
    async fn record(&self, recording: Recording) -> Result<Recorded, StorageError> {
        self.writer().record(recording).await
    }

    /// Starts the intake's writers, which connect and prepare their statement.
    fn start(&self) {
        self.writer();
    }

    #[tracing::instrument(name = "db.webhook_events.record_unrun", level = "debug", skip_all)]
    async fn record_unrun<'a>(
        &self,
        event: &NewEvent,
        verdict: Verdict,
        reason: Option<&'a str>,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(self.pool()).await?;
        diesel::insert_into(webhook_events::table)
            .values((
                webhook_events::id.eq(event.id.as_uuid()),
                webhook_events::workspace_id.eq(event.workspace_id.as_uuid()),
                webhook_events::registration_id.eq(event.registration_id.as_uuid()),
                webhook_events::verdict.eq(verdict.code()),
                webhook_events::reason.eq(reason),
                webhook_events::body_digest.eq(&event.body_digest),
                webhook_events::headers.eq(&event.headers),
                webhook_events::body.eq(&event.body),
                webhook_events::payload.eq(event.payload.as_ref()),
            ))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.webhook_events.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        filter: &EventFilter,
        page: PageRequest,
    ) -> Result<Page<WebhookEvent>, StorageError> {
        let mut connection = pooled(self.pool()).await?;
        let mut query = crate::keyset::newest_first!(
            webhook_events::table
                .filter(webhook_events::workspace_id.eq(workspace.as_uuid()))
                .select(event_columns!()),
            page,
            webhook_events::received_at,
            webhook_events::id
        );
        if let Some(registration) = filter.registration_id {
            query = query.filter(webhook_events::registration_id.eq(registration.as_uuid()));
        }
        if let Some(verdict) = filter.verdict {
            query = query.filter(webhook_events::verdict.eq(verdict.code()));
        }
        if let Some(since) = filter.since {
            query = query.filter(webhook_events::received_at.ge(since));
        }
        let rows: Vec<EventRow> = query.load(&mut connection).await.map_err(storage)?;
        crate::keyset::page_of(rows, page, event, WebhookEvent::cursor)
    }

    #[tracing::instrument(name = "db.webhook_events.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: WebhookEventId,
    ) -> Result<Option<WebhookEvent>, StorageError> {
        let mut connection = pooled(self.pool()).await?;
        let row: Option<EventRow> = webhook_events::table
            .filter(webhook_events::workspace_id.eq(workspace.as_uuid()))
            .filter(webhook_events::id.eq(id.as_uuid()))
            .select(event_columns!())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(event).transpose()
    }
}
