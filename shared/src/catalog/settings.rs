//! Provider settings (docs/catalog.md): the non-secret `config` of an integration,
//! checked against the settings its catalog entry declares.
//!
//! - A declared setting takes a string; `required`, `pattern` (whole value) and `default` apply.
//! - `baseUrl` is accepted for every provider without being declared (it overrides `api.baseUrl`,
//!   path included); an entry may still declare it, e.g. to make it required (Seha, Tatman).
//! - `custom_api` also takes two product-defined structured settings: `headers` (extra request
//!   headers) and `entities` (its own sync definitions).
//! - A `default` is not stored in the integration: placeholders use it while the setting is absent.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::model::ConfigSetting;
use super::pattern::{Pattern, MAX_INPUT_CHARS};
use super::{CatalogError, Provider};
use crate::error::FieldError;

/// The setting every provider accepts: it replaces `api.baseUrl`.
pub const BASE_URL_SETTING: &str = "baseUrl";

/// A setting's value is short: at most this many characters.
const MAX_VALUE_CHARS: usize = MAX_INPUT_CHARS;

/// Header names a tenant's `config.headers` may not set: the HTTP stack and the credentials own them.
const RESERVED_HEADERS: [&str; 6] = [
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "cookie",
];

/// Settings whose shape the product defines rather than the catalog file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductConfig {
    /// Only the declared settings and `baseUrl`.
    #[default]
    None,
    /// `custom_api`: also `headers` (an object of header name → value, sent with every request)
    /// and `entities` (an object of entity name → sync definition).
    CustomApi,
}

impl ProductConfig {
    pub(crate) fn for_slug(slug: &str) -> ProductConfig {
        match slug {
            "custom_api" => ProductConfig::CustomApi,
            _ => ProductConfig::None,
        }
    }

    /// The names of the structured (non-string) settings.
    pub fn structured_keys(self) -> &'static [&'static str] {
        match self {
            ProductConfig::None => &[],
            ProductConfig::CustomApi => &["headers", "entities"],
        }
    }
}

impl Provider {
    /// The declared setting `name`.
    pub fn setting(&self, name: &str) -> Option<&ConfigSetting> {
        self.config.iter().find(|s| s.name == name)
    }

    /// Checks an integration's whole `config` against the provider's settings. Every problem is
    /// one error naming `config.<key>` (or a path below it for structured settings): an unknown
    /// key, a missing required setting, a value that is not a string (structured settings aside),
    /// is too long, is empty where required, or does not match the setting's `pattern`.
    pub fn check_config(&self, config: &Map<String, Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (key, value) in config {
            if key.is_empty() {
                errors.push(FieldError::new("config", "setting names must not be empty"));
                continue;
            }
            let field = format!("config.{}", printable(key));
            if self
                .product_config
                .structured_keys()
                .contains(&key.as_str())
            {
                self.check_structured(key, value, &field, &mut errors);
                continue;
            }
            let setting = self.setting(key);
            if setting.is_none() && key != BASE_URL_SETTING {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "is not a setting of this provider (expected: {})",
                        self.setting_names().join(", ")
                    ),
                ));
                continue;
            }
            let Value::String(text) = value else {
                errors.push(FieldError::new(field, "must be a string"));
                continue;
            };
            if text.chars().count() > MAX_VALUE_CHARS {
                errors.push(FieldError::new(
                    field,
                    format!("must be at most {MAX_VALUE_CHARS} characters"),
                ));
                continue;
            }
            let required = setting.is_none_or(|s| s.required);
            if required && text.trim().is_empty() {
                errors.push(FieldError::new(field, "must not be empty"));
                continue;
            }
            if let Some(pattern) = setting.and_then(|s| s.pattern.as_deref()) {
                let matches = Pattern::parse(pattern).is_ok_and(|p| p.is_match(text));
                if !matches {
                    errors.push(FieldError::new(
                        field,
                        format!("does not match the pattern `{pattern}`"),
                    ));
                }
            }
        }
        for setting in self.config.iter().filter(|s| s.required) {
            if !config.contains_key(&setting.name) {
                let message = match &setting.description {
                    Some(description) => format!("is required: {description}"),
                    None => "is required".to_owned(),
                };
                errors.push(FieldError::new(format!("config.{}", setting.name), message));
            }
        }
        errors
    }

    /// Every key `config` accepts, for messages: the declared settings, `baseUrl` and the
    /// structured ones.
    fn setting_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.config.iter().map(|s| s.name.as_str()).collect();
        if self.setting(BASE_URL_SETTING).is_none() {
            names.push(BASE_URL_SETTING);
        }
        names.extend(self.product_config.structured_keys());
        names
    }

    fn check_structured(
        &self,
        key: &str,
        value: &Value,
        field: &str,
        errors: &mut Vec<FieldError>,
    ) {
        let Value::Object(entries) = value else {
            errors.push(FieldError::new(field, "must be an object"));
            return;
        };
        if let Some(path) = empty_key(value, field) {
            errors.push(FieldError::new(path, "keys must not be empty"));
            return;
        }
        match key {
            "headers" => {
                for (name, value) in entries {
                    let path = format!("{field}.{}", printable(name));
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        errors.push(FieldError::new(path, "is not a valid header name"));
                    } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                        errors.push(FieldError::new(
                            path,
                            "is set by the hub itself (credentials go in `credentials`)",
                        ));
                    } else {
                        match value {
                            Value::String(v)
                                if v.chars().count() <= MAX_VALUE_CHARS
                                    && http::HeaderValue::from_str(v).is_ok() => {}
                            Value::String(_) => errors.push(FieldError::new(
                                path,
                                format!("must be a valid header value of at most {MAX_VALUE_CHARS} characters"),
                            )),
                            _ => errors.push(FieldError::new(path, "must be a string")),
                        }
                    }
                }
            }
            _ => {
                if let Err(error) = self.parse_entities(value) {
                    errors.push(match error {
                        CatalogError::InvalidDefinition { path, message } => {
                            let path = path.trim_matches('.');
                            if path.is_empty() {
                                FieldError::new(field, message)
                            } else {
                                FieldError::new(format!("{field}.{path}"), message)
                            }
                        }
                        other => FieldError::new(field, other.to_string()),
                    });
                }
            }
        }
    }

    /// The `settings` of the public view: every declared setting, `baseUrl` and the structured
    /// ones, each `{name, kind, required, description, default, pattern}`.
    pub(crate) fn settings_view(&self) -> Vec<Value> {
        let view = |name: &str, kind: &str, required: bool, description: Option<&str>| {
            json!({"name": name, "kind": kind, "required": required, "description": description,
                   "default": null, "pattern": null})
        };
        let mut settings: Vec<Value> = self
            .config
            .iter()
            .map(|s| {
                json!({"name": s.name, "kind": "string", "required": s.required,
                       "description": s.description, "default": s.default, "pattern": s.pattern})
            })
            .collect();
        if self.setting(BASE_URL_SETTING).is_none() {
            settings.push(view(
                BASE_URL_SETTING,
                "string",
                false,
                Some("Replaces the provider's API base URL, path included (a sandbox, a proxy)."),
            ));
        }
        for key in self.product_config.structured_keys() {
            let description = match *key {
                "headers" => "Headers sent with every request: an object of name to value.",
                _ => "Entity definitions for sync: an object of entity name to definition (docs/catalog.md, \"sync.entities\").",
            };
            settings.push(view(key, "object", false, Some(description)));
        }
        settings
    }

    /// `config` with the declared defaults of absent (or null) settings filled in: what
    /// placeholders render from.
    pub(crate) fn config_with_defaults<'a>(
        &self,
        config: &'a Map<String, Value>,
    ) -> Cow<'a, Map<String, Value>> {
        let absent = |name: &str| config.get(name).is_none_or(Value::is_null);
        let missing: Vec<(&str, &str)> = self
            .config
            .iter()
            .filter_map(|s| Some((s.name.as_str(), s.default.as_deref()?)))
            .filter(|(name, _)| absent(name))
            .collect();
        if missing.is_empty() {
            return Cow::Borrowed(config);
        }
        let mut filled = config.clone();
        for (name, default) in missing {
            filled.insert(name.to_owned(), Value::String(default.to_owned()));
        }
        Cow::Owned(filled)
    }

    /// custom_api's `config.headers`, as stored (checked on write).
    pub(crate) fn config_headers<'a>(
        &self,
        config: &'a Map<String, Value>,
    ) -> impl Iterator<Item = (&'a str, &'a str)> {
        let headers = match (self.product_config, config.get("headers")) {
            (ProductConfig::CustomApi, Some(Value::Object(headers))) => Some(headers),
            _ => None,
        };
        headers
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| Some((name.as_str(), value.as_str()?)))
    }
}

/// The path of the first empty object key inside `value`, if any (an empty key once made every
/// later read of a tenant's integrations fail).
fn empty_key(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, inner)| {
            if key.is_empty() {
                Some(format!("{path}.\"\""))
            } else {
                empty_key(inner, &format!("{path}.{}", printable(key)))
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, inner)| empty_key(inner, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// Keys come from the request: keep them short and printable in error paths.
fn printable(key: &str) -> String {
    key.chars().filter(|c| !c.is_control()).take(64).collect()
}
