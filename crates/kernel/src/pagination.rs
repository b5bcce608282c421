//! Keyset (cursor) pagination: `?limit=&cursor=` in, `{items, next_cursor}` out.
//!
//! A cursor is the position of the last item returned — its timestamp and id — encoded
//! as opaque base64url text so clients cannot depend on its shape.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// The default number of items in a page.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most items one page may hold, whatever the client asks for.
pub const MAX_LIMIT: u32 = 200;

/// The position after which the next page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: OffsetDateTime,
    pub id: Uuid,
}

/// A cursor that was not produced by FluxoLab.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not valid; pass back the `next_cursor` of a previous page")]
pub struct InvalidCursor;

/// The length of a cursor's text: base64url of 24 bytes (8 of nanoseconds, 16 of id).
pub const CURSOR_CHARS: usize = 32;

/// A regular expression matching exactly the texts [`Cursor::decode`] accepts (every
/// 32-character base64url text decodes to a timestamp and an id).
pub const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]{32}$";

impl Cursor {
    /// The opaque text form handed to clients: base64url (no padding) of the Unix time
    /// in nanoseconds (big-endian `i64`, so 1677–2262) and the id's 16 bytes.
    pub fn encode(&self) -> String {
        let nanos = i64::try_from(self.created_at.unix_timestamp_nanos()).unwrap_or(
            if self.created_at.unix_timestamp_nanos() < 0 {
                i64::MIN
            } else {
                i64::MAX
            },
        );
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        bytes[8..].copy_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses what [`Cursor::encode`] produced: any text of [`CURSOR_PATTERN`].
    pub fn decode(text: &str) -> Result<Self, InvalidCursor> {
        if text.len() != CURSOR_CHARS {
            return Err(InvalidCursor);
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidCursor)?;
        let nanos: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(InvalidCursor)?;
        let id: [u8; 16] = bytes
            .get(8..)
            .and_then(|b| b.try_into().ok())
            .ok_or(InvalidCursor)?;
        Ok(Self {
            created_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(i64::from_be_bytes(
                nanos,
            )))
            .map_err(|_| InvalidCursor)?,
            id: Uuid::from_bytes(id),
        })
    }
}

/// A validated page request: the limit is clamped to `1..=MAX_LIMIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of at most `limit` items (clamped like [`PageRequest::new`]).
    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, MAX_LIMIT),
            after: None,
        }
    }

    /// Builds a request from raw query values.
    pub fn new(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, InvalidCursor> {
        let after = cursor
            .filter(|text| !text.is_empty())
            .map(Cursor::decode)
            .transpose()?;
        Ok(Self {
            limit: limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
            after,
        })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn after(&self) -> Option<Cursor> {
        self.after
    }

    /// How many rows a repository should fetch: one more than the limit tells whether
    /// another page exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `fetch_limit()` rows; `position` gives each row's cursor.
    pub fn from_rows(
        mut rows: Vec<T>,
        request: PageRequest,
        position: impl Fn(&T) -> Cursor,
    ) -> Self {
        let limit = request.limit() as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|row| position(row).encode())
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            created_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            id: Uuid::now_v7(),
        }
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = cursor();
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
    }

    #[test]
    fn every_text_of_the_pattern_is_a_cursor() {
        for text in [
            "A".repeat(32),
            "_".repeat(32),
            "-".repeat(32),
            "z9".repeat(16),
        ] {
            assert!(Cursor::decode(&text).is_ok(), "{text}");
        }
        assert_eq!(cursor().encode().len(), CURSOR_CHARS);
        assert_eq!(Cursor::decode(&"A".repeat(31)), Err(InvalidCursor));
        assert_eq!(Cursor::decode(&"=".repeat(32)), Err(InvalidCursor));
    }

    #[test]
    fn foreign_cursors_are_refused() {
        assert_eq!(Cursor::decode("not-a-cursor"), Err(InvalidCursor));
        assert_eq!(
            PageRequest::new(None, Some("bm9wZQ")).map(|r| r.limit()),
            Err(InvalidCursor)
        );
    }

    #[test]
    fn limits_are_clamped() -> Result<(), InvalidCursor> {
        assert_eq!(PageRequest::new(None, None)?.limit(), DEFAULT_LIMIT);
        assert_eq!(PageRequest::new(Some(0), None)?.limit(), 1);
        assert_eq!(PageRequest::new(Some(10_000), None)?.limit(), MAX_LIMIT);
        Ok(())
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_exist() -> Result<(), InvalidCursor> {
        let request = PageRequest::new(Some(2), None)?;
        let rows = vec![cursor(), cursor(), cursor()];
        let page = Page::from_rows(rows.clone(), request, |c| *c);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_cursor, Some(rows[1].encode()));

        let last = Page::from_rows(rows[..2].to_vec(), request, |c| *c);
        assert_eq!(last.next_cursor, None);
        Ok(())
    }
}
