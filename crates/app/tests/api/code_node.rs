//! `code.javascript` through the API: the catalogue, compiling on save (422 with line
//! and column), runs inline and queued with the output's types intact, console lines in
//! the step record, secret variables readable by the code but redacted from what is
//! recorded, and failures at the limits.

use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp, execution, wait_finished};

const SECRET: &str = "sk-live-code-node-secret";

/// trigger.manual → code.javascript `calc` (with `params`) → data.set `after` reading
/// the code's output through a template.
fn flow(params: &Value) -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "calc", "type": "code.javascript", "name": "Calc", "params": params},
            {"id": "after", "type": "data.set", "name": "After",
             "params": {"values": {"doubled": "{{ nodes.calc.output.total * 2 }}"}}}
        ],
        "connections": [{"from": "start", "to": "calc"}, {"from": "calc", "to": "after"}]
    })
}

/// The step of `node` in an execution.
fn step<'a>(run: &'a Value, node: &str) -> Result<&'a Value, Error> {
    run["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["node_id"] == node))
        .ok_or_else(|| format!("no step `{node}` in {run}").into())
}

/// Gives production a secret `TOKEN`.
async fn with_secret_token(app: &TestApp, owner: &Account) -> TestResult {
    let (status, answer) = app
        .patch_in(
            owner,
            "/api/settings/environments/production",
            &json!({"variables": [{"name": "TOKEN", "value": SECRET, "secret": true}]}),
        )
        .await?;
    assert_eq!(status, 200, "{answer}");
    Ok(())
}

#[tokio::test]
async fn a_code_step_runs_in_a_workflow_and_its_record_keeps_no_secret() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("code@example.com").await?;
    with_secret_token(&app, &owner).await?;

    let (status, catalogue) = app.get_in(&owner, "/api/workflows/nodes").await?;
    assert_eq!(status, 200);
    let code = catalogue
        .as_array()
        .and_then(|nodes| nodes.iter().find(|node| node["type"] == "code.javascript"))
        .ok_or_else(|| format!("no code.javascript in {catalogue}"))?;
    assert_eq!(code["params_schema"]["required"], json!(["code"]));
    assert_eq!(code["outputs"], json!(["main"]));

    let body = "const {a, b} = trigger.body;\n\
                console.log('summing', a, b, 'with', env.TOKEN);\n\
                return {total: a + b, ratio: a / b, label: `sum of ${a} and ${b}`,\n\
                        ok: true, missing: null, list: [a, [b], {c: 3}],\n\
                        nested: {deep: {run: execution.id.length > 0}},\n\
                        token_length: env.TOKEN.length, echoed: 'key=' + env.TOKEN,\n\
                        by_key: {[env.TOKEN]: true}};";
    let workflow = app
        .create_workflow(&owner, "Sum in code", &flow(&json!({"code": body})))
        .await?;
    let (status, run) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{}/test", workflow.id),
            &json!({"payload": {"a": 3, "b": 4}}),
        )
        .await?;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"], json!({"doubled": 14}));
    let calc = step(&run, "calc")?;
    assert_eq!(
        calc["output"],
        json!({"total": 7, "ratio": 0.75, "label": "sum of 3 and 4", "ok": true,
               "missing": null, "list": [3, [4], {"c": 3}], "nested": {"deep": {"run": true}},
               "token_length": SECRET.len(), "echoed": "key=[redacted]",
               "by_key": {"[redacted]": true}})
    );
    assert_eq!(
        calc["logs"],
        json!(["summing 3 4 with [redacted]"]),
        "{calc}"
    );
    assert_eq!(calc["input"]["code"], body);
    assert_eq!(step(&run, "start")?["logs"], json!([]));
    assert!(!run.to_string().contains(SECRET), "{run}");
    // As stored.
    let stored = execution(&app, &owner, &run.text("id")?).await?;
    assert_eq!(step(&stored, "calc")?["logs"], calc["logs"], "{stored}");
    assert!(!stored.to_string().contains(SECRET), "{stored}");

    // Queued, by a worker: the same.
    app.activate(&owner, &workflow.id, 1).await?;
    let queued = app
        .run(&owner, &workflow.id, &json!({"a": 10, "b": 5}))
        .await?;
    let done = wait_finished(&app, &owner, &queued.execution_id).await?;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"], json!({"doubled": 30}));
    assert_eq!(
        step(&done, "calc")?["logs"],
        json!(["summing 10 5 with [redacted]"])
    );
    assert!(!done.to_string().contains(SECRET), "{done}");
    Ok(())
}

#[tokio::test]
async fn a_syntax_error_or_a_limit_above_the_maximum_is_a_422_naming_the_node() -> TestResult {
    let app = TestApp::spawn_with(&[("CODE_MAX_TIMEOUT_MS", "1000")]).await?;
    let owner = app.signed_up("syntax@example.com").await?;
    let cases = [
        (
            json!({"code": "const a = 1;\nconst b = ;\nreturn a;"}),
            "definition.nodes[1].params.code",
            "node `calc`: SyntaxError:",
            "at line 2, column 11",
        ),
        (
            json!({"code": "import fs from 'fs';\nreturn 1;"}),
            "definition.nodes[1].params.code",
            "node `calc`: SyntaxError:",
            "at line 1,",
        ),
        (
            json!({"code": "return 1;", "timeout_ms": 5000}),
            "definition.nodes[1].params.timeout_ms",
            "node `calc`: must be at most 1000",
            "maximum",
        ),
        (
            json!({"code": "", "memory_limit_mb": 0}),
            "definition.nodes[1].params.code",
            "node `calc`: must be non-empty source code",
            "bytes",
        ),
    ];
    for (params, field, starts, contains) in cases {
        let (status, problem) = app
            .post_in(
                &owner,
                "/api/workflows",
                &json!({"name": "Bad code", "definition": flow(&params)}),
            )
            .await?;
        assert_eq!(status, 422, "{params}: {problem}");
        assert_eq!(problem["code"], "validation_failed", "{problem}");
        let error = problem["errors"]
            .as_array()
            .and_then(|errors| errors.iter().find(|error| error["field"] == field))
            .ok_or_else(|| format!("no error at {field}: {problem}"))?;
        let message = error.text("message")?;
        assert!(
            message.starts_with(starts) && message.contains(contains),
            "{params}: {message}"
        );
    }
    assert_eq!(app.count("workflows").await?, 0);

    // A new version is checked the same way.
    let workflow = app
        .create_workflow(
            &owner,
            "Fine",
            &flow(&json!({"code": "return {total: 1};"})),
        )
        .await?;
    let (status, problem) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{}/versions", workflow.id),
            &json!({"definition": flow(&json!({"code": "return {total: 1"}))}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"][0]["field"],
        "definition.nodes[1].params.code"
    );

    // The workspace lowers what its nodes may set, within the instance's maxima.
    let (status, settings) = app
        .patch_in(
            &owner,
            "/api/settings/workspace",
            &json!({"execution_defaults": {"code_max_memory_mb": 48, "code_max_timeout_ms": 5000}}),
        )
        .await?;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["execution_defaults"]["code_max_memory_mb"], 48);
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Greedy", "definition": flow(&json!({"code": "return 1;", "memory_limit_mb": 64}))}),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    let message = problem["errors"][0].text("message")?;
    assert!(
        message.contains("must be at most 48")
            && message.contains("execution_defaults.code_max_memory_mb"),
        "{message}"
    );
    let (status, problem) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Slow", "definition": flow(&json!({"code": "return 1;", "timeout_ms": 2000}))}),
        )
        .await?;
    assert_eq!(status, 422, "the instance's 1000 ms still wins: {problem}");
    assert!(
        problem["errors"][0]
            .text("message")?
            .contains("this instance's maximum")
    );
    app.create_workflow(
        &owner,
        "Within",
        &flow(&json!({"code": "return 1;", "memory_limit_mb": 48})),
    )
    .await?;
    let (status, problem) = app
        .patch_in(
            &owner,
            "/api/settings/workspace",
            &json!({"execution_defaults": {"code_max_memory_mb": 16}}),
        )
        .await?;
    assert_eq!(status, 422, "below a node's default: {problem}");
    assert_eq!(
        problem["errors"][0]["field"],
        "execution_defaults.code_max_memory_mb"
    );
    Ok(())
}

#[tokio::test]
async fn a_script_that_throws_or_runs_too_long_fails_its_run_for_good() -> TestResult {
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("failing@example.com").await?;
    with_secret_token(&app, &owner).await?;
    let cases = [
        (
            json!({"code": "console.log('about to throw');\nthrow new RangeError('no ' + env.TOKEN);"}),
            "node `calc`: RangeError: no [redacted] (line 2, column",
            json!(["about to throw"]),
        ),
        (
            json!({"code": "console.log('spinning');\nwhile (true) {}", "timeout_ms": 200}),
            "node `calc`: the code ran longer than its time limit (200 ms)",
            json!(["spinning"]),
        ),
        (
            json!({"code": "const hoard = [];\nwhile (true) hoard.push(new Array(1e5).fill(1));",
                   "memory_limit_mb": 8}),
            "node `calc`: the code needed more than its memory limit (8 MiB)",
            json!([]),
        ),
    ];
    for (params, error, logs) in cases {
        let workflow = app
            .active_workflow(&owner, "Failing code", &flow(&params))
            .await?;
        let queued = app.run(&owner, &workflow.id, &json!({})).await?;
        let done = wait_finished(&app, &owner, &queued.execution_id).await?;
        assert_eq!(done["status"], "failed", "{done}");
        // Permanent: no second attempt.
        assert_eq!(done["attempt"], 1, "{done}");
        let message = done.text("error")?;
        assert!(message.starts_with(error), "{params}: {message}");
        let calc = step(&done, "calc")?;
        assert_eq!(calc["logs"], logs, "{calc}");
        assert!(!done.to_string().contains(SECRET), "{done}");
    }
    Ok(())
}
