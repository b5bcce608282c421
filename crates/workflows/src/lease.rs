//! Leases and fencing: what lets a worker prove, at each write and before each side
//! effect, that a run is still its own.
//!
//! A claim gives the worker a [`LeaseToken`], drawn anew (at random) by every claim of
//! the execution; every write the worker makes for the run carries it and is refused
//! once another claim has replaced it ([`Fenced::LeaseLost`]). Between writes, the worker keeps a
//! [`LeaseClock`]: the moment its lease ends by its own monotonic clock, measured from
//! when it *sent* the claim or renewal (so it never thinks it holds longer than the
//! database does). A run stops at once when the clock runs out or a write is refused.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The fencing token of one claim of an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseToken(i64);

impl LeaseToken {
    /// The token of inline (`/test`) runs, which no worker ever claims.
    pub const INLINE: Self = Self(0);

    /// The token a claim returned.
    pub const fn new(value: i64) -> Self {
        Self(value)
    }

    /// The stored value.
    pub const fn value(self) -> i64 {
        self.0
    }
}

/// What a write conditional on a [`LeaseToken`] did.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fenced {
    /// The token still held: the write happened.
    Written,
    /// Another claim took the execution (or it ended): nothing was written.
    LeaseLost,
}

/// When a worker's lease on one run ends, by the worker's monotonic clock, and whether
/// it is known to be lost. Shared by the run, its renewals and its watchdog.
#[derive(Debug)]
pub struct LeaseClock {
    ends_at: Mutex<Instant>,
    lost: AtomicBool,
}

impl LeaseClock {
    /// A lease of `length` claimed by a request sent at `sent_at`.
    pub fn new(sent_at: Instant, length: Duration) -> Self {
        Self {
            ends_at: Mutex::new(sent_at + length),
            lost: AtomicBool::new(false),
        }
    }

    /// A lease that never ends (inline runs).
    pub fn unbounded() -> Self {
        Self::new(Instant::now(), Duration::from_secs(100 * 365 * 24 * 3600))
    }

    /// A renewal sent at `sent_at` extended the lease to at least `length` from then
    /// (it never shortens it).
    pub fn extended(&self, sent_at: Instant, length: Duration) {
        let mut ends_at = self
            .ends_at
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *ends_at = (*ends_at).max(sent_at + length);
    }

    /// The lease is gone: a write or a renewal was refused.
    pub fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// When the lease ends (by this process's clock).
    pub fn ends_at(&self) -> Instant {
        *self
            .ends_at
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// How long the lease still lasts at `now`; `None` once it is lost or over.
    pub fn left(&self, now: Instant) -> Option<Duration> {
        if self.lost.load(Ordering::SeqCst) {
            return None;
        }
        self.ends_at()
            .checked_duration_since(now)
            .filter(|left| !left.is_zero())
    }

    /// Whether the lease is lost or over at `now`.
    pub fn is_over(&self, now: Instant) -> bool {
        self.left(now).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_lasts_its_length_from_when_the_claim_was_sent() {
        let sent = Instant::now();
        let clock = LeaseClock::new(sent, Duration::from_secs(30));
        assert_eq!(clock.left(sent), Some(Duration::from_secs(30)));
        assert_eq!(
            clock.left(sent + Duration::from_secs(20)),
            Some(Duration::from_secs(10))
        );
        assert!(clock.is_over(sent + Duration::from_secs(30)));
    }

    #[test]
    fn a_renewal_extends_but_never_shortens() {
        let sent = Instant::now();
        let clock = LeaseClock::new(sent, Duration::from_secs(300));
        clock.extended(sent + Duration::from_secs(10), Duration::from_secs(30));
        assert_eq!(clock.ends_at(), sent + Duration::from_secs(300));
        clock.extended(sent + Duration::from_secs(290), Duration::from_secs(30));
        assert_eq!(clock.ends_at(), sent + Duration::from_secs(320));
    }

    #[test]
    fn a_lost_lease_has_nothing_left() {
        let sent = Instant::now();
        let clock = LeaseClock::new(sent, Duration::from_secs(30));
        clock.lose();
        assert_eq!(clock.left(sent), None);
    }
}
