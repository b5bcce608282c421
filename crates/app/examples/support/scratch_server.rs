//! The application as `fluxolab serve` starts it (API, workers, the console when this
//! build embeds it) on a fresh `TestDb` with its reference data and a free loopback
//! port: what `api_check` and `console_e2e` run their tools against.

use fluxolab_app::{Application, Settings};
use fluxolab_postgres::TestDb;
use fluxolab_postgres::seed::seed_reference_data;
use tokio::task::JoinHandle;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A running application; stopping it drops its database.
pub struct ScratchServer {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    server: JoinHandle<std::io::Result<()>>,
    _db: TestDb,
}

impl ScratchServer {
    /// Starts one signing with `secret` (`APP_SECRET`).
    pub async fn start(secret: &str) -> Result<Self, Error> {
        let db = TestDb::new().await?;
        seed_reference_data(&mut *db.pool().get().await?).await?;
        let environment = [
            ("DATABASE_URL", db.url()),
            ("APP_SECRET", secret),
            ("BIND_ADDR", "127.0.0.1:0"),
            ("HTTP_WORKERS", "2"),
            ("WORKERS", "1"),
            ("DATABASE_POOL_SIZE", "8"),
            ("LOG_LEVEL", "warn"),
        ];
        let settings = Settings::from_lookup(|name| {
            environment
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })?;
        let application = Application::build(&settings)?;
        let address = format!("http://127.0.0.1:{}", application.port());
        let server = tokio::spawn(application.run_until_stopped());
        Ok(Self {
            address,
            server,
            _db: db,
        })
    }

    /// Stops the application, then drops its database.
    pub fn stop(self) {
        self.server.abort();
    }
}
