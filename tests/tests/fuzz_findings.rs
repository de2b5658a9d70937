//! What the API fuzzer (tests/tests/api_fuzz.rs) found, one specification each, so that a fix stays
//! fixed even when a later fuzzing run happens not to generate the same request.

use hub_tests::{spawn_app, TestApp};
use serde_json::{json, Value};

const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

fn stripe(name: &str) -> Value {
    json!({"provider": "stripe", "name": name, "credentials": {"secretKey": SECRET_KEY}})
}

fn path_of(resource: &Value) -> String {
    format!("/api/integrations/{}", resource["id"].as_str().expect("id"))
}

/// The `field`s of a 400 `validation_failed` problem.
fn error_fields(reply: &hub_tests::Reply) -> Vec<String> {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json()["code"], "validation_failed", "{}", reply.text);
    reply.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_string())
        .collect()
}

async fn integration_count(app: &TestApp, tenant: &str) -> usize {
    let reply = app.get(tenant, "/api/integrations?limit=100").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["items"].as_array().expect("items").len()
}

#[tokio::test]
async fn if_match_takes_only_the_documented_forms_of_a_version() {
    // Given an integration at version 1
    let app = spawn_app().await;
    let path = path_of(&app.create_integration("acme", &stripe("Versioned")).await);

    // When If-Match has a shape the document does not allow (`W/` without quotes, unbalanced
    // quotes, 20 digits), it is a precondition that cannot hold: 412, nothing changes
    for malformed in ["W/1", "\"1", "1\"", "00000000000000000001"] {
        let reply = app
            .patch_json("acme", &path, &json!({"name": "changed"}), Some(malformed))
            .await;
        assert_eq!(reply.status, 412, "If-Match {malformed}: {}", reply.text);
    }
    assert_eq!(app.get("acme", &path).await.json()["version"], 1);

    // Then each documented form of the current version, and `*`, is accepted
    for (version, if_match) in [(1, "W/\"1\""), (2, "\"2\""), (3, "3"), (4, "*")] {
        let reply = app
            .patch_json(
                "acme",
                &path,
                &json!({"name": format!("v{version}")}),
                Some(if_match),
            )
            .await;
        assert_eq!(reply.status, 200, "If-Match {if_match}: {}", reply.text);
        assert_eq!(reply.json()["version"], version + 1);
    }
}

#[tokio::test]
async fn null_for_a_field_the_document_does_not_make_nullable_is_a_400_naming_it() {
    let app = spawn_app().await;

    // Given create bodies with null where the document has no null
    for field in ["connectionKey", "credentials", "config", "syncSettings"] {
        let mut body = stripe("Nulls");
        body[field] = Value::Null;
        // Then each is refused, naming the field, and nothing is stored
        let reply = app.post_json("acme", "/api/integrations", &body).await;
        assert_eq!(error_fields(&reply), [field], "{field}");
    }
    assert_eq!(integration_count(&app, "acme").await, 0);

    // And on update, null is refused where the document has no null (description may be null)
    let path = path_of(&app.create_integration("acme", &stripe("Nulls")).await);
    for field in ["name", "syncSettings", "config", "credentials"] {
        let reply = app
            .patch_json(
                "acme",
                &path,
                &json!({ field: null, "description": "x" }),
                None,
            )
            .await;
        assert_eq!(error_fields(&reply), [field], "{field}");
    }
    let reply = app
        .patch_json("acme", &path, &json!({"description": null}), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["version"], 2);
}

#[tokio::test]
async fn an_empty_provider_filter_is_a_400_not_an_empty_page() {
    let app = spawn_app().await;
    app.create_integration("acme", &stripe("Listed")).await;

    let reply = app.get("acme", "/api/integrations?provider=").await;

    assert_eq!(error_fields(&reply), ["provider"]);
}

#[tokio::test]
async fn json_dynamodb_cannot_store_is_a_400_and_the_tenant_list_stays_readable() {
    let app = spawn_app().await;
    let with = |config: Value, settings: Value| {
        let mut body = stripe("Storable");
        body["config"] = config;
        body["syncSettings"] = settings;
        body
    };
    let entity = json!([{"localEntity": "payment", "remoteEntity": "charge"}]);
    let mapping = |extra: Value| {
        let mut mapping =
            json!({"localEntity": "payment", "localField": "amount", "remoteField": "amount"});
        mapping
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        json!({"entities": entity, "fieldMappings": [mapping]})
    };

    // Given bodies whose free-form JSON has an empty key, a number beyond DynamoDB's range, or
    // nests too deep (moto stored the first kind and every later read of the tenant answered 500)
    let mut deep = json!(1);
    for _ in 0..17 {
        deep = json!([deep]);
    }
    let cases = [
        (with(json!({"": 1}), json!({})), "config"),
        (with(json!({"a": {"": 1}}), json!({})), "config.a"),
        (with(json!({"a": 1e200}), json!({})), "config.a"),
        (with(json!({"a": [1e-200]}), json!({})), "config.a[0]"),
        (
            with(json!({"a": deep}), json!({})),
            "config.a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]",
        ),
        (
            with(
                json!({}),
                mapping(json!({"transform": "custom", "transformConfig": {"": "x"}})),
            ),
            "syncSettings.fieldMappings[0].transformConfig",
        ),
        (
            with(json!({}), mapping(json!({"defaultValue": {"x": -1e127}}))),
            "syncSettings.fieldMappings[0].defaultValue.x",
        ),
        (
            with(
                json!({}),
                json!({"filters": [{"field": "a", "operator": "equals", "value": {"": null}}]}),
            ),
            "syncSettings.filters[0].value",
        ),
    ];
    for (body, field) in cases {
        // Then each is a 400 naming the place, and nothing is stored
        let reply = app.post_json("acme", "/api/integrations", &body).await;
        assert_eq!(error_fields(&reply), [field], "{body}");
    }
    assert_eq!(integration_count(&app, "acme").await, 0);

    // And the limits themselves are storable: read back exactly (a default value is free-form JSON)
    let edges =
        json!({"small": 1e-130, "large": -9.99e125, "zero": 0, "e": {"k": [true, null, "s"]}});
    let created = app
        .create_integration(
            "acme",
            &with(json!({}), mapping(json!({"defaultValue": edges}))),
        )
        .await;
    assert_eq!(
        created["syncSettings"]["fieldMappings"][0]["defaultValue"],
        edges
    );
    let listed = app.get("acme", "/api/integrations").await;
    assert_eq!(
        listed.json()["items"][0]["syncSettings"]["fieldMappings"][0]["defaultValue"],
        edges,
        "{}",
        listed.text
    );
}
