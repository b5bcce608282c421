//! Domain crates stay free of framework and I/O crates (DESIGN §1), directly and
//! transitively. Read from `cargo metadata`, so a new dependency cannot sneak in.

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
    ) || name.starts_with("actix")
}

#[test]
fn domain_crates_depend_on_no_framework_or_io_crate() -> TestResult {
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

    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|package| Some((package["id"].as_str()?, package["name"].as_str()?)))
        .collect();
    // Normal (not dev, not build) dependencies of each package.
    let edges: HashMap<&str, Vec<&str>> = metadata["resolve"]["nodes"]
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
                .filter_map(|dep| dep["pkg"].as_str())
                .collect();
            Some((node["id"].as_str()?, deps))
        })
        .collect();

    let mut checked = 0;
    for (id, name) in &names {
        if !DOMAIN_CRATES.contains(name) {
            continue;
        }
        checked += 1;
        let mut seen = HashSet::new();
        let mut stack = vec![(*id, vec![*name])];
        while let Some((current, path)) = stack.pop() {
            for dep in edges.get(current).into_iter().flatten() {
                let dep_name = names.get(dep).copied().unwrap_or("?");
                let mut dep_path = path.clone();
                dep_path.push(dep_name);
                assert!(
                    !forbidden(dep_name),
                    "domain crate {name} depends on {dep_name}: {}",
                    dep_path.join(" -> ")
                );
                if seen.insert(*dep) {
                    stack.push((dep, dep_path));
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
