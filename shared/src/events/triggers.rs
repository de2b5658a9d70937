//! The triggers of an outgoing webhook: `[{entityType, events: [..]}]`. A trigger matches the event
//! type `<entityType>.<event>`; `"*"` matches every event of its entity type.
//!
//! Rules (checked at create and at PATCH, which replaces the list as a whole): at least one trigger
//! and at most [`Triggers::MAX`]; an entity type appears once; `entityType` is a name
//! (`^[A-Za-z][A-Za-z0-9_]{0,63}$`); each event is one its entity type has (the fixed events of
//! `integration`, `webhook` and `automation`; `created`, `updated`, `deleted` for any other entity
//! type), listed once, or `*` alone. A typo is a 400, never a trigger that silently matches nothing.

use serde::{Deserialize, Serialize};

use super::kind::{is_event_name, EventType, NAME_RULE};
use crate::error::FieldError;

/// `events: ["*"]`: every event of the entity type.
pub const ANY_EVENT: &str = "*";

/// A trigger as a request (or a stored item) spells it, before [`Triggers::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TriggerInput {
    pub entity_type: String,
    pub events: Vec<String>,
}

/// One valid trigger; only [`Triggers::parse`] builds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    entity_type: String,
    events: Vec<String>,
}

impl Trigger {
    pub fn entity_type(&self) -> &str {
        &self.entity_type
    }

    /// As given: event names, or `["*"]`.
    pub fn events(&self) -> &[String] {
        &self.events
    }

    pub fn matches(&self, event_type: &EventType) -> bool {
        self.entity_type == event_type.entity_type()
            && self
                .events
                .iter()
                .any(|event| event == ANY_EVENT || event == event_type.event())
    }
}

/// Whether any of `triggers` matches `event_type`.
pub fn matches(triggers: &[Trigger], event_type: &EventType) -> bool {
    triggers.iter().any(|trigger| trigger.matches(event_type))
}

/// The non-empty, valid trigger list of one outgoing webhook. Stored and returned as the JSON array
/// it was given as; a stored list is parsed again when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<TriggerInput>", into = "Vec<TriggerInput>")]
pub struct Triggers(Vec<Trigger>);

impl Triggers {
    /// At most this many triggers (one per entity type).
    pub const MAX: usize = 50;

    /// Checks every rule and reports every failure, named `triggers`, `triggers[i].entityType`,
    /// `triggers[i].events` or `triggers[i].events[j]`.
    pub fn parse(input: &[TriggerInput]) -> Result<Triggers, Vec<FieldError>> {
        let mut errors = Vec::new();
        if input.is_empty() {
            errors.push(FieldError::new(
                "triggers",
                "must have at least one trigger",
            ));
        }
        if input.len() > Triggers::MAX {
            errors.push(FieldError::new(
                "triggers",
                format!("must have at most {} triggers", Triggers::MAX),
            ));
        }
        for (i, trigger) in input.iter().enumerate() {
            let at = format!("triggers[{i}]");
            if !is_event_name(&trigger.entity_type) {
                errors.push(FieldError::new(
                    format!("{at}.entityType"),
                    format!("an entity type {NAME_RULE}"),
                ));
                continue;
            }
            if let Some(first) = input[..i]
                .iter()
                .position(|t| t.entity_type == trigger.entity_type)
            {
                errors.push(FieldError::new(
                    format!("{at}.entityType"),
                    format!(
                        "`{}` is already the entity type of triggers[{first}]; list its events there",
                        trigger.entity_type
                    ),
                ));
            }
            errors.extend(events_problems(&at, trigger));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Triggers(
            input
                .iter()
                .map(|t| Trigger {
                    entity_type: t.entity_type.clone(),
                    events: t.events.clone(),
                })
                .collect(),
        ))
    }

    pub fn matches(&self, event_type: &EventType) -> bool {
        matches(&self.0, event_type)
    }

    pub fn as_slice(&self) -> &[Trigger] {
        &self.0
    }
}

fn events_problems(at: &str, trigger: &TriggerInput) -> Vec<FieldError> {
    let known = EventType::events_of(&trigger.entity_type);
    let mut errors = Vec::new();
    if trigger.events.is_empty() {
        errors.push(FieldError::new(
            format!("{at}.events"),
            "must list at least one event, or `*` for every event",
        ));
    }
    if trigger.events.len() > 1 && trigger.events.iter().any(|e| e == ANY_EVENT) {
        errors.push(FieldError::new(
            format!("{at}.events"),
            "`*` already matches every event; list it alone",
        ));
    }
    for (j, event) in trigger.events.iter().enumerate() {
        let field = format!("{at}.events[{j}]");
        if event == ANY_EVENT {
            continue;
        }
        if !known.contains(&event.as_str()) {
            let shown: String = event.chars().take(64).collect();
            errors.push(FieldError::new(
                field,
                format!(
                    "`{shown}` is not an event of `{}`; expected one of {}, or `*`",
                    trigger.entity_type,
                    known.join(", ")
                ),
            ));
        } else if trigger.events[..j].contains(event) {
            errors.push(FieldError::new(field, "is listed twice"));
        }
    }
    errors
}

impl TryFrom<Vec<TriggerInput>> for Triggers {
    type Error = String;

    fn try_from(input: Vec<TriggerInput>) -> Result<Self, Self::Error> {
        Triggers::parse(&input).map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

impl From<Triggers> for Vec<TriggerInput> {
    fn from(triggers: Triggers) -> Vec<TriggerInput> {
        triggers
            .0
            .into_iter()
            .map(|t| TriggerInput {
                entity_type: t.entity_type,
                events: t.events,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(value: serde_json::Value) -> Vec<TriggerInput> {
        serde_json::from_value(value).expect("trigger input")
    }

    fn parse(value: serde_json::Value) -> Result<Triggers, Vec<FieldError>> {
        Triggers::parse(&input(value))
    }

    fn fields(value: serde_json::Value) -> Vec<String> {
        parse(value)
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    fn event(text: &str) -> EventType {
        EventType::parse(text).expect("event type")
    }

    #[test]
    fn a_trigger_matches_its_entity_types_listed_events() {
        let triggers = parse(json!([
            {"entityType": "integration", "events": ["connected", "sync_completed"]},
            {"entityType": "meeting", "events": ["created", "updated", "deleted"]}
        ]))
        .expect("valid");
        assert!(triggers.matches(&event("integration.connected")));
        assert!(triggers.matches(&event("integration.sync_completed")));
        assert!(triggers.matches(&event("meeting.deleted")));
        assert!(!triggers.matches(&event("integration.disconnected")));
        assert!(!triggers.matches(&event("payment.created")));
        assert!(!triggers.matches(&event("webhook.test")));
    }

    #[test]
    fn a_star_matches_every_event_of_its_entity_type_only() {
        let triggers = parse(json!([{"entityType": "integration", "events": ["*"]}])).expect("ok");
        for event_type in EventType::FIXED {
            assert_eq!(
                matches(triggers.as_slice(), &event_type),
                event_type.entity_type() == "integration",
                "{event_type}"
            );
        }
        let records = parse(json!([{"entityType": "payment", "events": ["*"]}])).expect("ok");
        assert!(records.matches(&event("payment.updated")));
        assert!(!records.matches(&event("paymentx.updated")));
        assert!(!records.matches(&event("meeting.updated")));
    }

    #[test]
    fn no_triggers_at_all_is_refused() {
        assert_eq!(fields(json!([])), ["triggers"]);
        assert!(!matches(&[], &event("integration.connected")));
    }

    #[test]
    fn too_many_triggers_are_refused() {
        let many: Vec<_> = (0..=Triggers::MAX)
            .map(|i| json!({"entityType": format!("entity{i}"), "events": ["*"]}))
            .collect();
        assert_eq!(fields(json!(many)), ["triggers"]);
    }

    #[test]
    fn unknown_events_are_named_by_their_index() {
        let errors = parse(json!([
            {"entityType": "integration", "events": ["connected", "conected"]},
            {"entityType": "meeting", "events": ["created", "moved"]}
        ]))
        .expect_err("typos");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["triggers[0].events[1]", "triggers[1].events[1]"]);
        assert!(errors[0].message.contains("status_changed"), "{errors:?}");
        assert!(errors[1].message.contains("created, updated, deleted"));
    }

    #[test]
    fn malformed_entity_types_and_empty_or_repeated_events_are_refused() {
        assert_eq!(
            fields(json!([{"entityType": "", "events": ["*"]}])),
            ["triggers[0].entityType"]
        );
        assert_eq!(
            fields(json!([{"entityType": "meeting.room", "events": ["*"]}])),
            ["triggers[0].entityType"]
        );
        assert_eq!(
            fields(json!([{"entityType": "*", "events": ["created"]}])),
            ["triggers[0].entityType"]
        );
        assert_eq!(
            fields(json!([{"entityType": "meeting", "events": []}])),
            ["triggers[0].events"]
        );
        assert_eq!(
            fields(json!([{"entityType": "meeting", "events": ["created", "created"]}])),
            ["triggers[0].events[1]"]
        );
        assert_eq!(
            fields(json!([{"entityType": "meeting", "events": ["*", "created"]}])),
            ["triggers[0].events"]
        );
        assert_eq!(
            fields(json!([{"entityType": "meeting", "events": [""]}])),
            ["triggers[0].events[0]"]
        );
    }

    #[test]
    fn an_entity_type_is_listed_once() {
        assert_eq!(
            fields(json!([
                {"entityType": "meeting", "events": ["created"]},
                {"entityType": "meeting", "events": ["deleted"]}
            ])),
            ["triggers[1].entityType"]
        );
    }

    #[test]
    fn unknown_fields_of_a_trigger_are_refused() {
        let typo = serde_json::from_value::<Vec<TriggerInput>>(
            json!([{"entityType": "meeting", "event": ["created"]}]),
        );
        assert!(typo.is_err());
    }

    #[test]
    fn stored_triggers_round_trip_and_are_checked_when_read() {
        let given = json!([{"entityType": "integration", "events": ["*"]},
                           {"entityType": "invoice", "events": ["created"]}]);
        let triggers: Triggers = serde_json::from_value(given.clone()).expect("valid");
        assert_eq!(serde_json::to_value(&triggers).expect("json"), given);
        let stored_invalid = json!([{"entityType": "integration", "events": ["created"]}]);
        assert!(serde_json::from_value::<Triggers>(stored_invalid).is_err());
    }
}
