//! The links are derived, complete and usable: every operation on an item is reachable,
//! and every runtime expression names a value its source has.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{METHODS, path_parameters, resolve};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One operation of the document, as the tests read it.
struct Op<'a> {
    path: &'a str,
    method: &'static str,
    id: &'a str,
    operation: &'a Value,
}

fn operations(document: &Value) -> Vec<Op<'_>> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let operation = &item[method];
            if let Some(id) = operation["operationId"].as_str() {
                found.push(Op {
                    path,
                    method,
                    id,
                    operation,
                });
            }
        }
    }
    found
}

/// The success responses of `op`: `(status, response)`.
fn successes<'a>(op: &Op<'a>) -> Vec<(&'a str, &'a Value)> {
    op.operation["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(status, _)| status.starts_with('2'))
        .map(|(status, response)| (status.as_str(), response))
        .collect()
}

/// The operation ids the success responses of `op` link to.
fn link_targets<'a>(op: &Op<'a>) -> BTreeSet<&'a str> {
    successes(op)
        .into_iter()
        .flat_map(|(_, response)| response["links"].as_object().into_iter().flatten())
        .filter_map(|(_, link)| link["operationId"].as_str())
        .collect()
}

/// The item an operation on `path` acts on: the path up to its last parameter
/// (`/api/webhooks/{id}` for `/api/webhooks/{id}/events`).
fn item_of(path: &str) -> Option<&str> {
    path.rfind('}').map(|end| &path[..=end])
}

/// The collection of the item an operation on `path` acts on (`/api/webhooks` for
/// `/api/webhooks/{id}/events`).
fn collection_of(path: &str) -> Option<&str> {
    item_of(path)
        .and_then(|item| item.rsplit_once('/'))
        .map(|(collection, _)| collection)
}

/// The schema at `pointer` (`/items/0/id`) in a body described by `schema`.
fn schema_at<'a>(document: &'a Value, schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut node = resolve(document, schema);
    for segment in pointer.split('/').skip(1) {
        node = if segment.parse::<usize>().is_ok() {
            node.get("items")?
        } else {
            property(document, node, segment)?
        };
        node = resolve(document, node);
    }
    Some(node)
}

/// A property of an object schema, or of one of the parts of its `allOf`.
fn property<'a>(document: &'a Value, schema: &'a Value, name: &str) -> Option<&'a Value> {
    let schema = resolve(document, schema);
    schema.pointer(&format!("/properties/{name}")).or_else(|| {
        schema["allOf"]
            .as_array()?
            .iter()
            .find_map(|part| property(document, part, name))
    })
}

/// The parameter `name` of `op` (`path.id`, `header.X-Workspace-Id` or plain).
fn parameter<'a>(document: &'a Value, op: &Op<'a>, name: &str) -> Option<&'a Value> {
    let (place, name) = match name.split_once('.') {
        Some((place, rest)) if ["path", "query", "header", "cookie"].contains(&place) => {
            (Some(place), rest)
        }
        _ => (None, name),
    };
    op.operation["parameters"]
        .as_array()?
        .iter()
        .map(|parameter| match parameter["$ref"].as_str() {
            Some(reference) => reference
                .strip_prefix('#')
                .and_then(|pointer| document.pointer(pointer))
                .unwrap_or(parameter),
            None => parameter,
        })
        .find(|parameter| {
            parameter["name"].as_str() == Some(name)
                && place.is_none_or(|place| parameter["in"].as_str() == Some(place))
        })
}

/// Checks that the runtime expression `expression` gives a value of `wanted` (a
/// parameter, if any) after `source` answered `response`; the error says why not.
fn usable(
    document: &Value,
    source: &Op<'_>,
    response: &Value,
    expression: &Value,
    wanted: Option<&Value>,
) -> Result<(), String> {
    let text = expression
        .as_str()
        .ok_or_else(|| format!("{expression} is not a runtime expression"))?;
    if let Some(name) = text.strip_prefix("$request.path.") {
        return if path_parameters(source.path).contains(&name) {
            Ok(())
        } else {
            Err(format!("{text}: the source has no path parameter {name}"))
        };
    }
    let pointer = text
        .strip_prefix("$response.body#")
        .ok_or_else(|| format!("{text}: not a request path or response body"))?;
    let body = response
        .pointer("/content/application~1json/schema")
        .ok_or_else(|| format!("{text}: the response has no JSON body"))?;
    let field = schema_at(document, body, pointer)
        .ok_or_else(|| format!("{text}: the response body has no {pointer}"))?;
    let Some(wanted) = wanted.map(|parameter| resolve(document, &parameter["schema"])) else {
        return Ok(());
    };
    let format_differs = wanted.get("format").is_some() && field["format"] != wanted["format"];
    if field["type"] != wanted["type"] || format_differs {
        return Err(format!(
            "{text} is {field} where the parameter takes {wanted}"
        ));
    }
    Ok(())
}

/// The runtime expressions in a link's `requestBody` template.
fn expressions(template: &Value) -> Vec<&Value> {
    match template {
        Value::String(text) if text.starts_with('$') => vec![template],
        Value::Array(values) => values.iter().flat_map(expressions).collect(),
        Value::Object(values) => values.values().flat_map(expressions).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_create_and_every_list_links_to_each_operation_on_its_items() -> TestResult {
    let document = crate::openapi::document()?;
    let all = operations(&document);
    let mut on_items: BTreeMap<&str, Vec<&Op<'_>>> = BTreeMap::new();
    for op in &all {
        if let Some(collection) = collection_of(op.path) {
            on_items.entry(collection).or_default().push(op);
        }
    }
    let mut missing = Vec::new();
    let mut covered = BTreeSet::new();
    for (collection, targets) in &on_items {
        let sources = all
            .iter()
            .filter(|op| op.path == *collection && matches!(op.method, "get" | "post"));
        for source in sources {
            covered.insert(*collection);
            let linked = link_targets(source);
            missing.extend(
                targets
                    .iter()
                    .filter(|target| !linked.contains(target.id))
                    .map(|target| format!("{} → {}", source.id, target.id)),
            );
        }
    }
    assert!(missing.is_empty(), "links missing: {missing:#?}");
    // The resources the issue names, and the others with a collection and items.
    let resources = [
        "/api/workflows",
        "/api/workflows/credentials",
        "/api/webhooks",
        "/api/webhooks/{id}/events",
        "/api/workspace/webhook-events",
        "/api/executions",
        "/api/settings/api/keys",
        "/api/settings/usage/alerts",
        "/api/workspace/members",
        "/api/settings/environments",
        "/api/workspaces",
        "/api/workspace/conversations",
    ];
    for resource in resources {
        assert!(
            covered.contains(resource),
            "{resource} has no create or list with items: {covered:?}"
        );
    }
    Ok(())
}

#[test]
fn every_operation_on_an_item_is_the_target_of_a_link() -> TestResult {
    let document = crate::openapi::document()?;
    let all = operations(&document);
    let linked: BTreeSet<&str> = all.iter().flat_map(link_targets).collect();
    let unreachable: Vec<String> = all
        .iter()
        .filter(|op| item_of(op.path).is_some() && !linked.contains(op.id))
        .map(|op| format!("{} {} ({})", op.method, op.path, op.id))
        .collect();
    assert!(unreachable.is_empty(), "no link leads to {unreachable:#?}");
    Ok(())
}

#[test]
fn every_link_fills_each_parameter_of_its_target_from_a_value_its_source_has() -> TestResult {
    let document = crate::openapi::document()?;
    let all = operations(&document);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for source in &all {
        for (status, response) in successes(source) {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                checked += 1;
                let at = format!("{} {status} → {name}", source.id);
                let Some(target) = all
                    .iter()
                    .find(|op| Some(op.id) == link["operationId"].as_str())
                else {
                    wrong.push(format!("{at}: no such operation"));
                    continue;
                };
                let given = link["parameters"].as_object();
                let given = given.into_iter().flatten().collect::<Vec<_>>();
                for required in path_parameters(target.path) {
                    let named = |key: &&String| {
                        key.as_str() == required || *key == &format!("path.{required}")
                    };
                    if !given.iter().any(|(key, _)| named(key)) {
                        wrong.push(format!("{at}: no value for {required}"));
                    }
                }
                let mut values = BTreeSet::new();
                for (key, expression) in &given {
                    let Some(wanted) = parameter(&document, target, key) else {
                        wrong.push(format!("{at}: the target has no parameter {key}"));
                        continue;
                    };
                    if !values.insert(expression.to_string()) {
                        wrong.push(format!("{at}: {expression} fills two parameters"));
                    }
                    if let Err(why) = usable(&document, source, response, expression, Some(wanted))
                    {
                        wrong.push(format!("{at}: {why}"));
                    }
                }
                for expression in expressions(&link["requestBody"]) {
                    if let Err(why) = usable(&document, source, response, expression, None) {
                        wrong.push(format!("{at}: {why}"));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} links");
    assert!(wrong.is_empty(), "links that cannot work: {wrong:#?}");
    Ok(())
}

fn link<'a>(document: &'a Value, path: &str, method: &str, status: &str, name: &str) -> &'a Value {
    &document["paths"][path][method]["responses"][status]["links"][name]
}

#[test]
fn the_links_the_paths_do_not_imply_are_listed() -> TestResult {
    let document = crate::openapi::document()?;
    let version = "/api/workflows/{id}/versions";
    for (method, status, target) in [
        ("post", "201", "list_versions"),
        ("post", "201", "activate_workflow"),
        ("post", "201", "test_workflow"),
        ("get", "200", "activate_workflow"),
        ("get", "200", "test_workflow"),
    ] {
        let link = link(&document, version, method, status, target);
        assert_eq!(
            link["parameters"]["id"], "$request.path.id",
            "{method} → {target}"
        );
    }
    assert_eq!(
        link(&document, version, "post", "201", "activate_workflow")["requestBody"]["version"],
        "$response.body#/version"
    );
    let run = link(
        &document,
        "/api/workflows/{id}/run",
        "post",
        "202",
        "get_execution",
    );
    assert_eq!(run["parameters"]["id"], "$response.body#/execution_id");
    let deliver = link(&document, "/api/webhooks", "post", "201", "deliver");
    assert_eq!(
        deliver["parameters"]["public_id"],
        "$response.body#/public_id"
    );
    Ok(())
}

#[test]
fn a_parameter_is_filled_from_the_request_its_field_or_the_item_id() -> TestResult {
    let document = crate::openapi::document()?;
    let created = link(&document, "/api/workflows", "post", "201", "get_workflow");
    assert_eq!(created["parameters"]["id"], "$response.body#/id");
    let listed = link(&document, "/api/workflows", "get", "200", "get_workflow");
    assert_eq!(listed["parameters"]["id"], "$response.body#/items/0/id");
    let environments = link(
        &document,
        "/api/settings/environments",
        "get",
        "200",
        "get_environment",
    );
    assert_eq!(environments["parameters"]["id"], "$response.body#/0/id");
    let member = link(
        &document,
        "/api/workspace/members",
        "get",
        "200",
        "remove_member",
    );
    assert_eq!(
        member["parameters"]["user_id"],
        "$response.body#/items/0/user_id"
    );
    let event = &link(
        &document,
        "/api/webhooks/{id}/events",
        "get",
        "200",
        "get_webhook_event",
    )["parameters"];
    assert_eq!(event["id"], "$request.path.id");
    assert_eq!(event["event_id"], "$response.body#/items/0/id");
    // A webhook's response holds no event: no link to one.
    assert!(
        link(
            &document,
            "/api/webhooks",
            "post",
            "201",
            "get_webhook_event"
        )
        .is_null()
    );
    // The sessions `GET /api/users/me/security` embeds, to `/api/users/me/sessions/{id}`.
    let session = link(
        &document,
        "/api/users/me/security",
        "get",
        "200",
        "revoke_session",
    );
    assert_eq!(session["parameters"]["id"], "$response.body#/sessions/0/id");
    Ok(())
}
