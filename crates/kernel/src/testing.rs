//! Helpers for the unit tests of the domain services (behind the `mocks` feature):
//! what mocked ports were asked, in order, and whether a write happened inside the unit
//! of work the test handed out.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use crate::Uow;
use crate::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};

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
