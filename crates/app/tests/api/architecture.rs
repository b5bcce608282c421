//! Domain crates stay free of framework and I/O crates (DESIGN §1), directly and
//! transitively, and our own crates depend on each other only in the directions
//! docs/architecture.md draws. Read from `cargo metadata`, so a new dependency cannot
//! sneak in.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::TestResult;

const DOMAIN_CRATES: [&str; 6] = [
    "fluxolab-kernel",
    "fluxolab-identity",
    "fluxolab-workspace",
    "fluxolab-credentials",
    "fluxolab-workflows",
    "fluxolab-webhooks",
];

fn forbidden(name: &str) -> bool {
    matches!(
        name,
        "diesel"
            | "diesel-async"
            | "diesel_migrations"
            | "deadpool"
            | "lettre"
            | "reqwest"
            | "tokio-postgres"
            | "testcontainers"
            | "testcontainers-modules"
            // The code node's interpreter stays behind the workflows' CodeRunner port.
            | "rquickjs"
            | "rquickjs-core"
            | "rquickjs-sys"
    ) || name.starts_with("actix")
}

/// Which of our crates each of our crates may depend on (normal dependencies): domain
/// crates inward only (`webhooks` → `workflows` → `credentials` → `kernel`), adapters on
/// domain crates but never on each other (but `http` on `telemetry`, for the metrics
/// registry), `app` on everything.
fn allowed_dependencies(name: &str) -> Option<&'static [&'static str]> {
    const DOMAIN: [&str; 6] = DOMAIN_CRATES;
    Some(match name {
        "fluxolab-kernel" => &[],
        "fluxolab-identity" | "fluxolab-credentials" => &["fluxolab-kernel"],
        "fluxolab-workspace" | "fluxolab-workflows" => &["fluxolab-kernel", "fluxolab-credentials"],
        "fluxolab-webhooks" => &[
            "fluxolab-kernel",
            "fluxolab-credentials",
            "fluxolab-workflows",
        ],
        // The HTTP layer keeps its metrics in the process's registry, which telemetry owns.
        "fluxolab-http" => &[
            "fluxolab-kernel",
            "fluxolab-identity",
            "fluxolab-workspace",
            "fluxolab-credentials",
            "fluxolab-workflows",
            "fluxolab-webhooks",
            "fluxolab-telemetry",
        ],
        "fluxolab-postgres" | "fluxolab-outbound" | "fluxolab-telemetry" | "fluxolab-jsruntime" => {
            &DOMAIN
        }
        "fluxolab-app" | "xtask" => return None,
        _ => &[],
    })
}

/// Package names by id, and the normal (not dev, not build) dependencies of each.
type Graph = (HashMap<String, String>, HashMap<String, Vec<String>>);

fn dependency_graph() -> Result<Graph, Box<dyn std::error::Error + Send + Sync>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(&root)
        .output()?;
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout)?;

    let names = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|package| {
            Some((
                package["id"].as_str()?.to_owned(),
                package["name"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let edges = metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|node| {
            let deps = node["deps"]
                .as_array()?
                .iter()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|kind| kind["kind"].is_null()))
                })
                .filter_map(|dep| dep["pkg"].as_str().map(str::to_owned))
                .collect();
            Some((node["id"].as_str()?.to_owned(), deps))
        })
        .collect();
    Ok((names, edges))
}

#[test]
fn our_crates_depend_on_each_other_only_in_the_drawn_directions() -> TestResult {
    let (names, edges) = dependency_graph()?;
    let mut checked = 0;
    for (id, name) in &names {
        if !name.starts_with("fluxolab-") {
            continue;
        }
        let Some(allowed) = allowed_dependencies(name) else {
            continue;
        };
        checked += 1;
        for dep in edges.get(id).into_iter().flatten() {
            let dep_name = names.get(dep).map_or("?", String::as_str);
            assert!(
                !dep_name.starts_with("fluxolab-") || allowed.contains(&dep_name),
                "{name} may not depend on {dep_name} (docs/architecture.md, dependency direction)"
            );
        }
    }
    assert!(checked >= 10, "every crate but app was checked ({checked})");
    Ok(())
}

#[test]
fn domain_crates_depend_on_no_framework_or_io_crate() -> TestResult {
    let (names, edges) = dependency_graph()?;
    let mut checked = 0;
    for (id, name) in &names {
        if !DOMAIN_CRATES.contains(&name.as_str()) {
            continue;
        }
        checked += 1;
        let mut seen = HashSet::new();
        let mut stack = vec![(id.as_str(), vec![name.as_str()])];
        while let Some((current, path)) = stack.pop() {
            for dep in edges.get(current).into_iter().flatten() {
                let dep_name = names.get(dep).map_or("?", String::as_str);
                let mut dep_path = path.clone();
                dep_path.push(dep_name);
                assert!(
                    !forbidden(dep_name),
                    "domain crate {name} depends on {dep_name}: {}",
                    dep_path.join(" -> ")
                );
                if seen.insert(dep.as_str()) {
                    stack.push((dep.as_str(), dep_path));
                }
            }
        }
    }
    assert_eq!(
        checked,
        DOMAIN_CRATES.len(),
        "every domain crate was checked"
    );
    Ok(())
}

#[test]
fn the_forbidden_list_catches_what_design_names() {
    for name in [
        "diesel",
        "diesel-async",
        "deadpool",
        "actix-web",
        "actix-http",
        "lettre",
        "reqwest",
        "tokio-postgres",
        "testcontainers",
    ] {
        assert!(forbidden(name), "{name}");
    }
    for name in ["serde", "ring", "uuid", "argon2", "thiserror"] {
        assert!(!forbidden(name), "{name}");
    }
}
