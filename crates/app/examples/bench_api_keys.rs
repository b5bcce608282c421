//! `cargo xtask bench api-keys`: `GET /api/workflows` (a workspace of 20 workflows)
//! authenticated by a JWT (`Authorization: Bearer <access token>` + `X-Workspace-Id`) and
//! by an API key with `workflows.read`, over 32 connections for a fixed time each
//! (`BENCH_SECONDS`, default 10, split into two rounds run JWT, key, key, JWT so drift
//! hits both alike). Prints requests/s and p50/p99 latency of each side by side and
//! the ratio key/JWT against the target (≥ 0.90), the rates again as `RESULT key=value`
//! lines for `cargo xtask bench`. Asserts nothing. Needs `DATABASE_URL` naming a server
//! where it may create a database.

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "bench_support/common.rs"]
mod common;

use std::time::{Duration, Instant};

use fluxolab_app::Application;
use fluxolab_workflows::service::CreateWorkflow;
use fluxolab_workspace::api_keys::{NewApiKey, Origin};

use common::{
    Error, Side, Tally, api_settings, bench_seconds, login, percentile, prepare, register_owner,
};

/// Concurrent connections firing requests.
const CONNECTIONS: usize = 32;
/// Workflows in the listed workspace.
const WORKFLOWS: usize = 20;
/// What the key path should reach, as a fraction of the JWT path.
const TARGET: f64 = 0.90;

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::in_scratch_database(|url| async move { run(&url).await }).await
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
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer = client.get(&url).headers(headers.clone()).send().await;
                let ok = match answer {
                    // Read the whole body: the list is part of the work.
                    Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                tally.latencies.push(sent.elapsed());
                if !ok {
                    tally.failures += 1;
                }
            }
            tally
        }));
    }
    for task in tasks {
        into.add(task.await?);
    }
    into.seconds += started.elapsed().as_secs_f64();
    Ok(())
}

async fn run(url: &str) -> Result<(), Error> {
    let seconds = bench_seconds();
    let settings = api_settings(url, "16", &[])?;
    let (_pool, services) = prepare(&settings, 4).await?;
    let (owner, workspace) = register_owner(&services, "bench@example.com").await?;
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
                    error_workflow_id: None,
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
    let server = common::Serving::start(app);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()?;
    let access = login(&client, &base, "bench@example.com").await?;
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
    server.stop().await?;

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
    common::print_peak_memory();
    Ok(())
}
