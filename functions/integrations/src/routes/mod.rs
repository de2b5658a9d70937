//! One file per resource; shared response and query helpers live here.

pub mod event_types;
pub mod health;
pub mod integrations;
pub mod logs;
pub mod openapi;
pub mod providers;
pub mod status;
pub mod test_connection;

use std::collections::HashMap;

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue, StatusCode};
use hub_shared::domain::IntegrationId;
use hub_shared::error::ApiError;

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
