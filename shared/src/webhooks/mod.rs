//! Webhooks' AWS-free core: signing outgoing deliveries and verifying them ([`sign`], [`verify`]),
//! verifying incoming webhooks of every scheme ([`inbound`]), payload templates ([`template`]) and
//! what a delivery log may keep ([`redact`]).

pub mod inbound;
pub mod redact;
pub mod sign;
pub mod template;
pub mod verify;
