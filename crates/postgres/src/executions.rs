//! Executions, their steps, and the queue (DESIGN §5): claims with `FOR UPDATE SKIP
//! LOCKED`, leases, re-claim of expired leases, and a cap on attempts.

use std::collections::HashMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{
    EnvironmentId, EnvironmentRef, ExecutionId, Page, PageRequest, StorageError, WorkflowId,
    WorkspaceId,
};
use fluxolab_workflows::Definition;
use fluxolab_workflows::engine::StepRecord;
use fluxolab_workflows::execution::{
    Claim, ClaimedExecution, Execution, ExecutionFilter, ExecutionRepository, Finished, InlineRun,
    Lease,
};
use fluxolab_workflows::lease::{Fenced, LeaseToken};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::DbPool;
use crate::claims::ClaimedRow;
use crate::error::{StoreError, corrupt, storage};
use crate::pool::pooled;
use crate::schema::{execution_steps, executions, workflow_versions, workspace_environments};
use crate::sql::Prepared;

/// Executions over the pool.
#[derive(Clone)]
pub struct PgExecutions {
    pool: DbPool,
    /// A connection taken out of the pool that `LISTEN`s for queued executions.
    listener: std::sync::Arc<tokio::sync::Mutex<Option<diesel_async::AsyncPgConnection>>>,
    /// Finishing runs, written in batches.
    completions: crate::group_commit::GroupCommit<crate::completions::FinishBatch>,
    /// Runs queued one at a time (`RunQueue::queue`), written in batches.
    queued: crate::group_commit::GroupCommit<crate::run_queue::QueueBatch>,
    /// Wakes the workers once queued runs are committed.
    waker: crate::run_queue::Waker,
    /// Definitions of the workflow versions claimed runs pin, parsed once per process: a
    /// version is never changed once written, so a claim reads only those it has not
    /// seen.
    definitions: moka::sync::Cache<(Uuid, i32), std::sync::Arc<Definition>>,
}

/// How many workflow versions' definitions a process keeps parsed.
const CACHED_DEFINITIONS: u64 = 1_024;

impl std::fmt::Debug for PgExecutions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgExecutions").finish_non_exhaustive()
    }
}

impl PgExecutions {
    /// The pool, for the other modules of this adapter.
    pub(crate) fn pool(&self) -> &DbPool {
        &self.pool
    }

    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            listener: std::sync::Arc::default(),
            completions: crate::group_commit::GroupCommit::default(),
            queued: crate::group_commit::GroupCommit::default(),
            waker: crate::run_queue::Waker::default(),
            definitions: moka::sync::Cache::new(CACHED_DEFINITIONS),
        }
    }

    /// The definitions of the workflow versions `pinned`, from the process's cache, the
    /// versions it lacks read in one query.
    async fn definitions(
        &self,
        connection: &mut diesel_async::AsyncPgConnection,
        pinned: impl Iterator<Item = (Uuid, i32)>,
    ) -> Result<HashMap<(Uuid, i32), std::sync::Arc<Definition>>, StorageError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for key in pinned {
            if found.contains_key(&key) {
                continue;
            }
            match self.definitions.get(&key) {
                Some(definition) => {
                    found.insert(key, definition);
                }
                None => missing.push(key),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let workflows: Vec<Uuid> = missing.iter().map(|key| key.0).collect();
        let versions: Vec<i32> = missing.iter().map(|key| key.1).collect();
        // Only the versions missing (a superset at worst), each parsed once.
        let stored: Vec<(Uuid, i32, Value)> = workflow_versions::table
            .filter(workflow_versions::workflow_id.eq_any(&workflows))
            .filter(workflow_versions::version.eq_any(&versions))
            .select((
                workflow_versions::workflow_id,
                workflow_versions::version,
                workflow_versions::definition,
            ))
            .load(connection)
            .await
            .map_err(storage)?;
        for (workflow, version, definition) in stored {
            let definition = std::sync::Arc::new(
                serde_json::from_value::<Definition>(definition).map_err(storage)?,
            );
            self.definitions
                .insert((workflow, version), std::sync::Arc::clone(&definition));
            found.insert((workflow, version), definition);
        }
        Ok(found)
    }

    /// The batches of runs queued one at a time, for the run queue of this adapter.
    pub(crate) fn queued(&self) -> &crate::group_commit::GroupCommit<crate::run_queue::QueueBatch> {
        &self.queued
    }

    /// What wakes the workers, for the run queue of this adapter.
    pub(crate) fn waker(&self) -> &crate::run_queue::Waker {
        &self.waker
    }

    async fn wait_for_notification(&self) -> Result<(), StorageError> {
        use futures_util::StreamExt;
        let mut listener = self.listener.lock().await;
        if listener.is_none() {
            let object = pooled(&self.pool).await?;
            let mut connection = diesel_async::pooled_connection::deadpool::Object::take(object);
            // Raw: LISTEN is a utility statement, outside the query builder.
            diesel::sql_query("LISTEN fluxolab_executions")
                .execute(&mut connection)
                .await
                .map_err(storage)?;
            *listener = Some(connection);
        }
        let Some(connection) = listener.as_mut() else {
            return Ok(());
        };
        let notification = std::pin::pin!(connection.notifications_stream())
            .next()
            .await;
        match notification {
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => {
                // A broken listener is replaced on the next wait.
                *listener = None;
                Err(storage(error))
            }
            None => {
                *listener = None;
                Err(StorageError::unavailable(StoreError::ListenerEnded))
            }
        }
    }
}

pub(crate) type ExecutionRow = (
    Uuid,
    Uuid,
    Uuid,
    i32,
    String,
    String,
    Value,
    Option<Value>,
    Option<String>,
    i32,
    i32,
    Option<Uuid>,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Uuid,
    String,
    Option<Uuid>,
);

/// The columns of an [`ExecutionRow`], from `executions` joined to its environment.
macro_rules! execution_columns {
    () => {
        (
            executions::id,
            executions::workspace_id,
            executions::workflow_id,
            executions::version,
            executions::status,
            executions::trigger_kind,
            executions::input,
            executions::output,
            executions::error,
            executions::attempt,
            executions::max_attempts,
            executions::retry_of,
            executions::created_at,
            executions::started_at,
            executions::finished_at,
            executions::environment_id,
            workspace_environments::name,
            executions::parent_execution_id,
        )
    };
}

fn execution(row: ExecutionRow) -> Result<Execution, StorageError> {
    let (
        id,
        workspace,
        workflow,
        version,
        status,
        trigger_kind,
        input,
        output,
        error,
        attempt,
        max_attempts,
        retry_of,
        created_at,
        started_at,
        finished_at,
        environment_id,
        environment_name,
        parent_execution_id,
    ) = row;
    Ok(Execution {
        id: ExecutionId::from_uuid(id),
        workspace_id: WorkspaceId::from_uuid(workspace),
        workflow_id: WorkflowId::from_uuid(workflow),
        version,
        environment: EnvironmentRef {
            id: EnvironmentId::from_uuid(environment_id),
            name: environment_name,
        },
        status: status.parse().map_err(|message: String| corrupt(message))?,
        trigger_kind,
        input,
        output,
        error,
        attempt,
        max_attempts,
        retry_of: retry_of.map(ExecutionId::from_uuid),
        parent_execution_id: parent_execution_id.map(ExecutionId::from_uuid),
        created_at,
        started_at,
        finished_at,
        steps: Vec::new(),
    })
}

type StepRow = (
    String,
    String,
    Option<Value>,
    Option<Value>,
    Option<String>,
    Option<String>,
    OffsetDateTime,
    OffsetDateTime,
    Option<String>,
    Option<Value>,
);

/// The columns of a [`StepRow`].
macro_rules! step_columns {
    () => {
        (
            execution_steps::node_id,
            execution_steps::node_type,
            execution_steps::input,
            execution_steps::output,
            execution_steps::error,
            execution_steps::route,
            execution_steps::started_at,
            execution_steps::finished_at,
            execution_steps::effect_key,
            execution_steps::logs,
        )
    };
}

fn step(
    (node_id, node_type, input, output, error, route, started_at, finished_at, effect_key, logs): StepRow,
) -> StepRecord {
    StepRecord {
        node_id,
        node_type,
        input: input.unwrap_or(Value::Null),
        output,
        error,
        route,
        started_at,
        finished_at,
        effect_key,
        logs: match logs {
            Some(Value::Array(lines)) => lines
                .into_iter()
                .filter_map(|line| match line {
                    Value::String(line) => Some(line),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        },
    }
}

impl PgExecutions {
    async fn steps_of(&self, execution: Uuid) -> Result<Vec<StepRecord>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<StepRow> = execution_steps::table
            .filter(execution_steps::execution_id.eq(execution))
            .order(execution_steps::position.asc())
            .select(step_columns!())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        Ok(rows.into_iter().map(step).collect())
    }
}

/// `INSERT INTO execution_steps …` of the steps in the JSON array `steps` (see
/// [`steps_json`]) of each execution `e` that `executions` (a `FROM` list naming `e`,
/// with `e.id` and `e.workspace_id`) yields, after the steps it has. The one place
/// steps are written: statements put it in a CTE after their fenced update (or lock) of
/// the execution, so steps and status land in one write and only while the lease holds.
pub(crate) fn insert_steps(executions: &str, steps: &str) -> String {
    format!(
        "INSERT INTO execution_steps \
           (id, execution_id, workspace_id, position, node_id, node_type, input, output, error, \
            route, started_at, finished_at, effect_key, logs) \
         SELECT s.id, e.id, e.workspace_id, \
           coalesce((SELECT max(position) + 1 FROM execution_steps WHERE execution_id = e.id), 0) \
             + s.seq, \
           s.node_id, s.node_type, s.input, s.output, s.error, s.route, s.started_at, \
           s.finished_at, s.effect_key, s.logs \
         FROM {executions}, jsonb_to_recordset({steps}) AS s( \
           id uuid, seq int, node_id text, node_type text, input jsonb, output jsonb, error text, \
           route text, started_at timestamptz, finished_at timestamptz, effect_key text, \
           logs jsonb)"
    )
}

/// The condition of every write a worker makes for a run: still running, under the
/// lease token `$3` its claim got. Evaluated on the row as locked (READ COMMITTED
/// re-checks it after waiting for a concurrent claim), so a write racing a takeover
/// either lands before it or not at all.
pub(crate) const HELD: &str = "id = $1 AND status = 'running' AND lease_token = $3";

/// Runs a fenced statement (`WITH fence AS (…), steps AS (…) SELECT count(*) …`) and
/// says whether the lease held.
pub(crate) async fn fenced(
    connection: &mut diesel_async::AsyncPgConnection,
    statement: Prepared<'_>,
) -> Result<Fenced, StorageError> {
    #[derive(QueryableByName)]
    struct Held {
        #[diesel(sql_type = BigInt)]
        held: i64,
    }
    let held: Held = statement.get_result(connection).await.map_err(storage)?;
    Ok(if held.held > 0 {
        Fenced::Written
    } else {
        Fenced::LeaseLost
    })
}

/// A fenced statement: `fence` (an update of, or lock on, the execution under [`HELD`]),
/// then the steps in `$2` ([`insert_steps`]), then the count of rows fenced.
pub(crate) fn fenced_statement(fence: &str) -> String {
    format!(
        "WITH fence AS ({fence}), steps AS ({}) SELECT count(*) AS held FROM fence",
        insert_steps("fence e", "$2")
    )
}

/// The steps as the JSON array [`insert_steps`] reads.
pub(crate) fn steps_json(steps: &[StepRecord]) -> Result<Value, StorageError> {
    let timestamp = |at: OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .map_err(storage)
    };
    steps
        .iter()
        .enumerate()
        .map(|(offset, step)| {
            Ok(serde_json::json!({
                "id": Uuid::now_v7(),
                "seq": offset,
                "effect_key": step.effect_key,
                "node_id": step.node_id,
                "node_type": step.node_type,
                "input": step.input,
                "output": step.output,
                "error": step.error,
                "route": step.route,
                "started_at": timestamp(step.started_at)?,
                "finished_at": timestamp(step.finished_at)?,
                "logs": (!step.logs.is_empty()).then_some(&step.logs),
            }))
        })
        .collect::<Result<Vec<_>, StorageError>>()
        .map(Value::Array)
}

#[async_trait]
impl ExecutionRepository for PgExecutions {
    #[tracing::instrument(name = "db.executions.create_inline", level = "debug", skip_all)]
    async fn create_inline(&self, run: &InlineRun) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        crate::run_queue::insert_inline(&mut connection, run).await
    }

    #[tracing::instrument(name = "db.executions.record_steps", level = "debug", skip_all)]
    async fn record_steps(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: the steps' CTE (jsonb_to_recordset) behind a fence (the row locked under
        // the lease token).
        let statement = fenced_statement(&format!(
            "SELECT id, workspace_id FROM executions WHERE {HELD} FOR UPDATE"
        ));
        fenced(
            &mut connection,
            Prepared::new(statement)
                .bind::<SqlUuid, _>(execution.as_uuid())
                .bind::<Jsonb, _>(steps_json(steps)?)
                .bind::<BigInt, _>(lease.value()),
        )
        .await
    }

    #[tracing::instrument(name = "db.executions.requeue", level = "debug", skip_all)]
    async fn requeue(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        delay_seconds: i64,
        error: &str,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: the steps' CTE (jsonb_to_recordset) and the settle in one fenced statement.
        let statement = fenced_statement(&format!(
            "UPDATE executions SET status = 'queued', due_at = now() + make_interval(secs => $4), \
               error = $5, locked_by = NULL, locked_until = NULL \
             WHERE {HELD} RETURNING id, workspace_id"
        ));
        fenced(
            &mut connection,
            Prepared::new(statement)
                .bind::<SqlUuid, _>(execution.as_uuid())
                .bind::<Jsonb, _>(steps_json(steps)?)
                .bind::<BigInt, _>(lease.value())
                .bind::<diesel::sql_types::Double, _>(delay_seconds as f64)
                .bind::<Text, _>(error.to_owned()),
        )
        .await
    }

    #[tracing::instrument(name = "db.executions.suspend", level = "debug", skip_all)]
    async fn suspend(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        until: OffsetDateTime,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: the steps' CTE (jsonb_to_recordset) and the suspension in one fenced
        // statement.
        let statement = fenced_statement(&format!(
            "UPDATE executions SET status = 'queued', due_at = $4, \
               attempt = greatest(attempt - 1, 0), locked_by = NULL, locked_until = NULL \
             WHERE {HELD} RETURNING id, workspace_id"
        ));
        fenced(
            &mut connection,
            Prepared::new(statement)
                .bind::<SqlUuid, _>(execution.as_uuid())
                .bind::<Jsonb, _>(steps_json(steps)?)
                .bind::<BigInt, _>(lease.value())
                .bind::<Timestamptz, _>(until),
        )
        .await
    }

    #[tracing::instrument(name = "db.executions.suspend_for_child", level = "debug", skip_all)]
    async fn suspend_for_child(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        child: ExecutionId,
        until: OffsetDateTime,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError> {
        crate::sub_workflows::suspend_for_child(self, (execution, lease), child, until, steps).await
    }

    #[tracing::instrument(name = "db.executions.finish", level = "debug", skip_all)]
    async fn finish(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        outcome: Finished,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError> {
        crate::completions::finish(
            &self.completions,
            &self.pool,
            (execution, lease),
            outcome,
            steps,
        )
        .await
    }

    #[tracing::instrument(name = "db.executions.release_held", level = "debug", skip_all)]
    async fn release_held(&self, worker: &str) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: the release and the NOTIFY that wakes the other workers, in one statement.
        // `locked_by` is the fence: each claim sets it, so a run another worker took since
        // names that worker. A held run always has a lease: saying so lets the statement
        // read the lease index (migration 32) instead of the whole table.
        let statement = format!(
            "WITH fence AS ( \
               UPDATE executions SET status = 'queued', due_at = least(due_at, now()), locked_by = NULL, \
                 locked_until = NULL, attempt = greatest(attempt - 1, 0) \
               WHERE status = 'running' AND locked_until IS NOT NULL AND locked_by = $1 \
               RETURNING id) \
             SELECT count(*) AS released, {wake} FROM fence",
            wake = crate::run_queue::WAKE_WORKERS,
        );
        #[derive(QueryableByName)]
        struct Released {
            #[diesel(sql_type = BigInt)]
            released: i64,
        }
        let released: Released = Prepared::new(statement)
            .bind::<Text, _>(worker)
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        Ok(released.released.unsigned_abs())
    }

    #[tracing::instrument(name = "db.executions.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: ExecutionId,
    ) -> Result<Option<Execution>, StorageError> {
        let row: Option<ExecutionRow> = {
            let mut connection = pooled(&self.pool).await?;
            executions::table
                .inner_join(workspace_environments::table)
                .filter(executions::workspace_id.eq(workspace.as_uuid()))
                .filter(executions::id.eq(id.as_uuid()))
                .select(execution_columns!())
                .first(&mut connection)
                .await
                .optional()
                .map_err(storage)?
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let mut found = execution(row)?;
        found.steps = self.steps_of(id.as_uuid()).await?;
        Ok(Some(found))
    }

    #[tracing::instrument(name = "db.executions.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<Execution>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let mut query = executions::table
            .inner_join(workspace_environments::table)
            .filter(executions::workspace_id.eq(workspace.as_uuid()))
            .select(execution_columns!())
            .order((executions::created_at.desc(), executions::id.desc()))
            .limit(page.fetch_limit())
            .into_boxed();
        if let Some(workflow) = filter.workflow_id {
            query = query.filter(executions::workflow_id.eq(workflow.as_uuid()));
        }
        if let Some(status) = filter.status {
            query = query.filter(executions::status.eq(status.code()));
        }
        if let Some(since) = filter.since {
            query = query.filter(executions::created_at.ge(since));
        }
        if let Some(after) = page.after() {
            query = query.filter(crate::keyset::before!(
                executions::created_at,
                executions::id,
                after
            ));
        }
        let rows: Vec<ExecutionRow> = query.load(&mut connection).await.map_err(storage)?;
        let items = rows
            .into_iter()
            .map(execution)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(items, page, Execution::cursor))
    }

    #[tracing::instrument(name = "db.executions.cancel", level = "debug", skip_all)]
    async fn cancel(&self, workspace: WorkspaceId, id: ExecutionId) -> Result<bool, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let cancelled = diesel::update(
            executions::table
                .filter(executions::workspace_id.eq(workspace.as_uuid()))
                .filter(executions::id.eq(id.as_uuid()))
                .filter(executions::status.eq("queued")),
        )
        .set((
            executions::status.eq("cancelled"),
            executions::finished_at.eq(diesel::dsl::now),
        ))
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        if cancelled == 1 {
            // A parent waiting for it resumes now (and fails its step).
            crate::sub_workflows::wake_parent(&mut connection, id).await?;
            return Ok(true);
        }
        diesel::update(
            executions::table
                .filter(executions::workspace_id.eq(workspace.as_uuid()))
                .filter(executions::id.eq(id.as_uuid()))
                .filter(executions::status.eq("running")),
        )
        .set(executions::cancel_requested.eq(true))
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(false)
    }

    #[tracing::instrument(name = "db.executions.claim", level = "debug", skip_all)]
    async fn claim(
        &self,
        worker: &str,
        limit: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let (abandoned, claimed): (Vec<ClaimedRow>, Vec<ClaimedRow>) =
            crate::claims::claim_rows(&mut connection, worker, limit, lease_seconds)
                .await?
                .into_iter()
                .partition(|row| row.abandoned);
        let abandoned = abandoned
            .into_iter()
            .map(|row| ExecutionId::from_uuid(row.id))
            .collect();
        if claimed.is_empty() {
            return Ok(Claim {
                runs: Vec::new(),
                abandoned,
            });
        }
        // At most two more queries for the whole batch: the definitions this process has
        // not parsed yet, the steps of runs started before.
        let definitions = self
            .definitions(&mut connection, claimed.iter().map(ClaimedRow::pinned))
            .await?;
        // Only a run started before can have steps to resume after.
        let started: Vec<Uuid> = claimed
            .iter()
            .filter(|row| row.started)
            .map(|row| row.id)
            .collect();
        let steps: Vec<(Uuid, StepRow)> = if started.is_empty() {
            Vec::new()
        } else {
            execution_steps::table
                .filter(execution_steps::execution_id.eq_any(&started))
                .order((
                    execution_steps::execution_id,
                    execution_steps::position.asc(),
                ))
                .select((execution_steps::execution_id, step_columns!()))
                .load(&mut connection)
                .await
                .map_err(storage)?
        };
        let mut completed_by_run: HashMap<Uuid, Vec<StepRecord>> = HashMap::new();
        for (id, row) in steps {
            completed_by_run.entry(id).or_default().push(step(row));
        }
        let mut runs = Vec::with_capacity(claimed.len());
        for row in claimed {
            let lease = LeaseToken::new(row.lease_token);
            let defaults = row.defaults();
            let execution = execution(row.into_execution_row())?;
            let definition = definitions
                .get(&(execution.workflow_id.as_uuid(), execution.version))
                .map(|definition| Definition::clone(definition))
                .ok_or_else(|| corrupt("the execution's version is gone"))?;
            runs.push(ClaimedExecution {
                lease,
                defaults,
                definition,
                completed: completed_by_run
                    .remove(&execution.id.as_uuid())
                    .unwrap_or_default(),
                execution,
            });
        }
        Ok(Claim { runs, abandoned })
    }

    #[tracing::instrument(name = "db.executions.wait_for_work", level = "debug", skip_all)]
    async fn wait_for_work(&self, max_wait: std::time::Duration) -> Result<(), StorageError> {
        match tokio::time::timeout(max_wait, self.wait_for_notification()).await {
            Ok(outcome) => outcome,
            // No notification in time: look anyway (leases expire without one).
            Err(_) => Ok(()),
        }
    }

    #[tracing::instrument(name = "db.executions.prune_expired", level = "debug", skip_all)]
    async fn prune_expired(&self, batch: i64) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: retention per plan read from jsonb limits in a batched DELETE … IN (subselect).
        let deleted = diesel::sql_query(
            "DELETE FROM executions WHERE id IN ( \
               SELECT e.id FROM executions e \
               JOIN subscriptions s ON s.workspace_id = e.workspace_id \
               JOIN plans p ON p.id = s.plan_id \
               WHERE e.status IN ('succeeded', 'failed', 'cancelled') \
                 AND p.limits ->> 'execution_retention_days' IS NOT NULL \
                 AND e.created_at < now() - make_interval(days => (p.limits ->> 'execution_retention_days')::int) \
               LIMIT $1 FOR UPDATE OF e SKIP LOCKED)",
        )
        .bind::<BigInt, _>(batch)
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(u64::try_from(deleted).unwrap_or_default())
    }

    #[tracing::instrument(name = "db.executions.renew", level = "debug", skip_all)]
    async fn renew(
        &self,
        execution: ExecutionId,
        lease: LeaseToken,
        lease_seconds: i64,
    ) -> Result<Lease, StorageError> {
        #[derive(QueryableByName)]
        struct Renewed {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            cancel_requested: bool,
        }
        let mut connection = pooled(&self.pool).await?;
        // Raw: the lease is renewed on the database clock by make_interval, with RETURNING;
        // it never shortens a lease extended for a long effect.
        let renewed: Option<Renewed> = Prepared::new(
            "UPDATE executions \
             SET locked_until = greatest(locked_until, now() + make_interval(secs => $3)) \
             WHERE id = $1 AND lease_token = $2 AND status = 'running' RETURNING cancel_requested",
        )
        .bind::<SqlUuid, _>(execution.as_uuid())
        .bind::<BigInt, _>(lease.value())
        .bind::<diesel::sql_types::Double, _>(lease_seconds as f64)
        .get_result(&mut connection)
        .await
        .optional()
        .map_err(storage)?;
        Ok(match renewed {
            None => Lease::Lost,
            Some(Renewed {
                cancel_requested: true,
            }) => Lease::CancelRequested,
            Some(_) => Lease::Held,
        })
    }
}
