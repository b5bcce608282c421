//! Reading and changing a test's own database directly (counts, settings the API does
//! not expose), in one place.

use std::time::Duration;

use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use fluxolab_postgres::DbPool;

use super::wait::poll;
use super::{Account, Error, TestApp};

/// A row of `SELECT count(*) AS count …`.
#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// The number `sql` (a `SELECT count(*) AS count …`) answers.
pub async fn scalar(pool: &DbPool, sql: &str) -> Result<i64, Error> {
    let row: Count = diesel::sql_query(sql)
        .get_result(&mut pool.get().await?)
        .await?;
    Ok(row.count)
}

/// Reads `sql` (as [`scalar`]) until it reaches `target` or `within` has passed; the
/// last figure read.
pub async fn wait_until(
    pool: &DbPool,
    sql: &str,
    target: i64,
    within: Duration,
) -> Result<i64, Error> {
    let reached = poll(within, || async move {
        let value = scalar(pool, sql).await?;
        Ok((value >= target).then_some(value))
    })
    .await?;
    match reached {
        Some(value) => Ok(value),
        None => scalar(pool, sql).await,
    }
}

impl TestApp {
    /// [`scalar`] on this test's database.
    pub async fn scalar(&self, sql: &str) -> Result<i64, Error> {
        scalar(self.db.pool(), sql).await
    }

    /// [`wait_until`] on this test's database.
    pub async fn wait_until(&self, sql: &str, target: i64, within: Duration) -> Result<i64, Error> {
        wait_until(self.db.pool(), sql, target, within).await
    }

    /// Counts rows of `table` (a test's own database only).
    pub async fn count(&self, table: &str) -> Result<i64, Error> {
        self.scalar(&format!("SELECT count(*) AS count FROM {table}"))
            .await
    }

    /// Runs `statement` on the test's database; the rows it touched.
    pub async fn execute(&self, statement: &str) -> Result<usize, Error> {
        Ok(diesel::sql_query(statement)
            .execute(&mut self.db.pool().get().await?)
            .await?)
    }

    /// Queues `count` runs of version 1 of `workflow` in `owner`'s default environment
    /// directly (as `/run` would, without the HTTP round trips); run `n` gets `{"n": n}`.
    pub async fn enqueue(&self, owner: &Account, workflow: &str, count: i64) -> Result<(), Error> {
        diesel::sql_query(
            "INSERT INTO executions (id, workspace_id, workflow_id, version, environment_id, status, trigger_kind, input) \
             SELECT gen_random_uuid(), $1, $2, 1, e.id, 'queued', 'run', jsonb_build_object('n', n) \
             FROM generate_series(1, $3) AS n \
             JOIN workspace_environments e ON e.workspace_id = $1 AND e.is_default",
        )
        .bind::<diesel::sql_types::Uuid, _>(owner.workspace_id.parse::<uuid::Uuid>()?)
        .bind::<diesel::sql_types::Uuid, _>(workflow.parse::<uuid::Uuid>()?)
        .bind::<diesel::sql_types::BigInt, _>(count)
        .execute(&mut self.db.pool().get().await?)
        .await?;
        Ok(())
    }

    /// Lets every workspace's nodes reach loopback (the tests' receivers live there).
    pub async fn allow_internal_network(&self) -> Result<(), Error> {
        self.execute("UPDATE workspace_settings SET allow_internal_network = true")
            .await?;
        Ok(())
    }

    /// Sets one limit of the free plan.
    pub async fn set_free_limit(&self, name: &str, value: u32) -> Result<(), Error> {
        self.execute(&format!(
            "UPDATE plans SET limits = jsonb_set(limits, '{{{name}}}', '{value}') WHERE code = 'free'"
        ))
        .await?;
        Ok(())
    }

    /// The data of the test's database as `pg_dump --data-only` writes it (from the
    /// PostgreSQL binaries `pg_config` names), to look for what must not be stored in
    /// clear.
    pub async fn pg_dump_data(&self) -> Result<String, Error> {
        let bindir = std::process::Command::new("pg_config")
            .arg("--bindir")
            .output()?;
        let pg_dump =
            std::path::Path::new(String::from_utf8_lossy(&bindir.stdout).trim()).join("pg_dump");
        let dump = std::process::Command::new(pg_dump)
            .args(["--no-owner", "--data-only", "--dbname"])
            .arg(self.db.url())
            .output()?;
        if !dump.status.success() {
            return Err(
                format!("pg_dump failed: {}", String::from_utf8_lossy(&dump.stderr)).into(),
            );
        }
        Ok(String::from_utf8_lossy(&dump.stdout).into_owned())
    }
}
