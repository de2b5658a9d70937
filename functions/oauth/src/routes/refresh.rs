//! `POST /api/integrations/{id}/refresh`: refresh the access token now, under the same lease as
//! every other refresh. Answers the new expiry, never a token.

use axum::extract::{Path, State};
use axum::Json;
use hub_shared::auth::AuthContext;
use hub_shared::domain::IntegrationId;
use hub_shared::error::ApiError;
use hub_shared::oauth::refresh_now;
use serde_json::{json, Value};

use crate::AppState;

pub async fn refresh(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = IntegrationId::parse(&id).map_err(|_| ApiError::not_found("integration"))?;
    let item = state
        .store
        .get_integration(&auth.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))?;
    let oauth = state
        .catalog
        .get(item.provider.as_str())
        .and_then(|provider| provider.oauth2())
        .ok_or_else(|| {
            ApiError::not_supported(format!(
                "{} does not connect with OAuth 2.0: it has no token to refresh",
                item.provider
            ))
        })?;
    let refreshed = refresh_now(&state, oauth, &item).await?;
    Ok(Json(json!({
        "status": refreshed.status,
        "tokenExpiresAt": refreshed.token_expires_at,
    })))
}
