//! Every row of `executions` is inserted here: the runs the start use case decided
//! (`RunQueue`, and the intake's batch statement, which composes [`QUEUE_DECIDED`]),
//! and the inline runs of `/test`. The module decides nothing: versions, trigger kinds,
//! quotas and audit entries arrive decided (`fluxolab_workflows::start`). A run queued
//! on its own is group-committed with the others queued at the same moment
//! ([`QueueBatch`]).

use std::sync::LazyLock;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::Jsonb;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{StorageError, Uow};
use fluxolab_workflows::execution::{ExecutionStatus, InlineRun, TriggerKind};
use fluxolab_workflows::start::{QueuedRun, RunQueue};
use fluxolab_workspace::settings::ExecutionDefaults;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::error::storage;
use crate::executions::PgExecutions;
use crate::group_commit::BatchStatement;
use crate::pool::pooled;
use crate::schema::executions;
use crate::unit_of_work::connection_of;

/// The statement part that queues decided runs: the rows of a relation `decided` with
/// the columns `id, workspace_id, workflow_id, version, environment_id, trigger_kind,
/// input, retry_of, parent_execution_id`. A run whose id is already stored is left as it
/// is (the engine's runs have ids derived from what started them). Each run takes its workspace's `execution_defaults` (read by the
/// same statement; a workspace that set none gets [`ExecutionDefaults::default`]):
/// `max_attempts`, the `timeout_seconds` of an attempt, and whether it keeps its steps
/// when it succeeds. It returns the ids queued.
pub(crate) static QUEUE_DECIDED: LazyLock<String> = LazyLock::new(|| {
    let defaults = ExecutionDefaults::default();
    format!(
        "INSERT INTO executions \
  (id, workspace_id, workflow_id, version, environment_id, status, trigger_kind, input, retry_of, \
   parent_execution_id, max_attempts, timeout_seconds, save_successful_steps) \
  SELECT d.id, d.workspace_id, d.workflow_id, d.version, d.environment_id, 'queued', d.trigger_kind, d.input, d.retry_of, \
    d.parent_execution_id, \
    COALESCE((s.settings #>> '{{execution_defaults,max_attempts}}')::int, {max_attempts}), \
    COALESCE((s.settings #>> '{{execution_defaults,timeout_seconds}}')::int, {timeout_seconds}), \
    COALESCE((s.settings #>> '{{execution_defaults,save_successful_steps}}')::boolean, {save_successful_steps}) \
  FROM decided d LEFT JOIN workspace_settings s ON s.workspace_id = d.workspace_id \
  ON CONFLICT (id) DO NOTHING RETURNING id",
        max_attempts = defaults.max_attempts,
        timeout_seconds = defaults.timeout_seconds,
        save_successful_steps = defaults.save_successful_steps,
    )
});

/// The channel idle workers listen on, notified in the statements that make runs due
/// (a release, the intake's batch, a parent woken by its child) and by [`Waker`].
pub(crate) const WAKE_WORKERS: &str = "pg_notify('fluxolab_executions', '')";

/// Queues the decided runs of `$1`, a JSON array of rows with the columns of
/// [`QUEUE_DECIDED`]'s `decided`, in one round trip; the workers are woken by [`Waker`]
/// once they are committed. A JSON `null` input comes out of `jsonb_to_recordset` as
/// SQL `NULL` and goes back to `null`.
static QUEUE_ROWS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH decided AS (SELECT d.id, d.workspace_id, d.workflow_id, d.version, d.environment_id, \
           d.trigger_kind, COALESCE(d.input, 'null'::jsonb) AS input, d.retry_of, d.parent_execution_id \
           FROM jsonb_to_recordset($1) AS d(id uuid, workspace_id uuid, workflow_id uuid, version int, \
             environment_id uuid, trigger_kind text, input jsonb, retry_of uuid, parent_execution_id uuid)) \
         {queue}",
        queue = &*QUEUE_DECIDED,
    )
});

/// A decided run as a row of [`QUEUE_ROWS`]'s input.
fn queue_row(run: &QueuedRun) -> Value {
    json!({
        "id": run.id.as_uuid(),
        "workspace_id": run.workspace_id.as_uuid(),
        "workflow_id": run.workflow_id.as_uuid(),
        "version": run.version,
        "environment_id": run.environment_id.as_uuid(),
        "trigger_kind": run.trigger_kind.code(),
        "input": run.input,
        "retry_of": run.retry_of.map(|id| id.as_uuid()),
        "parent_execution_id": run.parent.map(|id| id.as_uuid()),
    })
}

async fn queue_rows(connection: &mut AsyncPgConnection, rows: Value) -> Result<(), StorageError> {
    // Raw: the queue's shared INSERT … SELECT (QUEUE_DECIDED) over jsonb_to_recordset.
    crate::sql::Prepared::new(QUEUE_ROWS.as_str())
        .bind::<Jsonb, _>(rows)
        .execute(connection)
        .await
        .map_err(storage)?;
    Ok(())
}

/// Runs queued one at a time (`/run`, retries, the engine's own runs), stored with the
/// others queued at the same moment ([`crate::group_commit`]).
pub(crate) struct QueueBatch;

impl BatchStatement for QueueBatch {
    type Row = Value;
    type Answer = ();

    async fn write(pool: &crate::DbPool, rows: &[&Value]) -> Result<Vec<()>, StorageError> {
        let input = Value::Array(rows.iter().map(|row| (*row).clone()).collect());
        queue_rows(&mut *pooled(pool).await?, input).await?;
        Ok(vec![(); rows.len()])
    }
}

/// Wakes the workers (`NOTIFY`) after runs were queued, coalescing: one notification at a
/// time per process, and every wake asked for while one is being sent makes one more.
///
/// A `NOTIFY` inside the transaction that queues a run (as this module once did) takes
/// PostgreSQL's database-wide notification lock at commit and holds it through the WAL
/// flush, so every run queued through `/run` committed one after another: about 1,300
/// runs/s on the 2-core machine, a third of what the same inserts do without it
/// (`docs/benchmarks.md`). Sent on its own after the commit, the runs' transactions
/// flush together again, and the notifications of a busy second cost a few commits.
#[derive(Clone, Default)]
pub(crate) struct Waker {
    wanted: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<tokio::sync::Notify>>>,
}

impl Waker {
    /// Asks for a notification soon (started on first use).
    pub(crate) fn wake(&self, pool: &crate::DbPool) {
        self.wanted
            .get_or_init(|| {
                let wanted = std::sync::Arc::new(tokio::sync::Notify::new());
                tokio::spawn(notify_when_wanted(pool.clone(), wanted.clone()));
                wanted
            })
            .notify_one();
    }
}

async fn notify_when_wanted(pool: crate::DbPool, wanted: std::sync::Arc<tokio::sync::Notify>) {
    loop {
        wanted.notified().await;
        let sent = async {
            let mut connection = pooled(&pool).await?;
            // Raw: `pg_notify` is a bare function call, without a table.
            crate::sql::Prepared::new(format!("SELECT {WAKE_WORKERS}"))
                .execute(&mut *connection)
                .await
                .map_err(storage)
        };
        if let Err(error) = sent.await {
            // Idle workers look anyway within a second.
            tracing::debug!(%error, "could not wake the workers");
        }
    }
}

#[async_trait]
impl RunQueue for PgExecutions {
    #[tracing::instrument(name = "db.run_queue.queue", level = "debug", skip_all)]
    async fn queue(&self, run: &QueuedRun) -> Result<(), StorageError> {
        self.queued().store(self.pool(), queue_row(run)).await?;
        self.waker().wake(self.pool());
        Ok(())
    }

    #[tracing::instrument(name = "db.run_queue.queue_in", level = "debug", skip_all)]
    async fn queue_in(&self, unit: &mut Uow, run: &QueuedRun) -> Result<(), StorageError> {
        queue_rows(connection_of(unit)?, Value::Array(vec![queue_row(run)])).await?;
        let (waker, pool) = (self.waker().clone(), self.pool().clone());
        crate::unit_of_work::after_commit(unit, async move { waker.wake(&pool) })
    }
}

/// Stores the inline run of `/test` (running from the start, never queued).
pub(crate) async fn insert_inline(
    connection: &mut AsyncPgConnection,
    new: &InlineRun,
) -> Result<(), StorageError> {
    diesel::insert_into(executions::table)
        .values((
            executions::id.eq(new.id.as_uuid()),
            executions::workspace_id.eq(new.workspace_id.as_uuid()),
            executions::workflow_id.eq(new.workflow_id.as_uuid()),
            executions::version.eq(new.version),
            executions::environment_id.eq(new.environment_id.as_uuid()),
            executions::status.eq(ExecutionStatus::Running.code()),
            executions::trigger_kind.eq(TriggerKind::Test.code()),
            executions::input.eq(&new.input),
            executions::attempt.eq(1),
            executions::started_at.eq(OffsetDateTime::now_utc()),
        ))
        .execute(connection)
        .await
        .map_err(storage)?;
    Ok(())
}
