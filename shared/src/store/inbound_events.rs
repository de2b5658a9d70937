//! Accepted incoming webhook events: one item per (webhook, dedupe key) that is at once the dedupe
//! record and the event the retry dispatcher processes.
//!
//! - **Accept** is one conditional PutItem (`pk = TENANT#<t>#WHEVT#<webhookId>`, `sk =
//!   EVT#<sha256 of the dedupe key>`, condition: no item, or only an expired one): a repeat within
//!   the 7-day window fails the condition and is a duplicate. The body rides in the item, gzipped,
//!   or — over [`crate::payloads::INLINE_LIMIT`] gzipped — in the payloads bucket under
//!   `payloadKey` (claim check).
//! - Each **action** has its own state in flat attributes (`a<i>Status`, `a<i>Attempt`,
//!   `a<i>LeaseUntil`, `a<i>Error`, `a<i>Result`) and is claimed like a delivery attempt: one
//!   conditional UpdateItem (attempt n-1 `pending` → n `in_flight`, or n `in_flight` whose lease ran
//!   out), so a message SQS delivers twice runs nothing twice.
//! - `pendingActions` counts actions not yet settled; the update that settles the last one sees it
//!   reach 0, and one conditional `SET finalized` lets exactly one process write the receipt, the
//!   stats and `webhook.received`.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use serde::{Deserialize, Serialize};

use super::{
    aws_error, keys, n, now_epoch_seconds, s, timestamp, Item, ReceivedSnapshot, Store, StoreError,
};
use crate::domain::{EventId, IncomingWebhookId, IntegrationId, TenantId};
use crate::inbound::Action;

/// A repeat of an event within this window is a duplicate.
pub const DEDUPE_WINDOW_DAYS: i64 = 7;

/// How long past its timeout an in-flight action stays claimed before a redelivered message may
/// take it over (the first process having died mid-action).
const ACTION_LEASE_MARGIN_SECONDS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Not started, or waiting for its next attempt.
    Pending,
    InFlight,
    Success,
    /// Exhausted its attempts (or failed in a way no retry mends).
    Failed,
}

impl ActionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Pending => "pending",
            ActionStatus::InFlight => "in_flight",
            ActionStatus::Success => "success",
            ActionStatus::Failed => "failed",
        }
    }

    fn parse(value: &str) -> Option<ActionStatus> {
        match value {
            "pending" => Some(ActionStatus::Pending),
            "in_flight" => Some(ActionStatus::InFlight),
            "success" => Some(ActionStatus::Success),
            "failed" => Some(ActionStatus::Failed),
            _ => None,
        }
    }

    pub fn is_settled(self) -> bool {
        matches!(self, ActionStatus::Success | ActionStatus::Failed)
    }
}

/// Where an event's body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredBody {
    /// Gzipped, in the item.
    Inline(Vec<u8>),
    /// Gzipped, in the payloads bucket under this key.
    Claim(String),
}

/// What the receiver stores for an accepted event.
#[derive(Debug, Clone)]
pub struct NewInboundEvent {
    pub tenant: TenantId,
    pub webhook_id: IncomingWebhookId,
    pub webhook_name: String,
    pub integration_id: Option<IntegrationId>,
    pub event_id: EventId,
    /// The SHA-256 (hex) of the dedupe key: the item's sort key.
    pub key_hash: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub request: ReceivedSnapshot,
    pub body: StoredBody,
    /// The webhook's actions as they were when the event was accepted (a later PATCH does not
    /// change what an accepted event runs).
    pub actions: Vec<Action>,
}

/// One action's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionState {
    pub status: ActionStatus,
    pub attempt: u32,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
}

/// An accepted event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    pub tenant: TenantId,
    pub webhook_id: IncomingWebhookId,
    pub webhook_name: String,
    pub integration_id: Option<IntegrationId>,
    pub event_id: EventId,
    pub key_hash: String,
    pub received_at: String,
    pub request: ReceivedSnapshot,
    pub body: StoredBody,
    pub actions: Vec<Action>,
    pub states: Vec<ActionState>,
    pub pending_actions: u64,
    pub finalized: bool,
}

/// What accepting an event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored: the event is new.
    New,
    /// An event with the same dedupe key was accepted within the window.
    Duplicate,
}

/// Which event an action belongs to: the item's key and the event it must still hold.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub tenant: &'a TenantId,
    pub webhook_id: &'a IncomingWebhookId,
    pub key_hash: &'a str,
    pub event_id: &'a EventId,
}

/// What claiming one action found.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionClaim {
    /// The attempt is this caller's.
    Claimed(InboundEvent),
    /// The attempt ran already, or the action is settled: nothing to do.
    Taken(InboundEvent),
    /// Another process holds the attempt and its lease is still running.
    Busy,
    /// No such event (expired).
    Gone,
}

/// How an attempt of an action ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOutcomeWrite {
    Success(Option<serde_json::Value>),
    /// Another attempt follows (queued by the caller before this write).
    Retry(String),
    Failed(String),
}

fn attr(index: usize, name: &str) -> String {
    format!("a{index}{name}")
}

pub fn event_pk(tenant: &TenantId, webhook_id: &IncomingWebhookId) -> String {
    format!("TENANT#{tenant}#WHEVT#{webhook_id}")
}

pub fn event_sk(key_hash: &str) -> String {
    format!("EVT#{key_hash}")
}

impl InboundEvent {
    fn from_item(item: &Item) -> Result<InboundEvent, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("inbound event item: {what}"));
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(value)) => Some(value.clone()),
            _ => None,
        };
        let number = |name: &str| match item.get(name) {
            Some(AttributeValue::N(value)) => value.parse::<u64>().ok(),
            _ => None,
        };
        let tenant = TenantId::parse(&text("tenantId").ok_or_else(|| corrupt("tenantId"))?)
            .map_err(|_| corrupt("tenantId"))?;
        let webhook_id =
            IncomingWebhookId::parse(&text("webhookId").ok_or_else(|| corrupt("webhookId"))?)
                .map_err(|_| corrupt("webhookId"))?;
        let event_id = EventId::parse(&text("eventId").ok_or_else(|| corrupt("eventId"))?)
            .map_err(|_| corrupt("eventId"))?;
        let integration_id = text("integrationId")
            .map(|id| IntegrationId::parse(&id).map_err(|_| corrupt("integrationId")))
            .transpose()?;
        let body = match (item.get("body"), text("payloadKey")) {
            (Some(AttributeValue::B(blob)), _) => StoredBody::Inline(blob.clone().into_inner()),
            (_, Some(key)) => StoredBody::Claim(key),
            _ => return Err(corrupt("neither body nor payloadKey")),
        };
        let request: ReceivedSnapshot = match item.get("request") {
            Some(value) => serde_dynamo::from_attribute_value(value.clone())
                .map_err(|e| corrupt(&format!("request: {e}")))?,
            None => return Err(corrupt("request")),
        };
        let actions: Vec<Action> =
            serde_json::from_str(&text("actions").ok_or_else(|| corrupt("actions"))?)
                .map_err(|e| corrupt(&format!("actions: {e}")))?;
        let states = (0..actions.len())
            .map(|i| {
                let status = text(&attr(i, "Status"))
                    .as_deref()
                    .and_then(ActionStatus::parse)
                    .ok_or_else(|| corrupt("action status"))?;
                Ok(ActionState {
                    status,
                    attempt: number(&attr(i, "Attempt")).unwrap_or(0) as u32,
                    error: text(&attr(i, "Error")),
                    result: text(&attr(i, "Result")).and_then(|r| serde_json::from_str(&r).ok()),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(InboundEvent {
            tenant,
            webhook_id,
            webhook_name: text("webhookName").unwrap_or_default(),
            integration_id,
            event_id,
            key_hash: item
                .get(keys::SK)
                .and_then(|sk| sk.as_s().ok())
                .and_then(|sk| sk.strip_prefix("EVT#"))
                .unwrap_or_default()
                .to_string(),
            received_at: text("receivedAt").unwrap_or_default(),
            request,
            body,
            actions,
            states,
            pending_actions: number("pendingActions").unwrap_or(0),
            finalized: matches!(item.get("finalized"), Some(AttributeValue::Bool(true))),
        })
    }
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    error: &SdkError<E, R>,
) -> bool {
    matches!(error, SdkError::ServiceError(service)
        if service.err().code() == Some("ConditionalCheckFailedException"))
}

impl Store {
    /// An UpdateItem of one event item.
    fn update_event(
        &self,
        tenant: &TenantId,
        webhook_id: &IncomingWebhookId,
        key_hash: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(event_pk(tenant, webhook_id)))
            .key(keys::SK, s(event_sk(key_hash)))
    }

    /// Dedupes and stores in one conditional PutItem.
    pub async fn accept_inbound_event(
        &self,
        event: &NewInboundEvent,
    ) -> Result<Accepted, StoreError> {
        let now = event.received_at;
        let mut item: Item = Item::new();
        item.insert(
            keys::PK.into(),
            s(event_pk(&event.tenant, &event.webhook_id)),
        );
        item.insert(keys::SK.into(), s(event_sk(&event.key_hash)));
        item.insert("type".into(), s("inbound_event"));
        item.insert("tenantId".into(), s(event.tenant.as_str()));
        item.insert("webhookId".into(), s(event.webhook_id.as_str()));
        item.insert("webhookName".into(), s(event.webhook_name.clone()));
        if let Some(integration) = &event.integration_id {
            item.insert("integrationId".into(), s(integration.as_str()));
        }
        item.insert("eventId".into(), s(event.event_id.as_str()));
        item.insert("receivedAt".into(), s(timestamp(now)));
        item.insert(
            keys::EXPIRES_AT.into(),
            n((now + chrono::Duration::days(DEDUPE_WINDOW_DAYS)).timestamp()),
        );
        item.insert(
            "request".into(),
            serde_dynamo::to_attribute_value(&event.request)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        match &event.body {
            StoredBody::Inline(gzipped) => {
                item.insert("body".into(), AttributeValue::B(gzipped.clone().into()))
            }
            StoredBody::Claim(key) => item.insert("payloadKey".into(), s(key.clone())),
        };
        let actions = serde_json::to_string(&event.actions)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        item.insert("actions".into(), s(actions));
        item.insert("pendingActions".into(), n(event.actions.len()));
        for index in 0..event.actions.len() {
            item.insert(attr(index, "Status"), s(ActionStatus::Pending.as_str()));
            item.insert(attr(index, "Attempt"), n(0));
        }
        let put = self
            .dynamo()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #exp < :now")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#exp", keys::EXPIRES_AT)
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Accepted::New),
            Err(error) if is_condition_failure(&error) => Ok(Accepted::Duplicate),
            Err(error) => Err(aws_error("PutItem", error)),
        }
    }

    /// Takes back an accepted event whose processing could not be queued, so the sender's retry is
    /// not answered as a duplicate. Only the item this accept wrote is removed.
    pub async fn withdraw_inbound_event(
        &self,
        tenant: &TenantId,
        webhook_id: &IncomingWebhookId,
        key_hash: &str,
        event_id: &EventId,
    ) -> Result<(), StoreError> {
        let result = self
            .dynamo()
            .delete_item()
            .table_name(self.table())
            .key(keys::PK, s(event_pk(tenant, webhook_id)))
            .key(keys::SK, s(event_sk(key_hash)))
            .condition_expression("eventId = :evt")
            .expression_attribute_values(":evt", s(event_id.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(aws_error("DeleteItem", error)),
        }
    }

    pub async fn get_inbound_event(
        &self,
        tenant: &TenantId,
        webhook_id: &IncomingWebhookId,
        key_hash: &str,
    ) -> Result<Option<InboundEvent>, StoreError> {
        let out = self
            .dynamo()
            .get_item()
            .table_name(self.table())
            .key(keys::PK, s(event_pk(tenant, webhook_id)))
            .key(keys::SK, s(event_sk(key_hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("GetItem", e))?;
        out.item.as_ref().map(InboundEvent::from_item).transpose()
    }

    /// Claims attempt `attempt` of action `index` of the event `event_id` (the item under
    /// `key_hash` may have been replaced by a later event once the window passed).
    pub async fn claim_action(
        &self,
        event: EventRef<'_>,
        index: usize,
        attempt: u32,
        timeout_seconds: u32,
    ) -> Result<ActionClaim, StoreError> {
        let EventRef {
            tenant,
            webhook_id,
            key_hash,
            event_id,
        } = event;
        let now = now_epoch_seconds();
        let result = self
            .update_event(tenant, webhook_id, key_hash)
            .update_expression("SET #st = :inFlight, #att = :n, #lease = :lease")
            .condition_expression(
                "eventId = :evt AND ((#att = :prev AND #st = :pending) \
                 OR (#att = :n AND #st = :inFlight AND #lease < :now))",
            )
            .expression_attribute_names("#st", attr(index, "Status"))
            .expression_attribute_names("#att", attr(index, "Attempt"))
            .expression_attribute_names("#lease", attr(index, "LeaseUntil"))
            .expression_attribute_values(":evt", s(event_id.as_str()))
            .expression_attribute_values(":inFlight", s(ActionStatus::InFlight.as_str()))
            .expression_attribute_values(":pending", s(ActionStatus::Pending.as_str()))
            .expression_attribute_values(":n", n(attempt))
            .expression_attribute_values(":prev", n(attempt.saturating_sub(1)))
            .expression_attribute_values(
                ":lease",
                n(now + i64::from(timeout_seconds) + ACTION_LEASE_MARGIN_SECONDS),
            )
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(ActionClaim::Claimed(InboundEvent::from_item(
                &out.attributes.unwrap_or_default(),
            )?)),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                let current = match service.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item,
                    _ => None,
                };
                let Some(current) = current.filter(|item| !item.is_empty()) else {
                    return Ok(ActionClaim::Gone);
                };
                let current = InboundEvent::from_item(&current)?;
                if current.event_id != *event_id {
                    return Ok(ActionClaim::Gone);
                }
                let busy = current.states.get(index).is_some_and(|state| {
                    state.status == ActionStatus::InFlight && state.attempt == attempt
                });
                Ok(if busy {
                    ActionClaim::Busy
                } else {
                    ActionClaim::Taken(current)
                })
            }
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }

    /// Writes how attempt `attempt` of action `index` ended, if the claim is still this caller's.
    /// Returns `None` when the claim was lost, else the number of actions still unsettled after
    /// this write (0: this write settled the last one).
    pub async fn settle_action(
        &self,
        tenant: &TenantId,
        webhook_id: &IncomingWebhookId,
        key_hash: &str,
        index: usize,
        attempt: u32,
        outcome: &ActionOutcomeWrite,
    ) -> Result<Option<u64>, StoreError> {
        let (status, error, result) = match outcome {
            ActionOutcomeWrite::Success(result) => (ActionStatus::Success, None, result.clone()),
            ActionOutcomeWrite::Retry(error) => (ActionStatus::Pending, Some(error.clone()), None),
            ActionOutcomeWrite::Failed(error) => (ActionStatus::Failed, Some(error.clone()), None),
        };
        let mut expression = "SET #st = :status, #err = :err".to_string();
        if result.is_some() {
            expression.push_str(", #res = :res");
        }
        if status.is_settled() {
            expression.push_str(" ADD pendingActions :minusOne");
        }
        let mut update = self
            .update_event(tenant, webhook_id, key_hash)
            .update_expression(expression)
            .condition_expression("#att = :n AND #st = :inFlight")
            .expression_attribute_names("#st", attr(index, "Status"))
            .expression_attribute_names("#att", attr(index, "Attempt"))
            .expression_attribute_names("#err", attr(index, "Error"))
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":err", error.map(s).unwrap_or(AttributeValue::Null(true)))
            .expression_attribute_values(":n", n(attempt))
            .expression_attribute_values(":inFlight", s(ActionStatus::InFlight.as_str()))
            .return_values(ReturnValue::UpdatedNew);
        if let Some(result) = result {
            update = update
                .expression_attribute_names("#res", attr(index, "Result"))
                .expression_attribute_values(":res", s(result.to_string()));
        }
        if status.is_settled() {
            update = update.expression_attribute_values(":minusOne", n(-1));
        }
        match update.send().await {
            Ok(out) => Ok(Some(
                out.attributes
                    .as_ref()
                    .and_then(|item| item.get("pendingActions"))
                    .and_then(|value| value.as_n().ok())
                    .and_then(|value| value.parse::<u64>().ok())
                    .unwrap_or(u64::MAX),
            )),
            Err(error) if is_condition_failure(&error) => Ok(None),
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }

    /// Marks the event finalized when every action is settled: the event as it is then, for exactly
    /// one caller (`None` for every other).
    pub async fn finalize_inbound_event(
        &self,
        tenant: &TenantId,
        webhook_id: &IncomingWebhookId,
        key_hash: &str,
        event_id: &EventId,
    ) -> Result<Option<InboundEvent>, StoreError> {
        let result = self
            .update_event(tenant, webhook_id, key_hash)
            .update_expression("SET finalized = :yes, completedAt = :at")
            .condition_expression(
                "eventId = :evt AND pendingActions <= :zero AND attribute_not_exists(finalized)",
            )
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":at", s(timestamp(chrono::Utc::now())))
            .expression_attribute_values(":evt", s(event_id.as_str()))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(InboundEvent::from_item(
                &out.attributes.unwrap_or_default(),
            )?)),
            Err(error) if is_condition_failure(&error) => Ok(None),
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_scheme() {
        let tenant = TenantId::parse("acme").expect("valid");
        let webhook = IncomingWebhookId::generate();
        assert_eq!(
            event_pk(&tenant, &webhook),
            format!("TENANT#acme#WHEVT#{webhook}")
        );
        assert_eq!(event_sk("ab12"), "EVT#ab12");
        assert_eq!(attr(3, "Status"), "a3Status");
    }

    #[test]
    fn settled_states_are_success_and_failed() {
        assert!(ActionStatus::Success.is_settled());
        assert!(ActionStatus::Failed.is_settled());
        assert!(!ActionStatus::Pending.is_settled());
        assert!(!ActionStatus::InFlight.is_settled());
        for status in [
            ActionStatus::Pending,
            ActionStatus::InFlight,
            ActionStatus::Success,
            ActionStatus::Failed,
        ] {
            assert_eq!(ActionStatus::parse(status.as_str()), Some(status));
        }
    }
}
