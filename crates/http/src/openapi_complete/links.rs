//! OpenAPI `links`: every create leads to the operations on what it created (read,
//! update, delete and the nested routes) and every list to those of its first item,
//! with the path parameters filled from the response (`$response.body#/id`) or the
//! request (`$request.path.id`), plus the links the paths do not imply
//! ([`explicit_links`]: a version to activating it, a queued run to its execution…).

use serde_json::{Map, Value, json};

use super::METHODS;

/// One operation of the document.
struct Operation {
    path: String,
    method: &'static str,
    id: String,
}

fn operations(document: &Value) -> Vec<Operation> {
    let Some(paths) = document.get("paths").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(id) = item
                .get(method)
                .and_then(|operation| operation.get("operationId"))
                .and_then(Value::as_str)
            {
                found.push(Operation {
                    path: path.clone(),
                    method,
                    id: id.to_owned(),
                });
            }
        }
    }
    found
}

/// The path parameters of a path template, in order.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// The schema `schema` refers to (one level of `$ref`), or itself.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/components/schemas/"))
        .and_then(|name| document.pointer(&format!("/components/schemas/{name}")))
        .unwrap_or(schema)
}

fn json_schema<'a>(document: &'a Value, response: &'a Value) -> Option<&'a Value> {
    response
        .pointer("/content/application~1json/schema")
        .map(|schema| resolve(document, schema))
}

fn has_property(document: &Value, schema: &Value, name: &str) -> bool {
    resolve(document, schema)
        .get("properties")
        .and_then(|properties| properties.get(name))
        .is_some()
}

/// Where a new path parameter's value is in a response: the JSON pointer prefix of the
/// created (or first listed) object.
fn object_pointer(document: &Value, schema: &Value) -> Option<(String, Value)> {
    let schema = resolve(document, schema);
    if schema.get("type").and_then(Value::as_str) == Some("array") {
        let items = schema.get("items")?;
        return Some(("/0".to_owned(), resolve(document, items).clone()));
    }
    if let Some(items) = schema.pointer("/properties/items")
        && items.get("type").and_then(Value::as_str) == Some("array")
    {
        let item = items.get("items")?;
        return Some(("/items/0".to_owned(), resolve(document, item).clone()));
    }
    if schema.get("properties").is_some() {
        return Some((String::new(), schema.clone()));
    }
    None
}

/// The links of the response of `source` (status `status`) to every operation whose
/// path extends the source's path by a parameter.
fn links_for(
    document: &Value,
    source: &Operation,
    status: &str,
    all: &[Operation],
) -> Map<String, Value> {
    let mut links = Map::new();
    let Some(response) = document.pointer(&format!(
        "/paths/{}/{}/responses/{status}",
        source.path.replace('~', "~0").replace('/', "~1"),
        source.method
    )) else {
        return links;
    };
    let Some((prefix, object)) =
        json_schema(document, response).and_then(|schema| object_pointer(document, schema))
    else {
        return links;
    };
    let known = path_parameters(&source.path);
    let base = format!("{}/{{", source.path);
    for target in all {
        if !target.path.starts_with(&base) || target.id == source.id {
            continue;
        }
        let mut parameters = Map::new();
        let mut complete = true;
        for name in path_parameters(&target.path) {
            if known.contains(&name) {
                parameters.insert(name.to_owned(), json!(format!("$request.path.{name}")));
            } else {
                let field = if has_property(document, &object, name) {
                    name
                } else {
                    "id"
                };
                if has_property(document, &object, field) {
                    parameters.insert(
                        name.to_owned(),
                        json!(format!("$response.body#{prefix}/{field}")),
                    );
                } else {
                    complete = false;
                }
            }
        }
        if complete {
            links.insert(
                target.id.clone(),
                json!({ "operationId": target.id, "parameters": parameters }),
            );
        }
    }
    links
}

/// Links that do not follow from the paths: `(source, status, name, link)`.
fn explicit_links() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let same_workflow =
        |body: Value| json!({"parameters": {"id": "$request.path.id"}, "requestBody": body});
    let execution =
        |pointer: &str| json!({"parameters": {"id": format!("$response.body#{pointer}")}});
    let intake = |pointer: &str| json!({"parameters": {"public_id": format!("$response.body#{pointer}/public_id")}});
    vec![
        (
            "create_version",
            "201",
            "list_versions",
            json!({"parameters": {"id": "$request.path.id"}}),
        ),
        (
            "create_version",
            "201",
            "activate_workflow",
            same_workflow(json!({"version": "$response.body#/version"})),
        ),
        (
            "create_version",
            "201",
            "test_workflow",
            same_workflow(json!({"version": "$response.body#/version"})),
        ),
        (
            "list_versions",
            "200",
            "activate_workflow",
            same_workflow(json!({"version": "$response.body#/0/version"})),
        ),
        (
            "list_versions",
            "200",
            "test_workflow",
            same_workflow(json!({"version": "$response.body#/0/version"})),
        ),
        (
            "run_workflow",
            "202",
            "get_execution",
            execution("/execution_id"),
        ),
        (
            "run_workflow",
            "202",
            "cancel_execution",
            execution("/execution_id"),
        ),
        ("test_workflow", "200", "get_execution", execution("/id")),
        ("test_workflow", "200", "retry_execution", execution("/id")),
        (
            "retry_execution",
            "202",
            "get_execution",
            execution("/execution_id"),
        ),
        (
            "replay_webhook_event",
            "202",
            "get_execution",
            execution("/execution_id"),
        ),
        (
            "replay_workspace_event",
            "202",
            "get_execution",
            execution("/execution_id"),
        ),
        ("create_webhook", "201", "handshake", intake("")),
        ("create_webhook", "201", "deliver", intake("")),
        ("list_webhooks", "200", "deliver", intake("/items/0")),
    ]
}

/// Adds the links of [`links_for`] and [`explicit_links`] to the success responses.
pub(super) fn add_links(document: &mut Value) {
    let all = operations(document);
    let mut planned = Vec::new();
    for (source, status, target, mut link) in explicit_links() {
        let Some(source) = all.iter().find(|operation| operation.id == source) else {
            continue;
        };
        if !all.iter().any(|operation| operation.id == target) {
            continue;
        }
        if let Some(link) = link.as_object_mut() {
            link.insert("operationId".to_owned(), json!(target));
        }
        let mut links = Map::new();
        links.insert(target.to_owned(), link);
        planned.push((source, status, links));
    }
    for source in &all {
        let status = match source.method {
            "post" => "201",
            "get" => "200",
            _ => continue,
        };
        let links = links_for(document, source, status, &all);
        if !links.is_empty() {
            planned.push((source, status, links));
        }
    }
    for (source, status, links) in planned {
        let pointer = format!(
            "/paths/{}/{}/responses/{status}",
            source.path.replace('~', "~0").replace('/', "~1"),
            source.method
        );
        if let Some(response) = document
            .pointer_mut(&pointer)
            .and_then(Value::as_object_mut)
        {
            let existing = response
                .entry("links")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(existing) = existing.as_object_mut() {
                for (name, link) in links {
                    existing.entry(name).or_insert(link);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn operation<'a>(document: &'a Value, method: &str, path: &str) -> &'a Value {
        &document["paths"][path][method]
    }

    fn document() -> Result<Value, serde_json::Error> {
        crate::openapi::document()
    }

    fn link_targets(document: &Value, method: &str, path: &str, status: &str) -> Vec<String> {
        operation(document, method, path)["responses"][status]["links"]
            .as_object()
            .map(|links| {
                links
                    .values()
                    .filter_map(|link| link["operationId"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn every_create_links_to_what_it_created_and_every_list_to_its_items()
    -> Result<(), serde_json::Error> {
        let document = document()?;
        let cases: [(&str, &str, &str, &[&str]); 18] = [
            (
                "post",
                "/api/workflows",
                "201",
                &[
                    "get_workflow",
                    "update_workflow",
                    "archive_workflow",
                    "list_versions",
                    "create_version",
                ],
            ),
            (
                "get",
                "/api/workflows",
                "200",
                &["get_workflow", "update_workflow", "archive_workflow"],
            ),
            (
                "post",
                "/api/workflows/{id}/versions",
                "201",
                &["list_versions", "activate_workflow"],
            ),
            (
                "get",
                "/api/workflows/{id}/versions",
                "200",
                &["activate_workflow"],
            ),
            (
                "post",
                "/api/workflows/credentials",
                "201",
                &[
                    "get_credential",
                    "update_credential",
                    "delete_credential",
                    "test_credential",
                ],
            ),
            (
                "get",
                "/api/workflows/credentials",
                "200",
                &["get_credential", "update_credential", "delete_credential"],
            ),
            (
                "post",
                "/api/webhooks",
                "201",
                &[
                    "get_webhook",
                    "update_webhook",
                    "delete_webhook",
                    "list_webhook_events",
                ],
            ),
            (
                "get",
                "/api/webhooks",
                "200",
                &["get_webhook", "update_webhook", "delete_webhook"],
            ),
            (
                "get",
                "/api/webhooks/{id}/events",
                "200",
                &["get_webhook_event", "replay_webhook_event"],
            ),
            (
                "get",
                "/api/workspace/webhook-events",
                "200",
                &["get_workspace_event", "replay_workspace_event"],
            ),
            (
                "get",
                "/api/executions",
                "200",
                &["get_execution", "retry_execution", "cancel_execution"],
            ),
            ("post", "/api/workflows/{id}/run", "202", &["get_execution"]),
            (
                "post",
                "/api/settings/api/keys",
                "201",
                &["revoke_key", "rotate_key", "key_audit"],
            ),
            (
                "get",
                "/api/settings/api/keys",
                "200",
                &["revoke_key", "rotate_key", "key_audit"],
            ),
            (
                "post",
                "/api/settings/usage/alerts",
                "201",
                &["update_alert", "delete_alert", "list_alert_events"],
            ),
            (
                "get",
                "/api/settings/usage/alerts",
                "200",
                &["update_alert", "delete_alert", "list_alert_events"],
            ),
            (
                "post",
                "/api/workspace/members",
                "201",
                &["change_member_role", "remove_member"],
            ),
            (
                "get",
                "/api/workspace/members",
                "200",
                &["change_member_role", "remove_member"],
            ),
        ];
        for (method, path, status, expected) in cases {
            let targets = link_targets(&document, method, path, status);
            for target in expected {
                assert!(
                    targets.iter().any(|found| found == target),
                    "{method} {path} ({status}) does not link to {target}: {targets:?}"
                );
            }
        }
        let link = &operation(&document, "post", "/api/workflows")["responses"]["201"]["links"]["get_workflow"];
        assert_eq!(link["parameters"]["id"], "$response.body#/id");
        let link = &operation(&document, "get", "/api/webhooks/{id}/events")["responses"]["200"]["links"]
            ["get_webhook_event"];
        assert_eq!(link["parameters"]["id"], "$request.path.id");
        assert_eq!(link["parameters"]["event_id"], "$response.body#/items/0/id");
        Ok(())
    }
}
