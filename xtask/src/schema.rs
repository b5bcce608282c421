//! `cargo xtask schema [--check]`: `crates/postgres/src/schema.rs` generated from the
//! migrations.
//!
//! A scratch database is created on the discovered server (as for `test`), the migrations
//! are applied to it (`diesel database reset`) and diesel's own generator,
//! `diesel print-schema` (diesel_cli, with the settings of `diesel.toml`), prints the
//! schema; the scratch database is dropped afterwards.
//! Without a flag the file is rewritten; with `--check` a difference is an error that
//! shows the lines that differ, so CI catches a migration without its schema (or a
//! hand-edited schema).

use std::fs;
use std::process::Command;

use crate::discovery;
use crate::process::{checked_output, project_root};

/// The generated file, relative to the project root.
const SCHEMA_FILE: &str = "crates/postgres/src/schema.rs";

/// The diesel_cli release `.ci/run` installs; any 2.x prints the same schema.
pub const DIESEL_CLI_VERSION: &str = "2.3.14";

/// How many differing lines a failed check shows before it stops.
const SHOWN_LINES: usize = 60;

pub fn run(args: &[String]) -> Result<u8, String> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err("usage: cargo xtask schema [--check]".into()),
    };
    check_diesel_cli()?;
    let server = discovery::test_server()?;
    eprintln!("xtask: generating the schema on {}", server.description);
    let generated = generate(&server.url)?;

    let path = project_root().join(SCHEMA_FILE);
    let current = fs::read_to_string(&path).unwrap_or_default();
    if current == generated {
        eprintln!("xtask: {SCHEMA_FILE} matches the migrations");
        return Ok(0);
    }
    if check {
        eprintln!(
            "xtask: {SCHEMA_FILE} does not match the migrations \
             (-N: line N of the file, +N: line N of the generated schema):\n{}\n\
             xtask: run `cargo xtask schema` to regenerate it (do not edit it by hand; \
             joins without a foreign key go in crates/postgres/src/joins.rs)",
            line_diff(&current, &generated)
        );
        return Ok(1);
    }
    fs::write(&path, generated)
        .map_err(|error| format!("could not write {}: {error}", path.display()))?;
    eprintln!("xtask: wrote {SCHEMA_FILE}");
    Ok(0)
}

/// Checks that `diesel` runs (else says how to install it); warns when it is not the
/// pinned release, whose output the checked-in file is.
fn check_diesel_cli() -> Result<(), String> {
    let install = format!(
        "diesel_cli is not installed; it needs libpq (Debian: apt-get install libpq-dev):\n  \
         cargo install diesel_cli --version {DIESEL_CLI_VERSION} --locked \
         --no-default-features --features postgres"
    );
    let output = Command::new("diesel")
        .arg("--version")
        .output()
        .map_err(|_| install.clone())?;
    if !output.status.success() {
        return Err(install);
    }
    // `diesel --version` prints `Version: 2.3.14` on a line of its own.
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Version:"))
        .map(str::trim);
    if version != Some(DIESEL_CLI_VERSION) {
        eprintln!(
            "xtask: warning: diesel_cli {} is installed, CI uses {DIESEL_CLI_VERSION}; \
             its output may differ",
            version.unwrap_or("(unknown version)")
        );
    }
    Ok(())
}

/// Migrates a fresh scratch database on `server_url`'s server and prints its schema.
fn generate(server_url: &str) -> Result<String, String> {
    // One name per checkout: `database reset` drops what an interrupted run left.
    let name = format!(
        "fluxolab_schema_{:016x}",
        path_digest(&project_root().to_string_lossy())
    );
    let url = with_database(server_url, &name)?;
    let diesel_command = |args: &[&str]| {
        let mut command = Command::new("diesel");
        command
            .args(args)
            .args(["--database-url", &url])
            .current_dir(project_root())
            // The settings are diesel.toml's, not those of a parent directory's.
            .env("DIESEL_CONFIG_FILE", project_root().join("diesel.toml"));
        command
    };
    // `database reset`: drop the scratch database if it is there, create it, migrate it;
    // without diesel's default migration, which it would otherwise write into ours.
    checked_output(&mut diesel_command(&[
        "database",
        "reset",
        "--no-default-migration",
        "--migration-dir",
        "migrations",
    ]))?;
    let printed = checked_output(&mut diesel_command(&["print-schema"]));
    // `database drop` is a hidden command of diesel_cli; should it fail, the database
    // stays and the next run resets it.
    if let Err(error) = checked_output(&mut diesel_command(&["database", "drop"])) {
        eprintln!("xtask: the scratch database {name} stays: {error}");
    }
    printed
}

/// A stable digest (FNV-1a), to name the scratch database of this checkout.
fn path_digest(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `url` naming `database` instead of the database it names (its query string kept).
pub fn with_database(url: &str, database: &str) -> Result<String, String> {
    let authority = url
        .find("://")
        .map(|scheme| scheme + 3)
        .ok_or_else(|| format!("not a postgres:// URL: {url}"))?;
    let (base, query) = match url.find('?') {
        Some(at) => (&url[..at], &url[at..]),
        None => (url, ""),
    };
    let host_end = base[authority..]
        .find('/')
        .map_or(base.len(), |slash| authority + slash);
    Ok(format!("{}/{database}{query}", &base[..host_end]))
}

/// The lines that differ between `old` and `new` (a longest-common-subsequence diff):
/// `-N:` a line of `old`, `+N:` a line of `new`, at most [`SHOWN_LINES`] of them.
fn line_diff(old: &str, new: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    // common[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut common = vec![vec![0u32; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            i += 1;
            j += 1;
        } else if j < new.len() && (i == old.len() || common[i][j + 1] >= common[i + 1][j]) {
            lines.push(format!("+{:>4}: {}", j + 1, new[j]));
            j += 1;
        } else {
            lines.push(format!("-{:>4}: {}", i + 1, old[i]));
            i += 1;
        }
    }
    let total = lines.len();
    if total > SHOWN_LINES {
        lines.truncate(SHOWN_LINES);
        lines.push(format!("      … and {} more", total - SHOWN_LINES));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::{line_diff, with_database};

    #[test]
    fn the_scratch_url_keeps_server_credentials_and_options() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "scratch").ok(),
            Some("postgres://postgres@127.0.0.1:5432/scratch".to_owned())
        );
        assert_eq!(
            with_database("postgres://app:pw@db/fluxolab?sslmode=disable", "scratch").ok(),
            Some("postgres://app:pw@db/scratch?sslmode=disable".to_owned())
        );
        assert_eq!(
            with_database("postgres://app@db:5432", "scratch").ok(),
            Some("postgres://app@db:5432/scratch".to_owned())
        );
    }

    #[test]
    fn the_diff_shows_removed_and_added_lines_only() {
        let diff = line_diff("a\nb\nc\n", "a\nx\nc\nd\n");
        assert_eq!(diff, "+   2: x\n-   2: b\n+   4: d");
    }
}
