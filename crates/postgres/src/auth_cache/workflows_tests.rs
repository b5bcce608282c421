//! `CachedWorkflows` with its repository mocked: what is kept, for whom, and until when.

use std::sync::Arc;

use fluxolab_kernel::{EnvironmentId, StorageError, UnitOfWorkFactory, WorkflowId, WorkspaceId};
use fluxolab_workflows::model::Workflow;
use fluxolab_workflows::ports::{MockWorkflowRepository, WorkflowRepository};
use time::OffsetDateTime;

use super::super::{AuthCache, AuthCacheSettings, Change};
use super::CachedWorkflows;

fn listening() -> AuthCache {
    let cache = AuthCache::new(AuthCacheSettings::default());
    cache.listening_started();
    cache
}

fn workflow(workspace: WorkspaceId, id: WorkflowId) -> Workflow {
    Workflow {
        id,
        workspace_id: workspace,
        name: "Orders".to_owned(),
        description: String::new(),
        deployments: Vec::new(),
        latest_version: Some(1),
        error_workflow_id: None,
        archived_at: None,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

/// A repository that finds `id` in `workspace` only, read exactly `reads` times.
fn finding(workspace: WorkspaceId, id: WorkflowId, reads: usize) -> MockWorkflowRepository {
    let mut inner = MockWorkflowRepository::new();
    inner
        .expect_find()
        .times(reads)
        .returning(move |asked, wanted| {
            Ok((asked == workspace && wanted == id).then(|| workflow(workspace, id)))
        });
    inner
}

#[tokio::test]
async fn a_found_workflow_is_kept_until_a_change_names_it() -> Result<(), StorageError> {
    let cache = listening();
    let (workspace, id) = (WorkspaceId::new(), WorkflowId::new());
    // Read once, then once after each change that concerns it.
    let workflows = CachedWorkflows::new(Arc::new(finding(workspace, id, 4)), cache.clone());
    for change in [
        Change::Workflow(id),
        Change::Environments(workspace),
        Change::Everything,
    ] {
        assert_eq!(
            workflows.find(workspace, id).await?.map(|found| found.id),
            Some(id)
        );
        assert!(workflows.find(workspace, id).await?.is_some());
        cache.evict(&change).await;
    }
    workflows.find(workspace, id).await?;
    // Others' changes leave it cached.
    cache.evict(&Change::Workflow(WorkflowId::new())).await;
    cache.evict(&Change::Environments(WorkspaceId::new())).await;
    cache.evict(&Change::Workspace(workspace)).await;
    workflows.find(workspace, id).await?;
    Ok(())
}

#[tokio::test]
async fn another_workspace_finds_nothing_and_nothing_found_is_read_each_time()
-> Result<(), StorageError> {
    let cache = listening();
    let (workspace, id) = (WorkspaceId::new(), WorkflowId::new());
    let stranger = WorkspaceId::new();
    // The stranger's two misses, then the owner's read, then the stranger served from
    // the cache (still nothing), and an unknown id read twice.
    let workflows = CachedWorkflows::new(Arc::new(finding(workspace, id, 5)), cache);
    assert!(workflows.find(stranger, id).await?.is_none());
    assert!(workflows.find(stranger, id).await?.is_none());
    assert!(workflows.find(workspace, id).await?.is_some());
    assert!(workflows.find(stranger, id).await?.is_none());
    assert!(workflows.find(workspace, id).await?.is_some());
    let unknown = WorkflowId::new();
    assert!(workflows.find(workspace, unknown).await?.is_none());
    assert!(workflows.find(workspace, unknown).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn without_a_listener_every_find_reads_the_database() -> Result<(), StorageError> {
    let cache = AuthCache::new(AuthCacheSettings::default());
    let (workspace, id) = (WorkspaceId::new(), WorkflowId::new());
    let workflows = CachedWorkflows::new(Arc::new(finding(workspace, id, 3)), cache);
    for _ in 0..3 {
        workflows.find(workspace, id).await?;
    }
    Ok(())
}

#[tokio::test]
async fn workflow_writes_evict_it_when_they_commit() -> Result<(), Box<dyn std::error::Error>> {
    let db = crate::test_db::TestDb::new().await?;
    let units = crate::unit_of_work::PgUnits::new(db.pool().clone());
    let cache = listening();
    let (workspace, id) = (WorkspaceId::new(), WorkflowId::new());
    // Read first, then once after each committed write: a rename, an activation.
    let mut inner = finding(workspace, id, 3);
    inner
        .expect_update()
        .times(2)
        .returning(|_, _, _, _, _| Ok(()));
    inner
        .expect_set_active()
        .times(1)
        .returning(|_, _, _, _, _, _| Ok(()));
    let workflows = CachedWorkflows::new(Arc::new(inner), cache);
    workflows.find(workspace, id).await?;

    // Rolled back: nothing evicted.
    let mut unit = units.begin().await?;
    workflows
        .update(unit.as_mut(), workspace, id, "Dropped", "")
        .await?;
    drop(unit);
    workflows.find(workspace, id).await?;

    // Committed: evicted then, not before.
    let mut unit = units.begin().await?;
    workflows
        .update(unit.as_mut(), workspace, id, "Renamed", "")
        .await?;
    workflows.find(workspace, id).await?;
    unit.commit().await?;
    workflows.find(workspace, id).await?;

    let mut unit = units.begin().await?;
    workflows
        .set_active(
            unit.as_mut(),
            workspace,
            id,
            EnvironmentId::new(),
            Some(1),
            None,
        )
        .await?;
    unit.commit().await?;
    workflows.find(workspace, id).await?;
    Ok(())
}
