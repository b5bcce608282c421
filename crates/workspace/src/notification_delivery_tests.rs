//! The notification deliverer's decisions, its ports mocked: who gets a failure e-mail,
//! what a retry sends again, and whom a weekly report reaches.

use std::sync::{Arc, Mutex};

use fluxolab_kernel::outbox::{OutboxKind, OutboxMessage, OutboxMessageId};
use fluxolab_kernel::owned_secrets::MockOwnedSecrets;
use fluxolab_kernel::{
    CredentialId, ExecutionId, ManualClock, SecretString, WorkflowId, WorkspaceId,
};
use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::alerts::MockAlertNotifier;
use crate::billing::{MockBillingRepository, Subscription, Usage};
use crate::notifications::{MockFailureNotices, MockRecipients, MockUsageReports};
use crate::plan::PlanCode;
use crate::settings::{MockSettingsRepository, SettingsDocument, WorkspaceSettings};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Default)]
struct Mocks {
    notices: MockFailureNotices,
    reports: MockUsageReports,
    recipients: MockRecipients,
    settings: MockSettingsRepository,
    billing: MockBillingRepository,
    secrets: MockOwnedSecrets,
    notifier: MockAlertNotifier,
}

impl Mocks {
    fn deliverer(self) -> NotificationDeliverer {
        NotificationDeliverer::new(NotificationPorts {
            notices: Arc::new(self.notices),
            reports: Arc::new(self.reports),
            recipients: Arc::new(self.recipients),
            settings: Arc::new(self.settings),
            billing: Arc::new(self.billing),
            secrets: Arc::new(self.secrets),
            notifier: Arc::new(self.notifier),
            clock: Arc::new(ManualClock::new(datetime!(2026-12-14 10:00 UTC))),
        })
    }
}

fn message(payload: serde_json::Value) -> Pending {
    Pending {
        message: OutboxMessage {
            id: OutboxMessageId::new(),
            workspace_id: WorkspaceId::new(),
            destination: "execution_failed:x".to_owned(),
            kind: OutboxKind::Notification,
            payload,
        },
        attempts: 0,
        created_at: datetime!(2026-12-14 10:00 UTC),
    }
}

fn notice(emailed: bool) -> FailureNotice {
    FailureNotice {
        id: FailureNoticeId::new(),
        workspace_id: WorkspaceId::new(),
        workflow_id: WorkflowId::new(),
        workflow_name: "Orders".to_owned(),
        failures: 3,
        execution_ids: vec![ExecutionId::new(), ExecutionId::new()],
        first_failed_at: datetime!(2026-12-14 09:50 UTC),
        last_failed_at: datetime!(2026-12-14 09:58 UTC),
        last_error: Some("the receiver answered 500".to_owned()),
        emailed,
        webhook_sent: false,
    }
}

fn settings(secret: CredentialId) -> WorkspaceSettings {
    let mut document = SettingsDocument::default();
    document.notifications.execution_failed.emails =
        vec!["ops@example.com".to_owned(), "Quiet@Example.com".to_owned()];
    document.notifications.execution_failed.webhook_url =
        Some("https://hooks.example.com/f".into());
    WorkspaceSettings {
        timezone: "UTC".to_owned(),
        locale: "en".to_owned(),
        allow_internal_network: false,
        document,
        failure_webhook_secret: Some(secret),
        failure_webhook_previous_secret: None,
        updated_at: datetime!(2026-12-14 00:00 UTC),
    }
}

/// The notice's ports: `notice` taken, settings with two addresses (one switched off)
/// and a webhook whose secret opens.
fn failure_mocks(notice: &FailureNotice) -> Mocks {
    let mut mocks = Mocks::default();
    let taken = notice.clone();
    mocks
        .notices
        .expect_take()
        .returning(move |_| Ok(Some(taken.clone())));
    let secret = CredentialId::new();
    mocks
        .settings
        .expect_find()
        .returning(move |_| Ok(Some(settings(secret))));
    mocks
        .recipients
        .expect_switched_off()
        .withf(|_, switch| switch == "execution_failed")
        .returning(|_, _| Ok(vec!["quiet@example.com".to_owned()]));
    mocks.secrets.expect_open().returning(|_, _| {
        Ok(SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ))
    });
    mocks.notices.expect_webhook_sent().returning(|_| Ok(()));
    mocks
}

#[tokio::test]
async fn a_failure_notice_skips_switched_off_addresses_and_signs_its_webhook() -> TestResult {
    let notice = notice(false);
    let mut mocks = failure_mocks(&notice);
    let mailed = Arc::new(Mutex::new(Vec::new()));
    let seen = mailed.clone();
    mocks
        .notifier
        .expect_email()
        .returning(move |to, subject, _| {
            seen.lock()
                .map_err(|_| AttemptFailure::new("lock"))?
                .push((to.to_owned(), subject.to_owned()));
            Ok(())
        });
    mocks
        .notices
        .expect_emailed()
        .times(1)
        .returning(|_| Ok(()));
    let expected_id = format!("msg_{}", notice.id);
    let workflow = notice.workflow_id.to_string();
    mocks
        .notifier
        .expect_webhook()
        .withf(move |_, url, body, signed| {
            let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            url == "https://hooks.example.com/f"
                && signed.pairs()[0].1 == expected_id
                && body["count"] == 3
                && body["workflow_id"] == workflow.as_str()
                && body["execution_ids"].as_array().map(Vec::len) == Some(2)
                && body["error"] == "the receiver answered 500"
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let payload = json!({ "notice_id": notice.id.to_string() });
    deliver(mocks, payload).await?;
    let mailed = mailed.lock().map_err(|_| "lock")?.clone();
    assert_eq!(
        mailed,
        [(
            "ops@example.com".to_owned(),
            "FluxoLab: 3 runs of Orders failed".to_owned()
        )],
        "the address whose user switched it off is skipped"
    );
    Ok(())
}

#[tokio::test]
async fn a_retry_sends_only_what_did_not_go_through() -> TestResult {
    let notice = notice(true);
    let mut mocks = failure_mocks(&notice);
    mocks.notifier.expect_email().never();
    mocks.notices.expect_emailed().never();
    mocks
        .notifier
        .expect_webhook()
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let payload = json!({ "notice_id": notice.id.to_string() });
    deliver(mocks, payload).await?;
    Ok(())
}

#[tokio::test]
async fn a_refused_webhook_fails_the_attempt_with_the_receivers_advice() -> TestResult {
    let notice = notice(true);
    let mut mocks = failure_mocks(&notice);
    mocks.notices.checkpoint();
    let taken = notice.clone();
    mocks
        .notices
        .expect_take()
        .returning(move |_| Ok(Some(taken.clone())));
    mocks.notices.expect_webhook_sent().never();
    mocks.notifier.expect_webhook().returning(|_, _, _, _| {
        Err(AttemptFailure {
            error: "the receiver answered 503".to_owned(),
            retry_after: Some(std::time::Duration::from_secs(30)),
        })
    });
    let payload = json!({ "notice_id": notice.id.to_string() });
    let failure = mocks
        .deliverer()
        .deliver(&[message(payload)])
        .await
        .expect_err("refused");
    assert_eq!(
        failure.retry_after,
        Some(std::time::Duration::from_secs(30))
    );
    Ok(())
}

#[tokio::test]
async fn a_weekly_report_reaches_the_listening_owners_not_yet_reached() -> TestResult {
    let mut mocks = Mocks::default();
    let report = UsageReport {
        id: UsageReportId::new(),
        workspace_id: WorkspaceId::new(),
        workspace_name: "Acme".to_owned(),
        slot: datetime!(2026-12-14 08:00 UTC),
        sent_to: vec!["first@example.com".to_owned()],
    };
    let found = report.clone();
    mocks
        .reports
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    mocks
        .recipients
        .expect_owners_listening()
        .withf(|_, switch| switch == "weekly_usage_report")
        .returning(|_, _| {
            Ok(vec![
                "first@example.com".to_owned(),
                "second@example.com".to_owned(),
            ])
        });
    mocks.billing.expect_subscription().returning(|_| {
        Ok(Subscription {
            plan: PlanCode::Free,
            limits: PlanCode::Free.default_limits(),
            status: "active".to_owned(),
            current_period_start: datetime!(2026-12-01 00:00 UTC),
            current_period_end: datetime!(2027-01-01 00:00 UTC),
        })
    });
    mocks.billing.expect_usage().returning(|_, _| {
        Ok(Usage {
            workflows: 2,
            executions: [("failed".to_owned(), 1), ("succeeded".to_owned(), 4)].into(),
            ..Usage::default()
        })
    });
    mocks
        .notifier
        .expect_email()
        .withf(|to, subject, body| {
            to == "second@example.com"
                && subject == "FluxoLab: weekly usage of Acme"
                && body.contains("- workflows: 2 of")
                && body.contains("- executions in the last 7 days: 5")
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    mocks
        .reports
        .expect_sent_to()
        .withf(|_, address| address == "second@example.com")
        .times(1)
        .returning(|_, _| Ok(()));
    let payload = json!({ "report_id": report.id.to_string() });
    deliver(mocks, payload).await?;
    Ok(())
}

async fn deliver(mocks: Mocks, payload: serde_json::Value) -> Result<(), String> {
    mocks
        .deliverer()
        .deliver(&[message(payload)])
        .await
        .map_err(|failure| failure.error)
}

#[tokio::test]
async fn a_webhook_url_without_a_secret_gets_nothing_unsigned() -> TestResult {
    let notice = notice(true);
    let mut mocks = Mocks::default();
    let taken = notice.clone();
    mocks
        .notices
        .expect_take()
        .returning(move |_| Ok(Some(taken.clone())));
    mocks.settings.expect_find().returning(|_| {
        let mut unsigned = settings(CredentialId::new());
        unsigned.failure_webhook_secret = None;
        Ok(Some(unsigned))
    });
    mocks.notifier.expect_webhook().never();
    mocks.notices.expect_webhook_sent().never();
    let payload = json!({ "notice_id": notice.id.to_string() });
    deliver(mocks, payload).await?;
    Ok(())
}
