//! The local stack's front door: one HTTP server that plays API Gateway (HTTP API, payload format 2.0)
//! for every HTTP function.
//!
//! Each request goes through what API Gateway does in AWS, in the same order:
//! 1. route selection — the most specific route wins: segment by segment from the left, a literal beats
//!    `{param}`, which beats greedy `{name+}`; then a method-specific route beats `ANY`; `$default`
//!    comes last. No route → 404 `{"message":"Not Found"}`.
//! 2. the JWT authorizer on non-public routes (HS256 locally, see [`crate::jwt`]) → 401 problem;
//! 3. the 10 MiB request body quota → 413 `{"message":"Request Entity Too Large"}`;
//! 4. the real payload 2.0 event JSON, turned into a `lambda_http::Request` by
//!    `lambda_http::request::from_str` — the same conversion the Lambda runtime performs — so the
//!    function sees exactly what it sees deployed;
//! 5. the integration: the function's `axum::Router`, with API Gateway's 30 s integration timeout
//!    (→ 503) and a crashed invocation answered as 500 `{"message":"Internal Server Error"}`.
//!
//! The function's response (status, headers, body) is streamed back unchanged, plus `apigw-requestid`
//! and, when the function did not set one, `x-request-id` (both the request id of step 4).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hub_shared::error::ApiError;
use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::jwt::{JwtError, JwtVerifier};
use crate::lambda::{LambdaFunction, LOCAL_ACCOUNT_ID};

/// API Gateway's request payload quota for HTTP APIs. Functions enforce their own, smaller limit.
pub const MAX_REQUEST_BODY_BYTES: usize = 10 * 1024 * 1024;

/// API Gateway's maximum (and default) integration timeout for HTTP APIs.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

const API_ID: &str = "local";
const STAGE: &str = "$default";

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const APIGW_REQUEST_ID: HeaderName = HeaderName::from_static("apigw-requestid");

/// One route of the HTTP API, as the SAM template declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRoute {
    /// `GET`, `POST`, ... or `ANY` (case-insensitive, as SAM accepts).
    pub method: String,
    /// `/api/integrations/{id}`, `/api/{proxy+}`, or `$default`.
    pub path: String,
    /// Logical name of the function serving the route, e.g. `IntegrationsFunction`.
    pub function: String,
    /// Public routes skip the JWT authorizer.
    pub public: bool,
}

impl From<crate::template::HttpRoute> for GatewayRoute {
    fn from(route: crate::template::HttpRoute) -> GatewayRoute {
        GatewayRoute {
            method: route.method,
            path: route.path,
            function: route.function,
            public: route.public,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("route `{method} {path}` is not a valid API Gateway route: {reason}")]
    InvalidRoute {
        method: String,
        path: String,
        reason: &'static str,
    },
    #[error("route `{0}` is declared twice")]
    DuplicateRoute(String),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the gateway server stopped with an error: {0}")]
    Serve(#[source] std::io::Error),
    #[error("the gateway server task crashed: {0}")]
    Crashed(String),
}

/// The front door: routes, the functions behind them, and the JWT authorizer.
pub struct Gateway {
    routes: Vec<Route>,
    functions: HashMap<String, axum::Router>,
    lambda_functions: HashMap<String, LambdaFunction>,
    verifier: JwtVerifier,
    integration_timeout: Duration,
}

impl Gateway {
    /// Fails when a route is not one API Gateway would accept, or a route key is declared twice.
    /// Functions referenced by no route are allowed; routes to unregistered functions are reported
    /// by [`Gateway::missing_functions`] and answered 502 at request time.
    pub fn new<R: Into<GatewayRoute>>(
        routes: impl IntoIterator<Item = R>,
        functions: HashMap<String, axum::Router>,
        verifier: JwtVerifier,
    ) -> Result<Gateway, GatewayError> {
        let mut parsed: Vec<Route> = Vec::new();
        for route in routes {
            let route = Route::parse(route.into())?;
            if parsed.iter().any(|r| r.key == route.key) {
                return Err(GatewayError::DuplicateRoute(route.key));
            }
            parsed.push(route);
        }
        Ok(Gateway {
            routes: parsed,
            functions,
            lambda_functions: HashMap::new(),
            verifier,
            integration_timeout: INTEGRATION_TIMEOUT,
        })
    }

    /// How Lambda runs the function of that name (its timeout sets each invocation's
    /// `Context::deadline`); a function not given here runs with Lambda's defaults.
    pub fn with_lambda_function(mut self, function: LambdaFunction) -> Gateway {
        self.lambda_functions
            .insert(function.name().to_string(), function);
        self
    }

    /// How long a function may take to answer before the caller gets 503 (default
    /// [`INTEGRATION_TIMEOUT`]; shorter in tests).
    pub fn with_integration_timeout(mut self, timeout: Duration) -> Gateway {
        self.integration_timeout = timeout;
        self
    }

    /// Logical names of functions that routes point to but that were not registered (sorted,
    /// without duplicates): the start-up check.
    pub fn missing_functions(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| !self.functions.contains_key(&r.function))
            .map(|r| r.function.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Route keys (`GET /api/health`, `$default`, ...) in declaration order, for the start-up banner.
    pub fn route_keys(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.key.clone()).collect()
    }

    /// Serves on `listener` until `shutdown` completes, then finishes in-flight requests and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        let local_addr = listener.local_addr().map_err(GatewayError::Serve)?;
        let shared = Arc::new(Shared {
            routes: self.routes,
            functions: self.functions,
            lambda_functions: self.lambda_functions,
            verifier: self.verifier,
            integration_timeout: self.integration_timeout,
            local_addr,
        });
        let app = axum::Router::new()
            .fallback(handle_request)
            .with_state(shared);
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(GatewayError::Serve)
    }

    /// Binds `127.0.0.1` on a free port and serves in a background task (tests, tools).
    pub async fn spawn_local(self) -> Result<RunningGateway, GatewayError> {
        let listener =
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: "127.0.0.1:0".to_owned(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| GatewayError::Bind {
            addr: "127.0.0.1:0".to_owned(),
            source,
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(listener, async move {
            // A dropped sender means stop as well.
            let _ = stopped.await;
        }));
        Ok(RunningGateway {
            addr,
            stop: Some(stop),
            task,
        })
    }
}

/// A gateway serving in the background; dropping it stops the server.
pub struct RunningGateway {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), GatewayError>>,
}

impl RunningGateway {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, waits for in-flight requests, and reports how the server ended.
    pub async fn stop(mut self) -> Result<(), GatewayError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join_error) => Err(GatewayError::Crashed(join_error.to_string())),
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Shared {
    routes: Vec<Route>,
    functions: HashMap<String, axum::Router>,
    lambda_functions: HashMap<String, LambdaFunction>,
    verifier: JwtVerifier,
    integration_timeout: Duration,
    local_addr: SocketAddr,
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Route {
    /// `GET /api/integrations/{id}`, `ANY /api/{proxy+}` or `$default`: the event's `routeKey`.
    key: String,
    /// `None` for `ANY`.
    method: Option<Method>,
    /// `None` for `$default`, which matches every request.
    segments: Option<Vec<Segment>>,
    function: String,
    public: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Segment {
    /// Lower is more specific.
    fn specificity(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

impl Route {
    fn parse(route: GatewayRoute) -> Result<Route, GatewayError> {
        let invalid = |reason: &'static str| GatewayError::InvalidRoute {
            method: route.method.clone(),
            path: route.path.clone(),
            reason,
        };
        if route.path == "$default" {
            return Ok(Route {
                key: "$default".to_owned(),
                method: None,
                segments: None,
                function: route.function,
                public: route.public,
            });
        }
        let method_name = route.method.trim().to_ascii_uppercase();
        let method =
            match method_name.as_str() {
                "ANY" => None,
                "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => Some(
                    Method::from_bytes(method_name.as_bytes())
                        .map_err(|_| invalid("the method is not an HTTP method"))?,
                ),
                _ => return Err(invalid(
                    "the method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY",
                )),
            };
        let Some(rest) = route.path.strip_prefix('/') else {
            return Err(invalid("the path must start with `/`"));
        };
        let mut segments = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            for (index, part) in parts.iter().enumerate() {
                let segment = if let Some(name) =
                    part.strip_prefix('{').and_then(|p| p.strip_suffix("+}"))
                {
                    if index + 1 != parts.len() {
                        return Err(invalid(
                            "a greedy `{name+}` variable must be the last segment",
                        ));
                    }
                    Segment::Greedy(name.to_owned())
                } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
                {
                    Segment::Param(name.to_owned())
                } else {
                    Segment::Literal((*part).to_owned())
                };
                match &segment {
                    Segment::Literal(text) if text.is_empty() => {
                        return Err(invalid("the path has an empty segment"))
                    }
                    Segment::Literal(text) if text.contains(['{', '}']) => {
                        return Err(invalid("a path variable must be a whole segment"))
                    }
                    Segment::Param(name) | Segment::Greedy(name)
                        if name.is_empty() || name.contains(['{', '}', '+']) =>
                    {
                        return Err(invalid("a path variable needs a plain name"))
                    }
                    _ => {}
                }
                segments.push(segment);
            }
        }
        Ok(Route {
            key: format!("{method_name} {}", route.path),
            method,
            segments: Some(segments),
            function: route.function,
            public: route.public,
        })
    }

    /// The path parameters (raw, still percent-encoded) when this route matches the request.
    fn matches(&self, method: &Method, raw_segments: &[&str]) -> Option<Vec<(String, String)>> {
        if let Some(route_method) = &self.method {
            if route_method != method {
                return None;
            }
        }
        let Some(segments) = &self.segments else {
            return Some(Vec::new());
        };
        let mut params = Vec::new();
        for (index, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    let rest = raw_segments.get(index..)?;
                    // A greedy variable stands for at least one segment.
                    if rest.is_empty() || rest.iter().all(|s| s.is_empty()) {
                        return None;
                    }
                    params.push((name.clone(), rest.join("/")));
                    return Some(params);
                }
                Segment::Param(name) => {
                    let value = raw_segments.get(index)?;
                    if value.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), (*value).to_owned()));
                }
                Segment::Literal(text) => {
                    if raw_segments.get(index) != Some(&text.as_str()) {
                        return None;
                    }
                }
            }
        }
        (raw_segments.len() == segments.len()).then_some(params)
    }

    /// Sort key: lower wins. `$default` last, then segment by segment, then explicit method over ANY.
    fn precedence(&self) -> (u8, Vec<u8>, u8) {
        match &self.segments {
            None => (1, Vec::new(), 1),
            Some(segments) => (
                0,
                segments.iter().map(Segment::specificity).collect(),
                u8::from(self.method.is_none()),
            ),
        }
    }
}

/// The most specific route for the request and its path parameters.
fn select_route<'a>(
    routes: &'a [Route],
    method: &Method,
    raw_path: &str,
) -> Option<(&'a Route, Vec<(String, String)>)> {
    let raw_segments = path_segments(raw_path);
    routes
        .iter()
        .filter_map(|route| {
            route
                .matches(method, &raw_segments)
                .map(|params| (route, params))
        })
        .min_by_key(|(route, _)| route.precedence())
}

fn path_segments(raw_path: &str) -> Vec<&str> {
    match raw_path.strip_prefix('/') {
        Some("") | None => Vec::new(),
        Some(rest) => rest.split('/').collect(),
    }
}

/// `.` and `..` segments (also percent-encoded) would be resolved away when the function's request
/// URI is built, letting the path the function routes on differ from the path the gateway routed
/// and authorized; they are refused instead.
fn has_dot_segment(raw_path: &str) -> bool {
    path_segments(raw_path).iter().any(|segment| {
        let decoded = percent_decode(segment, false);
        decoded == "." || decoded == ".."
    }) || raw_path.contains('\\')
}

// ---------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------

async fn handle_request(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    let started = Instant::now();
    let request_id = new_api_gateway_request_id();
    let method = request.method().clone();
    let raw_path = request.uri().path().to_owned();

    let (response, route_key) = route_and_invoke(&shared, peer, &request_id, request).await;
    let response = with_request_id_headers(response, &request_id);

    tracing::info!(
        requestId = %request_id,
        method = %method,
        path = %raw_path,
        routeKey = route_key.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        latencyMs = started.elapsed().as_millis() as u64,
        "gateway request"
    );
    response
}

async fn route_and_invoke(
    shared: &Shared,
    peer: SocketAddr,
    request_id: &str,
    request: Request<Body>,
) -> (Response<Body>, Option<String>) {
    let raw_path = request.uri().path().to_owned();
    if !raw_path.starts_with('/') {
        return (
            api_gateway_message(StatusCode::NOT_FOUND, "Not Found"),
            None,
        );
    }
    if has_dot_segment(&raw_path) {
        return (
            api_gateway_message(StatusCode::BAD_REQUEST, "Bad Request"),
            None,
        );
    }
    let Some((route, raw_params)) = select_route(&shared.routes, request.method(), &raw_path)
    else {
        return (
            api_gateway_message(StatusCode::NOT_FOUND, "Not Found"),
            None,
        );
    };
    let route_key = Some(route.key.clone());

    let claims = if route.public {
        None
    } else {
        match bearer_token(request.headers()).and_then(|token| shared.verifier.verify(token)) {
            Ok(claims) => Some(claims),
            Err(error) => return (unauthorized(&error), route_key),
        }
    };

    let Some(host) = request_host(request.headers(), shared.local_addr) else {
        return (
            api_gateway_message(StatusCode::BAD_REQUEST, "Bad Request"),
            route_key,
        );
    };

    let Some(function) = shared.functions.get(&route.function).cloned() else {
        let detail = format!(
            "route {} points to function {}, which is not registered in the local stack",
            route.key, route.function
        );
        tracing::error!(requestId = %request_id, "{detail}");
        let problem = ApiError::new(
            StatusCode::BAD_GATEWAY,
            "function_not_registered",
            "Bad Gateway",
            detail,
        );
        return (problem.into_response(), route_key);
    };

    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return (
                api_gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
                route_key,
            )
        }
        Err(_) => {
            return (
                api_gateway_message(StatusCode::BAD_REQUEST, "Bad Request"),
                route_key,
            );
        }
    };

    let incoming = IncomingRequest {
        method: &parts.method,
        raw_path: &raw_path,
        raw_query: parts.uri.query().unwrap_or(""),
        version: parts.version,
        headers: &parts.headers,
        host: &host,
        local_port: shared.local_addr.port(),
        source_ip: peer.ip(),
        body: &body,
    };
    let now = Utc::now();
    let event = api_gateway_v2_event(
        route,
        &raw_params,
        claims.as_ref(),
        request_id,
        now,
        &incoming,
    );
    let Some(mut lambda_request) = lambda_request_from_event(&event) else {
        tracing::error!(
            requestId = %request_id,
            "lambda_http refused the API Gateway event the gateway built"
        );
        return (
            api_gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
            route_key,
        );
    };
    let lambda_function = shared
        .lambda_functions
        .get(&route.function)
        .cloned()
        .unwrap_or_else(|| LambdaFunction::new(&route.function));
    let trace_id = incoming
        .headers
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    lambda_request
        .extensions_mut()
        .insert(lambda_function.invocation_context(now.into(), trace_id));

    // The invocation runs in its own task so that a panicking handler is answered as API Gateway
    // answers a crashed Lambda instead of dropping the connection. After a timeout it keeps running,
    // as a Lambda does until its own timeout.
    let invocation = tokio::spawn(function.oneshot(lambda_request));
    let response = match tokio::time::timeout(shared.integration_timeout, invocation).await {
        Ok(Ok(Ok(response))) => response,
        Ok(Ok(Err(infallible))) => match infallible {},
        Ok(Err(join_error)) => {
            tracing::error!(
                requestId = %request_id,
                function = %route.function,
                "the function crashed: {join_error}"
            );
            api_gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Err(_) => {
            tracing::error!(
                requestId = %request_id,
                function = %route.function,
                "the function did not answer within {} ms",
                shared.integration_timeout.as_millis()
            );
            api_gateway_message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
    };
    (response, route_key)
}

/// The token from `Authorization`. As API Gateway's identity source, it may be sent bare or after
/// the `Bearer` scheme.
fn bearer_token(headers: &HeaderMap) -> Result<&str, JwtError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(JwtError::Missing);
    };
    let value = value
        .to_str()
        .map_err(|_| JwtError::Malformed("the Authorization header is not ASCII"))?
        .trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some(_) => {
            return Err(JwtError::Malformed(
                "the Authorization header does not carry a Bearer token",
            ))
        }
        None => value,
    };
    if token.is_empty() {
        return Err(JwtError::Missing);
    }
    Ok(token)
}

/// The `Host` the client addressed, or the listener's address when it sent none. `None` for a value
/// that is not a plain `host[:port]`: `lambda_http` builds a URL from it and would panic.
fn request_host(headers: &HeaderMap, local_addr: SocketAddr) -> Option<String> {
    let Some(value) = headers.get(HOST) else {
        return Some(local_addr.to_string());
    };
    let host = value.to_str().ok()?;
    let valid_chars = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if host.is_empty() || !valid_chars {
        return None;
    }
    let authority: http::uri::Authority = host.parse().ok()?;
    if host.contains(':') && authority.port_u16().is_none() && !host.starts_with('[') {
        return None;
    }
    Some(host.to_owned())
}

fn lambda_request_from_event(event: &Value) -> Option<lambda_http::Request> {
    let json = event.to_string();
    // `lambda_http` panics rather than erring on a few inputs (an unparsable URL); the event is
    // checked beforehand, and this keeps any case missed from taking the connection down.
    std::panic::catch_unwind(|| lambda_http::request::from_str(&json))
        .ok()?
        .ok()
}

// ---------------------------------------------------------------------------------------------
// The API Gateway v2 event
// ---------------------------------------------------------------------------------------------

struct IncomingRequest<'a> {
    method: &'a Method,
    raw_path: &'a str,
    raw_query: &'a str,
    version: Version,
    headers: &'a HeaderMap,
    host: &'a str,
    local_port: u16,
    source_ip: IpAddr,
    body: &'a [u8],
}

/// The payload format 2.0 event API Gateway sends for this request.
fn api_gateway_v2_event(
    route: &Route,
    raw_params: &[(String, String)],
    claims: Option<&Map<String, Value>>,
    request_id: &str,
    now: DateTime<Utc>,
    incoming: &IncomingRequest<'_>,
) -> Value {
    let mut headers = Map::new();
    let mut cookies: Vec<String> = Vec::new();
    for name in incoming.headers.keys() {
        let values: Vec<String> = incoming
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if name == COOKIE {
            // Payload 2.0 moves cookies out of the headers into `cookies`.
            cookies.extend(
                values
                    .iter()
                    .flat_map(|v| v.split(';'))
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        headers.insert(name.as_str().to_owned(), Value::String(values.join(",")));
    }
    // Headers API Gateway sets itself.
    headers.insert("host".to_owned(), json!(incoming.host));
    let forwarded_for = match headers.get("x-forwarded-for").and_then(Value::as_str) {
        Some(existing) => format!("{existing}, {}", incoming.source_ip),
        None => incoming.source_ip.to_string(),
    };
    headers.insert("x-forwarded-for".to_owned(), json!(forwarded_for));
    headers.insert(
        "x-forwarded-port".to_owned(),
        json!(incoming.local_port.to_string()),
    );
    headers.insert("x-forwarded-proto".to_owned(), json!("http"));
    if !headers.contains_key("x-amzn-trace-id") {
        headers.insert("x-amzn-trace-id".to_owned(), json!(new_trace_id(now)));
    }

    let user_agent = headers
        .get("user-agent")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();

    let mut context = json!({
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": incoming.host,
        "domainPrefix": domain_prefix(incoming.host),
        "http": {
            "method": incoming.method.as_str(),
            "path": incoming.raw_path,
            "protocol": protocol_name(incoming.version),
            "sourceIp": incoming.source_ip.to_string(),
            "userAgent": user_agent,
        },
        "requestId": request_id,
        "routeKey": route.key,
        "stage": STAGE,
        "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let (Some(claims), Some(context)) = (claims, context.as_object_mut()) {
        let claims: Map<String, Value> = claims
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(api_gateway_claim_string(value))))
            .collect();
        context.insert(
            "authorizer".to_owned(),
            json!({"jwt": {"claims": claims, "scopes": null}}),
        );
    }

    let mut event = Map::new();
    event.insert("version".to_owned(), json!("2.0"));
    event.insert("routeKey".to_owned(), json!(route.key));
    event.insert("rawPath".to_owned(), json!(incoming.raw_path));
    event.insert("rawQueryString".to_owned(), json!(incoming.raw_query));
    if !cookies.is_empty() {
        event.insert("cookies".to_owned(), json!(cookies));
    }
    event.insert("headers".to_owned(), Value::Object(headers));
    let query = query_string_parameters(incoming.raw_query);
    if !query.is_empty() {
        event.insert("queryStringParameters".to_owned(), Value::Object(query));
    }
    if !raw_params.is_empty() {
        let params: Map<String, Value> = raw_params
            .iter()
            .map(|(name, raw)| (name.clone(), Value::String(percent_decode(raw, false))))
            .collect();
        event.insert("pathParameters".to_owned(), Value::Object(params));
    }
    event.insert("requestContext".to_owned(), context);
    let is_base64_encoded = match std::str::from_utf8(incoming.body) {
        _ if incoming.body.is_empty() => false,
        Ok(text) => {
            event.insert("body".to_owned(), json!(text));
            false
        }
        Err(_) => {
            event.insert("body".to_owned(), json!(BASE64.encode(incoming.body)));
            true
        }
    };
    event.insert("isBase64Encoded".to_owned(), json!(is_base64_encoded));
    Value::Object(event)
}

/// `queryStringParameters`: decoded, repeated keys comma-joined in order, as API Gateway does.
fn query_string_parameters(raw_query: &str) -> Map<String, Value> {
    let mut params: Map<String, Value> = Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key, true);
        let value = percent_decode(value, true);
        match params.get_mut(&key) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                params.insert(key, Value::String(value));
            }
        }
    }
    params
}

/// Claim values as API Gateway puts them in the context: every value a string; arrays as
/// `[a b c]`; numbers, booleans and objects as their JSON text.
fn api_gateway_claim_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(api_gateway_claim_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Percent-decodes, leaving malformed escapes as they are; `plus_as_space` for query strings (what
/// the function's own query parser does). Invalid UTF-8 is replaced, not refused.
fn percent_decode(input: &str, plus_as_space: bool) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let high = bytes.get(index + 1).and_then(|b| (*b as char).to_digit(16));
                let low = bytes.get(index + 2).and_then(|b| (*b as char).to_digit(16));
                if let (Some(high), Some(low)) = (high, low) {
                    out.push((high * 16 + low) as u8);
                    index += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_as_space => out.push(b' '),
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn domain_prefix(host: &str) -> String {
    let without_port = match host.rsplit_once(':') {
        Some((name, port)) if !host.ends_with(']') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    without_port
        .split('.')
        .next()
        .unwrap_or(without_port)
        .to_owned()
}

fn protocol_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// API Gateway's request id shape: 16 base64 characters (e.g. `JKJaXmPLvHcESHA=`).
fn new_api_gateway_request_id() -> String {
    let bytes: [u8; 10] = rand::thread_rng().gen();
    BASE64.encode(bytes)
}

/// An X-Ray trace header: `Root=1-<epoch seconds hex>-<96 random bits hex>`.
fn new_trace_id(now: DateTime<Utc>) -> String {
    let random: [u8; 12] = rand::thread_rng().gen();
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("Root=1-{:08x}-{random}", now.timestamp().max(0))
}

// ---------------------------------------------------------------------------------------------
// Gateway-made responses
// ---------------------------------------------------------------------------------------------

/// API Gateway's own error shape: `{"message": "..."}`.
fn api_gateway_message(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, "application/json", &json!({ "message": message }))
}

/// The gateway's 401, built by the same problem builder the functions use, so a client sees one
/// shape whether the gateway or a function refused it.
fn unauthorized(error: &JwtError) -> Response<Body> {
    ApiError::unauthorized(error.to_string()).into_response()
}

fn json_response(status: StatusCode, content_type: &'static str, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn with_request_id_headers(mut response: Response<Body>, request_id: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        let headers = response.headers_mut();
        if !headers.contains_key(X_REQUEST_ID) {
            headers.insert(X_REQUEST_ID, value.clone());
        }
        headers.insert(APIGW_REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> GatewayRoute {
        GatewayRoute {
            method: method.to_owned(),
            path: path.to_owned(),
            function: "Fn".to_owned(),
            public: false,
        }
    }

    fn parsed(routes: &[(&str, &str)]) -> Vec<Route> {
        routes
            .iter()
            .map(|(m, p)| Route::parse(route(m, p)).expect("valid route"))
            .collect()
    }

    fn selected(routes: &[Route], method: Method, path: &str) -> Option<String> {
        select_route(routes, &method, path).map(|(r, _)| r.key.clone())
    }

    #[test]
    fn literal_beats_param_beats_greedy() {
        let routes = parsed(&[
            ("ANY", "/api/{proxy+}"),
            ("GET", "/api/integrations/{id}"),
            ("GET", "/api/integrations/connect"),
        ]);

        assert_eq!(
            selected(&routes, Method::GET, "/api/integrations/connect").as_deref(),
            Some("GET /api/integrations/connect")
        );
        assert_eq!(
            selected(&routes, Method::GET, "/api/integrations/int_1").as_deref(),
            Some("GET /api/integrations/{id}")
        );
        assert_eq!(
            selected(&routes, Method::GET, "/api/integrations/int_1/logs").as_deref(),
            Some("ANY /api/{proxy+}")
        );
    }

    #[test]
    fn leftmost_literal_decides_between_equally_long_routes() {
        let routes = parsed(&[("GET", "/{a}/b/c"), ("GET", "/a/{b}/c")]);

        assert_eq!(
            selected(&routes, Method::GET, "/a/b/c").as_deref(),
            Some("GET /a/{b}/c")
        );
    }

    #[test]
    fn explicit_method_beats_any_on_the_same_path() {
        let routes = parsed(&[("ANY", "/api/things/{id}"), ("GET", "/api/things/{id}")]);

        assert_eq!(
            selected(&routes, Method::GET, "/api/things/1").as_deref(),
            Some("GET /api/things/{id}")
        );
        assert_eq!(
            selected(&routes, Method::DELETE, "/api/things/1").as_deref(),
            Some("ANY /api/things/{id}")
        );
    }

    #[test]
    fn default_route_catches_only_what_nothing_else_matches() {
        let routes = parsed(&[("ANY", "$default"), ("GET", "/api/health")]);

        assert_eq!(
            selected(&routes, Method::GET, "/api/health").as_deref(),
            Some("GET /api/health")
        );
        assert_eq!(
            selected(&routes, Method::POST, "/anything").as_deref(),
            Some("$default")
        );
    }

    #[test]
    fn greedy_variable_needs_at_least_one_segment_and_keeps_slashes() {
        let routes = parsed(&[("ANY", "/api/{proxy+}")]);

        assert_eq!(selected(&routes, Method::GET, "/api"), None);
        assert_eq!(selected(&routes, Method::GET, "/api/"), None);
        let (_, params) =
            select_route(&routes, &Method::GET, "/api/a/b%20c").expect("greedy match");
        assert_eq!(params, vec![("proxy".to_owned(), "a/b%20c".to_owned())]);
    }

    #[test]
    fn param_does_not_match_an_empty_segment_or_extra_segments() {
        let routes = parsed(&[("GET", "/api/integrations/{id}")]);

        assert_eq!(selected(&routes, Method::GET, "/api/integrations/"), None);
        assert_eq!(
            selected(&routes, Method::GET, "/api/integrations/1/x"),
            None
        );
        assert_eq!(selected(&routes, Method::POST, "/api/integrations/1"), None);
    }

    #[test]
    fn root_route_matches_only_root() {
        let routes = parsed(&[("GET", "/")]);

        assert_eq!(
            selected(&routes, Method::GET, "/").as_deref(),
            Some("GET /")
        );
        assert_eq!(selected(&routes, Method::GET, "/x"), None);
    }

    #[test]
    fn lowercase_sam_methods_are_accepted() {
        let routes = parsed(&[("get", "/api/health"), ("any", "/api/{proxy+}")]);

        assert_eq!(routes[0].key, "GET /api/health");
        assert_eq!(routes[1].key, "ANY /api/{proxy+}");
    }

    #[test]
    fn invalid_routes_are_refused_with_a_reason() {
        for (method, path) in [
            ("GET", "api/no-slash"),
            ("FETCH", "/api"),
            ("GET", "/api/{proxy+}/more"),
            ("GET", "/api//double"),
            ("GET", "/api/x{id}"),
            ("GET", "/api/{}"),
        ] {
            let result = Route::parse(route(method, path));

            assert!(
                matches!(result, Err(GatewayError::InvalidRoute { .. })),
                "{method} {path}: {result:?}"
            );
        }
    }

    #[test]
    fn duplicate_route_keys_are_refused() {
        let result = Gateway::new(
            vec![route("GET", "/a"), route("get", "/a")],
            HashMap::new(),
            JwtVerifier::new("s", None, None),
        );

        assert!(matches!(result, Err(GatewayError::DuplicateRoute(key)) if key == "GET /a"));
    }

    #[test]
    fn missing_functions_lists_each_unregistered_function_once() {
        let routes = vec![
            GatewayRoute {
                function: "B".to_owned(),
                ..route("GET", "/b")
            },
            GatewayRoute {
                function: "A".to_owned(),
                ..route("GET", "/a")
            },
            GatewayRoute {
                function: "A".to_owned(),
                ..route("POST", "/a")
            },
            GatewayRoute {
                function: "C".to_owned(),
                ..route("GET", "/c")
            },
        ];
        let functions = HashMap::from([("C".to_owned(), axum::Router::new())]);
        let gateway =
            Gateway::new(routes, functions, JwtVerifier::new("s", None, None)).expect("valid");

        assert_eq!(gateway.missing_functions(), vec!["A", "B"]);
    }

    #[test]
    fn dot_segments_are_detected_even_when_encoded() {
        assert!(has_dot_segment("/api/../x"));
        assert!(has_dot_segment("/api/%2e%2E/x"));
        assert!(has_dot_segment("/api/./x"));
        assert!(has_dot_segment("/api\\x"));
        assert!(!has_dot_segment("/api/.hidden/x..y"));
    }

    #[test]
    fn query_parameters_join_repeated_keys_with_commas() {
        let params = query_string_parameters("a=1&b=x%20y&a=2&flag&c=d+e&&a=");

        assert_eq!(
            Value::Object(params),
            json!({"a": "1,2,", "b": "x y", "flag": "", "c": "d e"})
        );
    }

    #[test]
    fn claims_are_stringified_as_api_gateway_does() {
        assert_eq!(api_gateway_claim_string(&json!("demo")), "demo");
        assert_eq!(api_gateway_claim_string(&json!(1700000000)), "1700000000");
        assert_eq!(api_gateway_claim_string(&json!(true)), "true");
        assert_eq!(api_gateway_claim_string(&json!(["a", "b"])), "[a b]");
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4", false), "a/b%zz%4");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("a+b", true), "a b");
    }

    #[test]
    fn hosts_that_would_break_the_request_uri_are_refused() {
        let local: SocketAddr = "127.0.0.1:3000".parse().expect("addr");
        let host = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(HOST, HeaderValue::from_static(value));
            request_host(&headers, local)
        };

        assert_eq!(host("localhost:3000").as_deref(), Some("localhost:3000"));
        assert_eq!(host("[::1]:3000").as_deref(), Some("[::1]:3000"));
        assert_eq!(host("a b"), None);
        assert_eq!(host("user@host"), None);
        assert_eq!(host("host:99999"), None);
        assert_eq!(
            request_host(&HeaderMap::new(), local).as_deref(),
            Some("127.0.0.1:3000")
        );
    }

    #[test]
    fn domain_prefix_is_the_first_label() {
        assert_eq!(
            domain_prefix("abc123.execute-api.us-east-1.amazonaws.com"),
            "abc123"
        );
        assert_eq!(domain_prefix("localhost:3000"), "localhost");
    }

    #[test]
    fn request_ids_have_api_gateway_and_lambda_shapes() {
        let apigw = new_api_gateway_request_id();
        let lambda = hub_shared::ids::uuid_v4();

        assert_eq!(apigw.len(), 16);
        assert_eq!(lambda.len(), 36);
        assert_eq!(lambda.as_bytes()[14], b'4');
        assert_ne!(apigw, new_api_gateway_request_id());
    }
}
