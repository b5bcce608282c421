//! Contract suites of the ports that start runs, written once against the ports
//! (`RunQueue`, `EventStore`) and run here against the Postgres adapter: a decided run
//! is stored exactly as decided, inside its unit or not at all; a delivery is judged
//! once, and only an accepted one queues its decided run, at the version deployed in
//! its registration's environment.

use diesel_async::SimpleAsyncConnection;
use fluxolab_kernel::{EnvironmentId, ExecutionId, UnitOfWorkFactory, WorkflowId, WorkspaceId};
use fluxolab_postgres::executions::PgExecutions;
use fluxolab_postgres::unit_of_work::PgUnits;
use fluxolab_postgres::webhooks::PgWebhooks;
use fluxolab_webhooks::model::{Verdict, WebhookRegistrationId};
use fluxolab_webhooks::ports::EventStore;
use fluxolab_workflows::execution::{ExecutionRepository, ExecutionStatus, TriggerKind};
use fluxolab_workflows::start::{QueuedRun, RunQueue};
use serde_json::json;
use uuid::Uuid;

use crate::TestResult;
use crate::intake_batch::{bound_registration, count, recording, resent};

const WORKSPACE: &str = "00000000-0000-7000-8000-000000000001";
const PRODUCTION: &str = "00000000-0000-7000-8000-000000000002";
const WORKFLOW: &str = "00000000-0000-7000-8000-000000000003";

/// A run of the fixture's workflow, decided as the start use case would.
fn decided(
    trigger_kind: TriggerKind,
    retry_of: Option<ExecutionId>,
) -> Result<QueuedRun, uuid::Error> {
    Ok(QueuedRun {
        id: ExecutionId::new(),
        workspace_id: WorkspaceId::from_uuid(Uuid::parse_str(WORKSPACE)?),
        workflow_id: WorkflowId::from_uuid(Uuid::parse_str(WORKFLOW)?),
        version: 1,
        environment_id: EnvironmentId::from_uuid(Uuid::parse_str(PRODUCTION)?),
        trigger_kind,
        input: json!({"from": "contract"}),
        retry_of,
        parent: None,
    })
}

/// `RunQueue`: a decided run is stored as decided and queued; inside a unit it exists
/// only once the unit commits.
async fn run_queue_contract(
    queue: &dyn RunQueue,
    units: &dyn UnitOfWorkFactory,
    executions: &dyn ExecutionRepository,
) -> TestResult {
    let run = decided(TriggerKind::Run, None)?;
    queue.queue(&run).await?;
    let stored = executions
        .find(run.workspace_id, run.id)
        .await?
        .ok_or("the queued run is not stored")?;
    assert_eq!(stored.status, ExecutionStatus::Queued);
    assert_eq!(
        (stored.workflow_id, stored.version, stored.environment.id),
        (run.workflow_id, run.version, run.environment_id)
    );
    assert_eq!(stored.trigger_kind, "run");
    assert_eq!(stored.input, run.input);
    assert_eq!(stored.retry_of, None);

    let retry = decided(TriggerKind::Retry, Some(run.id))?;
    let mut unit = units.begin().await?;
    queue.queue_in(unit.as_mut(), &retry).await?;
    drop(unit);
    assert!(
        executions
            .find(retry.workspace_id, retry.id)
            .await?
            .is_none(),
        "an uncommitted unit queues nothing"
    );
    let mut unit = units.begin().await?;
    queue.queue_in(unit.as_mut(), &retry).await?;
    unit.commit().await?;
    let stored = executions
        .find(retry.workspace_id, retry.id)
        .await?
        .ok_or("the committed run is not stored")?;
    assert_eq!(stored.retry_of, Some(run.id));
    assert_eq!(stored.trigger_kind, "retry");
    Ok(())
}

/// `EventStore`: the first delivery of a body is accepted with its decided run, a
/// repeat is a duplicate with none, and a delivery whose workflow is deployed nowhere
/// it runs is accepted without one.
async fn event_store_contract(
    store: &dyn EventStore,
    executions: &dyn ExecutionRepository,
    registration: WebhookRegistrationId,
    undeploy: impl AsyncFnOnce() -> TestResult,
) -> TestResult {
    let first = recording(registration, "wamid.C1", "5511900000001", "a");
    let run = first.run;
    let recorded = store.record(first.clone()).await?;
    assert_eq!(recorded.verdict, Verdict::Accepted);
    assert_eq!(recorded.execution_id, Some(run.id));
    let stored = executions
        .find(first.event.workspace_id, run.id)
        .await?
        .ok_or("the accepted delivery's run is not stored")?;
    assert_eq!(stored.trigger_kind, run.trigger_kind.code());
    assert_eq!(stored.version, 1, "the version deployed in production");
    assert_eq!(stored.status, ExecutionStatus::Queued);
    assert_eq!(
        stored.input,
        first
            .event
            .payload
            .clone()
            .ok_or("the delivery has a payload")?
    );

    let again = store.record(resent(&first)).await?;
    assert_eq!(again.verdict, Verdict::Duplicate);
    assert_eq!(again.execution_id, None);

    undeploy().await?;
    let later = recording(registration, "wamid.C2", "5511900000002", "b");
    let recorded = store.record(later).await?;
    assert_eq!(recorded.verdict, Verdict::Accepted);
    assert_eq!(recorded.execution_id, None, "nothing is deployed to run");
    Ok(())
}

#[tokio::test]
async fn the_postgres_run_queue_keeps_the_contract() -> TestResult {
    let (db, _) = bound_registration().await?;
    let executions = PgExecutions::new(db.pool().clone());
    run_queue_contract(&executions, &PgUnits::new(db.pool().clone()), &executions).await?;
    assert_eq!(
        count(&db, "SELECT count(*) AS count FROM executions").await?,
        2
    );
    Ok(())
}

#[tokio::test]
async fn the_postgres_event_store_keeps_the_contract() -> TestResult {
    let (db, registration) = bound_registration().await?;
    let store = PgWebhooks::new(db.pool().clone());
    let executions = PgExecutions::new(db.pool().clone());
    let undeploy = async || -> TestResult {
        db.pool()
            .get()
            .await?
            .batch_execute("DELETE FROM workflow_deployments")
            .await?;
        Ok(())
    };
    event_store_contract(&store, &executions, registration, undeploy).await?;
    assert_eq!(
        count(&db, "SELECT count(*) AS count FROM executions").await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn runs_queued_at_once_are_stored_together_and_a_bad_one_fails_alone() -> TestResult {
    let (db, _) = bound_registration().await?;
    let executions = PgExecutions::new(db.pool().clone());
    let mut runs = (0..40)
        .map(|_| decided(TriggerKind::Run, None))
        .collect::<Result<Vec<_>, _>>()?;
    // A run of a version that does not exist breaks a foreign key: its batch is refused.
    runs[7].version = 99;
    // A run without input keeps its JSON null.
    runs[3].input = serde_json::Value::Null;
    let queued = futures_util::future::join_all(runs.iter().map(|run| executions.queue(run))).await;
    for (index, outcome) in queued.iter().enumerate() {
        assert_eq!(outcome.is_ok(), index != 7, "run {index}: {outcome:?}");
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM executions WHERE status = 'queued'"
        )
        .await?,
        39
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM executions WHERE input = 'null'::jsonb"
        )
        .await?,
        1
    );
    Ok(())
}

/// The next notification on `listener`'s channel within `patience`: its payload.
async fn next_payload(
    listener: &mut diesel_async::AsyncPgConnection,
    patience: std::time::Duration,
) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> {
    use futures_util::StreamExt;
    let mut stream = std::pin::pin!(listener.notifications_stream());
    match tokio::time::timeout(patience, stream.next()).await {
        Ok(next) => Ok(Some(
            next.ok_or("the listener's connection ended")??.payload,
        )),
        Err(_) => Ok(None),
    }
}

#[tokio::test]
async fn a_queued_run_wakes_the_workers_once_it_is_committed() -> TestResult {
    use diesel_async::AsyncConnection;
    let (db, _) = bound_registration().await?;
    let executions = PgExecutions::new(db.pool().clone());
    let units = PgUnits::new(db.pool().clone());
    let mut listener = diesel_async::AsyncPgConnection::establish(db.url()).await?;
    listener.batch_execute("LISTEN fluxolab_executions").await?;
    let mut marker = diesel_async::AsyncPgConnection::establish(db.url()).await?;
    let patience = std::time::Duration::from_secs(10);

    // Inside a unit: nothing before the commit (a marker sent meanwhile comes first)…
    let run = decided(TriggerKind::Retry, None)?;
    let mut unit = units.begin().await?;
    executions.queue_in(unit.as_mut(), &run).await?;
    // Time for a wake-up sent too early (on its own task) to reach the listener first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    marker
        .batch_execute("NOTIFY fluxolab_executions, 'marker'")
        .await?;
    assert_eq!(
        next_payload(&mut listener, patience).await?.as_deref(),
        Some("marker"),
        "no wake-up before the run is committed"
    );
    // …and a wake-up once it is.
    unit.commit().await?;
    assert_eq!(
        next_payload(&mut listener, patience).await?.as_deref(),
        Some("")
    );

    // On its own: a wake-up after the run is stored.
    executions.queue(&decided(TriggerKind::Run, None)?).await?;
    assert_eq!(
        next_payload(&mut listener, patience).await?.as_deref(),
        Some("")
    );
    Ok(())
}
