//! The sync runner's event fixtures (`events/eventbridge-schedule.json`, `events/sqs-sync-job.json`)
//! through the function's one entry point, as Lambda hands them over.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hub_shared::services::Services;
use hub_tests::provider::LocalProvider;
use hub_tests::spawn_app_with;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

const TENANT: &str = "tenant-events";
const PLACEHOLDER: &str = "int_000000000000000000000000000001";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn the_schedule_and_a_sync_job_fixture_are_handled_by_the_sync_runner() {
    let provider = LocalProvider::start(7, 3).await;
    let app = spawn_app_with(|options| options.start_workers = false).await;
    let services =
        Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");

    // The scheduled event: nothing is due in a fresh stack.
    let scheduled: Value =
        serde_json::from_str(&fixture("eventbridge-schedule.json")).expect("json");
    let report = sync_runner::handle_any(
        services.clone(),
        LambdaEvent::new(scheduled, Context::default()),
    )
    .await
    .expect("tick");
    assert_eq!(
        report,
        json!({"due": 0, "queued": 0, "busy": 0,
               "tokens": {"expiring": 0, "refreshed": 0, "announced": 0, "failed": 0}})
    );

    // The sync job, for an integration of the fixture's tenant that syncs `contact` records.
    let created = app
        .create_integration(
            TENANT,
            &json!({"provider": "custom_api", "name": "Fixture CRM",
                    "credentials": {"apiKey": "fixture-api-key-0001"},
                    "config": {"baseUrl": provider.url(), "entities": {"contact": {
                        "request": {"method": "GET", "path": "/offset"}, "records": "results", "id": "id",
                        "pagination": {"type": "offset", "param": "offset", "limitParam": "limit", "pageSize": 3}}}},
                    "syncSettings": {"entities": [{"localEntity": "contact", "remoteEntity": "contact"}]}}),
        )
        .await;
    let id = created["id"].as_str().expect("id");
    let batch: Value =
        serde_json::from_str(&fixture("sqs-sync-job.json").replace(PLACEHOLDER, id)).expect("json");
    let answer = sync_runner::handle_any(services, LambdaEvent::new(batch, Context::default()))
        .await
        .expect("batch");
    assert_eq!(answer["batchItemFailures"], json!([]));

    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let logs = app
            .get(TENANT, &format!("/api/integrations/{id}/logs?action=sync"))
            .await
            .json();
        if let Some(log) = logs["items"]
            .as_array()
            .and_then(|items| items.first())
            .cloned()
        {
            break log;
        }
        assert!(Instant::now() < deadline, "no sync log");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(log["jobId"], "job_000000000000000000000000000002");
    assert_eq!(log["status"], "success");
    assert_eq!(log["summary"]["created"], 7);
}
