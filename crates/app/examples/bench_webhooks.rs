//! `cargo xtask bench webhooks`: fires signed ~1 KB WhatsApp deliveries at the intake
//! over 64 connections, first with the API alone (`serve --no-workers`), then with
//! workers on. Prints requests/s, p50/p99 latency and where the CPU went; beside them the
//! rate of the intake's statement run directly against the pool, one delivery per
//! statement (as pgbench would), and grouped as the intake's writer groups them, with
//! the ratios; with workers on, the executions finished per second and whether any
//! accepted event lacks its execution. Last, the steady state: deliveries offered at a
//! fixed rate (`BENCH_STEADY_RATE`, default 2,500/s) for `BENCH_STEADY_SECONDS` (default
//! 60) with workers on at the default `WORKERS`, printing the rate accepted, the rate
//! executed and the backlog (runs queued or running) at the start and the end. The
//! rates are repeated as `RESULT key=value` lines for `cargo xtask bench`. Asserts
//! nothing. Needs `DATABASE_URL` naming a server where it may create a database.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use fluxolab_app::Application;
use fluxolab_webhooks::model::NewRegistration;
use fluxolab_webhooks::ports::{EventStore, NewEvent, Recording};
use fluxolab_workflows::service::CreateWorkflow;
use fluxolab_workflows::start::DeliveryRun;

/// Deliveries per measured run.
const DELIVERIES: usize = 20_000;
/// Concurrent connections firing them.
const CONNECTIONS: usize = 64;
/// Deliveries sent before each HTTP phase's measured run (not measured).
const WARM_UP: usize = 1_000;
/// Distinct WhatsApp contacts the messages come from.
const CONTACTS: usize = 1_000;
const SECRET: &str = "bench-meta-app-secret";

#[path = "bench_support/common.rs"]
mod common;
#[path = "bench_webhooks/http1.rs"]
mod http1;

use common::{Error, Side, Tally, api_settings, count, percentile, prepare, register_owner};

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::in_scratch_database(|url| async move { run(&url).await }).await
}

/// What the intake would store for delivery `index` of `run_id`.
fn recording(
    registration: &fluxolab_webhooks::model::Registration,
    run_id: &str,
    index: usize,
) -> Result<Recording, Error> {
    let (body, _) = delivery(run_id, index);
    let event = NewEvent::received(
        registration.workspace_id,
        registration.id,
        body,
        serde_json::json!({"content-type": "application/json"}),
    );
    let extracted = event
        .payload
        .as_ref()
        .map(fluxolab_webhooks::whatsapp::extract)
        .ok_or("the delivery is not JSON")?;
    Ok(Recording::new(event, extracted, DeliveryRun::webhook()))
}

/// A ~1 KB WhatsApp text-message delivery with a unique message id, and its signature.
fn delivery(run: &str, index: usize) -> (Vec<u8>, String) {
    let padding = "x".repeat(560);
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Contact {contact}"}},"wa_id":"55119{contact:08}"}}],"messages":[{{"from":"55119{contact:08}","id":"wamid.{run}.{index}","timestamp":"1764072000","type":"text","text":{{"body":"Pedido {index}: {padding}"}}}}]}}}}]}}]}}"#,
        contact = index % CONTACTS,
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let signature = format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body.as_bytes()).as_ref())
    );
    (body.into_bytes(), signature)
}

/// Where the CPU went between two [`common::cpu_ticks`] readings of this process, as
/// cores busy on average.
fn cpu_split(
    before: Option<common::CpuTicks>,
    after: Option<common::CpuTicks>,
    seconds: f64,
) -> String {
    match (before, after) {
        (Some(before), Some(after)) => {
            let (busy, own) = after.since(before, seconds);
            format!(
                "cores busy {busy:.2}: this process (load generator + server) {own:.2}, the rest (PostgreSQL) {:.2}",
                busy - own
            )
        }
        _ => "cores busy: unknown".to_owned(),
    }
}

/// [`CONNECTIONS`] connections to the intake at `url`, and the path to post to.
async fn connect(url: &str) -> Result<(Arc<str>, Vec<http1::Connection>), Error> {
    let url = url::Url::parse(url)?;
    let address = url
        .socket_addrs(|| None)?
        .into_iter()
        .next()
        .ok_or("the intake URL names no address")?;
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        connections.push(http1::Connection::open(address).await?);
    }
    Ok((url.path().into(), connections))
}

/// What the connections' tasks measured since `started`: the rate answered, the sorted
/// latencies and how many were not answered 200.
async fn tallied(
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
    started: tokio::time::Instant,
) -> Result<(f64, Vec<Duration>, usize), Error> {
    let mut side = Side::default();
    for task in tasks {
        side.add(task.await?);
    }
    side.seconds = started.elapsed().as_secs_f64();
    side.latencies.sort();
    Ok((side.rate(), side.latencies, side.failures))
}

/// Fires every delivery at `url` over [`CONNECTIONS`] connections; the rate, the
/// sorted latencies and how many were not answered 200.
async fn fire(
    url: &str,
    deliveries: Vec<(Vec<u8>, String)>,
) -> Result<(f64, Vec<Duration>, usize), Error> {
    let (path, connections) = connect(url).await?;
    let deliveries = Arc::new(deliveries);
    let next = Arc::new(AtomicUsize::new(0));
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for mut connection in connections {
        let (deliveries, next, path) = (deliveries.clone(), next.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, signature)) = deliveries.get(index) else {
                    break;
                };
                let sent = Instant::now();
                let answer = connection
                    .send(
                        "POST",
                        &path,
                        &format!(
                            "content-type: application/json\r\nx-hub-signature-256: {signature}\r\n"
                        ),
                        body,
                    )
                    .await;
                // A broken connection stops its task; the others take the rest.
                if !tally.record(sent, answer.ok()) {
                    break;
                }
            }
            tally
        }));
    }
    tallied(tasks, started).await
}

/// Offers deliveries of `run_id` at `rate` a second for `duration` over [`CONNECTIONS`]
/// connections (each keeps its share of the schedule; a connection behind it sends at
/// once until it has caught up); the rate answered, the sorted latencies and how many
/// were not answered 200.
async fn fire_paced(
    url: &str,
    run_id: &'static str,
    rate: f64,
    duration: Duration,
) -> Result<(f64, Vec<Duration>, usize), Error> {
    let (path, connections) = connect(url).await?;
    let started = tokio::time::Instant::now();
    let deadline = started + duration;
    let interval = Duration::from_secs_f64(CONNECTIONS as f64 / rate);
    let mut tasks = Vec::new();
    for (lane, mut connection) in connections.into_iter().enumerate() {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut due = started + interval.mul_f64(lane as f64 / CONNECTIONS as f64);
            let mut index = lane;
            while due < deadline {
                tokio::time::sleep_until(due).await;
                let (body, signature) = delivery(run_id, index);
                let sent = Instant::now();
                let answer = connection
                    .send(
                        "POST",
                        &path,
                        &format!(
                            "content-type: application/json\r\nx-hub-signature-256: {signature}\r\n"
                        ),
                        &body,
                    )
                    .await;
                if !tally.record(sent, answer.ok()) {
                    break;
                }
                due += interval;
                index += CONNECTIONS;
            }
            tally
        }));
    }
    tallied(tasks, started).await
}

/// Empties what the last phase stored (no backlog of queued executions from it) and
/// checkpoints (no dirty pages or WAL of it left to flush), so each phase starts alike.
async fn start_empty(pool: &fluxolab_postgres::DbPool) -> Result<(), Error> {
    let mut connection = pool.get().await?;
    diesel::sql_query(
        "TRUNCATE executions, webhook_events, webhook_dedupe_keys, messages, conversations CASCADE",
    )
    .execute(&mut connection)
    .await?;
    if let Err(error) = diesel::sql_query("CHECKPOINT")
        .execute(&mut connection)
        .await
    {
        println!("  (no checkpoint before this phase: {error})");
    }
    Ok(())
}

/// Runs queued or running now.
async fn backlog(pool: &fluxolab_postgres::DbPool) -> Result<i64, Error> {
    count(
        pool,
        "SELECT count(*) AS count FROM executions WHERE status IN ('queued', 'running')",
    )
    .await
}

/// Waits (up to `patience`) until no execution is queued or running; how many still are.
async fn unfinished_executions(
    pool: &fluxolab_postgres::DbPool,
    patience: Duration,
) -> Result<i64, Error> {
    let deadline = Instant::now() + patience;
    loop {
        let unfinished = backlog(pool).await?;
        if unfinished == 0 || Instant::now() > deadline {
            return Ok(unfinished);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn succeeded_executions(pool: &fluxolab_postgres::DbPool) -> Result<i64, Error> {
    count(
        pool,
        "SELECT count(*) AS count FROM executions WHERE status = 'succeeded'",
    )
    .await
}

async fn run(url: &str) -> Result<(), Error> {
    // BENCH_POOL_SIZE tries other pool sizes (fewer backends can beat more on few
    // cores); BENCH_PHASES (direct,grouped,alone,workers) runs some phases.
    let settings = |workers: bool| {
        let extra: &[(&str, &str)] = if workers { &[("WORKERS", "16")] } else { &[] };
        api_settings(url, "48", extra)
    };
    let (pool, services) = prepare(&settings(false)?, 64).await?;
    let (owner, _) = register_owner(&services, "bench@example.com").await?;
    // Unlimited executions and webhook rate: the bench measures the intake, not the plan.
    services.billing.change_plan(&owner, "enterprise").await?;
    let definition = serde_json::from_value(serde_json::json!({
        "nodes": [
            {"id": "in", "type": "trigger.webhook", "name": "In"},
            {"id": "read", "type": "data.set", "name": "Read", "params": {"values": {
                "text": "{{ trigger.body.entry[0].changes[0].value.messages[0].text.body }}"
            }}}
        ],
        "connections": [{"from": "in", "to": "read"}]
    }))?;
    let workflow = services
        .workflows
        .create(
            &owner,
            CreateWorkflow {
                name: "Inbox".into(),
                description: None,
                definition: Some(definition),
                error_workflow_id: None,
            },
        )
        .await?;
    services
        .workflows
        .set_active(&owner, workflow.id, None, Some(1))
        .await?;
    let registration = services
        .webhooks
        .create(
            &owner,
            NewRegistration {
                name: "Bench".into(),
                provider: "meta".into(),
                workflow_id: Some(workflow.id),
                signing_secret: Some(SECRET.into()),
                ..NewRegistration::default()
            },
        )
        .await?
        .registration;
    println!(
        "webhooks bench: {DELIVERIES} signed ~1 KB WhatsApp deliveries per run ({WARM_UP} more before each HTTP run, not measured), {CONNECTIONS} connections, {CONTACTS} contacts"
    );

    // The baselines: the intake's statement run straight against the pool, first one
    // delivery per statement (as pgbench would drive it), then through the intake's
    // group-commit writer.
    let store = Arc::new(fluxolab_postgres::webhooks::PgWebhooks::new(pool.clone()));
    let phases = std::env::var("BENCH_PHASES").unwrap_or_default();
    let wanted = |phase: &str| phases.is_empty() || phases.split(',').any(|p| p == phase);
    let mut direct_rates = Vec::new();
    for (run_id, grouped) in [("direct", false), ("grouped", true)] {
        if !wanted(run_id) {
            direct_rates.push(f64::NAN);
            continue;
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            let (store, pool, next, registration) = (
                store.clone(),
                pool.clone(),
                next.clone(),
                registration.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= DELIVERIES {
                        break Ok::<(), Error>(());
                    }
                    let recording = recording(&registration, run_id, index)?;
                    if grouped {
                        store.record(recording).await?;
                    } else {
                        fluxolab_postgres::intake_batch::write_directly(&pool, &[recording])
                            .await?;
                    }
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        direct_rates.push(DELIVERIES as f64 / started.elapsed().as_secs_f64());
    }
    let (direct_rate, grouped_rate) = (direct_rates[0], direct_rates[1]);
    println!(
        "  direct statement        {direct_rate:>10.0} deliveries/s (event + execution + conversation + message, one statement per delivery)"
    );
    println!(
        "  direct, grouped         {grouped_rate:>10.0} deliveries/s (the same through the intake's group-commit writer, no HTTP)"
    );
    let mut results = vec![
        ("direct_deliveries_per_second", direct_rate),
        ("grouped_deliveries_per_second", grouped_rate),
    ];
    for (label, workers) in [
        ("intake alone (--no-workers)", false),
        ("with workers on", true),
    ] {
        if !wanted(if workers { "workers" } else { "alone" }) {
            continue;
        }
        start_empty(&pool).await?;
        let app = Application::build(&settings(workers)?)?;
        let app = if workers { app } else { app.without_workers() };
        let intake = format!(
            "http://127.0.0.1:{}/api/webhooks/in/{}",
            app.port(),
            registration.public_id
        );
        let server = common::Serving::start(app);
        let run_id = if workers { "workers" } else { "alone" };
        // Not measured: a running service has its caches filled, its connections open
        // and its statements prepared.
        let warm_up = (0..WARM_UP)
            .map(|i| delivery(&format!("{run_id}-warm-up"), i))
            .collect();
        fire(&intake, warm_up).await?;
        let finished_before = if workers {
            unfinished_executions(&pool, Duration::from_secs(60)).await?;
            succeeded_executions(&pool).await?
        } else {
            0
        };
        let deliveries: Vec<_> = (0..DELIVERIES).map(|i| delivery(run_id, i)).collect();
        let started = Instant::now();
        let cpu_before = common::cpu_ticks(&[std::process::id()]);
        let (rate, latencies, failures) = fire(&intake, deliveries).await?;
        let cpu = cpu_split(
            cpu_before,
            common::cpu_ticks(&[std::process::id()]),
            started.elapsed().as_secs_f64(),
        );
        println!("  {label}");
        println!(
            "    intake                {rate:>10.0} requests/s   p50 {:>6.2} ms   p99 {:>6.2} ms   non-200: {failures}",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
        println!(
            "    vs direct statement   {:>10.2} ×   vs direct, grouped {:>5.2} ×",
            rate / direct_rate,
            rate / grouped_rate
        );
        println!("    {cpu}");
        results.push(if workers {
            ("intake_with_workers_requests_per_second", rate)
        } else {
            ("intake_alone_requests_per_second", rate)
        });
        if workers {
            let unfinished = unfinished_executions(&pool, Duration::from_secs(300)).await?;
            let finished = succeeded_executions(&pool).await? - finished_before;
            let orphans = count(
                &pool,
                "SELECT count(*) AS count FROM webhook_events WHERE verdict = 'accepted' AND execution_id IS NULL",
            )
            .await?;
            println!(
                "    executions finished   {:>10.0} /s ({finished} in {:.1} s; {unfinished} unfinished)",
                finished as f64 / started.elapsed().as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            println!("    accepted events without their execution: {orphans}");
            results.push((
                "executions_with_workers_per_second",
                finished as f64 / started.elapsed().as_secs_f64(),
            ));
        }
        server.stop().await?;
    }
    if wanted("steady") {
        results.extend(steady(url, &pool, &registration).await?);
    }
    // For `cargo xtask bench`, which prints them as ratios of its pgbench reference.
    for (key, value) in results.into_iter().filter(|(_, value)| value.is_finite()) {
        println!("RESULT {key}={value:.1}");
    }
    common::print_peak_memory();
    Ok(())
}

/// The steady state: deliveries offered at a fixed rate with workers on at the default
/// `WORKERS`; what was accepted, what was executed, and the backlog before and after.
async fn steady(
    url: &str,
    pool: &fluxolab_postgres::DbPool,
    registration: &fluxolab_webhooks::model::Registration,
) -> Result<Vec<(&'static str, f64)>, Error> {
    let number = |name: &str, default: f64| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse::<f64>().ok())
            .filter(|value| *value > 0.0)
            .unwrap_or(default)
    };
    let rate = number("BENCH_STEADY_RATE", 2_500.0);
    let seconds = number("BENCH_STEADY_SECONDS", 60.0);
    start_empty(pool).await?;
    let app = Application::build(&api_settings(url, "48", &[])?)?;
    let intake = format!(
        "http://127.0.0.1:{}/api/webhooks/in/{}",
        app.port(),
        registration.public_id
    );
    let server = common::Serving::start(app);
    let warm_up = (0..WARM_UP)
        .map(|i| delivery("steady-warm-up", i))
        .collect();
    fire(&intake, warm_up).await?;
    unfinished_executions(pool, Duration::from_secs(60)).await?;
    let backlog_start = backlog(pool).await?;
    let executed_before = succeeded_executions(pool).await?;
    let started = Instant::now();
    let (accepted, latencies, failures) =
        fire_paced(&intake, "steady", rate, Duration::from_secs_f64(seconds)).await?;
    let window = started.elapsed().as_secs_f64();
    let executed = (succeeded_executions(pool).await? - executed_before) as f64 / window;
    let backlog_end = backlog(pool).await?;
    server.stop().await?;
    println!(
        "  steady state: {rate:.0} deliveries/s offered for {seconds:.0} s, workers on (default WORKERS)"
    );
    println!(
        "    accepted              {accepted:>10.0} requests/s   p50 {:>6.2} ms   p99 {:>6.2} ms   non-200: {failures}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!("    executed              {executed:>10.0} runs/s");
    println!(
        "    backlog (queued or running)   {backlog_start} at the start, {backlog_end} at the end ({})",
        if backlog_end <= backlog_start + (rate / 10.0) as i64 {
            "not growing"
        } else {
            "growing"
        }
    );
    Ok(vec![
        ("steady_accepted_per_second", accepted),
        ("steady_executed_per_second", executed),
        ("steady_accepted_p99_ms", percentile(&latencies, 0.99)),
        ("steady_backlog_start", backlog_start as f64),
        ("steady_backlog_end", backlog_end as f64),
    ])
}
