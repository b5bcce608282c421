//! The intake's group-commit writer: deliveries written together are each judged as if
//! alone, and a delivery that cannot be stored fails alone.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use fluxolab_kernel::{WebhookEventId, WorkspaceId};
use fluxolab_postgres::TestDb;
use fluxolab_postgres::intake_batch::write_directly;
use fluxolab_postgres::webhooks::PgWebhooks;
use fluxolab_webhooks::model::{Verdict, WebhookRegistrationId};
use fluxolab_webhooks::ports::{EventStore, NewEvent, Recording};
use fluxolab_webhooks::whatsapp;
use fluxolab_workflows::start::DeliveryRun;
use uuid::Uuid;

use crate::TestResult;

const WORKSPACE: &str = "00000000-0000-7000-8000-000000000001";
const REGISTRATION: &str = "00000000-0000-7000-8000-000000000004";

/// A test database holding a workspace with a workflow active in production, bound to
/// a `meta` registration; and that registration's id.
pub(crate) async fn bound_registration()
-> Result<(TestDb, WebhookRegistrationId), Box<dyn std::error::Error + Send + Sync>> {
    let db = TestDb::new().await?;
    let mut connection = db.pool().get().await?;
    connection
        .batch_execute(&format!(
            "INSERT INTO workspaces (id, name, slug) VALUES ('{WORKSPACE}', 'Batch', 'batch');
             INSERT INTO workspace_environments (id, workspace_id, name, is_default)
               VALUES ('00000000-0000-7000-8000-000000000002', '{WORKSPACE}', 'production', true);
             INSERT INTO workflows (id, workspace_id, name)
               VALUES ('00000000-0000-7000-8000-000000000003', '{WORKSPACE}', 'Inbox');
             INSERT INTO workflow_versions (workflow_id, workspace_id, version, definition, checksum)
               VALUES ('00000000-0000-7000-8000-000000000003', '{WORKSPACE}', 1, '{{}}', 'x');
             INSERT INTO workflow_deployments (workflow_id, environment_id, workspace_id, version)
               VALUES ('00000000-0000-7000-8000-000000000003', '00000000-0000-7000-8000-000000000002',
                       '{WORKSPACE}', 1);
             INSERT INTO webhook_registrations (id, workspace_id, name, provider, public_id,
                 workflow_id, environment_id)
               VALUES ('{REGISTRATION}', '{WORKSPACE}', 'Meta', 'meta', 'batch-public-id',
                       '00000000-0000-7000-8000-000000000003', '00000000-0000-7000-8000-000000000002');"
        ))
        .await?;
    drop(connection);
    Ok((
        db,
        WebhookRegistrationId::from_uuid(Uuid::parse_str(REGISTRATION)?),
    ))
}

/// A WhatsApp delivery of message `message_id` from contact `wa_id`; `variant` changes
/// the body without changing the message.
pub(crate) fn recording(
    registration: WebhookRegistrationId,
    message_id: &str,
    wa_id: &str,
    variant: &str,
) -> Recording {
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Ana"}},"wa_id":"{wa_id}"}}],"messages":[{{"from":"{wa_id}","id":"{message_id}","timestamp":"1764072000","type":"text","text":{{"body":"hello {variant}"}}}}]}}}}]}}]}}"#
    )
    .into_bytes();
    let event = NewEvent::received(
        WorkspaceId::from_uuid(Uuid::parse_str(WORKSPACE).expect("WORKSPACE is a uuid")),
        registration,
        body,
        serde_json::json!({"content-type": "application/json"}),
    );
    let extracted = event
        .payload
        .as_ref()
        .map(whatsapp::extract)
        .expect("a JSON body has a payload");
    Recording::new(event, extracted, DeliveryRun::webhook())
}

/// The same delivery received again: a new event, the same body.
pub(crate) fn resent(recording: &Recording) -> Recording {
    Recording::new(
        NewEvent {
            id: WebhookEventId::new(),
            ..recording.event.clone()
        },
        recording.extracted.clone(),
        DeliveryRun::webhook(),
    )
}

/// Events, executions, messages, and the messages the conversations count.
async fn stored(db: &TestDb) -> Result<[i64; 4], Box<dyn std::error::Error + Send + Sync>> {
    Ok([
        count(db, "SELECT count(*) AS count FROM webhook_events").await?,
        count(db, "SELECT count(*) AS count FROM executions").await?,
        count(db, "SELECT count(*) AS count FROM messages").await?,
        count(db, "SELECT sum(message_count) AS count FROM conversations").await?,
    ])
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

pub(crate) async fn count(
    db: &TestDb,
    sql: &str,
) -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
    let row: Count = diesel::sql_query(sql)
        .get_result(&mut db.pool().get().await?)
        .await?;
    Ok(row.count)
}

#[tokio::test]
async fn deliveries_in_one_statement_are_each_judged_as_if_alone() -> TestResult {
    let (db, registration) = bound_registration().await?;
    let first = recording(registration, "wamid.A", "5511900000001", "a");
    // The same delivery twice, the same message in another body, and a new message
    // from the same contact: one statement.
    let batch = vec![
        first.clone(),
        resent(&first),
        recording(registration, "wamid.A", "5511900000001", "resent"),
        recording(registration, "wamid.B", "5511900000001", "b"),
    ];
    let outcomes = write_directly(db.pool(), &batch).await?;
    let accepted: Vec<bool> = outcomes
        .iter()
        .map(|outcome| outcome.verdict == Verdict::Accepted)
        .collect();
    assert_eq!(
        accepted[..3].iter().filter(|accepted| **accepted).count(),
        1,
        "message A is accepted once: {outcomes:?}"
    );
    assert!(accepted[3], "message B is new: {outcomes:?}");
    for outcome in &outcomes {
        assert_eq!(
            outcome.execution_id.is_some(),
            outcome.verdict == Verdict::Accepted,
            "only accepted deliveries run: {outcome:?}"
        );
    }
    assert_eq!(stored(&db).await?, [4, 2, 2, 2]);
    assert_eq!(
        count(&db, "SELECT count(*) AS count FROM conversations").await?,
        1
    );

    // Meta retries all of them later: nothing new.
    let again = write_directly(db.pool(), &batch.iter().map(resent).collect::<Vec<_>>()).await?;
    assert!(
        again
            .iter()
            .all(|outcome| outcome.verdict == Verdict::Duplicate)
    );
    assert_eq!(stored(&db).await?, [8, 2, 2, 2]);
    Ok(())
}

#[tokio::test]
async fn concurrent_deliveries_share_writes_and_a_bad_one_fails_alone() -> TestResult {
    let (db, registration) = bound_registration().await?;
    let store = PgWebhooks::new(db.pool().clone());
    // A delivery for a registration that does not exist breaks any statement it is in.
    let mut recordings: Vec<Recording> = (0..40)
        .map(|index| {
            recording(
                registration,
                &format!("wamid.{index}"),
                &format!("55119{:08}", index % 7),
                "x",
            )
        })
        .collect();
    recordings.insert(
        20,
        recording(
            WebhookRegistrationId::new(),
            "wamid.orphan",
            "5511900000099",
            "x",
        ),
    );
    let outcomes =
        futures_util::future::join_all(recordings.into_iter().map(|r| store.record(r))).await;
    for (index, outcome) in outcomes.iter().enumerate() {
        match (index, outcome) {
            (20, outcome) => assert!(outcome.is_err(), "the orphan fails: {outcome:?}"),
            (_, Ok(recorded)) => assert_eq!(recorded.verdict, Verdict::Accepted),
            (_, Err(error)) => panic!("delivery {index} failed: {error}"),
        }
    }
    assert_eq!(stored(&db).await?, [40, 40, 40, 40]);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM webhook_dedupe_keys WHERE key LIKE 'message:wamid.orphan'"
        )
        .await?,
        0
    );
    Ok(())
}

/// Migration 13 dropped the foreign keys that repeat a cascade: deleting a registration
/// still takes its events and dedupe keys, and deleting a workspace everything else.
#[tokio::test]
async fn deleting_a_registration_or_a_workspace_deletes_what_the_intake_wrote() -> TestResult {
    let (db, registration) = bound_registration().await?;
    let batch = vec![
        recording(registration, "wamid.A", "5511900000001", "a"),
        recording(registration, "wamid.B", "5511900000002", "b"),
    ];
    write_directly(db.pool(), &batch).await?;
    assert_eq!(stored(&db).await?, [2, 2, 2, 2]);

    let mut connection = db.pool().get().await?;
    connection
        .batch_execute(&format!(
            "DELETE FROM webhook_registrations WHERE id = '{REGISTRATION}'"
        ))
        .await?;
    let keys = "SELECT count(*) AS count FROM webhook_dedupe_keys";
    assert_eq!(count(&db, keys).await?, 0);
    // The runs and the conversation stay with the workspace.
    assert_eq!(stored(&db).await?, [0, 2, 2, 2]);

    connection
        .batch_execute(&format!("DELETE FROM workspaces WHERE id = '{WORKSPACE}'"))
        .await?;
    let conversations = "SELECT count(*) AS count FROM conversations";
    assert_eq!(count(&db, conversations).await?, 0);
    assert_eq!(
        [
            count(&db, "SELECT count(*) AS count FROM executions").await?,
            count(&db, "SELECT count(*) AS count FROM messages").await?,
        ],
        [0, 0]
    );
    Ok(())
}
