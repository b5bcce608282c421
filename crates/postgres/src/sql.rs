//! SQL expressions the query builder lacks, declared once for every repository.

use diesel::expression::SqlLiteral;
use diesel::sql_types::Timestamptz;

/// `now()`, the database's clock, as a `timestamptz` an interval can be added to:
/// diesel's own `now` is a `timestamp`, and a declared SQL function without arguments
/// gets no arithmetic operators.
pub(crate) fn now_tz() -> SqlLiteral<Timestamptz> {
    diesel::dsl::sql("now()")
}
