//! What an outgoing webhook's deliveries left behind, and acting on it:
//! `GET /api/webhooks/{id}/logs` (attempts, newest first), `GET /api/webhook-logs/{logId}` (one
//! attempt with its request and response), `POST /api/webhook-logs/{logId}/retry` (the failed
//! delivery continues), `POST /api/webhooks/outgoing/{id}/recover` (every delivery that failed in a
//! window continues) and `POST /api/webhooks/{id}/test` (one synchronous `webhook.test` delivery).
//!
//! Incoming webhooks share the `/api/webhooks/{id}/…` paths: an incoming webhook's id (`whin_`)
//! goes to [`incoming_webhooks`] (its receipts, its dry run), any other id that is not an outgoing
//! webhook's is answered 404 like a missing one.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use http::StatusCode;
use hub_shared::auth::AuthContext;
use hub_shared::delivery::{requeue_reopened, test_delivery};
use hub_shared::domain::LogId;
use hub_shared::error::ApiError;
use hub_shared::http::JsonBody;
use hub_shared::store::{
    timestamp, AttemptLog, AttemptStatus, DeliveryItem, OutgoingWebhookItem, ReopenError,
    WebhookLogEntry, WEBHOOK_LOG_RETENTION_DAYS,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::routes::outgoing_webhooks::load;
use crate::routes::{
    cursor_param, incoming_webhooks, list_body, non_null, parse_date_time, parse_limit,
};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    since: String,
    #[serde(default, deserialize_with = "non_null")]
    until: Option<String>,
}

pub async fn list_logs(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if incoming_webhooks::is_incoming_id(&id) {
        return incoming_webhooks::list_logs(&state, &auth, &id, &query).await;
    }
    let limit = parse_limit(&query)?;
    let webhook = load(&state, &auth, &id).await?;
    let page = state
        .store
        .list_webhook_logs(&auth.tenant, &webhook.id, limit, cursor_param(&query))
        .await?
        .map_err(|_| ApiError::invalid_cursor())?;
    Ok(list_body(
        page.items.iter().map(AttemptLog::to_summary).collect(),
        page.next_cursor,
    ))
}

pub async fn get_log(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(log_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(load_log(&state, &auth, &log_id).await?.to_detail()))
}

/// The delivery of a logged attempt continues: attempts after its last one, a fresh budget of the
/// webhook's `retryAttempts`, the same delivery id (so the same `webhook-id`). A receipt of an
/// incoming webhook is not retried: re-processing an inbound event is not offered (409).
pub async fn retry(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(log_id): Path<String>,
) -> Result<Response, ApiError> {
    let log =
        match load_log(&state, &auth, &log_id).await? {
            WebhookLogEntry::Attempt(log) => log,
            WebhookLogEntry::Receipt(_) => return Err(ApiError::conflict(
                "this log is a receipt of an incoming webhook: only outgoing deliveries can be \
                 retried; re-processing a received event is not offered (ask the sender to send \
                 it again)",
            )),
        };
    let webhook = state
        .store
        .get_outgoing_webhook(&auth.tenant, &log.webhook_id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let delivery = state
        .store
        .reopen_delivery(
            &auth.tenant,
            &webhook.id,
            &log.delivery_id,
            webhook.retry_attempts,
        )
        .await
        .map_err(|error| match error {
            ReopenError::AlreadySucceeded => {
                ApiError::conflict("the delivery already succeeded; there is nothing to retry")
            }
            ReopenError::StillPending => ApiError::conflict(
                "the delivery is still being attempted; retry it once it has failed",
            ),
            ReopenError::NotFound => ApiError::not_found("delivery"),
            ReopenError::Store(error) => error.into(),
        })?;
    requeue_reopened(&state.store, &state.queues, &delivery).await?;
    tracing::info!(tenantId = %auth.tenant, webhookId = %webhook.id, deliveryId = %delivery.id,
        attempt = delivery.attempt + 1, "webhook delivery retried");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"deliveryId": delivery.id})),
    )
        .into_response())
}

/// Every delivery of the webhook whose final outcome was `failed` in `[since, until]` continues as
/// a manual retry does.
pub async fn recover(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<RecoverRequest>,
) -> Result<Response, ApiError> {
    let (since, until) = recovery_window(&request, Utc::now())?;
    let webhook = load(&state, &auth, &id).await?;
    let failed = state
        .store
        .failed_deliveries_between(
            &auth.tenant,
            &webhook.id,
            &timestamp(since),
            &timestamp(until),
        )
        .await?;
    let mut queued = 0_usize;
    for delivery in &failed {
        if let Some(reopened) = reopen_for_recovery(&state, &webhook, delivery).await? {
            requeue_reopened(&state.store, &state.queues, &reopened).await?;
            queued += 1;
        }
    }
    tracing::info!(tenantId = %auth.tenant, webhookId = %webhook.id, queued, "webhook deliveries recovered");
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": queued}))).into_response())
}

/// One synchronous, signed `webhook.test` delivery; 200 whether the target accepted it or not
/// (the request body is not read). For an incoming webhook, the dry run of the body sent.
pub async fn test(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    if incoming_webhooks::is_incoming_id(&id) {
        return incoming_webhooks::dry_run(&state, &auth, &id, request).await;
    }
    let webhook = load(&state, &auth, &id).await?;
    let http = state
        .delivery_http()
        .map_err(|error| ApiError::internal(&error))?;
    let outcome = test_delivery(&state.store, http, &webhook).await?;
    let result = &outcome.result;
    let status = match result.status {
        AttemptStatus::Success => "success",
        AttemptStatus::Failed => "failed",
    };
    tracing::info!(tenantId = %auth.tenant, webhookId = %webhook.id, deliveryId = %outcome.delivery_id,
        status, "webhook test delivered");
    Ok(Json(json!({
        "status": status,
        "responseStatus": result.response.as_ref().map(|response| response.status),
        "responseBody": result.response.as_ref().map(|response| response.body.as_str()),
        "durationMs": result.duration_ms(),
        "deliveryId": outcome.delivery_id,
        "error": result.error_message,
    })))
}

/// The tenant's webhook log (an attempt or a receipt), or 404 (a malformed id, another tenant's or
/// an expired one alike).
async fn load_log(
    state: &AppState,
    auth: &AuthContext,
    raw_id: &str,
) -> Result<WebhookLogEntry, ApiError> {
    let id = LogId::parse(raw_id).map_err(|_| ApiError::not_found("webhook log"))?;
    state
        .store
        .get_webhook_log(&auth.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook log"))
}

/// A delivery found failed may have been retried (or recovered) since it was read: it is skipped.
async fn reopen_for_recovery(
    state: &AppState,
    webhook: &OutgoingWebhookItem,
    delivery: &DeliveryItem,
) -> Result<Option<DeliveryItem>, ApiError> {
    match state
        .store
        .reopen_delivery(
            &webhook.tenant_id,
            &webhook.id,
            &delivery.id,
            webhook.retry_attempts,
        )
        .await
    {
        Ok(reopened) => Ok(Some(reopened)),
        Err(ReopenError::AlreadySucceeded | ReopenError::StillPending | ReopenError::NotFound) => {
            Ok(None)
        }
        Err(ReopenError::Store(error)) => Err(error.into()),
    }
}

/// `[since, until]` of a recover: RFC 3339 date-times, `until` defaulting to (and clamped to) now,
/// `since` raised to the start of the log retention (older deliveries are gone, so "since 2000"
/// means everything still kept) and before `until`.
fn recovery_window(
    request: &RecoverRequest,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let mut errors = Vec::new();
    let since = parse_date_time("since", &request.since, &mut errors);
    let until = match &request.until {
        Some(raw) => parse_date_time("until", raw, &mut errors).map(|until| until.min(now)),
        None => Some(now),
    };
    let (Some(since), Some(until)) = (since, until) else {
        return Err(ApiError::validation(errors));
    };
    let since = since.max(now - chrono::Duration::days(WEBHOOK_LOG_RETENTION_DAYS));
    if since >= until {
        return Err(ApiError::field(
            "since",
            "must be before until (which is now when not sent or in the future)",
        ));
    }
    Ok((since, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window as stored timestamps, or the fields the 400 names.
    fn window(since: &str, until: Option<&str>) -> Result<(String, String), Vec<String>> {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .expect("now")
            .with_timezone(&Utc);
        let request = RecoverRequest {
            since: since.into(),
            until: until.map(str::to_string),
        };
        recovery_window(&request, now)
            .map(|(since, until)| (timestamp(since), timestamp(until)))
            .map_err(|error| {
                error
                    .errors
                    .iter()
                    .map(|field| field.field.clone())
                    .collect()
            })
    }

    #[test]
    fn until_defaults_to_now_and_a_future_one_is_clamped_to_now() {
        let expected = Ok((
            "2026-12-01T10:00:00.000Z".to_string(),
            "2026-12-01T12:00:00.000Z".to_string(),
        ));
        assert_eq!(window("2026-12-01T10:00:00Z", None), expected);
        assert_eq!(
            window("2026-12-01T12:00:00+02:00", Some("2030-01-01T00:00:00Z")),
            expected
        );
    }

    #[test]
    fn since_older_than_the_retention_starts_at_the_retention() {
        assert_eq!(
            window("2000-01-01T00:00:00Z", None),
            Ok((
                "2026-11-17T12:00:00.000Z".to_string(),
                "2026-12-01T12:00:00.000Z".to_string()
            ))
        );
        assert_eq!(
            window("2026-11-17T12:00:01Z", None).map(|(since, _)| since),
            Ok("2026-11-17T12:00:01.000Z".to_string())
        );
    }

    #[test]
    fn since_not_before_until_is_refused_naming_since() {
        for (since, until) in [
            ("2026-12-01T11:00:00Z", Some("2026-12-01T11:00:00Z")),
            ("2026-12-01T13:00:00Z", None),
            ("2026-12-01T11:00:00Z", Some("2000-01-01T00:00:00Z")),
        ] {
            let refused = window(since, until).expect_err("refused");
            assert_eq!(refused, ["since"], "{since}");
        }
    }

    #[test]
    fn a_value_that_is_not_an_rfc_3339_date_time_is_named() {
        let refused = window("yesterday", Some("2026-12-01")).expect_err("refused");
        assert_eq!(refused, ["since", "until"]);
    }
}
