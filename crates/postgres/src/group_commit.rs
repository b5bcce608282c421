//! Group commit: rows that many callers store at the same moment go to the database in
//! one statement — one transaction, one WAL flush — while each caller waits for its own
//! answer, so nothing is reported stored before it is durable. With one caller at a time
//! a batch is that one row and costs what a statement of its own did.
//!
//! A batch the database refuses for another reason than being unreachable (a row that
//! breaks a constraint, say a run whose workflow was deleted meanwhile) is written again
//! row by row, so one bad row fails only its own caller. Writing a batch again is safe:
//! a refused statement stored nothing.
//!
//! The writers run on the runtime the group commit was made on (the process's main
//! one), not on whichever runtime its first caller happens to be on: an HTTP worker's
//! runtime ends when the server stops, before the workers' drain, which still queues and
//! finishes runs.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use fluxolab_kernel::{StorageError, StorageErrorKind};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::DbPool;
use crate::error::StoreError;

/// Most rows stored by one statement.
const MAX_BATCH: usize = 256;
/// Writer tasks: while one batch is being flushed, the next gathers and another writer
/// can take it.
const WRITERS: usize = 2;

/// How one kind of row is stored in batches.
pub(crate) trait BatchStatement: Send + Sync + 'static {
    type Row: Send + Sync + 'static;
    type Answer: Send + 'static;

    /// Stores `rows` in one statement and answers for each, in their order.
    fn write(
        pool: &DbPool,
        rows: &[&Self::Row],
    ) -> impl Future<Output = Result<Vec<Self::Answer>, StorageError>> + Send;
}

/// One row waiting to be stored, and where its answer goes.
struct Pending<S: BatchStatement> {
    row: S::Row,
    reply: oneshot::Sender<Result<S::Answer, StorageError>>,
}

/// The queue of rows of kind `S` and its writers (started on first use, on the runtime
/// this was made on when there is one).
pub(crate) struct GroupCommit<S: BatchStatement> {
    queue: Arc<OnceLock<mpsc::UnboundedSender<Pending<S>>>>,
    runtime: Option<tokio::runtime::Handle>,
}

impl<S: BatchStatement> Default for GroupCommit<S> {
    fn default() -> Self {
        Self {
            queue: Arc::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }
}

impl<S: BatchStatement> Clone for GroupCommit<S> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<S: BatchStatement> std::fmt::Debug for GroupCommit<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl<S: BatchStatement> GroupCommit<S> {
    /// Stores `row` together with whatever else is being stored now; returns its answer
    /// once it is durable.
    pub(crate) async fn store(
        &self,
        pool: &DbPool,
        row: S::Row,
    ) -> Result<S::Answer, StorageError> {
        let (reply, answer) = oneshot::channel();
        let queue = self
            .queue
            .get_or_init(|| start_writers::<S>(pool, self.runtime.as_ref()));
        queue.send(Pending { row, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StorageError {
    StorageError::unavailable(StoreError::GroupCommitStopped)
}

fn start_writers<S: BatchStatement>(
    pool: &DbPool,
    runtime: Option<&tokio::runtime::Handle>,
) -> mpsc::UnboundedSender<Pending<S>> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let receiver = Arc::new(Mutex::new(receiver));
    for _ in 0..WRITERS {
        let writer = write_batches::<S>(pool.clone(), receiver.clone());
        match runtime {
            Some(runtime) => drop(runtime.spawn(writer)),
            None => drop(tokio::spawn(writer)),
        }
    }
    sender
}

/// Takes what has gathered and writes it, until every sender is gone.
async fn write_batches<S: BatchStatement>(
    pool: DbPool,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Pending<S>>>>,
) {
    loop {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        {
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        let rows: Vec<&S::Row> = batch.iter().map(|pending| &pending.row).collect();
        match S::write(&pool, &rows).await {
            Ok(answers) => {
                // A caller left without an answer hears that the writer stopped.
                for (pending, answer) in batch.into_iter().zip(answers) {
                    // A caller that stopped waiting (its task was dropped) needs none.
                    let _ = pending.reply.send(Ok(answer));
                }
            }
            Err(error) if batch.len() > 1 && error.kind() != StorageErrorKind::Unavailable => {
                tracing::debug!(%error, rows = batch.len(), "a batch was refused; writing its rows one by one");
                for pending in batch {
                    let answer = S::write(&pool, &[&pending.row])
                        .await
                        .and_then(|answers| answers.into_iter().next().ok_or_else(stopped));
                    let _ = pending.reply.send(answer);
                }
            }
            Err(error) => {
                for pending in batch {
                    let _ = pending.reply.send(Err(StorageError::of_kind(
                        error.kind(),
                        Box::new(std::io::Error::other(error.to_string())),
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows are numbers; a batch holding a negative one is refused as a whole.
    struct Numbers;

    impl BatchStatement for Numbers {
        type Row = i64;
        type Answer = i64;

        async fn write(_: &DbPool, rows: &[&i64]) -> Result<Vec<i64>, StorageError> {
            if rows.iter().any(|row| **row < 0) {
                return Err(StorageError::new(std::io::Error::other("negative")));
            }
            Ok(rows.iter().map(|row| **row * 2).collect())
        }
    }

    fn pool() -> DbPool {
        // Never connects: the statement above does not use it.
        let settings = crate::pool::PoolSettings {
            max_size: 1,
            acquire_timeout: std::time::Duration::from_secs(1),
        };
        crate::pool::connect_pool("postgres://nobody@127.0.0.1:1/none", &settings)
            .unwrap_or_else(|error| panic!("pool: {error}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writers_outlive_the_runtime_of_the_first_caller() {
        let commits = GroupCommit::<Numbers>::default();
        let pool = pool();
        let (first, first_pool) = (commits.clone(), pool.clone());
        // The first caller is on a runtime of its own, gone once it has its answer.
        let answered = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|error| panic!("runtime: {error}"));
            runtime.block_on(first.store(&first_pool, 1)).ok()
        })
        .await
        .ok()
        .flatten();
        assert_eq!(answered, Some(2));
        assert_eq!(commits.store(&pool, 3).await.ok(), Some(6));
    }

    #[tokio::test]
    async fn a_refused_batch_fails_only_the_row_that_breaks_it() {
        let commits = GroupCommit::<Numbers>::default();
        let pool = pool();
        let answers = futures_util::future::join_all(
            [1_i64, -1, 2, 3]
                .into_iter()
                .map(|row| commits.store(&pool, row)),
        )
        .await;
        let answers: Vec<Option<i64>> = answers.into_iter().map(Result::ok).collect();
        assert_eq!(answers, vec![Some(2), None, Some(4), Some(6)]);
    }
}
