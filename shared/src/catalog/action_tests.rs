//! Every built-in action renders the request its provider documents (method, URL, encoding,
//! body), with optional input left out and defaults from the settings.

use serde_json::{json, Map, Value};

use super::{Catalog, PreparedAction, Values};

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("an object, got {other}"),
    }
}

fn prepared(
    slug: &str,
    action: &str,
    config: Value,
    credentials: Value,
    input: Value,
) -> PreparedAction {
    let catalog = Catalog::builtin();
    let provider = catalog.get(slug).expect("built in");
    let action = provider.actions.get(action).expect("declared");
    let (config, credentials, input) = (obj(config), obj(credentials), obj(input));
    provider
        .prepare_action(
            action,
            &Values::new(&config, &credentials).with_input(&input),
        )
        .expect("renders")
}

fn header<'a>(action: &'a PreparedAction, name: &str) -> Option<&'a str> {
    action
        .request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn json_body(action: &PreparedAction) -> Value {
    let (content_type, body) = action.body.as_ref().expect("a body");
    assert_eq!(*content_type, "application/json");
    serde_json::from_slice(body).expect("JSON")
}

fn form_body(action: &PreparedAction) -> Vec<(String, String)> {
    let (content_type, body) = action.body.as_ref().expect("a body");
    assert_eq!(*content_type, "application/x-www-form-urlencoded");
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn twilio_send_sms_is_a_form_post_with_basic_auth_and_the_default_sender() {
    let sms = prepared(
        "twilio",
        "send_sms",
        json!({"fromNumber": "+15005550006"}),
        json!({"accountSid": "AC0123456789abcdef0123456789abcdef", "authToken": "tok"}),
        json!({"to": "+972501234567", "body": "תזכורת: מחר ב-10:00 ✅"}),
    );
    assert_eq!(sms.request.method, http::Method::POST);
    assert_eq!(
        sms.request.url.as_str(),
        "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
    );
    assert!(header(&sms, "authorization").is_some_and(|v| v.starts_with("Basic ")));
    assert_eq!(
        form_body(&sms),
        pairs(&[
            ("To", "+972501234567"),
            ("From", "+15005550006"),
            ("Body", "תזכורת: מחר ב-10:00 ✅")
        ])
    );

    let own_sender = prepared(
        "twilio",
        "send_sms",
        json!({"fromNumber": "+15005550006"}),
        json!({"accountSid": "AC1", "authToken": "tok"}),
        json!({"to": "+1", "body": "b", "from": "Clinic"}),
    );
    assert!(form_body(&own_sender).contains(&("From".into(), "Clinic".into())));
}

#[test]
fn sendgrid_send_email_builds_mail_send_json_with_only_the_content_given() {
    let mail = prepared(
        "sendgrid",
        "send_email",
        json!({"fromEmail": "clinic@example.com", "fromName": "Clinic"}),
        json!({"apiKey": "SG.key"}),
        json!({"to": "patient@example.com", "subject": "Your visit", "text": "See you"}),
    );
    assert_eq!(
        mail.request.url.as_str(),
        "https://api.sendgrid.com/v3/mail/send"
    );
    assert_eq!(header(&mail, "authorization"), Some("Bearer SG.key"));
    assert_eq!(
        json_body(&mail),
        json!({"personalizations": [{"to": [{"email": "patient@example.com"}]}],
               "from": {"email": "clinic@example.com", "name": "Clinic"},
               "subject": "Your visit",
               "content": [{"type": "text/plain", "value": "See you"}]})
    );
    let no_name = prepared(
        "sendgrid",
        "send_email",
        json!({"fromEmail": "clinic@example.com"}),
        json!({"apiKey": "SG.key"}),
        json!({"to": "p@example.com", "subject": "S", "html": "<p>Hi</p>", "text": "Hi"}),
    );
    let body = json_body(&no_name);
    assert_eq!(body["from"], json!({"email": "clinic@example.com"}));
    assert_eq!(
        body["content"],
        json!([{"type": "text/plain", "value": "Hi"}, {"type": "text/html", "value": "<p>Hi</p>"}])
    );
}

#[test]
fn whatsapp_sends_text_and_templates_to_the_phone_number_id() {
    let config = json!({"phoneNumberId": "106540352242922"});
    let credentials = json!({"accessToken": "EAAG"});
    let text = prepared(
        "whatsapp_business",
        "send_text",
        config.clone(),
        credentials.clone(),
        json!({"to": "972501234567", "body": "שלום"}),
    );
    assert_eq!(
        text.request.url.as_str(),
        "https://graph.facebook.com/v23.0/106540352242922/messages"
    );
    assert_eq!(header(&text, "authorization"), Some("Bearer EAAG"));
    assert_eq!(
        json_body(&text),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "972501234567",
               "type": "text", "text": {"body": "שלום"}})
    );
    let components = json!([{"type": "body", "parameters": [{"type": "text", "text": "Dana"}]}]);
    let template = prepared(
        "whatsapp_business",
        "send_template",
        config.clone(),
        credentials.clone(),
        json!({"to": "972501234567", "template": "reminder", "language": "he",
                                   "components": components}),
    );
    assert_eq!(
        json_body(&template)["template"],
        json!({"name": "reminder", "language": {"code": "he"}, "components": components})
    );
    let bare = prepared(
        "whatsapp_business",
        "send_template",
        config,
        credentials,
        json!({"to": "1", "template": "hello_world", "language": "en_US"}),
    );
    assert_eq!(
        json_body(&bare)["template"],
        json!({"name": "hello_world", "language": {"code": "en_US"}})
    );
}

#[test]
fn slack_openai_and_hubspot_post_json_with_a_bearer_token() {
    let slack = prepared(
        "slack",
        "post_message",
        json!({}),
        json!({"accessToken": "xoxb-1"}),
        json!({"channel": "C0123", "text": "Deploy done"}),
    );
    assert_eq!(
        slack.request.url.as_str(),
        "https://slack.com/api/chat.postMessage"
    );
    assert_eq!(header(&slack, "authorization"), Some("Bearer xoxb-1"));
    assert_eq!(
        json_body(&slack),
        json!({"channel": "C0123", "text": "Deploy done"})
    );

    let openai = prepared(
        "openai",
        "generate",
        json!({}),
        json!({"apiKey": "sk-1"}),
        json!({"prompt": "Write a haiku", "maxTokens": 50, "temperature": 0.2}),
    );
    assert_eq!(
        openai.request.url.as_str(),
        "https://api.openai.com/v1/chat/completions"
    );
    assert_eq!(
        json_body(&openai),
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Write a haiku"}],
               "max_tokens": 50, "temperature": 0.2})
    );
    let chosen = prepared(
        "openai",
        "generate",
        json!({"model": "gpt-4.1"}),
        json!({"apiKey": "sk-1"}),
        json!({"prompt": "p", "model": "o4-mini"}),
    );
    assert_eq!(
        json_body(&chosen),
        json!({"model": "o4-mini", "messages": [{"role": "user", "content": "p"}]})
    );

    let hubspot = prepared(
        "hubspot",
        "create_contact",
        json!({}),
        json!({"accessToken": "pat"}),
        json!({"email": "dana@example.com", "firstName": "Dana"}),
    );
    assert_eq!(
        hubspot.request.url.as_str(),
        "https://api.hubapi.com/crm/v3/objects/contacts"
    );
    assert_eq!(
        json_body(&hubspot),
        json!({"properties": {"email": "dana@example.com", "firstname": "Dana"}})
    );
}

#[test]
fn google_calendar_lists_and_creates_events_on_the_chosen_calendar() {
    let list = prepared(
        "google_calendar",
        "list_events",
        json!({}),
        json!({"accessToken": "ya29"}),
        json!({"start": "2026-12-01T00:00:00Z", "end": "2026-12-08T00:00:00Z"}),
    );
    assert_eq!(list.request.method, http::Method::GET);
    assert!(list.body.is_none());
    assert_eq!(
        list.request.url.as_str(),
        "https://www.googleapis.com/calendar/v3/calendars/primary/events?timeMin=2026-12-01T00%3A00%3A00Z&timeMax=2026-12-08T00%3A00%3A00Z&singleEvents=true"
    );
    let create = prepared(
        "google_calendar",
        "create_event",
        json!({"calendarId": "team@group.calendar.google.com"}),
        json!({"accessToken": "ya29"}),
        json!({"summary": "Session", "start": "2026-12-02T10:00:00+02:00", "end": "2026-12-02T11:00:00+02:00",
               "attendees": ["a@example.com", "b@example.com"]}),
    );
    assert_eq!(
        create.request.url.as_str(),
        "https://www.googleapis.com/calendar/v3/calendars/team%40group.calendar.google.com/events"
    );
    assert_eq!(
        json_body(&create),
        json!({"summary": "Session", "start": {"dateTime": "2026-12-02T10:00:00+02:00"},
               "end": {"dateTime": "2026-12-02T11:00:00+02:00"},
               "attendees": [{"email": "a@example.com"}, {"email": "b@example.com"}]})
    );
    let other = prepared(
        "google_calendar",
        "create_event",
        json!({}),
        json!({"accessToken": "ya29"}),
        json!({"summary": "S", "start": "s", "end": "e", "calendarId": "x/y"}),
    );
    assert!(
        other
            .request
            .url
            .path()
            .ends_with("/calendars/x%2Fy/events"),
        "{}",
        other.request.url
    );
}

#[test]
fn kavenegar_actions_carry_the_key_in_the_path_and_arrays_in_the_form() {
    let key = json!({"apiKey": "4F6B-KEY"});
    let otp = prepared(
        "kavenegar",
        "send_otp",
        json!({}),
        key.clone(),
        json!({"receptor": "09121234567", "template": "verify", "token": "5831"}),
    );
    assert_eq!(
        otp.request.url.as_str(),
        "https://api.kavenegar.com/v1/4F6B-KEY/verify/lookup.json?receptor=09121234567&template=verify&token=5831"
    );
    let bulk = prepared(
        "kavenegar",
        "send_bulk",
        json!({"sender": "10004346"}),
        key.clone(),
        json!({"receptors": ["09121111111", "09122222222"], "message": "سلام"}),
    );
    assert_eq!(
        bulk.request.url.as_str(),
        "https://api.kavenegar.com/v1/4F6B-KEY/sms/sendarray.json"
    );
    assert_eq!(
        form_body(&bulk),
        pairs(&[
            ("receptor", r#"["09121111111","09122222222"]"#),
            ("message", r#"["سلام","سلام"]"#),
            ("sender", r#"["10004346","10004346"]"#),
        ])
    );
    let status = prepared(
        "kavenegar",
        "get_status",
        json!({}),
        key,
        json!({"messageId": 85746}),
    );
    assert_eq!(
        status.request.url.as_str(),
        "https://api.kavenegar.com/v1/4F6B-KEY/sms/status.json?messageid=85746"
    );
}

#[test]
fn every_builtin_action_has_an_object_input_schema_and_outputs() {
    let catalog = Catalog::builtin();
    let mut names = Vec::new();
    for (slug, provider) in catalog.iter() {
        for (name, action) in &provider.actions {
            assert_eq!(action.input["type"], "object", "{slug}.{name}");
            assert!(!action.output.is_empty(), "{slug}.{name} has outputs");
            names.push(format!("{slug}.{name}"));
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "google_calendar.create_event",
            "google_calendar.list_events",
            "hubspot.create_contact",
            "kavenegar.get_status",
            "kavenegar.send_bulk",
            "kavenegar.send_otp",
            "openai.generate",
            "sendgrid.send_email",
            "slack.post_message",
            "twilio.send_sms",
            "whatsapp_business.send_template",
            "whatsapp_business.send_text",
        ]
    );
}
