//! The process's metrics registry (Prometheus/OpenMetrics text, no global state, so
//! tests can each read their own) and the execution metrics every process that runs
//! executions counts: `executions_settled_total`, `execution_step_duration_seconds`
//! and the queue gauges. Other layers (HTTP) register their own metrics into the same
//! registry, and one `/metrics` renders them all.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

use crate::outbound::OutboundMetrics;
use fluxolab_workflows::execution::ExecutionStatus;
use fluxolab_workflows::execution_service::ExecutionObserver;

/// The latency buckets every duration histogram uses: 1 ms … ~16 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Every metric of one process, rendered together. Shared (`Arc`) by the HTTP layer
/// and the workers; the execution metrics are built in.
#[derive(Debug)]
pub struct MetricsRegistry {
    registry: Mutex<Registry>,
    executions: ExecutionMetrics,
    outbound: OutboundMetrics,
}

impl MetricsRegistry {
    /// A registry holding the execution metrics.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let executions = ExecutionMetrics::register(&mut registry);
        let outbound = OutboundMetrics::register(&mut registry);
        Arc::new(Self {
            registry: Mutex::new(registry),
            executions,
            outbound,
        })
    }

    /// Adds a metric (its name without the `_total` a counter gets on rendering).
    /// Register each metric once per process.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, metric);
    }

    /// The execution metrics: the observer the workers and inline runs report to, and
    /// the queue gauges.
    pub fn executions(&self) -> &ExecutionMetrics {
        &self.executions
    }

    /// The outbox's metrics, counted by the process that delivers.
    pub fn outbound(&self) -> &OutboundMetrics {
        &self.outbound
    }

    /// Renders every metric in the OpenMetrics text format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = String::new();
        encode(&mut text, &registry)?;
        Ok(text)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkspaceLabels {
    workspace_id: String,
}

/// How many runs of one workspace are due and waiting, and how long the oldest has.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkspaceQueue {
    pub workspace_id: String,
    pub depth: i64,
    pub oldest_due_seconds: f64,
}

/// How many workspaces the per-workspace queue gauges show (the deepest queues): the
/// series stay bounded whatever the number of tenants.
pub const BUSIEST_WORKSPACES: usize = 5;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExecutionLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    node_type: String,
    outcome: &'static str,
}

/// What runs did in this process, and the shared queue as last sampled. Cloning shares
/// the same counters.
#[derive(Clone, Debug)]
pub struct ExecutionMetrics {
    queued: Gauge,
    running: Gauge,
    lag: Gauge<f64, AtomicU64>,
    workspace_depth: Family<WorkspaceLabels, Gauge>,
    workspace_oldest: Family<WorkspaceLabels, Gauge<f64, AtomicU64>>,
    settled: Family<ExecutionLabels, Counter>,
    steps: Family<StepLabels, Histogram>,
}

impl ExecutionMetrics {
    fn register(registry: &mut Registry) -> Self {
        let queued = Gauge::default();
        let running = Gauge::default();
        let lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "executions_queued",
            "Executions waiting in the queue",
            queued.clone(),
        );
        registry.register(
            "executions_running",
            "Executions being run by a worker",
            running.clone(),
        );
        registry.register(
            "queue_lag_seconds",
            "How long the oldest due execution has waited to be claimed",
            lag.clone(),
        );
        let workspace_depth = Family::<WorkspaceLabels, Gauge>::default();
        let workspace_oldest = Family::<WorkspaceLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "workspace_queue_depth",
            "Due runs waiting, for the workspaces with the deepest queues only (at most 5 series)",
            workspace_depth.clone(),
        );
        registry.register(
            "workspace_queue_oldest_due_seconds",
            "How long the oldest due run has waited, for the same workspaces as workspace_queue_depth",
            workspace_oldest.clone(),
        );
        let settled = Family::<ExecutionLabels, Counter>::default();
        let steps = Family::<StepLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "executions_settled",
            "Runs settled by this process, by the status they reached (queued: retried later or suspended by a delay)",
            settled.clone(),
        );
        registry.register(
            "execution_step_duration_seconds",
            "Time nodes took to run, by node type and outcome",
            steps.clone(),
        );
        Self {
            queued,
            running,
            lag,
            workspace_depth,
            workspace_oldest,
            settled,
            steps,
        }
    }

    /// Sets the queue gauges to a sample of the shared queue (taken at scrape time):
    /// totals, and the [`BUSIEST_WORKSPACES`] deepest queues of `busiest` (the series of
    /// workspaces no longer among them go).
    pub fn set_queue(
        &self,
        queued: i64,
        running: i64,
        lag_seconds: f64,
        busiest: &[WorkspaceQueue],
    ) {
        self.queued.set(queued);
        self.running.set(running);
        self.lag.set(lag_seconds);
        self.workspace_depth.clear();
        self.workspace_oldest.clear();
        for workspace in busiest.iter().take(BUSIEST_WORKSPACES) {
            let labels = WorkspaceLabels {
                workspace_id: workspace.workspace_id.clone(),
            };
            self.workspace_depth
                .get_or_create(&labels)
                .set(workspace.depth);
            self.workspace_oldest
                .get_or_create(&labels)
                .set(workspace.oldest_due_seconds);
        }
    }
}

impl ExecutionObserver for ExecutionMetrics {
    fn step_finished(&self, node_type: &str, seconds: f64, failed: bool) {
        let labels = StepLabels {
            node_type: node_type.to_owned(),
            outcome: if failed { "failed" } else { "succeeded" },
        };
        self.steps.get_or_create(&labels).observe(seconds);
    }

    fn execution_settled(&self, status: ExecutionStatus) {
        self.settled
            .get_or_create(&ExecutionLabels {
                status: status.code(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_metrics_and_registered_ones_render_together() -> Result<(), std::fmt::Error> {
        let registry = MetricsRegistry::new();
        let other = Counter::<u64>::default();
        registry.register("things", "Things", other.clone());
        other.inc();
        let executions = registry.executions().clone();
        executions.step_finished("data.set", 0.0004, false);
        executions.execution_settled(ExecutionStatus::Succeeded);
        let busy = |n: usize| WorkspaceQueue {
            workspace_id: format!("w{n}"),
            depth: 100 - i64::try_from(n).unwrap_or(0),
            oldest_due_seconds: 3.0,
        };
        executions.set_queue(1, 2, 1.5, &(0..7).map(busy).collect::<Vec<_>>());
        executions.set_queue(7, 2, 1.5, &(1..8).map(busy).collect::<Vec<_>>());
        let text = registry.render()?;
        assert!(!text.contains(r#"workspace_id="w0""#), "gone from the top");
        assert!(text.contains(r#"workspace_queue_depth{workspace_id="w1"} 99"#));
        assert!(text.contains(r#"workspace_queue_oldest_due_seconds{workspace_id="w5"} 3.0"#));
        assert!(
            !text.contains(r#"workspace_id="w6""#),
            "only the five deepest"
        );
        assert!(text.contains("things_total 1"));
        assert!(text.contains("executions_queued 7"));
        assert!(text.contains("executions_running 2"));
        assert!(text.contains("queue_lag_seconds 1.5"));
        assert!(text.contains(r#"executions_settled_total{status="succeeded"} 1"#));
        assert!(text.contains(
            r#"execution_step_duration_seconds_count{node_type="data.set",outcome="succeeded"} 1"#
        ));
        Ok(())
    }
}
