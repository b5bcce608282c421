#![doc = include_str!("../README.md")]

pub mod account;
pub mod email;
pub mod external;
pub mod password;
pub mod ports;
pub mod service;
pub mod session_token;
pub mod sso;
pub mod tokens;

pub use account::{
    ClientInfo, DisplayName, Membership, NewSession, NewUser, SecurityOverview, Session,
    SessionFamilyId, SessionId, SignInMethod, User, UserSettings,
};
pub use email::{EmailAddress, InvalidEmail};
pub use password::{PasswordHash, PasswordPolicyError};
pub use service::{AccountError, AccountPorts, AccountService, Registration, TokenPair};
pub use tokens::{AccessClaims, TokenIssuer, TokenSettings};
