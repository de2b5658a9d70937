//! Outgoing webhooks' AWS-free core: signing and verifying ([`sign`], [`verify`]).

pub mod sign;
pub mod verify;
