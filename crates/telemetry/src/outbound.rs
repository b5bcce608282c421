//! The outbox's metrics: `outbound_deliveries_total{kind,outcome}` (messages delivered,
//! attempts failed), `outbound_dropped_total{kind}` (messages dropped after the
//! retention), and the gauges `outbound_backlog{kind}` (messages waiting) and
//! `outbound_delivery_lag_seconds{kind}` (how long the oldest of them has waited).

use std::sync::atomic::AtomicU64;

use fluxolab_kernel::outbox::{Backlog, Expired, OutboxKind, Round};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// What the outbox did in this process, and its backlog as last sampled. Cloning shares
/// the same series.
#[derive(Clone, Debug)]
pub struct OutboundMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    dropped: Family<KindLabels, Counter>,
    backlog: Family<KindLabels, Gauge>,
    lag: Family<KindLabels, Gauge<f64, AtomicU64>>,
}

impl OutboundMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            deliveries: Family::default(),
            dropped: Family::default(),
            backlog: Family::default(),
            lag: Family::default(),
        };
        registry.register(
            "outbound_deliveries",
            "Outbound messages delivered (outcome=delivered) and failed attempts (outcome=failed), by kind",
            metrics.deliveries.clone(),
        );
        registry.register(
            "outbound_dropped",
            "Outbound messages dropped undelivered after the retention, by kind",
            metrics.dropped.clone(),
        );
        registry.register(
            "outbound_backlog",
            "Outbound messages waiting for delivery, by kind",
            metrics.backlog.clone(),
        );
        registry.register(
            "outbound_delivery_lag_seconds",
            "How long the oldest outbound message waiting for delivery has waited, by kind",
            metrics.lag.clone(),
        );
        // Every kind is shown from the start, at zero.
        for kind in OutboxKind::ALL {
            let labels = KindLabels { kind: kind.code() };
            metrics.backlog.get_or_create(&labels).set(0);
            metrics.lag.get_or_create(&labels).set(0.0);
            metrics.dropped.get_or_create(&labels).inc_by(0);
        }
        metrics
    }

    /// Counts what a round of deliveries did.
    pub fn record_round(&self, round: &Round) {
        for (kind, outcome, messages) in &round.outcomes {
            self.deliveries
                .get_or_create(&DeliveryLabels {
                    kind: kind.code(),
                    outcome,
                })
                .inc_by(*messages);
        }
    }

    /// Counts dropped messages.
    pub fn record_expired(&self, expired: &[Expired]) {
        for dropped in expired {
            self.dropped
                .get_or_create(&KindLabels {
                    kind: dropped.kind.code(),
                })
                .inc_by(dropped.dropped);
        }
    }

    /// Sets the gauges from a sample of the backlog (kinds not in it are empty).
    pub fn set_backlog(&self, backlog: &[Backlog]) {
        for kind in OutboxKind::ALL {
            let labels = KindLabels { kind: kind.code() };
            let waiting = backlog.iter().find(|entry| entry.kind == kind);
            self.backlog
                .get_or_create(&labels)
                .set(waiting.map_or(0, |entry| i64::try_from(entry.messages).unwrap_or(i64::MAX)));
            self.lag
                .get_or_create(&labels)
                .set(waiting.map_or(0.0, |entry| entry.oldest_seconds));
        }
    }
}
