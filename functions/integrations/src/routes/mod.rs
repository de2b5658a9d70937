//! One file per resource; shared response and query helpers live here.

pub mod actions;
pub mod event_types;
pub mod health;
pub mod incoming_webhooks;
pub mod integrations;
pub mod logs;
pub mod openapi;
pub mod outgoing_webhooks;
pub mod providers;
pub mod proxy;
pub mod records;
pub mod status;
pub mod sync;
pub mod test_connection;
pub mod webhook_deliveries;

use std::collections::HashMap;

use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use hub_shared::domain::{parse_if_match, IntegrationId, InvalidValue};
use hub_shared::error::{ApiError, FieldError};

/// List pages: `?limit=` is 1–100, default 20.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

pub fn parse_limit(query: &HashMap<String, String>) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => match raw.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            _ => Err(ApiError::field(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

pub fn cursor_param(query: &HashMap<String, String>) -> Option<&str> {
    query
        .get("cursor")
        .map(String::as_str)
        .filter(|cursor| !cursor.is_empty())
}

/// A path id that cannot be an integration id is answered like a missing one.
pub fn integration_id(raw: &str) -> Result<IntegrationId, ApiError> {
    IntegrationId::parse(raw).map_err(|_| ApiError::not_found("integration"))
}

/// `If-Match` of a PATCH: the version the client read, `None` when absent or `*` (RFC 9110: `*`
/// matches any current version; the resource must exist). One that is not a version → 412.
pub fn expected_version(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        Some(value) if value.as_bytes().trim_ascii() == b"*" => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(parse_if_match)
            .map(Some)
            .ok_or_else(|| ApiError::precondition_failed(None)),
        None => Ok(None),
    }
}

/// A field that may be left out but is never `null` when sent (the API document has no null for it):
/// `{"syncSettings": null}` is a 400 naming the field, not a silent "use the defaults".
pub fn non_null<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Distinguishes a field sent as `null` (Some(None)) from one not sent (None).
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// A parsed request value, or `None` with its error recorded under `field` (so one answer names
/// every invalid field).
pub fn parsed<T>(
    field: &str,
    result: Result<T, InvalidValue>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    result
        .map_err(|e| errors.push(FieldError::new(field, e.0)))
        .ok()
}

/// An RFC 3339 date-time (any offset, as UTC), or `None` with its error recorded under `field`.
pub fn parse_date_time(
    field: &str,
    raw: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            errors.push(FieldError::new(
                field,
                "must be an RFC 3339 date-time, such as 2026-01-31T09:30:00Z",
            ))
        })
        .ok()
}

/// A boolean query parameter: exactly `true` or `false`; `None` when absent, or with its error
/// recorded under `field`.
pub fn parse_flag(
    query: &HashMap<String, String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<bool> {
    match query.get(field).map(String::as_str) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.push(FieldError::new(field, "must be true or false"));
            None
        }
    }
}

/// A versioned resource: JSON body plus `ETag: "<version>"`.
pub fn versioned(status: StatusCode, version: u64, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

pub fn list_body(
    items: Vec<serde_json::Value>,
    next_cursor: Option<String>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "items": items, "nextCursor": next_cursor }))
}

/// Emits `events` to the tenant's matching outgoing webhooks; a failure is the caller's 503 (the
/// change itself was made: nothing is ever reported delivered that was not queued).
pub async fn emit(
    state: &crate::AppState,
    events: impl IntoIterator<Item = hub_shared::events::Event>,
) -> Result<(), ApiError> {
    let events: Vec<_> = events.into_iter().collect();
    hub_shared::delivery::emit(&state.store, &state.queues, &events).await?;
    Ok(())
}
