//! `POST /api/integrations/{id}/actions/{action}`: one declared action of the provider (catalog
//! `actions`), sent with the integration's credentials (the OAuth token made valid first) through
//! the SSRF-guarded client and the provider's rate-limit bucket. The caller's input is checked
//! against the action's JSON Schema first; with `Idempotency-Key`, a repeat within 24 h answers
//! the first call's result and never calls the provider again (docs/decisions.md, "Actions").

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use hub_shared::actions::{loggable_input, output, succeeded, InputSchema, REDACTED};
use hub_shared::auth::AuthContext;
use hub_shared::catalog::{ActionDef, CatalogError, Provider, Values};
use hub_shared::credentials;
use hub_shared::domain::LogId;
use hub_shared::error::ApiError;
use hub_shared::http::OptionalJsonBody;
use hub_shared::http_client::{origin_for_logs, OutgoingRequest, SendErrorKind};
use hub_shared::oauth::provider_credentials;
use hub_shared::store::{
    timestamp, IdempotencyKey, IdempotencyState, IntegrationItem, IntegrationLog, LogAction,
    LogStatus, StoredResult,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::routes::integrations::{load, provider_of, take_provider_token, with_catalog_headers};
use crate::state::AppState;

/// A provider gets 20 s to answer an action: the API's own limit (API Gateway, 30 s) leaves room
/// for the token refresh and the writes around the call.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(20);
/// The provider's answer is read no further than this.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// How much of a provider's error body the problem shows (after redaction).
const EXCERPT_CHARS: usize = 500;
/// How long a repeat waits for a concurrent first call with the same key to finish.
const REPEAT_WAIT: Duration = Duration::from_secs(25);
const REPEAT_POLL: Duration = Duration::from_millis(150);
/// Marks an answer replayed from an earlier call with the same `Idempotency-Key`.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

pub async fn run(
    State(state): State<AppState>,
    auth: AuthContext,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    OptionalJsonBody(body): OptionalJsonBody<Value>,
) -> Result<Response, ApiError> {
    let item = load(&state, &auth, &id).await?;
    let provider = provider_of(&state, &item)?;
    let action = provider
        .actions
        .get(&name)
        .ok_or_else(|| ApiError::not_found("action"))?;
    let input = match body {
        None => Map::new(),
        Some(Value::Object(input)) => input,
        Some(_) => {
            return Err(ApiError::field(
                "input",
                "the body is the action's input: a JSON object",
            ))
        }
    };
    let schema = InputSchema::compile(&action.input).map_err(|e| ApiError::internal(&e))?;
    schema
        .check(&Value::Object(input.clone()))
        .map_err(ApiError::validation)?;

    let key = idempotency_key(&headers, &auth, &item, &name, &input)?;
    if let Some(key) = &key {
        match state.store.claim_idempotency_key(key).await? {
            IdempotencyState::Claimed => {}
            IdempotencyState::Done {
                request_hash,
                result,
            } => return replay(key, &request_hash, result),
            IdempotencyState::Pending { request_hash } => {
                return wait_for_first(&state, key, &request_hash).await
            }
        }
    }
    let call = Call {
        state: &state,
        item: &item,
        provider,
        action,
        name: &name,
        input: &input,
    };
    match call.send().await {
        Ok(result) => {
            if let Some(key) = &key {
                state.store.finish_idempotency_key(key, &result).await?;
            }
            Ok(respond(result, false))
        }
        Err(not_called) => {
            // Nothing reached the provider: a repeat may try again.
            if let Some(key) = &key {
                state.store.release_idempotency_key(key).await?;
            }
            Err(not_called)
        }
    }
}

/// The key of an `Idempotency-Key` header (1–255 visible ASCII characters), scoped to the
/// integration and the action, with what was asked (so a reused key with other input is refused).
fn idempotency_key(
    headers: &HeaderMap,
    auth: &AuthContext,
    item: &IntegrationItem,
    action: &str,
    input: &Map<String, Value>,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = raw.to_str().unwrap_or("");
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    let canonical = canonical(&Value::Object(input.clone()));
    Ok(Some(IdempotencyKey {
        tenant: auth.tenant.clone(),
        integration_id: item.id.clone(),
        action: action.to_string(),
        key_hash: hex(Sha256::digest(text.as_bytes())),
        request_hash: hex(Sha256::digest(canonical.as_bytes())),
        owner: LogId::generate().to_string(),
    }))
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON text with every object's keys sorted, so the same input written in another key order is
/// the same request.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(members) => {
            let mut keys: Vec<&String> = members.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&members[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

fn replay(
    key: &IdempotencyKey,
    request_hash: &str,
    result: StoredResult,
) -> Result<Response, ApiError> {
    if request_hash != key.request_hash {
        return Err(reused_key());
    }
    Ok(respond(result, true))
}

fn reused_key() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_reused",
        "Idempotency key reused",
        "this Idempotency-Key was used for another input of this action within 24 hours",
    )
}

/// A concurrent repeat: waits for the first call's result, polling the key.
async fn wait_for_first(
    state: &AppState,
    key: &IdempotencyKey,
    request_hash: &str,
) -> Result<Response, ApiError> {
    if request_hash != key.request_hash {
        return Err(reused_key());
    }
    let deadline = Instant::now() + REPEAT_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(REPEAT_POLL).await;
        match state.store.idempotency_state(key).await? {
            Some(IdempotencyState::Done {
                request_hash,
                result,
            }) => return replay(key, &request_hash, result),
            Some(IdempotencyState::Pending { .. }) => {}
            // The first call gave the key up without calling (rate limited, no token): so does
            // this one, rather than call in its place unasked.
            Some(IdempotencyState::Claimed) | None => break,
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "Idempotency key in use",
        "another request with this Idempotency-Key has not finished (or gave up before calling \
         the provider); send it again later",
    ))
}

/// An answer as the caller gets it, first time or replayed.
fn respond(result: StoredResult, replayed: bool) -> Response {
    let status = StatusCode::from_u16(result.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, axum::Json(result.body)).into_response();
    if status.is_client_error() || status.is_server_error() {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(hub_shared::error::PROBLEM_CONTENT_TYPE),
        );
    }
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// One action call. `send` answers `Ok` with the result once the provider was called (success,
/// provider error or timeout: all are what the call did, kept for repeats), or `Err` when it
/// never was.
struct Call<'a> {
    state: &'a AppState,
    item: &'a IntegrationItem,
    provider: &'a Provider,
    action: &'a ActionDef,
    name: &'a str,
    input: &'a Map<String, Value>,
}

impl Call<'_> {
    async fn send(&self) -> Result<StoredResult, ApiError> {
        let state = self.state;
        let tenant = &self.item.tenant_id;
        take_provider_token(state, self.item, self.provider).await?;
        let fields = provider_credentials(state, self.provider, self.item).await?;
        let plain = credentials::to_values(&fields);
        let values = Values::new(&self.item.config, &plain).with_input(self.input);
        let prepared = self
            .provider
            .prepare_action(self.action, &values)
            .map_err(input_error)?;
        let secrets = secret_values(&plain, self.action, self.input);
        drop(plain);
        drop(fields);

        let origin = origin_for_logs(&prepared.request.url);
        let request = OutgoingRequest::new(prepared.request.method, prepared.request.url)
            .timeout(ACTION_TIMEOUT)
            .max_response_bytes(MAX_RESPONSE_BYTES)
            .header(
                http::header::ACCEPT,
                HeaderValue::from_static("application/json"),
            );
        let mut request = with_catalog_headers(request, &prepared.request.headers)?;
        if let Some((content_type, body)) = prepared.body {
            request = request
                .header(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type),
                )
                .body(body);
        }

        let started_at = chrono::Utc::now();
        let started = Instant::now();
        let (result, http_status, error) = match state.provider_http.send(request).await {
            Ok(response) => {
                let status = response.status.as_u16();
                let body: Value = if response.body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&response.body).unwrap_or(Value::Null)
                };
                if response.status.is_success() && succeeded(self.action, &body) {
                    let answer = json!({
                        "output": output(self.action, status, &body),
                        "httpStatus": status,
                        "durationMs": started.elapsed().as_millis() as u64,
                    });
                    (
                        StoredResult {
                            status: 200,
                            body: answer,
                        },
                        Some(status),
                        None,
                    )
                } else {
                    let excerpt = excerpt(&response.body, &secrets);
                    let problem = ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "provider_error",
                        "Provider error",
                        format!("{origin} answered {status} to {}", self.name),
                    )
                    .with_extension("providerStatus", json!(status))
                    .with_extension("providerBody", json!(excerpt));
                    let detail = problem.detail.clone();
                    (
                        stored(&problem),
                        Some(status),
                        Some(("provider_error", detail)),
                    )
                }
            }
            Err(error) => {
                let problem = match error.kind {
                    SendErrorKind::Timeout { limit } => ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "provider_timeout",
                        "Provider timeout",
                        format!("{origin} did not answer {} within {limit:?}", self.name),
                    ),
                    _ => ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "provider_error",
                        "Provider error",
                        format!("{origin}: {error}"),
                    )
                    .with_extension("providerStatus", Value::Null),
                };
                let detail = problem.detail.clone();
                (stored(&problem), None, Some((problem.code, detail)))
            }
        };
        let duration = started.elapsed();
        self.log(started_at, duration, http_status, error.as_ref())
            .await?;
        tracing::info!(
            tenantId = %tenant, integrationId = %self.item.id, action = self.name,
            httpStatus = http_status.map(u64::from), status = result.status,
            durationMs = duration.as_millis() as u64, "action"
        );
        Ok(result)
    }

    /// The integration log of the call: the action, the provider's status, the duration, the
    /// input with its secret properties redacted; never a credential or the answer.
    async fn log(
        &self,
        started_at: chrono::DateTime<chrono::Utc>,
        duration: Duration,
        http_status: Option<u16>,
        error: Option<&(&'static str, String)>,
    ) -> Result<(), ApiError> {
        let completed_at = chrono::Utc::now();
        let log = IntegrationLog {
            id: LogId::generate(),
            integration_id: self.item.id.clone(),
            action: LogAction::Action,
            direction: Some("outgoing".to_string()),
            status: if error.is_none() {
                LogStatus::Success
            } else {
                LogStatus::Failed
            },
            summary: Some(json!({
                "action": self.name,
                "httpStatus": http_status,
                "durationMs": duration.as_millis() as u64,
                "input": loggable_input(self.action, self.input),
            })),
            failed_items: Vec::new(),
            error_message: error.map(|(_, detail)| detail.clone()),
            error_code: error.map(|(code, _)| code.to_string()),
            started_at: timestamp(started_at),
            completed_at: timestamp(completed_at),
            duration_ms: duration.as_millis() as u64,
            job_id: None,
        };
        self.state
            .store
            .put_integration_log(&self.item.tenant_id, &log)
            .await?;
        Ok(())
    }
}

fn stored(problem: &ApiError) -> StoredResult {
    StoredResult {
        status: problem.status.as_u16(),
        body: problem.problem_json(),
    }
}

/// A request the input cannot complete names the input field; any other is the integration's
/// configuration.
fn input_error(error: CatalogError) -> ApiError {
    if let CatalogError::MissingValue { placeholder, .. } = &error {
        if let Some(name) = placeholder
            .strip_prefix("{input.")
            .and_then(|rest| rest.strip_suffix('}'))
        {
            return ApiError::field(name, "is required by this action's request");
        }
    }
    error.into()
}

/// The values never to show back: every credential string, and every secret input value.
fn secret_values(
    credentials: &Map<String, Value>,
    action: &ActionDef,
    input: &Map<String, Value>,
) -> Vec<String> {
    let redacted = loggable_input(action, input);
    let secret_inputs = input
        .iter()
        .filter(|(name, _)| redacted[name.as_str()] == REDACTED)
        .filter_map(|(_, value)| value.as_str().map(str::to_owned));
    credentials
        .values()
        .filter_map(|value| value.as_str().map(str::to_owned))
        .chain(secret_inputs)
        .filter(|value| value.len() >= 4)
        .collect()
}

/// The start of a provider's error body, with any secret it echoes replaced.
fn excerpt(body: &[u8], secrets: &[String]) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    for secret in secrets {
        text = text.replace(secret.as_str(), REDACTED);
    }
    if text.chars().count() > EXCERPT_CHARS {
        text = text.chars().take(EXCERPT_CHARS).collect::<String>() + "…";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order() {
        let a = json!({"to": "+1", "body": "b", "nested": {"x": 1, "y": [1, {"b": 2, "a": 1}]}});
        let b = json!({"nested": {"y": [1, {"a": 1, "b": 2}], "x": 1}, "body": "b", "to": "+1"});
        assert_eq!(canonical(&a), canonical(&b));
        assert_ne!(canonical(&a), canonical(&json!({"to": "+2", "body": "b"})));
    }

    #[test]
    fn excerpts_hide_secrets_and_stay_short() {
        let body = format!(
            "{{\"error\": \"bad key sk_live_abcdef\", \"pad\": \"{}\"}}",
            "x".repeat(900)
        );
        let shown = excerpt(body.as_bytes(), &["sk_live_abcdef".to_string()]);
        assert!(shown.contains("bad key [redacted]"), "{shown}");
        assert!(!shown.contains("sk_live"));
        assert_eq!(shown.chars().count(), EXCERPT_CHARS + 1);
    }
}
