//! `cargo xtask bench fairness`: workspace A queues 50,000 runs; while the workers
//! (default settings) drain them, workspace B queues one run every 20 ms. Prints how long
//! B's runs waited to be claimed (p50/p99, due → started), A's drain rate, and both as
//! `RESULT key=value` lines for `cargo xtask bench`; then the claims as the runs show
//! them (a claim's runs share its transaction time as `started_at`): how many, their
//! size, the time between them, how long B's enqueue took to its commit, and how many
//! claims began after one of B's runs was committed and still left it waiting. Asserts
//! nothing. Needs `DATABASE_URL` naming a server where it may create a database.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use fluxolab_app::workers::WorkerPool;

#[path = "bench_support/common.rs"]
mod common;
#[path = "bench_support/queue.rs"]
mod queue;

use common::{Error, RunLatency};
use queue::Bench;

const BACKLOG: i64 = 50_000;
const QUIET_EVERY: Duration = Duration::from_millis(20);

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::in_scratch_database(|url| async move { run(&url).await }).await
}

async fn run(url: &str) -> Result<(), Error> {
    let bench = Bench::start(url).await?;
    let busy = bench.workspace_with_workflow("busy@example.com").await?;
    let quiet = bench.workspace_with_workflow("quiet@example.com").await?;
    bench.enqueue(busy, BACKLOG).await?;

    let started = Instant::now();
    let workers = WorkerPool::start(
        bench.services.executions.clone(),
        bench.services.queue.clone(),
        bench.settings.workers,
    );
    let mut quiet_runs = 0;
    // When each of B's runs was committed (after its enqueue returned), in order.
    let mut committed = Vec::new();
    // How long each of those enqueues took, to its commit.
    let mut enqueues: Vec<Duration> = Vec::new();
    let mut done = 0;
    let mut last_look = Instant::now();
    while done < BACKLOG + quiet_runs && started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(QUIET_EVERY).await;
        // The quiet workspace keeps queueing while the busy one's backlog lasts.
        if done < BACKLOG {
            let sent = Instant::now();
            bench.enqueue(quiet, 1).await?;
            committed.push(time::OffsetDateTime::now_utc());
            enqueues.push(sent.elapsed());
            quiet_runs += 1;
        }
        if last_look.elapsed() > Duration::from_millis(200) {
            done = bench.finished().await?;
            last_look = Instant::now();
        }
    }
    let elapsed = started.elapsed();
    workers.shutdown().await;
    let waits: RunLatency = diesel::sql_query(
        "SELECT count(*) AS runs, \
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - due_at)) AS p50, \
           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - due_at)) AS p99 \
         FROM executions WHERE workspace_id = $1 AND started_at IS NOT NULL",
    )
    .bind::<diesel::sql_types::Uuid, _>(quiet.0)
    .get_result(&mut bench.pool.get().await?)
    .await?;
    let claims = claims(&bench).await?;
    let passed_over = passed_over(&bench, quiet.0, &committed).await?;
    let rate = done as f64 / elapsed.as_secs_f64();
    let p99_ms = waits.p99_ms();
    println!(
        "fairness bench: workspace A queues {BACKLOG} runs, workspace B one every {} ms meanwhile; {} worker slots (the default)",
        QUIET_EVERY.as_millis(),
        bench.settings.workers.concurrency
    );
    println!(
        "  finished             {done:>10} executions in {:.2} s ({rate:.0}/s)",
        elapsed.as_secs_f64()
    );
    println!("  B's runs claimed     {:>10} of {quiet_runs}", waits.runs);
    println!("  B due → started p50  {:>10.1} ms", waits.p50_ms());
    println!("  B due → started p99  {p99_ms:>10.1} ms");
    println!(
        "  claims               {:>10} (runs per claim p50 {:.0}, {} of one run); between claims p50 {:.1} ms, p99 {:.1} ms, longest {:.1} ms",
        claims.claims,
        claims.size_p50.unwrap_or(0.0),
        claims.single,
        claims.gap_p50.unwrap_or(0.0) * 1000.0,
        claims.gap_p99.unwrap_or(0.0) * 1000.0,
        claims.gap_max.unwrap_or(0.0) * 1000.0,
    );
    enqueues.sort();
    println!(
        "  B's enqueue, to its commit  p50 {:.1} ms, p99 {:.1} ms",
        common::percentile(&enqueues, 0.5),
        common::percentile(&enqueues, 0.99)
    );
    println!(
        "  claims begun after a B run was committed that left it waiting: {:.2} per B run, at most {}",
        passed_over.per_run, passed_over.most
    );
    println!("RESULT executions_per_second={rate:.1}");
    println!("RESULT quiet_claim_p99_ms={p99_ms:.1}");
    common::print_peak_memory();
    Ok(())
}

/// The claims, as the runs show them: every run a claim took has the claim's
/// transaction time as its `started_at` (each run here is claimed once).
#[derive(diesel::QueryableByName)]
struct Claims {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    claims: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    size_p50: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    single: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    gap_p50: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    gap_p99: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    gap_max: Option<f64>,
}

async fn claims(bench: &Bench) -> Result<Claims, Error> {
    Ok(diesel::sql_query(
        "WITH claims AS ( \
           SELECT started_at, count(*) AS size FROM executions \
           WHERE started_at IS NOT NULL GROUP BY started_at \
         ), gaps AS ( \
           SELECT size, extract(epoch FROM started_at - lag(started_at) OVER (ORDER BY started_at)) AS gap \
           FROM claims \
         ) \
         SELECT count(*) AS claims, \
           percentile_cont(0.5) WITHIN GROUP (ORDER BY size) AS size_p50, \
           count(*) FILTER (WHERE size = 1) AS single, \
           percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS gap_p50, \
           percentile_cont(0.99) WITHIN GROUP (ORDER BY gap) AS gap_p99, \
           max(gap)::float8 AS gap_max \
         FROM gaps",
    )
    .get_result(&mut bench.pool.get().await?)
    .await?)
}

/// Claims that began after one of B's runs was committed and did not take it.
struct PassedOver {
    per_run: f64,
    most: usize,
}

#[derive(diesel::QueryableByName)]
struct At {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    at: time::OffsetDateTime,
}

async fn passed_over(
    bench: &Bench,
    quiet: uuid::Uuid,
    committed: &[time::OffsetDateTime],
) -> Result<PassedOver, Error> {
    let mut connection = bench.pool.get().await?;
    // B's runs in the order they were queued, and when each was claimed.
    let started: Vec<At> = diesel::sql_query(
        "SELECT started_at AS at FROM executions \
         WHERE workspace_id = $1 AND started_at IS NOT NULL ORDER BY due_at",
    )
    .bind::<diesel::sql_types::Uuid, _>(quiet)
    .load(&mut connection)
    .await?;
    // Every claim's transaction time (each run here is claimed once).
    let claims: Vec<At> = diesel::sql_query(
        "SELECT DISTINCT started_at AS at FROM executions \
         WHERE started_at IS NOT NULL ORDER BY 1",
    )
    .load(&mut connection)
    .await?;
    let claims: Vec<time::OffsetDateTime> = claims.into_iter().map(|claim| claim.at).collect();
    let passed: Vec<usize> = committed
        .iter()
        .zip(&started)
        .map(|(committed, started)| {
            let after = claims.partition_point(|claim| claim <= committed);
            let before = claims.partition_point(|claim| *claim < started.at);
            before.saturating_sub(after)
        })
        .collect();
    Ok(PassedOver {
        per_run: passed.iter().sum::<usize>() as f64 / passed.len().max(1) as f64,
        most: passed.iter().copied().max().unwrap_or(0),
    })
}
