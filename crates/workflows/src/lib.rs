#![doc = include_str!("../README.md")]

pub mod code;
pub mod connectors;
pub mod definition;
pub mod engine;
mod environments;
pub mod error_workflows;
pub mod execution;
pub mod execution_service;
pub mod lease;
pub mod mcp;
pub mod mcp_service;
pub mod model;
pub mod ports;
pub mod registry;
pub mod responses;
pub mod schedule;
pub mod scheduler;
pub mod service;
pub mod start;
pub mod sub_workflows;
pub mod template;
pub mod validate;

pub use definition::{Connection, Definition, Node};
pub use service::{WorkflowError, WorkflowPorts, WorkflowService};
pub use start::{RunStarter, StartPorts, StartRequest, Trigger};
