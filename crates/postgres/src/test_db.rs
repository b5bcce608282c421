//! `TestDb`: a fresh, migrated database for each test.
//!
//! The server comes from `TEST_DATABASE_URL` (as `cargo xtask test` sets it) or, when that
//! is unset, from a Postgres container started with testcontainers once per process.
//! Migrations run once into a template database whose name carries a digest of the
//! migration files, guarded by an advisory lock so that test processes running in parallel
//! build it once; every test then gets `CREATE DATABASE … TEMPLATE …` (milliseconds) under a
//! random name, dropped with `WITH (FORCE)` when the `TestDb` goes out of scope.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

use diesel::QueryableByName;
use diesel::sql_types::Bool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;
use url::Url;

use crate::{DbPool, PoolSettings, StoreError, connect_pool, migrations};

/// Serialises template builds across test processes (`pg_advisory_lock` key).
const TEMPLATE_LOCK_KEY: i64 = 0x466c_7578_6f4c_6162; // "FluxoLab"

/// Why a test database could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum TestDbError {
    #[error("TEST_DATABASE_URL is not a valid URL: {0}")]
    BadUrl(#[from] url::ParseError),
    #[error(
        "no TEST_DATABASE_URL and no Docker for testcontainers ({0}); run `cargo xtask test`, which finds or starts a database"
    )]
    NoServer(String),
    #[error("could not read the migrations directory: {0}")]
    Migrations(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not build the pool: {0}")]
    Pool(#[from] crate::pool::PoolBuildError),
}

impl From<diesel::result::Error> for TestDbError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

impl From<diesel::ConnectionError> for TestDbError {
    fn from(error: diesel::ConnectionError) -> Self {
        Self::Store(StoreError::Connect(error))
    }
}

/// A database of its own for one test.
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
    pool: DbPool,
}

impl TestDb {
    /// Creates a fresh database with every migration applied.
    pub async fn new() -> Result<Self, TestDbError> {
        let admin_url = server_url().await?;
        let template = ensure_template(&admin_url).await?;
        let name = format!("fluxolab_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&admin_url).await?;
        // Raw: database DDL (utility statements), outside the query builder.
        diesel::sql_query(format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#))
            .execute(&mut admin)
            .await?;
        let url = with_database(&admin_url, &name)?;
        let pool = connect_pool(
            &url,
            &PoolSettings {
                max_size: 4,
                acquire_timeout: std::time::Duration::from_secs(10),
            },
        )?;
        Ok(Self {
            name,
            url,
            admin_url,
            pool,
        })
    }

    /// The connection URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool onto this test's database.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("name", &self.name).finish()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.pool.close();
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = AsyncPgConnection::establish(&admin_url)
                    .await
                    .map_err(std::io::Error::other)?;
                // Raw: database DDL (utility statements), outside the query builder.
                diesel::sql_query(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                    .execute(&mut admin)
                    .await
                    .map_err(std::io::Error::other)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// The URL of a server on which test databases may be created.
async fn server_url() -> Result<String, TestDbError> {
    if let Ok(url) = std::env::var("TEST_DATABASE_URL")
        && !url.is_empty()
    {
        Url::parse(&url)?;
        return Ok(url);
    }
    static CONTAINER_URL: OnceCell<String> = OnceCell::const_new();
    CONTAINER_URL
        .get_or_try_init(start_container)
        .await
        .cloned()
}

/// Starts Postgres with testcontainers; it lives until the test process exits.
async fn start_container() -> Result<String, TestDbError> {
    use testcontainers::ImageExt;
    use testcontainers::runners::AsyncRunner;
    use testcontainers_modules::postgres::Postgres;

    let container = Postgres::default()
        .with_tag("15-alpine")
        .start()
        .await
        .map_err(|error| TestDbError::NoServer(error.to_string()))?;
    let host = container
        .get_host()
        .await
        .map_err(|error| TestDbError::NoServer(error.to_string()))?;
    let port = container
        .get_host_port_ipv4(5432)
        .await
        .map_err(|error| TestDbError::NoServer(error.to_string()))?;
    // Keep the container for the life of the process.
    std::mem::forget(container);
    Ok(format!(
        "postgres://postgres:postgres@{host}:{port}/postgres"
    ))
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

/// Makes sure the template for the current migrations exists; returns its name.
async fn ensure_template(admin_url: &str) -> Result<String, TestDbError> {
    let template = format!("fluxolab_template_{:016x}", migrations_digest()?);
    let mut admin = AsyncPgConnection::establish(admin_url).await?;
    // Raw: an advisory-lock function call with no table.
    diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
        .execute(&mut admin)
        .await?;
    let built = build_template_if_missing(&mut admin, admin_url, &template).await;
    // Raw: an advisory-lock function call with no table.
    diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
        .execute(&mut admin)
        .await?;
    built.map(|()| template)
}

async fn build_template_if_missing(
    admin: &mut AsyncPgConnection,
    admin_url: &str,
    template: &str,
) -> Result<(), TestDbError> {
    // Raw: a system catalog, not in the generated schema.
    let present: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(template)
            .get_result(admin)
            .await?;
    if present.exists {
        return Ok(());
    }
    // Build under a scratch name and rename when complete, so a crash never leaves a
    // half-migrated template behind.
    let building = format!("{template}_building");
    // Raw: database DDL (utility statements), outside the query builder.
    diesel::sql_query(format!(
        r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#
    ))
    .execute(admin)
    .await?;
    // Raw: database DDL (utility statements), outside the query builder.
    diesel::sql_query(format!(r#"CREATE DATABASE "{building}""#))
        .execute(admin)
        .await?;
    let building_url = with_database(admin_url, &building)?;
    migrations::run_off_runtime(move || migrations::run_pending(&building_url)).await?;
    // Raw: database DDL (utility statements), outside the query builder.
    diesel::sql_query(format!(
        r#"ALTER DATABASE "{building}" RENAME TO "{template}""#
    ))
    .execute(admin)
    .await?;
    // Raw: database DDL (utility statements), outside the query builder.
    diesel::sql_query(format!(r#"ALTER DATABASE "{template}" IS_TEMPLATE true"#))
        .execute(admin)
        .await?;
    Ok(())
}

/// A digest of every file under `migrations/`, so a changed migration gets a new template.
fn migrations_digest() -> Result<u64, std::io::Error> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&root)? {
        let directory = entry?.path();
        if directory.is_dir() {
            for file in std::fs::read_dir(&directory)? {
                files.push(file?.path());
            }
        }
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.strip_prefix(&root).unwrap_or(&file).hash(&mut hasher);
        std::fs::read(&file)?.hash(&mut hasher);
    }
    Ok(hasher.finish())
}

/// `url` with its database (path) replaced by `database`.
fn with_database(url: &str, database: &str) -> Result<String, url::ParseError> {
    let mut url = Url::parse(url)?;
    url.set_path(&format!("/{database}"));
    Ok(url.into())
}
