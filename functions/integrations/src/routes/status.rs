//! `GET /api/integrations/{id}/status`: connection and sync state at a glance.

use axum::extract::{Path, State};
use axum::Json;
use hub_shared::auth::AuthContext;
use hub_shared::domain::IntegrationStatus;
use hub_shared::error::ApiError;
use serde_json::{json, Value};

use crate::routes::integrations::load;
use crate::state::AppState;

pub async fn status(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let item = load(&state, &auth, &id).await?;
    let settings = &item.sync_settings;
    Ok(Json(json!({
        "status": item.status,
        "connected": item.status == IntegrationStatus::Connected,
        "autoSyncEnabled": settings.auto_sync_enabled(),
        "syncDirection": settings.direction,
        "syncFrequency": settings.frequency,
        "lastSyncAt": item.last_sync_at,
        "lastSyncStatus": item.last_sync_status,
        "lastError": item.last_error,
        "totalSyncs": item.total_syncs,
        "nextSyncAt": item.next_sync_at,
        "tokenExpiresAt": item.token_expires_at,
        "health": item.health.to_json(),
        // Sync jobs arrive with the sync runner; until then nothing is ever running.
        "running": Value::Null,
    })))
}
