//! A private OpenLDAP `slapd` for the LDAP tests: its own `slapd.conf` (mdb backend,
//! the Debian package's modules and schemas), a directory loaded with `slapadd` from an
//! LDIF of users and groups, listening on a free loopback port, killed when dropped.
//!
//! `slapd` and `ldap-utils` are Debian packages; `.ci/run` installs them when missing.
//! Without them a test is skipped with a printed reason, unless `CI` is set: then it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::Error;

/// The directory's suffix.
pub const BASE_DN: &str = "dc=example,dc=com";
/// The service account the configurations bind as.
pub const SERVICE_DN: &str = "cn=svc,dc=example,dc=com";
pub const SERVICE_PASSWORD: &str = "svc-secret";
/// The directory's root, for changes the tests make.
const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
const ROOT_PASSWORD: &str = "admin-secret";

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const LDAPMODIFY: &str = "/usr/bin/ldapmodify";

/// The people and groups every test starts with: ada (in `admins`), bob (in `devs`),
/// carol (in no group).
const DIRECTORY: &str = "\
dn: dc=example,dc=com
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: cn=svc,dc=example,dc=com
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: svc
userPassword: svc-secret

dn: uid=ada,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ada
cn: Ada Lovelace
sn: Lovelace
mail: ada@example.com
userPassword: ada-password

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
sn: Builder
mail: bob@example.com
userPassword: bob-password

dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol Shaw
sn: Shaw
mail: carol@example.com
userPassword: carol-password

dn: cn=admins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: admins
member: uid=ada,ou=people,dc=example,dc=com

dn: cn=devs,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: devs
member: uid=bob,ou=people,dc=example,dc=com
";

/// A running private slapd.
#[derive(Debug)]
pub struct Slapd {
    child: Child,
    dir: PathBuf,
    url: String,
}

fn config(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         pidfile {dir}/slapd.pid\n\
         database mdb\n\
         maxsize 10485760\n\
         suffix \"{BASE_DN}\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw {ROOT_PASSWORD}\n\
         directory {dir}/data\n\
         access to attrs=userPassword by anonymous auth by * none\n\
         access to * by users read by * none\n"
    )
}

impl Slapd {
    /// Starts slapd with [`DIRECTORY`] loaded, or `Ok(None)` (the reason printed) when
    /// slapd is not installed outside CI.
    pub async fn start() -> Result<Option<Self>, Error> {
        if !Path::new(SLAPD).exists() || !Path::new(LDAPMODIFY).exists() {
            let why = "slapd is not installed: apt-get install slapd ldap-utils (as .ci/run does)";
            if fluxolab_outbound::testing::in_ci() {
                return Err(why.into());
            }
            eprintln!("skipped: {why}");
            return Ok(None);
        }
        let dir = std::env::temp_dir().join(format!("fluxolab-slapd-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("data"))?;
        std::fs::write(dir.join("slapd.conf"), config(&dir))?;
        std::fs::write(dir.join("directory.ldif"), DIRECTORY)?;
        let conf = dir.join("slapd.conf");
        let loaded = Command::new(SLAPADD)
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(dir.join("directory.ldif"))
            .output()
            .await?;
        if !loaded.status.success() {
            return Err(format!("slapadd: {}", String::from_utf8_lossy(&loaded.stderr)).into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("ldap://127.0.0.1:{port}");
        // `-d 0`: in the foreground (so the child is slapd itself), logging nothing.
        let mut child = Command::new(SLAPD)
            .arg("-f")
            .arg(&conf)
            .args(["-h", &format!("{url}/"), "-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let started = tokio::time::Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = child.try_wait()? {
                return Err(format!("slapd exited at start: {status}").into());
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("slapd did not listen within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Some(Self { child, dir, url }))
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Applies an LDIF of changes as the directory's root (`ldapmodify`).
    pub async fn modify(&self, ldif: &str) -> Result<(), Error> {
        let mut child = Command::new(LDAPMODIFY)
            .args(["-x", "-H", &self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(ldif.as_bytes()).await?;
        }
        let done = child.wait_with_output().await?;
        if !done.status.success() {
            return Err(format!("ldapmodify: {}", String::from_utf8_lossy(&done.stderr)).into());
        }
        Ok(())
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
