//! HashiCorp Vault / OpenBao, KV version 2: `GET /v1/{mount}/data/{path}` with a token,
//! given or obtained by AppRole login (`POST /v1/auth/approle/login`). A login token is
//! kept per provider revision and replaced once two thirds of its lease have passed, or
//! at once when the store refuses it (a 403, retried once).

use std::collections::HashMap;
use std::sync::Mutex;

use fluxolab_kernel::{
    ExposeSecret, SecretString, StoreConnection, StoreFailure, StoreKind, VaultAuth,
};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Probed, Reply, SecretStores, parse_endpoint, quote, send};

/// Login tokens by provider, each with the revision it was obtained for.
#[derive(Default)]
pub(super) struct TokenCache(Mutex<HashMap<Uuid, Login>>);

#[derive(Clone)]
struct Login {
    revision: i64,
    token: SecretString,
    /// When to log in again; `None` for a token without expiry (`lease_duration: 0`).
    renew_at: Option<OffsetDateTime>,
}

impl TokenCache {
    fn get(&self, provider: Uuid, revision: i64, now: OffsetDateTime) -> Option<SecretString> {
        let logins = self.0.lock().ok()?;
        logins
            .get(&provider)
            .filter(|login| login.revision == revision)
            .filter(|login| login.renew_at.is_none_or(|at| now < at))
            .map(|login| login.token.clone())
    }

    fn put(&self, provider: Uuid, login: Login) {
        if let Ok(mut logins) = self.0.lock() {
            logins.insert(provider, login);
        }
    }

    fn forget(&self, provider: Uuid) {
        if let Ok(mut logins) = self.0.lock() {
            logins.remove(&provider);
        }
    }
}

/// A KV entry's fields, each value kept secret.
pub(super) struct Entry {
    path: String,
    fields: Vec<(String, SecretString)>,
    /// All the fields as one JSON object.
    whole: SecretString,
}

impl Entry {
    /// The only field's value, or the whole entry as JSON text.
    pub(super) fn whole(self) -> SecretString {
        match <[_; 1]>::try_from(self.fields) {
            Ok([(_, value)]) => value,
            Err(_) => self.whole,
        }
    }

    /// Field `key`; without a key, the only field (several fields need a key).
    pub(super) fn pick(self, key: Option<&str>) -> Result<SecretString, StoreFailure> {
        let path = self.path;
        match key {
            Some(key) => self
                .fields
                .into_iter()
                .find_map(|(name, value)| (name == key).then_some(value))
                .ok_or_else(|| {
                    StoreFailure::NotFound(format!("key `{key}` is not in secret `{path}`"))
                }),
            None => match <[_; 1]>::try_from(self.fields) {
                Ok([(_, value)]) => Ok(value),
                Err(fields) if fields.is_empty() => Err(StoreFailure::NotFound(format!(
                    "secret `{path}` has no fields"
                ))),
                Err(fields) => {
                    let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
                    Err(StoreFailure::NotFound(format!(
                        "secret `{path}` has {} fields ({}): name one as the key",
                        names.len(),
                        names.join(", ")
                    )))
                }
            },
        }
    }
}

/// One provider's address, mount and credentials.
struct Vault<'a> {
    connection: &'a StoreConnection,
    base: url::Url,
    mount: Vec<&'a str>,
    namespace: Option<HeaderValue>,
    auth: &'a VaultAuth,
}

/// `text` as path segments: no empty, `.` or `..` segment.
fn segments<'t>(what: &str, text: &'t str) -> Result<Vec<&'t str>, StoreFailure> {
    let trimmed = text.trim().trim_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    if trimmed.is_empty() || parts.iter().any(|part| matches!(*part, "" | "." | "..")) {
        return Err(StoreFailure::Failed(format!(
            "{what} `{text}` is not a valid path"
        )));
    }
    Ok(parts)
}

/// The `errors` of a Vault error answer, joined and scrubbed of `credentials`.
fn errors_of(reply: &Reply, credentials: &[&SecretString], plain: &[&str]) -> String {
    let errors = serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|body| body.get("errors").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let text: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
    quote(&text.join("; "), credentials, plain)
}

impl<'a> Vault<'a> {
    fn of(connection: &'a StoreConnection) -> Result<Self, StoreFailure> {
        let StoreKind::Vault {
            address,
            mount,
            namespace,
            auth,
        } = &connection.kind
        else {
            return Err(StoreFailure::Failed("not a Vault provider".to_owned()));
        };
        let namespace = match namespace.as_deref().map(str::trim) {
            Some(given) if !given.is_empty() => {
                Some(HeaderValue::from_str(given).map_err(|_| {
                    StoreFailure::Failed("namespace is not a valid header value".to_owned())
                })?)
            }
            _ => None,
        };
        Ok(Self {
            connection,
            base: parse_endpoint("address", address)?,
            mount: segments("mount", mount)?,
            namespace,
            auth,
        })
    }

    fn mount_name(&self) -> String {
        self.mount.join("/")
    }

    /// `{address}/v1/` followed by `parts`.
    fn url<'p>(&self, parts: impl IntoIterator<Item = &'p str>) -> Result<url::Url, StoreFailure> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| StoreFailure::Failed("address cannot take a path".to_owned()))?
            .pop_if_empty()
            .push("v1")
            .extend(parts);
        Ok(url)
    }

    /// The credentials, for scrubbing the store's error text.
    fn credentials(&self) -> (Vec<&SecretString>, Vec<&str>) {
        match self.auth {
            VaultAuth::Token(token) => (vec![token], vec![]),
            VaultAuth::AppRole { role_id, secret_id } => (vec![secret_id], vec![role_id.as_str()]),
        }
    }

    fn errors(&self, reply: &Reply) -> String {
        let (credentials, plain) = self.credentials();
        errors_of(reply, &credentials, &plain)
    }

    /// A token to send and whether it was just obtained (a fresh login is not retried).
    async fn token(&self, stores: &SecretStores) -> Result<(SecretString, bool), StoreFailure> {
        let (role_id, secret_id) = match self.auth {
            VaultAuth::Token(token) => return Ok((token.clone(), false)),
            VaultAuth::AppRole { role_id, secret_id } => (role_id, secret_id),
        };
        let provider = self.connection.provider_id;
        let revision = self.connection.revision;
        if let Some(token) = stores.tokens.get(provider, revision, stores.clock.now()) {
            return Ok((token, false));
        }
        let login = self.login(stores, role_id, secret_id).await?;
        let token = login.token.clone();
        stores.tokens.put(provider, login);
        Ok((token, true))
    }

    async fn login(
        &self,
        stores: &SecretStores,
        role_id: &str,
        secret_id: &SecretString,
    ) -> Result<Login, StoreFailure> {
        let url = self.url(["auth", "approle", "login"])?;
        let body = json!({ "role_id": role_id, "secret_id": secret_id.expose_secret() });
        let mut request = stores.client(self.connection).post(url.clone()).json(&body);
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace.clone());
        }
        let issued = stores.clock.now();
        let reply = send(&url, self.connection.allow_internal_network, request).await?;
        let status = reply.status;
        if matches!(status.as_u16(), 400 | 401 | 403) {
            return Err(StoreFailure::Unauthenticated(format!(
                "AppRole login refused: HTTP {}: {}",
                status.as_u16(),
                self.errors(&reply)
            )));
        }
        if !status.is_success() {
            return Err(StoreFailure::Failed(format!(
                "AppRole login: HTTP {}: {}",
                status.as_u16(),
                self.errors(&reply)
            )));
        }
        let answer: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        let auth = &answer["auth"];
        let token = auth["client_token"]
            .as_str()
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                StoreFailure::Failed("AppRole login: no auth.client_token".to_owned())
            })?;
        let lease = auth["lease_duration"].as_i64().unwrap_or(0);
        tracing::debug!(lease_seconds = lease, "logged in to Vault with AppRole");
        Ok(Login {
            revision: self.connection.revision,
            token: SecretString::from(token.to_owned()),
            renew_at: (lease > 0).then(|| issued + time::Duration::seconds(lease * 2 / 3)),
        })
    }

    /// `GET url` with the token; an AppRole token refused with a 403 is replaced by a
    /// new login, once.
    async fn get(&self, stores: &SecretStores, url: &url::Url) -> Result<Reply, StoreFailure> {
        let (token, fresh) = self.token(stores).await?;
        let reply = self.get_with(stores, url, &token).await?;
        let app_role = matches!(self.auth, VaultAuth::AppRole { .. });
        if reply.status != StatusCode::FORBIDDEN || !app_role || fresh {
            return Ok(reply);
        }
        tracing::debug!("Vault refused the AppRole token; logging in again");
        stores.tokens.forget(self.connection.provider_id);
        let (token, _) = self.token(stores).await?;
        self.get_with(stores, url, &token).await
    }

    async fn get_with(
        &self,
        stores: &SecretStores,
        url: &url::Url,
        token: &SecretString,
    ) -> Result<Reply, StoreFailure> {
        let mut header = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
            StoreFailure::Failed("the token is not a valid header value".to_owned())
        })?;
        header.set_sensitive(true);
        let mut request = stores
            .client(self.connection)
            .get(url.clone())
            .header("X-Vault-Token", header);
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace.clone());
        }
        send(url, self.connection.allow_internal_network, request).await
    }

    /// A failure for an error answer about `what`.
    fn failure(&self, reply: &Reply, what: &str) -> StoreFailure {
        let status = reply.status.as_u16();
        let errors = self.errors(reply);
        let label = if errors.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {errors}")
        };
        match status {
            404 => StoreFailure::NotFound(format!("{what} ({label})")),
            401 | 403 => StoreFailure::Unauthenticated(label),
            _ => StoreFailure::Failed(label),
        }
    }
}

/// The KV v2 entry at `name` (its current version).
pub(super) async fn read(
    stores: &SecretStores,
    connection: &StoreConnection,
    name: &str,
) -> Result<Entry, StoreFailure> {
    let vault = Vault::of(connection)?;
    let path = segments("secret path", name)?;
    let url = vault.url(vault.mount.iter().copied().chain(["data"]).chain(path))?;
    let what = format!("secret `{name}` in mount `{}`", vault.mount_name());
    let reply = vault.get(stores, &url).await?;
    if !reply.status.is_success() {
        return Err(vault.failure(&reply, &what));
    }
    let mut answer: Value = serde_json::from_slice(&reply.body).map_err(|_| {
        StoreFailure::Failed(format!("HTTP {}: the answer is not JSON", reply.status))
    })?;
    let Value::Object(data) = answer["data"]["data"].take() else {
        return Err(StoreFailure::NotFound(format!(
            "{what} (no data: deleted?)"
        )));
    };
    Ok(entry(name, data))
}

fn entry(name: &str, data: Map<String, Value>) -> Entry {
    let whole = SecretString::from(Value::Object(data.clone()).to_string());
    let fields = data
        .into_iter()
        .map(|(field, value)| {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (field, SecretString::from(text))
        })
        .collect();
    Entry {
        path: name.to_owned(),
        fields,
        whole,
    }
}

/// Reads the probe path, or lists the mount's keys (`GET …/metadata/?list=true`).
pub(super) async fn probe(
    stores: &SecretStores,
    connection: &StoreConnection,
    probe_name: Option<&str>,
) -> Result<String, Probed> {
    let vault = Vault::of(connection).map_err(Probed::Invalid)?;
    let mount = vault.mount_name();
    if let Some(name) = probe_name {
        segments("probe path", name).map_err(Probed::Invalid)?;
        read(stores, connection, name)
            .await
            .map_err(Probed::Failed)?;
        return Ok(format!(
            "read `{name}` in mount `{mount}` (value not shown)"
        ));
    }
    let mut url = vault
        .url(vault.mount.iter().copied().chain(["metadata", ""]))
        .map_err(Probed::Invalid)?;
    url.set_query(Some("list=true"));
    let reply = vault.get(stores, &url).await.map_err(Probed::Failed)?;
    match reply.status.as_u16() {
        200..=299 => {
            let answer: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            let keys = answer["data"]["keys"].as_array().map_or(0, Vec::len);
            Ok(format!("listed mount `{mount}` ({keys} key(s))"))
        }
        // Vault answers an empty list with a 404 and no errors.
        404 if vault.errors(&reply).is_empty() => Ok(format!("listed mount `{mount}` (empty)")),
        _ => Err(Probed::Failed(
            vault.failure(&reply, &format!("mount `{mount}`")),
        )),
    }
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
