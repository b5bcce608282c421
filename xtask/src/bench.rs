//! `cargo xtask bench [--unsafe-fast] [NAME]`: the benchmarks, in release mode. They
//! print figures and assert nothing.
//!
//! The database benches run against a durable server: the bench cluster
//! (`.fluxolab/pg-bench`, `fsync`, `synchronous_commit` and `full_page_writes` on), or
//! the server `TEST_DATABASE_URL` / `DATABASE_URL` names, as it is configured.
//! `--unsafe-fast` uses the development cluster instead (`fsync` off: the old figures,
//! not comparable with durable ones). The settings in force are read from the server
//! (`SHOW`) and printed; any that gives up durability is printed as `UNSAFE: …`.
//!
//! In the same sitting each database bench runs its reference with `pgbench` on the same
//! server (see [`crate::pgbench`]) and our figures are printed as a ratio of it. The
//! examples print their figures as `RESULT key=value` lines, which this command collects.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use crate::cluster::find_client;
use crate::discovery::{self, Database};
use crate::pgbench::{self, Measured, Reference};
use crate::process;

/// A benchmark: its name, where it lives and the reference it is compared with.
#[derive(Debug)]
struct Bench {
    name: &'static str,
    package: &'static str,
    example: &'static str,
    /// `None`: no database involved (nothing to compare with).
    reference: Option<Reference>,
}

const BENCHES: &[Bench] = &[
    Bench {
        name: "credentials",
        package: "fluxolab-credentials",
        example: "seal_bench",
        reference: None,
    },
    Bench {
        name: "executions",
        package: "fluxolab-app",
        example: "bench_executions",
        reference: Some(Reference::Insert),
    },
    Bench {
        name: "fairness",
        package: "fluxolab-app",
        example: "bench_fairness",
        reference: Some(Reference::Insert),
    },
    Bench {
        name: "webhooks",
        package: "fluxolab-app",
        example: "bench_webhooks",
        reference: Some(Reference::Insert),
    },
    Bench {
        name: "api-keys",
        package: "fluxolab-app",
        example: "bench_api_keys",
        reference: Some(Reference::Select),
    },
    Bench {
        name: "reads",
        package: "fluxolab-app",
        example: "bench_reads",
        reference: Some(Reference::Select),
    },
    Bench {
        name: "scaleout",
        package: "fluxolab-app",
        example: "bench_scaleout",
        reference: Some(Reference::Insert),
    },
];

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    wanted: String,
    unsafe_fast: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        wanted: "all".to_owned(),
        unsafe_fast: false,
    };
    let mut named = false;
    for arg in args {
        match arg.as_str() {
            "--unsafe-fast" => options.unsafe_fast = true,
            flag if flag.starts_with('-') => return Err(format!("unknown option `{flag}`")),
            name if !named => {
                options.wanted = name.to_owned();
                named = true;
            }
            extra => return Err(format!("unexpected argument `{extra}`")),
        }
    }
    Ok(options)
}

pub fn run(args: &[String]) -> Result<u8, String> {
    let options = parse_options(args)?;
    let selected: Vec<&Bench> = BENCHES
        .iter()
        .filter(|bench| options.wanted == "all" || options.wanted == bench.name)
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "unknown benchmark `{}`; available: credentials, executions, fairness, webhooks, api-keys, reads, scaleout",
            options.wanted
        ));
    }
    // Built first, so that no compile sits between a reference and its figures.
    for bench in &selected {
        let code = process::status_code(&mut example_command("build", bench))?;
        if code != 0 {
            return Ok(code);
        }
    }
    // `scaleout` runs the release binary as its worker processes.
    let fluxolab = if selected.iter().any(|bench| bench.name == "scaleout") {
        Some(process::release_fluxolab()?)
    } else {
        None
    };
    let server = if selected.iter().any(|bench| bench.reference.is_some()) {
        Some(Server::find(options.unsafe_fast)?)
    } else {
        None
    };
    let mut measured: Vec<Measured> = Vec::new();
    for bench in selected {
        let reference = match (&server, bench.reference) {
            (Some(server), Some(reference)) => {
                match measured.iter().find(|done| done.reference == reference) {
                    Some(done) => Some(*done),
                    None => {
                        let done = server.measure(reference);
                        measured.extend(done);
                        done
                    }
                }
            }
            _ => None,
        };
        let (code, results) = run_example(bench, server.as_ref(), fluxolab.as_deref())?;
        if let Some(server) = server.as_ref().filter(|_| bench.reference.is_some()) {
            print_summary(bench, server, reference, &results);
        }
        if code != 0 {
            return Ok(code);
        }
    }
    Ok(0)
}

/// The server the database benches use, its settings and the client programs.
#[derive(Debug)]
struct Server {
    database: Database,
    psql: Option<PathBuf>,
    pgbench: Option<PathBuf>,
    /// `None` when they could not be read (no `psql`, or it failed).
    settings: Option<ServerSettings>,
}

impl Server {
    fn find(unsafe_fast: bool) -> Result<Self, String> {
        let database = discovery::bench_server(unsafe_fast)?;
        eprintln!("xtask: benchmarking against {}", database.description);
        if unsafe_fast && database.external {
            eprintln!(
                "xtask: --unsafe-fast changes only the private cluster; this server runs as it is configured"
            );
        }
        let psql = find_client("psql");
        let pgbench = find_client("pgbench");
        let settings = match &psql {
            Some(psql) => match ServerSettings::read(psql, &database.url) {
                Ok(settings) => Some(settings),
                Err(error) => {
                    eprintln!("xtask: could not read the server's settings: {error}");
                    None
                }
            },
            None => {
                eprintln!(
                    "xtask: psql not found (install the PostgreSQL client): the server's settings and the pgbench references are skipped"
                );
                None
            }
        };
        if pgbench.is_none() {
            eprintln!(
                "xtask: pgbench not found (Debian: apt install postgresql): figures are printed without ratios"
            );
        }
        let server = Self {
            database,
            psql,
            pgbench,
            settings,
        };
        eprintln!("xtask: server settings: {}", server.describe_settings());
        Ok(server)
    }

    fn describe_settings(&self) -> String {
        self.settings.as_ref().map_or_else(
            || "unknown (could not be read)".to_owned(),
            ServerSettings::describe,
        )
    }

    /// Runs `reference` and says what it measured; `None` when it could not run.
    fn measure(&self, reference: Reference) -> Option<Measured> {
        let (Some(pgbench), Some(psql)) = (&self.pgbench, &self.psql) else {
            return None;
        };
        eprintln!(
            "xtask: reference {}: {} ({} s, scratch database)",
            reference.name(),
            reference.command_line(),
            pgbench::SECONDS
        );
        match pgbench::measure(reference, pgbench, psql, &self.database.url) {
            Ok(measured) => {
                eprintln!(
                    "xtask: reference {}: {} tps",
                    reference.name(),
                    grouped(measured.tps)
                );
                Some(measured)
            }
            Err(error) => {
                eprintln!(
                    "xtask: the reference {} failed; figures are printed without its ratio: {error}",
                    reference.name()
                );
                None
            }
        }
    }
}

/// `cargo <verb>` of a bench's example, in release mode.
fn example_command(verb: &str, bench: &Bench) -> std::process::Command {
    let mut command = process::cargo();
    command.args([
        verb,
        "--quiet",
        "--release",
        "--package",
        bench.package,
        "--example",
        bench.example,
    ]);
    command
}

/// Runs a bench's example, its output passed through but for its `RESULT` lines, which
/// are returned with its exit code.
fn run_example(
    bench: &Bench,
    server: Option<&Server>,
    fluxolab: Option<&std::path::Path>,
) -> Result<(u8, Vec<(String, f64)>), String> {
    let mut command = example_command("run", bench);
    command.stdout(Stdio::piped());
    if let Some(fluxolab) = fluxolab {
        command.env("FLUXOLAB_BIN", fluxolab);
    }
    if let (Some(server), Some(_)) = (server, bench.reference) {
        command.env("DATABASE_URL", &server.database.url);
    }
    let mut child = command
        .spawn()
        .map_err(|error| format!("could not run the {} bench: {error}", bench.name))?;
    let mut results = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|error| error.to_string())?;
            match parse_result(&line) {
                Some(result) => results.push(result),
                None if line.starts_with("RESULT ") => {}
                None => println!("{line}"),
            }
        }
    }
    let status = child.wait().map_err(|error| error.to_string())?;
    let code = status
        .code()
        .map_or(1, |code| u8::try_from(code).unwrap_or(1));
    Ok((code, results))
}

/// `RESULT key=value`, as the examples print their figures.
fn parse_result(line: &str) -> Option<(String, f64)> {
    let (key, value) = line.strip_prefix("RESULT ")?.trim().split_once('=')?;
    let value: f64 = value.trim().parse().ok()?;
    value.is_finite().then(|| (key.trim().to_owned(), value))
}

fn print_summary(
    bench: &Bench,
    server: &Server,
    reference: Option<Measured>,
    results: &[(String, f64)],
) {
    println!(
        "{}: against the machine's reference (pgbench, same server, same sitting)",
        bench.name
    );
    println!("  server settings          {}", server.describe_settings());
    match (reference, bench.reference) {
        (Some(measured), _) => println!(
            "  reference                {:>10} tps  {}{}: {}",
            grouped(measured.tps),
            measured
                .p99_ms
                .map(|p99| format!("p99 {p99:.2} ms  "))
                .unwrap_or_default(),
            measured.reference.name(),
            measured.reference.command_line()
        ),
        (None, Some(wanted)) => println!(
            "  reference                none: the {} could not be measured (see above); no ratios",
            wanted.name()
        ),
        (None, None) => {}
    }
    for (key, value) in results {
        let rate = reference
            .filter(|_| key.ends_with("_per_second"))
            .map(|measured| measured.tps);
        let p99 = reference
            .filter(|_| key.ends_with("_p99_ms"))
            .and_then(|measured| measured.p99_ms);
        match (rate, p99) {
            (Some(tps), _) => println!(
                "  {key:<40} {:>10}   {:>6.3} × reference",
                grouped(*value),
                value / tps
            ),
            // Latencies keep their decimals; a ratio above 1 is slower than pgbench.
            (None, Some(p99)) => println!(
                "  {key:<40} {value:>10.2}   {:>6.3} × reference p99",
                value / p99
            ),
            (None, None) if key.ends_with("_ms") => println!("  {key:<40} {value:>10.2}"),
            (None, None) => println!("  {key:<40} {:>10}", grouped(*value)),
        }
    }
}

/// The settings that decide whether a commit survives a crash, as the server reports them.
#[derive(Debug, PartialEq, Eq)]
struct ServerSettings {
    fsync: String,
    synchronous_commit: String,
    full_page_writes: String,
}

impl ServerSettings {
    fn read(psql: &std::path::Path, url: &str) -> Result<Self, String> {
        let output = pgbench::psql(
            psql,
            url,
            &[
                "-c",
                "SHOW fsync",
                "-c",
                "SHOW synchronous_commit",
                "-c",
                "SHOW full_page_writes",
            ],
        )?;
        Self::parse(&output).ok_or_else(|| format!("unexpected answer to SHOW: {output}"))
    }

    fn parse(output: &str) -> Option<Self> {
        let mut values = output
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty());
        let mut next = || values.next().map(str::to_owned);
        Some(Self {
            fsync: next()?,
            synchronous_commit: next()?,
            full_page_writes: next()?,
        })
    }

    /// The settings that give up durability, e.g. `fsync off`.
    fn unsafe_settings(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.fsync != "on" {
            found.push(format!("fsync {}", self.fsync));
        }
        // `local`, `remote_write`, `on` and `remote_apply` all wait for the local flush.
        if self.synchronous_commit == "off" {
            found.push("synchronous_commit off".to_owned());
        }
        if self.full_page_writes != "on" {
            found.push(format!("full_page_writes {}", self.full_page_writes));
        }
        found
    }

    fn describe(&self) -> String {
        let values = format!(
            "fsync={}, synchronous_commit={}, full_page_writes={}",
            self.fsync, self.synchronous_commit, self.full_page_writes
        );
        let unsafe_settings = self.unsafe_settings();
        if unsafe_settings.is_empty() {
            format!("{values} (durable)")
        } else {
            format!(
                "UNSAFE: {} — commits are not durable; not comparable with durable figures ({values})",
                unsafe_settings.join(", ")
            )
        }
    }
}

/// `1234567.8` as `1,234,568`.
fn grouped(value: f64) -> String {
    let rounded = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (index, digit) in rounded.chars().enumerate() {
        if index > 0 && (rounded.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0.0 && rounded != "0" {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{Options, ServerSettings, grouped, parse_options, parse_result};

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn options_name_a_bench_and_the_unsafe_mode() {
        assert_eq!(
            parse_options(&args(&[])),
            Ok(Options {
                wanted: "all".into(),
                unsafe_fast: false
            })
        );
        assert_eq!(
            parse_options(&args(&["webhooks", "--unsafe-fast"])),
            Ok(Options {
                wanted: "webhooks".into(),
                unsafe_fast: true
            })
        );
        assert!(parse_options(&args(&["--fast"])).is_err());
        assert!(parse_options(&args(&["webhooks", "executions"])).is_err());
    }

    #[test]
    fn result_lines_are_parsed() {
        assert_eq!(
            parse_result("RESULT executions_per_second=1034.5"),
            Some(("executions_per_second".to_owned(), 1034.5))
        );
        assert_eq!(parse_result("RESULT skipped_per_second=NaN"), None);
        assert_eq!(parse_result("  throughput 1034 executions/s"), None);
    }

    #[test]
    fn durable_settings_are_said_durable() {
        let settings = ServerSettings::parse("on\non\non\n");
        assert_eq!(
            settings.as_ref().map(ServerSettings::describe).as_deref(),
            Some("fsync=on, synchronous_commit=on, full_page_writes=on (durable)")
        );
        let local = ServerSettings::parse("on\nlocal\non\n");
        assert_eq!(local.map(|s| s.unsafe_settings().len()), Some(0));
    }

    #[test]
    fn unsafe_settings_are_labelled() {
        let settings = ServerSettings::parse("off\noff\noff\n");
        let described = settings.as_ref().map(ServerSettings::describe);
        assert!(
            described.as_deref().is_some_and(|text| text
                .starts_with("UNSAFE: fsync off, synchronous_commit off, full_page_writes off")),
            "{described:?}"
        );
        assert_eq!(ServerSettings::parse("on\n"), None);
    }

    #[test]
    fn figures_are_grouped_by_thousands() {
        assert_eq!(grouped(0.4), "0");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1034.6), "1,035");
        assert_eq!(grouped(1_234_567.0), "1,234,567");
    }
}
