//! `PUT/GET /api/providers/{slug}/oauth-app`: a tenant's own OAuth app for a provider. The client
//! secret is sealed (`<tenant>/oauth-app:<slug>/clientSecret`) and never shown again.

use axum::extract::{Path, State};
use axum::Json;
use hub_shared::auth::AuthContext;
use hub_shared::crypto::{oauth_app_owner_id, SecretSlot};
use hub_shared::error::{ApiError, FieldError};
use hub_shared::http::JsonBody;
use hub_shared::oauth::apps::CLIENT_SECRET_FIELD;
use hub_shared::oauth::authorize::parse_extra_scopes;
use hub_shared::store::OAuthAppItem;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::oauth_provider;
use crate::AppState;

const MAX_CLIENT_ID_CHARS: usize = 512;
const MAX_CLIENT_SECRET_CHARS: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PutOAuthAppRequest {
    client_id: String,
    #[serde(deserialize_with = "hub_shared::config::zeroizing_string")]
    client_secret: Zeroizing<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

pub async fn put(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(slug): Path<String>,
    JsonBody(request): JsonBody<PutOAuthAppRequest>,
) -> Result<Json<Value>, ApiError> {
    let (slug, _, oauth) = oauth_provider(&state, &slug)?;
    let mut errors = Vec::new();
    if let Some(message) = text_error(&request.client_id, MAX_CLIENT_ID_CHARS) {
        errors.push(FieldError::new("clientId", message));
    }
    if let Some(message) = text_error(&request.client_secret, MAX_CLIENT_SECRET_CHARS) {
        errors.push(FieldError::new("clientSecret", message));
    }
    let scopes = match &request.scopes {
        None => Vec::new(),
        Some(scopes) => match parse_extra_scopes(&scopes.join(" ")) {
            Ok(parsed) if parsed.len() == scopes.len() => parsed,
            Ok(_) => {
                errors.push(FieldError::new(
                    "scopes",
                    "each scope is one non-empty scope token (no spaces or commas)",
                ));
                Vec::new()
            }
            Err(message) => {
                errors.push(FieldError::new("scopes", message));
                Vec::new()
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let envelope = state
        .store
        .cipher()
        .seal_json(
            SecretSlot::new(
                auth.tenant.as_str(),
                &oauth_app_owner_id(slug.as_str()),
                CLIENT_SECRET_FIELD,
            ),
            request.client_secret.as_str(),
        )
        .await?;
    let item = OAuthAppItem::new(
        &auth.tenant,
        &slug,
        request.client_id.clone(),
        envelope,
        scopes,
        chrono::Utc::now(),
    );
    let stored = state.store.put_oauth_app(&item).await?;
    tracing::info!(tenantId = %auth.tenant, provider = %slug, "oauth app configured");
    Ok(Json(view(&stored, &oauth.scopes)))
}

pub async fn get(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (slug, _, oauth) = oauth_provider(&state, &slug)?;
    let app = state
        .store
        .get_oauth_app(&auth.tenant, &slug)
        .await?
        .ok_or_else(|| ApiError::not_found("oauth app"))?;
    Ok(Json(view(&app, &oauth.scopes)))
}

/// The app without its secret; `scopes` are the ones connect asks for (the app's own, else the
/// catalog's).
fn view(app: &OAuthAppItem, catalog_scopes: &[String]) -> Value {
    let scopes = if app.scopes.is_empty() {
        catalog_scopes
    } else {
        &app.scopes
    };
    json!({
        "provider": app.provider,
        "clientId": app.client_id,
        "scopes": scopes,
        "configured": true,
        "createdAt": app.created_at,
        "updatedAt": app.updated_at,
    })
}

fn text_error(value: &str, max_chars: usize) -> Option<String> {
    if value.trim().is_empty() {
        Some("must not be empty".to_string())
    } else if value.chars().count() > max_chars {
        Some(format!("must be at most {max_chars} characters"))
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters".to_string())
    } else {
        None
    }
}
