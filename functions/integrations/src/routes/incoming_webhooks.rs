//! Incoming webhooks: `POST/GET /api/webhooks/incoming`, `GET/PATCH/DELETE
//! /api/webhooks/incoming/{id}`, and the incoming side of the shared paths
//! `POST /api/webhooks/{id}/rotate-secret`, `POST /api/webhooks/{id}/test` (a dry run) and
//! `GET /api/webhooks/{id}/logs` (receipts). A generated verification secret and the forward secret
//! are returned once and stored only as envelopes.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use hub_shared::auth::AuthContext;
use hub_shared::domain::{Description, DisplayName, IncomingWebhookId, IntegrationId, TenantId};
use hub_shared::error::{ApiError, FieldError};
use hub_shared::http::{parse_value_at, JsonBody};
use hub_shared::inbound::{
    extract_record, Action, AutomationConfig, EntityActionConfig, Filters, ForwardConfig,
    SecretSource, TriggerSyncConfig, MAX_ACTIONS,
};
use hub_shared::store::{
    timestamp, IncomingWebhookChanges, IncomingWebhookItem, NewIncomingWebhook, ReceiptLog,
    UpdateWebhookError, VerificationSecrets, VerificationSettings,
};
use hub_shared::webhooks::sign::{generate_secret, ROTATION_OVERLAP};
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

mod verification;

use verification::{check_verification, VerificationInput};

use crate::routes::integrations::storable_problem;
use crate::routes::outgoing_webhooks::{check_headers, check_url};
use crate::routes::{
    cursor_param, expected_version, list_body, non_null, parse_limit, parsed, present, versioned,
};
use crate::state::AppState;

/// The most headers of a dry run.
const MAX_DRY_RUN_HEADERS: usize = 50;
const MAX_DRY_RUN_HEADER_VALUE_CHARS: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateIncomingWebhookRequest {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    is_enabled: Option<bool>,
    #[serde(default)]
    integration_id: Option<IntegrationId>,
    verification: VerificationInput,
    #[serde(default, deserialize_with = "non_null")]
    filters: Option<Filters>,
    #[serde(default, deserialize_with = "non_null")]
    actions: Option<Vec<ActionInput>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchIncomingWebhookRequest {
    #[serde(default, deserialize_with = "non_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "non_null")]
    is_enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    integration_id: Option<Option<IntegrationId>>,
    #[serde(default, deserialize_with = "non_null")]
    verification: Option<VerificationInput>,
    #[serde(default, deserialize_with = "non_null")]
    filters: Option<Filters>,
    #[serde(default, deserialize_with = "non_null")]
    actions: Option<Vec<ActionInput>>,
}

/// One action as sent: its `config` is read by the type it names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    #[serde(rename = "type")]
    kind: ActionKind,
    config: Value,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionKind {
    CreateEntity,
    UpdateEntity,
    Forward,
    TriggerSync,
    TriggerAutomation,
}

/// `POST /api/webhooks/{id}/test` of an incoming webhook: a body (any JSON value; a string is the
/// raw text of a body, JSON when it parses as JSON) and the headers it came with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    body: Value,
    #[serde(default, deserialize_with = "non_null")]
    headers: Option<BTreeMap<String, String>>,
}

pub async fn create(
    State(state): State<AppState>,
    auth: AuthContext,
    JsonBody(request): JsonBody<CreateIncomingWebhookRequest>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let name = parsed("name", DisplayName::parse(&request.name), &mut errors);
    let description = request
        .description
        .as_deref()
        .and_then(|text| parsed("description", Description::parse(text), &mut errors));
    let verification = check_verification(&request.verification, None)
        .map_err(|problems| errors.extend(problems))
        .ok();
    let filters = request.filters.unwrap_or_default();
    errors.extend(check_filters(&filters));
    let actions = check_actions(
        &state,
        &auth.tenant,
        request.actions.as_deref().unwrap_or(&[]),
    )
    .await?
    .map_err(|problems| errors.extend(problems))
    .ok();
    if let Some(integration) = &request.integration_id {
        errors.extend(check_integration(&state, &auth.tenant, integration, "integrationId").await?);
    }
    if let Some(actions) = &actions {
        errors.extend(check_integration_links(
            request.integration_id.as_ref(),
            actions,
            true,
        ));
    }
    let (Some(name), Some(plan), Some(actions), true) =
        (name, verification, actions, errors.is_empty())
    else {
        return Err(ApiError::validation(errors));
    };

    let id = IncomingWebhookId::generate();
    let verification = plan.seal(&state, &auth.tenant, &id).await?;
    let forward_secret = forwards(&actions).then(generated_secret);
    let forward_secret_envelope = match &forward_secret {
        Some(secret) => Some(
            state
                .store
                .seal_forward_secret(&auth.tenant, &id, secret)
                .await?,
        ),
        None => None,
    };
    let item = IncomingWebhookItem::new(
        NewIncomingWebhook {
            id: id.clone(),
            tenant: auth.tenant.clone(),
            name,
            description,
            is_enabled: request.is_enabled.unwrap_or(true),
            integration_id: request.integration_id,
            verification,
            forward_secret_envelope,
            filters,
            actions,
            created_by: auth.user.clone(),
        },
        chrono::Utc::now(),
    );
    state.store.create_incoming_webhook(&item).await?;
    tracing::info!(tenantId = %auth.tenant, webhookId = %id, scheme = item.scheme.as_str(),
        "incoming webhook created");
    let mut body = item.to_resource(&state.config.public_base_url);
    if let Some(secret) = &plan.generated {
        body["secret"] = Value::String(secret.to_string());
    }
    if let Some(secret) = &forward_secret {
        body["forwardSecret"] = Value::String(secret.to_string());
    }
    let mut response = versioned(StatusCode::CREATED, item.version, body);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/webhooks/incoming/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn list(
    State(state): State<AppState>,
    auth: AuthContext,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_limit(&query)?;
    let page = state
        .store
        .list_incoming_webhooks(&auth.tenant, limit, cursor_param(&query))
        .await?
        .map_err(|_| ApiError::invalid_cursor())?;
    let base = &state.config.public_base_url;
    Ok(list_body(
        page.items
            .iter()
            .map(|item| item.to_resource(base))
            .collect(),
        page.next_cursor,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let item = load(&state, &auth, &id).await?;
    Ok(versioned(
        StatusCode::OK,
        item.version,
        item.to_resource(&state.config.public_base_url),
    ))
}

/// Changes the fields sent. The write is conditioned on the version read (the checks of actions
/// and verification depend on it): a stale `If-Match` is 412, a change that raced another one
/// without `If-Match` is 409.
pub async fn patch(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PatchIncomingWebhookRequest>,
) -> Result<Response, ApiError> {
    let id = webhook_id(&id)?;
    let if_match = expected_version(&headers)?;
    let current = state
        .store
        .get_incoming_webhook(&auth.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    if if_match.is_some_and(|version| version != current.version) {
        return Err(ApiError::precondition_failed(Some(current.version)));
    }

    let mut errors = Vec::new();
    let mut changes = IncomingWebhookChanges::default();
    if let Some(name) = &request.name {
        changes.name = parsed("name", DisplayName::parse(name), &mut errors);
    }
    if let Some(description) = &request.description {
        let result = description.as_deref().map(Description::parse).transpose();
        changes.description = parsed("description", result, &mut errors);
    }
    let mut plan = None;
    if let Some(verification) = &request.verification {
        let kept = if verification.scheme == current.scheme {
            Some((
                &current,
                Zeroizing::new(state.store.open_verification_secrets(&current).await?),
            ))
        } else {
            None
        };
        let kept = kept.as_ref().map(|(item, secrets)| (*item, &**secrets));
        match check_verification(verification, kept) {
            Ok(checked) => plan = Some(checked),
            Err(problems) => errors.extend(problems),
        }
    }
    if let Some(filters) = &request.filters {
        errors.extend(check_filters(filters));
    }
    let actions = match &request.actions {
        Some(inputs) => match check_actions(&state, &auth.tenant, inputs).await? {
            Ok(actions) => Some(actions),
            Err(problems) => {
                errors.extend(problems);
                None
            }
        },
        None => None,
    };
    if let Some(Some(integration)) = &request.integration_id {
        errors.extend(check_integration(&state, &auth.tenant, integration, "integrationId").await?);
    }
    let final_integration = match &request.integration_id {
        Some(integration) => integration.as_ref(),
        None => current.integration_id.as_ref(),
    };
    let final_actions = actions.as_ref().unwrap_or(&current.actions);
    if request.actions.is_none() || actions.is_some() {
        errors.extend(check_integration_links(
            final_integration,
            final_actions,
            request.actions.is_some(),
        ));
    }
    let nothing_sent = request.name.is_none()
        && request.description.is_none()
        && request.is_enabled.is_none()
        && request.integration_id.is_none()
        && request.verification.is_none()
        && request.filters.is_none()
        && request.actions.is_none();
    if nothing_sent {
        errors.push(FieldError::new(
            "(body)",
            "send at least one field to change",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }

    // The first forward action brings the forward secret (kept if forwards are removed later).
    let forward_secret =
        (forwards(final_actions) && current.forward_secret.is_none()).then(generated_secret);
    if let Some(secret) = &forward_secret {
        changes.forward_secret = Some(
            state
                .store
                .seal_forward_secret(&auth.tenant, &id, secret)
                .await?,
        );
    }
    if let Some(plan) = &plan {
        changes.verification = Some(match plan.reuses_envelope(&current) {
            Some(envelope) => plan.settings(envelope),
            None => plan.seal(&state, &auth.tenant, &id).await?,
        });
    }
    changes.is_enabled = request.is_enabled;
    changes.integration_id = request.integration_id;
    changes.filters = request.filters;
    changes.actions = actions;
    let updated = state
        .store
        .update_incoming_webhook(&auth.tenant, &id, changes, Some(current.version))
        .await
        .map_err(|error| match error {
            UpdateWebhookError::VersionMismatch { .. } if if_match.is_none() => ApiError::conflict(
                "the webhook changed while it was being updated; read it again and retry",
            ),
            other => other.into(),
        })?;
    tracing::info!(tenantId = %auth.tenant, webhookId = %id, version = updated.version,
        "incoming webhook updated");
    let mut body = updated.to_resource(&state.config.public_base_url);
    if let Some(secret) = plan.as_ref().and_then(|plan| plan.generated.as_ref()) {
        body["secret"] = Value::String(secret.to_string());
    }
    if let Some(secret) = &forward_secret {
        body["forwardSecret"] = Value::String(secret.to_string());
    }
    Ok(versioned(StatusCode::OK, updated.version, body))
}

pub async fn delete(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = webhook_id(&id)?;
    match state
        .store
        .delete_incoming_webhook(&auth.tenant, &id)
        .await?
    {
        Some(_) => {
            tracing::info!(tenantId = %auth.tenant, webhookId = %id, "incoming webhook deleted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(ApiError::not_found("webhook")),
    }
}

/// Which secret `rotate-secret` replaces (`?target=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationTarget {
    Verification,
    Forward,
}

impl RotationTarget {
    /// `?target=`: absent or `verification`, or `forward`.
    pub fn parse(query: &HashMap<String, String>) -> Result<RotationTarget, ApiError> {
        match query.get("target").map(String::as_str) {
            None | Some("verification") => Ok(RotationTarget::Verification),
            Some("forward") => Ok(RotationTarget::Forward),
            Some(_) => Err(ApiError::field(
                "target",
                "must be verification (the default) or forward",
            )),
        }
    }
}

/// `POST /api/webhooks/{id}/rotate-secret` for an incoming webhook: a new generated secret,
/// returned once, the old one still valid for 24 hours. A secret the provider gave cannot be
/// rotated here (it is changed with PATCH `verification.secret`).
pub async fn rotate_secret(
    state: &AppState,
    auth: &AuthContext,
    id: &str,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let current = load(state, auth, id).await?;
    let target = RotationTarget::parse(query)?;
    let secret = generated_secret();
    let previous_expires_at = timestamp(chrono::Utc::now() + ROTATION_OVERLAP);
    let mut changes = IncomingWebhookChanges::default();
    match target {
        RotationTarget::Verification => {
            if current.scheme.secret_source() != SecretSource::Generated
                || !current.secret_generated
            {
                return Err(ApiError::not_supported(format!(
                    "the {} verification secret is not one the hub generated: set the new one with \
                     PATCH of verification.secret",
                    current.scheme.as_str()
                )));
            }
            let old = Zeroizing::new(state.store.open_verification_secrets(&current).await?);
            let secrets = Zeroizing::new(VerificationSecrets {
                secret: Some(secret.to_string()),
                verify_token: old.verify_token.clone(),
                previous_secret: old.secret.clone(),
                previous_expires_at: Some(previous_expires_at.clone()),
            });
            let envelope = state
                .store
                .seal_verification_secrets(&auth.tenant, &current.id, &secrets)
                .await?;
            changes.verification = Some(VerificationSettings {
                scheme: current.scheme,
                signature_header: current.signature_header.clone(),
                public_key: current.public_key.clone(),
                envelope,
                secret_generated: true,
                verify_token_configured: current.verify_token_configured,
            });
        }
        RotationTarget::Forward => {
            let Some(old) = current
                .forward_secret
                .as_ref()
                .filter(|_| current.forwards())
            else {
                return Err(ApiError::not_supported(
                    "the webhook has no forward action, so no forward secret to rotate",
                ));
            };
            changes.forward_secret = Some(
                state
                    .store
                    .seal_forward_secret(&auth.tenant, &current.id, &secret)
                    .await?,
            );
            // The replaced envelope moves as it is: its AAD names the same field.
            changes.forward_secret_previous = Some((old.to_vec(), previous_expires_at.clone()));
        }
    }
    let updated = state
        .store
        .update_incoming_webhook(&auth.tenant, &current.id, changes, Some(current.version))
        .await
        .map_err(|error| match error {
            UpdateWebhookError::VersionMismatch { .. } => {
                ApiError::conflict("the webhook changed while rotating its secret; rotate again")
            }
            other => other.into(),
        })?;
    tracing::info!(tenantId = %auth.tenant, webhookId = %current.id, ?target,
        "incoming webhook secret rotated");
    Ok(versioned(
        StatusCode::OK,
        updated.version,
        json!({"id": updated.id, "secret": secret.as_str(), "previousExpiresAt": previous_expires_at}),
    ))
}

/// `POST /api/webhooks/{id}/test` for an incoming webhook: the given body and headers through the
/// filters and actions, as the dispatcher would take them; nothing is stored or sent, and the
/// verification is not checked.
pub async fn dry_run(
    state: &AppState,
    auth: &AuthContext,
    id: &str,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    // A missing webhook is a 404 whatever the body.
    let webhook = load(state, auth, id).await?;
    let JsonBody(request) = JsonBody::<DryRunRequest>::from_request(request, state).await?;
    let headers = dry_run_headers(request.headers.as_ref().unwrap_or(&BTreeMap::new()))?;
    let body = match request.body {
        Value::String(text) => serde_json::from_str::<Value>(&text).ok(),
        other => Some(other),
    };
    let matched = webhook.filters.matches(&headers, body.as_ref());
    let integration = webhook.integration_id.as_ref();
    let actions: Vec<Value> = webhook
        .actions
        .iter()
        .map(|action| {
            json!({
                "type": action.type_name(),
                "wouldRun": matched,
                "result": dry_run_result(action, body.as_ref(), integration),
            })
        })
        .collect();
    Ok(Json(json!({"matched": matched, "actions": actions})))
}

/// `GET /api/webhooks/{id}/logs` for an incoming webhook: its receipts, newest first.
pub async fn list_logs(
    state: &AppState,
    auth: &AuthContext,
    id: &str,
    query: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_limit(query)?;
    let webhook = load(state, auth, id).await?;
    let page = state
        .store
        .list_receipt_logs(&auth.tenant, &webhook.id, limit, cursor_param(query))
        .await?
        .map_err(|_| ApiError::invalid_cursor())?;
    Ok(list_body(
        page.items.iter().map(ReceiptLog::to_summary).collect(),
        page.next_cursor,
    ))
}

/// The caller's incoming webhook, or 404 (another tenant's is answered exactly like a missing one).
pub async fn load(
    state: &AppState,
    auth: &AuthContext,
    raw_id: &str,
) -> Result<IncomingWebhookItem, ApiError> {
    let id = webhook_id(raw_id)?;
    state
        .store
        .get_incoming_webhook(&auth.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// Whether a path id is an incoming webhook's (the shared `/api/webhooks/{id}/…` paths dispatch
/// on it).
pub fn is_incoming_id(raw: &str) -> bool {
    IncomingWebhookId::parse(raw).is_ok()
}

fn webhook_id(raw: &str) -> Result<IncomingWebhookId, ApiError> {
    IncomingWebhookId::parse(raw).map_err(|_| ApiError::not_found("webhook"))
}

/// A new `whsec_` + base64(32 random bytes) secret: every secret the hub generates for incoming
/// webhooks has this form (`standard` needs it; `hmac_sha256` and `google_channel` take it too).
fn generated_secret() -> Zeroizing<String> {
    Zeroizing::new(generate_secret().expose().to_string())
}

fn forwards(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|action| matches!(action, Action::Forward(_)))
}

fn check_filters(filters: &Filters) -> Vec<FieldError> {
    let mut errors = filters.problems();
    if let Some(value) = &filters.body_value {
        errors.extend(storable_problem(value, "filters.bodyValue", 0));
    }
    errors
}

/// Reads each action's `config` by its type and checks it: its own rules, and for `forward` the URL
/// (SSRF guard) and headers as for an outgoing webhook; a `trigger_sync` integration must be the
/// tenant's.
async fn check_actions(
    state: &AppState,
    tenant: &TenantId,
    inputs: &[ActionInput],
) -> Result<Result<Vec<Action>, Vec<FieldError>>, ApiError> {
    let mut errors = Vec::new();
    if inputs.len() > MAX_ACTIONS {
        errors.push(FieldError::new(
            "actions",
            format!("at most {MAX_ACTIONS} actions"),
        ));
    }
    let mut actions = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let at = format!("actions[{i}]");
        let config_at = format!("{at}.config");
        let action = match input.kind {
            ActionKind::CreateEntity => {
                parse_value_at::<EntityActionConfig>(&input.config, &config_at)
                    .map(Action::CreateEntity)
            }
            ActionKind::UpdateEntity => {
                parse_value_at::<EntityActionConfig>(&input.config, &config_at)
                    .map(Action::UpdateEntity)
            }
            ActionKind::Forward => {
                parse_value_at::<ForwardConfig>(&input.config, &config_at).map(Action::Forward)
            }
            ActionKind::TriggerSync => {
                parse_value_at::<TriggerSyncConfig>(&input.config, &config_at)
                    .map(Action::TriggerSync)
            }
            ActionKind::TriggerAutomation => {
                parse_value_at::<AutomationConfig>(&input.config, &config_at)
                    .map(Action::TriggerAutomation)
            }
        };
        let action = match action {
            Ok(action) => action,
            Err(problem) => {
                errors.push(problem);
                continue;
            }
        };
        errors.extend(action.problems(&at));
        match &action {
            Action::Forward(forward) => {
                errors.extend(
                    check_url(
                        state,
                        &format!("{config_at}.forwardUrl"),
                        &forward.forward_url,
                    )
                    .await,
                );
                errors.extend(check_headers(
                    &format!("{config_at}.forwardHeaders"),
                    &forward.forward_headers,
                ));
            }
            Action::TriggerSync(sync) => {
                if let Some(integration) = &sync.integration_id {
                    let field = format!("{config_at}.integrationId");
                    errors.extend(check_integration(state, tenant, integration, &field).await?);
                }
            }
            _ => {}
        }
        actions.push(action);
    }
    Ok(if errors.is_empty() {
        Ok(actions)
    } else {
        Err(errors)
    })
}

/// `integration` must be one of the tenant's (another tenant's is as unknown as a missing one).
async fn check_integration(
    state: &AppState,
    tenant: &TenantId,
    integration: &IntegrationId,
    field: &str,
) -> Result<Option<FieldError>, ApiError> {
    Ok(state
        .store
        .get_integration(tenant, integration)
        .await?
        .is_none()
        .then(|| FieldError::new(field, "is not an integration of your tenant")))
}

/// Entity actions write records under the webhook's integration, and a `trigger_sync` without its
/// own `integrationId` syncs the webhook's: both need `integrationId` on the webhook. With
/// `actions_sent`, a `trigger_sync` problem names the action's field, else the webhook's.
fn check_integration_links(
    integration: Option<&IntegrationId>,
    actions: &[Action],
    actions_sent: bool,
) -> Vec<FieldError> {
    if integration.is_some() {
        return Vec::new();
    }
    let mut errors = Vec::new();
    for (i, action) in actions.iter().enumerate() {
        match action {
            Action::CreateEntity(_) | Action::UpdateEntity(_) => {
                let problem = FieldError::new(
                    "integrationId",
                    format!(
                        "is required by the {} action (its records belong to the webhook's integration)",
                        action.type_name()
                    ),
                );
                if !errors.contains(&problem) {
                    errors.push(problem);
                }
            }
            Action::TriggerSync(sync) if sync.integration_id.is_none() => {
                let field = if actions_sent {
                    format!("actions[{i}].config.integrationId")
                } else {
                    "integrationId".to_string()
                };
                errors.push(FieldError::new(
                    field,
                    "is required: trigger_sync syncs this integration, or the webhook's when it has one",
                ));
            }
            _ => {}
        }
    }
    errors
}

/// The dry run's headers as a request would carry them (400 naming an invalid one).
fn dry_run_headers(headers: &BTreeMap<String, String>) -> Result<HeaderMap, ApiError> {
    let mut errors = Vec::new();
    if headers.len() > MAX_DRY_RUN_HEADERS {
        errors.push(FieldError::new(
            "headers",
            format!("at most {MAX_DRY_RUN_HEADERS} headers"),
        ));
    }
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let field = format!("headers.{}", name.chars().take(64).collect::<String>());
        let Ok(header) = HeaderName::try_from(name.as_str()) else {
            errors.push(FieldError::new(field, "is not a valid header name"));
            continue;
        };
        match HeaderValue::from_str(value) {
            Ok(parsed) if value.chars().count() <= MAX_DRY_RUN_HEADER_VALUE_CHARS => {
                map.append(header, parsed);
            }
            _ => errors.push(FieldError::new(
                field,
                format!(
                    "must be a header value of at most {MAX_DRY_RUN_HEADER_VALUE_CHARS} visible characters"
                ),
            )),
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// What one action would do with `body` (the parsed JSON body, `None` when it is not JSON).
fn dry_run_result(
    action: &Action,
    body: Option<&Value>,
    integration: Option<&IntegrationId>,
) -> Value {
    match action {
        Action::CreateEntity(config) | Action::UpdateEntity(config) => match body {
            None => json!({"error": "the body is not JSON; entity actions read JSON bodies"}),
            Some(body) => match extract_record(config, body) {
                Ok(record) => json!({
                    "entityType": config.entity_type,
                    "id": record.id,
                    "data": Value::Object(record.data),
                }),
                Err(error) => json!({"error": error.to_string()}),
            },
        },
        Action::Forward(forward) => json!({"forwardUrl": forward.forward_url}),
        Action::TriggerSync(sync) => json!({
            "integrationId": sync.integration_id.as_ref().or(integration),
            "entities": sync.entities,
        }),
        Action::TriggerAutomation(automation) => {
            json!({"automationId": automation.automation_id})
        }
    }
}
