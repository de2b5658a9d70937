//! Log lines under concurrency: each line carries exactly one request's span, and fields render as
//! plain values.

use std::sync::{Arc, Mutex};

use hub_tests::spawn_app;
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn concurrent_requests_log_lines_with_one_request_span_each() {
    let captured = CapturedLogs::default();
    let writer = captured.clone();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(move || writer.clone())
        .try_init();
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
    let logs = String::from_utf8_lossy(&captured.0.lock().expect("lock")).to_string();
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
