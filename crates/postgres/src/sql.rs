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
/// connection and then reuses: a later call costs one round trip (bind and execute),
/// where `sql_query`, which diesel never caches, prepares it again every time — two.
/// Its text uses each of `$1`, `$2`, … once and in order (and no other `$`); the values
/// are bound in that order by [`Prepared::bind`]. Rows load as with `sql_query`
/// (`QueryableByName`).
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
        let mut pieces = self.text.split('$');
        out.push_sql(pieces.next().unwrap_or_default());
        let mut used = 0;
        for (index, piece) in pieces.enumerate() {
            let digits = piece
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(piece.len());
            let bind = self
                .binds
                .get(index)
                .filter(|_| piece[..digits].parse::<usize>().ok() == Some(index + 1))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("parameter ${} is out of order or not bound", index + 1).into(),
                    )
                })?;
            bind.walk_ast(out.reborrow())?;
            out.push_sql(&piece[digits..]);
            used += 1;
        }
        if used == self.binds.len() {
            Ok(())
        } else {
            Err(diesel::result::Error::QueryBuilderError(
                format!(
                    "{} values bound to a statement of {used} parameters",
                    self.binds.len()
                )
                .into(),
            ))
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
    fn a_parameter_out_of_order_unbound_or_missing_is_an_error() {
        let swapped = Prepared::new("SELECT $2, $1")
            .bind::<BigInt, _>(1_i64)
            .bind::<BigInt, _>(2_i64);
        let unbound = Prepared::new("SELECT $1, $2").bind::<BigInt, _>(1_i64);
        let extra = Prepared::new("SELECT $1")
            .bind::<BigInt, _>(1_i64)
            .bind::<BigInt, _>(2_i64);
        for statement in [swapped, unbound, extra] {
            let mut builder = diesel::pg::PgQueryBuilder::default();
            assert!(statement.to_sql(&mut builder, &Pg).is_err());
        }
    }
}
