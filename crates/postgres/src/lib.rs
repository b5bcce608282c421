#![doc = include_str!("../README.md")]

pub mod accounts;
pub mod activity_log;
pub mod alerts;
pub mod api_keys;
pub mod auth_cache;
pub mod billing;
mod claims;
mod completions;
pub mod connectors;
pub mod conversations;
pub mod environments;
pub mod error;
pub mod executions;
mod group_commit;
pub mod intake_batch;
pub mod integrations;
mod joins;
mod keyset;
pub mod ldap;
pub mod log_destinations;
pub mod mcp;
pub mod migrations;
pub mod notifications;
pub mod outbox;
pub mod plans;
pub mod pool;
pub mod readiness;
mod repository;
pub mod run_queue;
pub mod schedules;
/// The Diesel schema, generated from `migrations/` by `cargo xtask schema` (never edited
/// by hand; CI's `cargo xtask schema --check` compares). Hand-written joins: `joins.rs`.
pub mod schema;
pub mod secret_providers;
pub mod seed;
pub mod settings;
pub mod signals;
mod sql;
pub mod sso;
pub mod sub_workflows;
#[cfg(feature = "testing")]
pub mod test_db;
pub mod unit_of_work;
pub mod vault;
pub mod webhook_events;
pub mod webhooks;
pub mod workflows;
pub mod workspaces;

pub use error::StoreError;
pub use pool::{DbPool, PoolSettings, connect_pool};
#[cfg(feature = "testing")]
pub use test_db::TestDb;
