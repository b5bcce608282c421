#![doc = include_str!("../README.md")]

pub mod intake;
pub mod model;
pub mod overview;
pub mod ports;
pub mod service;
pub mod signature;
pub mod whatsapp;

#[cfg(test)]
mod test_support;

pub use intake::{Delivery, Intake, IntakeError, IntakeSettings, Received};
pub use service::{WebhookError, WebhookPorts, WebhookService};
pub use signature::{SignatureVerdict, verify_hub_signature};
