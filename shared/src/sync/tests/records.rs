use serde_json::{json, Value};

use super::{builtin_entity, custom_entity};
use crate::sync::{page_records, PageError, RecordError, RemoteRecord};

fn records<'a>(
    provider: &str,
    entity: &str,
    body: &'a Value,
) -> Vec<Result<RemoteRecord<'a>, RecordError>> {
    page_records(&builtin_entity(provider, entity), body).expect("a page of records")
}

fn ids(records: &[Result<RemoteRecord<'_>, RecordError>]) -> Vec<Result<String, usize>> {
    records
        .iter()
        .map(|record| match record {
            Ok(record) => Ok(record.id.clone()),
            Err(error) => Err(error.index),
        })
        .collect()
}

#[test]
fn a_google_calendar_page_gives_ids_update_times_and_cancelled_events_as_deletions() {
    let body = json!({
        "kind": "calendar#events",
        "nextPageToken": "CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA",
        "items": [
            {"id": "evt_1", "status": "confirmed", "summary": "Standup", "updated": "2024-03-01T08:00:00.000Z"},
            {"id": "evt_2", "status": "cancelled", "updated": "2024-03-02T08:00:00.000Z"},
            {"id": "evt_3", "status": "tentative"}
        ]
    });
    let page = records("google_calendar", "event", &body);
    let page: Vec<&RemoteRecord<'_>> = page.iter().map(|r| r.as_ref().expect("an id")).collect();
    assert_eq!(
        page.iter()
            .map(|r| (r.id.as_str(), r.deleted))
            .collect::<Vec<_>>(),
        [("evt_1", false), ("evt_2", true), ("evt_3", false)]
    );
    assert_eq!(page[0].updated_at, Some(&json!("2024-03-01T08:00:00.000Z")));
    assert_eq!(page[2].updated_at, None);
    assert_eq!(page[0].body, &body["items"][0]);
}

#[test]
fn a_body_that_is_the_array_itself_is_read_when_records_is_empty() {
    // SendGrid bounces: `records: ""`, id at `email`.
    let body = json!([
        {"created": 1443651125, "email": "dana@example.com", "reason": "550 5.1.1 unknown"},
        {"created": 1443651141, "email": "omar@example.com", "reason": "552 mailbox full"}
    ]);
    let page = records("sendgrid", "bounce", &body);
    assert_eq!(
        ids(&page),
        [Ok("dana@example.com".into()), Ok("omar@example.com".into())]
    );
    let error = page_records(
        &builtin_entity("sendgrid", "bounce"),
        &json!({"errors": []}),
    )
    .expect_err("not an array");
    assert_eq!(
        error.message,
        "the body is an object, not an array of records"
    );
}

#[test]
fn archived_and_deleted_flags_mark_deletions_per_the_catalog() {
    let hubspot = json!({"results": [
        {"id": "51", "properties": {"email": "a@x.io"}, "updatedAt": "2024-01-01T00:00:00Z", "archived": false},
        {"id": "52", "properties": {"email": "b@x.io"}, "updatedAt": "2024-01-02T00:00:00Z", "archived": true}
    ]});
    let page = records("hubspot", "contact", &hubspot);
    let deleted: Vec<bool> = page
        .iter()
        .map(|r| r.as_ref().map(|r| r.deleted).unwrap_or_default())
        .collect();
    assert_eq!(deleted, [false, true]);
    let stripe = json!({"object": "list", "has_more": false, "data": [
        {"id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": "a@x.io"},
        {"id": "cus_9s6XKzkNRiz8i3", "object": "customer", "deleted": true}
    ]});
    let page = records("stripe", "customer", &stripe);
    let deleted: Vec<bool> = page
        .iter()
        .map(|r| r.as_ref().map(|r| r.deleted).unwrap_or_default())
        .collect();
    assert_eq!(deleted, [false, true]);
}

#[test]
fn a_deletion_marker_compares_numbers_by_value() {
    let entity = custom_entity(json!({
        "request": {"method": "GET", "path": "/items"},
        "records": "data.items", "id": "key", "deleted": {"path": "state.code", "equals": 9}
    }));
    let body = json!({"data": {"items": [
        {"key": "a", "state": {"code": 9.0}}, {"key": "b", "state": {"code": "9"}}, {"key": "c"}
    ]}});
    let page = page_records(&entity, &body).expect("page");
    let deleted: Vec<bool> = page
        .iter()
        .map(|r| r.as_ref().map(|r| r.deleted).unwrap_or_default())
        .collect();
    assert_eq!(deleted, [true, false, false]);
}

#[test]
fn numeric_ids_become_their_decimal_text() {
    let entity = custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "items", "id": "meta.id"
    }));
    let body = json!({"items": [{"meta": {"id": 42}}, {"meta": {"id": -7}}, {"meta": {"id": 1.5}},
                                {"meta": {"id": 18446744073709551615_u64}}]});
    let page = page_records(&entity, &body).expect("page");
    assert_eq!(
        ids(&page),
        [
            Ok("42".into()),
            Ok("-7".into()),
            Ok("1.5".into()),
            Ok("18446744073709551615".into())
        ]
    );
}

#[test]
fn a_record_without_a_readable_id_is_an_error_item_in_its_place() {
    let long = "א".repeat(257);
    let body = json!({"items": [
        {"id": "ok_1"},
        {"summary": "no id"},
        {"id": null},
        {"id": ""},
        {"id": {"nested": 1}},
        {"id": true},
        {"id": long},
        "not an object",
        {"id": "ok_2"}
    ]});
    let page = records("google_calendar", "event", &body);
    assert_eq!(
        ids(&page),
        [
            Ok("ok_1".into()),
            Err(1),
            Err(2),
            Err(3),
            Err(4),
            Err(5),
            Err(6),
            Err(7),
            Ok("ok_2".into())
        ]
    );
    let messages: Vec<String> = page
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    assert_eq!(
        messages,
        [
            "record 1 of the page: no id at `id`",
            "record 2 of the page: no id at `id`",
            "record 3 of the page: the id at `id`: a remote id is 1 to 512 bytes of UTF-8",
            "record 4 of the page: the id at `id` is an object; an id is a string or a number",
            "record 5 of the page: the id at `id` is a boolean; an id is a string or a number",
            "record 6 of the page: the id at `id`: a remote id is 1 to 512 bytes of UTF-8",
            "record 7 of the page: no id at `id`",
        ]
    );
}

#[test]
fn a_body_without_the_records_array_fails_the_page_rather_than_reading_as_empty() {
    let slack = builtin_entity("slack", "conversation");
    // Slack answers 200 with ok: false; an empty page would end a full run and delete everything.
    let error =
        page_records(&slack, &json!({"ok": false, "error": "ratelimited"})).expect_err("no array");
    assert_eq!(
        error,
        PageError {
            message: "the body has no value at records path `channels`".into()
        }
    );
    let error = page_records(&slack, &json!({"ok": true, "channels": null})).expect_err("null");
    assert_eq!(
        error.message,
        "the value at records path `channels` is null, not an array of records"
    );
    let error = page_records(&slack, &json!("channels")).expect_err("text");
    assert_eq!(
        error.message,
        "the body has no value at records path `channels`"
    );
    assert!(page_records(&slack, &json!({"ok": true, "channels": []}))
        .expect("an empty page")
        .is_empty());
}

#[test]
fn a_null_update_time_is_no_update_time() {
    let body = json!({"items": [{"id": "1", "updated": null}]});
    let page = records("google_calendar", "event", &body);
    assert_eq!(page[0].as_ref().map(|r| r.updated_at), Ok(None));
}
