//! Every SQS event in `events/` run through the retry dispatcher (`retry_dispatcher::handle`) against
//! moto and a local target, as the event source mapping would hand it over: a first attempt is
//! delivered once and signed, a redelivery sends nothing more, a retry that is not due goes back on
//! the queue, and what is not a delivery job comes back as a batch item failure (so it ends in the
//! dead-letter queue). A batch is worked on concurrently.
//!
//! The local dispatcher poller is off in these tests (`start_workers = false`): the fixtures are the
//! only messages the dispatcher sees, and what it queues stays on the queue for the test to read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hub_local::lambda::{LambdaEvent, LambdaFunction};
use hub_shared::domain::{OutgoingWebhookId, TenantId};
use hub_shared::events::Event;
use hub_shared::queue::{decode, encode, DeliveryJob, Job};
use hub_shared::services::Services;
use hub_shared::store::{DeliveryItem, DeliveryStatus};
use hub_shared::webhooks::sign::{SigningKeys, WebhookSecret};
use hub_shared::webhooks::verify::verify_standard;
use hub_tests::{spawn_app_with, TestApp};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The placeholders the fixtures' bodies carry (see `events/README.md`).
const TENANT: &str = "tenant-events";
const WEBHOOK_ID: &str = "whout_000000000000000000000000000000";
const FIRST_DELIVERY_ID: &str = "dlv_000000000000000000000000000001";
const FIRST_EVENT_ID: &str = "evt_000000000000000000000000000001";
const RETRY_DELIVERY_ID: &str = "dlv_000000000000000000000000000002";
const RETRY_EVENT_ID: &str = "evt_000000000000000000000000000002";
const NOT_BEFORE: &str = "2100-01-01T00:00:00.000Z";

const DELIVERY: &str = "sqs-delivery.json";
const RETRY: &str = "sqs-delivery-retry.json";
const SYNC_JOB: &str = "sqs-sync-job-on-dispatch-queue.json";
const MALFORMED: &str = "sqs-malformed.json";
const MIXED: &str = "sqs-mixed-batch.json";

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(events_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&read_fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn records(fixture: &Value) -> &Vec<Value> {
    fixture["Records"].as_array().expect("Records")
}

fn message_ids(name: &str) -> BTreeSet<String> {
    records(&fixture_json(name))
        .iter()
        .map(|record| record["messageId"].as_str().expect("messageId").to_string())
        .collect()
}

fn failures(response: &SqsBatchResponse) -> BTreeSet<String> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect()
}

/// The invocation as Lambda makes it: the event, and the context of `RetryDispatcherFunction`.
fn invocation(event: SqsEvent) -> LambdaEvent<SqsEvent> {
    let function = LambdaFunction::from_template("RetryDispatcherFunction").expect("template");
    LambdaEvent::new(event, function.invocation_context(SystemTime::now(), None))
}

/// A local stack without workers, an outgoing webhook of `tenant-events` to `target_url`, and the
/// dispatcher the retry-dispatcher function would build.
struct Scene {
    app: TestApp,
    services: Services,
    dispatcher: retry_dispatcher::Consumer,
    webhook_id: OutgoingWebhookId,
    secret: String,
}

impl Scene {
    async fn with_webhook_to(target_url: &str) -> Scene {
        let app = spawn_app_with(|options| options.start_workers = false).await;
        let created = app
            .post_json(
                TENANT,
                "/api/webhooks/outgoing",
                &json!({"name": "Fixture target", "url": target_url, "timeoutSeconds": 15,
                        "triggers": [{"entityType": "integration", "events": ["*"]}]}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let created = created.json();
        let webhook_id =
            OutgoingWebhookId::parse(created["id"].as_str().expect("id")).expect("webhook id");
        let secret = created["secret"].as_str().expect("secret").to_string();
        let services =
            Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");
        let dispatcher = retry_dispatcher::Consumer::new(&services).expect("dispatcher");
        Scene {
            app,
            services,
            dispatcher,
            webhook_id,
            secret,
        }
    }

    /// A stored, pending delivery (nothing queued: the fixture is its message).
    async fn delivery(&self) -> DeliveryItem {
        let tenant = TenantId::parse(TENANT).expect("tenant");
        let webhook = self
            .services
            .store
            .get_outgoing_webhook(&tenant, &self.webhook_id)
            .await
            .expect("read")
            .expect("the webhook exists");
        // The dispatcher sends whatever envelope the delivery carries; any event will do.
        let event = Event::webhook_test(&tenant, &webhook.id, webhook.name.as_str());
        let delivery = DeliveryItem::new(&webhook, &event, chrono::Utc::now());
        self.services
            .store
            .create_deliveries(std::slice::from_ref(&delivery))
            .await
            .expect("stored");
        delivery
    }

    async fn stored(&self, delivery: &DeliveryItem) -> DeliveryItem {
        self.services
            .store
            .get_delivery(&delivery.tenant_id, &delivery.webhook_id, &delivery.id)
            .await
            .expect("read")
            .expect("the delivery exists")
    }

    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        retry_dispatcher::handle(self.dispatcher.clone(), invocation(event))
            .await
            .expect("the invocation does not crash")
    }

    /// Runs fixture `name` with its placeholders replaced by `substitutions` and this webhook's id.
    async fn run(&self, name: &str, substitutions: &[(&str, &str)]) -> SqsBatchResponse {
        let mut raw = read_fixture(name).replace(WEBHOOK_ID, self.webhook_id.as_str());
        for (placeholder, value) in substitutions {
            raw = raw.replace(placeholder, value);
        }
        let event: SqsEvent = serde_json::from_str(&raw)
            .unwrap_or_else(|e| panic!("{name} is not an SQS event: {e}"));
        self.handle(event).await
    }

    /// The first delivery message on the dispatch queue for `delivery`, within 30 s.
    async fn queued_job_of(&self, delivery: &DeliveryItem) -> DeliveryJob {
        let sqs = aws_sdk_sqs::Client::new(&hub_tests::sdk_config());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let received = sqs
                .receive_message()
                .queue_url(&self.app.stack.provisioned.dispatch_queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            for message in received.messages() {
                let body = message.body().unwrap_or_default();
                match decode(body) {
                    Ok(Job::Delivery(job)) if job.delivery_id == delivery.id => return job,
                    _ => seen.push(body.to_string()),
                }
            }
        }
        panic!(
            "no message for {} on the dispatch queue; saw {seen:?}",
            delivery.id
        );
    }
}

async fn accepting_target() -> MockServer {
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&target)
        .await;
    target
}

async fn requests_to(target: &MockServer) -> Vec<wiremock::Request> {
    target.received_requests().await.expect("recording is on")
}

/// A time `seconds` from now, in the form the hub writes `notBefore`: near enough that the
/// message the dispatcher puts back becomes visible to the test within seconds.
fn not_before_in(seconds: i64) -> String {
    hub_shared::store::timestamp(chrono::Utc::now() + chrono::Duration::seconds(seconds))
}

#[tokio::test]
async fn a_first_attempt_is_delivered_once_signed_with_the_delivery_id() {
    let target = accepting_target().await;
    let scene = Scene::with_webhook_to(&format!("{}/hooks", target.uri())).await;
    let delivery = scene.delivery().await;

    let response = scene
        .run(
            DELIVERY,
            &[
                (FIRST_DELIVERY_ID, delivery.id.as_str()),
                (FIRST_EVENT_ID, delivery.event_id.as_str()),
            ],
        )
        .await;

    assert_eq!(failures(&response), BTreeSet::new());
    let requests = requests_to(&target).await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header: {:?}", request.headers))
    };
    assert_eq!(header("webhook-id"), delivery.id.as_str());
    assert!(header("webhook-timestamp").parse::<i64>().is_ok());
    assert!(header("webhook-signature").starts_with("v1,"));
    let keys = SigningKeys::new(WebhookSecret::parse(&scene.secret).expect("secret"));
    verify_standard(
        &keys,
        &request.headers,
        &request.body,
        chrono::Utc::now().timestamp(),
    )
    .expect("the signature verifies with the webhook's secret");
    let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
    assert_eq!(body["id"], delivery.event_id.as_str(), "{body}");
    let stored = scene.stored(&delivery).await;
    assert_eq!(
        (stored.status, stored.attempt),
        (DeliveryStatus::Success, 1)
    );
}

#[tokio::test]
async fn a_redelivered_first_attempt_sends_nothing_more_and_is_acknowledged() {
    let target = accepting_target().await;
    let scene = Scene::with_webhook_to(&format!("{}/hooks", target.uri())).await;
    let delivery = scene.delivery().await;
    let substitutions = [
        (FIRST_DELIVERY_ID, delivery.id.as_str()),
        (FIRST_EVENT_ID, delivery.event_id.as_str()),
    ];
    let first = scene.run(DELIVERY, &substitutions).await;
    assert_eq!(failures(&first), BTreeSet::new());

    // SQS delivers the same message again (at-least-once).
    let replay = scene.run(DELIVERY, &substitutions).await;

    assert_eq!(failures(&replay), BTreeSet::new());
    assert_eq!(requests_to(&target).await.len(), 1);
    let stored = scene.stored(&delivery).await;
    assert_eq!(
        (stored.status, stored.attempt),
        (DeliveryStatus::Success, 1)
    );
}

#[tokio::test]
async fn a_retry_before_its_not_before_is_requeued_without_a_request() {
    let target = accepting_target().await;
    let scene = Scene::with_webhook_to(&format!("{}/hooks", target.uri())).await;
    let delivery = scene.delivery().await;
    let not_before = not_before_in(3);

    let response = scene
        .run(
            RETRY,
            &[
                (RETRY_DELIVERY_ID, delivery.id.as_str()),
                (RETRY_EVENT_ID, delivery.event_id.as_str()),
                (NOT_BEFORE, &not_before),
            ],
        )
        .await;

    assert_eq!(failures(&response), BTreeSet::new());
    let requeued = scene.queued_job_of(&delivery).await;
    assert_eq!(
        (requeued.attempt, requeued.not_before.as_deref()),
        (2, Some(not_before.as_str()))
    );
    assert_eq!(requests_to(&target).await.len(), 0);
    let stored = scene.stored(&delivery).await;
    assert_eq!(
        (stored.status, stored.attempt),
        (DeliveryStatus::Pending, 0),
        "no attempt was claimed"
    );
}

#[tokio::test]
async fn a_sync_job_on_the_dispatch_queue_is_reported_failed() {
    let target = accepting_target().await;
    let scene = Scene::with_webhook_to(&format!("{}/hooks", target.uri())).await;

    let response = scene.run(SYNC_JOB, &[]).await;

    assert_eq!(failures(&response), message_ids(SYNC_JOB));
    assert_eq!(requests_to(&target).await.len(), 0);
}

#[tokio::test]
async fn a_message_that_is_not_a_job_is_reported_failed() {
    let target = accepting_target().await;
    let scene = Scene::with_webhook_to(&format!("{}/hooks", target.uri())).await;

    let response = scene.run(MALFORMED, &[]).await;

    assert_eq!(failures(&response), message_ids(MALFORMED));
    assert_eq!(requests_to(&target).await.len(), 0);
}

#[tokio::test]
async fn a_mixed_batch_reports_exactly_the_records_that_are_not_deliveries() {
    let target = accepting_target().await;
    let scene = Scene::with_webhook_to(&format!("{}/hooks", target.uri())).await;
    let (first, retry) = (scene.delivery().await, scene.delivery().await);
    let not_before = not_before_in(3);

    let response = scene
        .run(
            MIXED,
            &[
                (FIRST_DELIVERY_ID, first.id.as_str()),
                (FIRST_EVENT_ID, first.event_id.as_str()),
                (RETRY_DELIVERY_ID, retry.id.as_str()),
                (RETRY_EVENT_ID, retry.event_id.as_str()),
                (NOT_BEFORE, &not_before),
            ],
        )
        .await;

    let bad: BTreeSet<String> = message_ids(SYNC_JOB)
        .into_iter()
        .chain(message_ids(MALFORMED))
        .collect();
    assert_eq!(failures(&response), bad);
    let requests = requests_to(&target).await;
    let delivered: Vec<&str> = requests
        .iter()
        .filter_map(|request| request.headers.get("webhook-id")?.to_str().ok())
        .collect();
    assert_eq!(delivered, [first.id.as_str()]);
    assert_eq!(scene.stored(&first).await.status, DeliveryStatus::Success);
    assert_eq!(scene.queued_job_of(&retry).await.attempt, 2);
}

/// What each fixture is; a new `events/sqs-*.json` without an entry here fails.
fn sqs_fixtures() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (DELIVERY, "a first attempt"),
        (RETRY, "attempt 2, not before its time"),
        (SYNC_JOB, "a sync job on the wrong queue"),
        // Run by the sync runner: tests/tests/sync_fixtures.rs.
        ("sqs-sync-job.json", "a sync job on the sync queue"),
        (MALFORMED, "a body that is not a job"),
        (MIXED, "the four above in one batch"),
    ])
}

#[tokio::test]
async fn every_sqs_fixture_is_listed_and_shaped_as_sqs_and_the_hub_write_it() {
    let mut on_disk: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("sqs-") && name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let listed: Vec<String> = sqs_fixtures().keys().map(|k| k.to_string()).collect();
    assert_eq!(on_disk, listed, "every events/sqs-*.json needs an entry");

    // The MD5s are SQS's own: moto computes them for the same body and attributes.
    let sqs = aws_sdk_sqs::Client::new(&hub_tests::sdk_config());
    let queue_url = sqs
        .create_queue()
        .queue_name(hub_tests::unique_name("fixture-md5"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    for name in sqs_fixtures().keys() {
        let fixture = fixture_json(name);
        serde_json::from_value::<SqsEvent>(fixture.clone())
            .unwrap_or_else(|e| panic!("{name} is not an SQS event: {e}"));
        for record in records(&fixture) {
            assert_eq!(record["eventSource"], "aws:sqs", "{name}");
            assert_eq!(
                record["attributes"]["ApproximateReceiveCount"], "1",
                "{name}"
            );
            let body = record["body"].as_str().expect("body");
            let mut send = sqs.send_message().queue_url(&queue_url).message_body(body);
            for (attribute, value) in record["messageAttributes"].as_object().expect("map") {
                let value = aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type(value["dataType"].as_str().expect("dataType"))
                    .string_value(value["stringValue"].as_str().expect("string attribute"))
                    .build()
                    .expect("attribute");
                send = send.message_attributes(attribute, value);
            }
            let sent = send.send().await.expect("sent");
            assert_eq!(
                sent.md5_of_message_body(),
                record["md5OfBody"].as_str(),
                "{name}"
            );
            assert_eq!(
                sent.md5_of_message_attributes(),
                record["md5OfMessageAttributes"].as_str(),
                "{name}"
            );
            // A job body is byte for byte what the hub writes; the malformed one is no job at all.
            match decode(body) {
                Ok(job) => assert_eq!(encode(&job), body, "{name}"),
                Err(_) => assert!(
                    message_ids(MALFORMED).contains(record["messageId"].as_str().expect("id")),
                    "{name}: {body}"
                ),
            }
        }
    }
    sqs.delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("deleted");

    assert!(matches!(
        decode(
            records(&fixture_json(SYNC_JOB))[0]["body"]
                .as_str()
                .expect("body")
        ),
        Ok(Job::Sync(_))
    ));
    let singles: Vec<Value> = [DELIVERY, SYNC_JOB, RETRY, MALFORMED]
        .iter()
        .flat_map(|name| records(&fixture_json(name)).clone())
        .collect();
    assert_eq!(
        records(&fixture_json(MIXED)),
        &singles,
        "the mixed batch is the single fixtures' records"
    );
}

/// A target that holds every request until `expected` have been in flight at once (or `HOLD`
/// passes), and remembers the most it saw in flight together.
#[derive(Default)]
struct InFlightProbe {
    counts: std::sync::Mutex<InFlight>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct InFlight {
    now: usize,
    most: usize,
}

/// Long enough for a whole batch to arrive; a dispatcher that sends one at a time only waits.
const HOLD: Duration = Duration::from_secs(10);

impl InFlightProbe {
    fn most_in_flight(&self) -> usize {
        self.counts.lock().expect("lock").most
    }

    async fn hold(&self, expected: usize) {
        {
            let mut counts = self.counts.lock().expect("lock");
            counts.now += 1;
            counts.most = counts.most.max(counts.now);
        }
        self.changed.notify_waiters();
        let all_in_flight = async {
            loop {
                let notified = self.changed.notified();
                // Once all were in flight together, everyone is released (the first to leave
                // lowers the current count, so it cannot be the condition).
                if self.most_in_flight() >= expected {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(HOLD, all_in_flight).await;
        self.counts.lock().expect("lock").now -= 1;
    }
}

async fn start_in_flight_target(expected: usize) -> (String, Arc<InFlightProbe>) {
    let probe = Arc::new(InFlightProbe::default());
    let handler_probe = Arc::clone(&probe);
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let probe = Arc::clone(&handler_probe);
            async move {
                probe.hold(expected).await;
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, probe)
}

/// No timing assertion: a dispatcher that works on one record at a time never has more than one
/// request in flight, however long the target holds it.
#[tokio::test]
async fn the_records_of_a_batch_are_delivered_concurrently() {
    const BATCH: usize = 5;
    let (url, probe) = start_in_flight_target(BATCH).await;
    let scene = Scene::with_webhook_to(&url).await;
    let fixture = fixture_json(DELIVERY);
    let template = &records(&fixture)[0];
    let mut deliveries = Vec::new();
    let mut batch = Vec::new();
    for _ in 0..BATCH {
        let delivery = scene.delivery().await;
        let mut record = template.clone();
        record["messageId"] = hub_shared::ids::uuid_v4().into();
        record["body"] = encode(&Job::Delivery(hub_shared::delivery::first_job(
            &delivery, 1,
        )))
        .into();
        batch.push(record);
        deliveries.push(delivery);
    }
    let event: SqsEvent = serde_json::from_value(json!({ "Records": batch })).expect("SQS event");

    let response = scene.handle(event).await;

    assert_eq!(failures(&response), BTreeSet::new());
    assert_eq!(
        probe.most_in_flight(),
        BATCH,
        "the target should see every record of the batch in flight at once"
    );
    for delivery in &deliveries {
        assert_eq!(scene.stored(delivery).await.status, DeliveryStatus::Success);
    }
}
