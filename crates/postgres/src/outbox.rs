//! The outbox's queue: destinations leased with `SKIP LOCKED` on the database's clock,
//! their messages read oldest first (`seq`), removed once delivered.

use std::time::Duration;

use async_trait::async_trait;
use diesel::dsl::IntervalDsl;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Text};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::outbox::{
    Backlog, Claimed, Expired, OutboxKind, OutboxMessage, OutboxMessageId, OutboxQueue, Pending,
};
use fluxolab_kernel::{StorageError, WorkspaceId};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{outbox, outbox_destinations};
use crate::sql::now_tz;

crate::repository::pg_repository!(
    /// The outbox over the pool.
    PgOutbox
);

/// Two CTEs that enqueue one message per row of `$rows` (a CTE, with a filter if need
/// be, whose rows have a `workspace_id`), so that a fact and its delivery are written by
/// one statement: `<$name>_destinations` opens each message's destination
/// (`$destination`, an expression over the row) unless it is open, and
/// `<$name>_messages` appends the messages of kind `$kind` carrying `$payload`, due at
/// `$due`, in the order `$order` (their `seq`). Log events are the one other writer: a
/// log destination is opened with [`open_destination`] (closed with
/// [`close_destination`]) and triggers append its messages.
macro_rules! enqueue {
    (
        name: $name:literal,
        rows: $rows:literal,
        destination: $destination:literal,
        kind: $kind:literal,
        payload: $payload:literal,
        due: $due:literal,
        order: $order:literal $(,)?
    ) => {
        concat!(
            $name,
            "_destinations AS ( \
               INSERT INTO outbox_destinations (destination, workspace_id) \
               SELECT DISTINCT ",
            $destination,
            ", workspace_id FROM ",
            $rows,
            " ON CONFLICT (destination) DO NOTHING \
             ), ",
            $name,
            "_messages AS ( \
               INSERT INTO outbox (id, workspace_id, destination, kind, payload, next_attempt_at) \
               SELECT gen_random_uuid(), workspace_id, ",
            $destination,
            ", '",
            $kind,
            "', ",
            $payload,
            ", ",
            $due,
            " FROM ",
            $rows,
            " ORDER BY ",
            $order,
            " )"
        )
    };
}

pub(crate) use enqueue;

/// Opens the queue `destination` of `workspace`, in the unit of work that creates what it
/// delivers to.
pub(crate) async fn open_destination(
    connection: &mut diesel_async::AsyncPgConnection,
    destination: &str,
    workspace: WorkspaceId,
) -> Result<(), StorageError> {
    diesel::insert_into(outbox_destinations::table)
        .values((
            outbox_destinations::destination.eq(destination),
            outbox_destinations::workspace_id.eq(workspace.as_uuid()),
        ))
        .execute(connection)
        .await
        .map_err(storage)?;
    Ok(())
}

/// Closes the queue `destination`, dropping what waits in it, in the unit of work that
/// removes what it delivered to.
pub(crate) async fn close_destination(
    connection: &mut diesel_async::AsyncPgConnection,
    destination: &str,
) -> Result<(), StorageError> {
    diesel::delete(outbox::table.filter(outbox::destination.eq(destination)))
        .execute(&mut *connection)
        .await
        .map_err(storage)?;
    diesel::delete(outbox_destinations::table.find(destination))
        .execute(connection)
        .await
        .map_err(storage)?;
    Ok(())
}

/// A message row as the claim reads it.
#[derive(QueryableByName)]
#[diesel(table_name = outbox)]
struct MessageRow {
    id: Uuid,
    workspace_id: Uuid,
    destination: String,
    kind: String,
    payload: Value,
    attempts: i32,
    created_at: OffsetDateTime,
}

fn pending(row: MessageRow) -> Result<Pending, StorageError> {
    Ok(Pending {
        message: OutboxMessage {
            id: OutboxMessageId::from_uuid(row.id),
            workspace_id: WorkspaceId::from_uuid(row.workspace_id),
            destination: row.destination,
            kind: kind_of(&row.kind)?,
            payload: row.payload,
        },
        attempts: row.attempts,
        created_at: row.created_at,
    })
}

/// Leases free destinations whose oldest message is due.
const CLAIM_DESTINATIONS: &str = "\
UPDATE outbox_destinations SET locked_until = now() + interval '1 minute' \
WHERE destination IN ( \
  SELECT d.destination FROM outbox_destinations d \
  WHERE (d.locked_until IS NULL OR d.locked_until < now()) \
    AND (SELECT o.next_attempt_at FROM outbox o WHERE o.destination = d.destination \
         ORDER BY o.seq LIMIT 1) <= now() \
  LIMIT $1 FOR UPDATE SKIP LOCKED) \
RETURNING destination";

/// The due messages of leased destinations, each destination's oldest first, at most
/// `$2` per destination.
const DUE_MESSAGES: &str = "\
SELECT id, workspace_id, destination, kind, payload, attempts, created_at FROM ( \
  SELECT o.*, row_number() OVER (PARTITION BY o.destination ORDER BY o.seq) AS n \
  FROM outbox o WHERE o.destination = ANY($1) AND o.next_attempt_at <= now() \
) due WHERE n <= $2 ORDER BY destination, seq";

/// Drops what waited longer than the retention (`$1` milliseconds), counted per
/// destination.
const EXPIRE: &str = "\
WITH gone AS ( \
  DELETE FROM outbox WHERE created_at < now() - make_interval(secs => $1 / 1000.0) \
  RETURNING workspace_id, destination, kind) \
SELECT workspace_id, destination, kind, count(*) AS dropped FROM gone \
GROUP BY workspace_id, destination, kind ORDER BY destination";

#[derive(QueryableByName)]
struct ExpiredRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = Text)]
    destination: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    dropped: i64,
}

/// The backlog per kind, with the age of its oldest message on the database's clock.
const BACKLOG: &str = "\
SELECT kind, count(*) AS messages, \
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_seconds \
FROM outbox GROUP BY kind";

#[derive(QueryableByName)]
struct BacklogRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    messages: i64,
    #[diesel(sql_type = Double)]
    oldest_seconds: f64,
}

fn kind_of(code: &str) -> Result<OutboxKind, StorageError> {
    OutboxKind::from_code(code).ok_or_else(|| corrupt("stored outbox kind is not valid"))
}

#[derive(QueryableByName)]
struct DestinationRow {
    #[diesel(sql_type = Text)]
    destination: String,
}

fn uuids(ids: &[OutboxMessageId]) -> Vec<Uuid> {
    ids.iter().map(OutboxMessageId::as_uuid).collect()
}

#[async_trait]
impl OutboxQueue for PgOutbox {
    #[tracing::instrument(name = "db.outbox.claim", level = "debug", skip_all)]
    async fn claim(
        &self,
        destinations: i64,
        per_destination: i64,
    ) -> Result<Vec<Claimed>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: an UPDATE of a FOR UPDATE SKIP LOCKED subselect, with a database-clock lease.
        let leased: Vec<DestinationRow> = diesel::sql_query(CLAIM_DESTINATIONS)
            .bind::<BigInt, _>(destinations)
            .load(&mut connection)
            .await
            .map_err(storage)?;
        if leased.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = leased.into_iter().map(|row| row.destination).collect();
        // Raw: a window function over the due messages.
        let rows: Vec<MessageRow> = diesel::sql_query(DUE_MESSAGES)
            .bind::<Array<Text>, _>(&names)
            .bind::<BigInt, _>(per_destination)
            .load(&mut connection)
            .await
            .map_err(storage)?;
        let mut claimed: Vec<Claimed> = names
            .into_iter()
            .map(|destination| Claimed {
                destination,
                messages: Vec::new(),
            })
            .collect();
        for row in rows {
            let message = pending(row)?;
            if let Some(destination) = claimed
                .iter_mut()
                .find(|claim| claim.destination == message.message.destination)
            {
                destination.messages.push(message);
            }
        }
        Ok(claimed)
    }

    #[tracing::instrument(name = "db.outbox.delivered", level = "debug", skip_all)]
    async fn delivered(&self, ids: &[OutboxMessageId]) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::delete(outbox::table.filter(outbox::id.eq_any(uuids(ids))))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.outbox.failed", level = "debug", skip_all)]
    async fn failed(
        &self,
        ids: &[OutboxMessageId],
        error: &str,
        retry_in: Duration,
    ) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // The due time on the database's clock, like the lease.
        let wait = i64::try_from(retry_in.as_millis())
            .unwrap_or(i64::MAX)
            .milliseconds();
        diesel::update(outbox::table.filter(outbox::id.eq_any(uuids(ids))))
            .set((
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::last_error.eq(error),
                outbox::next_attempt_at.eq(now_tz() + wait),
            ))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.outbox.release", level = "debug", skip_all)]
    async fn release(&self, destination: &str) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::update(outbox_destinations::table.find(destination))
            .set(outbox_destinations::locked_until.eq(None::<OffsetDateTime>))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.outbox.expire", level = "debug", skip_all)]
    async fn expire(&self, retention: Duration) -> Result<Vec<Expired>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: a DELETE … RETURNING counted per destination.
        let rows: Vec<ExpiredRow> = diesel::sql_query(EXPIRE)
            .bind::<BigInt, _>(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
            .load(&mut connection)
            .await
            .map_err(storage)?;
        rows.into_iter()
            .map(|row| {
                Ok(Expired {
                    workspace_id: WorkspaceId::from_uuid(row.workspace_id),
                    destination: row.destination,
                    kind: kind_of(&row.kind)?,
                    dropped: u64::try_from(row.dropped).unwrap_or_default(),
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "db.outbox.backlog", level = "debug", skip_all)]
    async fn backlog(&self) -> Result<Vec<Backlog>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: an aggregate with the database's clock.
        let rows: Vec<BacklogRow> = diesel::sql_query(BACKLOG)
            .load(&mut connection)
            .await
            .map_err(storage)?;
        rows.into_iter()
            .map(|row| {
                Ok(Backlog {
                    kind: kind_of(&row.kind)?,
                    messages: u64::try_from(row.messages).unwrap_or_default(),
                    oldest_seconds: row.oldest_seconds,
                })
            })
            .collect()
    }
}
