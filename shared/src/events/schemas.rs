//! The event-type catalog of `GET /api/event-types`: every type the hub emits, with a description
//! and a JSON Schema (draft 2020-12) of its `data`.
//!
//! - The integration resource in `integration.*` data is the OpenAPI document's `Integration`
//!   schema (see [`crate::api_document`]), so the event and `GET /api/integrations/{id}` cannot
//!   drift apart; the fields an event adds (`from`, `to`, `reason`, `jobId`, `summary`, …) are added
//!   to it. Like the document's schemas, these are exact (`additionalProperties: false`) except
//!   where a value is the tenant's own (`config`, a record's `data`, an automation's `payload`).
//! - `<entity>.created|updated|deleted` are listed per local entity the tenant can have records of
//!   ([`KnownEntities`]); their `data` is the generic record `{id, data, meta, integrationId,
//!   webhookId}`, with the local fields known for the entity named (not required) under `data`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::kind::{EntityName, EventType, RecordChange};
use super::payloads::StatusChangeReason;
use crate::catalog::Catalog;
use crate::domain::IntegrationStatus;
use crate::sync_settings::SyncSettings;

pub const JSON_SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

const STATUSES: [IntegrationStatus; 4] = [
    IntegrationStatus::Connected,
    IntegrationStatus::Disconnected,
    IntegrationStatus::Error,
    IntegrationStatus::Expired,
];

/// One entry of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTypeEntry {
    pub event_type: EventType,
    pub description: String,
    /// The JSON Schema of `data`.
    pub schema: Value,
}

impl EventTypeEntry {
    /// The entry of `event_type`; `fields` are the local fields known for a record type's entity
    /// (ignored for the fixed types).
    pub fn new(event_type: EventType, fields: &BTreeSet<String>) -> EventTypeEntry {
        let description = description(&event_type);
        let mut schema = match &event_type {
            EventType::Record { .. } => record_schema(fields),
            fixed => fixed_schema(fixed),
        };
        if let Value::Object(keywords) = &mut schema {
            let mut head = Map::new();
            head.insert("$schema".into(), Value::from(JSON_SCHEMA_DIALECT));
            head.insert("title".into(), Value::from(format!("{event_type} data")));
            head.extend(std::mem::take(keywords));
            *keywords = head;
        }
        EventTypeEntry {
            event_type,
            description,
            schema,
        }
    }

    /// `{type, entityType, event, description, schema}`.
    pub fn to_json(&self) -> Value {
        json!({
            "type": self.event_type,
            "entityType": self.event_type.entity_type(),
            "event": self.event_type.event(),
            "description": self.description,
            "schema": self.schema,
        })
    }
}

/// The JSON Schema of `event_type`'s `data` (for a record type, without field hints).
pub fn data_schema(event_type: &EventType) -> Value {
    EventTypeEntry::new(event_type.clone(), &BTreeSet::new()).schema
}

/// Every fixed type in [`EventType::FIXED`] order, then each known entity's `created`, `updated`,
/// `deleted`, entities sorted by name.
pub fn event_types(known: &KnownEntities) -> Vec<EventTypeEntry> {
    let fixed = EventType::FIXED
        .into_iter()
        .map(|t| EventTypeEntry::new(t, &BTreeSet::new()));
    let records = known.entities.iter().flat_map(|(entity, fields)| {
        RecordChange::ALL.into_iter().map(move |change| {
            EventTypeEntry::new(EventType::record(entity.clone(), change), fields)
        })
    });
    fixed.chain(records).collect()
}

/// The local entities a tenant can have records of, each with the local fields known for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownEntities {
    entities: BTreeMap<EntityName, BTreeSet<String>>,
}

impl KnownEntities {
    /// The local entities of the catalog's default mappings (`meeting`, `contact`, `payment`, …)
    /// with their mapped fields. An entity without default mappings has no local name until a
    /// tenant maps it in sync settings ([`KnownEntities::add_sync_settings`]).
    pub fn from_catalog(catalog: &Catalog) -> KnownEntities {
        let mut known = KnownEntities::default();
        let mappings = catalog
            .iter()
            .filter_map(|(_, provider)| provider.sync.as_ref())
            .flat_map(|sync| sync.entities.values())
            .filter_map(|entity| entity.default_mappings.as_ref());
        for mapping in mappings {
            known.add(
                &mapping.local_entity,
                mapping.fields.iter().map(|f| f.local_field.clone()),
            );
        }
        known
    }

    /// The local entities of one integration's sync settings and their mapped fields.
    pub fn add_sync_settings(&mut self, settings: &SyncSettings) {
        for entity in &settings.entities {
            let fields = settings
                .field_mappings
                .iter()
                .filter(|m| m.local_entity == entity.local_entity)
                .map(|m| m.local_field.clone());
            self.add(&entity.local_entity, fields);
        }
    }

    /// Adds `entity` (and `fields` to what is known of it). A name that cannot be an event's entity
    /// type (not `^[A-Za-z][A-Za-z0-9_]{0,63}$`, or reserved) emits no record events and is skipped.
    pub fn add(&mut self, entity: &str, fields: impl IntoIterator<Item = String>) {
        if let Ok(name) = EntityName::parse(entity) {
            self.entities.entry(name).or_default().extend(fields);
        }
    }

    pub fn entities(&self) -> impl Iterator<Item = &EntityName> {
        self.entities.keys()
    }
}

fn description(event_type: &EventType) -> String {
    let text = match event_type {
        EventType::IntegrationConnected => {
            "An integration was created, or connected or reconnected through OAuth. `data` is the integration."
        }
        EventType::IntegrationDisconnected => {
            "An integration was deleted. `data` is the integration as it was before the delete."
        }
        EventType::IntegrationUpdated => {
            "An integration was changed through PATCH. `data` is the integration after the change."
        }
        EventType::IntegrationStatusChanged => {
            "An integration's status changed (a test connection, a refused token refresh, a reconnect, a sync). `data` is the integration plus `from`, `to` and `reason`."
        }
        EventType::IntegrationTokenExpiring => {
            "An integration's OAuth token expires soon and cannot be refreshed: reconnect it through the connect flow. `data` is the integration; `credentials.tokenExpiresAt` says when."
        }
        EventType::IntegrationSyncStarted => {
            "A sync run of an integration started. `data` is the integration plus `jobId` and `startedAt`."
        }
        EventType::IntegrationSyncCompleted => {
            "A sync run finished (`outcome` `success`, or `partial` when some records failed). `data` is the integration plus the run: `jobId`, `outcome`, `summary`, `startedAt`, `completedAt`, `durationMs`, `errorMessage`."
        }
        EventType::IntegrationSyncFailed => {
            "A sync run failed. `data` is the integration plus the run: `jobId`, `outcome` (`failed`), `summary` (what was done before the failure), `startedAt`, `completedAt`, `durationMs`, `errorMessage`."
        }
        EventType::WebhookReceived => {
            "An incoming webhook event was processed: its actions ran (`status: failed` when some action exhausted its retries)."
        }
        EventType::WebhookTest => {
            "A test delivery asked for with POST /api/webhooks/{id}/test."
        }
        EventType::AutomationTriggered => {
            "An incoming webhook's `trigger_automation` action ran. `payload` is the received body, parsed when it is JSON, else the raw text."
        }
        EventType::Record { entity, change } => {
            let what = match change {
                RecordChange::Created => "was created",
                RecordChange::Updated => "changed",
                RecordChange::Deleted => "was deleted (soft-deleted: `meta.deleted` is true)",
            };
            return format!(
                "A `{entity}` record {what}, by a sync or an incoming webhook action. `data` is the record: `id` (the remote id), `data` (the mapped local fields), `meta`, and its source (`integrationId`, `webhookId`)."
            );
        }
    };
    text.to_string()
}

/// The OpenAPI document's `Integration` schema, standalone.
///
/// # Panics
/// Only if the compiled-in document lacks it; the unit tests below rule that out.
fn integration_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        crate::api_document::component_schema("Integration")
            .unwrap_or_else(|| panic!("api/openapi.json has no Integration schema"))
    })
}

/// The integration schema with `extra` required properties.
fn integration_with(extra: Value) -> Value {
    let mut schema = integration_schema().clone();
    if let (Value::Object(schema), Value::Object(extra)) = (&mut schema, extra) {
        schema.insert(
            "description".into(),
            Value::from("The integration resource, as GET /api/integrations/{id} returns it."),
        );
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.extend(extra.keys().cloned().map(Value::from));
        }
        if let Some(Value::Object(properties)) = schema.get_mut("properties") {
            properties.extend(extra);
        }
    }
    schema
}

fn prefixed_id(prefix: &str, what: &str) -> Value {
    json!({"type": "string", "pattern": format!("^{prefix}_"), "description": what})
}

fn date_time(what: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": what})
}

fn sync_run_properties(outcomes: &[&str]) -> Value {
    json!({
        "jobId": prefixed_id("job", "The sync job."),
        "outcome": {"type": "string", "enum": outcomes},
        "summary": {
            "type": "object",
            "description": "Counts of the run, as in its integration log: records received (`total`) and what became of them.",
            "required": ["total", "created", "updated", "skipped", "deleted", "failed"],
            "additionalProperties": false,
            "properties": {
                "total": {"type": "integer", "minimum": 0},
                "created": {"type": "integer", "minimum": 0},
                "updated": {"type": "integer", "minimum": 0},
                "skipped": {"type": "integer", "minimum": 0},
                "deleted": {"type": "integer", "minimum": 0},
                "failed": {"type": "integer", "minimum": 0}
            }
        },
        "startedAt": date_time("When the run started."),
        "completedAt": date_time("When the run ended."),
        "durationMs": {"type": "integer", "minimum": 0},
        "errorMessage": {"type": ["string", "null"], "description": "Why the run failed, or what failed in a partial run; null on success."}
    })
}

fn fixed_schema(event_type: &EventType) -> Value {
    let statuses: Vec<&str> = STATUSES.iter().map(|s| s.as_str()).collect();
    match event_type {
        EventType::IntegrationConnected
        | EventType::IntegrationDisconnected
        | EventType::IntegrationUpdated
        | EventType::IntegrationTokenExpiring => integration_with(json!({})),
        EventType::IntegrationStatusChanged => integration_with(json!({
            "from": {"type": "string", "enum": statuses, "description": "The status before the change."},
            "to": {"type": "string", "enum": statuses, "description": "The status after the change (the resource's `status`)."},
            "reason": {
                "type": "string",
                "enum": StatusChangeReason::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "description": "What changed it."
            }
        })),
        EventType::IntegrationSyncStarted => integration_with(json!({
            "jobId": prefixed_id("job", "The sync job."),
            "startedAt": date_time("When the run started.")
        })),
        EventType::IntegrationSyncCompleted => {
            integration_with(sync_run_properties(&["success", "partial"]))
        }
        EventType::IntegrationSyncFailed => integration_with(sync_run_properties(&["failed"])),
        EventType::WebhookReceived => json!({
            "type": "object",
            "required": ["webhookId", "webhookName", "eventId", "status"],
            "additionalProperties": false,
            "properties": {
                "webhookId": prefixed_id("whin", "The incoming webhook."),
                "webhookName": {"type": "string"},
                "eventId": prefixed_id("evt", "The received event (the id its receipt answered with)."),
                "status": {"type": "string", "enum": ["processed", "failed"]}
            }
        }),
        EventType::WebhookTest => json!({
            "type": "object",
            "required": ["webhookId", "webhookName", "message"],
            "additionalProperties": false,
            "properties": {
                "webhookId": prefixed_id("whout", "The outgoing webhook tested."),
                "webhookName": {"type": "string"},
                "message": {"type": "string"}
            }
        }),
        EventType::AutomationTriggered => json!({
            "type": "object",
            "required": ["automationId", "webhookId", "eventId", "payload"],
            "additionalProperties": false,
            "properties": {
                "automationId": {"type": "string", "minLength": 1, "description": "The action's `config.automationId`."},
                "webhookId": prefixed_id("whin", "The incoming webhook whose action ran."),
                "eventId": prefixed_id("evt", "The received event."),
                "payload": {"description": "The received body: parsed when it is JSON, else the raw text."}
            }
        }),
        EventType::Record { .. } => record_schema(&BTreeSet::new()),
    }
}

fn record_schema(fields: &BTreeSet<String>) -> Value {
    let known: Map<String, Value> = fields
        .iter()
        .map(|field| {
            (
                field.clone(),
                json!({"description": "A mapped local field."}),
            )
        })
        .collect();
    json!({
        "type": "object",
        "description": "A record, as GET /api/integrations/{id}/records/{entity} shows it, and where it came from.",
        "required": ["id", "data", "meta", "integrationId", "webhookId"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string", "minLength": 1, "description": "The remote id."},
            "data": {
                "type": "object",
                "description": "The mapped local fields. The fields named here are those mapped for this entity so far; each integration maps its own.",
                "properties": known
            },
            "meta": {
                "type": "object",
                "required": ["hash", "createdAt", "updatedAt", "deleted"],
                "additionalProperties": false,
                "properties": {
                    "hash": {"type": "string", "description": "Stable hash of `data`."},
                    "createdAt": date_time("When the hub first stored the record."),
                    "updatedAt": date_time("When the hub last changed it (a soft delete too)."),
                    "deleted": {"type": "boolean"}
                }
            },
            "integrationId": {"type": ["string", "null"], "pattern": "^int_", "description": "The integration whose sync (or whose incoming webhook) wrote it."},
            "webhookId": {"type": ["string", "null"], "pattern": "^whin_", "description": "The incoming webhook whose action wrote it; null for a sync."}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_type_has_a_described_object_schema() {
        for entry in event_types(&KnownEntities::default()) {
            assert!(!entry.description.is_empty());
            assert_eq!(entry.schema["$schema"], JSON_SCHEMA_DIALECT);
            assert_eq!(entry.schema["type"], "object", "{}", entry.event_type);
            assert!(entry.schema["required"].is_array(), "{}", entry.event_type);
        }
        assert_eq!(
            event_types(&KnownEntities::default()).len(),
            EventType::FIXED.len()
        );
    }

    #[test]
    fn status_changed_adds_from_to_and_reason_to_the_integration() {
        let schema = data_schema(&EventType::IntegrationStatusChanged);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for field in ["id", "status", "health", "from", "to", "reason"] {
            assert!(required.contains(&field), "{field}");
        }
        assert_eq!(schema["properties"]["reason"]["enum"][0], "test_failed");
        assert!(data_schema(&EventType::IntegrationConnected)["properties"]
            .get("from")
            .is_none());
    }

    #[test]
    fn the_catalog_knows_the_default_mapped_entities_with_their_fields() {
        let known = KnownEntities::from_catalog(&Catalog::builtin());
        let names: Vec<&str> = known.entities().map(EntityName::as_str).collect();
        for entity in ["contact", "meeting", "payment"] {
            assert!(names.contains(&entity), "{names:?}");
        }
        let entries = event_types(&known);
        let created = entries
            .iter()
            .find(|e| e.event_type.to_string() == "meeting.created")
            .expect("meeting.created");
        assert!(created.schema["properties"]["data"]["properties"]
            .get("title")
            .is_some());
        assert_eq!(entries.len(), EventType::FIXED.len() + 3 * names.len());
    }

    #[test]
    fn sync_settings_add_their_local_entities_and_skip_unusable_names() {
        let settings: SyncSettings = serde_json::from_value(json!({
            "entities": [{"localEntity": "patient", "remoteEntity": "contact"},
                         {"localEntity": "integration", "remoteEntity": "x"},
                         {"localEntity": "two words", "remoteEntity": "y"}],
            "fieldMappings": [{"localEntity": "patient", "localField": "fullName", "remoteField": "name"}]
        }))
        .expect("settings");
        let mut known = KnownEntities::default();
        known.add_sync_settings(&settings);
        let names: Vec<&str> = known.entities().map(EntityName::as_str).collect();
        assert_eq!(names, ["patient"]);
        let schema = &event_types(&known)[EventType::FIXED.len()].schema;
        assert!(schema["properties"]["data"]["properties"]
            .get("fullName")
            .is_some());
    }
}
