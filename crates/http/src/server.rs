//! Building the actix application and server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::web::{self, Data, JsonConfig, PathConfig, PayloadConfig, QueryConfig};
use actix_web::{App, HttpServer};
use fluxolab_telemetry::MetricsRegistry;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::console::{self, ConsoleFiles};
use crate::extract::Services;
use crate::json::BodyLimit;
use crate::openapi::{self, OpenApiJson};
use crate::{ApiError, DatabaseProbe, HttpMetrics, observe};

/// How the HTTP server behaves.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// actix worker threads.
    pub workers: usize,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
}

/// What handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub probe: Arc<dyn DatabaseProbe>,
    pub metrics: Data<HttpMetrics>,
    openapi: Data<OpenApiJson>,
    route_methods: Data<RouteMethods>,
    services: Option<Data<Services>>,
    console: Option<Arc<dyn ConsoleFiles>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl ApiState {
    /// State with a fresh metrics registry and the OpenAPI document rendered once.
    pub fn new(probe: Arc<dyn DatabaseProbe>) -> Result<Self, serde_json::Error> {
        let document = openapi::document()?;
        Ok(Self {
            probe,
            metrics: Data::new(HttpMetrics::new(MetricsRegistry::new())),
            openapi: Data::new(OpenApiJson(serde_json::to_string(&document)?)),
            route_methods: Data::new(RouteMethods::of(&document)),
            services: None,
            console: None,
        })
    }

    /// Records into the process's `registry` (shared with the workers, whose execution
    /// metrics it holds) instead of a registry of its own.
    pub fn with_metrics(mut self, registry: Arc<MetricsRegistry>) -> Self {
        self.metrics = Data::new(HttpMetrics::new(registry));
        self
    }

    /// Serves the web console from `files` at `/` (see [`crate::console`]); without
    /// it, `/` answers a page saying how to build the console.
    pub fn with_console(mut self, files: Arc<dyn ConsoleFiles>) -> Self {
        self.console = Some(files);
        self
    }

    /// Adds the use cases the API routes call.
    pub fn with_services(mut self, services: Services) -> Self {
        self.services = Some(Data::new(services));
        self
    }
}

/// The application: routes, extractor limits and error mapping, and the observing
/// middleware. Tests build the same app (and may add routes to it).
pub fn configure_app(
    state: ApiState,
    body_limit: usize,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = body_limit;
    let services = state.services.clone();
    let route_methods = state.route_methods.clone();
    let app = App::new()
        .app_data(
            JsonConfig::default()
                .limit(limit)
                .error_handler(move |error, _| ApiError::from_json(error, limit).into()),
        )
        .app_data(PayloadConfig::new(limit))
        .app_data(
            QueryConfig::default().error_handler(|error, _| ApiError::InvalidQuery(error).into()),
        )
        .app_data(
            PathConfig::default().error_handler(|error, _| ApiError::InvalidPath(error).into()),
        )
        .app_data(BodyLimit(limit))
        .app_data(state.metrics.clone())
        .app_data(state.openapi.clone())
        .app_data(Data::new(state))
        .configure(openapi::routes::<web::ServiceConfig>);
    let app = match services {
        Some(services) => app.app_data(services),
        None => app,
    };
    app.app_data(route_methods)
        .service(SwaggerUi::new("/api/docs/{_:.*}").config(Config::from("/api/openapi.json")))
        .default_service(web::to(no_route))
        // Inside `observe`: its 403s still carry the handler's error, and its audit
        // writes happen in the request's span.
        .wrap(from_fn(crate::api_keys::audit_scope_denials))
        .wrap(from_fn(observe::observe))
}

/// The methods each documented route template takes (from the OpenAPI document, which
/// lists every route), for the `Allow` header of a 405.
#[derive(Debug, Default)]
struct RouteMethods(std::collections::HashMap<String, Vec<&'static str>>);

impl RouteMethods {
    fn of(document: &serde_json::Value) -> Self {
        let Some(paths) = document.get("paths").and_then(serde_json::Value::as_object) else {
            return Self::default();
        };
        Self(
            paths
                .iter()
                .map(|(template, item)| {
                    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
                        .into_iter()
                        .filter(|method| item.get(method.to_ascii_lowercase()).is_some())
                        .collect();
                    (template.clone(), methods)
                })
                .collect(),
        )
    }
}

/// No route took the request: the web console's answer for a `GET` outside the API and
/// ops paths; else `405` with `Allow` when its path is a route's (another method), else
/// `404`.
async fn no_route(
    request: actix_web::HttpRequest,
    routes: Data<RouteMethods>,
    state: Data<ApiState>,
) -> Result<actix_web::HttpResponse, ApiError> {
    if let Some(page) = console::respond(&request, state.console.as_ref()) {
        return Ok(page);
    }
    let allow = request
        .resource_map()
        .match_pattern(request.path())
        .and_then(|template| routes.0.get(&template))
        .filter(|methods| !methods.is_empty());
    Err(match allow {
        Some(methods) => ApiError::MethodNotAllowed {
            allow: methods.clone(),
        },
        None => ApiError::RouteNotFound,
    })
}

/// Binds the server to `listener`. It stops gracefully on SIGTERM/SIGINT, letting
/// in-flight requests finish within the shutdown timeout.
pub fn build_server(
    listener: TcpListener,
    state: ApiState,
    settings: &ServerSettings,
) -> std::io::Result<Server> {
    let body_limit = settings.body_limit;
    Ok(
        HttpServer::new(move || configure_app(state.clone(), body_limit))
            .workers(settings.workers)
            .shutdown_timeout(settings.shutdown_timeout.as_secs())
            .listen(listener)?
            .run(),
    )
}

/// The ops routes alone (`/healthz`, `/readyz`, `/metrics`), for a process that serves
/// no API (`fluxolab worker`); everything else is a 404 problem.
pub fn build_ops_server(
    listener: TcpListener,
    state: ApiState,
    settings: &ServerSettings,
) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.metrics.clone())
            .app_data(Data::new(state.clone()))
            .service(crate::ops::healthz)
            .service(crate::ops::readyz)
            .service(crate::ops::metrics)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::RouteNotFound)
            }))
            .wrap(from_fn(observe::observe))
    })
    .workers(1)
    .shutdown_timeout(settings.shutdown_timeout.as_secs())
    .listen(listener)?
    .run())
}
