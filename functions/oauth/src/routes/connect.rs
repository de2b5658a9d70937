//! `GET /api/integrations/connect/{provider}`: starts a connect flow. Checks the return URL
//! against `ALLOWED_RETURN_URLS` (so the callback can never redirect anywhere else), finds the
//! OAuth app, stores a single-use state bound to everything the callback needs, and sends the
//! browser to the provider (302), or tells a client where to send it (200 JSON).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use hub_shared::auth::AuthContext;
use hub_shared::domain::ConnectionKey;
use hub_shared::error::{ApiError, FieldError};
use hub_shared::oauth::authorize::{
    authorize_url, new_pkce, new_state, parse_extra_scopes, requested_scopes, return_url_allowed,
    state_key, STATE_TTL,
};
use hub_shared::oauth::resolve_app;
use hub_shared::store::{timestamp, NewOAuthState};
use serde_json::json;

use super::{oauth_provider, redirect_uri};
use crate::AppState;

/// A return URL longer than this is refused (it travels in a redirect).
const MAX_RETURN_URL_CHARS: usize = 2048;

pub async fn connect(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(provider): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (slug, _, oauth) = oauth_provider(&state, &provider)?;
    let mut errors = Vec::new();
    let return_url = match query.get("returnUrl").map(String::as_str) {
        None | Some("") => {
            errors.push(FieldError::new("returnUrl", "is required"));
            None
        }
        Some(url) if url.chars().count() > MAX_RETURN_URL_CHARS => {
            errors.push(FieldError::new(
                "returnUrl",
                format!("must be at most {MAX_RETURN_URL_CHARS} characters"),
            ));
            None
        }
        Some(url) if !return_url_allowed(&state.config.allowed_return_urls, url) => {
            errors.push(FieldError::new(
                "returnUrl",
                "must start with one of the allowed return URLs (ALLOWED_RETURN_URLS)",
            ));
            None
        }
        Some(url) => Some(url.to_string()),
    };
    let connection_key = match query.get("connectionKey") {
        None => Some(ConnectionKey::default_key()),
        Some(raw) => ConnectionKey::parse(raw)
            .map_err(|e| errors.push(FieldError::new("connectionKey", e.0)))
            .ok(),
    };
    let extra_scopes = match query.get("scopes") {
        None => Some(Vec::new()),
        Some(raw) => parse_extra_scopes(raw)
            .map_err(|message| errors.push(FieldError::new("scopes", message)))
            .ok(),
    };
    let (Some(return_url), Some(connection_key), Some(extra_scopes), true) =
        (return_url, connection_key, extra_scopes, errors.is_empty())
    else {
        return Err(ApiError::validation(errors));
    };

    let app = resolve_app(&state.store, &state.config, &auth.tenant, &slug)
        .await?
        .ok_or_else(|| {
            ApiError::oauth_app_missing(format!(
                "no OAuth app is configured for {slug}: PUT /api/providers/{slug}/oauth-app first"
            ))
        })?;
    let base_scopes = app.scopes.as_deref().unwrap_or(&oauth.scopes);
    let scopes = requested_scopes(base_scopes, &extra_scopes);
    let pkce = oauth.pkce.then(new_pkce);
    let state_value = new_state();
    let expires_at = chrono::Utc::now() + STATE_TTL;
    let callback = redirect_uri(&state, &slug);
    let url = authorize_url(
        oauth,
        &app.credentials.client_id,
        &callback,
        &scopes,
        &state_value,
        pkce.as_ref().map(|pkce| pkce.challenge.as_str()),
    );
    state
        .store
        .put_oauth_state(NewOAuthState {
            state_key: state_key(&state_value),
            tenant: auth.tenant.clone(),
            user: auth.user.clone(),
            provider: slug.clone(),
            connection_key,
            return_url,
            scopes,
            pkce_verifier: pkce.map(|pkce| pkce.verifier),
            expires_at,
        })
        .await?;
    tracing::info!(tenantId = %auth.tenant, provider = %slug, "oauth connect started");

    if wants_json(&headers) {
        let mut response = Json(json!({
            "authorizeUrl": url.as_str(),
            "expiresAt": timestamp(expires_at),
        }))
        .into_response();
        no_store(&mut response);
        return Ok(response);
    }
    let location = HeaderValue::from_str(url.as_str())
        .map_err(|_| ApiError::internal(&"the authorize URL is not a header value"))?;
    let mut response = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    no_store(&mut response);
    Ok(response)
}

/// `Accept: application/json` (with or without parameters, among others) asks for the JSON form.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// A redirect carrying a state is never cached.
pub(crate) fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}
