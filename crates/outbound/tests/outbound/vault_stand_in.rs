//! A stand-in for HashiCorp Vault / OpenBao. **This is not a real Vault**: no Vault or
//! OpenBao server is installable from the registries the project reaches, so this
//! in-test HTTP server follows the documented API of the endpoints the client uses —
//! KV v2 read (`GET /v1/{mount}/data/{path}`), KV v2 metadata list (`LIST` or
//! `GET ?list=true` on `/v1/{mount}/metadata/{path}`), AppRole login
//! (`POST /v1/auth/approle/login`) — with their status codes, `{"errors": [...]}`
//! bodies, `X-Vault-Token` and `X-Vault-Namespace` headers, and `auth.lease_duration`.
//! Tokens expire on the clock the test moves.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::http::{Method, StatusCode};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use fluxolab_kernel::{Clock, ManualClock};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::TestError;

/// An AppRole the stand-in accepts.
pub const ROLE_ID: &str = "7f1c2d4e-role-b4d6";
pub const SECRET_ID: &str = "s3cr3t-1d-9a8b7c";
/// A token the stand-in accepts from the start (as `vault token create` would give).
pub const ROOT_TOKEN: &str = "hvs.r00t-t0ken-CAESIJ";

/// A secret's place: (namespace, mount, path).
type Place = (String, String, String);

#[derive(Default)]
struct State {
    /// Each secret's fields and version.
    secrets: BTreeMap<Place, (Map<String, Value>, u64)>,
    /// token → expiry (`None`: never).
    tokens: HashMap<String, Option<OffsetDateTime>>,
    logins: usize,
    issued: usize,
    namespaces_seen: Vec<Option<String>>,
}

/// The running stand-in.
pub struct VaultStandIn {
    address: String,
    state: Arc<Mutex<State>>,
}

struct Shared {
    state: Arc<Mutex<State>>,
    clock: Arc<ManualClock>,
    /// The `lease_duration` of AppRole tokens, in seconds.
    lease_seconds: i64,
    /// Not Vault: errors quote the credentials sent, to prove the client scrubs them.
    echo_credentials: bool,
}

impl VaultStandIn {
    /// Starts on a free loopback port with AppRole tokens leased for `lease_seconds`.
    pub fn start(clock: Arc<ManualClock>, lease_seconds: i64) -> Result<Self, TestError> {
        Self::start_with(clock, lease_seconds, false)
    }

    /// As [`start`](Self::start), but quoting the presented credentials in error
    /// answers (no Vault does this; a proxy in front of one might).
    pub fn start_echoing(clock: Arc<ManualClock>) -> Result<Self, TestError> {
        Self::start_with(clock, 60, true)
    }

    fn start_with(
        clock: Arc<ManualClock>,
        lease_seconds: i64,
        echo_credentials: bool,
    ) -> Result<Self, TestError> {
        let state = Arc::new(Mutex::new(State::default()));
        lock(&state)?.tokens.insert(ROOT_TOKEN.to_owned(), None);
        let shared = web::Data::new(Shared {
            state: Arc::clone(&state),
            clock,
            lease_seconds,
            echo_credentials,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = format!("http://{}", listener.local_addr()?);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(handle))
        })
        .workers(1)
        .listen(listener)?
        .run();
        tokio::spawn(server);
        Ok(Self { address, state })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Writes a new version of `path` in `mount` (namespace `""` is the root one).
    pub fn put(
        &self,
        namespace: &str,
        mount: &str,
        path: &str,
        data: Value,
    ) -> Result<(), TestError> {
        let Value::Object(fields) = data else {
            return Err("KV data is an object".into());
        };
        let mut state = lock(&self.state)?;
        let key = (namespace.to_owned(), mount.to_owned(), path.to_owned());
        let version = state.secrets.get(&key).map_or(0, |(_, version)| *version) + 1;
        state.secrets.insert(key, (fields, version));
        Ok(())
    }

    /// How many AppRole logins succeeded.
    pub fn logins(&self) -> Result<usize, TestError> {
        Ok(lock(&self.state)?.logins)
    }

    /// The `X-Vault-Namespace` of every request so far.
    pub fn namespaces_seen(&self) -> Result<Vec<Option<String>>, TestError> {
        Ok(lock(&self.state)?.namespaces_seen.clone())
    }

    /// Revokes every AppRole token (as `vault token revoke` or a restart of a dev server
    /// would), keeping the root token.
    pub fn revoke_login_tokens(&self) -> Result<(), TestError> {
        lock(&self.state)?
            .tokens
            .retain(|token, _| token == ROOT_TOKEN);
        Ok(())
    }
}

fn lock(state: &Mutex<State>) -> Result<MutexGuard<'_, State>, TestError> {
    state.lock().map_err(|_| "stand-in state poisoned".into())
}

fn errors(status: StatusCode, errors: &[String]) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "errors": errors }))
}

/// The envelope every Vault answer has.
fn answer(data: &Value, auth: &Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "request_id": "0d4e1c7a-stand-in",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": auth,
    }))
}

async fn handle(request: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let Ok(mut state) = shared.state.lock() else {
        return errors(StatusCode::INTERNAL_SERVER_ERROR, &["poisoned".to_owned()]);
    };
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let namespace = header("X-Vault-Namespace");
    state.namespaces_seen.push(namespace.clone());
    let path = request.path().to_owned();
    let Some(route) = path.strip_prefix("/v1/") else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    if route == "auth/approle/login" && request.method() == Method::POST {
        let given: Value = serde_json::from_slice(&body).unwrap_or_default();
        let (role_id, secret_id) = (given["role_id"].as_str(), given["secret_id"].as_str());
        if role_id != Some(ROLE_ID) || secret_id != Some(SECRET_ID) {
            let mut message = "invalid role or secret ID".to_owned();
            if shared.echo_credentials {
                message = format!(
                    "{message}: {}/{}",
                    role_id.unwrap_or(""),
                    secret_id.unwrap_or("")
                );
            }
            return errors(StatusCode::BAD_REQUEST, &[message]);
        }
        state.issued += 1;
        state.logins += 1;
        let token = format!("hvs.CAESIapprole-{}", state.issued);
        let now = shared.clock.now();
        let expiry =
            (shared.lease_seconds > 0).then(|| now + time::Duration::seconds(shared.lease_seconds));
        state.tokens.insert(token.clone(), expiry);
        let auth = json!({
            "client_token": token,
            "accessor": format!("accessor-{}", state.issued),
            "policies": ["default", "reader"],
            "token_policies": ["default", "reader"],
            "metadata": { "role_name": "fluxolab" },
            "lease_duration": shared.lease_seconds,
            "renewable": true,
            "entity_id": "",
            "token_type": "service",
            "orphan": true,
        });
        return answer(&Value::Null, &auth);
    }
    let token = header("X-Vault-Token").unwrap_or_default();
    let now = shared.clock.now();
    let valid = state
        .tokens
        .get(&token)
        .is_some_and(|expiry| expiry.is_none_or(|at| now < at));
    if !valid {
        let mut message = "permission denied".to_owned();
        if shared.echo_credentials {
            message = format!("{message} for token {token}");
        }
        return errors(StatusCode::FORBIDDEN, &[message]);
    }
    let namespace = namespace.unwrap_or_default();
    let listing = request.method().as_str() == "LIST"
        || (request.method() == Method::GET && request.query_string().contains("list=true"));
    if let Some((mount, rest)) = route.split_once("/data/")
        && request.method() == Method::GET
        && !listing
    {
        let key = (namespace, mount.to_owned(), rest.to_owned());
        return match state.secrets.get(&key) {
            Some((fields, version)) => answer(
                &json!({
                    "data": fields,
                    "metadata": {
                        "created_time": "2026-12-06T15:00:00.000000000Z",
                        "custom_metadata": null,
                        "deletion_time": "",
                        "destroyed": false,
                        "version": version,
                    },
                }),
                &Value::Null,
            ),
            None => errors(StatusCode::NOT_FOUND, &[]),
        };
    }
    if let Some((mount, prefix)) = route.split_once("/metadata/")
        && listing
    {
        let mut keys: Vec<String> = state
            .secrets
            .keys()
            .filter(|(ns, m, _)| *ns == namespace && m == mount)
            .filter_map(|(_, _, path)| path.strip_prefix(prefix))
            .map(|rest| match rest.split_once('/') {
                Some((folder, _)) => format!("{folder}/"),
                None => rest.to_owned(),
            })
            .collect();
        keys.dedup();
        return if keys.is_empty() {
            errors(StatusCode::NOT_FOUND, &[])
        } else {
            answer(&json!({ "keys": keys }), &Value::Null)
        };
    }
    errors(
        StatusCode::NOT_FOUND,
        &[format!(
            "no handler for route \"{route}\". route entry not found."
        )],
    )
}
