//! `GET /api/integrations/{id}/records/{entity}`: the synced (or webhook-written) records of one
//! local entity, in remote-id order, `?modifiedAfter=&includeDeleted=`, paginated.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use hub_shared::auth::AuthContext;
use hub_shared::error::ApiError;
use hub_shared::events::{EntityName, EntityRecord};
use hub_shared::store::RecordQuery;
use serde_json::{json, Value};

use crate::routes::integrations::load;
use crate::routes::{cursor_param, list_body, parse_date_time, parse_flag, parse_limit, parsed};
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    auth: AuthContext,
    Path((id, entity)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_limit(&query)?;
    let mut errors = Vec::new();
    let entity = parsed("entity", EntityName::parse(&entity), &mut errors);
    let modified_after = query
        .get("modifiedAfter")
        .and_then(|raw| parse_date_time("modifiedAfter", raw, &mut errors));
    let include_deleted = parse_flag(&query, "includeDeleted", &mut errors);
    // Every invalid value was recorded: one answer names them all.
    let (Some(entity), true) = (entity, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let filter = RecordQuery {
        modified_after,
        include_deleted: include_deleted.unwrap_or(false),
    };
    let item = load(&state, &auth, &id).await?;
    let page = state
        .store
        .list_records(
            &auth.tenant,
            &item.id,
            &entity,
            &filter,
            limit,
            cursor_param(&query),
        )
        .await?
        .map_err(|_| ApiError::invalid_cursor())?;
    let items = page.items.iter().map(resource).collect();
    Ok(list_body(items, page.next_cursor))
}

/// A record as the API shows it: `{id, data, meta}` (its source is the integration in the path).
fn resource(record: &EntityRecord) -> Value {
    json!({"id": record.id, "data": record.data, "meta": record.meta})
}
