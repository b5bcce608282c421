//! Workspaces, members and activities as the domain sees them.

use fluxolab_kernel::{ApiKeyId, Cursor, UserId, WorkspaceId};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Role;

/// A workspace name: trimmed, 1–120 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceName(String);

impl WorkspaceName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        fluxolab_kernel::validation::bounded_name(raw).map(Self)
    }

    /// The name of a personal workspace whose owner's name makes no valid one.
    pub fn fallback() -> Self {
        Self(crate::provisioning::FALLBACK_PERSONAL_NAME.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A URL-safe slug stem from the name (`"Ada's Team!"` → `"ada-s-team"`).
    pub fn slug_stem(&self) -> String {
        let mut slug = String::new();
        for c in self.0.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let slug: String = slug.trim_end_matches('-').chars().take(40).collect();
        if slug.is_empty() {
            "workspace".to_owned()
        } else {
            slug
        }
    }
}

/// A workspace to create, with its first owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWorkspace {
    pub id: WorkspaceId,
    pub name: WorkspaceName,
    /// Unique: the name's slug stem and a suffix taken from the id.
    pub slug: String,
    pub owner: UserId,
}

impl NewWorkspace {
    /// A new workspace with a fresh id and the slug that follows from name and id.
    pub fn new(owner: UserId, name: WorkspaceName) -> Self {
        let id = WorkspaceId::new();
        Self {
            id,
            slug: slug_of(&name, id),
            name,
            owner,
        }
    }
}

/// `<slug stem>-<suffix>`, the suffix the id's last eight hex digits reversed (the
/// first ones of a UUID v7 are its timestamp, alike for workspaces made together).
pub fn slug_of(name: &WorkspaceName, id: WorkspaceId) -> String {
    let suffix: String = id
        .as_uuid()
        .simple()
        .to_string()
        .chars()
        .rev()
        .take(8)
        .collect();
    format!("{}-{suffix}", name.slug_stem())
}

/// A workspace as one of its members sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub slug: String,
    pub role: Role,
    pub plan: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A member of a workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub joined_at: OffsetDateTime,
}

impl Member {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.joined_at,
            id: self.user_id.as_uuid(),
        }
    }
}

/// A stored audit entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    pub id: Uuid,
    pub actor_user_id: Option<UserId>,
    pub actor_api_key_id: Option<ApiKeyId>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub metadata: Value,
    pub created_at: OffsetDateTime,
}

impl Activity {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// Filters of the activity log.
#[derive(Clone, Debug, Default)]
pub struct ActivityFilter {
    pub action: Option<String>,
    pub actor_user_id: Option<UserId>,
    pub since: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_safe() -> Result<(), &'static str> {
        assert_eq!(
            WorkspaceName::parse("Ada's Team!")?.slug_stem(),
            "ada-s-team"
        );
        assert_eq!(WorkspaceName::parse("  ✨✨ ")?.slug_stem(), "workspace");
        Ok(())
    }

    #[test]
    fn names_are_bounded() {
        assert!(WorkspaceName::parse("   ").is_err());
        assert!(WorkspaceName::parse(&"x".repeat(121)).is_err());
    }
}
