//! The Postgres implementation of the HTTP layer's database probe.

use async_trait::async_trait;
use fluxolab_http::{DatabaseProbe, PoolStatus, QueueStatus};
use fluxolab_postgres::{DbPool, readiness};

/// Readiness and pool state from the real pool.
pub struct PostgresProbe {
    pool: DbPool,
    embedded_versions: Vec<String>,
}

impl std::fmt::Debug for PostgresProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresProbe")
            .field("embedded_versions", &self.embedded_versions)
            .finish_non_exhaustive()
    }
}

impl PostgresProbe {
    pub fn new(pool: DbPool, embedded_versions: Vec<String>) -> Self {
        Self {
            pool,
            embedded_versions,
        }
    }
}

#[async_trait]
impl DatabaseProbe for PostgresProbe {
    async fn readiness(&self) -> Result<(), String> {
        readiness::check(&self.pool, &self.embedded_versions)
            .await
            .map_err(|error| error.to_string())
    }

    async fn queue_status(&self) -> Option<QueueStatus> {
        readiness::queue_status(&self.pool)
            .await
            .map(|(queued, running, lag_seconds, busiest)| QueueStatus {
                queued,
                running,
                lag_seconds,
                busiest: busiest
                    .into_iter()
                    .map(|(workspace, depth, oldest_due_seconds)| {
                        fluxolab_telemetry::WorkspaceQueue {
                            workspace_id: workspace.to_string(),
                            depth,
                            oldest_due_seconds,
                        }
                    })
                    .collect(),
            })
            .ok()
    }

    fn pool_status(&self) -> PoolStatus {
        let status = self.pool.status();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}
