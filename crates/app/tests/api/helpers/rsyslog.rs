//! A private `rsyslogd` for the log-destination tests: a TCP input (octet-counted framing,
//! as RFC 6587 allows) on a loopback port, every message written to a file as
//! `APP-NAME|MSGID|STRUCTURED-DATA|MSG`. It can be stopped and started again on the same
//! port, so a test can make the receiver go away and come back.
//!
//! `rsyslog` is a Debian package; `.ci/run` installs it when missing. Without it a test is
//! skipped with a printed reason, unless `CI` is set: then it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::Error;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// A private rsyslogd, running or stopped.
#[derive(Debug)]
pub struct Rsyslog {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Rsyslog {
    /// Starts one on a free port, or `Ok(None)` (the reason printed) when rsyslog is not
    /// installed outside CI.
    pub async fn start() -> Result<Option<Self>, Error> {
        if !Path::new(RSYSLOGD).exists() {
            let why = "rsyslog is not installed: apt-get install rsyslog (as .ci/run does)";
            if fluxolab_outbound::testing::in_ci() {
                return Err(why.into());
            }
            eprintln!("skipped: {why}");
            return Ok(None);
        }
        let dir = std::env::temp_dir().join(format!("fluxolab-rsyslog-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.display();
        std::fs::write(
            dir.join("rsyslog.conf"),
            format!(
                "global(workDirectory=\"{d}\")\n\
                 module(load=\"imtcp\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"fields\" type=\"string\" string=\"%app-name%|%msgid%|%structured-data%|%msg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{d}/messages.log\" template=\"fields\")\n"
            ),
        )?;
        let mut rsyslog = Self {
            child: None,
            dir,
            port,
        };
        rsyslog.resume().await?;
        Ok(Some(rsyslog))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts it (again) on its port, once it accepts connections.
    pub async fn resume(&mut self) -> Result<(), Error> {
        let mut child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let started = tokio::time::Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if let Some(status) = child.try_wait()? {
                return Err(format!("rsyslogd exited at start: {status}").into());
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("rsyslogd did not listen within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some(child);
        Ok(())
    }

    /// Stops it (what it received stays in its file).
    pub async fn stop(&mut self) -> Result<(), Error> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// The messages received so far, one `APP-NAME|MSGID|STRUCTURED-DATA|MSG` line each.
    pub fn received(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("messages.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
