//! `cargo xtask bench reads`: authenticated reads once the caches are warm —
//! `GET /api/workflows/{id}` (a JWT and `X-Workspace-Id`) and `GET /api/auth/me` (a JWT)
//! — over 32 keep-alive connections (the lean HTTP/1.1 client of `bench_webhooks`) for a
//! fixed time each (`BENCH_SECONDS`, default 10, split into two rounds run workflow, me,
//! me, workflow so drift hits both alike), against the in-process server with its auth
//! cache listening. Prints requests/s and p50/p99 latency of each, and as `RESULT
//! key=value` lines for `cargo xtask bench`, which gives the rates as a ratio of
//! `pgbench -S`'s transactions per second and the p99s as a ratio of its p99 latency.
//! Asserts nothing. Needs `DATABASE_URL` naming a server where it may create a database.

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "bench_webhooks/http1.rs"]
mod http1;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use fluxolab_app::{Application, DatabaseSettings, Settings};
use fluxolab_kernel::{Actor, Principal, SystemClock, UserId, WorkspaceId};
use fluxolab_postgres::auth_cache::LISTENER_APPLICATION_NAME;
use fluxolab_workflows::service::CreateWorkflow;
use fluxolab_workspace::Role;

/// Concurrent connections firing requests.
const CONNECTIONS: usize = 32;
const PASSWORD: &str = "bench-password-123";

type Error = Box<dyn std::error::Error + Send + Sync>;

fn with_database(url: &str, name: &str) -> Result<String, Error> {
    let mut parsed = url::Url::parse(url)?;
    parsed.set_path(&format!("/{name}"));
    Ok(parsed.into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let server = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is required")?;
    let name = format!("fluxolab_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = AsyncPgConnection::establish(&server).await?;
    diesel::sql_query(format!(r#"CREATE DATABASE "{name}""#))
        .execute(&mut admin)
        .await?;
    let url = with_database(&server, &name)?;
    let outcome = run(&url).await;
    diesel::sql_query(format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#))
        .execute(&mut admin)
        .await?;
    outcome
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// What one read measured: requests answered, the time it took, their latencies and
/// how many were not answered 200.
#[derive(Default)]
struct Side {
    requests: usize,
    seconds: f64,
    latencies: Vec<Duration>,
    failures: usize,
}

impl Side {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// Fires `GET path` with `headers` over [`CONNECTIONS`] connections for `duration`.
async fn fire(
    address: SocketAddr,
    path: &str,
    headers: &str,
    duration: Duration,
    into: &mut Side,
) -> Result<(), Error> {
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        connections.push(http1::Connection::open(address).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let (path, headers): (Arc<str>, Arc<str>) = (path.into(), headers.into());
    let mut tasks = Vec::new();
    for mut connection in connections {
        let (path, headers) = (path.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer = connection.send("GET", &path, &headers, b"").await;
                latencies.push(sent.elapsed());
                match answer {
                    Ok(200) => {}
                    Ok(_) => failures += 1,
                    Err(_) => {
                        failures += 1;
                        break;
                    }
                }
            }
            (latencies, failures)
        }));
    }
    for task in tasks {
        let (mut some, failed) = task.await?;
        into.requests += some.len();
        into.latencies.append(&mut some);
        into.failures += failed;
    }
    into.seconds += started.elapsed().as_secs_f64();
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// Waits (up to 10 s) until the server's auth listener listens: before, every request
/// reads its membership from the database.
async fn await_listener(url: &str) -> Result<(), Error> {
    let mut connection = AsyncPgConnection::establish(url).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Count = diesel::sql_query(format!(
            "SELECT count(*) AS count FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = '{LISTENER_APPLICATION_NAME}'"
        ))
        .get_result(&mut connection)
        .await?;
        if found.count > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the server's auth listener never listened".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(url: &str) -> Result<(), Error> {
    let migrate_url = url.to_owned();
    fluxolab_postgres::migrations::run_off_runtime(move || {
        fluxolab_postgres::migrations::run_pending(&migrate_url)
    })
    .await?;
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10);
    let settings = Settings::from_lookup(|variable| match variable {
        "DATABASE_URL" => Some(url.to_owned()),
        "APP_SECRET" => Some("bench-secret-bench-secret-bench-secret".to_owned()),
        "BIND_ADDR" => Some("127.0.0.1:0".to_owned()),
        "DATABASE_POOL_SIZE" => {
            Some(std::env::var("BENCH_POOL_SIZE").unwrap_or_else(|_| "16".to_owned()))
        }
        _ => None,
    })?;
    let pool = fluxolab_app::startup::pool(&DatabaseSettings {
        pool_size: 4,
        ..settings.database.clone()
    })?;
    fluxolab_postgres::seed::seed_reference_data(&mut *pool.get().await?).await?;
    let services = fluxolab_app::startup::services(
        &pool,
        &settings,
        Arc::new(SystemClock),
        Arc::new(fluxolab_workflows::execution_service::Unobserved),
    )?;
    let user = services
        .accounts
        .register(fluxolab_identity::Registration {
            email: "bench@example.com".into(),
            password: secrecy::SecretString::from(PASSWORD.to_owned()),
            display_name: "Bench".into(),
        })
        .await?;
    let workspace = user.default_workspace_id.ok_or("no workspace")?;
    let owner = Principal::new(
        Actor::User(UserId::from_uuid(user.id.as_uuid())),
        WorkspaceId::from_uuid(workspace.as_uuid()),
        Role::Owner.grants(),
    );
    let workflow = services
        .workflows
        .create(
            &owner,
            CreateWorkflow {
                name: "Read by the bench".into(),
                description: Some("GET /api/workflows/{id}".into()),
                definition: None,
            },
        )
        .await?;

    let app = Application::build(&settings)?.without_workers();
    let address: SocketAddr = ([127, 0, 0, 1], app.port()).into();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let tokens: serde_json::Value = client
        .post(format!("http://{address}/api/auth/login"))
        .json(&serde_json::json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let access = tokens["access_token"]
        .as_str()
        .ok_or("the login answered no access token")?;
    await_listener(url).await?;

    let bearer = format!("authorization: Bearer {access}\r\n");
    let reads = [
        (
            "workflow_jwt",
            format!("/api/workflows/{}", workflow.id),
            format!("{bearer}x-workspace-id: {workspace}\r\n"),
        ),
        ("me_jwt", "/api/auth/me".to_owned(), bearer.clone()),
    ];
    for (_, path, headers) in &reads {
        let mut connection = http1::Connection::open(address).await?;
        let status = connection.send("GET", path, headers, b"").await?;
        if status != 200 {
            return Err(format!("GET {path} answered {status}").into());
        }
    }

    println!(
        "reads bench: GET /api/workflows/{{id}} and GET /api/auth/me with a JWT, warm caches, {CONNECTIONS} connections, {seconds} s each"
    );
    // Warm both (connections, prepared statements, caches), then two rounds in ABBA
    // order.
    let mut warm = Side::default();
    for (_, path, headers) in &reads {
        fire(address, path, headers, Duration::from_secs(1), &mut warm).await?;
    }
    let half = Duration::from_millis(seconds * 500);
    let mut sides = [Side::default(), Side::default()];
    for index in [0, 1, 1, 0] {
        let (_, path, headers) = &reads[index];
        fire(address, path, headers, half, &mut sides[index]).await?;
    }
    server.abort();

    for ((name, path, _), side) in reads.iter().zip(sides.iter_mut()) {
        side.latencies.sort();
        println!(
            "  GET {path:<50} {:>8.0} requests/s   p50 {:>6.2} ms   p99 {:>6.2} ms   non-200: {}",
            side.rate(),
            percentile(&side.latencies, 0.5),
            percentile(&side.latencies, 0.99),
            side.failures
        );
        // For `cargo xtask bench`, which prints them as ratios of its pgbench reference.
        println!("RESULT {name}_requests_per_second={:.1}", side.rate());
        println!(
            "RESULT {name}_p99_ms={:.3}",
            percentile(&side.latencies, 0.99)
        );
    }
    Ok(())
}
