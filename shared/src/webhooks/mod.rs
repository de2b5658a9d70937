//! Outgoing webhooks' AWS-free core: signing and verifying ([`sign`], [`verify`]) and payload
//! templates ([`template`]).

pub mod sign;
pub mod template;
pub mod verify;
