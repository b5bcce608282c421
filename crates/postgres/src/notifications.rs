//! Notifications: failure notices (gathered by the statements that end runs, see
//! [`note_failures`]), weekly usage reports (one row per workspace and slot, written
//! with its outbox message) and the recipients' own switches.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{ExecutionId, StorageError, WorkflowId, WorkspaceId};
use fluxolab_workspace::notifications::{
    FAILURE_NOTICE_SPACING, FailureNotice, FailureNoticeId, FailureNotices, NOTICE_ERROR_CHARS,
    NOTICE_EXECUTION_IDS, Recipients, UsageReport, UsageReportId, UsageReports,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::storage;
use crate::pool::pooled;
use crate::schema::{execution_failure_notices, weekly_usage_reports, workspaces};

crate::repository::pg_repository!(
    /// Notices, reports and recipients over the pool.
    PgNotifications
);

/// CTEs that gather the runs of `failed` (a CTE of `id, workspace_id, workflow_id,
/// error, failed_at` defined before them) into their workflows' open notices, each
/// new notice with its outbox message (kind `notification`, destination
/// `execution_failed:<workflow id>`, due when the notice is): one notice per workflow
/// is open at a time (a partial unique index), and a new one is due
/// [`FAILURE_NOTICE_SPACING`] after the workflow's previous one was taken, or at once.
pub(crate) fn note_failures() -> String {
    let spacing = FAILURE_NOTICE_SPACING.as_secs();
    format!(
        "failed_workflows AS ( \
           SELECT workspace_id, workflow_id, count(*)::int AS failures, \
             (array_agg(id ORDER BY failed_at, id))[1:{NOTICE_EXECUTION_IDS}] AS ids, \
             min(failed_at) AS first_failed_at, max(failed_at) AS last_failed_at, \
             left((array_agg(error ORDER BY failed_at DESC, id DESC))[1], {NOTICE_ERROR_CHARS}) AS last_error \
           FROM failed GROUP BY workspace_id, workflow_id \
         ), noticed AS ( \
           INSERT INTO execution_failure_notices AS n (id, workspace_id, workflow_id, failures, \
             execution_ids, first_failed_at, last_failed_at, last_error, due_at) \
           SELECT gen_random_uuid(), f.workspace_id, f.workflow_id, f.failures, f.ids, \
             f.first_failed_at, f.last_failed_at, f.last_error, \
             greatest(now(), (SELECT max(p.closed_at) FROM execution_failure_notices p \
               WHERE p.workflow_id = f.workflow_id) + make_interval(secs => {spacing})) \
           FROM failed_workflows f ORDER BY f.workflow_id \
           ON CONFLICT (workflow_id) WHERE closed_at IS NULL DO UPDATE SET \
             failures = n.failures + excluded.failures, \
             execution_ids = (n.execution_ids || excluded.execution_ids)[1:{NOTICE_EXECUTION_IDS}], \
             last_failed_at = greatest(n.last_failed_at, excluded.last_failed_at), \
             last_error = excluded.last_error \
           RETURNING n.id, n.workspace_id, n.workflow_id, n.due_at, (n.xmax = 0) AS created \
         ), {messages}",
        messages = crate::outbox::enqueue!(
            name: "notice",
            rows: "noticed WHERE created",
            destination: "'execution_failed:' || workflow_id",
            kind: "notification",
            payload: "jsonb_build_object('notice_id', id)",
            due: "due_at",
            order: "workflow_id",
        ),
    )
}

/// A notice as [`FailureNotices::take`] reads it.
#[derive(QueryableByName)]
struct NoticeRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    workflow_id: Uuid,
    #[diesel(sql_type = Text)]
    workflow_name: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    failures: i32,
    #[diesel(sql_type = Array<SqlUuid>)]
    execution_ids: Vec<Uuid>,
    #[diesel(sql_type = Timestamptz)]
    first_failed_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    last_failed_at: OffsetDateTime,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    emailed: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    webhook_sent: bool,
}

/// Closes a notice (once) and reads it with its workflow's name.
const TAKE_NOTICE: &str = "\
WITH taken AS ( \
  UPDATE execution_failure_notices SET closed_at = coalesce(closed_at, now()) \
  WHERE id = $1 RETURNING * \
) \
SELECT t.id, t.workspace_id, t.workflow_id, w.name AS workflow_name, t.failures, \
  t.execution_ids, t.first_failed_at, t.last_failed_at, t.last_error, \
  t.emailed_at IS NOT NULL AS emailed, t.webhook_sent_at IS NOT NULL AS webhook_sent \
FROM taken t JOIN workflows w ON w.id = t.workflow_id";

#[async_trait]
impl FailureNotices for PgNotifications {
    #[tracing::instrument(name = "db.notices.take", level = "debug", skip_all)]
    async fn take(&self, id: FailureNoticeId) -> Result<Option<FailureNotice>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: an UPDATE … RETURNING joined to the workflow's name.
        let row: Option<NoticeRow> = diesel::sql_query(TAKE_NOTICE)
            .bind::<SqlUuid, _>(id.as_uuid())
            .get_result(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        let Some(row) = row else {
            return Ok(None);
        };
        // Notices of the workflow older than this one have been delivered (messages to
        // one destination go in order): only the latest taken one is kept for spacing.
        // Raw: a self-referencing subquery.
        diesel::sql_query(
            "DELETE FROM execution_failure_notices p WHERE p.workflow_id = $1 AND p.id <> $2 \
             AND p.closed_at < (SELECT closed_at FROM execution_failure_notices WHERE id = $2)",
        )
        .bind::<SqlUuid, _>(row.workflow_id)
        .bind::<SqlUuid, _>(row.id)
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(Some(FailureNotice {
            id: FailureNoticeId::from_uuid(row.id),
            workspace_id: WorkspaceId::from_uuid(row.workspace_id),
            workflow_id: WorkflowId::from_uuid(row.workflow_id),
            workflow_name: row.workflow_name,
            failures: row.failures,
            execution_ids: row
                .execution_ids
                .into_iter()
                .map(ExecutionId::from_uuid)
                .collect(),
            first_failed_at: row.first_failed_at,
            last_failed_at: row.last_failed_at,
            last_error: row.last_error,
            emailed: row.emailed,
            webhook_sent: row.webhook_sent,
        }))
    }

    #[tracing::instrument(name = "db.notices.emailed", level = "debug", skip_all)]
    async fn emailed(&self, id: FailureNoticeId) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::update(execution_failure_notices::table.find(id.as_uuid()))
            .set(execution_failure_notices::emailed_at.eq(diesel::dsl::now))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.notices.webhook_sent", level = "debug", skip_all)]
    async fn webhook_sent(&self, id: FailureNoticeId) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::update(execution_failure_notices::table.find(id.as_uuid()))
            .set(execution_failure_notices::webhook_sent_at.eq(diesel::dsl::now))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }
}

#[derive(QueryableByName)]
struct Subscribed {
    #[diesel(sql_type = SqlUuid)]
    workspace_id: Uuid,
    #[diesel(sql_type = Text)]
    timezone: String,
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    recorded: i64,
}

/// The report of slot `$2` for workspace `$1`, once, with its outbox message.
const RECORD_REPORT: &str = concat!(
    "\
WITH recorded AS ( \
  INSERT INTO weekly_usage_reports (id, workspace_id, slot) VALUES (gen_random_uuid(), $1, $2) \
  ON CONFLICT ON CONSTRAINT weekly_usage_reports_once DO NOTHING \
  RETURNING id, workspace_id \
), ",
    crate::outbox::enqueue!(
        name: "report",
        rows: "recorded",
        destination: "'weekly_usage_report:' || workspace_id",
        kind: "notification",
        payload: "jsonb_build_object('report_id', id)",
        due: "now()",
        order: "id",
    ),
    " SELECT count(*) AS recorded FROM recorded"
);

#[async_trait]
impl UsageReports for PgNotifications {
    #[tracing::instrument(name = "db.reports.subscribed", level = "debug", skip_all)]
    async fn subscribed(&self) -> Result<Vec<(WorkspaceId, String)>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: a JSON path into the settings document.
        let rows: Vec<Subscribed> = diesel::sql_query(
            "SELECT s.workspace_id, s.timezone FROM workspace_settings s \
             JOIN workspaces w ON w.id = s.workspace_id \
             WHERE w.archived_at IS NULL \
               AND (s.settings #>> '{notifications,weekly_usage_report}') = 'true'",
        )
        .load(&mut connection)
        .await
        .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|row| (WorkspaceId::from_uuid(row.workspace_id), row.timezone))
            .collect())
    }

    #[tracing::instrument(name = "db.reports.record", level = "debug", skip_all)]
    async fn record(
        &self,
        workspace: WorkspaceId,
        slot: OffsetDateTime,
    ) -> Result<bool, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: INSERT … ON CONFLICT DO NOTHING feeding the outbox's inserts.
        let row: Recorded = diesel::sql_query(RECORD_REPORT)
            .bind::<SqlUuid, _>(workspace.as_uuid())
            .bind::<Timestamptz, _>(slot)
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        Ok(row.recorded > 0)
    }

    #[tracing::instrument(name = "db.reports.find", level = "debug", skip_all)]
    async fn find(&self, id: UsageReportId) -> Result<Option<UsageReport>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<(Uuid, Uuid, String, OffsetDateTime, Vec<Option<String>>)> =
            weekly_usage_reports::table
                .inner_join(workspaces::table)
                .filter(weekly_usage_reports::id.eq(id.as_uuid()))
                .select((
                    weekly_usage_reports::id,
                    weekly_usage_reports::workspace_id,
                    workspaces::name,
                    weekly_usage_reports::slot,
                    weekly_usage_reports::sent_to,
                ))
                .first(&mut connection)
                .await
                .optional()
                .map_err(storage)?;
        Ok(row.map(
            |(id, workspace_id, workspace_name, slot, sent_to)| UsageReport {
                id: UsageReportId::from_uuid(id),
                workspace_id: WorkspaceId::from_uuid(workspace_id),
                workspace_name,
                slot,
                sent_to: sent_to.into_iter().flatten().collect(),
            },
        ))
    }

    #[tracing::instrument(name = "db.reports.sent_to", level = "debug", skip_all)]
    async fn sent_to<'a>(&self, id: UsageReportId, address: &'a str) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: appending to an array column.
        diesel::sql_query(
            "UPDATE weekly_usage_reports SET sent_to = array_append(sent_to, $2) WHERE id = $1",
        )
        .bind::<SqlUuid, _>(id.as_uuid())
        .bind::<Text, _>(address)
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(())
    }
}

#[derive(QueryableByName)]
struct Address {
    #[diesel(sql_type = Text)]
    email: String,
}

#[async_trait]
impl Recipients for PgNotifications {
    #[tracing::instrument(name = "db.recipients.switched_off", level = "debug", skip_all)]
    async fn switched_off<'a>(
        &self,
        addresses: &[String],
        switch: &'a str,
    ) -> Result<Vec<String>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let lowered: Vec<String> = addresses.iter().map(|a| a.to_lowercase()).collect();
        // Raw: a JSON key named by a parameter.
        let rows: Vec<Address> = diesel::sql_query(
            "SELECT u.email FROM users u JOIN user_settings s ON s.user_id = u.id \
             WHERE lower(u.email) = ANY($1) AND s.notifications -> $2 = 'false'::jsonb",
        )
        .bind::<Array<Text>, _>(&lowered)
        .bind::<Text, _>(switch)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        Ok(rows.into_iter().map(|row| row.email).collect())
    }

    #[tracing::instrument(name = "db.recipients.owners_listening", level = "debug", skip_all)]
    async fn owners_listening<'a>(
        &self,
        workspace: WorkspaceId,
        switch: &'a str,
    ) -> Result<Vec<String>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Raw: a JSON key named by a parameter.
        let rows: Vec<Address> = diesel::sql_query(
            "SELECT u.email FROM workspace_members m \
             JOIN profiles p ON p.id = m.profile_id AND p.code = 'owner' \
             JOIN users u ON u.id = m.user_id \
             LEFT JOIN user_settings s ON s.user_id = u.id \
             WHERE m.workspace_id = $1 \
               AND (s.notifications -> $2) IS DISTINCT FROM 'false'::jsonb \
             ORDER BY u.email",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<Text, _>(switch)
        .load(&mut connection)
        .await
        .map_err(storage)?;
        Ok(rows.into_iter().map(|row| row.email).collect())
    }
}
