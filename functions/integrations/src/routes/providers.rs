//! `GET /api/providers` (every entry, one page; `?category=`) and `GET /api/providers/{slug}`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use hub_shared::auth::AuthContext;
use hub_shared::catalog::Category;
use hub_shared::error::ApiError;
use serde_json::Value;

use crate::routes::list_body;
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    _auth: AuthContext,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let category = match query.get("category") {
        None => None,
        Some(raw) => Some(parse_category(raw)?),
    };
    let items = state
        .catalog
        .iter()
        .filter(|(_, provider)| category.is_none_or(|wanted| provider.category == wanted))
        .map(|(slug, provider)| provider.public_view(slug))
        .collect();
    Ok(list_body(items, None))
}

pub async fn get(
    State(state): State<AppState>,
    _auth: AuthContext,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let provider = state
        .catalog
        .get(&slug)
        .ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(Json(provider.public_view(&slug)))
}

fn parse_category(raw: &str) -> Result<Category, ApiError> {
    serde_json::from_value(Value::String(raw.to_string())).map_err(|_| {
        ApiError::field(
            "category",
            "expected one of calendar, storage, accounting, communication, payments, design, crm, health, ai, custom",
        )
    })
}
