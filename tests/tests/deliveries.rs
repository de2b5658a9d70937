//! Outgoing deliveries end to end: events the management API causes travel through the dispatch
//! queue and the retry dispatcher (the local stack's queue poller) to a local HTTP target, signed,
//! retried with growing gaps under one `webhook-id`, rate limited, disabled on 410, refused for
//! private targets, filtered by triggers, kept per tenant, signed twice after a rotation, and shaped
//! by payload templates. Signatures are checked by the `standardwebhooks` PyPI package.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hub_shared::domain::{DisplayName, OutgoingWebhookId, TenantId};
use hub_shared::events::{Event, TriggerInput, Triggers};
use hub_shared::services::Services;
use hub_shared::store::{DeliveryMethod, NewOutgoingWebhook, OutgoingWebhookItem, SigningSecrets};
use hub_shared::webhooks::sign::{generate_secret, SignatureScheme};
use hub_tests::{spawn_app, spawn_app_with, verify_in_python, TestApp};
use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

/// A target that answers the given statuses in turn (the last one from then on) and records what
/// it received and when.
#[derive(Clone)]
struct Target {
    statuses: Arc<Vec<u16>>,
    seen: Arc<Mutex<Vec<(Instant, Request)>>>,
}

impl Respond for Target {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut seen = self.seen.lock().expect("lock");
        seen.push((Instant::now(), request.clone()));
        let status = self
            .statuses
            .get(seen.len() - 1)
            .or(self.statuses.last())
            .copied()
            .unwrap_or(200);
        ResponseTemplate::new(status).set_body_string(format!("answer {}", seen.len()))
    }
}

impl Target {
    async fn start(statuses: &[u16]) -> (MockServer, Target) {
        let server = MockServer::start().await;
        let target = Target {
            statuses: Arc::new(statuses.to_vec()),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        Mock::given(wiremock::matchers::any())
            .respond_with(target.clone())
            .mount(&server)
            .await;
        (server, target)
    }

    fn received(&self) -> Vec<(Instant, Request)> {
        self.seen.lock().expect("lock").clone()
    }

    /// Waits until the target has received `count` requests (or the deadline passes).
    async fn wait_for(&self, count: usize, within: Duration) -> Vec<(Instant, Request)> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count || Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn header(request: &Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Creates `tenant`'s outgoing webhook; returns (id, secret).
async fn create_webhook(app: &TestApp, tenant: &str, body: Value) -> (String, String) {
    let created = app.post_json(tenant, "/api/webhooks/outgoing", &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    (
        created["id"].as_str().expect("id").to_string(),
        created["secret"].as_str().expect("secret").to_string(),
    )
}

fn webhook_to(server: &MockServer, triggers: Value) -> Value {
    json!({"name": "Deliveries", "url": format!("{}/hooks", server.uri()), "triggers": triggers,
           "retryAttempts": 3, "retryDelaySeconds": 1, "timeoutSeconds": 5})
}

fn stripe(name: &str, connection_key: &str) -> Value {
    json!({"provider": "stripe", "name": name, "connectionKey": connection_key,
           "credentials": {"secretKey": SECRET_KEY}})
}

/// The `standardwebhooks` verdict on each received request, for `secret`.
fn verify_all(secret: &str, received: &[(Instant, Request)]) -> Vec<Value> {
    let cases: Vec<Value> = received
        .iter()
        .map(|(_, request)| {
            let headers: serde_json::Map<String, Value> =
                ["webhook-id", "webhook-timestamp", "webhook-signature"]
                    .iter()
                    .map(|name| (name.to_string(), json!(header(request, name))))
                    .collect();
            json!({"scheme": "standard", "secret": secret, "headers": headers,
                   "body": String::from_utf8(request.body.clone()).expect("utf-8 body")})
        })
        .collect();
    verify_in_python(&cases)
}

/// The items of the table of one `type`.
async fn items_of(app: &TestApp, kind: &str) -> Vec<Value> {
    app.scan_table()
        .await
        .into_iter()
        .filter(|item| {
            item.get("type")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(kind)
        })
        .map(|item| serde_dynamo::from_item(item).expect("item as JSON"))
        .collect()
}

async fn webhook_resource(app: &TestApp, tenant: &str, id: &str) -> Value {
    let reply = app
        .get(tenant, &format!("/api/webhooks/outgoing/{id}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

/// Polls the webhook until `done` holds (stats are written after the target answered).
async fn wait_for_webhook(
    app: &TestApp,
    tenant: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resource = webhook_resource(app, tenant, id).await;
        if done(&resource) || Instant::now() > deadline {
            return resource;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_failing_target_gets_retries_with_growing_gaps_under_one_webhook_id() {
    // Given a webhook on integration.connected whose target answers 500, 500, then 200
    let app = spawn_app().await;
    let (server, target) = Target::start(&[500, 500, 200]).await;
    let (id, secret) = create_webhook(
        &app,
        "acme",
        webhook_to(
            &server,
            json!([{"entityType": "integration", "events": ["connected"]}]),
        ),
    )
    .await;

    // When an integration is created
    let integration = app
        .create_integration("acme", &stripe("Payments", "default"))
        .await;

    // Then three attempts arrive, with growing gaps, all under the same webhook-id
    let received = target.wait_for(3, Duration::from_secs(30)).await;
    assert_eq!(received.len(), 3, "three attempts");
    let ids: Vec<String> = received
        .iter()
        .map(|(_, r)| header(r, "webhook-id"))
        .collect();
    assert!(ids[0].starts_with("dlv_"), "{ids:?}");
    assert!(ids.iter().all(|i| i == &ids[0]), "one webhook-id: {ids:?}");
    // (the scheduled waits are 1 s and 2 s, ±20 %, in whole seconds; polling only adds to them)
    let first_gap = received[1].0 - received[0].0;
    let second_gap = received[2].0 - received[1].0;
    assert!(first_gap >= Duration::from_millis(750), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(1_750), "{second_gap:?}");
    // every attempt verifies with the standardwebhooks library, and carries the event envelope
    assert_eq!(verify_all(&secret, &received), vec![json!(true); 3]);
    let body: Value = serde_json::from_slice(&received[0].1.body).expect("JSON body");
    assert_eq!(body["type"], "integration.connected");
    assert_eq!(body["tenantId"], "acme");
    assert_eq!(body["data"]["id"], integration["id"]);

    // and the stats count one delivery, succeeded; three attempts are logged
    let resource = wait_for_webhook(&app, "acme", &id, |w| w["totalSent"] == 1).await;
    assert_eq!(
        (
            &resource["totalSent"],
            &resource["totalFailed"],
            &resource["lastStatus"]
        ),
        (&json!(1), &json!(0), &json!("success"))
    );
    let mut logs = items_of(&app, "webhook_attempt_log").await;
    logs.sort_by_key(|log| log["attempt"].as_u64());
    let outcomes: Vec<(&Value, &Value, bool)> = logs
        .iter()
        .map(|log| {
            (
                &log["attempt"],
                &log["status"],
                log["nextRetryAt"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (&json!(1), &json!("failed"), true),
            (&json!(2), &json!("failed"), true),
            (&json!(3), &json!("success"), false)
        ]
    );
    assert!(logs.iter().all(|log| log["deliveryId"] == json!(ids[0])));
    // the waits the logs scheduled grow: about 1 s, then about 2 s
    let wait = |log: &Value| {
        let at = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(log[field].as_str().expect(field)).expect("time")
        };
        (at("nextRetryAt") - at("timestamp")).num_milliseconds()
    };
    let (first_wait, second_wait) = (wait(&logs[0]), wait(&logs[1]));
    assert!((500..=1_500).contains(&first_wait), "{first_wait} ms");
    assert!((1_500..=2_500).contains(&second_wait), "{second_wait} ms");
    assert_eq!(logs[0]["response"]["status"], 500);
    assert_eq!(
        logs[0]["request"]["headers"]["webhook-signature"],
        "[redacted]"
    );
}

#[tokio::test]
async fn a_target_down_for_every_attempt_leaves_the_delivery_failed_and_counted_once() {
    let app = spawn_app().await;
    let (server, target) = Target::start(&[503]).await;
    let mut body = webhook_to(
        &server,
        json!([{"entityType": "integration", "events": ["*"]}]),
    );
    body["retryAttempts"] = json!(2);
    let (id, _) = create_webhook(&app, "acme", body).await;

    app.create_integration("acme", &stripe("Payments", "default"))
        .await;

    assert_eq!(target.wait_for(2, Duration::from_secs(20)).await.len(), 2);
    let resource = wait_for_webhook(&app, "acme", &id, |w| w["totalFailed"] == 1).await;
    assert_eq!(
        (
            &resource["totalSent"],
            &resource["totalFailed"],
            &resource["lastStatus"],
            &resource["isEnabled"]
        ),
        (&json!(0), &json!(1), &json!("failed"), &json!(true))
    );
    let deliveries = items_of(&app, "delivery").await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (&deliveries[0]["status"], &deliveries[0]["attempt"]),
        (&json!("failed"), &json!(2))
    );
    // no third attempt comes
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(target.received().len(), 2);
}

#[tokio::test]
async fn a_rate_limited_webhook_never_gets_more_than_its_window_allows() {
    // Given a webhook limited to 2 deliveries per second
    let app = spawn_app().await;
    let (server, target) = Target::start(&[200]).await;
    let mut body = webhook_to(
        &server,
        json!([{"entityType": "webhook", "events": ["test"]}]),
    );
    body["rateLimit"] = json!({"requests": 2, "perSeconds": 1});
    let (id, _) = create_webhook(&app, "acme", body).await;

    // When 20 events are emitted at once
    let services =
        Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");
    let tenant = TenantId::parse("acme").expect("tenant");
    let webhook_id = OutgoingWebhookId::parse(&id).expect("id");
    let events: Vec<Event> = (0..20)
        .map(|_| Event::webhook_test(&tenant, &webhook_id, "Deliveries"))
        .collect();
    hub_shared::delivery::emit(&services.store, &services.queues, &events)
        .await
        .expect("emitted");

    // Then all 20 arrive, never more than 2 in any 1 s window, and none counts as failed
    let received = target.wait_for(20, Duration::from_secs(60)).await;
    assert_eq!(received.len(), 20);
    for window in received.windows(3) {
        let span = window[2].0 - window[0].0;
        assert!(
            span >= Duration::from_secs(1),
            "3 deliveries within {span:?}"
        );
    }
    let mut ids: Vec<String> = received
        .iter()
        .map(|(_, r)| header(r, "webhook-id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "one delivery per event");
    let resource = wait_for_webhook(&app, "acme", &id, |w| w["totalSent"] == 20).await;
    assert_eq!(
        (&resource["totalSent"], &resource["totalFailed"]),
        (&json!(20), &json!(0))
    );
    let logs = items_of(&app, "webhook_attempt_log").await;
    assert_eq!(
        logs.len(),
        20,
        "one attempt each: waiting for a slot is not an attempt"
    );
}

#[tokio::test]
async fn a_410_disables_the_webhook_at_once() {
    let app = spawn_app().await;
    let (server, target) = Target::start(&[410]).await;
    let (id, _) = create_webhook(
        &app,
        "acme",
        webhook_to(
            &server,
            json!([{"entityType": "integration", "events": ["*"]}]),
        ),
    )
    .await;

    app.create_integration("acme", &stripe("Payments", "default"))
        .await;

    let resource = wait_for_webhook(&app, "acme", &id, |w| w["isEnabled"] == false).await;
    assert_eq!(resource["isEnabled"], false);
    assert!(
        resource["disabledReason"]
            .as_str()
            .unwrap_or_default()
            .contains("410"),
        "{resource}"
    );
    assert_eq!(resource["totalFailed"], 1);
    // a later event is not delivered to the disabled webhook
    app.create_integration("acme", &stripe("Billing", "second"))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        target.received().len(),
        1,
        "one attempt, no retry, nothing after"
    );
}

#[tokio::test]
async fn a_private_target_is_refused_when_private_targets_are_not_allowed() {
    let app = spawn_app_with(|options| options.allow_private_targets = false).await;
    let (server, target) = Target::start(&[200]).await;
    // The API refuses the address outright
    let refused = app
        .post_json(
            "acme",
            "/api/webhooks/outgoing",
            &webhook_to(
                &server,
                json!([{"entityType": "integration", "events": ["*"]}]),
            ),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.text.contains("url"), "{}", refused.text);

    // and a webhook that points there anyway (stored before the rule, or by hand) is never called
    let services =
        Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");
    let tenant = TenantId::parse("acme").expect("tenant");
    let id = OutgoingWebhookId::generate();
    let secrets = SigningSecrets {
        current: generate_secret().expose().to_string(),
        previous: None,
        previous_expires_at: None,
    };
    let envelope = services
        .store
        .seal_signing_secrets(&tenant, &id, &secrets)
        .await
        .expect("sealed");
    let triggers = Triggers::parse(&[serde_json::from_value::<TriggerInput>(
        json!({"entityType": "integration", "events": ["*"]}),
    )
    .expect("trigger")])
    .expect("triggers");
    let item = OutgoingWebhookItem::new(
        NewOutgoingWebhook {
            id: id.clone(),
            tenant: tenant.clone(),
            name: DisplayName::parse("Legacy").expect("name"),
            description: None,
            url: format!("{}/hooks", server.uri()),
            method: DeliveryMethod::Post,
            headers: Default::default(),
            triggers,
            payload_template: None,
            sign_requests: true,
            signature_scheme: SignatureScheme::Standard,
            signature_header: "X-Webhook-Signature".into(),
            retry_attempts: 3,
            retry_delay_seconds: 1,
            timeout_seconds: 5,
            rate_limit: None,
            is_enabled: true,
            secret_envelope: envelope,
            created_by: None,
        },
        chrono::Utc::now(),
    );
    services
        .store
        .create_outgoing_webhook(&item)
        .await
        .expect("stored");
    app.create_integration("acme", &stripe("Payments", "default"))
        .await;

    let resource = wait_for_webhook(&app, "acme", id.as_str(), |w| w["totalFailed"] == 1).await;
    assert_eq!(
        resource["totalFailed"], 1,
        "one refused attempt ends the delivery: {resource}"
    );
    let logs = items_of(&app, "webhook_attempt_log").await;
    assert_eq!(logs.len(), 1);
    assert!(logs[0]["response"].is_null());
    assert!(
        logs[0]["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("private")
            || logs[0]["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .contains("forbidden"),
        "{}",
        logs[0]
    );
    assert!(target.received().is_empty(), "the target was never called");
}

#[tokio::test]
async fn only_matching_events_are_delivered_and_only_to_their_tenant() {
    let app = spawn_app().await;
    let (acme_server, acme_target) = Target::start(&[200]).await;
    let (globex_server, globex_target) = Target::start(&[200]).await;
    create_webhook(
        &app,
        "acme",
        webhook_to(
            &acme_server,
            json!([{"entityType": "integration", "events": ["updated"]}]),
        ),
    )
    .await;
    create_webhook(
        &app,
        "globex",
        webhook_to(
            &globex_server,
            json!([{"entityType": "integration", "events": ["*"]}]),
        ),
    )
    .await;

    // connected does not match acme's trigger; updated does
    let integration = app
        .create_integration("acme", &stripe("Payments", "default"))
        .await;
    let id = integration["id"].as_str().expect("id");
    let patched = app
        .patch_json(
            "acme",
            &format!("/api/integrations/{id}"),
            &json!({"name": "Renamed"}),
            None,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);

    let received = acme_target.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_slice(&received[0].1.body).expect("JSON");
    assert_eq!(body["type"], "integration.updated");
    assert_eq!(body["data"]["name"], "Renamed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        acme_target.received().len(),
        1,
        "integration.connected was not delivered"
    );
    assert!(
        globex_target.received().is_empty(),
        "another tenant's webhook got nothing"
    );
}

#[tokio::test]
async fn after_a_rotation_deliveries_carry_both_signatures_newest_first() {
    let app = spawn_app().await;
    let (server, target) = Target::start(&[200]).await;
    let (id, old_secret) = create_webhook(
        &app,
        "acme",
        webhook_to(
            &server,
            json!([{"entityType": "integration", "events": ["connected"]}]),
        ),
    )
    .await;
    let rotated = app
        .post_json(
            "acme",
            &format!("/api/webhooks/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.json()["secret"]
        .as_str()
        .expect("secret")
        .to_string();

    app.create_integration("acme", &stripe("Payments", "default"))
        .await;

    let received = target.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    let signatures = header(&received[0].1, "webhook-signature");
    let parts: Vec<&str> = signatures.split(' ').collect();
    assert_eq!(parts.len(), 2, "{signatures}");
    // each secret verifies on its own with the independent library
    assert_eq!(verify_all(&old_secret, &received), vec![json!(true)]);
    assert_eq!(verify_all(&new_secret, &received), vec![json!(true)]);
    // and the first signature is the new secret's
    let mut only_first = received.clone();
    let first_only = parts[0].to_string();
    only_first[0]
        .1
        .headers
        .insert("webhook-signature", first_only.parse().expect("header"));
    assert_eq!(verify_all(&new_secret, &only_first), vec![json!(true)]);
}

#[tokio::test]
async fn a_payload_template_renders_typed_placeholders() {
    let app = spawn_app().await;
    let (server, target) = Target::start(&[200]).await;
    let mut body = webhook_to(
        &server,
        json!([{"entityType": "integration", "events": ["connected"]}]),
    );
    body["payloadTemplate"] = json!(
        r#"{"kind": "{{type}}", "version": "{{data.version}}", "text": "v{{data.version}} of {{data.name}}", "missing": "{{data.nope}}", "tenant": "{{tenantId}}"}"#
    );
    let (_, secret) = create_webhook(&app, "acme", body).await;

    app.create_integration("acme", &stripe("Payments", "default"))
        .await;

    let received = target.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    let rendered: Value = serde_json::from_slice(&received[0].1.body).expect("JSON body");
    assert_eq!(
        rendered,
        json!({"kind": "integration.connected", "version": 1, "text": "v1 of Payments",
               "missing": null, "tenant": "acme"})
    );
    // the signature covers the rendered bytes
    assert_eq!(verify_all(&secret, &received), vec![json!(true)]);
}

#[tokio::test]
async fn the_fiftieth_exhausted_delivery_in_a_row_disables_the_webhook() {
    // Given a webhook whose last 49 deliveries all exhausted their attempts
    let app = spawn_app().await;
    let (server, target) = Target::start(&[500]).await;
    let mut body = webhook_to(
        &server,
        json!([{"entityType": "integration", "events": ["*"]}]),
    );
    body["retryAttempts"] = json!(1);
    let (id, _) = create_webhook(&app, "acme", body).await;
    aws_sdk_dynamodb::Client::new(&hub_tests::sdk_config())
        .update_item()
        .table_name(&app.stack.provisioned.table_name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("TENANT#acme".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("WHOUT#{id}")),
        )
        .update_expression("SET consecutiveExhausted = :n")
        .expression_attribute_values(
            ":n",
            aws_sdk_dynamodb::types::AttributeValue::N("49".into()),
        )
        .send()
        .await
        .expect("run of 49 recorded");

    // When the 50th exhausts too
    app.create_integration("acme", &stripe("Payments", "default"))
        .await;

    // Then the webhook is disabled, saying why
    let resource = wait_for_webhook(&app, "acme", &id, |w| w["isEnabled"] == false).await;
    assert_eq!(resource["isEnabled"], false, "{resource}");
    assert!(
        resource["disabledReason"]
            .as_str()
            .unwrap_or_default()
            .contains("50 consecutive"),
        "{resource}"
    );
    assert_eq!(target.received().len(), 1);
    // and enabling it again starts a fresh run
    let enabled = app
        .patch_json(
            "acme",
            &format!("/api/webhooks/outgoing/{id}"),
            &json!({"isEnabled": true}),
            None,
        )
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert_eq!(enabled.json()["disabledReason"], Value::Null);
}

#[tokio::test]
async fn deliveries_whose_messages_cannot_be_queued_end_failed_not_pending() {
    // Given a webhook on webhook.test, and a dispatch queue that does not exist
    let app = spawn_app_with(|options| options.start_workers = false).await;
    let (server, _) = Target::start(&[200]).await;
    let (id, _) = create_webhook(
        &app,
        "acme",
        webhook_to(
            &server,
            json!([{"entityType": "webhook", "events": ["test"]}]),
        ),
    )
    .await;
    let sdk = hub_tests::sdk_config();
    let services = Services::new(app.stack.config.clone(), &sdk).expect("services");
    let broken = hub_shared::queue::Queues::new(
        aws_sdk_sqs::Client::new(&sdk),
        app.stack.provisioned.sync_queue_url.clone(),
        format!("{}/123456789012/no-such-queue", hub_tests::moto_endpoint()),
    );
    let tenant = TenantId::parse("acme").expect("tenant");
    let webhook_id = OutgoingWebhookId::parse(&id).expect("id");

    // When an event is emitted
    let emitted = hub_shared::delivery::emit(
        &services.store,
        &broken,
        &[Event::webhook_test(&tenant, &webhook_id, "Deliveries")],
    )
    .await;

    // Then the caller gets the error, and the delivery is failed (recover sends it), not pending
    assert!(emitted.is_err(), "the queue failure reaches the caller");
    let deliveries = items_of(&app, "delivery").await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (&deliveries[0]["status"], &deliveries[0]["attempt"]),
        (&json!("failed"), &json!(0))
    );
}

#[tokio::test]
async fn a_failed_test_connection_emits_status_changed_with_from_to_and_reason() {
    // Given a webhook on status changes, and an integration whose provider refuses the health check
    let app = spawn_app().await;
    let (server, target) = Target::start(&[200]).await;
    create_webhook(
        &app,
        "acme",
        webhook_to(
            &server,
            json!([{"entityType": "integration", "events": ["status_changed"]}]),
        ),
    )
    .await;
    let provider = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(401))
        .mount(&provider)
        .await;
    let mut body = stripe("Payments", "default");
    body["config"] = json!({"baseUrl": provider.uri()});
    let integration = app.create_integration("acme", &body).await;
    let id = integration["id"].as_str().expect("id");

    // When the test connection fails (connected → error), and then fails again (no change)
    for _ in 0..2 {
        let tested = app
            .post_json("acme", &format!("/api/integrations/{id}/test"), &json!({}))
            .await;
        assert_eq!(tested.status, 200, "{}", tested.text);
        assert_eq!(tested.json()["ok"], false);
    }

    // Then exactly one integration.status_changed arrives, saying from, to and why
    let received = target.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    let event: Value = serde_json::from_slice(&received[0].1.body).expect("JSON");
    assert_eq!(event["type"], "integration.status_changed");
    assert_eq!(
        (
            &event["data"]["from"],
            &event["data"]["to"],
            &event["data"]["reason"]
        ),
        (&json!("connected"), &json!("error"), &json!("test_failed"))
    );
    assert_eq!(event["data"]["id"], integration["id"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        target.received().len(),
        1,
        "the second failure changed nothing"
    );
}

#[tokio::test]
async fn deleting_an_integration_emits_disconnected_with_the_integration_as_it_was() {
    let app = spawn_app().await;
    let (server, target) = Target::start(&[200]).await;
    create_webhook(
        &app,
        "acme",
        webhook_to(
            &server,
            json!([{"entityType": "integration", "events": ["disconnected"]}]),
        ),
    )
    .await;
    let integration = app
        .create_integration("acme", &stripe("Payments", "default"))
        .await;
    let id = integration["id"].as_str().expect("id");

    let deleted = app.delete("acme", &format!("/api/integrations/{id}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    let received = target.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    let event: Value = serde_json::from_slice(&received[0].1.body).expect("JSON");
    assert_eq!(event["type"], "integration.disconnected");
    assert_eq!(
        (&event["data"]["id"], &event["data"]["name"]),
        (&integration["id"], &json!("Payments"))
    );
}
