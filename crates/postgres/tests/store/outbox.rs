//! The outbox's queue against Postgres: a destination is leased to one worker at a time
//! (`SKIP LOCKED`), its messages come oldest first, a failed head holds back the rest
//! until it is due again, and delivered messages are gone (nothing twice).

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use fluxolab_kernel::outbox::{OutboxMessageId, OutboxQueue};
use fluxolab_postgres::TestDb;
use fluxolab_postgres::outbox::PgOutbox;

use crate::TestResult;

const WORKSPACE: &str = "0190b000-0000-7000-8000-000000000001";

/// Three messages for destination `a` and one for `b`, written in that order.
async fn written(db: &TestDb) -> TestResult {
    let mut connection = AsyncPgConnection::establish(db.url()).await?;
    let message = |destination: &str, n: u8| {
        format!(
            "INSERT INTO outbox (id, workspace_id, destination, kind, payload) VALUES \
             (gen_random_uuid(), '{WORKSPACE}', '{destination}', 'usage_alert', '{{\"n\": {n}}}');"
        )
    };
    connection
        .batch_execute(&format!(
            "INSERT INTO workspaces (id, name, slug) VALUES ('{WORKSPACE}', 'W', 'w'); \
             INSERT INTO outbox_destinations (destination, workspace_id) VALUES \
               ('a', '{WORKSPACE}'), ('b', '{WORKSPACE}'); \
             {} {} {} {}",
            message("a", 1),
            message("b", 1),
            message("a", 2),
            message("a", 3),
        ))
        .await?;
    Ok(())
}

fn numbers(claimed: &fluxolab_kernel::outbox::Claimed) -> Vec<i64> {
    claimed
        .messages
        .iter()
        .filter_map(|pending| pending.message.payload["n"].as_i64())
        .collect()
}

#[tokio::test]
async fn destinations_are_leased_once_and_their_messages_come_in_order() -> TestResult {
    let db = TestDb::new().await?;
    written(&db).await?;
    let queue = PgOutbox::new(db.pool().clone());

    let mut claimed = queue.claim(10, 500).await?;
    claimed.sort_by(|x, y| x.destination.cmp(&y.destination));
    assert_eq!(claimed.len(), 2);
    assert_eq!(numbers(&claimed[0]), [1, 2, 3], "oldest first");
    assert_eq!(numbers(&claimed[1]), [1]);
    // Leased: another worker gets nothing until they are released.
    assert!(queue.claim(10, 500).await?.is_empty());

    // `a`'s head fails: `a` waits, whole, until it is due again; `b` is delivered.
    let head: Vec<OutboxMessageId> = vec![claimed[0].messages[0].message.id];
    queue
        .failed(&head, "503 Service Unavailable", Duration::from_secs(3600))
        .await?;
    let b: Vec<OutboxMessageId> = vec![claimed[1].messages[0].message.id];
    queue.delivered(&b).await?;
    queue.release("a").await?;
    queue.release("b").await?;
    assert!(
        queue.claim(10, 500).await?.is_empty(),
        "a failed head holds its destination back, and delivered messages are gone"
    );

    // Due again: the same order, the head's attempt counted.
    queue
        .failed(&head, "503 Service Unavailable", Duration::ZERO)
        .await?;
    let again = queue.claim(10, 2).await?;
    assert_eq!(again.len(), 1);
    assert_eq!(numbers(&again[0]), [1, 2], "at most the batch asked for");
    assert_eq!(again[0].messages[0].attempts, 2);
    Ok(())
}
