//! B2 (docs/benchmarks.md): CPU per `hub_shared::webhooks::inbound::verify` of each scheme on a
//! correctly signed request with a 1 KiB and a 64 KiB body, beside its baseline: the raw primitive
//! over exactly the bytes the scheme signs, already concatenated (HMAC-SHA256 with `hmac`, or
//! HMAC-SHA1 for `twilio`, and a constant-time tag check; ECDSA P-256 verify for `sendgrid`;
//! HMAC-SHA256 over the token for `google_channel`, which checks a token and signs nothing; none
//! for `none`). Each request is signed by computing the baseline's tag, so the baseline is also
//! the sender.
//!
//! `cargo bench -p hub-bench --bench verify -- --noplot`; `hub-bench --b2` runs it and reads the
//! medians from `target/criterion`.

#[path = "../src/b2_ids.rs"]
mod b2_ids;

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, ParsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use hub_shared::webhooks::inbound::{
    parse_sendgrid_public_key, verify, InboundScheme, ReceivedRequest, VerifyKeys,
};
use sha1::Sha1;
use sha2::Sha256;
use zeroize::Zeroizing;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const URL: &str = "https://hub.example.com/api/webhooks/tenant/t_1/wh_1";
const NOW: i64 = 1_700_000_000;

/// The irreducible work of one scheme: its primitive over the signed bytes.
enum Baseline {
    HmacSha256 {
        key: Vec<u8>,
        message: Vec<u8>,
        tag: Vec<u8>,
    },
    HmacSha1 {
        key: Vec<u8>,
        message: Vec<u8>,
        tag: Vec<u8>,
    },
    Ecdsa {
        key: ParsedPublicKey,
        message: Vec<u8>,
        signature: Vec<u8>,
    },
    Nothing,
}

impl Baseline {
    fn hmac_sha256(key: &[u8], message: Vec<u8>) -> Baseline {
        let tag = hmac_tag::<Hmac<Sha256>>(key, &message);
        Baseline::HmacSha256 {
            key: key.to_vec(),
            message,
            tag,
        }
    }

    fn hmac_sha1(key: &[u8], message: Vec<u8>) -> Baseline {
        let tag = hmac_tag::<Hmac<Sha1>>(key, &message);
        Baseline::HmacSha1 {
            key: key.to_vec(),
            message,
            tag,
        }
    }

    /// The tag (or signature) a sender puts in the request.
    fn tag(&self) -> &[u8] {
        match self {
            Baseline::HmacSha256 { tag, .. } | Baseline::HmacSha1 { tag, .. } => tag,
            Baseline::Ecdsa { signature, .. } => signature,
            Baseline::Nothing => &[],
        }
    }

    fn run(&self) -> bool {
        match self {
            Baseline::HmacSha256 { key, message, tag } => {
                hmac_verifies::<Hmac<Sha256>>(key, message, tag)
            }
            Baseline::HmacSha1 { key, message, tag } => {
                hmac_verifies::<Hmac<Sha1>>(key, message, tag)
            }
            Baseline::Ecdsa {
                key,
                message,
                signature,
            } => key.verify_sig(message, signature).is_ok(),
            Baseline::Nothing => true,
        }
    }
}

fn hmac_tag<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_verifies<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.verify_slice(tag).is_ok()
}

/// One scheme's signed request, its receiver's keys and its baseline.
struct Case {
    scheme: InboundScheme,
    headers: HeaderMap,
    body: Vec<u8>,
    url: String,
    keys: VerifyKeys,
    baseline: Baseline,
}

impl Case {
    fn request(&self) -> ReceivedRequest<'_> {
        ReceivedRequest {
            method: "POST",
            url: &self.url,
            headers: &self.headers,
            body: &self.body,
            now: NOW,
        }
    }

    fn verify(&self) -> bool {
        verify(self.scheme, None, &self.keys, &self.request()).is_ok()
    }
}

/// A JSON body of exactly `size` bytes.
fn json_body(size: usize) -> Vec<u8> {
    let head = br#"{"id":"evt_1","type":"thing.updated","data":""#;
    let tail = br#""}"#;
    let mut body = head.to_vec();
    body.resize(size - tail.len(), b'x');
    body.extend_from_slice(tail);
    body
}

/// A Twilio SMS webhook body of exactly `size` bytes (the message text pads it) and its
/// parameters, decoded and sorted by name as Twilio signs them.
fn twilio_form(size: usize) -> (Vec<u8>, Vec<(String, String)>) {
    let fixed = [
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("ApiVersion", "2010-04-01"),
        ("From", "+15551234567"),
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("NumMedia", "0"),
        ("To", "+15557654321"),
    ];
    let encoded: Vec<String> = fixed
        .iter()
        .map(|(name, value)| format!("{name}={}", value.replace('+', "%2B")))
        .collect();
    let mut body = format!("{}&Body=", encoded.join("&"));
    let text = "x".repeat(size - body.len());
    body.push_str(&text);
    let mut params: Vec<(String, String)> = fixed
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .chain([("Body".to_string(), text)])
        .collect();
    params.sort();
    (body.into_bytes(), params)
}

fn header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    headers.insert(
        HeaderName::from_static(name),
        HeaderValue::from_str(value).expect("a header value"),
    );
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn case(scheme: InboundScheme, size: usize, sendgrid: &EcdsaKeyPair) -> Case {
    let mut headers = HeaderMap::new();
    let mut body = json_body(size);
    let secret = SECRET.as_bytes();
    let ts = NOW.to_string();
    let mut keys = VerifyKeys {
        secrets: vec![Zeroizing::new(SECRET.to_string())],
        public_key: None,
    };
    let baseline = match scheme {
        InboundScheme::Standard => {
            let key = STANDARD.decode(&SECRET[6..]).expect("base64");
            let baseline =
                Baseline::hmac_sha256(&key, concat(&[b"msg_1.", ts.as_bytes(), b".", &body]));
            header(&mut headers, "webhook-id", "msg_1");
            header(&mut headers, "webhook-timestamp", &ts);
            header(
                &mut headers,
                "webhook-signature",
                &format!("v1,{}", STANDARD.encode(baseline.tag())),
            );
            baseline
        }
        InboundScheme::HmacSha256 => {
            let baseline = Baseline::hmac_sha256(secret, body.clone());
            header(
                &mut headers,
                "x-webhook-signature",
                &hex::encode(baseline.tag()),
            );
            baseline
        }
        InboundScheme::Stripe => {
            let baseline = Baseline::hmac_sha256(secret, concat(&[ts.as_bytes(), b".", &body]));
            header(
                &mut headers,
                "stripe-signature",
                &format!("t={ts},v1={}", hex::encode(baseline.tag())),
            );
            baseline
        }
        InboundScheme::Github | InboundScheme::Meta => {
            let baseline = Baseline::hmac_sha256(secret, body.clone());
            header(
                &mut headers,
                "x-hub-signature-256",
                &format!("sha256={}", hex::encode(baseline.tag())),
            );
            baseline
        }
        InboundScheme::Slack => {
            let baseline =
                Baseline::hmac_sha256(secret, concat(&[b"v0:", ts.as_bytes(), b":", &body]));
            header(&mut headers, "x-slack-request-timestamp", &ts);
            header(
                &mut headers,
                "x-slack-signature",
                &format!("v0={}", hex::encode(baseline.tag())),
            );
            baseline
        }
        InboundScheme::Twilio => {
            let (form, params) = twilio_form(size);
            body = form;
            let mut message = URL.as_bytes().to_vec();
            for (name, value) in &params {
                message.extend_from_slice(name.as_bytes());
                message.extend_from_slice(value.as_bytes());
            }
            let baseline = Baseline::hmac_sha1(secret, message);
            header(
                &mut headers,
                "content-type",
                "application/x-www-form-urlencoded",
            );
            header(
                &mut headers,
                "x-twilio-signature",
                &STANDARD.encode(baseline.tag()),
            );
            baseline
        }
        InboundScheme::Shopify => {
            let baseline = Baseline::hmac_sha256(secret, body.clone());
            header(
                &mut headers,
                "x-shopify-hmac-sha256",
                &STANDARD.encode(baseline.tag()),
            );
            baseline
        }
        InboundScheme::HubspotV3 => {
            let ts_ms = (NOW * 1000).to_string();
            let baseline = Baseline::hmac_sha256(
                secret,
                concat(&[b"POST", URL.as_bytes(), &body, ts_ms.as_bytes()]),
            );
            header(&mut headers, "x-hubspot-request-timestamp", &ts_ms);
            header(
                &mut headers,
                "x-hubspot-signature-v3",
                &STANDARD.encode(baseline.tag()),
            );
            baseline
        }
        InboundScheme::Sendgrid => {
            let message = concat(&[ts.as_bytes(), &body]);
            let signature = sendgrid
                .sign(&SystemRandom::new(), &message)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec();
            let der = sendgrid.public_key().as_der().expect("a DER public key");
            keys.public_key = Some(
                parse_sendgrid_public_key(&STANDARD.encode(der.as_ref())).expect("a P-256 key"),
            );
            let key =
                ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, der.as_ref()).expect("a P-256 key");
            header(&mut headers, "x-twilio-email-event-webhook-timestamp", &ts);
            header(
                &mut headers,
                "x-twilio-email-event-webhook-signature",
                &STANDARD.encode(&signature),
            );
            Baseline::Ecdsa {
                key,
                message,
                signature,
            }
        }
        InboundScheme::GoogleChannel => {
            header(&mut headers, "x-goog-channel-token", SECRET);
            Baseline::hmac_sha256(secret, SECRET.as_bytes().to_vec())
        }
        InboundScheme::None => Baseline::Nothing,
    };
    let case = Case {
        scheme,
        headers,
        body,
        url: URL.to_string(),
        keys,
        baseline,
    };
    assert!(
        case.verify(),
        "{scheme:?} {size}: the signed request must verify"
    );
    assert!(
        case.baseline.run(),
        "{scheme:?} {size}: the baseline must verify"
    );
    case
}

fn b2(c: &mut Criterion) {
    let sendgrid =
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("a P-256 key pair");
    for scheme in InboundScheme::ALL {
        let mut group = c.benchmark_group(b2_ids::group(scheme));
        for size in b2_ids::BODY_SIZES {
            let case = case(scheme, size, &sendgrid);
            group.bench_with_input(BenchmarkId::new(b2_ids::VERIFY, size), &case, |b, case| {
                b.iter(|| black_box(black_box(case).verify()))
            });
            if !matches!(case.baseline, Baseline::Nothing) {
                group.bench_with_input(
                    BenchmarkId::new(b2_ids::BASELINE, size),
                    &case,
                    |b, case| b.iter(|| black_box(black_box(case).baseline.run())),
                );
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // About 70 s of measurement for the 46 benchmarks; 50 short samples each, so that some escape
    // the preemption of a shared machine (the fastest sample is reported beside the median).
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50);
    targets = b2
}
criterion_main!(benches);
