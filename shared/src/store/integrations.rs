//! Integrations in the table: create (unique per tenant, provider and connection key), read, list,
//! versioned update, delete, and the status/health updates that checks and runs make.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::query::{Page, PagedQuery};
use super::{aws_error, keys, n, s, timestamp, InvalidCursor, Item, Store, StoreError};
use crate::domain::{IntegrationId, IntegrationStatus, TenantId};
use crate::health::Health;
use crate::sync_settings::SyncSettings;

/// An integration as stored. Secrets are only in `credentials`, an envelope (docs/envelope-format.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationItem {
    pub pk: String,
    pub sk: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: IntegrationId,
    pub tenant_id: String,
    pub provider: String,
    pub connection_key: String,
    pub name: String,
    pub description: Option<String>,
    pub status: IntegrationStatus,
    pub auth_mode: String,
    /// The credentials envelope (binary attribute), AAD `<tenant>/<id>/credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<serde_bytes::ByteBuf>,
    /// At most the last 4 characters of the primary secret, for people to recognise it.
    pub credential_hint: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub token_expires_at: Option<String>,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub sync_settings: SyncSettings,
    pub last_sync_at: Option<String>,
    pub last_sync_status: Option<String>,
    pub last_error: Option<String>,
    #[serde(default)]
    pub total_syncs: u64,
    #[serde(default)]
    pub health: Health,
    /// Bumped by every health/status write so concurrent checks never lose an outcome.
    #[serde(default)]
    pub health_revision: u64,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub connected_by: Option<String>,
    pub next_sync_at: Option<String>,
}

impl IntegrationItem {
    /// The resource as the API shows it: no secret, only whether credentials exist and a hint.
    pub fn to_resource(&self) -> Value {
        json!({
            "id": self.id,
            "tenantId": self.tenant_id,
            "provider": self.provider,
            "connectionKey": self.connection_key,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "authMode": self.auth_mode,
            "credentials": {
                "configured": self.credentials.is_some(),
                "hint": self.credential_hint,
                "scopes": self.scopes,
                "tokenExpiresAt": self.token_expires_at,
            },
            "config": self.config,
            "syncSettings": self.sync_settings,
            "lastSyncAt": self.last_sync_at,
            "lastSyncStatus": self.last_sync_status,
            "lastError": self.last_error,
            "totalSyncs": self.total_syncs,
            "health": self.health.to_json(),
            "version": self.version,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "connectedBy": self.connected_by,
        })
    }

    fn from_item(item: Item) -> Result<IntegrationItem, StoreError> {
        serde_dynamo::from_item(item)
            .map_err(|e| StoreError::Corrupt(format!("integration item: {e}")))
    }
}

/// `?provider=&status=` of the list route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationFilter {
    pub provider: Option<String>,
    pub status: Option<IntegrationStatus>,
}

impl IntegrationFilter {
    /// Cursors are bound to the filter they were issued under.
    fn scope(&self) -> String {
        format!(
            "integrations?provider={}&status={}",
            self.provider.as_deref().unwrap_or(""),
            self.status.map(IntegrationStatus::as_str).unwrap_or("")
        )
    }
}

/// What PATCH may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct IntegrationChanges {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub config: Option<Map<String, Value>>,
    pub sync_settings: Option<SyncSettings>,
    /// A new credentials envelope and its hint.
    pub credentials: Option<(Vec<u8>, Option<String>)>,
    pub next_sync_at: Option<Option<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateIntegrationError {
    #[error("integration not found")]
    NotFound,
    #[error("version mismatch: the current version is {current}")]
    VersionMismatch { current: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateIntegrationError {
    #[error("an integration for this provider and connection key already exists")]
    Duplicate,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result of a test connection (or, later, a sync run) to fold into status and health.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub success: bool,
    pub error: Option<String>,
}

/// Status before and after a write, so callers can announce a change.
#[derive(Debug, Clone)]
pub struct StatusTransition {
    pub from: IntegrationStatus,
    pub item: IntegrationItem,
}

const MAX_HEALTH_RETRIES: usize = 5;

impl Store {
    /// Writes a new integration and its connection-key claim in one transaction.
    pub async fn create_integration(
        &self,
        item: &IntegrationItem,
    ) -> Result<(), CreateIntegrationError> {
        let attributes: Item =
            serde_dynamo::to_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let claim = HashMap::from([
            (keys::PK.to_string(), s(item.pk.clone())),
            (
                keys::SK.to_string(),
                s(keys::connection_sk(&item.provider, &item.connection_key)),
            ),
            ("type".to_string(), s("connection_key")),
            ("integrationId".to_string(), s(item.id.as_str())),
        ]);
        let put = |attributes: Item| {
            Put::builder()
                .table_name(self.table())
                .set_item(Some(attributes))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build())
        };
        let items = vec![
            put(attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            put(claim).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        ];
        match self
            .dynamo()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if matches!(
                    service.err(),
                    TransactWriteItemsError::TransactionCanceledException(cancel)
                        if cancel.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
                ) =>
            {
                Err(CreateIntegrationError::Duplicate)
            }
            Err(error) => Err(aws_error("TransactWriteItems", error).into()),
        }
    }

    pub async fn get_integration(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
    ) -> Result<Option<IntegrationItem>, StoreError> {
        let out = self
            .dynamo()
            .get_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::tenant_pk(tenant)))
            .key(keys::SK, s(keys::integration_sk(id.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("GetItem", e))?;
        out.item.map(IntegrationItem::from_item).transpose()
    }

    pub async fn list_integrations(
        &self,
        tenant: &TenantId,
        filter: &IntegrationFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Result<Page<IntegrationItem>, InvalidCursor>, StoreError> {
        let mut query =
            PagedQuery::new(keys::tenant_pk(tenant), keys::INTEGRATION_SK_PREFIX, limit);
        if let Some(provider) = &filter.provider {
            query.equals("provider", provider);
        }
        if let Some(status) = filter.status {
            query.equals("status", status.as_str());
        }
        self.list_page(tenant, &filter.scope(), cursor, query).await
    }

    /// Applies `changes` and bumps `version`, if the version is still `expected_version` (when given).
    pub async fn update_integration(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        changes: IntegrationChanges,
        expected_version: Option<u64>,
    ) -> Result<IntegrationItem, UpdateIntegrationError> {
        let mut sets = vec![
            "#version = #version + :one".to_string(),
            "#updatedAt = :now".to_string(),
        ];
        let mut names = HashMap::from([
            ("#version".to_string(), "version".to_string()),
            ("#updatedAt".to_string(), "updatedAt".to_string()),
        ]);
        let mut values = HashMap::from([
            (":one".to_string(), n(1)),
            (":now".to_string(), s(timestamp(chrono::Utc::now()))),
        ]);
        let mut set = |attribute: &str, value: AttributeValue| {
            names.insert(format!("#{attribute}"), attribute.to_string());
            values.insert(format!(":{attribute}"), value);
            sets.push(format!("#{attribute} = :{attribute}"));
        };
        if let Some(name) = changes.name {
            set("name", s(name));
        }
        if let Some(description) = changes.description {
            set(
                "description",
                description.map(s).unwrap_or(AttributeValue::Null(true)),
            );
        }
        if let Some(config) = &changes.config {
            set("config", to_attribute(config)?);
        }
        if let Some(sync_settings) = &changes.sync_settings {
            set("syncSettings", to_attribute(sync_settings)?);
        }
        if let Some((envelope, hint)) = changes.credentials {
            set("credentials", AttributeValue::B(envelope.into()));
            set(
                "credentialHint",
                hint.map(s).unwrap_or(AttributeValue::Null(true)),
            );
        }
        if let Some(next_sync_at) = changes.next_sync_at {
            set(
                "nextSyncAt",
                next_sync_at.map(s).unwrap_or(AttributeValue::Null(true)),
            );
        }
        let mut condition = "attribute_exists(pk)".to_string();
        if let Some(expected) = expected_version {
            condition.push_str(" AND #version = :expected");
            values.insert(":expected".into(), n(expected));
        }
        let update = format!("SET {}", sets.join(", "));
        let result = self
            .dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::tenant_pk(tenant)))
            .key(keys::SK, s(keys::integration_sk(id.as_str())))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out
                    .attributes
                    .ok_or_else(|| StoreError::Corrupt("UpdateItem returned nothing".into()))?;
                Ok(IntegrationItem::from_item(item)?)
            }
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                let old = match service.err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item.clone(),
                    _ => None,
                };
                match old {
                    None => Err(UpdateIntegrationError::NotFound),
                    Some(old) => {
                        let current = IntegrationItem::from_item(old)?.version;
                        Err(UpdateIntegrationError::VersionMismatch { current })
                    }
                }
            }
            Err(error) => Err(aws_error("UpdateItem", error).into()),
        }
    }

    /// Deletes the integration and its connection-key claim; returns it as it was, or `None`.
    pub async fn delete_integration(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
    ) -> Result<Option<IntegrationItem>, StoreError> {
        let Some(item) = self.get_integration(tenant, id).await? else {
            return Ok(None);
        };
        let delete = |sk: String, condition: Option<&str>| {
            Delete::builder()
                .table_name(self.table())
                .key(keys::PK, s(keys::tenant_pk(tenant)))
                .key(keys::SK, s(sk))
                .set_condition_expression(condition.map(str::to_string))
                .build()
                .map(|delete| TransactWriteItem::builder().delete(delete).build())
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        };
        let items = vec![
            delete(
                keys::integration_sk(id.as_str()),
                Some("attribute_exists(pk)"),
            )?,
            delete(
                keys::connection_sk(&item.provider, &item.connection_key),
                None,
            )?,
        ];
        match self
            .dynamo()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => {}
            // Deleted concurrently by another request: it is gone either way.
            Err(SdkError::ServiceError(service))
                if service.err().is_transaction_canceled_exception() =>
            {
                return Ok(None)
            }
            Err(error) => return Err(aws_error("TransactWriteItems", error)),
        }
        self.delete_integration_logs(tenant, id).await?;
        Ok(Some(item))
    }

    /// Folds a check's outcome into status, health and `lastError` without touching `version` (which
    /// guards what clients write); retried on a concurrent health write so no outcome is lost.
    pub async fn record_check_outcome(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        outcome: &CheckOutcome,
    ) -> Result<Option<StatusTransition>, StoreError> {
        for _ in 0..MAX_HEALTH_RETRIES {
            let Some(current) = self.get_integration(tenant, id).await? else {
                return Ok(None);
            };
            let mut health = current.health.clone();
            health.record(outcome.success);
            let status = if outcome.success {
                IntegrationStatus::Connected
            } else {
                IntegrationStatus::Error
            };
            let health_value = to_attribute(&health)?;
            let result = self
                .dynamo()
                .update_item()
                .table_name(self.table())
                .key(keys::PK, s(keys::tenant_pk(tenant)))
                .key(keys::SK, s(keys::integration_sk(id.as_str())))
                .update_expression(
                    "SET #health = :health, #status = :status, #lastError = :lastError, #rev = :next",
                )
                .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#rev) OR #rev = :rev)")
                .expression_attribute_names("#health", "health")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#lastError", "lastError")
                .expression_attribute_names("#rev", "healthRevision")
                .expression_attribute_values(":health", health_value)
                .expression_attribute_values(":status", s(status.as_str()))
                .expression_attribute_values(
                    ":lastError",
                    outcome.error.clone().map(s).unwrap_or(AttributeValue::Null(true)),
                )
                .expression_attribute_values(":rev", n(current.health_revision))
                .expression_attribute_values(":next", n(current.health_revision + 1))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(out) => {
                    let item = out
                        .attributes
                        .ok_or_else(|| StoreError::Corrupt("UpdateItem returned nothing".into()))?;
                    return Ok(Some(StatusTransition {
                        from: current.status,
                        item: IntegrationItem::from_item(item)?,
                    }));
                }
                Err(SdkError::ServiceError(service))
                    if service.err().is_conditional_check_failed_exception() =>
                {
                    continue
                }
                Err(error) => return Err(aws_error("UpdateItem", error)),
            }
        }
        Err(StoreError::Unavailable {
            operation: "UpdateItem",
            detail: "too many concurrent health updates".into(),
        })
    }
}

fn to_attribute<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}
