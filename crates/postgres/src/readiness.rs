//! Is the database reachable, and is its schema current?

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use crate::DbPool;

/// Why the service is not ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unreachable: {0}")]
    Unreachable(String),
    #[error("migrations have not been run")]
    NotMigrated,
    #[error("{count} pending migration(s), oldest {oldest}")]
    PendingMigrations { count: usize, oldest: String },
}

#[derive(QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Checks reachability and that every embedded migration is applied, with one query.
pub async fn check(pool: &DbPool, embedded_versions: &[String]) -> Result<(), NotReady> {
    let mut connection = pool
        .get()
        .await
        .map_err(|error| NotReady::Unreachable(error.to_string()))?;
    let applied: Vec<AppliedVersion> =
        // Raw: diesel's own bookkeeping table, kept out of the generated schema.
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load(&mut connection)
            .await
            .map_err(|error| match error {
                diesel::result::Error::DatabaseError(_, ref info)
                    if info.message().contains("does not exist") =>
                {
                    NotReady::NotMigrated
                }
                other => NotReady::Unreachable(other.to_string()),
            })?;
    let mut pending = embedded_versions
        .iter()
        .filter(|version| !applied.iter().any(|row| &row.version == *version));
    match pending.next() {
        None => Ok(()),
        Some(oldest) => Err(NotReady::PendingMigrations {
            count: 1 + pending.count(),
            oldest: oldest.clone(),
        }),
    }
}

#[derive(QueryableByName)]
struct QueueRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    queued: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    running: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    lag: f64,
}

#[derive(QueryableByName)]
struct WorkspaceQueueRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    workspace_id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    depth: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    oldest: f64,
}

/// Queued and running executions, the age of the oldest due one (seconds), and the
/// five workspaces with the most due runs (id, depth, age of their oldest); reads only
/// the queue's partial indexes' rows.
pub async fn queue_status(
    pool: &DbPool,
) -> Result<(i64, i64, f64, Vec<(uuid::Uuid, i64, f64)>), crate::StoreError> {
    let mut connection = pool.get().await?;
    // Raw: aggregates with FILTER and an epoch extraction, beyond the query builder.
    let row: QueueRow = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE status = 'queued') AS queued, \
                count(*) FILTER (WHERE status = 'running') AS running, \
                coalesce(extract(epoch FROM now() - min(due_at) FILTER (WHERE status = 'queued' AND due_at <= now())), 0)::float8 AS lag \
         FROM executions WHERE status IN ('queued', 'running')",
    )
    .get_result(&mut connection)
    .await?;
    // Raw: a grouped top-N with an epoch extraction.
    let busiest: Vec<WorkspaceQueueRow> = diesel::sql_query(
        "SELECT workspace_id, count(*) AS depth, \
                extract(epoch FROM now() - min(due_at))::float8 AS oldest \
         FROM executions WHERE status = 'queued' AND due_at <= now() \
         GROUP BY workspace_id ORDER BY depth DESC, workspace_id LIMIT 5",
    )
    .load(&mut connection)
    .await?;
    Ok((
        row.queued,
        row.running,
        row.lag,
        busiest
            .into_iter()
            .map(|row| (row.workspace_id, row.depth, row.oldest))
            .collect(),
    ))
}
