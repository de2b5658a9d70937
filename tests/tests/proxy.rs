//! The proxy end to end: `/api/integrations/{id}/proxy/{path}` through the local stack (its API
//! Gateway emulation included) against moto and a local provider server.

use hub_tests::{spawn_app, spawn_app_with};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "studio";
const SECRET_KEY: &str = "sk_test_proxy_0123456789abcdef";

#[tokio::test]
async fn get_and_post_pass_through_byte_exact_with_the_providers_credentials_only() {
    let provider = MockServer::start().await;
    let binary: Vec<u8> = (0u8..=255).rev().chain([0xff, 0x00, 0xfe]).collect();
    Mock::given(method("GET"))
        .and(path("/v1/customers/cus_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json; charset=utf-8")
                .insert_header("stripe-version", "2026-11-17")
                .insert_header("set-cookie", "__stripe_sid=abc; Secure")
                .set_body_raw(
                    r#"{"id":"cus_1","name":"דנה ☕"}"#.as_bytes().to_vec(),
                    "application/json; charset=utf-8",
                ),
        )
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_raw(binary.clone(), "application/octet-stream")
                .insert_header("x-upload-id", "up_77"),
        )
        .mount(&provider)
        .await;
    let app = spawn_app().await;
    let created = app
        .create_integration(
            TENANT,
            &json!({"provider": "stripe", "name": "Payments", "config": {"baseUrl": provider.uri()},
                    "credentials": {"secretKey": SECRET_KEY}}),
        )
        .await;
    let id = created["id"].as_str().expect("id");

    let got = app
        .send(
            app.request(
                reqwest::Method::GET,
                TENANT,
                &format!(
                    "/api/integrations/{id}/proxy/v1/customers/cus_1?expand%5B%5D=sources&limit=3"
                ),
            )
            .header("cookie", "session=caller-cookie")
            .header("stripe-version", "2026-11-17"),
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.text, r#"{"id":"cus_1","name":"דנה ☕"}"#);
    assert_eq!(got.header("stripe-version"), Some("2026-11-17"));
    assert_eq!(got.header("set-cookie"), None);

    let posted = app
        .http
        .post(format!("{}/api/integrations/{id}/proxy/v1/files", app.url))
        .bearer_auth(app.token(TENANT))
        .header("content-type", "application/octet-stream")
        .body(binary.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(posted.status().as_u16(), 201);
    assert_eq!(posted.headers()["x-upload-id"], "up_77");
    assert_eq!(posted.bytes().await.expect("body").to_vec(), binary);

    let received = provider.received_requests().await.expect("recorded");
    assert_eq!(received.len(), 2);
    let (get, post) = (&received[0], &received[1]);
    assert_eq!(get.url.query(), Some("expand%5B%5D=sources&limit=3"));
    assert_eq!(
        post.body, binary,
        "the body reached the provider byte-exact"
    );
    assert_eq!(post.headers["content-type"], "application/octet-stream");
    let caller_token = app.token(TENANT);
    for request in &received {
        assert_eq!(
            request.headers["authorization"],
            format!("Bearer {SECRET_KEY}")
        );
        assert!(
            !format!("{:?}", request.headers).contains(&caller_token),
            "the caller's JWT was forwarded"
        );
        assert!(request.headers.get("cookie").is_none());
    }
    assert_eq!(get.headers["stripe-version"], "2026-11-17");

    // Logged without the query or any secret; the secret is nowhere in the table or answers.
    let logs = app
        .get(TENANT, &format!("/api/integrations/{id}/logs?action=proxy"))
        .await
        .json();
    let items = logs["items"].as_array().expect("logs");
    assert_eq!(items.len(), 2, "{logs}");
    assert!(items
        .iter()
        .any(|l| l["summary"]["path"] == "/v1/customers/cus_1"
            && l["summary"]["method"] == "GET"
            && l["summary"]["httpStatus"] == 200));
    let table = format!("{:?}", app.scan_table().await);
    assert!(!table.contains(SECRET_KEY));
    assert!(app
        .response_bodies()
        .iter()
        .all(|b| !b.contains(SECRET_KEY)));
}

#[tokio::test]
async fn a_private_target_is_refused_when_private_targets_are_not_allowed() {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    let port = provider.address().port();
    let file = hub_tests::write_providers_file(&format!(
        "loopback_crm:\n  name: Loopback CRM\n  category: crm\n  auth:\n    mode: api_key\n    fields: [{{name: apiKey, secret: true}}]\n    apply: {{header: Authorization, format: \"Bearer {{apiKey}}\"}}\n  api:\n    baseUrl: https://127.0.0.1:{port}\n"
    ));
    let app = spawn_app_with(|options| {
        options.allow_private_targets = false;
        options.providers_file = Some(file);
    })
    .await;
    let created = app
        .create_integration(
            TENANT,
            &json!({"provider": "loopback_crm", "name": "CRM", "credentials": {"apiKey": "k-1234567890abcdef"}}),
        )
        .await;
    let id = created["id"].as_str().expect("id");
    let refused = app
        .get(TENANT, &format!("/api/integrations/{id}/proxy/contacts"))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json()["code"], "target_rejected");
    assert!(provider
        .received_requests()
        .await
        .expect("recorded")
        .is_empty());
}
