//! `POST /api/integrations/{id}/sync`: queue a sync now. One job at a time per integration: the job
//! is claimed on the integration with one conditional write before its message is sent, so a
//! second request while one is queued or running gets 409 (docs/decisions.md, "Sync jobs").

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use hub_shared::auth::AuthContext;
use hub_shared::domain::JobId;
use hub_shared::error::{ApiError, FieldError};
use hub_shared::http::OptionalJsonBody;
use hub_shared::queue::{Job, SyncJob, SyncTrigger};
use hub_shared::store::QueueClaim;
use serde::Deserialize;
use serde_json::json;

use crate::routes::integrations::{load, provider_of};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncRequest {
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    entities: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    full: Option<bool>,
}

pub async fn trigger(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<SyncRequest>,
) -> Result<Response, ApiError> {
    let item = load(&state, &auth, &id).await?;
    let provider = provider_of(&state, &item)?;
    let definitions = provider.integration_entities(&item.config)?;
    let importable = item.sync_settings.import_entities(&definitions);
    if importable.is_empty() {
        return Err(ApiError::not_supported(format!(
            "{} has no entities to sync for this integration",
            item.provider
        )));
    }
    let request = request.unwrap_or(SyncRequest {
        entities: None,
        full: None,
    });
    let entities = request.entities.unwrap_or_default();
    let errors: Vec<FieldError> = entities
        .iter()
        .enumerate()
        .filter(|(_, name)| !importable.iter().any(|entity| &entity.local == *name))
        .map(|(i, _)| {
            let known: Vec<&str> = importable.iter().map(|e| e.local.as_str()).collect();
            FieldError::new(
                format!("entities[{i}]"),
                format!(
                    "is not an entity this integration imports (expected: {})",
                    known.join(", ")
                ),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }

    let job_id = JobId::generate();
    match state
        .store
        .claim_sync_queued(&auth.tenant, &item.id, &job_id)
        .await?
    {
        QueueClaim::Claimed => {}
        QueueClaim::Busy => {
            return Err(ApiError::conflict(
                "a sync of this integration is already queued or running",
            ))
        }
        QueueClaim::Gone => return Err(ApiError::not_found("integration")),
    }
    let job = Job::Sync(SyncJob {
        tenant_id: auth.tenant.clone(),
        integration_id: item.id.clone(),
        job_id: job_id.clone(),
        trigger: SyncTrigger::Api,
        entities,
        full: request.full.unwrap_or(false),
    });
    if let Err(error) = state.queues.send(&[job]).await {
        // Nothing will run it: let the integration go so the client can try again.
        state
            .store
            .release_sync_claim(&auth.tenant, &item.id, &job_id)
            .await?;
        return Err(ApiError::unavailable(&error));
    }
    tracing::info!(tenantId = %auth.tenant, integrationId = %item.id, jobId = %job_id, "sync queued");
    Ok((StatusCode::ACCEPTED, Json(json!({ "jobId": job_id }))).into_response())
}
