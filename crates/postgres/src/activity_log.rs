//! Writing to the activity log, shared by every repository that audits its changes.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{Actor, StorageError, WorkspaceId};
use serde_json::Value;
use uuid::Uuid;

use crate::error::storage;
use crate::schema::activities;

/// One activity row to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = activities)]
pub struct ActivityRow<'a> {
    id: Uuid,
    workspace_id: Uuid,
    actor_user_id: Option<Uuid>,
    actor_api_key_id: Option<Uuid>,
    action: &'a str,
    target_type: Option<&'a str>,
    target_id: Option<String>,
    metadata: &'a Value,
}

impl<'a> ActivityRow<'a> {
    pub fn new(
        workspace: WorkspaceId,
        actor: Option<Actor>,
        action: &'a str,
        target: Option<(&'a str, String)>,
        metadata: &'a Value,
    ) -> Self {
        let (actor_user_id, actor_api_key_id) = match actor {
            Some(Actor::User(user)) => (Some(user.as_uuid()), None),
            Some(Actor::ApiKey(key)) => (None, Some(key.as_uuid())),
            None => (None, None),
        };
        let (target_type, target_id) =
            target.map_or((None, None), |(kind, id)| (Some(kind), Some(id)));
        Self {
            id: Uuid::now_v7(),
            workspace_id: workspace.as_uuid(),
            actor_user_id,
            actor_api_key_id,
            action,
            target_type,
            target_id,
            metadata,
        }
    }

    /// Inserts the row on `connection` (inside the caller's transaction, if any).
    pub async fn insert(&self, connection: &mut AsyncPgConnection) -> Result<(), StorageError> {
        diesel::insert_into(activities::table)
            .values(self)
            .execute(connection)
            .await
            .map_err(storage)?;
        Ok(())
    }
}

crate::repository::pg_repository!(
    /// The activity log over the pool.
    PgAudit
);

fn row(event: &fluxolab_kernel::AuditEvent) -> ActivityRow<'_> {
    ActivityRow::new(
        event.workspace_id,
        event.actor,
        event.action,
        event.target.as_ref().map(|(kind, id)| (*kind, id.clone())),
        &event.metadata,
    )
}

#[async_trait::async_trait]
impl fluxolab_kernel::AuditLog for PgAudit {
    #[tracing::instrument(name = "db.activity.record_in", level = "debug", skip_all)]
    async fn record_in(
        &self,
        uow: &mut fluxolab_kernel::Uow,
        event: &fluxolab_kernel::AuditEvent,
    ) -> Result<(), StorageError> {
        row(event)
            .insert(crate::unit_of_work::connection_of(uow)?)
            .await
    }

    #[tracing::instrument(name = "db.activity.record", level = "debug", skip_all)]
    async fn record(&self, event: &fluxolab_kernel::AuditEvent) -> Result<(), StorageError> {
        row(event)
            .insert(&mut *crate::pool::pooled(&self.pool).await?)
            .await
    }
}
