//! `cargo xtask bench executions`: enqueues 50,000 runs (`BENCH_RUNS`) of the three-node
//! workflow into a scratch database and lets this process's workers run them at the
//! default settings (or `WORKERS`, `DATABASE_POOL_SIZE`), every step persisted. Prints
//! executions per second and the p50/p99 time from due to finished, and the rate again
//! as a `RESULT key=value` line for `cargo xtask bench`. Asserts nothing. Needs
//! `DATABASE_URL` naming a server where it may create a database.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use fluxolab_app::workers::WorkerPool;

#[path = "bench_support/common.rs"]
mod common;
#[path = "bench_support/queue.rs"]
mod queue;

use common::{Error, RunLatency, count};
use queue::Bench;

/// Runs queued, unless `BENCH_RUNS` says otherwise.
const RUNS: i64 = 50_000;

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::in_scratch_database(|url| async move { run(&url).await }).await
}

async fn run(url: &str) -> Result<(), Error> {
    let bench = Bench::start(url).await?;
    let workspace = bench.workspace_with_workflow("bench@example.com").await?;
    let runs = match std::env::var("BENCH_RUNS") {
        Ok(runs) => runs.parse().map_err(|_| "BENCH_RUNS is not a number")?,
        Err(_) => RUNS,
    };
    bench.enqueue(workspace, runs).await?;

    let started = Instant::now();
    let workers = WorkerPool::start(
        bench.services.executions.clone(),
        bench.services.queue.clone(),
        bench.settings.workers,
    );
    let mut done = 0;
    while done < runs && started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        done = bench.finished().await?;
    }
    let elapsed = started.elapsed();
    workers.shutdown().await;
    let steps = count(&bench.pool, "SELECT count(*) AS count FROM execution_steps").await?;
    let stats: RunLatency = diesel::sql_query(
        "SELECT count(*) AS runs, \
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - due_at)) AS p50, \
           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - due_at)) AS p99 \
         FROM executions WHERE status IN ('succeeded', 'failed')",
    )
    .get_result(&mut bench.pool.get().await?)
    .await?;
    println!(
        "executions bench: {runs} runs of trigger.manual → data.set → flow.if, {} worker slots and a pool of {}, every step persisted",
        bench.settings.workers.concurrency, bench.settings.database.pool_size
    );
    println!(
        "  finished             {done:>10} executions ({} steps) in {:.2} s",
        steps,
        elapsed.as_secs_f64()
    );
    let rate = done as f64 / elapsed.as_secs_f64();
    println!("  throughput           {rate:>10.0} executions/s");
    println!("  due → finished  p50  {:>10.1} ms", stats.p50_ms());
    println!("  due → finished  p99  {:>10.1} ms", stats.p99_ms());
    println!("RESULT executions_per_second={rate:.1}");
    common::print_peak_memory();
    Ok(())
}
