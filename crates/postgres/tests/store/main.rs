//! Integration tests of the Postgres adapter against a real server (see `TestDb`).

mod auth_cache;
mod auth_notifications;
mod intake_batch;
mod migrations;
mod outbox;
mod plan_guard;
mod provisioning;
mod seed;
mod start_contract;
mod test_db;
mod units;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
