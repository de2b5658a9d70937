//! `GET /api/integrations/{id}/status`: connection and sync state at a glance.

use axum::extract::{Path, State};
use axum::Json;
use hub_shared::auth::AuthContext;
use hub_shared::domain::IntegrationStatus;
use hub_shared::error::ApiError;
use hub_shared::store::{IntegrationItem, SyncJobState};
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
        "running": running(&item),
    })))
}

/// The run in progress (`{jobId, startedAt, processed}`), or null: a queued job is not running yet,
/// and a run whose lease ran out has died.
fn running(item: &IntegrationItem) -> Value {
    match item.live_sync_job(chrono::Utc::now().timestamp_millis()) {
        Some(job) if job.state == SyncJobState::Running => json!({
            "jobId": job.job_id,
            "startedAt": job.started_at,
            "processed": job.processed,
        }),
        _ => Value::Null,
    }
}
