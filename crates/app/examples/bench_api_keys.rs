//! `cargo xtask bench api-keys`: `GET /api/workflows` (a workspace of 20 workflows)
//! authenticated by a JWT (`Authorization: Bearer <access token>` + `X-Workspace-Id`) and
//! by an API key with `workflows.read`, over 32 connections for a fixed time each
//! (`BENCH_SECONDS`, default 10, split into two rounds run JWT, key, key, JWT so drift
//! hits both alike). Prints requests/s and p50/p99 latency of each side by side and
//! the ratio key/JWT against the target (≥ 0.90), the rates again as `RESULT key=value`
//! lines for `cargo xtask bench`. Asserts nothing. Needs `DATABASE_URL` naming a server
//! where it may create a database.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use fluxolab_app::{Application, DatabaseSettings, Settings};
use fluxolab_kernel::{Actor, Principal, SystemClock, UserId, WorkspaceId};
use fluxolab_workflows::service::CreateWorkflow;
use fluxolab_workspace::Role;
use fluxolab_workspace::api_keys::{NewApiKey, Origin};

/// Concurrent connections firing requests.
const CONNECTIONS: usize = 32;
/// Workflows in the listed workspace.
const WORKFLOWS: usize = 20;
/// What the key path should reach, as a fraction of the JWT path.
const TARGET: f64 = 0.90;
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

/// What one side measured: requests answered, the time it took, their latencies and
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

/// Fires `GET url` with `headers` over [`CONNECTIONS`] connections for `duration`.
async fn fire(
    client: &reqwest::Client,
    url: &str,
    headers: &reqwest::header::HeaderMap,
    duration: Duration,
    into: &mut Side,
) -> Result<(), Error> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, url, headers) = (client.clone(), url.to_owned(), headers.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer = client.get(&url).headers(headers.clone()).send().await;
                let ok = match answer {
                    // Read the whole body: the list is part of the work.
                    Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latencies.push(sent.elapsed());
                if !ok {
                    failures += 1;
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
    // No plan limit in the way of the workflows and the key.
    services.billing.change_plan(&owner, "enterprise").await?;
    for index in 0..WORKFLOWS {
        services
            .workflows
            .create(
                &owner,
                CreateWorkflow {
                    name: format!("Workflow {index}"),
                    description: Some("Listed by the bench".into()),
                    definition: None,
                },
            )
            .await?;
    }
    let (_, key) = services
        .api_keys
        .create(
            &owner,
            &Origin::default(),
            NewApiKey {
                name: "Bench".into(),
                scopes: vec!["workflows.read".into()],
                ..NewApiKey::default()
            },
        )
        .await?;

    let app = Application::build(&settings)?.without_workers();
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()?;
    let tokens: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let access = tokens["access_token"]
        .as_str()
        .ok_or("the login answered no access token")?;

    let mut jwt_headers = reqwest::header::HeaderMap::new();
    jwt_headers.insert("authorization", format!("Bearer {access}").parse()?);
    jwt_headers.insert("x-workspace-id", workspace.to_string().parse()?);
    let mut key_headers = reqwest::header::HeaderMap::new();
    key_headers.insert("authorization", format!("Bearer {key}").parse()?);
    let list = format!("{base}/api/workflows");
    for headers in [&jwt_headers, &key_headers] {
        let answer = client.get(&list).headers(headers.clone()).send().await?;
        if answer.status() != 200 {
            return Err(format!("GET /api/workflows answered {}", answer.status()).into());
        }
    }

    println!(
        "api-keys bench: GET /api/workflows ({WORKFLOWS} workflows), {CONNECTIONS} connections, {seconds} s per side"
    );
    // Warm both paths (connections, caches), then two rounds in ABBA order.
    let mut warm = Side::default();
    fire(
        &client,
        &list,
        &jwt_headers,
        Duration::from_secs(1),
        &mut warm,
    )
    .await?;
    fire(
        &client,
        &list,
        &key_headers,
        Duration::from_secs(1),
        &mut warm,
    )
    .await?;
    let half = Duration::from_millis(seconds * 500);
    let (mut jwt, mut keyed) = (Side::default(), Side::default());
    fire(&client, &list, &jwt_headers, half, &mut jwt).await?;
    fire(&client, &list, &key_headers, half, &mut keyed).await?;
    fire(&client, &list, &key_headers, half, &mut keyed).await?;
    fire(&client, &list, &jwt_headers, half, &mut jwt).await?;
    server.abort();

    for (label, side) in [("JWT", &mut jwt), ("API key", &mut keyed)] {
        side.latencies.sort();
        println!(
            "  {label:<8} {:>10.0} requests/s   p50 {:>6.2} ms   p99 {:>6.2} ms   non-200: {}",
            side.rate(),
            percentile(&side.latencies, 0.5),
            percentile(&side.latencies, 0.99),
            side.failures
        );
    }
    let ratio = keyed.rate() / jwt.rate().max(f64::EPSILON);
    println!(
        "  key / JWT {ratio:>9.2} ×   target ≥ {TARGET:.2}: {}",
        if ratio >= TARGET { "met" } else { "MISSED" }
    );
    // For `cargo xtask bench`, which prints them as ratios of its pgbench reference.
    println!("RESULT jwt_requests_per_second={:.1}", jwt.rate());
    println!("RESULT api_key_requests_per_second={:.1}", keyed.rate());
    Ok(())
}
