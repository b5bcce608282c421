//! The cache decorators with their repositories mocked: what is read, and when again.

use std::sync::Arc;

use fluxolab_identity::account::{Membership, User};
use fluxolab_identity::ports::{MockUserProfiles, UserProfiles};
use fluxolab_kernel::UnitOfWorkFactory;
use fluxolab_kernel::{Permission, StorageError, UserId, WorkspaceId};
use fluxolab_workspace::Role;
use fluxolab_workspace::api_keys::{ApiKeyRepository, MockApiKeyRepository};
use fluxolab_workspace::ports::{
    MemberRepository, MockMemberRepository, MockWorkspaceRepository, WorkspaceRepository,
};

use super::{
    AuthCache, AuthCacheSettings, CachedApiKeys, CachedMembers, CachedProfiles, CachedSsoDirectory,
    CachedWorkspaces, Change,
};

type Access = Option<(Role, Vec<Permission>)>;

fn editor() -> Access {
    Some((Role::Editor, Role::Editor.grants()))
}

fn listening() -> AuthCache {
    let cache = AuthCache::new(AuthCacheSettings::default());
    cache.listening_started();
    cache
}

/// Members whose `access` answers `answer` and must be read exactly `reads` times.
fn members(cache: &AuthCache, reads: usize, answer: Access) -> CachedMembers {
    let mut inner = MockMemberRepository::new();
    inner
        .expect_access()
        .times(reads)
        .returning(move |_, _| Ok(answer.clone()));
    CachedMembers::new(Arc::new(inner), cache.clone())
}

#[test]
fn payloads_name_what_to_evict() {
    let (workspace, user) = (WorkspaceId::new(), UserId::new());
    assert_eq!(
        Change::parse(&format!("member:{workspace}:{user}")),
        Change::Member { workspace, user }
    );
    assert_eq!(
        Change::parse(&format!("workspace:{workspace}")),
        Change::Workspace(workspace)
    );
    assert_eq!(
        Change::parse("api_key:flx_abcdefgh"),
        Change::ApiKey("flx_abcdefgh".to_owned())
    );
    assert_eq!(Change::parse(&format!("user:{user}")), Change::User(user));
    let workflow = fluxolab_kernel::WorkflowId::new();
    assert_eq!(
        Change::parse(&format!("workflow:{workflow}")),
        Change::Workflow(workflow)
    );
    assert_eq!(
        Change::parse(&format!("environments:{workspace}")),
        Change::Environments(workspace)
    );
    for unreadable in [
        "all",
        "",
        "member:nope",
        "workspace:",
        "api_key:",
        "environments:x",
        "user:",
        "workflow:12",
        "news",
    ] {
        assert_eq!(
            Change::parse(unreadable),
            Change::Everything,
            "{unreadable}"
        );
    }
}

#[tokio::test]
async fn a_membership_is_read_once_while_the_listener_listens() -> Result<(), StorageError> {
    let cache = listening();
    let members = members(&cache, 1, editor());
    let (workspace, user) = (WorkspaceId::new(), UserId::new());
    for _ in 0..3 {
        assert_eq!(members.access(workspace, user).await?, editor());
    }
    Ok(())
}

#[tokio::test]
async fn without_a_listener_every_lookup_reads_the_database() -> Result<(), StorageError> {
    let cache = AuthCache::new(AuthCacheSettings::default());
    let members = members(&cache, 3, editor());
    let (workspace, user) = (WorkspaceId::new(), UserId::new());
    for _ in 0..3 {
        members.access(workspace, user).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_announced_change_is_read_again_and_others_are_kept() -> Result<(), StorageError> {
    let cache = listening();
    // Not being a member is cached too; two lookups of each pair, one eviction.
    let members = members(&cache, 3, None);
    let workspace = WorkspaceId::new();
    let (changed, unchanged) = (UserId::new(), UserId::new());
    members.access(workspace, changed).await?;
    members.access(workspace, unchanged).await?;
    cache
        .evict(&Change::Member {
            workspace,
            user: changed,
        })
        .await;
    members.access(workspace, changed).await?;
    members.access(workspace, unchanged).await?;
    Ok(())
}

#[tokio::test]
async fn a_workspace_change_or_everything_drops_every_membership() -> Result<(), StorageError> {
    let cache = listening();
    let members = members(&cache, 3, editor());
    let (workspace, user) = (WorkspaceId::new(), UserId::new());
    members.access(workspace, user).await?;
    cache.evict(&Change::Workspace(WorkspaceId::new())).await;
    members.access(workspace, user).await?;
    cache.evict(&Change::Everything).await;
    members.access(workspace, user).await?;
    Ok(())
}

#[tokio::test]
async fn a_lost_listener_bypasses_the_cache_and_leaves_it_empty() -> Result<(), StorageError> {
    let cache = listening();
    // Cached once; two lookups while not listening; read again once listening again.
    let members = members(&cache, 4, editor());
    let (workspace, user) = (WorkspaceId::new(), UserId::new());
    members.access(workspace, user).await?;
    members.access(workspace, user).await?;
    cache.listening_stopped();
    members.access(workspace, user).await?;
    members.access(workspace, user).await?;
    cache.listening_started();
    members.access(workspace, user).await?;
    members.access(workspace, user).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_read_while_a_change_is_evicted_is_not_kept() -> Result<(), StorageError> {
    let cache = listening();
    let (workspace, user) = (WorkspaceId::new(), UserId::new());
    let mut inner = MockMemberRepository::new();
    let evicting = cache.clone();
    let mut first = true;
    inner.expect_access().times(2).returning(move |_, _| {
        if std::mem::take(&mut first) {
            // The change commits and is announced while this (old) answer is read.
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current()
                    .block_on(evicting.evict(&Change::Member { workspace, user }));
            });
            return Ok(editor());
        }
        Ok(None)
    });
    let members = CachedMembers::new(Arc::new(inner), cache.clone());
    assert_eq!(members.access(workspace, user).await?, editor());
    assert_eq!(members.access(workspace, user).await?, None);
    assert_eq!(members.access(workspace, user).await?, None);
    Ok(())
}

#[tokio::test]
async fn unknown_key_prefixes_are_cached_until_a_key_change() -> Result<(), StorageError> {
    let cache = listening();
    let mut inner = MockApiKeyRepository::new();
    inner
        .expect_find_by_prefix()
        .withf(|prefix| prefix == "flx_unknown1")
        .times(3)
        .returning(|_| Ok(None));
    let keys = CachedApiKeys::new(Arc::new(inner), cache.clone());
    assert_eq!(keys.find_by_prefix("flx_unknown1").await?, None);
    assert_eq!(keys.find_by_prefix("flx_unknown1").await?, None);
    cache
        .evict(&Change::ApiKey("flx_unknown1".to_owned()))
        .await;
    keys.find_by_prefix("flx_unknown1").await?;
    keys.find_by_prefix("flx_unknown1").await?;
    cache.evict(&Change::ApiKeys).await;
    keys.find_by_prefix("flx_unknown1").await?;
    Ok(())
}

/// Profiles of the user `user` that must be read exactly `reads` times.
fn profiles(cache: &AuthCache, user: UserId, reads: usize) -> CachedProfiles {
    let mut inner = MockUserProfiles::new();
    inner
        .expect_find_with_memberships()
        .times(reads)
        .returning(move |_| {
            Ok(Some((
                User {
                    id: user,
                    email: "ada@example.com".to_owned(),
                    display_name: "Ada".to_owned(),
                    default_workspace_id: None,
                    created_at: time::OffsetDateTime::UNIX_EPOCH,
                },
                Vec::<Membership>::new(),
            )))
        });
    CachedProfiles::new(Arc::new(inner), cache.clone())
}

#[tokio::test]
async fn a_profile_is_read_again_after_each_change_that_names_it() -> Result<(), StorageError> {
    let cache = listening();
    let user = UserId::new();
    // Read once, then once after each change that concerns it: its membership, the
    // user, any workspace (a rename), everything.
    let profiles = profiles(&cache, user, 5);
    let found = profiles.find_with_memberships(user).await?;
    assert_eq!(found.map(|(found, _)| found.id), Some(user));
    profiles.find_with_memberships(user).await?;
    for change in [
        Change::Member {
            workspace: WorkspaceId::new(),
            user,
        },
        Change::User(user),
        Change::Workspace(WorkspaceId::new()),
        Change::Everything,
    ] {
        cache.evict(&change).await;
        profiles.find_with_memberships(user).await?;
        profiles.find_with_memberships(user).await?;
    }
    // Another user's changes leave it cached.
    cache.evict(&Change::User(UserId::new())).await;
    cache
        .evict(&Change::Member {
            workspace: WorkspaceId::new(),
            user: UserId::new(),
        })
        .await;
    profiles.find_with_memberships(user).await?;
    Ok(())
}

#[tokio::test]
async fn workspace_writes_evict_the_profiles_they_change_when_they_commit()
-> Result<(), Box<dyn std::error::Error>> {
    let db = crate::test_db::TestDb::new().await?;
    let units = crate::unit_of_work::PgUnits::new(db.pool().clone());
    let cache = listening();
    let user = UserId::new();
    // Read first, then once after each committed write: a rename, a default workspace.
    let profiles = profiles(&cache, user, 3);
    let mut renames = MockWorkspaceRepository::new();
    renames.expect_rename().times(2).returning(|_, _, _| Ok(()));
    let workspaces = CachedWorkspaces::new(Arc::new(renames), cache.clone());
    let mut defaults = MockMemberRepository::new();
    defaults
        .expect_store_default()
        .times(1)
        .returning(|_, _, _| Ok(()));
    let members = CachedMembers::new(Arc::new(defaults), cache.clone());
    profiles.find_with_memberships(user).await?;

    // Rolled back: nothing evicted.
    let mut unit = units.begin().await?;
    workspaces
        .rename(unit.as_mut(), WorkspaceId::new(), "Dropped")
        .await?;
    drop(unit);
    profiles.find_with_memberships(user).await?;

    // Committed: evicted then, not before.
    let mut unit = units.begin().await?;
    workspaces
        .rename(unit.as_mut(), WorkspaceId::new(), "Renamed")
        .await?;
    profiles.find_with_memberships(user).await?;
    unit.commit().await?;
    profiles.find_with_memberships(user).await?;

    let mut unit = units.begin().await?;
    members
        .store_default(unit.as_mut(), user, Some(WorkspaceId::new()))
        .await?;
    unit.commit().await?;
    profiles.find_with_memberships(user).await?;
    Ok(())
}

#[tokio::test]
async fn a_member_a_sign_in_adds_is_evicted_when_it_commits()
-> Result<(), Box<dyn std::error::Error>> {
    use fluxolab_workspace::sso::SsoDirectory;
    use fluxolab_workspace::sso::ports::MockSsoDirectory;

    let db = crate::test_db::TestDb::new().await?;
    let units = crate::unit_of_work::PgUnits::new(db.pool().clone());
    let cache = listening();
    let (workspace, user) = (WorkspaceId::new(), UserId::new());
    // No member yet, cached; read again only after the committed sign-in.
    let members = members(&cache, 2, None);
    let mut inner = MockSsoDirectory::new();
    inner
        .expect_add_member()
        .times(2)
        .returning(|_, _, _, _| Ok(()));
    let directory = CachedSsoDirectory::new(Arc::new(inner), cache.clone());
    members.access(workspace, user).await?;

    let mut unit = units.begin().await?;
    directory
        .add_member(unit.as_mut(), workspace, user, Role::Viewer)
        .await?;
    drop(unit);
    members.access(workspace, user).await?;

    let mut unit = units.begin().await?;
    directory
        .add_member(unit.as_mut(), workspace, user, Role::Viewer)
        .await?;
    members.access(workspace, user).await?;
    unit.commit().await?;
    members.access(workspace, user).await?;
    members.access(workspace, user).await?;
    Ok(())
}
