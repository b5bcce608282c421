//! The OpenAPI document against the server it describes, spoken to as a client that
//! knows only the document would.

use reqwest::Method;
use serde_json::Value;

use crate::TestResult;
use crate::helpers::TestApp;

/// Where the document declares the `X-Workspace-Id` header parameter.
const WORKSPACE_HEADER: &str = "#/components/parameters/WorkspaceId";

/// A well-formed id that names nothing (no resource, no workspace).
const NOTHING: &str = "7f0c2a8e-3b9d-4c61-9e15-2d4a6b8c0f31";

/// An operation of the document that takes a bearer token.
struct Secured {
    method: Method,
    template: String,
    /// The path with every parameter filled with [`NOTHING`].
    path: String,
    takes_header: bool,
    has_body: bool,
}

fn secured_operations(document: &Value) -> Result<Vec<Secured>, crate::helpers::Error> {
    let mut found = Vec::new();
    for (template, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if !operation["security"].is_array() {
                continue;
            }
            let path = template
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        NOTHING
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            found.push(Secured {
                method: Method::from_bytes(method.to_uppercase().as_bytes())?,
                template: template.clone(),
                path,
                takes_header: operation["parameters"]
                    .as_array()
                    .is_some_and(|parameters| {
                        parameters
                            .iter()
                            .any(|parameter| parameter["$ref"] == WORKSPACE_HEADER)
                    }),
                has_body: operation["requestBody"].is_object(),
            });
        }
    }
    Ok(found)
}

/// Whether `problem` is the 422 that names `X-Workspace-Id`.
fn names_the_header(status: u16, problem: &Value) -> bool {
    status == 422
        && problem["errors"].as_array().is_some_and(|errors| {
            errors
                .iter()
                .any(|error| error["field"] == "X-Workspace-Id")
        })
}

/// What the server does with `X-Workspace-Id` is what the document says, operation by
/// operation: an operation reads the header (a malformed one answers 422 naming it) if
/// and only if it documents it; a workspace the caller is not a member of answers 404;
/// and without the header the operation acts in the token's workspace.
#[tokio::test]
async fn exactly_the_operations_documenting_x_workspace_id_read_it() -> TestResult {
    let app = TestApp::spawn_api_only().await?;
    let user = app.signed_up("header@example.com").await?;
    let document: Value = app.get("/api/openapi.json").await?.json().await?;
    let operations = secured_operations(&document)?;
    let mut wrong = Vec::new();
    let mut reading = 0;
    for operation in &operations {
        let at = format!("{} {}", operation.method, operation.template);
        let send = |workspace: Option<&str>| {
            let mut request = app
                .client
                .request(operation.method.clone(), app.url(&operation.path))
                .bearer_auth(&user.access_token);
            if let Some(workspace) = workspace {
                request = request.header("x-workspace-id", workspace);
            }
            request.send()
        };

        let malformed = send(Some("not-a-workspace")).await?;
        let status = malformed.status().as_u16();
        let problem: Value = malformed.json().await.unwrap_or(Value::Null);
        let reads = names_the_header(status, &problem);
        if reads != operation.takes_header {
            wrong.push(format!(
                "{at}: documents the header: {}, reads it: {reads} ({status} {problem})",
                operation.takes_header
            ));
        }
        if !reads {
            continue;
        }
        reading += 1;
        // Without a body to read first, the workspace is what the request fails on.
        if !operation.has_body {
            let elsewhere = send(Some(NOTHING)).await?;
            let status = elsewhere.status().as_u16();
            let problem: Value = elsewhere.json().await.unwrap_or(Value::Null);
            if status != 404 || problem["detail"] != "workspace not found" {
                wrong.push(format!("{at} in another workspace: {status} {problem}"));
            }
        }
        let default = send(None).await?;
        let status = default.status().as_u16();
        let problem: Value = default.json().await.unwrap_or(Value::Null);
        if problem["detail"] == "workspace not found" || names_the_header(status, &problem) {
            wrong.push(format!("{at} without the header: {status} {problem}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(
        reading > 60,
        "only {reading} of {} operations read the header",
        operations.len()
    );
    Ok(())
}
