#![doc = include_str!("../README.md")]

pub mod model;
pub mod plan;
pub mod ports;
pub mod role;
pub mod service;

pub use plan::{PlanCode, PlanLimits};
pub use role::Role;
pub use service::{WorkspaceError, WorkspacePorts, WorkspaceService};
