//! The [`UsageGate`]: the period's execution quota (counted from the executions table)
//! and the per-workspace webhook rate (a token bucket in this process's memory, so N
//! API processes together allow up to N times the rate).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fluxolab_kernel::{Admission, Clock, StorageError, UsageGate, WorkspaceId};
use time::OffsetDateTime;

/// How long a quota reading is trusted (by the injected clock): by the webhook hot path
/// always, and by a run when the reading says the plan has no execution quota (there
/// is nothing to count; a plan change applies to runs within this time).
pub const QUOTA_READING_TTL: Duration = Duration::from_secs(1);

/// Where a workspace stands against its quota and rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaStatus {
    pub executions_per_month: Option<u32>,
    /// Executions created since the period started.
    pub executions_used: u32,
    pub period_end: OffsetDateTime,
    pub webhook_events_per_minute: Option<u32>,
}

/// Reads quota status.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait QuotaSource: Send + Sync {
    async fn status(&self, workspace: WorkspaceId) -> Result<QuotaStatus, StorageError>;
}

/// A token bucket: `capacity` tokens, refilled at `capacity` per minute.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: OffsetDateTime,
}

/// The production [`UsageGate`].
pub struct Quotas {
    source: Arc<dyn QuotaSource>,
    clock: Arc<dyn Clock>,
    /// Readings and when they were taken; older than [`QUOTA_READING_TTL`] by the
    /// clock, a reading is taken again.
    cache: moka::sync::Cache<WorkspaceId, (QuotaStatus, OffsetDateTime)>,
    buckets: Mutex<HashMap<WorkspaceId, Bucket>>,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas").finish_non_exhaustive()
    }
}

impl Quotas {
    pub fn new(source: Arc<dyn QuotaSource>, clock: Arc<dyn Clock>) -> Self {
        Self {
            source,
            clock,
            cache: moka::sync::Cache::builder().max_capacity(100_000).build(),
            buckets: Mutex::default(),
        }
    }

    fn quota(&self, status: &QuotaStatus, now: OffsetDateTime) -> Admission {
        match status.executions_per_month {
            Some(limit) if status.executions_used >= limit => Admission::QuotaExceeded {
                retry_after_seconds: u64::try_from((status.period_end - now).whole_seconds())
                    .unwrap_or(0)
                    .max(1),
            },
            _ => Admission::Admitted,
        }
    }

    /// Takes a token from the workspace's bucket, or says when the next one comes.
    fn take_token(
        &self,
        workspace: WorkspaceId,
        per_minute: u32,
        now: OffsetDateTime,
    ) -> Admission {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Admission::Admitted;
        };
        let capacity = f64::from(per_minute.max(1));
        let rate = capacity / 60.0;
        if buckets.len() > 100_000 {
            // Buckets idle for a minute are full again: forgetting them changes nothing.
            buckets.retain(|_, bucket| (now - bucket.refilled_at) < time::Duration::minutes(1));
        }
        let bucket = buckets.entry(workspace).or_insert(Bucket {
            tokens: capacity,
            refilled_at: now,
        });
        let elapsed = (now - bucket.refilled_at).as_seconds_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Admission::Admitted
        } else {
            let wait = ((1.0 - bucket.tokens) / rate).ceil();
            Admission::RateLimited {
                retry_after_seconds: (wait as u64).max(1),
            }
        }
    }
}

#[async_trait]
impl UsageGate for Quotas {
    async fn admit_run(&self, workspace: WorkspaceId) -> Result<Admission, StorageError> {
        let now = self.clock.now();
        // A limited plan is counted at every run; an unlimited one has nothing to count.
        if let Some((status, read_at)) = self.cache.get(&workspace)
            && status.executions_per_month.is_none()
            && now - read_at < QUOTA_READING_TTL
        {
            return Ok(Admission::Admitted);
        }
        let status = self.source.status(workspace).await?;
        self.cache.insert(workspace, (status, now));
        Ok(self.quota(&status, now))
    }

    async fn admit_delivery(&self, workspace: WorkspaceId) -> Result<Admission, StorageError> {
        let now = self.clock.now();
        let status = match self.cache.get(&workspace) {
            Some((status, read_at)) if now - read_at < QUOTA_READING_TTL => status,
            _ => {
                let status = self.source.status(workspace).await?;
                self.cache.insert(workspace, (status, now));
                status
            }
        };
        if let Some(per_minute) = status.webhook_events_per_minute {
            let rate = self.take_token(workspace, per_minute, now);
            if rate != Admission::Admitted {
                return Ok(rate);
            }
        }
        Ok(self.quota(&status, now))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use fluxolab_kernel::ManualClock;

    use super::*;

    fn gate(status: QuotaStatus, clock: Arc<ManualClock>) -> Quotas {
        let mut source = MockQuotaSource::new();
        source.expect_status().returning(move |_| Ok(status));
        Quotas::new(Arc::new(source), clock)
    }

    #[tokio::test]
    async fn the_rate_refills_over_the_minute_and_the_quota_waits_for_the_period_end() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let clock = Arc::new(ManualClock::new(start));
        let workspace = WorkspaceId::new();
        let limited = gate(
            QuotaStatus {
                executions_per_month: None,
                executions_used: 0,
                period_end: start + time::Duration::days(30),
                webhook_events_per_minute: Some(2),
            },
            clock.clone(),
        );
        assert_eq!(
            limited.admit_delivery(workspace).await.ok(),
            Some(Admission::Admitted)
        );
        assert_eq!(
            limited.admit_delivery(workspace).await.ok(),
            Some(Admission::Admitted)
        );
        assert_eq!(
            limited.admit_delivery(workspace).await.ok(),
            Some(Admission::RateLimited {
                retry_after_seconds: 30
            })
        );
        clock.advance(time::Duration::seconds(30));
        assert_eq!(
            limited.admit_delivery(workspace).await.ok(),
            Some(Admission::Admitted)
        );

        let used_up = gate(
            QuotaStatus {
                executions_per_month: Some(5),
                executions_used: 5,
                period_end: start + time::Duration::days(2),
                webhook_events_per_minute: None,
            },
            clock.clone(),
        );
        assert_eq!(
            used_up.admit_run(workspace).await.ok(),
            Some(Admission::QuotaExceeded {
                retry_after_seconds: 2 * 86_400 - 30
            })
        );
    }

    #[tokio::test]
    async fn a_delivery_trusts_a_quota_reading_for_a_second_of_the_clock() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let clock = Arc::new(ManualClock::new(start));
        let used = Arc::new(Mutex::new(0_u32));
        let mut source = MockQuotaSource::new();
        let reading = used.clone();
        source.expect_status().returning(move |_| {
            Ok(QuotaStatus {
                executions_per_month: Some(1),
                executions_used: reading.lock().map_or(0, |used| *used),
                period_end: start + time::Duration::days(1),
                webhook_events_per_minute: None,
            })
        });
        let gate = Quotas::new(Arc::new(source), clock.clone());
        let workspace = WorkspaceId::new();
        assert_eq!(
            gate.admit_delivery(workspace).await.ok(),
            Some(Admission::Admitted)
        );
        if let Ok(mut used) = used.lock() {
            *used = 1;
        }
        clock.advance(time::Duration::milliseconds(900));
        assert_eq!(
            gate.admit_delivery(workspace).await.ok(),
            Some(Admission::Admitted),
            "the reading is still trusted"
        );
        clock.advance(time::Duration::milliseconds(200));
        assert!(matches!(
            gate.admit_delivery(workspace).await,
            Ok(Admission::QuotaExceeded { .. })
        ));
    }

    #[tokio::test]
    async fn a_run_is_counted_every_time_unless_the_plan_has_no_quota() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let clock = Arc::new(ManualClock::new(start));
        let limit = Arc::new(Mutex::new(None::<u32>));
        let reads = Arc::new(AtomicUsize::new(0));
        let mut source = MockQuotaSource::new();
        let (reading, counting) = (limit.clone(), reads.clone());
        source.expect_status().returning(move |_| {
            counting.fetch_add(1, Ordering::SeqCst);
            Ok(QuotaStatus {
                executions_per_month: reading.lock().ok().and_then(|limit| *limit),
                executions_used: 3,
                period_end: start + time::Duration::days(1),
                webhook_events_per_minute: None,
            })
        });
        let gate = Quotas::new(Arc::new(source), clock.clone());
        let workspace = WorkspaceId::new();
        // Unlimited: one reading serves the runs of the next second.
        for _ in 0..3 {
            assert_eq!(
                gate.admit_run(workspace).await.ok(),
                Some(Admission::Admitted)
            );
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // A plan with a quota now: seen once the reading is a second old…
        if let Ok(mut limit) = limit.lock() {
            *limit = Some(3);
        }
        clock.advance(time::Duration::milliseconds(900));
        assert_eq!(
            gate.admit_run(workspace).await.ok(),
            Some(Admission::Admitted)
        );
        clock.advance(time::Duration::milliseconds(200));
        assert!(matches!(
            gate.admit_run(workspace).await,
            Ok(Admission::QuotaExceeded { .. })
        ));
        // …and from then on every run is counted.
        assert!(matches!(
            gate.admit_run(workspace).await,
            Ok(Admission::QuotaExceeded { .. })
        ));
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }
}
