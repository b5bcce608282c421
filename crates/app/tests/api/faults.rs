//! Fault injection against worker processes (issue #18): one frozen past its lease and
//! resumed, one killed mid-effect, one stopped with runs longer than its drain. A local
//! receiver counts the effects of every run and checks, as each arrives, whether that
//! run's call step is already recorded.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use fluxolab_postgres::DbPool;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::TestResult;
use crate::helpers::{Account, Error, TestApp, poll, scalar, wait_until};

/// How long the receiver takes to answer: longer than the drain, so a stopped worker
/// has effects in flight.
const EFFECT_TAKES: Duration = Duration::from_millis(1500);
const RUNS: i64 = 600;
/// The workers' lease (`crate::queue::worker_process_with` sets 3 s).
const LEASE_SECONDS: u64 = 3;

/// One effect as the receiver saw it.
#[derive(Clone, Debug)]
struct Arrival {
    key: Option<String>,
    /// Whether the run's call step was already recorded when it arrived.
    after_record: bool,
}

#[derive(Default)]
struct Receiver {
    arrivals: Mutex<HashMap<Uuid, Vec<Arrival>>>,
}

async fn call_recorded(pool: &DbPool, execution: Uuid) -> Result<bool, Error> {
    let sql = format!(
        "SELECT count(*) AS count FROM execution_steps WHERE execution_id = '{execution}' AND node_id = 'call'"
    );
    Ok(scalar(pool, &sql).await? > 0)
}

/// Serves `GET /effect/{execution id}`: notes the arrival (and whether its step was
/// recorded already), then answers after [`EFFECT_TAKES`].
async fn receive(listener: TcpListener, pool: DbPool, seen: Arc<Receiver>) {
    while let Ok((mut socket, _)) = listener.accept().await {
        let (pool, seen) = (pool.clone(), seen.clone());
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buffer = [0_u8; 2048];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => request.extend_from_slice(&buffer[..read]),
                }
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let execution = text
                .split_whitespace()
                .nth(1)
                .and_then(|path| path.strip_prefix("/effect/"))
                .and_then(|id| id.parse::<Uuid>().ok());
            let key = text.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("idempotency-key")
                    .then(|| value.trim().to_owned())
            });
            if let Some(execution) = execution {
                let after_record = call_recorded(&pool, execution).await.unwrap_or(false);
                if let Ok(mut arrivals) = seen.arrivals.lock() {
                    arrivals
                        .entry(execution)
                        .or_default()
                        .push(Arrival { key, after_record });
                }
            }
            // The subject of the test: an effect slower than the workers' drain.
            tokio::time::sleep(EFFECT_TAKES).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}")
                .await;
        });
    }
}

/// `trigger.manual → flow.delay (100 ms) → http.request (the receiver) → data.set`.
async fn calling_workflow(app: &TestApp, owner: &Account, port: u16) -> Result<String, Error> {
    let definition = json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "wait", "type": "flow.delay", "name": "Wait", "params": {"milliseconds": 100}},
            {"id": "call", "type": "http.request", "name": "Call", "params": {
                "method": "GET", "url": format!("http://127.0.0.1:{port}/effect/{{{{ execution.id }}}}")}},
            {"id": "done", "type": "data.set", "name": "Done", "params": {"values": {"ok": true}}}
        ],
        "connections": [
            {"from": "start", "to": "wait"}, {"from": "wait", "to": "call"}, {"from": "call", "to": "done"}
        ]
    });
    Ok(app.active_workflow(owner, "Effects", &definition).await?.id)
}

fn worker(app: &TestApp) -> std::io::Result<Child> {
    crate::queue::worker_process_with(app, &[("WORKERS", "16"), ("SHUTDOWN_DRAIN_SECONDS", "1")])
}

fn signal(child: &Child, name: &str) -> std::io::Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()?;
    assert!(status.success(), "kill -{name} failed");
    Ok(())
}

/// Runs `child` holds now (its worker id starts with its pid).
async fn held_by(pool: &DbPool, child: &Child) -> Result<i64, Error> {
    scalar(
        pool,
        &format!(
            "SELECT count(*) AS count FROM executions WHERE status = 'running' AND locked_by LIKE '{}-%'",
            child.id()
        ),
    )
    .await
}

/// The ids `sql` selects, quoted for an `IN (…)` list (`'00000000-…'` when none).
async fn ids_of(pool: &DbPool, sql: &str) -> Result<Vec<String>, Error> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let rows: Vec<Id> = diesel::sql_query(sql).load(&mut pool.get().await?).await?;
    let mut ids: Vec<String> = rows.iter().map(|row| format!("'{}'", row.id)).collect();
    if ids.is_empty() {
        ids.push(format!("'{}'", Uuid::nil()));
    }
    Ok(ids)
}

const SUCCEEDED: &str = "SELECT count(*) AS count FROM executions WHERE status = 'succeeded'";

// The figures of the run are printed for the note (`--no-capture`).
#[allow(clippy::print_stdout)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_frozen_killed_or_stopped_repeats_no_recorded_effect() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("faults@example.com").await?;
    app.allow_internal_network().await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let seen = Arc::new(Receiver::default());
    tokio::spawn(receive(listener, app.db.pool().clone(), seen.clone()));
    let workflow = calling_workflow(&app, &owner, port).await?;
    app.enqueue(&owner, &workflow, RUNS).await?;
    let pool = app.db.pool().clone();

    let [frozen, mut killed, mut stopped, mut steady] =
        [worker(&app)?, worker(&app)?, worker(&app)?, worker(&app)?];
    wait_until(&pool, SUCCEEDED, 30, Duration::from_secs(60)).await?;

    // A stall past the lease: the others take its runs over; on waking it must stop.
    assert!(
        held_by(&pool, &frozen).await? > 0,
        "the frozen worker held no run"
    );
    signal(&frozen, "STOP")?;
    // The subject of the test: a process frozen past its lease, in real time (another
    // process's clock cannot be moved from here).
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS + 3)).await;
    signal(&frozen, "CONT")?;

    // Killed mid-effect: its runs wait out their lease, then resume elsewhere.
    signal(&killed, "KILL")?;
    let _ = killed.wait();

    // Stopped with runs longer than its drain: they are released, not left to expire.
    wait_until(&pool,
        &format!(
            "SELECT count(*) AS count FROM executions WHERE status = 'running' AND locked_by LIKE '{}-%'",
            stopped.id()
        ),
        1,
        Duration::from_secs(30),
    )
    .await?;
    signal(&stopped, "TERM")?;
    let draining = format!(
        "SELECT id FROM executions WHERE status = 'running' AND locked_by LIKE '{}-%'",
        stopped.id()
    );
    let draining = format!(
        "SELECT count(*) AS count FROM executions WHERE status = 'queued' AND id IN ({})",
        ids_of(&pool, &draining).await?.join(",")
    );
    let _ = stopped.wait();
    let exited = Instant::now();
    assert_eq!(
        held_by(&pool, &stopped).await?,
        0,
        "the runs still going after the drain were released at once"
    );
    // How long the released runs wait for another worker.
    poll(Duration::from_secs(60), || async {
        Ok((scalar(&pool, &draining).await? == 0).then_some(()))
    })
    .await?;
    let resumed_after = exited.elapsed();

    let done = wait_until(&pool, SUCCEEDED, RUNS, Duration::from_secs(180)).await?;
    let mut frozen = frozen;
    for child in [&mut frozen, &mut steady] {
        let _ = signal(child, "TERM");
        let _ = child.wait();
    }

    assert_eq!(done, RUNS, "every run ends succeeded");
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) AS count FROM executions WHERE status <> 'succeeded'"
        )
        .await?,
        0,
        "none stuck, failed or lost"
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) AS count FROM (SELECT execution_id, node_id FROM execution_steps \
             GROUP BY 1, 2 HAVING count(*) > 1) AS twice"
        )
        .await?,
        0,
        "no duplicated step row"
    );
    let arrivals = seen
        .arrivals
        .lock()
        .map(|arrivals| arrivals.clone())
        .map_err(|_| "receiver lock")?;
    let recorded_keys: Vec<(Uuid, Option<String>)> = {
        #[derive(QueryableByName)]
        struct Keyed {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            execution_id: Uuid,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            effect_key: Option<String>,
        }
        let rows: Vec<Keyed> = diesel::sql_query(
            "SELECT execution_id, effect_key FROM execution_steps WHERE node_id = 'call'",
        )
        .load(&mut pool.get().await?)
        .await?;
        rows.into_iter()
            .map(|row| (row.execution_id, row.effect_key))
            .collect()
    };
    assert_eq!(
        i64::try_from(recorded_keys.len())?,
        RUNS,
        "every run recorded its call"
    );
    let mut repeats = 0;
    let mut after_record = 0;
    for (execution, recorded) in &recorded_keys {
        let expected = Uuid::new_v5(execution, b"call").to_string();
        assert_eq!(
            recorded.as_deref(),
            Some(expected.as_str()),
            "the step records its key"
        );
        let effects = arrivals
            .get(execution)
            .ok_or("a recorded call never arrived")?;
        for arrival in effects {
            assert_eq!(
                arrival.key.as_deref(),
                Some(expected.as_str()),
                "every attempt carries the same key"
            );
        }
        repeats += effects.len() - 1;
        after_record += effects
            .iter()
            .filter(|arrival| arrival.after_record)
            .count();
    }
    println!(
        "RESULT runs={RUNS} effects={} repeats_in_flight={repeats} repeats_after_record={after_record} \
         released_runs_resumed_within_s={:.2}",
        arrivals.values().map(Vec::len).sum::<usize>(),
        resumed_after.as_secs_f64()
    );
    assert_eq!(
        after_record, 0,
        "no effect was sent after its step was recorded"
    );
    Ok(())
}
