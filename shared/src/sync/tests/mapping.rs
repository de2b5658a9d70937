use serde_json::{json, Map, Value};

use super::{builtin_entity, settings};
use crate::catalog::DefaultMappings;
use crate::store::record_hash;
use crate::sync::{Mapped, MappingError, RecordMapper};
use crate::sync_settings::SyncSettings;

fn data(mapped: Result<Mapped, MappingError>) -> Map<String, Value> {
    match mapped {
        Ok(Mapped::Record(data)) => data,
        other => panic!("expected a record, got {other:?}"),
    }
}

fn google_event() -> Value {
    json!({
        "kind": "calendar#event",
        "id": "7cbh8rpc10lrc0ckih9tafss99",
        "status": "confirmed",
        "summary": "Weekly sync",
        "location": "Room 3",
        "start": {"dateTime": "2024-03-05T10:00:00+02:00", "timeZone": "Asia/Jerusalem"},
        "end": {"dateTime": "2024-03-05T10:30:00+02:00", "timeZone": "Asia/Jerusalem"},
        "attendees": [{"email": "dana@example.com", "responseStatus": "accepted"},
                      {"email": "omar@example.com", "responseStatus": "needsAction"}],
        "updated": "2024-03-01T08:00:00.000Z"
    })
}

fn google_defaults() -> DefaultMappings {
    builtin_entity("google_calendar", "event")
        .default_mappings
        .expect("google calendar events ship default mappings")
}

fn only_filters(filters: Value) -> SyncSettings {
    settings(json!({
        "entities": [{"localEntity": "meeting", "remoteEntity": "event"}],
        "filters": filters
    }))
}

/// Whether the record passes the filters (the mapper keeps records as received).
fn kept(filters: Value, record: &Value) -> bool {
    let mapper = RecordMapper::new(&only_filters(filters), "meeting", None).expect("valid filters");
    match mapper.map(record).expect("maps") {
        Mapped::Record(_) => true,
        Mapped::FilteredOut => false,
    }
}

#[test]
fn catalog_defaults_map_a_google_event_when_the_settings_have_none() {
    let defaults = google_defaults();
    let mapper =
        RecordMapper::new(&SyncSettings::default(), "meeting", Some(&defaults)).expect("mapper");
    let mapped = data(mapper.map(&google_event()));
    assert_eq!(
        Value::Object(mapped),
        json!({
            "title": "Weekly sync",
            "description": null,
            "startTime": "2024-03-05T08:00:00Z",
            "endTime": "2024-03-05T08:30:00Z",
            "location": "Room 3",
            "attendees": [{"email": "dana@example.com", "responseStatus": "accepted"},
                          {"email": "omar@example.com", "responseStatus": "needsAction"}]
        })
    );
}

#[test]
fn data_holds_exactly_the_mapped_local_fields_in_mapping_order() {
    let settings = settings(json!({
        "entities": [{"localEntity": "meeting", "remoteEntity": "event"}],
        "fieldMappings": [
            {"localEntity": "meeting", "localField": "title", "remoteField": "summary"},
            {"localEntity": "meeting", "localField": "firstAttendee", "remoteField": "attendees.0.email"},
            {"localEntity": "meeting", "localField": "room", "remoteField": "conference.room"}
        ]
    }));
    let mapper = RecordMapper::new(&settings, "meeting", Some(&google_defaults())).expect("mapper");
    let mapped = data(mapper.map(&google_event()));
    assert_eq!(
        mapped.keys().collect::<Vec<_>>(),
        ["title", "firstAttendee", "room"]
    );
    assert_eq!(
        Value::Object(mapped),
        json!({"title": "Weekly sync", "firstAttendee": "dana@example.com", "room": null})
    );
}

#[test]
fn the_settings_mappings_of_another_local_entity_do_not_replace_the_defaults() {
    let settings = settings(json!({
        "entities": [{"localEntity": "meeting", "remoteEntity": "event"},
                     {"localEntity": "task", "remoteEntity": "event"}],
        "fieldMappings": [{"localEntity": "task", "localField": "name", "remoteField": "summary"}]
    }));
    let defaults = google_defaults();
    let meeting = RecordMapper::new(&settings, "meeting", Some(&defaults)).expect("mapper");
    assert!(data(meeting.map(&google_event())).contains_key("startTime"));
    let task = RecordMapper::new(&settings, "task", Some(&defaults)).expect("mapper");
    assert_eq!(
        Value::Object(data(task.map(&google_event()))),
        json!({"name": "Weekly sync"})
    );
}

#[test]
fn catalog_defaults_apply_whatever_local_entity_name_the_integration_uses() {
    let mapper = RecordMapper::new(
        &SyncSettings::default(),
        "appointment",
        Some(&google_defaults()),
    )
    .expect("mapper");
    assert!(!mapper.keeps_records_as_received());
    assert_eq!(
        data(mapper.map(&google_event())).get("title"),
        Some(&json!("Weekly sync"))
    );
}

#[test]
fn an_entity_without_any_mappings_keeps_the_record_as_received() {
    let mapper = RecordMapper::new(&SyncSettings::default(), "meeting", None).expect("mapper");
    assert!(mapper.keeps_records_as_received());
    let event = google_event();
    assert_eq!(Value::Object(data(mapper.map(&event))), event);
    let error = mapper.map(&json!("just text")).expect_err("not an object");
    assert_eq!(
        error,
        MappingError {
            field: String::new(),
            message: "the record is a string; without field mappings a record must be an object"
                .into()
        }
    );
}

#[test]
fn a_default_value_fills_an_absent_or_null_remote_value_as_written() {
    let settings = settings(json!({
        "entities": [{"localEntity": "meeting", "remoteEntity": "event"}],
        "fieldMappings": [
            {"localEntity": "meeting", "localField": "room", "remoteField": "location", "defaultValue": "TBD"},
            // The default is a local value: it is not run through the transform.
            {"localEntity": "meeting", "localField": "startTime", "remoteField": "start.dateTime",
             "transform": "date_format", "transformConfig": {"format": "date"}, "defaultValue": "unscheduled"},
            {"localEntity": "meeting", "localField": "tags", "remoteField": "tags", "defaultValue": []}
        ]
    }));
    let mapper = RecordMapper::new(&settings, "meeting", None).expect("mapper");
    let absent = json!({"id": "1"});
    let null = json!({"id": "2", "location": null, "start": {"dateTime": null}, "tags": null});
    for record in [absent, null] {
        assert_eq!(
            Value::Object(data(mapper.map(&record))),
            json!({"room": "TBD", "startTime": "unscheduled", "tags": []}),
            "{record}"
        );
    }
    let present =
        json!({"location": "", "start": {"dateTime": "2024-03-05T23:30:00-05:00"}, "tags": ["x"]});
    assert_eq!(
        Value::Object(data(mapper.map(&present))),
        json!({"room": "", "startTime": "2024-03-06", "tags": ["x"]})
    );
}

#[test]
fn a_value_a_transform_cannot_convert_fails_the_record_naming_the_local_field() {
    let mapper = RecordMapper::new(
        &SyncSettings::default(),
        "meeting",
        Some(&google_defaults()),
    )
    .expect("mapper");
    let mut event = google_event();
    event["start"]["dateTime"] = json!("next tuesday");
    let error = mapper.map(&event).expect_err("not a date");
    assert_eq!(error.field, "startTime");
    assert_eq!(
        error.message,
        "`start.dateTime`: \"next tuesday\" is not a date (RFC 3339, ISO 8601 or epoch seconds/milliseconds)"
    );
    assert_eq!(error.to_string(), format!("startTime: {}", error.message));
}

#[test]
fn stripe_charge_defaults_convert_cents_and_fail_on_a_non_numeric_amount() {
    let defaults = builtin_entity("stripe", "charge")
        .default_mappings
        .expect("stripe charges ship default mappings");
    let mapper =
        RecordMapper::new(&SyncSettings::default(), "payment", Some(&defaults)).expect("mapper");
    let charge = json!({"id": "ch_3MmlLrLkdIwHu7ix0snN0B15", "object": "charge", "amount": 1099,
                        "currency": "usd", "status": "succeeded", "description": null,
                        "created": 1679090539});
    assert_eq!(
        Value::Object(data(mapper.map(&charge))),
        json!({"amount": 10.99, "currency": "usd", "status": "succeeded", "description": null,
               "createdAt": "2023-03-17T22:02:19Z"})
    );
    let broken = json!({"id": "ch_1", "amount": "ten dollars", "currency": "usd"});
    let error = mapper.map(&broken).expect_err("not an amount");
    assert_eq!(error.field, "amount");
    assert!(error.message.contains("is not an amount"), "{error}");
}

#[test]
fn a_later_mapping_of_the_same_local_field_wins() {
    let settings = settings(json!({
        "entities": [{"localEntity": "contact", "remoteEntity": "contact"}],
        "fieldMappings": [
            {"localEntity": "contact", "localField": "email", "remoteField": "properties.email"},
            {"localEntity": "contact", "localField": "email", "remoteField": "properties.work_email"}
        ]
    }));
    let mapper = RecordMapper::new(&settings, "contact", None).expect("mapper");
    let record = json!({"properties": {"email": "a@x.io", "work_email": "b@x.io"}});
    assert_eq!(
        Value::Object(data(mapper.map(&record))),
        json!({"email": "b@x.io"})
    );
}

#[test]
fn hebrew_arabic_and_emoji_values_pass_byte_exactly() {
    let settings = settings(json!({
        "entities": [{"localEntity": "contact", "remoteEntity": "contact"}],
        "fieldMappings": [
            {"localEntity": "contact", "localField": "firstName", "remoteField": "properties.firstname"},
            {"localEntity": "contact", "localField": "company", "remoteField": "properties.company"},
            {"localEntity": "contact", "localField": "note", "remoteField": "properties.note"},
            {"localEntity": "contact", "localField": "שם", "remoteField": "properties.שם_מלא"}
        ]
    }));
    let mapper = RecordMapper::new(&settings, "contact", None).expect("mapper");
    let hebrew = "דנה כהן\u{200f}";
    let arabic = "شركة النور";
    let emoji = "🚀 launch 👩🏽‍💻 ✅";
    let record = json!({"properties": {"firstname": hebrew, "company": arabic, "note": emoji,
                                       "שם_מלא": "עומר חדאד"}});
    let mapped = data(mapper.map(&record));
    assert_eq!(
        mapped["firstName"].as_str().map(str::as_bytes),
        Some(hebrew.as_bytes())
    );
    assert_eq!(
        mapped["company"].as_str().map(str::as_bytes),
        Some(arabic.as_bytes())
    );
    assert_eq!(
        mapped["note"].as_str().map(str::as_bytes),
        Some(emoji.as_bytes())
    );
    assert_eq!(mapped["שם"], json!("עומר חדאד"));
    let text = serde_json::to_string(&mapped).expect("json");
    for value in [hebrew, arabic, emoji] {
        assert!(text.contains(value), "{text}");
    }
}

#[test]
fn the_same_remote_data_maps_to_the_same_hash_whatever_its_key_order() {
    let mapper = RecordMapper::new(
        &SyncSettings::default(),
        "meeting",
        Some(&google_defaults()),
    )
    .expect("mapper");
    let reordered: Value = serde_json::from_str(
        r#"{"updated": "2024-03-01T08:00:00.000Z",
            "attendees": [{"responseStatus": "accepted", "email": "dana@example.com"},
                          {"responseStatus": "needsAction", "email": "omar@example.com"}],
            "end": {"timeZone": "Asia/Jerusalem", "dateTime": "2024-03-05T10:30:00+02:00"},
            "start": {"timeZone": "Asia/Jerusalem", "dateTime": "2024-03-05T08:00:00Z"},
            "location": "Room 3", "summary": "Weekly sync", "status": "confirmed",
            "id": "7cbh8rpc10lrc0ckih9tafss99", "kind": "calendar#event"}"#,
    )
    .expect("json");
    let first = data(mapper.map(&google_event()));
    let second = data(mapper.map(&reordered));
    assert_eq!(record_hash(&first), record_hash(&second));
    let mut changed = google_event();
    changed["summary"] = json!("Weekly sync (moved)");
    assert_ne!(
        record_hash(&first),
        record_hash(&data(mapper.map(&changed)))
    );
}

#[test]
fn equals_and_not_equals_compare_json_values_at_nested_paths() {
    let event = google_event();
    assert!(kept(
        json!([{"field": "status", "operator": "equals", "value": "confirmed"}]),
        &event
    ));
    assert!(!kept(
        json!([{"field": "status", "operator": "equals", "value": "Confirmed"}]),
        &event
    ));
    assert!(kept(
        json!([{"field": "start.timeZone", "operator": "equals", "value": "Asia/Jerusalem"}]),
        &event
    ));
    assert!(kept(
        json!([{"field": "attendees.1.responseStatus", "operator": "equals", "value": "needsAction"}]),
        &event
    ));
    assert!(!kept(
        json!([{"field": "status", "operator": "not_equals", "value": "confirmed"}]),
        &event
    ));
    assert!(kept(
        json!([{"field": "status", "operator": "not_equals", "value": "cancelled"}]),
        &event
    ));
    // Numbers compare by value.
    let record = json!({"amount": 2, "flags": {"paid": true}});
    assert!(kept(
        json!([{"field": "amount", "operator": "equals", "value": 2.0}]),
        &record
    ));
    assert!(!kept(
        json!([{"field": "amount", "operator": "equals", "value": "2"}]),
        &record
    ));
    assert!(kept(
        json!([{"field": "flags.paid", "operator": "equals", "value": true}]),
        &record
    ));
}

#[test]
fn contains_finds_substrings_and_array_elements() {
    let event = google_event();
    assert!(kept(
        json!([{"field": "summary", "operator": "contains", "value": "sync"}]),
        &event
    ));
    assert!(!kept(
        json!([{"field": "summary", "operator": "contains", "value": "Sync"}]),
        &event
    ));
    assert!(kept(
        json!([{"field": "attendees.0.email", "operator": "contains", "value": "@example.com"}]),
        &event
    ));
    let tagged = json!({"tags": ["vip", 7, {"k": 1}], "title": "ישיבת צוות 🚀"});
    assert!(kept(
        json!([{"field": "tags", "operator": "contains", "value": "vip"}]),
        &tagged
    ));
    assert!(kept(
        json!([{"field": "tags", "operator": "contains", "value": 7.0}]),
        &tagged
    ));
    assert!(kept(
        json!([{"field": "tags", "operator": "contains", "value": {"k": 1}}]),
        &tagged
    ));
    assert!(!kept(
        json!([{"field": "tags", "operator": "contains", "value": "vi"}]),
        &tagged
    ));
    assert!(kept(
        json!([{"field": "title", "operator": "contains", "value": "צוות 🚀"}]),
        &tagged
    ));
    // Neither a string nor an array holds anything.
    assert!(!kept(
        json!([{"field": "tags.2", "operator": "contains", "value": "k"}]),
        &tagged
    ));
}

#[test]
fn in_list_keeps_records_whose_value_is_listed() {
    let filters =
        json!([{"field": "status", "operator": "in_list", "value": ["confirmed", "tentative"]}]);
    assert!(kept(filters.clone(), &json!({"status": "tentative"})));
    assert!(!kept(filters.clone(), &json!({"status": "cancelled"})));
    assert!(!kept(filters, &json!({"other": 1})));
    let numbers = json!([{"field": "attendees.0.n", "operator": "in_list", "value": [1, 2]}]);
    assert!(kept(numbers, &json!({"attendees": [{"n": 2.0}]})));
}

#[test]
fn an_absent_path_reads_as_null_in_filters() {
    let record = json!({"summary": "x"});
    assert!(!kept(
        json!([{"field": "status", "operator": "equals", "value": "confirmed"}]),
        &record
    ));
    assert!(kept(
        json!([{"field": "status", "operator": "not_equals", "value": "cancelled"}]),
        &record
    ));
    assert!(!kept(
        json!([{"field": "status", "operator": "contains", "value": ""}]),
        &record
    ));
    assert!(kept(
        json!([{"field": "status", "operator": "equals", "value": null}]),
        &record
    ));
    assert!(kept(
        json!([{"field": "status", "operator": "in_list", "value": [null]}]),
        &record
    ));
    assert!(kept(
        json!([{"field": "status", "operator": "equals", "value": null}]),
        &json!({"status": null})
    ));
    // An index past the end of an array is absent too.
    assert!(!kept(
        json!([{"field": "attendees.5.email", "operator": "contains", "value": "@"}]),
        &google_event()
    ));
}

#[test]
fn every_filter_must_hold_and_filters_apply_before_mapping() {
    let settings = settings(json!({
        "entities": [{"localEntity": "meeting", "remoteEntity": "event"}],
        "fieldMappings": [{"localEntity": "meeting", "localField": "startTime", "remoteField": "start.dateTime",
                           "transform": "date_format"}],
        "filters": [{"field": "status", "operator": "not_equals", "value": "cancelled"},
                    {"field": "summary", "operator": "contains", "value": "sync"}]
    }));
    let mapper = RecordMapper::new(&settings, "meeting", None).expect("mapper");
    assert!(matches!(mapper.map(&google_event()), Ok(Mapped::Record(_))));
    let mut cancelled = google_event();
    cancelled["status"] = json!("cancelled");
    // Filtered out before its (unconvertible) date is read: skipped, not failed.
    cancelled["start"]["dateTime"] = json!("not a date");
    assert_eq!(mapper.map(&cancelled), Ok(Mapped::FilteredOut));
    let mut other = google_event();
    other["summary"] = json!("Lunch");
    assert_eq!(mapper.map(&other), Ok(Mapped::FilteredOut));
}

#[test]
fn filters_apply_to_every_local_entity_of_the_integration() {
    let settings = settings(json!({
        "entities": [{"localEntity": "meeting", "remoteEntity": "event"},
                     {"localEntity": "contact", "remoteEntity": "contact"}],
        "filters": [{"field": "archived", "operator": "not_equals", "value": true}]
    }));
    for entity in ["meeting", "contact"] {
        let mapper = RecordMapper::new(&settings, entity, None).expect("mapper");
        assert_eq!(
            mapper.map(&json!({"archived": true})),
            Ok(Mapped::FilteredOut)
        );
    }
}

#[test]
fn unparseable_settings_are_an_error_from_new_not_a_panic() {
    let mut settings =
        only_filters(json!([{"field": "status", "operator": "in_list", "value": "x"}]));
    let error = RecordMapper::new(&settings, "meeting", None).expect_err("in_list without array");
    assert_eq!(error.field, "filters[0]");
    assert_eq!(error.message, "in_list needs an array value, not a string");
    settings.filters.clear();
    settings.field_mappings = super::settings(json!({"fieldMappings": [
        {"localEntity": "meeting", "localField": "startTime", "remoteField": "start",
         "transform": "date_format", "transformConfig": {"format": "yesterday"}}
    ]}))
    .field_mappings;
    let error = RecordMapper::new(&settings, "meeting", None).expect_err("bad format");
    assert_eq!(error.field, "startTime");
    assert!(
        error
            .message
            .starts_with("fieldMappings[0].transformConfig.format "),
        "{}",
        error.message
    );
    // The same mappings of another entity are not parsed for this one.
    assert!(RecordMapper::new(&settings, "contact", None).is_ok());
}
