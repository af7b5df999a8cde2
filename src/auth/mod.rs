//! Who may do what: API users with bearer tokens, their roles and units,
//! and masking of citizens' personal data. The order lifecycle asks
//! [`Role`] questions; the API turns a token into a [`Principal`].

pub mod cache;
pub mod mask;
pub mod role;
pub mod token;

pub use role::{Principal, Role};
