#![doc = include_str!("../README.md")]

pub mod plan;
pub mod role;

pub use plan::{PlanCode, PlanLimits};
pub use role::Role;
