//! The auth cache over Postgres: a change made through its decorator is seen by the
//! next lookup of the same process as soon as the change's unit has committed — without
//! waiting for the announcement to come back through the listener — and a change rolled
//! back leaves the cached answer as it was (nothing evicts it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;
use fluxolab_kernel::{UnitOfWorkFactory, UserId, WorkspaceId};
use fluxolab_postgres::TestDb;
use fluxolab_postgres::auth_cache::{AuthCache, AuthCacheSettings, CachedMembers};
use fluxolab_postgres::seed::seed_reference_data;
use fluxolab_postgres::unit_of_work::PgUnits;
use fluxolab_postgres::workspaces::PgWorkspaces;
use fluxolab_workspace::Role;
use fluxolab_workspace::ports::MemberRepository;

use crate::TestResult;

#[tokio::test]
async fn a_committed_change_is_seen_at_once_and_a_rolled_back_one_changes_nothing() -> TestResult {
    let db = TestDb::new().await?;
    let (workspace, user) = (WorkspaceId::new(), UserId::new());
    {
        let mut connection = db.pool().get().await?;
        seed_reference_data(&mut connection).await?;
        connection
            .batch_execute(&format!(
                "INSERT INTO users (id, email, password_hash, display_name) \
                   VALUES ('{user}', 'member@example.com', 'x', 'Member'); \
                 INSERT INTO workspaces (id, name, slug) VALUES ('{workspace}', 'W', 'w'); \
                 INSERT INTO workspace_members (workspace_id, user_id, profile_id) \
                   SELECT '{workspace}', '{user}', id FROM profiles WHERE code = 'editor'"
            ))
            .await?;
    }
    // The cache is used while its listener listens — here on another database, which
    // this one's announcements never reach: only the eviction that follows the commit
    // in this process can make a change seen.
    let elsewhere = TestDb::new().await?;
    let cache = AuthCache::new(AuthCacheSettings::default());
    let listener = cache.listen(elsewhere.pool().clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cache.is_listening() {
        assert!(Instant::now() < deadline, "the listener never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let members = CachedMembers::new(
        Arc::new(PgWorkspaces::new(db.pool().clone())),
        cache.clone(),
    );
    let units = PgUnits::new(db.pool().clone());
    let role = async || -> Result<Option<Role>, fluxolab_kernel::StorageError> {
        Ok(members.access(workspace, user).await?.map(|(role, _)| role))
    };
    assert_eq!(role().await?, Some(Role::Editor));

    let mut unit = units.begin().await?;
    members
        .set_role(unit.as_mut(), workspace, user, Role::Viewer)
        .await?;
    drop(unit);
    assert_eq!(role().await?, Some(Role::Editor), "rolled back");

    let mut unit = units.begin().await?;
    members
        .set_role(unit.as_mut(), workspace, user, Role::Viewer)
        .await?;
    unit.commit().await?;
    assert_eq!(
        role().await?,
        Some(Role::Viewer),
        "seen right after the commit"
    );

    let mut unit = units.begin().await?;
    members.remove(unit.as_mut(), workspace, user).await?;
    unit.commit().await?;
    assert_eq!(role().await?, None, "gone right after the commit");
    listener.abort();
    Ok(())
}
