#![doc = include_str!("../README.md")]

pub mod address_policy;
pub mod alerts;
pub mod effects;
pub mod guard;
pub mod tester;

pub use address_policy::{AddressClass, classify};
pub use alerts::OutboundAlerts;
pub use effects::OutboundEffects;
pub use tester::OutboundTester;
