//! `cargo xtask bench executions`: enqueues 50,000 runs of the three-node workflow into a
//! scratch database and lets this process's workers run them, every step persisted.
//! Prints executions per second and the p50/p99 time from due to finished, and the rate
//! again as a `RESULT key=value` line for `cargo xtask bench`. Asserts nothing. Needs
//! `DATABASE_URL` naming a server where it may create a database.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use fluxolab_app::Settings;
use fluxolab_app::workers::WorkerPool;
use fluxolab_kernel::{Actor, Principal, SystemClock, UserId, WorkspaceId};
use fluxolab_workflows::service::CreateWorkflow;
use fluxolab_workspace::Role;

const RUNS: i64 = 50_000;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(QueryableByName)]
struct Stats {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    done: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    p50: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    p99: Option<f64>,
}

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

async fn run(url: &str) -> Result<(), Error> {
    let migrate_url = url.to_owned();
    fluxolab_postgres::migrations::run_off_runtime(move || {
        fluxolab_postgres::migrations::run_pending(&migrate_url)
    })
    .await?;
    let settings = Settings::from_lookup(|variable| match variable {
        "DATABASE_URL" => Some(url.to_owned()),
        "APP_SECRET" => Some("bench-secret-bench-secret-bench-secret".to_owned()),
        _ => None,
    })?;
    let pool = fluxolab_app::startup::pool(&settings.database)?;
    fluxolab_postgres::seed::seed_reference_data(&mut *pool.get().await?).await?;
    // Observed as `fluxolab serve` observes its workers, so the figure includes metrics.
    let metrics = fluxolab_telemetry::MetricsRegistry::new();
    let services = fluxolab_app::startup::services(
        &pool,
        &settings,
        Arc::new(SystemClock),
        Arc::new(metrics.executions().clone()),
    )?;

    // A user and workspace as registration makes them, and the three-node workflow.
    let user = services
        .accounts
        .register(fluxolab_identity::Registration {
            email: "bench@example.com".into(),
            password: secrecy::SecretString::from("bench-password-123".to_owned()),
            display_name: "Bench".into(),
        })
        .await?;
    let workspace = user.default_workspace_id.ok_or("no workspace")?;
    let owner = Principal::new(
        Actor::User(UserId::from_uuid(user.id.as_uuid())),
        WorkspaceId::from_uuid(workspace.as_uuid()),
        Role::Owner.grants(),
    );
    let definition = serde_json::from_value(serde_json::json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"total": "{{ trigger.body.a + trigger.body.b }}"}}},
            {"id": "check", "type": "flow.if", "name": "Big?", "params": {"condition": "{{ nodes.shape.output.total > 10 }}"}}
        ],
        "connections": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "check"}]
    }))?;
    let workflow = services
        .workflows
        .create(
            &owner,
            CreateWorkflow {
                name: "Bench".into(),
                description: None,
                definition: Some(definition),
            },
        )
        .await?;

    let mut connection = pool.get().await?;
    diesel::sql_query(
        "INSERT INTO executions (id, workspace_id, workflow_id, version, environment_id, status, trigger_kind, input) \
         SELECT gen_random_uuid(), $1, $2, 1, e.id, 'queued', 'run', jsonb_build_object('a', n % 7, 'b', n % 11) \
         FROM generate_series(1, $3) AS n \
         JOIN workspace_environments e ON e.workspace_id = $1 AND e.is_default",
    )
    .bind::<diesel::sql_types::Uuid, _>(workspace.as_uuid())
    .bind::<diesel::sql_types::Uuid, _>(workflow.id.as_uuid())
    .bind::<diesel::sql_types::BigInt, _>(RUNS)
    .execute(&mut connection)
    .await?;
    drop(connection);

    let started = Instant::now();
    let workers = WorkerPool::start(
        services.executions.clone(),
        services.queue.clone(),
        settings.workers,
    );
    let stats = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats: Stats = diesel::sql_query(
            "SELECT count(*) AS done, \
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - due_at)) AS p50, \
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - due_at)) AS p99 \
             FROM executions WHERE status IN ('succeeded', 'failed')",
        )
        .get_result(&mut pool.get().await?)
        .await?;
        if stats.done >= RUNS || started.elapsed() > Duration::from_secs(600) {
            break stats;
        }
    };
    let elapsed = started.elapsed();
    workers.shutdown().await;
    let steps: Stats = diesel::sql_query(
        "SELECT count(*) AS done, NULL::float8 AS p50, NULL::float8 AS p99 FROM execution_steps",
    )
    .get_result(&mut pool.get().await?)
    .await?;
    println!(
        "executions bench: {RUNS} runs of trigger.manual → data.set → flow.if, {} worker slots and a pool of {} (the defaults), every step persisted",
        settings.workers.concurrency, settings.database.pool_size
    );
    println!(
        "  finished             {:>10} executions ({} steps) in {:.2} s",
        stats.done,
        steps.done,
        elapsed.as_secs_f64()
    );
    let rate = stats.done as f64 / elapsed.as_secs_f64();
    println!("  throughput           {rate:>10.0} executions/s");
    println!(
        "  due → finished  p50  {:>10.1} ms",
        stats.p50.unwrap_or_default() * 1000.0
    );
    println!(
        "  due → finished  p99  {:>10.1} ms",
        stats.p99.unwrap_or_default() * 1000.0
    );
    println!("RESULT executions_per_second={rate:.1}");
    Ok(())
}
