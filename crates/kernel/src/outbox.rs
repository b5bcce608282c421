//! One outbox for everything FluxoLab sends on its own (usage alerts today; log batches
//! and notifications next): a message is written in the same unit of work as the fact it
//! reports, and workers deliver it after commit — per destination in the order written,
//! with exponential backoff and jitter, honouring the receiver's `Retry-After`, and
//! never dropping one because it failed.
//!
//! Workers lease a *destination* (not a message) with `SKIP LOCKED`, so two workers never
//! deliver to one destination at once and a failed head blocks the messages behind it
//! until it goes through: order is kept.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{StorageError, WorkspaceId};

crate::define_id!(
    /// A message in the outbox.
    OutboxMessageId
);

/// What a message is, which says who delivers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    /// A usage alert's firing (`payload.alert_event_id`).
    UsageAlert,
    /// An event for a log destination (`payload` is the event itself), written by the
    /// database triggers that capture activities, API-key audit entries, finished runs
    /// and webhook verdicts.
    LogEvent,
    /// A notification: a workflow's failed runs (`payload.notice_id`) or a weekly usage
    /// report (`payload.report_id`).
    Notification,
}

impl OutboxKind {
    pub const ALL: [OutboxKind; 3] = [
        OutboxKind::UsageAlert,
        OutboxKind::LogEvent,
        OutboxKind::Notification,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            OutboxKind::UsageAlert => "usage_alert",
            OutboxKind::LogEvent => "log_event",
            OutboxKind::Notification => "notification",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxMessage {
    pub id: OutboxMessageId,
    pub workspace_id: WorkspaceId,
    /// Messages to one destination go out one at a time, in the order written
    /// (`<kind>:<id>`, e.g. `usage_alert:<alert id>`).
    pub destination: String,
    pub kind: OutboxKind,
    /// What the deliverer needs: ids and outcomes, never a secret.
    pub payload: Value,
}

/// A message waiting for delivery, as claimed.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub message: OutboxMessage,
    /// Attempts made before this one.
    pub attempts: i32,
    pub created_at: OffsetDateTime,
}

/// A destination's due messages, leased to one worker.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    pub destination: String,
    /// Oldest first.
    pub messages: Vec<Pending>,
}

/// Why an attempt failed, and when the receiver asked to be tried again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptFailure {
    /// Safe to store and show: no secret, no body.
    pub error: String,
    /// The receiver's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl AttemptFailure {
    /// A failure with no advice on when to retry.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            retry_after: None,
        }
    }
}

/// Messages of one destination dropped because they waited longer than the retention.
#[derive(Clone, Debug, PartialEq)]
pub struct Expired {
    pub workspace_id: WorkspaceId,
    pub destination: String,
    pub kind: OutboxKind,
    pub dropped: u64,
}

/// The messages of one kind waiting for delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Backlog {
    pub kind: OutboxKind,
    pub messages: u64,
    /// Seconds since the oldest of them was written (0 when there is none).
    pub oldest_seconds: f64,
}

/// The workers' side of the outbox.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxQueue: Send + Sync {
    /// Leases (for a minute) up to `destinations` destinations whose oldest message is
    /// due, skipping those another worker holds, with up to `per_destination` of their
    /// oldest messages that are due.
    async fn claim(
        &self,
        destinations: i64,
        per_destination: i64,
    ) -> Result<Vec<Claimed>, StorageError>;
    /// Removes delivered messages.
    async fn delivered(&self, ids: &[OutboxMessageId]) -> Result<(), StorageError>;
    /// Records a failed attempt of `ids`; they are due again in `retry_in`.
    async fn failed(
        &self,
        ids: &[OutboxMessageId],
        error: &str,
        retry_in: Duration,
    ) -> Result<(), StorageError>;
    /// Gives a leased destination back.
    async fn release(&self, destination: &str) -> Result<(), StorageError>;
    /// Drops the messages written more than `retention` ago, oldest first, and says
    /// how many went from which destination.
    async fn expire(&self, retention: Duration) -> Result<Vec<Expired>, StorageError>;
    /// What waits, per kind.
    async fn backlog(&self) -> Result<Vec<Backlog>, StorageError>;
}

/// Sends the messages of one kind.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Deliverer: Send + Sync {
    /// Sends `messages` (one destination's, oldest first) as one delivery: all went
    /// through, or none is taken as delivered.
    async fn deliver(&self, messages: &[Pending]) -> Result<(), AttemptFailure>;
    /// How many messages one delivery may carry.
    fn batch_size(&self) -> usize {
        1
    }
    /// Told when messages of its kind were dropped for age (to record it where the
    /// workspace sees it); nothing by default.
    async fn expired(&self, _expired: &Expired) -> Result<(), StorageError> {
        Ok(())
    }
    /// Told at each sweep how long undelivered messages are kept, to drop its own
    /// records older than that (a log destination's delivery attempts); nothing by
    /// default.
    async fn sweep(&self, _retention: Duration) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The first retry's delay; each further attempt doubles it.
pub const FIRST_RETRY: Duration = Duration::from_secs(2);
/// The longest wait between attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(3600);

/// When to try again after the `attempts`-th failed attempt (1 for the first):
/// [`FIRST_RETRY`] doubled per attempt up to [`MAX_RETRY`], of which a random part
/// (`jitter` in 0..1, up to half) is taken off so that receivers coming back are not hit
/// by every sender at once; a receiver's `Retry-After` (up to [`MAX_RETRY`]) is waited
/// for when it is longer.
pub fn retry_in(attempts: i32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
    let backoff = FIRST_RETRY
        .saturating_mul(1_u32 << doublings)
        .min(MAX_RETRY);
    let jittered = backoff.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0);
    match retry_after {
        Some(asked) => jittered.max(asked.min(MAX_RETRY)),
        None => jittered,
    }
}

/// What one round of deliveries did, for the metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Round {
    /// Per kind: messages delivered and attempts that failed.
    pub outcomes: Vec<(OutboxKind, &'static str, u64)>,
    /// Seconds from the oldest delivered message's writing to its delivery.
    pub lag_seconds: Option<f64>,
}

impl Round {
    fn count(&mut self, kind: OutboxKind, outcome: &'static str, messages: usize) {
        let messages = u64::try_from(messages).unwrap_or(u64::MAX);
        match self
            .outcomes
            .iter_mut()
            .find(|(k, o, _)| *k == kind && *o == outcome)
        {
            Some((_, _, total)) => *total += messages,
            None => self.outcomes.push((kind, outcome, messages)),
        }
    }
}

/// Delivers what is due: leases destinations, hands their messages to the deliverer of
/// their kind, and records the outcome.
pub struct Dispatcher {
    queue: Arc<dyn OutboxQueue>,
    deliverers: Vec<(OutboxKind, Arc<dyn Deliverer>)>,
    clock: Arc<dyn crate::Clock>,
    /// 0..1, a fresh value per failure (randomness is the caller's).
    jitter: Box<dyn Fn() -> f64 + Send + Sync>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

/// Destinations leased per round.
const DESTINATIONS_PER_ROUND: i64 = 20;
/// Messages read per destination per round (the largest batch).
const MESSAGES_PER_DESTINATION: i64 = 500;

impl Dispatcher {
    pub fn new(
        queue: Arc<dyn OutboxQueue>,
        deliverers: Vec<(OutboxKind, Arc<dyn Deliverer>)>,
        clock: Arc<dyn crate::Clock>,
        jitter: Box<dyn Fn() -> f64 + Send + Sync>,
    ) -> Self {
        Self {
            queue,
            deliverers,
            clock,
            jitter,
        }
    }

    /// One round: every leased destination's due messages, in order, until one fails
    /// (the rest wait behind it). Returns what happened.
    pub async fn run_due(&self) -> Result<Round, StorageError> {
        let mut round = Round::default();
        let claimed = self
            .queue
            .claim(DESTINATIONS_PER_ROUND, MESSAGES_PER_DESTINATION)
            .await?;
        for destination in claimed {
            let outcome = self.drain(&destination, &mut round).await;
            self.queue.release(&destination.destination).await?;
            outcome?;
        }
        Ok(round)
    }

    /// Drops what waited longer than `retention`, telling each kind's deliverer, and
    /// lets every deliverer drop its own records older than that.
    pub async fn expire(&self, retention: Duration) -> Result<Vec<Expired>, StorageError> {
        let expired = self.queue.expire(retention).await?;
        for (_, deliverer) in &self.deliverers {
            deliverer.sweep(retention).await?;
        }
        for dropped in &expired {
            tracing::warn!(destination = %dropped.destination, kind = dropped.kind.code(), dropped = dropped.dropped, "outbound messages dropped after the retention");
            if let Some((_, deliverer)) = self.deliverers.iter().find(|(k, _)| *k == dropped.kind) {
                deliverer.expired(dropped).await?;
            }
        }
        Ok(expired)
    }

    /// What waits, per kind.
    pub async fn backlog(&self) -> Result<Vec<Backlog>, StorageError> {
        self.queue.backlog().await
    }

    async fn drain(&self, claimed: &Claimed, round: &mut Round) -> Result<(), StorageError> {
        let mut rest = claimed.messages.as_slice();
        while let Some(first) = rest.first() {
            let kind = first.message.kind;
            let Some((_, deliverer)) = self.deliverers.iter().find(|(k, _)| *k == kind) else {
                tracing::error!(kind = kind.code(), "no deliverer for this outbox kind");
                return Ok(());
            };
            let same_kind = rest
                .iter()
                .take(deliverer.batch_size().max(1))
                .take_while(|pending| pending.message.kind == kind)
                .count();
            let (batch, after) = rest.split_at(same_kind);
            let ids: Vec<OutboxMessageId> = batch.iter().map(|p| p.message.id).collect();
            match deliverer.deliver(batch).await {
                Ok(()) => {
                    self.queue.delivered(&ids).await?;
                    round.count(kind, "delivered", batch.len());
                    let lag = (self.clock.now() - first.created_at).as_seconds_f64();
                    round.lag_seconds = Some(round.lag_seconds.map_or(lag, |seen| seen.max(lag)));
                    rest = after;
                }
                Err(failure) => {
                    let wait = retry_in(first.attempts + 1, failure.retry_after, (self.jitter)());
                    tracing::warn!(destination = %claimed.destination, kind = kind.code(), error = %failure.error, retry_in = ?wait, "outbound delivery failed");
                    self.queue.failed(&ids, &failure.error, wait).await?;
                    round.count(kind, "failed", batch.len());
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn retries_double_with_jitter_and_honour_retry_after() {
        assert_eq!(retry_in(1, None, 0.0), Duration::from_secs(2));
        assert_eq!(retry_in(2, None, 0.0), Duration::from_secs(4));
        assert_eq!(retry_in(4, None, 1.0), Duration::from_secs(8));
        assert_eq!(retry_in(40, None, 0.0), MAX_RETRY);
        assert_eq!(
            retry_in(1, Some(Duration::from_secs(30)), 0.0),
            Duration::from_secs(30)
        );
        assert_eq!(
            retry_in(1, Some(Duration::from_secs(86_400)), 0.0),
            MAX_RETRY,
            "a Retry-After is waited for up to an hour"
        );
        assert_eq!(
            retry_in(3, Some(Duration::from_secs(1)), 0.0),
            Duration::from_secs(8)
        );
    }

    fn pending(destination: &str, n: u8) -> Pending {
        Pending {
            message: OutboxMessage {
                id: OutboxMessageId::new(),
                workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
                destination: destination.into(),
                kind: OutboxKind::UsageAlert,
                payload: serde_json::json!({ "n": n }),
            },
            attempts: 0,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn dispatcher(queue: MockOutboxQueue, deliverer: MockDeliverer) -> Dispatcher {
        Dispatcher::new(
            Arc::new(queue),
            vec![(OutboxKind::UsageAlert, Arc::new(deliverer))],
            Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
            Box::new(|| 0.0),
        )
    }

    #[tokio::test]
    async fn a_failed_message_holds_back_those_behind_it_and_the_destination_is_released() {
        let messages = vec![pending("a", 1), pending("a", 2), pending("a", 3)];
        let first = messages[0].message.id;
        let second = messages[1].message.id;
        let mut queue = MockOutboxQueue::new();
        queue.expect_claim().times(1).returning(move |_, _| {
            Ok(vec![Claimed {
                destination: "a".into(),
                messages: messages.clone(),
            }])
        });
        queue
            .expect_delivered()
            .withf(move |ids| ids == [first])
            .times(1)
            .returning(|_| Ok(()));
        queue
            .expect_failed()
            .withf(move |ids, error, wait| {
                ids == [second] && error == "503" && *wait == Duration::from_secs(2)
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        queue
            .expect_release()
            .withf(|destination| destination == "a")
            .times(1)
            .returning(|_| Ok(()));
        let mut deliverer = MockDeliverer::new();
        deliverer.expect_batch_size().return_const(1_usize);
        let mut calls = 0;
        deliverer.expect_deliver().times(2).returning(move |_| {
            calls += 1;
            if calls == 1 {
                Ok(())
            } else {
                Err(AttemptFailure::new("503"))
            }
        });
        let round = dispatcher(queue, deliverer)
            .run_due()
            .await
            .expect("a round");
        assert_eq!(
            round.outcomes,
            [
                (OutboxKind::UsageAlert, "delivered", 1),
                (OutboxKind::UsageAlert, "failed", 1)
            ]
        );
    }

    #[tokio::test]
    async fn messages_go_out_in_batches_of_the_deliverers_size() {
        let messages: Vec<Pending> = (0..5).map(|n| pending("b", n)).collect();
        let mut queue = MockOutboxQueue::new();
        let claimed = messages.clone();
        queue.expect_claim().returning(move |_, _| {
            Ok(vec![Claimed {
                destination: "b".into(),
                messages: claimed.clone(),
            }])
        });
        queue.expect_delivered().times(3).returning(|_| Ok(()));
        queue.expect_release().times(1).returning(|_| Ok(()));
        let mut deliverer = MockDeliverer::new();
        deliverer.expect_batch_size().return_const(2_usize);
        deliverer
            .expect_deliver()
            .withf(|batch| !batch.is_empty() && batch.len() <= 2)
            .times(3)
            .returning(|_| Ok(()));
        let round = dispatcher(queue, deliverer)
            .run_due()
            .await
            .expect("a round");
        assert_eq!(round.outcomes, [(OutboxKind::UsageAlert, "delivered", 5)]);
    }
}
