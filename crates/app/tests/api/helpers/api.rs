//! Typed requests: the calls most tests make (create a workflow, activate it, run it, add
//! a webhook, a key, a credential, a variable…), each checking its status and answering
//! the fields the tests read, so that a missing field fails the test by name instead of
//! becoming an empty string.

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Account, Error, TestApp, call};

/// A status and the JSON body (null when none).
pub type Reply = (u16, Value);

/// Something created (a workflow, credential, workspace…): its id.
#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    pub id: String,
}

/// `202 {"execution_id": …}`: a run (or replay, or retry) was queued.
#[derive(Debug, Clone, Deserialize)]
pub struct Queued {
    pub execution_id: String,
}

/// A webhook registration as created or read.
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    pub id: String,
    pub url: String,
    /// Shown once, when the server generated it.
    pub signing_secret: Option<String>,
}

/// An API key as created: `key` is its secret, shown this once.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedKey {
    pub key: String,
}

/// A usage alert as created: `secret` is shown once for webhook alerts.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedAlert {
    pub id: String,
    pub secret: Option<String>,
}

/// Reads a JSON body as `T`, naming what did not fit.
pub fn parse<T: DeserializeOwned>(body: &Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(body)
        .map_err(|error| format!("unexpected response ({error}): {body}").into())
}

/// Fields of a JSON answer that a test cannot do without.
pub trait Fields {
    /// The string at `key` (a field name, or a JSON pointer such as `/items/0/id`).
    fn text(&self, key: &str) -> Result<String, Error>;
    /// The `items` of a page.
    fn items(&self) -> Result<Vec<Value>, Error>;
}

impl Fields for Value {
    fn text(&self, key: &str) -> Result<String, Error> {
        let found = if key.starts_with('/') {
            self.pointer(key)
        } else {
            self.get(key)
        };
        found
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no string at `{key}` in {self}").into())
    }

    fn items(&self) -> Result<Vec<Value>, Error> {
        self["items"]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("no `items` in {self}").into())
    }
}

impl TestApp {
    /// `GET path` in `who`'s workspace.
    pub async fn get_in(&self, who: &Account, path: &str) -> Result<Reply, Error> {
        call(self, who, Method::GET, path, &json!({})).await
    }

    /// `POST path` with `body` in `who`'s workspace.
    pub async fn post_in(&self, who: &Account, path: &str, body: &Value) -> Result<Reply, Error> {
        call(self, who, Method::POST, path, body).await
    }

    /// `PUT path` with `body` in `who`'s workspace.
    pub async fn put_in(&self, who: &Account, path: &str, body: &Value) -> Result<Reply, Error> {
        call(self, who, Method::PUT, path, body).await
    }

    /// `PATCH path` with `body` in `who`'s workspace.
    pub async fn patch_in(&self, who: &Account, path: &str, body: &Value) -> Result<Reply, Error> {
        call(self, who, Method::PATCH, path, body).await
    }

    /// `DELETE path` in `who`'s workspace.
    pub async fn delete_in(&self, who: &Account, path: &str) -> Result<Reply, Error> {
        call(self, who, Method::DELETE, path, &json!({})).await
    }

    /// `POST path` that must answer `expected`, read as `T`.
    pub async fn created<T: DeserializeOwned>(
        &self,
        who: &Account,
        path: &str,
        body: &Value,
        expected: u16,
    ) -> Result<T, Error> {
        let (status, answer) = self.post_in(who, path, body).await?;
        assert_eq!(status, expected, "POST {path}: {answer}");
        parse(&answer)
    }

    /// A new workflow whose `definition` becomes version 1.
    pub async fn create_workflow(
        &self,
        who: &Account,
        name: &str,
        definition: &Value,
    ) -> Result<Created, Error> {
        let body = json!({"name": name, "definition": definition});
        self.created(who, "/api/workflows", &body, 201).await
    }

    /// Activates `version` of `workflow` (in the default environment).
    pub async fn activate(&self, who: &Account, workflow: &str, version: u32) -> Result<(), Error> {
        let path = format!("/api/workflows/{workflow}/activate");
        let (status, answer) = self
            .post_in(who, &path, &json!({"version": version}))
            .await?;
        assert_eq!(status, 200, "POST {path}: {answer}");
        Ok(())
    }

    /// A new workflow with its version 1 active.
    pub async fn active_workflow(
        &self,
        who: &Account,
        name: &str,
        definition: &Value,
    ) -> Result<Created, Error> {
        let workflow = self.create_workflow(who, name, definition).await?;
        self.activate(who, &workflow.id, 1).await?;
        Ok(workflow)
    }

    /// Queues a run of `workflow` with `payload` (`202`).
    pub async fn run(
        &self,
        who: &Account,
        workflow: &str,
        payload: &Value,
    ) -> Result<Queued, Error> {
        let path = format!("/api/workflows/{workflow}/run");
        self.created(who, &path, &json!({"payload": payload}), 202)
            .await
    }

    /// A webhook registration (`201`) from `body`.
    pub async fn create_webhook(&self, who: &Account, body: &Value) -> Result<Registration, Error> {
        self.created(who, "/api/webhooks", body, 201).await
    }

    /// An API key (`201`) from `body`.
    pub async fn create_api_key(&self, who: &Account, body: &Value) -> Result<CreatedKey, Error> {
        self.created(who, "/api/settings/api/keys", body, 201).await
    }

    /// A usage alert (`201`) from `body`.
    pub async fn create_alert(&self, who: &Account, body: &Value) -> Result<CreatedAlert, Error> {
        self.created(who, "/api/settings/usage/alerts", body, 201)
            .await
    }
}
