//! Store rules seen from the outside: expired items are invisible before TTL removes them, and a bad
//! providers file stops start-up naming the slug and the field.

use aws_sdk_dynamodb::types::AttributeValue;
use hub_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn an_expired_log_is_not_listed_even_though_ttl_has_not_removed_it() {
    let app = spawn_app().await;
    let created = app
        .create_integration(
            "acme",
            &json!({"provider": "custom_webhook", "name": "Hook"}),
        )
        .await;
    let id = created["id"].as_str().expect("id");
    let dynamo = aws_sdk_dynamodb::Client::new(&hub_tests::sdk_config());
    let log = |log_id: &str, expires_at: i64| {
        dynamo
            .put_item()
            .table_name(&app.stack.provisioned.table_name)
            .item("pk", AttributeValue::S(format!("TENANT#acme#INTLOG#{id}")))
            .item("sk", AttributeValue::S(format!("LOG#{log_id}")))
            .item("type", AttributeValue::S("integration_log".into()))
            .item("id", AttributeValue::S(log_id.into()))
            .item("integrationId", AttributeValue::S(id.into()))
            .item("action", AttributeValue::S("test".into()))
            .item("direction", AttributeValue::Null(true))
            .item("status", AttributeValue::S("success".into()))
            .item("summary", AttributeValue::Null(true))
            .item("failedItems", AttributeValue::L(vec![]))
            .item("errorMessage", AttributeValue::Null(true))
            .item("errorCode", AttributeValue::Null(true))
            .item(
                "startedAt",
                AttributeValue::S("2026-01-01T00:00:00.000Z".into()),
            )
            .item(
                "completedAt",
                AttributeValue::S("2026-01-01T00:00:00.001Z".into()),
            )
            .item("durationMs", AttributeValue::N("1".into()))
            .item("expiresAt", AttributeValue::N(expires_at.to_string()))
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    log("log_000000000000000000000000000001", now - 10)
        .await
        .expect("expired log written");
    log("log_000000000000000000000000000002", now + 3600)
        .await
        .expect("live log written");

    let listed = app
        .get("acme", &format!("/api/integrations/{id}/logs"))
        .await
        .json();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, vec!["log_000000000000000000000000000002"]);
}

#[tokio::test]
async fn a_bad_providers_file_stops_start_up_naming_the_slug_and_field() {
    let file = hub_tests::write_providers_file("acme_crm:\n  name: Acme CRM\n  category: crm\n  auth:\n    mode: oauth2\n    authorizeUrl: https://auth.acme.example/authorize\n    scopes: [contacts.read]\n  api:\n    baseUrl: https://api.acme.example/v2\n");
    let names = hub_local::provision::StackNames::with_prefix(&hub_tests::unique_name("bad"));
    let mut options =
        hub_local::stack::StackOptions::new(names, "127.0.0.1:0".parse().expect("addr"));
    options.providers_file = Some(file);
    let error = match hub_local::stack::LocalStack::start(&hub_tests::sdk_config(), options).await {
        Ok(_) => panic!("a bad providers file must stop start-up"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("acme_crm"), "{error}");
    assert!(error.contains("tokenUrl"), "{error}");

    // A good app is unaffected.
    let app = spawn_app().await;
    assert_eq!(app.get("acme", "/api/health").await.status, 200);
}
