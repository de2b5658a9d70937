//! Actions end to end: `POST /api/integrations/{id}/actions/{action}` through the local stack
//! against moto and local servers shaped like each provider's API (`hub_tests::shapes`), which
//! check what the real APIs check: authentication, form vs JSON, required fields.

use std::time::Duration;

use hub_local::provider_shapes::{ProviderShapes, BEARER, KAVENEGAR_KEY, TWILIO_SID, TWILIO_TOKEN};
use hub_tests::{shipped_entry, spawn_app_with, TestApp};
use serde_json::{json, Value};

const TENANT: &str = "clinic";

fn key() -> String {
    hub_tests::unique_name("k")
        .replace(['_', ':'], "-")
        .chars()
        .take(60)
        .collect()
}

/// The stack with the OAuth providers (and Kavenegar, whose key is a base-URL segment) pointed at
/// the shapes server as `PROVIDERS_FILE` copies of their shipped entries; the other providers are
/// the built-in ones with `config.baseUrl`.
async fn stack(shapes: &ProviderShapes, extra: Value) -> TestApp {
    let local = shapes.url();
    let bearer = "Bearer {token}";
    let mut entries = json!({
        "slack_local": shipped_entry("slack", &format!("{local}/api"), bearer),
        "google_calendar_local": shipped_entry("google_calendar", &format!("{local}/calendar/v3"), bearer),
        "hubspot_local": shipped_entry("hubspot", local, bearer),
        "kavenegar_local": shipped_entry("kavenegar", &format!("{local}/v1/{{token}}"), "{token}"),
    });
    // Kavenegar takes the key in the URL only.
    entries["kavenegar_local"]["auth"]["apply"] = json!({"url": true});
    if let Value::Object(extra) = extra {
        for (slug, entry) in extra {
            entries[slug] = entry;
        }
    }
    let file = hub_tests::write_providers_file(&entries.to_string());
    spawn_app_with(|options| options.providers_file = Some(file)).await
}

async fn integration(app: &TestApp, provider: &str, credentials: Value, config: Value) -> String {
    let created = app
        .create_integration(
            TENANT,
            &json!({"provider": provider, "name": provider, "connectionKey": key(),
                    "credentials": credentials, "config": config}),
        )
        .await;
    created["id"].as_str().expect("id").to_string()
}

async fn act(app: &TestApp, id: &str, action: &str, input: Value) -> hub_tests::Reply {
    app.post_json(
        TENANT,
        &format!("/api/integrations/{id}/actions/{action}"),
        &input,
    )
    .await
}

fn ok(reply: &hub_tests::Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

#[tokio::test]
async fn every_listed_action_sends_its_providers_request_and_maps_the_output() {
    let shapes = ProviderShapes::start().await;
    let app = stack(&shapes, json!({})).await;
    let local = shapes.url();

    // Twilio: form, basic auth, the default sender from config.
    let twilio = integration(
        &app,
        "twilio",
        json!({"accountSid": TWILIO_SID, "authToken": TWILIO_TOKEN}),
        json!({"baseUrl": format!("{local}/2010-04-01"), "fromNumber": "+15005550006"}),
    )
    .await;
    let sms = ok(&act(
        &app,
        &twilio,
        "send_sms",
        json!({"to": "+972501234567", "body": "תזכורת ✅"}),
    )
    .await);
    assert_eq!(sms["output"]["status"], "queued");
    assert!(sms["output"]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("SM")));
    assert_eq!(sms["httpStatus"], 201);
    let seen = shapes.seen().pop().expect("request");
    assert_eq!(
        seen.path(),
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    );
    assert_eq!(
        seen.form(),
        [
            ("To".to_string(), "+972501234567".to_string()),
            ("From".to_string(), "+15005550006".to_string()),
            ("Body".to_string(), "תזכורת ✅".to_string())
        ]
    );
    // Input errors name the field and call nothing.
    let before = shapes.seen().len();
    let missing = act(&app, &twilio, "send_sms", json!({"to": "+1"})).await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.json()["errors"][0]["field"], "body");
    let unknown = act(
        &app,
        &twilio,
        "send_sms",
        json!({"to": "+1", "body": "b", "bcc": "x"}),
    )
    .await;
    assert_eq!(unknown.json()["errors"][0]["field"], "bcc");
    assert_eq!(act(&app, &twilio, "send_fax", json!({})).await.status, 404);
    assert_eq!(shapes.seen().len(), before);
    // A provider 4xx is a 502 with its status and its error.
    let refused = act(
        &app,
        &twilio,
        "send_sms",
        json!({"to": "0501234567", "body": "b"}),
    )
    .await;
    assert_eq!(refused.status, 502, "{}", refused.text);
    let problem = refused.json();
    assert_eq!(problem["code"], "provider_error");
    assert_eq!(problem["providerStatus"], 400);
    assert!(
        problem["providerBody"]
            .as_str()
            .is_some_and(|b| b.contains("21211")),
        "{problem}"
    );

    // SendGrid: JSON Mail Send, 202 with no body.
    let sendgrid = integration(
        &app,
        "sendgrid",
        json!({"apiKey": BEARER}),
        json!({"baseUrl": format!("{local}/v3"), "fromEmail": "clinic@example.com", "fromName": "Clinic"}),
    )
    .await;
    let mail = ok(&act(
        &app,
        &sendgrid,
        "send_email",
        json!({"to": "dana@example.com", "subject": "Your visit", "html": "<p>See you</p>"}),
    )
    .await);
    assert_eq!(mail["output"], json!({"status": 202}));
    assert_eq!(
        shapes.seen().pop().expect("request").json(),
        json!({"personalizations": [{"to": [{"email": "dana@example.com"}]}],
               "from": {"email": "clinic@example.com", "name": "Clinic"},
               "subject": "Your visit", "content": [{"type": "text/html", "value": "<p>See you</p>"}]})
    );
    let neither = act(
        &app,
        &sendgrid,
        "send_email",
        json!({"to": "d@example.com", "subject": "s"}),
    )
    .await;
    assert_eq!(neither.status, 400, "{}", neither.text);

    // WhatsApp: text and template messages.
    let whatsapp = integration(
        &app,
        "whatsapp_business",
        json!({"accessToken": BEARER}),
        json!({"baseUrl": format!("{local}/v23.0"), "phoneNumberId": "106540352242922"}),
    )
    .await;
    let text = ok(&act(
        &app,
        &whatsapp,
        "send_text",
        json!({"to": "972501234567", "body": "שלום"}),
    )
    .await);
    assert!(text["output"]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("wamid.")));
    assert_eq!(
        shapes.seen().pop().expect("request").path(),
        "/v23.0/106540352242922/messages"
    );
    let components = json!([{"type": "body", "parameters": [{"type": "text", "text": "Dana"}]}]);
    ok(&act(&app, &whatsapp, "send_template",
            json!({"to": "972501234567", "template": "reminder", "language": "he", "components": components})).await);
    assert_eq!(
        shapes.seen().pop().expect("request").json()["template"],
        json!({"name": "reminder", "language": {"code": "he"}, "components": components})
    );

    // Slack: a 200 with ok false is a provider error.
    let slack = integration(&app, "slack_local", json!({"token": BEARER}), json!({})).await;
    let posted = ok(&act(
        &app,
        &slack,
        "post_message",
        json!({"channel": "C0123", "text": "Deploy done"}),
    )
    .await);
    assert_eq!(posted["output"]["channel"], "C0123");
    assert!(posted["output"]["ts"].as_str().is_some());
    let lost = act(
        &app,
        &slack,
        "post_message",
        json!({"channel": "C404", "text": "x"}),
    )
    .await;
    assert_eq!(lost.status, 502, "{}", lost.text);
    assert_eq!(lost.json()["providerStatus"], 200);
    assert!(lost.json()["providerBody"]
        .as_str()
        .is_some_and(|b| b.contains("channel_not_found")));

    // Kavenegar: the key in the path, JSON arrays in the form.
    let kavenegar = integration(
        &app,
        "kavenegar_local",
        json!({"token": KAVENEGAR_KEY}),
        json!({"sender": "10004346"}),
    )
    .await;
    let otp = ok(&act(
        &app,
        &kavenegar,
        "send_otp",
        json!({"receptor": "09121234567", "template": "verify", "token": "583190"}),
    )
    .await);
    assert_eq!(otp["output"]["status"], 5);
    assert!(otp["output"]["id"].is_u64());
    let seen = shapes.seen().pop().expect("request");
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.path(),
        format!("/v1/{KAVENEGAR_KEY}/verify/lookup.json")
    );
    assert_eq!(
        seen.query(),
        [
            ("receptor".to_string(), "09121234567".to_string()),
            ("template".to_string(), "verify".to_string()),
            ("token".to_string(), "583190".to_string())
        ]
    );
    let bulk = ok(&act(
        &app,
        &kavenegar,
        "send_bulk",
        json!({"receptors": ["09121111111", "09122222222"], "message": "سلام"}),
    )
    .await);
    assert_eq!(bulk["output"]["ids"].as_array().map(Vec::len), Some(2));
    let status = ok(&act(
        &app,
        &kavenegar,
        "get_status",
        json!({"messageId": otp["output"]["id"]}),
    )
    .await);
    assert_eq!(
        status["output"],
        json!({"status": 10, "statusText": "رسیده به گیرنده"})
    );

    // OpenAI: the model from config's default.
    let openai = integration(
        &app,
        "openai",
        json!({"apiKey": BEARER}),
        json!({"baseUrl": format!("{local}/v1")}),
    )
    .await;
    let generated = ok(&act(
        &app,
        &openai,
        "generate",
        json!({"prompt": "Write a haiku", "maxTokens": 40}),
    )
    .await);
    assert_eq!(generated["output"]["text"], "Echo: Write a haiku");
    assert_eq!(generated["output"]["usage"]["total_tokens"], 21);
    assert_eq!(
        shapes.seen().pop().expect("request").json(),
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Write a haiku"}], "max_tokens": 40})
    );

    // Google Calendar: list and create on the configured calendar.
    let calendar = integration(
        &app,
        "google_calendar_local",
        json!({"token": BEARER}),
        json!({"calendarId": "team@group.calendar.google.com"}),
    )
    .await;
    let listed = ok(&act(
        &app,
        &calendar,
        "list_events",
        json!({"start": "2026-12-01T00:00:00Z", "end": "2026-12-08T00:00:00Z"}),
    )
    .await);
    assert_eq!(listed["output"]["events"][0]["id"], "evt001");
    let seen = shapes.seen().pop().expect("request");
    assert_eq!(
        seen.path(),
        "/calendar/v3/calendars/team%40group.calendar.google.com/events"
    );
    assert!(seen
        .query()
        .contains(&("singleEvents".to_string(), "true".to_string())));
    let created = ok(&act(&app, &calendar, "create_event",
                          json!({"summary": "Session", "start": "2026-12-02T10:00:00+02:00",
                                 "end": "2026-12-02T11:00:00+02:00", "attendees": ["a@example.com"]})).await);
    assert!(created["output"]["htmlLink"]
        .as_str()
        .is_some_and(|l| l.contains("eid=")));
    assert_eq!(
        shapes.seen().pop().expect("request").json()["attendees"],
        json!([{"email": "a@example.com"}])
    );
    let bad_time = act(
        &app,
        &calendar,
        "list_events",
        json!({"start": "tomorrow", "end": "2026-12-08T00:00:00Z"}),
    )
    .await;
    assert_eq!(bad_time.status, 400, "{}", bad_time.text);
    assert_eq!(bad_time.json()["errors"][0]["field"], "start");

    // HubSpot: a contact.
    let hubspot = integration(&app, "hubspot_local", json!({"token": BEARER}), json!({})).await;
    let contact = ok(&act(
        &app,
        &hubspot,
        "create_contact",
        json!({"email": "dana@example.com", "firstName": "Dana"}),
    )
    .await);
    assert!(contact["output"]["id"].as_str().is_some());
    assert_eq!(
        shapes.seen().pop().expect("request").json(),
        json!({"properties": {"email": "dana@example.com", "firstname": "Dana"}})
    );

    // Each call is a log with the action's name; secret input and credentials are in no log,
    // response or item.
    let logs = app
        .get(
            TENANT,
            &format!("/api/integrations/{kavenegar}/logs?action=action"),
        )
        .await
        .json();
    let items = logs["items"].as_array().expect("logs");
    assert_eq!(items.len(), 3, "{logs}");
    let otp_log = items
        .iter()
        .find(|l| l["summary"]["action"] == "send_otp")
        .expect("send_otp log");
    assert_eq!(otp_log["summary"]["input"]["token"], "[redacted]");
    assert_eq!(otp_log["status"], "success");
    let table = format!("{:?}", app.scan_table().await);
    for secret in ["583190", KAVENEGAR_KEY, TWILIO_TOKEN, BEARER] {
        assert!(!table.contains(secret), "{secret} is in the table");
        for body in app.response_bodies() {
            assert!(!body.contains(secret), "{secret} in a response: {body}");
        }
    }
}

#[tokio::test]
async fn an_idempotency_key_calls_the_provider_once_even_concurrently() {
    let shapes = ProviderShapes::start().await;
    let app = stack(&shapes, json!({})).await;
    let twilio = integration(
        &app,
        "twilio",
        json!({"accountSid": TWILIO_SID, "authToken": TWILIO_TOKEN}),
        json!({"baseUrl": format!("{}/2010-04-01", shapes.url()), "fromNumber": "+15005550006"}),
    )
    .await;
    let path = format!("/api/integrations/{twilio}/actions/send_sms");
    let send = |key: &'static str, input: Value| {
        let request = app
            .request(reqwest::Method::POST, TENANT, &path)
            .header("Idempotency-Key", key)
            .json(&input);
        app.send(request)
    };
    let input = json!({"to": "+15005550010", "body": "once"});

    let first = send("order-1001", input.clone()).await;
    let again = send("order-1001", json!({"body": "once", "to": "+15005550010"})).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(first.json()["output"], again.json()["output"]);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(shapes.seen().len(), 1);
    let other_input = send("order-1001", json!({"to": "+15005550010", "body": "twice"})).await;
    assert_eq!(other_input.status, 409, "{}", other_input.text);
    assert_eq!(other_input.json()["code"], "idempotency_key_reused");

    // Five at once, the provider slow to answer: one request, one result for all.
    shapes.set_delay(Duration::from_millis(800));
    let replies =
        futures_util::future::join_all((0..5).map(|_| send("order-1002", input.clone()))).await;
    assert_eq!(shapes.seen().len(), 2, "one more request");
    let outputs: Vec<Value> = replies
        .iter()
        .map(|reply| {
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.json()["output"].clone()
        })
        .collect();
    assert!(outputs.iter().all(|o| *o == outputs[0]), "{outputs:?}");
    assert_ne!(outputs[0], first.json()["output"]);

    // A provider error is a result too: repeated, not re-sent.
    shapes.set_delay(Duration::ZERO);
    let refused = send("order-1003", json!({"to": "0501", "body": "b"})).await;
    let refused_again = send("order-1003", json!({"to": "0501", "body": "b"})).await;
    assert_eq!((refused.status, refused_again.status), (502, 502));
    assert_eq!(refused.json(), refused_again.json());
    assert_eq!(shapes.seen().len(), 3);
}

#[tokio::test]
async fn the_providers_bucket_answers_429_with_retry_after_when_empty() {
    let shapes = ProviderShapes::start().await;
    let mut limited = shipped_entry("slack", &format!("{}/api", shapes.url()), "Bearer {token}");
    limited["api"]["rateLimit"] = json!({"requests": 2, "perSeconds": 1});
    let app = stack(&shapes, json!({"slack_limited": limited})).await;
    let slack = integration(&app, "slack_limited", json!({"token": BEARER}), json!({})).await;
    let input = json!({"channel": "C0123", "text": "hi"});
    ok(&act(&app, &slack, "post_message", input.clone()).await);
    ok(&act(&app, &slack, "post_message", input.clone()).await);
    let third = act(&app, &slack, "post_message", input.clone()).await;
    assert_eq!(third.status, 429, "{}", third.text);
    assert!(third
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|s| s >= 1));
    assert_eq!(shapes.seen().len(), 2);
}

#[tokio::test]
async fn an_oauth_action_whose_token_expires_in_a_minute_refreshes_once_then_calls() {
    use hub_local::oauth_server::{AuthServerOptions, ClientAuthMethod, LocalAuthServer};
    use hub_tests::oauth::{
        configure_app, connect, location_params, provider_yaml, register_client,
    };

    let server = LocalAuthServer::start(AuthServerOptions {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..AuthServerOptions::default()
    })
    .await
    .expect("auth server");
    // The server's `/me` answers only an active access token.
    let yaml = provider_yaml("crm_oauth", &server, Default::default())
        + "  actions:\n    whoami:\n      description: The user behind the token\n      input: {type: object, additionalProperties: false}\n      request: {method: GET, path: /me}\n      output: {user: sub, client: client_id}\n";
    let file = hub_tests::write_providers_file(&yaml);
    let app = spawn_app_with(|options| {
        options.providers_file = Some(file);
        options.schedule_interval = Duration::from_secs(3600);
    })
    .await;
    register_client(&app, &server, "crm_oauth", ClientAuthMethod::Post);
    configure_app(&app, TENANT, "crm_oauth").await;
    server.set_access_token_ttl(Duration::from_secs(60));
    let connected = connect(&app, TENANT, "crm_oauth", "").await;
    let id = location_params(&connected)["integrationId"].clone();
    server.set_access_token_ttl(Duration::from_secs(3600));
    let grants = || -> Vec<String> {
        server
            .token_requests()
            .into_iter()
            .map(|r| r.grant_type)
            .collect()
    };
    assert_eq!(grants(), ["authorization_code"]);

    let first = ok(&act(&app, &id, "whoami", json!({})).await);
    assert!(first["output"]["user"].as_str().is_some(), "{first}");
    assert_eq!(
        grants(),
        ["authorization_code", "refresh_token"],
        "one refresh, then the call"
    );
    ok(&act(&app, &id, "whoami", json!({})).await);
    assert_eq!(
        grants().len(),
        2,
        "the refreshed token lasts: no second refresh"
    );
}
