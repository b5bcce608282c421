//! The `UnitOfWorkFactory` contract, written once against the port and run against
//! `PgUnits`; then what the Postgres unit adds: a unit dropped uncommitted is rolled
//! back and its connection goes back to the pool, outside any transaction.

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fluxolab_kernel::{UnitOfWorkFactory, Uow};
use fluxolab_postgres::unit_of_work::{PgUnits, connection_of};
use fluxolab_postgres::{DbPool, PoolSettings, TestDb, connect_pool};
use uuid::Uuid;

use crate::TestResult;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How the suite writes a mark inside a unit and looks for it, through the
/// implementation under test.
#[async_trait]
pub trait Marks: Send + Sync {
    async fn write(&self, unit: &mut Uow, mark: Uuid) -> Result<(), Error>;
    /// Whether `mark` is visible inside `unit`.
    async fn seen_in(&self, unit: &mut Uow, mark: Uuid) -> Result<bool, Error>;
    /// Whether `mark` is visible outside any unit (committed).
    async fn seen(&self, mark: Uuid) -> Result<bool, Error>;
}

/// Committing makes a unit's writes visible to everyone.
pub async fn commit_makes_writes_visible(
    units: &dyn UnitOfWorkFactory,
    marks: &dyn Marks,
) -> TestResult {
    let mark = Uuid::new_v4();
    let mut unit = units.begin().await?;
    marks.write(unit.as_mut(), mark).await?;
    assert!(
        marks.seen_in(unit.as_mut(), mark).await?,
        "a unit sees its writes"
    );
    assert!(!marks.seen(mark).await?, "visible before the commit");
    unit.commit().await?;
    assert!(marks.seen(mark).await?, "not visible after the commit");
    Ok(())
}

/// Dropping a unit uncommitted discards every write it made.
pub async fn drop_discards_writes(units: &dyn UnitOfWorkFactory, marks: &dyn Marks) -> TestResult {
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let mut unit = units.begin().await?;
    marks.write(unit.as_mut(), first).await?;
    marks.write(unit.as_mut(), second).await?;
    drop(unit);
    // The next unit starts after the drop: whatever the drop did is done by then.
    let mut next = units.begin().await?;
    assert!(!marks.seen_in(next.as_mut(), first).await?);
    assert!(!marks.seen_in(next.as_mut(), second).await?);
    next.commit().await?;
    assert!(!marks.seen(first).await? && !marks.seen(second).await?);
    Ok(())
}

/// Two open units do not see each other's uncommitted writes.
pub async fn units_are_isolated(units: &dyn UnitOfWorkFactory, marks: &dyn Marks) -> TestResult {
    let (mine, theirs) = (Uuid::new_v4(), Uuid::new_v4());
    let mut one = units.begin().await?;
    let mut two = units.begin().await?;
    marks.write(one.as_mut(), mine).await?;
    marks.write(two.as_mut(), theirs).await?;
    assert!(!marks.seen_in(two.as_mut(), mine).await?);
    assert!(!marks.seen_in(one.as_mut(), theirs).await?);
    drop(two);
    one.commit().await?;
    assert!(marks.seen(mine).await?);
    assert!(
        !marks.seen(theirs).await?,
        "the dropped unit's write survived"
    );
    Ok(())
}

/// The whole contract.
pub async fn unit_of_work_contract(units: &dyn UnitOfWorkFactory, marks: &dyn Marks) -> TestResult {
    commit_makes_writes_visible(units, marks).await?;
    drop_discards_writes(units, marks).await?;
    units_are_isolated(units, marks).await
}

/// Marks as rows of a scratch table of the test's database.
struct PgMarks(DbPool);

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

const INSERT_MARK: &str = "INSERT INTO contract_marks (id) VALUES ($1)";
const COUNT_MARK: &str = "SELECT count(*) AS count FROM contract_marks WHERE id = $1";

impl PgMarks {
    async fn new(db: &TestDb) -> Result<Self, Error> {
        diesel::sql_query("CREATE TABLE contract_marks (id uuid PRIMARY KEY)")
            .execute(&mut db.pool().get().await?)
            .await?;
        Ok(Self(db.pool().clone()))
    }
}

async fn count_mark(connection: &mut AsyncPgConnection, mark: Uuid) -> Result<bool, Error> {
    let found: Found = diesel::sql_query(COUNT_MARK)
        .bind::<SqlUuid, _>(mark)
        .get_result(connection)
        .await?;
    Ok(found.count > 0)
}

#[async_trait]
impl Marks for PgMarks {
    async fn write(&self, unit: &mut Uow, mark: Uuid) -> Result<(), Error> {
        diesel::sql_query(INSERT_MARK)
            .bind::<SqlUuid, _>(mark)
            .execute(connection_of(unit)?)
            .await?;
        Ok(())
    }

    async fn seen_in(&self, unit: &mut Uow, mark: Uuid) -> Result<bool, Error> {
        count_mark(connection_of(unit)?, mark).await
    }

    async fn seen(&self, mark: Uuid) -> Result<bool, Error> {
        count_mark(&mut *self.0.get().await?, mark).await
    }
}

#[tokio::test]
async fn postgres_units_keep_the_unit_of_work_contract() -> TestResult {
    let db = TestDb::new().await?;
    let marks = PgMarks::new(&db).await?;
    unit_of_work_contract(&PgUnits::new(db.pool().clone()), &marks).await
}

#[derive(QueryableByName)]
struct Backend {
    #[diesel(sql_type = Integer)]
    pid: i32,
    /// Set once a transaction wrote: `None` outside the unit's old transaction.
    #[diesel(sql_type = Nullable<BigInt>)]
    txid: Option<i64>,
}

/// The connection's server process and transaction, and whether it is inside a
/// transaction block (`now() = statement_timestamp()` is no test of that over the
/// extended protocol: the two differ by the messages' gap even in a fresh statement).
async fn backend(connection: &mut AsyncPgConnection) -> Result<(Backend, bool), Error> {
    let backend: Backend =
        diesel::sql_query("SELECT pg_backend_pid() AS pid, txid_current_if_assigned() AS txid")
            .get_result(&mut *connection)
            .await?;
    // SAVEPOINT is refused outside a transaction block, and only there.
    let in_block = match diesel::sql_query("SAVEPOINT probe")
        .execute(&mut *connection)
        .await
    {
        Ok(_) => true,
        Err(error) if error.to_string().contains("transaction block") => false,
        Err(error) => return Err(error.into()),
    };
    Ok((backend, in_block))
}

fn single_connection_pool(db: &TestDb) -> Result<DbPool, Error> {
    Ok(connect_pool(
        db.url(),
        &PoolSettings {
            max_size: 1,
            acquire_timeout: std::time::Duration::from_secs(10),
        },
    )?)
}

#[tokio::test]
async fn a_dropped_unit_is_rolled_back_and_its_connection_pooled_again() -> TestResult {
    let db = TestDb::new().await?;
    let marks = PgMarks::new(&db).await?;
    let pool = single_connection_pool(&db)?;
    let units = PgUnits::new(pool.clone());

    let mut unit = units.begin().await?;
    let mark = Uuid::new_v4();
    marks.write(unit.as_mut(), mark).await?;
    let (inside, in_block) = backend(connection_of(unit.as_mut())?).await?;
    assert!(inside.txid.is_some(), "the write took a transaction id");
    assert!(in_block, "the probe must see the unit's transaction");
    drop(unit);

    // The pool has one connection: this waits until the unit's is back.
    let (after, in_block) = backend(&mut *pool.get().await?).await?;
    assert_eq!(
        after.pid, inside.pid,
        "the connection was closed, not pooled"
    );
    assert!(!in_block, "handed out inside the old transaction");
    assert_eq!(after.txid, None, "handed out inside the old transaction");
    assert!(
        !marks.seen(mark).await?,
        "the dropped unit's write survived"
    );
    Ok(())
}

#[tokio::test]
async fn a_unit_dropped_after_a_refused_write_costs_no_reconnect() -> TestResult {
    let db = TestDb::new().await?;
    let marks = PgMarks::new(&db).await?;
    let pool = single_connection_pool(&db)?;
    let units = PgUnits::new(pool.clone());
    let taken = Uuid::new_v4();
    let mut setup = units.begin().await?;
    marks.write(setup.as_mut(), taken).await?;
    setup.commit().await?;

    let first = backend(&mut *pool.get().await?).await?.0.pid;
    for _ in 0..3 {
        let mut unit = units.begin().await?;
        let fresh = Uuid::new_v4();
        marks.write(unit.as_mut(), fresh).await?;
        // A duplicate key: the transaction is now aborted, as after any refused write.
        assert!(marks.write(unit.as_mut(), taken).await.is_err());
        drop(unit);
        let (after, in_block) = backend(&mut *pool.get().await?).await?;
        assert_eq!(after.pid, first, "a refused write cost a reconnect");
        assert!(
            !in_block && after.txid.is_none(),
            "handed out inside the old transaction"
        );
        assert!(!marks.seen(fresh).await?);
    }
    Ok(())
}
