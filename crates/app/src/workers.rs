//! The workers: claim due executions from the queue, run them under a lease renewed while
//! they run and a timeout per attempt, and on shutdown stop claiming while letting
//! running executions finish (bounded); what is left is re-claimed when its lease ends.

use std::sync::Arc;
use std::time::Duration;

use fluxolab_workflows::execution::{
    ClaimedExecution, ExecutionRepository, ExecutionStatus, Lease,
};
use fluxolab_workflows::execution_service::ExecutionService;
use fluxolab_workspace::BillingService;
use fluxolab_workspace::alerts::AlertService;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// How long an idle worker waits for a `NOTIFY` before looking anyway (retries and
/// expired leases come due without one).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long shutdown waits for running executions.
const DRAIN_FOR: Duration = Duration::from_secs(30);
/// How often finished executions past their plan's retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Executions deleted per pruning statement.
const PRUNE_BATCH: i64 = 1000;

/// How the workers behave.
#[derive(Clone, Copy, Debug)]
pub struct WorkerSettings {
    /// Executions run at once.
    pub concurrency: usize,
    /// How long a claim holds an execution before another worker may take it over;
    /// renewed every third of it while the execution runs.
    pub lease_seconds: i64,
    /// How long one attempt of an execution may run before it ends `failed`.
    pub timeout: Duration,
}

/// How often the usage snapshot job runs (it upserts today's rows and fills missed days).
const SNAPSHOT_EVERY: Duration = Duration::from_secs(3600);

/// How often usage alerts are evaluated and due deliveries sent.
const ALERTS_EVERY: Duration = Duration::from_secs(2);

/// Running workers; [`WorkerPool::shutdown`] stops them.
#[derive(Debug)]
pub struct WorkerPool {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    jobs: Vec<tokio::task::JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts the execution slots claiming from `queue`.
    pub fn start(
        service: Arc<ExecutionService>,
        queue: Arc<dyn ExecutionRepository>,
        settings: WorkerSettings,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let worker = Worker {
            id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            service,
            queue,
            settings,
        };
        let task = tokio::spawn(worker.run(stopped));
        Self {
            stop,
            task,
            jobs: Vec::new(),
        }
    }

    /// Also runs the daily usage snapshot job now and every [`SNAPSHOT_EVERY`] (each run
    /// is idempotent, so several worker processes may run it).
    pub fn with_usage_snapshots(mut self, billing: Arc<BillingService>) -> Self {
        let mut stopped = self.stop.subscribe();
        self.jobs.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                match billing.snapshot_usage().await {
                    Ok(rows) => tracing::debug!(rows, "usage snapshots written"),
                    Err(error) => tracing::warn!(error = %error, "could not write usage snapshots"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(SNAPSHOT_EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
        }));
        self
    }

    /// Also evaluates usage alerts and delivers their firings every [`ALERTS_EVERY`]
    /// (several processes may: firings are unique per period and threshold, and
    /// deliveries are claimed with `SKIP LOCKED`).
    pub fn with_usage_alerts(mut self, alerts: Arc<AlertService>) -> Self {
        let mut stopped = self.stop.subscribe();
        self.jobs.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                if let Err(error) = alerts.run_due().await {
                    tracing::warn!(error = %error, "could not run usage alerts");
                }
                tokio::select! {
                    _ = tokio::time::sleep(ALERTS_EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
        }));
        self
    }

    /// Stops claiming and waits for running executions (bounded).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        for job in self.jobs {
            let _ = job.await;
        }
    }
}

#[derive(Clone)]
struct Worker {
    id: String,
    service: Arc<ExecutionService>,
    queue: Arc<dyn ExecutionRepository>,
    settings: WorkerSettings,
}

impl Worker {
    fn lease(&self) -> i64 {
        self.settings.lease_seconds.max(3)
    }

    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut running = JoinSet::new();
        let pruning = tokio::spawn(prune_periodically(self.queue.clone(), stopped.clone()));
        tracing::info!(worker = %self.id, concurrency = self.settings.concurrency, "workers started");
        while !*stopped.borrow() {
            while running.try_join_next().is_some() {}
            if slots.available_permits() == 0 {
                // Every slot is busy: wait for one to free up rather than polling.
                tokio::select! {
                    permit = slots.clone().acquire_owned() => drop(permit),
                    _ = stopped.changed() => {}
                }
                continue;
            }
            let free = slots.available_permits();
            let claimed = self
                .queue
                .claim(&self.id, i64::try_from(free).unwrap_or(1), self.lease())
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(error = %error, "could not claim executions");
                    Vec::new()
                });
            if claimed.is_empty() {
                tokio::select! {
                    woken = self.queue.wait_for_work(POLL_EVERY) => {
                        if let Err(error) = woken {
                            tracing::warn!(error = %error, "could not listen for queued executions");
                            tokio::time::sleep(POLL_EVERY).await;
                        }
                    }
                    _ = stopped.changed() => {}
                }
                continue;
            }
            for execution in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                running.spawn(self.clone().process(execution, permit));
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
                "executions still running at shutdown go to other workers when their lease ends"
            );
            running.abort_all();
        }
        let _ = pruning.await;
    }

    async fn process(self, execution: ClaimedExecution, permit: OwnedSemaphorePermit) {
        let id = execution.execution.id;
        let span = tracing::info_span!(
            "execution",
            execution_id = %id,
            workflow_id = %execution.execution.workflow_id,
            workspace_id = %execution.execution.workspace_id,
        );
        let lease = self.lease();
        let renew_every = Duration::from_secs(u64::try_from(lease / 3).unwrap_or(1).max(1));
        // Renews the lease; ends only when the execution is to be cancelled.
        let renewing = async {
            loop {
                tokio::time::sleep(renew_every).await;
                match self.queue.renew(id, &self.id, lease).await {
                    Ok(Lease::Held) => {}
                    Ok(Lease::CancelRequested) => return,
                    Ok(Lease::Lost) => tracing::warn!(execution_id = %id, "lost the lease"),
                    Err(error) => {
                        tracing::warn!(execution_id = %id, error = %error, "could not renew the lease")
                    }
                }
            }
        };
        let processing = tokio::time::timeout(
            self.settings.timeout,
            tracing::Instrument::instrument(self.service.process(execution), span),
        );
        tokio::select! {
            outcome = processing => match outcome {
                Ok(Ok(status)) => tracing::debug!(execution_id = %id, %status, "execution processed"),
                Ok(Err(error)) => tracing::error!(execution_id = %id, error = %error, "execution could not be recorded"),
                Err(_) => {
                    let reason = format!("timed out after {} seconds", self.settings.timeout.as_secs());
                    tracing::warn!(execution_id = %id, %reason, "execution timed out");
                    if let Err(error) = self.service.abandon(id, ExecutionStatus::Failed, &reason).await {
                        tracing::error!(execution_id = %id, error = %error, "could not record the timeout");
                    }
                }
            },
            () = renewing => {
                // Dropping the run stops it between (or inside) steps.
                tracing::info!(execution_id = %id, "execution cancelled while running");
                if let Err(error) = self
                    .service
                    .abandon(id, ExecutionStatus::Cancelled, "cancelled while running")
                    .await
                {
                    tracing::error!(execution_id = %id, error = %error, "could not record the cancellation");
                }
            }
        }
        drop(permit);
    }
}

/// Deletes expired executions now and every [`PRUNE_EVERY`], in batches, until stopped.
async fn prune_periodically(
    queue: Arc<dyn ExecutionRepository>,
    mut stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        let mut pruned = 0;
        loop {
            match queue.prune_expired(PRUNE_BATCH).await {
                Ok(deleted) => {
                    pruned += deleted;
                    if deleted < u64::try_from(PRUNE_BATCH).unwrap_or(u64::MAX) {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "could not prune expired executions");
                    break;
                }
            }
        }
        if pruned > 0 {
            tracing::info!(pruned, "pruned executions past their retention");
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stopped.changed() => {}
        }
    }
}
