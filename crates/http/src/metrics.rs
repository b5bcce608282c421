//! Prometheus metrics of the HTTP layer and the database pool, registered into the
//! process's registry (`fluxolab_telemetry::MetricsRegistry`), which also holds the
//! execution metrics; `/metrics` renders them all.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use fluxolab_telemetry::MetricsRegistry;
use fluxolab_telemetry::metrics::latency_histogram;

use crate::{PoolStatus, QueueStatus};

/// The labels of request metrics. `route` is the route template, never the raw path,
/// so cardinality stays bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    verdict: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyRefusalLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// The metrics of the HTTP layer (requests, the pool, webhook deliveries, API-key
/// refusals), kept in the process's registry.
#[derive(Debug)]
pub struct HttpMetrics {
    registry: Arc<MetricsRegistry>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram>,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
    pool_waiting: Gauge,
    webhook_events: Family<WebhookLabels, Counter>,
    key_refusals: Family<KeyRefusalLabels, Counter>,
}

impl HttpMetrics {
    /// Registers the HTTP layer's metrics into `registry` (once per registry).
    pub fn new(registry: Arc<MetricsRegistry>) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        let pool_max = Gauge::default();
        let pool_waiting = Gauge::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            durations.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database connections in the pool, by state",
            pool_connections.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Largest size the database pool may grow to",
            pool_max.clone(),
        );
        registry.register(
            "db_pool_waiting",
            "Callers waiting for a database connection",
            pool_waiting.clone(),
        );
        let webhook_events = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_events",
            "Webhook deliveries, by verdict and (for rejections) reason, including rejections not stored",
            webhook_events.clone(),
        );
        let key_refusals = Family::<KeyRefusalLabels, Counter>::default();
        registry.register(
            "api_key_refusals",
            "Requests refused an API key, by reason (unknown, revoked, expired, grace_ended, scope_denied)",
            key_refusals.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            pool_connections,
            pool_max,
            pool_waiting,
            webhook_events,
            key_refusals,
        }
    }

    /// The registry these metrics are kept in.
    pub fn registry(&self) -> &Arc<MetricsRegistry> {
        &self.registry
    }

    /// Records one answered request.
    pub fn observe_request(&self, labels: &RequestLabels, seconds: f64) {
        self.durations.get_or_create(labels).observe(seconds);
        self.requests.get_or_create(labels).inc();
    }

    /// Counts one webhook delivery.
    pub fn observe_webhook(&self, verdict: &str, reason: Option<&str>) {
        self.webhook_events
            .get_or_create(&WebhookLabels {
                verdict: verdict.to_owned(),
                reason: reason.unwrap_or_default().to_owned(),
            })
            .inc();
    }

    /// Counts one request refused because of its API key (`reason` as in
    /// `KeyRefusal::code`, or `scope_denied`).
    pub fn observe_key_refusal(&self, reason: &'static str) {
        self.key_refusals
            .get_or_create(&KeyRefusalLabels { reason })
            .inc();
    }

    /// Renders every metric of the registry in the text exposition format, with the
    /// pool and the queue sampled now.
    pub fn render(
        &self,
        pool: PoolStatus,
        queue: Option<QueueStatus>,
    ) -> Result<String, std::fmt::Error> {
        if let Some(queue) = queue {
            self.registry.executions().set_queue(
                queue.queued,
                queue.running,
                queue.lag_seconds,
                &queue.busiest,
            );
        }
        let in_use = pool.size.saturating_sub(pool.available);
        let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        self.pool_connections
            .get_or_create(&PoolLabels { state: "idle" })
            .set(gauge(pool.available));
        self.pool_connections
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(gauge(in_use));
        self.pool_max.set(gauge(pool.max_size));
        self.pool_waiting.set(gauge(pool.waiting));
        self.registry.render()
    }
}

#[cfg(test)]
mod tests {
    use fluxolab_workflows::execution::ExecutionStatus;
    use fluxolab_workflows::execution_service::ExecutionObserver;

    use super::*;

    #[test]
    fn requests_are_counted_by_route_template_and_status() -> Result<(), std::fmt::Error> {
        let metrics = HttpMetrics::new(MetricsRegistry::new());
        let labels = RequestLabels {
            method: "GET".into(),
            route: "/api/workflows/{id}".into(),
            status: 200,
        };
        metrics.observe_request(&labels, 0.003);
        metrics.observe_request(&labels, 0.004);
        let executions = metrics.registry().executions();
        executions.step_finished("data.set", 0.0004, false);
        executions.execution_settled(ExecutionStatus::Succeeded);
        let text = metrics.render(
            PoolStatus {
                max_size: 10,
                size: 3,
                available: 1,
                waiting: 0,
            },
            Some(QueueStatus {
                queued: 7,
                running: 2,
                lag_seconds: 1.5,
                busiest: Vec::new(),
            }),
        )?;
        assert!(text.contains(
            r#"http_requests_total{method="GET",route="/api/workflows/{id}",status="200"} 2"#
        ));
        assert!(text.contains(r#"http_request_duration_seconds_count{method="GET",route="/api/workflows/{id}",status="200"} 2"#));
        assert!(text.contains(r#"db_pool_connections{state="in_use"} 2"#));
        assert!(text.contains("db_pool_max_connections 10"));
        assert!(text.contains("executions_queued 7"));
        assert!(text.contains("queue_lag_seconds 1.5"));
        assert!(text.contains(r#"executions_settled_total{status="succeeded"} 1"#));
        assert!(text.contains(
            r#"execution_step_duration_seconds_count{node_type="data.set",outcome="succeeded"} 1"#
        ));
        Ok(())
    }
}
