//! Waiting for a run's answer to its sender: a `respond_node` webhook holds its HTTP
//! request open until the run records the step that answers it, or ends without one.
//!
//! Nothing polls. Whoever runs the execution announces news of it through the
//! [`RunSignals`] port — when a checkpoint holds the answer, and when a run whose
//! definition can answer settles — and a waiter subscribes *before* it reads the
//! execution, so no announcement made after its read can be missed. The Postgres
//! adapter announces with `NOTIFY` (so the run may execute in another process) and
//! short-cuts waiters of its own process.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use fluxolab_kernel::{ExecutionId, StorageError};
use serde_json::Value;

use crate::execution::{Execution, ExecutionStatus};

/// What a waiting sender gets.
#[derive(Clone, Debug, PartialEq)]
pub enum RunResponse {
    /// The output of the step that answers (its `status`, `headers`, `body`).
    Answered(Value),
    /// The run ended (`status`) without answering.
    EndedWithout(ExecutionStatus),
    /// Neither happened in time; the run goes on.
    TimedOut,
}

impl RunResponse {
    /// What `execution`, as read now, has for its sender; `None`: nothing yet.
    pub fn of(execution: &Execution) -> Option<Self> {
        if let Some(step) = execution.steps.iter().find(|step| step.is_answer()) {
            return Some(RunResponse::Answered(
                step.output.clone().unwrap_or(Value::Null),
            ));
        }
        matches!(
            execution.status,
            ExecutionStatus::Succeeded | ExecutionStatus::Failed | ExecutionStatus::Cancelled
        )
        .then_some(RunResponse::EndedWithout(execution.status))
    }
}

/// Announcements of news about executions, across processes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RunSignals: Send + Sync {
    /// Tells every waiter of `execution`, in any process, that it has news.
    async fn announce(&self, execution: ExecutionId) -> Result<(), StorageError>;
    /// Starts listening for news of `execution`: every announcement made after this
    /// returns reaches the subscription.
    async fn subscribe(
        &self,
        execution: ExecutionId,
    ) -> Result<Box<dyn Subscription>, StorageError>;
}

/// Announcements of one execution, from a [`RunSignals::subscribe`].
#[async_trait]
pub trait Subscription: Send {
    /// Waits for the next announcement, at most `timeout`; `false` when it passed.
    async fn next(&mut self, timeout: Duration) -> bool;
}

/// Waits until `read` finds a response, re-reading after each announcement; at most
/// `timeout`. `read` is called once more when the time is up, so an answer that came
/// with the last announcement is not lost.
pub(crate) async fn wait_for_response<F, Fut>(
    subscription: &mut dyn Subscription,
    timeout: Duration,
    mut read: F,
) -> Result<RunResponse, StorageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<RunResponse>, StorageError>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(response) = read().await? {
            return Ok(response);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !subscription.next(left).await {
            return Ok(read().await?.unwrap_or(RunResponse::TimedOut));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A subscription that is announced `announcements` times, then times out.
    struct Scripted(usize);

    #[async_trait]
    impl Subscription for Scripted {
        async fn next(&mut self, _timeout: Duration) -> bool {
            if self.0 == 0 {
                return false;
            }
            self.0 -= 1;
            true
        }
    }

    #[tokio::test]
    async fn a_waiter_reads_again_after_each_announcement_until_answered() {
        let reads = AtomicUsize::new(0);
        let answers = Mutex::new(vec![
            Some(RunResponse::Answered(Value::from("hi"))),
            None,
            None,
        ]);
        let response = wait_for_response(&mut Scripted(5), Duration::from_secs(5), || {
            reads.fetch_add(1, Ordering::SeqCst);
            let next = answers.lock().map(|mut left| left.pop().flatten());
            async move { Ok(next.unwrap_or(None)) }
        })
        .await;
        assert_eq!(
            response.ok(),
            Some(RunResponse::Answered(Value::from("hi")))
        );
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_waiter_without_news_times_out_after_one_last_read() {
        let reads = AtomicUsize::new(0);
        let response = wait_for_response(&mut Scripted(0), Duration::from_secs(5), || {
            reads.fetch_add(1, Ordering::SeqCst);
            async { Ok(None) }
        })
        .await;
        assert_eq!(response.ok(), Some(RunResponse::TimedOut));
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
