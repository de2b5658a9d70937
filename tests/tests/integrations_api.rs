//! The integration management API through the local gateway, against moto: CRUD, versions,
//! uniqueness, tenant isolation, validation, Unicode and pagination.

use hub_tests::{spawn_app, TestApp};
use serde_json::{json, Value};

const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

fn stripe(name: &str) -> Value {
    json!({"provider": "stripe", "name": name, "credentials": {"secretKey": SECRET_KEY}})
}

fn path_of(resource: &Value) -> String {
    format!("/api/integrations/{}", resource["id"].as_str().expect("id"))
}

#[tokio::test]
async fn an_integration_is_created_read_updated_listed_and_deleted() {
    let app = spawn_app().await;

    // Create: 201, ETag, Location, the resource with defaults and no secret.
    let created = app
        .post_json("acme", "/api/integrations", &stripe("Payments"))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let resource = created.json();
    let path = path_of(&resource);
    assert_eq!(created.header("location"), Some(path.as_str()));
    assert!(resource["id"].as_str().expect("id").starts_with("int_"));
    assert_eq!(resource["tenantId"], "acme");
    assert_eq!(resource["status"], "connected");
    assert_eq!(resource["authMode"], "api_key");
    assert_eq!(resource["connectionKey"], "default");
    assert_eq!(resource["connectedBy"], "user-acme");
    assert_eq!(resource["credentials"]["configured"], true);
    assert_eq!(resource["credentials"]["hint"], "…p7dc");
    assert_eq!(
        resource["syncSettings"],
        json!({"enabled": false, "direction": "import", "frequency": "manual",
               "entities": [], "fieldMappings": [], "filters": []})
    );
    assert_eq!(
        resource["health"],
        json!({"score": 100, "errorCount": 0, "consecutiveFailures": 0})
    );
    assert_eq!(resource["version"], 1);

    // Read it back.
    let read = app.get("acme", &path).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("etag"), Some("\"1\""));
    assert_eq!(read.json(), resource);

    // Update with the current version.
    let patched = app
        .patch_json(
            "acme",
            &path,
            &json!({"name": "Payments EU", "description": "EU account"}),
            Some("\"1\""),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.header("etag"), Some("\"2\""));
    assert_eq!(patched.json()["name"], "Payments EU");
    assert_eq!(patched.json()["description"], "EU account");
    assert_eq!(patched.json()["version"], 2);

    // A description sent as null clears it; PATCH without If-Match is allowed.
    let cleared = app
        .patch_json("acme", &path, &json!({"description": null}), None)
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(cleared.json()["description"], Value::Null);
    assert_eq!(cleared.json()["version"], 3);

    // Listed.
    let listed = app.get("acme", "/api/integrations").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["items"].as_array().expect("items").len(), 1);
    assert_eq!(listed.json()["nextCursor"], Value::Null);

    // Delete: 204, then 404 for read and for a second delete.
    let deleted = app.delete("acme", &path).await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.text.is_empty());
    assert_eq!(app.get("acme", &path).await.status, 404);
    assert_eq!(app.delete("acme", &path).await.status, 404);
    assert_eq!(
        app.get("acme", "/api/integrations").await.json()["items"],
        json!([])
    );
}

#[tokio::test]
async fn a_second_integration_with_the_same_provider_and_connection_key_conflicts() {
    let app = spawn_app().await;
    let first = app.create_integration("acme", &stripe("One")).await;

    let duplicate = app
        .post_json("acme", "/api/integrations", &stripe("Two"))
        .await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert_eq!(duplicate.json()["code"], "conflict");
    assert_eq!(
        duplicate.header("content-type"),
        Some("application/problem+json")
    );

    // Another connection key, or another tenant, is a different integration.
    let mut other_key = stripe("Two");
    other_key["connectionKey"] = json!("eu-account");
    assert_eq!(
        app.post_json("acme", "/api/integrations", &other_key)
            .await
            .status,
        201
    );
    assert_eq!(
        app.post_json("globex", "/api/integrations", &stripe("Two"))
            .await
            .status,
        201
    );

    // Deleting releases the key.
    assert_eq!(app.delete("acme", &path_of(&first)).await.status, 204);
    assert_eq!(
        app.post_json("acme", "/api/integrations", &stripe("Again"))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn a_stale_if_match_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let created = app.create_integration("acme", &stripe("Versioned")).await;
    let path = path_of(&created);
    assert_eq!(
        app.patch_json("acme", &path, &json!({"name": "v2"}), Some("1"))
            .await
            .status,
        200
    );

    for stale in ["1", "\"1\"", "W/\"1\"", "banana"] {
        let reply = app
            .patch_json("acme", &path, &json!({"name": "lost update"}), Some(stale))
            .await;
        assert_eq!(reply.status, 412, "If-Match {stale}: {}", reply.text);
        assert_eq!(reply.json()["code"], "precondition_failed");
    }
    let current = app.get("acme", &path).await.json();
    assert_eq!(current["name"], "v2");
    assert_eq!(current["version"], 2);
    assert_eq!(
        app.patch_json("acme", &path, &json!({"name": "v3"}), Some("\"2\""))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn another_tenants_integration_is_answered_as_missing_on_every_route() {
    let app = spawn_app().await;
    let mine = app
        .create_integration("acme", &stripe("Acme payments"))
        .await;
    let path = path_of(&mine);

    let attempts = [
        app.get("intruder", &path).await,
        app.patch_json("intruder", &path, &json!({"name": "pwned"}), None)
            .await,
        app.get("intruder", &format!("{path}/status")).await,
        app.get("intruder", &format!("{path}/logs")).await,
        app.post_json("intruder", &format!("{path}/test"), &json!({}))
            .await,
        app.delete("intruder", &path).await,
    ];
    for reply in attempts {
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.json()["code"], "not_found");
    }
    assert_eq!(
        app.get("intruder", "/api/integrations").await.json()["items"],
        json!([])
    );
    let still_mine = app.get("acme", &path).await;
    assert_eq!(still_mine.status, 200);
    assert_eq!(still_mine.json()["name"], "Acme payments");
}

fn error_fields(reply: &hub_tests::Reply) -> Vec<String> {
    reply.json()["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_bodies_get_field_errors_and_change_nothing() {
    let app = spawn_app().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"provider": "stripe", "name": "x", "credentials": {"secretKey": SECRET_KEY}, "colour": "red"}),
            "colour",
        ),
        (
            json!({"provider": "stripe", "name": "x", "credentials": {"secretKey": SECRET_KEY},
                   "syncSettings": {"direction": "sideways"}}),
            "syncSettings.direction",
        ),
        (
            json!({"provider": "stripe", "name": "x", "credentials": {"secretKey": SECRET_KEY},
                   "syncSettings": {"enabled": true, "frequncy": "daily"}}),
            "syncSettings.frequncy",
        ),
        (
            json!({"provider": "twilio", "name": "x", "credentials": {"accountSid": "AC123"}}),
            "credentials.authToken",
        ),
        (
            json!({"provider": "stripe", "name": "x", "credentials": {"secretKey": SECRET_KEY, "extra": "1"}}),
            "credentials.extra",
        ),
        (
            json!({"provider": "stripe", "name": 5, "credentials": {"secretKey": SECRET_KEY}}),
            "name",
        ),
        (
            json!({"provider": "stripe", "name": "x", "credentials": {"secretKey": 12345}}),
            "credentials.secretKey",
        ),
        (
            json!({"provider": "stripe", "name": "   ", "credentials": {"secretKey": SECRET_KEY}}),
            "name",
        ),
        (
            json!({"provider": "stripe", "credentials": {"secretKey": SECRET_KEY}}),
            "name",
        ),
        (
            json!({"provider": "no_such_provider", "name": "x"}),
            "provider",
        ),
        (
            json!({"provider": "google_calendar", "name": "x"}),
            "provider",
        ),
        (
            json!({"provider": "stripe", "name": "x", "connectionKey": "has space", "credentials": {"secretKey": SECRET_KEY}}),
            "connectionKey",
        ),
        (
            json!({"provider": "stripe", "name": "x", "credentials": {"secretKey": SECRET_KEY},
                   "syncSettings": {"entities": [{"localEntity": "payment", "remoteEntity": "no_such_entity"}]}}),
            "syncSettings.entities[0].remoteEntity",
        ),
        (
            json!({"provider": "stripe", "name": "x", "credentials": {"secretKey": SECRET_KEY},
                   "config": {"baseUrl": "ftp://example.com"}}),
            "config.baseUrl",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post_json("acme", "/api/integrations", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.json()["code"], "validation_failed", "{body}");
        assert!(
            error_fields(&reply).iter().any(|f| f == field),
            "{body}: expected {field} in {}",
            reply.text
        );
    }

    // Malformed JSON, a wrong content type and an oversized body.
    let malformed = app
        .send(
            app.request(reqwest::Method::POST, "acme", "/api/integrations")
                .header("content-type", "application/json")
                .body("{\"provider\":"),
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["code"], "malformed_json");
    let text = app
        .send(
            app.request(reqwest::Method::POST, "acme", "/api/integrations")
                .header("content-type", "text/plain")
                .body(stripe("x").to_string()),
        )
        .await;
    assert_eq!(text.status, 415);
    assert_eq!(text.json()["code"], "unsupported_media_type");
    let huge =
        json!({"provider": "stripe", "name": "x", "description": "a".repeat(1024 * 1024 + 1)});
    let too_large = app.post_json("acme", "/api/integrations", &huge).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.json()["code"], "payload_too_large");

    // Nothing was created by any of them.
    assert_eq!(
        app.get("acme", "/api/integrations").await.json()["items"],
        json!([])
    );
    let items = app.scan_table().await;
    assert!(
        items.iter().all(|item| item
            .get("type")
            .and_then(|t| t.as_s().ok())
            .map(String::as_str)
            != Some("integration")),
        "a rejected request wrote an integration"
    );
}

#[tokio::test]
async fn bad_patches_get_field_errors_and_change_nothing() {
    let app = spawn_app().await;
    let created = app.create_integration("acme", &stripe("Stable")).await;
    let path = path_of(&created);
    for (body, field) in [
        (json!({"nmae": "typo"}), "nmae"),
        (
            json!({"syncSettings": {"frequency": "weekly"}}),
            "syncSettings.frequency",
        ),
        (json!({"credentials": {"nope": "x"}}), "credentials.nope"),
        (json!({"name": ""}), "name"),
        (json!({}), "(body)"),
    ] {
        let reply = app.patch_json("acme", &path, &body, None).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert!(
            error_fields(&reply).iter().any(|f| f == field),
            "{body}: expected {field} in {}",
            reply.text
        );
    }
    let current = app.get("acme", &path).await.json();
    assert_eq!(current["version"], 1);
    assert_eq!(current["name"], "Stable");
}

#[tokio::test]
async fn no_secret_leaves_through_responses_logs_or_the_table() {
    let captured = hub_tests::capture_logs("debug");
    let app = spawn_app().await;
    let twilio_token = "twilio-auth-token-5f0c1d2e3a4b";
    let rotated = "sk_test_rotated_9a8b7c6d5e4f3a2b1c0d";
    let stripe_created = app.create_integration("acme", &stripe("Stripe")).await;
    let twilio_created = app
        .create_integration(
            "acme",
            &json!({"provider": "twilio", "name": "SMS",
                    "credentials": {"accountSid": "AC0123456789abcdef", "authToken": twilio_token}}),
        )
        .await;
    assert_eq!(twilio_created["credentials"]["hint"], "…3a4b");
    // Rotate the Stripe key.
    let rotated_reply = app
        .patch_json(
            "acme",
            &path_of(&stripe_created),
            &json!({"credentials": {"secretKey": rotated}}),
            None,
        )
        .await;
    assert_eq!(rotated_reply.status, 200);
    assert_eq!(rotated_reply.json()["credentials"]["hint"], "…1c0d");
    app.get("acme", "/api/integrations").await;
    app.get("acme", &path_of(&twilio_created)).await;

    let secrets = [SECRET_KEY, twilio_token, rotated];
    for body in app.response_bodies() {
        for secret in secrets {
            assert!(
                !body.contains(secret),
                "a response contains a secret: {body}"
            );
        }
    }
    let logs = captured.text();
    assert!(
        logs.contains("integration created"),
        "the scenario's logs were captured"
    );
    for secret in secrets {
        assert!(!logs.contains(secret), "a log line contains a secret");
    }
    let items = app.scan_table().await;
    assert!(items.len() >= 4);
    for item in &items {
        let dump = format!("{item:?}");
        for secret in secrets {
            assert!(
                !dump.contains(secret),
                "a stored item contains a secret in plaintext: {dump}"
            );
            for attribute in item.values() {
                if let Ok(bytes) = attribute.as_b() {
                    let raw = bytes.as_ref();
                    assert!(
                        !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
                        "an envelope holds plaintext"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn hebrew_arabic_persian_and_emoji_names_round_trip_byte_exactly() {
    let app = spawn_app().await;
    let names = [
        ("יומן המרפאה — ראשי", "תיאור בעברית"),
        ("تقويم العيادة الرئيسي", "وصف بالعربية"),
        ("تقویم کلینیک پژوهش", "توضیحات فارسی"),
        ("📅 Studio 🚀 café ñ", "emoji 👩‍⚕️ ZWJ and combining é"),
    ];
    for (i, (name, description)) in names.iter().enumerate() {
        let body = json!({"provider": "stripe", "name": name, "description": description,
                          "connectionKey": format!("k{i}"), "credentials": {"secretKey": SECRET_KEY}});
        let created = app.create_integration("acme", &body).await;
        assert_eq!(
            created["name"].as_str().expect("name").as_bytes(),
            name.as_bytes()
        );
        let read = app.get("acme", &path_of(&created)).await.json();
        assert_eq!(
            read["name"].as_str().expect("name").as_bytes(),
            name.as_bytes()
        );
        assert_eq!(
            read["description"]
                .as_str()
                .expect("description")
                .as_bytes(),
            description.as_bytes()
        );
    }
    let listed = app.get("acme", "/api/integrations").await.json();
    let listed_names: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or(""))
        .collect();
    for (name, _) in names {
        assert!(listed_names.contains(&name));
    }
}

#[tokio::test]
async fn forty_five_integrations_are_listed_twenty_at_a_time_each_exactly_once() {
    let app = spawn_app().await;
    let mut created = std::collections::BTreeSet::new();
    for i in 0..45 {
        let body = json!({"provider": "stripe", "name": format!("Account {i}"), "connectionKey": format!("acct-{i}"),
                          "credentials": {"secretKey": SECRET_KEY}});
        created.insert(
            app.create_integration("acme", &body).await["id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    app.create_integration("globex", &stripe("Other tenant"))
        .await;

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/integrations?limit=20&cursor={c}"),
            None => "/api/integrations?limit=20".to_string(),
        };
        let page = app.get("acme", &path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let body = page.json();
        let items = body["items"].as_array().expect("items").clone();
        pages.push(items.len());
        seen.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_string()),
        );
        match body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, vec![20, 20, 5]);
    assert_eq!(seen.len(), 45);
    assert_eq!(
        seen.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        created
    );

    // The first page's cursor, replayed by another tenant, edited, or on another filter: 400.
    let first = app.get("acme", "/api/integrations?limit=20").await.json();
    let genuine = first["nextCursor"].as_str().expect("cursor").to_string();
    let foreign = app
        .get("globex", &format!("/api/integrations?cursor={genuine}"))
        .await;
    assert_eq!(foreign.status, 400);
    assert_eq!(foreign.json()["code"], "invalid_cursor");
    let mut forged = genuine.clone().into_bytes();
    forged[2] = if forged[2] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert_eq!(
        app.get("acme", &format!("/api/integrations?cursor={forged}"))
            .await
            .json()["code"],
        "invalid_cursor"
    );
    assert_eq!(
        app.get("acme", "/api/integrations?cursor=not-a-cursor")
            .await
            .status,
        400
    );
    assert_eq!(
        app.get(
            "acme",
            &format!("/api/integrations?status=error&cursor={genuine}")
        )
        .await
        .json()["code"],
        "invalid_cursor"
    );
    assert_eq!(
        app.get("acme", "/api/integrations?limit=0").await.status,
        400
    );
    assert_eq!(
        app.get("acme", "/api/integrations?limit=101").await.status,
        400
    );
    assert_eq!(
        app.get("acme", "/api/integrations?status=sleepy")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn the_list_filters_by_provider_and_status() {
    let app = spawn_app().await;
    app.create_integration("acme", &stripe("Stripe")).await;
    app.create_integration(
        "acme",
        &json!({"provider": "sendgrid", "name": "Mail", "credentials": {"apiKey": "SG.abcdefghijklmnop"}}),
    )
    .await;
    let stripe_only = app
        .get("acme", "/api/integrations?provider=stripe")
        .await
        .json();
    assert_eq!(stripe_only["items"].as_array().expect("items").len(), 1);
    assert_eq!(stripe_only["items"][0]["provider"], "stripe");
    let connected = app
        .get("acme", "/api/integrations?status=connected")
        .await
        .json();
    assert_eq!(connected["items"].as_array().expect("items").len(), 2);
    let errored = app
        .get("acme", "/api/integrations?status=error")
        .await
        .json();
    assert_eq!(errored["items"], json!([]));
}

#[tokio::test]
async fn providers_are_listed_filtered_and_read() {
    let app: TestApp = spawn_app().await;
    let all = app.get("acme", "/api/providers").await;
    assert_eq!(all.status, 200);
    let body = all.json();
    assert_eq!(body["nextCursor"], Value::Null);
    let slugs: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["slug"].as_str().unwrap_or(""))
        .collect();
    for slug in [
        "google_calendar",
        "stripe",
        "twilio",
        "hubspot",
        "custom_api",
        "custom_webhook",
    ] {
        assert!(slugs.contains(&slug), "{slug} missing");
    }
    let payments = app
        .get("acme", "/api/providers?category=payments")
        .await
        .json();
    let items = payments["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert!(items.iter().all(|p| p["category"] == "payments"));
    assert_eq!(
        app.get("acme", "/api/providers?category=toys").await.status,
        400
    );

    let twilio = app.get("acme", "/api/providers/twilio").await.json();
    assert_eq!(twilio["authMode"], "basic");
    assert_eq!(
        twilio["credentialFields"],
        json!([{"name": "accountSid", "secret": false}, {"name": "authToken", "secret": true}])
    );
    assert_eq!(app.get("acme", "/api/providers/nope").await.status, 404);
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_problems() {
    let app = spawn_app().await;
    let missing = app.get("acme", "/api/nothing-here").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "not_found");
    let wrong = app
        .send(app.request(reqwest::Method::PUT, "acme", "/api/integrations"))
        .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.json()["code"], "method_not_allowed");
    assert_eq!(wrong.header("allow"), Some("GET, POST"));
    assert!(wrong.header("x-request-id").is_some());
}

#[tokio::test]
async fn status_reports_connection_and_sync_state() {
    let app = spawn_app().await;
    let mut body = stripe("Scheduled");
    body["syncSettings"] = json!({"enabled": true, "frequency": "hourly",
                                  "entities": [{"localEntity": "payment", "remoteEntity": "charge"}]});
    let created = app.create_integration("acme", &body).await;
    let status = app
        .get("acme", &format!("{}/status", path_of(&created)))
        .await;
    assert_eq!(status.status, 200);
    let status = status.json();
    assert_eq!(status["status"], "connected");
    assert_eq!(status["connected"], true);
    assert_eq!(status["autoSyncEnabled"], true);
    assert_eq!(status["syncDirection"], "import");
    assert_eq!(status["syncFrequency"], "hourly");
    assert!(
        status["nextSyncAt"].is_string(),
        "enabling hourly makes it due at once"
    );
    assert_eq!(status["running"], Value::Null);
    assert_eq!(status["health"]["score"], 100);

    let manual = app
        .patch_json(
            "acme",
            &path_of(&created),
            &json!({"syncSettings": {"enabled": true, "frequency": "manual"}}),
            None,
        )
        .await;
    assert_eq!(manual.status, 200, "{}", manual.text);
    let status = app
        .get("acme", &format!("{}/status", path_of(&created)))
        .await
        .json();
    assert_eq!(status["autoSyncEnabled"], false);
    assert_eq!(status["nextSyncAt"], Value::Null);
}

#[tokio::test]
async fn a_custom_api_integration_carries_its_own_entity_definitions() {
    let app = spawn_app().await;
    let definitions = json!({"ticket": {"request": {"method": "GET", "path": "/tickets"}, "records": "items", "id": "id"}});
    let body = json!({
        "provider": "custom_api", "name": "Helpdesk",
        "credentials": {"apiKey": "custom-api-key-123456"},
        "config": {"baseUrl": "http://127.0.0.1:9", "entities": definitions},
        "syncSettings": {"entities": [{"localEntity": "ticket", "remoteEntity": "ticket"}]}
    });
    let created = app.post_json("acme", "/api/integrations", &body).await;
    assert_eq!(created.status, 201, "{}", created.text);

    let mut broken = body.clone();
    broken["connectionKey"] = json!("broken");
    broken["config"]["entities"]["ticket"]["request"] = json!({"method": "GET"});
    let refused = app.post_json("acme", "/api/integrations", &broken).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        error_fields(&refused)
            .iter()
            .any(|f| f.starts_with("config.entities.ticket")),
        "{}",
        refused.text
    );
}
