//! Integration tests of the Postgres adapter against a real server (see `TestDb`).

mod intake_batch;
mod migrations;
mod plan_guard;
mod provisioning;
mod seed;
mod start_contract;
mod test_db;
mod units;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
