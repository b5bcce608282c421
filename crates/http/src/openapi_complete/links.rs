//! OpenAPI `links`, derived from the paths: a create (`POST /api/webhooks`) or a list
//! (`GET /api/webhooks`) leads to every operation on the item it answered with
//! (`/api/webhooks/{id}`, `/api/webhooks/{id}/events`…), and a read that embeds a list
//! named after a sibling collection (`GET /api/users/me/security`'s `sessions`,
//! `GET /api/settings/summary`'s `environments`) to the operations on its first item
//! (`/api/users/me/sessions/{id}`, `/api/settings/environments/{id}`…). A path parameter is
//! filled from the request (`$request.path.id`), from the field of the same name, or —
//! the item's own parameter — from its `id` (`$response.body#/items/0/id`). Links the
//! paths do not imply (a version to activating it, a queued run to its execution…) are
//! listed in [`explicit_links`].

use serde_json::{Map, Value, json};

use super::{METHODS, escape};

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

/// The array of objects `schema` is, or `None`.
fn array_items<'a>(document: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    let schema = resolve(document, schema);
    if schema.get("type").and_then(Value::as_str) != Some("array") {
        return None;
    }
    let items = resolve(document, schema.get("items")?);
    items.get("properties").is_some().then_some(items)
}

/// Objects a response holds, each with the collection path its operations are under:
/// `(JSON pointer prefix, object schema, collection)`.
///
/// - the created or read object itself, or a list's first item (`/items/0` of a page,
///   `/0` of an array), whose operations are under the source's own path;
/// - the first item of an array property `things` of that object, whose operations are
///   under the sibling collection `…/things` (`/api/users/me/security`'s `sessions`:
///   `/api/users/me/sessions/{id}`).
fn objects<'a>(
    document: &'a Value,
    source: &Operation,
    schema: &'a Value,
) -> Vec<(String, &'a Value, String)> {
    let schema = resolve(document, schema);
    let mut found = Vec::new();
    if let Some(items) = array_items(document, schema) {
        found.push(("/0".to_owned(), items, source.path.clone()));
        return found;
    }
    if let Some(items) = schema
        .pointer("/properties/items")
        .and_then(|items| array_items(document, items))
    {
        found.push(("/items/0".to_owned(), items, source.path.clone()));
        return found;
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return found;
    };
    found.push((String::new(), schema, source.path.clone()));
    if let Some((parent, _)) = source.path.rsplit_once('/') {
        for (name, property) in properties {
            if let Some(items) = array_items(document, property) {
                found.push((format!("/{name}/0"), items, format!("{parent}/{name}")));
            }
        }
    }
    found
}

/// The links from the response `status` of `source` to every operation on an object
/// that response holds (see [`objects`]).
fn links_for(
    document: &Value,
    source: &Operation,
    status: &str,
    all: &[Operation],
) -> Map<String, Value> {
    let mut links = Map::new();
    let Some(schema) = document
        .pointer(&format!(
            "/paths/{}/{}/responses/{status}",
            escape(&source.path),
            source.method
        ))
        .and_then(|response| json_schema(document, response))
    else {
        return links;
    };
    let known = path_parameters(&source.path);
    for (prefix, object, collection) in objects(document, source, schema) {
        let base = format!("{collection}/");
        for target in all {
            let Some(rest) = target.path.strip_prefix(&base) else {
                continue;
            };
            // The item's own parameter: the segment right after the collection.
            let Some(own) = rest
                .split('/')
                .next()
                .and_then(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            else {
                continue;
            };
            if target.id == source.id {
                continue;
            }
            let mut parameters = Map::new();
            let mut complete = true;
            for name in path_parameters(&target.path) {
                let value = if known.contains(&name) {
                    format!("$request.path.{name}")
                } else if has_property(document, object, name) {
                    format!("$response.body#{prefix}/{name}")
                } else if name == own && has_property(document, object, "id") {
                    format!("$response.body#{prefix}/id")
                } else {
                    complete = false;
                    break;
                };
                parameters.insert(name.to_owned(), json!(value));
            }
            if complete {
                links.insert(
                    target.id.clone(),
                    json!({ "operationId": target.id, "parameters": parameters }),
                );
            }
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
        (
            "get_workspace",
            "200",
            "start_sso",
            json!({"parameters": {"workspace_slug": "$response.body#/slug"}}),
        ),
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
        planned.push((source, status.to_owned(), links));
    }
    for source in all
        .iter()
        .filter(|source| matches!(source.method, "get" | "post"))
    {
        for status in success_statuses(document, source) {
            let links = links_for(document, source, &status, &all);
            if !links.is_empty() {
                planned.push((source, status, links));
            }
        }
    }
    for (source, status, links) in planned {
        let pointer = format!(
            "/paths/{}/{}/responses/{status}",
            escape(&source.path),
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

/// The 2xx statuses `operation` documents.
fn success_statuses(document: &Value, operation: &Operation) -> Vec<String> {
    document
        .pointer(&format!(
            "/paths/{}/{}/responses",
            escape(&operation.path),
            operation.method
        ))
        .and_then(Value::as_object)
        .map(|responses| {
            responses
                .keys()
                .filter(|status| status.starts_with('2'))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
