//! The `fluxolab` binary's library half: configuration, wiring and the commands, so that
//! tests start the application exactly as `main` does.

pub mod commands;
pub mod config;
pub mod console;
pub mod directory_accounts;
pub mod hasher;
pub mod outbox;
pub mod probe;
pub mod provisioning;
pub mod startup;
pub mod workers;

pub use config::{DatabaseSettings, Settings};
pub use startup::Application;

/// The allocator of every program that runs the application (the binary, the benches,
/// the tests). A request allocates a few dozen buffers and JSON nodes, some over a
/// kilobyte; glibc's allocator spent about a fifth of the server's CPU on them in a
/// profile of the webhook intake.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
