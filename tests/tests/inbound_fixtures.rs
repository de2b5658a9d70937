//! Every inbound event in `events/` (`inbound-*.json`) is parsed as API Gateway delivers it and
//! handled by the `inbound-webhook` function: each is signed fresh with the key of a webhook created
//! for it and accepted, and (unless its scheme checks nothing) refused once signed with another key.
//! The signers here are this file's own, written from the providers' documentation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use hub_shared::services::Services;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::LambdaRequest;
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::Sha256;
use tower::ServiceExt;

const FIXTURE_TENANT: &str = "tenant-events";
const PLACEHOLDER_WEBHOOK: &str = "whin_00000000000000000000000000";
const SIGNATURE: &str = "{{signature}}";
const TIMESTAMP: &str = "{{timestamp}}";
/// The Standard Webhooks specification's example secret.
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_STANDARD_SECRET: &str = "whsec_b3RoZXIta2V5LW5vdC10aGUtd2ViaG9vaydz";
const META_VERIFY_TOKEN: &str = "meta-fixture-verify-token";
const META_CHALLENGE: &str = "1158201444";

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn hmac256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac1(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// What a signer sees of the request: the decoded body, the headers as in the file, the full public
/// URL, and the timestamp it puts in `{{timestamp}}`.
struct ToSign<'a> {
    body: &'a [u8],
    headers: &'a http::HeaderMap,
    url: &'a str,
    timestamp: &'a str,
}

/// The value of `{{signature}}` for a key.
type Signer = fn(&str, &ToSign) -> String;

/// One `inbound-*.json`: the webhook it is sent to, how it is signed, and the key that is not its
/// own (`None`: the scheme checks nothing).
struct Fixture {
    file: &'static str,
    verification: Value,
    sign: Signer,
    key: String,
    wrong_key: Option<String>,
    /// Seconds, or milliseconds for HubSpot.
    timestamp: String,
}

fn sign_standard(secret: &str, r: &ToSign) -> String {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ secret"))
        .expect("base64 key");
    let id = r.headers["webhook-id"].to_str().expect("webhook-id");
    let mut message = format!("{id}.{}.", r.timestamp).into_bytes();
    message.extend_from_slice(r.body);
    BASE64.encode(hmac256(&key, &message))
}

fn sign_body_hex(secret: &str, r: &ToSign) -> String {
    hex::encode(hmac256(secret.as_bytes(), r.body))
}

fn sign_body_base64(secret: &str, r: &ToSign) -> String {
    BASE64.encode(hmac256(secret.as_bytes(), r.body))
}

fn sign_stripe(secret: &str, r: &ToSign) -> String {
    let mut message = format!("{}.", r.timestamp).into_bytes();
    message.extend_from_slice(r.body);
    hex::encode(hmac256(secret.as_bytes(), &message))
}

fn sign_slack(secret: &str, r: &ToSign) -> String {
    let mut message = format!("v0:{}:", r.timestamp).into_bytes();
    message.extend_from_slice(r.body);
    hex::encode(hmac256(secret.as_bytes(), &message))
}

/// The URL, then the form parameters sorted by name, each name and decoded value (Twilio's
/// validators).
fn sign_twilio(token: &str, r: &ToSign) -> String {
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(r.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let mut message = r.url.to_string();
    for (name, value) in params {
        message.push_str(&name);
        message.push_str(&value);
    }
    BASE64.encode(hmac1(token.as_bytes(), message.as_bytes()))
}

fn sign_hubspot(secret: &str, r: &ToSign) -> String {
    let mut message = format!("POST{}", r.url).into_bytes();
    message.extend_from_slice(r.body);
    message.extend_from_slice(r.timestamp.as_bytes());
    BASE64.encode(hmac256(secret.as_bytes(), &message))
}

/// Google signs nothing: the channel token is the check.
fn channel_token(token: &str, _: &ToSign) -> String {
    token.to_string()
}

/// SendGrid's signatures come from Python's `cryptography` (key = the signature itself here).
fn presigned(signature: &str, _: &ToSign) -> String {
    signature.to_string()
}

fn unsigned(_: &str, _: &ToSign) -> String {
    String::new()
}

/// A P-256 key pair and the ECDSA signatures of `timestamp + payload` by it and by another key,
/// from Python's `cryptography` (a moto dependency), so the verifier meets an independent signer.
fn sendgrid_material(payload: &[u8], timestamp: &str) -> (String, String, String) {
    let script = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
payload = base64.b64decode(sys.argv[1]); ts = sys.argv[2].encode()
key = ec.generate_private_key(ec.SECP256R1())
public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
good = key.sign(ts + payload, ec.ECDSA(hashes.SHA256()))
other = ec.generate_private_key(ec.SECP256R1()).sign(ts + payload, ec.ECDSA(hashes.SHA256()))
print(base64.b64encode(public).decode()); print(base64.b64encode(good).decode()); print(base64.b64encode(other).decode())
"#;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = std::process::Command::new(python)
        .args(["-c", script, &BASE64.encode(payload), timestamp])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines().map(str::to_string);
    (
        lines.next().expect("public key"),
        lines.next().expect("signature"),
        lines.next().expect("other signature"),
    )
}

fn read_fixture(file: &str) -> String {
    std::fs::read_to_string(events_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn parse_event(file: &str, raw: &str) -> ApiGatewayV2httpRequest {
    serde_json::from_str(raw).unwrap_or_else(|e| panic!("{file} is not a v2 event: {e}"))
}

fn body_of(event: &ApiGatewayV2httpRequest) -> Vec<u8> {
    match (&event.body, event.is_base64_encoded) {
        (Some(body), true) => BASE64.decode(body).expect("base64 body"),
        (Some(body), false) => body.clone().into_bytes(),
        (None, _) => Vec::new(),
    }
}

fn fixtures(now: i64) -> Vec<Fixture> {
    let seconds = now.to_string();
    let sendgrid_body = body_of(&parse_event(
        "inbound-sendgrid.json",
        &read_fixture("inbound-sendgrid.json"),
    ));
    let (public_key, sendgrid_good, sendgrid_other) = sendgrid_material(&sendgrid_body, &seconds);
    let fixture = |file, verification: Value, sign: Signer, key: &str, wrong_key: &str| Fixture {
        file,
        verification,
        sign,
        key: key.to_string(),
        wrong_key: Some(wrong_key.to_string()),
        timestamp: seconds.clone(),
    };
    vec![
        fixture(
            "inbound-standard.json",
            json!({"scheme": "standard", "secret": STANDARD_SECRET}),
            sign_standard,
            STANDARD_SECRET,
            OTHER_STANDARD_SECRET,
        ),
        fixture(
            "inbound-hmac_sha256.json",
            json!({"scheme": "hmac_sha256", "secret": "hmac-fixture-secret"}),
            sign_body_hex,
            "hmac-fixture-secret",
            "not-the-secret",
        ),
        fixture(
            "inbound-stripe.json",
            json!({"scheme": "stripe", "secret": "whsec_fixture"}),
            sign_stripe,
            "whsec_fixture",
            "whsec_not_the_secret",
        ),
        fixture(
            "inbound-github.json",
            json!({"scheme": "github", "secret": "It's a Secret to Everybody"}),
            sign_body_hex,
            "It's a Secret to Everybody",
            "not-the-secret",
        ),
        fixture(
            "inbound-slack.json",
            json!({"scheme": "slack", "secret": "8f742231b10e8888abcd99yyyzzz85a5"}),
            sign_slack,
            "8f742231b10e8888abcd99yyyzzz85a5",
            "not-the-secret",
        ),
        fixture(
            "inbound-meta.json",
            json!({"scheme": "meta", "secret": "meta-fixture-app-secret", "verifyToken": META_VERIFY_TOKEN}),
            sign_body_hex,
            "meta-fixture-app-secret",
            "not-the-secret",
        ),
        fixture(
            "inbound-twilio.json",
            json!({"scheme": "twilio", "secret": "twilio-fixture-auth-token"}),
            sign_twilio,
            "twilio-fixture-auth-token",
            "not-the-token",
        ),
        fixture(
            "inbound-shopify.json",
            json!({"scheme": "shopify", "secret": "shpss_fixture"}),
            sign_body_base64,
            "shpss_fixture",
            "not-the-secret",
        ),
        Fixture {
            timestamp: (now * 1000).to_string(),
            ..fixture(
                "inbound-hubspot_v3.json",
                json!({"scheme": "hubspot_v3", "secret": "hubspot-fixture-client-secret"}),
                sign_hubspot,
                "hubspot-fixture-client-secret",
                "not-the-secret",
            )
        },
        fixture(
            "inbound-sendgrid.json",
            json!({"scheme": "sendgrid", "publicKey": public_key}),
            presigned,
            &sendgrid_good,
            &sendgrid_other,
        ),
        fixture(
            "inbound-google_channel.json",
            json!({"scheme": "google_channel", "secret": "google-fixture-channel-token"}),
            channel_token,
            "google-fixture-channel-token",
            "not-the-token",
        ),
        Fixture {
            wrong_key: None,
            ..fixture(
                "inbound-none.json",
                json!({"scheme": "none"}),
                unsigned,
                "",
                "",
            )
        },
    ]
}

/// The fixture as the function receives it: placeholders replaced, signed with `key`.
fn signed_request(
    fixture: &Fixture,
    webhook_id: &str,
    public_base_url: &str,
    key: &str,
) -> http::Request<lambda_http::Body> {
    let raw = read_fixture(fixture.file).replace(PLACEHOLDER_WEBHOOK, webhook_id);
    let event = parse_event(fixture.file, &raw);
    let body = body_of(&event);
    let query = event.raw_query_string.as_deref().unwrap_or_default();
    let url = format!(
        "{}{}{}{query}",
        public_base_url.trim_end_matches('/'),
        event.raw_path.as_deref().unwrap_or_default(),
        if query.is_empty() { "" } else { "?" },
    );
    let signature = (fixture.sign)(
        key,
        &ToSign {
            body: &body,
            headers: &event.headers,
            url: &url,
            timestamp: &fixture.timestamp,
        },
    );
    let signed = raw
        .replace(SIGNATURE, &signature)
        .replace(TIMESTAMP, &fixture.timestamp);
    LambdaRequest::ApiGatewayV2(parse_event(fixture.file, &signed)).into()
}

async fn call(router: &axum::Router, request: http::Request<lambda_http::Body>) -> (u16, Vec<u8>) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, body.to_vec())
}

#[tokio::test]
async fn every_inbound_fixture_is_accepted_when_signed_and_refused_when_signed_with_another_key() {
    // Given a stack, one incoming webhook per fixture, and the function on the same tables
    let app = hub_tests::spawn_app_with(|options| options.start_workers = false).await;
    let fixtures = fixtures(chrono::Utc::now().timestamp());
    let mut on_disk: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("inbound-") && name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut covered: Vec<String> = fixtures.iter().map(|f| f.file.to_string()).collect();
    covered.push("inbound-meta-handshake.json".to_string());
    // Unsigned, B5's first invocation: tests/tests/event_fixtures.rs runs it.
    covered.push("inbound-post-unknown-webhook.json".to_string());
    covered.sort();
    assert_eq!(on_disk, covered, "every events/inbound-*.json is run here");

    let mut webhook_ids = BTreeMap::new();
    for fixture in &fixtures {
        let created = app
            .post_json(
                FIXTURE_TENANT,
                "/api/webhooks/incoming",
                &json!({"name": fixture.file, "verification": fixture.verification}),
            )
            .await;
        assert_eq!(created.status, 201, "{}: {}", fixture.file, created.text);
        let id = created.json()["id"].as_str().expect("id").to_string();
        webhook_ids.insert(fixture.file, id);
    }
    let services =
        Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");
    let router = inbound_webhook::app(inbound_webhook::InboundState::new(services));
    let public_base_url = app.stack.config.public_base_url.clone();

    for fixture in &fixtures {
        let id = &webhook_ids[fixture.file];
        // When it is signed with another key, then it is refused
        if let Some(wrong_key) = &fixture.wrong_key {
            let (status, body) = call(
                &router,
                signed_request(fixture, id, &public_base_url, wrong_key),
            )
            .await;
            let text = String::from_utf8_lossy(&body);
            assert_eq!(status, 401, "{} with another key: {text}", fixture.file);
            let problem: Value = serde_json::from_slice(&body).expect("problem json");
            assert_eq!(problem["code"], "invalid_signature", "{}", fixture.file);
        }
        // When it is signed with its own key, then it is accepted as a new event
        let (status, body) = call(
            &router,
            signed_request(fixture, id, &public_base_url, &fixture.key),
        )
        .await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 202, "{}: {text}", fixture.file);
        let accepted: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(accepted["received"], true, "{}: {accepted}", fixture.file);
        assert!(
            accepted["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("evt_")),
            "{}: {accepted}",
            fixture.file
        );
    }

    // And Meta's handshake, a GET with the webhook's verify token, is answered with the challenge
    let handshake = Fixture {
        file: "inbound-meta-handshake.json",
        verification: Value::Null,
        sign: unsigned,
        key: String::new(),
        wrong_key: None,
        timestamp: String::new(),
    };
    let meta_id = &webhook_ids["inbound-meta.json"];
    let (status, body) = call(
        &router,
        signed_request(&handshake, meta_id, &public_base_url, ""),
    )
    .await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (200, META_CHALLENGE)
    );
}
