//! Delivering notifications from the outbox: a workflow's failure notice (e-mails and
//! the webhook signed with the workspace's `whsec_…` secret, message id `msg_<notice
//! id>` on every retry) and the weekly usage report (e-mails to the owners). Each part
//! that went through is noted, so a retry sends only what is left.

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_kernel::outbox::{AttemptFailure, Deliverer, Pending};
use fluxolab_kernel::standard_webhooks::{self, SigningKey};
use fluxolab_kernel::{Clock, OwnedSecrets, StorageError, WorkspaceId};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::alerts::AlertNotifier;
use crate::billing::BillingRepository;
use crate::notifications::{
    EXECUTION_FAILED_SWITCH, FailureNotice, FailureNoticeId, FailureNotices, Recipients,
    UsageReport, UsageReportId, UsageReports, WEEKLY_USAGE_REPORT_SWITCH,
};
use crate::settings::SettingsRepository;

/// What the notification deliverer works with.
pub struct NotificationPorts {
    pub notices: Arc<dyn FailureNotices>,
    pub reports: Arc<dyn UsageReports>,
    pub recipients: Arc<dyn Recipients>,
    pub settings: Arc<dyn SettingsRepository>,
    pub billing: Arc<dyn BillingRepository>,
    pub secrets: Arc<dyn OwnedSecrets>,
    /// E-mail (`SMTP_URL`) and signed webhooks, as usage alerts send them.
    pub notifier: Arc<dyn AlertNotifier>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for NotificationPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationPorts").finish_non_exhaustive()
    }
}

/// The outbox's deliverer of `notification` messages.
pub struct NotificationDeliverer {
    ports: NotificationPorts,
}

impl std::fmt::Debug for NotificationDeliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationDeliverer")
            .finish_non_exhaustive()
    }
}

fn failed(error: &StorageError) -> AttemptFailure {
    AttemptFailure::new(error.to_string())
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The JSON a failure notice's webhook carries: ids, counts, times and the error
/// summary (the run's stored error, cut short), never a secret or a run's data.
pub fn failure_payload(notice: &FailureNotice) -> Value {
    json!({
        "type": "execution_failed",
        "notice_id": notice.id.to_string(),
        "workspace_id": notice.workspace_id.to_string(),
        "workflow_id": notice.workflow_id.to_string(),
        "workflow_name": notice.workflow_name,
        "count": notice.failures,
        "execution_ids": notice.execution_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "first_failed_at": rfc3339(notice.first_failed_at),
        "last_failed_at": rfc3339(notice.last_failed_at),
        "error": notice.last_error,
    })
}

fn failure_email(notice: &FailureNotice) -> (String, String) {
    let name = &notice.workflow_name;
    let subject = if notice.failures == 1 {
        format!("FluxoLab: a run of {name} failed")
    } else {
        format!("FluxoLab: {} runs of {name} failed", notice.failures)
    };
    let mut body = format!(
        "{} run(s) of the workflow {name} ({}) failed for good between {} and {}.\n",
        notice.failures,
        notice.workflow_id,
        rfc3339(notice.first_failed_at),
        rfc3339(notice.last_failed_at),
    );
    if let Some(error) = &notice.last_error {
        body.push_str(&format!("\nLatest error: {error}\n"));
    }
    body.push_str("\nRuns:\n");
    for id in &notice.execution_ids {
        body.push_str(&format!("- {id}\n"));
    }
    let listed = i32::try_from(notice.execution_ids.len()).unwrap_or(i32::MAX);
    if notice.failures > listed {
        body.push_str(&format!("- and {} more\n", notice.failures - listed));
    }
    (subject, body)
}

impl NotificationDeliverer {
    pub fn new(ports: NotificationPorts) -> Self {
        Self { ports }
    }

    async fn deliver_notice(&self, id: FailureNoticeId) -> Result<(), AttemptFailure> {
        let ports = &self.ports;
        // A deleted workflow takes its notices with it: nothing left to send.
        let Some(notice) = ports
            .notices
            .take(id)
            .await
            .map_err(|error| failed(&error))?
        else {
            return Ok(());
        };
        let Some(settings) = ports
            .settings
            .find(notice.workspace_id)
            .await
            .map_err(|error| failed(&error))?
        else {
            return Ok(());
        };
        let targets = &settings.document.notifications.execution_failed;
        if !notice.emailed && !targets.emails.is_empty() {
            let off = ports
                .recipients
                .switched_off(&targets.emails, EXECUTION_FAILED_SWITCH)
                .await
                .map_err(|error| failed(&error))?;
            let (subject, body) = failure_email(&notice);
            for address in &targets.emails {
                if off
                    .iter()
                    .any(|skipped| skipped.eq_ignore_ascii_case(address))
                {
                    continue;
                }
                ports.notifier.email(address, &subject, &body).await?;
            }
            ports
                .notices
                .emailed(id)
                .await
                .map_err(|error| failed(&error))?;
        }
        if let (false, Some(url)) = (notice.webhook_sent, &targets.webhook_url) {
            // A URL set before FluxoLab signed these has no secret until it is set again:
            // it gets nothing unsigned, and holding the workflow's later notices behind
            // it would not make one.
            let Some(credential) = settings.failure_webhook_secret else {
                tracing::warn!(workspace_id = %notice.workspace_id, "the failure webhook has no signing secret (set its URL again); not sent");
                return Ok(());
            };
            let body = failure_payload(&notice).to_string();
            let secrets = standard_webhooks::signing_secrets(
                credential,
                settings.failure_webhook_previous_secret,
                ports.clock.now(),
            );
            self.webhook(
                notice.workspace_id,
                &secrets,
                url,
                &format!("msg_{id}"),
                &body,
            )
            .await?;
            ports
                .notices
                .webhook_sent(id)
                .await
                .map_err(|error| failed(&error))?;
        }
        Ok(())
    }

    /// Posts `body` signed with `secrets` (the current one, and a rotated-away one
    /// during its grace).
    async fn webhook(
        &self,
        workspace: WorkspaceId,
        secrets: &[fluxolab_kernel::CredentialId],
        url: &str,
        message_id: &str,
        body: &str,
    ) -> Result<(), AttemptFailure> {
        let mut keys = Vec::new();
        for credential in secrets {
            let secret = self
                .ports
                .secrets
                .open(workspace, *credential)
                .await
                .map_err(|error| failed(&error))?;
            keys.push(SigningKey::parse(&secret).ok_or_else(|| {
                AttemptFailure::new("the signing secret is not a Standard Webhooks secret")
            })?);
        }
        let signed =
            standard_webhooks::sign(&keys, message_id, self.ports.clock.now(), body.as_bytes());
        self.ports
            .notifier
            .webhook(workspace, url, body.as_bytes(), &signed)
            .await
    }

    async fn deliver_report(&self, id: UsageReportId) -> Result<(), AttemptFailure> {
        let ports = &self.ports;
        let Some(report) = ports
            .reports
            .find(id)
            .await
            .map_err(|error| failed(&error))?
        else {
            return Ok(());
        };
        let owners = ports
            .recipients
            .owners_listening(report.workspace_id, WEEKLY_USAGE_REPORT_SWITCH)
            .await
            .map_err(|error| failed(&error))?;
        let pending: Vec<&String> = owners
            .iter()
            .filter(|owner| {
                !report
                    .sent_to
                    .iter()
                    .any(|sent| sent.eq_ignore_ascii_case(owner))
            })
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let (subject, body) = self
            .report_email(&report)
            .await
            .map_err(|error| failed(&error))?;
        for owner in pending {
            ports.notifier.email(owner, &subject, &body).await?;
            ports
                .reports
                .sent_to(id, owner)
                .await
                .map_err(|error| failed(&error))?;
        }
        Ok(())
    }

    /// Usage per metric against the plan's limits: executions in the seven days before
    /// the slot and in the billing period, and what the workspace holds now.
    async fn report_email(&self, report: &UsageReport) -> Result<(String, String), StorageError> {
        let billing = &self.ports.billing;
        let subscription = billing.subscription(report.workspace_id).await?;
        let week = billing
            .usage(report.workspace_id, report.slot - time::Duration::days(7))
            .await?;
        let period = billing
            .usage(report.workspace_id, subscription.current_period_start)
            .await?;
        let limits = &subscription.limits;
        let of =
            |limit: Option<u32>| limit.map_or_else(|| "unlimited".to_owned(), |l| l.to_string());
        let lines = [
            (
                "executions in the last 7 days",
                week.executions_total(),
                None,
            ),
            (
                "executions this billing period",
                period.executions_total(),
                limits.executions_per_month,
            ),
            ("members", period.members, limits.max_members),
            ("workflows", period.workflows, limits.max_workflows),
            (
                "active workflows",
                period.active_workflows,
                limits.max_active_workflows,
            ),
            ("credentials", period.credentials, limits.max_credentials),
            ("API keys", period.api_keys, limits.api_keys),
        ];
        let mut body = format!(
            "Usage of the workspace {} for the week ending {} (plan {}):\n\n",
            report.workspace_name,
            rfc3339(report.slot),
            subscription.plan.code(),
        );
        for (metric, used, limit) in lines {
            match limit {
                Some(_) => body.push_str(&format!("- {metric}: {used} of {}\n", of(limit))),
                None => body.push_str(&format!("- {metric}: {used}\n")),
            }
        }
        let failed = week.executions.get("failed").copied().unwrap_or(0);
        body.push_str(&format!(
            "\nOf the last 7 days' executions, {failed} failed.\n"
        ));
        let subject = format!("FluxoLab: weekly usage of {}", report.workspace_name);
        Ok((subject, body))
    }
}

#[async_trait]
impl Deliverer for NotificationDeliverer {
    async fn deliver(&self, messages: &[Pending]) -> Result<(), AttemptFailure> {
        for pending in messages {
            let payload = &pending.message.payload;
            let id_of = |key: &str| {
                payload[key]
                    .as_str()
                    .and_then(|id| id.parse::<uuid::Uuid>().ok())
            };
            if let Some(notice) = id_of("notice_id") {
                self.deliver_notice(FailureNoticeId::from_uuid(notice))
                    .await?;
            } else if let Some(report) = id_of("report_id") {
                self.deliver_report(UsageReportId::from_uuid(report))
                    .await?;
            } else {
                tracing::error!(message_id = %pending.message.id, "a notification message without its notice or report; dropped");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "notification_delivery_tests.rs"]
mod tests;
