//! Finding a PostgreSQL server: the environment first, else a private cluster.

use crate::cluster::{Cluster, Purpose, server_url};

/// A server to use and how it was found.
#[derive(Debug)]
pub struct Database {
    pub url: String,
    pub description: String,
    /// Named by the environment rather than started by xtask.
    pub external: bool,
}

fn from_env(variable: &str) -> Option<Database> {
    let url = std::env::var(variable)
        .ok()
        .filter(|url| !url.trim().is_empty())?;
    Some(Database {
        description: format!("{variable} ({})", redact(&url)),
        url,
        external: true,
    })
}

fn private_cluster(purpose: Purpose, database: &str) -> Result<Database, String> {
    let cluster = Cluster::new(purpose)?;
    let port = cluster.start()?;
    Ok(Database {
        url: server_url(port, database),
        description: format!(
            "the {} on 127.0.0.1:{port} ({}; stop it with `cargo xtask db stop`)",
            purpose.name(),
            cluster.root().display()
        ),
        external: false,
    })
}

/// For `dev`, `migrate`, `seed`: `DATABASE_URL`, else the private cluster's `fluxolab`.
pub fn dev_database() -> Result<Database, String> {
    from_env("DATABASE_URL").map_or_else(|| private_cluster(Purpose::Development, "fluxolab"), Ok)
}

/// For `test`: `TEST_DATABASE_URL`, else `DATABASE_URL`, else the private cluster. Test
/// databases are created on that server next to the one named.
pub fn test_server() -> Result<Database, String> {
    from_env("TEST_DATABASE_URL")
        .or_else(|| from_env("DATABASE_URL"))
        .map_or_else(|| private_cluster(Purpose::Development, "postgres"), Ok)
}

/// For `bench`: `TEST_DATABASE_URL`, else `DATABASE_URL`, else the durable bench cluster
/// (`unsafe_fast`: the development cluster, `fsync` off).
pub fn bench_server(unsafe_fast: bool) -> Result<Database, String> {
    let purpose = if unsafe_fast {
        Purpose::Development
    } else {
        Purpose::Bench
    };
    from_env("TEST_DATABASE_URL")
        .or_else(|| from_env("DATABASE_URL"))
        .map_or_else(|| private_cluster(purpose, "postgres"), Ok)
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/fluxolab"),
            "postgres://app:***@db:5432/fluxolab"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }
}
