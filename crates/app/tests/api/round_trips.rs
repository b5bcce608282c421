//! What an authenticated read costs the database once the caches are warm: one
//! statement, already prepared on its connection (so one round trip), and none for
//! `GET /api/auth/me` and `GET /api/workflows/{id}` (the profile and the workflow are
//! cached). Every connection
//! of the process reports its statements through diesel's instrumentation; the auth
//! listener's connection is left out (it only listens and checks itself).

use std::collections::HashSet;
use std::sync::Mutex;

use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};
use fluxolab_postgres::auth_cache::LISTENER_APPLICATION_NAME;
use serde_json::json;

use crate::TestResult;
use crate::helpers::{Error, Fields, TestApp};

/// One statement a connection ran.
#[derive(Clone, Debug)]
struct Executed {
    /// The URL the connection was opened with.
    url: String,
    sql: String,
    /// Whether this connection had prepared it for its cache before.
    prepared_before: bool,
}

static EXECUTED: Mutex<Vec<Executed>> = Mutex::new(Vec::new());

/// Reports the statements of one connection into [`EXECUTED`].
#[derive(Default)]
struct Recorder {
    url: String,
    listener: bool,
    cached: HashSet<String>,
}

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                url.clone_into(&mut self.url);
            }
            InstrumentationEvent::CacheQuery { sql, .. } => {
                self.cached.insert(sql.to_owned());
            }
            InstrumentationEvent::StartQuery { query, .. } => {
                let text = query.to_string();
                let sql = text
                    .split_once(" -- binds")
                    .map_or(text.as_str(), |(sql, _)| sql)
                    .to_owned();
                self.listener |= sql.contains(LISTENER_APPLICATION_NAME);
                if self.listener {
                    return;
                }
                if let Ok(mut executed) = EXECUTED.lock() {
                    executed.push(Executed {
                        url: self.url.clone(),
                        prepared_before: self.cached.contains(&sql),
                        sql,
                    });
                }
            }
            _ => {}
        }
    }
}

fn recorder() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(Recorder::default()))
}

/// What the connections to `app`'s database ran while `request` ran.
async fn statements_of<F, Fut>(app: &TestApp, request: F) -> Result<Vec<Executed>, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<u16, Error>>,
{
    let before = EXECUTED.lock().map(|executed| executed.len()).unwrap_or(0);
    assert_eq!(request().await?, 200);
    let url = app.db.url();
    Ok(EXECUTED
        .lock()
        .map(|executed| {
            executed[before..]
                .iter()
                .filter(|statement| statement.url == url)
                .cloned()
                .collect()
        })
        .map_err(|_| "the statement log's lock is poisoned")?)
}

#[tokio::test]
async fn a_warm_authenticated_read_costs_one_prepared_statement_at_most() -> TestResult {
    set_default_instrumentation(recorder)?;
    let app = TestApp::spawn().await?;
    let owner = app.signed_up("reader@example.com").await?;
    let (_, workflow) = app
        .post_in(&owner, "/api/workflows", &json!({"name": "Read"}))
        .await?;
    let workflow = workflow.text("id")?;
    let key = app
        .create_api_key(
            &owner,
            &json!({"name": "Reader", "scopes": ["workflows.read"]}),
        )
        .await?
        .key;
    let path = format!("/api/workflows/{workflow}");
    let versions_path = format!("{path}/versions");
    let versions = || async {
        Ok(app
            .get_as(
                &owner.access_token,
                &versions_path,
                Some(&owner.workspace_id),
            )
            .await?
            .status()
            .as_u16())
    };
    let by_token = || async {
        Ok(app
            .get_as(&owner.access_token, &path, Some(&owner.workspace_id))
            .await?
            .status()
            .as_u16())
    };
    let by_key = || async {
        Ok(app
            .client
            .get(app.url(&path))
            .bearer_auth(&key)
            .send()
            .await?
            .status()
            .as_u16())
    };
    let me = || async {
        Ok(app
            .get_as(&owner.access_token, "/api/auth/me", None)
            .await?
            .status()
            .as_u16())
    };
    // Warm: the caches filled, each pooled connection has prepared its statements.
    for _ in 0..8 {
        by_token().await?;
        by_key().await?;
        me().await?;
        versions().await?;
    }

    // The workflow is found in the cache; its versions are read.
    let statements = statements_of(&app, versions).await?;
    let name = "GET /api/workflows/{id}/versions";
    assert_eq!(statements.len(), 1, "{name}: {statements:#?}");
    assert!(
        statements[0].sql.contains("FROM \"workflow_versions\""),
        "{name}: {statements:#?}"
    );
    assert!(statements[0].prepared_before, "{name}: {statements:#?}");
    // The profile and the workflow are cached (evicted by announced changes): a warm
    // `/me` or workflow read reads nothing, whichever way the caller authenticates.
    for (name, statements) in [
        ("GET /api/auth/me", statements_of(&app, me).await?),
        (
            "GET /api/workflows/{id} (JWT)",
            statements_of(&app, by_token).await?,
        ),
        (
            "GET /api/workflows/{id} (API key)",
            statements_of(&app, by_key).await?,
        ),
    ] {
        assert!(statements.is_empty(), "{name}: {statements:#?}");
    }
    Ok(())
}
