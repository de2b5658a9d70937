//! Incoming webhook management end to end: create returns a generated secret (and the forward
//! secret) once and stores secrets only as envelopes; each scheme takes exactly its fields;
//! validation names the field in API terms and stores nothing; PATCH is versioned; rotate-secret
//! rotates what the hub generated and refuses what a provider gave; the dry run computes what the
//! actions would do and writes nothing; receipts are listed and read like attempt logs but not
//! retried; another tenant sees none of it.

use std::collections::BTreeMap;

use hub_shared::crypto::{EnvelopeCipher, SecretSlot};
use hub_shared::domain::{IncomingWebhookId, LogId, TenantId};
use hub_shared::services::Services;
use hub_shared::store::{
    ActionOutcome, ReceiptLog, ReceiptOutcome, ReceivedSnapshot, VerificationSecrets,
};
use hub_tests::{spawn_app, spawn_app_with, TestApp};
use serde_json::{json, Value};

const STRIPE_SECRET: &str = "whsec_stripe_given_0123456789abcdef";
const META_APP_SECRET: &str = "meta-app-secret-0123456789";
const META_VERIFY_TOKEN: &str = "meta-verify-token-42";
/// The base64 DER (SubjectPublicKeyInfo) of a P-256 public key, as SendGrid shows it.
const SENDGRID_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXuzuTKHZlDUwSFJLHIYRy2BK8zM/GkXNh1naOr069jmxC4nc6BznudbZHkmBc83C2TgFFIwi80DdeC2pCHv+yA==";

fn webhook(verification: Value) -> Value {
    json!({"name": "Payments", "verification": verification})
}

async fn create(app: &TestApp, tenant: &str, body: &Value) -> Value {
    let created = app.post_json(tenant, "/api/webhooks/incoming", body).await;
    assert_eq!(created.status, 201, "{body}: {}", created.text);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let created = created.json();
    let id = created["id"].as_str().expect("id");
    assert!(id.starts_with("whin_"), "{id}");
    created
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("id").to_string()
}

/// acme's custom_webhook integration (entity actions write under an integration).
async fn integration(app: &TestApp, tenant: &str) -> String {
    let created = app
        .create_integration(
            tenant,
            &json!({"provider": "custom_webhook", "name": "Hooks"}),
        )
        .await;
    id_of(&created)
}

/// The stored item of webhook `id`, as a table scan sees it.
async fn stored(
    app: &TestApp,
    id: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    app.scan_table()
        .await
        .into_iter()
        .find(|item| item.get("id").and_then(|v| v.as_s().ok()) == Some(&id.to_string()))
        .expect("stored webhook")
}

async fn open_verification(app: &TestApp, tenant: &str, id: &str) -> VerificationSecrets {
    let item = stored(app, id).await;
    let envelope = item["verification"]
        .as_b()
        .expect("binary envelope")
        .as_ref();
    let cipher = EnvelopeCipher::new(
        aws_sdk_kms::Client::new(&hub_tests::sdk_config()),
        app.stack.provisioned.key_id.clone(),
    );
    cipher
        .open_json(SecretSlot::new(tenant, id, "verification"), envelope)
        .await
        .expect("the envelope opens with its tenant, owner and field")
}

async fn open_forward(app: &TestApp, tenant: &str, id: &str, attribute: &str) -> String {
    let item = stored(app, id).await;
    let envelope = item[attribute].as_b().expect("binary envelope").as_ref();
    let cipher = EnvelopeCipher::new(
        aws_sdk_kms::Client::new(&hub_tests::sdk_config()),
        app.stack.provisioned.key_id.clone(),
    );
    cipher
        .open_json(SecretSlot::new(tenant, id, "forwardSecret"), envelope)
        .await
        .expect("the forward envelope opens with the field forwardSecret")
}

async fn rotate(app: &TestApp, tenant: &str, id: &str, query: &str) -> hub_tests::Reply {
    app.post_json(
        tenant,
        &format!("/api/webhooks/{id}/rotate-secret{query}"),
        &json!({}),
    )
    .await
}

fn fields_of(reply: &hub_tests::Reply) -> Vec<String> {
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

#[tokio::test]
async fn each_scheme_stores_its_secrets_only_as_envelopes_and_shows_a_generated_one_once() {
    // Given the local stack
    let app = spawn_app().await;

    // When acme creates one webhook per scheme, giving the secrets providers issue
    let cases = [
        (json!({"scheme": "standard"}), true),
        (json!({"scheme": "hmac_sha256"}), true),
        (
            json!({"scheme": "hmac_sha256", "secret": "given-hmac-secret", "signatureHeader": "X-Acme-Signature"}),
            false,
        ),
        (json!({"scheme": "stripe", "secret": STRIPE_SECRET}), false),
        (
            json!({"scheme": "github", "secret": "github-secret-1"}),
            false,
        ),
        (
            json!({"scheme": "slack", "secret": "slack-signing-1"}),
            false,
        ),
        (
            json!({"scheme": "meta", "secret": META_APP_SECRET, "verifyToken": META_VERIFY_TOKEN}),
            false,
        ),
        (
            json!({"scheme": "twilio", "secret": "twilio-auth-token"}),
            false,
        ),
        (
            json!({"scheme": "shopify", "secret": "shopify-secret-1"}),
            false,
        ),
        (
            json!({"scheme": "hubspot_v3", "secret": "hubspot-secret-1"}),
            false,
        ),
        (
            json!({"scheme": "sendgrid", "publicKey": SENDGRID_KEY}),
            false,
        ),
        (json!({"scheme": "google_channel"}), true),
        (json!({"scheme": "none"}), false),
    ];
    let mut secrets = vec![
        STRIPE_SECRET.to_string(),
        META_APP_SECRET.to_string(),
        META_VERIFY_TOKEN.to_string(),
        "given-hmac-secret".to_string(),
        "twilio-auth-token".to_string(),
    ];
    let mut ids = Vec::new();
    for (verification, generated) in cases {
        let created = create(&app, "acme", &webhook(verification.clone())).await;
        let id = id_of(&created);
        let scheme = verification["scheme"].as_str().expect("scheme");

        // Then the resource describes the verification without any secret, and a generated
        // secret is in this answer only
        assert_eq!(created["verification"]["scheme"], scheme);
        assert_eq!(
            created["url"],
            format!(
                "{}/api/webhooks/tenant/acme/{id}",
                app.stack.config.public_base_url
            )
        );
        assert_eq!(created["insecure"], scheme == "none", "{scheme}");
        assert_eq!(created["totalReceived"], 0);
        assert_eq!(created["lastReceivedAt"], Value::Null);
        assert!(created.get("forwardSecret").is_none());
        match created.get("secret").and_then(Value::as_str) {
            Some(secret) => {
                assert!(generated, "{scheme}: a given secret is never echoed");
                assert!(secret.starts_with("whsec_"), "{secret}");
                secrets.push(secret.to_string());
                let stored = open_verification(&app, "acme", &id).await;
                assert_eq!(stored.secret.as_deref(), Some(secret));
            }
            None => assert!(
                !generated,
                "{scheme}: a generated secret is shown on create"
            ),
        }
        ids.push((id, scheme.to_string(), verification));
    }

    // and GET and the list show exactly the same, never a secret
    for (id, scheme, verification) in &ids {
        let read = app
            .get("acme", &format!("/api/webhooks/incoming/{id}"))
            .await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(read.header("etag"), Some("\"1\""));
        let read = read.json();
        assert!(read.get("secret").is_none());
        let expected_header = match (scheme.as_str(), verification.get("signatureHeader")) {
            ("hmac_sha256", Some(header)) => header.clone(),
            ("hmac_sha256", None) => json!("X-Webhook-Signature"),
            _ => Value::Null,
        };
        assert_eq!(
            read["verification"]["signatureHeader"], expected_header,
            "{scheme}"
        );
        assert_eq!(
            read["verification"]["verifyTokenConfigured"],
            scheme == "meta",
            "{scheme}"
        );
        let expected_key = if scheme == "sendgrid" {
            json!(SENDGRID_KEY)
        } else {
            Value::Null
        };
        assert_eq!(read["verification"]["publicKey"], expected_key, "{scheme}");
    }
    let meta = &ids[6].0;
    let stored = open_verification(&app, "acme", meta).await;
    assert_eq!(
        (stored.secret.as_deref(), stored.verify_token.as_deref()),
        (Some(META_APP_SECRET), Some(META_VERIFY_TOKEN))
    );
    let listed = app
        .get("acme", "/api/webhooks/incoming?limit=100")
        .await
        .json();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(ids.len()));
    let first_page = app
        .get("acme", "/api/webhooks/incoming?limit=5")
        .await
        .json();
    assert_eq!(first_page["items"].as_array().map(Vec::len), Some(5));
    assert!(first_page["nextCursor"].is_string());

    // and the table holds every secret only inside envelopes
    for item in app.scan_table().await {
        let text = format!("{item:?}");
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "plaintext secret in the table"
            );
        }
    }
    for body in app.response_bodies().iter().skip(ids.len()) {
        for secret in &secrets {
            assert!(
                !body.contains(secret.as_str()),
                "a secret read back: {body}"
            );
        }
    }
}

#[tokio::test]
async fn a_forward_action_brings_a_forward_secret_shown_once() {
    let app = spawn_app().await;
    let created = create(
        &app,
        "acme",
        &json!({"name": "Relay", "verification": {"scheme": "github", "secret": "gh-1"},
                "actions": [{"type": "forward", "config": {"forwardUrl": "http://127.0.0.1:9/hooks",
                             "forwardHeaders": {"X-Relay": "hub"}}}]}),
    )
    .await;
    let id = id_of(&created);
    let forward_secret = created["forwardSecret"]
        .as_str()
        .expect("forward secret once");
    assert!(forward_secret.starts_with("whsec_"));
    assert_eq!(
        created["actions"],
        json!([{"type": "forward", "config": {"forwardUrl": "http://127.0.0.1:9/hooks",
               "forwardHeaders": {"X-Relay": "hub"}, "retryAttempts": 5, "retryDelaySeconds": 30}}])
    );
    assert_eq!(
        open_forward(&app, "acme", &id, "forwardSecret").await,
        forward_secret
    );
    let read = app
        .get("acme", &format!("/api/webhooks/incoming/{id}"))
        .await;
    assert!(!read.text.contains(forward_secret));
    assert!(read.json().get("forwardSecret").is_none());
    for item in app.scan_table().await {
        assert!(!format!("{item:?}").contains(forward_secret));
    }
}

#[tokio::test]
async fn invalid_webhooks_are_refused_naming_the_field_and_nothing_is_stored() {
    // Given a stack that refuses private targets, and one integration of acme
    let app = spawn_app_with(|options| options.allow_private_targets = false).await;
    let integration = integration(&app, "acme").await;
    let entity = |config: Value| json!([{"type": "create_entity", "config": config}]);
    let forward = |config: Value| json!([{"type": "forward", "config": config}]);
    let stripe = json!({"scheme": "stripe", "secret": STRIPE_SECRET});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": ""}), "name"),
        (json!({"verification": {"scheme": "stripe"}}), "verification.secret"),
        (json!({"verification": {"scheme": "stripe", "secret": ""}}), "verification.secret"),
        (
            json!({"verification": {"scheme": "stripe", "secret": "s".repeat(513)}}),
            "verification.secret",
        ),
        (
            json!({"verification": {"scheme": "standard", "secret": "not-whsec"}}),
            "verification.secret",
        ),
        (
            json!({"verification": {"scheme": "standard", "secret": "whsec_!!"}}),
            "verification.secret",
        ),
        (
            json!({"verification": {"scheme": "google_channel", "secret": "t".repeat(257)}}),
            "verification.secret",
        ),
        (
            json!({"verification": {"scheme": "stripe", "secret": "x", "verifyToken": "t"}}),
            "verification.verifyToken",
        ),
        (
            json!({"verification": {"scheme": "github", "secret": "x", "signatureHeader": "X-Sig"}}),
            "verification.signatureHeader",
        ),
        (
            json!({"verification": {"scheme": "hmac_sha256", "signatureHeader": "bad header"}}),
            "verification.signatureHeader",
        ),
        (
            json!({"verification": {"scheme": "hmac_sha256", "signatureHeader": "X-Webhook-Id"}}),
            "verification.signatureHeader",
        ),
        (
            json!({"verification": {"scheme": "meta", "secret": "x", "verifyToken": ""}}),
            "verification.verifyToken",
        ),
        (json!({"verification": {"scheme": "sendgrid"}}), "verification.publicKey"),
        (
            json!({"verification": {"scheme": "sendgrid", "publicKey": "not base64!"}}),
            "verification.publicKey",
        ),
        (
            json!({"verification": {"scheme": "sendgrid", "publicKey": "AAAA"}}),
            "verification.publicKey",
        ),
        (
            json!({"verification": {"scheme": "sendgrid", "publicKey": SENDGRID_KEY, "secret": "x"}}),
            "verification.secret",
        ),
        (
            json!({"verification": {"scheme": "none", "secret": "x"}}),
            "verification.secret",
        ),
        (json!({"verification": {"scheme": "md5"}}), "verification.scheme"),
        (
            json!({"verification": {"scheme": "stripe", "secret": "x", "colour": "red"}}),
            "verification.colour",
        ),
        (json!({"integrationId": "int_00000000000000000000000000"}), "integrationId"),
        (json!({"integrationId": "nope"}), "integrationId"),
        (
            json!({"actions": entity(json!({"entityType": "payment", "idPath": "id"}))}),
            "integrationId",
        ),
        (
            json!({"integrationId": integration, "actions": entity(json!({"entityType": "integration", "idPath": "id"}))}),
            "actions[0].config.entityType",
        ),
        (
            json!({"integrationId": integration, "actions": entity(json!({"entityType": "payment", "idPath": "a..b"}))}),
            "actions[0].config.idPath",
        ),
        (
            json!({"integrationId": integration, "actions": entity(json!({"entityType": "payment", "idPath": "id",
                "fieldMappings": (0..51).map(|i| (format!("f{i}"), json!("x"))).collect::<serde_json::Map<_, _>>()}))}),
            "actions[0].config.fieldMappings",
        ),
        (
            json!({"integrationId": integration, "actions": entity(json!({"entityType": "payment", "idPath": "id",
                "fieldMappings": {"k".repeat(65): "x"}}))}),
            "actions[0].config.fieldMappings.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
        ),
        (
            json!({"actions": forward(json!({"forwardUrl": "http://127.0.0.1:9/hooks"}))}),
            "actions[0].config.forwardUrl",
        ),
        (
            json!({"actions": forward(json!({"forwardUrl": "ftp://files.example.com/x"}))}),
            "actions[0].config.forwardUrl",
        ),
        (
            json!({"actions": forward(json!({"forwardUrl": "https://93.184.215.14/hooks",
                "forwardHeaders": {"Authorization": "Bearer x"}}))}),
            "actions[0].config.forwardHeaders.Authorization",
        ),
        (
            json!({"actions": forward(json!({"forwardUrl": "https://93.184.215.14/hooks", "retryAttempts": 21}))}),
            "actions[0].config.retryAttempts",
        ),
        (
            json!({"actions": forward(json!({"forwardUrl": "https://93.184.215.14/hooks", "retryDelaySeconds": 0}))}),
            "actions[0].config.retryDelaySeconds",
        ),
        (
            json!({"actions": forward(json!({"forwardURL": "https://93.184.215.14/hooks"}))}),
            "actions[0].config.forwardURL",
        ),
        (
            json!({"actions": [{"type": "trigger_sync", "config": {"entities": ["event"]}}]}),
            "actions[0].config.integrationId",
        ),
        (
            json!({"actions": [{"type": "trigger_sync", "config": {"integrationId": "int_00000000000000000000000000"}}]}),
            "actions[0].config.integrationId",
        ),
        (
            json!({"actions": [{"type": "trigger_sync", "config": {"integrationId": integration,
                "entities": (0..21).map(|i| format!("e{i}")).collect::<Vec<_>>()}}]}),
            "actions[0].config.entities",
        ),
        (
            json!({"actions": [{"type": "trigger_automation", "config": {"automationId": ""}}]}),
            "actions[0].config.automationId",
        ),
        (
            json!({"actions": [{"type": "launch_rocket", "config": {}}]}),
            "actions[0].type",
        ),
        (
            json!({"actions": (0..11).map(|i| json!({"type": "trigger_automation",
                "config": {"automationId": format!("auto_{i}")}})).collect::<Vec<_>>()}),
            "actions",
        ),
        (json!({"filters": {"bodyPath": "type"}}), "filters.bodyValue"),
        (json!({"filters": {"bodyValue": "x"}}), "filters.bodyPath"),
        (
            json!({"filters": {"headers": (0..21).map(|i| (format!("x-h{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}}),
            "filters.headers",
        ),
        (json!({"filters": {"headers": {"bad header": "v"}}}), "filters.headers.bad header"),
    ];
    for (change, field) in cases {
        // When a create differs from a valid one in one way
        let mut body = json!({"name": "Payments", "verification": stripe});
        for (key, value) in change.as_object().expect("object") {
            body[key] = value.clone();
        }
        let reply = app.post_json("acme", "/api/webhooks/incoming", &body).await;

        // Then it is refused naming the field
        assert_eq!(reply.status, 400, "{change}: {}", reply.text);
        assert_eq!(reply.json()["code"], "validation_failed");
        let fields = fields_of(&reply);
        assert!(fields.iter().any(|f| f == field), "{change}: {fields:?}");
    }
    // and nothing was stored
    let listed = app.get("acme", "/api/webhooks/incoming").await.json();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn patch_is_versioned_and_verification_changes_follow_the_scheme() {
    let app = spawn_app().await;
    let integration = integration(&app, "acme").await;
    let created = create(
        &app,
        "acme",
        &webhook(json!({"scheme": "stripe", "secret": STRIPE_SECRET})),
    )
    .await;
    let id = id_of(&created);
    let path = format!("/api/webhooks/incoming/{id}");

    // A versioned change of name and filters, then a stale one
    let patched = app
        .patch_json(
            "acme",
            &path,
            &json!({"name": "Stripe invoices", "filters": {"bodyPath": "type", "bodyValue": "invoice.paid"}}),
            Some("\"1\""),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.header("etag"), Some("\"2\""));
    let patched = patched.json();
    assert_eq!(
        (patched["version"].as_u64(), patched["name"].as_str()),
        (Some(2), Some("Stripe invoices"))
    );
    assert_eq!(
        patched["filters"],
        json!({"bodyPath": "type", "bodyValue": "invoice.paid"})
    );
    let stale = app
        .patch_json("acme", &path, &json!({"name": "Stale"}), Some("1"))
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(stale.json()["code"], "precondition_failed");
    let empty = app.patch_json("acme", &path, &json!({}), None).await;
    assert_eq!(empty.status, 400);

    // A new provider secret replaces the old one at once, and nothing is echoed
    let new_secret = "whsec_stripe_rolled_9876543210";
    let rolled = app
        .patch_json(
            "acme",
            &path,
            &json!({"verification": {"scheme": "stripe", "secret": new_secret}}),
            None,
        )
        .await;
    assert_eq!(rolled.status, 200, "{}", rolled.text);
    assert!(!rolled.text.contains(new_secret));
    assert!(rolled.json().get("secret").is_none());
    let stored = open_verification(&app, "acme", &id).await;
    assert_eq!(stored.secret.as_deref(), Some(new_secret));
    assert_eq!(stored.previous_secret, None);

    // A field the scheme does not use is refused; an entity action needs the integration
    let refused = app
        .patch_json(
            "acme",
            &path,
            &json!({"verification": {"scheme": "stripe", "verifyToken": "x"}}),
            None,
        )
        .await;
    assert_eq!(fields_of(&refused), ["verification.verifyToken"]);
    let entity = json!([{"type": "update_entity", "config": {"entityType": "payment", "idPath": "data.object.id"}}]);
    let refused = app
        .patch_json("acme", &path, &json!({"actions": entity}), None)
        .await;
    assert_eq!(fields_of(&refused), ["integrationId"]);

    // Switching to meta needs its app secret; switching to standard generates a secret, shown once
    let refused = app
        .patch_json(
            "acme",
            &path,
            &json!({"verification": {"scheme": "meta"}}),
            None,
        )
        .await;
    assert_eq!(fields_of(&refused), ["verification.secret"]);
    let switched = app
        .patch_json(
            "acme",
            &path,
            &json!({"verification": {"scheme": "standard"}, "integrationId": integration,
                    "actions": entity}),
            None,
        )
        .await;
    assert_eq!(switched.status, 200, "{}", switched.text);
    let switched = switched.json();
    let generated = switched["secret"].as_str().expect("generated secret, once");
    assert!(generated.starts_with("whsec_"));
    assert_eq!(switched["verification"]["scheme"], "standard");
    assert_eq!(switched["integrationId"], integration.as_str());
    assert_eq!(
        open_verification(&app, "acme", &id).await.secret.as_deref(),
        Some(generated)
    );

    // The integration cannot be removed while entity actions need it
    let refused = app
        .patch_json("acme", &path, &json!({"integrationId": null}), None)
        .await;
    assert_eq!(fields_of(&refused), ["integrationId"]);

    // Adding the first forward action generates the forward secret, shown in that answer only
    let forwarding = app
        .patch_json(
            "acme",
            &path,
            &json!({"actions": [{"type": "forward", "config": {"forwardUrl": "http://127.0.0.1:9/x"}}],
                    "integrationId": null, "isEnabled": false, "description": "relay"}),
            None,
        )
        .await;
    assert_eq!(forwarding.status, 200, "{}", forwarding.text);
    let forwarding = forwarding.json();
    let forward_secret = forwarding["forwardSecret"]
        .as_str()
        .expect("forward secret");
    assert_eq!(
        (
            forwarding["isEnabled"].as_bool(),
            forwarding["integrationId"].is_null()
        ),
        (Some(false), true)
    );
    assert!(forwarding.get("secret").is_none());
    let again = app
        .patch_json("acme", &path, &json!({"description": null}), None)
        .await
        .json();
    assert!(again.get("forwardSecret").is_none());
    assert_eq!(
        open_forward(&app, "acme", &id, "forwardSecret").await,
        forward_secret
    );
}

#[tokio::test]
async fn rotate_secret_rotates_what_the_hub_generated_and_refuses_what_a_provider_gave() {
    let app = spawn_app().await;
    let standard = create(&app, "acme", &webhook(json!({"scheme": "standard"}))).await;
    let standard_id = id_of(&standard);
    let first = standard["secret"].as_str().expect("secret").to_string();

    // A generated secret rotates; the old one stays valid 24 h
    let rotated = rotate(&app, "acme", &standard_id, "").await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.header("etag"), Some("\"2\""));
    let rotated = rotated.json();
    let second = rotated["secret"].as_str().expect("new secret").to_string();
    assert_ne!(second, first);
    let stored = open_verification(&app, "acme", &standard_id).await;
    assert_eq!(stored.secret.as_deref(), Some(second.as_str()));
    assert_eq!(stored.previous_secret.as_deref(), Some(first.as_str()));
    assert_eq!(
        rotated["previousExpiresAt"],
        json!(stored.previous_expires_at)
    );
    let expires = chrono::DateTime::parse_from_rfc3339(
        stored.previous_expires_at.as_deref().expect("expiry"),
    )
    .expect("rfc3339");
    let hours =
        (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours}");
    assert_eq!(
        stored.valid_secrets(chrono::Utc::now()),
        [second.as_str(), first.as_str()]
    );
    let target = rotate(&app, "acme", &standard_id, "?target=verification").await;
    assert_eq!(target.status, 200, "{}", target.text);

    // A provider's secret, and a tenant-given hmac secret, are not rotated here
    let stripe = create(
        &app,
        "acme",
        &webhook(json!({"scheme": "stripe", "secret": STRIPE_SECRET})),
    )
    .await;
    let refused = rotate(&app, "acme", &id_of(&stripe), "").await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json()["code"], "not_supported");
    assert!(refused.json()["detail"]
        .as_str()
        .is_some_and(|detail| detail.contains("verification.secret")));
    let given = create(
        &app,
        "acme",
        &webhook(json!({"scheme": "hmac_sha256", "secret": "tenant-chosen"})),
    )
    .await;
    assert_eq!(rotate(&app, "acme", &id_of(&given), "").await.status, 400);

    // target=forward rotates the forward secret when there is one; other targets are refused
    assert_eq!(
        rotate(&app, "acme", &standard_id, "?target=forward")
            .await
            .status,
        400
    );
    let banana = rotate(&app, "acme", &standard_id, "?target=banana").await;
    assert_eq!(fields_of(&banana), ["target"]);
    let relay = create(
        &app,
        "acme",
        &json!({"name": "Relay", "verification": {"scheme": "none"},
                "actions": [{"type": "forward", "config": {"forwardUrl": "http://127.0.0.1:9/x"}}]}),
    )
    .await;
    let relay_id = id_of(&relay);
    let old_forward = relay["forwardSecret"]
        .as_str()
        .expect("forward")
        .to_string();
    let rotated = rotate(&app, "acme", &relay_id, "?target=forward").await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_forward = rotated.json()["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    assert_ne!(new_forward, old_forward);
    assert_eq!(
        open_forward(&app, "acme", &relay_id, "forwardSecret").await,
        new_forward
    );
    assert_eq!(
        open_forward(&app, "acme", &relay_id, "forwardSecretPrevious").await,
        old_forward
    );
    // the verification of a scheme without secret is not rotated
    assert_eq!(rotate(&app, "acme", &relay_id, "").await.status, 400);

    // an outgoing webhook takes no target
    let outgoing = app
        .post_json(
            "acme",
            "/api/webhooks/outgoing",
            &json!({"name": "Out", "url": "http://127.0.0.1:9/hooks",
                    "triggers": [{"entityType": "integration", "events": ["connected"]}]}),
        )
        .await
        .json();
    let refused = rotate(&app, "acme", &id_of(&outgoing), "?target=forward").await;
    assert_eq!(fields_of(&refused), ["target"]);
}

#[tokio::test]
async fn a_dry_run_shows_what_the_actions_would_do_and_writes_nothing() {
    // Given a webhook filtering on a header and a body value, with one action of each kind
    let app = spawn_app().await;
    let integration = integration(&app, "acme").await;
    let created = create(
        &app,
        "acme",
        &json!({"name": "Payments", "integrationId": integration,
            "verification": {"scheme": "stripe", "secret": STRIPE_SECRET},
            "filters": {"headers": {"X-Event-Type": "payment"}, "bodyPath": "type", "bodyValue": "invoice.paid"},
            "actions": [
                {"type": "create_entity", "config": {"entityType": "payment", "idPath": "data.object.id",
                  "fieldMappings": {"amount": "data.object.amount_paid", "currency": "data.object.currency",
                                    "note": "data.object.missing"}}},
                {"type": "forward", "config": {"forwardUrl": "http://127.0.0.1:9/hooks"}},
                {"type": "trigger_sync", "config": {"entities": ["event"]}},
                {"type": "trigger_automation", "config": {"automationId": "auto_42"}}
            ]}),
    )
    .await;
    let id = id_of(&created);
    let path = format!("/api/webhooks/{id}/test");
    let items_before = app.scan_table().await.len();
    let paid = json!({"type": "invoice.paid", "data": {"object": {"id": 12345, "amount_paid": 500, "currency": "eur"}}});

    // When a matching body is tried
    let tried = app
        .post_json(
            "acme",
            &path,
            &json!({"body": paid, "headers": {"X-Event-Type": "payment"}}),
        )
        .await;

    // Then every action would run, with what it would do
    assert_eq!(tried.status, 200, "{}", tried.text);
    assert_eq!(
        tried.json(),
        json!({"matched": true, "actions": [
            {"type": "create_entity", "wouldRun": true,
             "result": {"entityType": "payment", "id": "12345", "data": {"amount": 500, "currency": "eur"}}},
            {"type": "forward", "wouldRun": true, "result": {"forwardUrl": "http://127.0.0.1:9/hooks"}},
            {"type": "trigger_sync", "wouldRun": true, "result": {"integrationId": integration, "entities": ["event"]}},
            {"type": "trigger_automation", "wouldRun": true, "result": {"automationId": "auto_42"}}
        ]})
    );

    // A body the filters do not match, one without the id, and one that is not JSON
    let other = app
        .post_json(
            "acme",
            &path,
            &json!({"body": {"type": "invoice.created"}, "headers": {"X-Event-Type": "payment"}}),
        )
        .await
        .json();
    assert_eq!(other["matched"], false);
    assert!(other["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .all(|action| action["wouldRun"] == false));
    assert_eq!(
        other["actions"][0]["result"],
        json!({"error": "the body has no value at idPath `data.object.id`"})
    );
    let text = app
        .post_json("acme", &path, &json!({"body": "plain text"}))
        .await
        .json();
    assert_eq!(text["matched"], false);
    assert!(text["actions"][0]["result"]["error"]
        .as_str()
        .is_some_and(|e| e.contains("not JSON")));
    let raw_json = app
        .post_json(
            "acme",
            &path,
            &json!({"body": paid.to_string(), "headers": {"x-event-type": "payment"}}),
        )
        .await
        .json();
    assert_eq!(raw_json["matched"], true, "a string body is the raw text");

    // Bad requests are named; nothing was written
    let refused = app
        .post_json(
            "acme",
            &path,
            &json!({"headers": {"bad header": "x"}, "body": {}}),
        )
        .await;
    assert_eq!(fields_of(&refused), ["headers.bad header"]);
    let refused = app.post_json("acme", &path, &json!({})).await;
    assert_eq!(fields_of(&refused), ["body"]);
    assert_eq!(app.scan_table().await.len(), items_before);
    let logs = app.get("acme", &format!("/api/webhooks/{id}/logs")).await;
    assert_eq!(logs.json()["items"], json!([]));
}

#[tokio::test]
async fn receipts_are_listed_newest_first_read_by_id_and_not_retried() {
    // Given a webhook with two receipts written by the store (as the receiver would)
    let app = spawn_app().await;
    let created = create(&app, "acme", &webhook(json!({"scheme": "standard"}))).await;
    let id = id_of(&created);
    let services =
        Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");
    let tenant = TenantId::parse("acme").expect("tenant");
    let webhook_id = IncomingWebhookId::parse(&id).expect("id");
    let mut logged = Vec::new();
    for (status, error) in [
        (ReceiptOutcome::Rejected, Some("invalid_signature")),
        (ReceiptOutcome::Processed, None),
    ] {
        let log = ReceiptLog {
            id: LogId::generate(),
            webhook_id: webhook_id.clone(),
            event_id: None,
            status,
            error_code: error.map(str::to_string),
            error_message: error.map(|_| "no signature matched".to_string()),
            received_at: hub_shared::store::timestamp(chrono::Utc::now()),
            completed_at: None,
            request: ReceivedSnapshot {
                method: "POST".into(),
                headers: BTreeMap::from([
                    ("content-type".to_string(), "application/json".to_string()),
                    ("webhook-signature".to_string(), "[redacted]".to_string()),
                ]),
                content_type: Some("application/json".into()),
                body_bytes: 42,
            },
            actions: vec![ActionOutcome {
                r#type: "create_entity".into(),
                status: "success".into(),
                attempts: 1,
                error_message: None,
                result: Some(json!({"id": "in_1"})),
            }],
        };
        services
            .store
            .put_receipt_log(&tenant, &log)
            .await
            .expect("receipt written");
        logged.push(log);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // When acme lists the webhook's logs
    let listed = app.get("acme", &format!("/api/webhooks/{id}/logs")).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let items = listed.json()["items"].as_array().cloned().expect("items");

    // Then both receipts are listed, newest first, without request and actions
    assert_eq!(
        items.iter().map(|i| i["id"].clone()).collect::<Vec<_>>(),
        [json!(logged[1].id), json!(logged[0].id)]
    );
    assert_eq!(items[1]["status"], "rejected");
    assert_eq!(items[1]["errorCode"], "invalid_signature");
    assert!(items
        .iter()
        .all(|i| i.get("request").is_none() && i.get("actions").is_none()));
    let page = app
        .get("acme", &format!("/api/webhooks/{id}/logs?limit=1"))
        .await
        .json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert!(page["nextCursor"].is_string());

    // and one read by id has its request snapshot and actions, and cannot be retried
    let read = app
        .get("acme", &format!("/api/webhook-logs/{}", logged[1].id))
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    let read = read.json();
    assert_eq!(read["request"]["bodyBytes"], 42);
    assert_eq!(read["actions"][0]["type"], "create_entity");
    let retried = app
        .post_json(
            "acme",
            &format!("/api/webhook-logs/{}/retry", logged[1].id),
            &json!({}),
        )
        .await;
    assert_eq!(retried.status, 409, "{}", retried.text);
    assert!(retried.json()["detail"]
        .as_str()
        .is_some_and(|detail| detail.contains("receipt")));

    // and another tenant finds neither the list nor the log
    assert_eq!(
        app.get("globex", &format!("/api/webhooks/{id}/logs"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("globex", &format!("/api/webhook-logs/{}", logged[1].id))
            .await
            .status,
        404
    );

    // and the stats update is one atomic count, quiet for a deleted webhook
    let at = hub_shared::store::timestamp(chrono::Utc::now());
    for _ in 0..2 {
        services
            .store
            .record_receipt_stats(&tenant, &webhook_id, &at)
            .await
            .expect("stats");
    }
    let read = app
        .get("acme", &format!("/api/webhooks/incoming/{id}"))
        .await;
    assert_eq!(read.json()["totalReceived"], 2);
    assert_eq!(read.json()["lastReceivedAt"], at.as_str());
    assert_eq!(
        read.header("etag"),
        Some("\"1\""),
        "stats do not bump the version"
    );
    services
        .store
        .record_receipt_stats(&tenant, &IncomingWebhookId::generate(), &at)
        .await
        .expect("a missing webhook is not an error");
}

#[tokio::test]
async fn another_tenant_can_neither_see_change_rotate_test_nor_delete_a_webhook() {
    let app = spawn_app().await;
    let created = create(&app, "acme", &webhook(json!({"scheme": "standard"}))).await;
    let id = id_of(&created);
    let path = format!("/api/webhooks/incoming/{id}");
    assert_eq!(app.get("intruder", &path).await.status, 404);
    assert_eq!(
        app.patch_json("intruder", &path, &json!({"name": "Mine"}), None)
            .await
            .status,
        404
    );
    assert_eq!(rotate(&app, "intruder", &id, "").await.status, 404);
    assert_eq!(
        app.post_json(
            "intruder",
            &format!("/api/webhooks/{id}/test"),
            &json!({"body": {}})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.get("intruder", &format!("/api/webhooks/{id}/logs"))
            .await
            .status,
        404
    );
    assert_eq!(app.delete("intruder", &path).await.status, 404);
    assert_eq!(
        app.get("intruder", "/api/webhooks/incoming").await.json()["items"],
        json!([])
    );
    // an id of neither kind is not found on the shared paths
    for shared in ["rotate-secret", "test"] {
        let reply = app
            .post_json(
                "acme",
                &format!("/api/webhooks/int_00000000000000000000000000/{shared}"),
                &json!({"body": {}}),
            )
            .await;
        assert_eq!(reply.status, 404, "{shared}");
    }
    assert_eq!(app.get("acme", &path).await.json()["name"], "Payments");
    assert_eq!(app.delete("acme", &path).await.status, 204);
    assert_eq!(app.get("acme", &path).await.status, 404);
    assert_eq!(app.delete("acme", &path).await.status, 404);
}
