//! What a script sees, gives back and writes.

use fluxolab_workflows::code::{
    CodeFailureKind, CodeRunner, CompileError, MAX_LOG_LINES, MAX_OUTPUT_BYTES,
};
use serde_json::json;

use crate::{TestResult, run, runner};

#[tokio::test]
async fn the_body_sees_the_runs_data_and_its_value_is_the_output() -> TestResult {
    let output = run("const total = trigger.body.a + trigger.body.b;\n\
         return {total, seen: nodes.shape.output.total, region: env.REGION, run: execution.id};")
    .await?;
    assert_eq!(
        output.value,
        json!({"total": 12, "seen": 12, "region": "eu", "run": "0190c7a2-0000-7000-8000-000000000000"})
    );
    assert!(output.logs.is_empty());
    Ok(())
}

#[tokio::test]
async fn output_types_survive_the_trip() -> TestResult {
    let output = run(
        "return {int: 42, negative: -7, float: 1.5, big: 9007199254740991, text: 'é ✓',\n\
                 yes: true, no: false, nothing: null, list: [1, 'two', [3], {four: 4}],\n\
                 nested: {a: {b: {c: [true, null]}}}, empty: {}, none: []};",
    )
    .await?;
    assert_eq!(
        output.value,
        json!({"int": 42, "negative": -7, "float": 1.5, "big": 9_007_199_254_740_991_i64,
               "text": "é ✓", "yes": true, "no": false, "nothing": null,
               "list": [1, "two", [3], {"four": 4}], "nested": {"a": {"b": {"c": [true, null]}}},
               "empty": {}, "none": []})
    );
    for (code, expected) in [
        ("return 3;", json!(3)),
        ("return 'text';", json!("text")),
        ("return [1, 2];", json!([1, 2])),
        ("return false;", json!(false)),
        ("return null;", json!(null)),
        ("return;", json!(null)),
        ("return undefined;", json!(null)),
        ("return NaN;", json!(null)),
        ("return new Date(0);", json!("1970-01-01T00:00:00.000Z")),
    ] {
        assert_eq!(run(code).await?.value, expected, "{code}");
    }
    Ok(())
}

#[tokio::test]
async fn the_body_may_await_its_own_promises() -> TestResult {
    let output = run("const double = async (n) => n * 2;\n\
         const values = await Promise.all([double(1), double(2)]);\n\
         return values;")
    .await?;
    assert_eq!(output.value, json!([2, 4]));
    let never = run("await new Promise(() => {}); return 1;")
        .await
        .err()
        .map(|failure| failure.message);
    assert!(
        never
            .as_deref()
            .is_some_and(|m| m.contains("never settles")),
        "{never:?}"
    );
    Ok(())
}

#[tokio::test]
async fn io_timers_and_modules_are_absent() -> TestResult {
    let output = run(
        "return [typeof require, typeof fetch, typeof setTimeout, typeof setInterval,\n\
                 typeof process, typeof std, typeof os, typeof XMLHttpRequest, typeof WebSocket,\n\
                 typeof module, typeof exports, typeof Deno, typeof Bun];",
    )
    .await?;
    assert!(
        output
            .value
            .as_array()
            .is_some_and(|kinds| kinds.iter().all(|kind| kind == "undefined")),
        "{}",
        output.value
    );
    for code in [
        "return require('fs');",
        "return fetch('http://127.0.0.1/');",
        "setTimeout(() => {}, 1); return 1;",
    ] {
        let failure = run(code).await.err();
        assert!(
            failure
                .as_ref()
                .is_some_and(|f| f.kind == CodeFailureKind::Thrown
                    && f.message.starts_with("ReferenceError:")),
            "{code}: {failure:?}"
        );
    }
    let import = run("return await import('fs');").await.err();
    assert!(
        import
            .as_ref()
            .is_some_and(|f| f.kind == CodeFailureKind::Thrown),
        "{import:?}"
    );
    let static_import = runner().compile("import fs from 'fs';\nreturn 1;").await;
    assert!(
        matches!(static_import, Err(CompileError::Syntax(ref error)) if error.line == 1),
        "{static_import:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_syntax_error_names_its_line_and_column() -> TestResult {
    let runner = runner();
    assert_eq!(runner.compile("const a = 1;\nreturn a + 1;").await, Ok(()));
    let error = runner
        .compile("const a = 1;\nconst b = ;\nreturn a;")
        .await
        .err();
    let Some(CompileError::Syntax(error)) = error else {
        return Err(format!("expected a syntax error, got {error:?}").into());
    };
    assert_eq!((error.line, error.column), (2, 11), "{error:?}");
    assert!(error.message.starts_with("SyntaxError:"), "{error:?}");
    // Compiling runs nothing.
    assert_eq!(runner.compile("while (true) {}").await, Ok(()));
    Ok(())
}

#[tokio::test]
async fn a_thrown_error_fails_with_its_message_and_line() -> TestResult {
    let failure = run("const x = 1;\nthrow new TypeError('bad input ' + x);")
        .await
        .err();
    let failure = failure.ok_or("the script should fail")?;
    assert_eq!(failure.kind, CodeFailureKind::Thrown);
    assert!(
        failure
            .message
            .starts_with("TypeError: bad input 1 (line 2, column "),
        "{}",
        failure.message
    );
    let thrown = run("throw 'plain';").await.err().map(|f| f.message);
    assert_eq!(thrown.as_deref(), Some("uncaught plain"));
    let deep = run("const f = (n) => f(n + 1) + 1;\nreturn f(0);")
        .await
        .err();
    assert!(
        deep.as_ref()
            .is_some_and(|f| f.message.contains("RangeError")),
        "{deep:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_value_that_is_not_json_fails_the_step() -> TestResult {
    let failure = run("return {n: 10n};").await.err();
    assert!(
        failure
            .as_ref()
            .is_some_and(|f| f.kind == CodeFailureKind::Output
                && f.message.starts_with("the returned value is not JSON")),
        "{failure:?}"
    );
    let cycle = run("const a = {}; a.a = a; return a;").await.err();
    assert_eq!(cycle.map(|f| f.kind), Some(CodeFailureKind::Output));
    let large = run("return 'x'.repeat(2 * 1024 * 1024);").await.err();
    assert!(
        large
            .as_ref()
            .is_some_and(|f| f.message.contains(&MAX_OUTPUT_BYTES.to_string())),
        "{large:?}"
    );
    Ok(())
}

#[tokio::test]
async fn console_lines_are_kept_bounded_even_when_the_step_fails() -> TestResult {
    let output = run("console.log('hello', 42, {a: [1]}, null, undefined);\n\
         console.warn('careful');\n\
         console.error(new Error('oops'));\n\
         return 1;")
    .await?;
    assert_eq!(
        output.logs,
        vec![
            "hello 42 {\"a\":[1]} null undefined".to_owned(),
            "[warn] careful".to_owned(),
            "[error] Error: oops (line 3, column 19)".to_owned(),
        ]
    );
    let failure =
        run("for (let i = 0; i < 500; i++) console.log('line', i);\nthrow new Error('late');")
            .await
            .err()
            .ok_or("the script should fail")?;
    assert_eq!(failure.logs.len(), MAX_LOG_LINES + 1);
    assert_eq!(failure.logs[0], "line 0");
    assert!(failure.logs[MAX_LOG_LINES].starts_with("[400 more console lines dropped"));
    Ok(())
}
