//! What every scheme must do, checked against a sender written from each provider's documented
//! recipe; the published vectors are in each scheme's own module.

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha1::Sha1;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::*;
use crate::webhooks::sign::{Signing, SigningKeys};

/// A request a test owns; [`TestRequest::received`] lends it out as the receiver sees it.
#[derive(Debug, Clone)]
pub(super) struct TestRequest {
    pub method: String,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub now: i64,
}

pub(super) const NOW: i64 = 1_700_000_000;

impl TestRequest {
    pub fn new(body: &[u8]) -> TestRequest {
        TestRequest {
            method: "POST".into(),
            url: "https://hub.example.com/api/webhooks/tenant/t1/wh1".into(),
            headers: HeaderMap::new(),
            body: body.to_vec(),
            now: NOW,
        }
    }

    /// Appends a header (a name given twice gets two lines).
    pub fn header(self, name: &str, value: &str) -> TestRequest {
        self.raw_header(name, value.as_bytes())
    }

    pub fn raw_header(mut self, name: &str, value: &[u8]) -> TestRequest {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_bytes(value).expect("a header value"),
        );
        self
    }

    pub fn without(mut self, name: &HeaderName) -> TestRequest {
        self.headers.remove(name);
        self
    }

    pub fn url(mut self, url: &str) -> TestRequest {
        self.url = url.into();
        self
    }

    pub fn method(mut self, method: &str) -> TestRequest {
        self.method = method.into();
        self
    }

    pub fn at(mut self, now: i64) -> TestRequest {
        self.now = now;
        self
    }

    pub fn body(mut self, body: &[u8]) -> TestRequest {
        self.body = body.to_vec();
        self
    }

    pub fn received(&self) -> ReceivedRequest<'_> {
        ReceivedRequest {
            method: &self.method,
            url: &self.url,
            headers: &self.headers,
            body: &self.body,
            now: self.now,
        }
    }
}

pub(super) fn keys(secrets: &[&str]) -> VerifyKeys {
    VerifyKeys {
        secrets: secrets
            .iter()
            .map(|secret| Zeroizing::new(secret.to_string()))
            .collect(),
        public_key: None,
    }
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// A form body, so that `twilio` signs its parameters; the other schemes read it as bytes.
const BODY: &[u8] = b"MessageSid=SM1&Body=Hello+there&id=evt_1";
const CHANGED_BODY: &[u8] = b"MessageSid=SM1&Body=Hello+there&id=evt_2";

/// The schemes with a secret (all but `sendgrid` and `none`).
fn secret_schemes() -> impl Iterator<Item = InboundScheme> {
    InboundScheme::ALL
        .into_iter()
        .filter(|scheme| !matches!(scheme, InboundScheme::Sendgrid | InboundScheme::None))
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    parts.iter().for_each(|part| mac.update(part));
    mac.finalize().into_bytes().to_vec()
}

struct SendgridSigner {
    pair: EcdsaKeyPair,
    public_key: SendgridKey,
}

/// Two SendGrid key pairs: the sender's, and another one.
fn sendgrid_signers() -> &'static [SendgridSigner; 2] {
    static SIGNERS: OnceLock<[SendgridSigner; 2]> = OnceLock::new();
    SIGNERS.get_or_init(|| {
        let signer = || {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
            let der = pair.public_key().as_der().unwrap();
            let public_key = parse_sendgrid_public_key(&STANDARD.encode(der.as_ref())).unwrap();
            SendgridSigner { pair, public_key }
        };
        [signer(), signer()]
    })
}

/// The keys a receiver of `scheme` holds when its secret (or SendGrid key pair, by index) is
/// `secret`.
fn receiver_keys(scheme: InboundScheme, secrets: &[&str]) -> VerifyKeys {
    let mut keys = keys(secrets);
    if scheme == InboundScheme::Sendgrid {
        let index = usize::from(secrets.first() == Some(&OTHER_SECRET));
        keys.public_key = Some(sendgrid_signers()[index].public_key.clone());
    }
    keys
}

/// What a provider sends under `scheme`: `body` signed with `secret` at `sent_at`, following the
/// provider's documented recipe (written independently of the verifiers), received at [`NOW`].
fn signed(scheme: InboundScheme, secret: &str, body: &[u8], sent_at: i64) -> TestRequest {
    let request = TestRequest::new(body);
    let now = sent_at;
    let key = secret.as_bytes();
    match scheme {
        InboundScheme::Standard => {
            let keys = SigningKeys::new(WebhookSecret::parse(secret).unwrap());
            let headers = Signing::Standard.sign(&keys, "msg_1", now, body).unwrap();
            headers.into_iter().fold(request, |request, (name, value)| {
                request.raw_header(name.as_str(), value.as_bytes())
            })
        }
        InboundScheme::HmacSha256 => request.header(
            "X-Webhook-Signature",
            &hex::encode(hmac_sha256(key, &[body])),
        ),
        InboundScheme::Stripe => {
            let t = now.to_string();
            let v1 = hex::encode(hmac_sha256(key, &[t.as_bytes(), b".", body]));
            request.header("Stripe-Signature", &format!("t={t},v1={v1}"))
        }
        InboundScheme::Github | InboundScheme::Meta => request.header(
            "X-Hub-Signature-256",
            &format!("sha256={}", hex::encode(hmac_sha256(key, &[body]))),
        ),
        InboundScheme::Slack => {
            let ts = now.to_string();
            let v0 = hex::encode(hmac_sha256(key, &[b"v0:", ts.as_bytes(), b":", body]));
            request
                .header("X-Slack-Request-Timestamp", &ts)
                .header("X-Slack-Signature", &format!("v0={v0}"))
        }
        InboundScheme::Twilio => {
            let mut params: Vec<(String, String)> =
                url::form_urlencoded::parse(body).into_owned().collect();
            params.sort();
            let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap();
            mac.update(request.url.as_bytes());
            for (name, value) in &params {
                mac.update(name.as_bytes());
                mac.update(value.as_bytes());
            }
            let signature = STANDARD.encode(mac.finalize().into_bytes());
            request
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("X-Twilio-Signature", &signature)
        }
        InboundScheme::Shopify => request.header(
            "X-Shopify-Hmac-Sha256",
            &STANDARD.encode(hmac_sha256(key, &[body])),
        ),
        InboundScheme::HubspotV3 => {
            let ts = (now * 1000).to_string();
            let signature =
                hmac_sha256(key, &[b"POST", request.url.as_bytes(), body, ts.as_bytes()]);
            request
                .header("X-HubSpot-Request-Timestamp", &ts)
                .header("X-HubSpot-Signature-v3", &STANDARD.encode(signature))
        }
        InboundScheme::Sendgrid => {
            let index = usize::from(secret == OTHER_SECRET);
            let ts = now.to_string();
            let message = [ts.as_bytes(), body].concat();
            let signature = sendgrid_signers()[index]
                .pair
                .sign(&SystemRandom::new(), &message)
                .unwrap();
            request
                .header("X-Twilio-Email-Event-Webhook-Timestamp", &ts)
                .header(
                    "X-Twilio-Email-Event-Webhook-Signature",
                    &STANDARD.encode(signature.as_ref()),
                )
        }
        InboundScheme::GoogleChannel => request.header("X-Goog-Channel-Token", secret),
        InboundScheme::None => request,
    }
}

fn check(
    scheme: InboundScheme,
    secrets: &[&str],
    request: &TestRequest,
) -> Result<(), InboundVerifyError> {
    verify(
        scheme,
        None,
        &receiver_keys(scheme, secrets),
        &request.received(),
    )
}

#[test]
fn every_scheme_accepts_what_its_sender_signs() {
    for scheme in InboundScheme::ALL {
        assert_eq!(
            check(scheme, &[SECRET], &signed(scheme, SECRET, BODY, NOW)),
            Ok(()),
            "{scheme:?}"
        );
    }
}

#[test]
fn every_scheme_but_none_refuses_another_secret() {
    for scheme in InboundScheme::ALL
        .into_iter()
        .filter(|s| *s != InboundScheme::None)
    {
        let request = signed(scheme, OTHER_SECRET, BODY, NOW);
        let expected = match scheme {
            InboundScheme::GoogleChannel => InboundVerifyError::TokenMismatch,
            _ => InboundVerifyError::NoMatchingSignature,
        };
        assert_eq!(
            check(scheme, &[SECRET], &request),
            Err(expected),
            "{scheme:?}"
        );
    }
}

#[test]
fn every_signing_scheme_refuses_a_changed_body() {
    for scheme in InboundScheme::ALL {
        let request = signed(scheme, SECRET, BODY, NOW).body(CHANGED_BODY);
        let result = check(scheme, &[SECRET], &request);
        match scheme {
            // Neither binds the body: a channel token is no signature, `none` checks nothing.
            InboundScheme::GoogleChannel | InboundScheme::None => {
                assert_eq!(result, Ok(()), "{scheme:?}")
            }
            _ => assert_eq!(
                result,
                Err(InboundVerifyError::NoMatchingSignature),
                "{scheme:?}"
            ),
        }
    }
}

#[test]
fn every_scheme_refuses_a_request_missing_any_header_its_sender_sets() {
    for scheme in InboundScheme::ALL {
        let request = signed(scheme, SECRET, BODY, NOW);
        for name in request.headers.keys() {
            let stripped = request.clone().without(name);
            assert!(
                check(scheme, &[SECRET], &stripped).is_err(),
                "{scheme:?} without {name}"
            );
        }
        if scheme != InboundScheme::None {
            assert!(!request.headers.is_empty(), "{scheme:?}");
        }
    }
}

#[test]
fn timestamped_schemes_accept_five_minutes_either_way_and_refuse_beyond() {
    for scheme in InboundScheme::ALL.into_iter().filter(|s| s.has_timestamp()) {
        for sent in [NOW - 300, NOW + 300] {
            assert_eq!(
                check(scheme, &[SECRET], &signed(scheme, SECRET, BODY, sent)),
                Ok(()),
                "{scheme:?} sent at {sent}"
            );
        }
        for sent in [NOW - 301, NOW + 301, 0] {
            assert_eq!(
                check(scheme, &[SECRET], &signed(scheme, SECRET, BODY, sent)),
                Err(InboundVerifyError::TimestampOutOfTolerance),
                "{scheme:?} sent at {sent}"
            );
        }
    }
}

#[test]
fn sendgrid_signs_a_timestamp_but_its_age_is_not_checked() {
    let request = signed(InboundScheme::Sendgrid, SECRET, BODY, NOW - 86_400);
    assert_eq!(check(InboundScheme::Sendgrid, &[SECRET], &request), Ok(()));
    assert!(!InboundScheme::Sendgrid.has_timestamp());
}

#[test]
fn during_a_rotation_the_previous_secret_still_verifies() {
    for scheme in secret_schemes() {
        for sender in [SECRET, OTHER_SECRET] {
            assert_eq!(
                check(
                    scheme,
                    &[SECRET, OTHER_SECRET],
                    &signed(scheme, sender, BODY, NOW)
                ),
                Ok(()),
                "{scheme:?} signed with {sender}"
            );
        }
    }
}

#[test]
fn schemes_with_a_secret_refuse_everything_when_none_is_configured() {
    for scheme in secret_schemes() {
        assert_eq!(
            check(scheme, &[], &signed(scheme, SECRET, BODY, NOW)),
            Err(InboundVerifyError::MissingSecret),
            "{scheme:?}"
        );
    }
}

#[test]
fn standard_skips_secrets_that_are_not_whsec_secrets() {
    let request = signed(InboundScheme::Standard, SECRET, BODY, NOW);
    assert_eq!(
        check(InboundScheme::Standard, &["not-a-secret", SECRET], &request),
        Ok(())
    );
    assert_eq!(
        check(InboundScheme::Standard, &["not-a-secret"], &request),
        Err(InboundVerifyError::MissingSecret)
    );
}

#[test]
fn standard_and_stripe_accept_any_of_several_signatures() {
    let standard = signed(InboundScheme::Standard, SECRET, BODY, NOW);
    let signature = standard.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let several = standard
        .clone()
        .without(&HeaderName::from_static("webhook-signature"))
        .header(
            "webhook-signature",
            &format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {signature}"),
        );
    assert_eq!(check(InboundScheme::Standard, &[SECRET], &several), Ok(()));

    let stripe = signed(InboundScheme::Stripe, SECRET, BODY, NOW);
    let header = stripe.headers["stripe-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let (t, v1) = header.split_once(',').unwrap();
    let several = stripe
        .clone()
        .without(&HeaderName::from_static("stripe-signature"))
        .header(
            "Stripe-Signature",
            &format!("{t},v1={},{v1}", "ab".repeat(32)),
        );
    assert_eq!(check(InboundScheme::Stripe, &[SECRET], &several), Ok(()));
}

#[test]
fn none_accepts_anything() {
    assert_eq!(
        verify(
            InboundScheme::None,
            None,
            &VerifyKeys::default(),
            &TestRequest::new(b"anything").received()
        ),
        Ok(())
    );
}

#[test]
fn schemes_use_their_wire_names_and_as_str_agrees_with_serde() {
    let names: Vec<&str> = InboundScheme::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "standard",
            "hmac_sha256",
            "stripe",
            "github",
            "slack",
            "meta",
            "twilio",
            "shopify",
            "hubspot_v3",
            "sendgrid",
            "google_channel",
            "none"
        ]
    );
    for scheme in InboundScheme::ALL {
        assert_eq!(serde_json::to_value(scheme).unwrap(), scheme.as_str());
        assert_eq!(
            serde_json::from_value::<InboundScheme>(scheme.as_str().into()).unwrap(),
            scheme
        );
    }
}

#[test]
fn create_time_requirements_follow_the_spec_table() {
    let with = |predicate: fn(InboundScheme) -> bool| -> Vec<&str> {
        InboundScheme::ALL
            .into_iter()
            .filter(|s| predicate(*s))
            .map(InboundScheme::as_str)
            .collect()
    };
    assert_eq!(
        with(InboundScheme::generates_secret),
        ["standard", "hmac_sha256", "google_channel"]
    );
    assert_eq!(
        with(InboundScheme::needs_secret),
        [
            "stripe",
            "github",
            "slack",
            "meta",
            "twilio",
            "shopify",
            "hubspot_v3"
        ]
    );
    assert_eq!(with(InboundScheme::needs_public_key), ["sendgrid"]);
    assert_eq!(
        with(InboundScheme::has_timestamp),
        ["standard", "stripe", "slack", "hubspot_v3"]
    );
}

#[test]
fn keys_never_show_their_secrets_in_debug_output() {
    let debug = format!("{:?}", keys(&[SECRET, OTHER_SECRET]));
    assert!(!debug.contains("MfKQ9r8"), "{debug}");
    assert!(debug.contains("[redacted; 2]"), "{debug}");
}

#[test]
fn tokens_are_equal_only_when_identical() {
    assert!(tokens_equal("abc", "abc"));
    assert!(!tokens_equal("abc", "abd"));
    assert!(!tokens_equal("abc", "abcd"));
    assert!(!tokens_equal("", "a"));
}
