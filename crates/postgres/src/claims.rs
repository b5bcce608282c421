//! The claim statement: which due runs a worker takes, fairly between workspaces, and
//! the claimed rows themselves, in one round trip.

use std::sync::OnceLock;

use diesel::QueryableByName;
use diesel::sql_types::{
    BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::StorageError;
use fluxolab_workflows::execution::RunDefaults;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::storage;
use crate::sql::Prepared;

/// The most runs one claim statement takes; a worker with more free slots claims again.
/// It bounds the claim statements a connection keeps prepared ([`fair_claim`]).
pub(crate) const MOST_CLAIMED_AT_ONCE: i64 = 64;

/// A row the claim returns: a run it took (its lease token, the defaults it was queued
/// with, and the execution as [`crate::executions`] reads it), or one it ended
/// `failed` because its last lease ran out (`abandoned`).
#[derive(QueryableByName)]
pub(crate) struct ClaimedRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub lease_token: i64,
    #[diesel(sql_type = Nullable<Integer>)]
    timeout_seconds: Option<i32>,
    #[diesel(sql_type = Bool)]
    save_successful_steps: bool,
    /// Started by an earlier claim: it may have steps to resume after.
    #[diesel(sql_type = Bool)]
    pub started: bool,
    /// Not claimed: ended `failed` by the claim (its last lease ran out).
    #[diesel(sql_type = Bool)]
    pub abandoned: bool,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workflow_id: Uuid,
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    trigger_kind: String,
    #[diesel(sql_type = Jsonb)]
    input: Value,
    #[diesel(sql_type = Nullable<Jsonb>)]
    output: Option<Value>,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Integer)]
    max_attempts: i32,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    retry_of: Option<Uuid>,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    started_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    finished_at: Option<OffsetDateTime>,
    #[diesel(sql_type = SqlUuid)]
    environment_id: Uuid,
    #[diesel(sql_type = Text)]
    environment_name: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    parent_execution_id: Option<Uuid>,
}

impl ClaimedRow {
    /// The defaults the run was queued with.
    pub fn defaults(&self) -> RunDefaults {
        RunDefaults {
            // The column holds only positive values (a check constraint).
            timeout_seconds: self
                .timeout_seconds
                .and_then(|seconds| u32::try_from(seconds).ok()),
            save_successful_steps: self.save_successful_steps,
        }
    }

    /// The workflow version the run pins.
    pub fn pinned(&self) -> (Uuid, i32) {
        (self.workflow_id, self.version)
    }

    /// The execution's columns, in the order of [`crate::executions`]' rows.
    pub fn into_execution_row(self) -> crate::executions::ExecutionRow {
        (
            self.id,
            self.workspace_id,
            self.workflow_id,
            self.version,
            self.status,
            self.trigger_kind,
            self.input,
            self.output,
            self.error,
            self.attempt,
            self.max_attempts,
            self.retry_of,
            self.created_at,
            self.started_at,
            self.finished_at,
            self.environment_id,
            self.environment_name,
            self.parent_execution_id,
        )
    }
}

/// Runs the claim for `worker`: at most `limit` runs (clamped to
/// [`MOST_CLAIMED_AT_ONCE`], and above [`EXACT_LIMITS_UP_TO`] rounded down to a multiple
/// of it: see [`statement_limit`]), each leased for `lease_seconds`. A worker left with
/// free slots claims again.
pub(crate) async fn claim_rows(
    connection: &mut AsyncPgConnection,
    worker: &str,
    limit: i64,
    lease_seconds: i64,
) -> Result<Vec<ClaimedRow>, StorageError> {
    // Raw: a FOR UPDATE SKIP LOCKED claim over data-modifying CTEs and a set-returning
    // function, leased on the database clock.
    Prepared::new(claim_statement(limit))
        .bind::<Text, _>(worker)
        .bind::<diesel::sql_types::Double, _>(lease_seconds as f64)
        .load::<ClaimedRow>(connection)
        .await
        .map_err(storage)
}

/// Claims of up to this many runs take exactly what they ask; larger ones a multiple of it.
const EXACT_LIMITS_UP_TO: i64 = 8;

/// The limit a claim of `limit` runs is written for: `limit` itself up to
/// [`EXACT_LIMITS_UP_TO`], else rounded down to a multiple of it (never above
/// [`MOST_CLAIMED_AT_ONCE`]). Each limit is its own prepared statement, planned afresh
/// a few times on every connection before PostgreSQL settles on its generic plan; with a
/// statement for each of the 64 limits most claims of a short bench were planned
/// (`pg_stat_statements`: 4,377 plans for 5,463 claims, 1.4 ms each, in the webhook
/// bench's steady state). Rounding leaves 15.
fn statement_limit(limit: i64) -> i64 {
    let limit = limit.clamp(1, MOST_CLAIMED_AT_ONCE);
    if limit <= EXACT_LIMITS_UP_TO {
        limit
    } else {
        limit - limit % EXACT_LIMITS_UP_TO
    }
}

/// The claim statement for [`statement_limit`]`(limit)` runs, written once per limit and
/// process.
fn claim_statement(limit: i64) -> &'static str {
    const LIMITS: usize = MOST_CLAIMED_AT_ONCE as usize;
    static STATEMENTS: [OnceLock<String>; LIMITS] = [const { OnceLock::new() }; LIMITS];
    let limit = statement_limit(limit);
    let slot = usize::try_from(limit - 1).unwrap_or_default();
    STATEMENTS[slot].get_or_init(|| fair_claim(limit))
}

/// The execution columns both kinds of claimed row return, from the run `alias` and its
/// environment `w` (see [`ClaimedRow`]).
fn execution_columns(alias: &str) -> String {
    [
        "workspace_id",
        "workflow_id",
        "version",
        "status",
        "trigger_kind",
        "input",
        "output",
        "error",
        "attempt",
        "max_attempts",
        "retry_of",
        "created_at",
        "started_at",
        "finished_at",
        "environment_id",
        "parent_execution_id",
    ]
    .iter()
    .map(|column| format!("{alias}.{column}"))
    .chain(std::iter::once("w.name AS environment_name".to_owned()))
    .collect::<Vec<_>>()
    .join(", ")
}

/// The claim, fair between workspaces, in one statement. First, nothing stays running
/// forever: a run whose lease ended after its last attempt fails (`abandoned`, the
/// oldest leases first), and joins its workflow's failure notice
/// ([`crate::notifications::note_failures`]). Then, in
/// priority order, it takes: runs whose lease ended with attempts left (their worker
/// died); runs started before and back in the queue (released by a worker shutting
/// down, due again after a long delay or a retry's backoff), so work under way finishes
/// before new work starts; then new work from `claimable_runs` (migration
/// `000035_claimable_runs`): an equal share of the claim for each workspace with due work,
/// its oldest runs first (a skip scan over `executions_workspace_due_idx` finds the
/// workspaces, one index probe each, so a workspace with 50,000 queued runs costs what one
/// with a single run does), ranked so that a claim cut short takes every workspace's
/// first run before anyone's second; then the oldest due runs of anyone fill what the
/// shares left. A quiet workspace's runs are thus taken by the next claim whatever
/// another's backlog, a workspace queueing many runs at once gets its share of every
/// claim rather than one run, and an idle machine still gives a busy workspace every
/// slot. That function is planned with bitmap scans off, so its ordered index scans stop
/// after `limit` rows even when the statistics are stale (right after a burst is
/// queued they say few runs are, and the planner otherwise scans and sorts every due run).
/// Every part is bounded by `limit`, so a claim costs the same with ten
/// or a million rows waiting; the parts that read `executions_lease_idx` take the oldest
/// leases first with a limit, which PostgreSQL plans as an ordered index scan: it skips
/// the entries finished runs left there once they are marked dead, where a bitmap scan
/// (the unbounded update this pass used to be) visited every one in the heap. Each run
/// says whether an earlier claim started it (`started`): only those can have steps to
/// resume after. The claimed rows come back whole, with their environment's name, so the
/// claim needs no second read.
///
/// The limit is written into the text, not bound: PostgreSQL plans a bound `LIMIT` for
/// a tenth of the table, so its generic plan always looked dearer than a fresh one and
/// every claim was planned anew (~1 ms of planning for ~0.2 ms of execution, measured
/// with `pg_stat_statements.track_planning`). With the limit in the text, each limit's
/// statement is planned a few times per connection and then runs on its generic plan;
/// there are 15 of them ([`statement_limit`]). Bound: `$1` the worker, `$2` the
/// lease in seconds.
///
/// **Committed without waiting for the disk** (`synchronous_commit` off for its own
/// transaction, set inside the statement, so no extra round trip): a claim is not a
/// result anyone is told of, and the worker's first durable write for the run (a
/// checkpoint, its finish) flushes the WAL up to the claim too. If the database crashes
/// before then, the claim is lost and the run is claimed again as if it never had been;
/// the worker still running it then holds a token the row no longer has, because each
/// claim draws a **random** token (an incremented one would be handed out again, to the
/// next claimer, and let both write): its next write is fenced off. Half of a run's
/// waits on the WAL were the claim's commit.
fn fair_claim(limit: i64) -> String {
    format!(
        "WITH abandoned AS ( \
       UPDATE executions SET status = 'failed', finished_at = now(), locked_by = NULL, \
         locked_until = NULL, \
         error = format('abandoned after %s attempts (its worker stopped each time)', attempt) \
       WHERE id IN ( \
         SELECT id FROM executions \
         WHERE status = 'running' AND locked_until < now() AND attempt >= max_attempts \
         ORDER BY locked_until LIMIT {limit} FOR UPDATE SKIP LOCKED) \
       RETURNING * \
     ), failed AS ( \
       SELECT id, workspace_id, workflow_id, error, now() AS failed_at FROM abandoned \
     ), {notices}, expired AS ( \
       SELECT id, true AS started FROM executions \
       WHERE status = 'running' AND locked_until < now() AND attempt < max_attempts \
       ORDER BY locked_until LIMIT {limit} FOR UPDATE SKIP LOCKED \
     ), resumed AS ( \
       SELECT id, due_at, true AS started FROM executions \
       WHERE status = 'queued' AND started_at IS NOT NULL AND due_at <= now() \
       ORDER BY due_at LIMIT {limit} FOR UPDATE SKIP LOCKED \
     ), new_work AS ( \
       SELECT id, due_at, started, rank FROM claimable_runs({limit}) \
     ), due AS ( \
       SELECT id, bool_or(started) AS started FROM ( \
         SELECT id, 0 AS pass, NULL::bigint AS rank, now() AS due_at, started FROM expired \
         UNION ALL SELECT id, 1, NULL, due_at, started FROM resumed \
         UNION ALL SELECT id, CASE WHEN rank IS NULL THEN 3 ELSE 2 END, rank, due_at, started \
           FROM new_work \
       ) chosen GROUP BY id ORDER BY min(pass), min(rank), min(due_at) LIMIT {limit} \
     ), claimed AS ( \
       UPDATE executions e SET status = 'running', locked_by = $1, \
         locked_until = now() + make_interval(secs => $2), attempt = e.attempt + 1, \
         lease_token = floor(random() * 9.0e18)::bigint, \
         started_at = coalesce(e.started_at, now()) \
       FROM due WHERE e.id = due.id \
         AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off' \
       RETURNING e.*, due.started \
     ) \
     SELECT c.id, c.lease_token, c.timeout_seconds, c.save_successful_steps, c.started, \
       false AS abandoned, {claimed_columns} \
       FROM claimed c JOIN workspace_environments w ON w.id = c.environment_id \
     UNION ALL SELECT a.id, a.lease_token, a.timeout_seconds, a.save_successful_steps, \
       true, true, {abandoned_columns} \
       FROM abandoned a JOIN workspace_environments w ON w.id = a.environment_id",
        notices = crate::notifications::note_failures(),
        claimed_columns = execution_columns("c"),
        abandoned_columns = execution_columns("a"),
    )
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::Text;
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

    use super::claim_rows;
    use crate::test_db::TestDb;

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        value: String,
    }

    async fn synchronous_commit(
        connection: &mut diesel_async::AsyncPgConnection,
    ) -> Result<String, diesel::result::Error> {
        let setting: Setting =
            diesel::sql_query("SELECT current_setting('synchronous_commit') AS value")
                .get_result(connection)
                .await?;
        Ok(setting.value)
    }

    #[tokio::test]
    async fn a_claim_commits_without_waiting_for_the_disk_and_nothing_else_does()
    -> Result<(), Box<dyn std::error::Error>> {
        let db = TestDb::new().await?;
        let mut connection = db.pool().get().await?;
        // Durable for the session, whatever the test server's own setting.
        connection
            .batch_execute("SET synchronous_commit = on; BEGIN")
            .await?;
        claim_rows(&mut connection, "worker", 4, 30).await?;
        assert_eq!(synchronous_commit(&mut connection).await?, "off");
        connection.batch_execute("COMMIT").await?;
        assert_eq!(synchronous_commit(&mut connection).await?, "on");
        Ok(())
    }

    #[test]
    fn claims_are_written_for_fifteen_limits_none_above_what_was_asked() {
        let limits: std::collections::BTreeSet<i64> =
            (0..=100).map(super::statement_limit).collect();
        assert_eq!(limits.len(), 15);
        for asked in 1..=100 {
            let limit = super::statement_limit(asked);
            assert!((1..=asked.min(super::MOST_CLAIMED_AT_ONCE)).contains(&limit));
            assert!(asked.min(super::MOST_CLAIMED_AT_ONCE) - limit < super::EXACT_LIMITS_UP_TO);
        }
    }
}
