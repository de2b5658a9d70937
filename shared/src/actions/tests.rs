use serde_json::{json, Map, Value};

use super::*;
use crate::catalog::Catalog;

fn action(slug: &str, name: &str) -> ActionDef {
    Catalog::builtin()
        .get(slug)
        .and_then(|p| p.actions.get(name))
        .cloned()
        .expect("declared")
}

fn fields(result: Result<(), Vec<FieldError>>) -> Vec<(String, String)> {
    result
        .expect_err("invalid")
        .into_iter()
        .map(|e| (e.field, e.message))
        .collect()
}

#[test]
fn every_builtin_input_schema_compiles() {
    check_catalog_schemas(&Catalog::builtin()).expect("valid schemas");
}

#[test]
fn input_errors_name_the_field() {
    let sms = action("twilio", "send_sms");
    let schema = InputSchema::compile(&sms.input).expect("compiles");
    schema
        .check(&json!({"to": "+15005550006", "body": "hi"}))
        .expect("valid");
    assert_eq!(
        fields(schema.check(&json!({"to": "+1"}))),
        [("body".to_owned(), "is required".to_owned())]
    );
    assert_eq!(
        fields(schema.check(&json!({"to": "+1", "body": "b", "cc": "x"}))),
        [("cc".to_owned(), "is not an input of this action".to_owned())]
    );
    let long = fields(schema.check(&json!({"to": "+1", "body": "x".repeat(1601)})));
    assert_eq!(long[0].0, "body");
    let typed = fields(schema.check(&json!({"to": 5, "body": "b"})));
    assert_eq!(typed[0].0, "to");
    assert_eq!(fields(schema.check(&json!([1])))[0].0, "input");

    let event = action("google_calendar", "create_event");
    let schema = InputSchema::compile(&event.input).expect("compiles");
    let nested = fields(
        schema.check(&json!({"summary": "s", "start": "2026-12-01T10:00:00Z",
        "end": "2026-12-01T11:00:00Z", "attendees": ["a@example.com", 7]})),
    );
    assert_eq!(nested[0].0, "attendees[1]");
    let when = fields(
        schema.check(&json!({"summary": "s", "start": "tomorrow at 10",
        "end": "2026-12-01T11:00:00Z"})),
    );
    assert_eq!(when[0].0, "start");
}

#[test]
fn sendgrid_needs_text_or_html() {
    let mail = action("sendgrid", "send_email");
    let schema = InputSchema::compile(&mail.input).expect("compiles");
    assert!(schema
        .check(&json!({"to": "a@b.c", "subject": "s"}))
        .is_err());
    schema
        .check(&json!({"to": "a@b.c", "subject": "s", "html": "<p>x</p>"}))
        .expect("html alone");
}

#[test]
fn a_schema_that_is_not_json_schema_is_refused() {
    let error = InputSchema::compile(&json!({"type": "object", "required": "to"}))
        .err()
        .expect("invalid");
    assert!(error.starts_with("not a valid JSON Schema"), "{error}");
}

#[test]
fn output_fields_come_from_the_body_or_the_status() {
    let otp = action("kavenegar", "send_otp");
    let body = json!({"return": {"status": 200, "message": "تایید شد"},
                      "entries": [{"messageid": 8792343, "status": 5, "receptor": "09121234567"}]});
    assert!(succeeded(&otp, &body));
    assert_eq!(
        output(&otp, 200, &body),
        json!({"id": 8792343, "status": 5})
    );
    assert!(!succeeded(
        &otp,
        &json!({"return": {"status": 418, "message": "اعتبار کافی نیست"}})
    ));

    let mail = action("sendgrid", "send_email");
    assert_eq!(output(&mail, 202, &Value::Null), json!({"status": 202}));
    let slack = action("slack", "post_message");
    assert!(!succeeded(
        &slack,
        &json!({"ok": false, "error": "channel_not_found"})
    ));
    assert!(succeeded(
        &slack,
        &json!({"ok": true, "ts": "1.2", "channel": "C1"})
    ));
}

#[test]
fn secret_inputs_are_redacted_for_logs() {
    let otp = action("kavenegar", "send_otp");
    let input: Map<String, Value> = serde_json::from_value(
        json!({"receptor": "09121234567", "template": "verify", "token": "5831"}),
    )
    .expect("object");
    assert_eq!(
        loggable_input(&otp, &input),
        json!({"receptor": "09121234567", "template": "verify", "token": REDACTED})
    );
}

#[test]
fn a_providers_file_action_whose_schema_does_not_compile_is_named() {
    let path = std::env::temp_dir().join(format!("hub-actions-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "acme_sms:\n  name: Acme SMS\n  category: communication\n  auth: {mode: api_key, fields: [{name: key, secret: true}], apply: {header: X-Key, format: \"{key}\"}}\n  api: {baseUrl: https://sms.example}\n  actions:\n    send:\n      description: Send\n      input: {type: object, properties: {to: {type: string, minLength: -1}}}\n      request: {method: POST, path: /send, json: {to: \"{input.to}\"}}\n",
    )
    .expect("write");
    let catalog = Catalog::load(Some(&path)).expect("loads: the structure is valid");
    std::fs::remove_file(&path).ok();
    let error = check_catalog_schemas(&catalog).expect_err("minLength -1");
    assert!(
        error.starts_with("provider \"acme_sms\": actions.send.input: not a valid JSON Schema"),
        "{error}"
    );
}
