//! Spans reach an OTLP collector: a receiver built from the opentelemetry-proto types
//! listens in-process, the app exports to it, and the test reads the request's span.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::TestResult;
use crate::helpers::{Error, TestApp, wait_for};

#[derive(Default)]
struct Received {
    spans: Vec<(Vec<KeyValue>, Span)>,
}

async fn receive_traces(body: web::Bytes, received: web::Data<Mutex<Received>>) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    if let Ok(mut received) = received.lock() {
        for resource_spans in request.resource_spans {
            // Not a response field: a batch without a resource has no attributes, and
            // the test's lookups of them fail by name.
            let resource = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    received.spans.push((resource.clone(), span));
                }
            }
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value: &AnyValue| value.value.as_ref())
}

fn text(value: Option<&any_value::Value>) -> Option<&str> {
    match value {
        Some(any_value::Value::StringValue(text)) => Some(text),
        _ => None,
    }
}

/// Flushes the exporter and reads what the collector received until `find` finds
/// something there (for up to 30 s).
async fn collected<T>(
    guard: &Arc<fluxolab_telemetry::TelemetryGuard>,
    received: &Mutex<Received>,
    what: &str,
    find: impl Fn(&[(Vec<KeyValue>, Span)]) -> Option<T>,
) -> Result<T, Error> {
    wait_for(what, Duration::from_secs(30), || async {
        let flushing = guard.clone();
        tokio::task::spawn_blocking(move || flushing.flush()).await?;
        Ok(received
            .lock()
            .ok()
            .and_then(|received| find(&received.spans)))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_produces_a_server_span_at_the_collector() -> TestResult {
    let received = web::Data::new(Mutex::new(Received::default()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let collector = format!("http://{}", listener.local_addr()?);
    let server = HttpServer::new({
        let received = received.clone();
        move || {
            App::new()
                .app_data(received.clone())
                .route("/v1/traces", web::post().to(receive_traces))
        }
    })
    .workers(1)
    .listen(listener)?
    .run();
    tokio::spawn(server);

    let guard = Arc::new(fluxolab_telemetry::init(
        &fluxolab_telemetry::TelemetrySettings {
            log_format: fluxolab_telemetry::LogFormat::Json,
            log_filter: "info".to_owned(),
            otlp_endpoint: Some(collector),
            service_name: "fluxolab-otlp-test".to_owned(),
        },
    )?);

    let app = TestApp::spawn().await?;
    let response = app.get("/healthz").await?;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str()?.to_owned();

    let (resource, span) = collected(&guard, &received, "a `GET /healthz` span", |spans| {
        spans
            .iter()
            .find(|(_, span)| span.name == "GET /healthz")
            .cloned()
    })
    .await?;

    assert_eq!(
        text(attribute(&resource, "service.name")),
        Some("fluxolab-otlp-test")
    );
    assert_eq!(
        text(attribute(&span.attributes, "http.request.method")),
        Some("GET")
    );
    assert_eq!(
        text(attribute(&span.attributes, "http.route")),
        Some("/healthz")
    );
    assert_eq!(
        text(attribute(&span.attributes, "request_id")),
        Some(request_id.as_str())
    );
    assert_eq!(
        attribute(&span.attributes, "http.response.status_code"),
        Some(&any_value::Value::IntValue(200))
    );
    // SPAN_KIND_SERVER
    assert_eq!(span.kind, 2);

    // A use case's span sits under its request's, both naming the workspace.
    let owner = app.signed_up("traced@example.com").await?;
    let listed = app
        .get_as(
            &owner.access_token,
            "/api/workflows",
            Some(&owner.workspace_id),
        )
        .await?;
    assert_eq!(listed.status(), 200);
    let members = app
        .get_as(
            &owner.access_token,
            "/api/workspace/members",
            Some(&owner.workspace_id),
        )
        .await?;
    assert_eq!(members.status(), 200);
    let what = "the request's and the use case's spans";
    let (request, use_case, members_request, members_use_case) =
        collected(&guard, &received, what, |spans| {
            let named = |name: &str| {
                spans
                    .iter()
                    .map(|(_, span)| span)
                    .find(|span| span.name == name)
                    .cloned()
            };
            Some((
                named("GET /api/workflows")?,
                named("workflows.list")?,
                named("GET /api/workspace/members")?,
                named("workspaces.members")?,
            ))
        })
        .await?;
    for (request, use_case) in [(&request, &use_case), (&members_request, &members_use_case)] {
        assert_eq!(
            use_case.parent_span_id, request.span_id,
            "{}",
            use_case.name
        );
        assert_eq!(use_case.trace_id, request.trace_id, "{}", use_case.name);
    }
    for span in [&request, &use_case, &members_request, &members_use_case] {
        assert_eq!(
            text(attribute(&span.attributes, "workspace_id")),
            Some(owner.workspace_id.as_str()),
            "{}",
            span.name
        );
    }
    assert_eq!(
        text(attribute(&request.attributes, "principal_kind")),
        Some("user")
    );
    let received = received
        .lock()
        .map_err(|_| "the collector's lock is poisoned")?;
    // Sign-up went through its use case, which names no workspace (it has none yet).
    assert!(
        received
            .spans
            .iter()
            .any(|(_, span)| span.name == "accounts.register")
    );
    // Repository spans are debug-level: the info filter keeps them from the collector.
    let repository_spans: Vec<&str> = received
        .spans
        .iter()
        .map(|(_, span)| span.name.as_str())
        .filter(|name| name.starts_with("db."))
        .collect();
    assert!(repository_spans.is_empty(), "{repository_spans:?}");
    Ok(())
}
