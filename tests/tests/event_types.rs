//! The event-type catalog: one event of every type, built with the constructors from realistic
//! data, validates against the schema the catalog publishes for it; and `GET /api/event-types`
//! serves that catalog with the tenant's own entities.

use std::collections::BTreeMap;

use hub_shared::catalog::AuthMode;
use hub_shared::domain::{
    ConnectionKey, Description, DisplayName, EventId, IncomingWebhookId, IntegrationId,
    IntegrationStatus, JobId, OutgoingWebhookId, ProviderSlug, TenantId,
};
use hub_shared::events::schemas::{data_schema, event_types, KnownEntities};
use hub_shared::events::{
    EntityName, EntityRecord, Event, EventType, IntegrationEvent, ReceiptStatus, RecordChange,
    RecordMeta, RecordSource, StatusChangeReason, SyncOutcome, SyncRun, SyncSummary,
};
use hub_shared::store::{IntegrationItem, NewIntegration};
use hub_shared::sync_settings::SyncSettings;
use hub_tests::spawn_app;
use serde_json::{json, Value};

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::meta::validate(schema)
        .unwrap_or_else(|e| panic!("not a valid draft 2020-12 schema: {e}\n{schema}"));
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

fn violations(schema: &Value, instance: &Value) -> Vec<String> {
    validator(schema)
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn tenant() -> TenantId {
    TenantId::parse("clinic-7").expect("tenant")
}

/// A Google Calendar integration as OAuth leaves it: scopes, a token expiry, config, sync settings
/// with mappings, a description, some sync history.
fn calendar_integration() -> IntegrationItem {
    let sync_settings: SyncSettings = serde_json::from_value(json!({
        "enabled": true, "direction": "import", "frequency": "hourly",
        "entities": [{"localEntity": "meeting", "remoteEntity": "event", "enabled": true, "direction": "import"}],
        "fieldMappings": [
            {"localEntity": "meeting", "localField": "title", "remoteField": "summary"},
            {"localEntity": "meeting", "localField": "startTime", "remoteField": "start.dateTime",
             "transform": "date_format", "transformConfig": {"format": "rfc3339"}},
            {"localEntity": "meeting", "localField": "room", "remoteField": "location", "defaultValue": "TBD"}],
        "filters": [{"field": "status", "operator": "not_equals", "value": "cancelled"}]
    }))
    .expect("sync settings");
    let now = chrono::Utc::now();
    let mut item = IntegrationItem::new(
        NewIntegration {
            id: IntegrationId::generate(),
            tenant: tenant(),
            provider: ProviderSlug::parse("google_calendar").expect("slug"),
            auth_mode: AuthMode::OAuth2,
            connection_key: ConnectionKey::parse("front-desk").expect("key"),
            name: DisplayName::parse("יומן המרפאה 📅").expect("name"),
            description: Some(Description::parse("Appointments of the front desk").expect("d")),
            credentials: Some((vec![7; 64], Some("…f3a9".into()))),
            scopes: vec!["https://www.googleapis.com/auth/calendar.readonly".into()],
            token_expires_at: Some(hub_shared::store::timestamp(
                now + chrono::Duration::minutes(55),
            )),
            config: json!({"calendarId": "primary"})
                .as_object()
                .cloned()
                .expect("map"),
            sync_settings,
            connected_by: Some("user-7".into()),
        },
        now,
    );
    item.last_sync_at = Some(hub_shared::store::timestamp(now));
    item.last_sync_status = Some("partial".into());
    item.last_error = Some("1 record failed mapping".into());
    item.total_syncs = 12;
    item.health.record(false);
    item.health.record(true);
    item
}

fn sync_run(outcome: SyncOutcome) -> SyncRun {
    let started_at = chrono::Utc::now() - chrono::Duration::seconds(3);
    SyncRun {
        job_id: JobId::generate(),
        outcome,
        summary: SyncSummary {
            total: 120,
            created: 20,
            updated: 7,
            skipped: 90,
            deleted: 2,
            failed: 1,
        },
        started_at,
        completed_at: chrono::Utc::now(),
        error_message: match outcome {
            SyncOutcome::Success => None,
            SyncOutcome::Partial => Some("1 record failed: startTime is not a date".into()),
            SyncOutcome::Failed => Some("the provider answered 503 three times".into()),
        },
    }
}

/// One event of every fixed type, and of each record change.
fn one_event_of_every_type() -> Vec<Event> {
    let item = calendar_integration();
    let mut in_error = item.clone();
    in_error.status = IntegrationStatus::Error;
    let incoming = IncomingWebhookId::generate();
    let received = EventId::generate();
    let record = |change: RecordChange| {
        let record = EntityRecord {
            id: "7k1q2v3c9a0e".into(),
            data: json!({"title": "Check-up", "startTime": "2026-03-10T09:00:00Z", "room": "TBD"})
                .as_object()
                .cloned()
                .expect("map"),
            meta: RecordMeta {
                hash: "9f86d081884c7d65".into(),
                created_at: "2026-03-10T12:00:00.000Z".into(),
                updated_at: "2026-03-10T12:05:00.000Z".into(),
                deleted: change == RecordChange::Deleted,
            },
            source: RecordSource::Integration(item.id.clone()),
        };
        Event::record(
            &tenant(),
            EntityName::parse("meeting").expect("entity"),
            change,
            &record,
        )
    };
    let mut events = vec![
        Event::integration(IntegrationEvent::Connected, &item),
        Event::integration(IntegrationEvent::Disconnected, &item),
        Event::integration(IntegrationEvent::Updated, &item),
        Event::status_changed(
            &in_error,
            IntegrationStatus::Connected,
            StatusChangeReason::TestFailed,
        )
        .expect("a change"),
        Event::integration(IntegrationEvent::TokenExpiring, &item),
        Event::sync_started(&item, &JobId::generate(), chrono::Utc::now()),
        Event::sync_finished(&item, &sync_run(SyncOutcome::Partial)),
        Event::sync_finished(&item, &sync_run(SyncOutcome::Failed)),
        Event::webhook_received(
            &tenant(),
            &incoming,
            "Stripe payments",
            &received,
            ReceiptStatus::Processed,
        ),
        Event::webhook_test(&tenant(), &OutgoingWebhookId::generate(), "CRM updates"),
        Event::automation_triggered(
            &tenant(),
            "auto_42",
            &incoming,
            &received,
            json!({"type": "invoice.paid", "data": {"object": {"id": "in_1", "amount_paid": 1200}}}),
        ),
    ];
    events.extend(RecordChange::ALL.into_iter().map(record));
    events
}

#[test]
fn one_event_of_every_type_validates_against_its_schema() {
    // Given one event of every type, built by the constructors from realistic data
    let events = one_event_of_every_type();
    let by_type: BTreeMap<String, &Event> = events
        .iter()
        .map(|e| (e.event_type().to_string(), e))
        .collect();
    for fixed in EventType::FIXED {
        assert!(by_type.contains_key(&fixed.to_string()), "no {fixed} event");
    }

    // When each is checked against the schema the catalog publishes for its type
    let failures: Vec<String> = events
        .iter()
        .flat_map(|event| {
            violations(&data_schema(event.event_type()), event.data())
                .into_iter()
                .map(move |v| format!("{}: {v}", event.event_type()))
        })
        .collect();

    // Then none violates it
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_automation_payload_may_be_raw_text() {
    let event = Event::automation_triggered(
        &tenant(),
        "auto_1",
        &IncomingWebhookId::generate(),
        &EventId::generate(),
        json!("MessageSid=SM1&Body=hello"),
    );
    assert!(violations(&data_schema(event.event_type()), event.data()).is_empty());
}

#[test]
fn schemas_reject_data_of_another_shape() {
    let item = calendar_integration();
    let status_changed = data_schema(&EventType::IntegrationStatusChanged);
    // the resource alone lacks from, to and reason
    assert!(!violations(&status_changed, &item.to_resource()).is_empty());
    // a field the resource does not have is not in integration.connected
    let mut extended = item.to_resource();
    extended["secretKey"] = json!("sk_live_leak");
    assert!(!violations(&data_schema(&EventType::IntegrationConnected), &extended).is_empty());
    // a failed run is not a completed one
    let failed = Event::sync_finished(&item, &sync_run(SyncOutcome::Failed));
    assert!(!violations(
        &data_schema(&EventType::IntegrationSyncCompleted),
        failed.data()
    )
    .is_empty());
}

#[test]
fn every_listed_schema_is_a_valid_draft_2020_12_schema() {
    let mut known = KnownEntities::from_catalog(&hub_shared::catalog::Catalog::builtin());
    known.add("patient", ["fullName".to_string()]);
    for entry in event_types(&known) {
        assert_eq!(
            entry.schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        validator(&entry.schema);
    }
}

#[tokio::test]
async fn get_event_types_lists_every_fixed_type_and_the_tenants_entities() {
    // Given a tenant whose integration syncs a local entity the catalog does not map
    let app = spawn_app().await;
    let created = app
        .create_integration(
            "acme",
            &json!({"provider": "stripe", "name": "Payments", "credentials": {"secretKey": "sk_test_events_0000"},
                    "syncSettings": {"entities": [{"localEntity": "invoice_line", "remoteEntity": "charge"}],
                                     "fieldMappings": [{"localEntity": "invoice_line", "localField": "amount", "remoteField": "amount"}]}}),
        )
        .await;

    // When it lists the event types
    let reply = app.get("acme", "/api/event-types").await;

    // Then every fixed type comes first, in order, each described with a schema of its data
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["nextCursor"], Value::Null);
    let items = body["items"].as_array().expect("items");
    let types: Vec<&str> = items.iter().filter_map(|i| i["type"].as_str()).collect();
    let fixed: Vec<String> = EventType::FIXED.iter().map(ToString::to_string).collect();
    assert_eq!(types[..fixed.len()], fixed[..]);
    for item in items {
        let text = item["type"].as_str().expect("type");
        assert_eq!(
            format!(
                "{}.{}",
                item["entityType"].as_str().expect("entityType"),
                item["event"].as_str().expect("event")
            ),
            text
        );
        assert!(!item["description"]
            .as_str()
            .expect("description")
            .is_empty());
        validator(&item["schema"]);
    }
    // and the catalog's entities and the tenant's own are listed with their changes
    for expected in [
        "meeting.created",
        "contact.updated",
        "payment.deleted",
        "invoice_line.created",
        "invoice_line.updated",
        "invoice_line.deleted",
    ] {
        assert!(types.contains(&expected), "{expected} not in {types:?}");
    }
    let line = items
        .iter()
        .find(|i| i["type"] == "invoice_line.created")
        .expect("invoice_line.created");
    assert!(line["schema"]["properties"]["data"]["properties"]
        .get("amount")
        .is_some());
    // and the listed integration schema describes the integration the API returns
    let connected = &items[0]["schema"];
    let resource = app
        .get(
            "acme",
            &format!("/api/integrations/{}", created["id"].as_str().expect("id")),
        )
        .await
        .json();
    assert!(violations(connected, &resource).is_empty());

    // and another tenant sees the fixed types and the catalog's entities, not acme's own
    let other = app.get("globex", "/api/event-types").await.json();
    let other_types: Vec<&str> = other["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert!(other_types.contains(&"meeting.created"));
    assert!(!other_types.iter().any(|t| t.starts_with("invoice_line.")));
}
