#![doc = include_str!("../README.md")]

pub mod alert_delivery;
pub mod alerts;
pub mod api_keys;
pub mod billing;
pub mod default_workspace;
pub mod environments;
pub mod integrations;
pub mod ldap;
pub mod log_destinations;
pub mod model;
pub mod notification_delivery;
pub mod notifications;
pub mod plan;
pub mod ports;
pub mod provisioning;
pub mod quota;
pub mod role;
pub mod secret_providers;
pub mod service;
pub mod settings;
mod settings_rules;
pub mod sso;

pub use billing::{BillingError, BillingPorts, BillingService};
pub use plan::{PlanCode, PlanLimits};
pub use provisioning::{Provisioner, ProvisioningError, ProvisioningPlan};
pub use role::Role;
pub use service::{WorkspaceError, WorkspacePorts, WorkspaceService};
