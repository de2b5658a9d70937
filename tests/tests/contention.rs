//! Hot counters under contention: 200 concurrent requests on one integration get only the right
//! 2xx/4xx/429 answers, never a 5xx, and no outcome is lost; concurrent deliveries to one webhook
//! are each counted once (stats are atomic `ADD`s).

use std::sync::Arc;

use hub_tests::spawn_app_with;
use serde_json::json;
use tokio::sync::Semaphore;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const REQUESTS: usize = 200;
const AT_ONCE: usize = 64;
/// The bucket admits this many (plus at most one refilled during the test: 30 s per token).
const BURST: usize = 120;

#[tokio::test]
async fn two_hundred_concurrent_tests_answer_only_200_or_429_and_count_every_failure() {
    // Given a provider that rejects the key, behind a bucket of 120 requests an hour
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&provider)
        .await;
    let file = hub_tests::write_providers_file(&format!(
        "busy_api:\n  name: Busy API\n  category: custom\n  auth:\n    mode: api_key\n    fields: [{{name: apiKey, secret: true}}]\n    apply: {{header: X-Key, format: \"{{apiKey}}\"}}\n  api:\n    baseUrl: {}\n    rateLimit: {{requests: {BURST}, perSeconds: 3600}}\n    healthCheck: {{method: GET, path: /ping, expect: 200}}\n",
        provider.uri()
    ));
    let app = Arc::new(spawn_app_with(|options| options.providers_file = Some(file.clone())).await);
    let created = app
        .create_integration(
            "acme",
            &json!({"provider": "busy_api", "name": "Busy", "credentials": {"apiKey": "key-0123456789"}}),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_string();

    // When 200 test connections arrive, 64 at a time
    let gate = Arc::new(Semaphore::new(AT_ONCE));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..REQUESTS {
        let (app, gate, id) = (app.clone(), gate.clone(), id.clone());
        calls.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            let reply = app
                .post_json("acme", &format!("/api/integrations/{id}/test"), &json!({}))
                .await;
            (reply.status, reply.text)
        });
    }
    let mut ok = 0;
    let mut limited = 0;
    while let Some(joined) = calls.join_next().await {
        let (status, text) = joined.expect("request task");
        match status {
            200 => {
                assert!(text.contains("\"ok\":false"), "{text}");
                ok += 1
            }
            429 => limited += 1,
            other => panic!("answer {other} under contention: {text}"),
        }
    }

    // Then only 200 and 429 came back, the bucket admitted its burst, and every failure counts
    assert_eq!(ok + limited, REQUESTS);
    assert!(
        (BURST..=BURST + 1).contains(&ok),
        "{ok} admitted, {limited} limited"
    );
    let integration = app
        .get("acme", &format!("/api/integrations/{id}"))
        .await
        .json();
    assert_eq!(integration["status"], "error");
    assert_eq!(integration["health"]["errorCount"], ok as u64);
    assert_eq!(integration["health"]["consecutiveFailures"], ok as u64);
    assert_eq!(integration["health"]["score"], 0);
    let received = provider.received_requests().await.expect("recorded");
    assert_eq!(received.len(), ok, "one provider call per admitted test");
}

#[tokio::test]
async fn concurrent_deliveries_to_one_webhook_are_each_counted_once() {
    // Given a webhook on webhook.test to a target that accepts everything
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&target)
        .await;
    let app = hub_tests::spawn_app().await;
    let created = app
        .post_json(
            "acme",
            "/api/webhooks/outgoing",
            &json!({"name": "Busy", "url": format!("{}/hooks", target.uri()),
                    "triggers": [{"entityType": "webhook", "events": ["test"]}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().expect("id").to_string();

    // When 100 deliveries run, a batch of 10 at a time, each ending with an atomic stats update
    let services =
        hub_shared::services::Services::new(app.stack.config.clone(), &hub_tests::sdk_config())
            .expect("services");
    let tenant = hub_shared::domain::TenantId::parse("acme").expect("tenant");
    let webhook = hub_shared::domain::OutgoingWebhookId::parse(&id).expect("id");
    let events: Vec<_> = (0..100)
        .map(|_| hub_shared::events::Event::webhook_test(&tenant, &webhook, "Busy"))
        .collect();
    hub_shared::delivery::emit(&services.store, &services.queues, &events)
        .await
        .expect("emitted");

    // Then every delivery is sent once and counted once
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let resource = loop {
        let resource = app
            .get("acme", &format!("/api/webhooks/outgoing/{id}"))
            .await
            .json();
        if resource["totalSent"] == 100 || std::time::Instant::now() > deadline {
            break resource;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        (&resource["totalSent"], &resource["totalFailed"]),
        (&json!(100), &json!(0))
    );
    let received = target.received_requests().await.expect("recorded");
    assert_eq!(received.len(), 100, "one request per delivery");
}
