//! `GET /api/integrations/callback/{provider}` (public): the provider sends the browser back here.
//! The state is consumed first, with one conditional delete, so it can never be used twice; only
//! then is anything else looked at. A bad, expired, reused or foreign state is a 400 problem (the
//! return URL is unknown or not to be trusted); everything after that ends in a redirect to the
//! state's return URL, with `integrationId` and `status`, or with `error`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use hub_shared::catalog::{AuthMode, Provider};
use hub_shared::credentials;
use hub_shared::domain::{DisplayName, IntegrationId, ProviderSlug};
use hub_shared::error::ApiError;
use hub_shared::events::{Event, IntegrationEvent, StatusChangeReason};
use hub_shared::oauth::authorize::{return_url_with, state_key};
use hub_shared::oauth::resolve_app;
use hub_shared::oauth::token_endpoint::{exchange_code, TokenGrant};
use hub_shared::oauth::tokens::{expires_at, granted_scopes, token_fields};
use hub_shared::store::{
    CreateIntegrationError, IntegrationItem, NewIntegration, OAuthStateItem, TokenWrite,
};
use hub_shared::sync_settings::SyncSettings;
use serde_json::{Map, Value};

use super::connect::no_store;
use super::redirect_uri;
use crate::AppState;

/// Query values longer than this are not OAuth values.
const MAX_PARAM_CHARS: usize = 4096;

pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let Some(raw_state) = query
        .get("state")
        .filter(|value| !value.is_empty() && value.len() <= MAX_PARAM_CHARS)
    else {
        return Err(ApiError::invalid_state("the callback carries no state"));
    };
    let Some(pending) = state.store.take_oauth_state(&state_key(raw_state)).await? else {
        return Err(ApiError::invalid_state(
            "the state is unknown, expired or already used: start the connect flow again",
        ));
    };
    // Consumed all the same: a state presented for another provider is spent.
    if pending.provider.as_str() != provider {
        tracing::warn!(tenantId = %pending.tenant_id, provider = %pending.provider,
            presentedFor = %printable(&provider), "oauth state presented for another provider");
        return Err(ApiError::invalid_state(
            "the state was issued for another provider: start the connect flow again",
        ));
    }
    let slug = pending.provider.clone();
    let Some((provider, oauth)) = state
        .catalog
        .get(slug.as_str())
        .and_then(|provider| provider.oauth2().map(|oauth| (provider, oauth)))
    else {
        return Ok(fail(&pending, "provider_unavailable"));
    };

    if let Some(error) = query.get("error") {
        tracing::info!(tenantId = %pending.tenant_id, provider = %slug,
            error = %oauth_code(error), "the provider returned an error (consent denied?)");
        return Ok(fail(&pending, &oauth_code(error)));
    }
    // RFC 9207: a different issuer means the response came from another server (mix-up attack).
    if let (Some(expected), Some(iss)) = (&oauth.issuer, query.get("iss")) {
        if iss != expected {
            tracing::warn!(tenantId = %pending.tenant_id, provider = %slug,
                "the authorization response's iss is not the provider's issuer");
            return Ok(fail(&pending, "invalid_issuer"));
        }
    }
    let Some(code) = query
        .get("code")
        .filter(|code| !code.is_empty() && code.len() <= MAX_PARAM_CHARS)
    else {
        return Ok(fail(&pending, "invalid_request"));
    };

    let Some(app) = resolve_app(&state.store, &state.config, &pending.tenant_id, &slug).await?
    else {
        return Ok(fail(&pending, "oauth_app_missing"));
    };
    let http = state.delivery_http().map_err(|e| ApiError::internal(&e))?;
    let grant = match exchange_code(
        http,
        oauth,
        &app.credentials,
        &redirect_uri(&state, &slug),
        code,
        pending.pkce_verifier.as_deref(),
    )
    .await
    {
        Ok(grant) => grant,
        Err(error) => {
            tracing::warn!(tenantId = %pending.tenant_id, provider = %slug,
                error = %error, "the code exchange failed");
            return Ok(fail(&pending, "token_exchange_failed"));
        }
    };

    let settings = callback_settings(provider, &query);
    let (item, events) =
        store_connection(&state, &pending, &slug, provider, &grant, settings).await?;
    // The connection is stored: a failure to announce it is logged, and the browser still
    // lands on a working integration.
    if let Err(error) = hub_shared::delivery::emit(&state.store, &state.queues, &events).await {
        tracing::error!(tenantId = %item.tenant_id, integrationId = %item.id, error = %error,
            "integration.connected could not be emitted");
    }
    tracing::info!(tenantId = %item.tenant_id, integrationId = %item.id, provider = %slug,
        "oauth connected");
    Ok(redirect(&return_url_with(
        &pending.return_url,
        &[("integrationId", item.id.as_str()), ("status", "connected")],
    )))
}

/// Creates the integration of `(tenant, provider, connectionKey)`, or reconnects the one that
/// holds it (same id), with the granted tokens sealed under that id.
async fn store_connection(
    state: &AppState,
    pending: &OAuthStateItem,
    slug: &ProviderSlug,
    provider: &Provider,
    grant: &TokenGrant,
    settings: Map<String, Value>,
) -> Result<(IntegrationItem, Vec<Event>), ApiError> {
    let now = chrono::Utc::now();
    let fields = token_fields(grant, None);
    let scopes = granted_scopes(grant, &pending.scopes);
    let token_expires_at = expires_at(grant, now);
    // Two tries: a concurrent first connect of the same key makes the create a reconnect.
    for _ in 0..2 {
        let existing = state
            .store
            .integration_for_connection(&pending.tenant_id, slug, &pending.connection_key)
            .await?;
        let id = existing.clone().unwrap_or_else(IntegrationId::generate);
        let envelope = credentials::seal(
            state.store.cipher(),
            pending.tenant_id.as_str(),
            &id,
            &fields,
        )
        .await?;
        if let Some(existing_id) = &existing {
            // Settings the callback brought replace the stored ones of the same name.
            let config = if settings.is_empty() {
                None
            } else {
                let stored = state
                    .store
                    .get_integration(&pending.tenant_id, existing_id)
                    .await?;
                let mut config = stored.map(|item| item.config).unwrap_or_default();
                config.extend(settings.clone());
                Some(config)
            };
            let transition = state
                .store
                .reconnect_integration(
                    &pending.tenant_id,
                    &id,
                    TokenWrite {
                        envelope,
                        token_expires_at: token_expires_at.clone(),
                        scopes: scopes.clone(),
                    },
                    pending.user.clone(),
                    config.as_ref(),
                )
                .await?;
            let Some(transition) = transition else {
                // Deleted between the claim read and the write: connect it anew.
                continue;
            };
            let mut events = vec![Event::integration(
                IntegrationEvent::Connected,
                &transition.item,
            )];
            events.extend(Event::status_changed(
                &transition.item,
                transition.from,
                StatusChangeReason::Reconnected,
            ));
            return Ok((transition.item, events));
        }
        let name = DisplayName::parse(&provider.name)
            .or_else(|_| DisplayName::parse(slug.as_str()))
            .map_err(|e| ApiError::internal(&e.0))?;
        let item = IntegrationItem::new(
            NewIntegration {
                id,
                tenant: pending.tenant_id.clone(),
                provider: slug.clone(),
                auth_mode: AuthMode::OAuth2,
                connection_key: pending.connection_key.clone(),
                name,
                description: None,
                credentials: Some((envelope, None)),
                scopes: scopes.clone(),
                token_expires_at: token_expires_at.clone(),
                config: settings.clone(),
                sync_settings: SyncSettings::default(),
                connected_by: pending.user.clone(),
            },
            now,
        );
        match state.store.create_integration(&item).await {
            Ok(()) => {
                let events = vec![Event::integration(IntegrationEvent::Connected, &item)];
                return Ok((item, events));
            }
            Err(CreateIntegrationError::Duplicate { .. }) => continue,
            Err(CreateIntegrationError::Store(error)) => return Err(error.into()),
        }
    }
    Err(ApiError::conflict(
        "the connection changed concurrently; start the connect flow again",
    ))
}

/// Parameters of the callback that OAuth does not define but the provider sends to name the
/// connected account, kept as the integration's settings: a query parameter named like one of the
/// provider's declared settings (QuickBooks' `realmId`), when it passes that setting's checks.
fn callback_settings(provider: &Provider, query: &HashMap<String, String>) -> Map<String, Value> {
    const OAUTH_PARAMETERS: [&str; 7] = [
        "code",
        "state",
        "iss",
        "error",
        "error_description",
        "error_uri",
        "scope",
    ];
    provider
        .config
        .iter()
        .filter(|setting| !OAUTH_PARAMETERS.contains(&setting.name.as_str()))
        .filter_map(|setting| {
            let value = query.get(&setting.name)?;
            let single = Map::from_iter([(setting.name.clone(), Value::String(value.clone()))]);
            let field = format!("config.{}", setting.name);
            let refused = provider
                .check_config(&single)
                .iter()
                .any(|error| error.field == field);
            (!refused).then(|| (setting.name.clone(), Value::String(value.clone())))
        })
        .collect()
}

/// The browser goes back to the tenant's app with `error`.
fn fail(pending: &OAuthStateItem, error: &str) -> Response {
    redirect(&return_url_with(&pending.return_url, &[("error", error)]))
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => {
            let mut response = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
            no_store(&mut response);
            response
        }
        Err(_) => ApiError::internal(&"the return URL is not a header value").into_response(),
    }
}

/// A provider's `error` as a short code (RFC 6749 error codes are `[a-z_]`): never echoed raw.
fn oauth_code(raw: &str) -> String {
    let code: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    if code.is_empty() {
        "provider_error".to_string()
    } else {
        code
    }
}

fn printable(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(64).collect()
}
