//! A workspace's `execution_defaults` reaching its runs: the timeout of an attempt
//! (capped by the instance's `EXECUTION_TIMEOUT_SECONDS`) and whether a run that
//! succeeds keeps its steps — each for that workspace's runs only.

use fluxolab_workspace::settings::ExecutionDefaults;
use serde_json::{Value, json};

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, TestApp, wait_finished};
use crate::webhooks::{echo_answers, echo_hook};

/// Sets `who`'s `execution_defaults` to `defaults` (those left out stay).
async fn set_defaults(app: &TestApp, who: &Account, defaults: Value) -> TestResult {
    let (status, changed) = app
        .patch_in(
            who,
            "/api/settings/workspace",
            &json!({"execution_defaults": defaults}),
        )
        .await?;
    assert_eq!(status, 200, "{changed}");
    Ok(())
}

/// A manual trigger, then `delays` `flow.delay`s of 900 ms: each short enough to be
/// waited in place (not suspended), so the attempt lasts their sum.
fn waiting(delays: usize) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "trigger.manual", "name": "Start"})];
    let mut connections = Vec::new();
    let mut previous = "start".to_owned();
    for index in 0..delays {
        let id = format!("wait{index}");
        nodes.push(
            json!({"id": id, "type": "flow.delay", "name": id, "params": {"milliseconds": 900}}),
        );
        connections.push(json!({"from": previous, "to": id}));
        previous = id;
    }
    json!({"nodes": nodes, "connections": connections})
}

/// Runs `definition` once in `who`'s workspace; the execution once it has finished.
async fn run_once(app: &TestApp, who: &Account, definition: &Value) -> Result<Value, Error> {
    let workflow = app.active_workflow(who, "Defaults", definition).await?;
    let queued = app.run(who, &workflow.id, &json!({"a": 4, "b": 9})).await?;
    wait_finished(app, who, &queued.execution_id).await
}

#[tokio::test]
async fn an_attempt_lasts_its_workspace_timeout_capped_by_the_instance() -> TestResult {
    let app = TestApp::spawn_with(&[("EXECUTION_TIMEOUT_SECONDS", "5")]).await?;
    let short = app.signed_up("short@example.com").await?;
    let unset = app.signed_up("unset@example.com").await?;
    let long = app.signed_up("long@example.com").await?;
    set_defaults(&app, &short, json!({"timeout_seconds": 1})).await?;
    set_defaults(&app, &long, json!({"timeout_seconds": 86_400})).await?;

    // About 3.6 s of waiting in each of the first two; 7.2 s in the third.
    let (about_4s, about_7s) = (waiting(4), waiting(8));
    let (short_run, unset_run, long_run) = tokio::try_join!(
        run_once(&app, &short, &about_4s),
        run_once(&app, &unset, &about_4s),
        run_once(&app, &long, &about_7s),
    )?;
    assert_eq!(short_run["status"], "failed", "{short_run}");
    assert_eq!(short_run["error"], "timed out after 1 seconds");
    // A workspace that set nothing (300 s) gets the instance's 5 s, enough here.
    assert_eq!(unset_run["status"], "succeeded", "{unset_run}");
    let defaults = ExecutionDefaults::default();
    let queued_with_defaults = app
        .scalar(&format!(
            "SELECT count(*) AS count FROM executions WHERE id = '{}' \
             AND timeout_seconds = {} AND save_successful_steps = {}",
            unset_run.text("id")?,
            defaults.timeout_seconds,
            defaults.save_successful_steps,
        ))
        .await?;
    assert_eq!(
        queued_with_defaults, 1,
        "the run was queued with the defaults"
    );
    // The instance's limit wins over a longer workspace one.
    assert_eq!(long_run["status"], "failed", "{long_run}");
    assert_eq!(long_run["error"], "timed out after 5 seconds");
    Ok(())
}

/// trigger.manual → data.set (sums `a` and `b`) → flow.if; the sum is the output.
fn succeeding() -> Value {
    crate::helpers::three_nodes()
}

/// trigger.manual → a `flow.delay` whose milliseconds come out as no number (fails for
/// good).
fn failing() -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "broken", "type": "flow.delay", "name": "Broken", "params": {"milliseconds": "{{ trigger.body.nothing }}"}}
        ],
        "connections": [{"from": "start", "to": "broken"}]
    })
}

fn node_ids(run: &Value) -> Vec<&str> {
    run["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter_map(|step| step["node_id"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

async fn stored_steps(app: &TestApp, run: &Value) -> Result<i64, Error> {
    let id = run.text("id")?;
    app.scalar(&format!(
        "SELECT count(*) AS count FROM execution_steps WHERE execution_id = '{id}'"
    ))
    .await
}

#[tokio::test]
async fn a_workspace_that_saves_no_successful_steps_keeps_only_those_of_failed_runs() -> TestResult
{
    let app = TestApp::spawn().await?;
    let lean = app.signed_up("lean@example.com").await?;
    let other = app.signed_up("keeps@example.com").await?;
    set_defaults(&app, &lean, json!({"save_successful_steps": false})).await?;

    let succeeded = run_once(&app, &lean, &succeeding()).await?;
    assert_eq!(succeeded["status"], "succeeded", "{succeeded}");
    assert!(
        succeeded["output"].is_object(),
        "its output stays: {succeeded}"
    );
    assert_eq!(succeeded["steps"], json!([]), "{succeeded}");
    assert_eq!(stored_steps(&app, &succeeded).await?, 0);

    let failed = run_once(&app, &lean, &failing()).await?;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(node_ids(&failed), ["start", "broken"], "{failed}");

    // Another workspace keeps the steps of the same successful run.
    let kept = run_once(&app, &other, &succeeding()).await?;
    assert_eq!(kept["status"], "succeeded", "{kept}");
    assert_eq!(node_ids(&kept), ["start", "shape", "check"], "{kept}");
    Ok(())
}

#[tokio::test]
async fn a_webhook_sender_still_gets_its_answer_when_successful_steps_are_not_saved() -> TestResult
{
    let app = TestApp::spawn().await?;
    let lean = app.signed_up("lean-hook@example.com").await?;
    set_defaults(&app, &lean, json!({"save_successful_steps": false})).await?;
    let (url, secret) = echo_hook(&app, &lean).await?;
    echo_answers(&app, &url, &secret).await?;

    let (_, listed) = app.get_in(&lean, "/api/executions").await?;
    let id = listed.text("/items/0/id")?;
    let run = wait_finished(&app, &lean, &id).await?;
    assert_eq!(run["status"], "succeeded", "{run}");
    // Only the answer stays (a sender still waiting reads it from there).
    assert_eq!(node_ids(&run), ["answer"], "{run}");
    Ok(())
}
