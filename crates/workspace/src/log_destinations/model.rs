//! A log destination as stored, and how its submitted configuration is checked.

use std::collections::BTreeMap;

use fluxolab_kernel::{CredentialId, ValidationErrors, WorkspaceId, plain_http_url};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

fluxolab_kernel::define_id!(
    /// A log destination of a workspace.
    LogDestinationId
);

/// What a destination may receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// The activity log.
    Activities,
    /// The API keys' audit trail (uses, refusals, rotations).
    ApiKeyAudit,
    /// Runs reaching their final state.
    Executions,
    /// Webhook deliveries and their verdicts.
    WebhookEvents,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::Activities,
        EventType::ApiKeyAudit,
        EventType::Executions,
        EventType::WebhookEvents,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            EventType::Activities => "activities",
            EventType::ApiKeyAudit => "api_key_audit",
            EventType::Executions => "executions",
            EventType::WebhookEvents => "webhook_events",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// The kinds of destination, by code.
pub const KINDS: [&str; 2] = ["http", "syslog"];
/// The most headers an HTTP destination sends.
pub const MAX_HEADERS: usize = 20;
/// The longest header value.
pub const MAX_HEADER_VALUE: usize = 4096;
/// Headers FluxoLab sets itself.
pub const RESERVED_HEADERS: [&str; 9] = [
    "content-type",
    "content-length",
    "host",
    "connection",
    "transfer-encoding",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "user-agent",
];
/// A header name: an RFC 9110 token.
pub const HEADER_NAME_PATTERN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$";

/// A header an HTTP destination sends with each batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    /// `None` for a secret header: its value is sealed in the vault.
    pub value: Option<String>,
    pub secret: bool,
}

/// How syslog messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
}

impl Transport {
    pub const fn code(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// Where a destination sends, without its secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationConfig {
    /// JSON batches POSTed to `url`, signed with Standard Webhooks headers.
    Http { url: String, headers: Vec<Header> },
    /// RFC 5424 messages, octet-counted (RFC 6587), over TCP or TLS.
    Syslog {
        host: String,
        port: u16,
        transport: Transport,
        app_name: String,
    },
}

impl DestinationConfig {
    /// `http` or `syslog`.
    pub fn kind(&self) -> &'static str {
        match self {
            DestinationConfig::Http { .. } => KINDS[0],
            DestinationConfig::Syslog { .. } => KINDS[1],
        }
    }

    /// The configuration as stored and shown: a secret header's value is `null`.
    pub fn to_json(&self) -> Value {
        match self {
            DestinationConfig::Http { url, headers } => json!({
                "url": url,
                "headers": headers.iter().map(|header| json!({
                    "name": header.name, "value": header.value, "secret": header.secret,
                })).collect::<Vec<_>>(),
            }),
            DestinationConfig::Syslog {
                host,
                port,
                transport,
                app_name,
            } => json!({
                "host": host, "port": port, "transport": transport.code(), "app_name": app_name,
            }),
        }
    }

    /// Reads a stored configuration back.
    pub fn from_stored(kind: &str, config: &Value) -> Option<Self> {
        let mut errors = ValidationErrors::new();
        let parsed = parse(kind, config, &mut errors).map(|(config, _)| config);
        parsed.filter(|_| errors.is_empty())
    }
}

/// A destination.
#[derive(Clone, Debug, PartialEq)]
pub struct LogDestination {
    pub id: LogDestinationId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    pub config: DestinationConfig,
    /// The sealed values of the secret headers (a JSON object by header name).
    pub secret_headers: Option<CredentialId>,
    /// The `whsec_…` secret an HTTP destination signs with.
    pub signing_secret: Option<CredentialId>,
    /// The secret a rotation replaced, still signing until its expiry.
    pub previous_secret: Option<(CredentialId, OffsetDateTime)>,
    pub status: DestinationStatus,
    /// When the current run of failures began.
    pub failing_since: Option<OffsetDateTime>,
    pub last_delivered_at: Option<OffsetDateTime>,
    pub revision: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl LogDestination {
    /// The outbox destination its events queue under.
    pub fn outbox_destination(&self) -> String {
        outbox_destination(self.id)
    }
}

/// The outbox destination of the log destination `id`.
pub fn outbox_destination(id: LogDestinationId) -> String {
    format!("log:{id}")
}

/// The log destination an outbox destination belongs to.
pub fn destination_of(outbox_destination: &str) -> Option<LogDestinationId> {
    outbox_destination.strip_prefix("log:")?.parse().ok()
}

/// Whether a destination delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationStatus {
    Active,
    /// Deliveries have failed for [`super::FAILING_AFTER`]; the backlog is kept.
    Failing,
}

impl DestinationStatus {
    pub const fn code(self) -> &'static str {
        match self {
            DestinationStatus::Active => "active",
            DestinationStatus::Failing => "failing",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [DestinationStatus::Active, DestinationStatus::Failing]
            .into_iter()
            .find(|status| status.code() == code)
    }
}

/// The submitted secret header values, by name.
pub type SecretValues = BTreeMap<String, String>;

/// Checks `event_types`: at least one, each known; duplicates collapse.
pub fn parse_event_types(raw: &[String], errors: &mut ValidationErrors) -> Vec<EventType> {
    let mut types = Vec::new();
    for code in raw {
        match EventType::from_code(code) {
            Some(kind) if !types.contains(&kind) => types.push(kind),
            Some(_) => {}
            None => errors.add(
                "event_types",
                format!(
                    "`{code}` is not one of activities, api_key_audit, executions, webhook_events"
                ),
            ),
        }
    }
    if raw.is_empty() {
        errors.add("event_types", "must name at least one event type");
    }
    types.sort();
    types
}

/// Checks `config` for a destination of `kind`, naming each problem under `config.*`;
/// returns the configuration and the submitted values of its secret headers (a secret
/// header given without a value keeps its sealed one).
pub fn parse(
    kind: &str,
    config: &Value,
    errors: &mut ValidationErrors,
) -> Option<(DestinationConfig, SecretValues)> {
    let Some(object) = config.as_object() else {
        errors.add("config", "must be an object");
        return None;
    };
    match kind {
        "http" => parse_http(object, errors),
        "syslog" => parse_syslog(object, errors).map(|config| (config, SecretValues::new())),
        _ => None,
    }
}

fn unknown_fields(object: &Map<String, Value>, known: &[&str], errors: &mut ValidationErrors) {
    for name in object.keys().filter(|name| !known.contains(&name.as_str())) {
        errors.add(format!("config.{name}"), "is not a field of this kind");
    }
}

fn parse_http(
    object: &Map<String, Value>,
    errors: &mut ValidationErrors,
) -> Option<(DestinationConfig, SecretValues)> {
    unknown_fields(object, &["url", "headers"], errors);
    let url = match object.get("url") {
        Some(Value::String(url)) if plain_http_url(url, true) => Some(url.clone()),
        None | Some(Value::Null) => {
            errors.add("config.url", "is required");
            None
        }
        Some(_) => {
            errors.add(
                "config.url",
                "must be an http(s) URL without credentials, at most 2048 characters",
            );
            None
        }
    };
    let mut headers = Vec::new();
    let mut secrets = SecretValues::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.len() <= MAX_HEADERS => {
            for (index, item) in list.iter().enumerate() {
                if let Some((header, secret)) = parse_header(index, item, &headers, errors) {
                    if let Some(secret) = secret {
                        secrets.insert(header.name.to_ascii_lowercase(), secret);
                    }
                    headers.push(header);
                }
            }
        }
        Some(_) => errors.add(
            "config.headers",
            format!("must be a list of at most {MAX_HEADERS} headers"),
        ),
    }
    Some((DestinationConfig::Http { url: url?, headers }, secrets))
}

fn parse_header(
    index: usize,
    item: &Value,
    seen: &[Header],
    errors: &mut ValidationErrors,
) -> Option<(Header, Option<String>)> {
    let field = |name: &str| format!("config.headers[{index}].{name}");
    let Some(object) = item.as_object() else {
        errors.add(format!("config.headers[{index}]"), "must be an object");
        return None;
    };
    for name in object
        .keys()
        .filter(|name| !["name", "value", "secret"].contains(&name.as_str()))
    {
        errors.add(field(name), "is not a field of a header");
    }
    let name = object.get("name").and_then(Value::as_str).filter(|name| {
        (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+.^_`|~-".contains(c))
    });
    let Some(name) = name else {
        errors.add(
            field("name"),
            "must be a header name (1 to 64 token characters)",
        );
        return None;
    };
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) {
        errors.add(field("name"), format!("`{name}` is set by FluxoLab"));
        return None;
    }
    if seen
        .iter()
        .any(|header| header.name.eq_ignore_ascii_case(name))
    {
        errors.add(field("name"), format!("`{name}` is given twice"));
        return None;
    }
    let secret = match object.get("secret") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(secret)) => *secret,
        Some(_) => {
            errors.add(field("secret"), "must be true or false");
            return None;
        }
    };
    let value = match object.get("value") {
        None | Some(Value::Null) if secret => None,
        Some(Value::String(value))
            if value.chars().count() <= MAX_HEADER_VALUE
                && !value.chars().any(|c| c.is_ascii_control()) =>
        {
            Some(value.clone())
        }
        _ => {
            errors.add(
                field("value"),
                format!("must be text of at most {MAX_HEADER_VALUE} characters without control characters (a secret header may leave it out to keep its value)"),
            );
            return None;
        }
    };
    let header = Header {
        name: name.to_owned(),
        value: if secret { None } else { value.clone() },
        secret,
    };
    Some((header, if secret { value } else { None }))
}

fn parse_syslog(
    object: &Map<String, Value>,
    errors: &mut ValidationErrors,
) -> Option<DestinationConfig> {
    unknown_fields(object, &["host", "port", "transport", "app_name"], errors);
    let host = match object.get("host") {
        Some(Value::String(host)) if valid_host(host) => Some(host.clone()),
        None | Some(Value::Null) => {
            errors.add("config.host", "is required");
            None
        }
        Some(_) => {
            errors.add("config.host", "must be a host name or an IPv4 address");
            None
        }
    };
    let transport = match object.get("transport").and_then(|value| {
        if value.is_null() {
            Some("tcp")
        } else {
            value.as_str()
        }
    }) {
        None if object.get("transport").is_none() => Some(Transport::Tcp),
        Some("tcp") => Some(Transport::Tcp),
        Some("tls") => Some(Transport::Tls),
        _ => {
            errors.add("config.transport", "must be `tcp` or `tls`");
            None
        }
    };
    let port = match object.get("port") {
        Some(Value::Number(port)) => {
            match port.as_u64().and_then(|port| u16::try_from(port).ok()) {
                Some(port) if port > 0 => Some(port),
                _ => {
                    errors.add("config.port", "must be a port between 1 and 65535");
                    None
                }
            }
        }
        None | Some(Value::Null) => {
            errors.add("config.port", "is required");
            None
        }
        Some(_) => {
            errors.add("config.port", "must be a port between 1 and 65535");
            None
        }
    };
    let app_name = match object.get("app_name") {
        None | Some(Value::Null) => Some("fluxolab".to_owned()),
        Some(Value::String(name))
            if (1..=48).contains(&name.len()) && name.chars().all(|c| c.is_ascii_graphic()) =>
        {
            Some(name.clone())
        }
        Some(_) => {
            errors.add(
                "config.app_name",
                "must be 1 to 48 printable ASCII characters without spaces",
            );
            None
        }
    };
    Some(DestinationConfig::Syslog {
        host: host?,
        port: port?,
        transport: transport?,
        app_name: app_name?,
    })
}

/// A DNS name or an IPv4 address (an IPv6 receiver is reached by a name).
fn valid_host(host: &str) -> bool {
    (1..=253).contains(&host.len())
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &ValidationErrors) -> Vec<String> {
        let mut fields: Vec<String> = errors.errors().iter().map(|e| e.field.clone()).collect();
        fields.sort();
        fields
    }

    #[test]
    fn an_http_config_keeps_secret_values_apart() {
        let mut errors = ValidationErrors::new();
        let (config, secrets) = parse(
            "http",
            &json!({"url": "https://logs.example.com/in", "headers": [
                {"name": "Authorization", "value": "Bearer abc", "secret": true},
                {"name": "X-Team", "value": "ops"},
            ]}),
            &mut errors,
        )
        .expect("a config");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            secrets.get("authorization").map(String::as_str),
            Some("Bearer abc")
        );
        let shown = config.to_json();
        assert_eq!(shown["headers"][0]["value"], Value::Null);
        assert_eq!(shown["headers"][1]["value"], "ops");
        assert_eq!(DestinationConfig::from_stored("http", &shown), Some(config));
    }

    #[test]
    fn bad_configs_name_each_field() {
        let mut errors = ValidationErrors::new();
        parse(
            "http",
            &json!({"url": "ftp://x", "headers": [{"name": "webhook-id", "value": "x"}, {"name": "a b"}], "extra": 1}),
            &mut errors,
        );
        assert_eq!(
            fields(&errors),
            [
                "config.extra",
                "config.headers[0].name",
                "config.headers[1].name",
                "config.url"
            ]
        );
        let mut errors = ValidationErrors::new();
        parse(
            "syslog",
            &json!({"host": "bad host", "port": 70000, "transport": "udp", "app_name": "has space"}),
            &mut errors,
        );
        assert_eq!(
            fields(&errors),
            [
                "config.app_name",
                "config.host",
                "config.port",
                "config.transport"
            ]
        );
    }

    #[test]
    fn a_syslog_config_has_defaults() {
        let mut errors = ValidationErrors::new();
        let (config, _) = parse(
            "syslog",
            &json!({"host": "127.0.0.1", "port": 6514}),
            &mut errors,
        )
        .expect("a config");
        assert_eq!(
            config,
            DestinationConfig::Syslog {
                host: "127.0.0.1".into(),
                port: 6514,
                transport: Transport::Tcp,
                app_name: "fluxolab".into()
            }
        );
    }

    #[test]
    fn event_types_are_checked_and_deduplicated() {
        let mut errors = ValidationErrors::new();
        let types = parse_event_types(
            &[
                "executions".into(),
                "activities".into(),
                "executions".into(),
            ],
            &mut errors,
        );
        assert_eq!(types, [EventType::Activities, EventType::Executions]);
        parse_event_types(&["nope".into()], &mut errors);
        parse_event_types(&[], &mut errors);
        assert_eq!(errors.errors().len(), 2);
    }
}
