//! Idempotency keys of actions (`Idempotency-Key`, 24 h). The first caller claims the key with
//! one conditional PutItem (`pending`, an owner and a lease); it alone calls the provider, then
//! stores the answer (`done`). A repeat — sequential or concurrent — finds the item: a `done`
//! one is answered with the stored result, a `pending` one is waited for. No path calls the
//! provider twice for one key: a claim whose owner died stays `pending` until it expires.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde::{Deserialize, Serialize};

use super::{aws_error, keys, n, now_epoch_seconds, s, Item, Store, StoreError};
use crate::domain::{IntegrationId, TenantId};

/// How long a key is remembered.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;

/// What one call answered, kept for its repeats: the HTTP status and JSON body of the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Where an idempotency key stands.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyState {
    /// The caller now owns the key: it makes the call.
    Claimed,
    /// Another call owns it and has not finished. `request_hash` is what it was asked.
    Pending { request_hash: String },
    /// The first call's answer.
    Done {
        request_hash: String,
        result: StoredResult,
    },
}

/// One key: its table key, what the request was (a hash of action and input) and who claims it.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub tenant: TenantId,
    pub integration_id: IntegrationId,
    pub action: String,
    /// SHA-256 (hex) of the caller's key.
    pub key_hash: String,
    pub request_hash: String,
    pub owner: String,
}

impl IdempotencyKey {
    fn pk(&self) -> String {
        keys::idempotency_pk(&self.tenant, self.integration_id.as_str())
    }

    fn sk(&self) -> String {
        keys::idempotency_sk(&self.action, &self.key_hash)
    }
}

fn state_of(item: &Item) -> Result<IdempotencyState, StoreError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("idempotency key without {name}")))
    };
    let request_hash = text("requestHash")?;
    match text("state")?.as_str() {
        "done" => {
            let result: StoredResult = serde_json::from_str(&text("result")?)
                .map_err(|e| StoreError::Corrupt(format!("idempotency result: {e}")))?;
            Ok(IdempotencyState::Done {
                request_hash,
                result,
            })
        }
        _ => Ok(IdempotencyState::Pending { request_hash }),
    }
}

impl Store {
    /// Claims `key` for the caller, or tells what holds it. An expired item (past its 24 h,
    /// not yet removed by TTL) is claimed over.
    pub async fn claim_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<IdempotencyState, StoreError> {
        let now = now_epoch_seconds();
        let out = self
            .dynamo()
            .put_item()
            .table_name(self.table())
            .item(keys::PK, s(key.pk()))
            .item(keys::SK, s(key.sk()))
            .item("type", s("idempotency_key"))
            .item("state", s("pending"))
            .item("owner", s(&key.owner))
            .item("requestHash", s(&key.request_hash))
            .item("createdAt", s(super::timestamp(chrono::Utc::now())))
            .item(keys::EXPIRES_AT, n(now + IDEMPOTENCY_TTL_SECONDS))
            .condition_expression("attribute_not_exists(pk) OR #expiresAt < :now")
            .expression_attribute_names("#expiresAt", keys::EXPIRES_AT)
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(_) => Ok(IdempotencyState::Claimed),
            Err(error) => {
                let existing = error
                    .as_service_error()
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item.clone(),
                        _ => None,
                    });
                match existing {
                    Some(item) => state_of(&item),
                    None => Err(aws_error("PutItem", error)),
                }
            }
        }
    }

    /// The key's state now (a waiting repeat polls this).
    pub async fn idempotency_state(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyState>, StoreError> {
        let out = self
            .dynamo()
            .get_item()
            .table_name(self.table())
            .key(keys::PK, s(key.pk()))
            .key(keys::SK, s(key.sk()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("GetItem", e))?;
        out.item.as_ref().map(state_of).transpose()
    }

    /// Stores the answer of the call that owns `key`.
    pub async fn finish_idempotency_key(
        &self,
        key: &IdempotencyKey,
        result: &StoredResult,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(result)
            .map_err(|e| StoreError::Corrupt(format!("idempotency result: {e}")))?;
        self.dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(key.pk()))
            .key(keys::SK, s(key.sk()))
            .update_expression("SET #state = :done, #result = :result")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#result", "result")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":result", AttributeValue::S(text))
            .expression_attribute_values(":owner", s(&key.owner))
            .send()
            .await
            .map_err(|e| aws_error("UpdateItem", e))?;
        Ok(())
    }

    /// Gives the key up when the call never reached the provider (rate limited, no token, bad
    /// configuration), so a repeat may try again.
    pub async fn release_idempotency_key(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        let out = self
            .dynamo()
            .delete_item()
            .table_name(self.table())
            .key(keys::PK, s(key.pk()))
            .key(keys::SK, s(key.sk()))
            .condition_expression("#owner = :owner AND #state = :pending")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":owner", s(&key.owner))
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await;
        super::unless_condition_failed("DeleteItem", out)?;
        Ok(())
    }
}
