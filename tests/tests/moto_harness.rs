//! The harness itself: a test run reaches a working moto.

#[tokio::test]
async fn moto_serves_dynamodb_for_the_test_run() {
    let client = aws_sdk_dynamodb::Client::new(&hub_tests::sdk_config());
    let listed = client
        .list_tables()
        .send()
        .await
        .expect("moto answers ListTables");
    assert!(listed.table_names().len() < 100_000);
}
