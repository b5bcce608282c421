//! Builders shared by this crate's unit tests.

use std::sync::Arc;

use fluxolab_kernel::audit::MockAuditLog;
use fluxolab_kernel::plan_guard::MockUsageGate;
use fluxolab_kernel::unit_of_work::MockUnitOfWorkFactory;
use fluxolab_workflows::RunStarter;
use fluxolab_workflows::ports::MockWorkflowRepository;
use fluxolab_workflows::start::{MockRunQueue, StartPorts};

/// The start use case's ports, mocked; a test sets up the ones its case touches, and
/// any other call fails it.
#[derive(Default)]
pub(crate) struct StartMocks {
    pub(crate) units: MockUnitOfWorkFactory,
    pub(crate) workflows: MockWorkflowRepository,
    pub(crate) queue: MockRunQueue,
    pub(crate) gate: MockUsageGate,
    pub(crate) audit: MockAuditLog,
}

impl StartMocks {
    /// The start use case over these mocks.
    pub(crate) fn starter(self) -> RunStarter {
        RunStarter::new(StartPorts {
            units: Arc::new(self.units),
            workflows: Arc::new(self.workflows),
            queue: Arc::new(self.queue),
            gate: Arc::new(self.gate),
            audit: Arc::new(self.audit),
        })
    }
}

/// A start use case deciding with `gate`; any other port it touches fails the test.
pub(crate) fn starter(gate: MockUsageGate) -> RunStarter {
    StartMocks {
        gate,
        ..StartMocks::default()
    }
    .starter()
}
