//! A recording HTTP receiver on loopback for what the platform posts out (webhook alerts,
//! failure notifications, log batches): it keeps each request's body and the headers
//! it is told to, and answers 200, or refuses the first request if asked to.

use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

use super::Error;

/// The Standard Webhooks headers, which every receiver keeps.
const SIGNATURE_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

struct Shared {
    seen: Mutex<Vec<(String, Value)>>,
    headers: Vec<&'static str>,
    refuse_first: bool,
}

/// What a receiver got, kept across restarts on the same port.
#[derive(Clone)]
pub struct WebhookReceiver(Arc<Shared>);

impl WebhookReceiver {
    /// One that keeps the Standard Webhooks headers and the `more` named.
    pub fn new(more: &[&'static str]) -> Self {
        Self(Arc::new(Shared {
            seen: Mutex::default(),
            headers: SIGNATURE_HEADERS.iter().chain(more).copied().collect(),
            refuse_first: false,
        }))
    }

    /// One that refuses the first request with 503 and `Retry-After: 5`.
    pub fn refusing_first() -> Self {
        Self(Arc::new(Shared {
            seen: Mutex::default(),
            headers: SIGNATURE_HEADERS.to_vec(),
            refuse_first: true,
        }))
    }

    /// Serves it on loopback `port` (0: a free one) until the handle stops it; the port
    /// it listens on.
    pub fn serve(&self, port: u16) -> Result<(u16, ServerHandle), Error> {
        let data = web::Data::from(self.0.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .bind(("127.0.0.1", port))?;
        let port = server
            .addrs()
            .first()
            .map(std::net::SocketAddr::port)
            .ok_or("the receiver listens nowhere")?;
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok((port, handle))
    }

    /// What it got so far, in arrival order: each body and its kept headers.
    pub fn seen(&self) -> Result<Vec<(String, Value)>, Error> {
        Ok(self.0.seen.lock().map_err(|_| "a poisoned lock")?.clone())
    }
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let mut headers = serde_json::Map::new();
    for name in &shared.headers {
        if let Some(value) = request.headers().get(*name).and_then(|v| v.to_str().ok()) {
            headers.insert((*name).to_owned(), Value::String(value.to_owned()));
        }
    }
    let Ok(mut seen) = shared.seen.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    seen.push((
        String::from_utf8_lossy(&body).into_owned(),
        Value::Object(headers),
    ));
    if shared.refuse_first && seen.len() == 1 {
        HttpResponse::ServiceUnavailable()
            .insert_header(("retry-after", "5"))
            .finish()
    } else {
        HttpResponse::Ok().finish()
    }
}
