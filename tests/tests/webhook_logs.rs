//! Outgoing webhook deliveries end to end, through the local stack whose retry dispatcher polls the
//! dispatch queue: every attempt is logged (newest first; one entry with its redacted request and
//! the response), a failed delivery continues on `retry` with the same delivery id, `recover`
//! re-queues exactly the deliveries that failed in its window, `test` sends one synchronous
//! delivery, and another tenant finds none of it.

use std::future::Future;
use std::time::{Duration, Instant};

use hub_tests::{spawn_app, TestApp};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// How long a delivery may take to reach the state a test waits for.
const DEADLINE: Duration = Duration::from_secs(30);
const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

/// A target answering every POST /hooks with `status`.
async fn target_answering(status: u16) -> MockServer {
    let target = MockServer::start().await;
    answer(&target, status).await;
    target
}

/// From now on the target answers `status`.
async fn answer(target: &MockServer, status: u16) {
    target.reset().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(status).set_body_string(format!("answered {status}")))
        .mount(target)
        .await;
}

/// acme's webhook for `integration.connected` to `target`; returns its id.
async fn create_webhook(app: &TestApp, target: &MockServer, extra: Value) -> String {
    let mut body = json!({"name": "Connections", "url": format!("{}/hooks", target.uri()),
                          "triggers": [{"entityType": "integration", "events": ["connected"]}]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let created = app.post_json("acme", "/api/webhooks/outgoing", &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json()["id"].as_str().expect("id").to_string()
}

/// Creates one of acme's integrations, which emits `integration.connected`; returns its id.
async fn connect_integration(app: &TestApp, name: &str) -> String {
    let created = app
        .create_integration(
            "acme",
            &json!({"provider": "stripe", "name": name, "connectionKey": name,
                    "credentials": {"secretKey": SECRET_KEY}}),
        )
        .await;
    created["id"].as_str().expect("integration id").to_string()
}

/// Polls `check` until it returns a value, or panics naming `what` at the deadline.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(started.elapsed() < DEADLINE, "{what} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The first page of the webhook's logs once `done` holds for it.
async fn logs_when(
    app: &TestApp,
    webhook_id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let path = format!("/api/webhooks/{webhook_id}/logs?limit=100");
    eventually(what, || async {
        let reply = app.get("acme", &path).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let items = reply.json()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        done(&items).then_some(items)
    })
    .await
}

fn settled(items: &[Value], delivery_count: usize) -> bool {
    let finals = items
        .iter()
        .filter(|log| log["status"] == "success" || log["nextRetryAt"].is_null())
        .count();
    finals == delivery_count
}

#[tokio::test]
async fn a_failed_delivery_is_logged_per_attempt_and_continues_with_the_same_id_on_retry() {
    // Given a webhook with 2 attempts, 1 s apart, to a target answering 500
    let app = spawn_app().await;
    let target = target_answering(500).await;
    let webhook_id = create_webhook(
        &app,
        &target,
        json!({"retryAttempts": 2, "retryDelaySeconds": 1}),
    )
    .await;

    // When an event is emitted and both attempts fail
    connect_integration(&app, "first").await;
    let logs = logs_when(&app, &webhook_id, "two failed attempts", |items| {
        items.len() == 2 && items[0]["nextRetryAt"].is_null()
    })
    .await;

    // Then the logs list both attempts of one delivery, newest first, without request/response
    assert_eq!(
        logs.iter()
            .map(|log| log["attempt"].as_u64())
            .collect::<Vec<_>>(),
        [Some(2), Some(1)]
    );
    assert!(logs.iter().all(|log| log["status"] == "failed"
        && log["maxAttempts"] == 2
        && log["eventType"] == "integration.connected"
        && log["webhookId"] == webhook_id.as_str()
        && log.get("request").is_none()
        && log.get("response").is_none()));
    let delivery_id = logs[0]["deliveryId"]
        .as_str()
        .expect("deliveryId")
        .to_string();
    assert!(delivery_id.starts_with("dlv_"), "{delivery_id}");
    assert_eq!(logs[1]["deliveryId"], delivery_id.as_str());

    // and one log shows the request, signature redacted, and the target's answer
    let log_id = logs[0]["id"].as_str().expect("log id").to_string();
    let detail = app
        .get("acme", &format!("/api/webhook-logs/{log_id}"))
        .await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    let detail = detail.json();
    assert_eq!(detail["request"]["method"], "POST");
    assert_eq!(
        detail["request"]["headers"]["webhook-signature"],
        "[redacted]"
    );
    assert_eq!(
        detail["request"]["headers"]["webhook-id"],
        delivery_id.as_str()
    );
    let sent: Value = serde_json::from_str(detail["request"]["body"].as_str().expect("body"))
        .expect("the body sent is the envelope");
    assert_eq!(sent["type"], "integration.connected");
    assert_eq!(detail["response"]["status"], 500);
    assert_eq!(detail["response"]["body"], "answered 500");

    // When the target recovers and the delivery is retried from that log
    answer(&target, 200).await;
    let retried = app
        .post_json(
            "acme",
            &format!("/api/webhook-logs/{log_id}/retry"),
            &json!({}),
        )
        .await;

    // Then it is accepted for the same delivery, which succeeds with attempt 3 of 4
    assert_eq!(retried.status, 202, "{}", retried.text);
    assert_eq!(retried.json(), json!({"deliveryId": delivery_id}));
    let logs = logs_when(&app, &webhook_id, "the retried attempt", |items| {
        items.len() == 3
    })
    .await;
    assert_eq!(
        (
            &logs[0]["attempt"],
            &logs[0]["maxAttempts"],
            &logs[0]["status"]
        ),
        (&json!(3), &json!(4), &json!("success"))
    );
    assert_eq!(logs[0]["deliveryId"], delivery_id.as_str());
    let received = target.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 1, "the recovered target got the retry only");
    assert_eq!(
        received[0]
            .headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok()),
        Some(delivery_id.as_str())
    );

    // and a second retry of the succeeded delivery is a conflict
    let again = app
        .post_json(
            "acme",
            &format!("/api/webhook-logs/{log_id}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(
        again.header("content-type"),
        Some("application/problem+json")
    );
    assert!(again.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("succeeded"));
}

#[tokio::test]
async fn a_delivery_still_being_attempted_cannot_be_retried() {
    // Given a delivery whose first attempt failed and whose second is an hour away
    let app = spawn_app().await;
    let target = target_answering(500).await;
    let webhook_id = create_webhook(
        &app,
        &target,
        json!({"retryAttempts": 2, "retryDelaySeconds": 3600}),
    )
    .await;
    connect_integration(&app, "pending").await;
    let logs = logs_when(&app, &webhook_id, "the first attempt", |items| {
        !items.is_empty()
    })
    .await;
    assert!(!logs[0]["nextRetryAt"].is_null(), "{logs:?}");

    // When it is retried
    let log_id = logs[0]["id"].as_str().expect("log id");
    let reply = app
        .post_json(
            "acme",
            &format!("/api/webhook-logs/{log_id}/retry"),
            &json!({}),
        )
        .await;

    // Then the answer is 409, saying it is still being attempted
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert!(
        reply.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("still being attempted"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn recover_requeues_exactly_the_deliveries_that_failed_in_the_window() {
    // Given a webhook with one delivery that succeeded and two that failed for good,
    let app = spawn_app().await;
    let target = target_answering(200).await;
    let webhook_id = create_webhook(&app, &target, json!({"retryAttempts": 1})).await;
    let since = hub_shared::store::timestamp(chrono::Utc::now() - chrono::Duration::minutes(5));
    let succeeded = connect_integration(&app, "succeeds").await;
    logs_when(&app, &webhook_id, "the first delivery", |items| {
        items.len() == 1
    })
    .await;
    answer(&target, 500).await;
    connect_integration(&app, "fails-a").await;
    connect_integration(&app, "fails-b").await;
    let logs = logs_when(&app, &webhook_id, "three settled deliveries", |items| {
        items.len() == 3 && settled(items, 3)
    })
    .await;
    assert_eq!(
        logs.iter().filter(|log| log["status"] == "failed").count(),
        2,
        "{logs:?}"
    );
    // and another webhook of the tenant (for `integration.updated`) whose own delivery failed
    let other_target = target_answering(500).await;
    let other_id = create_webhook(
        &app,
        &other_target,
        json!({"retryAttempts": 1,
               "triggers": [{"entityType": "integration", "events": ["updated"]}]}),
    )
    .await;
    let renamed = app
        .patch_json(
            "acme",
            &format!("/api/integrations/{succeeded}"),
            &json!({"name": "renamed"}),
            None,
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    logs_when(&app, &other_id, "the other webhook's failure", |items| {
        items.len() == 1
    })
    .await;

    // When the target recovers and the first webhook's window is recovered
    answer(&target, 200).await;
    let recovered = app
        .post_json(
            "acme",
            &format!("/api/webhooks/outgoing/{webhook_id}/recover"),
            &json!({"since": since}),
        )
        .await;

    // Then exactly its two failed deliveries are queued, and both succeed on their second attempt
    assert_eq!(recovered.status, 202, "{}", recovered.text);
    assert_eq!(recovered.json(), json!({"queued": 2}));
    let logs = logs_when(&app, &webhook_id, "both recovered deliveries", |items| {
        items.len() == 5
    })
    .await;
    let second_attempts: Vec<_> = logs.iter().filter(|log| log["attempt"] == 2).collect();
    assert_eq!(second_attempts.len(), 2, "{logs:?}");
    assert!(second_attempts.iter().all(|log| log["status"] == "success"));
    let other_logs = app
        .get("acme", &format!("/api/webhooks/{other_id}/logs"))
        .await;
    assert_eq!(other_logs.json()["items"].as_array().map(Vec::len), Some(1));

    // and recovering again finds nothing left to queue
    let again = app
        .post_json(
            "acme",
            &format!("/api/webhooks/outgoing/{webhook_id}/recover"),
            &json!({"since": since, "until": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.json(), json!({"queued": 0}));
}

#[tokio::test]
async fn recover_refuses_a_bad_window_naming_the_field_and_starts_an_old_one_at_the_retention() {
    let app = spawn_app().await;
    let target = target_answering(200).await;
    let webhook_id = create_webhook(&app, &target, json!({})).await;
    let path = format!("/api/webhooks/outgoing/{webhook_id}/recover");
    let too_old = hub_shared::store::timestamp(chrono::Utc::now() - chrono::Duration::days(15));
    let recent = hub_shared::store::timestamp(chrono::Utc::now() - chrono::Duration::hours(1));
    let earlier = hub_shared::store::timestamp(chrono::Utc::now() - chrono::Duration::hours(2));

    // a since older than the retention is its start: nothing older is kept
    let old = app
        .post_json("acme", &path, &json!({"since": too_old}))
        .await;
    assert_eq!(old.status, 202, "{}", old.text);
    assert_eq!(old.json(), json!({"queued": 0}));
    for (body, field) in [
        (json!({"since": recent, "until": earlier}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": recent, "until": null}), "until"),
        (json!({"since": recent, "window": "1h"}), "window"),
    ] {
        let reply = app.post_json("acme", &path, &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        let fields: Vec<String> = reply.json()["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|error| error["field"].as_str().map(str::to_string))
            .collect();
        assert_eq!(fields, [field], "{body}: {}", reply.text);
    }
}

#[tokio::test]
async fn test_reports_what_the_target_answered() {
    // Given webhooks to a target answering 200 and one answering 500
    let app = spawn_app().await;
    let healthy = target_answering(200).await;
    let failing = target_answering(500).await;
    let healthy_id = create_webhook(&app, &healthy, json!({})).await;
    let failing_id = create_webhook(&app, &failing, json!({})).await;

    // When each is tested
    let ok = app
        .post_json(
            "acme",
            &format!("/api/webhooks/{healthy_id}/test"),
            &json!({}),
        )
        .await;
    let failed = app
        .post_json(
            "acme",
            &format!("/api/webhooks/{failing_id}/test"),
            &json!({}),
        )
        .await;

    // Then the answers say what happened, synchronously
    assert_eq!(ok.status, 200, "{}", ok.text);
    let ok = ok.json();
    assert_eq!(
        (
            &ok["status"],
            &ok["responseStatus"],
            &ok["responseBody"],
            &ok["error"]
        ),
        (
            &json!("success"),
            &json!(200),
            &json!("answered 200"),
            &Value::Null
        )
    );
    assert!(ok["durationMs"].is_u64());
    assert!(ok["deliveryId"]
        .as_str()
        .unwrap_or_default()
        .starts_with("dlv_"));
    assert_eq!(failed.status, 200, "{}", failed.text);
    let failed = failed.json();
    assert_eq!(
        (&failed["status"], &failed["responseStatus"]),
        (&json!("failed"), &json!(500))
    );
    assert!(failed["error"].is_string(), "{failed}");

    // and the target got one signed webhook.test event, logged under the webhook
    let received = healthy.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 1);
    assert!(received[0].headers.get("webhook-signature").is_some());
    let event: Value = serde_json::from_slice(&received[0].body).expect("JSON event");
    assert_eq!(event["type"], "webhook.test");
    let logs = app
        .get("acme", &format!("/api/webhooks/{healthy_id}/logs"))
        .await;
    let logs = logs.json();
    assert_eq!(logs["items"][0]["deliveryId"], ok["deliveryId"]);
    assert_eq!(logs["items"][0]["eventType"], "webhook.test");
}

#[tokio::test]
async fn another_tenant_and_unknown_ids_get_404_on_every_delivery_route() {
    // Given acme's webhook with one logged (test) attempt
    let app = spawn_app().await;
    let target = target_answering(500).await;
    let webhook_id = create_webhook(&app, &target, json!({})).await;
    let tested = app
        .post_json(
            "acme",
            &format!("/api/webhooks/{webhook_id}/test"),
            &json!({}),
        )
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    let logs = app
        .get("acme", &format!("/api/webhooks/{webhook_id}/logs"))
        .await;
    let log_id = logs.json()["items"][0]["id"]
        .as_str()
        .expect("log")
        .to_string();
    let since = hub_shared::store::timestamp(chrono::Utc::now() - chrono::Duration::hours(1));

    // When another tenant, or anyone with ids that do not exist, calls every route
    let routes = |webhook: &str, log: &str| {
        vec![
            ("GET", format!("/api/webhooks/{webhook}/logs")),
            ("GET", format!("/api/webhook-logs/{log}")),
            ("POST", format!("/api/webhook-logs/{log}/retry")),
            ("POST", format!("/api/webhooks/outgoing/{webhook}/recover")),
            ("POST", format!("/api/webhooks/{webhook}/test")),
        ]
    };
    let mut calls: Vec<(&str, (&str, String))> = routes(&webhook_id, &log_id)
        .into_iter()
        .map(|route| ("globex", route))
        .collect();
    for (webhook, log) in [
        (
            "whout_000000000000000000000000000000",
            "log_00000000000000000000000000",
        ),
        ("whin_000000000000000000000000000000", "not-a-log-id"),
        (
            "int_00000000000000000000000000",
            "int_00000000000000000000000000",
        ),
    ] {
        calls.extend(
            routes(webhook, log)
                .into_iter()
                .map(|route| ("acme", route)),
        );
    }

    // Then each answer is a 404 problem
    for (tenant, (verb, path)) in calls {
        let reply = match verb {
            "GET" => app.get(tenant, &path).await,
            _ => app.post_json(tenant, &path, &json!({"since": since})).await,
        };
        assert_eq!(reply.status, 404, "{tenant} {verb} {path}: {}", reply.text);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    // and the target saw only acme's own test
    assert_eq!(target.received_requests().await.map(|r| r.len()), Some(1));
}
