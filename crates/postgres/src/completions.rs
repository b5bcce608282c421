//! Group commit for finishing runs: every `finish` of the process goes to a queue, and a
//! few writer tasks each take what has gathered (up to [`MAX_BATCH`]) and store it in one
//! statement — one transaction, one WAL flush — for all of them. A run waits for its own
//! answer, so nothing is reported finished before it is durable. With one run finishing
//! at a time, a batch is that one run and costs what a single statement did.
//!
//! Every row is fenced like a single finish: written only while `status = 'running'` and
//! its lease token holds, and its steps only for rows the update took — the steps it
//! brings inserted, and for a run that keeps only its answers
//! ([`StepsKept::Answers`]), the other steps already stored deleted.

use std::sync::{Arc, OnceLock};

use diesel::QueryableByName;
use diesel::sql_types::{Jsonb, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{ExecutionId, StorageError};
use fluxolab_workflows::engine::{ANSWER_NODE_TYPE, StepRecord};
use fluxolab_workflows::execution::{Finished, StepsKept};
use fluxolab_workflows::lease::{Fenced, LeaseToken};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::DbPool;
use crate::error::storage;
use crate::executions::{insert_steps, steps_json};
use crate::pool::pooled;

/// Most runs finished by one statement.
const MAX_BATCH: usize = 256;
/// Writer tasks: while one batch is being flushed, the next gathers and another writer
/// can take it.
const WRITERS: usize = 2;

/// Finishes a batch: the rows of `$1` (`id, lease, status, output, error, steps,
/// answers_only`), each under its lease token, with their steps after the steps they
/// have; of a run with `answers_only`, the stored steps that are not a successful
/// answer (a node of type `$2` without an error) go. Its own steps arrive filtered by
/// the domain, and the delete sees only the rows stored before the statement, so it
/// never takes what the statement inserts. A parent waiting for one of the runs is made
/// due at once ([`crate::sub_workflows::WAKE_WAITING_PARENTS`]); a run whose failure is
/// notified (`notify_failure`) joins its workflow's failure notice
/// ([`crate::notifications::note_failures`]). Returns the ids written.
fn finish_batch() -> String {
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
         ), steps AS ({}), \
         ended AS (SELECT id, parent_execution_id FROM fence), {wake}, \
         failed AS (SELECT id, workspace_id, workflow_id, error, now() AS failed_at \
           FROM fence WHERE notify_failure), {notices}, \
         dropped AS ( \
           DELETE FROM execution_steps s USING fence f \
           WHERE s.execution_id = f.id AND f.answers_only \
             AND NOT (s.node_type = $2 AND s.error IS NULL) \
         ) \
         SELECT id FROM fence",
        insert_steps("fence e JOIN input i ON i.id = e.id", "i.steps"),
        wake = crate::sub_workflows::WAKE_WAITING_PARENTS,
        notices = crate::notifications::note_failures(),
    )
}

/// One run to finish, and where its answer goes.
struct Completion {
    row: Value,
    id: Uuid,
    reply: oneshot::Sender<Result<Fenced, StorageError>>,
}

/// The queue of finishing runs and its writers (started on first use).
#[derive(Clone, Default)]
pub(crate) struct Completions {
    queue: Arc<OnceLock<mpsc::UnboundedSender<Completion>>>,
}

impl std::fmt::Debug for Completions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completions").finish_non_exhaustive()
    }
}

impl Completions {
    /// Finishes `execution` under `lease` with `outcome` and `steps`, together with
    /// whatever else is finishing now; returns once it is durable.
    pub(crate) async fn finish(
        &self,
        pool: &DbPool,
        (execution, lease): (ExecutionId, LeaseToken),
        outcome: Finished,
        steps: &[StepRecord],
    ) -> Result<Fenced, StorageError> {
        let row = serde_json::json!({
            "id": execution.as_uuid(),
            "lease": lease.value(),
            "status": outcome.status.code(),
            "output": outcome.output,
            "error": outcome.error,
            "steps": steps_json(steps)?,
            "answers_only": outcome.steps_kept == StepsKept::Answers,
            "notify_failure": outcome.notify_failure,
        });
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.get_or_init(|| start_writers(pool));
        queue
            .send(Completion {
                row,
                id: execution.as_uuid(),
                reply,
            })
            .map_err(|_| StorageError::unavailable(crate::error::StoreError::CompletionsStopped))?;
        answer
            .await
            .map_err(|_| StorageError::unavailable(crate::error::StoreError::CompletionsStopped))?
    }
}

fn start_writers(pool: &DbPool) -> mpsc::UnboundedSender<Completion> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let receiver = Arc::new(Mutex::new(receiver));
    for _ in 0..WRITERS {
        tokio::spawn(write_batches(pool.clone(), receiver.clone()));
    }
    sender
}

/// Takes what has gathered and writes it, until every sender is gone.
async fn write_batches(pool: DbPool, receiver: Arc<Mutex<mpsc::UnboundedReceiver<Completion>>>) {
    loop {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        {
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        let outcome = write(&pool, &batch).await;
        for completion in batch {
            let answer = match &outcome {
                Ok(written) => Ok(if written.contains(&completion.id) {
                    Fenced::Written
                } else {
                    Fenced::LeaseLost
                }),
                Err(error) => Err(StorageError::of_kind(
                    error.kind(),
                    Box::new(std::io::Error::other(error.to_string())),
                )),
            };
            // A run that stopped waiting (its task was dropped) needs no answer.
            let _ = completion.reply.send(answer);
        }
    }
}

async fn write(pool: &DbPool, batch: &[Completion]) -> Result<Vec<Uuid>, StorageError> {
    #[derive(QueryableByName)]
    struct Written {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let mut rows: Vec<&Completion> = batch.iter().collect();
    // One lock order for every batch.
    rows.sort_by_key(|completion| completion.id);
    let input = Value::Array(
        rows.iter()
            .map(|completion| completion.row.clone())
            .collect(),
    );
    let mut connection = pooled(pool).await?;
    // Raw: a multi-row fenced UPDATE … FROM jsonb_to_recordset with the steps' insert.
    let written: Vec<Written> = crate::sql::Prepared::new(finish_batch())
        .bind::<Jsonb, _>(input)
        .bind::<Text, _>(ANSWER_NODE_TYPE)
        .load(&mut connection)
        .await
        .map_err(storage)?;
    Ok(written.into_iter().map(|row| row.id).collect())
}
