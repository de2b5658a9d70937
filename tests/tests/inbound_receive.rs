//! The public receiver end to end, through the local gateway into moto: every verification scheme
//! (signed by this file's own signers, written from the providers' documentation, not by the
//! product's code), the 404/410/413/401 answers, dedupe, filters, handshakes, the claim check for a
//! large body, and the actions' effects (a record, a signed forward, `automation.triggered`).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use hub_tests::{spawn_app_with, Reply, TestApp};
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "tenant-inbound";

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

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Standard Webhooks: `v1,<base64 HMAC(key, "{id}.{ts}.{body}")>`, the key being the base64 part
/// of `whsec_…`.
fn standard_headers(secret: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ secret"))
        .expect("base64 key");
    let mut message = format!("{id}.{ts}.").into_bytes();
    message.extend_from_slice(body);
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts.to_string()),
        (
            "webhook-signature".into(),
            format!("v1,{}", BASE64.encode(hmac256(&key, &message))),
        ),
    ]
}

struct Scene {
    app: TestApp,
}

impl Scene {
    async fn new() -> Scene {
        Scene {
            app: spawn_app_with(|options| {
                options.poll = hub_local::workers::PollOptions::default().wait_time_seconds(1)
            })
            .await,
        }
    }

    async fn create(&self, body: Value) -> Value {
        let reply = self
            .app
            .post_json(TENANT, "/api/webhooks/incoming", &body)
            .await;
        assert_eq!(reply.status, 201, "create failed: {}", reply.text);
        reply.json()
    }

    fn path(&self, webhook: &Value) -> String {
        format!(
            "/api/webhooks/tenant/{TENANT}/{}",
            webhook["id"].as_str().expect("id")
        )
    }

    /// An unauthenticated POST, as a provider sends it.
    async fn post(
        &self,
        path: &str,
        headers: &[(String, String)],
        content_type: &str,
        body: &[u8],
    ) -> Reply {
        let mut request = self
            .app
            .http
            .post(format!("{}{path}", self.app.url))
            .header("content-type", content_type)
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        self.app.send(request).await
    }

    async fn get_public(&self, path_and_query: &str) -> Reply {
        let request = self
            .app
            .http
            .get(format!("{}{path_and_query}", self.app.url));
        self.app.send(request).await
    }
}

/// Waits until `check` holds (the dispatcher works asynchronously).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..120 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Signs for a URL, a body, the right key or not, and a timestamp (ms).
type UrlSigner = fn(&str, &[u8], bool, i64) -> Vec<(String, String)>;

/// One scheme's cases: a correctly signed request, a wrong and a missing signature, and (where
/// the scheme has a timestamp) a stale one.
struct SchemeCase {
    verification: Value,
    body: Vec<u8>,
    content_type: &'static str,
    good: Vec<(String, String)>,
    wrong: Vec<(String, String)>,
    stale: Option<Vec<(String, String)>>,
    /// When the URL is part of what is signed (Twilio, HubSpot), the cases are built from it.
    url_signed: Option<UrlSigner>,
}

fn github_case() -> SchemeCase {
    let secret = "It's a Secret to Everybody";
    let body = br#"{"action":"opened","number":1}"#.to_vec();
    let sign = |key: &str| {
        vec![
            (
                "x-hub-signature-256".to_string(),
                format!("sha256={}", hex::encode(hmac256(key.as_bytes(), &body))),
            ),
            ("x-github-delivery".to_string(), uuid()),
        ]
    };
    SchemeCase {
        verification: json!({"scheme": "github", "secret": secret}),
        good: sign(secret),
        wrong: sign("not the secret"),
        stale: None,
        body: body.clone(),
        content_type: "application/json",
        url_signed: None,
    }
}

fn uuid() -> String {
    hub_shared::ids::uuid_v4()
}

fn stripe_case() -> SchemeCase {
    let secret = "whsec_test_stripe_secret";
    let body = format!(r#"{{"id":"evt_{}","type":"invoice.paid"}}"#, uuid()).into_bytes();
    let sign = |key: &str, t: i64| {
        let mut message = format!("{t}.").into_bytes();
        message.extend_from_slice(&body);
        let other = hex::encode(hmac256(b"an old secret", &message));
        vec![(
            "stripe-signature".to_string(),
            format!(
                "t={t},v1={other},v1={},v0=ignored",
                hex::encode(hmac256(key.as_bytes(), &message))
            ),
        )]
    };
    SchemeCase {
        verification: json!({"scheme": "stripe", "secret": secret}),
        good: sign(secret, now()),
        wrong: sign("whsec_wrong", now()),
        stale: Some(sign(secret, now() - 600)),
        body: body.clone(),
        content_type: "application/json",
        url_signed: None,
    }
}

fn slack_case() -> SchemeCase {
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let body = format!(r#"{{"type":"event_callback","event_id":"Ev{}"}}"#, now()).into_bytes();
    let sign = |key: &str, ts: i64| {
        let mut message = format!("v0:{ts}:").into_bytes();
        message.extend_from_slice(&body);
        vec![
            (
                "x-slack-signature".to_string(),
                format!("v0={}", hex::encode(hmac256(key.as_bytes(), &message))),
            ),
            ("x-slack-request-timestamp".to_string(), ts.to_string()),
        ]
    };
    SchemeCase {
        verification: json!({"scheme": "slack", "secret": secret}),
        good: sign(secret, now()),
        wrong: sign("wrong", now()),
        stale: Some(sign(secret, now() - 600)),
        body: body.clone(),
        content_type: "application/json",
        url_signed: None,
    }
}

fn meta_case() -> SchemeCase {
    let secret = "meta-app-secret";
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#.to_vec();
    let sign = |key: &str| {
        vec![(
            "x-hub-signature-256".to_string(),
            format!("sha256={}", hex::encode(hmac256(key.as_bytes(), &body))),
        )]
    };
    SchemeCase {
        verification: json!({"scheme": "meta", "secret": secret, "verifyToken": "meta-verify"}),
        good: sign(secret),
        wrong: sign("wrong"),
        stale: None,
        body: body.clone(),
        content_type: "application/json",
        url_signed: None,
    }
}

fn shopify_case() -> SchemeCase {
    let secret = "shpss_secret";
    let body = br#"{"id":820982911946154508,"email":"jon@example.com"}"#.to_vec();
    let sign = |key: &str| {
        vec![
            (
                "x-shopify-hmac-sha256".to_string(),
                BASE64.encode(hmac256(key.as_bytes(), &body)),
            ),
            ("x-shopify-webhook-id".to_string(), uuid()),
        ]
    };
    SchemeCase {
        verification: json!({"scheme": "shopify", "secret": secret}),
        good: sign(secret),
        wrong: sign("wrong"),
        stale: None,
        body: body.clone(),
        content_type: "application/json",
        url_signed: None,
    }
}

fn twilio_headers(url: &str, body: &[u8], good: bool, _ts: i64) -> Vec<(String, String)> {
    let key: &[u8] = if good { b"twilio-auth-token" } else { b"wrong" };
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let mut message = url.to_string();
    for (k, v) in params {
        message.push_str(&k);
        message.push_str(&v);
    }
    vec![(
        "x-twilio-signature".to_string(),
        BASE64.encode(hmac1(key, message.as_bytes())),
    )]
}

fn twilio_case() -> SchemeCase {
    SchemeCase {
        verification: json!({"scheme": "twilio", "secret": "twilio-auth-token"}),
        body: format!(
            "MessageSid=SM{}&From=%2B15551234567&Body=%D7%A9%D7%9C%D7%95%D7%9D",
            now()
        )
        .into_bytes(),
        content_type: "application/x-www-form-urlencoded",
        good: Vec::new(),
        wrong: Vec::new(),
        stale: None,
        url_signed: Some(twilio_headers),
    }
}

fn hubspot_headers(url: &str, body: &[u8], good: bool, ts: i64) -> Vec<(String, String)> {
    let key: &[u8] = if good {
        b"hubspot-client-secret"
    } else {
        b"wrong"
    };
    let mut message = format!("POST{url}").into_bytes();
    message.extend_from_slice(body);
    message.extend_from_slice(ts.to_string().as_bytes());
    vec![
        (
            "x-hubspot-signature-v3".to_string(),
            BASE64.encode(hmac256(key, &message)),
        ),
        ("x-hubspot-request-timestamp".to_string(), ts.to_string()),
    ]
}

fn hubspot_case() -> SchemeCase {
    SchemeCase {
        verification: json!({"scheme": "hubspot_v3", "secret": "hubspot-client-secret"}),
        body: br#"[{"eventId":1,"subscriptionType":"contact.creation"}]"#.to_vec(),
        content_type: "application/json",
        good: Vec::new(),
        wrong: Vec::new(),
        stale: None,
        url_signed: Some(hubspot_headers),
    }
}

fn hmac_case() -> SchemeCase {
    let secret = "shared-hmac-secret";
    let body = br#"{"kind":"order.paid"}"#.to_vec();
    let sign = |key: &str, prefix: &str| {
        vec![(
            "x-signature".to_string(),
            format!("{prefix}{}", hex::encode(hmac256(key.as_bytes(), &body))),
        )]
    };
    SchemeCase {
        verification: json!({"scheme": "hmac_sha256", "secret": secret, "signatureHeader": "X-Signature"}),
        good: sign(secret, "sha256="),
        wrong: sign("wrong", ""),
        stale: None,
        body: body.clone(),
        content_type: "application/json",
        url_signed: None,
    }
}

fn google_case() -> SchemeCase {
    let token = "google-channel-token";
    let headers = |value: &str| {
        vec![
            ("x-goog-channel-token".to_string(), value.to_string()),
            ("x-goog-channel-id".to_string(), "channel-1".to_string()),
            ("x-goog-message-number".to_string(), now().to_string()),
            ("x-goog-resource-state".to_string(), "exists".to_string()),
        ]
    };
    SchemeCase {
        verification: json!({"scheme": "google_channel", "secret": token}),
        good: headers(token),
        wrong: headers("wrong"),
        stale: None,
        body: Vec::new(),
        content_type: "application/json",
        url_signed: None,
    }
}

/// SendGrid signs with ECDSA P-256: a key pair and the signature come from Python's
/// `cryptography` (a moto dependency), so the verifier is checked against an independent signer.
fn sendgrid_material(payload: &[u8], ts: i64) -> (String, String, String) {
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
        .args(["-c", script, &BASE64.encode(payload), &ts.to_string()])
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

fn sendgrid_case() -> SchemeCase {
    let body = br#"[{"email":"a@example.com","event":"delivered","sg_event_id":"e1"}]"#.to_vec();
    let ts = now();
    let (public_key, good, other) = sendgrid_material(&body, ts);
    let headers = |signature: &str| {
        vec![
            (
                "x-twilio-email-event-webhook-signature".to_string(),
                signature.to_string(),
            ),
            (
                "x-twilio-email-event-webhook-timestamp".to_string(),
                ts.to_string(),
            ),
        ]
    };
    SchemeCase {
        verification: json!({"scheme": "sendgrid", "publicKey": public_key}),
        good: headers(&good),
        wrong: headers(&other),
        stale: None,
        body,
        content_type: "application/json",
        url_signed: None,
    }
}

fn without_signature(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            !(name.contains("signature") || name.contains("hmac") || name.contains("token"))
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn every_scheme_accepts_its_signature_and_refuses_wrong_missing_and_stale_ones() {
    let scene = Scene::new().await;
    let cases = [
        ("github", github_case()),
        ("stripe", stripe_case()),
        ("slack", slack_case()),
        ("meta", meta_case()),
        ("shopify", shopify_case()),
        ("twilio", twilio_case()),
        ("hubspot_v3", hubspot_case()),
        ("hmac_sha256", hmac_case()),
        ("google_channel", google_case()),
        ("sendgrid", sendgrid_case()),
    ];
    for (name, case) in cases {
        let webhook = scene
            .create(json!({"name": format!("{name} receiver"), "verification": case.verification}))
            .await;
        let path = scene.path(&webhook);
        let (good, wrong, stale) = match case.url_signed {
            Some(sign) => {
                let url = format!("{}{path}", scene.app.url);
                (
                    sign(&url, &case.body, true, now() * 1000),
                    sign(&url, &case.body, false, now() * 1000),
                    (name == "hubspot_v3")
                        .then(|| sign(&url, &case.body, true, (now() - 600) * 1000)),
                )
            }
            None => (case.good.clone(), case.wrong.clone(), case.stale.clone()),
        };
        let accepted = scene
            .post(&path, &good, case.content_type, &case.body)
            .await;
        assert_eq!(accepted.status, 202, "{name}: {}", accepted.text);
        assert_eq!(accepted.json()["received"], true, "{name}");
        assert!(accepted.json()["id"]
            .as_str()
            .expect("id")
            .starts_with("evt_"));
        let refused = scene
            .post(&path, &wrong, case.content_type, &case.body)
            .await;
        assert_eq!(refused.status, 401, "{name} wrong: {}", refused.text);
        assert_eq!(refused.json()["code"], "invalid_signature", "{name}");
        let missing = scene
            .post(
                &path,
                &without_signature(&good),
                case.content_type,
                &case.body,
            )
            .await;
        assert_eq!(missing.status, 401, "{name} missing: {}", missing.text);
        let mut tampered = case.body.clone();
        tampered.extend_from_slice(b" ");
        if name != "google_channel" {
            let changed = scene.post(&path, &good, case.content_type, &tampered).await;
            assert_eq!(changed.status, 401, "{name} tampered: {}", changed.text);
        }
        if let Some(stale) = stale {
            let old = scene
                .post(&path, &stale, case.content_type, &case.body)
                .await;
            assert_eq!(old.status, 401, "{name} stale: {}", old.text);
        }
    }
}

#[tokio::test]
async fn standard_webhooks_verify_dedupe_filter_and_answer_404_410_413() {
    let scene = Scene::new().await;
    let webhook = scene
        .create(
            json!({"name": "Standard", "verification": {"scheme": "standard"},
            "filters": {"bodyPath": "type", "bodyValue": "invoice.paid"}}),
        )
        .await;
    let secret = webhook["secret"]
        .as_str()
        .expect("generated secret shown once");
    let path = scene.path(&webhook);
    let body = br#"{"type":"invoice.paid","amount":5}"#;
    let id = format!("msg_{}", uuid());
    let headers = standard_headers(secret, &id, now(), body);

    let first = scene.post(&path, &headers, "application/json", body).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let repeat = scene.post(&path, &headers, "application/json", body).await;
    assert_eq!(repeat.status, 200, "{}", repeat.text);
    assert_eq!(repeat.json(), json!({"duplicate": true}));

    // Several signatures: one of another key, then the right one.
    let other = hub_shared::webhooks::sign::generate_secret();
    let id2 = format!("msg_{}", uuid());
    let mut several = standard_headers(secret, &id2, now(), body);
    let wrong = standard_headers(other.expose(), &id2, now(), body);
    several[2].1 = format!("{} {}", wrong[2].1, several[2].1);
    assert_eq!(
        scene
            .post(&path, &several, "application/json", body)
            .await
            .status,
        202
    );

    let stale = standard_headers(secret, &format!("msg_{}", uuid()), now() - 301, body);
    assert_eq!(
        scene
            .post(&path, &stale, "application/json", body)
            .await
            .status,
        401
    );

    let other_type = br#"{"type":"invoice.created"}"#;
    let filtered = standard_headers(secret, &format!("msg_{}", uuid()), now(), other_type);
    let ignored = scene
        .post(&path, &filtered, "application/json", other_type)
        .await;
    assert_eq!(ignored.status, 200, "{}", ignored.text);
    assert_eq!(ignored.json(), json!({"ignored": true}));

    let unknown_webhook = format!(
        "/api/webhooks/tenant/{TENANT}/{}",
        hub_shared::domain::IncomingWebhookId::generate()
    );
    let unknown_tenant = path.replace(TENANT, "no-such-tenant");
    let a = scene
        .post(&unknown_webhook, &headers, "application/json", body)
        .await;
    let b = scene
        .post(&unknown_tenant, &headers, "application/json", body)
        .await;
    let c = scene
        .post(
            "/api/webhooks/tenant/x/not-an-id",
            &headers,
            "application/json",
            body,
        )
        .await;
    assert_eq!((a.status, b.status, c.status), (404, 404, 404));
    assert_eq!(a.json()["detail"], b.json()["detail"]);
    assert_eq!(a.json()["detail"], c.json()["detail"]);

    let big = vec![b'a'; 1024 * 1024 + 1];
    let big_headers = standard_headers(secret, &format!("msg_{}", uuid()), now(), &big);
    let too_large = scene
        .post(&path, &big_headers, "application/json", &big)
        .await;
    assert_eq!(too_large.status, 413, "{}", too_large.text);
    assert_eq!(too_large.json()["code"], "payload_too_large");

    let disabled = scene
        .create(json!({"name": "Off", "isEnabled": false, "verification": {"scheme": "standard"}}))
        .await;
    let off = scene
        .post(&scene.path(&disabled), &headers, "application/json", body)
        .await;
    assert_eq!(off.status, 410, "{}", off.text);

    // The receipts: the rejected (stale) one and the ignored one are logged at once.
    let logs = scene
        .app
        .get(
            TENANT,
            &format!("/api/webhooks/{}/logs", webhook["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(logs.status, 200, "{}", logs.text);
    let statuses: Vec<String> = logs.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["status"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(statuses.contains(&"rejected".to_string()), "{statuses:?}");
    assert!(statuses.contains(&"ignored".to_string()), "{statuses:?}");
}

#[tokio::test]
async fn handshakes_are_answered() {
    let scene = Scene::new().await;
    let meta = scene
        .create(json!({"name": "WhatsApp", "verification": {"scheme": "meta", "secret": "s", "verifyToken": "tok-1"}}))
        .await;
    let path = scene.path(&meta);
    let ok = scene
        .get_public(&format!(
            "{path}?hub.mode=subscribe&hub.verify_token=tok-1&hub.challenge=1158201444"
        ))
        .await;
    assert_eq!((ok.status, ok.text.as_str()), (200, "1158201444"));
    let wrong = scene
        .get_public(&format!(
            "{path}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
        ))
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    let no_token = scene
        .create(json!({"name": "No token", "verification": {"scheme": "meta", "secret": "s"}}))
        .await;
    let refused = scene
        .get_public(&format!(
            "{}?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
            scene.path(&no_token)
        ))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);

    let slack = scene
        .create(
            json!({"name": "Slack", "verification": {"scheme": "slack", "secret": "slack-secret"},
            "actions": [{"type": "trigger_automation", "config": {"automationId": "never"}}]}),
        )
        .await;
    let body = br#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let ts = now();
    let mut message = format!("v0:{ts}:").into_bytes();
    message.extend_from_slice(body);
    let headers = vec![
        (
            "x-slack-signature".to_string(),
            format!("v0={}", hex::encode(hmac256(b"slack-secret", &message))),
        ),
        ("x-slack-request-timestamp".to_string(), ts.to_string()),
    ];
    let answered = scene
        .post(&scene.path(&slack), &headers, "application/json", body)
        .await;
    assert_eq!(answered.status, 200, "{}", answered.text);
    assert_eq!(
        answered.json(),
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    assert!(answered
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));

    let google = scene
        .create(json!({"name": "Calendar", "verification": {"scheme": "google_channel"}}))
        .await;
    let token = google["secret"].as_str().expect("generated channel token");
    let sync = vec![
        ("x-goog-channel-token".to_string(), token.to_string()),
        ("x-goog-channel-id".to_string(), "ch-1".to_string()),
        ("x-goog-message-number".to_string(), "1".to_string()),
        ("x-goog-resource-state".to_string(), "sync".to_string()),
    ];
    let acknowledged = scene
        .post(&scene.path(&google), &sync, "application/json", b"")
        .await;
    assert_eq!(acknowledged.status, 200, "{}", acknowledged.text);

    let standard = scene
        .create(json!({"name": "No GET", "verification": {"scheme": "standard"}}))
        .await;
    let not_meta = scene.get_public(&scene.path(&standard)).await;
    assert_eq!(not_meta.status, 405, "{}", not_meta.text);
}

/// Signed forwards, records and `automation.triggered`, each observable from outside.
#[tokio::test]
async fn actions_store_a_record_forward_the_raw_body_trigger_an_automation_and_queue_a_sync() {
    let scene = Scene::new().await;
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&target)
        .await;
    let automation_sink = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&automation_sink)
        .await;
    let outgoing = scene
        .app
        .post_json(
            TENANT,
            "/api/webhooks/outgoing",
            &json!({"name": "Automations", "url": format!("{}/auto", automation_sink.uri()),
                "triggers": [{"entityType": "automation", "events": ["triggered"]}]}),
        )
        .await;
    assert_eq!(outgoing.status, 201, "{}", outgoing.text);
    let integration = scene
        .app
        .create_integration(
            TENANT,
            &json!({"provider": "custom_webhook", "name": "Payments", "credentials": {}}),
        )
        .await;
    let integration_id = integration["id"].as_str().expect("id");
    let webhook = scene
        .create(json!({
            "name": "Stripe payments", "integrationId": integration_id,
            "verification": {"scheme": "stripe", "secret": "whsec_actions"},
            "actions": [
                {"type": "create_entity", "config": {"entityType": "payment", "idPath": "data.object.id",
                  "fieldMappings": {"amount": "data.object.amount_paid", "note": "data.object.note"}}},
                {"type": "forward", "config": {"forwardUrl": format!("{}/hooks", target.uri()),
                  "forwardHeaders": {"X-Tenant-Route": "payments"}}},
                {"type": "trigger_automation", "config": {"automationId": "auto_42"}},
                {"type": "trigger_sync", "config": {"entities": ["payment"]}}
            ]}))
        .await;
    let forward_secret = webhook["forwardSecret"]
        .as_str()
        .expect("forwardSecret shown once")
        .to_string();
    let body = br#"{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1","amount_paid":4200,"note":"\u05e9\u05dc\u05d5\u05dd \ud83d\udcb3"}}}"#;
    let t = now();
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    let headers = vec![(
        "stripe-signature".to_string(),
        format!(
            "t={t},v1={}",
            hex::encode(hmac256(b"whsec_actions", &message))
        ),
    )];
    let accepted = scene
        .post(&scene.path(&webhook), &headers, "application/json", body)
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let event_id = accepted.json()["id"].as_str().expect("id").to_string();

    let records = format!("/api/integrations/{integration_id}/records/payment");
    eventually("the record", || async {
        let reply = scene.app.get(TENANT, &records).await;
        reply.status == 200
            && reply.json()["items"]
                .as_array()
                .is_some_and(|i| !i.is_empty())
    })
    .await;
    let listed = scene.app.get(TENANT, &records).await.json();
    assert_eq!(listed["items"][0]["id"], "in_1");
    assert_eq!(listed["items"][0]["data"]["amount"], 4200);
    assert_eq!(listed["items"][0]["data"]["note"], "שלום 💳");

    eventually("the forward", || async {
        !target
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    let forwarded = target.received_requests().await.expect("recorded");
    assert_eq!(forwarded.len(), 1);
    let request = &forwarded[0];
    assert_eq!(request.body, body.to_vec(), "the raw body, byte-exact");
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("x-tenant-route"), "payments");
    assert_eq!(header("webhook-id"), event_id);
    let verdicts = hub_tests::verify_in_python(&[json!({
        "scheme": "standard", "secret": forward_secret,
        "headers": {"webhook-id": header("webhook-id"), "webhook-timestamp": header("webhook-timestamp"),
                    "webhook-signature": header("webhook-signature")},
        "body": String::from_utf8(body.to_vec()).expect("utf-8"),
    })]);
    assert_eq!(
        verdicts,
        vec![json!(true)],
        "standardwebhooks verifies the forward"
    );

    eventually("automation.triggered", || async {
        automation_sink
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .any(|r| {
                serde_json::from_slice::<Value>(&r.body)
                    .is_ok_and(|v| v["type"] == "automation.triggered")
            })
    })
    .await;
    let deliveries = automation_sink.received_requests().await.expect("recorded");
    let triggered: Value = deliveries
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .find(|v| v["type"] == "automation.triggered")
        .expect("delivered");
    assert_eq!(triggered["data"]["automationId"], "auto_42");
    assert_eq!(triggered["data"]["eventId"], event_id.as_str());
    assert_eq!(triggered["data"]["payload"]["data"]["object"]["id"], "in_1");

    // trigger_sync queued a sync job for the webhook's integration, and the sync runner ran it
    // (custom_webhook imports no entity: a run with nothing to read, logged with its job id).
    let sync_logs = format!("/api/integrations/{integration_id}/logs?action=sync");
    eventually("the triggered sync's log", || async {
        scene.app.get(TENANT, &sync_logs).await.json()["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
    })
    .await;
    let sync_log = scene.app.get(TENANT, &sync_logs).await.json()["items"][0].clone();
    assert_eq!(sync_log["status"], "success", "{sync_log}");
    assert!(sync_log["jobId"]
        .as_str()
        .is_some_and(|id| id.starts_with("job_")));
    assert_eq!(sync_log["summary"]["total"], 0);

    // A duplicate runs nothing again; the webhook counts one receipt.
    let repeat = scene
        .post(&scene.path(&webhook), &headers, "application/json", body)
        .await;
    assert_eq!(repeat.json(), json!({"duplicate": true}));
    let path = format!(
        "/api/webhooks/incoming/{}",
        webhook["id"].as_str().expect("id")
    );
    eventually("the stats", || async {
        scene.app.get(TENANT, &path).await.json()["totalReceived"] == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(target.received_requests().await.expect("recorded").len(), 1);
    let logs = scene
        .app
        .get(
            TENANT,
            &format!("/api/webhooks/{}/logs", webhook["id"].as_str().expect("id")),
        )
        .await
        .json();
    let processed: Vec<&Value> = logs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["status"] == "processed")
        .collect();
    assert_eq!(processed.len(), 1, "{logs}");
}

/// 600 KiB of random bytes: over the 256 KiB gzipped limit, so it rides in the payloads bucket,
/// and arrives at the forward target byte-exact.
#[tokio::test]
async fn a_large_incompressible_body_is_accepted_and_forwarded_byte_exact() {
    let scene = Scene::new().await;
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&target)
        .await;
    let webhook = scene
        .create(json!({"name": "Big", "verification": {"scheme": "hmac_sha256", "secret": "big-secret"},
            "actions": [{"type": "forward", "config": {"forwardUrl": format!("{}/big", target.uri())}}]}))
        .await;
    let mut body = vec![0u8; 600 * 1024];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut body);
    let headers = vec![(
        "x-webhook-signature".to_string(),
        hex::encode(hmac256(b"big-secret", &body)),
    )];
    let accepted = scene
        .post(
            &scene.path(&webhook),
            &headers,
            "application/octet-stream",
            &body,
        )
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    eventually("the forward", || async {
        !target
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    let forwarded = target.received_requests().await.expect("recorded");
    assert_eq!(forwarded[0].body.len(), body.len());
    assert!(forwarded[0].body == body, "byte-exact");
    assert_eq!(
        forwarded[0]
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/octet-stream")
    );
    let claim_checked = scene.app.scan_table().await.into_iter().any(|item| {
        item.get("type")
            .and_then(|t| t.as_s().ok())
            .map(String::as_str)
            == Some("inbound_event")
            && item.contains_key("payloadKey")
    });
    assert!(claim_checked, "the event item holds the payload key");
}

/// The warm accept path makes exactly two AWS requests (one conditional PutItem, one SQS send) and
/// no KMS call, counted by a pass-through in front of moto.
#[tokio::test]
async fn a_warm_accept_makes_two_aws_requests_and_no_kms_call() {
    let counter = hub_local::aws_counter::AwsRequestCounter::start(hub_tests::moto_endpoint())
        .await
        .expect("counter");
    let names = hub_local::provision::StackNames::with_prefix(&hub_tests::unique_name("hub"));
    let mut options =
        hub_local::stack::StackOptions::new(names, "127.0.0.1:0".parse().expect("address"));
    options.start_workers = false;
    let sdk = hub_local::stack::local_sdk_config(counter.url());
    let stack = hub_local::stack::LocalStack::start(&sdk, options.clone())
        .await
        .expect("stack");
    let http = reqwest::Client::new();
    let token = hub_local::jwt::dev_token(
        options.jwt_secret.as_bytes(),
        &options.tenant_claim,
        TENANT,
        "user-1",
        &options.jwt_issuer,
        &options.jwt_audience,
        3600,
    );
    let created: Value = http
        .post(format!("{}/api/webhooks/incoming", stack.url))
        .bearer_auth(token)
        .json(
            &json!({"name": "Counted", "verification": {"scheme": "standard"},
            "actions": [{"type": "trigger_automation", "config": {"automationId": "a"}}]}),
        )
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let secret = created["secret"].as_str().expect("secret").to_string();
    let url = format!(
        "{}/api/webhooks/tenant/{TENANT}/{}",
        stack.url,
        created["id"].as_str().expect("id")
    );
    let send = |n: usize| {
        let body = format!(r#"{{"n":{n}}}"#).into_bytes();
        let headers = standard_headers(&secret, &format!("msg_{n}_{}", uuid()), now(), &body);
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    assert_eq!(send(0).await.expect("cold").status(), 202);
    let mut per_request: Vec<BTreeMap<String, usize>> = Vec::new();
    for n in 1..=5 {
        counter.reset();
        assert_eq!(send(n).await.expect("warm").status(), 202);
        per_request.push(counter.counts());
    }
    for counts in &per_request {
        let total: usize = counts.values().sum();
        assert_eq!(total, 2, "exactly two AWS requests: {counts:?}");
        assert_eq!(counts.get("dynamodb:PutItem"), Some(&1), "{counts:?}");
        assert_eq!(
            counts
                .get("sqs:SendMessage")
                .or(counts.get("sqs:SendMessageBatch")),
            Some(&1),
            "{counts:?}"
        );
        assert!(!counts.keys().any(|k| k.starts_with("kms:")), "{counts:?}");
    }
    stack.stop().await.expect("stops");
}

/// 2,000 signed webhooks at concurrency 32, one in ten a repeat of an earlier one: no 5xx, every
/// distinct event forwarded exactly once, every repeat answered as a duplicate.
#[tokio::test]
async fn under_load_every_distinct_event_is_processed_once_and_every_repeat_suppressed() {
    use futures_util::StreamExt;

    // A moto of its own: the shared one serves every other test at the same time, and moto slows
    // as it fills.
    let moto =
        hub_local::moto::Moto::start_on_free_port(&std::env::temp_dir().join("hub-load-moto"))
            .await
            .expect("moto_server starts");
    let scene = Scene {
        app: hub_tests::spawn_app_on(
            &hub_local::stack::local_sdk_config(moto.endpoint()),
            |options| {
                options.poll = hub_local::workers::PollOptions::default().wait_time_seconds(1)
            },
        )
        .await,
    };
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&target)
        .await;
    let webhook = scene
        .create(json!({"name": "Load", "verification": {"scheme": "standard"},
            "actions": [{"type": "forward", "config": {"forwardUrl": format!("{}/load", target.uri())}}]}))
        .await;
    let secret = webhook["secret"].as_str().expect("secret").to_string();
    let path = scene.path(&webhook);
    const TOTAL: usize = 2000;
    const DISTINCT: usize = 1800;
    // Repeats are sent after their originals were answered, as a provider retries: concurrent
    // identical requests would test moto's conditional writes, which are not atomic under load.
    let ids: Vec<String> = (0..DISTINCT)
        .map(|n| format!("msg_load_{n}_{}", uuid()))
        .collect();
    let send = |id: String| {
        let scene = &scene;
        let path = &path;
        let secret = &secret;
        async move {
            let body = format!(r#"{{"id":"{id}"}}"#).into_bytes();
            let headers = standard_headers(secret, &id, now(), &body);
            scene
                .post(path, &headers, "application/json", &body)
                .await
                .status
        }
    };
    let started = std::time::Instant::now();
    let first: Vec<u16> = futures_util::stream::iter(ids.iter().cloned().map(send))
        .buffer_unordered(32)
        .collect()
        .await;
    let repeats: Vec<u16> =
        futures_util::stream::iter(ids.iter().take(TOTAL - DISTINCT).cloned().map(send))
            .buffer_unordered(32)
            .collect()
            .await;
    assert!(
        first.iter().all(|s| *s == 202),
        "{:?}",
        count_statuses(&first)
    );
    assert!(
        repeats.iter().all(|s| *s == 200),
        "{:?}",
        count_statuses(&repeats)
    );
    // Processing 1,800 events through one moto takes minutes on 2 cores; ten are allowed.
    for _ in 0..2400 {
        if target.received_requests().await.unwrap_or_default().len() >= DISTINCT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("processed in {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = target.received_requests().await.expect("recorded");
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for request in &received {
        let body: Value = serde_json::from_slice(&request.body).expect("json");
        *per_id
            .entry(body["id"].as_str().expect("id").to_string())
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), DISTINCT, "every distinct event forwarded");
    assert!(per_id.values().all(|n| *n == 1), "each exactly once");
}

fn count_statuses(statuses: &[u16]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for status in statuses {
        *counts.entry(*status).or_default() += 1;
    }
    counts
}

#[test]
fn the_test_signers_match_the_published_github_vector() {
    // docs.github.com "Validating webhook deliveries": the documented secret, body and signature.
    let signature = hex::encode(hmac256(b"It's a Secret to Everybody", b"Hello, World!"));
    assert_eq!(
        signature,
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    let digest = hex::encode(Sha256::digest(b""));
    assert_eq!(digest.len(), 64);
}
