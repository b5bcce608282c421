//! Limits: time, memory, concurrency, and the process's memory over many runs.

use std::time::{Duration, Instant};

use fluxolab_jsruntime::{JsRunner, JsSettings};
use fluxolab_workflows::code::{CodeFailureKind, CodeLimits, CodeRunner};
use serde_json::json;

use crate::{TestResult, data, limits, run_with, runner};

#[tokio::test]
async fn an_infinite_loop_stops_at_the_time_limit() -> TestResult {
    let started = Instant::now();
    let failure = run_with("console.log('spinning');\nwhile (true) {}", limits(32, 300))
        .await
        .err()
        .ok_or("the loop should be stopped")?;
    assert_eq!(failure.kind, CodeFailureKind::TimeLimit);
    assert_eq!(
        failure.message,
        "the code ran longer than its time limit (300 ms)"
    );
    assert_eq!(failure.logs, vec!["spinning".to_owned()]);
    // Stopped, not left running: well under the test's patience.
    assert!(started.elapsed() < Duration::from_secs(30));

    // try/catch cannot swallow the interrupt, nor can a loop of promise jobs hide it.
    for code in [
        "for (;;) { try { while (true) {} } catch (e) {} }",
        "const spin = () => Promise.resolve().then(spin); await spin();",
        "return /(a+)+$/.test('a'.repeat(40) + 'b');",
    ] {
        let failure = run_with(code, limits(32, 200)).await.err();
        assert_eq!(
            failure.map(|f| f.kind),
            Some(CodeFailureKind::TimeLimit),
            "{code}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_allocation_bomb_stops_at_the_memory_limit() -> TestResult {
    let failure = run_with(
        "const hoard = [];\nwhile (true) hoard.push(new Array(100000).fill(hoard.length));",
        limits(16, 10_000),
    )
    .await
    .err()
    .ok_or("the bomb should be stopped")?;
    assert_eq!(failure.kind, CodeFailureKind::MemoryLimit, "{failure:?}");
    assert_eq!(
        failure.message,
        "the code needed more than its memory limit (16 MiB)"
    );
    let strings = run_with(
        "const parts = [];\nwhile (true) parts.push('x'.repeat(1 << 20) + parts.length);",
        limits(8, 10_000),
    )
    .await
    .err();
    assert_eq!(strings.map(|f| f.kind), Some(CodeFailureKind::MemoryLimit));
    // The same work fits in a larger limit.
    let fits = run_with(
        "return new Array(1000000).fill(1).length;",
        limits(64, 10_000),
    )
    .await?;
    assert_eq!(fits.value, json!(1_000_000));
    Ok(())
}

#[tokio::test]
async fn a_node_cannot_raise_its_limits_past_the_instances_maxima() -> TestResult {
    let strict = JsRunner::new(JsSettings {
        maxima: limits(32, 150),
        concurrency: 1,
    });
    let failure = strict
        .run("while (true) {}", &data(), limits(32, 60_000))
        .await
        .err();
    assert_eq!(
        failure.map(|f| f.message),
        Some("the code ran longer than its time limit (150 ms)".to_owned())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_scripts_do_not_hold_the_async_workers() -> TestResult {
    let runner = JsRunner::new(JsSettings {
        maxima: CodeLimits::DEFAULT,
        concurrency: 4,
    });
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let runner = runner.clone();
            tokio::spawn(async move {
                runner
                    .run("while (true) {}", &data(), limits(32, 1_500))
                    .await
            })
        })
        .collect();
    // While four scripts spin, both async workers still answer.
    let answered = tokio::time::timeout(Duration::from_secs(1), async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tokio::spawn(async { 1 }).await
    })
    .await;
    assert!(matches!(answered, Ok(Ok(1))), "{answered:?}");
    for handle in busy {
        assert_eq!(
            handle.await?.err().map(|f| f.kind),
            Some(CodeFailureKind::TimeLimit)
        );
    }
    Ok(())
}

/// The process's resident memory, in bytes (Linux).
fn resident_bytes() -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("no resident field in /proc/self/statm")?
        .parse()?;
    Ok(pages * 4096)
}

#[tokio::test]
async fn a_thousand_code_steps_do_not_grow_the_process() -> TestResult {
    let runner = runner();
    // Each step builds ~1 MiB in its heap, logs, and half of them fail: a runtime kept
    // alive (or a leak per run) would cost a gigabyte over the loop.
    let code = "const block = new Array(120000).fill(trigger.body.a);\n\
                console.log('built', block.length);\n\
                if (trigger.body.a % 2) throw new Error('odd');\n\
                return {length: block.length, first: block[0]};";
    let step = |index: u64| {
        let runner = runner.clone();
        async move {
            let mut data = data();
            data["trigger"]["body"]["a"] = json!(index);
            runner.run(code, &data, CodeLimits::DEFAULT).await
        }
    };
    for index in 0..50 {
        let _ = step(index).await;
    }
    let before = resident_bytes()?;
    let mut succeeded = 0;
    for index in 0..1000 {
        if step(index).await.is_ok() {
            succeeded += 1;
        }
    }
    let after = resident_bytes()?;
    assert_eq!(succeeded, 500);
    let growth = after.saturating_sub(before);
    assert!(
        growth < 96 * 1024 * 1024,
        "resident memory grew by {} MiB over 1,000 runs ({} → {} MiB)",
        growth / (1024 * 1024),
        before / (1024 * 1024),
        after / (1024 * 1024)
    );
    Ok(())
}
