//! Integration events (written by every integration feature, read by the status and
//! its event list) and the counts of what each workspace has configured.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{
    Actor, ApiKeyId, IntegrationEvent, IntegrationEvents, IntegrationKind, Page, PageRequest,
    StorageError, Uow, UserId, WorkspaceId,
};
use fluxolab_workspace::integrations::{
    IntegrationEventFilter, IntegrationRepository, KindCounts, LatestCheck,
    RecordedIntegrationEvent,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, storage};
use crate::pool::pooled;
use crate::schema::{
    log_destinations, webhook_registrations, workspace_connectors, workspace_integration_events,
    workspace_ldap_configs, workspace_secret_providers, workspace_sso_configs,
};
use crate::unit_of_work::connection_of;

crate::repository::pg_repository!(
    /// Integration events and counts over the pool.
    PgIntegrations
);

async fn insert(
    connection: &mut AsyncPgConnection,
    event: &IntegrationEvent,
) -> Result<(), StorageError> {
    let (user, key) = match event.actor {
        Some(Actor::User(user)) => (Some(user.as_uuid()), None),
        Some(Actor::ApiKey(key)) => (None, Some(key.as_uuid())),
        None => (None, None),
    };
    diesel::insert_into(workspace_integration_events::table)
        .values((
            workspace_integration_events::id.eq(Uuid::now_v7()),
            workspace_integration_events::workspace_id.eq(event.workspace_id.as_uuid()),
            workspace_integration_events::kind.eq(event.kind.code()),
            workspace_integration_events::integration_id.eq(event.integration_id),
            workspace_integration_events::event.eq(event.event.code()),
            workspace_integration_events::details.eq(&event.details),
            workspace_integration_events::actor_user_id.eq(user),
            workspace_integration_events::actor_api_key_id.eq(key),
        ))
        .execute(connection)
        .await
        .map_err(storage)?;
    Ok(())
}

#[async_trait]
impl IntegrationEvents for PgIntegrations {
    #[tracing::instrument(name = "db.integration_events.record_in", level = "debug", skip_all)]
    async fn record_in(&self, uow: &mut Uow, event: &IntegrationEvent) -> Result<(), StorageError> {
        insert(connection_of(uow)?, event).await
    }

    #[tracing::instrument(name = "db.integration_events.record", level = "debug", skip_all)]
    async fn record(&self, event: &IntegrationEvent) -> Result<(), StorageError> {
        insert(&mut *pooled(&self.pool).await?, event).await
    }
}

type EventRow = (
    Uuid,
    String,
    Option<Uuid>,
    String,
    Value,
    Option<Uuid>,
    Option<Uuid>,
    OffsetDateTime,
);

fn recorded(row: EventRow) -> Result<RecordedIntegrationEvent, StorageError> {
    let (id, kind, integration_id, event, details, user, key, created_at) = row;
    let actor = match (user, key) {
        (Some(user), _) => Some(Actor::User(UserId::from_uuid(user))),
        (None, Some(key)) => Some(Actor::ApiKey(ApiKeyId::from_uuid(key))),
        (None, None) => None,
    };
    Ok(RecordedIntegrationEvent {
        id,
        kind: kind.parse().map_err(|error| corrupt(format!("{error}")))?,
        integration_id,
        event: event.parse().map_err(|error| corrupt(format!("{error}")))?,
        details,
        actor,
        created_at,
    })
}

fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[async_trait]
impl IntegrationRepository for PgIntegrations {
    #[tracing::instrument(name = "db.integrations.counts", level = "debug", skip_all)]
    async fn counts(
        &self,
        workspace: WorkspaceId,
    ) -> Result<BTreeMap<IntegrationKind, KindCounts>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // How many rows of `$table` the workspace has, by `enabled`.
        macro_rules! by_enabled {
            ($table:ident) => {{
                let rows: Vec<(bool, i64)> = $table::table
                    .filter($table::workspace_id.eq(workspace.as_uuid()))
                    .group_by($table::enabled)
                    .select(($table::enabled, count_star()))
                    .load(&mut connection)
                    .await
                    .map_err(storage)?;
                rows
            }};
        }
        let webhooks = by_enabled!(webhook_registrations);
        let providers = by_enabled!(workspace_secret_providers);
        let connectors = by_enabled!(workspace_connectors);
        let ldap = by_enabled!(workspace_ldap_configs);
        let sso = by_enabled!(workspace_sso_configs);
        let log_destinations = by_enabled!(log_destinations);
        let mut counts = BTreeMap::new();
        for (kind, rows) in [
            (IntegrationKind::Webhooks, webhooks),
            (IntegrationKind::SecretProviders, providers),
            (IntegrationKind::Sso, sso),
            (IntegrationKind::Connectors, connectors),
            (IntegrationKind::Ldap, ldap),
            (IntegrationKind::LogDestinations, log_destinations),
        ] {
            let mut of_kind = KindCounts::default();
            for (enabled, n) in rows {
                of_kind.configured += count(n);
                if enabled {
                    of_kind.enabled += count(n);
                }
            }
            if of_kind.configured > 0 {
                counts.insert(kind, of_kind);
            }
        }
        Ok(counts)
    }

    #[tracing::instrument(name = "db.integrations.latest_checks", level = "debug", skip_all)]
    async fn latest_checks(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<LatestCheck>, StorageError> {
        use workspace_integration_events as events;
        let mut connection = pooled(&self.pool).await?;
        let rows: Vec<(String, Option<Uuid>, String, Value, OffsetDateTime)> = events::table
            .filter(events::workspace_id.eq(workspace.as_uuid()))
            .filter(events::event.eq_any(["tested", "test_failed", "delivery_failed"]))
            .distinct_on((events::kind, events::integration_id))
            .order((
                events::kind,
                events::integration_id,
                events::created_at.desc(),
                events::id.desc(),
            ))
            .select((
                events::kind,
                events::integration_id,
                events::event,
                events::details,
                events::created_at,
            ))
            .load(&mut connection)
            .await
            .map_err(storage)?;
        // The checks of integrations removed since say nothing of what is configured.
        let removed: Vec<Option<Uuid>> = events::table
            .filter(events::workspace_id.eq(workspace.as_uuid()))
            .filter(events::event.eq("removed"))
            .select(events::integration_id)
            .load(&mut connection)
            .await
            .map_err(storage)?;
        rows.into_iter()
            .filter(|(_, integration_id, ..)| {
                integration_id.is_none() || !removed.contains(integration_id)
            })
            .map(|(kind, integration_id, event, details, at)| {
                Ok(LatestCheck {
                    kind: kind.parse().map_err(|error| corrupt(format!("{error}")))?,
                    integration_id,
                    event: event.parse().map_err(|error| corrupt(format!("{error}")))?,
                    at,
                    error: details
                        .get("error")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "db.integrations.events", level = "debug", skip_all)]
    async fn events(
        &self,
        workspace: WorkspaceId,
        filter: &IntegrationEventFilter,
        page: PageRequest,
    ) -> Result<Page<RecordedIntegrationEvent>, StorageError> {
        use workspace_integration_events as events;
        let mut connection = pooled(&self.pool).await?;
        let mut query = events::table
            .filter(events::workspace_id.eq(workspace.as_uuid()))
            .select((
                events::id,
                events::kind,
                events::integration_id,
                events::event,
                events::details,
                events::actor_user_id,
                events::actor_api_key_id,
                events::created_at,
            ))
            .order((events::created_at.desc(), events::id.desc()))
            .limit(page.fetch_limit())
            .into_boxed();
        if let Some(kind) = filter.kind {
            query = query.filter(events::kind.eq(kind.code()));
        }
        if let Some(since) = filter.since {
            query = query.filter(events::created_at.ge(since));
        }
        if let Some(after) = page.after() {
            query = query.filter(crate::keyset::before!(
                events::created_at,
                events::id,
                after
            ));
        }
        let rows: Vec<EventRow> = query.load(&mut connection).await.map_err(storage)?;
        let items = rows
            .into_iter()
            .map(recorded)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(
            items,
            page,
            RecordedIntegrationEvent::cursor,
        ))
    }
}
