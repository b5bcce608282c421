//! Keyset pagination over `(time, id)`, the order every list of this crate uses.

/// The filter for the rows after a page cursor `$after` (a `kernel::Cursor`) when a list
/// is ordered `($time, $id)` newest first (`before!`) or oldest first (`after!`).
macro_rules! before {
    ($time:expr, $id:expr, $after:expr) => {
        $time
            .lt($after.created_at)
            .or($time.eq($after.created_at).and($id.lt($after.id)))
    };
}

/// See [`before!`]: the same for a list ordered oldest first.
macro_rules! after {
    ($time:expr, $id:expr, $after:expr) => {
        $time
            .gt($after.created_at)
            .or($time.eq($after.created_at).and($id.gt($after.id)))
    };
}

pub(crate) use {after, before};
