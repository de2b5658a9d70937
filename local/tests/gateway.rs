//! The local front door behaves as API Gateway (HTTP API, payload 2.0) in front of the functions:
//! routing, the JWT authorizer, the event the function receives, and the response it sends back.
//!
//! The "function" here is a small axum router that echoes what `lambda_http` gives it, read the way
//! the real functions read it (`lambda_http::RequestExt`).

use std::collections::{BTreeMap, HashMap};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hub_local::gateway::{Gateway, GatewayRoute, RunningGateway, MAX_REQUEST_BODY_BYTES};
use hub_local::jwt::{sign_hs256, JwtVerifier};
use hub_local::lambda::LambdaFunction;
use hub_shared::error::ApiError;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use serde_json::{json, Value};

const SECRET: &[u8] = b"gateway-test-secret";
const ISSUER: &str = "https://issuer.local";
const AUDIENCE: &str = "hub-api";
/// The echo function's Lambda timeout: its invocations' deadline is start + this.
const ECHO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(17);

/// Echoes the request as the function sees it.
async fn echo(request: Request) -> Response {
    let context = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => serde_json::to_value(context).ok(),
        _ => None,
    };
    let path_parameters: BTreeMap<String, String> = request
        .path_parameters()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in request.query_string_parameters().iter() {
        query.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in request.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let lambda_request_id = request.lambda_context_ref().map(|c| c.request_id.clone());
    let function_name = request
        .lambda_context_ref()
        .map(|c| c.env_config.function_name.clone());
    let lambda_deadline = request.lambda_context_ref().map(|c| c.deadline);
    let invoked_function_arn = request
        .lambda_context_ref()
        .map(|c| c.invoked_function_arn.clone());
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let raw_path = request.raw_http_path().to_owned();
    let echo_request_id = request
        .headers()
        .get("x-echo-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();

    let mut response = axum::Json(json!({
        "method": method,
        "uri": uri,
        "rawPath": raw_path,
        "context": context,
        "pathParameters": path_parameters,
        "query": query,
        "headers": headers,
        "bodyBase64": BASE64.encode(&body),
        "lambdaRequestId": lambda_request_id,
        "functionName": function_name,
        "lambdaDeadlineMs": lambda_deadline,
        "invokedFunctionArn": invoked_function_arn,
    }))
    .into_response();
    let response_headers = response.headers_mut();
    response_headers.append("x-echo", "one".parse().expect("header"));
    response_headers.append("x-echo", "two".parse().expect("header"));
    response_headers.append("set-cookie", "a=1; Path=/".parse().expect("header"));
    response_headers.append("set-cookie", "b=2; Path=/".parse().expect("header"));
    if let Some(id) = echo_request_id {
        response_headers.insert("x-request-id", id.parse().expect("header"));
    }
    response
}

async fn crash() -> Response {
    panic!("the function crashed on purpose")
}

async fn slow() -> Response {
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    "too late".into_response()
}

fn route(method: &str, path: &str, function: &str, public: bool) -> GatewayRoute {
    GatewayRoute {
        method: method.to_owned(),
        path: path.to_owned(),
        function: function.to_owned(),
        public,
    }
}

fn build_gateway() -> Gateway {
    let routes = vec![
        route("GET", "/api/health", "EchoFunction", true),
        route("GET", "/api/integrations/connect", "EchoFunction", false),
        route("GET", "/api/integrations/{id}", "EchoFunction", false),
        route("ANY", "/api/integrations/{id}", "EchoFunction", false),
        route("ANY", "/api/{proxy+}", "EchoFunction", false),
        route(
            "POST",
            "/api/webhooks/tenant/{tenantId}/{webhookId}",
            "EchoFunction",
            true,
        ),
        route("GET", "/api/crash", "CrashFunction", true),
        route("GET", "/api/ghost", "GhostFunction", true),
        route("GET", "/api/slow", "SlowFunction", true),
    ];
    let echo_router = Router::new()
        .route("/", any(echo))
        .route("/{*rest}", any(echo));
    let functions = HashMap::from([
        ("EchoFunction".to_owned(), echo_router),
        (
            "CrashFunction".to_owned(),
            Router::new().route("/{*rest}", any(crash)),
        ),
        (
            "SlowFunction".to_owned(),
            Router::new().route("/{*rest}", any(slow)),
        ),
    ]);
    let verifier = JwtVerifier::new(
        SECRET,
        Some(ISSUER.to_owned()),
        Some(vec![AUDIENCE.to_owned()]),
    );
    let gateway = Gateway::new(routes, functions, verifier)
        .expect("valid routes")
        .with_lambda_function(LambdaFunction::new("EchoFunction").with_timeout(ECHO_TIMEOUT));
    assert_eq!(gateway.missing_functions(), vec!["GhostFunction"]);
    gateway
}

async fn spawn_gateway() -> RunningGateway {
    build_gateway().spawn_local().await.expect("gateway starts")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims() -> Value {
    json!({
        "sub": "user-1",
        "tenant_id": "demo",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 600,
        "roles": ["admin", "viewer"],
        "email_verified": true,
    })
}

fn valid_token() -> String {
    sign_hs256(&claims(), SECRET)
}

fn client() -> reqwest::Client {
    hub_shared::http_client::install_default_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn get_with_token(gateway: &RunningGateway, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", gateway.url()))
        .bearer_auth(valid_token())
        .send()
        .await
        .expect("request")
}

async fn json_body(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

async fn route_key_for(gateway: &RunningGateway, method: reqwest::Method, path: &str) -> String {
    let response = client()
        .request(method, format!("{}{path}", gateway.url()))
        .bearer_auth(valid_token())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "{path}");
    let echoed = json_body(response).await;
    echoed["context"]["routeKey"]
        .as_str()
        .expect("routeKey")
        .to_owned()
}

/// The gateway's 401 is the problem the functions themselves send (one builder, `hub_shared`).
async fn assert_unauthorized(response: reqwest::Response, detail: &str) {
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert!(response.headers().contains_key("x-request-id"));
    let problem = json_body(response).await;
    assert_eq!(problem["title"], "Unauthorized");
    assert_eq!(problem["status"], 401);
    assert_eq!(problem["detail"], detail);
    assert_eq!(problem["code"], "unauthorized");
    let from_a_function = ApiError::unauthorized(detail).into_response();
    let expected: Value = serde_json::from_slice(
        &axum::body::to_bytes(from_a_function.into_body(), usize::MAX)
            .await
            .expect("body"),
    )
    .expect("JSON");
    assert_eq!(problem, expected);
}

#[tokio::test]
async fn most_specific_route_wins_literal_then_param_then_greedy() {
    let gateway = spawn_gateway().await;

    let literal = route_key_for(&gateway, reqwest::Method::GET, "/api/integrations/connect").await;
    let param = route_key_for(&gateway, reqwest::Method::GET, "/api/integrations/int_1").await;
    let greedy = route_key_for(
        &gateway,
        reqwest::Method::GET,
        "/api/integrations/int_1/logs",
    )
    .await;

    assert_eq!(literal, "GET /api/integrations/connect");
    assert_eq!(param, "GET /api/integrations/{id}");
    assert_eq!(greedy, "ANY /api/{proxy+}");
}

#[tokio::test]
async fn method_specific_route_beats_any_and_any_takes_the_other_methods() {
    let gateway = spawn_gateway().await;

    let get = route_key_for(&gateway, reqwest::Method::GET, "/api/integrations/int_1").await;
    let patch = route_key_for(&gateway, reqwest::Method::PATCH, "/api/integrations/int_1").await;

    assert_eq!(get, "GET /api/integrations/{id}");
    assert_eq!(patch, "ANY /api/integrations/{id}");
}

#[tokio::test]
async fn request_matching_no_route_gets_api_gateway_not_found() {
    let gateway = spawn_gateway().await;

    let response = get_with_token(&gateway, "/not/an/api/route").await;

    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(json_body(response).await, json!({"message": "Not Found"}));
}

#[tokio::test]
async fn public_route_is_reached_without_a_token_and_carries_no_authorizer() {
    let gateway = spawn_gateway().await;

    let response = client()
        .get(format!("{}/api/health", gateway.url()))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 200);
    let echoed = json_body(response).await;
    assert_eq!(echoed["context"]["routeKey"], "GET /api/health");
    assert!(echoed["context"].get("authorizer").is_none(), "{echoed}");
}

#[tokio::test]
async fn authorized_route_without_a_token_is_401() {
    let gateway = spawn_gateway().await;

    let response = client()
        .get(format!("{}/api/integrations/int_1", gateway.url()))
        .send()
        .await
        .expect("request");

    assert_unauthorized(response, "no bearer token was sent").await;
}

#[tokio::test]
async fn authorized_route_with_an_expired_token_is_401() {
    let gateway = spawn_gateway().await;
    let mut expired = claims();
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);

    let response = client()
        .get(format!("{}/api/integrations/int_1", gateway.url()))
        .bearer_auth(sign_hs256(&expired, SECRET))
        .send()
        .await
        .expect("request");

    assert_unauthorized(response, "the token has expired").await;
}

#[tokio::test]
async fn authorized_route_with_a_forged_token_is_401() {
    let gateway = spawn_gateway().await;

    let response = client()
        .get(format!("{}/api/integrations/int_1", gateway.url()))
        .bearer_auth(sign_hs256(&claims(), b"someone-elses-secret"))
        .send()
        .await
        .expect("request");

    assert_unauthorized(response, "the token signature is not valid").await;
}

#[tokio::test]
async fn authorized_route_with_an_alg_none_token_is_401() {
    let gateway = spawn_gateway().await;
    let base64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        base64url.encode(r#"{"alg":"none","typ":"JWT"}"#),
        base64url.encode(claims().to_string())
    );

    let response = client()
        .get(format!("{}/api/integrations/int_1", gateway.url()))
        .bearer_auth(unsigned)
        .send()
        .await
        .expect("request");

    assert_unauthorized(
        response,
        "the token uses a signing algorithm other than HS256",
    )
    .await;
}

#[tokio::test]
async fn authorized_route_with_a_non_bearer_authorization_is_401() {
    let gateway = spawn_gateway().await;

    let response = client()
        .get(format!("{}/api/integrations/int_1", gateway.url()))
        .basic_auth("user", Some("password"))
        .send()
        .await
        .expect("request");

    assert_unauthorized(
        response,
        "the token is malformed: the Authorization header does not carry a Bearer token",
    )
    .await;
}

#[tokio::test]
async fn valid_token_puts_its_claims_in_the_context_as_strings() {
    let gateway = spawn_gateway().await;
    let claims = claims();

    let response = client()
        .get(format!("{}/api/integrations/int_1", gateway.url()))
        .bearer_auth(sign_hs256(&claims, SECRET))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 200);
    let echoed = json_body(response).await;
    let jwt = &echoed["context"]["authorizer"]["jwt"];
    assert_eq!(jwt["claims"]["tenant_id"], "demo");
    assert_eq!(jwt["claims"]["sub"], "user-1");
    assert_eq!(jwt["claims"]["iss"], ISSUER);
    assert_eq!(jwt["claims"]["exp"], claims["exp"].to_string());
    assert_eq!(jwt["claims"]["roles"], "[admin viewer]");
    assert_eq!(jwt["claims"]["email_verified"], "true");
    assert!(jwt.get("scopes").is_none_or(Value::is_null), "{jwt}");
}

#[tokio::test]
async fn the_function_sees_the_api_gateway_request_context() {
    let gateway = spawn_gateway().await;

    let response = client()
        .get(format!("{}/api/integrations/int_1?x=1", gateway.url()))
        .bearer_auth(valid_token())
        .header("user-agent", "gateway-test/1.0")
        .send()
        .await
        .expect("request");

    let echoed = json_body(response).await;
    let context = &echoed["context"];
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["rawPath"], "/api/integrations/int_1");
    assert_eq!(
        echoed["uri"],
        format!("http://{}/api/integrations/int_1?x=1", gateway.addr())
    );
    assert_eq!(context["stage"], "$default");
    assert_eq!(context["accountId"], "123456789012");
    assert_eq!(context["apiId"], "local");
    assert_eq!(context["domainName"], gateway.addr().to_string());
    assert_eq!(context["http"]["method"], "GET");
    assert_eq!(context["http"]["path"], "/api/integrations/int_1");
    assert_eq!(context["http"]["protocol"], "HTTP/1.1");
    assert_eq!(context["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(context["http"]["userAgent"], "gateway-test/1.0");
    assert!(context["timeEpoch"].as_i64().unwrap_or(0) > 1_600_000_000_000);
    assert!(context["time"]
        .as_str()
        .is_some_and(|t| t.ends_with(" +0000")));
    assert!(echoed["lambdaRequestId"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    assert_eq!(echoed["functionName"], "EchoFunction");
}

#[tokio::test]
async fn the_function_gets_a_lambda_context_with_its_own_timeout_as_deadline() {
    // Given the echo function configured with a 17 s Lambda timeout
    let gateway = spawn_gateway().await;

    // When it is invoked through the gateway
    let before = chrono::Utc::now().timestamp_millis();
    let response = get_with_token(&gateway, "/api/integrations/int_1").await;
    let after = chrono::Utc::now().timestamp_millis();
    let echoed = json_body(response).await;

    // Then its context's deadline is the invocation's start plus that timeout, and it names the
    // invoked function as Lambda does
    let timeout = ECHO_TIMEOUT.as_millis() as i64;
    let deadline = echoed["lambdaDeadlineMs"].as_i64().expect("a deadline");
    assert!(
        (before + timeout..=after + timeout).contains(&deadline),
        "deadline {deadline} not within [{before}, {after}] + {timeout}"
    );
    assert_eq!(
        echoed["invokedFunctionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:EchoFunction"
    );
}

#[tokio::test]
async fn path_parameters_are_named_and_decoded() {
    let gateway = spawn_gateway().await;

    let response = client()
        .post(format!(
            "{}/api/webhooks/tenant/demo/whin_a%20b",
            gateway.url()
        ))
        .body("{}")
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 200);
    let echoed = json_body(response).await;
    assert_eq!(
        echoed["pathParameters"],
        json!({"tenantId": "demo", "webhookId": "whin_a b"})
    );
    assert_eq!(
        echoed["context"]["routeKey"],
        "POST /api/webhooks/tenant/{tenantId}/{webhookId}"
    );
}

#[tokio::test]
async fn greedy_path_parameter_is_named_proxy() {
    let gateway = spawn_gateway().await;

    let response = get_with_token(&gateway, "/api/some/deep/path").await;

    let echoed = json_body(response).await;
    assert_eq!(echoed["pathParameters"], json!({"proxy": "some/deep/path"}));
}

#[tokio::test]
async fn repeated_query_keys_reach_the_function_with_every_value() {
    let gateway = spawn_gateway().await;

    let response = get_with_token(
        &gateway,
        "/api/integrations/int_1?status=a&status=b&provider=google%20calendar",
    )
    .await;

    let echoed = json_body(response).await;
    assert_eq!(
        echoed["query"],
        json!({"status": ["a", "b"], "provider": ["google calendar"]})
    );
}

#[tokio::test]
async fn non_utf8_body_arrives_byte_exact() {
    let gateway = spawn_gateway().await;
    let body: Vec<u8> = vec![0xff, 0x00, 0xfe, 0x80, b'a', 0xc3, 0x28, 0x0a];

    let response = client()
        .post(format!("{}/api/webhooks/tenant/demo/whin_1", gateway.url()))
        .header("content-type", "application/octet-stream")
        .body(body.clone())
        .send()
        .await
        .expect("request");

    let echoed = json_body(response).await;
    assert_eq!(echoed["bodyBase64"], BASE64.encode(&body));
}

#[tokio::test]
async fn utf8_body_arrives_byte_exact() {
    let gateway = spawn_gateway().await;
    let body = "{\"name\":\"Zoë 🚀\"}\r\n";

    let response = client()
        .post(format!("{}/api/webhooks/tenant/demo/whin_1", gateway.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");

    let echoed = json_body(response).await;
    assert_eq!(echoed["bodyBase64"], BASE64.encode(body));
}

#[tokio::test]
async fn headers_reach_the_function_as_api_gateway_sends_them() {
    let gateway = spawn_gateway().await;

    let response = client()
        .get(format!("{}/api/integrations/int_1", gateway.url()))
        .bearer_auth(valid_token())
        .header("X-Custom", "Value With Case")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .header("cookie", "session=1; theme=dark")
        .send()
        .await
        .expect("request");

    let echoed = json_body(response).await;
    let headers = &echoed["headers"];
    assert_eq!(headers["x-custom"], json!(["Value With Case"]));
    // Payload 2.0 has one value per header: repeated headers are comma-joined.
    assert_eq!(headers["x-multi"], json!(["a,b"]));
    assert_eq!(headers["cookie"], json!(["session=1; theme=dark"]));
    assert_eq!(headers["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(headers["x-forwarded-proto"], json!(["http"]));
    assert!(headers["x-amzn-trace-id"][0]
        .as_str()
        .is_some_and(|t| t.starts_with("Root=1-")));
}

#[tokio::test]
async fn function_response_headers_and_status_come_back_unchanged() {
    let gateway = spawn_gateway().await;

    let response = get_with_token(&gateway, "/api/integrations/int_1").await;

    assert_eq!(response.status(), 200);
    let echo: Vec<&str> = response
        .headers()
        .get_all("x-echo")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(echo, vec!["one", "two"]);
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(cookies, vec!["a=1; Path=/", "b=2; Path=/"]);
    assert_eq!(response.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn x_request_id_is_the_api_gateway_request_id_when_the_function_sets_none() {
    let gateway = spawn_gateway().await;

    let response = get_with_token(&gateway, "/api/integrations/int_1").await;

    let header = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(response.headers()["apigw-requestid"], header.as_str());
    let echoed = json_body(response).await;
    assert_eq!(echoed["context"]["requestId"], header);
    assert_eq!(header.len(), 16);
}

#[tokio::test]
async fn x_request_id_set_by_the_function_is_kept() {
    let gateway = spawn_gateway().await;

    let response = client()
        .get(format!("{}/api/integrations/int_1", gateway.url()))
        .bearer_auth(valid_token())
        .header("x-echo-request-id", "chosen-by-function")
        .send()
        .await
        .expect("request");

    assert_eq!(response.headers()["x-request-id"], "chosen-by-function");
}

#[tokio::test]
async fn each_request_gets_its_own_request_id() {
    let gateway = spawn_gateway().await;

    let first = get_with_token(&gateway, "/api/integrations/int_1").await;
    let second = get_with_token(&gateway, "/api/integrations/int_1").await;

    assert_ne!(
        first.headers()["x-request-id"],
        second.headers()["x-request-id"]
    );
}

#[tokio::test]
async fn body_over_ten_mib_is_refused_as_api_gateway_does() {
    let gateway = spawn_gateway().await;

    let response = client()
        .post(format!("{}/api/webhooks/tenant/demo/whin_1", gateway.url()))
        .body(vec![b'x'; MAX_REQUEST_BODY_BYTES + 1])
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 413);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(
        json_body(response).await,
        json!({"message": "Request Entity Too Large"})
    );
}

#[tokio::test]
async fn body_of_exactly_ten_mib_is_passed_on() {
    let gateway = spawn_gateway().await;
    let body = vec![b'x'; MAX_REQUEST_BODY_BYTES];

    let response = client()
        .post(format!("{}/api/webhooks/tenant/demo/whin_1", gateway.url()))
        .body(body.clone())
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 200);
    let echoed = json_body(response).await;
    assert_eq!(
        echoed["bodyBase64"].as_str().map(str::len),
        Some(BASE64.encode(&body).len())
    );
}

#[tokio::test]
async fn route_to_an_unregistered_function_is_a_502_problem() {
    let gateway = spawn_gateway().await;

    let response = client()
        .get(format!("{}/api/ghost", gateway.url()))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 502);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let problem = json_body(response).await;
    assert_eq!(problem["code"], "function_not_registered");
    assert!(problem["detail"]
        .as_str()
        .is_some_and(|d| d.contains("GhostFunction")));
}

#[tokio::test]
async fn crashing_function_is_answered_as_api_gateway_answers_a_failed_lambda() {
    let gateway = spawn_gateway().await;

    let response = client()
        .get(format!("{}/api/crash", gateway.url()))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 500);
    assert_eq!(
        json_body(response).await,
        json!({"message": "Internal Server Error"})
    );
    // The gateway is still serving.
    let after = client()
        .get(format!("{}/api/health", gateway.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn function_slower_than_the_integration_timeout_gets_503() {
    let gateway = build_gateway()
        .with_integration_timeout(std::time::Duration::from_millis(300))
        .spawn_local()
        .await
        .expect("gateway starts");
    let started = std::time::Instant::now();

    let response = client()
        .get(format!("{}/api/slow", gateway.url()))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        json_body(response).await,
        json!({"message": "Service Unavailable"})
    );
}

#[tokio::test]
async fn dot_segments_are_refused_before_routing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gateway = spawn_gateway().await;
    // HTTP clients resolve `..` (even `%2e%2e`) before sending, so write the request by hand: the
    // path would reach a public route's pattern but resolve to an authorized one in the function.
    for path in [
        "/api/webhooks/tenant/demo/%2e%2e/%2e%2e/integrations",
        "/api/webhooks/tenant/demo/../x",
    ] {
        let mut stream = tokio::net::TcpStream::connect(gateway.addr())
            .await
            .expect("connect");
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            gateway.addr()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");

        assert!(answer.starts_with("HTTP/1.1 400 "), "{path}: {answer}");
        assert!(answer.contains("x-request-id: "), "{path}: {answer}");
    }
}

#[tokio::test]
async fn stopping_the_gateway_closes_the_port() {
    let gateway = spawn_gateway().await;
    let url = format!("{}/api/health", gateway.url());
    assert_eq!(client().get(&url).send().await.expect("up").status(), 200);

    gateway.stop().await.expect("clean stop");

    assert!(client().get(&url).send().await.is_err());
}
