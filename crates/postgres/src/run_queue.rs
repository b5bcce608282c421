//! Every row of `executions` is inserted here: the runs the start use case decided
//! (`RunQueue`, and the intake's batch statement, which composes [`QUEUE_DECIDED`]),
//! and the inline runs of `/test`. The module decides nothing: versions, trigger kinds,
//! quotas and audit entries arrive decided (`fluxolab_workflows::start`).

use std::sync::LazyLock;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{StorageError, Uow};
use fluxolab_workflows::execution::{ExecutionStatus, InlineRun, TriggerKind};
use fluxolab_workflows::start::{QueuedRun, RunQueue};
use fluxolab_workspace::settings::ExecutionDefaults;
use time::OffsetDateTime;

use crate::error::storage;
use crate::executions::PgExecutions;
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

/// Queues one decided run (`$1`…`$9` its columns) in one round trip; the workers are
/// woken by [`Waker`] once it is committed.
fn queue_statement() -> String {
    format!(
        "WITH decided AS (SELECT $1::uuid AS id, $2::uuid AS workspace_id, $3::uuid AS workflow_id, \
           $4::int AS version, $5::uuid AS environment_id, $6::text AS trigger_kind, \
           $7::jsonb AS input, $8::uuid AS retry_of, $9::uuid AS parent_execution_id) \
         {queue}",
        queue = &*QUEUE_DECIDED,
    )
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

async fn queue_on(connection: &mut AsyncPgConnection, run: &QueuedRun) -> Result<(), StorageError> {
    // Raw: the queue's shared INSERT … SELECT (QUEUE_DECIDED) over the decided values.
    crate::sql::Prepared::new(queue_statement())
        .bind::<SqlUuid, _>(run.id.as_uuid())
        .bind::<SqlUuid, _>(run.workspace_id.as_uuid())
        .bind::<SqlUuid, _>(run.workflow_id.as_uuid())
        .bind::<Integer, _>(run.version)
        .bind::<SqlUuid, _>(run.environment_id.as_uuid())
        .bind::<Text, _>(run.trigger_kind.code())
        .bind::<Jsonb, _>(&run.input)
        .bind::<Nullable<SqlUuid>, _>(run.retry_of.map(|id| id.as_uuid()))
        .bind::<Nullable<SqlUuid>, _>(run.parent.map(|id| id.as_uuid()))
        .execute(connection)
        .await
        .map_err(storage)?;
    Ok(())
}

#[async_trait]
impl RunQueue for PgExecutions {
    #[tracing::instrument(name = "db.run_queue.queue", level = "debug", skip_all)]
    async fn queue(&self, run: &QueuedRun) -> Result<(), StorageError> {
        let mut connection = pooled(self.pool()).await?;
        queue_on(&mut connection, run).await?;
        self.waker().wake(self.pool());
        Ok(())
    }

    #[tracing::instrument(name = "db.run_queue.queue_in", level = "debug", skip_all)]
    async fn queue_in(&self, unit: &mut Uow, run: &QueuedRun) -> Result<(), StorageError> {
        queue_on(connection_of(unit)?, run).await?;
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
