//! The SSO configuration request as the domain checks it
//! (`fluxolab_workspace::sso::model`): each scope, allowed domain and mapped group.

use fluxolab_workspace::sso::model::{
    DOMAIN_PATTERN, MAX_GROUP_CHARS, MAX_ROLE_MAPPINGS, SCOPE_PATTERN,
};
use serde_json::{Value, json};

use super::merge;

/// Adds the item rules of `ConfigureSsoRequest`.
pub(super) fn constrain(document: &mut Value) {
    let request = "ConfigureSsoRequest/properties";
    merge(
        document,
        &format!("{request}/scopes"),
        json!({"items": {"type": "string", "pattern": SCOPE_PATTERN}, "contains": {"const": "openid"}}),
    );
    merge(
        document,
        &format!("{request}/allowed_domains"),
        json!({"items": {"type": "string", "pattern": DOMAIN_PATTERN}}),
    );
    merge(
        document,
        &format!("{request}/role_mapping"),
        json!({
            "maxProperties": MAX_ROLE_MAPPINGS,
            "propertyNames": {"minLength": 1, "maxLength": MAX_GROUP_CHARS},
        }),
    );
}
