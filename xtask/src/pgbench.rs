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
//! checkout: one an interrupted run left is dropped by the next). Besides its
//! transactions per second, its p99 latency is read from a log of one transaction in
//! ten (`--log --sampling-rate 0.1`), for the benches that report latencies.

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
        arguments.extend(["--log", "--sampling-rate", "0.1"].map(String::from));
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
    /// The 99th percentile of the sampled transactions' latencies, in milliseconds
    /// (`None` when pgbench's log could not be read).
    pub p99_ms: Option<f64>,
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
        let logs = std::env::temp_dir().join(&scratch);
        std::fs::create_dir_all(&logs)
            .map_err(|error| format!("could not create {}: {error}", logs.display()))?;
        let output = checked_output(
            Command::new(pgbench)
                .args(reference.arguments())
                .arg("--log-prefix")
                .arg(logs.join("latency"))
                .arg(&url),
        );
        let p99_ms = p99_of_logs(&logs);
        if let Err(error) = std::fs::remove_dir_all(&logs) {
            eprintln!("xtask: could not remove {}: {error}", logs.display());
        }
        let output = output?;
        parse_tps(&output)
            .map(|tps| Measured {
                reference,
                tps,
                p99_ms,
            })
            .ok_or_else(|| format!("no tps figure in pgbench's output:\n{output}"))
    });
    if let Err(error) = psql(psql_path, server_url, &["-c", &drop]) {
        eprintln!("xtask: could not drop the scratch database {scratch}: {error}");
    }
    outcome
}

/// The p99 latency (ms) of the transactions logged in the files of `directory`
/// (pgbench writes one per thread); `None` when there are none.
fn p99_of_logs(directory: &Path) -> Option<f64> {
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(directory).ok()? {
        let text = std::fs::read_to_string(entry.ok()?.path()).ok()?;
        latencies.extend(text.lines().filter_map(logged_latency_us));
    }
    latencies.sort_unstable();
    // As the bench examples take their percentiles: the nearest rank.
    let index = (latencies.len().checked_sub(1)? as f64 * 0.99).round() as usize;
    latencies.get(index).map(|us| *us as f64 / 1000.0)
}

/// The latency (µs) of one line of pgbench's transaction log: `client_id
/// transaction_no time script_no time_epoch time_us [schedule_lag]`, `time` the
/// transaction's latency in microseconds.
fn logged_latency_us(line: &str) -> Option<u64> {
    line.split_whitespace().nth(2)?.parse().ok()
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
            "pgbench -n -M prepared -j 2 -T 12 --log --sampling-rate 0.1 -c 64 -f xtask/pgbench/insert_1k.sql"
        );
        assert_eq!(
            Reference::Select.command_line(),
            "pgbench -n -M prepared -j 2 -T 12 --log --sampling-rate 0.1 -c 32 -S"
        );
    }

    #[test]
    fn the_p99_is_read_from_the_transaction_logs() -> Result<(), std::io::Error> {
        let directory =
            std::env::temp_dir().join(format!("fluxolab-xtask-p99-{}", std::process::id()));
        std::fs::create_dir_all(&directory)?;
        // 200 transactions over two threads' files: 1..=200 ms.
        let lines = |range: std::ops::RangeInclusive<u64>| -> String {
            range
                .map(|ms| format!("0 {ms} {} 0 1733500000 123456\n", ms * 1000))
                .collect()
        };
        std::fs::write(directory.join("latency.1"), lines(1..=100))?;
        std::fs::write(directory.join("latency.1.1"), lines(101..=200))?;
        let p99 = super::p99_of_logs(&directory);
        std::fs::remove_dir_all(&directory)?;
        assert_eq!(p99, Some(198.0));
        assert_eq!(super::logged_latency_us("garbage"), None);
        Ok(())
    }
}
