//! Keyset pagination over `(time, id)`, the order every list of this crate uses.

use fluxolab_kernel::{Cursor, Page, PageRequest, StorageError};

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

/// One page of `$query` (a `PageRequest` `$page`), newest first: ordered
/// `($time DESC, $id DESC)`, limited to the page's fetch limit, past the page's cursor if
/// it has one. The result is boxed, so that more filters can follow.
macro_rules! newest_first {
    ($query:expr, $page:expr, $time:expr, $id:expr) => {{
        let query = $query
            .order(($time.desc(), $id.desc()))
            .limit($page.fetch_limit())
            .into_boxed();
        match $page.after() {
            Some(after) => query.filter($crate::keyset::before!($time, $id, after)),
            None => query,
        }
    }};
}

/// See [`newest_first!`]: the same, oldest first.
macro_rules! oldest_first {
    ($query:expr, $page:expr, $time:expr, $id:expr) => {{
        let query = $query
            .order(($time.asc(), $id.asc()))
            .limit($page.fetch_limit())
            .into_boxed();
        match $page.after() {
            Some(after) => query.filter($crate::keyset::after!($time, $id, after)),
            None => query,
        }
    }};
}

pub(crate) use {after, before, newest_first, oldest_first};

/// The page made of `rows` (fetched with the limit of `page`), each turned into its domain
/// value by `convert`; the first row that does not convert fails the page.
pub(crate) fn page_of<Row, T>(
    rows: Vec<Row>,
    page: PageRequest,
    convert: impl FnMut(Row) -> Result<T, StorageError>,
    position: impl Fn(&T) -> Cursor,
) -> Result<Page<T>, StorageError> {
    let items = rows
        .into_iter()
        .map(convert)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(items, page, position))
}
