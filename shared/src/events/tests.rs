use serde_json::json;

use super::*;
use crate::catalog::AuthMode;
use crate::domain::{ConnectionKey, DisplayName, IntegrationId, ProviderSlug};
use crate::store::NewIntegration;

fn tenant() -> TenantId {
    TenantId::parse("acme").expect("tenant")
}

fn integration() -> IntegrationItem {
    IntegrationItem::new(
        NewIntegration {
            id: IntegrationId::generate(),
            tenant: tenant(),
            provider: ProviderSlug::parse("stripe").expect("slug"),
            auth_mode: AuthMode::ApiKey,
            connection_key: ConnectionKey::default_key(),
            name: DisplayName::parse("Payments").expect("name"),
            description: None,
            credentials: Some((vec![1, 2, 3], Some("…0000".into()))),
            scopes: Vec::new(),
            token_expires_at: None,
            config: Map::new(),
            sync_settings: Default::default(),
            connected_by: Some("user-1".into()),
        },
        chrono::Utc::now(),
    )
}

#[test]
fn the_envelope_has_the_api_shape() {
    let item = integration();
    let event = Event::integration(IntegrationEvent::Connected, &item);
    let envelope = event.to_json();
    let keys: Vec<&str> = envelope
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5);
    for key in ["id", "type", "timestamp", "tenantId", "data"] {
        assert!(keys.contains(&key), "{key}");
    }
    assert!(envelope["id"].as_str().expect("id").starts_with("evt_"));
    assert_eq!(envelope["type"], "integration.connected");
    assert_eq!(envelope["tenantId"], "acme");
    assert_eq!(envelope["data"], item.to_resource());
    assert_eq!(serde_json::to_value(&event).expect("serde"), envelope);
}

#[test]
fn the_timestamp_is_rfc3339_utc_with_milliseconds() {
    let event = Event::integration(IntegrationEvent::Updated, &integration());
    let timestamp = event.timestamp();
    let parsed = chrono::DateTime::parse_from_rfc3339(timestamp).expect("RFC 3339");
    assert_eq!(parsed.offset().local_minus_utc(), 0);
    assert!(timestamp.ends_with('Z'), "{timestamp}");
    assert_eq!(
        timestamp.len(),
        "2026-03-10T12:00:00.000Z".len(),
        "{timestamp}"
    );
}

#[test]
fn an_envelope_read_back_is_the_same_event() {
    let event = Event::integration(IntegrationEvent::Disconnected, &integration());
    let back: Event = serde_json::from_value(event.to_json()).expect("parses");
    assert_eq!(back, event);
    let mut forged = event.to_json();
    forged["type"] = json!("integration.exploded");
    assert!(serde_json::from_value::<Event>(forged).is_err());
}

#[test]
fn each_integration_constructor_gives_its_type() {
    let item = integration();
    for (kind, expected) in [
        (IntegrationEvent::Connected, "integration.connected"),
        (IntegrationEvent::Disconnected, "integration.disconnected"),
        (IntegrationEvent::Updated, "integration.updated"),
        (
            IntegrationEvent::TokenExpiring,
            "integration.token_expiring",
        ),
    ] {
        assert_eq!(
            Event::integration(kind, &item).event_type().to_string(),
            expected
        );
    }
}

#[test]
fn status_changed_carries_from_to_and_reason_and_needs_a_change() {
    let mut item = integration();
    item.status = IntegrationStatus::Error;
    let event = Event::status_changed(
        &item,
        IntegrationStatus::Connected,
        StatusChangeReason::TestFailed,
    )
    .expect("a change");
    assert_eq!(event.event_type(), &EventType::IntegrationStatusChanged);
    assert_eq!(event.data()["from"], "connected");
    assert_eq!(event.data()["to"], "error");
    assert_eq!(event.data()["status"], "error");
    assert_eq!(event.data()["reason"], "test_failed");
    assert_eq!(event.data()["id"], item.id.as_str());
    assert!(Event::status_changed(
        &item,
        IntegrationStatus::Error,
        StatusChangeReason::TestFailed
    )
    .is_none());
}

#[test]
fn a_finished_sync_is_completed_unless_it_failed() {
    let item = integration();
    let started_at = chrono::Utc::now();
    let run = |outcome| SyncRun {
        job_id: JobId::generate(),
        outcome,
        summary: SyncSummary {
            total: 10,
            created: 4,
            updated: 3,
            skipped: 2,
            deleted: 0,
            failed: 1,
        },
        started_at,
        completed_at: started_at + chrono::Duration::milliseconds(1250),
        error_message: None,
    };
    let completed = Event::sync_finished(&item, &run(SyncOutcome::Partial));
    assert_eq!(completed.event_type(), &EventType::IntegrationSyncCompleted);
    assert_eq!(completed.data()["outcome"], "partial");
    assert_eq!(completed.data()["summary"]["created"], 4);
    assert_eq!(completed.data()["durationMs"], 1250);
    assert_eq!(
        Event::sync_finished(&item, &run(SyncOutcome::Success)).event_type(),
        &EventType::IntegrationSyncCompleted
    );
    assert_eq!(
        Event::sync_finished(&item, &run(SyncOutcome::Failed)).event_type(),
        &EventType::IntegrationSyncFailed
    );
}

#[test]
fn webhook_and_automation_events_carry_their_ids() {
    let webhook = IncomingWebhookId::generate();
    let received = EventId::generate();
    let event = Event::webhook_received(
        &tenant(),
        &webhook,
        "Stripe payments",
        &received,
        ReceiptStatus::Failed,
    );
    assert_eq!(
        event.data(),
        &json!({"webhookId": webhook.as_str(), "webhookName": "Stripe payments",
                "eventId": received.as_str(), "status": "failed"})
    );
    assert_ne!(event.id(), &received);
    let automation = Event::automation_triggered(
        &tenant(),
        "auto_42",
        &webhook,
        &received,
        json!("plain text body"),
    );
    assert_eq!(automation.event_type(), &EventType::AutomationTriggered);
    assert_eq!(automation.data()["payload"], "plain text body");
    let test = Event::webhook_test(&tenant(), &OutgoingWebhookId::generate(), "CRM");
    assert_eq!(test.event_type().to_string(), "webhook.test");
}

#[test]
fn a_record_event_names_its_entity_and_source() {
    let webhook = IncomingWebhookId::generate();
    let record = EntityRecord {
        id: "in_1Nv".into(),
        data: json!({"amount": 12.5}).as_object().cloned().expect("map"),
        meta: RecordMeta {
            hash: "abc".into(),
            created_at: "2026-03-10T12:00:00.000Z".into(),
            updated_at: "2026-03-10T12:00:00.000Z".into(),
            deleted: false,
        },
        source: RecordSource::Webhook {
            webhook_id: webhook.clone(),
            integration_id: None,
        },
    };
    let event = Event::record(
        &tenant(),
        EntityName::parse("payment").expect("name"),
        RecordChange::Created,
        &record,
    );
    assert_eq!(event.event_type().to_string(), "payment.created");
    assert_eq!(event.data()["webhookId"], webhook.as_str());
    assert_eq!(event.data()["integrationId"], Value::Null);
    assert_eq!(event.data()["data"]["amount"], 12.5);
}
