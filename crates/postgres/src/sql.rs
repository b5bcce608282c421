//! SQL expressions the query builder lacks, declared once for every repository.

use std::borrow::Cow;

use diesel::QueryResult;
use diesel::expression::{AsExpression, SqlLiteral, TypedExpressionType};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{SqlType, Timestamptz, Untyped};

/// `now()`, the database's clock, as a `timestamptz` an interval can be added to:
/// diesel's own `now` is a `timestamp`, and a declared SQL function without arguments
/// gets no arithmetic operators.
pub(crate) fn now_tz() -> SqlLiteral<Timestamptz> {
    diesel::dsl::sql("now()")
}

/// A raw statement (for what the query builder cannot say) that diesel prepares once per
/// connection and then reuses: a later call costs one round trip (bind and execute) and
/// no parsing or planning, where `sql_query`, which diesel never caches, prepares it again
/// every time — two round trips, and the server parses and plans it anew. Its text names
/// the values `$1`, `$2`, … (each at least once, in any order, as often as it needs; no
/// other `$`), bound in that order by [`Prepared::bind`]; a value named twice is sent
/// twice. Rows load as with `sql_query` (`QueryableByName`). The text must not vary
/// between calls but by what it is (the statement cache is keyed by it).
pub(crate) struct Prepared<'a> {
    text: Cow<'static, str>,
    binds: Vec<Box<dyn QueryFragment<Pg> + Send + 'a>>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            text: text.into(),
            binds: Vec::new(),
        }
    }

    /// Binds the next parameter as SQL type `ST`.
    pub(crate) fn bind<ST, T>(mut self, value: T) -> Self
    where
        ST: SqlType + TypedExpressionType,
        T: AsExpression<ST>,
        T::Expression: QueryFragment<Pg> + Send + 'a,
    {
        self.binds.push(Box::new(value.as_expression()));
        self
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let invalid = |message: String| diesel::result::Error::QueryBuilderError(message.into());
        let mut pieces = self.text.split('$');
        out.push_sql(pieces.next().unwrap_or_default());
        let mut used = vec![false; self.binds.len()];
        for piece in pieces {
            let digits = piece
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(piece.len());
            let number = piece[..digits].parse::<usize>().map_err(|_| {
                invalid(format!(
                    "a `$` not followed by a parameter number: `${piece:.12}`"
                ))
            })?;
            let bind = number
                .checked_sub(1)
                .and_then(|index| Some((index, self.binds.get(index)?)))
                .ok_or_else(|| {
                    invalid(format!(
                        "parameter ${number} is not bound ({} values bound)",
                        self.binds.len()
                    ))
                })?;
            used[bind.0] = true;
            bind.1.walk_ast(out.reborrow())?;
            out.push_sql(&piece[digits..]);
        }
        match used.iter().position(|used| !used) {
            None => Ok(()),
            Some(index) => Err(invalid(format!(
                "{} values bound, but the statement never names ${}",
                self.binds.len(),
                index + 1
            ))),
        }
    }
}

/// No static id: diesel caches the prepared statement under its text and bind types.
impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use diesel::pg::Pg;
    use diesel::query_builder::QueryFragment;
    use diesel::sql_types::{BigInt, Uuid as SqlUuid};

    use super::Prepared;

    #[test]
    fn a_prepared_statement_binds_in_order_and_may_be_cached() -> diesel::QueryResult<()> {
        let statement = Prepared::new("SELECT $1::uuid, $2 + 1")
            .bind::<SqlUuid, _>(uuid::Uuid::nil())
            .bind::<BigInt, _>(41_i64);
        let text = diesel::debug_query::<Pg, _>(&statement).to_string();
        assert!(
            text.starts_with("SELECT $1::uuid, $2 + 1 -- binds: ["),
            "{text}"
        );
        assert!(statement.is_safe_to_cache_prepared(&Pg)?);
        Ok(())
    }

    #[test]
    fn values_named_out_of_order_or_twice_are_sent_once_per_place() -> diesel::QueryResult<()> {
        let statement = Prepared::new("SELECT $2, $1 LIMIT $2")
            .bind::<BigInt, _>(1_i64)
            .bind::<BigInt, _>(2_i64);
        let text = diesel::debug_query::<Pg, _>(&statement).to_string();
        assert_eq!(text, "SELECT $1, $2 LIMIT $3 -- binds: [2, 1, 2]");
        assert!(statement.is_safe_to_cache_prepared(&Pg)?);
        Ok(())
    }

    #[test]
    fn a_parameter_unbound_never_named_or_not_a_number_is_an_error() {
        let unbound = Prepared::new("SELECT $1, $2").bind::<BigInt, _>(1_i64);
        let extra = Prepared::new("SELECT $1")
            .bind::<BigInt, _>(1_i64)
            .bind::<BigInt, _>(2_i64);
        let zero = Prepared::new("SELECT $0").bind::<BigInt, _>(1_i64);
        let dollar = Prepared::new("SELECT $1, '$x'").bind::<BigInt, _>(1_i64);
        for statement in [unbound, extra, zero, dollar] {
            let mut builder = diesel::pg::PgQueryBuilder::default();
            assert!(statement.to_sql(&mut builder, &Pg).is_err());
        }
    }
}
