//! The typed parts of event `data` that are not the integration resource: why a status changed,
//! what a sync run did, a receipt's outcome, a record. Each serializes to the JSON its event's
//! schema describes (`schemas`).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{IncomingWebhookId, IntegrationId, JobId};

/// The integration events whose `data` is exactly the integration resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationEvent {
    /// Created through the API, or connected / reconnected through OAuth.
    Connected,
    /// Deleted; the resource as it was before the delete.
    Disconnected,
    /// Changed by PATCH.
    Updated,
    /// The token expires soon and cannot be refreshed: reconnect through the connect flow.
    TokenExpiring,
}

/// Why `integration.status_changed` happened (`data.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusChangeReason {
    /// A test connection failed (→ `error`).
    TestFailed,
    /// A test connection passed (→ `connected`).
    TestPassed,
    /// The OAuth refresh was refused (→ `expired`).
    RefreshFailed,
    /// The OAuth connect flow ran again for an existing integration (→ `connected`).
    Reconnected,
    /// PATCH replaced the credentials.
    CredentialsUpdated,
    /// A sync run failed.
    SyncFailed,
    /// A sync run succeeded after a failure.
    SyncSucceeded,
}

impl StatusChangeReason {
    pub const ALL: [StatusChangeReason; 7] = [
        StatusChangeReason::TestFailed,
        StatusChangeReason::TestPassed,
        StatusChangeReason::RefreshFailed,
        StatusChangeReason::Reconnected,
        StatusChangeReason::CredentialsUpdated,
        StatusChangeReason::SyncFailed,
        StatusChangeReason::SyncSucceeded,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            StatusChangeReason::TestFailed => "test_failed",
            StatusChangeReason::TestPassed => "test_passed",
            StatusChangeReason::RefreshFailed => "refresh_failed",
            StatusChangeReason::Reconnected => "reconnected",
            StatusChangeReason::CredentialsUpdated => "credentials_updated",
            StatusChangeReason::SyncFailed => "sync_failed",
            StatusChangeReason::SyncSucceeded => "sync_succeeded",
        }
    }
}

/// How a sync run ended; `failed` is `integration.sync_failed`, the others
/// `integration.sync_completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    Success,
    /// Some records failed; the run went on.
    Partial,
    Failed,
}

/// The counts of a sync run, as in its integration log (and as a run's checkpoint keeps them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SyncSummary {
    pub total: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub deleted: u64,
    pub failed: u64,
}

impl SyncSummary {
    pub fn add(&mut self, other: &SyncSummary) {
        self.total += other.total;
        self.created += other.created;
        self.updated += other.updated;
        self.skipped += other.skipped;
        self.deleted += other.deleted;
        self.failed += other.failed;
    }
}

/// A finished sync run.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRun {
    pub job_id: JobId,
    pub outcome: SyncOutcome,
    pub summary: SyncSummary,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: chrono::DateTime<chrono::Utc>,
    pub error_message: Option<String>,
}

impl SyncRun {
    /// The fields `integration.sync_completed|sync_failed` add to the integration resource.
    pub(crate) fn to_fields(&self) -> Map<String, Value> {
        let duration_ms = (self.completed_at - self.started_at)
            .num_milliseconds()
            .max(0);
        let mut fields = Map::new();
        fields.insert("jobId".into(), Value::from(self.job_id.as_str()));
        fields.insert("outcome".into(), json_of(&self.outcome));
        fields.insert("summary".into(), json_of(&self.summary));
        fields.insert(
            "startedAt".into(),
            Value::from(crate::store::timestamp(self.started_at)),
        );
        fields.insert(
            "completedAt".into(),
            Value::from(crate::store::timestamp(self.completed_at)),
        );
        fields.insert("durationMs".into(), Value::from(duration_ms));
        fields.insert(
            "errorMessage".into(),
            self.error_message.clone().map_or(Value::Null, Value::from),
        );
        fields
    }
}

/// The outcome of an incoming webhook event once its actions ran (`webhook.received`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Processed,
    /// Some action exhausted its retries.
    Failed,
}

/// Who owns a record: an integration's sync, or an incoming webhook's `create_entity` /
/// `update_entity` action (under the webhook's integration when it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordSource {
    Integration(IntegrationId),
    Webhook {
        webhook_id: IncomingWebhookId,
        integration_id: Option<IntegrationId>,
    },
}

/// `meta` of a record, as `GET /api/integrations/{id}/records/{entity}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordMeta {
    pub hash: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted: bool,
}

/// A record whose change is announced by `<entity>.created|updated|deleted`: `id` is the remote
/// id, `data` the mapped local fields.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRecord {
    pub id: String,
    pub data: Map<String, Value>,
    pub meta: RecordMeta,
    pub source: RecordSource,
}

impl EntityRecord {
    /// `{id, data, meta, integrationId, webhookId}`.
    pub(crate) fn to_data(&self) -> Value {
        let (integration_id, webhook_id) = match &self.source {
            RecordSource::Integration(id) => (Some(id), None),
            RecordSource::Webhook {
                webhook_id,
                integration_id,
            } => (integration_id.as_ref(), Some(webhook_id)),
        };
        serde_json::json!({
            "id": self.id,
            "data": self.data,
            "meta": self.meta,
            "integrationId": integration_id,
            "webhookId": webhook_id,
        })
    }
}

/// These types have no map keys that are not strings and no failing `Serialize`.
fn json_of(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
