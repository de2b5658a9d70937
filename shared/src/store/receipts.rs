//! Receipt logs: one per request an incoming webhook received (processed, failed, ignored by its
//! filters, or rejected by its verification). Stored like outgoing attempt logs: `pk =
//! TENANT#<t>#WHLOG#<webhookId>`, `sk = LOG#<logId>` (newest first), `gsi1pk = WHLOG#<t>#<logId>`
//! so `GET /api/webhook-logs/{logId}` finds either kind by id, `type = webhook_receipt_log`, kept 14
//! days. A receipt keeps the request's method, redacted headers, content type and size, never its
//! body.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::deliveries::{retention_end, ATTEMPT_LOG_TYPE};
use super::query::{Page, PagedQuery};
use super::{aws_error, keys, n, s, AttemptLog, InvalidCursor, Item, Store, StoreError};
use crate::domain::{EventId, IncomingWebhookId, LogId, TenantId};
use crate::webhooks::redact::redact_headers;

/// The `type` of a receipt log item.
pub const RECEIPT_LOG_TYPE: &str = "webhook_receipt_log";

/// What became of a received request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptOutcome {
    /// Verified, accepted, and every action succeeded.
    Processed,
    /// Verified and accepted, but some action failed for good.
    Failed,
    /// Verified, but the filters did not match: nothing ran.
    Ignored,
    /// Refused before acceptance (a wrong signature, say): nothing ran.
    Rejected,
}

/// The request as a receipt keeps it: no body, only its size and content type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedSnapshot {
    pub method: String,
    /// Lowercase name → value; signature, token and credential headers `[redacted]`.
    pub headers: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub body_bytes: u64,
}

impl ReceivedSnapshot {
    /// The snapshot of a request: `signature_header` is the webhook's own (`hmac_sha256`), redacted
    /// with every scheme's signature headers.
    pub fn capture(
        method: &http::Method,
        headers: &HeaderMap,
        signature_header: Option<&HeaderName>,
        body_bytes: usize,
    ) -> ReceivedSnapshot {
        let also_secret: Vec<HeaderName> = signature_header.into_iter().cloned().collect();
        ReceivedSnapshot {
            method: method.as_str().to_string(),
            headers: redact_headers(headers, &also_secret),
            content_type: headers
                .get(http::header::CONTENT_TYPE)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
            body_bytes: body_bytes as u64,
        }
    }
}

/// How one action of a received event went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionOutcome {
    /// The action's `type` (`create_entity`, `forward`, ...).
    pub r#type: String,
    /// `success` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub error_message: Option<String>,
    /// What it produced (the record id, the forward's response status, ...).
    pub result: Option<Value>,
}

/// One received request of one incoming webhook: what `GET /api/webhooks/{id}/logs` lists (without
/// `request` and `actions`) and `GET /api/webhook-logs/{logId}` returns whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptLog {
    pub id: LogId,
    pub webhook_id: IncomingWebhookId,
    /// The accepted event; null when the request was rejected or ignored before one was stored.
    pub event_id: Option<EventId>,
    pub status: ReceiptOutcome,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub received_at: String,
    pub completed_at: Option<String>,
    pub request: ReceivedSnapshot,
    #[serde(default)]
    pub actions: Vec<ActionOutcome>,
}

impl ReceiptLog {
    /// The list form: every scalar field, without `request` and `actions`.
    pub fn to_summary(&self) -> Value {
        let mut value = self.to_detail();
        if let Value::Object(fields) = &mut value {
            fields.remove("request");
            fields.remove("actions");
        }
        value
    }

    pub fn to_detail(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A webhook log of either kind, as `GET /api/webhook-logs/{logId}` finds it.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookLogEntry {
    /// One attempt of an outgoing delivery.
    Attempt(AttemptLog),
    /// One request an incoming webhook received.
    Receipt(ReceiptLog),
}

impl WebhookLogEntry {
    /// Decodes a log item by its `type`.
    pub(crate) fn from_item(item: Item) -> Result<WebhookLogEntry, StoreError> {
        let kind = item
            .get("type")
            .and_then(|kind| kind.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let corrupt =
            |e: serde_dynamo::Error| StoreError::Corrupt(format!("webhook log item: {e}"));
        match kind.as_str() {
            ATTEMPT_LOG_TYPE => Ok(WebhookLogEntry::Attempt(
                serde_dynamo::from_item(item).map_err(corrupt)?,
            )),
            RECEIPT_LOG_TYPE => Ok(WebhookLogEntry::Receipt(
                serde_dynamo::from_item(item).map_err(corrupt)?,
            )),
            other => Err(StoreError::Corrupt(format!(
                "a webhook log item of type `{other}`"
            ))),
        }
    }

    pub fn to_detail(&self) -> Value {
        match self {
            WebhookLogEntry::Attempt(log) => log.to_detail(),
            WebhookLogEntry::Receipt(log) => log.to_detail(),
        }
    }
}

impl Store {
    /// Writes one receipt log (kept 14 days from now).
    pub async fn put_receipt_log(
        &self,
        tenant: &TenantId,
        log: &ReceiptLog,
    ) -> Result<(), StoreError> {
        let mut item: Item =
            serde_dynamo::to_item(log).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        item.insert(
            keys::PK.into(),
            s(keys::webhook_logs_pk(tenant, log.webhook_id.as_str())),
        );
        item.insert(keys::SK.into(), s(keys::log_sk(log.id.as_str())));
        item.insert(
            keys::GSI1_PK.into(),
            s(keys::webhook_log_lookup_pk(tenant, log.id.as_str())),
        );
        item.insert(keys::GSI1_SK.into(), s(keys::WEBHOOK_LOG_LOOKUP_SK));
        item.insert("type".into(), s(RECEIPT_LOG_TYPE));
        item.insert(
            keys::EXPIRES_AT.into(),
            n(retention_end(chrono::Utc::now())),
        );
        self.dynamo()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| aws_error("PutItem", e))?;
        Ok(())
    }

    /// The receipts of one incoming webhook, newest first.
    pub async fn list_receipt_logs(
        &self,
        tenant: &TenantId,
        webhook_id: &IncomingWebhookId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Result<Page<ReceiptLog>, InvalidCursor>, StoreError> {
        let mut query = PagedQuery::new(
            keys::webhook_logs_pk(tenant, webhook_id.as_str()),
            keys::LOG_SK_PREFIX,
            limit,
        );
        query.newest_first = true;
        query.ignore_expired = true;
        self.list_page(
            tenant,
            &format!("webhooks/{webhook_id}/logs"),
            cursor,
            query,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn receipt() -> ReceiptLog {
        ReceiptLog {
            id: LogId::generate(),
            webhook_id: IncomingWebhookId::generate(),
            event_id: None,
            status: ReceiptOutcome::Rejected,
            error_code: Some("invalid_signature".into()),
            error_message: Some("no signature matched".into()),
            received_at: "2026-12-01T12:00:00.000Z".into(),
            completed_at: None,
            request: ReceivedSnapshot {
                method: "POST".into(),
                headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
                content_type: Some("application/json".into()),
                body_bytes: 17,
            },
            actions: vec![ActionOutcome {
                r#type: "forward".into(),
                status: "failed".into(),
                attempts: 5,
                error_message: Some("the target answered 500".into()),
                result: None,
            }],
        }
    }

    #[test]
    fn a_receipt_reads_in_camel_case_and_its_summary_has_no_request_or_actions() {
        let receipt = receipt();
        let detail = receipt.to_detail();
        assert_eq!(detail["webhookId"], receipt.webhook_id.as_str());
        assert_eq!(detail["status"], "rejected");
        assert_eq!(detail["request"]["bodyBytes"], 17);
        assert_eq!(detail["request"]["contentType"], "application/json");
        assert_eq!(detail["actions"][0]["type"], "forward");
        assert_eq!(
            detail["actions"][0]["errorMessage"],
            "the target answered 500"
        );
        let summary = receipt.to_summary();
        assert!(summary.get("request").is_none() && summary.get("actions").is_none());
        assert_eq!(summary["errorCode"], "invalid_signature");
        assert_eq!(summary["eventId"], Value::Null);
    }

    #[test]
    fn a_snapshot_redacts_every_signature_header_and_keeps_no_body() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().expect("value"));
        headers.insert("stripe-signature", "t=1,v1=abc".parse().expect("value"));
        headers.insert("x-shopify-hmac-sha256", "abc=".parse().expect("value"));
        headers.insert("x-acme-proof", "deadbeef".parse().expect("value"));
        headers.insert("x-event", "paid".parse().expect("value"));
        let configured = HeaderName::from_static("x-acme-proof");
        let snapshot =
            ReceivedSnapshot::capture(&http::Method::POST, &headers, Some(&configured), 1234);
        assert_eq!(
            serde_json::to_value(&snapshot).expect("json"),
            json!({"method": "POST", "contentType": "application/json", "bodyBytes": 1234,
                   "headers": {"content-type": "application/json", "stripe-signature": "[redacted]",
                               "x-shopify-hmac-sha256": "[redacted]", "x-acme-proof": "[redacted]",
                               "x-event": "paid"}})
        );
    }

    #[test]
    fn a_log_item_is_decoded_by_its_type() {
        let mut item: Item = serde_dynamo::to_item(receipt()).expect("item");
        item.insert("type".into(), s(RECEIPT_LOG_TYPE));
        assert!(matches!(
            WebhookLogEntry::from_item(item.clone()),
            Ok(WebhookLogEntry::Receipt(_))
        ));
        item.insert("type".into(), s("integration_log"));
        assert!(WebhookLogEntry::from_item(item).is_err());
    }
}
