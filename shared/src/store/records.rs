//! Records: what the hub keeps of one remote record, per (tenant, integration, local entity, remote
//! id), written by a sync run and by an incoming webhook's `create_entity` / `update_entity` action:
//! the mapped local fields (`data`), a hash of them that tells a change from a repeat, and a soft
//! delete. One partition per integration (`keys::records_pk`), sorted by entity and remote id.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::query::{Page, PagedQuery};
use super::{aws_error, keys, s, timestamp, to_attribute, InvalidCursor, Item, Store, StoreError};
use crate::domain::{IncomingWebhookId, IntegrationId, RemoteId, TenantId};
use crate::events::{EntityName, EntityRecord, RecordChange, RecordMeta, RecordSource};

/// What an upsert did, with the record as it now is.
#[derive(Debug, Clone, PartialEq)]
pub enum Upsert {
    /// There was no record with this id.
    Created(EntityRecord),
    /// Its data changed, or it was soft-deleted and is back.
    Updated(EntityRecord),
    /// Same data (same hash) and not deleted: nothing was written.
    Unchanged(EntityRecord),
}

impl Upsert {
    pub fn record(&self) -> &EntityRecord {
        match self {
            Upsert::Created(record) | Upsert::Updated(record) | Upsert::Unchanged(record) => record,
        }
    }

    pub fn into_record(self) -> EntityRecord {
        match self {
            Upsert::Created(record) | Upsert::Updated(record) | Upsert::Unchanged(record) => record,
        }
    }

    /// The `<entity>.created|updated` event it calls for, if any.
    pub fn change(&self) -> Option<RecordChange> {
        match self {
            Upsert::Created(_) => Some(RecordChange::Created),
            Upsert::Updated(_) => Some(RecordChange::Updated),
            Upsert::Unchanged(_) => None,
        }
    }
}

/// The filters of `GET /api/integrations/{id}/records/{entity}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordQuery {
    /// Only records whose `meta.updatedAt` is strictly later.
    pub modified_after: Option<DateTime<Utc>>,
    /// Soft-deleted records too.
    pub include_deleted: bool,
}

impl RecordQuery {
    /// `modifiedAfter` as the stored timestamps write it. Stored times have four-digit years; a
    /// bound outside them is clamped to the first or last instant they can write, so the string
    /// comparison still means "later" (chrono writes year 10000 as `+10000`, which sorts first).
    fn modified_after_text(&self) -> Option<String> {
        let earliest = DateTime::<Utc>::from_timestamp_millis(-62_167_219_200_000)?;
        let latest = DateTime::<Utc>::from_timestamp_millis(253_402_300_799_999)?;
        self.modified_after
            .map(|at| timestamp(at.clamp(earliest, latest)))
    }

    /// Cursors are bound to the integration, entity and filters they were issued under.
    fn scope(&self, integration: &IntegrationId, entity: &EntityName) -> String {
        format!(
            "records/{integration}/{entity}?modifiedAfter={}&includeDeleted={}",
            self.modified_after_text().unwrap_or_default(),
            self.include_deleted
        )
    }
}

/// The hash of a record's `data`: SHA-256 (lowercase hex) of its canonical JSON — object keys sorted
/// (by code point) at every depth, no whitespace, strings and numbers as serde_json writes them — so
/// the same data gives the same hash whatever the order of its keys.
pub fn record_hash(data: &Map<String, Value>) -> String {
    hash_of_sorted(&sorted_object(data.clone()))
}

/// [`record_hash`] of data whose keys are sorted already: compact serde_json text is then canonical.
fn hash_of_sorted(data: &Map<String, Value>) -> String {
    let text = serde_json::to_vec(data).unwrap_or_default();
    hex::encode(Sha256::digest(&text))
}

/// `value` with the keys of every object in it sorted (maps keep insertion order here).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(sorted_object(object)),
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn sorted_object(object: Map<String, Value>) -> Map<String, Value> {
    let mut members: Vec<(String, Value)> = object.into_iter().collect();
    members.sort_by(|(a, _), (b, _)| a.cmp(b));
    members
        .into_iter()
        .map(|(key, value)| (key, sorted(value)))
        .collect()
}

/// `source` as stored: `{integrationId}` or `{webhookId, integrationId?}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    integration_id: Option<IntegrationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_id: Option<IncomingWebhookId>,
}

impl StoredSource {
    fn of(source: &RecordSource) -> StoredSource {
        match source {
            RecordSource::Integration(id) => StoredSource {
                integration_id: Some(id.clone()),
                webhook_id: None,
            },
            RecordSource::Webhook {
                webhook_id,
                integration_id,
            } => StoredSource {
                integration_id: integration_id.clone(),
                webhook_id: Some(webhook_id.clone()),
            },
        }
    }

    fn into_source(self) -> Result<RecordSource, StoreError> {
        match (self.webhook_id, self.integration_id) {
            (Some(webhook_id), integration_id) => Ok(RecordSource::Webhook {
                webhook_id,
                integration_id,
            }),
            (None, Some(id)) => Ok(RecordSource::Integration(id)),
            (None, None) => Err(StoreError::Corrupt("a record has an empty source".into())),
        }
    }
}

/// A record item as stored (key attributes, `type` and `entity` are not read back).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRecord {
    remote_id: String,
    data: Map<String, Value>,
    hash: String,
    created_at: String,
    updated_at: String,
    deleted: bool,
    source: StoredSource,
}

impl StoredRecord {
    fn from_item(item: Item) -> Result<StoredRecord, StoreError> {
        serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("record item: {e}")))
    }

    /// DynamoDB maps have no order: keys come back sorted, the same on every read.
    fn into_record(self) -> Result<EntityRecord, StoreError> {
        Ok(EntityRecord {
            id: self.remote_id,
            data: sorted_object(self.data),
            meta: RecordMeta {
                hash: self.hash,
                created_at: self.created_at,
                updated_at: self.updated_at,
                deleted: self.deleted,
            },
            source: self.source.into_source()?,
        })
    }
}

fn record_of(item: Item) -> Result<EntityRecord, StoreError> {
    StoredRecord::from_item(item)?.into_record()
}

/// The `createdAt` of a stored item, if it has one.
fn created_at_of(item: &Item) -> Option<String> {
    item.get("createdAt")
        .and_then(|value| value.as_s().ok())
        .cloned()
}

impl Store {
    /// Writes the record unless it is stored with the same data and not deleted, in ONE UpdateItem:
    /// the condition `attribute_not_exists(pk) OR hash <> :hash OR deleted = true` lets the write
    /// through only for a new, changed or returning record; `ALL_OLD` then tells created (no old
    /// item) from updated, and a refused condition returns the stored record as it is.
    pub async fn upsert_record(
        &self,
        tenant: &TenantId,
        integration: &IntegrationId,
        entity: &EntityName,
        remote_id: &RemoteId,
        data: Map<String, Value>,
        source: RecordSource,
    ) -> Result<Upsert, StoreError> {
        let data = sorted_object(data);
        let hash = hash_of_sorted(&data);
        let now = timestamp(Utc::now());
        let names = HashMap::from(
            [
                ("#pk", keys::PK),
                ("#type", "type"),
                ("#entity", "entity"),
                ("#remoteId", "remoteId"),
                ("#data", "data"),
                ("#hash", "hash"),
                ("#createdAt", "createdAt"),
                ("#updatedAt", "updatedAt"),
                ("#deleted", "deleted"),
                ("#source", "source"),
            ]
            .map(|(name, attribute)| (name.to_string(), attribute.to_string())),
        );
        let values = HashMap::from([
            (":type".to_string(), s("record")),
            (":entity".to_string(), s(entity.as_str())),
            (":remoteId".to_string(), s(remote_id.as_str())),
            (":data".to_string(), to_attribute(&data)?),
            (":hash".to_string(), s(hash.clone())),
            (":now".to_string(), s(now.clone())),
            (":false".to_string(), AttributeValue::Bool(false)),
            (":true".to_string(), AttributeValue::Bool(true)),
            (
                ":source".to_string(),
                to_attribute(&StoredSource::of(&source))?,
            ),
        ]);
        let result = self
            .dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::records_pk(tenant, integration.as_str())))
            .key(keys::SK, s(keys::record_sk(entity, remote_id)))
            .update_expression(
                "SET #type = :type, #entity = :entity, #remoteId = :remoteId, #data = :data, \
                 #hash = :hash, #updatedAt = :now, #deleted = :false, \
                 #createdAt = if_not_exists(#createdAt, :now), #source = :source",
            )
            .condition_expression("attribute_not_exists(#pk) OR #hash <> :hash OR #deleted = :true")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let written = |created_at: String| EntityRecord {
            id: remote_id.to_string(),
            data: data.clone(),
            meta: RecordMeta {
                hash: hash.clone(),
                created_at,
                updated_at: now.clone(),
                deleted: false,
            },
            source: source.clone(),
        };
        match result {
            Ok(out) => match out.attributes.filter(|old| !old.is_empty()) {
                None => Ok(Upsert::Created(written(now.clone()))),
                Some(old) => Ok(Upsert::Updated(written(
                    created_at_of(&old).unwrap_or_else(|| now.clone()),
                ))),
            },
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                let current = match service.err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item.clone(),
                    _ => None,
                };
                let current = match current.filter(|item| !item.is_empty()) {
                    Some(item) => Some(record_of(item)?),
                    // A DynamoDB that does not return the item on a failed condition: read it.
                    None => {
                        self.get_record(tenant, integration, entity, remote_id)
                            .await?
                    }
                };
                current.map(Upsert::Unchanged).ok_or_else(|| {
                    StoreError::Corrupt("a record refused an upsert but is not there".into())
                })
            }
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }

    pub async fn get_record(
        &self,
        tenant: &TenantId,
        integration: &IntegrationId,
        entity: &EntityName,
        remote_id: &RemoteId,
    ) -> Result<Option<EntityRecord>, StoreError> {
        let out = self
            .dynamo()
            .get_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::records_pk(tenant, integration.as_str())))
            .key(keys::SK, s(keys::record_sk(entity, remote_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("GetItem", e))?;
        out.item.map(record_of).transpose()
    }

    /// Soft delete: `deleted = true` and `updatedAt = now`, only if the record exists and is not
    /// deleted already. Returns the record as it now is when this call deleted it, else `None`.
    pub async fn soft_delete_record(
        &self,
        tenant: &TenantId,
        integration: &IntegrationId,
        entity: &EntityName,
        remote_id: &RemoteId,
    ) -> Result<Option<EntityRecord>, StoreError> {
        let result = self
            .dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::records_pk(tenant, integration.as_str())))
            .key(keys::SK, s(keys::record_sk(entity, remote_id)))
            .update_expression("SET #deleted = :true, #updatedAt = :now")
            .condition_expression("attribute_exists(#pk) AND #deleted = :false")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#deleted", "deleted")
            .expression_attribute_names("#updatedAt", "updatedAt")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", s(timestamp(Utc::now())))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out.attributes.map(record_of).transpose(),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(None)
            }
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }

    /// One page of an entity's records, in remote-id order (UTF-8 byte order). Both filters are
    /// FilterExpressions over the entity's records; the paged query reads on until the page is full
    /// or its read budget is spent, and a short page still carries the cursor to go on from.
    pub async fn list_records(
        &self,
        tenant: &TenantId,
        integration: &IntegrationId,
        entity: &EntityName,
        query: &RecordQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Result<Page<EntityRecord>, InvalidCursor>, StoreError> {
        let mut paged = PagedQuery::new(
            keys::records_pk(tenant, integration.as_str()),
            keys::record_entity_prefix(entity),
            limit,
        );
        if !query.include_deleted {
            paged.flag("deleted", false);
        }
        if let Some(after) = query.modified_after_text() {
            paged.after("updatedAt", &after);
        }
        let page = match self
            .list_page::<StoredRecord>(tenant, &query.scope(integration, entity), cursor, paged)
            .await?
        {
            Ok(page) => page,
            Err(invalid) => return Ok(Err(invalid)),
        };
        let items = page
            .items
            .into_iter()
            .map(StoredRecord::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ok(Page {
            items,
            next_cursor: page.next_cursor,
        }))
    }

    /// Deletes every record of the integration (all entities); returns how many there were.
    pub async fn delete_integration_records(
        &self,
        tenant: &TenantId,
        integration: &IntegrationId,
    ) -> Result<usize, StoreError> {
        self.delete_partition(keys::records_pk(tenant, integration.as_str()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => panic!("an object"),
        }
    }

    #[test]
    fn the_hash_is_sha256_hex_of_the_canonical_json() {
        // sha256("{}") and sha256(r#"{"a":1,"b":"ש"}"#)
        assert_eq!(
            record_hash(&Map::new()),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let expected = hex::encode(Sha256::digest(r#"{"a":1,"b":"ש"}"#.as_bytes()));
        assert_eq!(record_hash(&object(json!({"b": "ש", "a": 1}))), expected);
    }

    #[test]
    fn the_same_data_in_any_key_order_has_the_same_hash() {
        let one = object(json!({"title": "פגישה", "room": {"floor": 2, "name": "☕"},
                                "attendees": [{"email": "a@x", "name": "A"}]}));
        let other = object(json!({"attendees": [{"name": "A", "email": "a@x"}],
                                  "room": {"name": "☕", "floor": 2}, "title": "פגישה"}));
        assert_eq!(record_hash(&one), record_hash(&other));
        assert_eq!(record_hash(&one).len(), 64);
        assert!(record_hash(&one)
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn any_change_of_value_type_or_array_order_changes_the_hash() {
        let base = record_hash(&object(json!({"n": 1, "tags": ["a", "b"]})));
        for changed in [
            json!({"n": 2, "tags": ["a", "b"]}),
            json!({"n": "1", "tags": ["a", "b"]}),
            json!({"n": 1.5, "tags": ["a", "b"]}),
            json!({"n": 1, "tags": ["b", "a"]}),
            json!({"n": 1, "tags": ["a", "b"], "extra": null}),
        ] {
            assert_ne!(record_hash(&object(changed.clone())), base, "{changed}");
        }
    }

    #[test]
    fn modified_after_keeps_the_stored_timestamp_format_and_clamps_to_it() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .expect("RFC 3339")
                .with_timezone(&Utc)
        };
        let query = |text: &str| RecordQuery {
            modified_after: Some(at(text)),
            include_deleted: false,
        };
        assert_eq!(
            query("2026-03-01T12:00:00.123456+02:00").modified_after_text(),
            Some("2026-03-01T10:00:00.123Z".into())
        );
        assert_eq!(
            query("9999-12-31T23:00:00-05:00").modified_after_text(),
            Some("9999-12-31T23:59:59.999Z".into())
        );
        assert_eq!(
            query("0000-01-01T00:00:00+05:00").modified_after_text(),
            Some("0000-01-01T00:00:00.000Z".into())
        );
        assert_eq!(RecordQuery::default().modified_after_text(), None);
    }

    #[test]
    fn the_upsert_outcome_names_the_event_it_calls_for() {
        let record = EntityRecord {
            id: "1".into(),
            data: Map::new(),
            meta: RecordMeta {
                hash: record_hash(&Map::new()),
                created_at: "2026-01-01T00:00:00.000Z".into(),
                updated_at: "2026-01-01T00:00:00.000Z".into(),
                deleted: false,
            },
            source: RecordSource::Integration(IntegrationId::generate()),
        };
        assert_eq!(
            Upsert::Created(record.clone()).change(),
            Some(RecordChange::Created)
        );
        assert_eq!(
            Upsert::Updated(record.clone()).change(),
            Some(RecordChange::Updated)
        );
        assert_eq!(Upsert::Unchanged(record.clone()).change(), None);
        assert_eq!(Upsert::Unchanged(record.clone()).into_record(), record);
    }
}
