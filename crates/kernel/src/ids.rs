//! Typed ids: one newtype per table so ids of different tables cannot be swapped.

/// Defines a typed id: a UUID newtype with `new` (UUID v7), `from_uuid`, `as_uuid`,
/// `Display`, `FromStr` and a transparent serde form. Domain crates use it for the ids
/// only they know: `fluxolab_kernel::define_id!(AlertId);`, a doc comment inside the
/// parentheses before the name.
#[macro_export]
macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($crate::ids::__private::Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self($crate::ids::__private::Uuid::now_v7())
            }

            /// Wraps an id read from storage or from a request.
            pub const fn from_uuid(uuid: $crate::ids::__private::Uuid) -> Self {
                Self(uuid)
            }

            /// The raw UUID, for storage adapters.
            pub const fn as_uuid(&self) -> $crate::ids::__private::Uuid {
                self.0
            }
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ids::__private::uuid::Error;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                $crate::ids::__private::Uuid::parse_str(s).map(Self)
            }
        }

        impl ::std::convert::From<$name> for $crate::ids::__private::Uuid {
            fn from(id: $name) -> $crate::ids::__private::Uuid {
                id.0
            }
        }

        // Transparent: the id is its UUID on the wire.
        impl $crate::ids::__private::serde::Serialize for $name {
            fn serialize<S>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error>
            where
                S: $crate::ids::__private::serde::Serializer,
            {
                $crate::ids::__private::serde::Serialize::serialize(&self.0, serializer)
            }
        }

        impl<'de> $crate::ids::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D>(deserializer: D) -> ::std::result::Result<Self, D::Error>
            where
                D: $crate::ids::__private::serde::Deserializer<'de>,
            {
                <$crate::ids::__private::Uuid as $crate::ids::__private::serde::Deserialize<'de>>::deserialize(deserializer)
                    .map(Self)
            }
        }
    };
}

/// What [`define_id!`] expands to needs, reachable from any crate.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use uuid::{self, Uuid};
}

crate::define_id!(
    /// A user account.
    UserId
);
crate::define_id!(
    /// A workspace: the tenant boundary of every owned row.
    WorkspaceId
);
crate::define_id!(
    /// An API key acting as a principal.
    ApiKeyId
);
crate::define_id!(
    /// A workflow.
    WorkflowId
);
crate::define_id!(
    /// One run of a workflow.
    ExecutionId
);
crate::define_id!(
    /// One of a workspace's environments (development, staging, production…).
    EnvironmentId
);
crate::define_id!(
    /// A credentials-vault entry: a workspace's credential, or a secret another feature
    /// keeps there (a webhook signing secret, an alert secret, a secret variable).
    CredentialId
);
crate::define_id!(
    /// One delivery received by a webhook registration (stored, replayable).
    WebhookEventId
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

    #[test]
    fn text_that_is_not_a_uuid_is_no_id() {
        assert!("not-a-uuid".parse::<CredentialId>().is_err());
        assert!(serde_json::from_str::<CredentialId>("\"not-a-uuid\"").is_err());
        assert!(serde_json::from_str::<CredentialId>("42").is_err());
    }
}
