//! Typed ids: one newtype per table so ids of different tables cannot be swapped.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an id read from storage or from a request.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The raw UUID, for storage adapters.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

define_id!(
    /// A user account.
    UserId
);
define_id!(
    /// A workspace: the tenant boundary of every owned row.
    WorkspaceId
);
define_id!(
    /// An API key acting as a principal.
    ApiKeyId
);
define_id!(
    /// A workflow.
    WorkflowId
);
define_id!(
    /// One run of a workflow.
    ExecutionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_sort_by_creation_time() {
        let first = WorkspaceId::new();
        let second = WorkspaceId::new();
        assert!(first < second);
    }

    #[test]
    fn ids_round_trip_through_text_and_json() -> Result<(), Box<dyn std::error::Error>> {
        let id = UserId::new();
        assert_eq!(id.to_string().parse::<UserId>()?, id);
        let json = serde_json::to_string(&id)?;
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<UserId>(&json)?, id);
        Ok(())
    }
}
define_id!(
    /// One of a workspace's environments (development, staging, production…).
    EnvironmentId
);
