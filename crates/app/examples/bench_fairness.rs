//! `cargo xtask bench fairness`: workspace A queues 50,000 runs; while the workers
//! (default settings) drain them, workspace B queues one run every 20 ms. Prints how long
//! B's runs waited to be claimed (p50/p99, due → started), A's drain rate, and both as
//! `RESULT key=value` lines for `cargo xtask bench`. Asserts nothing. Needs
//! `DATABASE_URL` naming a server where it may create a database.

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
    let mut done = 0;
    let mut last_look = Instant::now();
    while done < BACKLOG + quiet_runs && started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(QUIET_EVERY).await;
        // The quiet workspace keeps queueing while the busy one's backlog lasts.
        if done < BACKLOG {
            bench.enqueue(quiet, 1).await?;
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
    println!("RESULT executions_per_second={rate:.1}");
    println!("RESULT quiet_claim_p99_ms={p99_ms:.1}");
    common::print_peak_memory();
    Ok(())
}
