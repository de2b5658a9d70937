//! Outgoing webhooks: `POST/GET /api/webhooks/outgoing`, `GET/PATCH/DELETE
//! /api/webhooks/outgoing/{id}` and `POST /api/webhooks/{id}/rotate-secret` (which hands an
//! incoming webhook's id to its own module). The signing secret is returned once (create, rotate)
//! and stored only as an envelope.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use hub_shared::auth::AuthContext;
use hub_shared::catalog::RateLimit;
use hub_shared::domain::{Description, DisplayName, OutgoingWebhookId};
use hub_shared::error::{ApiError, FieldError};
use hub_shared::events::{TriggerInput, Triggers};
use hub_shared::http::JsonBody;
use hub_shared::store::{
    timestamp, DeliveryMethod, NewOutgoingWebhook, OutgoingWebhookChanges, OutgoingWebhookItem,
    SigningSecrets, UpdateWebhookError,
};
use hub_shared::webhooks::sign::{generate_secret, parse_signature_header, SignatureScheme};
use hub_shared::webhooks::template::{PayloadTemplate, MAX_TEMPLATE_BYTES};
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::routes::{
    cursor_param, expected_version, incoming_webhooks, list_body, non_null, parse_limit, parsed,
    present, versioned,
};
use crate::state::AppState;

pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
pub const MAX_RETRY_ATTEMPTS: u32 = 20;
pub const DEFAULT_RETRY_DELAY_SECONDS: u32 = 60;
/// One hour: with exponential growth and the 12 h cap, longer first delays add nothing.
pub const MAX_RETRY_DELAY_SECONDS: u32 = 3600;
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 15;
pub const MAX_TIMEOUT_SECONDS: u32 = 30;
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Webhook-Signature";
const MAX_URL_CHARS: usize = 2048;
const MAX_HEADERS: usize = 20;
const MAX_HEADER_VALUE_CHARS: usize = 1024;
/// Headers the hub sets itself, or that would carry a secret in plaintext configuration.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "authorization",
    "proxy-authorization",
    "cookie",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-id",
    "x-webhook-timestamp",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateOutgoingWebhookRequest {
    name: String,
    #[serde(default)]
    description: Option<String>,
    url: String,
    #[serde(default, deserialize_with = "non_null")]
    method: Option<DeliveryMethod>,
    #[serde(default, deserialize_with = "non_null")]
    headers: Option<BTreeMap<String, String>>,
    triggers: Vec<TriggerInput>,
    #[serde(default)]
    payload_template: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    sign_requests: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    signature_scheme: Option<SignatureScheme>,
    #[serde(default, deserialize_with = "non_null")]
    signature_header: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    retry_attempts: Option<u32>,
    #[serde(default, deserialize_with = "non_null")]
    retry_delay_seconds: Option<u32>,
    #[serde(default, deserialize_with = "non_null")]
    timeout_seconds: Option<u32>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default, deserialize_with = "non_null")]
    is_enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchOutgoingWebhookRequest {
    #[serde(default, deserialize_with = "non_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "non_null")]
    url: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    method: Option<DeliveryMethod>,
    #[serde(default, deserialize_with = "non_null")]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "non_null")]
    triggers: Option<Vec<TriggerInput>>,
    #[serde(default, deserialize_with = "present")]
    payload_template: Option<Option<String>>,
    #[serde(default, deserialize_with = "non_null")]
    sign_requests: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    signature_scheme: Option<SignatureScheme>,
    #[serde(default, deserialize_with = "non_null")]
    signature_header: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    retry_attempts: Option<u32>,
    #[serde(default, deserialize_with = "non_null")]
    retry_delay_seconds: Option<u32>,
    #[serde(default, deserialize_with = "non_null")]
    timeout_seconds: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<RateLimit>>,
    #[serde(default, deserialize_with = "non_null")]
    is_enabled: Option<bool>,
}

pub async fn create(
    State(state): State<AppState>,
    auth: AuthContext,
    JsonBody(request): JsonBody<CreateOutgoingWebhookRequest>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let name = parsed("name", DisplayName::parse(&request.name), &mut errors);
    let description = request
        .description
        .as_deref()
        .and_then(|text| parsed("description", Description::parse(text), &mut errors));
    errors.extend(check_url(&state, "url", &request.url).await);
    let headers = request.headers.unwrap_or_default();
    errors.extend(check_headers("headers", &headers));
    let triggers = Triggers::parse(&request.triggers)
        .map_err(|problems| errors.extend(problems))
        .ok();
    if let Some(template) = &request.payload_template {
        errors.extend(check_template(template));
    }
    let signature_header = request
        .signature_header
        .unwrap_or_else(|| DEFAULT_SIGNATURE_HEADER.to_string());
    errors.extend(check_signature_header(&signature_header));
    let retry_attempts = request.retry_attempts.unwrap_or(DEFAULT_RETRY_ATTEMPTS);
    let retry_delay_seconds = request
        .retry_delay_seconds
        .unwrap_or(DEFAULT_RETRY_DELAY_SECONDS);
    let timeout_seconds = request.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    errors.extend(check_numbers(
        Some(retry_attempts),
        Some(retry_delay_seconds),
        Some(timeout_seconds),
    ));
    if let Some(limit) = &request.rate_limit {
        errors.extend(check_rate_limit(limit));
    }
    let (Some(name), Some(triggers), true) = (name, triggers, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };

    let id = OutgoingWebhookId::generate();
    let secret = Zeroizing::new(generate_secret().expose().to_string());
    let envelope = state
        .store
        .seal_signing_secrets(
            &auth.tenant,
            &id,
            &SigningSecrets {
                current: secret.to_string(),
                previous: None,
                previous_expires_at: None,
            },
        )
        .await?;
    let item = OutgoingWebhookItem::new(
        NewOutgoingWebhook {
            id: id.clone(),
            tenant: auth.tenant.clone(),
            name,
            description,
            url: request.url,
            method: request.method.unwrap_or_default(),
            headers,
            triggers,
            payload_template: request.payload_template,
            sign_requests: request.sign_requests.unwrap_or(true),
            signature_scheme: request.signature_scheme.unwrap_or_default(),
            signature_header,
            retry_attempts,
            retry_delay_seconds,
            timeout_seconds,
            rate_limit: request.rate_limit,
            is_enabled: request.is_enabled.unwrap_or(true),
            secret_envelope: envelope,
            created_by: auth.user.clone(),
        },
        chrono::Utc::now(),
    );
    state.store.create_outgoing_webhook(&item).await?;
    tracing::info!(tenantId = %auth.tenant, webhookId = %id, "outgoing webhook created");
    let mut body = item.to_resource();
    body["secret"] = Value::String(secret.to_string());
    let mut response = versioned(StatusCode::CREATED, item.version, body);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/webhooks/outgoing/{id}")) {
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
        .list_outgoing_webhooks(&auth.tenant, limit, cursor_param(&query))
        .await?
        .map_err(|_| ApiError::invalid_cursor())?;
    Ok(list_body(
        page.items
            .iter()
            .map(OutgoingWebhookItem::to_resource)
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
    Ok(versioned(StatusCode::OK, item.version, item.to_resource()))
}

pub async fn patch(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PatchOutgoingWebhookRequest>,
) -> Result<Response, ApiError> {
    let id = webhook_id(&id)?;
    let expected_version = expected_version(&headers)?;
    let mut errors = Vec::new();
    let mut changes = OutgoingWebhookChanges::default();
    if let Some(name) = &request.name {
        changes.name = parsed("name", DisplayName::parse(name), &mut errors);
    }
    if let Some(description) = &request.description {
        let result = description.as_deref().map(Description::parse).transpose();
        changes.description = parsed("description", result, &mut errors);
    }
    if let Some(url) = &request.url {
        errors.extend(check_url(&state, "url", url).await);
    }
    if let Some(headers) = &request.headers {
        errors.extend(check_headers("headers", headers));
    }
    if let Some(triggers) = &request.triggers {
        match Triggers::parse(triggers) {
            Ok(triggers) => changes.triggers = Some(triggers),
            Err(problems) => errors.extend(problems),
        }
    }
    if let Some(Some(template)) = &request.payload_template {
        errors.extend(check_template(template));
    }
    if let Some(header) = &request.signature_header {
        errors.extend(check_signature_header(header));
    }
    errors.extend(check_numbers(
        request.retry_attempts,
        request.retry_delay_seconds,
        request.timeout_seconds,
    ));
    if let Some(Some(limit)) = &request.rate_limit {
        errors.extend(check_rate_limit(limit));
    }
    let nothing_sent = request.name.is_none()
        && request.description.is_none()
        && request.url.is_none()
        && request.method.is_none()
        && request.headers.is_none()
        && request.triggers.is_none()
        && request.payload_template.is_none()
        && request.sign_requests.is_none()
        && request.signature_scheme.is_none()
        && request.signature_header.is_none()
        && request.retry_attempts.is_none()
        && request.retry_delay_seconds.is_none()
        && request.timeout_seconds.is_none()
        && request.rate_limit.is_none()
        && request.is_enabled.is_none();
    if nothing_sent {
        errors.push(FieldError::new(
            "(body)",
            "send at least one field to change",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    changes.url = request.url;
    changes.method = request.method;
    changes.headers = request.headers;
    changes.payload_template = request.payload_template;
    changes.sign_requests = request.sign_requests;
    changes.signature_scheme = request.signature_scheme;
    changes.signature_header = request.signature_header;
    changes.retry_attempts = request.retry_attempts;
    changes.retry_delay_seconds = request.retry_delay_seconds;
    changes.timeout_seconds = request.timeout_seconds;
    changes.rate_limit = request.rate_limit;
    changes.is_enabled = request.is_enabled;
    let updated = state
        .store
        .update_outgoing_webhook(&auth.tenant, &id, changes, expected_version)
        .await?;
    tracing::info!(tenantId = %auth.tenant, webhookId = %id, version = updated.version, "outgoing webhook updated");
    Ok(versioned(
        StatusCode::OK,
        updated.version,
        updated.to_resource(),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = webhook_id(&id)?;
    match state
        .store
        .delete_outgoing_webhook(&auth.tenant, &id)
        .await?
    {
        Some(_) => {
            tracing::info!(tenantId = %auth.tenant, webhookId = %id, "outgoing webhook deleted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(ApiError::not_found("webhook")),
    }
}

/// `POST /api/webhooks/{id}/rotate-secret` for an outgoing webhook: a new secret, returned once;
/// the old one keeps signing (as the second signature) for 24 hours. An incoming webhook's id
/// (`whin_`) goes to [`incoming_webhooks::rotate_secret`].
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if incoming_webhooks::is_incoming_id(&id) {
        return incoming_webhooks::rotate_secret(&state, &auth, &id, &query).await;
    }
    let current = load(&state, &auth, &id).await?;
    if query.contains_key("target") {
        return Err(ApiError::field(
            "target",
            "an outgoing webhook has one secret: leave target out",
        ));
    }
    let old = Zeroizing::new(state.store.open_signing_secrets(&current).await?);
    let secret = Zeroizing::new(generate_secret().expose().to_string());
    let previous_expires_at =
        timestamp(chrono::Utc::now() + hub_shared::webhooks::sign::ROTATION_OVERLAP);
    let envelope = state
        .store
        .seal_signing_secrets(
            &auth.tenant,
            &current.id,
            &SigningSecrets {
                current: secret.to_string(),
                previous: Some(old.current.clone()),
                previous_expires_at: Some(previous_expires_at.clone()),
            },
        )
        .await?;
    let updated = state
        .store
        .update_outgoing_webhook(
            &auth.tenant,
            &current.id,
            OutgoingWebhookChanges {
                secret_envelope: Some(envelope),
                ..OutgoingWebhookChanges::default()
            },
            // The secret read above must still be the current one (two rotations racing).
            Some(current.version),
        )
        .await
        .map_err(|error| match error {
            UpdateWebhookError::VersionMismatch { .. } => {
                ApiError::conflict("the webhook changed while rotating its secret; rotate again")
            }
            other => other.into(),
        })?;
    tracing::info!(tenantId = %auth.tenant, webhookId = %current.id, "outgoing webhook secret rotated");
    Ok(versioned(
        StatusCode::OK,
        updated.version,
        json!({"id": updated.id, "secret": secret.as_str(), "previousExpiresAt": previous_expires_at}),
    ))
}

/// The caller's outgoing webhook, or 404 (another tenant's is answered exactly like a missing one).
pub async fn load(
    state: &AppState,
    auth: &AuthContext,
    raw_id: &str,
) -> Result<OutgoingWebhookItem, ApiError> {
    let id = webhook_id(raw_id)?;
    state
        .store
        .get_outgoing_webhook(&auth.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

fn webhook_id(raw: &str) -> Result<OutgoingWebhookId, ApiError> {
    OutgoingWebhookId::parse(raw).map_err(|_| ApiError::not_found("webhook"))
}

/// An absolute URL the SSRF guard allows (https; http only where private targets are allowed), as
/// the `field` of the request (an outgoing webhook's `url`, a forward action's `forwardUrl`).
pub(crate) async fn check_url(state: &AppState, field: &str, raw: &str) -> Vec<FieldError> {
    if raw.chars().count() > MAX_URL_CHARS {
        return vec![FieldError::new(
            field,
            format!("must be at most {MAX_URL_CHARS} characters"),
        )];
    }
    match url::Url::parse(raw) {
        Err(_) => vec![FieldError::new(field, "must be an absolute URL")],
        Ok(url) => match state.provider_http.validate_target(&url).await {
            Ok(()) => Vec::new(),
            Err(rejected) => vec![FieldError::new(field, rejected.to_string())],
        },
    }
}

/// Headers the hub may send with a delivery, as the `field` of the request (an outgoing webhook's
/// `headers`, a forward action's `forwardHeaders`).
pub(crate) fn check_headers(field: &str, headers: &BTreeMap<String, String>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if headers.len() > MAX_HEADERS {
        errors.push(FieldError::new(
            field,
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    let base = field;
    for (name, value) in headers {
        let field = format!("{base}.{name}");
        if HeaderName::try_from(name.as_str()).is_err() {
            errors.push(FieldError::new(field, "is not a valid header name"));
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            errors.push(FieldError::new(
                field,
                "is set by the hub or would hold a secret in plain configuration (deliveries are authenticated by their signature)",
            ));
        } else if value.chars().count() > MAX_HEADER_VALUE_CHARS
            || HeaderValue::from_str(value).is_err()
        {
            errors.push(FieldError::new(
                field,
                format!(
                    "must be a header value of at most {MAX_HEADER_VALUE_CHARS} visible characters"
                ),
            ));
        }
    }
    errors
}

/// The template must be JSON text whose `{{path}}` placeholders are closed and non-empty.
fn check_template(template: &str) -> Vec<FieldError> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return vec![FieldError::new(
            "payloadTemplate",
            format!("must be at most {MAX_TEMPLATE_BYTES} bytes"),
        )];
    }
    match PayloadTemplate::parse(template) {
        Ok(_) => Vec::new(),
        Err(error) => vec![error.field_error()],
    }
}

fn check_signature_header(name: &str) -> Vec<FieldError> {
    match parse_signature_header(name) {
        Ok(_) => Vec::new(),
        Err(error) => vec![FieldError::new("signatureHeader", error.to_string())],
    }
}

fn check_numbers(
    retry_attempts: Option<u32>,
    retry_delay_seconds: Option<u32>,
    timeout_seconds: Option<u32>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, value, range) in [
        ("retryAttempts", retry_attempts, 1..=MAX_RETRY_ATTEMPTS),
        (
            "retryDelaySeconds",
            retry_delay_seconds,
            1..=MAX_RETRY_DELAY_SECONDS,
        ),
        ("timeoutSeconds", timeout_seconds, 1..=MAX_TIMEOUT_SECONDS),
    ] {
        if value.is_some_and(|v| !range.contains(&v)) {
            errors.push(FieldError::new(
                field,
                format!("must be from {} to {}", range.start(), range.end()),
            ));
        }
    }
    errors
}

fn check_rate_limit(limit: &RateLimit) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !(1..=10_000).contains(&limit.requests) {
        errors.push(FieldError::new(
            "rateLimit.requests",
            "must be from 1 to 10000",
        ));
    }
    if !(1..=86_400).contains(&limit.per_seconds) {
        errors.push(FieldError::new(
            "rateLimit.perSeconds",
            "must be from 1 to 86400",
        ));
    }
    errors
}
