//! The sparse sync-due index the scheduler reads (`gsi1`): it holds exactly the integrations that
//! have a `nextSyncAt`, and follows every change of the schedule.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use hub_tests::spawn_app;
use serde_json::{json, Value};

fn stripe(name: &str, sync: Value) -> Value {
    json!({"provider": "stripe", "name": name, "connectionKey": name,
           "credentials": {"secretKey": "sk_test_0123456789abcdef"}, "syncSettings": sync})
}

#[tokio::test]
async fn the_sync_due_index_holds_exactly_the_integrations_with_a_next_sync_at() {
    let app = spawn_app().await;
    // Given integrations of every schedule
    let mut ids = std::collections::BTreeMap::new();
    for (name, sync) in [
        ("hourly", json!({"enabled": true, "frequency": "hourly"})),
        ("daily", json!({"enabled": true, "frequency": "daily"})),
        (
            "realtime",
            json!({"enabled": true, "frequency": "realtime"}),
        ),
        ("manual", json!({"enabled": true, "frequency": "manual"})),
        ("disabled", json!({"enabled": false, "frequency": "hourly"})),
        ("to-manual", json!({"enabled": true, "frequency": "hourly"})),
        ("to-daily", json!({"enabled": false, "frequency": "manual"})),
        ("deleted", json!({"enabled": true, "frequency": "daily"})),
    ] {
        let created = app.create_integration("acme", &stripe(name, sync)).await;
        ids.insert(name, created["id"].as_str().expect("id").to_string());
    }
    // When schedules change and one integration goes away
    for (name, sync) in [
        ("to-manual", json!({"enabled": true, "frequency": "manual"})),
        ("to-daily", json!({"enabled": true, "frequency": "daily"})),
    ] {
        let reply = app
            .patch_json(
                "acme",
                &format!("/api/integrations/{}", ids[name]),
                &json!({"syncSettings": sync}),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    assert_eq!(
        app.delete("acme", &format!("/api/integrations/{}", ids["deleted"]))
            .await
            .status,
        204
    );

    // Then the index holds exactly those whose status shows a nextSyncAt
    let mut scheduled = BTreeSet::new();
    for (name, id) in &ids {
        let status = app
            .get("acme", &format!("/api/integrations/{id}/status"))
            .await;
        if status.status == 200 && status.json()["nextSyncAt"].is_string() {
            scheduled.insert(id.clone());
        } else {
            assert!(
                ["manual", "disabled", "to-manual", "deleted"].contains(name),
                "{name} should be scheduled"
            );
        }
    }
    let expected: BTreeSet<String> = ["hourly", "daily", "realtime", "to-daily"]
        .iter()
        .map(|name| ids[name].clone())
        .collect();
    assert_eq!(scheduled, expected);

    let dynamo = aws_sdk_dynamodb::Client::new(&hub_tests::sdk_config());
    let indexed: BTreeSet<String> = dynamo
        .query()
        .table_name(&app.stack.provisioned.table_name)
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :due")
        .expression_attribute_values(":due", AttributeValue::S("SYNC_DUE".into()))
        .send()
        .await
        .expect("index query")
        .items()
        .iter()
        .map(|item| {
            let sk = item["gsi1sk"].as_s().expect("gsi1sk");
            sk.rsplit('#').next().expect("id").to_string()
        })
        .collect();
    assert_eq!(indexed, expected);

    // And the scheduler's query finds them all as due now (each was due at once)
    let store = &app.stack;
    let due = hub_shared::store::Store::new(
        dynamo.clone(),
        store.provisioned.table_name.clone(),
        hub_shared::crypto::EnvelopeCipher::new(
            aws_sdk_kms::Client::new(&hub_tests::sdk_config()),
            store.provisioned.key_id.clone(),
        ),
    )
    .due_integrations(chrono::Utc::now(), 100)
    .await
    .expect("due query");
    let due: BTreeSet<String> = due.into_iter().map(|d| d.id.to_string()).collect();
    assert_eq!(due, expected);
}
