//! Finishing runs, group-committed ([`crate::group_commit`]): every `finish` of the
//! process joins the runs finishing at the same moment in one statement, and waits for
//! its own answer, so nothing is reported finished before it is durable.
//!
//! Every row is fenced like a single finish: written only while `status = 'running'` and
//! its lease token holds, and its steps only for rows the update took — the steps it
//! brings inserted, and for a run that keeps only its answers
//! ([`StepsKept::Answers`]), the other steps already stored deleted.

use std::collections::HashSet;
use std::sync::OnceLock;

use diesel::QueryableByName;
use diesel::sql_types::{Jsonb, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{ExecutionId, StorageError};
use fluxolab_workflows::engine::{ANSWER_NODE_TYPE, StepRecord};
use fluxolab_workflows::execution::{Finished, StepsKept};
use fluxolab_workflows::lease::{Fenced, LeaseToken};
use serde_json::Value;
use uuid::Uuid;

use crate::DbPool;
use crate::error::storage;
use crate::executions::{insert_steps, steps_json};
use crate::group_commit::{BatchStatement, GroupCommit};
use crate::pool::pooled;

/// Finishes a batch: the rows of `$1` (`id, lease, status, output, error, steps,
/// answers_only`), each under its lease token, with their steps after the steps they
/// have. A parent waiting for one of the runs is made due at once
/// ([`crate::sub_workflows::WAKE_WAITING_PARENTS`]). Returns the ids written.
///
/// With `exceptions` (a row of the batch has `answers_only` or `notify_failure`), it
/// also takes, of a run with `answers_only`, the stored steps that are not a successful
/// answer (a node of type `$2` without an error) — its own steps arrive filtered by the
/// domain, and the delete sees only the rows stored before the statement, so it never
/// takes what the statement inserts — and a run whose failure is notified joins its
/// workflow's failure notice ([`crate::notifications::note_failures`]). Without, those
/// parts are left out (and `$2` is not bound): most batches have neither, and PostgreSQL
/// starts every part of a statement, needed or not.
fn finish_batch(exceptions: bool) -> String {
    let exceptional = if exceptions {
        format!(
            ", failed AS (SELECT id, workspace_id, workflow_id, error, now() AS failed_at \
               FROM fence WHERE notify_failure), {notices}, \
             dropped AS ( \
               DELETE FROM execution_steps s USING fence f \
               WHERE s.execution_id = f.id AND f.answers_only \
                 AND NOT (s.node_type = $2 AND s.error IS NULL) \
             )",
            notices = crate::notifications::note_failures(),
        )
    } else {
        String::new()
    };
    format!(
        "WITH input AS ( \
           SELECT * FROM jsonb_to_recordset($1) AS i( \
             id uuid, lease bigint, status text, output jsonb, error text, steps jsonb, \
             answers_only boolean, notify_failure boolean) \
         ), fence AS ( \
           UPDATE executions e SET status = i.status, output = i.output, error = i.error, \
             finished_at = now(), locked_by = NULL, locked_until = NULL \
           FROM input i \
           WHERE e.id = i.id AND e.status = 'running' AND e.lease_token = i.lease \
           RETURNING e.id, e.workspace_id, i.answers_only, e.parent_execution_id, \
             e.workflow_id, e.error, i.notify_failure \
         ), steps AS ({steps}), \
         ended AS (SELECT id, parent_execution_id FROM fence), {wake}{exceptional} \
         SELECT id FROM fence",
        steps = insert_steps("fence e JOIN input i ON i.id = e.id", "i.steps"),
        wake = crate::sub_workflows::WAKE_WAITING_PARENTS,
    )
}

/// One run to finish: its id and its row of the batch's input.
pub(crate) struct Finishing {
    id: Uuid,
    row: Value,
    /// Keeps only its answers, or has its failure notified: see [`finish_batch`].
    exception: bool,
}

/// Finishing runs, stored by [`finish_batch`]; each answers whether its lease still
/// held.
pub(crate) struct FinishBatch;

impl BatchStatement for FinishBatch {
    type Row = Finishing;
    type Answer = Fenced;

    async fn write(pool: &DbPool, rows: &[&Finishing]) -> Result<Vec<Fenced>, StorageError> {
        #[derive(QueryableByName)]
        struct Written {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
        }
        let mut sorted = rows.to_vec();
        // One lock order for every batch.
        sorted.sort_by_key(|finishing| finishing.id);
        let input = Value::Array(
            sorted
                .iter()
                .map(|finishing| finishing.row.clone())
                .collect(),
        );
        let mut connection = pooled(pool).await?;
        // Raw: a multi-row fenced UPDATE … FROM jsonb_to_recordset with the steps' insert.
        let exceptions = rows.iter().any(|finishing| finishing.exception);
        // Each variant is written once per process.
        static STATEMENTS: [OnceLock<String>; 2] = [const { OnceLock::new() }; 2];
        let text = STATEMENTS[usize::from(exceptions)].get_or_init(|| finish_batch(exceptions));
        let statement = crate::sql::Prepared::new(text.as_str()).bind::<Jsonb, _>(input);
        let statement = if exceptions {
            statement.bind::<Text, _>(ANSWER_NODE_TYPE)
        } else {
            statement
        };
        let written: Vec<Written> = statement.load(&mut connection).await.map_err(storage)?;
        let written: HashSet<Uuid> = written.into_iter().map(|row| row.id).collect();
        Ok(rows
            .iter()
            .map(|finishing| {
                if written.contains(&finishing.id) {
                    Fenced::Written
                } else {
                    Fenced::LeaseLost
                }
            })
            .collect())
    }
}

/// Finishes `execution` under `lease` with `outcome` and `steps`, together with whatever
/// else is finishing now; returns once it is durable.
pub(crate) async fn finish(
    completions: &GroupCommit<FinishBatch>,
    pool: &DbPool,
    (execution, lease): (ExecutionId, LeaseToken),
    outcome: Finished,
    steps: &[StepRecord],
) -> Result<Fenced, StorageError> {
    let answers_only = outcome.steps_kept == StepsKept::Answers;
    let exception = answers_only || outcome.notify_failure;
    let row = serde_json::json!({
        "id": execution.as_uuid(),
        "lease": lease.value(),
        "status": outcome.status.code(),
        "output": outcome.output,
        "error": outcome.error,
        "steps": steps_json(steps)?,
        "answers_only": answers_only,
        "notify_failure": outcome.notify_failure,
    });
    completions
        .store(
            pool,
            Finishing {
                id: execution.as_uuid(),
                row,
                exception,
            },
        )
        .await
}
