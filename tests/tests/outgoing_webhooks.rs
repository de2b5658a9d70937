//! Outgoing webhook management end to end: create returns the signing secret once and stores it
//! only as an envelope; validation names the field and stores nothing; PATCH is versioned;
//! rotation keeps the old secret for 24 h; another tenant sees nothing.

use hub_shared::crypto::{EnvelopeCipher, SecretSlot};
use hub_shared::store::SigningSecrets;
use hub_tests::{spawn_app, spawn_app_with, TestApp};
use serde_json::{json, Value};

fn webhook(url: &str) -> Value {
    json!({"name": "CRM updates", "url": url,
           "triggers": [{"entityType": "integration", "events": ["connected", "status_changed"]},
                        {"entityType": "meeting", "events": ["*"]}]})
}

async fn open_secrets(app: &TestApp, tenant: &str, id: &str) -> SigningSecrets {
    let items = app.scan_table().await;
    let item = items
        .iter()
        .find(|item| item.get("id").and_then(|v| v.as_s().ok()) == Some(&id.to_string()))
        .expect("stored webhook");
    let envelope = item["secret"]
        .as_b()
        .expect("binary envelope")
        .as_ref()
        .to_vec();
    let cipher = EnvelopeCipher::new(
        aws_sdk_kms::Client::new(&hub_tests::sdk_config()),
        app.stack.provisioned.key_id.clone(),
    );
    cipher
        .open_json(SecretSlot::new(tenant, id, "secret"), &envelope)
        .await
        .expect("the envelope opens with its tenant, owner and field")
}

/// Creates acme's webhook to a local target: (its create answer, its id, its path).
async fn create_local_webhook(app: &TestApp) -> (Value, String, String) {
    let created = app
        .post_json(
            "acme",
            "/api/webhooks/outgoing",
            &webhook("http://127.0.0.1:9/hooks"),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    let id = created["id"].as_str().expect("id").to_string();
    let path = format!("/api/webhooks/outgoing/{id}");
    (created, id, path)
}

#[tokio::test]
async fn create_returns_the_secret_once_and_stores_it_only_as_an_envelope() {
    let app = spawn_app().await;
    let created = app
        .post_json(
            "acme",
            "/api/webhooks/outgoing",
            &webhook("http://127.0.0.1:9/hooks"),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let body = created.json();
    let secret = body["secret"]
        .as_str()
        .expect("secret shown once")
        .to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["signatureScheme"], "standard");
    assert_eq!(body["signatureHeader"], "X-Webhook-Signature");
    assert_eq!(
        (
            body["retryAttempts"].as_u64(),
            body["timeoutSeconds"].as_u64()
        ),
        (Some(3), Some(15))
    );
    assert_eq!(body["isEnabled"], true);
    assert_eq!(body["totalSent"], 0);
    let id = body["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("whout_"));

    let read = app
        .get("acme", &format!("/api/webhooks/outgoing/{id}"))
        .await;
    assert_eq!(read.status, 200);
    assert!(read.json().get("secret").is_none());
    assert!(!read.text.contains(&secret));
    let listed = app.get("acme", "/api/webhooks/outgoing").await.json();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert!(!listed.to_string().contains(&secret));

    for item in app.scan_table().await {
        assert!(
            !format!("{item:?}").contains(&secret),
            "plaintext secret in the table"
        );
    }
    let stored = open_secrets(&app, "acme", &id).await;
    assert_eq!(stored.current, secret);
    assert_eq!(stored.previous, None);
}

#[tokio::test]
async fn invalid_webhooks_are_refused_naming_the_field_and_nothing_is_stored() {
    let app = spawn_app_with(|options| options.allow_private_targets = false).await;
    let cases = [
        (json!({"url": "http://127.0.0.1:9/hooks"}), "url"),
        (json!({"url": "https://169.254.169.254/latest"}), "url"),
        (json!({"url": "ftp://files.example.com/x"}), "url"),
        (json!({"triggers": []}), "triggers"),
        (
            json!({"triggers": [{"entityType": "integration", "events": ["Connected!"]}]}),
            "triggers[0].events[0]",
        ),
        (json!({"retryAttempts": 21}), "retryAttempts"),
        (json!({"retryAttempts": 0}), "retryAttempts"),
        (json!({"timeoutSeconds": 31}), "timeoutSeconds"),
        (
            json!({"headers": {"Authorization": "Bearer x"}}),
            "headers.Authorization",
        ),
        (
            json!({"payloadTemplate": "{\"type\": \"{{type\"}"}),
            "payloadTemplate",
        ),
        (json!({"payloadTemplate": "not json"}), "payloadTemplate"),
        (
            json!({"rateLimit": {"requests": 0, "perSeconds": 1}}),
            "rateLimit.requests",
        ),
        (json!({"method": "GET"}), "method"),
        (json!({"signatureScheme": "md5"}), "signatureScheme"),
    ];
    for (change, field) in cases {
        // A public address literal: the guard allows it without DNS (nothing is sent at create).
        let mut body = webhook("https://93.184.215.14/hooks");
        for (key, value) in change.as_object().expect("object") {
            body[key] = value.clone();
        }
        let reply = app.post_json("acme", "/api/webhooks/outgoing", &body).await;
        assert_eq!(reply.status, 400, "{change}: {}", reply.text);
        let problem = reply.json();
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{change}: {fields:?}");
    }
    let listed = app.get("acme", "/api/webhooks/outgoing").await.json();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn patch_is_versioned_and_rotation_keeps_the_old_secret_for_a_day() {
    let app = spawn_app().await;
    let (created, id, path) = create_local_webhook(&app).await;
    let first_secret = created["secret"].as_str().expect("secret").to_string();

    let patched = app
        .patch_json(
            "acme",
            &path,
            &json!({"retryAttempts": 5, "payloadTemplate": "{\"t\": \"{{type}}\"}"}),
            Some("\"1\""),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["version"], 2);
    assert_eq!(patched.json()["retryAttempts"], 5);
    let stale = app
        .patch_json("acme", &path, &json!({"name": "Stale"}), Some("1"))
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    let cleared = app
        .patch_json("acme", &path, &json!({"payloadTemplate": null}), None)
        .await;
    assert_eq!(cleared.json()["payloadTemplate"], Value::Null);

    let rotated = app
        .post_json(
            "acme",
            &format!("/api/webhooks/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let rotated = rotated.json();
    let new_secret = rotated["secret"].as_str().expect("new secret").to_string();
    assert_ne!(new_secret, first_secret);
    let stored = open_secrets(&app, "acme", &id).await;
    assert_eq!(stored.current, new_secret);
    assert_eq!(stored.previous.as_deref(), Some(first_secret.as_str()));
    let expires = chrono::DateTime::parse_from_rfc3339(
        stored.previous_expires_at.as_deref().expect("expiry"),
    )
    .expect("rfc3339");
    let hours =
        (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours}");
    assert_eq!(
        rotated["previousExpiresAt"],
        json!(stored.previous_expires_at)
    );
}

#[tokio::test]
async fn another_tenant_can_neither_see_change_rotate_nor_delete_a_webhook() {
    let app = spawn_app().await;
    let (_, id, path) = create_local_webhook(&app).await;
    assert_eq!(app.get("intruder", &path).await.status, 404);
    assert_eq!(
        app.patch_json("intruder", &path, &json!({"name": "Mine"}), None)
            .await
            .status,
        404
    );
    assert_eq!(
        app.post_json(
            "intruder",
            &format!("/api/webhooks/{id}/rotate-secret"),
            &json!({})
        )
        .await
        .status,
        404
    );
    assert_eq!(app.delete("intruder", &path).await.status, 404);
    assert_eq!(
        app.get("intruder", "/api/webhooks/outgoing").await.json()["items"],
        json!([])
    );
    assert_eq!(app.get("acme", &path).await.json()["name"], "CRM updates");
    assert_eq!(app.delete("acme", &path).await.status, 204);
    assert_eq!(app.get("acme", &path).await.status, 404);
}
