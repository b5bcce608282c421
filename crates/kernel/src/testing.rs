//! Helpers for the unit tests of the domain services (behind the `mocks` feature):
//! what mocked ports were asked, in order, and whether a write happened inside the unit
//! of work the test handed out.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use crate::audit::MockAuditLog;
use crate::plan_guard::MockPlanGuard;
use crate::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
use crate::{AuditEvent, LimitedResource, PlanLimitReached, Uow, WorkspaceId};

/// What the ports were asked to do, in order, each write marked with where it happened.
#[derive(Clone, Debug, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn note(&self, entry: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry.into());
    }

    pub fn entries(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Values a mock received, kept for assertions.
#[derive(Debug)]
pub struct Captured<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Captured<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for Captured<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T: Clone> Captured<T> {
    pub fn keep(&self, value: &T) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value.clone());
    }

    pub fn all(&self) -> Vec<T> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The one value received; an error naming how many there were otherwise.
    pub fn only(&self) -> Result<T, String> {
        match self.all().as_slice() {
            [one] => Ok(one.clone()),
            many => Err(format!("expected one value, got {}", many.len())),
        }
    }
}

/// `in the unit` when `uow` is the unit the test handed out and it is still open, else
/// `outside the unit`.
pub fn place(uow: &mut Uow, unit: &RecordingUnitOfWork) -> &'static str {
    match uow.as_any().downcast_mut::<RecordingUnitOfWork>() {
        Some(given)
            if Arc::ptr_eq(&given.committed, &unit.committed)
                && !given.committed.load(Ordering::SeqCst) =>
        {
            "in the unit"
        }
        _ => "outside the unit",
    }
}

/// Makes `units` open exactly one unit of work: `unit`.
pub fn opens_once(units: &mut MockUnitOfWorkFactory, unit: &RecordingUnitOfWork) {
    let unit = unit.clone();
    units
        .expect_begin()
        .times(1)
        .returning(move || Ok(Box::new(unit.clone())));
}

/// Makes `plans` asked exactly once, for `resource` in `workspace`, answering `answer`;
/// notes `plans.admit <place>` in `journal`, the place relative to `unit`.
pub fn admits_once(
    plans: &mut MockPlanGuard,
    journal: &Journal,
    unit: &RecordingUnitOfWork,
    (workspace, resource): (WorkspaceId, LimitedResource),
    answer: Option<PlanLimitReached>,
) {
    let (journal, unit) = (journal.clone(), unit.clone());
    plans
        .expect_admit()
        .withf(move |_, asked, asked_for| *asked == workspace && *asked_for == resource)
        .times(1)
        .returning(move |uow, _, _| {
            journal.note(format!("plans.admit {}", place(uow, &unit)));
            Ok(answer.clone())
        });
}

/// Makes `audit` record exactly one event, inside a unit of work and never outside one;
/// notes `audit.record_in <action> <place>` in `journal`, the place relative to `unit`,
/// and keeps the event in `events`.
pub fn records_once_in_the_unit(
    audit: &mut MockAuditLog,
    journal: &Journal,
    unit: &RecordingUnitOfWork,
    events: &Captured<AuditEvent>,
) {
    let (journal, unit, events) = (journal.clone(), unit.clone(), events.clone());
    audit
        .expect_record_in()
        .times(1)
        .returning(move |uow, event| {
            journal.note(format!(
                "audit.record_in {} {}",
                event.action,
                place(uow, &unit)
            ));
            events.keep(event);
            Ok(())
        });
    audit.expect_record().never();
}
