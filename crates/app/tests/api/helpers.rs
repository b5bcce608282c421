use std::collections::HashMap;
use std::sync::Arc;

use fluxolab_app::{Application, Settings};
use fluxolab_kernel::{Clock, SystemClock};
use fluxolab_postgres::TestDb;
use fluxolab_postgres::seed::seed_reference_data;
use serde::Deserialize;
use serde_json::{Value, json};

mod api;
pub mod oidc;
mod reference_webhooks;
pub mod rsyslog;
pub mod slapd;
mod sql;
mod wait;
mod webhook_receiver;

pub use api::{Fields, parse};
pub use reference_webhooks::ReferenceWebhooks;
pub use sql::{scalar, wait_until};
pub use wait::{eventually, exit_of, healthz_answered, poll, wait_for};
pub use webhook_receiver::WebhookReceiver;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A running application on its own, seeded database (shared with the instances
/// [`TestApp::spawn_beside`] starts).
pub struct TestApp {
    pub address: String,
    pub db: Arc<TestDb>,
    pub client: reqwest::Client,
}

/// A valid `APP_SECRET` for tests.
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret!";

/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// A signed-in test user.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub workspace_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    /// Starts the application as `fluxolab serve` does, on a free port.
    pub async fn spawn() -> Result<Self, Error> {
        Self::start(&[], Arc::new(SystemClock)).await
    }

    /// Like [`TestApp::spawn`], with extra environment variables.
    pub async fn spawn_with(extra: &[(&str, &str)]) -> Result<Self, Error> {
        Self::start(extra, Arc::new(SystemClock)).await
    }

    /// Like [`TestApp::spawn`], telling time by `clock`.
    pub async fn spawn_with_clock(clock: Arc<dyn Clock>) -> Result<Self, Error> {
        Self::start(&[], clock).await
    }

    /// The API without in-process workers (executions wait for other workers).
    pub async fn spawn_api_only() -> Result<Self, Error> {
        Self::start(&[("FLUXOLAB_TEST_NO_WORKERS", "1")], Arc::new(SystemClock)).await
    }

    /// The API without in-process workers (nor their scheduler), telling time by
    /// `clock`: a test drives the workers' jobs itself.
    pub async fn spawn_api_only_with_clock(clock: Arc<dyn Clock>) -> Result<Self, Error> {
        Self::start(&[("FLUXOLAB_TEST_NO_WORKERS", "1")], clock).await
    }

    /// A second, independent instance of the application (its own pool, caches and
    /// listeners, as another server process has) on this one's database.
    pub async fn spawn_beside(&self) -> Result<Self, Error> {
        Self::start_on(self.db.clone(), self.db.url(), &[], Arc::new(SystemClock)).await
    }

    /// Like [`TestApp::spawn_with`], the server reaching its database at the URL `route`
    /// makes of the test database's (through a proxy, say); `route` also gives back
    /// whatever the test keeps of it.
    pub async fn spawn_routed<T>(
        extra: &[(&str, &str)],
        route: impl FnOnce(&str) -> Result<(String, T), Error>,
    ) -> Result<(Self, T), Error> {
        Self::start_routed(extra, Arc::new(SystemClock), route).await
    }

    async fn start(extra: &[(&str, &str)], clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let (app, ()) = Self::start_routed(extra, clock, |url| Ok((url.to_owned(), ()))).await?;
        Ok(app)
    }

    async fn start_routed<T>(
        extra: &[(&str, &str)],
        clock: Arc<dyn Clock>,
        route: impl FnOnce(&str) -> Result<(String, T), Error>,
    ) -> Result<(Self, T), Error> {
        let db = TestDb::new().await?;
        seed_reference_data(&mut *db.pool().get().await?).await?;
        let (database_url, kept) = route(db.url())?;
        let app = Self::start_on(Arc::new(db), &database_url, extra, clock).await?;
        Ok((app, kept))
    }

    async fn start_on(
        db: Arc<TestDb>,
        database_url: &str,
        extra: &[(&str, &str)],
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let mut environment: HashMap<String, String> = [
            ("DATABASE_URL", database_url),
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
        let mut application = Application::build_with_clock(&settings, clock)?;
        if environment.contains_key("FLUXOLAB_TEST_NO_WORKERS") {
            application = application.without_workers();
        }
        let address = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        Ok(Self {
            address,
            db,
            client: reqwest::Client::new(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.client.get(self.url(path)).send().await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.client.post(self.url(path)).json(body).send().await
    }

    /// A GET with a bearer token (and an optional active workspace).
    pub async fn get_as(
        &self,
        token: &str,
        path: &str,
        workspace: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut request = self.client.get(self.url(path)).bearer_auth(token);
        if let Some(workspace) = workspace {
            request = request.header("x-workspace-id", workspace);
        }
        request.send().await
    }

    /// A request with a JSON body and a bearer token.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        workspace: Option<&str>,
        body: &Value,
    ) -> reqwest::Result<reqwest::Response> {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body);
        if let Some(workspace) = workspace {
            request = request.header("x-workspace-id", workspace);
        }
        request.send().await
    }

    pub async fn register(&self, email: &str) -> Result<Value, Error> {
        let response = self
            .post_json(
                "/api/auth/register",
                &json!({"email": email, "password": PASSWORD, "display_name": "Test User"}),
            )
            .await?;
        assert_eq!(response.status(), 201, "register {email}");
        Ok(response.json().await?)
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Result<reqwest::Response> {
        self.post_json(
            "/api/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers and logs in a new user.
    pub async fn signed_up(&self, email: &str) -> Result<Account, Error> {
        #[derive(Deserialize)]
        struct User {
            id: String,
            default_workspace_id: String,
        }
        #[derive(Deserialize)]
        struct Tokens {
            access_token: String,
            refresh_token: String,
        }
        let user: User = parse(&self.register(email).await?)?;
        let tokens: Tokens = parse(&self.login(email, PASSWORD).await?.json().await?)?;
        Ok(Account {
            id: user.id,
            workspace_id: user.default_workspace_id,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
        })
    }
}

/// trigger.manual → data.set (sums `a` and `b`) → flow.if (total > 10).
pub fn three_nodes() -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"total": "{{ trigger.body.a + trigger.body.b }}"}}},
            {"id": "check", "type": "flow.if", "name": "Big?", "params": {"condition": "{{ nodes.shape.output.total > 10 }}"}}
        ],
        "connections": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "check"}]
    })
}

/// A request in `who`'s workspace; the status and the JSON body (null when none).
pub async fn call(
    app: &TestApp,
    who: &Account,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> Result<(u16, Value), Error> {
    let response = app
        .send_as(
            method,
            &who.access_token,
            path,
            Some(&who.workspace_id),
            body,
        )
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Execution `id` as `who` reads it.
pub async fn execution(app: &TestApp, who: &Account, id: &str) -> Result<Value, Error> {
    let (_, found) = app.get_in(who, &format!("/api/executions/{id}")).await?;
    Ok(found)
}

/// Reads execution `id` until `reached` holds for it (failing the test after 30 s).
pub async fn wait_for_execution(
    app: &TestApp,
    who: &Account,
    id: &str,
    reached: impl Fn(&Value) -> bool,
) -> Result<Value, Error> {
    let reached = poll(std::time::Duration::from_secs(30), || async {
        let found = execution(app, who, id).await?;
        Ok(reached(&found).then_some(found))
    })
    .await?;
    match reached {
        Some(found) => Ok(found),
        None => {
            let found = execution(app, who, id).await?;
            Err(format!("execution {id} never got there: {found}").into())
        }
    }
}

/// Execution `id` once it has finished (succeeded, failed or cancelled).
pub async fn wait_finished(app: &TestApp, who: &Account, id: &str) -> Result<Value, Error> {
    wait_for_execution(app, who, id, |found| {
        matches!(
            found["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    })
    .await
}

/// A minimal SMTP server on loopback that accepts `mailer` / `smtp-password` and keeps
/// the messages it receives.
pub async fn fake_smtp(messages: Arc<std::sync::Mutex<Vec<String>>>) -> Result<u16, Error> {
    use base64::Engine as _;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let messages = messages.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 fake ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] = if line.starts_with("EHLO") {
                        b"250-fake\r\n250 AUTH PLAIN\r\n"
                    } else if let Some(token) = line.strip_prefix("AUTH PLAIN ") {
                        let ok = base64::engine::general_purpose::STANDARD
                            .decode(token.trim())
                            .ok()
                            .as_deref()
                            == Some(&b"\0mailer\0smtp-password"[..]);
                        if ok {
                            b"235 2.7.0 Authentication successful\r\n"
                        } else {
                            b"535 5.7.8 Authentication failed\r\n"
                        }
                    } else if line == "DATA" {
                        let _ = write.write_all(b"354 go on\r\n").await;
                        let mut message = String::new();
                        while let Ok(Some(data)) = lines.next_line().await {
                            if data == "." {
                                break;
                            }
                            message.push_str(&data);
                            message.push('\n');
                        }
                        if let Ok(mut messages) = messages.lock() {
                            messages.push(message);
                        }
                        b"250 queued\r\n"
                    } else if line.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(port)
}
