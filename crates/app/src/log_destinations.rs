//! Wiring of the log destinations: the use cases the API calls and the outbox's
//! deliverer of their events, over one repository, the vault and one sink.

use std::sync::Arc;

use fluxolab_kernel::{AuditLog, Clock, IntegrationEvents, OwnedSecrets, UnitOfWorkFactory};
use fluxolab_outbound::OutboundLogSink;
use fluxolab_postgres::log_destinations::PgLogDestinations;
use fluxolab_postgres::pool::DbPool;
use fluxolab_postgres::vault::PgVault;
use fluxolab_workspace::log_destinations::delivery::LogDeliverer;
use fluxolab_workspace::log_destinations::{DestinationPorts, DestinationService};

/// What the log destinations share with the rest of the services.
#[allow(missing_debug_implementations)]
pub struct Shared {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub secrets: Arc<dyn OwnedSecrets>,
    pub audit: Arc<dyn AuditLog>,
    pub integration_events: Arc<dyn IntegrationEvents>,
    pub clock: Arc<dyn Clock>,
}

/// The use cases and the deliverer.
pub fn build(pool: &DbPool, shared: Shared) -> (DestinationService, LogDeliverer) {
    let destinations = Arc::new(PgLogDestinations::new(pool.clone()));
    let sink = Arc::new(OutboundLogSink {
        network: Arc::new(PgVault::new(pool.clone())),
        hostname: hostname(),
    });
    let deliverer = LogDeliverer {
        units: shared.units.clone(),
        destinations: destinations.clone(),
        secrets: shared.secrets.clone(),
        sink: sink.clone(),
        audit: shared.audit.clone(),
        integration_events: shared.integration_events.clone(),
        clock: shared.clock.clone(),
    };
    let service = DestinationService::new(Arc::new(DestinationPorts {
        units: shared.units,
        destinations,
        secrets: shared.secrets,
        sink,
        audit: shared.audit,
        integration_events: shared.integration_events,
        clock: shared.clock,
    }));
    (service, deliverer)
}

/// The host name syslog messages carry: `HOSTNAME`, else the kernel's, else
/// `fluxolab`.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "fluxolab".to_owned())
}
