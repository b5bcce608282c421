#![doc = include_str!("../README.md")]

pub mod address_policy;
pub mod guard;
pub mod tester;

pub use address_policy::{AddressClass, classify};
pub use tester::OutboundTester;
