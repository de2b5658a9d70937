//! The records store end to end, against moto: what a sync or an incoming webhook's action writes
//! (`Store::upsert_record`, `soft_delete_record`; no route writes records yet) and what
//! `GET /api/integrations/{id}/records/{entity}` lists through the local gateway — created /
//! updated / unchanged by hash, soft deletes behind `includeDeleted`, a strict `modifiedAfter`,
//! pages that list every record once, Unicode byte-exact, tenant isolation, signed cursors, and
//! DELETE of the integration taking its records along.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use hub_shared::domain::{IncomingWebhookId, IntegrationId, RemoteId, TenantId};
use hub_shared::events::{EntityName, EntityRecord, RecordSource};
use hub_shared::services::Services;
use hub_shared::store::{record_hash, Store, Upsert};
use hub_tests::{spawn_app_with, TestApp};
use serde_json::{json, Map, Value};

const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

/// A fresh stack, acme's Stripe integration and a store on the same table.
struct Scene {
    app: TestApp,
    store: Store,
    tenant: TenantId,
    integration: IntegrationId,
}

impl Scene {
    async fn new() -> Scene {
        let app = spawn_app_with(|options| options.start_workers = false).await;
        let store = Services::new(app.stack.config.clone(), &hub_tests::sdk_config())
            .expect("services")
            .store;
        let integration = Scene::connect(&app, "payments").await;
        Scene {
            app,
            store,
            tenant: TenantId::parse("acme").expect("tenant"),
            integration,
        }
    }

    /// One more acme integration (`connectionKey` keeps them apart).
    async fn connect(app: &TestApp, key: &str) -> IntegrationId {
        let created = app
            .create_integration(
                "acme",
                &json!({"provider": "stripe", "name": key, "connectionKey": key,
                        "credentials": {"secretKey": SECRET_KEY}}),
            )
            .await;
        IntegrationId::parse(created["id"].as_str().expect("id")).expect("integration id")
    }

    async fn upsert(&self, entity: &str, remote_id: &str, data: Value) -> Upsert {
        self.upsert_into(&self.integration, entity, remote_id, data)
            .await
    }

    async fn upsert_into(
        &self,
        integration: &IntegrationId,
        entity: &str,
        remote_id: &str,
        data: Value,
    ) -> Upsert {
        self.store
            .upsert_record(
                &self.tenant,
                integration,
                &entity_name(entity),
                &RemoteId::parse(remote_id).expect("remote id"),
                object(data),
                RecordSource::Integration(integration.clone()),
            )
            .await
            .expect("upsert")
    }

    async fn soft_delete(&self, entity: &str, remote_id: &str) -> Option<EntityRecord> {
        self.store
            .soft_delete_record(
                &self.tenant,
                &self.integration,
                &entity_name(entity),
                &RemoteId::parse(remote_id).expect("remote id"),
            )
            .await
            .expect("soft delete")
    }

    fn records_path(&self, entity: &str) -> String {
        format!("/api/integrations/{}/records/{entity}", self.integration)
    }

    /// One page as acme sees it (panics unless 200).
    async fn page(&self, entity: &str, query: &str) -> Value {
        let reply = self
            .app
            .get("acme", &format!("{}{query}", self.records_path(entity)))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()
    }

    /// The ids of the first page.
    async fn ids(&self, entity: &str, query: &str) -> Vec<String> {
        ids_of(&self.page(entity, query).await)
    }

    /// Every item of the list, page after page (`query` starts with `&` or is empty).
    async fn all_pages(&self, entity: &str, limit: usize, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        for _ in 0..50 {
            let page = self
                .page(
                    entity,
                    &format!("?limit={limit}&cursor={}{query}", encode(&cursor)),
                )
                .await;
            let batch = page["items"].as_array().expect("items").clone();
            assert!(batch.len() <= limit, "a page holds at most `limit` items");
            items.extend(batch);
            match page["nextCursor"].as_str() {
                Some(next) => cursor = next.to_string(),
                None => return items,
            }
        }
        panic!("the pages never ended");
    }
}

fn entity_name(entity: &str) -> EntityName {
    EntityName::parse(entity).expect("entity")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(object) => object,
        other => panic!("not an object: {other}"),
    }
}

fn ids_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_string())
        .collect()
}

/// Percent-encodes a query value (cursors, date-times with `+`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Stored times have millisecond resolution: waiting a little makes the next write strictly later.
async fn next_millisecond() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn an_upsert_creates_then_skips_the_same_data_then_updates_changed_data() {
    let scene = Scene::new().await;
    let data = json!({"title": "Check-up", "room": {"floor": 2, "name": "A"}});

    // Given a new remote record, the upsert creates it
    let Upsert::Created(created) = scene.upsert("meeting", "evt-1", data.clone()).await else {
        panic!("a new id is created");
    };
    assert_eq!(created.id, "evt-1");
    assert_eq!(created.data, object(data.clone()));
    assert_eq!(created.meta.hash, record_hash(&object(data)));
    assert_eq!(created.meta.created_at, created.meta.updated_at);
    assert!(!created.meta.deleted);
    assert_eq!(
        created.source,
        RecordSource::Integration(scene.integration.clone())
    );

    // when the same data comes again, in another key order, nothing is written
    next_millisecond().await;
    let same = json!({"room": {"name": "A", "floor": 2}, "title": "Check-up"});
    assert_eq!(
        scene.upsert("meeting", "evt-1", same).await,
        Upsert::Unchanged(created.clone())
    );

    // and changed data updates it: a new hash and updatedAt, the same createdAt
    next_millisecond().await;
    let changed = json!({"title": "Check-up (moved)", "room": {"floor": 3, "name": "A"}});
    let Upsert::Updated(updated) = scene.upsert("meeting", "evt-1", changed.clone()).await else {
        panic!("changed data is an update");
    };
    assert_eq!(updated.meta.created_at, created.meta.created_at);
    assert!(updated.meta.updated_at > created.meta.updated_at);
    assert_eq!(updated.meta.hash, record_hash(&object(changed.clone())));
    assert_ne!(updated.meta.hash, created.meta.hash);

    // then the store and the route show the record as it now is.
    let stored = scene
        .store
        .get_record(
            &scene.tenant,
            &scene.integration,
            &entity_name("meeting"),
            &RemoteId::parse("evt-1").expect("remote id"),
        )
        .await
        .expect("read");
    assert_eq!(stored, Some(updated.clone()));
    let page = scene.page("meeting", "").await;
    assert_eq!(
        page,
        json!({"items": [{"id": "evt-1", "data": changed,
                          "meta": {"hash": updated.meta.hash, "createdAt": created.meta.created_at,
                                   "updatedAt": updated.meta.updated_at, "deleted": false}}],
               "nextCursor": null})
    );
}

#[tokio::test]
async fn a_record_written_by_an_incoming_webhook_keeps_its_source() {
    let scene = Scene::new().await;
    let webhook_id = IncomingWebhookId::generate();
    let source = RecordSource::Webhook {
        webhook_id,
        integration_id: Some(scene.integration.clone()),
    };
    let upsert = scene
        .store
        .upsert_record(
            &scene.tenant,
            &scene.integration,
            &entity_name("payment"),
            &RemoteId::parse("ch_1").expect("remote id"),
            object(json!({"amount": 12.5})),
            source.clone(),
        )
        .await
        .expect("upsert");
    assert_eq!(upsert.record().source, source);
    let stored = scene
        .store
        .get_record(
            &scene.tenant,
            &scene.integration,
            &entity_name("payment"),
            &RemoteId::parse("ch_1").expect("remote id"),
        )
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored, upsert.into_record());
}

#[tokio::test]
async fn a_soft_deleted_record_is_listed_only_with_include_deleted() {
    let scene = Scene::new().await;
    scene.upsert("meeting", "a", json!({"title": "A"})).await;
    let created = scene
        .upsert("meeting", "b", json!({"title": "B"}))
        .await
        .into_record();

    // When b is soft-deleted (once: a second delete, or one of an unknown id, changes nothing)
    next_millisecond().await;
    let deleted = scene.soft_delete("meeting", "b").await.expect("b deleted");
    assert!(deleted.meta.deleted);
    assert!(deleted.meta.updated_at > created.meta.updated_at);
    assert_eq!(deleted.meta.created_at, created.meta.created_at);
    assert_eq!(deleted.data, created.data);
    assert_eq!(scene.soft_delete("meeting", "b").await, None);
    assert_eq!(scene.soft_delete("meeting", "never-stored").await, None);

    // then only includeDeleted=true lists it, marked deleted
    assert_eq!(scene.ids("meeting", "").await, ["a"]);
    assert_eq!(scene.ids("meeting", "?includeDeleted=false").await, ["a"]);
    let all = scene.page("meeting", "?includeDeleted=true").await;
    assert_eq!(ids_of(&all), ["a", "b"]);
    assert_eq!(all["items"][1]["meta"]["deleted"], true);
    assert_eq!(all["items"][0]["meta"]["deleted"], false);

    // and the same data arriving again brings it back as an update.
    let Upsert::Updated(back) = scene.upsert("meeting", "b", json!({"title": "B"})).await else {
        panic!("a deleted record that comes back is updated");
    };
    assert!(!back.meta.deleted);
    assert_eq!(back.meta.created_at, created.meta.created_at);
    assert_eq!(scene.ids("meeting", "").await, ["a", "b"]);
}

#[tokio::test]
async fn modified_after_is_strict_and_a_soft_delete_counts_as_a_modification() {
    let scene = Scene::new().await;
    let a = scene
        .upsert("meeting", "a", json!({"n": 1}))
        .await
        .into_record();
    next_millisecond().await;
    let b = scene
        .upsert("meeting", "b", json!({"n": 2}))
        .await
        .into_record();
    assert!(b.meta.updated_at > a.meta.updated_at);
    let after = |at: &str| format!("?modifiedAfter={}", encode(at));

    // Strictly after a's time: b only; after b's: nothing; a millisecond before a's: both
    assert_eq!(
        scene.ids("meeting", &after(&a.meta.updated_at)).await,
        ["b"]
    );
    assert!(scene
        .ids("meeting", &after(&b.meta.updated_at))
        .await
        .is_empty());
    let a_at = chrono::DateTime::parse_from_rfc3339(&a.meta.updated_at).expect("RFC 3339");
    let before_a = (a_at - chrono::Duration::milliseconds(1)).to_rfc3339();
    assert_eq!(scene.ids("meeting", &after(&before_a)).await, ["a", "b"]);
    // the same instant as b's, written in another offset, is the same bound
    let b_in_jerusalem = chrono::DateTime::parse_from_rfc3339(&b.meta.updated_at)
        .expect("RFC 3339")
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).expect("offset"))
        .to_rfc3339();
    assert!(scene
        .ids("meeting", &after(&b_in_jerusalem))
        .await
        .is_empty());

    // When a is soft-deleted, it is modified after b's time — listed with includeDeleted only.
    next_millisecond().await;
    scene.soft_delete("meeting", "a").await.expect("deleted");
    let since_b = after(&b.meta.updated_at);
    assert!(scene.ids("meeting", &since_b).await.is_empty());
    let with_deleted = scene
        .page("meeting", &format!("{since_b}&includeDeleted=true"))
        .await;
    assert_eq!(ids_of(&with_deleted), ["a"]);
    assert_eq!(with_deleted["items"][0]["meta"]["deleted"], true);
}

#[tokio::test]
async fn pages_of_two_list_every_record_exactly_once() {
    let scene = Scene::new().await;
    // Given 9 meetings (3 of them soft-deleted), and records of neighbouring entities
    let mut expected = Vec::new();
    for i in 0..9 {
        let id = format!("m-{i}");
        scene.upsert("meeting", &id, json!({"i": i})).await;
        if i % 3 == 1 {
            scene.soft_delete("meeting", &id).await.expect("deleted");
        } else {
            expected.push(id);
        }
    }
    scene.upsert("meeting_room", "r-1", json!({})).await;
    scene.upsert("Meeting", "m-x", json!({})).await;

    // When a client follows nextCursor with limit=2
    let listed = scene.all_pages("meeting", 2, "").await;
    let ids: Vec<String> = listed
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_string())
        .collect();

    // then it sees every live meeting exactly once, in id order, and nothing else
    assert_eq!(ids, expected);
    let with_deleted = scene.all_pages("meeting", 2, "&includeDeleted=true").await;
    let all: Vec<&str> = with_deleted
        .iter()
        .map(|item| item["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        all,
        (0..9).map(|i| format!("m-{i}")).collect::<Vec<_>>(),
        "deleted ones included"
    );
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len(),
        9,
        "no record twice"
    );
    assert_eq!(scene.ids("meeting_room", "").await, ["r-1"]);

    // and a cursor is good only for the list and filters it came from.
    let first = scene.page("meeting", "?limit=2").await;
    let cursor = encode(first["nextCursor"].as_str().expect("a next page"));
    for elsewhere in [
        format!(
            "{}?limit=2&cursor={cursor}",
            scene.records_path("meeting_room")
        ),
        format!(
            "{}?limit=2&includeDeleted=true&cursor={cursor}",
            scene.records_path("meeting")
        ),
    ] {
        let reply = scene.app.get("acme", &elsewhere).await;
        assert_eq!(reply.status, 400, "{elsewhere}: {}", reply.text);
        assert_eq!(reply.json()["code"], "invalid_cursor");
    }
}

#[tokio::test]
async fn unicode_in_remote_ids_and_data_round_trips_byte_exact() {
    let scene = Scene::new().await;
    let records = [
        (
            "פגישה-17",
            json!({"כותרת": "בדיקה שנתית", "הערות": "  רווחים  בסוף  "}),
        ),
        (
            "اجتماع#2/۳",
            json!({"عنوان": "مراجعة", "ملاحظات": "نص \u{200f}مع علامة اتجاه"}),
        ),
        (
            "جلسه ۴",
            json!({"عنوان": "جلسه هفتگی", "یادداشت": "ی ک ‌نیم‌فاصله"}),
        ),
        (
            "🚀 launch",
            json!({"emoji": "👩‍⚕️🩺🇮🇱", "nested": {"список": ["ä", "ß", "𝄞"]}}),
        ),
    ];
    for (id, data) in &records {
        scene.upsert("meeting", id, data.clone()).await;
    }

    // When the records are read through the gateway
    let reply = scene.app.get("acme", &scene.records_path("meeting")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // then every id and value is the same text, sent as UTF-8 (not \u escapes)
    let page = reply.json();
    for (id, data) in &records {
        let item = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|item| item["id"] == *id)
            .unwrap_or_else(|| panic!("{id} listed: {page}"));
        assert_eq!(item["data"], *data, "{id}");
        assert!(reply.text.contains(id), "{id} verbatim in the body");
    }
    assert!(reply.text.contains("👩‍⚕️🩺🇮🇱"));

    // and the table holds the same bytes.
    let dynamo = aws_sdk_dynamodb::Client::new(&hub_tests::sdk_config());
    let item = dynamo
        .get_item()
        .table_name(&scene.app.stack.provisioned.table_name)
        .key(
            "pk",
            AttributeValue::S(format!("TENANT#acme#REC#{}", scene.integration)),
        )
        .key("sk", AttributeValue::S("REC#meeting#اجتماع#2/۳".into()))
        .send()
        .await
        .expect("get item")
        .item
        .expect("stored under the documented key");
    assert_eq!(
        item["remoteId"].as_s().expect("S").as_bytes(),
        "اجتماع#2/۳".as_bytes()
    );
    let data = item["data"].as_m().expect("M");
    assert_eq!(
        data["ملاحظات"].as_s().expect("S").as_bytes(),
        "نص \u{200f}مع علامة اتجاه".as_bytes()
    );
}

#[tokio::test]
async fn records_are_tenant_scoped_and_every_parameter_is_validated() {
    let scene = Scene::new().await;
    scene.upsert("meeting", "a", json!({"title": "A"})).await;
    scene.upsert("meeting", "b", json!({"title": "B"})).await;
    let path = scene.records_path("meeting");

    // Another tenant's integration is answered exactly like a missing one
    let foreign = scene.app.get("globex", &path).await;
    assert_eq!(foreign.status, 404, "{}", foreign.text);
    assert_eq!(foreign.json()["code"], "not_found");
    let missing = scene
        .app
        .get(
            "acme",
            "/api/integrations/int_00000000000000000000000000/records/meeting",
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        (
            foreign.json()["detail"].clone(),
            foreign.json()["title"].clone()
        ),
        (
            missing.json()["detail"].clone(),
            missing.json()["title"].clone()
        )
    );
    assert_eq!(
        scene
            .app
            .get("acme", "/api/integrations/abc/records/meeting")
            .await
            .status,
        404
    );

    // Invalid values are 400s naming each field
    let fields_of = |reply: &hub_tests::Reply| -> Vec<String> {
        reply.json()["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    for (entity, query, fields) in [
        ("integration", "", vec!["entity"]),
        ("9lives", "", vec!["entity"]),
        ("meeting", "?modifiedAfter=yesterday", vec!["modifiedAfter"]),
        ("meeting", "?modifiedAfter=", vec!["modifiedAfter"]),
        ("meeting", "?includeDeleted=1", vec!["includeDeleted"]),
        ("meeting", "?limit=0", vec!["limit"]),
        ("meeting", "?limit=101", vec!["limit"]),
        (
            "bad-name",
            "?modifiedAfter=2026-13-01T00:00:00Z&includeDeleted=yes",
            vec!["entity", "modifiedAfter", "includeDeleted"],
        ),
    ] {
        let reply = scene
            .app
            .get("acme", &format!("{}{query}", scene.records_path(entity)))
            .await;
        assert_eq!(reply.status, 400, "{entity}{query}: {}", reply.text);
        assert_eq!(reply.json()["code"], "validation_failed");
        assert_eq!(fields_of(&reply), fields, "{entity}{query}");
    }

    // A forged cursor, and acme's real cursor presented by another tenant, are invalid_cursor
    let forged = scene
        .app
        .get("acme", &format!("{path}?cursor=forged"))
        .await;
    assert_eq!(forged.status, 400);
    assert_eq!(forged.json()["code"], "invalid_cursor");
    let first = scene.page("meeting", "?limit=1").await;
    let cursor = encode(first["nextCursor"].as_str().expect("a second page"));
    let globex = scene
        .app
        .create_integration(
            "globex",
            &json!({"provider": "stripe", "name": "Globex", "credentials": {"secretKey": SECRET_KEY}}),
        )
        .await;
    let replayed = scene
        .app
        .get(
            "globex",
            &format!(
                "/api/integrations/{}/records/meeting?limit=1&cursor={cursor}",
                globex["id"].as_str().expect("id")
            ),
        )
        .await;
    assert_eq!(replayed.status, 400, "{}", replayed.text);
    assert_eq!(replayed.json()["code"], "invalid_cursor");
    // while acme's own next page is b.
    assert_eq!(
        scene
            .ids("meeting", &format!("?limit=1&cursor={cursor}"))
            .await,
        ["b"]
    );
}

#[tokio::test]
async fn deleting_the_integration_deletes_its_records_and_no_other() {
    let scene = Scene::new().await;
    let other = Scene::connect(&scene.app, "other").await;
    // Given 30 records over two entities (more than one BatchWriteItem) and two of another integration
    for i in 0..30 {
        let entity = if i % 2 == 0 { "meeting" } else { "payment" };
        scene
            .upsert(entity, &format!("r-{i:02}"), json!({"i": i}))
            .await;
    }
    scene.soft_delete("meeting", "r-00").await.expect("deleted");
    for id in ["x", "y"] {
        scene
            .upsert_into(&other, "meeting", id, json!({"kept": true}))
            .await;
    }

    // When the integration is deleted
    let deleted = scene
        .app
        .delete("acme", &format!("/api/integrations/{}", scene.integration))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    // then its record partition is empty, the other integration's records are all there,
    let dynamo = aws_sdk_dynamodb::Client::new(&hub_tests::sdk_config());
    let count = |integration: IntegrationId| {
        let dynamo = dynamo.clone();
        let table = scene.app.stack.provisioned.table_name.clone();
        async move {
            dynamo
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(format!("TENANT#acme#REC#{integration}")),
                )
                .consistent_read(true)
                .send()
                .await
                .expect("query")
                .count
        }
    };
    assert_eq!(count(scene.integration.clone()).await, 0);
    assert_eq!(count(other.clone()).await, 2);
    assert_eq!(
        scene
            .app
            .get(
                "acme",
                &format!("/api/integrations/{other}/records/meeting")
            )
            .await
            .json()["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // and the deleted integration's records route is a 404.
    let gone = scene.app.get("acme", &scene.records_path("meeting")).await;
    assert_eq!(gone.status, 404);

    // The store's sweep says how many it removed.
    assert_eq!(
        scene
            .store
            .delete_integration_records(&scene.tenant, &other)
            .await
            .expect("sweep"),
        2
    );
    assert_eq!(count(other).await, 0);
}
