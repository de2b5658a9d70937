//! `GET /api/integrations/{id}/logs`: newest first, `?action=&status=`, paginated.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use hub_shared::auth::AuthContext;
use hub_shared::error::ApiError;
use hub_shared::store::{LogAction, LogFilter, LogStatus};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::routes::integrations::load;
use crate::routes::{cursor_param, list_body, parse_limit};
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_limit(&query)?;
    let filter = LogFilter {
        action: parse_word::<LogAction>(
            &query,
            "action",
            "sync, import, export, test, refresh, webhook_received, webhook_sent, action, proxy",
        )?,
        status: parse_word::<LogStatus>(&query, "status", "success, partial, failed")?,
    };
    let item = load(&state, &auth, &id).await?;
    let page = state
        .store
        .list_integration_logs(&auth.tenant, &item.id, &filter, limit, cursor_param(&query))
        .await?
        .map_err(|_| ApiError::invalid_cursor())?;
    let items = page
        .items
        .iter()
        .map(|log| serde_json::to_value(log).unwrap_or(Value::Null))
        .collect();
    Ok(list_body(items, page.next_cursor))
}

fn parse_word<T: DeserializeOwned>(
    query: &HashMap<String, String>,
    name: &str,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    query
        .get(name)
        .map(|raw| {
            serde_json::from_value(Value::String(raw.clone()))
                .map_err(|_| ApiError::field(name, format!("expected one of {expected}")))
        })
        .transpose()
}
