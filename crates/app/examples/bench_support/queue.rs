//! What the queue benches share: the services at their defaults (or at the `WORKERS`
//! and `DATABASE_POOL_SIZE` of the environment), a workspace with the
//! three-node workflow, and a backlog inserted in one statement.

use std::sync::Arc;

use diesel_async::RunQueryDsl;
use fluxolab_app::Settings;
use fluxolab_http::Services;
use fluxolab_kernel::SystemClock;
use fluxolab_postgres::DbPool;
use fluxolab_workflows::service::CreateWorkflow;

use crate::common::{Error, count, migrate, register_owner};

/// The migrated scratch database, its pool and the services, at the default settings
/// (but `WORKERS` and `DATABASE_POOL_SIZE` when the environment sets them).
pub struct Bench {
    pub settings: Settings,
    pub pool: DbPool,
    pub services: Services,
}

impl Bench {
    pub async fn start(url: &str) -> Result<Self, Error> {
        migrate(url).await?;
        let settings = Settings::from_lookup(|variable| match variable {
            "DATABASE_URL" => Some(url.to_owned()),
            "APP_SECRET" => Some("bench-secret-bench-secret-bench-secret".to_owned()),
            // To measure another configuration against the defaults.
            "WORKERS" | "DATABASE_POOL_SIZE" => std::env::var(variable).ok(),
            _ => None,
        })?;
        let pool = fluxolab_app::startup::pool(&settings.database)?;
        fluxolab_postgres::seed::seed_reference_data(&mut *pool.get().await?).await?;
        // Observed as `fluxolab serve` observes its workers, so figures include metrics.
        let metrics = fluxolab_telemetry::MetricsRegistry::new();
        let services = fluxolab_app::startup::services(
            &pool,
            &settings,
            Arc::new(SystemClock),
            Arc::new(metrics.executions().clone()),
        )?;
        Ok(Self {
            settings,
            pool,
            services,
        })
    }

    /// A user and workspace as registration makes them, with the three-node workflow
    /// (trigger.manual → data.set → flow.if); returns the workspace and workflow ids.
    pub async fn workspace_with_workflow(
        &self,
        email: &str,
    ) -> Result<(uuid::Uuid, uuid::Uuid), Error> {
        let (owner, workspace) = register_owner(&self.services, email).await?;
        let definition = serde_json::from_value(serde_json::json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"total": "{{ trigger.body.a + trigger.body.b }}"}}},
                {"id": "check", "type": "flow.if", "name": "Big?", "params": {"condition": "{{ nodes.shape.output.total > 10 }}"}}
            ],
            "connections": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "check"}]
        }))?;
        let workflow = self
            .services
            .workflows
            .create(
                &owner,
                CreateWorkflow {
                    name: "Bench".into(),
                    description: None,
                    definition: Some(definition),
                    error_workflow_id: None,
                },
            )
            .await?;
        Ok((workspace.as_uuid(), workflow.id.as_uuid()))
    }

    /// Queues `count` runs of `workflow` in one statement, due now; returns once the
    /// statement is committed (a second statement on the same connection runs only after
    /// the first one's commit, whenever the driver hands back the first one's answer).
    pub async fn enqueue(
        &self,
        (workspace, workflow): (uuid::Uuid, uuid::Uuid),
        count: i64,
    ) -> Result<(), Error> {
        let mut connection = self.pool.get().await?;
        diesel::sql_query(
            "WITH queued AS ( \
               INSERT INTO executions (id, workspace_id, workflow_id, version, environment_id, status, trigger_kind, input) \
               SELECT gen_random_uuid(), $1, $2, 1, e.id, 'queued', 'run', jsonb_build_object('a', n % 7, 'b', n % 11) \
               FROM generate_series(1, $3) AS n \
               JOIN workspace_environments e ON e.workspace_id = $1 AND e.is_default \
               RETURNING 1) \
             SELECT count(*), pg_notify('fluxolab_executions', '') FROM queued",
        )
        .bind::<diesel::sql_types::Uuid, _>(workspace)
        .bind::<diesel::sql_types::Uuid, _>(workflow)
        .bind::<diesel::sql_types::BigInt, _>(count)
        .execute(&mut connection)
        .await?;
        diesel::sql_query("SELECT 1")
            .execute(&mut connection)
            .await?;
        Ok(())
    }

    /// Runs finished so far.
    pub async fn finished(&self) -> Result<i64, Error> {
        count(
            &self.pool,
            "SELECT count(*) AS count FROM executions WHERE status IN ('succeeded', 'failed')",
        )
        .await
    }
}
