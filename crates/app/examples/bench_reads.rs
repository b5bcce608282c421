//! `cargo xtask bench reads`: authenticated requests once the caches are warm —
//! `GET /api/workflows/{id}` (a JWT and `X-Workspace-Id`), `GET /api/auth/me` (a JWT) and
//! `POST /api/workflows/{id}/run` (a JWT: a run queued, audited, answered 202) — over 32
//! keep-alive connections (the lean HTTP/1.1 client of `bench_webhooks`) for a fixed time
//! each (`BENCH_SECONDS`, default 10, split into two rounds run in mirrored order so drift
//! hits all alike), against the in-process server with its auth cache listening and no
//! workers. Prints requests/s and p50/p99 latency of each, and as `RESULT key=value`
//! lines for `cargo xtask bench`, which gives the rates as a ratio of `pgbench -S`'s
//! transactions per second and the p99s as a ratio of its p99 latency; then the
//! process's peak resident memory. Asserts nothing. Needs `DATABASE_URL` naming a server
//! where it may create a database.

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "bench_support/common.rs"]
mod common;
#[path = "bench_webhooks/http1.rs"]
mod http1;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxolab_app::Application;
use fluxolab_postgres::DbPool;
use fluxolab_postgres::auth_cache::LISTENER_APPLICATION_NAME;
use fluxolab_workflows::service::CreateWorkflow;

use common::{
    Error, Side, Tally, api_settings, bench_seconds, count, login, percentile, prepare,
    register_owner,
};

/// Concurrent connections firing requests.
const CONNECTIONS: usize = 32;

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::in_scratch_database(|url| async move { run(&url).await }).await
}

/// One measured request: its `RESULT` name, method, path, headers and body.
struct Request {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: String,
    body: &'static [u8],
}

/// Fires `request` over [`CONNECTIONS`] connections for `duration`.
async fn fire(
    address: SocketAddr,
    request: &Request,
    duration: Duration,
    into: &mut Side,
) -> Result<(), Error> {
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        connections.push(http1::Connection::open(address).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let (method, body) = (request.method, request.body);
    let (path, headers): (Arc<str>, Arc<str>) = (
        request.path.as_str().into(),
        request.headers.as_str().into(),
    );
    let mut tasks = Vec::new();
    for mut connection in connections {
        let (path, headers) = (path.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer = connection.send(method, &path, &headers, body).await;
                if !tally.record(sent, answer.ok()) {
                    break;
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

/// Waits (up to 10 s) until the server's auth listener listens: before, every request
/// reads its membership from the database.
async fn await_listener(pool: &DbPool) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = count(
            pool,
            &format!(
                "SELECT count(*) AS count FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = '{LISTENER_APPLICATION_NAME}'"
            ),
        )
        .await?;
        if found > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the server's auth listener never listened".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(url: &str) -> Result<(), Error> {
    let seconds = bench_seconds();
    let settings = api_settings(url, "16", &[])?;
    let (pool, services) = prepare(&settings, 4).await?;
    let (owner, workspace) = register_owner(&services, "bench@example.com").await?;
    // Unlimited executions: the bench measures the run path, not the plan's quota.
    services.billing.change_plan(&owner, "enterprise").await?;
    let definition = serde_json::from_value(serde_json::json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "set", "type": "data.set", "name": "Set", "params": {"values": {"seen": true}}}
        ],
        "connections": [{"from": "start", "to": "set"}]
    }))?;
    let workflow = services
        .workflows
        .create(
            &owner,
            CreateWorkflow {
                name: "Read by the bench".into(),
                description: Some("GET /api/workflows/{id}".into()),
                definition: Some(definition),
                error_workflow_id: None,
            },
        )
        .await?;
    services
        .workflows
        .set_active(&owner, workflow.id, None, Some(1))
        .await?;

    let app = Application::build(&settings)?.without_workers();
    let address: SocketAddr = ([127, 0, 0, 1], app.port()).into();
    let server = common::Serving::start(app);
    let client = reqwest::Client::new();
    let access = login(&client, &format!("http://{address}"), "bench@example.com").await?;
    await_listener(&pool).await?;

    let bearer = format!("authorization: Bearer {access}\r\n");
    let in_workspace = format!("{bearer}x-workspace-id: {workspace}\r\n");
    let requests = [
        Request {
            name: "workflow_jwt",
            method: "GET",
            path: format!("/api/workflows/{}", workflow.id),
            headers: in_workspace.clone(),
            body: b"",
        },
        Request {
            name: "me_jwt",
            method: "GET",
            path: "/api/auth/me".to_owned(),
            headers: bearer.clone(),
            body: b"",
        },
        Request {
            name: "run_jwt",
            method: "POST",
            path: format!("/api/workflows/{}/run", workflow.id),
            headers: format!("{in_workspace}content-type: application/json\r\n"),
            body: br#"{"payload":{"order":42}}"#,
        },
    ];
    for request in &requests {
        let mut connection = http1::Connection::open(address).await?;
        let status = connection
            .send(
                request.method,
                &request.path,
                &request.headers,
                request.body,
            )
            .await?;
        if !(200..300).contains(&status) {
            return Err(format!("{} {} answered {status}", request.method, request.path).into());
        }
    }

    println!(
        "reads bench: GET /api/workflows/{{id}}, GET /api/auth/me and POST /api/workflows/{{id}}/run with a JWT, warm caches, {CONNECTIONS} connections, {seconds} s each"
    );
    // Warm all (connections, prepared statements, caches), then two rounds in mirrored
    // order.
    let mut warm = Side::default();
    for request in &requests {
        fire(address, request, Duration::from_secs(1), &mut warm).await?;
    }
    let half = Duration::from_millis(seconds * 500);
    let mut sides = [Side::default(), Side::default(), Side::default()];
    for index in [0, 1, 2, 2, 1, 0] {
        fire(address, &requests[index], half, &mut sides[index]).await?;
    }
    server.stop().await?;

    for (request, side) in requests.iter().zip(sides.iter_mut()) {
        side.latencies.sort();
        let name = request.name;
        println!(
            "  {:<4} {:<50} {:>8.0} requests/s   p50 {:>6.2} ms   p99 {:>6.2} ms   not 2xx: {}",
            request.method,
            request.path,
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
    common::print_peak_memory();
    Ok(())
}
