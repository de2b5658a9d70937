//! Test connection against local provider servers: the catalog's health check, credentials applied
//! as the catalog says, outcomes folded into status, health and logs, and the SSRF guard.

use std::time::Duration;

use hub_tests::{spawn_app, spawn_app_with, TestApp};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

async fn stripe_against(app: &TestApp, base_url: &str) -> String {
    let created = app
        .create_integration(
            "acme",
            &json!({"provider": "stripe", "name": "Stripe (local)", "config": {"baseUrl": base_url},
                    "credentials": {"secretKey": SECRET_KEY}}),
        )
        .await;
    created["id"].as_str().expect("id").to_string()
}

async fn run_test(app: &TestApp, id: &str) -> Value {
    let reply = app
        .post_json("acme", &format!("/api/integrations/{id}/test"), &json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

async fn get_integration(app: &TestApp, id: &str) -> Value {
    app.get("acme", &format!("/api/integrations/{id}"))
        .await
        .json()
}

#[tokio::test]
async fn a_passing_check_a_rejected_key_and_a_timeout_each_update_health_and_logs() {
    let app = spawn_app().await;
    let provider = MockServer::start().await;
    let id = stripe_against(&app, &provider.uri()).await;

    // 1. The provider accepts the key: ok, connected, a success log.
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .and(header(
            "authorization",
            format!("Bearer {SECRET_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": "balance"})))
        .up_to_n_times(1)
        .mount(&provider)
        .await;
    let ok = run_test(&app, &id).await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["httpStatus"], 200);
    assert!(ok["latencyMs"].as_u64().is_some());
    assert!(ok.get("error").is_none());
    let after_ok = get_integration(&app, &id).await;
    assert_eq!(after_ok["status"], "connected");
    assert_eq!(after_ok["health"]["score"], 100);

    // 2. The provider rejects it: ok false with 401, status error, health down.
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "Invalid API Key"}})),
        )
        .up_to_n_times(1)
        .mount(&provider)
        .await;
    let rejected = run_test(&app, &id).await;
    assert_eq!(rejected["ok"], false);
    assert_eq!(rejected["httpStatus"], 401);
    assert_eq!(rejected["error"], "unauthorized");
    let after_401 = get_integration(&app, &id).await;
    assert_eq!(after_401["status"], "error");
    assert_eq!(after_401["health"]["consecutiveFailures"], 1);
    assert_eq!(after_401["health"]["errorCount"], 1);
    assert!(after_401["health"]["score"].as_u64().expect("score") < 100);
    assert!(after_401["lastError"]
        .as_str()
        .expect("lastError")
        .contains("401"));
    assert_eq!(
        after_401["version"], 1,
        "checks do not bump the client-facing version"
    );

    // 3. The provider hangs past the 10 s limit: ok false, no status, error timeout.
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(15)))
        .mount(&provider)
        .await;
    let timed_out = run_test(&app, &id).await;
    assert_eq!(timed_out["ok"], false);
    assert_eq!(timed_out["httpStatus"], Value::Null);
    assert_eq!(timed_out["error"], "timeout");
    assert!(timed_out["latencyMs"].as_u64().expect("latency") >= 9_000);
    let after_timeout = get_integration(&app, &id).await;
    assert_eq!(after_timeout["health"]["consecutiveFailures"], 2);

    // The logs hold all three, newest first, and filter.
    let logs = app
        .get("acme", &format!("/api/integrations/{id}/logs"))
        .await
        .json();
    let items = logs["items"].as_array().expect("items");
    let summary: Vec<(&str, &str, Option<&str>)> = items
        .iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap_or(""),
                l["status"].as_str().unwrap_or(""),
                l["errorCode"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("test", "failed", Some("timeout")),
            ("test", "failed", Some("unauthorized")),
            ("test", "success", None)
        ]
    );
    assert!(items
        .iter()
        .all(|l| l["id"].as_str().unwrap_or("").starts_with("log_")
            && l["integrationId"] == id.as_str()));
    let failed = app
        .get(
            "acme",
            &format!("/api/integrations/{id}/logs?status=failed&limit=1"),
        )
        .await
        .json();
    assert_eq!(failed["items"].as_array().expect("items").len(), 1);
    assert!(failed["nextCursor"].is_string());
    assert_eq!(
        app.get("acme", &format!("/api/integrations/{id}/logs?action=dance"))
            .await
            .status,
        400
    );

    // And no response ever carried the key.
    assert!(app
        .response_bodies()
        .iter()
        .all(|body| !body.contains(SECRET_KEY)));
}

#[tokio::test]
async fn basic_auth_providers_get_their_credentials_as_basic_auth() {
    let app = spawn_app().await;
    let provider = MockServer::start().await;
    // base64("AC0123456789abcdef:twilio-secret-token-1234")
    let expected = "Basic QUMwMTIzNDU2Nzg5YWJjZGVmOnR3aWxpby1zZWNyZXQtdG9rZW4tMTIzNA==";
    Mock::given(header("authorization", expected))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"sid": "AC0123456789abcdef"})),
        )
        .mount(&provider)
        .await;
    let created = app
        .create_integration(
            "acme",
            &json!({"provider": "twilio", "name": "SMS", "config": {"baseUrl": provider.uri()},
                    "credentials": {"accountSid": "AC0123456789abcdef", "authToken": "twilio-secret-token-1234"}}),
        )
        .await;
    let result = run_test(&app, created["id"].as_str().expect("id")).await;
    assert_eq!(result["ok"], true, "{result}");
    let requests = provider.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].url.path().contains("AC0123456789abcdef"),
        "{}",
        requests[0].url
    );
}

#[tokio::test]
async fn a_refused_connection_is_reported_as_such() {
    let app = spawn_app().await;
    let closed_port = hub_local::moto::free_port().expect("port");
    let id = stripe_against(&app, &format!("http://127.0.0.1:{closed_port}")).await;
    let result = run_test(&app, &id).await;
    assert_eq!(result["ok"], false);
    assert_eq!(result["error"], "connection_refused");
    assert_eq!(get_integration(&app, &id).await["status"], "error");
}

#[tokio::test]
async fn a_provider_without_a_health_check_answers_not_supported() {
    let app = spawn_app().await;
    let created = app
        .create_integration(
            "acme",
            &json!({"provider": "custom_webhook", "name": "Hook"}),
        )
        .await;
    let reply = app
        .post_json(
            "acme",
            &format!(
                "/api/integrations/{}/test",
                created["id"].as_str().expect("id")
            ),
            &json!({}),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json()["code"], "not_supported");
}

#[tokio::test]
async fn private_addresses_are_refused_unless_private_targets_are_allowed() {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    let port = provider.address().port();

    // A catalog entry (PROVIDERS_FILE) whose API lives on a loopback address.
    let file = hub_tests::write_providers_file(&format!(
            "loopback_crm:\n  name: Loopback CRM\n  category: crm\n  auth:\n    mode: api_key\n    fields: [{{name: apiKey, secret: true}}]\n    apply: {{header: Authorization, format: \"Bearer {{apiKey}}\"}}\n  api:\n    baseUrl: https://127.0.0.1:{port}\n    healthCheck: {{method: GET, path: /me, expect: 200}}\n"
        ));

    let guarded = spawn_app_with(|options| {
        options.allow_private_targets = false;
        options.providers_file = Some(file.clone());
    })
    .await;
    // At create time, a private baseUrl is a 400 naming the field and the reason.
    let refused = guarded
        .post_json(
            "acme",
            "/api/integrations",
            &json!({"provider": "stripe", "name": "x", "config": {"baseUrl": format!("https://127.0.0.1:{port}")},
                    "credentials": {"secretKey": SECRET_KEY}}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json()["errors"][0]["field"], "config.baseUrl");
    assert!(refused.json()["errors"][0]["message"]
        .as_str()
        .expect("message")
        .contains("127.0.0.1"));
    let metadata = guarded
        .post_json(
            "acme",
            "/api/integrations",
            &json!({"provider": "stripe", "name": "x", "config": {"baseUrl": "https://169.254.169.254/latest"},
                    "credentials": {"secretKey": SECRET_KEY}}),
        )
        .await;
    assert_eq!(metadata.status, 400);

    // At call time, the catalog's private base URL is refused and nothing is sent.
    let created = guarded
        .create_integration("acme", &json!({"provider": "loopback_crm", "name": "CRM", "credentials": {"apiKey": "k-1234567890abcdef"}}))
        .await;
    let result = run_test(&guarded, created["id"].as_str().expect("id")).await;
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["error"], "forbidden_target");
    assert!(provider
        .received_requests()
        .await
        .expect("recorded")
        .is_empty());
    let logs = guarded
        .get(
            "acme",
            &format!(
                "/api/integrations/{}/logs",
                created["id"].as_str().expect("id")
            ),
        )
        .await
        .json();
    assert!(logs["items"][0]["errorMessage"]
        .as_str()
        .expect("message")
        .contains("127.0.0.1"));

    // The same catalog with private targets allowed (plain http too) reaches the server.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .expect("read")
            .replace("https://", "http://"),
    )
    .expect("rewrite");
    let open = spawn_app_with(|options| {
        options.allow_private_targets = true;
        options.providers_file = Some(file.clone());
    })
    .await;
    let created = open
        .create_integration("acme", &json!({"provider": "loopback_crm", "name": "CRM", "credentials": {"apiKey": "k-1234567890abcdef"}}))
        .await;
    let result = run_test(&open, created["id"].as_str().expect("id")).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(
        provider.received_requests().await.expect("recorded").len(),
        1
    );
}

#[tokio::test]
async fn test_connection_honours_the_provider_rate_limit() {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    let file = hub_tests::write_providers_file(&format!(
            "tiny_api:\n  name: Tiny API\n  category: custom\n  auth:\n    mode: api_key\n    fields: [{{name: apiKey, secret: true}}]\n    apply: {{query: key, format: \"{{apiKey}}\"}}\n  api:\n    baseUrl: {}\n    rateLimit: {{requests: 2, perSeconds: 3600}}\n    healthCheck: {{method: GET, path: /ping, expect: 200}}\n",
            provider.uri()
        ));
    let app = spawn_app_with(|options| options.providers_file = Some(file.clone())).await;
    let created = app
        .create_integration("acme", &json!({"provider": "tiny_api", "name": "Tiny", "credentials": {"apiKey": "query-key-123456"}}))
        .await;
    let test_path = format!(
        "/api/integrations/{}/test",
        created["id"].as_str().expect("id")
    );
    assert_eq!(
        app.post_json("acme", &test_path, &json!({})).await.status,
        200
    );
    assert_eq!(
        app.post_json("acme", &test_path, &json!({})).await.status,
        200
    );
    let limited = app.post_json("acme", &test_path, &json!({})).await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert_eq!(limited.json()["code"], "rate_limited");
    assert!(limited
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|s| s >= 1));
    let requests = provider.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].url.query(), Some("key=query-key-123456"));
}
