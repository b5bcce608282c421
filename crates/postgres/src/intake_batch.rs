//! Group commit for the webhook intake. [`IN_FLIGHT`] writers each own a queue (a lane:
//! a delivery goes to the lane of its contact) and a connection. Deliveries that arrive
//! while their writer is writing wait in its queue; each write takes everything queued
//! (up to [`MAX_BATCH`]) and stores it with one statement in one transaction. Every delivery
//! is judged as if it were alone (its own dedupe keys, execution, messages), and each
//! caller is answered only once its delivery is committed. A quiet intake writes each
//! delivery at once (a batch of one); a busy one amortises the statement, its plan and
//! its commit over many.
//!
//! When a batch fails (a constraint, a deadlock, an injected fault), its deliveries are
//! written again one by one, so one bad delivery fails alone.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Untyped;
use diesel::sql_types::{Array, Bytea, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{ExecutionId, StorageError};
use fluxolab_webhooks::intake::run_input;
use fluxolab_webhooks::model::Verdict;
use fluxolab_webhooks::ports::{Recorded, Recording};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::DbPool;
use crate::error::{StoreError, storage};
use crate::pool::pooled;
use crate::run_queue::QUEUE_DECIDED;
use crate::webhooks::corrupt;

/// The most deliveries one statement writes.
pub const MAX_BATCH: usize = 256;
/// Writers, so batches written at the same time; each has its lane and a connection of
/// its own (taken out of the pool, so the pool keeps its size for everything else).
pub const IN_FLIGHT: usize = 2;
/// Deliveries that may wait in a lane before callers wait to queue.
const QUEUE_DEPTH: usize = 4 * MAX_BATCH;

/// The intake's one statement, for a batch of deliveries given as parallel arrays.
/// Events: $1 ids, $2 workspaces, $3 registrations, $4 body digests, $5 headers,
/// $6 bodies, $7 payloads, $8 execution ids, $9 execution inputs (null: the payload),
/// $10 body keys, $11 the runs' trigger kinds. Message keys: $12 event ids, $13 keys.
/// $14 messages and $15 statuses (records naming their event).
///
/// The run of an accepted delivery arrives decided (`fluxolab_workflows::start::
/// DeliveryRun`): the workflow bound to its registration at the version deployed in
/// the registration's environment, read here so activation applies at once; it is
/// written by the one statement part that queues runs ([`QUEUE_DECIDED`]).
///
/// A delivery is new when its body key was not seen and (if it carries messages) at
/// least one message key was not; only its unseen messages are stored and counted.
/// Message keys are the ones that start with `message:` (see `DedupeKeys::of`).
/// Keys are inserted in key order (ties by event), so the same keys in two deliveries
/// of one batch go to one of them, and conversations and messages in key order, so
/// two concurrent batches lock rows in the same order.
///
/// Every lookup between the statement's parts is by hash (equality `IN` subqueries, a
/// JSON map from contact to conversation id): the planner estimates a handful of rows
/// for each part and would otherwise join them with nested loops, whose cost grows
/// with the square of the batch.
static RECORD_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{RECORD_BATCH_KEYS}), decided AS ( \
  SELECT j.execution_id AS id, j.workspace_id, d.workflow_id, d.version, d.environment_id, \
    j.trigger_kind, coalesce(j.input, j.payload) AS input, NULL::uuid AS retry_of, \
    NULL::uuid AS parent_execution_id \
  FROM judged j \
  JOIN webhook_registrations r ON r.id = j.registration_id \
  JOIN workflow_deployments d ON d.workflow_id = r.workflow_id AND d.environment_id = r.environment_id \
  WHERE j.verdict = 'accepted' \
), run AS ({queue}{RECORD_BATCH_REST}",
        queue = &*QUEUE_DECIDED,
    )
});

/// [`RECORD_BATCH`] up to the judgement of each delivery.
const RECORD_BATCH_KEYS: &str = "\
WITH batch AS ( \
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], \
    $6::bytea[], $7::jsonb[], $8::uuid[], $9::jsonb[], $10::text[], $11::text[]) \
    AS b(event_id, workspace_id, registration_id, digest, headers, body, payload, execution_id, input, body_key, \
    trigger_kind) \
), wanted AS ( \
  SELECT b.event_id, b.registration_id, b.body_key AS key FROM batch b \
  UNION ALL \
  SELECT k.event_id, b.registration_id, k.key FROM unnest($12::uuid[], $13::text[]) AS k(event_id, key) \
  JOIN batch b USING (event_id) \
), keys AS ( \
  INSERT INTO webhook_dedupe_keys (registration_id, key, event_id) \
  SELECT registration_id, key, event_id FROM wanted ORDER BY registration_id, key, event_id \
  ON CONFLICT DO NOTHING RETURNING event_id, key \
), judged AS ( \
  SELECT b.*, CASE WHEN (b.event_id, b.body_key) IN (SELECT k.event_id, k.key FROM keys k) \
      AND (b.event_id NOT IN (SELECT w.event_id FROM wanted w WHERE w.key LIKE 'message:%') \
        OR b.event_id IN (SELECT k.event_id FROM keys k WHERE k.key LIKE 'message:%')) \
    THEN 'accepted' ELSE 'duplicate' END AS verdict \
  FROM batch b \
";

/// [`RECORD_BATCH`] from the events on, after the runs are queued.
const RECORD_BATCH_REST: &str = "\
), event AS ( \
  INSERT INTO webhook_events (id, workspace_id, registration_id, verdict, body_digest, headers, body, payload, execution_id) \
  SELECT j.event_id, j.workspace_id, j.registration_id, j.verdict, j.digest, j.headers, j.body, j.payload, run.id \
  FROM judged j LEFT JOIN run ON run.id = j.execution_id \
  RETURNING id \
), incoming AS ( \
  SELECT m.*, j.workspace_id FROM jsonb_to_recordset($14) AS m( \
    event_id uuid, id uuid, conversation_id uuid, wa_id text, name text, phone_number_id text, \
    message_id text, message_type text, body text, preview text, sent_at bigint, payload jsonb) \
  JOIN judged j ON j.event_id = m.event_id AND j.verdict = 'accepted' \
  WHERE EXISTS (SELECT 1 FROM keys k WHERE k.event_id = m.event_id AND k.key = 'message:' || m.message_id) \
), contacts AS ( \
  SELECT DISTINCT ON (workspace_id, wa_id) workspace_id, wa_id, conversation_id, name, phone_number_id, \
    to_timestamp(sent_at) AS last_at, preview, count(*) OVER (PARTITION BY workspace_id, wa_id) AS n \
  FROM incoming ORDER BY workspace_id, wa_id, sent_at DESC \
), conversation AS ( \
  INSERT INTO conversations AS c (id, workspace_id, wa_id, name, phone_number_id, \
    message_count, unread_count, last_message_at, last_message_preview) \
  SELECT conversation_id, workspace_id, wa_id, name, phone_number_id, n, n, last_at, preview FROM contacts \
  ON CONFLICT (workspace_id, wa_id) DO UPDATE SET \
    name = coalesce(EXCLUDED.name, c.name), \
    phone_number_id = coalesce(EXCLUDED.phone_number_id, c.phone_number_id), \
    message_count = c.message_count + EXCLUDED.message_count, \
    unread_count = c.unread_count + EXCLUDED.unread_count, \
    last_message_at = greatest(c.last_message_at, EXCLUDED.last_message_at), \
    last_message_preview = CASE WHEN c.last_message_at IS NULL OR EXCLUDED.last_message_at >= c.last_message_at \
      THEN EXCLUDED.last_message_preview ELSE c.last_message_preview END, \
    status = 'open', updated_at = now() \
  RETURNING c.id, c.workspace_id, c.wa_id \
), conversation_ids AS ( \
  SELECT jsonb_object_agg(c.workspace_id || ' ' || c.wa_id, c.id) AS ids FROM conversation c \
), stored AS ( \
  INSERT INTO messages (id, workspace_id, conversation_id, message_id, message_type, body, payload, sent_at, event_id) \
  SELECT i.id, i.workspace_id, ((SELECT ids FROM conversation_ids) ->> (i.workspace_id || ' ' || i.wa_id))::uuid, \
    i.message_id, i.message_type, i.body, i.payload, to_timestamp(i.sent_at), i.event_id \
  FROM incoming i ORDER BY i.workspace_id, i.message_id \
  ON CONFLICT (workspace_id, message_id) DO NOTHING RETURNING 1 \
), statuses AS ( \
  UPDATE messages m SET status = s.status \
  FROM jsonb_to_recordset($15) AS s(event_id uuid, message_id text, status text) \
  JOIN judged j ON j.event_id = s.event_id AND j.verdict = 'accepted' \
  WHERE m.workspace_id = j.workspace_id AND m.message_id = s.message_id \
  RETURNING 1 \
) \
SELECT j.event_id, j.verdict, run.id AS execution_id FROM judged j LEFT JOIN run ON run.id = j.execution_id";

#[derive(QueryableByName)]
struct RecordedRow {
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Text)]
    verdict: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    execution_id: Option<Uuid>,
}

/// A delivery waiting for its write, and who to tell.
struct Pending {
    recording: Recording,
    answer: oneshot::Sender<Result<Recorded, StorageError>>,
}

/// The queues in front of the intake's writers, one each; see the module documentation.
pub(crate) struct IntakeWriter {
    lanes: Vec<mpsc::Sender<Pending>>,
}

impl IntakeWriter {
    /// Starts the writers on the runtime of `runtime`; `written` is called after each
    /// commit that queued executions.
    pub(crate) fn start(
        pool: &DbPool,
        runtime: &tokio::runtime::Handle,
        written: &Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        let lanes = (0..IN_FLIGHT)
            .map(|_| {
                let (lane, waiting) = mpsc::channel(QUEUE_DEPTH);
                runtime.spawn(writer(pool.clone(), waiting, written.clone()));
                lane
            })
            .collect();
        Self { lanes }
    }

    /// Queues `recording` for its writer and waits until it is committed (or failed).
    pub(crate) async fn record(&self, recording: Recording) -> Result<Recorded, StorageError> {
        let (answer, answered) = oneshot::channel();
        let lane = &self.lanes[lane(&recording, self.lanes.len())];
        lane.send(Pending { recording, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// Which writer takes a delivery: the one of its (first) contact. Two writers then never
/// wait for each other's lock on a conversation, nor on the keys of a delivery sent
/// again (a retry carries the same messages); one contact's deliveries are written in
/// the order they came. A delivery without messages goes by its event id.
fn lane(recording: &Recording, lanes: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    recording.event.workspace_id.as_uuid().hash(&mut hasher);
    match recording.extracted.messages.as_slice().first() {
        Some(message) => message.wa_id.hash(&mut hasher),
        None => recording.event.id.hash(&mut hasher),
    }
    usize::try_from(hasher.finish() % lanes.max(1) as u64).unwrap_or_default()
}

fn stopped() -> StorageError {
    storage(StoreError::IntakeStopped)
}

/// One writer: whenever it is free, takes everything queued in its lane and writes it.
/// It keeps a connection of its own between batches (see [`connected`]); after a failed
/// batch it takes a fresh one, in case the old one broke.
async fn writer(
    pool: DbPool,
    mut waiting: mpsc::Receiver<Pending>,
    written: Arc<dyn Fn() + Send + Sync>,
) {
    let mut connection: Option<AsyncPgConnection> = None;
    warm_up(&pool, &mut connection).await;
    loop {
        let mut batch = Vec::new();
        if waiting.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        if write(&pool, &mut connection, batch).await {
            written();
        }
    }
}

/// The writer's connection; when it has none, it takes one out of the pool for good
/// (the pool checks it first, and opens another in its place when it needs one).
/// Keeping it spares each batch a checkout round trip, and keeps the statement prepared
/// with its plan. The plan is always the generic one: its shape does not depend on the
/// batch's size, and left to choose, PostgreSQL plans the first batches for their own
/// sizes and, when those were small, goes on re-planning every batch (~5 ms each).
async fn connected<'c>(
    pool: &DbPool,
    connection: &'c mut Option<AsyncPgConnection>,
) -> Result<&'c mut AsyncPgConnection, StorageError> {
    let kept = match connection.take() {
        Some(kept) => kept,
        None => {
            let mut taken = deadpool::managed::Object::take(pooled(pool).await?);
            // Raw: SET is a utility statement, outside the query builder.
            diesel::sql_query("SET plan_cache_mode = force_generic_plan")
                .execute(&mut taken)
                .await
                .map_err(storage)?;
            taken
        }
    };
    Ok(connection.insert(kept))
}

/// Connects and runs the statement for no delivery, so the connection has its catalogs
/// loaded and the statement planned before the first delivery waits for them (that
/// takes ~100 ms on a new connection). A failure leaves it to the first batch.
async fn warm_up(pool: &DbPool, connection: &mut Option<AsyncPgConnection>) {
    if let Err(error) = write_batch(pool, connection, &[]).await {
        tracing::debug!(%error, "the intake's writer could not prepare its connection");
        *connection = None;
    }
}

/// Writes a batch and answers each delivery in it; whether any execution was queued.
async fn write(
    pool: &DbPool,
    connection: &mut Option<AsyncPgConnection>,
    batch: Vec<Pending>,
) -> bool {
    let recordings: Vec<&Recording> = batch.iter().map(|pending| &pending.recording).collect();
    let outcomes = match write_batch(pool, connection, &recordings).await {
        Ok(recorded) => recorded.into_iter().map(Ok).collect(),
        Err(error) if recordings.len() == 1 => {
            *connection = None;
            vec![Err(error)]
        }
        Err(error) => {
            tracing::warn!(%error, deliveries = recordings.len(), "a batch of deliveries failed; writing them one by one");
            *connection = None;
            let mut outcomes = Vec::with_capacity(recordings.len());
            for recording in &recordings {
                let alone = write_batch(pool, connection, &[recording]).await;
                if alone.is_err() {
                    *connection = None;
                }
                outcomes.push(alone.and_then(|recorded| {
                    recorded
                        .into_iter()
                        .next()
                        .ok_or_else(|| corrupt("batch outcome"))
                }));
            }
            outcomes
        }
    };
    let mut queued = false;
    for (pending, outcome) in batch.into_iter().zip(outcomes) {
        queued |= matches!(
            &outcome,
            Ok(Recorded {
                execution_id: Some(_),
                ..
            })
        );
        let _ = pending.answer.send(outcome);
    }
    queued
}

/// [`record_batch`] on the writer's connection.
async fn write_batch(
    pool: &DbPool,
    connection: &mut Option<AsyncPgConnection>,
    recordings: &[&Recording],
) -> Result<Vec<Recorded>, StorageError> {
    record_batch(connected(pool, connection).await?, recordings).await
}

/// Writes `recordings` with one statement, bypassing the queue (the benchmark's
/// baseline: one delivery per statement, as a load generator driving SQL would).
pub async fn write_directly(
    pool: &DbPool,
    recordings: &[Recording],
) -> Result<Vec<Recorded>, StorageError> {
    let mut connection = pooled(pool).await?;
    let recordings: Vec<&Recording> = recordings.iter().collect();
    record_batch(&mut connection, &recordings).await
}

/// [`RECORD_BATCH`] with its parameters. Unlike `sql_query`, it is a query type of its
/// own, so each connection prepares it once and reuses the plan.
struct RecordBatchQuery<'a> {
    event_ids: Vec<Uuid>,
    workspaces: Vec<Uuid>,
    registrations: Vec<Uuid>,
    digests: Vec<&'a str>,
    headers: Vec<&'a Value>,
    bodies: Vec<&'a [u8]>,
    payloads: Vec<Option<&'a Value>>,
    executions: Vec<Uuid>,
    trigger_kinds: Vec<&'static str>,
    /// The run's input when it is not the payload (a body that is not JSON runs with
    /// its text); the payload is sent once.
    inputs: Vec<Option<Value>>,
    body_keys: Vec<&'a str>,
    key_events: Vec<Uuid>,
    keys: Vec<&'a str>,
    messages: Value,
    statuses: Value,
}

impl<'a> RecordBatchQuery<'a> {
    fn new(recordings: &[&'a Recording]) -> Self {
        fn column<'a, T>(
            recordings: &[&'a Recording],
            value: impl Fn(&'a Recording) -> T,
        ) -> Vec<T> {
            recordings
                .iter()
                .map(|recording| value(recording))
                .collect()
        }
        let (mut key_events, mut keys) = (Vec::new(), Vec::new());
        let (mut messages, mut statuses) = (Vec::new(), Vec::new());
        for recording in recordings {
            let event = recording.event.id.as_uuid();
            for key in &recording.dedupe_keys.messages {
                key_events.push(event);
                keys.push(key.as_str());
            }
            messages.extend(tagged(recording.extracted.message_records(), event));
            statuses.extend(tagged(recording.extracted.status_records(), event));
        }
        Self {
            event_ids: column(recordings, |r| r.event.id.as_uuid()),
            workspaces: column(recordings, |r| r.event.workspace_id.as_uuid()),
            registrations: column(recordings, |r| r.event.registration_id.as_uuid()),
            digests: column(recordings, |r| r.event.body_digest.as_str()),
            headers: column(recordings, |r| &r.event.headers),
            bodies: column(recordings, |r| r.event.body.as_slice()),
            payloads: column(recordings, |r| r.event.payload.as_ref()),
            executions: column(recordings, |r| r.run.id.as_uuid()),
            trigger_kinds: column(recordings, |r| r.run.trigger_kind.code()),
            inputs: column(recordings, |r| {
                r.event
                    .payload
                    .is_none()
                    .then(|| run_input(None, &r.event.body))
            }),
            body_keys: column(recordings, |r| r.dedupe_keys.body.as_str()),
            key_events,
            keys,
            messages: Value::Array(messages),
            statuses: Value::Array(statuses),
        }
    }

    /// Binds parameter `index` (0-based) of [`RECORD_BATCH`].
    fn bind<'b>(&'b self, index: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match index {
            0 => out.push_bind_param::<Array<SqlUuid>, _>(&self.event_ids),
            1 => out.push_bind_param::<Array<SqlUuid>, _>(&self.workspaces),
            2 => out.push_bind_param::<Array<SqlUuid>, _>(&self.registrations),
            3 => out.push_bind_param::<Array<Text>, _>(&self.digests),
            4 => out.push_bind_param::<Array<Jsonb>, _>(&self.headers),
            5 => out.push_bind_param::<Array<Bytea>, _>(&self.bodies),
            6 => out.push_bind_param::<Array<Nullable<Jsonb>>, _>(&self.payloads),
            7 => out.push_bind_param::<Array<SqlUuid>, _>(&self.executions),
            8 => out.push_bind_param::<Array<Nullable<Jsonb>>, _>(&self.inputs),
            9 => out.push_bind_param::<Array<Text>, _>(&self.body_keys),
            10 => out.push_bind_param::<Array<Text>, _>(&self.trigger_kinds),
            11 => out.push_bind_param::<Array<SqlUuid>, _>(&self.key_events),
            12 => out.push_bind_param::<Array<Text>, _>(&self.keys),
            13 => out.push_bind_param::<Jsonb, _>(&self.messages),
            14 => out.push_bind_param::<Jsonb, _>(&self.statuses),
            _ => Err(diesel::result::Error::QueryBuilderError(
                format!("the intake statement has no parameter ${}", index + 1).into(),
            )),
        }
    }
}

impl QueryFragment<Pg> for RecordBatchQuery<'_> {
    /// The statement's text with each `$n` replaced by the bind of parameter n (they
    /// appear once each, in order).
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut pieces = RECORD_BATCH.split('$');
        out.push_sql(pieces.next().unwrap_or_default());
        for (index, piece) in pieces.enumerate() {
            let digits = piece
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(piece.len());
            if piece[..digits].parse::<usize>().ok() != Some(index + 1) {
                return Err(diesel::result::Error::QueryBuilderError(
                    format!(
                        "the intake statement's parameter {} is out of order",
                        index + 1
                    )
                    .into(),
                ));
            }
            self.bind(index, &mut out)?;
            out.push_sql(&piece[digits..]);
        }
        Ok(())
    }
}

impl QueryId for RecordBatchQuery<'_> {
    type QueryId = RecordBatchQuery<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for RecordBatchQuery<'_> {
    type SqlType = Untyped;
}

/// Runs [`RECORD_BATCH`] for `recordings`: what it found for each, in their order.
async fn record_batch(
    connection: &mut AsyncPgConnection,
    recordings: &[&Recording],
) -> Result<Vec<Recorded>, StorageError> {
    let rows: Vec<RecordedRow> = RecordBatchQuery::new(recordings)
        .load(connection)
        .await
        .map_err(storage)?;
    let mut found: HashMap<Uuid, RecordedRow> =
        rows.into_iter().map(|row| (row.event_id, row)).collect();
    recordings
        .iter()
        .map(|recording| {
            let row = found
                .remove(&recording.event.id.as_uuid())
                .ok_or_else(|| corrupt("batch outcome"))?;
            Ok(Recorded {
                verdict: Verdict::from_code(&row.verdict).ok_or_else(|| corrupt("verdict"))?,
                execution_id: row.execution_id.map(ExecutionId::from_uuid),
            })
        })
        .collect()
}

/// The records of a JSON array, each given `event_id`.
fn tagged(records: Value, event: Uuid) -> Vec<Value> {
    let Value::Array(mut records) = records else {
        return Vec::new();
    };
    for record in &mut records {
        if let Value::Object(fields) = record {
            fields.insert("event_id".to_owned(), Value::String(event.to_string()));
        }
    }
    records
}
