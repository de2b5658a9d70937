//! Log lines under concurrency: each line carries exactly one request's span, and fields render as
//! plain values.

use std::sync::Arc;

use hub_tests::spawn_app;
use serde_json::{json, Value};

#[tokio::test]
async fn concurrent_requests_log_lines_with_one_request_span_each() {
    let captured = hub_tests::capture_logs("info");
    let app = Arc::new(spawn_app().await);

    // Given 24 creates in flight at once
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..24 {
        let app = app.clone();
        calls.spawn(async move {
            app.post_json(
                "acme",
                "/api/integrations",
                &json!({"provider": "stripe", "name": format!("Stripe {i}"), "connectionKey": format!("k{i}"),
                        "credentials": {"secretKey": "sk_test_0123456789abcdef"}}),
            )
            .await
            .status
        });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.expect("task"), 201);
    }

    // Then every "integration created" line is inside exactly one request span
    let logs = captured.text();
    let created: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "integration created")
        .collect();
    assert_eq!(created.len(), 24, "{logs}");
    let mut request_ids = std::collections::BTreeSet::new();
    for line in &created {
        let spans = line["spans"].as_array().expect("spans listed");
        let requests: Vec<&Value> = spans.iter().filter(|s| s["name"] == "request").collect();
        assert_eq!(requests.len(), 1, "{line}");
        request_ids.insert(requests[0]["requestId"].as_str().expect("id").to_string());
        assert!(!line.to_string().contains("Some("), "{line}");
    }
    assert_eq!(request_ids.len(), 24, "each line names its own request");
}
