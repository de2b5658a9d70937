//! Integration logs: one item per sync, test, refresh or webhook event, newest first, kept 30 days
//! (a TTL on each item).

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::query::{Page, PagedQuery};
use super::{aws_error, keys, s, InvalidCursor, Item, Store, StoreError};
use crate::domain::{IntegrationId, LogId, TenantId};

pub const INTEGRATION_LOG_RETENTION_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogAction {
    Sync,
    Import,
    Export,
    Test,
    Refresh,
    WebhookReceived,
    WebhookSent,
    /// A declared action (`POST /api/integrations/{id}/actions/{action}`).
    Action,
    /// A proxied request (`/api/integrations/{id}/proxy/{path}`).
    Proxy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStatus {
    Success,
    Partial,
    Failed,
}

/// A log entry as stored and as the API returns it (the key attributes are not serialised out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationLog {
    pub id: LogId,
    pub integration_id: IntegrationId,
    pub action: LogAction,
    /// `incoming` | `outgoing`, or null.
    pub direction: Option<String>,
    pub status: LogStatus,
    pub summary: Option<Value>,
    #[serde(default)]
    pub failed_items: Vec<Value>,
    pub error_message: Option<String>,
    pub error_code: Option<String>,
    pub started_at: String,
    pub completed_at: String,
    pub duration_ms: u64,
    /// The sync job of a `sync` log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<crate::domain::JobId>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub action: Option<LogAction>,
    pub status: Option<LogStatus>,
}

impl LogAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            LogAction::Sync => "sync",
            LogAction::Import => "import",
            LogAction::Export => "export",
            LogAction::Test => "test",
            LogAction::Refresh => "refresh",
            LogAction::WebhookReceived => "webhook_received",
            LogAction::WebhookSent => "webhook_sent",
            LogAction::Action => "action",
            LogAction::Proxy => "proxy",
        }
    }
}

impl LogStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            LogStatus::Success => "success",
            LogStatus::Partial => "partial",
            LogStatus::Failed => "failed",
        }
    }
}

impl LogFilter {
    /// Cursors are bound to the integration and filter they were issued under.
    fn scope(&self, integration_id: &IntegrationId) -> String {
        format!(
            "logs/{integration_id}?action={}&status={}",
            self.action.map(LogAction::as_str).unwrap_or(""),
            self.status.map(LogStatus::as_str).unwrap_or("")
        )
    }
}

impl Store {
    pub async fn put_integration_log(
        &self,
        tenant: &TenantId,
        log: &IntegrationLog,
    ) -> Result<(), StoreError> {
        let mut item: Item =
            serde_dynamo::to_item(log).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        item.insert(
            keys::PK.into(),
            s(keys::integration_logs_pk(
                tenant,
                log.integration_id.as_str(),
            )),
        );
        item.insert(keys::SK.into(), s(keys::log_sk(log.id.as_str())));
        item.insert("type".into(), s("integration_log"));
        let expires = chrono::Utc::now() + chrono::Duration::days(INTEGRATION_LOG_RETENTION_DAYS);
        item.insert(
            keys::EXPIRES_AT.into(),
            AttributeValue::N(expires.timestamp().to_string()),
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

    pub async fn list_integration_logs(
        &self,
        tenant: &TenantId,
        integration_id: &IntegrationId,
        filter: &LogFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Result<Page<IntegrationLog>, InvalidCursor>, StoreError> {
        let mut query = PagedQuery::new(
            keys::integration_logs_pk(tenant, integration_id.as_str()),
            keys::LOG_SK_PREFIX,
            limit,
        );
        query.newest_first = true;
        query.ignore_expired = true;
        if let Some(action) = filter.action {
            query.equals("action", action.as_str());
        }
        if let Some(status) = filter.status {
            query.equals("status", status.as_str());
        }
        self.list_page(tenant, &filter.scope(integration_id), cursor, query)
            .await
    }

    /// Removes every log of a deleted integration (25 per BatchWriteItem, unprocessed items retried).
    pub(crate) async fn delete_integration_logs(
        &self,
        tenant: &TenantId,
        integration_id: &IntegrationId,
    ) -> Result<(), StoreError> {
        self.delete_partition(keys::integration_logs_pk(tenant, integration_id.as_str()))
            .await?;
        Ok(())
    }
}
