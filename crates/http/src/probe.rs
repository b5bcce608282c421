//! The port through which ops routes learn about the database.

use async_trait::async_trait;

/// A snapshot of the connection pool, exported as gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

/// The queue right now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueStatus {
    pub queued: i64,
    pub running: i64,
    /// How long the oldest due, unclaimed execution has waited, in seconds.
    pub lag_seconds: f64,
    /// The workspaces with the most due runs, deepest first.
    pub busiest: Vec<fluxolab_telemetry::WorkspaceQueue>,
}

/// Readiness and pool state of the database, implemented by the Postgres adapter's wiring.
#[async_trait]
pub trait DatabaseProbe: Send + Sync {
    /// `Ok` when the database answers and every migration is applied; else the reason.
    async fn readiness(&self) -> Result<(), String>;

    /// The pool right now.
    fn pool_status(&self) -> PoolStatus;

    /// The execution queue right now (`None` when it cannot be read).
    async fn queue_status(&self) -> Option<QueueStatus>;
}
