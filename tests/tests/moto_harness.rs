//! The harness itself: a test run reaches a working moto, and resources one test creates are there
//! for it (and named so no other test sees them).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

#[tokio::test]
async fn moto_serves_dynamodb_for_the_test_run() {
    let client = aws_sdk_dynamodb::Client::new(&hub_tests::sdk_config());
    let name = hub_tests::unique_name("harness");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("moto creates the table");
    let described = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .expect("moto describes it");
    let table = described.table().expect("table");
    assert_eq!(table.table_name(), Some(name.as_str()));
    assert_eq!(table.key_schema()[0].attribute_name(), "pk");
    assert_ne!(
        name,
        hub_tests::unique_name("harness"),
        "names are unique per call"
    );
    client
        .delete_table()
        .table_name(&name)
        .send()
        .await
        .expect("moto deletes the table");
}
