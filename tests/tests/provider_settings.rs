//! Provider settings end to end (docs/catalog.md): create and patch check `config`
//! against the catalog's declared settings (400 naming `config.<key>`, nothing stored), the
//! providers routes show them, and a health check's body condition decides a 200 answer.

use hub_tests::{spawn_app, spawn_app_with, Reply, TestApp};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WHATSAPP_TOKEN: &str = "EAAG-whatsapp-system-user-token-0001";

fn error_fields(reply: &Reply) -> Vec<String> {
    reply.json()["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn integrations_of(app: &TestApp, tenant: &str) -> Vec<Value> {
    let list = app.get(tenant, "/api/integrations").await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.json()["items"].as_array().cloned().unwrap_or_default()
}

fn whatsapp(config: Value) -> Value {
    json!({"provider": "whatsapp_business", "name": "WhatsApp", "config": config,
           "credentials": {"accessToken": WHATSAPP_TOKEN}})
}

#[tokio::test]
async fn unknown_missing_and_invalid_config_keys_are_400_naming_the_key_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), "config.phoneNumberId", "is required"),
        (
            json!({"phoneNumberId": "109876543210", "colour": "red"}),
            "config.colour",
            "is not a setting",
        ),
        (
            json!({"phoneNumberId": 109876543210u64}),
            "config.phoneNumberId",
            "must be a string",
        ),
        (
            json!({"phoneNumberId": "+1 555 0100"}),
            "config.phoneNumberId",
            "does not match the pattern",
        ),
    ];
    for (config, field, message) in cases {
        // When a create carries a config the provider's settings do not allow
        let reply = app
            .post_json("acme", "/api/integrations", &whatsapp(config.clone()))
            .await;

        // Then it is a 400 naming exactly that key, with the reason
        assert_eq!(reply.status, 400, "{config}: {}", reply.text);
        assert_eq!(reply.json()["code"], "validation_failed");
        assert_eq!(error_fields(&reply), [field], "{config}: {}", reply.text);
        assert!(
            reply.json()["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message)),
            "{config}: {}",
            reply.text
        );
    }
    // And nothing was stored.
    assert!(integrations_of(&app, "acme").await.is_empty());

    // A valid config is stored as sent; a PATCH with an unknown key is refused and changes nothing.
    let created = app
        .create_integration("acme", &whatsapp(json!({"phoneNumberId": "109876543210"})))
        .await;
    let id = created["id"].as_str().expect("id");
    assert_eq!(created["config"], json!({"phoneNumberId": "109876543210"}));
    let patched = app
        .patch_json(
            "acme",
            &format!("/api/integrations/{id}"),
            &json!({"config": {"phoneNumberId": "109876543210", "phoneNumber": "x"}}),
            None,
        )
        .await;
    assert_eq!(patched.status, 400, "{}", patched.text);
    assert_eq!(error_fields(&patched), ["config.phoneNumber"]);
    let without_required = app
        .patch_json(
            "acme",
            &format!("/api/integrations/{id}"),
            &json!({"config": {}}),
            None,
        )
        .await;
    assert_eq!(error_fields(&without_required), ["config.phoneNumberId"]);
    let stored = app.get("acme", &format!("/api/integrations/{id}")).await;
    assert_eq!(
        stored.json()["config"],
        json!({"phoneNumberId": "109876543210"})
    );
    assert_eq!(stored.json()["version"], 1);
}

#[tokio::test]
async fn a_config_with_an_empty_nested_key_is_a_400_and_the_tenant_list_keeps_working() {
    let app = spawn_app().await;
    // Once such a body was stored and every later read of the tenant's integrations answered 500.
    let bodies = [
        json!({"provider": "stripe", "name": "x", "credentials": {"secretKey": "sk_test_0000000000000000"},
               "config": {"x": {"": 1}}}),
        json!({"provider": "stripe", "name": "y", "credentials": {"secretKey": "sk_test_0000000000000000"},
               "config": {"": "x"}}),
        json!({"provider": "custom_api", "name": "z", "credentials": {"apiKey": "custom-api-key-123456"},
               "config": {"baseUrl": "http://127.0.0.1:9", "entities": {"ticket": {
                   "request": {"method": "GET", "path": "/tickets"}, "records": "items", "id": "id",
                   "deleted": {"path": "state", "equals": {"": true}}}}}}),
        json!({"provider": "custom_api", "name": "h", "credentials": {"apiKey": "custom-api-key-123456"},
               "config": {"baseUrl": "http://127.0.0.1:9", "headers": {"": "v"}}}),
    ];
    for body in bodies {
        let reply = app.post_json("fuzzed", "/api/integrations", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert!(
            error_fields(&reply).iter().all(|f| f.starts_with("config")),
            "{}",
            reply.text
        );
    }

    let listed = app.get("fuzzed", "/api/integrations").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["items"], json!([]));
}

#[tokio::test]
async fn seha_and_tatman_need_a_base_url_of_their_own() {
    let app = spawn_app().await;
    for provider in ["seha", "tatman"] {
        let refused = app
            .post_json(
                "acme",
                "/api/integrations",
                &json!({"provider": provider, "name": provider, "credentials": {"apiKey": "health-api-key-0001"}}),
            )
            .await;
        assert_eq!(refused.status, 400, "{provider}: {}", refused.text);
        assert_eq!(error_fields(&refused), ["config.baseUrl"], "{provider}");

        let created = app
            .create_integration(
                "acme",
                &json!({"provider": provider, "name": provider, "credentials": {"apiKey": "health-api-key-0001"},
                        "config": {"baseUrl": "http://127.0.0.1:9/api"}}),
            )
            .await;
        assert_eq!(created["config"]["baseUrl"], "http://127.0.0.1:9/api");
    }
}

#[tokio::test]
async fn the_providers_routes_show_settings_credential_fields_and_base_url() {
    let app = spawn_app().await;

    let whatsapp = app.get("acme", "/api/providers/whatsapp_business").await;
    assert_eq!(whatsapp.status, 200, "{}", whatsapp.text);
    let body = whatsapp.json();
    let phone = body["settings"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "phoneNumberId"))
        .cloned()
        .expect("phoneNumberId is listed");
    assert_eq!(phone["required"], true, "{phone}");
    assert_eq!(phone["kind"], "string");
    assert_eq!(
        body["credentialFields"],
        json!([{"name": "accessToken", "secret": true}])
    );
    assert_eq!(body["baseUrl"], "https://graph.facebook.com/v23.0");
    assert!(!whatsapp.text.contains(WHATSAPP_TOKEN));

    let list = app.get("acme", "/api/providers").await.json();
    let google = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["slug"] == "google_calendar"))
        .cloned()
        .expect("google_calendar listed");
    assert_eq!(google["settings"][0]["name"], "calendarId");
    assert_eq!(google["settings"][0]["default"], "primary");
    assert_eq!(google["settings"][0]["required"], false);
}

/// The built-in Slack entry connects with OAuth, whose connect flow arrives later; this entry keeps
/// Slack's API and health check exactly (`auth.test` with a body condition) with a bot token as
/// its credential, so the integration can be created here.
fn slack_providers_file(base_url: &str) -> std::path::PathBuf {
    hub_tests::write_providers_file(&format!(
        "slack:
  name: Slack (bot token)
  category: communication
  auth:
    mode: api_key
    fields: [{{name: botToken, secret: true}}]
    apply: {{header: Authorization, format: \"Bearer {{botToken}}\"}}
  api:
    baseUrl: {base_url}
    healthCheck: {{method: GET, path: /auth.test, expect: {{status: 200, path: ok, equals: true}}}}
"
    ))
}

#[tokio::test]
async fn a_slack_token_answered_ok_false_fails_the_test_with_unexpected_response() {
    let slack = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/auth.test"))
        .and(header("authorization", "Bearer xoxb-revoked-0001"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "invalid_auth"})),
        )
        .mount(&slack)
        .await;
    Mock::given(method("GET"))
        .and(path("/auth.test"))
        .and(header("authorization", "Bearer xoxb-valid-0002"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "team": "Acme"})))
        .mount(&slack)
        .await;
    let file = slack_providers_file(&slack.uri());
    let app = spawn_app_with(|options| options.providers_file = Some(file.clone())).await;

    // Given a Slack integration whose token Slack answers 200 {"ok": false} for
    let created = app
        .create_integration(
            "acme",
            &json!({"provider": "slack", "name": "Slack", "credentials": {"botToken": "xoxb-revoked-0001"}}),
        )
        .await;
    let id = created["id"].as_str().expect("id");

    // When the connection is tested
    let reply = app
        .post_json("acme", &format!("/api/integrations/{id}/test"), &json!({}))
        .await;

    // Then the check fails despite the 200, the integration is in error and the log says why
    assert_eq!(reply.status, 200, "{}", reply.text);
    let result = reply.json();
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["httpStatus"], 200);
    assert_eq!(result["error"], "unexpected_response");
    let integration = app
        .get("acme", &format!("/api/integrations/{id}"))
        .await
        .json();
    assert_eq!(integration["status"], "error");
    assert!(integration["lastError"]
        .as_str()
        .is_some_and(|e| e.contains("`ok` is false, expected true")));
    let logs = app
        .get("acme", &format!("/api/integrations/{id}/logs"))
        .await
        .json();
    assert_eq!(logs["items"][0]["errorCode"], "unexpected_response");

    // And a token Slack answers {"ok": true} for passes.
    let rotated = app
        .patch_json(
            "acme",
            &format!("/api/integrations/{id}"),
            &json!({"credentials": {"botToken": "xoxb-valid-0002"}}),
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let passed = app
        .post_json("acme", &format!("/api/integrations/{id}/test"), &json!({}))
        .await
        .json();
    assert_eq!(passed["ok"], true, "{passed}");
    assert!(passed.get("error").is_none());
}
