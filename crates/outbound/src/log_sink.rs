//! Log destinations' receivers: JSON batches POSTed over HTTP, and syslog — RFC 5424
//! messages with octet-counting framing (RFC 6587) over TCP or TLS — both behind the
//! SSRF guard of the workspace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fluxolab_credentials::ports::NetworkPolicy;
use fluxolab_kernel::WorkspaceId;
use fluxolab_workspace::log_destinations::{
    LogSink, SinkAnswer, SyslogMessage, SyslogTarget, Transport,
};
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::guard::allowed_addresses;
use crate::webhook_post::{elapsed_ms, post_json};

/// How long connecting and sending one batch of syslog messages may take.
const SYSLOG_TIMEOUT: Duration = Duration::from_secs(10);
/// The private enterprise number of the structured data (`fluxolab@32473`: 32473 is
/// the number RFC 5612 reserves for documentation).
const SD_ID: &str = "fluxolab@32473";
/// Facility `local0` (16), as every message's facility.
const FACILITY: u8 = 16;

/// The production [`LogSink`].
pub struct OutboundLogSink {
    pub network: Arc<dyn NetworkPolicy>,
    /// The host name messages carry.
    pub hostname: String,
}

impl std::fmt::Debug for OutboundLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundLogSink")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl LogSink for OutboundLogSink {
    async fn post(
        &self,
        workspace: WorkspaceId,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> SinkAnswer {
        let allow_internal = match self.network.allows_internal(workspace).await {
            Ok(allow) => allow,
            Err(error) => return SinkAnswer::refused(error.to_string()),
        };
        let posted = post_json(allow_internal, url, &headers, body).await;
        SinkAnswer {
            status_code: posted.status_code,
            latency_ms: posted.latency_ms,
            result: posted.result,
        }
    }

    async fn syslog(
        &self,
        workspace: WorkspaceId,
        target: &SyslogTarget,
        messages: &[SyslogMessage],
    ) -> SinkAnswer {
        let started = Instant::now();
        let allow_internal = match self.network.allows_internal(workspace).await {
            Ok(allow) => allow,
            Err(error) => return SinkAnswer::refused(error.to_string()),
        };
        let mut frames = Vec::new();
        for message in messages {
            frames.extend(frame(&format_message(
                &self.hostname,
                &target.app_name,
                message,
            )));
        }
        let sent = tokio::time::timeout(SYSLOG_TIMEOUT, send(target, allow_internal, &frames))
            .await
            .unwrap_or_else(|_| {
                Err("the syslog receiver did not take the messages within 10 s".into())
            });
        SinkAnswer {
            status_code: None,
            latency_ms: elapsed_ms(started),
            result: sent.map_err(fluxolab_kernel::outbox::AttemptFailure::new),
        }
    }
}

/// Connects to `target` (an allowed address), over TLS when asked, and writes `frames`.
async fn send(target: &SyslogTarget, allow_internal: bool, frames: &[u8]) -> Result<(), String> {
    let addresses = allowed_addresses(&target.host, target.port, allow_internal)
        .await
        .map_err(|error| format!("refused: {error}"))?;
    let stream = TcpStream::connect(addresses.as_slice())
        .await
        .map_err(|error| {
            format!(
                "could not connect to {}:{}: {error}",
                target.host, target.port
            )
        })?;
    match target.transport {
        Transport::Tcp => write_all(stream, frames).await,
        Transport::Tls => {
            let connector = tls_connector()?;
            let name = rustls_pki_types::ServerName::try_from(target.host.clone())
                .map_err(|error| format!("not a TLS server name: {error}"))?;
            let stream = connector
                .connect(name, stream)
                .await
                .map_err(|error| format!("TLS handshake failed: {error}"))?;
            write_all(stream, frames).await
        }
    }
}

async fn write_all(mut stream: impl AsyncWrite + Unpin, frames: &[u8]) -> Result<(), String> {
    stream
        .write_all(frames)
        .await
        .map_err(|error| format!("sending failed: {error}"))?;
    stream
        .shutdown()
        .await
        .map_err(|error| format!("closing failed: {error}"))
}

/// A TLS client trusting the public web PKI roots (webpki-roots, no system store).
fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| error.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [SD] MSG`.
pub fn format_message(hostname: &str, app_name: &str, message: &SyslogMessage) -> String {
    let priority = u16::from(FACILITY) * 8 + u16::from(message.severity.min(7));
    let timestamp = message
        .timestamp
        .format(&Rfc3339)
        .unwrap_or_else(|_| "-".to_owned());
    let msg_id = header_field(&message.event_type, 32);
    format!(
        "<{priority}>1 {timestamp} {} {} - {msg_id} [{SD_ID} workspace_id=\"{}\" event_type=\"{}\"] {}",
        header_field(hostname, 255),
        header_field(app_name, 48),
        param_value(&message.workspace_id),
        param_value(&message.event_type),
        message.message,
    )
}

/// A header field: printable ASCII without spaces, at most `max` characters, `-` when
/// empty.
fn header_field(value: &str, max: usize) -> String {
    let cleaned: String = value
        .chars()
        .filter(char::is_ascii_graphic)
        .take(max)
        .collect();
    if cleaned.is_empty() {
        "-".to_owned()
    } else {
        cleaned
    }
}

/// A structured-data parameter value with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn param_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Octet-counting framing (RFC 6587 §3.4.1): `LEN SP MSG`.
pub fn frame(message: &str) -> Vec<u8> {
    format!("{} {message}", message.len()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    #[test]
    fn a_message_is_rfc5424_and_octet_counted() {
        let message = SyslogMessage {
            timestamp: OffsetDateTime::UNIX_EPOCH,
            severity: 4,
            event_type: "executions".into(),
            workspace_id: "w\"1]".into(),
            message: r#"{"status":"failed"}"#.into(),
        };
        let text = format_message("host one", "fluxolab", &message);
        assert_eq!(
            text,
            "<132>1 1970-01-01T00:00:00Z hostone fluxolab - executions \
             [fluxolab@32473 workspace_id=\"w\\\"1\\]\" event_type=\"executions\"] {\"status\":\"failed\"}"
        );
        let framed = frame("héllo");
        assert_eq!(
            framed,
            b"6 h\xc3\xa9llo".to_vec(),
            "the length counts octets"
        );
    }
}
