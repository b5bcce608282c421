//! Log destinations: their rows (configuration without secrets, the vault entries of
//! their secrets, how deliveries go), their outbox queues and their delivery attempts.

use async_trait::async_trait;
use diesel::dsl::IntervalDsl;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{CredentialId, PageRequest, StorageError, Uow, WorkspaceId};
use fluxolab_workspace::log_destinations::model::outbox_destination;
use fluxolab_workspace::log_destinations::{
    DeliveryAttempt, DestinationConfig, DestinationStatus, EventType, LogDestination,
    LogDestinationId, LogDestinationRepository,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{log_destination_deliveries, log_destinations};
use crate::sql::now_tz;
use crate::unit_of_work::connection_of;

use log_destination_deliveries as attempts;
use log_destinations as destinations;

crate::repository::pg_repository!(
    /// Log destinations over the pool.
    PgLogDestinations
);

#[derive(Queryable, Selectable)]
#[diesel(table_name = log_destinations, check_for_backend(diesel::pg::Pg))]
struct DestinationRow {
    id: Uuid,
    workspace_id: Uuid,
    name: String,
    kind: String,
    event_types: Vec<Option<String>>,
    enabled: bool,
    config: Value,
    secret_headers_credential_id: Option<Uuid>,
    signing_secret_credential_id: Option<Uuid>,
    previous_secret_credential_id: Option<Uuid>,
    previous_secret_expires_at: Option<OffsetDateTime>,
    status: String,
    failing_since: Option<OffsetDateTime>,
    last_delivered_at: Option<OffsetDateTime>,
    revision: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn destination(row: DestinationRow) -> Result<LogDestination, StorageError> {
    let config = DestinationConfig::from_stored(&row.kind, &row.config)
        .ok_or_else(|| corrupt(format!("log destination {}: config is not valid", row.id)))?;
    let event_types = row
        .event_types
        .iter()
        .map(|code| code.as_deref().and_then(EventType::from_code))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| corrupt("stored log event type is not valid"))?;
    Ok(LogDestination {
        id: LogDestinationId::from_uuid(row.id),
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        name: row.name,
        event_types,
        enabled: row.enabled,
        config,
        secret_headers: row
            .secret_headers_credential_id
            .map(CredentialId::from_uuid),
        signing_secret: row
            .signing_secret_credential_id
            .map(CredentialId::from_uuid),
        previous_secret: row
            .previous_secret_credential_id
            .map(CredentialId::from_uuid)
            .zip(row.previous_secret_expires_at),
        status: DestinationStatus::from_code(&row.status)
            .ok_or_else(|| corrupt("stored log destination status is not valid"))?,
        failing_since: row.failing_since,
        last_delivered_at: row.last_delivered_at,
        revision: row.revision,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn codes(destination: &LogDestination) -> Vec<&'static str> {
    destination
        .event_types
        .iter()
        .map(|kind| kind.code())
        .collect()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = log_destination_deliveries, check_for_backend(diesel::pg::Pg))]
struct AttemptRow {
    id: Uuid,
    workspace_id: Uuid,
    destination_id: Uuid,
    attempted_at: OffsetDateTime,
    events: i32,
    outcome: String,
    status_code: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
    test: bool,
}

fn attempt(row: AttemptRow) -> DeliveryAttempt {
    DeliveryAttempt {
        id: row.id,
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        destination_id: LogDestinationId::from_uuid(row.destination_id),
        attempted_at: row.attempted_at,
        events: u32::try_from(row.events).unwrap_or_default(),
        delivered: row.outcome == "delivered",
        status_code: row.status_code.and_then(|code| u16::try_from(code).ok()),
        latency_ms: u32::try_from(row.latency_ms).unwrap_or_default(),
        error: row.error,
        test: row.test,
    }
}

#[async_trait]
impl LogDestinationRepository for PgLogDestinations {
    #[tracing::instrument(name = "db.log_destinations.list", level = "debug", skip_all)]
    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<LogDestination>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<DestinationRow> = destinations::table
            .filter(destinations::workspace_id.eq(workspace.as_uuid()))
            .order((destinations::created_at, destinations::id))
            .select(DestinationRow::as_select())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        rows.into_iter().map(destination).collect()
    }

    #[tracing::instrument(name = "db.log_destinations.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: LogDestinationId,
    ) -> Result<Option<LogDestination>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<DestinationRow> = destinations::table
            .filter(destinations::workspace_id.eq(workspace.as_uuid()))
            .filter(destinations::id.eq(id.as_uuid()))
            .select(DestinationRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(destination).transpose()
    }

    #[tracing::instrument(name = "db.log_destinations.find_by_name", level = "debug", skip_all)]
    async fn find_by_name<'a>(
        &self,
        workspace: WorkspaceId,
        name: &'a str,
    ) -> Result<Option<LogDestination>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<DestinationRow> = destinations::table
            .filter(destinations::workspace_id.eq(workspace.as_uuid()))
            .filter(destinations::name.eq(name))
            .select(DestinationRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(destination).transpose()
    }

    #[tracing::instrument(name = "db.log_destinations.get", level = "debug", skip_all)]
    async fn get(&self, id: LogDestinationId) -> Result<Option<LogDestination>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<DestinationRow> = destinations::table
            .find(id.as_uuid())
            .select(DestinationRow::as_select())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(destination).transpose()
    }

    #[tracing::instrument(name = "db.log_destinations.insert", level = "debug", skip_all)]
    async fn insert(
        &self,
        unit: &mut Uow,
        destination: &LogDestination,
    ) -> Result<(), StorageError> {
        let connection = connection_of(unit)?;
        diesel::insert_into(destinations::table)
            .values((
                destinations::id.eq(destination.id.as_uuid()),
                destinations::workspace_id.eq(destination.workspace_id.as_uuid()),
                destinations::name.eq(&destination.name),
                destinations::kind.eq(destination.config.kind()),
                destinations::event_types.eq(codes(destination)),
                destinations::enabled.eq(destination.enabled),
                destinations::config.eq(destination.config.to_json()),
                destinations::secret_headers_credential_id
                    .eq(destination.secret_headers.map(|id| id.as_uuid())),
                destinations::signing_secret_credential_id
                    .eq(destination.signing_secret.map(|id| id.as_uuid())),
                destinations::revision.eq(destination.revision),
                destinations::created_at.eq(destination.created_at),
                destinations::updated_at.eq(destination.updated_at),
            ))
            .execute(&mut *connection)
            .await
            .map_err(storage)?;
        crate::outbox::open_destination(
            connection,
            &destination.outbox_destination(),
            destination.workspace_id,
        )
        .await
    }

    #[tracing::instrument(name = "db.log_destinations.update", level = "debug", skip_all)]
    async fn update(
        &self,
        unit: &mut Uow,
        destination: &LogDestination,
    ) -> Result<(), StorageError> {
        diesel::update(
            destinations::table
                .filter(destinations::workspace_id.eq(destination.workspace_id.as_uuid()))
                .filter(destinations::id.eq(destination.id.as_uuid())),
        )
        .set((
            destinations::name.eq(&destination.name),
            destinations::event_types.eq(codes(destination)),
            destinations::enabled.eq(destination.enabled),
            destinations::config.eq(destination.config.to_json()),
            destinations::secret_headers_credential_id
                .eq(destination.secret_headers.map(|id| id.as_uuid())),
            destinations::signing_secret_credential_id
                .eq(destination.signing_secret.map(|id| id.as_uuid())),
            destinations::previous_secret_credential_id
                .eq(destination.previous_secret.map(|(id, _)| id.as_uuid())),
            destinations::previous_secret_expires_at
                .eq(destination.previous_secret.map(|(_, until)| until)),
            destinations::revision.eq(destination.revision),
            destinations::updated_at.eq(destination.updated_at),
        ))
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.log_destinations.delete", level = "debug", skip_all)]
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: LogDestinationId,
    ) -> Result<(), StorageError> {
        let connection = connection_of(unit)?;
        crate::outbox::close_destination(&mut *connection, &outbox_destination(id)).await?;
        diesel::delete(
            destinations::table
                .filter(destinations::workspace_id.eq(workspace.as_uuid()))
                .filter(destinations::id.eq(id.as_uuid())),
        )
        .execute(connection)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.log_destinations.set_health", level = "debug", skip_all)]
    async fn set_health(
        &self,
        unit: &mut Uow,
        id: LogDestinationId,
        status: DestinationStatus,
        failing_since: Option<OffsetDateTime>,
        last_delivered_at: Option<OffsetDateTime>,
    ) -> Result<(), StorageError> {
        diesel::update(destinations::table.find(id.as_uuid()))
            .set((
                destinations::status.eq(status.code()),
                destinations::failing_since.eq(failing_since),
                destinations::last_delivered_at.eq(last_delivered_at),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.log_destinations.record_attempt", level = "debug", skip_all)]
    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::insert_into(attempts::table)
            .values((
                attempts::id.eq(attempt.id),
                attempts::workspace_id.eq(attempt.workspace_id.as_uuid()),
                attempts::destination_id.eq(attempt.destination_id.as_uuid()),
                attempts::attempted_at.eq(attempt.attempted_at),
                attempts::events.eq(i32::try_from(attempt.events).unwrap_or(i32::MAX)),
                attempts::outcome.eq(if attempt.delivered {
                    "delivered"
                } else {
                    "failed"
                }),
                attempts::status_code.eq(attempt.status_code.map(i32::from)),
                attempts::latency_ms.eq(i32::try_from(attempt.latency_ms).unwrap_or(i32::MAX)),
                attempts::error.eq(attempt.error.as_deref()),
                attempts::test.eq(attempt.test),
            ))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.log_destinations.prune_attempts", level = "debug", skip_all)]
    async fn prune_attempts(&self, age: std::time::Duration) -> Result<u64, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // The cut-off on the database's clock, like the outbox's retention.
        let age = i64::try_from(age.as_millis())
            .unwrap_or(i64::MAX)
            .milliseconds();
        let deleted =
            diesel::delete(attempts::table.filter(attempts::attempted_at.lt(now_tz() - age)))
                .execute(&mut connection)
                .await
                .map_err(storage)?;
        Ok(u64::try_from(deleted).unwrap_or_default())
    }

    #[tracing::instrument(name = "db.log_destinations.attempts", level = "debug", skip_all)]
    async fn attempts(
        &self,
        workspace: WorkspaceId,
        id: LogDestinationId,
        page: PageRequest,
    ) -> Result<Vec<DeliveryAttempt>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::newest_first!(
            attempts::table
                .filter(attempts::workspace_id.eq(workspace.as_uuid()))
                .filter(attempts::destination_id.eq(id.as_uuid())),
            page,
            attempts::attempted_at,
            attempts::id
        );
        let rows: Vec<AttemptRow> = query
            .select(AttemptRow::as_select())
            .load(&mut connection)
            .await
            .map_err(storage)?;
        Ok(rows.into_iter().map(attempt).collect())
    }
}
