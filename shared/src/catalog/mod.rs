//! The provider catalog: a provider is data, not code.
//!
//! The built-in catalog is `providers.yaml` next to this file, compiled in and validated by the
//! tests below; `PROVIDERS_FILE` (same format) is merged over it at start-up with
//! [`Catalog::load`]. An entry of that file replaces the built-in entry of the same slug wholesale.
//! A bad entry stops start-up with a message naming the source, the slug and the field path.
//!
//! Templates (base URLs, paths, params, headers, `apply`) hold placeholders: `{config.name}` (the
//! integration's config; `{config.name|fallback}` gives a default), `{field}` (a credential field,
//! or `accessToken` for OAuth), `{remoteId}` (export paths); `{{`/`}}` are literal braces.
//!
//! Beyond the spec's fields the format has a few optional ones: `api.headers` and `api.params`
//! (headers and query parameters sent with every request), `webhook.signatureHeader` (for
//! `hmac_sha256`), and `apply: {url: true}` for providers that take the key in the URL itself
//! (Kavenegar, WizCloud). docs/catalog.md documents every field.
//!
//! An entry declares the non-secret settings its integrations take (`config`); every
//! `{config.X}` placeholder must name one (or `baseUrl`, accepted for every provider), and
//! [`Provider::check_config`] checks an integration's `config` against them.

mod json_template;
mod model;
mod pattern;
mod request;
mod settings;
mod template;
mod validate;

#[cfg(test)]
mod action_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use url::Url;

pub use model::{
    ActionDef, ActionRequest, Api, AuthMode, BasicApply, BodyCondition, BodyEncoding, Category,
    ConfigSetting, CredentialField, DefaultMappings, DeletedMarker, EntityDef, EntityRequest,
    FieldMapping, HealthCheck, HealthExpect, Incremental, Pagination, RateLimit, SyncDef,
    TimeFormat, TokenAuth, Transform, WebhookDefaults, WebhookScheme, WriteDef, WriteRequest,
};
pub(crate) use request::json_equal;
pub use request::{ExpectOutcome, HealthCheckRequest, PreparedAction, ProviderRequest};
pub use settings::{ProductConfig, BASE_URL_SETTING};
pub use template::Values;

use crate::error::FieldError;
use model::RawProvider;
use validate::UrlPolicy;

/// `providers.yaml` (the source of truth) is what the tests read; functions load the same document
/// converted to JSON by build.rs.
#[cfg(test)]
const BUILTIN_YAML: &str = include_str!("providers.yaml");
const BUILTIN_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/providers.json"));
const BUILTIN_ORIGIN: &str = "built-in catalog";

/// Why the catalog could not be loaded, or a request could not be built from it. Messages never
/// contain credential values.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("providers file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Document { origin: String, message: String },
    #[error("{origin}: \"{slug}\" is not a valid provider slug (^[a-z][a-z0-9_]{{1,63}}$)")]
    InvalidSlug { origin: String, slug: String },
    #[error("{origin}: provider \"{slug}\": {path}: {message}")]
    InvalidEntry {
        origin: String,
        slug: String,
        path: String,
        message: String,
    },
    /// Entity definitions given outside the catalog (a `custom_api` config) are invalid.
    #[error("{path}: {message}")]
    InvalidDefinition { path: String, message: String },
    /// The provider declares no `api.healthCheck` (test connection answers 400 `not_supported`).
    #[error("the provider has no health check")]
    NoHealthCheck,
    /// The provider declares no `api` (mode `none`).
    #[error("the provider has no API")]
    NoApi,
    /// A placeholder of the request had no usable value (e.g. `{config.calendarId}` not configured).
    #[error("cannot build the request: {placeholder}: {reason}")]
    MissingValue { placeholder: String, reason: String },
    /// The rendered request is not valid (base URL, header); says which part.
    #[error("cannot build the request: {0}")]
    InvalidRequest(String),
}

/// How the tenant's credentials authenticate requests, per mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// Boxed: the OAuth settings are much larger than the other modes'.
    OAuth2(Box<OAuth2>),
    ApiKey(CredentialAuth),
    Basic(CredentialAuth),
    None,
}

/// An OAuth 2.0 authorization-code provider.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2 {
    pub authorize_url: Url,
    pub token_url: Url,
    /// RFC 7009 revocation endpoint, called on disconnect.
    pub revoke_url: Option<Url>,
    /// Where refresh-token grants go when not `token_url` (Figma).
    pub refresh_url: Option<Url>,
    /// The expected RFC 9207 `iss` of the authorization response.
    pub issuer: Option<String>,
    pub scopes: Vec<String>,
    pub scope_separator: String,
    /// PKCE (S256) is supported and used.
    pub pkce: bool,
    pub token_auth: TokenAuth,
    /// Extra authorize query parameters (Google: `access_type=offline`, `prompt=consent`).
    pub authorize_params: BTreeMap<String, String>,
    /// How the access token is sent; `None` = `Authorization: Bearer {accessToken}`.
    pub apply: Option<CredentialApply>,
}

/// The credential fields of an api_key/basic provider and how they are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialAuth {
    pub fields: Vec<CredentialField>,
    pub apply: CredentialApply,
}

/// How credentials are put on a request. Names and formats are templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialApply {
    /// A header `name: format`.
    Header { name: String, format: String },
    /// A query parameter `name=format`.
    Query { name: String, format: String },
    /// HTTP basic authentication.
    Basic { username: String, password: String },
    /// The credentials are placeholders of `api.baseUrl`/paths; nothing is added.
    Url,
}

/// A validated catalog entry. Only [`Catalog`] creates them, so every `Provider` is valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub name: String,
    pub category: Category,
    pub auth: Auth,
    /// The declared non-secret settings (`config`), in catalog order.
    pub config: Vec<ConfigSetting>,
    /// Settings whose shape the product defines (custom_api's `headers` and `entities`).
    pub product_config: ProductConfig,
    /// Absent only for mode `none`.
    pub api: Option<Api>,
    pub webhook: Option<WebhookDefaults>,
    pub sync: Option<SyncDef>,
    /// Declared actions by name (sync.md "Actions through a connection").
    pub actions: BTreeMap<String, ActionDef>,
}

impl Provider {
    pub fn auth_mode(&self) -> AuthMode {
        match self.auth {
            Auth::OAuth2(_) => AuthMode::OAuth2,
            Auth::ApiKey(_) => AuthMode::ApiKey,
            Auth::Basic(_) => AuthMode::Basic,
            Auth::None => AuthMode::None,
        }
    }

    /// The OAuth settings, for oauth2 providers.
    pub fn oauth2(&self) -> Option<&OAuth2> {
        match &self.auth {
            Auth::OAuth2(o) => Some(o.as_ref()),
            _ => None,
        }
    }

    /// The credential fields a tenant supplies (empty for oauth2 and none).
    pub fn credential_fields(&self) -> &[CredentialField] {
        match &self.auth {
            Auth::ApiKey(c) | Auth::Basic(c) => &c.fields,
            Auth::OAuth2(_) | Auth::None => &[],
        }
    }

    /// The remote entity `name` of `sync.entities`.
    pub fn entity(&self, name: &str) -> Option<&EntityDef> {
        self.sync.as_ref().and_then(|s| s.entities.get(name))
    }

    /// What the platform does with this provider, in a fixed order: `oauth_connect`,
    /// `test_connection`, `sync`, `export`, `webhooks`, `actions` (declared actions), `proxy` (any
    /// provider with an API).
    fn operations(&self) -> Vec<&'static str> {
        let mut actions = Vec::new();
        if matches!(self.auth, Auth::OAuth2(_)) {
            actions.push("oauth_connect");
        }
        if self.api.as_ref().is_some_and(|a| a.health_check.is_some()) {
            actions.push("test_connection");
        }
        if let Some(sync) = self.sync.as_ref().filter(|s| !s.entities.is_empty()) {
            actions.push("sync");
            if sync.entities.values().any(|e| e.write.is_some()) {
                actions.push("export");
            }
        }
        if self.webhook.is_some() {
            actions.push("webhooks");
        }
        if !self.actions.is_empty() {
            actions.push("actions");
        }
        if self.api.is_some() {
            actions.push("proxy");
        }
        actions
    }

    /// The declared actions as `GET /api/providers/{slug}` lists them: name, description, input
    /// schema, and the output fields.
    fn actions_view(&self) -> Vec<Value> {
        self.actions
            .iter()
            .map(|(name, action)| {
                json!({
                    "name": name,
                    "description": action.description,
                    "input": action.input,
                    "output": action.output.keys().collect::<Vec<_>>(),
                })
            })
            .collect()
    }

    /// The `GET /api/providers` item: `{slug, name, category, authMode, scopes, credentialFields,
    /// settings, baseUrl, capabilities: {syncEntities, webhookScheme, actions, operations},
    /// actions, healthCheck, rateLimit}`. Credential fields show names and secrecy, never values.
    pub fn public_view(&self, slug: &str) -> Value {
        let scopes = self.oauth2().map(|o| o.scopes.clone()).unwrap_or_default();
        let api = self.api.as_ref();
        json!({
            "slug": slug,
            "name": self.name,
            "category": self.category.as_str(),
            "authMode": self.auth_mode().as_str(),
            "scopes": scopes,
            "credentialFields": self.credential_fields(),
            "settings": self.settings_view(),
            "baseUrl": api.map(|a| a.base_url.as_str()),
            "capabilities": {
                "syncEntities": self.sync.as_ref().map(|s| s.entities.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
                "webhookScheme": self.webhook.as_ref().map(|w| w.scheme.as_str()),
                "actions": self.actions.keys().collect::<Vec<_>>(),
                "operations": self.operations(),
            },
            "actions": self.actions_view(),
            "healthCheck": api.is_some_and(|a| a.health_check.is_some()),
            "rateLimit": api.and_then(|a| a.rate_limit),
        })
    }

    /// Parses entity definitions supplied outside the catalog — a `custom_api` integration's own
    /// definitions in its `config` — as a JSON object of entity name → definition, with the rules
    /// of catalog entities. Error paths are relative to `definitions`.
    pub fn parse_entities(
        &self,
        definitions: &Value,
    ) -> Result<BTreeMap<String, EntityDef>, CatalogError> {
        let entities: BTreeMap<String, EntityDef> = serde_path_to_error::deserialize(definitions)
            .map_err(|e| {
            let (path, message) = describe_serde_error(e.path(), e.inner().to_string());
            CatalogError::InvalidDefinition { path, message }
        })?;
        validate::validate_external_entities(self, &entities).map_err(
            |FieldError { field, message }| CatalogError::InvalidDefinition {
                path: field,
                message,
            },
        )?;
        Ok(entities)
    }

    /// The entities an integration of this provider can sync: the catalog's, and a `custom_api`
    /// integration's own definitions in `config.entities` (checked when the config was written;
    /// parsed again here so a definition is never used unchecked).
    pub fn integration_entities(
        &self,
        config: &serde_json::Map<String, Value>,
    ) -> Result<BTreeMap<String, EntityDef>, CatalogError> {
        let mut entities = self
            .sync
            .as_ref()
            .map(|sync| sync.entities.clone())
            .unwrap_or_default();
        if let Some(definitions) = config.get("entities") {
            entities.extend(self.parse_entities(definitions)?);
        }
        Ok(entities)
    }
}

/// The providers the hub knows, by slug.
#[derive(Debug, Clone)]
pub struct Catalog {
    providers: BTreeMap<String, Provider>,
}

impl Catalog {
    /// The built-in catalog alone.
    ///
    /// # Panics
    /// Only if the compiled-in `providers.yaml` is invalid, which the unit test
    /// `every_builtin_entry_parses_and_validates` rules out before anything ships.
    pub fn builtin() -> Catalog {
        match parse_builtin() {
            Ok(providers) => Catalog { providers },
            Err(e) => panic!("the built-in provider catalog is invalid: {e}"),
        }
    }

    /// The built-in catalog with `providers_file` (the `PROVIDERS_FILE` setting) merged over it:
    /// its entries replace built-in ones of the same slug and add new slugs. Its URLs may be http
    /// (tests point providers at local servers).
    pub fn load(providers_file: Option<&Path>) -> Result<Catalog, CatalogError> {
        let mut providers = parse_builtin()?;
        if let Some(path) = providers_file {
            let text = std::fs::read_to_string(path).map_err(|source| CatalogError::ReadFile {
                path: path.to_owned(),
                source,
            })?;
            let origin = format!("providers file {}", path.display());
            providers.extend(parse_catalog(&text, &origin, UrlPolicy::HttpOrHttps)?);
        }
        Ok(Catalog { providers })
    }

    pub fn get(&self, slug: &str) -> Option<&Provider> {
        self.providers.get(slug)
    }

    /// Every provider, sorted by slug.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Provider)> {
        self.providers.iter().map(|(slug, p)| (slug.as_str(), p))
    }
}

/// `^[a-z][a-z0-9_]{1,63}$`
fn is_valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    (2..=64).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// serde reports a missing or unknown field at the struct holding it; name the field itself so
/// the path reads `auth.tokenUrl: missing field`.
fn describe_serde_error(path: &serde_path_to_error::Path, message: String) -> (String, String) {
    let mut path = path.to_string();
    if path == "." {
        path.clear();
    }
    let join = |path: &str, field: &str| {
        if path.is_empty() {
            field.to_owned()
        } else if path == field || path.ends_with(&format!(".{field}")) {
            path.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some((field, _)) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
    {
        return (join(&path, field), "missing field".to_owned());
    }
    if let Some((field, tail)) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
    {
        return (join(&path, field), format!("unknown field{tail}"));
    }
    if path.is_empty() {
        path.push('.');
    }
    (
        path,
        message.replace("struct RawProvider", "a provider entry (a map)"),
    )
}

fn parse_catalog(
    text: &str,
    origin: &str,
    policy: UrlPolicy,
) -> Result<BTreeMap<String, Provider>, CatalogError> {
    let document_error = |message: String| CatalogError::Document {
        origin: origin.to_owned(),
        message,
    };
    // YAML is read into the JSON data model (what the built-in catalog is compiled to), so both
    // sources go through one set of entry parsers; mapping keys arrive as strings.
    let document: Value =
        serde_saphyr::from_str(text).map_err(|e| document_error(format!("not valid YAML: {e}")))?;
    let entries = match document {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(entries) => entries,
        _ => {
            return Err(document_error(
                "expected a map of provider slug to entry".to_owned(),
            ))
        }
    };
    parse_entries(entries.into_iter().map(Ok), origin, policy)
}

/// The built-in catalog as build.rs stored it: the same document, converted to JSON at build time,
/// so a cold start parses JSON instead of YAML (docs/benchmarks.md).
fn parse_builtin() -> Result<BTreeMap<String, Provider>, CatalogError> {
    let document: serde_json::Map<String, Value> =
        serde_json::from_str(BUILTIN_JSON).map_err(|e| CatalogError::Document {
            origin: BUILTIN_ORIGIN.to_owned(),
            message: format!("not valid JSON: {e}"),
        })?;
    parse_entries(
        document.into_iter().map(Ok),
        BUILTIN_ORIGIN,
        UrlPolicy::HttpsOnly,
    )
}

fn parse_entries<'de, D>(
    entries: impl Iterator<Item = Result<(String, D), CatalogError>>,
    origin: &str,
    policy: UrlPolicy,
) -> Result<BTreeMap<String, Provider>, CatalogError>
where
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    let mut providers = BTreeMap::new();
    for entry in entries {
        let (slug, entry) = entry?;
        if !is_valid_slug(&slug) {
            return Err(CatalogError::InvalidSlug {
                origin: origin.to_owned(),
                slug,
            });
        }
        let invalid = |path: String, message: String| CatalogError::InvalidEntry {
            origin: origin.to_owned(),
            slug: slug.clone(),
            path,
            message,
        };
        let raw: RawProvider = serde_path_to_error::deserialize(entry).map_err(|e| {
            let (path, message) = describe_serde_error(e.path(), e.inner().to_string());
            invalid(path, message)
        })?;
        let provider = validate::validate_provider(raw, ProductConfig::for_slug(&slug), policy)
            .map_err(|FieldError { field, message }| invalid(field, message))?;
        providers.insert(slug, provider);
    }
    Ok(providers)
}
