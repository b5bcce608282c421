//! The workers: claim due executions from the queue, run them with a lease that is
//! renewed while they run, and stop claiming on shutdown while letting running ones
//! finish (bounded); what is left is re-claimed when its lease runs out.

use std::sync::Arc;
use std::time::Duration;

use fluxolab_workflows::execution::ExecutionRepository;
use fluxolab_workflows::execution_service::ExecutionService;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How long a claim holds an execution before another worker may take it over.
pub const LEASE_SECONDS: i64 = 30;
/// How often a running execution's lease is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often an idle worker looks for due executions.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long shutdown waits for running executions.
const DRAIN_FOR: Duration = Duration::from_secs(30);

/// Running workers; [`WorkerPool::shutdown`] stops them.
#[derive(Debug)]
pub struct WorkerPool {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerPool {
    /// Starts `concurrency` execution slots claiming from `queue`.
    pub fn start(
        service: Arc<ExecutionService>,
        queue: Arc<dyn ExecutionRepository>,
        concurrency: usize,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let worker = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let task = tokio::spawn(run(service, queue, concurrency.max(1), worker, stopped));
        Self { stop, task }
    }

    /// Stops claiming and waits for running executions (bounded).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(
    service: Arc<ExecutionService>,
    queue: Arc<dyn ExecutionRepository>,
    concurrency: usize,
    worker: String,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut running = JoinSet::new();
    tracing::info!(%worker, concurrency, "workers started");
    while !*stopped.borrow() {
        while running.try_join_next().is_some() {}
        let free = slots.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            match queue
                .claim(&worker, i64::try_from(free).unwrap_or(1), LEASE_SECONDS)
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(error = %error, "could not claim executions");
                    Vec::new()
                }
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        for execution in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let service = service.clone();
            let queue = queue.clone();
            let worker = worker.clone();
            running.spawn(async move {
                let id = execution.execution.id;
                let span = tracing::info_span!("execution", execution_id = %id, workflow_id = %execution.execution.workflow_id);
                let renewing = async {
                    loop {
                        tokio::time::sleep(RENEW_EVERY).await;
                        if !matches!(queue.renew(id, &worker, LEASE_SECONDS).await, Ok(true)) {
                            tracing::warn!(execution_id = %id, "lost the lease");
                        }
                    }
                };
                let processing = tracing::Instrument::instrument(service.process(execution), span);
                tokio::select! {
                    outcome = processing => match outcome {
                        Ok(status) => tracing::info!(execution_id = %id, %status, "execution finished"),
                        Err(error) => tracing::error!(execution_id = %id, error = %error, "execution could not be recorded"),
                    },
                    () = renewing => {}
                }
                drop(permit);
            });
        }
    }
    tracing::info!(
        running = running.len(),
        "workers stopping; letting running executions finish"
    );
    let drained = tokio::time::timeout(DRAIN_FOR, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "executions still running at shutdown are released to other workers when their lease ends"
        );
        running.abort_all();
    }
}
