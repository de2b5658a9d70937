//! Receiving one webhook (`POST`) and answering Meta's handshake (`GET`).
//!
//! In order: unknown tenant or webhook → 404 (the same answer for both); disabled → 410; body over
//! 1 MiB → 413; signature → 401 `invalid_signature` (a failed receipt is logged, headers redacted,
//! no body); handshakes (Slack `url_verification` → its challenge, Google `sync` → 200); the dedupe
//! key and the filters; then one conditional PutItem that dedupes and stores (a repeat → 200
//! `{"duplicate": true}`; a filtered-out event → 200 `{"ignored": true}`, logged) and one SQS send
//! → 202 `{"id", "received": true}`. A body over 256 KiB gzipped goes to the payloads bucket first
//! (claim check). When the send fails, the stored event is withdrawn and the answer is 503, so the
//! sender's retry is processed instead of being taken for a duplicate.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hub_shared::domain::{EventId, IncomingWebhookId, LogId, TenantId};
use hub_shared::error::ApiError;
use hub_shared::http::MAX_BODY_BYTES;
use hub_shared::inbound::InboundScheme;
use hub_shared::payloads::{gzip, PayloadStore, INLINE_LIMIT};
use hub_shared::queue::{InboundJob, Job};
use hub_shared::store::{
    timestamp, Accepted, NewInboundEvent, ReceiptLog, ReceiptOutcome, ReceivedSnapshot, StoredBody,
};
use hub_shared::webhooks::inbound::{
    dedupe_key, meta_handshake, verify, MetaHandshake, ReceivedRequest,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use crate::cache::ReadyWebhook;
use crate::InboundState;

/// The resource state Google sends when a channel is created (acknowledged, not processed).
const GOOGLE_SYNC_STATE: &str = "sync";

fn unknown_webhook() -> ApiError {
    ApiError::not_found("webhook")
}

fn invalid_signature() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "Invalid signature",
        "the request's signature could not be verified",
    )
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "webhook_disabled",
        "Webhook disabled",
        "this webhook is disabled",
    )
}

/// The webhook a path names, or the one 404 every unknown tenant or webhook gets.
async fn webhook_of(
    state: &InboundState,
    tenant: &str,
    webhook: &str,
) -> Result<(TenantId, Arc<ReadyWebhook>), ApiError> {
    let (Ok(tenant), Ok(id)) = (TenantId::parse(tenant), IncomingWebhookId::parse(webhook)) else {
        return Err(unknown_webhook());
    };
    let ready = state
        .cache
        .get(&state.services.store, &tenant, &id)
        .await?
        .ok_or_else(unknown_webhook)?;
    if !ready.item.is_enabled {
        return Err(disabled());
    }
    Ok((tenant, ready))
}

/// The body, or `None` when it is over the limit.
async fn read_body(body: Body) -> Result<Option<Bytes>, ApiError> {
    match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(Some(collected.to_bytes())),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Ok(None),
        Err(error) => Err(ApiError::bad_request(
            "malformed_body",
            format!("the body could not be read: {error}"),
        )),
    }
}

pub async fn receive(
    State(state): State<InboundState>,
    Path((tenant, webhook)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let (tenant, ready) = webhook_of(&state, &tenant, &webhook).await?;
    let body = read_body(body)
        .await?
        .ok_or_else(|| ApiError::payload_too_large(MAX_BODY_BYTES))?;
    let item = &ready.item;
    let now = Utc::now();
    let url = format!(
        "{}{}",
        state.services.config.public_base_url.trim_end_matches('/'),
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or(parts.uri.path())
    );
    let received = ReceivedRequest {
        method: parts.method.as_str(),
        url: &url,
        headers: &parts.headers,
        body: &body,
        now: now.timestamp(),
    };
    let snapshot = ReceivedSnapshot::capture(
        &parts.method,
        &parts.headers,
        ready.signature_header.as_ref(),
        body.len(),
    );
    if let Err(reason) = verify(
        item.scheme,
        ready.signature_header.as_ref(),
        &ready.keys,
        &received,
    ) {
        info!(webhook = %item.id, %reason, "an inbound request failed verification");
        let receipt = Settled {
            event_id: None,
            status: ReceiptOutcome::Rejected,
            error_code: Some("invalid_signature"),
            message: reason.to_string(),
        };
        log_receipt(&state, &tenant, &item.id, receipt, now, &snapshot).await;
        return Err(invalid_signature());
    }
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(reply) = handshake_reply(item.scheme, &parts.headers, parsed.as_ref()) {
        return Ok(reply);
    }
    let key_hash = hex::encode(Sha256::digest(
        dedupe_key(item.scheme, &received).as_bytes(),
    ));
    let matched = item.filters.matches(&parts.headers, parsed.as_ref());
    let event_id = EventId::generate();
    let stored_body = if matched {
        store_body(
            state.services.payloads(),
            &tenant,
            &item.id,
            &event_id,
            &body,
        )
        .await?
    } else {
        // A filtered-out event keeps only its dedupe record.
        StoredBody::Inline(Vec::new())
    };
    let event = NewInboundEvent {
        tenant: tenant.clone(),
        webhook_id: item.id.clone(),
        webhook_name: item.name.as_str().to_string(),
        integration_id: item.integration_id.clone(),
        event_id: event_id.clone(),
        key_hash: key_hash.clone(),
        received_at: now,
        request: snapshot.clone(),
        body: stored_body,
        actions: if matched {
            item.actions.clone()
        } else {
            Vec::new()
        },
    };
    match state.services.store.accept_inbound_event(&event).await? {
        Accepted::Duplicate => {
            return Ok((StatusCode::OK, Json(json!({"duplicate": true}))).into_response());
        }
        Accepted::New => {}
    }
    if !matched {
        let receipt = Settled {
            event_id: Some(event_id),
            status: ReceiptOutcome::Ignored,
            error_code: None,
            message: "the event did not match the webhook's filters".to_string(),
        };
        log_receipt(&state, &tenant, &item.id, receipt, now, &snapshot).await;
        return Ok((StatusCode::OK, Json(json!({"ignored": true}))).into_response());
    }
    let job = Job::Inbound(InboundJob {
        tenant_id: tenant.clone(),
        webhook_id: item.id.clone(),
        event_id: event_id.clone(),
        event_key: key_hash.clone(),
        actions: item.actions.len() as u32,
        action: None,
        attempt: 1,
        not_before: None,
    });
    if let Err(queue_error) = state.services.queues.send(&[job]).await {
        error!(webhook = %item.id, event = %event_id, error = %queue_error, "the event could not be queued; withdrawn");
        if let Err(error) = state
            .services
            .store
            .withdraw_inbound_event(&tenant, &item.id, &key_hash, &event_id)
            .await
        {
            // The event stays stored but unqueued; a retry of the sender is answered duplicate.
            error!(webhook = %item.id, event = %event_id, %error, "the unqueued event could not be withdrawn");
        }
        return Err(ApiError::unavailable(&queue_error));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": event_id, "received": true})),
    )
        .into_response())
}

/// How a request that runs no action ended, for its receipt.
struct Settled {
    event_id: Option<EventId>,
    status: ReceiptOutcome,
    error_code: Option<&'static str>,
    message: String,
}

/// Logs the receipt of a request that ends at the receiver (refused or filtered out); a failure to
/// log does not change the answer.
async fn log_receipt(
    state: &InboundState,
    tenant: &TenantId,
    webhook: &IncomingWebhookId,
    settled: Settled,
    now: chrono::DateTime<Utc>,
    snapshot: &ReceivedSnapshot,
) {
    let receipt = ReceiptLog {
        id: LogId::generate(),
        webhook_id: webhook.clone(),
        event_id: settled.event_id,
        status: settled.status,
        error_code: settled.error_code.map(str::to_string),
        error_message: Some(settled.message),
        received_at: timestamp(now),
        completed_at: Some(timestamp(now)),
        request: snapshot.clone(),
        actions: Vec::new(),
    };
    if let Err(error) = state.services.store.put_receipt_log(tenant, &receipt).await {
        warn!(%webhook, %error, "a receipt could not be logged");
    }
}

/// `GET`: Meta's subscription handshake. A webhook of another scheme has no GET handshake (405).
pub async fn handshake(
    State(state): State<InboundState>,
    Path((tenant, webhook)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let (_, ready) = webhook_of(&state, &tenant, &webhook).await?;
    if ready.item.scheme != InboundScheme::Meta {
        return Err(ApiError::method_not_allowed(HeaderValue::from_static(
            "POST",
        )));
    }
    let query = request.uri().query().unwrap_or_default();
    match meta_handshake(query, ready.verify_token.as_ref().map(|t| t.as_str())) {
        MetaHandshake::Challenge(challenge) => Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            challenge,
        )
            .into_response()),
        MetaHandshake::Forbidden => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "the verify token does not match",
        )),
        MetaHandshake::NotAHandshake => Err(ApiError::bad_request(
            "validation_failed",
            "expected hub.mode=subscribe, hub.verify_token and hub.challenge",
        )),
    }
}

/// Slack's `url_verification` (answered with its challenge) and Google's `sync` notice (answered,
/// not processed); both only after the request verified.
fn handshake_reply(
    scheme: InboundScheme,
    headers: &HeaderMap,
    body: Option<&Value>,
) -> Option<Response> {
    match scheme {
        InboundScheme::Slack => {
            let body = body?;
            if body.get("type").and_then(Value::as_str) != Some("url_verification") {
                return None;
            }
            let challenge = body.get("challenge").cloned().unwrap_or(Value::Null);
            Some((StatusCode::OK, Json(json!({"challenge": challenge}))).into_response())
        }
        InboundScheme::GoogleChannel => {
            let state = headers.get("x-goog-resource-state")?.as_bytes();
            (state == GOOGLE_SYNC_STATE.as_bytes()).then(|| {
                (
                    StatusCode::OK,
                    Json(json!({"received": true, "processed": false})),
                )
                    .into_response()
            })
        }
        _ => None,
    }
}

/// The gzipped body in the item, or — over [`INLINE_LIMIT`] gzipped — in the payloads bucket.
async fn store_body(
    payloads: &PayloadStore,
    tenant: &TenantId,
    webhook: &IncomingWebhookId,
    event: &EventId,
    body: &[u8],
) -> Result<StoredBody, ApiError> {
    let gzipped = gzip(body);
    if gzipped.len() <= INLINE_LIMIT {
        return Ok(StoredBody::Inline(gzipped));
    }
    let key = PayloadStore::key_for(tenant, webhook, event);
    payloads
        .put(&key, gzipped)
        .await
        .map_err(|error| ApiError::unavailable(&error))?;
    Ok(StoredBody::Claim(key))
}
