//! Which workspace becomes a user's default when they lose the membership of theirs.
//!
//! The rule: the membership with the highest role (owner, then admin, editor, viewer);
//! among equals the oldest membership; among memberships of the same instant the lowest
//! workspace id, so the choice never depends on the order storage returns them in. No
//! membership left: no default.

use std::cmp::Reverse;

use fluxolab_kernel::{StorageError, Uow, UserId, WorkspaceId};
use time::OffsetDateTime;

use crate::Role;
use crate::ports::MemberRepository;

/// A membership a user still holds, as the rule needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldMembership {
    pub workspace_id: WorkspaceId,
    pub role: Role,
    pub joined_at: OffsetDateTime,
}

/// How much a role weighs when a default is picked: higher is preferred.
pub const fn rank(role: Role) -> u8 {
    match role {
        Role::Owner => 4,
        Role::Admin => 3,
        Role::Editor => 2,
        Role::Viewer => 1,
    }
}

/// The new default among the memberships left; `None` when there is none.
pub fn pick_default(memberships: &[HeldMembership]) -> Option<WorkspaceId> {
    memberships
        .iter()
        .min_by_key(|held| {
            (
                Reverse(rank(held.role)),
                held.joined_at,
                held.workspace_id.as_uuid(),
            )
        })
        .map(|held| held.workspace_id)
}

/// After `user` lost the membership of `workspace`: when it was their default, the
/// default becomes the one [`pick_default`] chooses among what they still hold.
pub async fn repick_default(
    members: &dyn MemberRepository,
    unit: &mut Uow,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<(), StorageError> {
    if members.lock_default_of(unit, user).await? != Some(workspace) {
        return Ok(());
    }
    let held = members.held_by(unit, user).await?;
    members.store_default(unit, user, pick_default(&held)).await
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use uuid::Uuid;

    use super::*;

    fn held(role: Role, days_ago: i64) -> HeldMembership {
        HeldMembership {
            workspace_id: WorkspaceId::new(),
            role,
            joined_at: OffsetDateTime::UNIX_EPOCH + Duration::days(1000 - days_ago),
        }
    }

    #[test]
    fn no_membership_left_means_no_default() {
        assert_eq!(pick_default(&[]), None);
    }

    #[test]
    fn the_highest_role_wins_over_an_older_membership() {
        let old_viewer = held(Role::Viewer, 300);
        let old_editor = held(Role::Editor, 200);
        let admin = held(Role::Admin, 1);
        assert_eq!(
            pick_default(&[old_viewer, admin, old_editor]),
            Some(admin.workspace_id)
        );
        let owner = held(Role::Owner, 0);
        assert_eq!(
            pick_default(&[old_viewer, admin, owner, old_editor]),
            Some(owner.workspace_id)
        );
    }

    #[test]
    fn among_equal_roles_the_oldest_membership_wins() {
        let newer = held(Role::Editor, 5);
        let older = held(Role::Editor, 50);
        assert_eq!(pick_default(&[newer, older]), Some(older.workspace_id));
        assert_eq!(pick_default(&[older, newer]), Some(older.workspace_id));
    }

    #[test]
    fn a_tie_is_broken_by_workspace_id_whatever_the_order() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let low = HeldMembership {
            workspace_id: WorkspaceId::from_uuid(Uuid::from_u128(1)),
            role: Role::Viewer,
            joined_at: at,
        };
        let high = HeldMembership {
            workspace_id: WorkspaceId::from_uuid(Uuid::from_u128(2)),
            ..low
        };
        assert_eq!(pick_default(&[high, low]), Some(low.workspace_id));
        assert_eq!(pick_default(&[low, high]), Some(low.workspace_id));
    }

    #[test]
    fn ranks_follow_the_roles_most_powerful_first() {
        let ranks: Vec<u8> = Role::ALL.into_iter().map(rank).collect();
        assert!(ranks.windows(2).all(|pair| pair[0] > pair[1]), "{ranks:?}");
    }
}
