//! Bad input end to end: a clear 400 naming the field, in the API's terms, and nothing stored.

use hub_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn a_transform_config_of_the_wrong_type_is_named_and_nothing_is_stored() {
    let app = spawn_app().await;
    let body = json!({
        "provider": "stripe", "name": "Payments", "credentials": {"secretKey": "sk_test_0123456789abcdef"},
        "syncSettings": {"entities": [{"localEntity": "payment", "remoteEntity": "charge"}],
                         "fieldMappings": [{"localEntity": "payment", "localField": "paidAt",
                                            "remoteField": "created", "transform": "date_format",
                                            "transformConfig": {"format": 42}}]}
    });
    let reply = app.post_json("acme", "/api/integrations", &body).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    let problem = reply.json();
    assert_eq!(problem["code"], "validation_failed");
    assert_eq!(
        problem["errors"][0]["field"],
        "syncSettings.fieldMappings[0].transformConfig.format"
    );
    let listed = app.get("acme", "/api/integrations").await.json();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn a_body_that_is_not_an_object_says_expected_a_json_object() {
    let app = spawn_app().await;
    for body in [
        json!([]),
        json!("stripe"),
        json!(7),
        json!(["stripe", "Payments"]),
    ] {
        let reply = app.post_json("acme", "/api/integrations", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        let problem = reply.json();
        assert_eq!(problem["code"], "validation_failed");
        assert_eq!(problem["errors"][0]["message"], "expected a JSON object");
        assert!(!reply.text.contains("struct"), "{}", reply.text);
    }
    let listed = app.get("acme", "/api/integrations").await.json();
    assert_eq!(listed["items"], json!([]));
}
