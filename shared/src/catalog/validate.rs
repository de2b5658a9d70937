//! Checks beyond serde: the required fields of each auth mode, URLs, templates and their
//! placeholders, and sane numbers. Produces the validated [`Provider`] or the first problem with
//! its exact field path.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use url::Url;

use super::model::{
    ActionDef, Api, AuthMode, ConfigSetting, CredentialField, EntityDef, Incremental, Pagination,
    RawApply, RawAuth, RawProvider, SyncDef, WebhookDefaults, WebhookScheme, WriteRequest,
};
use super::pattern::Pattern;
use super::settings::{ProductConfig, BASE_URL_SETTING};
use super::template::{Source, Template};
use super::{Auth, CredentialApply, CredentialAuth, OAuth2, Provider};
use crate::error::FieldError;

/// A problem with one field of an entry: the crate's one [`FieldError`], its `field` the path in
/// the entry (`sync.entities.event.records`).
fn err<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError::new(path, message))
}

/// Which URL schemes a catalog source may use. Built-in entries are https only; a
/// `PROVIDERS_FILE` may point providers at local http servers (tests) — whether an http target
/// may actually be called is the SSRF-guarded HTTP client's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlPolicy {
    HttpsOnly,
    HttpOrHttps,
}

impl UrlPolicy {
    fn allows(self, scheme: &str) -> bool {
        scheme == "https" || (self == UrlPolicy::HttpOrHttps && scheme == "http")
    }

    fn expected(self) -> &'static str {
        match self {
            UrlPolicy::HttpsOnly => "an absolute https URL",
            UrlPolicy::HttpOrHttps => "an absolute http(s) URL",
        }
    }
}

/// Where a template is used, which decides the placeholders it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `api.baseUrl`, request paths and query parameters: `{config.*}` and non-secret fields (secret
    /// ones only when `apply: {url: true}` says the provider wants them there).
    Url,
    /// Update and delete paths of `write`: as `Url`, plus `{remoteId}`.
    WriteUrl,
    /// Header values and `apply` formats: `{config.*}` and any credential.
    Credential,
    /// Header and query parameter names: `{config.*}` only.
    Name,
    /// A sync entity's `request.params` values and `request.body` strings: as `Url`, plus
    /// `{page.*}`.
    EntityRequest,
    /// An action's path and `query` values: as `Url`, plus `{input.*}`.
    ActionUrl,
    /// An action's `json` and `form` values: `{config.*}`, any credential and `{input.*}`;
    /// `{item}` inside a `$each`'s `as`.
    ActionBody { in_each: bool },
}

/// The credentials and settings an entry's templates may refer to.
struct Scope<'a> {
    mode: AuthMode,
    fields: &'a [CredentialField],
    settings: &'a [ConfigSetting],
    secrets_in_url: bool,
    /// The input properties of the action being checked (`{input.*}` must name one).
    inputs: &'a [String],
}

impl Scope<'_> {
    fn check(&self, text: &str, path: &str, place: Place) -> Result<Template, FieldError> {
        let template = Template::parse(text).or_else(|reason| err(path, reason))?;
        for p in template.placeholders() {
            self.check_reference(&p.source, &p.name, &p.display(), path, place)?;
            for (source, name) in &p.alternates {
                let shown = match source {
                    Source::Input => format!("{{input.{name}}}"),
                    _ => format!("{{config.{name}}}"),
                };
                self.check_reference(source, name, &shown, path, place)?;
            }
        }
        Ok(template)
    }

    /// One value a placeholder (or one of its alternatives) refers to.
    fn check_reference(
        &self,
        source: &Source,
        name: &str,
        shown: &str,
        path: &str,
        place: Place,
    ) -> Result<(), FieldError> {
        let in_action = matches!(place, Place::ActionUrl | Place::ActionBody { .. });
        match source {
            Source::Config => {
                let declared =
                    name == BASE_URL_SETTING || self.settings.iter().any(|s| s.name == name);
                if !declared {
                    let names: Vec<&str> = self.settings.iter().map(|s| s.name.as_str()).collect();
                    return err(
                        path,
                        format!(
                            "{shown} names no declared setting: declare it under `config` (declared: {})",
                            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                        ),
                    );
                }
            }
            Source::Input => {
                if !in_action {
                    return err(
                        path,
                        format!("{shown} is only allowed in an action's request"),
                    );
                }
                if !self.inputs.iter().any(|n| n == name) {
                    return err(
                        path,
                        format!(
                            "{shown} names no property of the action's input (declared: {})",
                            if self.inputs.is_empty() {
                                "none".to_owned()
                            } else {
                                self.inputs.join(", ")
                            }
                        ),
                    );
                }
            }
            Source::Item => {
                if place != (Place::ActionBody { in_each: true }) {
                    return err(
                        path,
                        format!("{shown} is only allowed in the `as` of a `$each`"),
                    );
                }
            }
            Source::Page => {
                if place != Place::EntityRequest {
                    return err(
                        path,
                        format!("{shown} is only allowed in a sync entity's request.params and request.body"),
                    );
                }
            }
            Source::RemoteId => {
                if place != Place::WriteUrl {
                    return err(
                        path,
                        format!("{shown} is only allowed in write update/delete paths"),
                    );
                }
            }
            Source::Credential => match self.mode {
                AuthMode::OAuth2 => {
                    let allowed = matches!(place, Place::Credential | Place::ActionBody { .. });
                    if name != "accessToken" || !allowed {
                        return err(
                            path,
                            format!("{shown}: an oauth2 provider only knows {{accessToken}}, in headers and apply formats"),
                        );
                    }
                }
                AuthMode::None => {
                    return err(path, format!("{shown}: mode none has no credentials"));
                }
                AuthMode::ApiKey | AuthMode::Basic => {
                    let Some(field) = self.fields.iter().find(|f| f.name == name) else {
                        let declared: Vec<&str> =
                            self.fields.iter().map(|f| f.name.as_str()).collect();
                        return err(
                            path,
                            format!(
                                "{shown} names no credential field (declared: {})",
                                declared.join(", ")
                            ),
                        );
                    };
                    match place {
                        Place::Name => {
                            return err(path, format!("{shown}: names may only use {{config.*}}"));
                        }
                        Place::Url | Place::WriteUrl | Place::EntityRequest | Place::ActionUrl
                            if field.secret && !self.secrets_in_url =>
                        {
                            return err(
                                path,
                                format!("{shown} is a secret field and may not appear in a URL unless auth.apply is {{url: true}}"),
                            );
                        }
                        _ => {}
                    }
                }
            },
        }
        Ok(())
    }
}

/// Stand-in values used to check that a template renders to something well-formed.
fn render_sample(template: &Template) -> String {
    use super::template::Segment;
    template
        .segments
        .iter()
        .map(|s| match s {
            Segment::Literal(text) => text.clone(),
            Segment::Placeholder(_) => "sample".to_owned(),
        })
        .collect()
}

fn check_absolute_url(text: &str, path: &str, policy: UrlPolicy) -> Result<Url, FieldError> {
    if text.contains('{') {
        return err(path, "placeholders are not allowed in this URL");
    }
    let url = Url::parse(text).or_else(|e| err(path, format!("not a URL: {e}")))?;
    if !policy.allows(url.scheme()) || url.host_str().is_none_or(str::is_empty) {
        return err(path, format!("must be {}", policy.expected()));
    }
    Ok(url)
}

fn check_base_url(
    text: &str,
    path: &str,
    policy: UrlPolicy,
    scope: &Scope<'_>,
) -> Result<(), FieldError> {
    let template = scope.check(text, path, Place::Url)?;
    if template.starts_with_placeholder() {
        // A whole base URL from config (custom_api, per-customer hosts): checked when used.
        let first_is_config = matches!(
            template.placeholders().next(),
            Some(p) if p.source == Source::Config
        );
        if !first_is_config {
            return err(path, "may only start with a {config.*} placeholder");
        }
        return Ok(());
    }
    let url =
        Url::parse(&render_sample(&template)).or_else(|e| err(path, format!("not a URL: {e}")))?;
    if !policy.allows(url.scheme()) || url.host_str().is_none_or(str::is_empty) {
        return err(path, format!("must be {}", policy.expected()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return err(path, "must not carry a query or fragment");
    }
    Ok(())
}

fn check_request_path(
    text: &str,
    path: &str,
    place: Place,
    scope: &Scope<'_>,
) -> Result<Template, FieldError> {
    let template = scope.check(text, path, place)?;
    if !text.starts_with('/') {
        return err(path, "must start with `/`");
    }
    // The path is appended to the base URL; it must make a URL.
    let sample = format!("https://example.com{}", render_sample(&template));
    Url::parse(&sample).or_else(|e| err(path, format!("does not make a valid URL: {e}")))?;
    Ok(template)
}

fn non_empty(value: &str, path: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return err(path, "must not be empty");
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_header_name(name: &str, path: &str) -> Result<(), FieldError> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map(|_| ())
        .or_else(|_| err(path, format!("`{name}` is not a valid header name")))
}

fn check_header_value(template: &Template, path: &str) -> Result<(), FieldError> {
    http::HeaderValue::from_str(&render_sample(template))
        .map(|_| ())
        .or_else(|_| err(path, "is not a valid header value"))
}

/// Fields a mode does not use must be absent, so a typo'd mode is not silently accepted.
fn reject_unused(raw: &RawAuth, names: &[&str]) -> Result<(), FieldError> {
    let present = [
        ("authorizeUrl", raw.authorize_url.is_some()),
        ("tokenUrl", raw.token_url.is_some()),
        ("revokeUrl", raw.revoke_url.is_some()),
        ("refreshUrl", raw.refresh_url.is_some()),
        ("issuer", raw.issuer.is_some()),
        ("scopes", raw.scopes.is_some()),
        ("scopeSeparator", raw.scope_separator.is_some()),
        ("pkce", raw.pkce.is_some()),
        ("tokenAuth", raw.token_auth.is_some()),
        ("authorizeParams", raw.authorize_params.is_some()),
        ("fields", raw.fields.is_some()),
        ("apply", raw.apply.is_some()),
    ];
    for (name, is_present) in present {
        if is_present && names.contains(&name) {
            return err(
                format!("auth.{name}"),
                format!("not used by mode {}", raw.mode.as_str()),
            );
        }
    }
    Ok(())
}

fn missing(path: &str) -> FieldError {
    FieldError::new(path, "missing field")
}

const OAUTH_ONLY: [&str; 10] = [
    "authorizeUrl",
    "tokenUrl",
    "revokeUrl",
    "refreshUrl",
    "issuer",
    "scopes",
    "scopeSeparator",
    "pkce",
    "tokenAuth",
    "authorizeParams",
];

/// Query parameters the connect flow sets itself.
const RESERVED_AUTHORIZE_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

fn check_fields(fields: &[CredentialField]) -> Result<(), FieldError> {
    if fields.is_empty() {
        return err("auth.fields", "must declare at least one credential field");
    }
    let mut seen = BTreeSet::new();
    for (i, field) in fields.iter().enumerate() {
        let path = format!("auth.fields[{i}].name");
        if !is_identifier(&field.name) {
            return err(
                path,
                format!(
                    "`{}` is not a valid field name (letters, digits, `_`)",
                    field.name
                ),
            );
        }
        if field.name == super::template::REMOTE_ID {
            return err(path, "`remoteId` is reserved");
        }
        if !seen.insert(field.name.as_str()) {
            return err(path, format!("`{}` is declared twice", field.name));
        }
    }
    if !fields.iter().any(|f| f.secret) {
        return err(
            "auth.fields",
            "at least one credential field must be secret",
        );
    }
    Ok(())
}

fn check_apply(raw: &RawApply, scope: &Scope<'_>) -> Result<CredentialApply, FieldError> {
    let kinds = [
        raw.header.is_some(),
        raw.query.is_some(),
        raw.basic.is_some(),
        raw.url.is_some(),
    ]
    .into_iter()
    .filter(|k| *k)
    .count();
    if kinds != 1 {
        return err(
            "auth.apply",
            "must have exactly one of `header`, `query`, `basic`, `url`",
        );
    }
    if let Some(basic) = &raw.basic {
        if raw.format.is_some() {
            return err("auth.apply.format", "not used with `basic`");
        }
        scope.check(
            &basic.username,
            "auth.apply.basic.username",
            Place::Credential,
        )?;
        scope.check(
            &basic.password,
            "auth.apply.basic.password",
            Place::Credential,
        )?;
        return Ok(CredentialApply::Basic {
            username: basic.username.clone(),
            password: basic.password.clone(),
        });
    }
    if let Some(url) = raw.url {
        if !url {
            return err("auth.apply.url", "must be true when given");
        }
        if raw.format.is_some() {
            return err("auth.apply.format", "not used with `url`");
        }
        return Ok(CredentialApply::Url);
    }
    let format = raw
        .format
        .as_deref()
        .ok_or_else(|| missing("auth.apply.format"))?;
    let format_template = scope.check(format, "auth.apply.format", Place::Credential)?;
    if let Some(header) = &raw.header {
        let name = scope.check(header, "auth.apply.header", Place::Name)?;
        if name.placeholders().next().is_none() {
            check_header_name(header, "auth.apply.header")?;
        }
        check_header_value(&format_template, "auth.apply.format")?;
        return Ok(CredentialApply::Header {
            name: header.clone(),
            format: format.to_owned(),
        });
    }
    let query = raw.query.as_deref().unwrap_or_default();
    non_empty(query, "auth.apply.query")?;
    scope.check(query, "auth.apply.query", Place::Name)?;
    Ok(CredentialApply::Query {
        name: query.to_owned(),
        format: format.to_owned(),
    })
}

fn check_oauth2(
    raw: &RawAuth,
    settings: &[ConfigSetting],
    policy: UrlPolicy,
) -> Result<OAuth2, FieldError> {
    reject_unused(raw, &["fields"])?;
    let authorize_url = check_absolute_url(
        raw.authorize_url
            .as_deref()
            .ok_or_else(|| missing("auth.authorizeUrl"))?,
        "auth.authorizeUrl",
        policy,
    )?;
    let token_url = check_absolute_url(
        raw.token_url
            .as_deref()
            .ok_or_else(|| missing("auth.tokenUrl"))?,
        "auth.tokenUrl",
        policy,
    )?;
    let revoke_url = raw
        .revoke_url
        .as_deref()
        .map(|u| check_absolute_url(u, "auth.revokeUrl", policy))
        .transpose()?;
    let refresh_url = raw
        .refresh_url
        .as_deref()
        .map(|u| check_absolute_url(u, "auth.refreshUrl", policy))
        .transpose()?;
    if let Some(issuer) = &raw.issuer {
        check_absolute_url(issuer, "auth.issuer", policy)?;
    }
    let scopes = raw.scopes.clone().ok_or_else(|| missing("auth.scopes"))?;
    let scope_separator = raw
        .scope_separator
        .clone()
        .unwrap_or_else(|| " ".to_owned());
    if scope_separator.is_empty() {
        return err("auth.scopeSeparator", "must not be empty");
    }
    for (i, scope) in scopes.iter().enumerate() {
        let path = format!("auth.scopes[{i}]");
        non_empty(scope, &path)?;
        if scope.contains(&scope_separator) || scope.contains(char::is_whitespace) {
            return err(path, "must not contain the scope separator or whitespace");
        }
    }
    let mut authorize_params = BTreeMap::new();
    for (key, value) in raw.authorize_params.iter().flatten() {
        let path = format!("auth.authorizeParams.{key}");
        non_empty(key, &path)?;
        if RESERVED_AUTHORIZE_PARAMS.contains(&key.as_str()) {
            return err(path, "is set by the connect flow itself");
        }
        authorize_params.insert(key.clone(), value.0.clone());
    }
    let scope = Scope {
        mode: AuthMode::OAuth2,
        fields: &[],
        settings,
        secrets_in_url: false,
        inputs: &[],
    };
    let apply = match &raw.apply {
        Some(apply) => {
            let apply = check_apply(apply, &scope)?;
            if matches!(apply, CredentialApply::Url) {
                return err("auth.apply.url", "not supported for oauth2");
            }
            Some(apply)
        }
        None => None,
    };
    Ok(OAuth2 {
        authorize_url,
        token_url,
        revoke_url,
        refresh_url,
        issuer: raw.issuer.clone(),
        scopes,
        scope_separator,
        pkce: raw.pkce.unwrap_or(false),
        token_auth: raw.token_auth.unwrap_or_default(),
        authorize_params,
        apply,
    })
}

fn check_auth(
    raw: &RawAuth,
    settings: &[ConfigSetting],
    policy: UrlPolicy,
) -> Result<Auth, FieldError> {
    match raw.mode {
        AuthMode::OAuth2 => check_oauth2(raw, settings, policy).map(|o| Auth::OAuth2(Box::new(o))),
        AuthMode::ApiKey | AuthMode::Basic => {
            reject_unused(raw, &OAUTH_ONLY)?;
            let fields = raw.fields.clone().ok_or_else(|| missing("auth.fields"))?;
            let raw_apply = raw.apply.as_ref().ok_or_else(|| missing("auth.apply"))?;
            check_fields(&fields)?;
            let scope = Scope {
                mode: raw.mode,
                fields: &fields,
                settings,
                secrets_in_url: raw_apply.url == Some(true),
                inputs: &[],
            };
            let apply = check_apply(raw_apply, &scope)?;
            if raw.mode == AuthMode::Basic && !matches!(apply, CredentialApply::Basic { .. }) {
                return err("auth.apply", "mode basic applies credentials with `basic`");
            }
            let auth = CredentialAuth { fields, apply };
            Ok(if raw.mode == AuthMode::Basic {
                Auth::Basic(auth)
            } else {
                Auth::ApiKey(auth)
            })
        }
        AuthMode::None => {
            let mut all = OAUTH_ONLY.to_vec();
            all.extend(["fields", "apply"]);
            reject_unused(raw, &all)?;
            Ok(Auth::None)
        }
    }
}

fn check_api(api: &Api, policy: UrlPolicy, scope: &Scope<'_>) -> Result<(), FieldError> {
    check_base_url(&api.base_url, "api.baseUrl", policy, scope)?;
    for (name, value) in &api.headers {
        let path = format!("api.headers.{name}");
        check_header_name(name, &path)?;
        let template = scope.check(value, &path, Place::Credential)?;
        check_header_value(&template, &path)?;
    }
    for (name, value) in &api.params {
        let path = format!("api.params.{name}");
        non_empty(name, &path)?;
        scope.check(value, &path, Place::Url)?;
    }
    if let Some(limit) = api.rate_limit {
        if limit.requests == 0 {
            return err("api.rateLimit.requests", "must be at least 1");
        }
        if limit.per_seconds == 0 {
            return err("api.rateLimit.perSeconds", "must be at least 1");
        }
    }
    if let Some(check) = &api.health_check {
        check_request_path(&check.path, "api.healthCheck.path", Place::Url, scope)?;
        let expect_path = if check.expect.body.is_some() {
            "api.healthCheck.expect.status"
        } else {
            "api.healthCheck.expect"
        };
        if !(100..=599).contains(&check.expect.status) {
            return err(expect_path, "must be an HTTP status (100-599)");
        }
        if let Some(body) = &check.expect.body {
            non_empty(&body.path, "api.healthCheck.expect.path")?;
        }
    }
    if scope.secrets_in_url {
        let secret_in = |text: &str| {
            Template::parse(text).is_ok_and(|t| {
                t.placeholders().any(|p| {
                    p.source == Source::Credential
                        && scope.fields.iter().any(|f| f.secret && f.name == p.name)
                })
            })
        };
        let in_health = api
            .health_check
            .as_ref()
            .is_some_and(|c| secret_in(&c.path));
        if !secret_in(&api.base_url) && !in_health {
            return err(
                "auth.apply.url",
                "no secret credential placeholder appears in api.baseUrl or api.healthCheck.path",
            );
        }
    }
    Ok(())
}

fn check_webhook(webhook: &WebhookDefaults) -> Result<(), FieldError> {
    if let Some(header) = &webhook.signature_header {
        if webhook.scheme != WebhookScheme::HmacSha256 {
            return err("webhook.signatureHeader", "only used by scheme hmac_sha256");
        }
        check_header_name(header, "webhook.signatureHeader")?;
    }
    Ok(())
}

fn check_write_request(
    request: &WriteRequest,
    path: &str,
    needs_remote_id: bool,
    scope: &Scope<'_>,
) -> Result<(), FieldError> {
    let place = if needs_remote_id {
        Place::WriteUrl
    } else {
        Place::Url
    };
    let template = check_request_path(&request.path, &format!("{path}.path"), place, scope)?;
    let has_remote_id = template
        .placeholders()
        .any(|p| p.source == Source::RemoteId);
    if needs_remote_id && !has_remote_id {
        return err(format!("{path}.path"), "must contain {remoteId}");
    }
    Ok(())
}

/// Checks one entity definition; `path` is where it sits (`sync.entities.event`).
fn check_entity(entity: &EntityDef, path: &str, scope: &Scope<'_>) -> Result<(), FieldError> {
    check_request_path(
        &entity.request.path,
        &format!("{path}.request.path"),
        Place::Url,
        scope,
    )?;
    let mut templates = Vec::new();
    for (key, value) in &entity.request.params {
        let p = format!("{path}.request.params.{key}");
        non_empty(key, &p)?;
        templates.push((scope.check(value, &p, Place::EntityRequest)?, p));
    }
    let has_body = entity.request.body.is_some() || entity.request.graphql.is_some();
    if has_body
        && matches!(
            entity.request.method,
            http::Method::GET | http::Method::HEAD
        )
    {
        return err(
            format!("{path}.request.method"),
            format!("a {} request has no body: use POST", entity.request.method),
        );
    }
    if let Some(body) = &entity.request.body {
        let p = format!("{path}.request.body");
        if entity.request.graphql.is_some() {
            return err(p, "a request has either body or graphql, not both");
        }
        if !body.is_object() && !body.is_array() {
            return err(p, "must be a JSON object or array");
        }
        body_templates(body, &p, scope, &mut templates)?;
    }
    if let Some(graphql) = &entity.request.graphql {
        let p = format!("{path}.request.graphql");
        non_empty(graphql.query.trim(), &format!("{p}.query"))?;
        for (name, value) in &graphql.variables {
            body_templates(
                value,
                &format!("{p}.variables.{name}"),
                scope,
                &mut templates,
            )?;
        }
    }
    check_page_placeholders(entity, path, &templates)?;
    non_empty(&entity.id, &format!("{path}.id"))?;
    if let Some(updated) = &entity.updated_at {
        non_empty(updated, &format!("{path}.updatedAt"))?;
    }
    if let Some(deleted) = &entity.deleted {
        non_empty(&deleted.path, &format!("{path}.deleted.path"))?;
    }
    if let Some(pagination) = &entity.pagination {
        let p = format!("{path}.pagination");
        match pagination {
            Pagination::Cursor { param, next } => {
                if let Some(param) = param {
                    non_empty(param, &format!("{p}.param"))?;
                }
                non_empty(next, &format!("{p}.next"))?;
            }
            Pagination::Offset {
                param,
                limit_param,
                page_size,
            } => {
                if let Some(param) = param {
                    non_empty(param, &format!("{p}.param"))?;
                }
                if let Some(limit_param) = limit_param {
                    non_empty(limit_param, &format!("{p}.limitParam"))?;
                }
                if *page_size == 0 {
                    return err(format!("{p}.pageSize"), "must be at least 1");
                }
            }
            Pagination::Page {
                param,
                size_param,
                page_size,
            } => {
                if let Some(param) = param {
                    non_empty(param, &format!("{p}.param"))?;
                }
                if let Some(size_param) = size_param {
                    non_empty(size_param, &format!("{p}.sizeParam"))?;
                }
                if *page_size == 0 {
                    return err(format!("{p}.pageSize"), "must be at least 1");
                }
            }
            Pagination::LinkHeader {} => {}
            Pagination::StartingAfter { param, has_more } => {
                non_empty(param, &format!("{p}.param"))?;
                non_empty(has_more, &format!("{p}.hasMore"))?;
            }
        }
    }
    if let Some(incremental) = &entity.incremental {
        let p = format!("{path}.incremental");
        match incremental {
            Incremental::SyncToken {
                param,
                next,
                expired_status,
            } => {
                non_empty(param, &format!("{p}.param"))?;
                non_empty(next, &format!("{p}.next"))?;
                if expired_status.is_some_and(|s| !(400..=599).contains(&s)) {
                    return err(
                        format!("{p}.expiredStatus"),
                        "must be an HTTP error status (400-599)",
                    );
                }
            }
            Incremental::UpdatedSince { param, .. } => non_empty(param, &format!("{p}.param"))?,
            Incremental::None {} => {}
        }
    }
    if let Some(mappings) = &entity.default_mappings {
        let p = format!("{path}.defaultMappings");
        if !is_identifier(&mappings.local_entity) {
            return err(
                format!("{p}.localEntity"),
                "must be an entity name (letters, digits, `_`)",
            );
        }
        if mappings.fields.is_empty() {
            return err(format!("{p}.fields"), "must list at least one mapping");
        }
        for (i, field) in mappings.fields.iter().enumerate() {
            let at = format!("{p}.fields[{i}]");
            non_empty(&field.local_field, &format!("{at}.localField"))?;
            non_empty(&field.remote_field, &format!("{at}.remoteField"))?;
            if let Err(problems) = field.transformation(&at) {
                if let Some(first) = problems.into_iter().next() {
                    return err(first.field, first.message);
                }
            }
        }
    }
    if let Some(write) = &entity.write {
        let p = format!("{path}.write");
        if write.create.is_none() && write.update.is_none() && write.delete.is_none() {
            return err(p, "must define at least one of create, update, delete");
        }
        if let Some(create) = &write.create {
            check_write_request(create, &format!("{p}.create"), false, scope)?;
        }
        if let Some(update) = &write.update {
            check_write_request(update, &format!("{p}.update"), true, scope)?;
        }
        if let Some(delete) = &write.delete {
            check_write_request(delete, &format!("{p}.delete"), true, scope)?;
        }
        if let Some(id) = &write.id {
            non_empty(id, &format!("{p}.id"))?;
        }
    }
    Ok(())
}

/// Checks every string of a body template, collecting the templates with where they are.
fn body_templates(
    body: &Value,
    path: &str,
    scope: &Scope<'_>,
    templates: &mut Vec<(Template, String)>,
) -> Result<(), FieldError> {
    match body {
        Value::String(text) => templates.push((
            scope.check(text, path, Place::EntityRequest)?,
            path.to_owned(),
        )),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                body_templates(item, &format!("{path}[{i}]"), scope, templates)?;
            }
        }
        Value::Object(members) => {
            for (key, value) in members {
                body_templates(value, &format!("{path}.{key}"), scope, templates)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `{page.*}` placeholders (in params, body and GraphQL variables) name values the entity's pagination has (`cursor` for cursor;
/// `offset`, `start`, `size` for offset; `number`, `size` for page), `{page.cursor}` is a whole
/// value (it has none on the first page, where the parameter is left out and a body value is
/// `null`), and a pagination without `param` finds its position in the request.
fn check_page_placeholders(
    entity: &EntityDef,
    path: &str,
    templates: &[(Template, String)],
) -> Result<(), FieldError> {
    let (kind, names, position): (&str, &[&str], &[&str]) = match &entity.pagination {
        Some(Pagination::Cursor { .. }) => ("cursor", &["cursor"], &["cursor"]),
        Some(Pagination::Offset { .. }) => {
            ("offset", &["offset", "start", "size"], &["offset", "start"])
        }
        Some(Pagination::Page { .. }) => ("page", &["number", "size"], &["number"]),
        Some(Pagination::LinkHeader {}) => ("link_header", &[], &[]),
        Some(Pagination::StartingAfter { .. }) => ("starting_after", &[], &[]),
        None => ("no", &[], &[]),
    };
    let mut carries_position = false;
    for (template, at) in templates {
        for p in template.placeholders().filter(|p| p.source == Source::Page) {
            let shown = p.display();
            if !names.contains(&p.name.as_str()) {
                return err(
                    at.as_str(),
                    format!("{shown} has no value with {kind} pagination"),
                );
            }
            if p.name == "cursor" && template.segments.len() != 1 {
                return err(
                    at.as_str(),
                    format!("{shown} must be the whole value (the first page has no cursor)"),
                );
            }
            carries_position |= position.contains(&p.name.as_str());
        }
    }
    let param_absent = match &entity.pagination {
        Some(Pagination::Cursor { param, .. })
        | Some(Pagination::Offset { param, .. })
        | Some(Pagination::Page { param, .. }) => param.is_none(),
        _ => false,
    };
    if param_absent && !carries_position {
        let wanted: Vec<String> = position.iter().map(|n| format!("{{page.{n}}}")).collect();
        return err(
            format!("{path}.pagination.param"),
            format!(
                "is required unless request.params or request.body carries {}",
                wanted.join(" or ")
            ),
        );
    }
    Ok(())
}

/// Checks one action: its name, a description, an input schema that is an object schema (its
/// validity as JSON Schema is checked where actions run: `hub_shared::actions`), every
/// placeholder of its request resolvable (`{input.*}` naming a declared input property), and its
/// output paths.
fn check_action(
    action: &ActionDef,
    path: &str,
    name: &str,
    scope: &Scope<'_>,
) -> Result<(), FieldError> {
    check_entity_name(name, path)?;
    non_empty(action.description.trim(), &format!("{path}.description"))?;
    let input_path = format!("{path}.input");
    let Some(schema) = action.input.as_object() else {
        return err(input_path, "must be a JSON Schema object");
    };
    if schema.get("type") != Some(&Value::String("object".into())) {
        return err(
            format!("{input_path}.type"),
            "must be `object`: an action's input is an object",
        );
    }
    let inputs: Vec<String> = match schema.get("properties") {
        None => Vec::new(),
        Some(Value::Object(properties)) => properties.keys().cloned().collect(),
        Some(_) => return err(format!("{input_path}.properties"), "must be an object"),
    };
    let scope = Scope {
        inputs: &inputs,
        ..*scope
    };
    let request = &action.request;
    let request_path = format!("{path}.request");
    check_request_path(
        &request.path,
        &format!("{request_path}.path"),
        Place::ActionUrl,
        &scope,
    )?;
    if request.json.is_some() && request.form.is_some() {
        return err(request_path, "has either json or form, not both");
    }
    let has_body = request.json.is_some() || request.form.is_some();
    if has_body && matches!(request.method, http::Method::GET | http::Method::HEAD) {
        return err(
            format!("{request_path}.method"),
            format!("a {} request has no body: use query", request.method),
        );
    }
    if let Some(query) = &request.query {
        for (key, value) in query {
            let at = format!("{request_path}.query.{key}");
            non_empty(key, &at)?;
            check_action_value(value, &at, Place::ActionUrl, &scope)?;
        }
    }
    if let Some(json) = &request.json {
        if !json.is_object() && !json.is_array() {
            return err(
                format!("{request_path}.json"),
                "must be a JSON object or array",
            );
        }
        check_action_value(
            json,
            &format!("{request_path}.json"),
            Place::ActionBody { in_each: false },
            &scope,
        )?;
    }
    if let Some(form) = &request.form {
        for (key, value) in form {
            let at = format!("{request_path}.form.{key}");
            non_empty(key, &at)?;
            check_action_value(value, &at, Place::ActionBody { in_each: false }, &scope)?;
        }
    }
    for (field, output) in &action.output {
        non_empty(field, &format!("{path}.output"))?;
        if output.starts_with('$') && output != "$status" {
            return err(
                format!("{path}.output.{field}"),
                "a path, \"\" for the whole body, or $status",
            );
        }
    }
    Ok(())
}

/// Checks the templates of an action value: strings, arrays, objects, and `{"$each": "{input.x}",
/// "as": …}` (whose `as` may use `{item}`).
fn check_action_value(
    value: &Value,
    path: &str,
    place: Place,
    scope: &Scope<'_>,
) -> Result<(), FieldError> {
    match value {
        Value::String(text) => {
            scope.check(text, path, place)?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_action_value(item, &format!("{path}[{i}]"), place, scope)?;
            }
        }
        Value::Object(members) if members.contains_key("$each") => {
            let source = members.get("$each").and_then(Value::as_str).unwrap_or("");
            let template = scope.check(source, &format!("{path}.$each"), place)?;
            let lone_input = matches!(
                template.segments.as_slice(),
                [super::template::Segment::Placeholder(p)] if p.source == Source::Input
            );
            if !lone_input {
                return err(
                    format!("{path}.$each"),
                    "must be one {input.*} placeholder (a list)",
                );
            }
            if members.len() != 2 || !members.contains_key("as") {
                return err(path, "a `$each` has exactly `$each` and `as`");
            }
            let inner = match place {
                Place::ActionBody { .. } => Place::ActionBody { in_each: true },
                other => other,
            };
            check_action_value(&members["as"], &format!("{path}.as"), inner, scope)?;
        }
        Value::Object(members) => {
            for (key, member) in members {
                if key.starts_with('$') {
                    return err(format!("{path}.{key}"), "unknown directive (only `$each`)");
                }
                check_action_value(member, &format!("{path}.{key}"), place, scope)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_sync(sync: &SyncDef, scope: &Scope<'_>) -> Result<(), FieldError> {
    for (name, entity) in &sync.entities {
        let path = format!("sync.entities.{name}");
        check_entity_name(name, &path)?;
        check_entity(entity, &path, scope)?;
    }
    Ok(())
}

/// Validates a parsed entry and builds the [`Provider`].
pub(crate) fn validate_provider(
    raw: RawProvider,
    product_config: ProductConfig,
    policy: UrlPolicy,
) -> Result<Provider, FieldError> {
    non_empty(&raw.name, "name")?;
    check_settings(&raw.config, product_config)?;
    let auth = check_auth(&raw.auth, &raw.config, policy)?;
    let fields: &[CredentialField] = match &auth {
        Auth::ApiKey(c) | Auth::Basic(c) => &c.fields,
        Auth::OAuth2(_) | Auth::None => &[],
    };
    let scope = Scope {
        mode: raw.auth.mode,
        fields,
        settings: &raw.config,
        secrets_in_url: matches!(
            &auth,
            Auth::ApiKey(CredentialAuth {
                apply: CredentialApply::Url,
                ..
            })
        ),
        inputs: &[],
    };
    match &raw.api {
        Some(api) => check_api(api, policy, &scope)?,
        None if raw.auth.mode != AuthMode::None => return Err(missing("api")),
        None => {}
    }
    if let Some(webhook) = &raw.webhook {
        check_webhook(webhook)?;
    }
    if let Some(sync) = &raw.sync {
        if raw.api.is_none() {
            return err("sync", "needs api.baseUrl to read from");
        }
        check_sync(sync, &scope)?;
    }
    if !raw.actions.is_empty() && raw.api.is_none() {
        return err("actions", "needs api.baseUrl to send to");
    }
    for (name, action) in &raw.actions {
        check_action(action, &format!("actions.{name}"), name, &scope)?;
    }
    Ok(Provider {
        name: raw.name,
        category: raw.category,
        auth,
        config: raw.config,
        product_config,
        api: raw.api,
        webhook: raw.webhook,
        sync: raw.sync,
        actions: raw.actions,
    })
}

/// Validates entity definitions supplied outside the catalog (a `custom_api` integration's
/// `config`), against the provider's credential fields, with http allowed (tenant URLs are
/// guarded by the HTTP client).
pub(crate) fn validate_external_entities(
    provider: &Provider,
    entities: &BTreeMap<String, EntityDef>,
) -> Result<(), FieldError> {
    let fields: &[CredentialField] = provider.credential_fields();
    let scope = Scope {
        mode: provider.auth_mode(),
        fields,
        settings: &provider.config,
        secrets_in_url: matches!(
            &provider.auth,
            Auth::ApiKey(CredentialAuth {
                apply: CredentialApply::Url,
                ..
            })
        ),
        inputs: &[],
    };
    for (name, entity) in entities {
        check_entity_name(name, name)?;
        check_entity(entity, name, &scope)?;
    }
    Ok(())
}

/// The declarations of `config`: identifiers, each once, patterns that parse, defaults that
/// match their pattern, and no `default` on a required setting (it could never apply).
fn check_settings(
    settings: &[ConfigSetting],
    product_config: ProductConfig,
) -> Result<(), FieldError> {
    let mut seen = BTreeSet::new();
    for (i, setting) in settings.iter().enumerate() {
        let path = format!("config[{i}]");
        if !is_identifier(&setting.name) {
            return err(
                format!("{path}.name"),
                format!(
                    "`{}` is not a valid setting name (letters, digits, `_`)",
                    setting.name
                ),
            );
        }
        if !seen.insert(setting.name.as_str()) {
            return err(
                format!("{path}.name"),
                format!("`{}` is declared twice", setting.name),
            );
        }
        if product_config
            .structured_keys()
            .contains(&setting.name.as_str())
        {
            return err(
                format!("{path}.name"),
                format!(
                    "`{}` is a product-defined setting of this provider",
                    setting.name
                ),
            );
        }
        if let Some(description) = &setting.description {
            non_empty(description, &format!("{path}.description"))?;
        }
        if setting.required && setting.default.is_some() {
            return err(
                format!("{path}.default"),
                "a required setting never uses its default: drop one of them",
            );
        }
        if let Some(pattern) = &setting.pattern {
            let compiled =
                Pattern::parse(pattern).or_else(|reason| err(format!("{path}.pattern"), reason))?;
            if let Some(default) = &setting.default {
                if !compiled.is_match(default) {
                    return err(
                        format!("{path}.default"),
                        format!("`{default}` does not match the setting's pattern"),
                    );
                }
            }
        }
    }
    Ok(())
}

fn check_entity_name(name: &str, path: &str) -> Result<(), FieldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return err(path, "entity names are lower case letters, digits and `_`");
    }
    Ok(())
}
