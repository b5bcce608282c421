//! Builders shared by this crate's unit tests.

use std::sync::Arc;

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::plan_guard::MockUsageGate;
use fluxolab_kernel::unit_of_work::MockUnitOfWorkFactory;
use fluxolab_workflows::RunStarter;
use fluxolab_workflows::ports::MockWorkflowRepository;
use fluxolab_workflows::start::{MockRunQueue, StartPorts};

/// A start use case deciding with `gate`; any other port it touches fails the test.
pub(crate) fn starter(gate: MockUsageGate) -> RunStarter {
    RunStarter::new(StartPorts {
        units: Arc::new(MockUnitOfWorkFactory::new()),
        workflows: Arc::new(MockWorkflowRepository::new()),
        queue: Arc::new(MockRunQueue::new()),
        gate: Arc::new(gate),
        audit: Arc::new(MockAuditLog::new()),
    })
}
