//! The queue under stress: worker processes killed mid-run, and several workers racing
//! for the same executions. Every execution must end `succeeded` exactly once.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use diesel_async::RunQueryDsl;
use fluxolab_app::DatabaseSettings;
use fluxolab_app::workers::{WorkerPool, WorkerSettings};
use serde_json::json;

use crate::TestResult;
use crate::helpers::{Account, Error, TEST_SECRET, TestApp};

/// An active workflow: manual trigger → optional delay → data.set.
pub(crate) async fn active_workflow(
    app: &TestApp,
    owner: &Account,
    delay_ms: Option<u64>,
) -> Result<String, Error> {
    let mut nodes = vec![json!({"id": "start", "type": "trigger.manual", "name": "Start"})];
    let mut connections = Vec::new();
    let mut previous = "start";
    if let Some(ms) = delay_ms {
        nodes.push(json!({"id": "wait", "type": "flow.delay", "name": "Wait", "params": {"milliseconds": ms}}));
        connections.push(json!({"from": "start", "to": "wait"}));
        previous = "wait";
    }
    nodes.push(json!({"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"n": "{{ trigger.body.n }}"}}}));
    connections.push(json!({"from": previous, "to": "shape"}));
    let definition = json!({"nodes": nodes, "connections": connections});
    Ok(app.active_workflow(owner, "Load", &definition).await?.id)
}

fn worker_process(app: &TestApp) -> std::io::Result<Child> {
    worker_process_with(app, &[("WORKERS", "4")])
}

/// A `fluxolab worker` process on `app`'s database (8 connections, 3 s leases, quiet),
/// with `settings` on top.
pub(crate) fn worker_process_with(
    app: &TestApp,
    settings: &[(&str, &str)],
) -> std::io::Result<Child> {
    Command::new(env!("CARGO_BIN_EXE_fluxolab"))
        .arg("worker")
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", app.db.url())
        .env("APP_SECRET", TEST_SECRET)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("DATABASE_POOL_SIZE", "8")
        .env("EXECUTION_LEASE_SECONDS", "3")
        .env("LOG_LEVEL", "warn")
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

const SUCCEEDED: &str = "SELECT count(*) AS count FROM executions WHERE status = 'succeeded'";
const DUPLICATE_STEPS: &str = "SELECT count(*) AS count FROM \
    (SELECT execution_id, node_id FROM execution_steps GROUP BY 1, 2 HAVING count(*) > 1) AS twice";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_mid_run_loses_nothing_and_repeats_no_completed_step() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("crash@example.com").await?;
    let workflow = active_workflow(&app, &owner, Some(20)).await?;
    app.enqueue(&owner, &workflow, 500).await?;

    let mut doomed = worker_process(&app)?;
    let mut survivor = worker_process(&app)?;
    let started = app
        .wait_until(SUCCEEDED, 100, Duration::from_secs(60))
        .await?;
    assert!(
        started >= 100,
        "the workers did not get going ({started} done)"
    );
    Command::new("kill")
        .args(["-9", &doomed.id().to_string()])
        .status()?;
    let _ = doomed.wait();

    let done = app
        .wait_until(SUCCEEDED, 500, Duration::from_secs(120))
        .await?;
    let _ = Command::new("kill")
        .args(["-TERM", &survivor.id().to_string()])
        .status();
    let _ = survivor.wait();
    assert_eq!(done, 500, "every execution ends succeeded");
    assert_eq!(
        app.scalar("SELECT count(*) AS count FROM executions WHERE status <> 'succeeded'")
            .await?,
        0,
        "none stuck or failed"
    );
    assert_eq!(
        app.scalar(DUPLICATE_STEPS).await?,
        0,
        "no completed step ran twice"
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS count FROM execution_steps")
            .await?,
        1500,
        "three steps each"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_never_run_the_same_execution_twice() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("race@example.com").await?;
    let workflow = active_workflow(&app, &owner, None).await?;
    app.enqueue(&owner, &workflow, 2000).await?;

    let settings = fluxolab_app::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(app.db.url().to_owned()),
        "APP_SECRET" => Some(TEST_SECRET.to_owned()),
        _ => None,
    })?;
    let pool = fluxolab_app::startup::pool(&DatabaseSettings {
        pool_size: 24,
        ..settings.database.clone()
    })?;
    let services = fluxolab_app::startup::services(
        &pool,
        &settings,
        Arc::new(fluxolab_kernel::SystemClock),
        Arc::new(fluxolab_workflows::execution_service::Unobserved),
    )?;
    let workers: Vec<WorkerPool> = (0..4)
        .map(|_| {
            WorkerPool::start(
                services.executions.clone(),
                services.queue.clone(),
                WorkerSettings {
                    concurrency: 4,
                    lease_seconds: 30,
                    timeout: Duration::from_secs(60),
                    drain: Duration::from_secs(30),
                },
            )
        })
        .collect();
    let done = app
        .wait_until(SUCCEEDED, 2000, Duration::from_secs(180))
        .await?;
    for pool in workers {
        pool.shutdown().await;
    }
    assert_eq!(done, 2000);
    assert_eq!(
        app.scalar("SELECT count(*) AS count FROM executions WHERE attempt <> 1")
            .await?,
        0,
        "each claimed once"
    );
    assert_eq!(app.scalar(DUPLICATE_STEPS).await?, 0);
    assert_eq!(
        app.scalar("SELECT count(*) AS count FROM execution_steps")
            .await?,
        4000,
        "two steps each"
    );
    Ok(())
}

#[tokio::test]
async fn executions_past_the_plan_retention_are_pruned() -> TestResult {
    use fluxolab_workflows::execution::ExecutionRepository;

    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("retention@example.com").await?;
    let workflow = active_workflow(&app, &owner, None).await?;
    app.enqueue(&owner, &workflow, 5).await?;
    // Free keeps executions 7 days: age three finished ones past it, leave one queued.
    diesel::sql_query(
        "UPDATE executions SET status = 'succeeded', created_at = now() - interval '8 days' \
         WHERE id IN (SELECT id FROM executions ORDER BY id LIMIT 3)",
    )
    .execute(&mut app.db.pool().get().await?)
    .await?;
    diesel::sql_query(
        "UPDATE executions SET created_at = now() - interval '8 days' \
         WHERE status = 'queued' AND id = (SELECT id FROM executions WHERE status = 'queued' ORDER BY id LIMIT 1)",
    )
    .execute(&mut app.db.pool().get().await?)
    .await?;

    let queue = fluxolab_postgres::executions::PgExecutions::new(app.db.pool().clone());
    assert_eq!(queue.prune_expired(2).await?, 2, "in batches");
    assert_eq!(queue.prune_expired(2).await?, 1);
    assert_eq!(queue.prune_expired(2).await?, 0);
    assert_eq!(
        app.scalar("SELECT count(*) AS count FROM executions")
            .await?,
        2,
        "recent and unfinished ones stay"
    );
    Ok(())
}

/// Two workspaces and the queue: `busy_runs` queued by the busy one a minute ago,
/// `quiet_runs` by the quiet one now.
struct BusyAndQuiet {
    app: TestApp,
    queue: fluxolab_postgres::executions::PgExecutions,
    quiet: Account,
    quiet_workflow: String,
}

impl BusyAndQuiet {
    async fn queued(busy_runs: i64, quiet_runs: i64) -> Result<Self, Error> {
        let app = TestApp::spawn_api_only().await?;
        let busy = app.signed_up("busy@example.com").await?;
        let quiet = app.signed_up("quiet@example.com").await?;
        let busy_workflow = active_workflow(&app, &busy, None).await?;
        let quiet_workflow = active_workflow(&app, &quiet, None).await?;
        app.enqueue(&busy, &busy_workflow, busy_runs).await?;
        diesel::sql_query("UPDATE executions SET due_at = now() - interval '1 minute'")
            .execute(&mut app.db.pool().get().await?)
            .await?;
        app.enqueue(&quiet, &quiet_workflow, quiet_runs).await?;
        let queue = fluxolab_postgres::executions::PgExecutions::new(app.db.pool().clone());
        Ok(Self {
            app,
            queue,
            quiet,
            quiet_workflow,
        })
    }

    /// Claims up to `limit` runs; returns how many it took and how many of them were the
    /// quiet workspace's.
    async fn claim(&self, limit: i64) -> Result<(usize, usize), Error> {
        use fluxolab_workflows::execution::ExecutionRepository;

        let quiet_id = self.quiet.workspace_id.parse::<uuid::Uuid>()?;
        let claimed = self.queue.claim("fairness-test", limit, 30).await?.runs;
        let quiet = claimed
            .iter()
            .filter(|run| run.execution.workspace_id.as_uuid() == quiet_id)
            .count();
        Ok((claimed.len(), quiet))
    }
}

#[tokio::test]
async fn a_quiet_workspaces_run_is_claimed_before_a_busy_ones_backlog_drains() -> TestResult {
    // The busy workspace queued far more than a claim takes, and all of it earlier.
    let queues = BusyAndQuiet::queued(500, 1).await?;
    let (claimed, quiet) = queues.claim(8).await?;
    assert_eq!(claimed, 8, "a claim still fills every free slot");
    assert_eq!(quiet, 1, "the quiet workspace's run is in the first claim");
    let app = &queues.app;
    assert_eq!(
        app.scalar("SELECT count(*) AS count FROM executions WHERE status = 'queued'")
            .await?,
        493,
        "the busy workspace's backlog is still there"
    );

    // With only the busy workspace waiting, it gets every slot.
    assert_eq!(queues.claim(8).await?, (8, 0));
    Ok(())
}

#[tokio::test]
async fn each_workspace_with_due_runs_gets_an_equal_share_of_a_claim() -> TestResult {
    // The busy workspace queued far more, and earlier; the quiet one six at once.
    let queues = BusyAndQuiet::queued(100, 6).await?;
    assert_eq!(
        queues.claim(8).await?,
        (8, 4),
        "half of a claim of 8 for each of two"
    );
    assert_eq!(
        queues.claim(8).await?,
        (8, 2),
        "the rest of the quiet workspace's runs; the busy one fills what they leave"
    );
    // A claim smaller than the workspaces' shares takes every workspace's first run
    // before anyone's second, however much older the busy one's second is.
    queues
        .app
        .enqueue(&queues.quiet, &queues.quiet_workflow, 1)
        .await?;
    assert_eq!(queues.claim(2).await?, (2, 1), "one run each");
    Ok(())
}

#[tokio::test]
async fn a_claim_fails_runs_out_of_attempts_and_resumes_the_others() -> TestResult {
    use fluxolab_workflows::execution::ExecutionRepository;

    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("leases@example.com").await?;
    let workflow = active_workflow(&app, &owner, None).await?;
    app.enqueue(&owner, &workflow, 2).await?;
    // Both were running under a worker whose lease ended: one on its last attempt.
    diesel::sql_query(
        "UPDATE executions SET status = 'running', locked_by = 'gone', \
           locked_until = now() - interval '1 second', \
           attempt = CASE WHEN id = (SELECT id FROM executions ORDER BY id LIMIT 1) THEN max_attempts ELSE 1 END",
    )
    .execute(&mut app.db.pool().get().await?)
    .await?;

    let queue = fluxolab_postgres::executions::PgExecutions::new(app.db.pool().clone());
    let claim = queue.claim("heir", 8, 30).await?;
    assert_eq!(
        claim.runs.len(),
        1,
        "only the run with attempts left resumes"
    );
    assert_eq!(claim.runs[0].execution.attempt, 2);
    assert_eq!(
        claim.abandoned.len(),
        1,
        "the claim names the run it failed"
    );
    assert_ne!(claim.abandoned[0], claim.runs[0].execution.id);
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS count FROM executions WHERE status = 'failed' \
             AND error LIKE 'abandoned after 3 attempts%' AND locked_by IS NULL"
        )
        .await?,
        1
    );
    // Its failure is final: noted for the failure notifications in the same statement.
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS count FROM execution_failure_notices \
             WHERE execution_ids = ARRAY['{}'::uuid] AND failures = 1",
            claim.abandoned[0]
        ))
        .await?,
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS count FROM outbox WHERE kind = 'notification'")
            .await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_worker_shutting_down_gives_back_only_the_runs_it_still_holds() -> TestResult {
    use fluxolab_workflows::execution::ExecutionRepository;

    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("release@example.com").await?;
    let workflow = active_workflow(&app, &owner, None).await?;
    app.enqueue(&owner, &workflow, 3).await?;
    let queue = fluxolab_postgres::executions::PgExecutions::new(app.db.pool().clone());
    let claimed = queue.claim("leaving", 3, 30).await?.runs;
    assert_eq!(claimed.len(), 3);
    // One of them ran out of lease and another worker took it over.
    let taken = claimed[0].execution.id;
    diesel::sql_query(format!(
        "UPDATE executions SET locked_until = now() - interval '1 second' WHERE id = '{taken}'"
    ))
    .execute(&mut app.db.pool().get().await?)
    .await?;
    let heir = queue.claim("heir", 1, 30).await?.runs;
    assert_eq!(heir.len(), 1);
    assert_eq!(heir[0].execution.id, taken);

    assert_eq!(queue.release_held("leaving").await?, 2);
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS count FROM executions WHERE status = 'queued' \
             AND locked_by IS NULL AND attempt = 0 AND due_at <= now()"
        )
        .await?,
        2,
        "both runs still held are due again at once, their attempt not counted"
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS count FROM executions WHERE id = '{taken}' \
             AND status = 'running' AND locked_by = 'heir'"
        ))
        .await?,
        1,
        "the run another worker took over is left to it"
    );
    assert_eq!(queue.release_held("leaving").await?, 0, "nothing twice");
    Ok(())
}

#[tokio::test]
async fn a_claim_lost_with_the_database_gives_its_worker_no_write_after_a_new_claim() -> TestResult
{
    use fluxolab_workflows::execution::{
        ExecutionRepository, ExecutionStatus, Finished, StepsKept,
    };
    use fluxolab_workflows::lease::Fenced;

    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("lost-claim@example.com").await?;
    let workflow = active_workflow(&app, &owner, None).await?;
    app.enqueue(&owner, &workflow, 1).await?;
    let queue = fluxolab_postgres::executions::PgExecutions::new(app.db.pool().clone());
    let first = queue.claim("first", 1, 30).await?.runs;
    assert_eq!(first.len(), 1);
    // The claim committed without waiting for the disk, and the database crashed before
    // writing it: recovered, the run is queued as it was before (its token included),
    // while the first worker still runs it.
    diesel::sql_query(
        "UPDATE executions SET status = 'queued', locked_by = NULL, locked_until = NULL, \
           attempt = 0, lease_token = 0, started_at = NULL",
    )
    .execute(&mut app.db.pool().get().await?)
    .await?;
    let second = queue.claim("second", 1, 30).await?.runs;
    assert_eq!(second.len(), 1);
    assert_ne!(
        second[0].lease, first[0].lease,
        "the same claim again hands out another token"
    );
    let finished = || Finished {
        status: ExecutionStatus::Succeeded,
        output: Some(json!({})),
        error: None,
        steps_kept: StepsKept::All,
        notify_failure: false,
    };
    let id = first[0].execution.id;
    assert_eq!(
        queue.finish(id, first[0].lease, finished(), &[]).await?,
        Fenced::LeaseLost,
        "the first worker writes nothing"
    );
    assert_eq!(
        queue.finish(id, second[0].lease, finished(), &[]).await?,
        Fenced::Written
    );
    Ok(())
}
