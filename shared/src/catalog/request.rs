//! Turning catalog templates into concrete provider requests: base URL (or the integration's
//! `config.baseUrl`), path and parameters with placeholders rendered, `api.headers`, and the
//! credentials applied as the catalog says.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value};
use url::Url;

use super::json_template;
use super::model::{ActionDef, EntityRequest, HealthExpect};
use super::template::{percent_encode, MissingValue, Segment, Source, Template, Values};
use super::{Auth, CatalogError, CredentialApply, Provider};

/// A provider request ready to be sent through the SSRF-guarded HTTP client. Its `Debug` shows
/// only the method, the origin and the header names: URL and headers may carry credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    pub method: http::Method,
    pub url: Url,
    /// Includes the credential header, if any: redact before logging.
    pub headers: Vec<(String, String)>,
}

/// An action's request: the provider request and its body with its content type. `Debug` shows
/// no body: it may carry credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedAction {
    pub request: ProviderRequest,
    pub body: Option<(&'static str, Vec<u8>)>,
}

impl std::fmt::Debug for PreparedAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedAction")
            .field("request", &self.request)
            .field("body_bytes", &self.body.as_ref().map(|(_, b)| b.len()))
            .finish()
    }
}

/// The test-connection request and the answer that means success. `Debug` is redacted like
/// [`ProviderRequest`]'s.
#[derive(Clone, PartialEq)]
pub struct HealthCheckRequest {
    pub method: http::Method,
    pub url: Url,
    /// Includes the credential header, if any: redact before logging.
    pub headers: Vec<(String, String)>,
    pub expect: HealthExpect,
}

/// How a health-check answer compares with [`HealthExpect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectOutcome {
    Met,
    /// The status is not the expected one.
    WrongStatus,
    /// The status is right but the body condition fails; says why, without echoing the body.
    UnexpectedBody(String),
}

impl HealthExpect {
    /// Compares an answer (status and the body as read, possibly truncated) with the expectation.
    pub fn evaluate(&self, status: u16, body: &[u8]) -> ExpectOutcome {
        if status != self.status {
            return ExpectOutcome::WrongStatus;
        }
        let Some(condition) = &self.body else {
            return ExpectOutcome::Met;
        };
        let Ok(document) = serde_json::from_slice::<Value>(body) else {
            return ExpectOutcome::UnexpectedBody("the body is not JSON".to_owned());
        };
        match value_at_path(&document, &condition.path) {
            Some(found) if json_equal(found, &condition.equals) => ExpectOutcome::Met,
            Some(found) => ExpectOutcome::UnexpectedBody(format!(
                "`{}` is {}, expected {}",
                condition.path,
                short(found),
                short(&condition.equals)
            )),
            None => ExpectOutcome::UnexpectedBody(format!(
                "`{}` is absent, expected {}",
                condition.path,
                short(&condition.equals)
            )),
        }
    }
}

/// A dot path into JSON; numeric segments index arrays (`entries.0.status`).
fn value_at_path<'a>(document: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(document, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// JSON equality where `200` and `200.0` are the same number.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value for a message: provider text is cut short.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// Writes what can be logged of a request: no path, query or header value.
fn redacted_debug(
    f: &mut std::fmt::Formatter<'_>,
    type_name: &str,
    method: &http::Method,
    url: &Url,
    headers: &[(String, String)],
) -> std::fmt::Result {
    let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
    f.debug_struct(type_name)
        .field("method", method)
        .field("origin", &url.origin().ascii_serialization())
        .field("headers", &names)
        .finish_non_exhaustive()
}

impl std::fmt::Debug for ProviderRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        redacted_debug(f, "ProviderRequest", &self.method, &self.url, &self.headers)
    }
}

impl std::fmt::Debug for HealthCheckRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        redacted_debug(
            f,
            "HealthCheckRequest",
            &self.method,
            &self.url,
            &self.headers,
        )
    }
}

impl From<MissingValue> for CatalogError {
    fn from(m: MissingValue) -> Self {
        CatalogError::MissingValue {
            placeholder: m.placeholder,
            reason: m.reason.to_owned(),
        }
    }
}

fn parse(text: &str, what: &str) -> Result<Template, CatalogError> {
    Template::parse(text)
        .map_err(|reason| CatalogError::InvalidRequest(format!("{what}: {reason}")))
}

/// Renders a template whose values go into a header or through `Url`'s own encoding.
fn render_raw(text: &str, what: &str, values: &Values<'_>) -> Result<String, CatalogError> {
    Ok(parse(text, what)?.render(values, |_, _, v| v.to_owned())?)
}

/// Renders a URL path (and query) template: every value is percent-encoded.
fn render_path(text: &str, what: &str, values: &Values<'_>) -> Result<String, CatalogError> {
    Ok(parse(text, what)?.render(values, |_, _, v| percent_encode(v))?)
}

/// The page value of a template that is exactly one `{page.*}` placeholder.
fn lone_page_value(template: &Template, values: &Values<'_>) -> Option<Value> {
    match template.segments.as_slice() {
        [Segment::Placeholder(p)] if p.source == Source::Page => Some(values.page_value(&p.name)),
        _ => None,
    }
}

/// A JSON template that cannot be left out as a whole (no optional input in sync bodies).
fn render_json(template: &Value, values: &Values<'_>) -> Result<Value, CatalogError> {
    Ok(json_template::render(template, values)?.unwrap_or_else(|| Value::Object(Map::new())))
}

fn base_url(
    provider_base: &str,
    config: &Map<String, Value>,
    values: &Values<'_>,
) -> Result<String, CatalogError> {
    let base = match config.get("baseUrl") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::Null) | None => {
            // A leading placeholder is a whole URL (`{config.baseUrl}`); others are URL parts.
            parse(provider_base, "api.baseUrl")?.render(values, |index, _, v| {
                if index == 0 {
                    v.to_owned()
                } else {
                    percent_encode(v)
                }
            })?
        }
        Some(Value::String(_)) => {
            return Err(CatalogError::InvalidRequest(
                "config.baseUrl is empty".to_owned(),
            ))
        }
        Some(_) => {
            return Err(CatalogError::InvalidRequest(
                "config.baseUrl must be a string".to_owned(),
            ))
        }
    };
    Ok(base.trim_end_matches('/').to_owned())
}

impl Provider {
    /// Builds a request to `path` (a template, e.g. an entity's `request.path`) with `params`
    /// (templates) as query parameters, `api.headers`, and the credentials applied: a header,
    /// a query parameter, HTTP basic, or for oauth2 `Authorization: Bearer {accessToken}`.
    /// The base is `config.baseUrl` when the integration has one, else `api.baseUrl`.
    pub fn prepare_request(
        &self,
        method: http::Method,
        path: &str,
        params: &BTreeMap<String, String>,
        values: &Values<'_>,
    ) -> Result<ProviderRequest, CatalogError> {
        let api = self.api.as_ref().ok_or(CatalogError::NoApi)?;
        // Declared defaults stand in for absent settings.
        let config = self.config_with_defaults(values.config);
        let values = &Values {
            config: &config,
            ..*values
        };
        let base = base_url(&api.base_url, values.config, values)?;
        let path = render_path(path, "path", values)?;
        let mut url = Url::parse(&format!("{base}{path}")).map_err(|e| {
            CatalogError::InvalidRequest(format!("the request URL is not valid: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(CatalogError::InvalidRequest(
                "the base URL must be an absolute http(s) URL".to_owned(),
            ));
        }
        for (name, value) in &api.params {
            let value = render_raw(value, "api.params", values)?;
            url.query_pairs_mut().append_pair(name, &value);
        }
        for (name, value) in params {
            let template = parse(value, "params")?;
            if lone_page_value(&template, values) == Some(Value::Null) {
                // `{page.cursor}` on the first page: no cursor, no parameter.
                continue;
            }
            let value = template.render(values, |_, _, v| v.to_owned())?;
            url.query_pairs_mut().append_pair(name, &value);
        }
        let mut headers = Vec::with_capacity(api.headers.len() + 1);
        for (name, value) in &api.headers {
            headers.push((name.clone(), render_raw(value, "api.headers", values)?));
        }
        for (name, value) in self.config_headers(values.config) {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self.apply_credentials(&mut url, &mut headers, values)?;
        for (name, value) in &headers {
            let valid_name = http::HeaderName::from_bytes(name.as_bytes()).is_ok();
            if !valid_name || http::HeaderValue::from_str(value).is_err() {
                // Never echo the value: it may be a credential.
                return Err(CatalogError::InvalidRequest(format!(
                    "header `{name}` is not valid after rendering"
                )));
            }
        }
        Ok(ProviderRequest {
            method,
            url,
            headers,
        })
    }

    /// The JSON body of a sync entity's request, if it has one: `request.body` rendered, or
    /// `request.graphql` as `{"query", "variables"}` with the variables rendered. Every string of
    /// a template is rendered as text, except a string that is exactly one `{page.*}`
    /// placeholder, which becomes the page value with its own JSON type (a number, the cursor,
    /// or `null`). Object keys are kept as written.
    pub fn entity_body(
        &self,
        request: &EntityRequest,
        values: &Values<'_>,
    ) -> Result<Option<Value>, CatalogError> {
        let config = self.config_with_defaults(values.config);
        let values = &Values {
            config: &config,
            ..*values
        };
        if let Some(body) = &request.body {
            return Ok(Some(render_json(body, values)?));
        }
        let Some(graphql) = &request.graphql else {
            return Ok(None);
        };
        let mut body = Map::new();
        body.insert("query".into(), Value::String(graphql.query.clone()));
        let variables = Value::Object(graphql.variables.clone());
        body.insert("variables".into(), render_json(&variables, values)?);
        Ok(Some(Value::Object(body)))
    }

    /// The request of `action` for `values` (which carry the caller's input): the path rendered,
    /// `query` added to the URL, `json` or `form` as the body, the credentials applied.
    pub fn prepare_action(
        &self,
        action: &ActionDef,
        values: &Values<'_>,
    ) -> Result<PreparedAction, CatalogError> {
        let mut request = self.prepare_request(
            action.request.method.clone(),
            &action.request.path,
            &BTreeMap::new(),
            values,
        )?;
        let config = self.config_with_defaults(values.config);
        let values = &Values {
            config: &config,
            ..*values
        };
        if let Some(query) = &action.request.query {
            let pairs = json_template::render_pairs(query, values)?;
            request.url.query_pairs_mut().extend_pairs(pairs);
        }
        let body = if let Some(json) = &action.request.json {
            let body = render_json(json, values)?;
            Some(("application/json", body.to_string().into_bytes()))
        } else if let Some(form) = &action.request.form {
            let pairs = json_template::render_pairs(form, values)?;
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            Some(("application/x-www-form-urlencoded", encoded.into_bytes()))
        } else {
            None
        };
        Ok(PreparedAction { request, body })
    }

    /// The test-connection request for an integration with this `config` and these decrypted
    /// `credentials` (the credential fields, or the OAuth token set with `accessToken`).
    pub fn build_health_check(
        &self,
        config: &Map<String, Value>,
        credentials: &Map<String, Value>,
    ) -> Result<HealthCheckRequest, CatalogError> {
        let check = self
            .api
            .as_ref()
            .and_then(|a| a.health_check.as_ref())
            .ok_or(CatalogError::NoHealthCheck)?;
        let request = self.prepare_request(
            check.method.clone(),
            &check.path,
            &BTreeMap::new(),
            &Values::new(config, credentials),
        )?;
        Ok(HealthCheckRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            expect: check.expect.clone(),
        })
    }

    fn apply_credentials(
        &self,
        url: &mut Url,
        headers: &mut Vec<(String, String)>,
        values: &Values<'_>,
    ) -> Result<(), CatalogError> {
        let apply = match &self.auth {
            Auth::None => return Ok(()),
            Auth::OAuth2(oauth) => match &oauth.apply {
                Some(apply) => apply,
                None => {
                    let token = render_raw("{accessToken}", "token", values)?;
                    headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
                    return Ok(());
                }
            },
            Auth::ApiKey(c) | Auth::Basic(c) => &c.apply,
        };
        match apply {
            CredentialApply::Header { name, format } => {
                let name = render_raw(name, "auth.apply.header", values)?;
                headers.push((name, render_raw(format, "auth.apply.format", values)?));
            }
            CredentialApply::Query { name, format } => {
                let name = render_raw(name, "auth.apply.query", values)?;
                let value = render_raw(format, "auth.apply.format", values)?;
                url.query_pairs_mut().append_pair(&name, &value);
            }
            CredentialApply::Basic { username, password } => {
                let username = render_raw(username, "auth.apply.basic.username", values)?;
                let password = render_raw(password, "auth.apply.basic.password", values)?;
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                headers.push(("Authorization".to_owned(), format!("Basic {encoded}")));
            }
            CredentialApply::Url => {}
        }
        Ok(())
    }
}
