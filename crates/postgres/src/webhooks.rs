//! Webhook registrations, their binding to workflows on activation, and the workers'
//! wake-up after deliveries (the events themselves are in [`crate::webhook_events`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{
    CredentialId, EnvironmentId, EnvironmentRef, Page, PageRequest, StorageError, Uow, UserId,
    WorkflowId, WorkspaceId,
};
use fluxolab_webhooks::model::{Provider, Registration, ResponseMode, WebhookRegistrationId};
use fluxolab_webhooks::ports::RegistrationRepository;
use fluxolab_workflows::ports::WebhookBindings;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::DbPool;
use crate::error::storage;
use crate::intake_batch::IntakeWriter;
use crate::pool::pooled;
use crate::schema::{webhook_registrations, workflows, workspace_environments};
use crate::unit_of_work::connection_of;

/// Webhook registrations and events over the pool.
#[derive(Clone)]
pub struct PgWebhooks {
    pool: DbPool,
    wake: WorkerWake,
    /// Where the intake's writer runs: the runtime this was built on, if any, else the
    /// one of the first delivery.
    runtime: Option<tokio::runtime::Handle>,
    writer: Arc<OnceLock<IntakeWriter>>,
}

/// How long a wake-up waits to gather the executions queued meanwhile.
const WAKE_AFTER: Duration = Duration::from_millis(2);

crate::repository::opaque_debug!(PgWebhooks);

impl PgWebhooks {
    pub fn new(pool: DbPool) -> Self {
        Self {
            wake: WorkerWake {
                pool: pool.clone(),
                pending: Arc::default(),
            },
            pool,
            runtime: tokio::runtime::Handle::try_current().ok(),
            writer: Arc::default(),
        }
    }

    pub(crate) fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// The group-commit writer of the intake, started on first use.
    pub(crate) fn writer(&self) -> &IntakeWriter {
        self.writer.get_or_init(|| {
            let runtime = self
                .runtime
                .clone()
                .unwrap_or_else(tokio::runtime::Handle::current);
            let wake = self.wake.clone();
            let written: Arc<dyn Fn() + Send + Sync> = Arc::new(move || wake.wake());
            IntakeWriter::start(&self.pool, &runtime, &written)
        })
    }
}

/// Wakes idle workers after executions were queued.
#[derive(Clone)]
struct WorkerWake {
    pool: DbPool,
    /// Whether a wake-up is already on its way.
    pending: Arc<AtomicBool>,
}

impl WorkerWake {
    /// Tells idle workers (in any process) that executions were queued, after the
    /// commit and at most once per [`WAKE_AFTER`]: a burst of deliveries costs one
    /// `NOTIFY`, not one each. A lost wake-up costs at most the workers' poll interval.
    fn wake(&self) {
        if self.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, pending) = (self.pool.clone(), self.pending.clone());
        tokio::spawn(async move {
            tokio::time::sleep(WAKE_AFTER).await;
            pending.store(false, Ordering::Release);
            let notified = match pooled(&pool).await {
                Ok(mut connection) => {
                    // Raw: `pg_notify` is a bare function call, without a table.
                    diesel::sql_query("SELECT pg_notify('fluxolab_executions', '')")
                        .execute(&mut connection)
                        .await
                        .map(drop)
                        .map_err(storage)
                }
                Err(error) => Err(error),
            };
            if let Err(error) = notified {
                tracing::debug!(%error, "could not wake the workers; they poll anyway");
            }
        });
    }
}

pub(crate) fn corrupt(what: &str) -> StorageError {
    crate::error::corrupt(format!("stored {what} is not valid"))
}

type RegistrationRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    Option<String>,
    Option<Uuid>,
    Option<Uuid>,
    String,
    bool,
    OffsetDateTime,
    OffsetDateTime,
    Uuid,
    String,
);

/// The columns of a [`RegistrationRow`], from the registration joined to its environment.
macro_rules! registration_columns {
    () => {
        (
            webhook_registrations::id,
            webhook_registrations::workspace_id,
            webhook_registrations::name,
            webhook_registrations::provider,
            webhook_registrations::public_id,
            webhook_registrations::verify_token_hash,
            webhook_registrations::signing_credential_id,
            webhook_registrations::workflow_id,
            webhook_registrations::response_mode,
            webhook_registrations::enabled,
            webhook_registrations::created_at,
            webhook_registrations::updated_at,
            webhook_registrations::environment_id,
            workspace_environments::name,
        )
    };
}

fn registration(row: RegistrationRow) -> Result<Registration, StorageError> {
    let (
        id,
        workspace,
        name,
        provider,
        public_id,
        verify_token_hash,
        signing_credential_id,
        workflow,
        response_mode,
        enabled,
        created_at,
        updated_at,
        environment_id,
        environment_name,
    ) = row;
    Ok(Registration {
        id: WebhookRegistrationId::from_uuid(id),
        workspace_id: WorkspaceId::from_uuid(workspace),
        name,
        provider: Provider::from_code(&provider).ok_or_else(|| corrupt("provider"))?,
        public_id,
        verify_token_hash,
        signing_credential_id: signing_credential_id.map(CredentialId::from_uuid),
        workflow_id: workflow.map(WorkflowId::from_uuid),
        environment: EnvironmentRef {
            id: EnvironmentId::from_uuid(environment_id),
            name: environment_name,
        },
        response_mode: ResponseMode::from_code(&response_mode)
            .ok_or_else(|| corrupt("response mode"))?,
        enabled,
        created_at,
        updated_at,
    })
}

#[async_trait]
impl RegistrationRepository for PgWebhooks {
    #[tracing::instrument(name = "db.webhooks.list", level = "debug", skip_all)]
    async fn list(
        &self,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Registration>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let query = crate::keyset::newest_first!(
            webhook_registrations::table
                .inner_join(workspace_environments::table)
                .filter(webhook_registrations::workspace_id.eq(workspace.as_uuid()))
                .select(registration_columns!()),
            page,
            webhook_registrations::created_at,
            webhook_registrations::id
        );
        let rows: Vec<RegistrationRow> = query.load(&mut connection).await.map_err(storage)?;
        crate::keyset::page_of(rows, page, registration, Registration::cursor)
    }

    #[tracing::instrument(name = "db.webhooks.find", level = "debug", skip_all)]
    async fn find(
        &self,
        workspace: WorkspaceId,
        id: WebhookRegistrationId,
    ) -> Result<Option<Registration>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<RegistrationRow> = webhook_registrations::table
            .inner_join(workspace_environments::table)
            .filter(webhook_registrations::workspace_id.eq(workspace.as_uuid()))
            .filter(webhook_registrations::id.eq(id.as_uuid()))
            .select(registration_columns!())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(registration).transpose()
    }

    #[tracing::instrument(name = "db.webhooks.find_public", level = "debug", skip_all)]
    async fn find_public(&self, public_id: &str) -> Result<Option<Registration>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let row: Option<RegistrationRow> = webhook_registrations::table
            .inner_join(workspace_environments::table)
            .filter(webhook_registrations::public_id.eq(public_id))
            .select(registration_columns!())
            .first(&mut connection)
            .await
            .optional()
            .map_err(storage)?;
        row.map(registration).transpose()
    }

    #[tracing::instrument(name = "db.webhooks.insert", level = "debug", skip_all)]
    async fn insert(
        &self,
        unit: &mut Uow,
        registration: &Registration,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError> {
        diesel::insert_into(webhook_registrations::table)
            .values((
                webhook_registrations::id.eq(registration.id.as_uuid()),
                webhook_registrations::workspace_id.eq(registration.workspace_id.as_uuid()),
                webhook_registrations::name.eq(&registration.name),
                webhook_registrations::provider.eq(registration.provider.code()),
                webhook_registrations::public_id.eq(&registration.public_id),
                webhook_registrations::verify_token_hash.eq(&registration.verify_token_hash),
                webhook_registrations::signing_credential_id
                    .eq(registration.signing_credential_id.map(|id| id.as_uuid())),
                webhook_registrations::workflow_id
                    .eq(registration.workflow_id.map(|id| id.as_uuid())),
                webhook_registrations::response_mode.eq(registration.response_mode.code()),
                webhook_registrations::environment_id.eq(registration.environment.id.as_uuid()),
                webhook_registrations::enabled.eq(registration.enabled),
                webhook_registrations::created_by.eq(created_by.map(|user| user.as_uuid())),
                webhook_registrations::created_at.eq(registration.created_at),
                webhook_registrations::updated_at.eq(registration.updated_at),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.webhooks.update", level = "debug", skip_all)]
    async fn update(
        &self,
        unit: &mut Uow,
        registration: &Registration,
    ) -> Result<(), StorageError> {
        diesel::update(
            webhook_registrations::table
                .filter(webhook_registrations::workspace_id.eq(registration.workspace_id.as_uuid()))
                .filter(webhook_registrations::id.eq(registration.id.as_uuid())),
        )
        .set((
            webhook_registrations::name.eq(&registration.name),
            webhook_registrations::provider.eq(registration.provider.code()),
            webhook_registrations::verify_token_hash.eq(&registration.verify_token_hash),
            webhook_registrations::signing_credential_id
                .eq(registration.signing_credential_id.map(|id| id.as_uuid())),
            webhook_registrations::workflow_id.eq(registration.workflow_id.map(|id| id.as_uuid())),
            webhook_registrations::response_mode.eq(registration.response_mode.code()),
            webhook_registrations::environment_id.eq(registration.environment.id.as_uuid()),
            webhook_registrations::enabled.eq(registration.enabled),
            webhook_registrations::updated_at.eq(registration.updated_at),
        ))
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.webhooks.delete", level = "debug", skip_all)]
    async fn delete(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        id: WebhookRegistrationId,
    ) -> Result<bool, StorageError> {
        let deleted = diesel::delete(
            webhook_registrations::table
                .filter(webhook_registrations::workspace_id.eq(workspace.as_uuid()))
                .filter(webhook_registrations::id.eq(id.as_uuid())),
        )
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(deleted == 1)
    }

    #[tracing::instrument(name = "db.webhooks.workflow_exists", level = "debug", skip_all)]
    async fn workflow_exists(
        &self,
        workspace: WorkspaceId,
        workflow: WorkflowId,
    ) -> Result<bool, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let found: i64 = workflows::table
            .filter(workflows::workspace_id.eq(workspace.as_uuid()))
            .filter(workflows::id.eq(workflow.as_uuid()))
            .filter(workflows::archived_at.is_null())
            .count()
            .get_result(&mut connection)
            .await
            .map_err(storage)?;
        Ok(found == 1)
    }
}

#[async_trait]
impl WebhookBindings for PgWebhooks {
    #[tracing::instrument(name = "db.webhook_bindings.bind", level = "debug", skip_all)]
    async fn bind(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
        environment: EnvironmentId,
        created_by: Option<UserId>,
    ) -> Result<(), StorageError> {
        // Bound already, or rebound to what its deactivation left; else a new
        // unsigned registration (its unguessable URL is the secret until the user
        // chooses a provider and a secret).
        // Raw: an UPDATE … RETURNING in a CTE feeding a conditional INSERT … SELECT.
        diesel::sql_query(
            "WITH rebound AS ( \
               UPDATE webhook_registrations SET workflow_id = $2, updated_at = now() \
               WHERE workspace_id = $1 AND last_workflow_id = $2 AND workflow_id IS NULL \
                 AND environment_id = $5 \
               RETURNING id \
             ) \
             INSERT INTO webhook_registrations (id, workspace_id, name, provider, public_id, workflow_id, \
               last_workflow_id, environment_id, created_by) \
             SELECT $4, w.workspace_id, left(w.name || ' webhook (' || e.name || ')', 120), 'none', \
               replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), w.id, w.id, e.id, $3 \
             FROM workflows w JOIN workspace_environments e ON e.workspace_id = w.workspace_id AND e.id = $5 \
             WHERE w.workspace_id = $1 AND w.id = $2 \
               AND NOT EXISTS (SELECT 1 FROM rebound) \
               AND NOT EXISTS (SELECT 1 FROM webhook_registrations r \
                 WHERE r.workflow_id = $2 AND r.environment_id = $5)",
        )
        .bind::<SqlUuid, _>(workspace.as_uuid())
        .bind::<SqlUuid, _>(workflow.as_uuid())
        .bind::<Nullable<SqlUuid>, _>(created_by.map(|user| user.as_uuid()))
        .bind::<SqlUuid, _>(Uuid::now_v7())
        .bind::<SqlUuid, _>(environment.as_uuid())
        .execute(connection_of(unit)?)
        .await
        .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.webhook_bindings.unbind", level = "debug", skip_all)]
    async fn unbind(
        &self,
        unit: &mut Uow,
        workspace: WorkspaceId,
        workflow: WorkflowId,
        environment: Option<EnvironmentId>,
    ) -> Result<(), StorageError> {
        let mut bound = webhook_registrations::table
            .filter(webhook_registrations::workspace_id.eq(workspace.as_uuid()))
            .filter(webhook_registrations::workflow_id.eq(workflow.as_uuid()))
            .into_boxed();
        if let Some(environment) = environment {
            bound = bound.filter(webhook_registrations::environment_id.eq(environment.as_uuid()));
        }
        diesel::update(webhook_registrations::table)
            .filter(webhook_registrations::id.eq_any(bound.select(webhook_registrations::id)))
            .set((
                webhook_registrations::workflow_id.eq(None::<Uuid>),
                webhook_registrations::last_workflow_id.eq(workflow.as_uuid()),
                webhook_registrations::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection_of(unit)?)
            .await
            .map_err(storage)?;
        Ok(())
    }
}
