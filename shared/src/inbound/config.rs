//! What a tenant configures on an incoming webhook besides its name: the filters an event must pass
//! and the actions run for it. Parsed strictly (unknown fields are refused); the checks that need the
//! store (does `integrationId` belong to the tenant?) are the management routes' job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::path::BodyPath;
use crate::domain::IntegrationId;
use crate::error::FieldError;
use crate::events::EntityName;

/// `retryAttempts` of a `forward` action when its config leaves it out.
pub const DEFAULT_FORWARD_RETRY_ATTEMPTS: u32 = 5;
/// `retryDelaySeconds` of a `forward` action when its config leaves it out.
pub const DEFAULT_FORWARD_RETRY_DELAY_SECONDS: u32 = 30;

/// The most actions one incoming webhook runs.
pub const MAX_ACTIONS: usize = 10;
/// The most header conditions of `filters.headers`.
pub const MAX_FILTER_HEADERS: usize = 20;
/// The most entries of an entity action's `fieldMappings`.
pub const MAX_FIELD_MAPPINGS: usize = 50;
/// The longest local field name (a `fieldMappings` key).
pub const MAX_FIELD_NAME_CHARS: usize = 64;
/// The most entities one `trigger_sync` names.
pub const MAX_SYNC_ENTITIES: usize = 20;
/// The longest local entity name of `trigger_sync` (as in `syncSettings.entities[].localEntity`).
pub const MAX_SYNC_ENTITY_CHARS: usize = 128;
/// The longest `automationId`.
pub const MAX_AUTOMATION_ID_CHARS: usize = 128;
/// `retryAttempts` of a `forward` action: 0 to this.
pub const MAX_FORWARD_RETRY_ATTEMPTS: u32 = 20;
/// `retryDelaySeconds` of a `forward` action: 1 to this.
pub const MAX_FORWARD_RETRY_DELAY_SECONDS: u32 = 3600;

/// `verification.scheme` (the verifiers' own type).
pub use crate::webhooks::inbound::InboundScheme;

/// Where a scheme's verification `secret` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// The hub generates one when none is given (`standard`, `hmac_sha256`, `google_channel`).
    Generated,
    /// The provider's: the tenant must give it.
    Given,
    /// The scheme has no secret (`sendgrid` verifies with a public key, `none` with nothing).
    Unused,
}

impl InboundScheme {
    pub const fn secret_source(self) -> SecretSource {
        match self {
            InboundScheme::Standard | InboundScheme::HmacSha256 | InboundScheme::GoogleChannel => {
                SecretSource::Generated
            }
            InboundScheme::Sendgrid | InboundScheme::None => SecretSource::Unused,
            _ => SecretSource::Given,
        }
    }

    /// The longest `secret` a tenant may give: Google limits channel tokens to 256 characters.
    pub const fn max_secret_chars(self) -> usize {
        match self {
            InboundScheme::GoogleChannel => 256,
            _ => 512,
        }
    }

    /// Only `hmac_sha256` reads its signature from a configurable header.
    pub const fn takes_signature_header(self) -> bool {
        matches!(self, InboundScheme::HmacSha256)
    }

    /// Only `meta` answers a GET handshake with a `verifyToken`.
    pub const fn takes_verify_token(self) -> bool {
        matches!(self, InboundScheme::Meta)
    }

    /// Only `sendgrid` verifies with a (public) key instead of a secret.
    pub const fn takes_public_key(self) -> bool {
        matches!(self, InboundScheme::Sendgrid)
    }
}

/// A sendgrid public key is the base64 of a DER SubjectPublicKeyInfo: 91 bytes for P-256, with
/// room for other encodings of it.
pub const PUBLIC_KEY_BYTES: std::ops::RangeInclusive<usize> = 60..=200;

/// Why a sendgrid `publicKey` cannot be one: it must be the standard (padded) base64 of 60-200
/// bytes. (A shape check: the verifier parses the key itself.)
pub fn public_key_problem(key: &str) -> Option<String> {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Err(_) => Some("must be the standard (padded) base64 of the DER public key".to_string()),
        Ok(bytes) if !PUBLIC_KEY_BYTES.contains(&bytes.len()) => Some(format!(
            "decodes to {} bytes; a DER public key is {}-{} bytes (91 for P-256)",
            bytes.len(),
            PUBLIC_KEY_BYTES.start(),
            PUBLIC_KEY_BYTES.end()
        )),
        Ok(_) => None,
    }
}

/// All given filters must match: each header equal (names case-insensitive, values exact), and the
/// value at `bodyPath` equal to `bodyValue` (both or neither are given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_path: Option<BodyPath>,
    /// `Some(Value::Null)` when sent as `null`: the filter then wants `null` at `bodyPath`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_value"
    )]
    pub body_value: Option<Value>,
}

/// A `bodyValue` that is present is `Some`, even when it is `null`.
fn present_value<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
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
    /// What serde cannot check: the number of header conditions, header names and values an HTTP
    /// request can carry, and `bodyPath` with `bodyValue` (both or neither). Fields as `filters.…`.
    pub fn problems(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.headers.len() > MAX_FILTER_HEADERS {
            errors.push(FieldError::new(
                "filters.headers",
                format!("at most {MAX_FILTER_HEADERS} headers"),
            ));
        }
        for (name, value) in &self.headers {
            let field = format!("filters.headers.{}", printable(name));
            if http::HeaderName::try_from(name.as_str()).is_err() {
                errors.push(FieldError::new(field, "is not a valid header name"));
            } else if value.chars().count() > MAX_HEADER_VALUE_CHARS
                || http::HeaderValue::from_str(value).is_err()
            {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "must be a header value of at most {MAX_HEADER_VALUE_CHARS} visible characters"
                    ),
                ));
            }
        }
        match (&self.body_path, &self.body_value) {
            (Some(_), None) => errors.push(FieldError::new(
                "filters.bodyValue",
                "is required with bodyPath (the value the body must hold there)",
            )),
            (None, Some(_)) => errors.push(FieldError::new(
                "filters.bodyPath",
                "is required with bodyValue (where the body must hold it)",
            )),
            _ => {}
        }
        errors
    }

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

/// The longest header value a filter compares (as for outgoing webhook headers).
const MAX_HEADER_VALUE_CHARS: usize = 1024;

impl Action {
    /// What serde cannot check in one action's `config`, with fields named `<at>.config.…` (`at` =
    /// `actions[1]`). The checks that need the store or the network (does the integration exist, is
    /// the forward URL a target the SSRF guard allows) are the caller's.
    pub fn problems(&self, at: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let field = |name: &str| format!("{at}.config.{name}");
        match self {
            Action::CreateEntity(config) | Action::UpdateEntity(config) => {
                if let Err(problem) = EntityName::parse(&config.entity_type) {
                    errors.push(FieldError::new(field("entityType"), problem.0));
                }
                if config.field_mappings.len() > MAX_FIELD_MAPPINGS {
                    errors.push(FieldError::new(
                        field("fieldMappings"),
                        format!("at most {MAX_FIELD_MAPPINGS} fields"),
                    ));
                }
                for name in config.field_mappings.keys() {
                    if let Some(problem) = name_problem(name, MAX_FIELD_NAME_CHARS) {
                        errors.push(FieldError::new(
                            format!("{}.{}", field("fieldMappings"), printable(name)),
                            format!("a field name {problem}"),
                        ));
                    }
                }
            }
            Action::Forward(config) => {
                if config.retry_attempts > MAX_FORWARD_RETRY_ATTEMPTS {
                    errors.push(FieldError::new(
                        field("retryAttempts"),
                        format!("must be from 0 to {MAX_FORWARD_RETRY_ATTEMPTS}"),
                    ));
                }
                if !(1..=MAX_FORWARD_RETRY_DELAY_SECONDS).contains(&config.retry_delay_seconds) {
                    errors.push(FieldError::new(
                        field("retryDelaySeconds"),
                        format!("must be from 1 to {MAX_FORWARD_RETRY_DELAY_SECONDS}"),
                    ));
                }
            }
            Action::TriggerSync(config) => {
                if config.entities.len() > MAX_SYNC_ENTITIES {
                    errors.push(FieldError::new(
                        field("entities"),
                        format!("at most {MAX_SYNC_ENTITIES} entities"),
                    ));
                }
                for (i, entity) in config.entities.iter().enumerate() {
                    if let Some(problem) = name_problem(entity, MAX_SYNC_ENTITY_CHARS) {
                        errors.push(FieldError::new(
                            format!("{}[{i}]", field("entities")),
                            format!("a local entity name {problem}"),
                        ));
                    }
                }
            }
            Action::TriggerAutomation(config) => {
                if let Some(problem) = name_problem(&config.automation_id, MAX_AUTOMATION_ID_CHARS)
                {
                    errors.push(FieldError::new(field("automationId"), problem));
                }
            }
        }
        errors
    }
}

/// A name of 1 to `max` characters without control characters, or why not.
fn name_problem(name: &str, max: usize) -> Option<String> {
    if name.is_empty() || name.chars().count() > max {
        Some(format!("must be 1-{max} characters"))
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters".to_string())
    } else {
        None
    }
}

/// A key of the request as a field name can show it (no control characters, at most 64).
fn printable(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(64).collect()
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

    #[test]
    fn a_null_body_value_is_a_value_to_match() {
        let filters: Filters =
            serde_json::from_value(json!({"bodyPath": "deleted_at", "bodyValue": null}))
                .expect("valid");
        assert_eq!(filters.body_value, Some(Value::Null));
        assert!(filters.problems().is_empty());
        assert!(filters.matches(&http::HeaderMap::new(), Some(&json!({"deleted_at": null}))));
        assert!(!filters.matches(&http::HeaderMap::new(), Some(&json!({}))));
    }

    #[test]
    fn filter_problems_name_the_field() {
        let fields = |filters: Value| -> Vec<String> {
            let filters: Filters = serde_json::from_value(filters).expect("parses");
            filters.problems().into_iter().map(|e| e.field).collect()
        };
        assert_eq!(fields(json!({"bodyPath": "type"})), ["filters.bodyValue"]);
        assert_eq!(fields(json!({"bodyValue": 1})), ["filters.bodyPath"]);
        assert_eq!(
            fields(json!({"headers": {"bad header": "x", "X-Ok": "line\nbreak"}})),
            ["filters.headers.X-Ok", "filters.headers.bad header"]
        );
        let many: serde_json::Map<String, Value> = (0..=MAX_FILTER_HEADERS)
            .map(|i| (format!("x-h{i}"), json!("v")))
            .collect();
        assert_eq!(fields(json!({ "headers": many })), ["filters.headers"]);
    }

    #[test]
    fn action_problems_name_the_config_field() {
        let fields = |action: Value| -> Vec<String> {
            let action: Action = serde_json::from_value(action).expect("parses");
            action
                .problems("actions[1]")
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(
            fields(
                json!({"type": "create_entity", "config": {"entityType": "integration",
                "idPath": "id", "fieldMappings": {"": "a", "ok": "b"}}})
            ),
            [
                "actions[1].config.entityType",
                "actions[1].config.fieldMappings."
            ]
        );
        assert_eq!(
            fields(
                json!({"type": "forward", "config": {"forwardUrl": "https://x.example",
                "retryAttempts": 21, "retryDelaySeconds": 0}})
            ),
            [
                "actions[1].config.retryAttempts",
                "actions[1].config.retryDelaySeconds"
            ]
        );
        assert!(fields(
            json!({"type": "forward", "config": {"forwardUrl": "https://x.example",
            "retryAttempts": 0}})
        )
        .is_empty());
        assert_eq!(
            fields(json!({"type": "trigger_sync", "config": {"entities": ["event", ""]}})),
            ["actions[1].config.entities[1]"]
        );
        assert_eq!(
            fields(
                json!({"type": "trigger_automation", "config": {"automationId": "a".repeat(129)}})
            ),
            ["actions[1].config.automationId"]
        );
    }

    #[test]
    fn each_scheme_says_which_verification_fields_it_takes() {
        let schemes: Vec<InboundScheme> = serde_json::from_value(json!([
            "standard",
            "hmac_sha256",
            "stripe",
            "github",
            "slack",
            "meta",
            "twilio",
            "shopify",
            "hubspot_v3",
            "sendgrid",
            "google_channel",
            "none"
        ]))
        .expect("every wire name");
        for scheme in &schemes {
            assert_eq!(
                serde_json::to_value(scheme).expect("json"),
                json!(scheme.as_str())
            );
        }
        let generated: Vec<&str> = schemes
            .iter()
            .filter(|s| s.secret_source() == SecretSource::Generated)
            .map(|s| s.as_str())
            .collect();
        assert_eq!(generated, ["standard", "hmac_sha256", "google_channel"]);
        let unused: Vec<&str> = schemes
            .iter()
            .filter(|s| s.secret_source() == SecretSource::Unused)
            .map(|s| s.as_str())
            .collect();
        assert_eq!(unused, ["sendgrid", "none"]);
        assert_eq!(InboundScheme::GoogleChannel.max_secret_chars(), 256);
        assert!(
            InboundScheme::Meta.takes_verify_token() && !InboundScheme::Slack.takes_verify_token()
        );
    }
}
