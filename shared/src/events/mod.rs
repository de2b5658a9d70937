//! Events: what the hub tells a tenant's own systems through outgoing webhooks.
//!
//! - [`Event`]: the envelope `{"id": "evt_…", "type", "timestamp", "tenantId", "data"}`, built only
//!   by the typed constructors below, so its `data` always has the shape its type's schema states.
//! - [`EventType`] ([`kind`]): `<entityType>.<event>`, parsed from text.
//! - [`Triggers`] ([`triggers`]): an outgoing webhook's `[{entityType, events}]` and their matching.
//! - [`schemas`]: the description and the JSON Schema of every type's `data`, for
//!   `GET /api/event-types`.

pub mod kind;
mod payloads;
pub mod schemas;
pub mod triggers;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use kind::{EntityName, EventType, RecordChange, RESERVED_ENTITY_TYPES};
pub use payloads::{
    EntityRecord, IntegrationEvent, ReceiptStatus, RecordMeta, RecordSource, StatusChangeReason,
    SyncOutcome, SyncRun, SyncSummary,
};
pub use schemas::{EventTypeEntry, KnownEntities};
pub use triggers::{matches, Trigger, TriggerInput, Triggers, ANY_EVENT};

use crate::domain::{
    EventId, IncomingWebhookId, IntegrationStatus, JobId, OutgoingWebhookId, TenantId,
};
use crate::store::IntegrationItem;

/// One event, as delivered (the body of a delivery without a payload template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    id: EventId,
    #[serde(rename = "type")]
    event_type: EventType,
    /// RFC 3339 UTC with milliseconds.
    timestamp: String,
    tenant_id: TenantId,
    data: Value,
}

impl Event {
    fn new(tenant: TenantId, event_type: EventType, data: Value) -> Event {
        Event {
            id: EventId::generate(),
            event_type,
            timestamp: crate::store::timestamp(chrono::Utc::now()),
            tenant_id: tenant,
            data,
        }
    }

    /// An integration event whose `data` is the integration resource as `GET` returns it. For
    /// `Disconnected`, pass the integration as it was before the delete.
    pub fn integration(kind: IntegrationEvent, item: &IntegrationItem) -> Event {
        let event_type = match kind {
            IntegrationEvent::Connected => EventType::IntegrationConnected,
            IntegrationEvent::Disconnected => EventType::IntegrationDisconnected,
            IntegrationEvent::Updated => EventType::IntegrationUpdated,
            IntegrationEvent::TokenExpiring => EventType::IntegrationTokenExpiring,
        };
        Event::new(item.tenant_id.clone(), event_type, item.to_resource())
    }

    /// `integration.status_changed` for `item` (as it is after the change): the resource plus
    /// top-level `from`, `to` (= `item.status`) and `reason`. `None` when the status did not
    /// change, so a caller can pass every transition it sees.
    pub fn status_changed(
        item: &IntegrationItem,
        from: IntegrationStatus,
        reason: StatusChangeReason,
    ) -> Option<Event> {
        if from == item.status {
            return None;
        }
        let data = resource_with(
            item,
            [
                ("from", Value::from(from.as_str())),
                ("to", Value::from(item.status.as_str())),
                ("reason", Value::from(reason.as_str())),
            ],
        );
        Some(Event::new(
            item.tenant_id.clone(),
            EventType::IntegrationStatusChanged,
            data,
        ))
    }

    /// `integration.sync_started`: the resource plus `jobId` and `startedAt`.
    pub fn sync_started(
        item: &IntegrationItem,
        job_id: &JobId,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> Event {
        let data = resource_with(
            item,
            [
                ("jobId", Value::from(job_id.as_str())),
                (
                    "startedAt",
                    Value::from(crate::store::timestamp(started_at)),
                ),
            ],
        );
        Event::new(
            item.tenant_id.clone(),
            EventType::IntegrationSyncStarted,
            data,
        )
    }

    /// `integration.sync_completed` (outcome `success` or `partial`) or `integration.sync_failed`
    /// (outcome `failed`): the resource plus `jobId`, `outcome`, `summary`, `startedAt`,
    /// `completedAt`, `durationMs` and `errorMessage`.
    pub fn sync_finished(item: &IntegrationItem, run: &SyncRun) -> Event {
        let event_type = match run.outcome {
            SyncOutcome::Success | SyncOutcome::Partial => EventType::IntegrationSyncCompleted,
            SyncOutcome::Failed => EventType::IntegrationSyncFailed,
        };
        let data = resource_with(item, run.to_fields());
        Event::new(item.tenant_id.clone(), event_type, data)
    }

    /// `webhook.received`, once an incoming event's actions ran: `{webhookId, webhookName, eventId,
    /// status}`.
    pub fn webhook_received(
        tenant: &TenantId,
        webhook_id: &IncomingWebhookId,
        webhook_name: &str,
        event_id: &EventId,
        status: ReceiptStatus,
    ) -> Event {
        let data = serde_json::json!({
            "webhookId": webhook_id,
            "webhookName": webhook_name,
            "eventId": event_id,
            "status": status,
        });
        Event::new(tenant.clone(), EventType::WebhookReceived, data)
    }

    /// `webhook.test`, the one event `POST /api/webhooks/{id}/test` delivers:
    /// `{webhookId, webhookName, message}`.
    pub fn webhook_test(
        tenant: &TenantId,
        webhook_id: &OutgoingWebhookId,
        webhook_name: &str,
    ) -> Event {
        let data = serde_json::json!({
            "webhookId": webhook_id,
            "webhookName": webhook_name,
            "message": "A test event from Integrations Hub: this endpoint receives its deliveries.",
        });
        Event::new(tenant.clone(), EventType::WebhookTest, data)
    }

    /// `automation.triggered` by an incoming webhook's `trigger_automation` action:
    /// `{automationId, webhookId, eventId, payload}`, `payload` being the parsed body when it is
    /// JSON, else the raw text.
    pub fn automation_triggered(
        tenant: &TenantId,
        automation_id: &str,
        webhook_id: &IncomingWebhookId,
        event_id: &EventId,
        payload: Value,
    ) -> Event {
        let data = serde_json::json!({
            "automationId": automation_id,
            "webhookId": webhook_id,
            "eventId": event_id,
            "payload": payload,
        });
        Event::new(tenant.clone(), EventType::AutomationTriggered, data)
    }

    /// `<entity>.created|updated|deleted`: `{id, data, meta, integrationId, webhookId}`.
    pub fn record(
        tenant: &TenantId,
        entity: EntityName,
        change: RecordChange,
        record: &EntityRecord,
    ) -> Event {
        Event::new(
            tenant.clone(),
            EventType::record(entity, change),
            record.to_data(),
        )
    }

    pub fn id(&self) -> &EventId {
        &self.id
    }

    pub fn event_type(&self) -> &EventType {
        &self.event_type
    }

    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant_id
    }

    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The envelope as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "type": self.event_type,
            "timestamp": self.timestamp,
            "tenantId": self.tenant_id,
            "data": self.data,
        })
    }
}

/// The integration resource with `extra` top-level fields (none of which it has itself).
fn resource_with(
    item: &IntegrationItem,
    extra: impl IntoIterator<Item = (impl Into<String>, Value)>,
) -> Value {
    let mut data = match item.to_resource() {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    data.extend(extra.into_iter().map(|(k, v)| (k.into(), v)));
    Value::Object(data)
}

#[cfg(test)]
mod tests;
