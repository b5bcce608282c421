//! The workers: claim due executions from the queue, run them under a lease renewed while
//! they run and a timeout per attempt (the run's workspace's, capped by the instance's),
//! and on shutdown stop claiming while letting
//! running executions finish for the drain; what is still running then is stopped and
//! released (back to the queue at once, the attempt not counted).
//!
//! A run stops the moment its worker no longer holds its lease: a renewal or a write
//! refused (another claim took it), or the lease's end passing by this process's clock
//! without a renewal (a stall, a partition). Its task is dropped; nothing more is sent
//! or written for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxolab_kernel::ExecutionId;
use fluxolab_kernel::outbox::Dispatcher;
use fluxolab_telemetry::OutboundMetrics;
use fluxolab_workflows::execution::{
    Claim, ClaimedExecution, ExecutionRepository, ExecutionStatus, Lease,
};
use fluxolab_workflows::execution_service::ExecutionService;
use fluxolab_workflows::lease::{Fenced, LeaseClock, LeaseToken};
use fluxolab_workflows::scheduler::Scheduler;
use fluxolab_workspace::BillingService;
use fluxolab_workspace::alerts::AlertService;
use fluxolab_workspace::ldap::LdapService;
use fluxolab_workspace::notifications::WeeklyReports;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// How long an idle worker waits for a `NOTIFY` before looking anyway (retries and
/// expired leases come due without one).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a busy worker waits for more slots to free before claiming for a few.
const GATHER_FREE_SLOTS: Duration = Duration::from_millis(5);
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
    /// The longest one attempt of an execution may run before it ends `failed`
    /// (`EXECUTION_TIMEOUT_SECONDS`); a workspace's `execution_defaults.timeout_seconds`
    /// may shorten it for its runs, never lengthen it.
    pub timeout: Duration,
    /// How long shutdown lets running executions finish before releasing them.
    pub drain: Duration,
}

/// How often the usage snapshot job runs (it upserts today's rows and fills missed days).
const SNAPSHOT_EVERY: Duration = Duration::from_secs(3600);

/// How often usage alerts are evaluated.
const ALERTS_EVERY: Duration = Duration::from_secs(2);

/// How often the outbox is looked at when the last round had nothing to deliver.
const OUTBOX_EVERY: Duration = Duration::from_secs(1);
/// How often messages past the retention are dropped and the backlog gauges sampled.
const OUTBOX_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often weekly usage reports that are due are looked for.
const WEEKLY_REPORTS_EVERY: Duration = Duration::from_secs(60);

/// How often due schedules are looked for (a slot fires within this of its time).
const SCHEDULES_EVERY: Duration = Duration::from_secs(1);
/// The most schedules one look fires before the next (the rest wait a moment).
const SCHEDULES_PER_TICK: u32 = 500;

/// How often workspaces whose periodic LDAP sync is due are looked for.
const LDAP_SYNC_EVERY: Duration = Duration::from_secs(5);
/// The most workspaces one look syncs (the rest wait for the next).
const LDAP_SYNCS_PER_TICK: u32 = 20;

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
    /// is idempotent; of worker processes running it at once, one writes and the others
    /// skip it).
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

    /// Also evaluates usage alerts every [`ALERTS_EVERY`] (several processes may:
    /// firings are unique per period and threshold).
    pub fn with_usage_alerts(mut self, alerts: Arc<AlertService>) -> Self {
        let mut stopped = self.stop.subscribe();
        self.jobs.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                if let Err(error) = alerts.evaluate().await {
                    tracing::warn!(error = %error, "could not evaluate usage alerts");
                }
                tokio::select! {
                    _ = tokio::time::sleep(ALERTS_EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
        }));
        self
    }

    /// Also delivers the outbox's due messages — at once again after a round that
    /// delivered something, else every [`OUTBOX_EVERY`] — and every
    /// [`OUTBOX_SWEEP_EVERY`] drops those older than `retention` and samples the
    /// backlog, counting it all in `metrics`. Several processes may: destinations are
    /// leased with `SKIP LOCKED`.
    pub fn with_outbox(
        mut self,
        outbox: Arc<Dispatcher>,
        metrics: OutboundMetrics,
        retention: Duration,
    ) -> Self {
        let mut stopped = self.stop.subscribe();
        self.jobs.push(tokio::spawn(async move {
            let mut swept_at: Option<tokio::time::Instant> = None;
            while !*stopped.borrow() {
                if swept_at.is_none_or(|at| at.elapsed() >= OUTBOX_SWEEP_EVERY) {
                    swept_at = Some(tokio::time::Instant::now());
                    match outbox.expire(retention).await {
                        Ok(expired) => metrics.record_expired(&expired),
                        Err(error) => tracing::warn!(error = %error, "could not drop expired outbound messages"),
                    }
                    match outbox.backlog().await {
                        Ok(backlog) => metrics.set_backlog(&backlog),
                        Err(error) => tracing::warn!(error = %error, "could not sample the outbox's backlog"),
                    }
                }
                let delivered = match outbox.run_due().await {
                    Ok(round) => {
                        metrics.record_round(&round);
                        round.outcomes.iter().any(|(_, outcome, _)| *outcome == "delivered")
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "could not deliver the outbox");
                        false
                    }
                };
                if delivered {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(OUTBOX_EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
        }));
        self
    }

    /// Also records the weekly usage reports that are due every
    /// [`WEEKLY_REPORTS_EVERY`] (several processes may: a report is unique per workspace
    /// and slot); the outbox delivers them.
    pub fn with_weekly_reports(mut self, reports: Arc<WeeklyReports>) -> Self {
        let mut stopped = self.stop.subscribe();
        self.jobs.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                if let Err(error) = reports.run().await {
                    tracing::warn!(error = %error, "could not record weekly usage reports");
                }
                tokio::select! {
                    _ = tokio::time::sleep(WEEKLY_REPORTS_EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
        }));
        self
    }

    /// Also fires due schedules every [`SCHEDULES_EVERY`] (several processes may: each
    /// schedule is claimed with `SKIP LOCKED` and each slot is unique, so a slot starts
    /// one run whichever process fires it).
    pub fn with_schedules(mut self, scheduler: Arc<Scheduler>) -> Self {
        let mut stopped = self.stop.subscribe();
        self.jobs.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                match scheduler.tick(SCHEDULES_PER_TICK).await {
                    Ok(report) if report.total() > 0 => {
                        tracing::debug!(?report, "schedules fired");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(error = %error, "could not fire schedules"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(SCHEDULES_EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
        }));
        self
    }

    /// Also runs the periodic LDAP syncs that are due every [`LDAP_SYNC_EVERY`] (several
    /// processes may: each workspace is claimed with `SKIP LOCKED` and held while it syncs).
    pub fn with_ldap_sync(mut self, ldap: Arc<LdapService>) -> Self {
        let mut stopped = self.stop.subscribe();
        self.jobs.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                match ldap.sync_due(LDAP_SYNCS_PER_TICK).await {
                    Ok(0) => {}
                    Ok(synced) => tracing::debug!(synced, "LDAP directories synced"),
                    Err(error) => tracing::warn!(error = %error, "could not sync LDAP directories"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(LDAP_SYNC_EVERY) => {}
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
            if slots.available_permits() < self.settings.concurrency / 4 && !running.is_empty() {
                // A few slots free while runs go on: let more finish (they finish in
                // batches) so one claim fills several, instead of one claim per slot.
                tokio::time::sleep(GATHER_FREE_SLOTS).await;
            }
            let free = slots.available_permits();
            let sent_at = Instant::now();
            let claimed = self
                .queue
                .claim(&self.id, i64::try_from(free).unwrap_or(1), self.lease())
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(error = %error, "could not claim executions");
                    Claim::default()
                });
            if !claimed.abandoned.is_empty() {
                let service = self.service.clone();
                tokio::spawn(async move { service.abandoned(&claimed.abandoned).await });
            }
            let claimed = claimed.runs;
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
                let clock = Arc::new(LeaseClock::new(
                    sent_at,
                    Duration::from_secs(self.lease().unsigned_abs()),
                ));
                running.spawn(self.clone().process(execution, clock, permit));
            }
        }
        tracing::info!(
            running = running.len(),
            drain_seconds = self.settings.drain.as_secs(),
            "workers stopping; letting running executions finish"
        );
        let deadline = tokio::time::Instant::now() + self.settings.drain;
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, running.join_next()).await {}
        // Stop what is left first (no effect or write after this), then give back every
        // run still held: those just stopped, and any whose task stopped earlier because
        // its lease ran out by this process's clock while the database still gave it here.
        running.abort_all();
        while running.join_next().await.is_some() {}
        match self.queue.release_held(&self.id).await {
            Ok(0) => {}
            Ok(released) => tracing::warn!(
                released,
                "runs still held at the end of the drain were released"
            ),
            Err(error) => tracing::warn!(
                error = %error,
                "could not release the runs still held at shutdown; other workers take them when their leases end"
            ),
        }
        let _ = pruning.await;
    }

    async fn process(
        self,
        execution: ClaimedExecution,
        clock: Arc<LeaseClock>,
        permit: OwnedSemaphorePermit,
    ) {
        let id = execution.execution.id;
        let token = execution.lease;
        let span = tracing::info_span!(
            "execution",
            execution_id = %id,
            workflow_id = %execution.execution.workflow_id,
            workspace_id = %execution.execution.workspace_id,
        );
        let timeout = execution.defaults.attempt_timeout(self.settings.timeout);
        let lease = self.lease();
        let renew_every = Duration::from_secs(u64::try_from(lease / 3).unwrap_or(1).max(1));
        // Renews the lease; ends only when the run must stop.
        let renewing = async {
            loop {
                tokio::time::sleep(renew_every).await;
                let sent_at = Instant::now();
                match self.queue.renew(id, token, lease).await {
                    Ok(Lease::Held) => {
                        clock.extended(sent_at, Duration::from_secs(lease.unsigned_abs()));
                    }
                    Ok(Lease::CancelRequested) => return Stop::CancelRequested,
                    Ok(Lease::Lost) => {
                        clock.lose();
                        return Stop::LeaseLost;
                    }
                    Err(error) => {
                        tracing::warn!(execution_id = %id, error = %error, "could not renew the lease")
                    }
                }
            }
        };
        // Ends when the lease's end passes without a renewal (by this process's clock).
        let watchdog = async {
            loop {
                tokio::time::sleep_until(clock.ends_at().into()).await;
                if clock.is_over(Instant::now()) {
                    return Stop::LeaseLost;
                }
            }
        };
        let processing = tokio::time::timeout(
            timeout,
            tracing::Instrument::instrument(self.service.process(execution, clock.clone()), span),
        );
        // Whichever ends first drops the others: the run stops between (or inside) steps.
        let stop = tokio::select! {
            outcome = processing => match outcome {
                Ok(Ok(Some(status))) => {
                    tracing::debug!(execution_id = %id, %status, "execution processed");
                    None
                }
                Ok(Ok(None)) => Some(Stop::LeaseLost),
                Ok(Err(error)) => {
                    tracing::error!(execution_id = %id, error = %error, "execution could not be recorded");
                    None
                }
                Err(_) => Some(Stop::TimedOut),
            },
            stop = renewing => Some(stop),
            stop = watchdog => Some(stop),
        };
        match stop {
            None => {}
            Some(Stop::LeaseLost) => {
                tracing::warn!(execution_id = %id, "lost the lease; the run stopped here and another worker carries it on");
            }
            Some(Stop::TimedOut) => {
                let reason = format!("timed out after {} seconds", timeout.as_secs());
                tracing::warn!(execution_id = %id, %reason, "execution timed out");
                self.abandon((id, token), ExecutionStatus::Failed, &reason)
                    .await;
            }
            Some(Stop::CancelRequested) => {
                tracing::info!(execution_id = %id, "execution cancelled while running");
                self.abandon(
                    (id, token),
                    ExecutionStatus::Cancelled,
                    "cancelled while running",
                )
                .await;
            }
        }
        drop(permit);
    }

    /// Ends a run this worker stopped, if it still holds the lease.
    async fn abandon(
        &self,
        claim: (ExecutionId, LeaseToken),
        status: ExecutionStatus,
        reason: &str,
    ) {
        match self.service.abandon(claim, status, reason).await {
            Ok(Fenced::Written) => {}
            Ok(Fenced::LeaseLost) => {
                tracing::warn!(execution_id = %claim.0, "lost the lease before recording how the run ended");
            }
            Err(error) => {
                tracing::error!(execution_id = %claim.0, error = %error, "could not record how the run ended");
            }
        }
    }
}

/// Why a running execution stopped before it settled.
enum Stop {
    /// The lease is gone: nothing more may be written.
    LeaseLost,
    /// It ran past the execution timeout.
    TimedOut,
    /// A cancel was asked for.
    CancelRequested,
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
