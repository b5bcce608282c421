//! The machine's reference for `cargo xtask bench`: `pgbench` on the same server, in the
//! same sitting, so that our figures can be given as a ratio of what the machine does
//! with the simplest workload of the same kind, and compared across machines.
//!
//! - [`Reference::Insert`] (executions, webhook intake): `xtask/pgbench/insert_1k.sql`,
//!   one ~1 KB row inserted and committed per transaction, 64 clients over 2 threads;
//! - [`Reference::Select`] (API reads): `pgbench -S` (one primary-key read of
//!   `pgbench_accounts` per transaction) at scale 10, 32 clients over 2 threads.
//!
//! Each runs in a scratch database of its own, dropped afterwards (named after the
//! checkout: one an interrupted run left is dropped by the next).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cluster::path_digest;
use crate::process::{checked_output, project_root};
use crate::schema::with_database;

/// How long each reference runs.
pub const SECONDS: u32 = 12;

/// A reference workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// One ~1 KB row inserted per transaction, 64 clients.
    Insert,
    /// `pgbench -S`: one primary-key read per transaction, 32 clients.
    Select,
}

impl Reference {
    pub fn name(self) -> &'static str {
        match self {
            Self::Insert => "1 KB-row insert",
            Self::Select => "select (pgbench -S)",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Select => "select",
        }
    }

    /// The `pgbench` arguments of the measured run, before the database URL.
    fn arguments(self) -> Vec<String> {
        let mut arguments: Vec<String> = ["-n", "-M", "prepared", "-j", "2"]
            .map(String::from)
            .to_vec();
        arguments.extend(["-T".to_owned(), SECONDS.to_string()]);
        match self {
            Self::Insert => {
                arguments.extend(["-c".to_owned(), "64".to_owned(), "-f".to_owned()]);
                arguments.push(script("insert_1k.sql").display().to_string());
            }
            Self::Select => {
                arguments.extend(["-c", "32", "-S"].map(String::from));
            }
        }
        arguments
    }

    /// The measured command as printed (paths relative to the project).
    pub fn command_line(self) -> String {
        let root = project_root().display().to_string();
        let arguments = self.arguments().join(" ");
        let arguments = arguments.replace(&format!("{root}/"), "");
        format!("pgbench {arguments}")
    }
}

/// A reference measured on the bench's server.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub reference: Reference,
    pub tps: f64,
}

/// `xtask/pgbench/NAME`.
fn script(name: &str) -> PathBuf {
    project_root().join("xtask").join("pgbench").join(name)
}

/// Runs `psql` on `url` with `arguments`; its standard output.
pub fn psql(psql: &Path, url: &str, arguments: &[&str]) -> Result<String, String> {
    checked_output(
        Command::new(psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url])
            .args(arguments),
    )
}

/// Measures `reference` with `pgbench` in a scratch database on the server of
/// `server_url`, then drops that database.
pub fn measure(
    reference: Reference,
    pgbench: &Path,
    psql_path: &Path,
    server_url: &str,
) -> Result<Measured, String> {
    let scratch = format!(
        "fluxolab_pgbench_{}_{:016x}",
        reference.slug(),
        path_digest(&project_root())
    );
    let drop = format!(r#"DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)"#);
    psql(
        psql_path,
        server_url,
        &[
            "-c",
            &drop,
            "-c",
            &format!(r#"CREATE DATABASE "{scratch}""#),
        ],
    )?;
    let outcome = with_database(server_url, &scratch).and_then(|url| {
        match reference {
            Reference::Insert => {
                let setup = script("insert_1k_setup.sql");
                psql(psql_path, &url, &["-f", &setup.display().to_string()])?;
            }
            Reference::Select => {
                checked_output(
                    Command::new(pgbench)
                        .args(["-i", "-q", "-s", "10"])
                        .arg(&url),
                )?;
            }
        }
        let output = checked_output(Command::new(pgbench).args(reference.arguments()).arg(&url))?;
        parse_tps(&output)
            .map(|tps| Measured { reference, tps })
            .ok_or_else(|| format!("no tps figure in pgbench's output:\n{output}"))
    });
    if let Err(error) = psql(psql_path, server_url, &["-c", &drop]) {
        eprintln!("xtask: could not drop the scratch database {scratch}: {error}");
    }
    outcome
}

/// The transactions per second `pgbench` reports: `tps = N (without initial connection
/// time)` since PostgreSQL 14, `tps = N (excluding connections establishing)` before.
fn parse_tps(output: &str) -> Option<f64> {
    let figures: Vec<(f64, &str)> = output
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("tps = ")?;
            let (number, note) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((number.parse().ok()?, note))
        })
        .collect();
    figures
        .iter()
        .find(|(_, note)| note.contains("without initial") || note.contains("excluding"))
        .or_else(|| figures.first())
        .map(|(tps, _)| *tps)
}

#[cfg(test)]
mod tests {
    use super::{Reference, parse_tps};

    #[test]
    fn tps_is_read_from_pgbench_15_output() {
        let output = "transaction type: xtask/pgbench/insert_1k.sql
scaling factor: 1
query mode: prepared
number of clients: 64
number of threads: 2
maximum number of tries: 1
duration: 12 s
number of transactions actually processed: 27311
number of failed transactions: 0 (0.000%)
latency average = 28.104 ms
initial connection time = 61.468 ms
tps = 2277.274812 (without initial connection time)
";
        assert_eq!(parse_tps(output), Some(2277.274812));
    }

    #[test]
    fn tps_excluding_connections_is_preferred_on_older_pgbench() {
        let output = "tps = 1000.5 (including connections establishing)
tps = 1010.25 (excluding connections establishing)
";
        assert_eq!(parse_tps(output), Some(1010.25));
        assert_eq!(parse_tps("no figure here\n"), None);
    }

    #[test]
    fn the_commands_are_printed_relative_to_the_project() {
        assert_eq!(
            Reference::Insert.command_line(),
            "pgbench -n -M prepared -j 2 -T 12 -c 64 -f xtask/pgbench/insert_1k.sql"
        );
        assert_eq!(
            Reference::Select.command_line(),
            "pgbench -n -M prepared -j 2 -T 12 -c 32 -S"
        );
    }
}
