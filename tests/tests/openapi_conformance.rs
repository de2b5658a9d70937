//! The OpenAPI document tells the truth about real responses (the first step of API fuzzing):
//! a scenario calls every documented operation through the local gateway, with successes and the
//! documented errors, and every response must be documented for its operation and status, carry the
//! headers its response object requires, and have a body that validates against the documented schema
//! of its content type. Every violation is collected; the test fails once with the whole list.
//!
//! Also here: the same check while DynamoDB throttles every request (a proxy in front of moto), so the
//! 503 path is held to the document too; the document's own examples and defaults against their
//! schemas; and the checker itself, on responses that break the document in one way each.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hub_local::oauth_server::{
    AuthServerOptions, ClientAuthMethod, InjectedFailure, LocalAuthServer,
};
use hub_tests::oauth::{browser, consent, location_params, provider_yaml, register_client};
use hub_tests::{spawn_app_with, Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DOCUMENT: &str = include_str!("../../api/openapi.json");
const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const MISSING_ID: &str = "int_00000000000000000000000000";
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Checks responses against the document and keeps every violation, so that one run shows them all.
struct Conformance {
    document: Value,
    validators: HashMap<String, jsonschema::Validator>,
    violations: Vec<String>,
    /// (METHOD, path template) → the statuses seen for it.
    exercised: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Conformance {
    fn new() -> Conformance {
        Conformance {
            document: serde_json::from_str(DOCUMENT).expect("openapi.json is JSON"),
            validators: HashMap::new(),
            violations: Vec::new(),
            exercised: BTreeMap::new(),
        }
    }

    /// Checks one response of a documented operation.
    fn check(&mut self, method: &str, path: &str, reply: &Reply) {
        let found = self.violations_of(method, path, reply);
        self.record(method, path, reply, found);
    }

    /// Checks a response to a request the document describes only in prose (a wrong method on a known
    /// path, an unknown path under `/api`): a problem document with the expected status, and for a 405
    /// an `Allow` header listing exactly the methods the document has for that path.
    fn check_outside_operations(&mut self, method: &str, path: &str, reply: &Reply, status: u16) {
        let mut found = Vec::new();
        if reply.status != status {
            found.push(format!("expected status {status}"));
        }
        let problem = json!({
            "description": "problem",
            "headers": {"x-request-id": {"$ref": "#/components/headers/XRequestId"}},
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        });
        found.extend(self.response_violations(&problem, reply));
        if status == 405 {
            let documented: Vec<String> = self
                .template_of(path)
                .map(|template| {
                    let item = &self.document["paths"][template.as_str()];
                    let mut methods: Vec<String> = HTTP_METHODS
                        .iter()
                        .filter(|m| item.get(**m).is_some())
                        .map(|m| m.to_uppercase())
                        .collect();
                    methods.sort();
                    methods
                })
                .unwrap_or_default();
            let mut allowed: Vec<String> = reply
                .header("allow")
                .unwrap_or("")
                .split(',')
                .map(|m| m.trim().to_uppercase())
                .filter(|m| !m.is_empty())
                .collect();
            allowed.sort();
            if allowed != documented {
                found.push(format!(
                    "Allow is {allowed:?}, the document has {documented:?} for this path"
                ));
            }
        }
        self.record(method, path, reply, found);
    }

    fn record(&mut self, method: &str, path: &str, reply: &Reply, found: Vec<String>) {
        for violation in found {
            self.violations.push(format!(
                "{method} {path} → {}: {violation}\n    body: {}",
                reply.status,
                shorten(&reply.text, 400)
            ));
        }
    }

    fn violations_of(&mut self, method: &str, path: &str, reply: &Reply) -> Vec<String> {
        let Some(template) = self.template_of(path) else {
            return vec!["no path of the document matches".to_string()];
        };
        let operation = self.document["paths"][template.as_str()]
            .get(method.to_lowercase())
            .cloned();
        let Some(operation) = operation else {
            return vec![format!("the document has no operation {method} {template}")];
        };
        let status = reply.status.to_string();
        self.exercised
            .entry((method.to_string(), template.clone()))
            .or_default()
            .insert(status.clone());
        let responses = &operation["responses"];
        let Some(response) = responses.get(&status).or_else(|| responses.get("default")) else {
            let documented: Vec<&String> = responses
                .as_object()
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            return vec![format!(
                "status {status} is not documented for {method} {template} (documented: {documented:?})"
            )];
        };
        let response = self.resolve(response);
        self.response_violations(&response, reply)
    }

    /// Required headers present, present headers valid, body of a documented content type and schema.
    fn response_violations(&mut self, response: &Value, reply: &Reply) -> Vec<String> {
        let mut found = Vec::new();
        let headers = response["headers"].as_object().cloned().unwrap_or_default();
        for (name, header) in headers {
            let header = self.resolve(&header);
            match reply.header(&name) {
                None if header["required"] == true => {
                    found.push(format!("required header {name} is missing"))
                }
                None => {}
                Some(value) => {
                    let instance = if header["schema"]["type"] == "integer" {
                        value
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::from(value))
                    } else {
                        Value::from(value)
                    };
                    found.extend(
                        self.schema_violations(&header["schema"], &instance)
                            .into_iter()
                            .map(|v| format!("header {name}: {v}")),
                    );
                }
            }
        }

        if response["x-pass-through"] == true {
            // The proxy: whatever the provider sent, with or without a body.
            return found;
        }
        let Some(content) = response["content"].as_object().cloned() else {
            if !reply.text.is_empty() {
                found.push("documented without a body, but a body was sent".to_string());
            }
            return found;
        };
        let Some(content_type) = reply.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        }) else {
            found.push("no Content-Type".to_string());
            return found;
        };
        let Some(media) = content.get(&content_type) else {
            let documented: Vec<&String> = content.keys().collect();
            found.push(format!(
                "content type {content_type} is not documented (documented: {documented:?})"
            ));
            return found;
        };
        let body: Value = if content_type.starts_with("text/") {
            // A text body (Meta's echoed challenge) is validated as the string it is.
            Value::String(reply.text.clone())
        } else {
            match serde_json::from_str(&reply.text) {
                Ok(body) => body,
                Err(error) => {
                    found.push(format!("the body is not JSON: {error}"));
                    return found;
                }
            }
        };
        found.extend(
            self.schema_violations(&media["schema"], &body)
                .into_iter()
                .map(|v| format!("body{v}")),
        );
        found.extend(described_invariants(&content_type, reply, &body));
        found
    }

    /// Validates `instance` against `schema`, a schema of the document whose `#/components/...`
    /// references resolve inside the same root (the whole `components` object is embedded).
    fn schema_violations(&mut self, schema: &Value, instance: &Value) -> Vec<String> {
        let key = schema.to_string();
        if !self.validators.contains_key(&key) {
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "allOf": [schema],
                "components": self.document["components"],
            });
            match jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
            {
                Ok(validator) => {
                    self.validators.insert(key.clone(), validator);
                }
                Err(error) => {
                    return vec![format!(": the document's schema does not compile: {error}")]
                }
            }
        }
        self.validators[&key]
            .iter_errors(instance)
            .map(|error| {
                format!(
                    "{}: {} (schema {})",
                    error.instance_path(),
                    shorten(&error.to_string(), 300),
                    error.schema_path()
                )
            })
            .collect()
    }

    /// Follows `$ref`s within the document (response objects and headers use them).
    fn resolve(&self, value: &Value) -> Value {
        let mut current = value.clone();
        for _ in 0..16 {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                return current;
            };
            match reference
                .strip_prefix('#')
                .and_then(|pointer| self.document.pointer(pointer))
            {
                Some(target) => current = target.clone(),
                None => return json!({"unresolved": reference}),
            }
        }
        current
    }

    /// The document's path template for a concrete path: same segment count, literals equal; the
    /// template with the most literal segments wins, as in the gateway.
    fn template_of(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        self.document["paths"]
            .as_object()?
            .keys()
            .filter_map(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                let matches = parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(part, segment)| {
                        (part.starts_with('{') && !segment.is_empty()) || part == segment
                    });
                matches.then(|| {
                    let literals = parts.iter().filter(|p| !p.starts_with('{')).count();
                    (literals, template.clone())
                })
            })
            .max()
            .map(|(_, template)| template)
    }

    /// Every operation of the document, as (METHOD, template).
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut operations = BTreeSet::new();
        for (template, item) in self.document["paths"].as_object().into_iter().flatten() {
            for method in HTTP_METHODS {
                if item.get(method).is_some() {
                    operations.insert((method.to_uppercase(), template.clone()));
                }
            }
        }
        operations
    }

    /// Documented statuses no response produced (informative: a 500 cannot be provoked from outside;
    /// 503s are the throttling test's).
    fn unexercised_statuses(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for (method, template) in self.operations() {
            let seen = self
                .exercised
                .get(&(method.clone(), template.clone()))
                .cloned()
                .unwrap_or_default();
            let operation = &self.document["paths"][template.as_str()][method.to_lowercase()];
            for status in operation["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                if !seen.contains(&status) {
                    missing.push(format!("{method} {template} {status}"));
                }
            }
        }
        missing
    }
}

/// What the document states in prose about a body, checked where it can be: a problem's `status` is
/// the HTTP status; a versioned resource's `ETag` is its quoted `version`; `Location` is its path.
fn described_invariants(content_type: &str, reply: &Reply, body: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if content_type == "application/problem+json" && body["status"] != reply.status {
        found.push(format!(
            "problem status {} differs from the HTTP status",
            body["status"]
        ));
    }
    if let (Some(etag), Some(version)) = (reply.header("etag"), body["version"].as_u64()) {
        if etag != format!("\"{version}\"") {
            found.push(format!("ETag {etag} is not the quoted version {version}"));
        }
    }
    // A created resource lives at its collection's path plus its id.
    if let (Some(location), Some(id)) = (reply.header("location"), body["id"].as_str()) {
        let collection = if id.starts_with("whout_") {
            "/api/webhooks/outgoing"
        } else if id.starts_with("whin_") {
            "/api/webhooks/incoming"
        } else {
            "/api/integrations"
        };
        if location != format!("{collection}/{id}") {
            found.push(format!("Location {location} is not the resource's path"));
        }
    }
    found
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}… ({} bytes)", text.len())
}

/// Sends requests through the gateway and checks each answer as it comes. The expected status makes
/// the scenario check itself: a request meant to succeed must succeed, so its schema is exercised.
struct Scenario<'a> {
    app: &'a TestApp,
    conformance: Conformance,
}

impl Scenario<'_> {
    /// Calls a documented operation as tenant `acme` with an optional JSON body; checks the answer.
    async fn call(
        &mut self,
        expected: u16,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.app.request(method.clone(), "acme", path);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(Some(expected), method, path, request).await
    }

    /// Like [`Scenario::call`] for an input whose exact answer the document leaves open.
    async fn call_probe(&mut self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self.app.request(method.clone(), "acme", path);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(None, method, path, request).await
    }

    /// Sends a prepared request for `method` `path`; checks the answer (and its status, if expected).
    async fn send(
        &mut self,
        expected: Option<u16>,
        method: Method,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Reply {
        let reply = self.app.send(request).await;
        self.conformance.check(method.as_str(), path, &reply);
        if reply.status >= 500 {
            // Documented (every operation lists 500), but the API must never answer one.
            self.conformance.record(
                method.as_str(),
                path,
                &reply,
                vec!["(scenario) a 5xx answer".to_string()],
            );
        } else if let Some(expected) = expected.filter(|e| *e != reply.status) {
            self.conformance.record(
                method.as_str(),
                path,
                &reply,
                vec![format!("(scenario) expected status {expected}")],
            );
        }
        reply
    }

    /// A request without a token.
    fn anonymous(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .http
            .request(method, format!("{}{path}", self.app.url))
    }
}

/// The id of a created integration (a missing one if creation failed, which is reported anyway).
fn id_of(reply: &Reply) -> String {
    serde_json::from_str::<Value>(&reply.text)
        .ok()
        .and_then(|body| body["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| MISSING_ID.to_string())
}

/// A catalog entry with a rate limit small enough to exhaust (the 429 of test connection), and
/// `extra` entries.
fn providers_file(base_url: &str, extra: &str) -> std::path::PathBuf {
    let file = hub_tests::write_providers_file(&format!(
            "tiny_api:\n  name: Tiny API\n  category: custom\n  auth:\n    mode: api_key\n    fields: [{{name: apiKey, secret: true}}]\n    apply: {{query: key, format: \"{{apiKey}}\"}}\n  api:\n    baseUrl: {base_url}\n    rateLimit: {{requests: 1, perSeconds: 3600}}\n    healthCheck: {{method: GET, path: /ping, expect: 200}}\ntiny_actions:\n  name: Tiny actions\n  category: custom\n  auth:\n    mode: api_key\n    fields: [{{name: apiKey, secret: true}}]\n    apply: {{header: X-Key, format: \"{{apiKey}}\"}}\n  api:\n    baseUrl: {base_url}\n  actions:\n    ping:\n      description: Ping the API\n      input: {{type: object, required: [note], properties: {{note: {{type: string}}}}, additionalProperties: false}}\n      request: {{method: GET, path: /ping, query: {{note: \"{{input.note}}\"}}}}\n      output: {{status: $status}}\n    lost:\n      description: A path the API does not have\n      input: {{type: object}}\n      request: {{method: POST, path: /lost, json: {{}}}}\n      output: {{status: $status}}\n{extra}"
        ));
    file
}

/// The OAuth provider of the scenario, served by a local authorization server.
const OAUTH_SLUG: &str = "local_oauth";
const RETURN_URL: &str = "http%3A%2F%2Flocalhost%2Fdone";

impl Scenario<'_> {
    /// Starts a connect flow for `acme` as a client (`Accept: application/json`) and checks the
    /// answer; the authorize URL.
    async fn start_connect(&mut self, slug: &str, query: &str) -> String {
        let path = format!("/api/integrations/connect/{slug}?{query}");
        let request = self
            .app
            .request(Method::GET, "acme", &path)
            .header("accept", "application/json");
        let reply = self.send(Some(200), Method::GET, &path, request).await;
        serde_json::from_str::<Value>(&reply.text)
            .ok()
            .and_then(|body| body["authorizeUrl"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The browser arriving at `url`, a callback URL of this app: checks the answer.
    async fn follow_callback(&mut self, expected: u16, url: &str) -> Reply {
        let path = url.strip_prefix(&self.app.url).unwrap_or(url).to_string();
        let request = browser().get(format!("{}{path}", self.app.url));
        self.send(Some(expected), Method::GET, &path, request).await
    }

    /// Records a violation unless the redirect's query has `name=value` (`value` empty: any).
    fn expect_location_param(&mut self, path: &str, reply: &Reply, name: &str, value: &str) {
        let found = reply
            .header("location")
            .and_then(|location| url::Url::parse(location).ok())
            .and_then(|url| {
                url.query_pairs()
                    .find(|(key, _)| key == name)
                    .map(|(_, v)| v.into_owned())
            });
        if found
            .as_deref()
            .is_none_or(|v| !value.is_empty() && v != value)
        {
            self.conformance.record(
                "GET",
                path,
                reply,
                vec![format!(
                    "(scenario) expected {name}={value} in Location {:?}",
                    reply.header("location")
                )],
            );
        }
    }
}

/// The `state` of an authorize URL.
fn state_of(authorize_url: &str) -> String {
    url::Url::parse(authorize_url)
        .ok()
        .and_then(|url| {
            url.query_pairs()
                .find(|(key, _)| key == "state")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default()
}

/// `url` with its query parameter `name` set to `value` (appended when absent).
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("absolute URL");
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .into_owned()
        .filter(|(key, _)| key != name)
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(name, value);
    parsed.to_string()
}

/// The oauth function's operations: tenant OAuth apps, connect (JSON and 302), the public callback
/// (connected, reconnected, each `error` redirect, each invalid state), refresh (200, 502, 409) and
/// test connection of an OAuth integration, against `server`, the provider's authorization server.
async fn oauth_connections(s: &mut Scenario<'_>, server: &LocalAuthServer, non_oauth_id: &str) {
    let app = s.app;
    let acme = |method: Method, path: &str| app.request(method, "acme", path);
    let app_path = format!("/api/providers/{OAUTH_SLUG}/oauth-app");
    let client = json!({"clientId": hub_tests::oauth::client_id(OAUTH_SLUG), "clientSecret": hub_tests::oauth::CLIENT_SECRET});

    // the tenant's OAuth app: none yet, configured (with scopes, then the catalog's), the errors
    s.call(404, Method::GET, &app_path, None).await;
    s.call(
        200,
        Method::PUT,
        &app_path,
        Some(&json!({"clientId": hub_tests::oauth::client_id(OAUTH_SLUG),
            "clientSecret": hub_tests::oauth::CLIENT_SECRET,
            "scopes": ["contacts.read", "offline_access", "contacts.write"]})),
    )
    .await;
    s.call(200, Method::PUT, &app_path, Some(&client)).await;
    s.call(
        200,
        Method::PUT,
        &app_path,
        Some(&json!({"clientId": hub_tests::oauth::client_id(OAUTH_SLUG),
            "clientSecret": hub_tests::oauth::CLIENT_SECRET, "scopes": null})),
    )
    .await;
    s.call(200, Method::GET, &app_path, None).await;
    for invalid in [
        json!({"clientId": "", "clientSecret": "s"}),
        json!({"clientId": "   ", "clientSecret": "s"}),
        json!({"clientId": "a\u{1}b", "clientSecret": "s"}),
        json!({"clientId": "a".repeat(513), "clientSecret": "s"}),
        json!({"clientId": "a", "clientSecret": "s".repeat(4097)}),
        json!({"clientId": "a"}),
        json!({"clientSecret": "s"}),
        json!({"clientId": "a", "clientSecret": "s", "redirectUri": "http://x"}),
        json!({"clientId": "a", "clientSecret": "s", "scopes": ["two words"]}),
        json!({"clientId": "a", "clientSecret": "s", "scopes": ["a,b"]}),
        json!({"clientId": "a", "clientSecret": "s", "scopes": [""]}),
        json!({"clientId": "a", "clientSecret": "s", "scopes": vec!["s"; 51]}),
        json!({"clientId": "a", "clientSecret": "s", "scopes": "contacts.read"}),
        json!({"clientId": 7, "clientSecret": "s"}),
        json!([]),
    ] {
        s.call(400, Method::PUT, &app_path, Some(&invalid)).await;
    }
    let put_raw = |content_type: &str, body: String| {
        acme(Method::PUT, &app_path)
            .header("content-type", content_type)
            .body(body)
    };
    let malformed = put_raw("application/json", r#"{"clientId": "#.to_string());
    s.send(Some(400), Method::PUT, &app_path, malformed).await;
    let text = put_raw("text/plain", client.to_string());
    s.send(Some(415), Method::PUT, &app_path, text).await;
    let too_large = put_raw(
        "application/json",
        json!({"clientId": "a", "clientSecret": "s".repeat(1024 * 1024 + 1)}).to_string(),
    );
    s.send(Some(413), Method::PUT, &app_path, too_large).await;
    s.call(
        400,
        Method::PUT,
        "/api/providers/stripe/oauth-app",
        Some(&client),
    )
    .await;
    s.call(400, Method::GET, "/api/providers/stripe/oauth-app", None)
        .await;
    s.call(
        404,
        Method::PUT,
        "/api/providers/no_such_provider/oauth-app",
        Some(&client),
    )
    .await;
    s.call(
        404,
        Method::GET,
        "/api/providers/no_such_provider/oauth-app",
        None,
    )
    .await;
    s.call(
        404,
        Method::GET,
        "/api/providers/google_calendar/oauth-app",
        None,
    )
    .await;

    // connect: as a client (JSON) and as a browser (302), and each documented error
    s.start_connect(OAUTH_SLUG, &format!("returnUrl={RETURN_URL}"))
        .await;
    let path = format!(
        "/api/integrations/connect/{OAUTH_SLUG}?returnUrl={RETURN_URL}&connectionKey=second&scopes=contacts.write%2Cmeetings.read%20files"
    );
    for accept in [None, Some("text/html,application/xhtml+xml"), Some("*/*")] {
        let mut request = browser()
            .get(format!("{}{path}", app.url))
            .bearer_auth(app.token("acme"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        s.send(Some(302), Method::GET, &path, request).await;
    }
    for query in [
        String::new(),
        "returnUrl=".to_string(),
        "returnUrl=https%3A%2F%2Fevil.example%2Fdone".to_string(),
        "returnUrl=http%3A%2F%2Flocalhost.evil.example%2F".to_string(),
        "returnUrl=http%3A%2F%2Fuser%40localhost%2F".to_string(),
        "returnUrl=not%20a%20url".to_string(),
        format!("returnUrl=http%3A%2F%2Flocalhost%2F{}", "a".repeat(2048)),
        format!("returnUrl={RETURN_URL}&connectionKey=has%20space"),
        format!("returnUrl={RETURN_URL}&connectionKey="),
        format!("returnUrl={RETURN_URL}&scopes=a%22b"),
        format!(
            "returnUrl={RETURN_URL}&scopes={}",
            vec!["s"; 51].join("%20")
        ),
    ] {
        let path = format!("/api/integrations/connect/{OAUTH_SLUG}?{query}");
        s.call(400, Method::GET, &path, None).await;
    }
    for (expected, slug) in [
        (400, "google_calendar"),
        (400, "stripe"),
        (404, "no_such_provider"),
    ] {
        let path = format!("/api/integrations/connect/{slug}?returnUrl={RETURN_URL}");
        s.call(expected, Method::GET, &path, None).await;
    }

    // callback: connected (the code exchanged, the integration created)
    let authorize = s
        .start_connect(OAUTH_SLUG, &format!("returnUrl={RETURN_URL}"))
        .await;
    let callback = consent(&authorize).await;
    let callback_path = callback
        .strip_prefix(&app.url)
        .unwrap_or(&callback)
        .to_string();
    let connected = s.follow_callback(302, &callback).await;
    s.expect_location_param(&callback_path, &connected, "status", "connected");
    s.expect_location_param(&callback_path, &connected, "integrationId", "");
    let oauth_id = connected
        .header("location")
        .map(|_| location_params(&connected))
        .and_then(|params| params.get("integrationId").cloned())
        .unwrap_or_else(|| MISSING_ID.to_string());
    // the same callback again: its state is used
    s.follow_callback(400, &callback).await;

    // the redirects with `error`: consent denied, another issuer, no code, a refused exchange
    server.deny_next_consent();
    let authorize = s
        .start_connect(OAUTH_SLUG, &format!("returnUrl={RETURN_URL}"))
        .await;
    let denied = consent(&authorize).await;
    let reply = s.follow_callback(302, &denied).await;
    s.expect_location_param(&callback_path, &reply, "error", "access_denied");
    let authorize = s
        .start_connect(OAUTH_SLUG, &format!("returnUrl={RETURN_URL}"))
        .await;
    let mixed_up = with_param(&consent(&authorize).await, "iss", "https://evil.example");
    let reply = s.follow_callback(302, &mixed_up).await;
    s.expect_location_param(&callback_path, &reply, "error", "invalid_issuer");
    let authorize = s
        .start_connect(OAUTH_SLUG, &format!("returnUrl={RETURN_URL}"))
        .await;
    let no_code = format!(
        "{}/api/integrations/callback/{OAUTH_SLUG}?state={}",
        app.url,
        state_of(&authorize)
    );
    let reply = s.follow_callback(302, &no_code).await;
    s.expect_location_param(&callback_path, &reply, "error", "invalid_request");
    let authorize = s
        .start_connect(OAUTH_SLUG, &format!("returnUrl={RETURN_URL}"))
        .await;
    let refused = consent(&authorize).await;
    server.fail_next_token_requests(InjectedFailure::InvalidGrant, 1);
    let reply = s.follow_callback(302, &refused).await;
    s.expect_location_param(&callback_path, &reply, "error", "token_exchange_failed");

    // the invalid states: none, empty, unknown, another provider's
    let base = format!("{}/api/integrations/callback/{OAUTH_SLUG}", app.url);
    for url in [
        base.clone(),
        format!("{base}?state="),
        format!("{base}?state=not-a-state&code=abc"),
        format!("{base}?error=access_denied"),
        format!("{base}?state={}", "s".repeat(5000)),
    ] {
        s.follow_callback(400, &url).await;
    }
    let authorize = s
        .start_connect(OAUTH_SLUG, &format!("returnUrl={RETURN_URL}"))
        .await;
    let elsewhere = consent(&authorize).await.replace(
        &format!("/callback/{OAUTH_SLUG}?"),
        "/callback/google_calendar?",
    );
    s.follow_callback(400, &elsewhere).await;

    // the OAuth integration: read, status, test connection with its access token
    let integration_path = format!("/api/integrations/{oauth_id}");
    s.call(200, Method::GET, &integration_path, None).await;
    s.call(
        200,
        Method::GET,
        &format!("{integration_path}/status"),
        None,
    )
    .await;
    s.call(200, Method::POST, &format!("{integration_path}/test"), None)
        .await;

    // refresh: refreshed, the token endpoint unavailable (502), the refresh token refused (409)
    let refresh_path = format!("{integration_path}/refresh");
    s.call(200, Method::POST, &refresh_path, None).await;
    s.call(200, Method::POST, &refresh_path, Some(&json!({})))
        .await;
    // 502 once the access token has expired (while it lasts, an unavailable endpoint is no error)
    server.set_access_token_ttl(std::time::Duration::from_secs(1));
    s.call(200, Method::POST, &refresh_path, None).await;
    server.set_access_token_ttl(std::time::Duration::from_secs(3600));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.fail_next_token_requests(InjectedFailure::ServerError, 3);
    let reply = app.send(acme(Method::POST, &refresh_path)).await;
    s.conformance.check("POST", &refresh_path, &reply);
    if reply.status != 502 {
        s.conformance.record(
            "POST",
            &refresh_path,
            &reply,
            vec!["(scenario) expected status 502".to_string()],
        );
    }
    server.fail_next_token_requests(InjectedFailure::InvalidGrant, 1);
    s.call(409, Method::POST, &refresh_path, None).await;
    s.call(409, Method::POST, &refresh_path, None).await;
    // an expired integration's test fails without a request to the provider (`reconnect_required`)
    s.call(200, Method::POST, &format!("{integration_path}/test"), None)
        .await;
    s.call(
        400,
        Method::POST,
        &format!("/api/integrations/{non_oauth_id}/refresh"),
        None,
    )
    .await;
    s.call(
        404,
        Method::POST,
        &format!("/api/integrations/{MISSING_ID}/refresh"),
        None,
    )
    .await;
    s.call_probe(Method::POST, "/api/integrations/abc/refresh", None)
        .await;

    // reconnect: the same connectionKey connected again keeps the integration's id
    let authorize = s
        .start_connect(OAUTH_SLUG, &format!("returnUrl={RETURN_URL}"))
        .await;
    let reconnected = s.follow_callback(302, &consent(&authorize).await).await;
    s.expect_location_param(&callback_path, &reconnected, "integrationId", &oauth_id);
    s.call(200, Method::POST, &refresh_path, None).await;
}

#[test]
fn the_checker_reports_undocumented_statuses_invalid_bodies_and_missing_headers() {
    // Given a checker and responses that break the document in one way each,
    let mut conformance = Conformance::new();
    let headers = |pairs: &[(&'static str, &str)]| {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    };
    let json_with_id = headers(&[
        ("content-type", "application/json"),
        ("x-request-id", "req_1"),
    ]);
    let good = Reply {
        status: 200,
        headers: json_with_id.clone(),
        text: r#"{"status":"ok","version":"0.1.0"}"#.to_string(),
    };
    let undocumented_status = Reply {
        status: 418,
        ..good.clone()
    };
    let invalid_body = Reply {
        text: r#"{"status":"down","version":"0.1.0","extra":1}"#.to_string(),
        ..good.clone()
    };
    let missing_request_id = Reply {
        headers: headers(&[("content-type", "application/json")]),
        ..good.clone()
    };
    let undocumented_type = Reply {
        headers: headers(&[("content-type", "text/html"), ("x-request-id", "req_1")]),
        ..good.clone()
    };
    // a `$ref` two levels deep (Integration → Health) must be enforced too
    let bad_nested = Reply {
        status: 404,
        headers: headers(&[
            ("content-type", "application/problem+json"),
            ("x-request-id", "req_1"),
        ]),
        text: r#"{"type":"about:blank","title":"Not found","status":404,"detail":"d","code":"not_found","errors":[{"field":"x"}]}"#.to_string(),
    };

    let status = |last_sync_at: &str| {
        Reply {
        status: 200,
        headers: json_with_id.clone(),
        text: json!({"status": "connected", "connected": true, "autoSyncEnabled": false,
            "syncDirection": "import", "syncFrequency": "manual", "lastSyncAt": last_sync_at,
            "lastSyncStatus": null, "lastError": null, "totalSyncs": 0, "nextSyncAt": null,
            "tokenExpiresAt": null, "health": {"score": 100, "errorCount": 0, "consecutiveFailures": 0},
            "running": null})
        .to_string(),
    }
    };
    let status_path = format!("/api/integrations/{MISSING_ID}/status");
    let valid_status = status("2026-03-10T12:00:00Z");
    let bad_date = status("yesterday");

    // when each is checked,
    conformance.check("GET", "/api/health", &good);
    conformance.check("GET", &status_path, &valid_status);
    assert!(
        conformance.violations.is_empty(),
        "{:?}",
        conformance.violations
    );
    let cases = [
        (
            "GET",
            "/api/health",
            &undocumented_status,
            "status 418 is not documented",
        ),
        ("GET", "/api/health", &invalid_body, "body/status"),
        (
            "GET",
            "/api/health",
            &missing_request_id,
            "required header x-request-id is missing",
        ),
        (
            "GET",
            "/api/health",
            &undocumented_type,
            "content type text/html is not documented",
        ),
        (
            "GET",
            &format!("/api/integrations/{MISSING_ID}"),
            &bad_nested,
            "body/errors/0",
        ),
        (
            "PUT",
            "/api/health",
            &good,
            "the document has no operation PUT /api/health",
        ),
        ("GET", &status_path, &bad_date, "body/lastSyncAt"),
    ];
    for (method, path, reply, expected) in cases {
        conformance.violations.clear();
        conformance.check(method, path, reply);
        // then each is reported, naming what is wrong.
        assert!(
            conformance.violations.iter().any(|v| v.contains(expected)),
            "{method} {path}: expected a violation containing {expected:?}, got {:?}",
            conformance.violations
        );
    }
}

#[test]
fn every_example_and_default_in_the_document_validates_against_its_schema() {
    // Given the document, when every `example`, `examples` entry and schema `default` is checked
    // against the schema it illustrates,
    let mut conformance = Conformance::new();
    let document = conformance.document.clone();
    let mut checked = 0;
    let mut found = Vec::new();
    let mut pending = vec![(String::new(), &document)];
    while let Some((pointer, value)) = pending.pop() {
        let Some(object) = value.as_object() else {
            if let Some(items) = value.as_array() {
                for (i, item) in items.iter().enumerate() {
                    pending.push((format!("{pointer}/{i}"), item));
                }
            }
            continue;
        };
        // media type and parameter objects: `schema` with `example` or an `examples` map
        if let Some(schema) = object.get("schema").filter(|s| s.is_object()) {
            let mut samples: Vec<(String, &Value)> = Vec::new();
            if let Some(example) = object.get("example") {
                samples.push((format!("{pointer}/example"), example));
            }
            for (name, example) in object
                .get("examples")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(sample) = example.get("value") {
                    samples.push((format!("{pointer}/examples/{name}"), sample));
                }
            }
            for (at, sample) in samples {
                checked += 1;
                found.extend(
                    conformance
                        .schema_violations(schema, sample)
                        .into_iter()
                        .map(|v| format!("{at}{v}")),
                );
            }
        }
        // schema objects: the JSON Schema `examples` array and `default`
        let is_schema = object.contains_key("type") || object.contains_key("$ref");
        if is_schema {
            let mut samples: Vec<(String, &Value)> = Vec::new();
            for (i, example) in object
                .get("examples")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                samples.push((format!("{pointer}/examples/{i}"), example));
            }
            if let Some(default) = object.get("default") {
                samples.push((format!("{pointer}/default"), default));
            }
            for (at, sample) in samples {
                checked += 1;
                found.extend(
                    conformance
                        .schema_violations(value, sample)
                        .into_iter()
                        .map(|v| format!("{at}{v}")),
                );
            }
        }
        for (key, child) in object {
            pending.push((
                format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1")),
                child,
            ));
        }
    }

    // then there are examples, and each is valid.
    assert!(checked >= 20, "only {checked} examples found");
    assert!(
        found.is_empty(),
        "{} examples contradict their schemas:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[tokio::test]
async fn every_response_of_every_operation_matches_the_openapi_document() {
    // Given the local stack with a fake Stripe, and a rate-limited provider in the catalog,
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": "balance"})))
        .up_to_n_times(1)
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "Invalid API Key"}})),
        )
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    let auth_server = LocalAuthServer::start(AuthServerOptions::default())
        .await
        .expect("the local authorization server starts");
    let file = providers_file(
        &provider.uri(),
        &provider_yaml(OAUTH_SLUG, &auth_server, Default::default()),
    );
    let app = spawn_app_with(|options| options.providers_file = Some(file.clone())).await;
    register_client(&app, &auth_server, OAUTH_SLUG, ClientAuthMethod::Post);
    let mut s = Scenario {
        app: &app,
        conformance: Conformance::new(),
    };
    let acme = |method: Method, path: &str| app.request(method, "acme", path);

    // when a client calls every operation, with successes and the documented errors:

    // meta, without a token
    let health = s.anonymous(Method::GET, "/api/health");
    s.send(Some(200), Method::GET, "/api/health", health).await;
    let probe = s.anonymous(Method::HEAD, "/api/health");
    s.send(Some(200), Method::HEAD, "/api/health", probe).await;
    let document = s.anonymous(Method::GET, "/api/openapi.json");
    let served = s
        .send(Some(200), Method::GET, "/api/openapi.json", document)
        .await;
    if serde_json::from_str::<Value>(&served.text).ok() != Some(s.conformance.document.clone()) {
        s.conformance
            .violations
            .push("GET /api/openapi.json does not serve api/openapi.json".into());
    }

    // providers
    s.call(200, Method::GET, "/api/providers", None).await;
    s.call(
        200,
        Method::GET,
        "/api/providers?category=payments&limit=1",
        None,
    )
    .await;
    s.call(200, Method::GET, "/api/providers?category=custom", None)
        .await;
    s.call(400, Method::GET, "/api/providers?category=banana", None)
        .await;
    for slug in [
        "stripe",
        "google_calendar",
        "custom_webhook",
        "custom_api",
        "tiny_api",
    ] {
        s.call(200, Method::GET, &format!("/api/providers/{slug}"), None)
            .await;
    }
    s.call(404, Method::GET, "/api/providers/no_such_provider", None)
        .await;

    // create: every auth mode, full sync settings, Unicode at the length limits, each documented error
    let stripe = json!({"provider": "stripe", "name": "Payments", "description": "Main account",
        "config": {"baseUrl": provider.uri()}, "credentials": {"secretKey": SECRET_KEY},
        "syncSettings": {"enabled": true, "direction": "import", "frequency": "hourly",
            "entities": [{"localEntity": "payment", "remoteEntity": "charge", "enabled": true, "direction": "import"}],
            "fieldMappings": [
                {"localEntity": "payment", "localField": "amount", "remoteField": "amount",
                 "transform": "currency_convert", "transformConfig": {"divideBy": 100}},
                {"localEntity": "payment", "localField": "note", "remoteField": "description", "defaultValue": "TBD"}],
            "filters": [{"field": "status", "operator": "in_list", "value": ["paid", "refunded"]}]}});
    let created = s
        .call(201, Method::POST, "/api/integrations", Some(&stripe))
        .await;
    let stripe_id = id_of(&created);
    let stripe_path = format!("/api/integrations/{stripe_id}");
    s.call(409, Method::POST, "/api/integrations", Some(&stripe))
        .await;
    let closed_port = hub_local::moto::free_port().expect("port");
    let refused = json!({"provider": "stripe", "name": "Refused", "connectionKey": "refused",
        "config": {"baseUrl": format!("http://127.0.0.1:{closed_port}")},
        "credentials": {"secretKey": SECRET_KEY}});
    let refused_id = id_of(
        &s.call(201, Method::POST, "/api/integrations", Some(&refused))
            .await,
    );
    let hook = json!({"provider": "custom_webhook", "name": "Hook"});
    let hook_id = id_of(
        &s.call(201, Method::POST, "/api/integrations", Some(&hook))
            .await,
    );
    let twilio = json!({"provider": "twilio", "name": "SMS ✉️ שלום مرحبا سلام",
        "connectionKey": "A.b_c-".repeat(10) + "1234",
        "description": "🙂".repeat(2000),
        "credentials": {"accountSid": "AC0123456789abcdef", "authToken": "twilio-secret-token-1234"}});
    s.call(201, Method::POST, "/api/integrations", Some(&twilio))
        .await;
    let longest_name = json!({"provider": "stripe", "name": "🦀".repeat(200), "connectionKey": "long",
        "credentials": {"secretKey": SECRET_KEY}});
    s.call(201, Method::POST, "/api/integrations", Some(&longest_name))
        .await;
    let tiny = json!({"provider": "tiny_api", "name": "Tiny", "credentials": {"apiKey": "query-key-123456"}});
    let tiny_id = id_of(
        &s.call(201, Method::POST, "/api/integrations", Some(&tiny))
            .await,
    );
    for invalid in [
        json!({"provider": "strype", "name": "Typo"}),
        json!({"provider": "google_calendar", "name": "OAuth is connected elsewhere"}),
        json!({"provider": "stripe", "name": "", "credentials": {"secretKey": SECRET_KEY}}),
        json!({"provider": "stripe", "name": "🦀".repeat(201), "connectionKey": "k0"}),
        json!({"provider": "stripe", "name": "x", "colour": "red"}),
        json!({"provider": "stripe", "name": 7}),
        json!({"provider": "stripe"}),
        json!({"provider": "stripe", "name": "x", "connectionKey": "has space"}),
        json!({"provider": "stripe", "name": "x", "credentials": {"secretKey": 42}}),
        json!({"provider": "stripe", "name": "x", "connectionKey": "k2",
               "syncSettings": {"frequency": "weekly"}}),
        json!({"provider": "stripe", "name": "x", "connectionKey": "k3",
               "syncSettings": {"entities": [{"localEntity": "a", "remoteEntity": "invoice", "enabled": true, "direction": "import"}]}}),
        json!({"provider": "stripe", "name": "x", "connectionKey": "k4",
               "syncSettings": {"filters": [{"field": "a", "operator": "like", "value": 1}]}}),
        json!([]),
        json!(null),
    ] {
        s.call(400, Method::POST, "/api/integrations", Some(&invalid))
            .await;
    }
    let post_raw = |content_type: &str, body: String| {
        acme(Method::POST, "/api/integrations")
            .header("content-type", content_type)
            .body(body)
    };
    let malformed = post_raw("application/json", r#"{"provider": "stripe","#.to_string());
    s.send(Some(400), Method::POST, "/api/integrations", malformed)
        .await;
    let empty = post_raw("application/json", String::new());
    s.send(Some(400), Method::POST, "/api/integrations", empty)
        .await;
    let text = post_raw("text/plain", stripe.to_string());
    s.send(Some(415), Method::POST, "/api/integrations", text)
        .await;
    let no_type = acme(Method::POST, "/api/integrations").body(stripe.to_string());
    s.send(Some(415), Method::POST, "/api/integrations", no_type)
        .await;
    let too_large = post_raw(
        "application/json",
        json!({"provider": "stripe", "name": "x", "description": "a".repeat(1024 * 1024 + 1)})
            .to_string(),
    );
    s.send(Some(413), Method::POST, "/api/integrations", too_large)
        .await;
    // past API Gateway's own 10 MiB quota the gateway answers before the function
    let beyond_gateway_quota = post_raw(
        "application/json",
        json!({"provider": "stripe", "name": "x", "description": "a".repeat(10 * 1024 * 1024 + 1)})
            .to_string(),
    );
    s.send(
        Some(413),
        Method::POST,
        "/api/integrations",
        beyond_gateway_quota,
    )
    .await;

    // read, list and page
    s.call(200, Method::GET, &stripe_path, None).await;
    s.call(
        200,
        Method::GET,
        &format!("/api/integrations/{hook_id}"),
        None,
    )
    .await;
    s.call(
        404,
        Method::GET,
        &format!("/api/integrations/{MISSING_ID}"),
        None,
    )
    .await;
    s.call(200, Method::GET, "/api/integrations", None).await;
    s.call(200, Method::GET, "/api/integrations?limit=100", None)
        .await;
    s.call(
        200,
        Method::GET,
        "/api/integrations?provider=stripe&status=connected",
        None,
    )
    .await;
    s.call(200, Method::GET, "/api/integrations?provider=nobody", None)
        .await;
    let mut next = Some("/api/integrations?limit=2".to_string());
    let mut pages = 0;
    while let Some(page) = next.take() {
        let reply = s.call(200, Method::GET, &page, None).await;
        pages += 1;
        let cursor = serde_json::from_str::<Value>(&reply.text)
            .ok()
            .and_then(|body| body["nextCursor"].as_str().map(url_encode));
        if let Some(cursor) = cursor.filter(|_| pages < 10) {
            next = Some(format!("/api/integrations?limit=2&cursor={cursor}"));
        }
    }
    if pages < 3 {
        s.conformance.violations.push(format!(
            "(scenario) expected at least 3 pages of 2, got {pages}"
        ));
    }
    for invalid in [
        "/api/integrations?limit=0",
        "/api/integrations?limit=101",
        "/api/integrations?limit=ten",
        "/api/integrations?limit=99999999999999999999999",
        "/api/integrations?status=sleeping",
        "/api/integrations?cursor=not-a-cursor",
    ] {
        s.call(400, Method::GET, invalid, None).await;
    }

    // status while a schedule is due (nextSyncAt set), before the update below turns it off
    s.call(
        200,
        Method::GET,
        &format!("/api/integrations/{stripe_id}/status"),
        None,
    )
    .await;

    // update: with and without If-Match, a stale version, and each documented error
    let patch = |body: &Value, if_match: Option<&str>| {
        let mut request = acme(Method::PATCH, &stripe_path).json(body);
        if let Some(version) = if_match {
            request = request.header("if-match", version);
        }
        request
    };
    let request = patch(
        &json!({"name": "Payments EU", "description": null}),
        Some("\"1\""),
    );
    s.send(Some(200), Method::PATCH, &stripe_path, request)
        .await;
    let request = patch(
        &json!({"syncSettings": {"enabled": false}, "config": {"baseUrl": provider.uri()}}),
        Some("2"),
    );
    s.send(Some(200), Method::PATCH, &stripe_path, request)
        .await;
    let request = patch(&json!({"credentials": {"secretKey": SECRET_KEY}}), None);
    s.send(Some(200), Method::PATCH, &stripe_path, request)
        .await;
    for stale in ["\"1\"", "W/\"3\"", "banana"] {
        let request = patch(&json!({"name": "lost update"}), Some(stale));
        s.send(Some(412), Method::PATCH, &stripe_path, request)
            .await;
    }
    for invalid in [
        json!({}),
        json!({"name": ""}),
        json!({"name": null}),
        json!({"tenantId": "globex"}),
        json!({"syncSettings": {"direction": "sideways"}}),
        json!("name"),
    ] {
        let request = patch(&invalid, None);
        s.send(Some(400), Method::PATCH, &stripe_path, request)
            .await;
    }
    let missing_path = format!("/api/integrations/{MISSING_ID}");
    let request = acme(Method::PATCH, &missing_path).json(&json!({"name": "ghost"}));
    s.send(Some(404), Method::PATCH, &missing_path, request)
        .await;
    let request = acme(Method::PATCH, &stripe_path)
        .header("content-type", "text/plain")
        .body(r#"{"name": "x"}"#);
    s.send(Some(415), Method::PATCH, &stripe_path, request)
        .await;
    let request = patch(&json!({"description": "a".repeat(1024 * 1024 + 1)}), None);
    s.send(Some(413), Method::PATCH, &stripe_path, request)
        .await;

    // test connection: passing, rejected by the provider, refused, unsupported, rate limited, missing;
    // with no body, an empty JSON object, or a body of another type (the operation takes none)
    let test_path = |id: &str| format!("/api/integrations/{id}/test");
    s.call(200, Method::POST, &test_path(&stripe_id), None)
        .await;
    s.call(200, Method::POST, &test_path(&stripe_id), Some(&json!({})))
        .await;
    s.call(200, Method::POST, &test_path(&refused_id), None)
        .await;
    let request = acme(Method::POST, &test_path(&refused_id))
        .header("content-type", "text/plain")
        .body("hello");
    s.send(None, Method::POST, &test_path(&refused_id), request)
        .await;
    s.call(400, Method::POST, &test_path(&hook_id), None).await;
    s.call(200, Method::POST, &test_path(&tiny_id), None).await;
    s.call(429, Method::POST, &test_path(&tiny_id), None).await;
    s.call(404, Method::POST, &test_path(MISSING_ID), None)
        .await;

    // status and logs
    for (expected, id) in [
        (200, stripe_id.as_str()),
        (200, refused_id.as_str()),
        (200, hook_id.as_str()),
        (404, MISSING_ID),
    ] {
        s.call(
            expected,
            Method::GET,
            &format!("/api/integrations/{id}/status"),
            None,
        )
        .await;
    }
    let logs = format!("/api/integrations/{stripe_id}/logs");
    s.call(200, Method::GET, &logs, None).await;
    let first = s
        .call(
            200,
            Method::GET,
            &format!("{logs}?action=test&limit=1"),
            None,
        )
        .await;
    let cursor = serde_json::from_str::<Value>(&first.text)
        .ok()
        .and_then(|body| body["nextCursor"].as_str().map(url_encode));
    match cursor {
        Some(cursor) => {
            s.call(
                200,
                Method::GET,
                &format!("{logs}?action=test&limit=1&cursor={cursor}"),
                None,
            )
            .await;
        }
        None => s
            .conformance
            .violations
            .push("(scenario) expected a second page of test logs".into()),
    }
    s.call(200, Method::GET, &format!("{logs}?status=failed"), None)
        .await;
    s.call(200, Method::GET, &format!("{logs}?action=sync"), None)
        .await;

    // sync: queued (202), a second one while it is queued or running (409), an entity the
    // integration does not import and a body that is not one (400), an unknown integration (404)
    let sync = format!("/api/integrations/{stripe_id}/sync");
    s.call(
        400,
        Method::POST,
        &sync,
        Some(&json!({"entities": ["nope"]})),
    )
    .await;
    s.call(400, Method::POST, &sync, Some(&json!({"full": "yes"})))
        .await;
    s.call(
        202,
        Method::POST,
        &sync,
        Some(&json!({"entities": ["contact"], "full": true})),
    )
    .await;
    s.call(409, Method::POST, &sync, None).await;
    s.call(
        404,
        Method::POST,
        "/api/integrations/int_00000000000000000000000000/sync",
        None,
    )
    .await;

    // actions: a success, an input the schema refuses, an unknown action, a provider error; and
    // the proxy, every method (the provider's own answers pass through: `default`)
    let tiny = json!({"provider": "tiny_actions", "name": "Tiny", "credentials": {"apiKey": "tiny-key-0001"}});
    let tiny_id = id_of(
        &s.call(201, Method::POST, "/api/integrations", Some(&tiny))
            .await,
    );
    let actions = format!("/api/integrations/{tiny_id}/actions");
    s.call(
        200,
        Method::POST,
        &format!("{actions}/ping"),
        Some(&json!({"note": "hi"})),
    )
    .await;
    s.call(
        400,
        Method::POST,
        &format!("{actions}/ping"),
        Some(&json!({"note": 5})),
    )
    .await;
    s.call(
        404,
        Method::POST,
        &format!("{actions}/nope"),
        Some(&json!({})),
    )
    .await;
    // a provider's error is a 502 by design (checked like the refresh's 502 above)
    let lost = format!("{actions}/lost");
    let reply = app.send(acme(Method::POST, &lost)).await;
    s.conformance.check("POST", &lost, &reply);
    if reply.status != 502 {
        s.conformance.record(
            "POST",
            &lost,
            &reply,
            vec!["(scenario) expected status 502".to_string()],
        );
    }
    let proxied = format!("/api/integrations/{tiny_id}/proxy/ping");
    s.call(200, Method::GET, &format!("{proxied}?note=hi"), None)
        .await;
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        s.call(404, method, &proxied, Some(&json!({"a": 1}))).await;
    }
    s.call(
        404,
        Method::GET,
        &format!("/api/integrations/{MISSING_ID}/proxy/ping"),
        None,
    )
    .await;
    s.call(
        200,
        Method::GET,
        &format!("/api/integrations/{refused_id}/logs"),
        None,
    )
    .await;
    for invalid in ["?action=dance", "?status=meh", "?limit=0", "?cursor=forged"] {
        s.call(400, Method::GET, &format!("{logs}{invalid}"), None)
            .await;
    }
    s.call(
        404,
        Method::GET,
        &format!("/api/integrations/{MISSING_ID}/logs"),
        None,
    )
    .await;

    // records: pages followed by cursor, both filters, an entity without records, the errors
    let store =
        hub_shared::services::Services::new(app.stack.config.clone(), &hub_tests::sdk_config())
            .expect("services")
            .store;
    let tenant = hub_shared::domain::TenantId::parse("acme").expect("tenant");
    let integration = hub_shared::domain::IntegrationId::parse(&stripe_id).expect("integration id");
    let meeting = hub_shared::events::EntityName::parse("meeting").expect("entity");
    for (remote_id, data) in [
        ("evt-1", json!({"title": "פגישה", "room": {"floor": 2}})),
        (
            "evt-2",
            json!({"title": "اجتماع 📅", "attendees": ["a@example.com"], "cost": 12.5}),
        ),
        (
            "evt-3",
            json!({"title": "جلسه", "notes": null, "allDay": true}),
        ),
    ] {
        let remote_id = hub_shared::domain::RemoteId::parse(remote_id).expect("remote id");
        let Value::Object(data) = data else {
            unreachable!("an object")
        };
        store
            .upsert_record(
                &tenant,
                &integration,
                &meeting,
                &remote_id,
                data,
                hub_shared::events::RecordSource::Integration(integration.clone()),
            )
            .await
            .expect("record stored");
    }
    store
        .soft_delete_record(
            &tenant,
            &integration,
            &meeting,
            &hub_shared::domain::RemoteId::parse("evt-3").expect("remote id"),
        )
        .await
        .expect("record deleted");
    let records = format!("/api/integrations/{stripe_id}/records/meeting");
    s.call(200, Method::GET, &records, None).await;
    let first = s
        .call(200, Method::GET, &format!("{records}?limit=1"), None)
        .await;
    match serde_json::from_str::<Value>(&first.text)
        .ok()
        .and_then(|body| body["nextCursor"].as_str().map(url_encode))
    {
        Some(cursor) => {
            s.call(
                200,
                Method::GET,
                &format!("{records}?limit=1&cursor={cursor}"),
                None,
            )
            .await;
        }
        None => s
            .conformance
            .violations
            .push("(scenario) expected a second page of records".into()),
    }
    s.call(
        200,
        Method::GET,
        &format!("{records}?includeDeleted=true&modifiedAfter=2026-01-01T00:00:00%2B02:00"),
        None,
    )
    .await;
    s.call(
        200,
        Method::GET,
        &format!("/api/integrations/{stripe_id}/records/payment"),
        None,
    )
    .await;
    for invalid in [
        "?includeDeleted=yes",
        "?modifiedAfter=yesterday",
        "?limit=0",
        "?cursor=forged",
    ] {
        s.call(400, Method::GET, &format!("{records}{invalid}"), None)
            .await;
    }
    for entity in ["integration", "9lives", "meeting-room"] {
        s.call(
            400,
            Method::GET,
            &format!("/api/integrations/{stripe_id}/records/{entity}"),
            None,
        )
        .await;
    }
    s.call(
        404,
        Method::GET,
        &format!("/api/integrations/{MISSING_ID}/records/meeting"),
        None,
    )
    .await;

    // OAuth connections (the oauth function)
    oauth_connections(&mut s, &auth_server, &stripe_id).await;

    // what a fuzzer sends: ids and slugs outside the documented pattern, huge or odd path segments,
    // foreign cursors, deep or odd JSON. Any documented status will do, but no 5xx.
    let long_id = format!("int_{}", "a".repeat(3000));
    for path in [
        "/api/integrations/abc".to_string(),
        format!("/api/integrations/{long_id}"),
        format!("/api/integrations/{long_id}/status"),
        format!("/api/integrations/{long_id}/logs"),
        "/api/integrations/int_%F0%9F%A6%80%00".to_string(),
        "/api/integrations/int_%2F..%2Fx/status".to_string(),
        format!("/api/providers/{}", "S".repeat(3000)),
        "/api/providers/%C3%A9".to_string(),
        "/api/integrations?limit=".to_string(),
        "/api/integrations?provider=".to_string(),
        "/api/integrations?limit=1&limit=2".to_string(),
    ] {
        s.call_probe(Method::GET, &path, None).await;
    }
    for method in [Method::PATCH, Method::DELETE, Method::POST] {
        let path = if method == Method::POST {
            format!("/api/integrations/{long_id}/test")
        } else {
            format!("/api/integrations/{long_id}")
        };
        s.call_probe(method, &path, Some(&json!({"name": "x"})))
            .await;
    }
    let integrations_cursor = serde_json::from_str::<Value>(
        &s.call(200, Method::GET, "/api/integrations?limit=1", None)
            .await
            .text,
    )
    .ok()
    .and_then(|body| body["nextCursor"].as_str().map(url_encode))
    .unwrap_or_default();
    s.call(
        400,
        Method::GET,
        &format!("{logs}?cursor={integrations_cursor}"),
        None,
    )
    .await;
    let foreign = app.request(
        Method::GET,
        "globex",
        &format!("/api/integrations?limit=1&cursor={integrations_cursor}"),
    );
    s.send(
        Some(400),
        Method::GET,
        "/api/integrations?limit=1&cursor=",
        foreign,
    )
    .await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for body in [
        format!(r#"{{"provider": "stripe", "name": "deep", "config": {{"x": {deep}}}}}"#),
        r#"{"provider": "stripe", "name": "a", "name": "b"}"#.to_string(),
        r#"{"provider": "stripe", "name": "nul \u0000 inside", "connectionKey": "nul"}"#
            .to_string(),
        r#"{"provider": "stripe", "name": "lone \ud800 surrogate"}"#.to_string(),
        r#"{"provider": "stripe", "name": "big", "connectionKey": "big", "config": {"n": 1e400}}"#
            .to_string(),
        format!(
            r#"{{"provider": "stripe", "name": "x", "connectionKey": "{}"}}"#,
            "k".repeat(65)
        ),
        r#"{"provider": "stripe", "name": "x", "connectionKey": "cfg", "config": "not an object"}"#
            .to_string(),
    ] {
        let request = acme(Method::POST, "/api/integrations")
            .header("content-type", "application/json")
            .body(body);
        s.send(None, Method::POST, "/api/integrations", request)
            .await;
    }
    let request = acme(Method::PATCH, &format!("/api/integrations/{hook_id}"))
        .header("content-type", "application/json; charset=latin1")
        .body(r#"{"name": "x"}"#);
    s.send(
        None,
        Method::PATCH,
        &format!("/api/integrations/{hook_id}"),
        request,
    )
    .await;

    // event types: the fixed ones, the catalog's entities and those of this tenant's sync settings
    s.call(200, Method::GET, "/api/event-types", None).await;
    s.call(200, Method::GET, "/api/event-types?limit=1", None)
        .await;

    // outgoing webhooks: create (secret once), list, read, versioned update, rotation, delete
    let hook = s
        .call(
            201,
            Method::POST,
            "/api/webhooks/outgoing",
            Some(
                &json!({"name": "CRM updates", "url": "http://127.0.0.1:9/hooks",
                         "triggers": [{"entityType": "integration", "events": ["connected"]},
                                      {"entityType": "meeting", "events": ["*"]}],
                         "payloadTemplate": "{\"type\": \"{{type}}\"}",
                         "rateLimit": {"requests": 2, "perSeconds": 1}}),
            ),
        )
        .await
        .json();
    let hook_path = format!(
        "/api/webhooks/outgoing/{}",
        hook["id"].as_str().expect("webhook id")
    );
    s.call(
        400,
        Method::POST,
        "/api/webhooks/outgoing",
        Some(&json!({"name": "Bad", "url": "ftp://x", "triggers": []})),
    )
    .await;
    s.call(200, Method::GET, "/api/webhooks/outgoing", None)
        .await;
    s.call(200, Method::GET, "/api/webhooks/outgoing?limit=1", None)
        .await;
    s.call(200, Method::GET, &hook_path, None).await;
    let patch = s
        .app
        .request(Method::PATCH, "acme", &hook_path)
        .header("if-match", "\"1\"")
        .json(&json!({"retryAttempts": 5, "rateLimit": null}));
    s.send(Some(200), Method::PATCH, &hook_path, patch).await;
    let stale = s
        .app
        .request(Method::PATCH, "acme", &hook_path)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Stale"}));
    s.send(Some(412), Method::PATCH, &hook_path, stale).await;
    s.call(
        400,
        Method::PATCH,
        &hook_path,
        Some(&json!({"timeoutSeconds": 31})),
    )
    .await;
    s.call(
        200,
        Method::POST,
        &format!(
            "/api/webhooks/{}/rotate-secret",
            hook["id"].as_str().unwrap_or_default()
        ),
        None,
    )
    .await;

    // deliveries: a test that fails (nothing listens on port 9) and one that succeeds, their logs,
    // a retry of each (202, then 409 for the succeeded one), a recover, and the 404s and 400s
    let outgoing_id = hook["id"].as_str().unwrap_or_default().to_string();
    s.call(
        200,
        Method::POST,
        &format!("/api/webhooks/{outgoing_id}/test"),
        None,
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&provider)
        .await;
    let accepting = s
        .call(
            201,
            Method::POST,
            "/api/webhooks/outgoing",
            Some(
                &json!({"name": "Accepting", "url": format!("{}/hooks", provider.uri()),
                         "triggers": [{"entityType": "meeting", "events": ["created"]}]}),
            ),
        )
        .await
        .json();
    let accepting_id = accepting["id"].as_str().unwrap_or_default().to_string();
    s.call(
        200,
        Method::POST,
        &format!("/api/webhooks/{accepting_id}/test"),
        None,
    )
    .await;
    let failed_logs = s
        .call(
            200,
            Method::GET,
            &format!("/api/webhooks/{outgoing_id}/logs"),
            None,
        )
        .await
        .json();
    s.call(
        200,
        Method::GET,
        &format!("/api/webhooks/{outgoing_id}/logs?limit=1"),
        None,
    )
    .await;
    s.call(
        400,
        Method::GET,
        &format!("/api/webhooks/{outgoing_id}/logs?limit=0"),
        None,
    )
    .await;
    s.call(
        404,
        Method::GET,
        "/api/webhooks/whout_000000000000000000000000000000/logs",
        None,
    )
    .await;
    let succeeded_logs = s
        .call(
            200,
            Method::GET,
            &format!("/api/webhooks/{accepting_id}/logs"),
            None,
        )
        .await
        .json();
    let failed_log = failed_logs["items"][0]["id"]
        .as_str()
        .unwrap_or("log_missing")
        .to_string();
    let succeeded_log = succeeded_logs["items"][0]["id"]
        .as_str()
        .unwrap_or("log_missing")
        .to_string();
    s.call(
        200,
        Method::GET,
        &format!("/api/webhook-logs/{failed_log}"),
        None,
    )
    .await;
    s.call(
        200,
        Method::GET,
        &format!("/api/webhook-logs/{succeeded_log}"),
        None,
    )
    .await;
    s.call(
        404,
        Method::GET,
        "/api/webhook-logs/log_00000000000000000000000000",
        None,
    )
    .await;
    s.call(
        202,
        Method::POST,
        &format!("/api/webhook-logs/{failed_log}/retry"),
        None,
    )
    .await;
    s.call(
        409,
        Method::POST,
        &format!("/api/webhook-logs/{succeeded_log}/retry"),
        None,
    )
    .await;
    s.call(
        404,
        Method::POST,
        "/api/webhook-logs/log_00000000000000000000000000/retry",
        None,
    )
    .await;
    let since = hub_shared::store::timestamp(chrono::Utc::now() - chrono::Duration::hours(1));
    s.call(
        202,
        Method::POST,
        &format!("/api/webhooks/outgoing/{accepting_id}/recover"),
        Some(&json!({"since": since})),
    )
    .await;
    s.call(
        400,
        Method::POST,
        &format!("/api/webhooks/outgoing/{accepting_id}/recover"),
        Some(&json!({"since": "2026-12-01T10:00:00Z", "until": "2000-01-01T00:00:00Z"})),
    )
    .await;
    s.call(
        404,
        Method::POST,
        "/api/webhooks/outgoing/whout_000000000000000000000000000000/recover",
        Some(&json!({"since": since})),
    )
    .await;
    let text = s
        .app
        .request(
            Method::POST,
            "acme",
            &format!("/api/webhooks/outgoing/{accepting_id}/recover"),
        )
        .header("content-type", "text/plain")
        .body("since");
    s.send(
        Some(415),
        Method::POST,
        &format!("/api/webhooks/outgoing/{accepting_id}/recover"),
        text,
    )
    .await;
    s.call(
        404,
        Method::POST,
        "/api/webhooks/whout_000000000000000000000000000000/test",
        None,
    )
    .await;

    s.call(204, Method::DELETE, &hook_path, None).await;
    s.call(404, Method::GET, &hook_path, None).await;
    s.call(
        404,
        Method::POST,
        "/api/webhooks/whout_000000000000000000000000000000/rotate-secret",
        None,
    )
    .await;

    // incoming webhooks: create for each kind of verification (a generated secret and the forward
    // secret once), the documented errors, list, read, versioned update, rotations, a dry run,
    // receipts, delete
    let standard_in = s
        .call(
            201,
            Method::POST,
            "/api/webhooks/incoming",
            Some(&json!({"name": "Standard in", "verification": {"scheme": "standard"}})),
        )
        .await;
    let standard_in = id_of(&standard_in);
    let stripe_in = s
        .call(
            201,
            Method::POST,
            "/api/webhooks/incoming",
            Some(&json!({"name": "Stripe in", "description": "payments", "integrationId": hook_id,
                "verification": {"scheme": "stripe", "secret": "whsec_given_by_stripe_0123"},
                "filters": {"headers": {"X-Event-Type": "payment"}, "bodyPath": "type", "bodyValue": "invoice.paid"},
                "actions": [
                    {"type": "create_entity", "config": {"entityType": "payment", "idPath": "data.object.id",
                      "fieldMappings": {"amount": "data.object.amount_paid"}}},
                    {"type": "forward", "config": {"forwardUrl": "http://127.0.0.1:9/hooks", "forwardHeaders": {"X-Relay": "hub"}}},
                    {"type": "trigger_sync", "config": {"entities": ["event"]}},
                    {"type": "trigger_automation", "config": {"automationId": "auto_42"}}]})),
        )
        .await;
    let stripe_in = id_of(&stripe_in);

    // the public receiver: accepted, duplicate, ignored, refused, unknown, disabled, too large; and
    // the GET handshake
    let receiver = s
        .call(
            201,
            Method::POST,
            "/api/webhooks/incoming",
            Some(
                &json!({"name": "Receiver", "verification": {"scheme": "standard"},
                "filters": {"headers": {}, "bodyPath": "type", "bodyValue": "paid"}}),
            ),
        )
        .await;
    let receiver_secret = receiver.json()["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let receiver_path = format!("/api/webhooks/tenant/acme/{}", id_of(&receiver));
    let signed = |id: &str, body: &'static str| {
        let keys = hub_shared::webhooks::sign::SigningKeys::new(
            hub_shared::webhooks::sign::WebhookSecret::parse(&receiver_secret).expect("secret"),
        );
        let headers = hub_shared::webhooks::sign::Signing::Standard
            .sign(&keys, id, chrono::Utc::now().timestamp(), body.as_bytes())
            .expect("signed");
        let mut request = app
            .http
            .post(format!("{}{receiver_path}", app.url))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request
    };
    s.send(
        Some(202),
        Method::POST,
        &receiver_path,
        signed("msg_conformance_1", r#"{"type":"paid"}"#),
    )
    .await;
    s.send(
        Some(200),
        Method::POST,
        &receiver_path,
        signed("msg_conformance_1", r#"{"type":"paid"}"#),
    )
    .await;
    s.send(
        Some(200),
        Method::POST,
        &receiver_path,
        signed("msg_conformance_2", r#"{"type":"other"}"#),
    )
    .await;
    let unsigned = s
        .anonymous(Method::POST, &receiver_path)
        .header("content-type", "application/json")
        .body(r#"{"type":"paid"}"#);
    s.send(Some(401), Method::POST, &receiver_path, unsigned)
        .await;
    let unknown_receiver = "/api/webhooks/tenant/acme/whin_000000000000000000000000000000";
    let unknown = s.anonymous(Method::POST, unknown_receiver).body("{}");
    s.send(Some(404), Method::POST, unknown_receiver, unknown)
        .await;
    let huge = s
        .anonymous(Method::POST, &receiver_path)
        .body(vec![b'x'; 1024 * 1024 + 1]);
    s.send(Some(413), Method::POST, &receiver_path, huge).await;
    let disabled = s
        .call(
            201,
            Method::POST,
            "/api/webhooks/incoming",
            Some(&json!({"name": "Off", "isEnabled": false, "verification": {"scheme": "none"}})),
        )
        .await;
    let disabled_path = format!("/api/webhooks/tenant/acme/{}", id_of(&disabled));
    let off = s.anonymous(Method::POST, &disabled_path).body("{}");
    s.send(Some(410), Method::POST, &disabled_path, off).await;
    let off = s.anonymous(Method::GET, &disabled_path);
    s.send(Some(410), Method::GET, &disabled_path, off).await;
    let meta = s
        .call(
            201,
            Method::POST,
            "/api/webhooks/incoming",
            Some(&json!({"name": "Meta in", "verification": {"scheme": "meta", "secret": "app-secret", "verifyToken": "tok"}})),
        )
        .await;
    let meta_path = format!("/api/webhooks/tenant/acme/{}", id_of(&meta));
    for (query, status) in [
        (
            "?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=challenge-42",
            200,
        ),
        (
            "?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42",
            403,
        ),
        ("", 400),
    ] {
        let path = format!("{meta_path}{query}");
        let request = s.anonymous(Method::GET, &path);
        s.send(Some(status), Method::GET, &meta_path, request).await;
    }
    let request = s.anonymous(Method::GET, &receiver_path);
    s.send(Some(405), Method::GET, &receiver_path, request)
        .await;
    let request = s.anonymous(Method::GET, unknown_receiver);
    s.send(Some(404), Method::GET, unknown_receiver, request)
        .await;
    for verification in [
        json!({"scheme": "hmac_sha256", "signatureHeader": "X-Acme-Signature"}),
        json!({"scheme": "meta", "secret": "meta-app-secret", "verifyToken": "meta-token"}),
        json!({"scheme": "sendgrid", "publicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXuzuTKHZlDUwSFJLHIYRy2BK8zM/GkXNh1naOr069jmxC4nc6BznudbZHkmBc83C2TgFFIwi80DdeC2pCHv+yA=="}),
        json!({"scheme": "google_channel"}),
        json!({"scheme": "none"}),
    ] {
        s.call(
            201,
            Method::POST,
            "/api/webhooks/incoming",
            Some(&json!({"name": "In", "verification": verification})),
        )
        .await;
    }
    for invalid in [
        json!({"name": "In", "verification": {"scheme": "stripe"}}),
        json!({"name": "In", "verification": {"scheme": "none", "secret": "x"}}),
        json!({"name": "In", "verification": {"scheme": "standard"},
               "actions": [{"type": "create_entity", "config": {"entityType": "payment", "idPath": "id"}}]}),
        json!({"name": "In", "verification": {"scheme": "standard"}, "filters": {"bodyPath": "type"}}),
        json!({"name": "In"}),
    ] {
        s.call(400, Method::POST, "/api/webhooks/incoming", Some(&invalid))
            .await;
    }
    let text = acme(Method::POST, "/api/webhooks/incoming")
        .header("content-type", "text/plain")
        .body("{}");
    s.send(Some(415), Method::POST, "/api/webhooks/incoming", text)
        .await;
    let too_large = acme(Method::POST, "/api/webhooks/incoming")
        .header("content-type", "application/json")
        .body(json!({"name": "x", "description": "a".repeat(1024 * 1024 + 1)}).to_string());
    s.send(Some(413), Method::POST, "/api/webhooks/incoming", too_large)
        .await;
    s.call(200, Method::GET, "/api/webhooks/incoming", None)
        .await;
    let first = s
        .call(200, Method::GET, "/api/webhooks/incoming?limit=1", None)
        .await;
    if let Some(cursor) = serde_json::from_str::<Value>(&first.text)
        .ok()
        .and_then(|body| body["nextCursor"].as_str().map(url_encode))
    {
        s.call(
            200,
            Method::GET,
            &format!("/api/webhooks/incoming?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    }
    s.call(
        400,
        Method::GET,
        "/api/webhooks/incoming?cursor=forged",
        None,
    )
    .await;
    let missing_in = "/api/webhooks/incoming/whin_000000000000000000000000000000";
    let stripe_in_path = format!("/api/webhooks/incoming/{stripe_in}");
    s.call(200, Method::GET, &stripe_in_path, None).await;
    s.call(404, Method::GET, missing_in, None).await;
    let patch = acme(Method::PATCH, &stripe_in_path)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Stripe invoices", "integrationId": null, "actions": [],
                      "verification": {"scheme": "stripe", "secret": "whsec_rolled_by_stripe_0123"}}));
    s.send(Some(200), Method::PATCH, &stripe_in_path, patch)
        .await;
    let stale = acme(Method::PATCH, &stripe_in_path)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Stale"}));
    s.send(Some(412), Method::PATCH, &stripe_in_path, stale)
        .await;
    s.call(
        200,
        Method::PATCH,
        &format!("/api/webhooks/incoming/{standard_in}"),
        Some(&json!({"verification": {"scheme": "google_channel"},
                     "actions": [{"type": "forward", "config": {"forwardUrl": "http://127.0.0.1:9/x"}}]})),
    )
    .await;
    s.call(
        400,
        Method::PATCH,
        &stripe_in_path,
        Some(&json!({"verification": {"scheme": "stripe", "publicKey": "AAAA"}})),
    )
    .await;
    s.call(
        404,
        Method::PATCH,
        missing_in,
        Some(&json!({"name": "ghost"})),
    )
    .await;
    let text = acme(Method::PATCH, &stripe_in_path)
        .header("content-type", "text/plain")
        .body(r#"{"name": "x"}"#);
    s.send(Some(415), Method::PATCH, &stripe_in_path, text)
        .await;
    let too_large = acme(Method::PATCH, &stripe_in_path)
        .json(&json!({"description": "a".repeat(1024 * 1024 + 1)}));
    s.send(Some(413), Method::PATCH, &stripe_in_path, too_large)
        .await;
    let rotate_in = |id: &str, query: &str| format!("/api/webhooks/{id}/rotate-secret{query}");
    s.call(200, Method::POST, &rotate_in(&standard_in, ""), None)
        .await;
    s.call(
        200,
        Method::POST,
        &rotate_in(&standard_in, "?target=forward"),
        None,
    )
    .await;
    s.call(400, Method::POST, &rotate_in(&stripe_in, ""), None)
        .await;
    s.call(
        400,
        Method::POST,
        &rotate_in(&standard_in, "?target=banana"),
        None,
    )
    .await;
    s.call(
        404,
        Method::POST,
        &rotate_in("whin_000000000000000000000000000000", ""),
        None,
    )
    .await;
    let dry_run = format!("/api/webhooks/{standard_in}/test");
    s.call(
        200,
        Method::POST,
        &dry_run,
        Some(&json!({"body": {"type": "invoice.paid"}, "headers": {"X-Event-Type": "payment"}})),
    )
    .await;
    s.call(
        200,
        Method::POST,
        &format!("/api/webhooks/{stripe_in}/test"),
        Some(&json!({"body": "not json"})),
    )
    .await;
    s.call(400, Method::POST, &dry_run, Some(&json!({"headers": {}})))
        .await;
    let text = acme(Method::POST, &dry_run)
        .header("content-type", "text/plain")
        .body("{}");
    s.send(Some(415), Method::POST, &dry_run, text).await;
    let too_large =
        acme(Method::POST, &dry_run).json(&json!({"body": "a".repeat(1024 * 1024 + 1)}));
    s.send(Some(413), Method::POST, &dry_run, too_large).await;
    s.call(
        404,
        Method::POST,
        "/api/webhooks/whin_000000000000000000000000000000/test",
        Some(&json!({"body": {}})),
    )
    .await;
    let services =
        hub_shared::services::Services::new(app.stack.config.clone(), &hub_tests::sdk_config())
            .expect("services");
    let receipt = hub_shared::store::ReceiptLog {
        id: hub_shared::domain::LogId::generate(),
        webhook_id: hub_shared::domain::IncomingWebhookId::parse(&standard_in)
            .unwrap_or_else(|_| hub_shared::domain::IncomingWebhookId::generate()),
        event_id: Some(hub_shared::domain::EventId::generate()),
        status: hub_shared::store::ReceiptOutcome::Failed,
        error_code: None,
        error_message: Some("an action failed".into()),
        received_at: hub_shared::store::timestamp(chrono::Utc::now()),
        completed_at: Some(hub_shared::store::timestamp(chrono::Utc::now())),
        request: hub_shared::store::ReceivedSnapshot {
            method: "POST".into(),
            headers: BTreeMap::from([("webhook-signature".to_string(), "[redacted]".to_string())]),
            content_type: Some("application/json".into()),
            body_bytes: 12,
        },
        actions: vec![hub_shared::store::ActionOutcome {
            r#type: "forward".into(),
            status: "failed".into(),
            attempts: 5,
            error_message: Some("the target answered 500".into()),
            result: Some(json!({"responseStatus": 500})),
        }],
    };
    let acme_tenant = hub_shared::domain::TenantId::parse("acme").expect("tenant");
    if let Err(error) = services.store.put_receipt_log(&acme_tenant, &receipt).await {
        s.conformance
            .violations
            .push(format!("(scenario) the receipt was not written: {error}"));
    }
    s.call(
        200,
        Method::GET,
        &format!("/api/webhooks/{standard_in}/logs"),
        None,
    )
    .await;
    s.call(
        200,
        Method::GET,
        &format!("/api/webhook-logs/{}", receipt.id),
        None,
    )
    .await;
    s.call(
        409,
        Method::POST,
        &format!("/api/webhook-logs/{}/retry", receipt.id),
        None,
    )
    .await;
    s.call(
        404,
        Method::GET,
        "/api/webhooks/whin_000000000000000000000000000000/logs",
        None,
    )
    .await;
    s.call(204, Method::DELETE, &stripe_in_path, None).await;
    s.call(404, Method::DELETE, &stripe_in_path, None).await;

    // delete
    s.call(204, Method::DELETE, &stripe_path, None).await;
    s.call(404, Method::DELETE, &stripe_path, None).await;

    // no token (answered by the gateway), and a token without the tenant claim (by the function)
    for (method_name, template) in s.conformance.operations() {
        if template == "/api/health"
            || template == "/api/openapi.json"
            || template.starts_with("/api/webhooks/tenant/")
            || template.starts_with("/api/integrations/callback/")
        {
            continue;
        }
        let path = template
            .replace("{id}", MISSING_ID)
            .replace("{logId}", "log_00000000000000000000000000")
            .replace("{entity}", "meeting")
            .replace("{action}", "ping")
            .replace("{path}", "ping")
            .replace("{slug}", "stripe")
            .replace("{provider}", OAUTH_SLUG);
        let method: Method = method_name.parse().expect("method");
        let request = s
            .anonymous(method.clone(), &path)
            .header("content-type", "application/json")
            .body("{}");
        s.send(Some(401), method, &path, request).await;
    }
    let now = chrono::Utc::now().timestamp();
    let no_tenant = hub_local::jwt::sign_hs256(
        &json!({"sub": "u", "iss": app.options.jwt_issuer, "aud": app.options.jwt_audience,
                "iat": now, "exp": now + 600}),
        app.options.jwt_secret.as_bytes(),
    );
    let request = s
        .anonymous(Method::GET, "/api/integrations")
        .bearer_auth(no_tenant);
    s.send(Some(401), Method::GET, "/api/integrations", request)
        .await;

    // what the document describes only in prose: a wrong method (405 + Allow), an unknown path (404)
    for (method, path) in [
        (Method::PUT, format!("/api/integrations/{hook_id}")),
        (Method::DELETE, "/api/providers".to_string()),
        (Method::POST, "/api/health".to_string()),
        (Method::OPTIONS, "/api/integrations".to_string()),
        (
            Method::DELETE,
            format!("/api/providers/{OAUTH_SLUG}/oauth-app"),
        ),
        (
            Method::POST,
            format!("/api/integrations/connect/{OAUTH_SLUG}"),
        ),
        (
            Method::POST,
            format!("/api/integrations/callback/{OAUTH_SLUG}"),
        ),
        (Method::GET, format!("/api/integrations/{hook_id}/refresh")),
    ] {
        let reply = app.send(acme(method.clone(), &path)).await;
        s.conformance
            .check_outside_operations(method.as_str(), &path, &reply, 405);
    }
    let reply = app.get("acme", "/api/no-such-thing").await;
    s.conformance
        .check_outside_operations("GET", "/api/no-such-thing", &reply, 404);

    // then every operation was exercised and no response contradicts the document.
    let conformance = s.conformance;
    let exercised: BTreeSet<(String, String)> = conformance.exercised.keys().cloned().collect();
    let routes: BTreeSet<(String, String)> = integrations::ROUTES
        .iter()
        .chain(inbound_webhook::ROUTES)
        .chain(oauth::ROUTES)
        .map(|(m, p)| (m.to_string(), p.replace("{*path}", "{path}")))
        .collect();
    let unexercised: Vec<_> = conformance
        .operations()
        .union(&routes)
        .filter(|op| !exercised.contains(*op))
        .cloned()
        .collect();
    eprintln!(
        "statuses produced, by operation: {:?}",
        conformance.exercised
    );
    eprintln!(
        "documented statuses not produced by the scenario: {:?}",
        conformance.unexercised_statuses()
    );
    assert!(
        unexercised.is_empty(),
        "operations the scenario did not call: {unexercised:?}"
    );
    assert!(
        conformance.violations.is_empty(),
        "{} responses contradict the OpenAPI document:\n{}",
        conformance.violations.len(),
        conformance.violations.join("\n")
    );
}

/// A DynamoDB endpoint that forwards to moto until told to throttle, then answers every DynamoDB
/// request with `ThrottlingException` (what AWS does when a table's capacity is exhausted).
struct ThrottlingProxy {
    upstream: String,
    throttle: Arc<AtomicBool>,
}

impl wiremock::Respond for ThrottlingProxy {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let is_dynamodb = request
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|target| target.starts_with("DynamoDB_"));
        if is_dynamodb && self.throttle.load(Ordering::SeqCst) {
            return ResponseTemplate::new(400)
                .insert_header("content-type", "application/x-amz-json-1.0")
                .set_body_string(
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
                );
        }
        // wiremock calls this synchronously on its own thread: forward from a helper thread.
        let url = match request.url.query() {
            Some(query) => format!("{}{}?{query}", self.upstream, request.url.path()),
            None => format!("{}{}", self.upstream, request.url.path()),
        };
        let method = request.method.clone();
        let headers = request.headers.clone();
        let body = request.body.clone();
        let forwarded = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut outgoing = reqwest::Client::new().request(method, url).body(body);
                for (name, value) in &headers {
                    if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
                        outgoing = outgoing.header(name, value);
                    }
                }
                let response = outgoing.send().await.expect("moto answers");
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.bytes().await.expect("moto body").to_vec();
                (status, headers, body)
            })
        })
        .join()
        .expect("forwarding thread");
        let (status, headers, body) = forwarded;
        let mut template = ResponseTemplate::new(status);
        for (name, value) in &headers {
            if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
                template = template.append_header(name, value);
            }
        }
        template.set_body_bytes(body)
    }
}

#[tokio::test]
async fn responses_while_dynamodb_throttles_match_the_openapi_document() {
    // Given the local stack whose DynamoDB endpoint is a proxy in front of moto, and an integration,
    hub_shared::http_client::install_default_crypto_provider();
    let throttle = Arc::new(AtomicBool::new(false));
    let proxy = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ThrottlingProxy {
            upstream: hub_tests::moto_endpoint().to_string(),
            throttle: throttle.clone(),
        })
        .mount(&proxy)
        .await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(proxy.uri())
        // every attempt would be throttled alike: one is enough, and keeps the test fast
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "hub-tests"),
        ))
        .build();
    let mut options = hub_local::stack::StackOptions::new(
        hub_local::provision::StackNames::with_prefix(&hub_tests::unique_name("hub")),
        "127.0.0.1:0".parse().expect("address"),
    );
    // The proxy forwards synchronously: a 20 s long poll through it would hold its threads.
    options.start_workers = false;
    let stack = hub_local::stack::LocalStack::start(&sdk, options.clone())
        .await
        .expect("local stack starts");
    let token = hub_local::jwt::dev_token(
        options.jwt_secret.as_bytes(),
        &options.tenant_claim,
        "acme",
        "user-acme",
        &options.jwt_issuer,
        &options.jwt_audience,
        3600,
    );
    let http = reqwest::Client::new();
    let send = |method: Method, path: &str, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{}{path}", stack.url))
            .bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("the gateway answers");
            Reply {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                text: response.text().await.expect("body"),
            }
        }
    };
    let created = send(
        Method::POST,
        "/api/integrations",
        Some(json!({"provider": "stripe", "name": "Payments", "credentials": {"secretKey": SECRET_KEY}})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = id_of(&created);
    let incoming = hub_shared::domain::IncomingWebhookId::generate();

    // when DynamoDB throttles every request and a client calls each operation that reads or writes it,
    throttle.store(true, Ordering::SeqCst);
    let mut conformance = Conformance::new();
    let calls = [
        (
            Method::POST,
            "/api/integrations".to_string(),
            Some(
                json!({"provider": "stripe", "name": "Other", "connectionKey": "other", "credentials": {"secretKey": SECRET_KEY}}),
            ),
        ),
        (Method::GET, "/api/integrations".to_string(), None),
        (Method::GET, format!("/api/integrations/{id}"), None),
        (
            Method::PATCH,
            format!("/api/integrations/{id}"),
            Some(json!({"name": "Renamed"})),
        ),
        (Method::GET, format!("/api/integrations/{id}/status"), None),
        (Method::GET, format!("/api/integrations/{id}/logs"), None),
        (
            Method::GET,
            format!("/api/integrations/{id}/records/meeting"),
            None,
        ),
        (Method::POST, format!("/api/integrations/{id}/test"), None),
        (Method::GET, "/api/event-types".to_string(), None),
        (
            Method::POST,
            "/api/webhooks/incoming".to_string(),
            Some(json!({"name": "In", "verification": {"scheme": "none"}})),
        ),
        (Method::GET, "/api/webhooks/incoming".to_string(), None),
        (
            Method::GET,
            format!("/api/webhooks/incoming/{incoming}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/webhooks/incoming/{incoming}"),
            Some(json!({"name": "Renamed"})),
        ),
        (
            Method::POST,
            format!("/api/webhooks/{incoming}/rotate-secret"),
            None,
        ),
        (
            Method::POST,
            format!("/api/webhooks/{incoming}/test"),
            Some(json!({"body": {}})),
        ),
        (Method::GET, format!("/api/webhooks/{incoming}/logs"), None),
        (
            Method::DELETE,
            format!("/api/webhooks/incoming/{incoming}"),
            None,
        ),
        (
            Method::PUT,
            "/api/providers/google_calendar/oauth-app".to_string(),
            Some(json!({"clientId": "throttled-client", "clientSecret": "throttled-secret"})),
        ),
        (
            Method::GET,
            "/api/providers/google_calendar/oauth-app".to_string(),
            None,
        ),
        (
            Method::GET,
            "/api/integrations/connect/google_calendar?returnUrl=http%3A%2F%2Flocalhost%2Fdone"
                .to_string(),
            None,
        ),
        (
            Method::GET,
            "/api/integrations/callback/google_calendar?state=some-state&code=some-code"
                .to_string(),
            None,
        ),
        (
            Method::POST,
            format!("/api/integrations/{id}/refresh"),
            None,
        ),
        (Method::DELETE, format!("/api/integrations/{id}"), None),
    ];
    let mut statuses = Vec::new();
    for (method, path, body) in calls {
        let reply = send(method.clone(), &path, body).await;
        statuses.push(format!("{method} {path} → {}", reply.status));
        conformance.check(method.as_str(), &path, &reply);
        if reply.status != 503 {
            // A throttled dependency is a retryable fault: 503 with Retry-After, not 500 or success.
            conformance.record(
                method.as_str(),
                &path,
                &reply,
                vec!["(scenario) expected status 503".to_string()],
            );
        }
    }
    throttle.store(false, Ordering::SeqCst);

    // then each answer is documented for its operation, with its body and headers.
    eprintln!("answers while throttled: {statuses:#?}");
    assert!(
        conformance.violations.is_empty(),
        "{} responses contradict the OpenAPI document:\n{}",
        conformance.violations.len(),
        conformance.violations.join("\n")
    );
    stack.stop().await.expect("stack stops");
}

/// Percent-encodes a cursor for a query string.
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
