use chrono::{DateTime, Utc};
use serde_json::json;

use super::{builtin_entity, custom_entity};
use crate::catalog::EntityDef;
use crate::sync::{
    detects_deletions, incremental_query, is_expired_token_status, next_sync_token, run_mode,
    IncrementalState, RunMode,
};

fn updated_since(format: &str) -> EntityDef {
    custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "items", "id": "id",
        "incremental": {"type": "updated_since", "param": "updatedMin", "format": format}
    }))
}

fn watermark(at: &str) -> IncrementalState {
    IncrementalState {
        sync_token: None,
        last_success_started_at: Some(at.into()),
    }
}

fn token(token: &str) -> IncrementalState {
    IncrementalState {
        sync_token: Some(token.into()),
        last_success_started_at: Some("2024-03-05T10:00:00Z".into()),
    }
}

#[test]
fn google_calendar_runs_incrementally_only_with_a_saved_sync_token() {
    let google = builtin_entity("google_calendar", "event");
    assert_eq!(
        run_mode(&google, &IncrementalState::default(), false),
        RunMode::Full
    );
    assert_eq!(run_mode(&google, &token(""), false), RunMode::Full);
    assert_eq!(
        run_mode(&google, &watermark("2024-03-05T10:00:00Z"), false),
        RunMode::Full
    );
    assert_eq!(
        run_mode(&google, &token("CPDAlvWDx70CEPDAlvWDx70CGAU="), false),
        RunMode::Incremental
    );
    assert_eq!(
        run_mode(&google, &token("CPDAlvWDx70CEPDAlvWDx70CGAU="), true),
        RunMode::Full
    );
}

#[test]
fn an_incremental_google_run_sends_the_token_and_a_full_one_sends_nothing() {
    let google = builtin_entity("google_calendar", "event");
    let state = token("CPDAlvWDx70CEPDAlvWDx70CGAU=");
    assert_eq!(
        incremental_query(&google, &state, RunMode::Incremental),
        [(
            "syncToken".to_string(),
            "CPDAlvWDx70CEPDAlvWDx70CGAU=".to_string()
        )]
    );
    assert!(incremental_query(&google, &state, RunMode::Full).is_empty());
    assert!(
        incremental_query(&google, &IncrementalState::default(), RunMode::Incremental).is_empty()
    );
}

#[test]
fn the_next_sync_token_comes_from_the_last_page_only() {
    let google = builtin_entity("google_calendar", "event");
    let middle = json!({"items": [{"id": "1"}], "nextPageToken": "page2"});
    assert_eq!(next_sync_token(&google, &middle), None);
    let last = json!({"items": [], "nextSyncToken": "CPDAlvWDx70CEPDAlvWDx70CGAU="});
    assert_eq!(
        next_sync_token(&google, &last),
        Some("CPDAlvWDx70CEPDAlvWDx70CGAU=".into())
    );
    assert_eq!(
        next_sync_token(&google, &json!({"nextSyncToken": ""})),
        None
    );
    // An entity without sync tokens has none to read.
    let hubspot = builtin_entity("hubspot", "contact");
    assert_eq!(next_sync_token(&hubspot, &last), None);
}

#[test]
fn the_expired_status_of_the_entity_means_the_token_expired() {
    let google = builtin_entity("google_calendar", "event");
    assert!(is_expired_token_status(&google, 410));
    assert!(!is_expired_token_status(&google, 404));
    assert!(!is_expired_token_status(&google, 200));
    let without = custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "items", "id": "id",
        "incremental": {"type": "sync_token", "param": "since", "next": "token"}
    }));
    assert!(!is_expired_token_status(&without, 410));
    assert!(!is_expired_token_status(
        &builtin_entity("stripe", "charge"),
        410
    ));
}

#[test]
fn updated_since_sends_the_last_start_minus_a_minute_in_the_entity_format() {
    let state = watermark("2024-03-05T10:00:00.750+02:00");
    for (format, expected) in [
        ("rfc3339", "2024-03-05T07:59:00Z"),
        ("epoch_s", "1709625540"),
        ("epoch_ms", "1709625540750"),
    ] {
        let entity = updated_since(format);
        assert_eq!(run_mode(&entity, &state, false), RunMode::Incremental);
        assert_eq!(
            incremental_query(&entity, &state, RunMode::Incremental),
            [("updatedMin".to_string(), expected.to_string())],
            "{format}"
        );
    }
    let default_format = custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "items", "id": "id",
        "incremental": {"type": "updated_since", "param": "since"}
    }));
    assert_eq!(
        incremental_query(
            &default_format,
            &watermark("2024-01-01T00:00:30Z"),
            RunMode::Incremental
        ),
        [("since".to_string(), "2023-12-31T23:59:30Z".to_string())]
    );
}

#[test]
fn updated_since_without_a_readable_watermark_is_a_full_run() {
    let entity = updated_since("rfc3339");
    assert_eq!(
        run_mode(&entity, &IncrementalState::default(), false),
        RunMode::Full
    );
    assert_eq!(
        run_mode(&entity, &watermark("yesterday"), false),
        RunMode::Full
    );
    assert_eq!(
        run_mode(&entity, &watermark("2024-03-05"), false),
        RunMode::Full
    );
    assert_eq!(
        run_mode(&entity, &watermark("2024-03-05T10:00:00Z"), true),
        RunMode::Full
    );
    assert!(incremental_query(&entity, &watermark("yesterday"), RunMode::Incremental).is_empty());
}

#[test]
fn entities_without_incremental_reading_always_run_full_and_detect_deletions() {
    let none = custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "items", "id": "id",
        "incremental": {"type": "none"}
    }));
    for entity in [builtin_entity("hubspot", "contact"), none] {
        assert_eq!(run_mode(&entity, &token("t"), false), RunMode::Full);
        assert!(incremental_query(&entity, &token("t"), RunMode::Incremental).is_empty());
    }
    assert!(detects_deletions(RunMode::Full));
    assert!(!detects_deletions(RunMode::Incremental));
}

#[test]
fn a_successful_run_leaves_its_start_and_last_token_for_the_next() {
    let started: DateTime<Utc> = "2024-03-05T10:00:00.123456Z".parse().expect("instant");
    let state = IncrementalState::after_success(started, Some("tok".into()));
    assert_eq!(
        state,
        IncrementalState {
            sync_token: Some("tok".into()),
            last_success_started_at: Some("2024-03-05T10:00:00.123Z".into())
        }
    );
    assert_eq!(
        run_mode(&updated_since("epoch_s"), &state, false),
        RunMode::Incremental
    );
    let json = serde_json::to_value(&state).expect("serialises");
    assert_eq!(
        json,
        json!({"syncToken": "tok", "lastSuccessStartedAt": "2024-03-05T10:00:00.123Z"})
    );
    assert_eq!(
        serde_json::from_value::<IncrementalState>(json).expect("reads back"),
        state
    );
    assert_eq!(
        serde_json::from_value::<IncrementalState>(json!({})).expect("empty"),
        IncrementalState::default()
    );
}
