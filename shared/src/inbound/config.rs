//! What a tenant configures on an incoming webhook besides its name: the filters an event must pass
//! and the actions run for it. Parsed strictly (unknown fields are refused); the checks that need the
//! store (does `integrationId` belong to the tenant?) are the management routes' job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::path::BodyPath;
use crate::domain::IntegrationId;

/// `retryAttempts` of a `forward` action when its config leaves it out.
pub const DEFAULT_FORWARD_RETRY_ATTEMPTS: u32 = 5;
/// `retryDelaySeconds` of a `forward` action when its config leaves it out.
pub const DEFAULT_FORWARD_RETRY_DELAY_SECONDS: u32 = 30;

/// `verification.scheme` (the verifiers' own type).
pub use crate::webhooks::inbound::InboundScheme;

/// All given filters must match: each header equal (names case-insensitive, values exact), and the
/// value at `bodyPath` equal to `bodyValue` (both or neither are given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_path: Option<BodyPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_value: Option<Value>,
}

/// One action run for every accepted event, in the order given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", rename_all = "snake_case")]
pub enum Action {
    CreateEntity(EntityActionConfig),
    UpdateEntity(EntityActionConfig),
    Forward(ForwardConfig),
    TriggerSync(TriggerSyncConfig),
    TriggerAutomation(AutomationConfig),
}

impl Action {
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::CreateEntity(_) => "create_entity",
            Action::UpdateEntity(_) => "update_entity",
            Action::Forward(_) => "forward",
            Action::TriggerSync(_) => "trigger_sync",
            Action::TriggerAutomation(_) => "trigger_automation",
        }
    }
}

/// `create_entity` / `update_entity`: upsert one record of `entityType` with its id at `idPath` and
/// each local field from the body path mapped to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityActionConfig {
    pub entity_type: String,
    pub id_path: BodyPath,
    #[serde(default)]
    pub field_mappings: BTreeMap<String, BodyPath>,
}

/// `forward`: the raw body to `forwardUrl`, signed (Standard Webhooks) with the `forwardSecret`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardConfig {
    pub forward_url: String,
    #[serde(default)]
    pub forward_headers: BTreeMap<String, String>,
    #[serde(default = "default_forward_attempts")]
    pub retry_attempts: u32,
    #[serde(default = "default_forward_delay")]
    pub retry_delay_seconds: u32,
}

fn default_forward_attempts() -> u32 {
    DEFAULT_FORWARD_RETRY_ATTEMPTS
}

fn default_forward_delay() -> u32 {
    DEFAULT_FORWARD_RETRY_DELAY_SECONDS
}

/// `trigger_sync`: a sync job for `integrationId` (the webhook's own when left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerSyncConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<IntegrationId>,
    #[serde(default)]
    pub entities: Vec<String>,
}

/// `trigger_automation`: an `automation.triggered` event naming `automationId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutomationConfig {
    pub automation_id: String,
}

impl Filters {
    /// Whether a request with `headers` and `body` (parsed when JSON, else `None`) passes.
    pub fn matches(&self, headers: &http::HeaderMap, body: Option<&Value>) -> bool {
        let headers_match = self.headers.iter().all(|(name, expected)| {
            headers
                .get_all(name.as_str())
                .iter()
                .any(|value| value.as_bytes() == expected.as_bytes())
        });
        let body_matches = match (&self.body_path, &self.body_value) {
            (Some(path), Some(expected)) => body
                .and_then(|body| path.lookup(body))
                .is_some_and(|value| value == expected),
            _ => true,
        };
        headers_match && body_matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_read_the_documented_shape() {
        let integration = IntegrationId::generate();
        let actions: Vec<Action> = serde_json::from_value(json!([
            {"type": "create_entity", "config": {"entityType": "payment", "idPath": "data.object.id",
              "fieldMappings": {"amount": "data.object.amount_paid"}}},
            {"type": "forward", "config": {"forwardUrl": "https://app.example.com/hooks", "forwardHeaders": {}}},
            {"type": "trigger_sync", "config": {"integrationId": integration, "entities": ["event"]}},
            {"type": "trigger_automation", "config": {"automationId": "auto_42"}}
        ]))
        .expect("the documented example parses");
        assert_eq!(actions.len(), 4);
        match &actions[1] {
            Action::Forward(forward) => {
                assert_eq!(forward.retry_attempts, DEFAULT_FORWARD_RETRY_ATTEMPTS);
                assert_eq!(
                    forward.retry_delay_seconds,
                    DEFAULT_FORWARD_RETRY_DELAY_SECONDS
                );
            }
            other => panic!("expected forward, got {other:?}"),
        }
        let typo = json!([{"type": "forward", "config": {"forwardURL": "https://x.example"}}]);
        assert!(serde_json::from_value::<Vec<Action>>(typo).is_err());
    }

    #[test]
    fn filters_need_every_given_condition() {
        let filters: Filters = serde_json::from_value(json!({
            "headers": {"X-Event-Type": "payment"}, "bodyPath": "type", "bodyValue": "invoice.paid"
        }))
        .expect("valid");
        let mut headers = http::HeaderMap::new();
        headers.insert("x-event-type", "payment".parse().expect("header"));
        let paid = json!({"type": "invoice.paid"});
        assert!(filters.matches(&headers, Some(&paid)));
        assert!(!filters.matches(&headers, Some(&json!({"type": "invoice.created"}))));
        assert!(!filters.matches(&headers, None));
        assert!(!filters.matches(&http::HeaderMap::new(), Some(&paid)));
        assert!(Filters::default().matches(&http::HeaderMap::new(), None));
    }
}
