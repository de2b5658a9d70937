//! `GET /api/event-types`: every event type the hub emits for this tenant, with a description and
//! the JSON Schema of its `data`, in one page (`nextCursor` is null; `?limit` is ignored).

use axum::extract::State;
use axum::Json;
use hub_shared::auth::AuthContext;
use hub_shared::error::ApiError;
use hub_shared::events::schemas::{event_types, EventTypeEntry, KnownEntities};
use hub_shared::store::IntegrationFilter;
use serde_json::Value;

use crate::routes::{list_body, MAX_LIMIT};
use crate::state::AppState;

/// The tenant's first 1,000 integrations are read for the local entities of their sync settings;
/// a tenant with more is rare, and the catalog's entities are listed whatever the count.
const MAX_INTEGRATION_PAGES: usize = 10;

pub async fn list(
    State(state): State<AppState>,
    auth: AuthContext,
) -> Result<Json<Value>, ApiError> {
    let mut known = KnownEntities::from_catalog(&state.catalog);
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_INTEGRATION_PAGES {
        let page = state
            .store
            .list_integrations(
                &auth.tenant,
                &IntegrationFilter::default(),
                MAX_LIMIT,
                cursor.as_deref(),
            )
            .await?
            .map_err(|_| ApiError::internal(&"a cursor the store issued was refused"))?;
        for item in &page.items {
            known.add_sync_settings(&item.sync_settings);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let items = event_types(&known)
        .iter()
        .map(EventTypeEntry::to_json)
        .collect();
    Ok(list_body(items, None))
}
