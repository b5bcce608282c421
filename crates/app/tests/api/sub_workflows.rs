//! Sub-workflows (`flow.run_workflow`) and error workflows (`error_workflow_id`) through
//! the real queue and workers: a parent continues on its child's output, the child
//! records its parent, chains are bounded and acyclic, children count against the quota,
//! and a run that fails for good starts its error workflow exactly once.

use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, TestApp, execution, wait_finished};

/// A manual trigger, then `calls`: `(id, params)` of `flow.run_workflow` nodes in a row,
/// then a `data.set` `done` with `values`.
fn caller(calls: &[(&str, Value)], values: &Value) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "trigger.manual", "name": "Start"})];
    let mut connections = Vec::new();
    let mut previous = "start".to_owned();
    for (id, params) in calls {
        nodes.push(json!({"id": id, "type": "flow.run_workflow", "name": id, "params": params}));
        connections.push(json!({"from": previous, "to": id}));
        previous = (*id).to_owned();
    }
    nodes.push(
        json!({"id": "done", "type": "data.set", "name": "Done", "params": {"values": values}}),
    );
    connections.push(json!({"from": previous, "to": "done"}));
    json!({"nodes": nodes, "connections": connections})
}

/// A workflow whose output is `{"doubled": 2 * trigger.body.n}`.
fn doubler() -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "double", "type": "data.set", "name": "Double", "params": {"values": {"doubled": "{{ trigger.body.n * 2 }}"}}}
        ],
        "connections": [{"from": "start", "to": "double"}]
    })
}

/// The executions of `workflow`, newest first.
async fn runs_of(app: &TestApp, who: &Account, workflow: &str) -> Result<Vec<Value>, Error> {
    let (status, page) = app
        .get_in(
            who,
            &format!("/api/executions?workflow_id={workflow}&limit=100"),
        )
        .await?;
    assert_eq!(status, 200, "{page}");
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

/// Step `node` of execution `run`.
fn step<'a>(run: &'a Value, node: &str) -> Result<&'a Value, Error> {
    run["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["node_id"] == node))
        .ok_or_else(|| format!("no step `{node}` in {run}").into())
}

#[tokio::test]
async fn a_parent_continues_on_its_childs_output_and_the_child_records_its_parent() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("parent@example.com").await?;
    let child = app.active_workflow(&owner, "Doubler", &doubler()).await?;
    let parent = app
        .active_workflow(
            &owner,
            "Parent",
            &caller(
                &[
                    (
                        "call",
                        json!({"workflow_id": child.id, "payload": {"n": "{{ trigger.body.n }}"}}),
                    ),
                    (
                        "fire",
                        json!({"workflow_id": "{{ trigger.body.target }}", "payload": {"n": 1}, "wait": false}),
                    ),
                ],
                &json!({"got": "{{ nodes.call.output.doubled }}", "fired": "{{ nodes.fire.output.execution_id }}"}),
            ),
        )
        .await?;

    let queued = app
        .run(&owner, &parent.id, &json!({"n": 21, "target": child.id}))
        .await?;
    let finished = wait_finished(&app, &owner, &queued.execution_id).await?;

    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(
        finished["attempt"], 1,
        "waiting costs no attempt: {finished}"
    );
    let fired = finished["output"]["fired"]
        .as_str()
        .ok_or("the fired child's id")?;
    assert_eq!(finished["output"]["got"], 42, "{finished}");
    let call = step(&finished, "call")?;
    assert_eq!(call["output"], json!({"doubled": 42}));
    let waited = call["idempotency_key"].as_str().ok_or("the child's id")?;

    for (id, n) in [(waited, 21), (fired, 1)] {
        let run = wait_finished(&app, &owner, id).await?;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["workflow_id"], json!(child.id));
        assert_eq!(run["trigger_kind"], "sub_workflow");
        assert_eq!(run["parent_execution_id"], json!(queued.execution_id));
        assert_eq!(run["input"], json!({"n": n}));
    }
    assert_eq!(runs_of(&app, &owner, &child.id).await?.len(), 2);
    let top = execution(&app, &owner, &queued.execution_id).await?;
    assert_eq!(top["parent_execution_id"], Value::Null);

    // An inline test waits for its child (run by the workers) too.
    let (status, tested) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{}/test", parent.id),
            &json!({"payload": {"n": 5, "target": child.id}}),
        )
        .await?;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["output"]["got"], 10, "{tested}");
    Ok(())
}

/// `count` workflows, each calling the next and the last doubling: their ids, first
/// to last.
async fn chain(app: &TestApp, who: &Account, count: usize) -> Result<Vec<String>, Error> {
    let mut ids = vec![app.active_workflow(who, "Link 0", &doubler()).await?.id];
    for index in 1..count {
        let next = ids.last().cloned().unwrap_or_default();
        let definition = caller(
            &[(
                "call",
                json!({"workflow_id": next, "payload": "{{ trigger.body }}"}),
            )],
            &json!({"doubled": "{{ nodes.call.output.doubled }}"}),
        );
        ids.push(
            app.active_workflow(who, &format!("Link {index}"), &definition)
                .await?
                .id,
        );
    }
    ids.reverse();
    Ok(ids)
}

#[tokio::test]
async fn eight_runs_may_nest_and_a_ninth_is_refused_with_a_clear_error() -> TestResult {
    let app = TestApp::spawn().await?;
    app.set_free_limit("max_workflows", 20).await?;
    app.set_free_limit("max_active_workflows", 20).await?;
    let owner = app.signed_up("deep@example.com").await?;
    let links = chain(&app, &owner, 9).await?;

    let eight = app.run(&owner, &links[1], &json!({"n": 3})).await?;
    let finished = wait_finished(&app, &owner, &eight.execution_id).await?;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["output"], json!({"doubled": 6}));

    let nine = app.run(&owner, &links[0], &json!({"n": 3})).await?;
    let finished = wait_finished(&app, &owner, &nine.execution_id).await?;
    assert_eq!(finished["status"], "failed", "{finished}");
    let error = finished["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("sub-workflows nest at most 8 runs deep; this run is already at depth 8"),
        "{error}"
    );
    // The last link never ran for the nine-deep chain: once for the eight, that is all.
    assert_eq!(runs_of(&app, &owner, &links[8]).await?.len(), 1);
    assert_eq!(runs_of(&app, &owner, &links[7]).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_workflow_calling_itself_or_its_caller_is_refused_at_run_time() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("cycle@example.com").await?;
    // `first` calls the workflow named in its payload; `second` calls `first` back.
    let first = app
        .active_workflow(
            &owner,
            "First",
            &caller(
                &[("call", json!({"workflow_id": "{{ trigger.body.next }}"}))],
                &json!({"ok": true}),
            ),
        )
        .await?;
    let second = app
        .active_workflow(
            &owner,
            "Second",
            &caller(
                &[(
                    "back",
                    json!({"workflow_id": first.id, "payload": {"next": first.id}}),
                )],
                &json!({"ok": true}),
            ),
        )
        .await?;

    for next in [&second.id, &first.id] {
        let queued = app.run(&owner, &first.id, &json!({"next": next})).await?;
        let finished = wait_finished(&app, &owner, &queued.execution_id).await?;
        assert_eq!(finished["status"], "failed", "{finished}");
        let error = finished["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!(
                "workflow {} is already running in this chain of sub-workflows",
                first.id
            )),
            "{error}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn children_count_against_the_quota_and_a_refusal_fails_the_step() -> TestResult {
    let app = TestApp::spawn().await?;
    app.set_free_limit("executions_per_month", 2).await?;
    let owner = app.signed_up("quota-children@example.com").await?;
    let child = app.active_workflow(&owner, "Doubler", &doubler()).await?;
    let parent = app
        .active_workflow(
            &owner,
            "Twice",
            &caller(
                &[
                    ("one", json!({"workflow_id": child.id, "payload": {"n": 1}})),
                    ("two", json!({"workflow_id": child.id, "payload": {"n": 2}})),
                ],
                &json!({"ok": true}),
            ),
        )
        .await?;

    let queued = app.run(&owner, &parent.id, &json!({})).await?;
    let finished = wait_finished(&app, &owner, &queued.execution_id).await?;

    assert_eq!(finished["status"], "failed", "{finished}");
    assert_eq!(step(&finished, "one")?["output"], json!({"doubled": 2}));
    let refused = step(&finished, "two")?["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        refused.contains(
            "the workspace's executions for this period are used up: the sub-workflow was not started"
        ),
        "{refused}"
    );
    assert_eq!(
        app.count("executions").await?,
        2,
        "the parent and one child"
    );
    Ok(())
}

/// Sets `who`'s workspace to give runs `attempts` attempts.
async fn attempts(app: &TestApp, who: &Account, attempts: u32) -> TestResult {
    let (status, changed) = app
        .patch_in(
            who,
            "/api/settings/workspace",
            &json!({"execution_defaults": {"max_attempts": attempts}}),
        )
        .await?;
    assert_eq!(status, 200, "{changed}");
    Ok(())
}

#[tokio::test]
async fn a_run_that_fails_for_good_starts_its_error_workflow_exactly_once() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("errors@example.com").await?;
    attempts(&app, &owner, 2).await?;
    app.allow_internal_network().await?;
    // A port nothing listens on: each attempt fails with a retryable error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();

    // The handler records what it was given; its own failure would start `last_resort`.
    let last_resort = app
        .active_workflow(&owner, "Last resort", &doubler())
        .await?;
    let handler = app
        .active_workflow(
            &owner,
            "On failure",
            &json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual", "name": "Start"},
                    {"id": "note", "type": "data.set", "name": "Note", "params": {"values": {"seen": "{{ trigger.body }}"}}},
                    {"id": "boom", "type": "data.set", "name": "Boom", "params": {"values": {"x": "{{ trigger.body.missing.deeper }}"}}}
                ],
                "connections": [{"from": "start", "to": "note"}, {"from": "note", "to": "boom"}]
            }),
        )
        .await?;
    let (status, set) = app
        .patch_in(
            &owner,
            &format!("/api/workflows/{}", handler.id),
            &json!({"error_workflow_id": last_resort.id}),
        )
        .await?;
    assert_eq!(status, 200, "{set}");
    let (status, failing) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({
                "name": "Flaky",
                "error_workflow_id": handler.id,
                "definition": {
                    "nodes": [
                        {"id": "start", "type": "trigger.manual", "name": "Start"},
                        {"id": "call", "type": "http.request", "name": "Call", "params": {"method": "GET", "url": format!("http://127.0.0.1:{closed}/")}}
                    ],
                    "connections": [{"from": "start", "to": "call"}]
                }
            }),
        )
        .await?;
    assert_eq!(status, 201, "{failing}");
    assert_eq!(failing["error_workflow_id"], json!(handler.id));
    let failing = failing["id"].as_str().ok_or("an id")?.to_owned();
    app.activate(&owner, &failing, 1).await?;

    let queued = app.run(&owner, &failing, &json!({})).await?;
    let failed = wait_finished(&app, &owner, &queued.execution_id).await?;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempt"], 2, "{failed}");

    let handled = crate::helpers::poll(std::time::Duration::from_secs(30), || async {
        let runs = runs_of(&app, &owner, &handler.id).await?;
        Ok((!runs.is_empty()).then_some(runs))
    })
    .await?
    .ok_or("the error workflow never ran")?;
    assert_eq!(
        handled.len(),
        1,
        "once, after the last attempt: {handled:?}"
    );
    let run = wait_finished(&app, &owner, handled[0]["id"].as_str().unwrap_or("")).await?;
    assert_eq!(run["trigger_kind"], "error_workflow");
    assert_eq!(run["input"]["execution_id"], json!(queued.execution_id));
    assert_eq!(run["input"]["workflow_id"], json!(failing));
    assert_eq!(run["input"]["failed_node"], "call");
    assert_eq!(run["input"]["error"], failed["error"]);
    assert_eq!(step(&run, "note")?["output"]["seen"], run["input"]);
    // The handler's own failure starts nothing, though it names an error workflow.
    assert_eq!(run["status"], "failed", "{run}");
    assert!(runs_of(&app, &owner, &last_resort.id).await?.is_empty());
    // Still once, however long we look.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(runs_of(&app, &owner, &handler.id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_run_abandoned_after_its_last_lease_starts_its_error_workflow() -> TestResult {
    // No workers yet: the run is queued, then made to look as if its worker died
    // during its last attempt.
    let app = TestApp::spawn_api_only().await?;
    let owner = app.signed_up("abandoned@example.com").await?;
    let handler = app
        .active_workflow(&owner, "On failure", &doubler())
        .await?;
    let (status, workflow) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Doomed", "error_workflow_id": handler.id, "definition": doubler()}),
        )
        .await?;
    assert_eq!(status, 201, "{workflow}");
    let workflow = workflow["id"].as_str().ok_or("an id")?.to_owned();
    app.activate(&owner, &workflow, 1).await?;
    let queued = app.run(&owner, &workflow, &json!({"n": 1})).await?;
    app.execute(&format!(
        "UPDATE executions SET status = 'running', locked_by = 'gone', attempt = max_attempts, \
           started_at = now(), locked_until = now() - interval '1 second' \
         WHERE id = '{}'",
        queued.execution_id
    ))
    .await?;

    // A process with workers comes up: its first claim fails the run, and reports it.
    let workers = app.spawn_beside().await?;
    let failed = wait_finished(&workers, &owner, &queued.execution_id).await?;
    assert_eq!(failed["status"], "failed", "{failed}");
    let handled = crate::helpers::poll(std::time::Duration::from_secs(30), || async {
        let runs = runs_of(&workers, &owner, &handler.id).await?;
        Ok((!runs.is_empty()).then_some(runs))
    })
    .await?
    .ok_or("the error workflow never ran")?;
    assert_eq!(handled.len(), 1, "{handled:?}");
    let run = execution(&workers, &owner, handled[0]["id"].as_str().unwrap_or("")).await?;
    assert_eq!(run["trigger_kind"], "error_workflow");
    assert_eq!(run["input"]["execution_id"], json!(queued.execution_id));
    assert_eq!(run["input"]["failed_node"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn an_error_workflow_must_be_another_workflow_of_the_workspace() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("setting@example.com").await?;
    let stranger = app.signed_up("stranger@example.com").await?;
    let flow = app.create_workflow(&owner, "Flow", &doubler()).await?;
    let handler = app.create_workflow(&owner, "Handler", &doubler()).await?;
    let theirs = app.create_workflow(&stranger, "Theirs", &doubler()).await?;
    let path = format!("/api/workflows/{}", flow.id);

    for (target, says) in [
        (json!(flow.id), "must be another workflow, not this one"),
        (json!(theirs.id), "does not exist in this workspace"),
        (json!("not-a-uuid"), ""),
    ] {
        let (status, problem) = app
            .patch_in(&owner, &path, &json!({"error_workflow_id": target}))
            .await?;
        assert_eq!(status, 422, "{problem}");
        assert!(
            problem.to_string().contains("error_workflow_id"),
            "{problem}"
        );
        assert!(problem.to_string().contains(says), "{problem}");
    }
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Bad", "error_workflow_id": theirs.id}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem.to_string().contains("error_workflow_id"),
        "{problem}"
    );

    let (status, set) = app
        .patch_in(
            &owner,
            &path,
            &json!({"error_workflow_id": handler.id, "name": "Flow 2"}),
        )
        .await?;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["error_workflow_id"], json!(handler.id));
    let (_, read) = app.get_in(&owner, &path).await?;
    assert_eq!(read["error_workflow_id"], json!(handler.id));
    // Left out: kept; null: removed.
    let (_, kept) = app
        .patch_in(&owner, &path, &json!({"name": "Flow 3"}))
        .await?;
    assert_eq!(kept["error_workflow_id"], json!(handler.id));
    let (_, cleared) = app
        .patch_in(&owner, &path, &json!({"error_workflow_id": null}))
        .await?;
    assert_eq!(cleared["error_workflow_id"], Value::Null, "{cleared}");
    Ok(())
}

#[tokio::test]
async fn a_literal_workflow_id_must_be_a_uuid() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("literal@example.com").await?;
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Bad call", "definition": caller(&[("call", json!({"workflow_id": "billing"}))], &json!({}))}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    let text = problem.to_string();
    assert!(
        text.contains("definition.nodes[1].params.workflow_id"),
        "{text}"
    );
    assert!(
        text.contains("node `call`: must be a UUID or a template"),
        "{text}"
    );
    Ok(())
}
