//! Integration CRUD: `POST/GET /api/integrations`, `GET/PATCH/DELETE /api/integrations/{id}`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use hub_shared::auth::AuthContext;
use hub_shared::catalog::{AuthMode, Provider};
use hub_shared::credentials::{self, CredentialFields};
use hub_shared::domain::{
    ConnectionKey, Description, DisplayName, IntegrationId, IntegrationStatus, ProviderSlug,
};
use hub_shared::error::{ApiError, FieldError};
use hub_shared::events::{Event, IntegrationEvent};
use hub_shared::http::JsonBody;
use hub_shared::http_client::{validate_target, OutgoingRequest};
use hub_shared::schedule;
use hub_shared::store::{
    Admission, IntegrationChanges, IntegrationFilter, IntegrationItem, NewIntegration,
};
use hub_shared::sync_settings::SyncSettings;
use serde::Deserialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::routes::{
    cursor_param, expected_version, integration_id, list_body, non_null, parse_limit, parsed,
    present, versioned,
};
use crate::state::AppState;

/// A non-secret settings object is small: 16 KiB of JSON.
const MAX_CONFIG_BYTES: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateIntegrationRequest {
    provider: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    connection_key: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    credentials: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "non_null")]
    config: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "non_null")]
    sync_settings: Option<SyncSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchIntegrationRequest {
    #[serde(default, deserialize_with = "non_null")]
    name: Option<String>,
    /// Absent leaves it; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "non_null")]
    sync_settings: Option<SyncSettings>,
    #[serde(default, deserialize_with = "non_null")]
    config: Option<Map<String, Value>>,
    /// Merged over the stored fields (rotate one without resending the others).
    #[serde(default, deserialize_with = "non_null")]
    credentials: Option<BTreeMap<String, String>>,
}

pub async fn create(
    State(state): State<AppState>,
    auth: AuthContext,
    JsonBody(request): JsonBody<CreateIntegrationRequest>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let (slug, provider) = match ProviderSlug::parse(&request.provider)
        .ok()
        .and_then(|slug| state.catalog.get(slug.as_str()).map(|p| (slug, p)))
    {
        Some((slug, provider)) if provider.auth_mode() == AuthMode::OAuth2 => {
            return Err(ApiError::field(
                "provider",
                format!(
                    "{slug} connects with OAuth 2.0: start GET /api/integrations/connect/{slug} instead"
                ),
            ))
        }
        Some(found) => found,
        None => {
            return Err(ApiError::field(
                "provider",
                format!("unknown provider `{}`", printable(&request.provider)),
            ))
        }
    };
    let name = parsed("name", DisplayName::parse(&request.name), &mut errors);
    let description = request
        .description
        .as_deref()
        .and_then(|text| parsed("description", Description::parse(text), &mut errors));
    let connection_key = match request.connection_key.as_deref() {
        Some(key) => parsed("connectionKey", ConnectionKey::parse(key), &mut errors),
        None => Some(ConnectionKey::default_key()),
    };
    let fields: CredentialFields = request
        .credentials
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, Zeroizing::new(value)))
        .collect();
    errors.extend(credentials::check_fields(slug.as_str(), provider, &fields));
    let config = request.config.unwrap_or_default();
    errors.extend(check_config(&state, provider, &config).await);
    let sync_settings = request.sync_settings.unwrap_or_default();
    errors.extend(check_sync_settings(provider, &config, &sync_settings));
    let (Some(name), Some(connection_key), true) = (name, connection_key, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };

    let id = IntegrationId::generate();
    let tenant = &auth.tenant;
    let credentials = if fields.is_empty() {
        None
    } else {
        let envelope =
            credentials::seal(state.store.cipher(), tenant.as_str(), &id, &fields).await?;
        Some((envelope, credentials::hint(provider, &fields)))
    };
    let item = IntegrationItem::new(
        NewIntegration {
            id: id.clone(),
            tenant: tenant.clone(),
            provider: slug,
            auth_mode: provider.auth_mode(),
            connection_key,
            name,
            description,
            credentials,
            scopes: Vec::new(),
            token_expires_at: None,
            config,
            sync_settings,
            connected_by: auth.user.clone(),
        },
        chrono::Utc::now(),
    );
    state.store.create_integration(&item).await?;
    tracing::info!(tenantId = %tenant, integrationId = %id, provider = %item.provider, "integration created");
    super::emit(
        &state,
        [Event::integration(IntegrationEvent::Connected, &item)],
    )
    .await?;
    let mut response = versioned(StatusCode::CREATED, item.version, item.to_resource());
    if let Ok(location) = HeaderValue::from_str(&format!("/api/integrations/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn list(
    State(state): State<AppState>,
    auth: AuthContext,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_limit(&query)?;
    let status = match query.get("status") {
        Some(raw) => {
            Some(IntegrationStatus::parse(raw).map_err(|e| ApiError::field("status", e.0))?)
        }
        None => None,
    };
    let provider = match query.get("provider") {
        Some(raw) if raw.is_empty() => {
            return Err(ApiError::field(
                "provider",
                "must be a provider slug, not empty",
            ))
        }
        // A slug no provider can have matches nothing.
        Some(raw) => match ProviderSlug::parse(raw) {
            Ok(slug) => Some(slug),
            Err(_) => return Ok(list_body(Vec::new(), None)),
        },
        None => None,
    };
    let filter = IntegrationFilter { provider, status };
    let page = state
        .store
        .list_integrations(&auth.tenant, &filter, limit, cursor_param(&query))
        .await?
        .map_err(|_| ApiError::invalid_cursor())?;
    Ok(list_body(
        page.items
            .iter()
            .map(IntegrationItem::to_resource)
            .collect(),
        page.next_cursor,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let item = load(&state, &auth, &id).await?;
    Ok(versioned(StatusCode::OK, item.version, item.to_resource()))
}

pub async fn patch(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PatchIntegrationRequest>,
) -> Result<Response, ApiError> {
    let id = integration_id(&id)?;
    let expected_version = expected_version(&headers)?;
    let nothing_sent = request.name.is_none()
        && request.description.is_none()
        && request.sync_settings.is_none()
        && request.config.is_none()
        && request.credentials.is_none();
    if nothing_sent {
        return Err(ApiError::field(
            "(body)",
            "send at least one of name, description, syncSettings, config, credentials",
        ));
    }
    let current = load(&state, &auth, id.as_str()).await?;
    if expected_version.is_some_and(|expected| expected != current.version) {
        return Err(ApiError::precondition_failed(Some(current.version)));
    }
    // The deployment's catalog dropped the provider: nothing can be checked against it.
    let provider = state
        .catalog
        .get(current.provider.as_str())
        .ok_or_else(|| {
            ApiError::field(
                "provider",
                format!(
                    "{} is no longer in the provider catalog; delete this integration",
                    current.provider
                ),
            )
        })?;

    let mut errors = Vec::new();
    let mut changes = IntegrationChanges::default();
    if let Some(name) = &request.name {
        changes.name = parsed("name", DisplayName::parse(name), &mut errors);
    }
    if let Some(description) = &request.description {
        let result = description.as_deref().map(Description::parse).transpose();
        changes.description = parsed("description", result, &mut errors);
    }
    if let Some(config) = &request.config {
        errors.extend(check_config(&state, provider, config).await);
    }
    let effective_config = request.config.as_ref().unwrap_or(&current.config);
    if let Some(sync_settings) = &request.sync_settings {
        errors.extend(check_sync_settings(
            provider,
            effective_config,
            sync_settings,
        ));
        changes.next_sync_at = Some(schedule::next_sync_at_after_settings_change(
            Some((&current.sync_settings, current.next_sync_at.as_deref())),
            sync_settings,
            chrono::Utc::now(),
        ));
    }
    let mut merged_credentials = None;
    if let Some(given) = request.credentials {
        if provider.credential_fields().is_empty() || current.auth_mode == AuthMode::OAuth2 {
            errors.push(FieldError::new(
                "credentials",
                "this integration's credentials cannot be set here (none, or OAuth tokens: reconnect instead)",
            ));
        } else {
            let mut fields = match &current.credentials {
                Some(envelope) => {
                    credentials::open(state.store.cipher(), auth.tenant.as_str(), &id, envelope)
                        .await?
                }
                None => CredentialFields::new(),
            };
            fields.extend(
                given
                    .into_iter()
                    .map(|(name, value)| (name, Zeroizing::new(value))),
            );
            errors.extend(credentials::check_fields(
                current.provider.as_str(),
                provider,
                &fields,
            ));
            merged_credentials = Some(fields);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    changes.config = request.config;
    changes.sync_settings = request.sync_settings;
    if let Some(fields) = merged_credentials {
        let envelope =
            credentials::seal(state.store.cipher(), auth.tenant.as_str(), &id, &fields).await?;
        changes.credentials = Some((envelope, credentials::hint(provider, &fields)));
    }
    let updated = state
        .store
        .update_integration(&auth.tenant, &id, changes, expected_version)
        .await?;
    tracing::info!(tenantId = %auth.tenant, integrationId = %id, version = updated.version, "integration updated");
    super::emit(
        &state,
        [Event::integration(IntegrationEvent::Updated, &updated)],
    )
    .await?;
    Ok(versioned(
        StatusCode::OK,
        updated.version,
        updated.to_resource(),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = integration_id(&id)?;
    match state.store.delete_integration(&auth.tenant, &id).await? {
        Some(deleted) => {
            tracing::info!(tenantId = %auth.tenant, integrationId = %id, "integration deleted");
            let emitted = super::emit(
                &state,
                [Event::integration(IntegrationEvent::Disconnected, &deleted)],
            )
            .await;
            delete_records(&state, &auth, &id).await;
            // RFC 7009 at the provider when the catalog has a revocation URL; a failure is
            // logged and the delete stands.
            if let Some(provider) = state.catalog.get(deleted.provider.as_str()) {
                hub_shared::oauth::revoke_tokens(&state, provider, &deleted).await;
            }
            emitted?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(ApiError::not_found("integration")),
    }
}

/// The records of a deleted integration go after it (docs/decisions.md, "Records"): while the
/// integration exists nothing of it is lost, and once it is gone no route reads its records. A
/// failure leaves them unreachable (the id is never reused) and is logged with what an operator
/// needs to remove them; the integration is deleted either way, so the answer stays 204.
async fn delete_records(state: &AppState, auth: &AuthContext, id: &IntegrationId) {
    match state
        .store
        .delete_integration_records(&auth.tenant, id)
        .await
    {
        Ok(count) => {
            tracing::info!(tenantId = %auth.tenant, integrationId = %id, records = count,
                "records of the deleted integration deleted");
        }
        Err(error) => {
            tracing::error!(tenantId = %auth.tenant, integrationId = %id, error = %error,
                "records of the deleted integration were not all deleted; they are unreachable \
                 and stay until its record partition is deleted");
        }
    }
}

/// The caller's integration, or 404 (another tenant's id is answered exactly like a missing one).
pub async fn load(
    state: &AppState,
    auth: &AuthContext,
    raw_id: &str,
) -> Result<IntegrationItem, ApiError> {
    let id = integration_id(raw_id)?;
    state
        .store
        .get_integration(&auth.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))
}

/// The catalog entry of an integration's provider; a provider taken out of the catalog since (a
/// `PROVIDERS_FILE` changed) is 400 `not_supported` for what needs it.
pub fn provider_of<'a>(
    state: &'a AppState,
    item: &IntegrationItem,
) -> Result<&'a Provider, ApiError> {
    state.catalog.get(item.provider.as_str()).ok_or_else(|| {
        ApiError::not_supported(format!(
            "provider {} is no longer in the catalog",
            item.provider
        ))
    })
}

/// One token of the per-(tenant, provider) rate-limit bucket the catalog's `rateLimit` sets,
/// shared by test connection, actions, the proxy and sync: 429 with `Retry-After` when it is
/// empty. A provider without a `rateLimit` is not limited.
pub async fn take_provider_token(
    state: &AppState,
    item: &IntegrationItem,
    provider: &Provider,
) -> Result<(), ApiError> {
    let Some(limit) = provider.api.as_ref().and_then(|api| api.rate_limit) else {
        return Ok(());
    };
    let admission = state
        .store
        .take_rate_token(
            &item.tenant_id,
            &item.provider,
            limit.requests,
            limit.per_seconds,
        )
        .await?;
    match admission {
        Admission::Wait(wait) => Err(ApiError::rate_limited(wait.as_secs_f64().ceil() as u64)),
        _ => Ok(()),
    }
}

/// `request` with the catalog's rendered headers (credentials included, marked sensitive so no
/// log shows them).
pub fn with_catalog_headers(
    mut request: OutgoingRequest,
    headers: &[(String, String)],
) -> Result<OutgoingRequest, ApiError> {
    for (name, value) in headers {
        let (Ok(name), Ok(mut value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) else {
            return Err(ApiError::bad_request(
                "invalid_configuration",
                format!("the catalog header {name} cannot be sent"),
            ));
        };
        value.set_sensitive(true);
        request = request.header(name, value);
    }
    Ok(request)
}

/// `config` is non-secret and small, holds exactly the provider's settings (the catalog's
/// check: unknown, missing, non-string, pattern), and a `baseUrl` is a target the SSRF guard allows.
async fn check_config(
    state: &AppState,
    provider: &Provider,
    config: &Map<String, Value>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let size = serde_json::to_vec(config)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CONFIG_BYTES {
        errors.push(FieldError::new(
            "config",
            format!("must be at most {MAX_CONFIG_BYTES} bytes of JSON"),
        ));
        return errors;
    }
    // What DynamoDB cannot store is reported alone (the settings check would name it again).
    if let Some(problem) = config
        .iter()
        .find_map(|(key, value)| member_problem("config", key, value, 1))
    {
        errors.push(problem);
        return errors;
    }
    errors.extend(provider.check_config(config));
    let base_url_ok = !errors.iter().any(|e| e.field == "config.baseUrl");
    if let (true, Some(Value::String(raw))) = (base_url_ok, config.get("baseUrl")) {
        match url::Url::parse(raw) {
            Err(_) => errors.push(FieldError::new("config.baseUrl", "must be an absolute URL")),
            Ok(url) => {
                if let Err(rejected) =
                    validate_target(&url, state.config.allow_private_targets).await
                {
                    errors.push(FieldError::new("config.baseUrl", rejected.to_string()));
                }
            }
        }
    }
    errors
}

fn check_sync_settings(
    provider: &Provider,
    config: &Map<String, Value>,
    settings: &SyncSettings,
) -> Vec<FieldError> {
    // A custom_api integration may carry its own entity definitions in `config.entities`; invalid
    // ones are reported by check_config.
    let mut errors = Vec::new();
    let custom = config
        .get("entities")
        .and_then(|definitions| provider.parse_entities(definitions).ok());
    for (i, mapping) in settings.field_mappings.iter().enumerate() {
        let at = format!("syncSettings.fieldMappings[{i}]");
        if let Some(options) = &mapping.transform_config {
            let at = format!("{at}.transformConfig");
            errors.extend(
                options
                    .iter()
                    .find_map(|(key, value)| member_problem(&at, key, value, 1)),
            );
        }
        if let Some(value) = &mapping.default_value {
            errors.extend(storable_problem(value, &format!("{at}.defaultValue"), 0));
        }
    }
    for (i, filter) in settings.filters.iter().enumerate() {
        errors.extend(storable_problem(
            &filter.value,
            &format!("syncSettings.filters[{i}].value"),
            0,
        ));
    }
    // What DynamoDB cannot store is reported alone (the typed checks would name it again).
    if !errors.is_empty() {
        return errors;
    }
    errors.extend(settings.validate(|remote| {
        provider.entity(remote).is_some()
            || custom
                .as_ref()
                .is_some_and(|entities| entities.contains_key(remote))
    }));
    errors
}

/// Free-form JSON (config, transform options, default and filter values) is stored as DynamoDB
/// attributes, which nest at most 32 levels under the item: free-form values get 16 of them.
const MAX_JSON_DEPTH: usize = 16;

/// Why DynamoDB would refuse `value` (or store it so that reading the item fails), as a 400 naming
/// the place: an empty object key, a number beyond DynamoDB's range, too deep a nesting. `depth` is
/// the number of containers `value` is inside.
pub(crate) fn storable_problem(value: &Value, path: &str, depth: usize) -> Option<FieldError> {
    match value {
        Value::Number(number) => {
            let magnitude = number.as_f64().unwrap_or(0.0).abs();
            (magnitude >= 1e126 || (magnitude != 0.0 && magnitude < 1e-130)).then(|| {
                FieldError::new(
                    path,
                    "a number must be 0 or of magnitude from 1e-130 to below 1e126",
                )
            })
        }
        Value::Array(_) | Value::Object(_) if depth >= MAX_JSON_DEPTH => Some(FieldError::new(
            path,
            format!("nests more than {MAX_JSON_DEPTH} levels deep"),
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| storable_problem(item, &format!("{path}[{i}]"), depth + 1)),
        Value::Object(members) => members
            .iter()
            .find_map(|(key, item)| member_problem(path, key, item, depth + 1)),
        Value::Null | Value::Bool(_) | Value::String(_) => None,
    }
}

/// [`storable_problem`] of one member of the object at `path`.
fn member_problem(path: &str, key: &str, value: &Value, depth: usize) -> Option<FieldError> {
    if key.is_empty() {
        return Some(FieldError::new(path, "object keys must not be empty"));
    }
    storable_problem(value, &format!("{path}.{}", printable(key)), depth)
}

fn printable(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(64).collect()
}
