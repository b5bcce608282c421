use std::collections::HashMap;

use fluxolab_app::{Application, Settings};
use fluxolab_postgres::TestDb;

/// A running application on its own database.
pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub client: reqwest::Client,
}

/// A valid `APP_SECRET` for tests.
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret!";

impl TestApp {
    /// Starts the application as `fluxolab serve` does, on a free port.
    pub async fn spawn() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::spawn_with(&[]).await
    }

    /// Like [`TestApp::spawn`], with extra environment variables.
    pub async fn spawn_with(
        extra: &[(&str, &str)],
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let db = TestDb::new().await?;
        let mut environment: HashMap<String, String> = [
            ("DATABASE_URL", db.url()),
            ("APP_SECRET", TEST_SECRET),
            ("BIND_ADDR", "127.0.0.1:0"),
            ("HTTP_WORKERS", "1"),
            ("DATABASE_POOL_SIZE", "4"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        for (key, value) in extra {
            environment.insert((*key).to_owned(), (*value).to_owned());
        }
        let settings = Settings::from_lookup(|name| environment.get(name).cloned())?;
        let application = Application::build(&settings)?;
        let address = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        Ok(Self {
            address,
            db,
            client: reqwest::Client::new(),
        })
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
    }
}
