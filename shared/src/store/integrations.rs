//! Integrations in the table: create (unique per tenant, provider and connection key), read, list,
//! versioned update, delete, and the status/health updates that checks and runs make.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, ReturnValue, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::query::{Page, PagedQuery};
use super::versioned::{version_of, VersionedChanges, VersionedUpdateError};
use super::{
    aws_error, keys, n, s, timestamp, to_attribute, InvalidCursor, Item, Store, StoreError,
};
use crate::catalog::AuthMode;
use crate::domain::{
    ConnectionKey, Description, DisplayName, IntegrationId, IntegrationStatus, ProviderSlug,
    TenantId,
};
use crate::health::Health;
use crate::schedule;
use crate::sync_settings::SyncSettings;

/// An integration as stored. Secrets are only in `credentials`, an envelope (docs/envelope-format.md).
/// Built only by [`IntegrationItem::new`] (or read back from the table), so the storage keys and the
/// sync-due index entry always follow `keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The sparse sync-due index entry: present exactly when `next_sync_at` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gsi1sk: Option<String>,
    /// The sparse token-expiry index entry (OAuth integrations with a known expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gsi2sk: Option<String>,
    pub id: IntegrationId,
    pub tenant_id: TenantId,
    pub provider: ProviderSlug,
    pub connection_key: ConnectionKey,
    pub name: DisplayName,
    pub description: Option<Description>,
    pub status: IntegrationStatus,
    pub auth_mode: AuthMode,
    /// The credentials envelope (binary attribute), AAD `<tenant>/<id>/credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<serde_bytes::ByteBuf>,
    /// At most the last 4 characters of the primary secret, for people to recognise it.
    pub credential_hint: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub token_expires_at: Option<String>,
    /// OAuth integrations: bumped by every token write, so a refresh lease is taken only over the
    /// tokens its holder read (docs/data-model.md, "Token refresh lease").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_generation: Option<u64>,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub sync_settings: SyncSettings,
    pub last_sync_at: Option<String>,
    pub last_sync_status: Option<String>,
    pub last_error: Option<String>,
    #[serde(default)]
    pub total_syncs: u64,
    /// Counters updated atomically by every check and run (see [`Health`]).
    #[serde(default)]
    pub health: Health,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub connected_by: Option<String>,
    pub next_sync_at: Option<String>,
    /// The sync job holding the integration (queued or running), if any (`store::sync_jobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_job: Option<super::sync_jobs::SyncJobHold>,
    /// Per local entity: the run in progress and what survives between runs.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sync_state: std::collections::BTreeMap<String, super::sync_jobs::EntityCheckpoint>,
}

/// Everything that defines a new integration; [`IntegrationItem::new`] adds the rest (keys,
/// version 1, timestamps, full health, the schedule).
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub id: IntegrationId,
    pub tenant: TenantId,
    pub provider: ProviderSlug,
    pub auth_mode: AuthMode,
    pub connection_key: ConnectionKey,
    pub name: DisplayName,
    pub description: Option<Description>,
    /// The sealed credentials envelope and its hint.
    pub credentials: Option<(Vec<u8>, Option<String>)>,
    pub scopes: Vec<String>,
    pub token_expires_at: Option<String>,
    pub config: Map<String, Value>,
    pub sync_settings: SyncSettings,
    /// The `sub` of whoever connected it.
    pub connected_by: Option<String>,
}

impl IntegrationItem {
    /// A new, `connected` integration as it will be stored.
    pub fn new(new: NewIntegration, now: chrono::DateTime<chrono::Utc>) -> IntegrationItem {
        let created_at = timestamp(now);
        let next_sync_at =
            schedule::next_sync_at_after_settings_change(None, &new.sync_settings, now);
        let (gsi1pk, gsi1sk) = sync_due_keys(&new.tenant, &new.id, next_sync_at.as_deref());
        let (gsi2pk, gsi2sk) = match (&new.token_expires_at, new.auth_mode) {
            (Some(at), AuthMode::OAuth2) => (
                Some(keys::TOKEN_DUE_PK.to_string()),
                Some(keys::sync_due_sk(at, &new.tenant, &new.id)),
            ),
            _ => (None, None),
        };
        let (credentials, credential_hint) = match new.credentials {
            Some((envelope, hint)) => (Some(serde_bytes::ByteBuf::from(envelope)), hint),
            None => (None, None),
        };
        IntegrationItem {
            pk: keys::tenant_pk(&new.tenant),
            sk: keys::integration_sk(new.id.as_str()),
            kind: "integration".to_string(),
            gsi1pk,
            gsi1sk,
            gsi2pk,
            gsi2sk,
            id: new.id,
            tenant_id: new.tenant,
            provider: new.provider,
            connection_key: new.connection_key,
            name: new.name,
            description: new.description,
            status: IntegrationStatus::Connected,
            auth_mode: new.auth_mode,
            credentials,
            credential_hint,
            scopes: new.scopes,
            token_expires_at: new.token_expires_at,
            token_generation: (new.auth_mode == AuthMode::OAuth2).then_some(1),
            config: new.config,
            sync_settings: new.sync_settings,
            last_sync_at: None,
            last_sync_status: None,
            last_error: None,
            total_syncs: 0,
            health: Health::default(),
            version: 1,
            created_at: created_at.clone(),
            updated_at: created_at,
            connected_by: new.connected_by,
            next_sync_at,
            sync_job: None,
            sync_state: Default::default(),
        }
    }

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

    pub(crate) fn from_stored(item: Item) -> Result<IntegrationItem, StoreError> {
        Self::from_item(item)
    }

    fn from_item(item: Item) -> Result<IntegrationItem, StoreError> {
        serde_dynamo::from_item(item)
            .map_err(|e| StoreError::Corrupt(format!("integration item: {e}")))
    }
}

/// The sync-due index entry for an integration due at `next_sync_at` (none when it is not due).
fn sync_due_keys(
    tenant: &TenantId,
    id: &IntegrationId,
    next_sync_at: Option<&str>,
) -> (Option<String>, Option<String>) {
    match next_sync_at {
        Some(at) => (
            Some(keys::SYNC_DUE_PK.to_string()),
            Some(keys::sync_due_sk(at, tenant, id)),
        ),
        None => (None, None),
    }
}

/// An integration the sync-due index says is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueIntegration {
    pub tenant: TenantId,
    pub id: IntegrationId,
    pub next_sync_at: String,
}

/// `?provider=&status=` of the list route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationFilter {
    pub provider: Option<ProviderSlug>,
    pub status: Option<IntegrationStatus>,
}

impl IntegrationFilter {
    /// Cursors are bound to the filter they were issued under.
    fn scope(&self) -> String {
        format!(
            "integrations?provider={}&status={}",
            self.provider
                .as_ref()
                .map(ProviderSlug::as_str)
                .unwrap_or(""),
            self.status.map(IntegrationStatus::as_str).unwrap_or("")
        )
    }
}

/// What PATCH may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct IntegrationChanges {
    pub name: Option<DisplayName>,
    pub description: Option<Option<Description>>,
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
    #[error(
        "an integration for provider {provider} with connectionKey {connection_key} already exists"
    )]
    Duplicate {
        provider: ProviderSlug,
        connection_key: ConnectionKey,
    },
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
                s(keys::connection_sk(
                    item.provider.as_str(),
                    item.connection_key.as_str(),
                )),
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
                Err(CreateIntegrationError::Duplicate {
                    provider: item.provider.clone(),
                    connection_key: item.connection_key.clone(),
                })
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
            query.equals("provider", provider.as_str());
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
        let mut write = VersionedChanges::default();
        if let Some(name) = changes.name {
            write.set("name", s(name));
        }
        if let Some(description) = changes.description {
            write.set_or_null("description", description.map(|d| s(String::from(d))));
        }
        if let Some(config) = &changes.config {
            write.set("config", to_attribute(config)?);
        }
        if let Some(sync_settings) = &changes.sync_settings {
            write.set("syncSettings", to_attribute(sync_settings)?);
        }
        if let Some((envelope, hint)) = changes.credentials {
            write.set("credentials", AttributeValue::B(envelope.into()));
            write.set_or_null("credentialHint", hint.map(s));
        }
        if let Some(next_sync_at) = changes.next_sync_at {
            // The sync-due index entry moves with nextSyncAt, in the same write.
            let (gsi1pk, gsi1sk) = sync_due_keys(tenant, id, next_sync_at.as_deref());
            write.set_or_null("nextSyncAt", next_sync_at.map(s));
            match (gsi1pk, gsi1sk) {
                (Some(pk), Some(sk)) => {
                    write.set(keys::GSI1_PK, s(pk));
                    write.set(keys::GSI1_SK, s(sk));
                }
                _ => {
                    write.remove(keys::GSI1_PK);
                    write.remove(keys::GSI1_SK);
                }
            }
        }
        let updated = self
            .update_versioned(
                keys::tenant_pk(tenant),
                keys::integration_sk(id.as_str()),
                write,
                expected_version,
            )
            .await;
        match updated {
            Ok(item) => Ok(IntegrationItem::from_item(item)?),
            Err(VersionedUpdateError::NotFound) => Err(UpdateIntegrationError::NotFound),
            Err(VersionedUpdateError::VersionMismatch(current)) => {
                Err(UpdateIntegrationError::VersionMismatch {
                    current: version_of(&current),
                })
            }
            Err(VersionedUpdateError::Store(error)) => Err(error.into()),
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
                keys::connection_sk(item.provider.as_str(), item.connection_key.as_str()),
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

    /// Folds a check's or run's outcome into status, health and `lastError` without touching
    /// `version` (which guards what clients write). Two single atomic updates, never a retry loop:
    /// the first counts the outcome (`ADD`) and sets status and error, returning the previous values;
    /// the second writes the outcome into its window slot. Concurrent outcomes all land.
    pub async fn record_check_outcome(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        outcome: &CheckOutcome,
    ) -> Result<Option<StatusTransition>, StoreError> {
        let status = if outcome.success {
            IntegrationStatus::Connected
        } else {
            IntegrationStatus::Error
        };
        // Success resets the run of failures; a failure extends it and counts as an error.
        let update = if outcome.success {
            "SET #status = :status, #lastError = :lastError, \
             #health.#window = if_not_exists(#health.#window, :emptyWindow), \
             #health.#consecutive = :zero \
             ADD #health.#outcomes :one"
        } else {
            "SET #status = :status, #lastError = :lastError, \
             #health.#window = if_not_exists(#health.#window, :emptyWindow) \
             ADD #health.#outcomes :one, #health.#errorCount :one, #health.#consecutive :one"
        };
        let key = |request: UpdateItemFluentBuilder| {
            request
                .table_name(self.table())
                .key(keys::PK, s(keys::tenant_pk(tenant)))
                .key(keys::SK, s(keys::integration_sk(id.as_str())))
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#health", "health")
                .expression_attribute_names("#window", "window")
        };
        let mut request = key(self.dynamo().update_item())
            .update_expression(update)
            .expression_attribute_names("#consecutive", "consecutiveFailures")
            .expression_attribute_names("#outcomes", "outcomes")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lastError", "lastError")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(
                ":lastError",
                outcome
                    .error
                    .clone()
                    .map(s)
                    .unwrap_or(AttributeValue::Null(true)),
            )
            .expression_attribute_values(":emptyWindow", AttributeValue::M(HashMap::new()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedOld);
        request = if outcome.success {
            request.expression_attribute_values(":zero", n(0))
        } else {
            request.expression_attribute_names("#errorCount", "errorCount")
        };
        let counted = request.send().await;
        let previous = match counted {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                return Ok(None)
            }
            Err(error) => return Err(aws_error("UpdateItem", error)),
        };
        let from = previous
            .get("status")
            .and_then(|v| v.as_s().ok())
            .and_then(|raw| IntegrationStatus::parse(raw).ok())
            .unwrap_or(status);
        let sequence = previous
            .get("health")
            .and_then(|v| v.as_m().ok())
            .and_then(|health| health.get("outcomes"))
            .and_then(|v| v.as_n().ok())
            .and_then(|raw| raw.parse::<u64>().ok())
            .unwrap_or(0);
        let slotted = key(self.dynamo().update_item())
            .update_expression("SET #health.#window.#slot = :ok")
            .expression_attribute_names("#slot", Health::slot(sequence))
            .expression_attribute_values(":ok", AttributeValue::Bool(outcome.success))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match slotted {
            Ok(out) => {
                let item = out
                    .attributes
                    .ok_or_else(|| StoreError::Corrupt("UpdateItem returned nothing".into()))?;
                Ok(Some(StatusTransition {
                    from,
                    item: IntegrationItem::from_item(item)?,
                }))
            }
            // Deleted between the two writes: nothing left to report on.
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(None)
            }
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }

    /// Integrations whose `nextSyncAt` is at or before `now`, oldest first, from the sparse
    /// sync-due index (what the scheduler enqueues). At most `limit`.
    pub async fn due_integrations(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<DueIntegration>, StoreError> {
        let upper = keys::sync_due_upper_bound(&timestamp(now));
        let mut due = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .dynamo()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI1)
                .key_condition_expression("#pk = :pk AND #sk <= :upper")
                .expression_attribute_names("#pk", keys::GSI1_PK)
                .expression_attribute_names("#sk", keys::GSI1_SK)
                .expression_attribute_values(":pk", s(keys::SYNC_DUE_PK))
                .expression_attribute_values(":upper", s(upper.clone()))
                .limit((limit - due.len()).clamp(1, 1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| aws_error("Query", e))?;
            for item in out.items() {
                let entry = item
                    .get(keys::GSI1_SK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| keys::parse_sync_due_sk(sk))
                    .ok_or_else(|| {
                        StoreError::Corrupt("a sync-due index entry is unreadable".into())
                    })?;
                due.push(entry);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() || due.len() >= limit {
                return Ok(due);
            }
        }
    }
}
