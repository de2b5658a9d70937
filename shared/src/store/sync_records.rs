//! The records side of a sync run, batched: one `BatchGetItem` reads what the store holds for a
//! page's remote ids (≤ 100 per request), `BatchWriteItem` writes the page's changes (≤ 25 per
//! request, unprocessed items retried), and a paged `Query` finds the records a full run did not see.
//!
//! Every record a run writes carries the run's stamp: `syncRun` (the run id) and `syncChange`
//! (`created`, `updated`, `deleted`, `missing` or `unchanged`: what that run did to it). A run that resumes
//! after a crash re-reads the page it was on; a record already stamped by the same run is counted
//! as what the run did then, not as `skipped`, so every record is counted once. A full run stamps
//! every record it sees (unchanged ones too), and the records without its stamp are the deletions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::batch::BATCH_WRITE_MAX;
use super::{aws_error, keys, s, to_attribute, Item, Store, StoreError};
use crate::domain::{IntegrationId, RemoteId, TenantId};
use crate::events::EntityName;

/// AWS takes at most 100 keys per BatchGetItem.
pub const BATCH_GET_MAX: usize = 100;

/// What a run did to a record (`syncChange`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncChange {
    Created,
    Updated,
    /// A deletion the provider reported (a deletion marker), or a record filtered out.
    Deleted,
    /// A full run's deletion of a record it did not see.
    Missing,
    Unchanged,
}

/// A record as a sync run needs to see it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncedRecord {
    pub remote_id: String,
    pub data: Map<String, Value>,
    pub hash: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted: bool,
    #[serde(default)]
    pub sync_run: Option<String>,
    #[serde(default)]
    pub sync_change: Option<SyncChange>,
}

/// One record a run writes (the whole item).
#[derive(Debug, Clone)]
pub struct SyncWrite {
    pub remote_id: RemoteId,
    pub data: Map<String, Value>,
    pub hash: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted: bool,
    pub change: SyncChange,
}

/// One page of the records a full run did not see, and where the next page starts.
pub struct UnseenPage {
    pub records: Vec<SyncedRecord>,
    pub next: Option<Item>,
}

impl Store {
    /// What the store holds for `ids` of one entity, by remote id (strongly consistent).
    pub async fn synced_records(
        &self,
        tenant: &TenantId,
        integration: &IntegrationId,
        entity: &EntityName,
        ids: &[RemoteId],
    ) -> Result<HashMap<String, SyncedRecord>, StoreError> {
        let pk = keys::records_pk(tenant, integration.as_str());
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET_MAX) {
            let mut keys_to_read: Vec<Item> = chunk
                .iter()
                .map(|id| {
                    HashMap::from([
                        (keys::PK.to_string(), s(pk.clone())),
                        (keys::SK.to_string(), s(keys::record_sk(entity, id))),
                    ])
                })
                .collect();
            let mut delay = std::time::Duration::from_millis(50);
            for _ in 0..8 {
                if keys_to_read.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys_to_read)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let out = self
                    .dynamo()
                    .batch_get_item()
                    .request_items(self.table(), request)
                    .send()
                    .await
                    .map_err(|e| aws_error("BatchGetItem", e))?;
                for item in out
                    .responses
                    .and_then(|mut responses| responses.remove(self.table()))
                    .unwrap_or_default()
                {
                    let record: SyncedRecord = serde_dynamo::from_item(item)
                        .map_err(|e| StoreError::Corrupt(format!("record item: {e}")))?;
                    found.insert(record.remote_id.clone(), record);
                }
                keys_to_read = out
                    .unprocessed_keys
                    .and_then(|mut unprocessed| unprocessed.remove(self.table()))
                    .map(|keys| keys.keys)
                    .unwrap_or_default();
                if !keys_to_read.is_empty() {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
            if !keys_to_read.is_empty() {
                return Err(StoreError::Unavailable {
                    operation: "BatchGetItem",
                    detail: "keys stayed unprocessed".into(),
                });
            }
        }
        Ok(found)
    }

    /// Writes a page's records (whole items, stamped with `run`), 25 per request.
    pub async fn write_synced_records(
        &self,
        tenant: &TenantId,
        integration: &IntegrationId,
        entity: &EntityName,
        run: &str,
        writes: Vec<SyncWrite>,
    ) -> Result<(), StoreError> {
        let pk = keys::records_pk(tenant, integration.as_str());
        let mut requests = Vec::with_capacity(writes.len());
        for write in writes {
            let item = HashMap::from([
                (keys::PK.to_string(), s(pk.clone())),
                (
                    keys::SK.to_string(),
                    s(keys::record_sk(entity, &write.remote_id)),
                ),
                ("type".to_string(), s("record")),
                ("entity".to_string(), s(entity.as_str())),
                ("remoteId".to_string(), s(write.remote_id.as_str())),
                ("data".to_string(), to_attribute(&write.data)?),
                ("hash".to_string(), s(write.hash)),
                ("createdAt".to_string(), s(write.created_at)),
                ("updatedAt".to_string(), s(write.updated_at)),
                ("deleted".to_string(), AttributeValue::Bool(write.deleted)),
                (
                    "source".to_string(),
                    AttributeValue::M(HashMap::from([(
                        "integrationId".to_string(),
                        s(integration.as_str()),
                    )])),
                ),
                ("syncRun".to_string(), s(run)),
                ("syncChange".to_string(), to_attribute(&write.change)?),
            ]);
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for chunk in requests.chunks(BATCH_WRITE_MAX) {
            self.batch_write_all(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// One page of the entity's records that `run` has not stamped (a full run's deletions), and —
    /// when resuming — the ones its deletion pass stamped `missing` already (counted again: their
    /// page's counts were not saved).
    pub async fn unseen_records(
        &self,
        tenant: &TenantId,
        integration: &IntegrationId,
        entity: &EntityName,
        run: &str,
        start: Option<Item>,
    ) -> Result<UnseenPage, StoreError> {
        let out = self
            .dynamo()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .filter_expression("attribute_not_exists(#run) OR #run <> :run OR #change = :deleted")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_names("#run", "syncRun")
            .expression_attribute_names("#change", "syncChange")
            .expression_attribute_values(":pk", s(keys::records_pk(tenant, integration.as_str())))
            .expression_attribute_values(":prefix", s(keys::record_entity_prefix(entity)))
            .expression_attribute_values(":run", s(run))
            .expression_attribute_values(":deleted", to_attribute(&SyncChange::Missing)?)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| aws_error("Query", e))?;
        let records = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::Corrupt(format!("record item: {e}")))
            })
            .collect::<Result<Vec<SyncedRecord>, _>>()?;
        Ok(UnseenPage {
            records,
            next: out.last_evaluated_key,
        })
    }

    /// Whether the entity has any record at all (a first full run skips reading what is stored).
    pub async fn has_records(
        &self,
        tenant: &TenantId,
        integration: &IntegrationId,
        entity: &EntityName,
    ) -> Result<bool, StoreError> {
        let out = self
            .dynamo()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", s(keys::records_pk(tenant, integration.as_str())))
            .expression_attribute_values(":prefix", s(keys::record_entity_prefix(entity)))
            .projection_expression("#pk")
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("Query", e))?;
        Ok(out.count > 0)
    }
}
