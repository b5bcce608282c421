//! Sub-workflows in storage: a run's chain of parents (`executions.parent_execution_id`,
//! read up with a recursive CTE), a parent waiting for its child (`waiting_for`), and the
//! wake-up a child's end gives that parent (the same write that ends the child; the
//! statements that end runs compose [`WAKE_WAITING_PARENTS`]).

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{
    EnvironmentId, EnvironmentRef, ExecutionId, StorageError, WorkflowId, WorkspaceId,
};
use fluxolab_workflows::engine::StepRecord;
use fluxolab_workflows::lease::{Fenced, LeaseToken};
use fluxolab_workflows::sub_workflows::{Ancestor, ExecutionLineage};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::storage;
use crate::executions::{HELD, PgExecutions, fenced, fenced_statement, steps_json};
use crate::pool::pooled;

/// The statement part that wakes the parents waiting for the runs of a relation `ended`
/// (columns `id`, `parent_execution_id`), which just ended: each parent queued with
/// `waiting_for` naming its child is due at once, and the workers are told. A `WITH`
/// item named `woken`.
pub(crate) const WAKE_WAITING_PARENTS: &str = "woken AS ( \
       UPDATE executions p SET due_at = now(), waiting_for = NULL \
       FROM ended c \
       WHERE p.id = c.parent_execution_id AND p.waiting_for = c.id AND p.status = 'queued' \
       RETURNING p.id, pg_notify('fluxolab_executions', '') \
     )";

/// Wakes the parent waiting for run `$1`, which just ended outside the finishing
/// statements (cancelled while queued).
fn wake_parent_statement() -> String {
    format!(
        "WITH ended AS (SELECT id, parent_execution_id FROM executions WHERE id = $1), \
         {WAKE_WAITING_PARENTS} SELECT count(*) AS woken FROM woken"
    )
}

/// Wakes the parent waiting for run `child`, which just ended (see
/// [`WAKE_WAITING_PARENTS`]).
pub(crate) async fn wake_parent(
    connection: &mut AsyncPgConnection,
    child: ExecutionId,
) -> Result<(), StorageError> {
    #[derive(QueryableByName)]
    struct Woken {
        #[diesel(sql_type = BigInt)]
        #[allow(dead_code)]
        woken: i64,
    }
    // Raw: the shared wake-up CTE (UPDATE … FROM with pg_notify in RETURNING).
    let _: Woken = diesel::sql_query(wake_parent_statement())
        .bind::<SqlUuid, _>(child.as_uuid())
        .get_result(connection)
        .await
        .map_err(storage)?;
    Ok(())
}

/// Suspends run `$1` (under lease `$3`, with the steps `$2`) while it waits for child
/// `$5`: due at `$4`, or at once when the child has already ended.
fn suspend_for_child_statement() -> String {
    fenced_statement(&format!(
        "UPDATE executions SET status = 'queued', waiting_for = $5, \
           due_at = CASE WHEN EXISTS (SELECT 1 FROM executions c WHERE c.id = $5 \
               AND c.status IN ('succeeded', 'failed', 'cancelled')) THEN now() ELSE $4 END, \
           attempt = greatest(attempt - 1, 0), locked_by = NULL, locked_until = NULL \
         WHERE {HELD} RETURNING id, workspace_id"
    ))
}

/// `ExecutionRepository::suspend_for_child` of [`PgExecutions`].
pub(crate) async fn suspend_for_child(
    executions: &PgExecutions,
    (execution, lease): (ExecutionId, LeaseToken),
    child: ExecutionId,
    until: OffsetDateTime,
    steps: &[StepRecord],
) -> Result<Fenced, StorageError> {
    let mut connection = pooled(executions.pool()).await?;
    // Raw: the steps' CTE (jsonb_to_recordset) and the suspension in one fenced statement.
    fenced(
        &mut connection,
        crate::sql::Prepared::new(suspend_for_child_statement())
            .bind::<SqlUuid, _>(execution.as_uuid())
            .bind::<Jsonb, _>(steps_json(steps)?)
            .bind::<BigInt, _>(lease.value())
            .bind::<Timestamptz, _>(until)
            .bind::<SqlUuid, _>(child.as_uuid()),
    )
    .await
}

/// A run's chain of parents, nearest first: `$1` and up to `$2` runs in all.
const LINEAGE: &str = "WITH RECURSIVE chain AS ( \
       SELECT id, workspace_id, workflow_id, environment_id, trigger_kind, parent_execution_id, \
         1 AS depth \
       FROM executions WHERE id = $1 \
       UNION ALL \
       SELECT p.id, p.workspace_id, p.workflow_id, p.environment_id, p.trigger_kind, \
         p.parent_execution_id, c.depth + 1 \
       FROM chain c JOIN executions p ON p.id = c.parent_execution_id \
       WHERE c.depth < $2 \
     ) \
     SELECT c.id, c.workspace_id, c.workflow_id, c.environment_id, e.name AS environment, \
       c.trigger_kind \
     FROM chain c JOIN workspace_environments e ON e.id = c.environment_id \
     ORDER BY c.depth";

#[derive(QueryableByName)]
struct AncestorRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workflow_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    environment_id: Uuid,
    #[diesel(sql_type = Text)]
    environment: String,
    #[diesel(sql_type = Text)]
    trigger_kind: String,
}

#[async_trait]
impl ExecutionLineage for PgExecutions {
    #[tracing::instrument(name = "db.executions.lineage", level = "debug", skip_all)]
    async fn lineage(
        &self,
        execution: ExecutionId,
        limit: usize,
    ) -> Result<Vec<Ancestor>, StorageError> {
        let mut connection = pooled(self.pool()).await?;
        // Raw: a recursive CTE up the parent column.
        let rows: Vec<AncestorRow> = diesel::sql_query(LINEAGE)
            .bind::<SqlUuid, _>(execution.as_uuid())
            .bind::<BigInt, _>(i64::try_from(limit).unwrap_or(i64::MAX))
            .load(&mut connection)
            .await
            .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|row| Ancestor {
                execution: ExecutionId::from_uuid(row.id),
                workspace: WorkspaceId::from_uuid(row.workspace_id),
                workflow: WorkflowId::from_uuid(row.workflow_id),
                environment: EnvironmentRef {
                    id: EnvironmentId::from_uuid(row.environment_id),
                    name: row.environment,
                },
                trigger_kind: row.trigger_kind,
            })
            .collect())
    }
}
