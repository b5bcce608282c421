use fluxolab_postgres::TestDb;
use fluxolab_postgres::migrations::{self, run_off_runtime};
use fluxolab_postgres::readiness::{self, NotReady};

use crate::TestResult;

#[tokio::test]
async fn a_fresh_test_database_is_ready() -> TestResult {
    let db = TestDb::new().await?;
    let embedded = migrations::embedded_versions()?;
    readiness::check(db.pool(), &embedded).await?;
    Ok(())
}

#[tokio::test]
async fn migrating_down_one_and_up_again_round_trips() -> TestResult {
    let db = TestDb::new().await?;
    let url = db.url().to_owned();
    let embedded = migrations::embedded_versions()?;

    let reverted = run_off_runtime({
        let url = url.clone();
        move || migrations::revert(&url, 1)
    })
    .await?;
    assert_eq!(reverted.len(), 1);
    assert_eq!(Some(&reverted[0]), embedded.last());
    let status = run_off_runtime({
        let url = url.clone();
        move || migrations::status(&url)
    })
    .await?;
    assert_eq!(status.iter().filter(|m| !m.applied).count(), 1);
    match readiness::check(db.pool(), &embedded).await {
        Err(NotReady::PendingMigrations { count: 1, .. }) => {}
        other => panic!("expected one pending migration, got {other:?}"),
    }

    let applied = run_off_runtime({
        let url = url.clone();
        move || migrations::run_pending(&url)
    })
    .await?;
    assert_eq!(applied.len(), 1);
    readiness::check(db.pool(), &embedded).await?;
    Ok(())
}

#[tokio::test]
async fn every_migration_reverts_cleanly_to_an_empty_schema() -> TestResult {
    let db = TestDb::new().await?;
    let url = db.url().to_owned();
    let embedded = migrations::embedded_versions()?;
    let reverted = run_off_runtime({
        let url = url.clone();
        move || migrations::revert(&url, usize::MAX)
    })
    .await?;
    assert_eq!(reverted.len(), embedded.len());

    use diesel::QueryableByName;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let mut connection = db.pool().get().await?;
    let tables: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .get_result(&mut connection)
    .await?;
    assert_eq!(tables.count, 0, "down.sql left tables behind");
    drop(connection);

    run_off_runtime(move || migrations::run_pending(&url)).await?;
    readiness::check(db.pool(), &embedded).await?;
    Ok(())
}
