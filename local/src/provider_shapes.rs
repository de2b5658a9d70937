//! Local servers (one axum app, binary `local-provider-apis`) shaped like the providers' APIs behind the catalog's actions: each route checks
//! what the real API checks (its authentication, form vs JSON encoding, required fields), refuses
//! what it would refuse with the provider's own error shape, and answers the provider's success
//! shape. Every request is recorded (method, path and query, `Authorization`, `Content-Type`, body).
//!
//! Routes (paths as the providers have them, so a catalog entry only changes its base URL):
//! Twilio `POST /2010-04-01/Accounts/{sid}/Messages.json` and `GET /2010-04-01/Accounts/{sid}.json`; SendGrid `POST /v3/mail/send`; WhatsApp
//! `POST /v23.0/{phoneNumberId}/messages`; Slack `POST /api/chat.postMessage`; Kavenegar
//! `GET /v1/{key}/verify/lookup.json`, `POST /v1/{key}/sms/sendarray.json`,
//! `GET /v1/{key}/sms/status.json`; OpenAI `POST /v1/chat/completions`; Google Calendar
//! `GET|POST /calendar/v3/calendars/{id}/events`; HubSpot `POST /crm/v3/objects/contacts`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

/// The credentials the servers accept.
pub const TWILIO_SID: &str = "AC00000000000000000000000000000001";
pub const TWILIO_TOKEN: &str = "twilio-auth-token-0001";
pub const BEARER: &str = "local-provider-token-0001";
pub const KAVENEGAR_KEY: &str = "4F6B2D4C6F63616C4B6579";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    pub fn query(&self) -> Vec<(String, String)> {
        let url = url::Url::parse(&format!("http://h{}", self.target)).expect("target");
        url.query_pairs().into_owned().collect()
    }

    pub fn path(&self) -> String {
        self.target.split('?').next().unwrap_or("").to_string()
    }
}

#[derive(Default)]
struct Inner {
    seen: Vec<Seen>,
    /// Answers are held this long (idempotency tests).
    delay: Duration,
    next_id: u64,
}

#[derive(Clone, Default)]
pub struct ProviderShapes {
    inner: Arc<Mutex<Inner>>,
    url: String,
}

impl ProviderShapes {
    /// On a free port of 127.0.0.1.
    pub async fn start() -> ProviderShapes {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind")
    }

    /// On `address` (the `local-provider-apis` binary's fixed port).
    pub async fn start_on(address: SocketAddr) -> std::io::Result<ProviderShapes> {
        let shapes = ProviderShapes::default();
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(twilio))
            .route("/2010-04-01/Accounts/{account}", get(twilio_account))
            .route("/v3/mail/send", post(sendgrid))
            .route("/v23.0/{phone}/messages", post(whatsapp))
            .route("/api/chat.postMessage", post(slack))
            .route("/v1/{key}/verify/lookup.json", get(kavenegar_lookup))
            .route("/v1/{key}/sms/sendarray.json", post(kavenegar_sendarray))
            .route("/v1/{key}/sms/status.json", get(kavenegar_status))
            .route("/v1/chat/completions", post(openai))
            .route(
                "/calendar/v3/calendars/{calendar}/events",
                get(calendar_list).post(calendar_insert),
            )
            .route("/crm/v3/objects/contacts", post(hubspot))
            .with_state(shapes.clone());
        let listener = tokio::net::TcpListener::bind(address).await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(ProviderShapes { url, ..shapes })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().expect("lock").seen.clone()
    }

    /// Answers are held `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.inner.lock().expect("lock").delay = delay;
    }

    /// Records the request and waits the delay; returns a fresh id number.
    async fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> u64 {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (delay, id) = {
            let mut inner = self.inner.lock().expect("lock");
            inner.seen.push(Seen {
                method: method.to_string(),
                target: uri.to_string(),
                authorization: header("authorization"),
                content_type: header("content-type"),
                body: body.to_vec(),
            });
            inner.next_id += 1;
            (inner.delay, inner.next_id)
        };
        tokio::time::sleep(delay).await;
        id
    }
}

/// A request as a handler sees it, recorded (and held for the delay) when it is extracted, with
/// its sequence number.
struct Incoming {
    headers: HeaderMap,
    body: Bytes,
    id: u64,
}

impl FromRequest<ProviderShapes> for Incoming {
    type Rejection = Response;

    async fn from_request(request: Request, shapes: &ProviderShapes) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
            .await
            .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
        let id = shapes
            .record(&parts.method, &parts.uri, &parts.headers, &body)
            .await;
        Ok(Incoming {
            headers: parts.headers,
            body,
            id,
        })
    }
}

fn content_type_is(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim() == wanted)
}

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {BEARER}"))
}

fn form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn text_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Twilio: HTTP basic `AccountSid:AuthToken` for the SID in the path, a form with `To`, `From`
/// and `Body`. Errors are `{code, message, more_info, status}`.
async fn twilio(Path(sid): Path<String>, Incoming { headers, body, id }: Incoming) -> Response {
    let error = |status: StatusCode, code: u32, message: &str| {
        (
            status,
            Json(json!({"code": code, "message": message,
                        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
                        "status": status.as_u16()})),
        )
            .into_response()
    };
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Basic {expected}"));
    if !authorized || sid != TWILIO_SID {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if !content_type_is(&headers, "application/x-www-form-urlencoded") {
        return error(StatusCode::BAD_REQUEST, 20001, "Invalid content type");
    }
    let fields = form(&body);
    let field = |name: &str| fields.get(name).filter(|v| !v.is_empty());
    let (Some(to), Some(from), Some(text)) = (field("To"), field("From"), field("Body")) else {
        return error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To', 'From' and 'Body' are required.",
        );
    };
    if !to.starts_with('+') {
        return error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    (
        StatusCode::CREATED,
        Json(
            json!({"sid": format!("SM{id:032}"), "status": "queued", "to": to, "from": from,
                    "body": text, "account_sid": sid}),
        ),
    )
        .into_response()
}

/// Twilio's account fetch (`GET /Accounts/{AccountSid}.json`, the catalog's health check): basic
/// auth for that account.
async fn twilio_account(
    Path(account): Path<String>,
    Incoming { headers, .. }: Incoming,
) -> Response {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Basic {expected}"));
    if !authorized || account != format!("{TWILIO_SID}.json") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response();
    }
    Json(json!({"sid": TWILIO_SID, "friendly_name": "Local account", "status": "active", "type": "Full"}))
        .into_response()
}

/// SendGrid v3 Mail Send: Bearer, JSON with a recipient, a sender, a subject and at least one
/// content part; 202 with an empty body.
async fn sendgrid(Incoming { headers, body, .. }: Incoming) -> Response {
    let error = |status: StatusCode, field: &str, message: &str| {
        (
            status,
            Json(json!({"errors": [{"message": message, "field": field, "help": null}]})),
        )
            .into_response()
    };
    if !bearer_ok(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "",
            "The provided authorization grant is invalid, expired, or revoked",
        );
    }
    let mail: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !content_type_is(&headers, "application/json") || mail.is_null() {
        return error(StatusCode::BAD_REQUEST, "", "Invalid JSON");
    }
    let checks = [
        (
            "/personalizations/0/to/0/email",
            "personalizations.0.to.0.email",
        ),
        ("/from/email", "from.email"),
        ("/subject", "subject"),
        ("/content/0/value", "content"),
    ];
    for (pointer, field) in checks {
        if text_at(&mail, pointer).is_none() {
            return error(StatusCode::BAD_REQUEST, field, "is required");
        }
    }
    StatusCode::ACCEPTED.into_response()
}

/// WhatsApp Cloud API: Bearer, JSON with `messaging_product: whatsapp`, `to`, and a text body or
/// a template with its language code.
async fn whatsapp(
    Path(_phone): Path<String>,
    Incoming { headers, body, id }: Incoming,
) -> Response {
    let error = |status: StatusCode, code: u32, message: &str| {
        (
            status,
            Json(
                json!({"error": {"message": message, "type": "OAuthException", "code": code,
                                  "fbtrace_id": "AbCdEf"}}),
            ),
        )
            .into_response()
    };
    if !bearer_ok(&headers) {
        return error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    }
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let valid = content_type_is(&headers, "application/json")
        && message["messaging_product"] == "whatsapp"
        && text_at(&message, "/to").is_some()
        && match message["type"].as_str() {
            Some("text") => text_at(&message, "/text/body").is_some(),
            Some("template") => {
                text_at(&message, "/template/name").is_some()
                    && text_at(&message, "/template/language/code").is_some()
            }
            _ => false,
        };
    if !valid {
        return error(StatusCode::BAD_REQUEST, 100, "(#100) Invalid parameter");
    }
    let to = message["to"].clone();
    Json(
        json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": format!("wamid.HBgL{id:08}")}]}),
    )
    .into_response()
}

/// Slack `chat.postMessage`: Bearer, JSON with `channel` and `text`. Failures are 200
/// `{"ok": false, "error"}`; channel `C404` does not exist.
async fn slack(Incoming { headers, body, id }: Incoming) -> Response {
    let failed = |error: &str| Json(json!({"ok": false, "error": error})).into_response();
    if !bearer_ok(&headers) {
        return failed("invalid_auth");
    }
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !content_type_is(&headers, "application/json") {
        return failed("invalid_form_data");
    }
    let (Some(channel), Some(_)) = (text_at(&message, "/channel"), text_at(&message, "/text"))
    else {
        return failed("no_text");
    };
    if channel == "C404" {
        return failed("channel_not_found");
    }
    Json(
        json!({"ok": true, "channel": channel, "ts": format!("1764590000.{id:06}"),
                "message": {"text": message["text"], "type": "message"}}),
    )
    .into_response()
}

/// Kavenegar answers `{return: {status, message}, entries}`, the HTTP status equal to
/// `return.status`; the key is the path's first segment.
fn kavenegar_answer(status: u16, message: &str, entries: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({"return": {"status": status, "message": message}, "entries": entries})),
    )
        .into_response()
}

fn kavenegar_entry(id: u64, receptor: &str, message: &str) -> Value {
    json!({"messageid": 8_792_000 + id, "message": message, "status": 5, "statustext": "ارسال به مخابرات",
           "sender": "10004346", "receptor": receptor, "date": 1_764_590_000, "cost": 120})
}

async fn kavenegar_lookup(
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Incoming { id, .. }: Incoming,
) -> Response {
    if key != KAVENEGAR_KEY {
        return kavenegar_answer(403, "کد شناسائی API-Key معتبر نمی‌باشد", Value::Null);
    }
    let given = |name: &str| query.get(name).filter(|v| !v.is_empty());
    let (Some(receptor), Some(_), Some(_)) = (given("receptor"), given("template"), given("token"))
    else {
        return kavenegar_answer(400, "پارامترها ناقص هستند", Value::Null);
    };
    kavenegar_answer(200, "تایید شد", json!([kavenegar_entry(id, receptor, "")]))
}

async fn kavenegar_sendarray(
    Path(key): Path<String>,
    Incoming { headers, body, id }: Incoming,
) -> Response {
    if key != KAVENEGAR_KEY {
        return kavenegar_answer(403, "کد شناسائی API-Key معتبر نمی‌باشد", Value::Null);
    }
    let fields = form(&body);
    let array = |name: &str| -> Option<Vec<String>> {
        serde_json::from_str::<Vec<String>>(fields.get(name)?).ok()
    };
    let (Some(receptors), Some(senders), Some(messages)) =
        (array("receptor"), array("sender"), array("message"))
    else {
        return kavenegar_answer(400, "پارامترها ناقص هستند", Value::Null);
    };
    if !content_type_is(&headers, "application/x-www-form-urlencoded")
        || receptors.is_empty()
        || senders.len() != receptors.len()
        || messages.len() != receptors.len()
    {
        return kavenegar_answer(400, "طول آرایه‌ها برابر نیست", Value::Null);
    }
    let entries: Vec<Value> = receptors
        .iter()
        .zip(&messages)
        .enumerate()
        .map(|(i, (receptor, message))| kavenegar_entry(id * 100 + i as u64, receptor, message))
        .collect();
    kavenegar_answer(200, "تایید شد", Value::Array(entries))
}

async fn kavenegar_status(
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    _: Incoming,
) -> Response {
    if key != KAVENEGAR_KEY {
        return kavenegar_answer(403, "کد شناسائی API-Key معتبر نمی‌باشد", Value::Null);
    }
    let Some(id) = query.get("messageid").and_then(|v| v.parse::<u64>().ok()) else {
        return kavenegar_answer(400, "پارامترها ناقص هستند", Value::Null);
    };
    kavenegar_answer(
        200,
        "تایید شد",
        json!([{"messageid": id, "status": 10, "statustext": "رسیده به گیرنده"}]),
    )
}

/// OpenAI Chat Completions: Bearer, JSON with `model` and `messages`.
async fn openai(Incoming { headers, body, id }: Incoming) -> Response {
    let error = |status: StatusCode, message: &str, kind: &str| {
        (
            status,
            Json(json!({"error": {"message": message, "type": kind, "param": null, "code": null}})),
        )
            .into_response()
    };
    if !bearer_ok(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
        );
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(model), Some(prompt)) = (
        text_at(&request, "/model"),
        text_at(&request, "/messages/0/content"),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "you must provide a model and messages",
            "invalid_request_error",
        );
    };
    Json(json!({"id": format!("chatcmpl-{id}"), "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": format!("Echo: {prompt}")}}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}}))
    .into_response()
}

/// Google Calendar events: Bearer; listing needs `timeMin`/`timeMax` as RFC 3339; an insert needs
/// `start.dateTime` and `end.dateTime`.
async fn calendar_list(
    Path(calendar): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Incoming { headers, .. }: Incoming,
) -> Response {
    if !bearer_ok(&headers) {
        return google_error(StatusCode::UNAUTHORIZED, "Invalid Credentials");
    }
    let time = |name: &str| {
        query
            .get(name)
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
    };
    if time("timeMin").is_none() || time("timeMax").is_none() {
        return google_error(StatusCode::BAD_REQUEST, "Bad Request");
    }
    Json(
        json!({"kind": "calendar#events", "summary": calendar, "items": [
        {"id": "evt001", "summary": "Standup", "start": {"dateTime": query["timeMin"]}}]}),
    )
    .into_response()
}

async fn calendar_insert(
    Path(_calendar): Path<String>,
    Incoming { headers, body, id }: Incoming,
) -> Response {
    if !bearer_ok(&headers) {
        return google_error(StatusCode::UNAUTHORIZED, "Invalid Credentials");
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let valid = content_type_is(&headers, "application/json")
        && text_at(&event, "/start/dateTime").is_some()
        && text_at(&event, "/end/dateTime").is_some();
    if !valid {
        return google_error(StatusCode::BAD_REQUEST, "Missing end time.");
    }
    Json(
        json!({"kind": "calendar#event", "id": format!("evt{id:06}"), "status": "confirmed",
                "htmlLink": format!("https://www.google.com/calendar/event?eid=evt{id:06}"),
                "summary": event["summary"], "attendees": event["attendees"]}),
    )
    .into_response()
}

fn google_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(
            json!({"error": {"code": status.as_u16(), "message": message,
                              "errors": [{"message": message, "domain": "global"}]}}),
        ),
    )
        .into_response()
}

/// HubSpot CRM contacts: Bearer, JSON `{properties: {email, …}}`; 201 with the new id.
async fn hubspot(Incoming { headers, body, id }: Incoming) -> Response {
    if !bearer_ok(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"status": "error", "message": "Authentication credentials not found.",
                        "category": "INVALID_AUTHENTICATION"}),
            ),
        )
            .into_response();
    }
    let contact: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if text_at(&contact, "/properties/email").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"status": "error", "message": "Property values were not valid",
                        "category": "VALIDATION_ERROR"}),
            ),
        )
            .into_response();
    }
    (
        StatusCode::CREATED,
        Json(
            json!({"id": (500 + id).to_string(), "properties": contact["properties"],
                    "archived": false}),
        ),
    )
        .into_response()
}
