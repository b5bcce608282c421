//! Building and running the application; `main` and the tests start it the same way.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use fluxolab_credentials::{VaultPorts, VaultService};
use fluxolab_http::intake::IntakeLimits;
use fluxolab_http::mcp::McpLimits;
use fluxolab_http::{ApiState, ServerSettings, Services, build_server};
use fluxolab_identity::{AccountPorts, AccountService, PasswordHash, TokenIssuer, TokenSettings};
use fluxolab_jsruntime::JsRunner;
use fluxolab_kernel::{Clock, SystemClock};
use fluxolab_outbound::oidc::OpenIdConnect;
use fluxolab_outbound::secret_stores::SecretStores;
use fluxolab_outbound::{LdapDirectory, OutboundEffects, OutboundTester};
use fluxolab_postgres::accounts::PgAccounts;
use fluxolab_postgres::activity_log::PgAudit;
use fluxolab_postgres::alerts::PgAlerts;
use fluxolab_postgres::api_keys::PgApiKeys;
use fluxolab_postgres::auth_cache::{
    AuthCache, CachedApiKeys, CachedEnvironments, CachedMembers, CachedProfiles,
    CachedSsoDirectory, CachedWorkflows, CachedWorkspaces,
};
use fluxolab_postgres::billing::PgBilling;
use fluxolab_postgres::connectors::PgConnectors;
use fluxolab_postgres::environments::PgEnvironments;
use fluxolab_postgres::executions::PgExecutions;
use fluxolab_postgres::integrations::PgIntegrations;
use fluxolab_postgres::ldap::PgLdap;
use fluxolab_postgres::mcp::PgMcpSessions;
use fluxolab_postgres::plans::PgPlanGuard;
use fluxolab_postgres::pool::PoolBuildError;
use fluxolab_postgres::schedules::PgSchedules;
use fluxolab_postgres::secret_providers::PgSecretProviders;
use fluxolab_postgres::settings::PgSettings;
use fluxolab_postgres::signals::PgRunSignals;
use fluxolab_postgres::sso::PgSso;
use fluxolab_postgres::unit_of_work::PgUnits;
use fluxolab_postgres::vault::PgVault;
use fluxolab_postgres::webhooks::PgWebhooks;
use fluxolab_postgres::workflows::PgWorkflows;
use fluxolab_postgres::workspaces::PgWorkspaces;
use fluxolab_postgres::{DbPool, PoolSettings, StoreError, connect_pool, migrations};
use fluxolab_telemetry::MetricsRegistry;
use fluxolab_webhooks::{Intake, IntakeSettings, WebhookPorts, WebhookService};
use fluxolab_workflows::code::CodeRunner;
use fluxolab_workflows::connectors::{ConnectorPorts, ConnectorService};
use fluxolab_workflows::engine::Engine;
use fluxolab_workflows::error_workflows::ErrorWorkflows;
use fluxolab_workflows::execution::ExecutionRepository;
use fluxolab_workflows::execution_service::{ExecutionObserver, ExecutionPorts, ExecutionService};
use fluxolab_workflows::mcp_service::{McpPorts, McpService};
use fluxolab_workflows::scheduler::{Scheduler, SchedulerPorts};
use fluxolab_workflows::sub_workflows::{ExecutionLineage, SubWorkflows};
use fluxolab_workflows::{RunStarter, StartPorts, WorkflowPorts, WorkflowService};
use fluxolab_workspace::alerts::{AlertPorts, AlertService};
use fluxolab_workspace::api_keys::{ApiKeyPorts, ApiKeyService};
use fluxolab_workspace::environments::{EnvironmentPorts, EnvironmentService};
use fluxolab_workspace::integrations::{InstanceIntegrations, IntegrationService};
use fluxolab_workspace::ldap::login::LdapLogin;
use fluxolab_workspace::ldap::{LdapPorts, LdapService};
use fluxolab_workspace::quota::Quotas;
use fluxolab_workspace::secret_providers::resolver::ProviderResolver;
use fluxolab_workspace::secret_providers::{ProviderPorts, ProviderService};
use fluxolab_workspace::settings::{SettingsPorts, SettingsService};
use fluxolab_workspace::sso::{SsoPorts, SsoService};
use fluxolab_workspace::{
    BillingPorts, BillingService, Provisioner, WorkspacePorts, WorkspaceService,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::config::{DatabaseSettings, Settings};
use crate::directory_accounts::IdentityAccounts;
use crate::hasher::BlockingArgon2;
use crate::probe::PostgresProbe;
use crate::provisioning::PersonalWorkspaces;
use crate::workers::{WorkerPool, WorkerSettings};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Pool(#[from] PoolBuildError),
    #[error("could not read the embedded migrations")]
    Migrations(#[from] StoreError),
    #[error("could not listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not start the HTTP server")]
    Server(#[source] std::io::Error),
    #[error("could not render the OpenAPI document")]
    OpenApi(#[from] serde_json::Error),
    #[error("could not prepare the keys: {0}")]
    Keys(String),
    #[error("could not build the secret providers' HTTP client")]
    SecretStores(#[from] fluxolab_outbound::secret_stores::ClientSetupError),
    #[error(transparent)]
    Oidc(#[from] fluxolab_outbound::oidc::OidcSetupError),
}

/// Builds the connection pool described by `settings`.
pub fn pool(settings: &DatabaseSettings) -> Result<DbPool, PoolBuildError> {
    connect_pool(
        &settings.url,
        &PoolSettings {
            max_size: settings.pool_size,
            acquire_timeout: settings.acquire_timeout,
        },
    )
}

/// Wires the use cases to their Postgres adapters, for a process that serves no API
/// (tools, seeding in tests and benches, `fluxolab worker`): its auth cache has no
/// listener, so it is never used (see [`services_with`]).
pub fn services(
    pool: &DbPool,
    settings: &Settings,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn ExecutionObserver>,
) -> Result<Services, StartupError> {
    let auth = AuthCache::new(settings.auth_cache);
    services_with(pool, settings, clock, observer, &auth)
}

/// Wires the use cases to their Postgres adapters; memberships, API keys, environments,
/// profiles and workflows are looked up through `auth` (used once its listener listens:
/// [`AuthCache::listen`]).
pub fn services_with(
    pool: &DbPool,
    settings: &Settings,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn ExecutionObserver>,
    auth: &AuthCache,
) -> Result<Services, StartupError> {
    let units = Arc::new(PgUnits::new(pool.clone()));
    let accounts = Arc::new(PgAccounts::new(pool.clone()));
    let master = Arc::new(
        settings
            .master_keys()
            .map_err(|error| StartupError::Keys(error.to_string()))?,
    );
    let workspaces = Arc::new(PgWorkspaces::new(pool.clone()));
    // Workspace writes that change users' profiles evict them in this process.
    let evicting_workspaces = Arc::new(CachedWorkspaces::new(workspaces.clone(), auth.clone()));
    let audit = Arc::new(PgAudit::new(pool.clone()));
    let provisioner = Arc::new(Provisioner::new(
        evicting_workspaces.clone(),
        audit.clone(),
        Some(master.clone()),
        clock.clone(),
    ));
    let tokens = Arc::new(TokenIssuer::new(
        settings.jwt_key(),
        TokenSettings::default(),
        clock.clone(),
    ));
    // A hash of a random password: verified against when an e-mail is unknown, so that
    // answer costs what a wrong password costs.
    let decoy = PasswordHash::create(&SecretString::from(Uuid::new_v4().to_string()))
        .map_err(|error| StartupError::Keys(error.to_string()))?;
    let account_service = AccountService::new(
        AccountPorts {
            units: units.clone(),
            users: accounts.clone(),
            profiles: Arc::new(CachedProfiles::new(accounts.clone(), auth.clone())),
            sessions: accounts.clone(),
            provisioner: Arc::new(PersonalWorkspaces(provisioner.clone())),
            hasher: Arc::new(BlockingArgon2),
            tokens,
            clock: clock.clone(),
        },
        decoy,
    );
    let vault = PgVault::new(pool.clone());
    let workflows = PgWorkflows::new(pool.clone());
    // Workflows as reads and starts find them, from the cache.
    let cached_workflows: Arc<CachedWorkflows> = Arc::new(CachedWorkflows::new(
        Arc::new(workflows.clone()),
        auth.clone(),
    ));
    let vault_service = Arc::new(VaultService::new(VaultPorts {
        units: units.clone(),
        keys: Arc::new(vault.clone()),
        credentials: Arc::new(vault.clone()),
        audit: audit.clone(),
        tester: Arc::new(OutboundTester),
        network: Arc::new(vault),
        usage: Arc::new(workflows.clone()),
        plans: Arc::new(PgPlanGuard),
        master,
        clock: clock.clone(),
    }));
    let connectors = Arc::new(PgConnectors::new(pool.clone()));
    let code: Arc<dyn CodeRunner> = Arc::new(JsRunner::new(settings.code));
    let engine = Engine::new(
        Arc::new(OutboundEffects {
            credentials: vault_service.clone(),
            network: Arc::new(PgVault::new(pool.clone())),
        }),
        clock.clone(),
    )
    .with_connectors(connectors.clone())
    .with_code_runner(code.clone());
    let quotas = Arc::new(Quotas::new(
        Arc::new(PgBilling::new(pool.clone())),
        clock.clone(),
    ));
    let environments = Arc::new(CachedEnvironments::new(
        Arc::new(PgEnvironments::new(pool.clone())),
        auth.clone(),
    ));
    let integrations = Arc::new(PgIntegrations::new(pool.clone()));
    let workspace_settings = Arc::new(PgSettings::new(pool.clone()));
    let provider_ports = Arc::new(ProviderPorts {
        units: units.clone(),
        providers: Arc::new(PgSecretProviders::new(pool.clone())),
        secrets: vault_service.clone(),
        settings: workspace_settings.clone(),
        client: Arc::new(SecretStores::with_clock(clock.clone())?),
        audit: audit.clone(),
        integration_events: integrations.clone(),
        clock: clock.clone(),
    });
    let sso_store = Arc::new(PgSso::new(pool.clone()));
    let sso_service = SsoService::new(Arc::new(SsoPorts {
        units: units.clone(),
        configs: sso_store.clone(),
        logins: sso_store.clone(),
        // A member a sign-in adds is evicted here at its commit.
        directory: Arc::new(CachedSsoDirectory::new(sso_store, auth.clone())),
        secrets: vault_service.clone(),
        settings: workspace_settings.clone(),
        client: Arc::new(OpenIdConnect::new()?),
        plans: Arc::new(PgPlanGuard),
        audit: audit.clone(),
        integration_events: integrations.clone(),
        clock: clock.clone(),
    }));
    let references: Arc<ProviderResolver> = Arc::new(ProviderResolver::new(provider_ports.clone()));
    // Credentials' secret fields may reference providers, whose own credentials the
    // vault opens: the resolver is handed to the vault once both exist.
    vault_service.resolve_references_with(references.clone());
    let environment_service = Arc::new(EnvironmentService::new(EnvironmentPorts {
        units: units.clone(),
        environments: environments.clone(),
        secrets: vault_service.clone(),
        audit: audit.clone(),
        clock: clock.clone(),
        references,
    }));
    let settings_service = Arc::new(SettingsService::new(SettingsPorts {
        units: units.clone(),
        settings: workspace_settings,
        secrets: vault_service.clone(),
        audit: audit.clone(),
        clock: clock.clone(),
    }));
    let pg_executions = PgExecutions::new(pool.clone());
    let executions: Arc<dyn ExecutionRepository> = Arc::new(pg_executions.clone());
    let lineage: Arc<dyn ExecutionLineage> = Arc::new(pg_executions.clone());
    let starter = Arc::new(RunStarter::new(StartPorts {
        units: units.clone(),
        workflows: cached_workflows.clone(),
        queue: Arc::new(pg_executions),
        gate: quotas,
        audit: audit.clone(),
    }));
    // Sub-workflows and error workflows start runs through the same use case.
    let engine = engine.with_children(Arc::new(SubWorkflows::new(
        starter.clone(),
        executions.clone(),
        lineage.clone(),
    )));
    let error_workflows = Arc::new(ErrorWorkflows::new(
        starter.clone(),
        cached_workflows.clone(),
        lineage,
    ));
    let signals = Arc::new(PgRunSignals::new(pool.clone()));
    let mcp_service = McpService::new(McpPorts {
        workflows: cached_workflows.clone(),
        executions: executions.clone(),
        starter: starter.clone(),
        signals: signals.clone(),
        environments: environments.clone(),
        sessions: Arc::new(PgMcpSessions::new(pool.clone())),
    });
    let execution_service = ExecutionService::new(ExecutionPorts {
        workflows: cached_workflows.clone(),
        executions: executions.clone(),
        engine: Arc::new(engine),
        observer,
        starter: starter.clone(),
        signals,
        environments: environments.clone(),
        variables: environment_service.clone(),
    })
    .with_error_workflows(error_workflows);
    let webhooks = Arc::new(PgWebhooks::new(pool.clone()));
    let schedules = Arc::new(PgSchedules::new(pool.clone()));
    let workflow_service = WorkflowService::new(WorkflowPorts {
        units: units.clone(),
        workflows: cached_workflows,
        credentials: Arc::new(workflows),
        webhooks: webhooks.clone(),
        plans: Arc::new(PgPlanGuard),
        audit: audit.clone(),
        environments: environments.clone(),
        schedules: schedules.clone(),
        clock: clock.clone(),
        code,
        code_maxima: Arc::new(PgSettings::new(pool.clone())),
    })
    .with_connectors(connectors.clone());
    let scheduler = Scheduler::new(SchedulerPorts {
        units: units.clone(),
        schedules,
        starter: starter.clone(),
        audit: audit.clone(),
        clock: clock.clone(),
    });
    let connector_service = ConnectorService::new(ConnectorPorts {
        units: units.clone(),
        connectors: connectors.clone(),
        catalog: connectors,
        audit: audit.clone(),
        integration_events: integrations.clone(),
        clock: clock.clone(),
    });
    let intake = Arc::new(Intake::new(
        webhooks.clone(),
        webhooks.clone(),
        vault_service.clone(),
        starter.clone(),
        clock.clone(),
        IntakeSettings {
            rejected_per_minute: settings.webhooks.rejected_per_minute,
        },
    ));
    let webhook_service = WebhookService::new(
        WebhookPorts {
            units: units.clone(),
            registrations: webhooks.clone(),
            events: webhooks.clone(),
            conversations: webhooks.clone(),
            secrets: vault_service.clone(),
            audit: audit.clone(),
            integration_events: integrations.clone(),
            clock: clock.clone(),
            environments: environments.clone(),
            starter,
        },
        intake.clone(),
    );
    let api_key_service = ApiKeyService::new(ApiKeyPorts {
        units: units.clone(),
        keys: Arc::new(CachedApiKeys::new(
            Arc::new(PgApiKeys::new(pool.clone())),
            auth.clone(),
        )),
        plans: Arc::new(PgPlanGuard),
        audit: audit.clone(),
        clock: clock.clone(),
        environments,
    });
    let alert_service = AlertService::new(AlertPorts {
        units: units.clone(),
        alerts: Arc::new(PgAlerts::new(pool.clone())),
        secrets: vault_service.clone(),
        audit: audit.clone(),
        clock: clock.clone(),
    });
    let outbound = crate::outbox::build(
        pool,
        &settings.alerts,
        crate::outbox::Shared {
            units: units.clone(),
            secrets: vault_service.clone(),
            audit: audit.clone(),
            integration_events: integrations.clone(),
            clock: clock.clone(),
        },
    );
    let ldap_ports = Arc::new(LdapPorts {
        units: units.clone(),
        repository: Arc::new(PgLdap::new(pool.clone())),
        secrets: vault_service.clone(),
        settings: Arc::new(PgSettings::new(pool.clone())),
        billing: Arc::new(PgBilling::new(pool.clone())),
        directory: Arc::new(LdapDirectory),
        members: Arc::new(CachedMembers::new(workspaces.clone(), auth.clone())),
        plans: Arc::new(PgPlanGuard),
        accounts: Arc::new(IdentityAccounts {
            users: accounts,
            clock: clock.clone(),
        }),
        audit: audit.clone(),
        integration_events: integrations.clone(),
        clock: clock.clone(),
    });
    let billing_service = BillingService::new(BillingPorts {
        units: units.clone(),
        billing: Arc::new(PgBilling::new(pool.clone())),
        audit: audit.clone(),
        clock,
    });
    let workspace_service = WorkspaceService::new(WorkspacePorts {
        units,
        workspaces: evicting_workspaces,
        members: Arc::new(CachedMembers::new(workspaces.clone(), auth.clone())),
        activities: workspaces,
        audit,
        plans: Arc::new(PgPlanGuard),
        provisioner,
    });
    Ok(Services {
        accounts: Arc::new(account_service),
        workspaces: Arc::new(workspace_service),
        vault: vault_service,
        workflows: Arc::new(workflow_service),
        executions: Arc::new(execution_service),
        queue: executions,
        scheduler: Arc::new(scheduler),
        webhooks: Arc::new(webhook_service),
        billing: Arc::new(billing_service),
        alerts: Arc::new(alert_service),
        outbox: Arc::new(outbound.dispatcher),
        weekly_reports: Arc::new(outbound.weekly_reports),
        api_keys: Arc::new(api_key_service),
        environments: environment_service,
        settings: settings_service,
        secret_providers: Arc::new(ProviderService::new(provider_ports)),
        log_destinations: Arc::new(outbound.log_destinations),
        ldap: Arc::new(LdapService::new(ldap_ports.clone())),
        ldap_login: Arc::new(LdapLogin::new(ldap_ports)),
        sso: Arc::new(sso_service),
        connectors: Arc::new(connector_service),
        integrations: Arc::new(IntegrationService::new(
            integrations,
            InstanceIntegrations {
                smtp: settings.alerts.smtp_url.is_some(),
                otlp: settings.telemetry.otlp_endpoint.is_some(),
            },
        )),
        intake,
        intake_limits: IntakeLimits {
            max_body_bytes: settings.webhooks.max_body_bytes,
            respond_timeout: settings.webhooks.response_timeout,
        },
        mcp: Arc::new(mcp_service),
        mcp_limits: McpLimits {
            call_timeout: settings.mcp.call_timeout,
            session_idle: settings.mcp.session_idle,
            ..McpLimits::default()
        },
        overview: webhooks,
        public_base_url: settings.webhooks.public_base_url.clone(),
    })
}

/// A bound, not yet running, FluxoLab API server.
pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    workers: Option<WorkerSettings>,
    /// Memberships and API keys, used once the listener runs on `pool`.
    auth: AuthCache,
    pool: DbPool,
    metrics: Arc<MetricsRegistry>,
    outbox_retention: std::time::Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects the pool (lazily), binds the listener (port 0 picks a free one) and
    /// builds the server.
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock))
    }

    /// Like [`Application::build`], telling time by `clock` (tests move it).
    pub fn build_with_clock(
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let pool = pool(&settings.database)?;
        let metrics = MetricsRegistry::new();
        let auth = AuthCache::new(settings.auth_cache);
        let services = services_with(
            &pool,
            settings,
            clock,
            Arc::new(metrics.executions().clone()),
            &auth,
        )?;
        let probe = PostgresProbe::new(pool.clone(), migrations::embedded_versions()?);
        let state = ApiState::new(Arc::new(probe))?
            .with_metrics(metrics.clone())
            .with_services(services.clone())
            .with_console(Arc::new(crate::console::EmbeddedConsole::default()));
        let listener =
            TcpListener::bind(settings.bind_addr).map_err(|source| StartupError::Bind {
                addr: settings.bind_addr,
                source,
            })?;
        let port = listener.local_addr().map_err(StartupError::Server)?.port();
        let server = build_server(
            listener,
            state,
            &ServerSettings {
                body_limit: settings.body_limit_bytes,
                workers: settings.http_workers,
                shutdown_timeout: settings.shutdown_timeout,
            },
        )
        .map_err(StartupError::Server)?;
        Ok(Self {
            port,
            server,
            services,
            workers: Some(settings.workers),
            auth,
            pool,
            metrics,
            outbox_retention: settings.alerts.outbox_retention,
        })
    }

    /// Serves the API only; executions are run by `fluxolab worker` processes.
    pub fn without_workers(mut self) -> Self {
        self.workers = None;
        self
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server as a signal would: `stop(true)` lets in-flight requests finish,
    /// after which [`Application::run_until_stopped`] drains its workers and returns.
    /// Aborting the task that runs it would not: the server and the workers run on.
    pub fn stop_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves (and runs workers) until SIGTERM/SIGINT, then lets in-flight requests and
    /// running executions finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.services.intake.start();
        let listener = self.auth.listen(self.pool);
        let workers = self.workers.map(|settings| {
            WorkerPool::start(
                self.services.executions.clone(),
                self.services.queue.clone(),
                settings,
            )
            .with_usage_snapshots(self.services.billing.clone())
            .with_usage_alerts(self.services.alerts.clone())
            .with_outbox(
                self.services.outbox.clone(),
                self.metrics.outbound().clone(),
                self.outbox_retention,
            )
            .with_weekly_reports(self.services.weekly_reports.clone())
            .with_schedules(self.services.scheduler.clone())
            .with_ldap_sync(self.services.ldap.clone())
        });
        let served = self.server.await;
        if let Some(workers) = workers {
            workers.shutdown().await;
        }
        listener.abort();
        served
    }
}
