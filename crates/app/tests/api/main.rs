//! End-to-end tests: the real application on a free port, against a real Postgres,
//! spoken to over HTTP as a client would.

mod alerts;
mod api_keys;
mod architecture;
mod auth;
mod auth_cache;
mod binary;
mod code_node;
mod connectors;
mod console;
mod credential_tests;
mod credentials;
mod environments;
mod execution_defaults;
mod executions;
mod faults;
mod helpers;
mod ldap;
mod log_destinations;
mod mcp;
mod notifications;
mod openapi;
mod ops;
mod otlp;
mod outage;
mod plans;
mod provisioning;
mod queue;
mod redaction;
mod round_trips;
mod schedules;
mod secret_providers;
mod sso;
mod standard_webhooks;
mod sub_workflows;
mod users;
mod webhooks;
mod workflows;
mod workspace_settings;
mod workspaces;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
