//! The `X-Workspace-Id` header, which picks the workspace an operation acts in (read by
//! [`ActiveWorkspace`]): one reusable parameter, [`PARAMETER`] under
//! `components/parameters`, referred to by every operation that acts in a workspace.
//!
//! [`ActiveWorkspace`]: crate::extract::ActiveWorkspace

use serde_json::{Value, json};

use super::{METHODS, in_workspace};

/// The parameter's name under `components/parameters`.
pub(super) const PARAMETER: &str = "WorkspaceId";

/// What the header does, as `ActiveWorkspace` reads it.
const DESCRIPTION: &str = "The workspace to act in. Without it: the workspace the access \
token was issued for (the user's default workspace when they signed in) or, with an API \
key, the key's own. A workspace the caller is not a member of (with an API key: any but \
the key's own) answers 404 `not_found` (`workspace not found`), as one that does not \
exist. A value that is not a UUID answers 422 `validation_failed` naming \
`X-Workspace-Id` (404 with an API key), as does leaving the header out when the token \
names no workspace (a user who belongs to none).";

fn parameter() -> Value {
    json!({
        "name": "X-Workspace-Id",
        "in": "header",
        "required": false,
        "description": DESCRIPTION,
        "schema": {"type": "string", "format": "uuid"},
    })
}

/// Declares the parameter and refers to it from every operation that acts in a
/// workspace.
pub(super) fn add(document: &mut Value) {
    let Some(components) = document
        .get_mut("components")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if let Some(parameters) = components
        .entry("parameters")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        parameters.insert(PARAMETER.to_owned(), parameter());
    }
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let reference = json!({ "$ref": format!("#/components/parameters/{PARAMETER}") });
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            let Some(operation) = item
                .get_mut(method)
                .filter(|operation| in_workspace(path, operation))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            if let Some(parameters) = operation
                .entry("parameters")
                .or_insert_with(|| json!([]))
                .as_array_mut()
            {
                parameters.push(reference.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::METHODS;

    /// The operations on the signed-in user's own account and workspaces, which take a
    /// token but no active workspace (their handlers take `CurrentUser`), and the MCP
    /// server's (an API key's own workspace).
    const ACCOUNT_OPERATIONS: [&str; 14] = [
        "me",
        "change_password",
        "get_settings",
        "put_settings",
        "security",
        "revoke_session",
        "list_workspaces",
        "create_workspace",
        "get_workspace",
        "update_workspace",
        "set_default_workspace",
        "post_mcp",
        "get_mcp",
        "delete_mcp",
    ];

    #[test]
    fn every_operation_in_a_workspace_takes_the_optional_workspace_header()
    -> Result<(), serde_json::Error> {
        let document = crate::openapi::document()?;
        let parameter = &document["components"]["parameters"][super::PARAMETER];
        assert_eq!(parameter["name"], "X-Workspace-Id");
        assert_eq!(parameter["in"], "header");
        assert_eq!(parameter["required"], false);
        assert_eq!(parameter["schema"]["format"], "uuid");
        let reference = format!("#/components/parameters/{}", super::PARAMETER);
        let mut carried = 0;
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                let operation = &item[method];
                let Some(id) = operation["operationId"].as_str() else {
                    continue;
                };
                let takes_header = operation["parameters"]
                    .as_array()
                    .is_some_and(|parameters| parameters.iter().any(|p| p["$ref"] == reference));
                let in_workspace =
                    operation["security"].is_array() && !ACCOUNT_OPERATIONS.contains(&id);
                assert_eq!(takes_header, in_workspace, "{method} {path} ({id})");
                if takes_header {
                    carried += 1;
                    let responses = &operation["responses"];
                    for status in ["404", "422"] {
                        assert!(
                            responses[status].is_object(),
                            "{method} {path} does not list {status}"
                        );
                    }
                }
            }
        }
        assert!(carried > 60, "only {carried} operations take the header");
        Ok(())
    }
}
