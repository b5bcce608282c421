//! Wiring of everything FluxoLab sends on its own: the outbox's dispatcher with its
//! deliverers (usage alerts, log-destination events, notifications), and the use cases
//! that sit beside them (log destinations, weekly reports).

use std::sync::Arc;

use fluxolab_kernel::outbox::{Dispatcher, OutboxKind};
use fluxolab_kernel::{AuditLog, Clock, IntegrationEvents, OwnedSecrets, UnitOfWorkFactory};
use fluxolab_outbound::{OutboundAlerts, OutboundLogSink};
use fluxolab_postgres::alerts::PgAlerts;
use fluxolab_postgres::billing::PgBilling;
use fluxolab_postgres::log_destinations::PgLogDestinations;
use fluxolab_postgres::notifications::PgNotifications;
use fluxolab_postgres::outbox::PgOutbox;
use fluxolab_postgres::pool::DbPool;
use fluxolab_postgres::settings::PgSettings;
use fluxolab_postgres::vault::PgVault;
use fluxolab_workspace::alert_delivery::AlertDeliverer;
use fluxolab_workspace::log_destinations::delivery::LogDeliverer;
use fluxolab_workspace::log_destinations::{DestinationPorts, DestinationService};
use fluxolab_workspace::notification_delivery::{NotificationDeliverer, NotificationPorts};
use fluxolab_workspace::notifications::WeeklyReports;

use crate::config::AlertSettings;

/// What the outbound side shares with the rest of the services.
#[allow(missing_debug_implementations)]
pub struct Shared {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub secrets: Arc<dyn OwnedSecrets>,
    pub audit: Arc<dyn AuditLog>,
    pub integration_events: Arc<dyn IntegrationEvents>,
    pub clock: Arc<dyn Clock>,
}

/// The dispatcher and the use cases beside it.
#[allow(missing_debug_implementations)]
pub struct Outbound {
    pub dispatcher: Dispatcher,
    pub log_destinations: DestinationService,
    pub weekly_reports: WeeklyReports,
}

/// Builds the outbound side over `pool`.
pub fn build(pool: &DbPool, settings: &AlertSettings, shared: Shared) -> Outbound {
    let notifier = Arc::new(OutboundAlerts {
        smtp_url: settings.smtp_url.clone(),
        from: settings.email_from.clone(),
        network: Arc::new(PgVault::new(pool.clone())),
    });
    let alert_deliverer = AlertDeliverer {
        alerts: Arc::new(PgAlerts::new(pool.clone())),
        secrets: shared.secrets.clone(),
        notifier: notifier.clone(),
        clock: shared.clock.clone(),
    };
    let notifications = Arc::new(PgNotifications::new(pool.clone()));
    let notification_deliverer = NotificationDeliverer::new(NotificationPorts {
        notices: notifications.clone(),
        reports: notifications.clone(),
        recipients: notifications.clone(),
        settings: Arc::new(PgSettings::new(pool.clone())),
        billing: Arc::new(PgBilling::new(pool.clone())),
        secrets: shared.secrets.clone(),
        notifier,
        clock: shared.clock.clone(),
    });
    let destinations = Arc::new(PgLogDestinations::new(pool.clone()));
    let sink = Arc::new(OutboundLogSink {
        network: Arc::new(PgVault::new(pool.clone())),
        hostname: hostname(),
    });
    let log_deliverer = LogDeliverer {
        units: shared.units.clone(),
        destinations: destinations.clone(),
        secrets: shared.secrets.clone(),
        sink: sink.clone(),
        audit: shared.audit.clone(),
        integration_events: shared.integration_events.clone(),
        clock: shared.clock.clone(),
    };
    let dispatcher = Dispatcher::new(
        Arc::new(PgOutbox::new(pool.clone())),
        vec![
            (OutboxKind::UsageAlert, Arc::new(alert_deliverer)),
            (OutboxKind::LogEvent, Arc::new(log_deliverer)),
            (OutboxKind::Notification, Arc::new(notification_deliverer)),
        ],
        shared.clock.clone(),
        Box::new(jitter),
    );
    Outbound {
        dispatcher,
        weekly_reports: WeeklyReports::new(notifications, shared.clock.clone()),
        log_destinations: DestinationService::new(Arc::new(DestinationPorts {
            units: shared.units,
            destinations,
            secrets: shared.secrets,
            sink,
            audit: shared.audit,
            integration_events: shared.integration_events,
            clock: shared.clock,
        })),
    }
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

/// A random fraction in 0..1 for the outbox's retry jitter (a fixed one when the system
/// has no randomness: retries are then merely in step).
fn jitter() -> f64 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0_u8; 4];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    }
}
