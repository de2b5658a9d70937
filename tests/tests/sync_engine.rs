//! The sync engine end to end: the local stack (its sync-queue poller runs the jobs) against moto
//! and a local provider API serving one data set under every pagination style.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use hub_shared::domain::{IntegrationId, JobId, TenantId};
use hub_shared::queue::{SyncJob, SyncTrigger};
use hub_shared::services::Services;
use hub_tests::provider::LocalProvider;
use hub_tests::{spawn_app, spawn_app_with, TestApp};
use serde_json::{json, Value};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "acme";

/// A custom_api integration reading `entity` (local name `contact`) with `definition`.
fn custom_api(provider: &LocalProvider, definition: Value, extra_settings: Value) -> Value {
    let mut settings = json!({
        "enabled": false, "direction": "import", "frequency": "manual",
        "entities": [{"localEntity": "contact", "remoteEntity": "contact"}],
        "fieldMappings": [
            {"localEntity": "contact", "localField": "title", "remoteField": "name"},
            {"localEntity": "contact", "localField": "amountMajor", "remoteField": "amount",
             "transform": "currency_convert", "transformConfig": {"divideBy": 100}},
            {"localEntity": "contact", "localField": "changedOn", "remoteField": "updated",
             "transform": "date_format", "transformConfig": {"format": "date"}},
            {"localEntity": "contact", "localField": "kind", "remoteField": "kind", "defaultValue": "person"}
        ],
        "filters": [{"field": "status", "operator": "not_equals", "value": "archived"}]
    });
    if let Value::Object(extra) = extra_settings {
        for (key, value) in extra {
            settings[key] = value;
        }
    }
    json!({"provider": "custom_api", "name": "Local CRM", "connectionKey": unique_key(),
           "credentials": {"apiKey": "local-crm-api-key-0001"},
           "config": {"baseUrl": provider.url(), "entities": {"contact": definition}},
           "syncSettings": settings})
}

fn unique_key() -> String {
    hub_tests::unique_name("k")
        .replace(['_', ':'], "-")
        .chars()
        .take(60)
        .collect()
}

/// Queues a sync through the API and waits for the job's log (the local stack's poller runs it).
async fn sync_and_wait(app: &TestApp, id: &str, body: Value) -> Value {
    let queued = app
        .post_json(TENANT, &format!("/api/integrations/{id}/sync"), &body)
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let job = queued.json()["jobId"].as_str().expect("jobId").to_string();
    wait_for_log(app, id, &job).await
}

async fn wait_for_log(app: &TestApp, id: &str, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let logs = app
            .get(TENANT, &format!("/api/integrations/{id}/logs?action=sync"))
            .await
            .json();
        if let Some(log) = logs["items"]
            .as_array()
            .and_then(|items| items.iter().find(|log| log["jobId"] == job))
        {
            return log.clone();
        }
        assert!(Instant::now() < deadline, "no log for job {job}: {logs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every stored record of the integration's `contact` entity (deleted ones with `include_deleted`).
async fn records(app: &TestApp, id: &str, include_deleted: bool) -> Vec<Value> {
    records_of(app, id, "contact", include_deleted).await
}

/// Every stored record of the integration's local `entity`.
async fn records_of(app: &TestApp, id: &str, entity: &str, include_deleted: bool) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!(
            "/api/integrations/{id}/records/{entity}?limit=100&includeDeleted={include_deleted}"
        );
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(TENANT, &path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return all,
        }
    }
}

fn ids(records: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

fn summary(log: &Value) -> (u64, u64, u64, u64, u64, u64) {
    let s = &log["summary"];
    let n = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
    (
        n("total"),
        n("created"),
        n("updated"),
        n("skipped"),
        n("deleted"),
        n("failed"),
    )
}

#[tokio::test]
async fn every_pagination_type_yields_exactly_the_providers_records_mapped_byte_exactly() {
    let provider = LocalProvider::start(23, 5).await;
    provider.put(json!({"id": "r9001", "name": "פגישה עם 📅 الفريق", "amount": 12345, "status": "active", "kind": "company"}));
    provider.put(json!({"id": "r9002", "name": "Archived one", "amount": 1, "status": "archived"}));
    let app = spawn_app().await;
    let definitions = [
        (
            "cursor",
            json!({"request": {"method": "GET", "path": "/cursor"}, "records": "items", "id": "id",
                          "pagination": {"type": "cursor", "param": "pageToken", "next": "nextPageToken"}}),
        ),
        (
            "offset",
            json!({"request": {"method": "GET", "path": "/offset"}, "records": "results", "id": "id",
                          "pagination": {"type": "offset", "param": "offset", "limitParam": "limit", "pageSize": 4}}),
        ),
        (
            "page",
            json!({"request": {"method": "GET", "path": "/page"}, "records": "", "id": "id",
                        "pagination": {"type": "page", "param": "page", "sizeParam": "per_page", "pageSize": 7}}),
        ),
        (
            "page without size",
            json!({"request": {"method": "GET", "path": "/page"}, "records": "", "id": "id",
                        "pagination": {"type": "page", "param": "page", "pageSize": 5}}),
        ),
        (
            "link_header",
            json!({"request": {"method": "GET", "path": "/link"}, "records": "", "id": "id",
                               "pagination": {"type": "link_header"}}),
        ),
        (
            "starting_after",
            json!({"request": {"method": "GET", "path": "/stripe", "params": {"limit": "6"}},
                                  "records": "data", "id": "id",
                                  "pagination": {"type": "starting_after", "param": "starting_after", "hasMore": "has_more"}}),
        ),
    ];
    let mut expected = provider.ids();
    expected.retain(|id| id != "r9002"); // filtered out
    for (label, definition) in definitions {
        let created = app
            .create_integration(TENANT, &custom_api(&provider, definition, json!({})))
            .await;
        let id = created["id"].as_str().expect("id");
        let log = sync_and_wait(&app, id, json!({})).await;
        assert_eq!(log["status"], "success", "{label}: {log}");
        assert_eq!(summary(&log), (25, 24, 0, 1, 0, 0), "{label}: {log}");
        let stored = records(&app, id, false).await;
        assert_eq!(ids(&stored), expected, "{label}");
        let hebrew = stored.iter().find(|r| r["id"] == "r9001").expect("r9001");
        assert_eq!(hebrew["data"]["title"], "פגישה עם 📅 الفريق", "{label}");
        assert_eq!(hebrew["data"]["amountMajor"], json!(123.45), "{label}");
        assert_eq!(hebrew["data"]["kind"], "company", "{label}");
        let plain = stored.iter().find(|r| r["id"] == "r0003").expect("r0003");
        assert_eq!(plain["data"]["amountMajor"], json!(3), "{label}");
        assert_eq!(
            plain["data"]["kind"], "person",
            "{label}: the default applies"
        );
        assert_eq!(
            plain["data"]["changedOn"].as_str().map(str::len),
            Some(10),
            "{label}: a date"
        );
        assert_eq!(
            plain["data"].as_object().map(|d| d.len()),
            Some(4),
            "{label}: exactly the mapped fields"
        );
    }
}

#[tokio::test]
async fn a_full_sync_reports_what_changed_and_deletes_what_is_gone_with_events() {
    let provider = LocalProvider::start(20, 6).await;
    let target = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&target)
        .await;
    let app = spawn_app().await;
    let webhook = app
        .post_json(
            TENANT,
            "/api/webhooks/outgoing",
            &json!({"name": "Contacts", "url": format!("{}/hooks", target.uri()),
                    "triggers": [{"entityType": "contact", "events": ["*"]}],
                    "retryAttempts": 3, "retryDelaySeconds": 1, "timeoutSeconds": 5}),
        )
        .await;
    assert_eq!(webhook.status, 201, "{}", webhook.text);
    let definition = json!({"request": {"method": "GET", "path": "/offset"}, "records": "results", "id": "id",
                            "pagination": {"type": "offset", "param": "offset", "limitParam": "limit", "pageSize": 6}});
    let created = app
        .create_integration(TENANT, &custom_api(&provider, definition, json!({})))
        .await;
    let id = created["id"].as_str().expect("id");
    let first = sync_and_wait(&app, id, json!({})).await;
    assert_eq!(summary(&first), (20, 20, 0, 0, 0, 0), "{first}");

    for i in 1..=5 {
        provider.change(&format!("r{i:04}"), "name", json!(format!("Changed {i}")));
    }
    for i in 6..=8 {
        provider.delete(&format!("r{i:04}"));
    }
    provider.put(json!({"id": "r0101", "name": "New one", "amount": 5, "status": "active"}));
    provider.put(json!({"id": "r0102", "name": "New two", "amount": 7, "status": "active"}));
    let second = sync_and_wait(&app, id, json!({})).await;
    assert_eq!(second["status"], "success", "{second}");
    assert_eq!(summary(&second), (19, 2, 5, 12, 3, 0), "{second}");

    let live = records(&app, id, false).await;
    assert_eq!(ids(&live), provider.ids());
    let all = records(&app, id, true).await;
    assert_eq!(all.len(), 22);
    assert!(all
        .iter()
        .filter(|r| ["r0006", "r0007", "r0008"].contains(&r["id"].as_str().unwrap_or("")))
        .all(|r| r["meta"]["deleted"] == true));

    // The changes reached the webhook: 22 created, 5 updated, 3 deleted.
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let received = target.received_requests().await.expect("recording");
        let mut counts = std::collections::BTreeMap::new();
        for request in &received {
            let event: Value = serde_json::from_slice(&request.body).expect("json");
            *counts
                .entry(event["type"].as_str().unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
        if counts.values().sum::<i32>() >= 30 || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(counts.get("contact.created"), Some(&22), "{counts:?}");
    assert_eq!(counts.get("contact.updated"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("contact.deleted"), Some(&3), "{counts:?}");
}

#[tokio::test]
async fn an_incremental_sync_reads_only_changes_and_an_expired_token_resyncs_exactly() {
    let provider = LocalProvider::start(12, 5).await;
    let app = spawn_app().await;
    let definition = json!({"request": {"method": "GET", "path": "/cursor"}, "records": "items", "id": "id",
        "deleted": {"path": "status", "equals": "cancelled"},
        "pagination": {"type": "cursor", "param": "pageToken", "next": "nextPageToken"},
        "incremental": {"type": "sync_token", "param": "syncToken", "next": "nextSyncToken", "expiredStatus": 410}});
    let created = app
        .create_integration(TENANT, &custom_api(&provider, definition, json!({})))
        .await;
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        summary(&sync_and_wait(&app, id, json!({})).await),
        (12, 12, 0, 0, 0, 0)
    );

    provider.change("r0001", "name", json!("Renamed"));
    provider.change("r0002", "amount", json!(999));
    provider.delete("r0003");
    provider.put(json!({"id": "r0050", "name": "Added", "amount": 1, "status": "active"}));
    let before = provider.requests().len();
    let incremental = sync_and_wait(&app, id, json!({})).await;
    assert_eq!(summary(&incremental), (4, 1, 2, 0, 1, 0), "{incremental}");
    let requests = provider.requests();
    assert!(
        requests[before..].iter().all(|r| r.contains("syncToken=")),
        "{:?}",
        &requests[before..]
    );
    assert_eq!(ids(&records(&app, id, false).await), provider.ids());

    // The provider forgets its tokens: 410, then a full resync that still ends exact.
    provider.expire_sync_tokens();
    provider.delete("r0004");
    let resync = sync_and_wait(&app, id, json!({})).await;
    assert_eq!(resync["status"], "success", "{resync}");
    assert_eq!(summary(&resync), (11, 0, 0, 11, 1, 0), "{resync}");
    assert_eq!(ids(&records(&app, id, false).await), provider.ids());
}

#[tokio::test]
async fn a_run_killed_after_a_page_resumes_from_its_checkpoint_and_counts_every_record_once() {
    let provider = LocalProvider::start(17, 4).await;
    let app = spawn_app_with(|options| options.start_workers = false).await;
    let definition = json!({"request": {"method": "GET", "path": "/offset"}, "records": "results", "id": "id",
                            "pagination": {"type": "offset", "param": "offset", "limitParam": "limit", "pageSize": 4}});
    let created = app
        .create_integration(TENANT, &custom_api(&provider, definition, json!({})))
        .await;
    let id = created["id"].as_str().expect("id").to_string();
    let services =
        Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");
    let tenant = TenantId::parse(TENANT).expect("tenant");
    let integration = IntegrationId::parse(&id).expect("id");
    let job = SyncJob {
        tenant_id: tenant.clone(),
        integration_id: integration.clone(),
        job_id: JobId::generate(),
        trigger: SyncTrigger::Api,
        entities: Vec::new(),
        full: false,
    };
    assert_eq!(
        services
            .store
            .claim_sync_queued(&tenant, &integration, &job.job_id)
            .await
            .expect("claim"),
        hub_shared::store::QueueClaim::Claimed
    );

    // The third page hangs; the run is killed while it waits (two pages are checkpointed).
    provider.stall_next(2, Duration::ZERO);
    provider.stall_next(1, Duration::from_secs(30));
    let first_run = {
        let services = services.clone();
        let job = job.clone();
        tokio::spawn(async move {
            hub_shared::sync::engine::run_job(
                &services,
                &job,
                Instant::now() + Duration::from_secs(600),
            )
            .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while provider.requests().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the third page was not asked for"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    first_run.abort();
    let _ = first_run.await;
    let stored_after_crash = records(&app, &id, false).await.len();
    assert_eq!(
        stored_after_crash, 8,
        "two pages were stored before the crash"
    );

    // Time passes: the dead run's lease runs out, and SQS brings its message back.
    let dynamo = aws_sdk_dynamodb::Client::new(&hub_tests::sdk_config());
    dynamo
        .update_item()
        .table_name(&app.stack.provisioned.table_name)
        .key("pk", AttributeValue::S(format!("TENANT#{TENANT}")))
        .key("sk", AttributeValue::S(format!("INT#{id}")))
        .update_expression("SET syncJob.leaseUntilMs = :past")
        .expression_attribute_values(":past", AttributeValue::N("0".into()))
        .send()
        .await
        .expect("lease expired");
    let before = provider.requests().len();
    let outcome = hub_shared::sync::engine::run_job(
        &services,
        &job,
        Instant::now() + Duration::from_secs(600),
    )
    .await
    .expect("resumed run");
    assert_eq!(
        outcome,
        hub_shared::sync::engine::JobOutcome::Finished(hub_shared::events::SyncOutcome::Success)
    );
    let offsets = |requests: &[String]| -> Vec<u64> {
        requests
            .iter()
            .filter_map(|r| url::Url::parse(&format!("http://x{r}")).ok())
            .filter_map(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "offset")
                    .and_then(|(_, v)| v.parse().ok())
            })
            .collect()
    };
    assert_eq!(offsets(&provider.requests()[..before]), vec![0, 4, 8]);
    assert_eq!(
        offsets(&provider.requests()[before..]),
        vec![8, 12, 16],
        "the resumed run starts at the page it was on"
    );
    let log = wait_for_log(&app, &id, job.job_id.as_str()).await;
    assert_eq!(summary(&log), (17, 17, 0, 0, 0, 0), "{log}");
    assert_eq!(ids(&records(&app, &id, false).await), provider.ids());
}

#[tokio::test]
async fn rate_limits_and_failures_are_ridden_out_and_a_second_sync_waits_its_turn() {
    let provider = LocalProvider::start(9, 3).await;
    let app = spawn_app().await;
    let definition = json!({"request": {"method": "GET", "path": "/stripe", "params": {"limit": "3"}},
                            "records": "data", "id": "id",
                            "pagination": {"type": "starting_after", "param": "starting_after", "hasMore": "has_more"}});
    let created = app
        .create_integration(TENANT, &custom_api(&provider, definition, json!({})))
        .await;
    let id = created["id"].as_str().expect("id");

    // A 429 with Retry-After: 2, then a 500: both ridden out, nothing lost.
    provider.fail_next(429, 1, Some(2));
    provider.fail_next(500, 1, None);
    let log = sync_and_wait(&app, id, json!({})).await;
    assert_eq!(log["status"], "success", "{log}");
    assert_eq!(summary(&log), (9, 9, 0, 0, 0, 0));
    let timed = provider.timed_requests();
    assert!(timed.len() >= 5, "{timed:?}");
    assert!(
        timed[1].0.duration_since(timed[0].0) >= Duration::from_secs(2),
        "Retry-After was honoured"
    );

    // While a run is in progress, another sync is refused and the status shows the run.
    provider.stall_next(1, Duration::from_secs(4));
    let queued = app
        .post_json(
            TENANT,
            &format!("/api/integrations/{id}/sync"),
            &json!({"full": true}),
        )
        .await;
    assert_eq!(queued.status, 202);
    let job = queued.json()["jobId"].as_str().expect("job").to_string();
    let again = app
        .post_json(TENANT, &format!("/api/integrations/{id}/sync"), &json!({}))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = app
            .get(TENANT, &format!("/api/integrations/{id}/status"))
            .await
            .json();
        if status["running"]["jobId"] == job.as_str() {
            assert!(status["running"]["startedAt"].is_string());
            break;
        }
        assert!(Instant::now() < deadline, "never running: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = wait_for_log(&app, id, &job).await;
    assert_eq!(summary(&done), (9, 0, 0, 9, 0, 0), "{done}");
    let unknown = app
        .post_json(
            TENANT,
            &format!("/api/integrations/{id}/sync"),
            &json!({"entities": ["nope"]}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["errors"][0]["field"], "entities[0]");
}

#[tokio::test]
async fn the_schedule_queues_due_integrations_only_and_next_sync_at_follows_the_frequency() {
    let provider = LocalProvider::start(3, 10).await;
    let app = spawn_app_with(|options| options.start_workers = false).await;
    let definition =
        json!({"request": {"method": "GET", "path": "/offset"}, "records": "results", "id": "id"});
    let hourly = app
        .create_integration(
            TENANT,
            &custom_api(
                &provider,
                definition.clone(),
                json!({"enabled": true, "frequency": "hourly"}),
            ),
        )
        .await;
    let manual = app
        .create_integration(TENANT, &custom_api(&provider, definition, json!({})))
        .await;
    assert!(hourly["id"] != manual["id"]);
    let services =
        Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");
    let status = |id: &Value| {
        let app = &app;
        let id = id["id"].as_str().expect("id").to_string();
        async move {
            app.get(TENANT, &format!("/api/integrations/{id}/status"))
                .await
                .json()
        }
    };
    assert!(status(&manual).await["nextSyncAt"].is_null());
    let due_at = status(&hourly).await["nextSyncAt"]
        .as_str()
        .expect("due")
        .to_string();

    let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
        serde_json::from_str(include_str!("../../events/eventbridge-schedule.json"))
            .expect("fixture");
    let report = sync_runner::handle_schedule(
        services.clone(),
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
    )
    .await
    .expect("tick");
    assert_eq!((report.due, report.queued, report.busy), (1, 1, 0));
    let moved = status(&hourly).await["nextSyncAt"]
        .as_str()
        .expect("due")
        .to_string();
    assert!(
        moved > due_at,
        "the queued integration moved on: {due_at} → {moved}"
    );

    // The queued job is on the sync queue; run it as the poller would.
    let sqs = aws_sdk_sqs::Client::new(&hub_tests::sdk_config());
    let received = sqs
        .receive_message()
        .queue_url(&app.stack.provisioned.sync_queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive");
    let messages = received.messages();
    assert_eq!(messages.len(), 1);
    let job = match hub_shared::queue::decode(messages[0].body().unwrap_or("")).expect("job") {
        hub_shared::queue::Job::Sync(job) => job,
        other => panic!("not a sync job: {other:?}"),
    };
    assert_eq!(
        job.integration_id.as_str(),
        hourly["id"].as_str().expect("id")
    );
    assert_eq!(job.trigger, SyncTrigger::Schedule);
    let started = chrono::Utc::now();
    hub_shared::sync::engine::run_job(&services, &job, Instant::now() + Duration::from_secs(300))
        .await
        .expect("run");
    let after = status(&hourly).await;
    let next = chrono::DateTime::parse_from_rfc3339(after["nextSyncAt"].as_str().expect("next"))
        .expect("time");
    let hour_after_start = started + chrono::Duration::hours(1);
    assert!(
        (next.with_timezone(&chrono::Utc) - hour_after_start)
            .num_seconds()
            .abs()
            <= 5,
        "{after}"
    );
    assert_eq!(after["lastSyncStatus"], "success");
    assert_eq!(after["totalSyncs"], 1);

    // Nothing is due any more.
    let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
        serde_json::from_str(include_str!("../../events/eventbridge-schedule.json"))
            .expect("fixture");
    let report = sync_runner::handle_schedule(
        services,
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
    )
    .await
    .expect("tick");
    assert_eq!(report.due, 0);
}

fn sync_settings_for(entity: &str, mappings: Value) -> Value {
    json!({"enabled": false, "direction": "import", "frequency": "manual",
           "entities": [{"localEntity": entity, "remoteEntity": entity}],
           "fieldMappings": mappings})
}

#[tokio::test]
async fn the_shipped_quickbooks_and_monday_definitions_sync_from_apis_shaped_like_theirs() {
    let provider = LocalProvider::start(200, 100).await;
    let local = provider.url();
    let entries = json!({
        "quickbooks_local": hub_tests::shipped_entry("quickbooks", &format!("{local}/v3/company/{{config.realmId}}"), "Bearer {token}"),
        "monday_local": hub_tests::shipped_entry("monday", local, "{token}"),
    });
    let file = hub_tests::write_providers_file(&entries.to_string());
    let app = spawn_app_with(|options| options.providers_file = Some(file)).await;

    // QuickBooks: the query statement pages by STARTPOSITION; inactive customers are deletions;
    // the third page of exactly 200 customers is QuickBooks' empty `{"QueryResponse": {}}`.
    let quickbooks = app
        .create_integration(
            TENANT,
            &json!({"provider": "quickbooks_local", "name": "Books", "connectionKey": unique_key(),
                    "credentials": {"token": "qb-access-token-0001"}, "config": {"realmId": "9130347"},
                    "syncSettings": sync_settings_for("customer", json!([
                        {"localEntity": "customer", "localField": "name", "remoteField": "DisplayName"},
                        {"localEntity": "customer", "localField": "balance", "remoteField": "Balance",
                         "transform": "currency_convert", "transformConfig": {"divideBy": 100}}]))}),
        )
        .await;
    let qb = quickbooks["id"].as_str().expect("id");
    let first = sync_and_wait(&app, qb, json!({})).await;
    assert_eq!(first["status"], "success", "{first}");
    assert_eq!(summary(&first), (200, 200, 0, 0, 0, 0), "{first}");
    let statements: Vec<String> = provider
        .requests()
        .iter()
        .filter_map(|r| url::Url::parse(&format!("http://h{r}")).ok())
        .filter(|u| u.path() == "/v3/company/9130347/query")
        .filter_map(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "query")
                .map(|(_, v)| v.into_owned())
        })
        .collect();
    let positions: Vec<&str> = statements
        .iter()
        .map(|q| q.rsplit("STARTPOSITION ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        positions,
        [
            "1 MAXRESULTS 100",
            "101 MAXRESULTS 100",
            "201 MAXRESULTS 100"
        ]
    );
    let stored = records_of(&app, qb, "customer", false).await;
    assert_eq!(stored.len(), 200);
    let r7 = stored.iter().find(|r| r["id"] == "r0007").expect("r0007");
    assert_eq!(r7["data"], json!({"name": "Record 7", "balance": 7}));

    provider.change("r0003", "name", json!("Renamed ☕ שלום"));
    provider.change("r0004", "status", json!("inactive"));
    provider.put(json!({"id": "r0201", "name": "New", "amount": 1, "status": "active"}));
    let second = sync_and_wait(&app, qb, json!({})).await;
    assert_eq!(second["status"], "success", "{second}");
    assert_eq!(summary(&second), (201, 1, 1, 198, 1, 0), "{second}");
    let live = records_of(&app, qb, "customer", false).await;
    assert_eq!(live.len(), 200);
    assert!(live.iter().all(|r| r["id"] != "r0004"));
    let renamed = live.iter().find(|r| r["id"] == "r0003").expect("r0003");
    assert_eq!(renamed["data"]["name"], "Renamed ☕ שלום");

    // monday: GraphQL with the board and cursor as variables; items gone from the board are deleted.
    let monday = app
        .create_integration(
            TENANT,
            &json!({"provider": "monday_local", "name": "Board", "connectionKey": unique_key(),
                    "credentials": {"token": "monday-token-0001"}, "config": {"boardId": "1234567890"},
                    "syncSettings": sync_settings_for("item", json!([
                        {"localEntity": "item", "localField": "title", "remoteField": "name"},
                        {"localEntity": "item", "localField": "amount", "remoteField": "column_values.0.text"}]))}),
        )
        .await;
    let board = monday["id"].as_str().expect("id");
    let first = sync_and_wait(&app, board, json!({})).await;
    assert_eq!(first["status"], "success", "{first}");
    assert_eq!(summary(&first), (201, 201, 0, 0, 0, 0), "{first}");
    let variables: Vec<Value> = provider
        .requests()
        .iter()
        .filter_map(|r| r.strip_prefix("/v2 "))
        .map(|body| serde_json::from_str::<Value>(body).expect("a JSON body")["variables"].clone())
        .collect();
    assert_eq!(
        variables,
        [
            json!({"board": ["1234567890"], "cursor": null}),
            json!({"board": ["1234567890"], "cursor": "cur-100"}),
            json!({"board": ["1234567890"], "cursor": "cur-200"})
        ]
    );
    provider.delete("r0010");
    provider.delete("r0011");
    provider.change("r0012", "name", json!("Moved to done"));
    let second = sync_and_wait(&app, board, json!({})).await;
    assert_eq!(summary(&second), (199, 0, 1, 198, 2, 0), "{second}");
    let items = records_of(&app, board, "item", false).await;
    assert_eq!(items.len(), 199);
    let moved = items.iter().find(|r| r["id"] == "r0012").expect("r0012");
    assert_eq!(
        moved["data"],
        json!({"title": "Moved to done", "amount": "1200"})
    );
}
