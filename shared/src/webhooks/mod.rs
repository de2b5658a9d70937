//! Outgoing webhooks' AWS-free core: signing and verifying ([`sign`], [`verify`]), payload
//! templates ([`template`]) and what a delivery log may keep ([`redact`]).

pub mod redact;
pub mod sign;
pub mod template;
pub mod verify;
