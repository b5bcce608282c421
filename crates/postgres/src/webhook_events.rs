//! Webhook events: the intake's one statement (dedupe keys, event, execution,
//! conversations and messages together, so in one transaction and one round trip) and
//! the event list, detail and replay.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{ExecutionId, Page, PageRequest, StorageError, WorkspaceId};
use fluxolab_webhooks::intake::run_input;
use fluxolab_webhooks::model::{EventFilter, Verdict, WebhookEvent};
use fluxolab_webhooks::ports::{EventStore, NewEvent, Recorded};
use fluxolab_webhooks::whatsapp::Extracted;
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
        id,
        workspace_id: WorkspaceId::from_uuid(workspace),
        registration_id,
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

/// The intake's one statement (see [`EventStore::record`]). The first dedupe key is the
/// body digest's, the others the message ids'. A delivery is new when its body was not
/// seen and (if it carries messages) at least one message id was not; only the unseen
/// messages are stored and counted. Parameters: $1 event id,
/// $2 workspace, $3 registration, $4 body digest, $5 headers, $6 body, $7 payload,
/// $8 dedupe keys, $9 execution id, $10 execution input, $11 messages, $12 statuses.
const RECORD_DELIVERY: &str = "\
WITH keys AS ( \
  INSERT INTO webhook_dedupe_keys (registration_id, key, event_id) \
  SELECT $3, k, $1 FROM unnest($8::text[]) AS k \
  ON CONFLICT DO NOTHING RETURNING key \
), judged AS ( \
  SELECT CASE WHEN $8[1] IN (SELECT key FROM keys) \
      AND (cardinality($8::text[]) = 1 OR EXISTS (SELECT 1 FROM keys WHERE key <> $8[1])) \
    THEN 'accepted' ELSE 'duplicate' END AS verdict \
), target AS ( \
  SELECT d.workflow_id, d.version, d.environment_id FROM webhook_registrations r \
  JOIN workflow_deployments d ON d.workflow_id = r.workflow_id AND d.environment_id = r.environment_id \
  WHERE r.id = $3 AND (SELECT verdict FROM judged) = 'accepted' \
), run AS ( \
  INSERT INTO executions (id, workspace_id, workflow_id, version, environment_id, status, trigger_kind, input) \
  SELECT $9, $2, target.workflow_id, target.version, target.environment_id, 'queued', 'webhook', $10 FROM target \
  RETURNING id \
), event AS ( \
  INSERT INTO webhook_events (id, workspace_id, registration_id, verdict, body_digest, headers, body, payload, execution_id) \
  SELECT $1, $2, $3, judged.verdict, $4, $5, $6, $7, (SELECT id FROM run) FROM judged \
  RETURNING id \
), incoming AS ( \
  SELECT m.* FROM jsonb_to_recordset($11) AS m( \
    id uuid, conversation_id uuid, wa_id text, name text, phone_number_id text, message_id text, \
    message_type text, body text, preview text, sent_at bigint, payload jsonb) \
  WHERE (SELECT verdict FROM judged) = 'accepted' \
    AND 'message:' || m.message_id IN (SELECT key FROM keys) \
), contacts AS ( \
  SELECT DISTINCT ON (wa_id) wa_id, conversation_id, name, phone_number_id, \
    to_timestamp(sent_at) AS last_at, preview, count(*) OVER (PARTITION BY wa_id) AS n \
  FROM incoming ORDER BY wa_id, sent_at DESC \
), conversation AS ( \
  INSERT INTO conversations AS c (id, workspace_id, wa_id, name, phone_number_id, \
    message_count, unread_count, last_message_at, last_message_preview) \
  SELECT conversation_id, $2, wa_id, name, phone_number_id, n, n, last_at, preview FROM contacts \
  ON CONFLICT (workspace_id, wa_id) DO UPDATE SET \
    name = coalesce(EXCLUDED.name, c.name), \
    phone_number_id = coalesce(EXCLUDED.phone_number_id, c.phone_number_id), \
    message_count = c.message_count + EXCLUDED.message_count, \
    unread_count = c.unread_count + EXCLUDED.unread_count, \
    last_message_at = greatest(c.last_message_at, EXCLUDED.last_message_at), \
    last_message_preview = CASE WHEN c.last_message_at IS NULL OR EXCLUDED.last_message_at >= c.last_message_at \
      THEN EXCLUDED.last_message_preview ELSE c.last_message_preview END, \
    status = 'open', updated_at = now() \
  RETURNING c.id, c.wa_id \
), stored AS ( \
  INSERT INTO messages (id, workspace_id, conversation_id, message_id, message_type, body, payload, sent_at, event_id) \
  SELECT i.id, $2, conversation.id, i.message_id, i.message_type, i.body, i.payload, to_timestamp(i.sent_at), $1 \
  FROM incoming i JOIN conversation ON conversation.wa_id = i.wa_id \
  ON CONFLICT (workspace_id, message_id) DO NOTHING RETURNING 1 \
), statuses AS ( \
  UPDATE messages m SET status = s.status \
  FROM jsonb_to_recordset($12) AS s(message_id text, status text) \
  WHERE m.workspace_id = $2 AND m.message_id = s.message_id AND (SELECT verdict FROM judged) = 'accepted' \
  RETURNING 1 \
) \
SELECT (SELECT verdict FROM judged) AS verdict, (SELECT id FROM run) AS execution_id";

#[derive(QueryableByName)]
struct RecordedRow {
    #[diesel(sql_type = Text)]
    verdict: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    execution_id: Option<Uuid>,
}

#[async_trait]
impl EventStore for PgWebhooks {
    async fn record(
        &self,
        event: &NewEvent,
        dedupe_keys: &[String],
        execution: ExecutionId,
        extracted: &Extracted,
    ) -> Result<Recorded, StorageError> {
        let mut connection = pooled(self.pool()).await?;
        let row: RecordedRow = diesel::sql_query(RECORD_DELIVERY)
            .bind::<SqlUuid, _>(event.id)
            .bind::<SqlUuid, _>(event.workspace_id.as_uuid())
            .bind::<SqlUuid, _>(event.registration_id)
            .bind::<Text, _>(&event.body_digest)
            .bind::<Jsonb, _>(&event.headers)
            .bind::<Bytea, _>(&event.body)
            .bind::<Nullable<Jsonb>, _>(event.payload.as_ref())
            .bind::<Array<Text>, _>(dedupe_keys)
            .bind::<SqlUuid, _>(execution.as_uuid())
            .bind::<Jsonb, _>(run_input(event.payload.as_ref(), &event.body))
            .bind::<Jsonb, _>(extracted.message_records())
            .bind::<Jsonb, _>(extracted.status_records())
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        if row.execution_id.is_some() {
            self.wake_workers();
        }
        Ok(Recorded {
            verdict: Verdict::from_code(&row.verdict).ok_or_else(|| corrupt("verdict"))?,
            execution_id: row.execution_id.map(ExecutionId::from_uuid),
        })
    }

    async fn record_unrun<'a>(
        &self,
        event: &NewEvent,
        verdict: Verdict,
        reason: Option<&'a str>,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(self.pool()).await?;
        diesel::insert_into(webhook_events::table)
            .values((
                webhook_events::id.eq(event.id),
                webhook_events::workspace_id.eq(event.workspace_id.as_uuid()),
                webhook_events::registration_id.eq(event.registration_id),
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

    async fn list(
        &self,
        workspace: WorkspaceId,
        filter: &EventFilter,
        page: PageRequest,
    ) -> Result<Page<WebhookEvent>, StorageError> {
        let mut connection = pooled(self.pool()).await?;
        let mut query = webhook_events::table
            .filter(webhook_events::workspace_id.eq(workspace.as_uuid()))
            .select(event_columns!())
            .order((
                webhook_events::received_at.desc(),
                webhook_events::id.desc(),
            ))
            .limit(page.fetch_limit())
            .into_boxed();
        if let Some(registration) = filter.registration_id {
            query = query.filter(webhook_events::registration_id.eq(registration));
        }
        if let Some(verdict) = filter.verdict {
            query = query.filter(webhook_events::verdict.eq(verdict.code()));
        }
        if let Some(since) = filter.since {
            query = query.filter(webhook_events::received_at.ge(since));
        }
        if let Some(after) = page.after() {
            query = query.filter(
                webhook_events::received_at
                    .lt(after.created_at)
                    .or(webhook_events::received_at
                        .eq(after.created_at)
                        .and(webhook_events::id.lt(after.id))),
            );
        }
        let rows: Vec<EventRow> = query.load(&mut connection).await.map_err(storage)?;
        let items = rows.into_iter().map(event).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(items, page, WebhookEvent::cursor))
    }

    async fn find(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<Option<WebhookEvent>, StorageError> {
        let mut connection = pooled(self.pool()).await?;
        let row: Option<EventRow> = webhook_events::table
            .filter(webhook_events::workspace_id.eq(workspace.as_uuid()))
            .filter(webhook_events::id.eq(id))
            .select(event_columns!())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(event).transpose()
    }

    async fn replay(
        &self,
        workspace: WorkspaceId,
        event: Uuid,
        execution: ExecutionId,
        input: &Value,
    ) -> Result<Option<ExecutionId>, StorageError> {
        #[derive(QueryableByName)]
        struct Queued {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
        }
        let mut connection = pooled(self.pool()).await?;
        let queued: Option<Queued> = diesel::sql_query(
            "WITH run AS ( \
               INSERT INTO executions (id, workspace_id, workflow_id, version, environment_id, status, trigger_kind, input) \
               SELECT $3, e.workspace_id, d.workflow_id, d.version, d.environment_id, 'queued', 'webhook', $4 \
               FROM webhook_events e \
               JOIN webhook_registrations r ON r.id = e.registration_id \
               JOIN workflow_deployments d ON d.workflow_id = r.workflow_id AND d.environment_id = r.environment_id \
               WHERE e.workspace_id = $1 AND e.id = $2 \
               RETURNING id \
             ), notified AS (SELECT pg_notify('fluxolab_executions', '') FROM run) \
             SELECT id FROM run WHERE (SELECT count(*) FROM notified) >= 0",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(event)
        .bind::<SqlUuid, _>(execution.as_uuid())
        .bind::<Jsonb, _>(input)
        .get_result(&mut connection)
        .await
        .optional()
        .map_err(storage)?;
        Ok(queued.map(|row| ExecutionId::from_uuid(row.id)))
    }
}
