//! Credentials as stored and as shown.

use fluxolab_kernel::{CredentialId, Cursor, WorkspaceId};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::CredentialKind;
use crate::envelope::{Sealed, WrappedKey};

fluxolab_kernel::define_id!(
    /// A workspace data key (one per workspace and version).
    DataKeyId
);

/// A workspace data key as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDataKey {
    pub id: DataKeyId,
    pub workspace_id: WorkspaceId,
    pub version: i32,
    pub wrapped: WrappedKey,
}

/// A credential row: public fields in clear, secret fields sealed, hints for display.
#[derive(Clone, Debug, PartialEq)]
pub struct CredentialRecord {
    pub id: CredentialId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub kind: CredentialKind,
    pub public: Map<String, Value>,
    pub sealed: Sealed,
    pub data_key_id: DataKeyId,
    /// The version of the data key that sealed it (shown as `key_version`).
    pub key_version: i32,
    /// Masked hints of the secret fields, e.g. `{"password": "••••1a2b"}`.
    pub hints: Map<String, Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl CredentialRecord {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }

    /// The `data` the API shows: public values as they are, secret fields as
    /// `{"has_value", "hint"}`.
    pub fn masked_data(&self) -> Map<String, Value> {
        let mut data = self.public.clone();
        let secret_names: Vec<&str> = if self.kind == CredentialKind::Generic {
            self.hints.keys().map(String::as_str).collect()
        } else {
            self.kind
                .fields()
                .iter()
                .filter(|spec| spec.secret)
                .map(|spec| spec.name)
                .collect()
        };
        for name in secret_names {
            let hint = self.hints.get(name).cloned();
            data.insert(
                name.to_owned(),
                serde_json::json!({"has_value": hint.is_some(), "hint": hint}),
            );
        }
        data
    }
}

/// A credential opened for server-side use. Its secrets are zeroized when dropped.
pub struct ResolvedCredential {
    pub id: CredentialId,
    pub kind: CredentialKind,
    pub public: Map<String, Value>,
    pub secrets: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ResolvedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedCredential")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("secrets", &"[REDACTED]")
            .finish()
    }
}

impl ResolvedCredential {
    /// The secret fields, parsed.
    pub fn secret_fields(&self) -> Map<String, Value> {
        serde_json::from_slice(&self.secrets).unwrap_or_default()
    }

    /// One field, public or secret, as text.
    pub fn field(&self, name: &str) -> Option<String> {
        let text = |value: &Value| {
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned)
        };
        match self.public.get(name) {
            Some(value) => Some(text(value)),
            None => self.secret_fields().get(name).map(text),
        }
    }
}
