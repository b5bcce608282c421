//! The `fluxolab` binary's library half: configuration, wiring and the commands, so that
//! tests start the application exactly as `main` does.

pub mod commands;
pub mod config;
pub mod hasher;
pub mod probe;
pub mod startup;
pub mod workers;

pub use config::{DatabaseSettings, Settings};
pub use startup::Application;
