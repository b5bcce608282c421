//! Private PostgreSQL clusters, created from the local server binaries and listening only
//! on 127.0.0.1 at a port of their own (no Unix socket), so they never collide with a
//! system server: `.fluxolab/pg` for development and tests (fast, not durable) and
//! `.fluxolab/pg-bench` for `cargo xtask bench` (durable: `fsync`, `synchronous_commit`
//! and `full_page_writes` on, as a production server runs).
//!
//! PostgreSQL refuses to run as root. Run as root, the cluster belongs to an unprivileged
//! system user (`postgres`, else `nobody`) and every server command runs as that user; if
//! that user cannot reach the project directory (a home or temp directory with mode 0700),
//! the cluster lives in a directory of its own under the system temp dir and
//! `.fluxolab/pg` is a symlink to it.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{checked_output, project_root};

/// Settings appended to the development cluster's `postgresql.conf`. Durability is traded
/// for speed: this cluster only ever holds development and test data.
const SERVER_SETTINGS: &str = "
# --- fluxolab private cluster (cargo xtask) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
";

/// Settings appended to the bench cluster's `postgresql.conf`: durable, as a production
/// server runs, so that figures measure what a commit really costs on this machine.
const BENCH_SETTINGS: &str = "
# --- fluxolab bench cluster (cargo xtask bench): durable ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
fsync = on
synchronous_commit = on
full_page_writes = on
";

/// Which of the project's clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `.fluxolab/pg`: development and tests, `fsync` off.
    Development,
    /// `.fluxolab/pg-bench`: benchmarks, durable.
    Bench,
}

impl Purpose {
    fn directory(self) -> &'static str {
        match self {
            Self::Development => "pg",
            Self::Bench => "pg-bench",
        }
    }

    fn settings(self) -> &'static str {
        match self {
            Self::Development => SERVER_SETTINGS,
            Self::Bench => BENCH_SETTINGS,
        }
    }

    /// How messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Development => "private cluster",
            Self::Bench => "durable bench cluster",
        }
    }
}

/// A cluster of this project.
#[derive(Debug)]
pub struct Cluster {
    purpose: Purpose,
    /// `.fluxolab/pg` (possibly a symlink).
    link: PathBuf,
    /// Where it really lives.
    root: PathBuf,
    bin: PathBuf,
    /// The unprivileged user to run as, when we are root.
    run_as: Option<String>,
}

/// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
pub fn server_url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

impl Cluster {
    /// The development and test cluster (`.fluxolab/pg`).
    pub fn for_project() -> Result<Self, String> {
        Self::new(Purpose::Development)
    }

    /// Locates the server binaries and decides where the cluster lives; creates nothing.
    pub fn new(purpose: Purpose) -> Result<Self, String> {
        let bin = find_server_binaries().ok_or_else(no_postgres_message)?;
        let link = project_root().join(".fluxolab").join(purpose.directory());
        let run_as = if is_root() {
            Some(unprivileged_user())
        } else {
            None
        };
        let root = match (&run_as, fs::canonicalize(&link)) {
            (_, Ok(existing)) => existing,
            (None, Err(_)) => link.clone(),
            (Some(user), Err(_)) => {
                if user_can_reach(user, &project_root()) {
                    link.clone()
                } else {
                    std::env::temp_dir().join(format!("fluxolab-pg-{:016x}", path_digest(&link)))
                }
            }
        };
        Ok(Self {
            purpose,
            link,
            root,
            bin,
            run_as,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn port_file(&self) -> PathBuf {
        self.root.join("port")
    }

    /// A server command, run as the cluster's owner.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        // The owner may not be allowed into the caller's working directory.
        command.current_dir(&self.root);
        command
    }

    /// The port the cluster answers on, when it is running.
    pub fn running_port(&self) -> Option<u16> {
        let port: u16 = fs::read_to_string(self.port_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let pid_file = self.data_dir().join("postmaster.pid");
        let listening = TcpStream::connect_timeout(
            &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(),
            Duration::from_millis(300),
        )
        .is_ok();
        (pid_file.exists() && listening).then_some(port)
    }

    /// Creates the cluster if needed and starts it; returns its port.
    pub fn start(&self) -> Result<u16, String> {
        if let Some(port) = self.running_port() {
            return Ok(port);
        }
        if !self.data_dir().join("PG_VERSION").exists() {
            self.create()?;
        }
        let port = self.choose_port()?;
        let log = self.root.join("postgres.log");
        eprintln!(
            "xtask: starting the {} on 127.0.0.1:{port} ({})",
            self.purpose.name(),
            self.root.display()
        );
        checked_output(
            self.server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o"])
                .arg(format!("-p {port}"))
                .arg("start"),
        )
        .map_err(|error| format!("{error}\n(see {})", log.display()))?;
        self.write_owned(&self.port_file(), &port.to_string())?;
        self.ensure_database(port, "fluxolab")?;
        Ok(port)
    }

    /// Stops the cluster; `false` when it was not running.
    pub fn stop(&self) -> Result<bool, String> {
        if !self.data_dir().join("postmaster.pid").exists() {
            return Ok(false);
        }
        checked_output(
            self.server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "fast", "-w", "stop"]),
        )?;
        Ok(true)
    }

    /// Stops the cluster and deletes it with its data.
    pub fn remove(&self) -> Result<(), String> {
        self.stop()?;
        if self.root.exists() {
            fs::remove_dir_all(&self.root)
                .map_err(|error| format!("could not remove {}: {error}", self.root.display()))?;
        }
        if fs::symlink_metadata(&self.link).is_ok_and(|meta| meta.file_type().is_symlink()) {
            fs::remove_file(&self.link).map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    fn create(&self) -> Result<(), String> {
        eprintln!(
            "xtask: creating the {} in {}",
            self.purpose.name(),
            self.root.display()
        );
        fs::create_dir_all(&self.root)
            .map_err(|error| format!("could not create {}: {error}", self.root.display()))?;
        if self.root != self.link {
            if let Some(parent) = self.link.parent() {
                fs::create_dir_all(parent).map_err(|error| error.to_string())?;
            }
            let _ = fs::remove_file(&self.link);
            std::os::unix::fs::symlink(&self.root, &self.link)
                .map_err(|error| format!("could not link {}: {error}", self.link.display()))?;
        }
        if let Some(user) = &self.run_as {
            checked_output(Command::new("chown").args(["-R", user]).arg(&self.root))?;
            // The owner also needs to reach `.fluxolab/` when the cluster lives inside it.
            if self.root == self.link
                && let Some(parent) = self.root.parent()
            {
                checked_output(Command::new("chmod").arg("755").arg(parent))?;
            }
        }
        checked_output(
            self.server_command("initdb")
                .arg("-D")
                .arg(self.data_dir())
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ]),
        )?;
        let config = self.data_dir().join("postgresql.conf");
        let mut contents = fs::read_to_string(&config).map_err(|error| error.to_string())?;
        contents.push_str(self.purpose.settings());
        self.write_owned(&config, &contents)
    }

    /// The saved port when it is still free, else a new free one.
    fn choose_port(&self) -> Result<u16, String> {
        let saved: Option<u16> = fs::read_to_string(self.port_file())
            .ok()
            .and_then(|text| text.trim().parse().ok());
        if let Some(port) = saved
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        {
            return Ok(port);
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|error| format!("no free port: {error}"))?;
        listener
            .local_addr()
            .map(|address| address.port())
            .map_err(|error| error.to_string())
    }

    fn ensure_database(&self, port: u16, database: &str) -> Result<(), String> {
        let output = self
            .server_command("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                database,
            ])
            .output()
            .map_err(|error| format!("could not run createdb: {error}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || stderr.contains("already exists") {
            Ok(())
        } else {
            Err(format!("createdb {database} failed: {stderr}"))
        }
    }

    /// Writes a file and, when running as root, hands it to the cluster's owner.
    fn write_owned(&self, path: &Path, contents: &str) -> Result<(), String> {
        fs::write(path, contents)
            .map_err(|error| format!("could not write {}: {error}", path.display()))?;
        if let Some(user) = &self.run_as {
            checked_output(Command::new("chown").arg(user).arg(path))?;
        }
        Ok(())
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn find_server_binaries() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    binary_directories().find(|dir| complete(dir))
}

/// A PostgreSQL client program (`psql`, `pgbench`): from the directories the server
/// binaries are looked for in, else from `PATH`.
pub fn find_client(program: &str) -> Option<PathBuf> {
    let path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    binary_directories()
        .chain(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Where PostgreSQL's programs may be, best first: `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin`, `/usr/local/pgsql/bin`.
fn binary_directories() -> impl Iterator<Item = PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    debian.sort();
    from_pg_config
        .into_iter()
        .chain(debian.into_iter().rev().map(|(_, path)| path))
        .chain([PathBuf::from("/usr/local/pgsql/bin")])
}

fn no_postgres_message() -> String {
    "no PostgreSQL server to use. Any one of these will do:
  - set DATABASE_URL (for tests also TEST_DATABASE_URL) to a running server,
    e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/fluxolab
  - install the PostgreSQL server binaries (Debian/Ubuntu: apt install postgresql;
    macOS: brew install postgresql@15); xtask then runs a private cluster itself
  - run `docker compose up -d db` and set
    DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/fluxolab"
        .to_owned()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn unprivileged_user() -> String {
    let exists = |user: &str| {
        Command::new("id")
            .arg("-u")
            .arg(user)
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if exists("postgres") {
        "postgres"
    } else {
        "nobody"
    }
    .to_owned()
}

fn user_can_reach(user: &str, directory: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", user, "--", "test", "-x"])
        .arg(directory)
        .status()
        .is_ok_and(|status| status.success())
}

/// A stable digest of a path (FNV-1a), to name the cluster's directory outside the project.
pub fn path_digest(path: &Path) -> u64 {
    path.to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}
