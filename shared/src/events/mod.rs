//! Events: what the hub tells a tenant's own systems through outgoing webhooks.
//!
//! - [`EventType`] ([`kind`]): `<entityType>.<event>`, parsed from text.
//! - [`Triggers`] ([`triggers`]): an outgoing webhook's `[{entityType, events}]` and their matching.

pub mod kind;
pub mod triggers;

pub use kind::{EntityName, EventType, RecordChange, RESERVED_ENTITY_TYPES};
pub use triggers::{matches, Trigger, TriggerInput, Triggers, ANY_EVENT};
