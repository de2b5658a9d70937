//! Event types: `<entityType>.<event>`. The hub's own entity types (`integration`, `webhook`,
//! `automation`) have a fixed set of events; every other entity type is a local entity of the
//! records store, whose events are `created`, `updated` and `deleted`.

use serde::{Deserialize, Serialize};

use crate::domain::InvalidValue;

/// The entity types of the hub's own events. A local entity may not take one of these names, so
/// `integration.*` in a trigger means exactly the integration events.
pub const RESERVED_ENTITY_TYPES: [&str; 3] = ["integration", "webhook", "automation"];

/// The longest entity type or event name.
pub const MAX_NAME_CHARS: usize = 64;

/// `^[A-Za-z][A-Za-z0-9_]{0,63}$`: the shape of an entity type and of an event name.
pub fn is_event_name(value: &str) -> bool {
    let mut chars = value.chars();
    value.len() <= MAX_NAME_CHARS
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) const NAME_RULE: &str =
    "must be 1-64 characters of A-Z a-z 0-9 _ starting with a letter";

/// A local entity whose records emit `<entity>.created|updated|deleted` (`meeting`, `payment`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityName(String);

impl EntityName {
    pub fn parse(value: &str) -> Result<EntityName, InvalidValue> {
        if !is_event_name(value) {
            return Err(InvalidValue(format!("an entity name {NAME_RULE}")));
        }
        if RESERVED_ENTITY_TYPES.contains(&value) {
            return Err(InvalidValue(format!(
                "`{value}` is reserved for the hub's own events"
            )));
        }
        Ok(EntityName(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EntityName {
    type Error = InvalidValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        EntityName::parse(&value)
    }
}

impl From<EntityName> for String {
    fn from(name: EntityName) -> String {
        name.0
    }
}

impl std::fmt::Display for EntityName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordChange {
    Created,
    Updated,
    Deleted,
}

impl RecordChange {
    pub const ALL: [RecordChange; 3] = [
        RecordChange::Created,
        RecordChange::Updated,
        RecordChange::Deleted,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RecordChange::Created => "created",
            RecordChange::Updated => "updated",
            RecordChange::Deleted => "deleted",
        }
    }

    pub fn parse(value: &str) -> Option<RecordChange> {
        RecordChange::ALL.into_iter().find(|c| c.as_str() == value)
    }
}

/// Every event the hub emits. Parsed from its `<entityType>.<event>` text, so one that exists is
/// one the hub can emit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EventType {
    IntegrationConnected,
    IntegrationDisconnected,
    IntegrationUpdated,
    IntegrationStatusChanged,
    IntegrationTokenExpiring,
    IntegrationSyncStarted,
    IntegrationSyncCompleted,
    IntegrationSyncFailed,
    WebhookReceived,
    WebhookTest,
    AutomationTriggered,
    /// `<entity>.created|updated|deleted` of a local entity's record.
    Record {
        entity: EntityName,
        change: RecordChange,
    },
}

impl EventType {
    /// The types whose name is fixed, in the order the event-type listing shows them.
    pub const FIXED: [EventType; 11] = [
        EventType::IntegrationConnected,
        EventType::IntegrationDisconnected,
        EventType::IntegrationUpdated,
        EventType::IntegrationStatusChanged,
        EventType::IntegrationTokenExpiring,
        EventType::IntegrationSyncStarted,
        EventType::IntegrationSyncCompleted,
        EventType::IntegrationSyncFailed,
        EventType::WebhookReceived,
        EventType::WebhookTest,
        EventType::AutomationTriggered,
    ];

    pub fn record(entity: EntityName, change: RecordChange) -> EventType {
        EventType::Record { entity, change }
    }

    /// `integration.connected` → `integration`.
    pub fn entity_type(&self) -> &str {
        match self {
            EventType::IntegrationConnected
            | EventType::IntegrationDisconnected
            | EventType::IntegrationUpdated
            | EventType::IntegrationStatusChanged
            | EventType::IntegrationTokenExpiring
            | EventType::IntegrationSyncStarted
            | EventType::IntegrationSyncCompleted
            | EventType::IntegrationSyncFailed => "integration",
            EventType::WebhookReceived | EventType::WebhookTest => "webhook",
            EventType::AutomationTriggered => "automation",
            EventType::Record { entity, .. } => entity.as_str(),
        }
    }

    /// `integration.connected` → `connected`.
    pub fn event(&self) -> &'static str {
        match self {
            EventType::IntegrationConnected => "connected",
            EventType::IntegrationDisconnected => "disconnected",
            EventType::IntegrationUpdated => "updated",
            EventType::IntegrationStatusChanged => "status_changed",
            EventType::IntegrationTokenExpiring => "token_expiring",
            EventType::IntegrationSyncStarted => "sync_started",
            EventType::IntegrationSyncCompleted => "sync_completed",
            EventType::IntegrationSyncFailed => "sync_failed",
            EventType::WebhookReceived => "received",
            EventType::WebhookTest => "test",
            EventType::AutomationTriggered => "triggered",
            EventType::Record { change, .. } => change.as_str(),
        }
    }

    /// The events an entity type has: the fixed ones of a reserved entity type, else the record
    /// changes.
    pub fn events_of(entity_type: &str) -> Vec<&'static str> {
        if RESERVED_ENTITY_TYPES.contains(&entity_type) {
            EventType::FIXED
                .iter()
                .filter(|t| t.entity_type() == entity_type)
                .map(EventType::event)
                .collect()
        } else {
            RecordChange::ALL.iter().map(|c| c.as_str()).collect()
        }
    }

    pub fn parse(value: &str) -> Result<EventType, InvalidValue> {
        let unknown = || {
            InvalidValue(format!(
                "`{}` is not an event type (`<entityType>.<event>`)",
                value.chars().take(64).collect::<String>()
            ))
        };
        let (entity_type, event) = value.split_once('.').ok_or_else(unknown)?;
        if RESERVED_ENTITY_TYPES.contains(&entity_type) {
            return EventType::FIXED
                .into_iter()
                .find(|t| t.entity_type() == entity_type && t.event() == event)
                .ok_or_else(unknown);
        }
        let change = RecordChange::parse(event).ok_or_else(unknown)?;
        let entity = EntityName::parse(entity_type)?;
        Ok(EventType::Record { entity, change })
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.entity_type(), self.event())
    }
}

impl std::str::FromStr for EventType {
    type Err = InvalidValue;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        EventType::parse(value)
    }
}

impl TryFrom<String> for EventType {
    type Error = InvalidValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        EventType::parse(&value)
    }
}

impl From<EventType> for String {
    fn from(event_type: EventType) -> String {
        event_type.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_type_round_trips_through_its_text() {
        for event_type in EventType::FIXED {
            let text = event_type.to_string();
            assert_eq!(EventType::parse(&text), Ok(event_type), "{text}");
        }
        assert_eq!(
            EventType::IntegrationStatusChanged.to_string(),
            "integration.status_changed"
        );
        assert_eq!(EventType::WebhookReceived.to_string(), "webhook.received");
        assert_eq!(
            EventType::AutomationTriggered.to_string(),
            "automation.triggered"
        );
    }

    #[test]
    fn record_types_parse_for_any_local_entity() {
        let parsed = EventType::parse("meeting.created").expect("valid");
        assert_eq!(
            parsed,
            EventType::record(
                EntityName::parse("meeting").expect("name"),
                RecordChange::Created
            )
        );
        assert_eq!(parsed.entity_type(), "meeting");
        assert_eq!(parsed.event(), "created");
        assert_eq!(parsed.to_string(), "meeting.created");
        assert!(EventType::parse("mailing_list.deleted").is_ok());
    }

    #[test]
    fn unknown_or_malformed_types_are_refused() {
        for text in [
            "",
            "integration",
            "integration.created",
            "integration.Connected",
            "webhook.deleted",
            "automation.created",
            "meeting.moved",
            "meeting.",
            ".created",
            "meeting.created.again",
            "1meeting.created",
            "meet ing.created",
            "*.created",
            "meeting.*",
        ] {
            assert!(EventType::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn serde_uses_the_dotted_text() {
        let json = serde_json::to_value(EventType::IntegrationSyncCompleted).expect("json");
        assert_eq!(json, "integration.sync_completed");
        let back: EventType = serde_json::from_value(json).expect("parses");
        assert_eq!(back, EventType::IntegrationSyncCompleted);
        assert!(serde_json::from_str::<EventType>("\"integration.nope\"").is_err());
    }

    #[test]
    fn entity_names_refuse_the_reserved_entity_types() {
        for reserved in RESERVED_ENTITY_TYPES {
            assert!(EntityName::parse(reserved).is_err(), "{reserved}");
        }
        assert!(EntityName::parse("meeting").is_ok());
        assert!(EntityName::parse("Invoice_2").is_ok());
        assert!(EntityName::parse(&"x".repeat(65)).is_err());
        assert!(EntityName::parse("פגישה").is_err());
    }

    #[test]
    fn each_entity_type_knows_its_events() {
        assert_eq!(
            EventType::events_of("integration"),
            [
                "connected",
                "disconnected",
                "updated",
                "status_changed",
                "token_expiring",
                "sync_started",
                "sync_completed",
                "sync_failed"
            ]
        );
        assert_eq!(EventType::events_of("webhook"), ["received", "test"]);
        assert_eq!(EventType::events_of("automation"), ["triggered"]);
        assert_eq!(
            EventType::events_of("meeting"),
            ["created", "updated", "deleted"]
        );
    }
}
