use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_postgres::TestDb;
use fluxolab_postgres::schema::workspaces;

use crate::TestResult;

/// Inserts the same unique slug that the sibling test inserts; with a shared database one
/// of the two would fail on `workspaces_slug_key`.
async fn insert_the_shared_slug() -> TestResult {
    let db = TestDb::new().await?;
    let mut connection = db.pool().get().await?;
    diesel::insert_into(workspaces::table)
        .values((workspaces::name.eq("Acme"), workspaces::slug.eq("acme")))
        .execute(&mut connection)
        .await?;
    let count: i64 = workspaces::table
        .count()
        .get_result(&mut connection)
        .await?;
    assert_eq!(count, 1, "{} saw another test's rows", db.name());
    Ok(())
}

#[tokio::test]
async fn each_test_gets_its_own_database_first() -> TestResult {
    insert_the_shared_slug().await
}

#[tokio::test]
async fn each_test_gets_its_own_database_second() -> TestResult {
    insert_the_shared_slug().await
}

#[tokio::test]
async fn a_test_database_is_dropped_with_its_handle() -> TestResult {
    let db = TestDb::new().await?;
    let name = db.name().to_owned();
    let admin_url = std::env::var("TEST_DATABASE_URL")?;
    drop(db);
    if admin_url.is_empty() {
        return Ok(()); // testcontainers: the server itself is private to this process
    }
    let mut admin =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&admin_url)
            .await?;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let left: Count =
        diesel::sql_query("SELECT count(*) AS count FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut admin)
            .await?;
    assert_eq!(left.count, 0);
    Ok(())
}

#[tokio::test]
async fn pooled_connections_never_jit_compile() -> TestResult {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        jit: String,
    }
    let db = TestDb::new().await?;
    let mut connection = db.pool().get().await?;
    let setting: Setting = diesel::sql_query("SHOW jit")
        .get_result(&mut connection)
        .await?;
    assert_eq!(setting.jit, "off");
    Ok(())
}
