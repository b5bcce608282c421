//! What every bench shares: a scratch database, counting rows, a registered owner, the
//! run length, and latency figures (measured here or by the database).

// Each bench uses some of what is here.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use fluxolab_app::{DatabaseSettings, Settings};
use fluxolab_http::Services;
use fluxolab_kernel::{Actor, Principal, SystemClock, UserId, WorkspaceId};
use fluxolab_postgres::DbPool;
use fluxolab_workspace::Role;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The password of every bench user.
pub const PASSWORD: &str = "bench-password-123";

/// Creates a scratch database on `DATABASE_URL`'s server, runs `bench` against it, and
/// drops it whatever the outcome.
pub async fn in_scratch_database<F, Fut>(bench: F) -> Result<(), Error>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let server = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is required")?;
    let name = format!("fluxolab_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = AsyncPgConnection::establish(&server).await?;
    diesel::sql_query(format!(r#"CREATE DATABASE "{name}""#))
        .execute(&mut admin)
        .await?;
    let mut url = url::Url::parse(&server)?;
    url.set_path(&format!("/{name}"));
    let outcome = bench(url.into()).await;
    diesel::sql_query(format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#))
        .execute(&mut admin)
        .await?;
    outcome
}

/// An application serving in this process, stopped for good by [`Serving::stop`].
pub struct Serving {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    /// Starts `app` (its workers too, unless built without).
    pub fn start(app: fluxolab_app::Application) -> Self {
        let handle = app.stop_handle();
        Self {
            handle,
            task: tokio::spawn(app.run_until_stopped()),
        }
    }

    /// Stops the server at once (the load generator's idle keep-alive connections are
    /// not waited for) and drains its workers, so that the next phase of a bench does
    /// not share the machine with this one's server and workers.
    pub async fn stop(self) -> Result<(), Error> {
        self.handle.stop(false).await;
        self.task.await??;
        Ok(())
    }
}

/// Applies the migrations to the scratch database at `url`.
pub async fn migrate(url: &str) -> Result<(), Error> {
    let url = url.to_owned();
    fluxolab_postgres::migrations::run_off_runtime(move || {
        fluxolab_postgres::migrations::run_pending(&url)
    })
    .await?;
    Ok(())
}

/// The settings of a bench serving the API on a free port: a pool of `BENCH_POOL_SIZE`
/// connections (default `pool_size`), and `extra` variables on top.
pub fn api_settings(url: &str, pool_size: &str, extra: &[(&str, &str)]) -> Result<Settings, Error> {
    let pool_size = std::env::var("BENCH_POOL_SIZE").unwrap_or_else(|_| pool_size.to_owned());
    Ok(Settings::from_lookup(|variable| match variable {
        "DATABASE_URL" => Some(url.to_owned()),
        "APP_SECRET" => Some("bench-secret-bench-secret-bench-secret".to_owned()),
        "BIND_ADDR" => Some("127.0.0.1:0".to_owned()),
        "DATABASE_POOL_SIZE" => Some(pool_size.clone()),
        _ => extra
            .iter()
            .find(|(name, _)| *name == variable)
            .map(|(_, value)| (*value).to_owned()),
    })?)
}

/// The migrated, seeded scratch database at `settings`' URL: a setup pool of
/// `connections` and the services over it (unobserved).
pub async fn prepare(settings: &Settings, connections: usize) -> Result<(DbPool, Services), Error> {
    migrate(&settings.database.url).await?;
    let pool = fluxolab_app::startup::pool(&DatabaseSettings {
        pool_size: connections,
        ..settings.database.clone()
    })?;
    fluxolab_postgres::seed::seed_reference_data(&mut *pool.get().await?).await?;
    let services = fluxolab_app::startup::services(
        &pool,
        settings,
        Arc::new(SystemClock),
        Arc::new(fluxolab_workflows::execution_service::Unobserved),
    )?;
    Ok((pool, services))
}

/// Logs `email` in (with [`PASSWORD`]) at the server at `base`; the access token.
pub async fn login(client: &reqwest::Client, base: &str, email: &str) -> Result<String, Error> {
    let tokens: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    Ok(tokens["access_token"]
        .as_str()
        .ok_or("the login answered no access token")?
        .to_owned())
}

/// `BENCH_SECONDS`, default 10.
pub fn bench_seconds() -> u64 {
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10)
}

/// A row of `SELECT count(*) AS count …`.
#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// The number `sql` (a `SELECT count(*) AS count …`) answers.
pub async fn count(pool: &DbPool, sql: &str) -> Result<i64, Error> {
    let row: Count = diesel::sql_query(sql)
        .get_result(&mut pool.get().await?)
        .await?;
    Ok(row.count)
}

/// Registers `email` (with [`PASSWORD`]) as registration makes a user; the owner of
/// its personal workspace, and that workspace.
pub async fn register_owner(
    services: &Services,
    email: &str,
) -> Result<(Principal, WorkspaceId), Error> {
    let user = services
        .accounts
        .register(fluxolab_identity::Registration {
            email: email.into(),
            password: secrecy::SecretString::from(PASSWORD.to_owned()),
            display_name: "Bench".into(),
        })
        .await?;
    let workspace = user.default_workspace_id.ok_or("no workspace")?;
    let workspace = WorkspaceId::from_uuid(workspace.as_uuid());
    let owner = Principal::new(
        Actor::User(UserId::from_uuid(user.id.as_uuid())),
        workspace,
        Role::Owner.grants(),
    );
    Ok((owner, workspace))
}

/// The `fraction` percentile of `sorted`, in milliseconds.
pub fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// What one side of an HTTP bench measured: requests answered, the time it took, their
/// latencies and how many were not answered 200.
#[derive(Default)]
pub struct Side {
    pub requests: usize,
    pub seconds: f64,
    pub latencies: Vec<Duration>,
    pub failures: usize,
}

impl Side {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds.max(f64::EPSILON)
    }

    /// Adds what one connection's task measured.
    pub fn add(&mut self, mut tally: Tally) {
        self.requests += tally.latencies.len();
        self.latencies.append(&mut tally.latencies);
        self.failures += tally.failures;
    }
}

/// What one connection's task measured: each request's latency, and how many were not
/// answered 200.
#[derive(Default)]
pub struct Tally {
    pub latencies: Vec<Duration>,
    pub failures: usize,
}

impl Tally {
    /// Notes a request sent at `sent` and the status it was answered, `None` when the
    /// connection broke instead; whether the connection is still usable (a broken one
    /// stops its task; the others go on).
    pub fn record(&mut self, sent: Instant, status: Option<u16>) -> bool {
        self.latencies.push(sent.elapsed());
        if !matches!(status, Some(200..=299)) {
            self.failures += 1;
        }
        status.is_some()
    }
}

/// How many runs a latency covers and its p50 and p99 in seconds, as the database
/// computes them (`SELECT count(*) AS runs, percentile_cont(…) AS p50, … AS p99`).
#[derive(QueryableByName)]
pub struct RunLatency {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub runs: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    pub p50: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    pub p99: Option<f64>,
}

impl RunLatency {
    /// The p50 in milliseconds (0 when no run).
    pub fn p50_ms(&self) -> f64 {
        self.p50.unwrap_or(0.0) * 1000.0
    }

    /// The p99 in milliseconds (0 when no run).
    pub fn p99_ms(&self) -> f64 {
        self.p99.unwrap_or(0.0) * 1000.0
    }
}

/// Prints this process's peak resident memory (`VmHWM`, Linux only) — the load
/// generator and the server together, so an upper bound of the server's — as text and
/// as the `RESULT peak_rss_mib` line.
pub fn print_peak_memory() {
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        });
    match peak_kib {
        Some(kib) => {
            let mib = kib as f64 / 1024.0;
            println!(
                "  peak resident memory {mib:>8.1} MiB (this process: load generator and server)"
            );
            println!("RESULT peak_rss_mib={mib:.1}");
        }
        None => println!("  peak resident memory unknown (no /proc/self/status)"),
    }
}

/// CPU time so far, in clock ticks (Linux only): the whole machine's busy time and that
/// of some processes.
#[derive(Clone, Copy, Debug)]
pub struct CpuTicks {
    machine: u64,
    processes: u64,
}

impl CpuTicks {
    /// Since `before`, over `seconds`: the cores busy on average, the machine's and the
    /// processes'.
    pub fn since(self, before: CpuTicks, seconds: f64) -> (f64, f64) {
        // Clock ticks are 100 a second on Linux.
        let cores = |ticks: u64| ticks as f64 / 100.0 / seconds.max(f64::EPSILON);
        (
            cores(self.machine.saturating_sub(before.machine)),
            cores(self.processes.saturating_sub(before.processes)),
        )
    }
}

/// The machine's busy time and that of the processes `pids` (user and system time of
/// each); `None` where `/proc` cannot tell.
pub fn cpu_ticks(pids: &[u32]) -> Option<CpuTicks> {
    let mut processes = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command name (which may hold spaces) start with the
        // state; utime and stime are the 12th and 13th of them.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        processes += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    let machine = std::fs::read_to_string("/proc/stat").ok()?;
    let totals: Vec<u64> = machine
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    let machine = totals.iter().sum::<u64>() - totals.get(3)? - totals.get(4)?;
    Some(CpuTicks { machine, processes })
}
