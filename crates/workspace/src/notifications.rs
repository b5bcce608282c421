//! Notifications the workspace settings ask for (`notifications`):
//!
//! - `execution_failed`: a run's final failure (not each retry, not an inline `/test`
//!   run) is gathered into its workflow's open [`FailureNotice`], written in the same
//!   statement that ends the run. A notice is due at once when the workflow's previous
//!   one was taken for delivery at least [`FAILURE_NOTICE_SPACING`] ago, else that long
//!   after it; failures meanwhile join it, so one message covers them all. It goes to
//!   the listed e-mails (skipping those of users who switched `execution_failed` off)
//!   and to the webhook URL, signed with the workspace's `whsec_…` secret.
//! - `weekly_usage_report`: every Monday at 08:00 in the workspace's time zone, a report
//!   is recorded once (a unique row per slot, however many workers look) and e-mailed to
//!   the owners who have not switched `weekly_usage_report` off.
//!
//! Both travel through the outbox as `notification` messages
//! (see [`crate::notification_delivery`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fluxolab_kernel::{Clock, ExecutionId, StorageError, WorkflowId, WorkspaceId};
use time::OffsetDateTime;

fluxolab_kernel::define_id!(
    /// A notice of one workflow's failed runs.
    FailureNoticeId
);
fluxolab_kernel::define_id!(
    /// One weekly usage report of a workspace.
    UsageReportId
);

/// The least time between two failure messages of one workflow.
pub const FAILURE_NOTICE_SPACING: Duration = Duration::from_secs(600);
/// The most run ids a failure message lists (its count covers the rest).
pub const NOTICE_EXECUTION_IDS: usize = 20;
/// The longest error summary a failure message carries, in characters.
pub const NOTICE_ERROR_CHARS: usize = 500;
/// How long after its slot a weekly report still goes out (a worker that was down on
/// Monday morning catches up that day; later, the next Monday's report is the next).
pub const WEEKLY_REPORT_GRACE: Duration = Duration::from_secs(86_400);
/// The user switch (`/api/users/me/settings` `notifications`) for failure e-mails.
pub const EXECUTION_FAILED_SWITCH: &str = "execution_failed";
/// The user switch for the weekly usage report.
pub const WEEKLY_USAGE_REPORT_SWITCH: &str = "weekly_usage_report";

/// A workflow's final failures, gathered for one message.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureNotice {
    pub id: FailureNoticeId,
    pub workspace_id: WorkspaceId,
    pub workflow_id: WorkflowId,
    pub workflow_name: String,
    /// How many runs failed for good (all of them, even past the listed ids).
    pub failures: i32,
    /// The first [`NOTICE_EXECUTION_IDS`] runs.
    pub execution_ids: Vec<ExecutionId>,
    pub first_failed_at: OffsetDateTime,
    pub last_failed_at: OffsetDateTime,
    /// The latest run's error, cut to [`NOTICE_ERROR_CHARS`].
    pub last_error: Option<String>,
    /// Whether its e-mails went out already (a retry sends only what is left).
    pub emailed: bool,
    pub webhook_sent: bool,
}

/// Failure notices in storage (written by the statements that end runs).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait FailureNotices: Send + Sync {
    /// Takes notice `id` for delivery: closes it (the workflow's later failures start
    /// the next notice) and reads it; `None` once it is gone (its workflow deleted).
    async fn take(&self, id: FailureNoticeId) -> Result<Option<FailureNotice>, StorageError>;
    /// Notes that its e-mails went out.
    async fn emailed(&self, id: FailureNoticeId) -> Result<(), StorageError>;
    /// Notes that its webhook was delivered.
    async fn webhook_sent(&self, id: FailureNoticeId) -> Result<(), StorageError>;
}

/// A weekly usage report to send.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageReport {
    pub id: UsageReportId,
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    /// The Monday 08:00 it is for; it covers the seven days before.
    pub slot: OffsetDateTime,
    /// Addresses it has reached already (a retry skips them).
    pub sent_to: Vec<String>,
}

/// Weekly usage reports in storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UsageReports: Send + Sync {
    /// The workspaces whose settings ask for the weekly report, with their time zones.
    async fn subscribed(&self) -> Result<Vec<(WorkspaceId, String)>, StorageError>;
    /// Records the report of `slot` for `workspace` with its outbox message (kind
    /// `notification`, payload `{"report_id"}`) in one statement, once per slot:
    /// `false` when it was recorded already.
    async fn record(
        &self,
        workspace: WorkspaceId,
        slot: OffsetDateTime,
    ) -> Result<bool, StorageError>;
    /// A report; `None` once its workspace is gone.
    async fn find(&self, id: UsageReportId) -> Result<Option<UsageReport>, StorageError>;
    /// Notes that the report reached `address`.
    async fn sent_to<'a>(&self, id: UsageReportId, address: &'a str) -> Result<(), StorageError>;
}

/// Who gets notification e-mails, by their own switches.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Recipients: Send + Sync {
    /// Those of `addresses` (compared without case) that belong to a user whose switch
    /// `switch` is off.
    async fn switched_off<'a>(
        &self,
        addresses: &[String],
        switch: &'a str,
    ) -> Result<Vec<String>, StorageError>;
    /// The addresses of `workspace`'s owners whose switch `switch` is not off.
    async fn owners_listening<'a>(
        &self,
        workspace: WorkspaceId,
        switch: &'a str,
    ) -> Result<Vec<String>, StorageError>;
}

/// The Monday 08:00 (in the time zone named `timezone`) whose weekly report is due at
/// `now`: the latest one at or before `now`, if `now` is within
/// [`WEEKLY_REPORT_GRACE`] of it. `None` for an unknown zone.
pub fn due_weekly_slot(now: OffsetDateTime, timezone: &str) -> Option<OffsetDateTime> {
    let zone = jiff::tz::db().get(timezone).ok()?;
    let instant = jiff::Timestamp::from_nanosecond(now.unix_timestamp_nanos()).ok()?;
    let today = instant.to_zoned(zone.clone()).date();
    let monday = today
        .checked_sub(jiff::Span::new().days(today.weekday().to_monday_zero_offset()))
        .ok()?;
    let mut slot = monday.at(8, 0, 0, 0).to_zoned(zone.clone()).ok()?;
    if slot.timestamp() > instant {
        let before = monday.checked_sub(jiff::Span::new().days(7)).ok()?;
        slot = before.at(8, 0, 0, 0).to_zoned(zone).ok()?;
    }
    let slot = OffsetDateTime::from_unix_timestamp_nanos(slot.timestamp().as_nanosecond()).ok()?;
    (now - slot < WEEKLY_REPORT_GRACE).then_some(slot)
}

/// The workers' weekly report job.
pub struct WeeklyReports {
    reports: Arc<dyn UsageReports>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WeeklyReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeeklyReports").finish_non_exhaustive()
    }
}

impl WeeklyReports {
    pub fn new(reports: Arc<dyn UsageReports>, clock: Arc<dyn Clock>) -> Self {
        Self { reports, clock }
    }

    /// Records the report of every subscribed workspace whose Monday 08:00 has come
    /// (once per slot, whichever worker gets there first); returns how many it recorded.
    #[tracing::instrument(name = "notifications.weekly_reports", skip_all)]
    pub async fn run(&self) -> Result<u64, StorageError> {
        let now = self.clock.now();
        let mut recorded = 0;
        for (workspace, timezone) in self.reports.subscribed().await? {
            let Some(slot) = due_weekly_slot(now, &timezone) else {
                continue;
            };
            if self.reports.record(workspace, slot).await? {
                recorded += 1;
            }
        }
        if recorded > 0 {
            tracing::info!(recorded, "weekly usage reports recorded");
        }
        Ok(recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxolab_kernel::ManualClock;
    use time::macros::datetime;

    #[test]
    fn the_slot_is_monday_eight_in_the_workspace_time_zone() {
        // Monday 2026-12-14 08:00 in São Paulo is 11:00 UTC.
        let slot = datetime!(2026-12-14 11:00 UTC);
        assert_eq!(
            due_weekly_slot(datetime!(2026-12-14 10:59:59 UTC), "America/Sao_Paulo"),
            None,
            "07:59:59 there: last week's slot is past its grace"
        );
        assert_eq!(due_weekly_slot(slot, "America/Sao_Paulo"), Some(slot));
        assert_eq!(
            due_weekly_slot(datetime!(2026-12-15 10:59 UTC), "America/Sao_Paulo"),
            Some(slot),
            "within a day of it"
        );
        assert_eq!(
            due_weekly_slot(datetime!(2026-12-15 11:00 UTC), "America/Sao_Paulo"),
            None
        );
        // In Tokyo, Monday 08:00 is Sunday 23:00 UTC.
        assert_eq!(
            due_weekly_slot(datetime!(2026-12-13 23:30 UTC), "Asia/Tokyo"),
            Some(datetime!(2026-12-13 23:00 UTC))
        );
        assert_eq!(due_weekly_slot(slot, "Mars/Base"), None);
    }

    #[test]
    fn daylight_saving_time_moves_the_slot_with_the_clock_on_the_wall() {
        // Lisbon: WET (UTC+0) in winter, WEST (UTC+1) in summer.
        assert_eq!(
            due_weekly_slot(datetime!(2026-12-14 08:00 UTC), "Europe/Lisbon"),
            Some(datetime!(2026-12-14 08:00 UTC))
        );
        assert_eq!(
            due_weekly_slot(datetime!(2026-06-15 07:00 UTC), "Europe/Lisbon"),
            Some(datetime!(2026-06-15 07:00 UTC))
        );
    }

    #[tokio::test]
    async fn the_job_records_due_slots_only() -> Result<(), StorageError> {
        let mut reports = MockUsageReports::new();
        let due = WorkspaceId::new();
        let later = WorkspaceId::new();
        reports.expect_subscribed().returning(move || {
            Ok(vec![
                (due, "UTC".to_owned()),
                (later, "America/Los_Angeles".to_owned()),
            ])
        });
        reports
            .expect_record()
            .withf(move |workspace, slot| {
                *workspace == due && *slot == datetime!(2026-12-14 08:00 UTC)
            })
            .times(1)
            .returning(|_, _| Ok(true));
        let clock = ManualClock::new(datetime!(2026-12-14 08:05 UTC));
        let job = WeeklyReports::new(Arc::new(reports), Arc::new(clock));
        assert_eq!(job.run().await?, 1);
        Ok(())
    }
}
