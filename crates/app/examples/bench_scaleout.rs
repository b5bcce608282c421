//! `cargo xtask bench scaleout`: how the drain rate of a backlog grows with worker
//! processes on one PostgreSQL. For 1, 2 and 4 `fluxolab worker` processes (the release
//! binary named by `FLUXOLAB_BIN`, which the xtask builds), first with `WORKERS=2` each
//! (slots fixed per process: the processes should add up) and then at the default
//! `WORKERS` (the slots already cover one machine: more processes should lose nothing),
//! it queues 20,000 runs of the three-node workflow (every step persisted), starts the
//! processes at once and times them until every run is finished, then stops them with
//! SIGTERM. While they run it samples what their database sessions wait on
//! (`pg_stat_activity`). Before the drains it starts `fluxolab serve` once and reads its
//! resident memory when idle; each worker process's peak resident memory is read before
//! it is stopped. Prints each rate, the wait events, the 4-against-1 ratios, the memory,
//! and the figures as `RESULT key=value` lines for `cargo xtask bench`. Asserts nothing.
//! Needs `DATABASE_URL` naming a server where it may create a database.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::process::{Child, Command};

#[path = "bench_support/common.rs"]
mod common;
#[path = "bench_support/queue.rs"]
mod queue;

use common::Error;
use queue::Bench;

/// The backlog each configuration drains.
const RUNS: i64 = 20_000;
/// Worker processes started at once, in turn.
const PROCESSES: [usize; 3] = [1, 2, 4];
/// A configuration not drained by then is measured on the runs it finished.
const LIMIT: Duration = Duration::from_secs(150);
/// How often the finished runs are counted and the sessions' wait events sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How long a stopped process may take to exit before it is killed.
const EXIT_WITHIN: Duration = Duration::from_secs(60);
/// Wait events printed per configuration.
const TOP_WAITS: usize = 5;
/// How the worker processes name their sessions (`application_name`), so that the
/// samples leave out the bench's own.
const SESSION_NAME: &str = "fluxolab_scaleout_worker";

/// The slots each process runs.
struct Slots {
    /// In the `RESULT` keys.
    key: &'static str,
    /// `WORKERS`; `None`: the default.
    workers: Option<&'static str>,
}

const SLOTS: [Slots; 2] = [
    Slots {
        key: "w2",
        workers: Some("2"),
    },
    Slots {
        key: "default",
        workers: None,
    },
];

/// One configuration's outcome.
struct Drained {
    finished: i64,
    elapsed: Duration,
    /// When the first finished run was seen (the processes' start-up, roughly).
    first: Option<Duration>,
    /// Samples of active worker sessions per (wait event, statement).
    waits: HashMap<(String, String), u64>,
    /// Sampling rounds.
    rounds: u64,
    /// The largest peak resident memory of the processes, in MiB.
    peak_rss_mib: Option<f64>,
    /// Cores busy on average while they ran: the machine's, and the worker processes'.
    cores: Option<(f64, f64)>,
}

impl Drained {
    fn rate(&self) -> f64 {
        self.finished as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    event: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    statement: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    sessions: i64,
}

/// The active worker sessions by wait event and statement (named by its opening).
const SAMPLE: &str = "SELECT coalesce(wait_event_type || ':' || wait_event, 'running') AS event, \
       CASE WHEN query LIKE 'WITH RECURSIVE abandoned AS%' THEN 'claim (FAIR_CLAIM)' \
            WHEN query LIKE 'WITH input AS%' THEN 'finish (FINISH_BATCH)' \
            WHEN query LIKE 'WITH fence AS%' THEN 'fenced write (steps, lease)' \
            ELSE left(regexp_replace(query, '\\s+', ' ', 'g'), 48) END AS statement, \
       count(*) AS sessions \
     FROM pg_stat_activity \
     WHERE datname = current_database() AND state = 'active' AND application_name = $1 \
     GROUP BY 1, 2";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let binary = PathBuf::from(
        std::env::var_os("FLUXOLAB_BIN")
            .ok_or("FLUXOLAB_BIN (the release `fluxolab` binary) is required")?,
    );
    if !binary.is_file() {
        return Err(format!("FLUXOLAB_BIN: no file at {}", binary.display()).into());
    }
    common::in_scratch_database(|url| async move { run(&url, &binary).await }).await
}

async fn run(url: &str, binary: &Path) -> Result<(), Error> {
    let bench = Bench::start(url).await?;
    let workspace = bench.workspace_with_workflow("bench@example.com").await?;
    let mut monitor = AsyncPgConnection::establish(url).await?;
    let mut worker_url = url::Url::parse(url)?;
    worker_url
        .query_pairs_mut()
        .append_pair("application_name", SESSION_NAME);
    let worker_url = worker_url.to_string();
    println!(
        "scaleout bench: {RUNS} runs of trigger.manual → data.set → flow.if per configuration, \
         every step persisted, drained by `fluxolab worker` processes on one database \
         (default WORKERS = {}, DATABASE_POOL_SIZE = {} per process)",
        bench.settings.workers.concurrency, bench.settings.database.pool_size
    );
    let idle = idle_serve_mib(binary, url).await?;
    match idle {
        Some(mib) => println!("  fluxolab serve, idle (ready + 2 s): {mib:.1} MiB resident"),
        None => println!("  fluxolab serve, idle: resident memory unknown (no /proc)"),
    }
    let mut rates: HashMap<(&str, usize), f64> = HashMap::new();
    let mut peak_rss_mib: Option<f64> = None;
    for slots in &SLOTS {
        for processes in PROCESSES {
            prepare(&bench, workspace).await?;
            let drained =
                drain(&bench, &mut monitor, binary, &worker_url, slots, processes).await?;
            report(&bench, slots, processes, &drained);
            rates.insert((slots.key, processes), drained.rate());
            peak_rss_mib = [peak_rss_mib, drained.peak_rss_mib]
                .into_iter()
                .flatten()
                .reduce(f64::max);
        }
    }
    println!("  scaling (the same backlog, the same sitting):");
    for (slots, target) in [(&SLOTS[0], 3.0), (&SLOTS[1], 0.95)] {
        let rate = |processes| rates.get(&(slots.key, processes)).copied();
        if let (Some(one), Some(two), Some(four)) = (rate(1), rate(2), rate(4)) {
            let ratio = four / one;
            println!(
                "    {:<22} 2 processes / 1 = {:.2}×, 4 processes / 1 = {ratio:.2}× (target ≥ {target}×: {})",
                describe(slots, &bench),
                two / one,
                if ratio >= target { "met" } else { "not met" }
            );
            println!(
                "RESULT scaleout_{}_p4_vs_p1_percent={:.1}",
                slots.key,
                ratio * 100.0
            );
        }
    }
    if let Some(mib) = idle {
        println!("RESULT serve_idle_rss_mib={mib:.1}");
    }
    if let Some(mib) = peak_rss_mib {
        println!("RESULT worker_peak_rss_mib={mib:.1}");
    }
    for slots in &SLOTS {
        for processes in PROCESSES {
            if let Some(rate) = rates.get(&(slots.key, processes)) {
                println!(
                    "RESULT scaleout_{}_p{processes}_per_second={rate:.1}",
                    slots.key
                );
            }
        }
    }
    Ok(())
}

fn describe(slots: &Slots, bench: &Bench) -> String {
    match slots.workers {
        Some(workers) => format!("WORKERS={workers}"),
        None => format!("WORKERS default ({})", bench.settings.workers.concurrency),
    }
}

/// An empty queue (truncated: fresh tables and indexes), the backlog queued and
/// analysed, and a checkpoint, so that no configuration inherits the last one's dead rows
/// or dirty pages.
async fn prepare(bench: &Bench, workspace: (uuid::Uuid, uuid::Uuid)) -> Result<(), Error> {
    diesel::sql_query("TRUNCATE execution_steps, executions CASCADE")
        .execute(&mut bench.pool.get().await?)
        .await?;
    bench.enqueue(workspace, RUNS).await?;
    let mut connection = bench.pool.get().await?;
    diesel::sql_query("ANALYZE executions")
        .execute(&mut connection)
        .await?;
    if let Err(error) = diesel::sql_query("CHECKPOINT")
        .execute(&mut connection)
        .await
    {
        println!("  (no checkpoint before this configuration: {error})");
    }
    Ok(())
}

/// Starts `processes` workers at once, times them until the backlog is finished (or
/// [`LIMIT`]), sampling their sessions, and stops them.
async fn drain(
    bench: &Bench,
    monitor: &mut AsyncPgConnection,
    binary: &Path,
    url: &str,
    slots: &Slots,
    processes: usize,
) -> Result<Drained, Error> {
    let started = Instant::now();
    let mut children = Vec::with_capacity(processes);
    for _ in 0..processes {
        children.push(spawn(binary, url, slots.workers)?);
    }
    let pids: Vec<u32> = children.iter().filter_map(Child::id).collect();
    let cpu_before = common::cpu_ticks(&pids);
    let watched = watch(bench, monitor, &mut children, started).await;
    let cores = common::cpu_ticks(&pids)
        .zip(cpu_before)
        .map(|(after, before)| after.since(before, started.elapsed().as_secs_f64()));
    let peak = children
        .iter()
        .filter_map(|child| resident_mib(child.id()?, "VmHWM"))
        .reduce(f64::max);
    stop(children).await;
    watched.map(|drained| Drained {
        peak_rss_mib: peak,
        cores,
        ..drained
    })
}

/// A process's resident memory in MiB, by `field` of `/proc/<pid>/status` (`VmRSS`
/// now, `VmHWM` at its peak); `None` where `/proc` cannot tell.
fn resident_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Starts `fluxolab serve` (workers on, the defaults) on the scratch database, waits
/// until it is ready and two seconds more, and reads its resident memory; then stops it.
async fn idle_serve_mib(binary: &Path, url: &str) -> Result<Option<f64>, Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("DATABASE_URL", url)
        .env("APP_SECRET", "bench-secret-bench-secret-bench-secret")
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let child = command.spawn()?;
    let client = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = client.get(&ready).send().await;
        if answer.is_ok_and(|answer| answer.status().is_success()) {
            break;
        }
        if Instant::now() > deadline {
            stop(vec![child]).await;
            return Err("fluxolab serve was not ready within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = child.id().and_then(|pid| resident_mib(pid, "VmRSS"));
    stop(vec![child]).await;
    Ok(idle)
}

async fn watch(
    bench: &Bench,
    monitor: &mut AsyncPgConnection,
    children: &mut [Child],
    started: Instant,
) -> Result<Drained, Error> {
    let mut drained = Drained {
        finished: 0,
        elapsed: Duration::ZERO,
        first: None,
        waits: HashMap::new(),
        rounds: 0,
        peak_rss_mib: None,
        cores: None,
    };
    while drained.finished < RUNS && started.elapsed() < LIMIT {
        tokio::time::sleep(SAMPLE_EVERY).await;
        for child in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                return Err(
                    format!("a worker process exited while runs were left: {status}").into(),
                );
            }
        }
        let sampled: Vec<Waiting> = diesel::sql_query(SAMPLE)
            .bind::<diesel::sql_types::Text, _>(SESSION_NAME)
            .load(monitor)
            .await?;
        drained.rounds += 1;
        for waiting in sampled {
            *drained
                .waits
                .entry((waiting.event, waiting.statement))
                .or_default() += waiting.sessions.unsigned_abs();
        }
        drained.finished = bench.finished().await?;
        drained.elapsed = started.elapsed();
        if drained.finished > 0 && drained.first.is_none() {
            drained.first = Some(drained.elapsed);
        }
    }
    Ok(drained)
}

/// `fluxolab worker` with only the variables it needs (none inherited).
fn spawn(binary: &Path, url: &str, workers: Option<&str>) -> std::io::Result<Child> {
    let mut command = Command::new(binary);
    command
        .arg("worker")
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("DATABASE_URL", url)
        .env("APP_SECRET", "bench-secret-bench-secret-bench-secret")
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    if let Some(workers) = workers {
        command.env("WORKERS", workers);
    }
    command.spawn()
}

/// SIGTERM to every process, then waits for each (killed if it outlives
/// [`EXIT_WITHIN`]).
async fn stop(mut children: Vec<Child>) {
    for child in &children {
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
    }
    for child in &mut children {
        match tokio::time::timeout(EXIT_WITHIN, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => println!("  (a worker process ended with {status})"),
            Ok(Err(error)) => println!("  (could not wait for a worker process: {error})"),
            Err(_) => {
                println!("  (a worker process outlived SIGTERM by {EXIT_WITHIN:?}; killed)");
                let _ = child.kill().await;
            }
        }
    }
}

fn report(bench: &Bench, slots: &Slots, processes: usize, drained: &Drained) {
    let unfinished = if drained.finished < RUNS {
        format!(" — not drained within {} s", LIMIT.as_secs())
    } else {
        String::new()
    };
    let first = drained.first.map_or_else(String::new, |first| {
        format!(" (first after {:.2} s)", first.as_secs_f64())
    });
    let memory = drained.peak_rss_mib.map_or_else(String::new, |mib| {
        format!(", peak {mib:.0} MiB resident per process")
    });
    println!(
        "  {:<22} {processes} process{} {:>6} runs in {:>6.2} s {:>8.0} runs/s{first}{memory}{unfinished}",
        describe(slots, bench),
        if processes == 1 { " " } else { "es" },
        drained.finished,
        drained.elapsed.as_secs_f64(),
        drained.rate()
    );
    if let Some((busy, workers)) = drained.cores {
        println!(
            "      cores busy {busy:.2} of {}: the worker processes {workers:.2}, PostgreSQL and the rest {:.2}",
            std::thread::available_parallelism().map_or(0, usize::from),
            busy - workers
        );
    }
    let mut waits: Vec<(&(String, String), &u64)> = drained.waits.iter().collect();
    waits.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let total: u64 = drained.waits.values().sum();
    let share = |samples: u64| samples as f64 * 100.0 / total.max(1) as f64;
    let locks: u64 = drained
        .waits
        .iter()
        .filter(|((event, _), _)| event.starts_with("Lock:"))
        .map(|(_, samples)| samples)
        .sum();
    let wal: u64 = drained
        .waits
        .iter()
        .filter(|((event, _), _)| event.starts_with("IO:WAL") || event == "LWLock:WALWrite")
        .map(|(_, samples)| samples)
        .sum();
    println!(
        "      worker sessions, {:.2} active on average: {:.1} % waiting on the WAL flush, {:.1} % on row or transaction locks; the most sampled:",
        total as f64 / drained.rounds.max(1) as f64,
        share(wal),
        share(locks)
    );
    let line = |(event, statement): &(String, String), samples: u64| {
        println!(
            "      {:>5.1} % {:>5.2} sessions  {event:<28} {statement}",
            share(samples),
            samples as f64 / drained.rounds.max(1) as f64
        );
    };
    let top: Vec<_> = waits.into_iter().take(TOP_WAITS).collect();
    for (wait, samples) in &top {
        line(wait, **samples);
    }
    // The lock wait most sampled, if the top left it out: who queues behind whom.
    let lock = drained
        .waits
        .iter()
        .filter(|((event, _), _)| event.starts_with("Lock:"))
        .max_by_key(|(_, samples)| **samples);
    if let Some((wait, samples)) =
        lock.filter(|(wait, _)| top.iter().all(|(shown, _)| shown != wait))
    {
        line(wait, *samples);
    }
}
