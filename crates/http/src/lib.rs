#![doc = include_str!("../README.md")]

pub mod alerts;
pub mod api_error;
pub mod api_keys;
pub mod auth;
pub mod conversations;
pub mod credentials;
pub mod environments;
pub mod errors;
pub mod executions;
pub mod extract;
pub mod intake;
pub mod integrations;
pub mod json;
pub mod mcp;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod openapi_complete;
pub mod ops;
mod path_id;
pub mod probe;
pub mod problem;
pub mod secret_providers;
pub mod server;
pub mod settings;
pub mod users;
pub mod webhooks;
pub mod workflows;
pub mod workspace_settings;
pub mod workspaces;

pub use api_error::ApiError;
pub use extract::Services;
pub use metrics::HttpMetrics;
pub use probe::{DatabaseProbe, PoolStatus, QueueStatus};
pub use problem::{Problem, ProblemCode};
pub use server::{ApiState, ServerSettings, build_ops_server, build_server, configure_app};
