//! Arbitrary requests never panic anything that reads them, and never verify by chance.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::tests::TestRequest;
use super::*;

/// The headers the schemes read, so that arbitrary values reach the parsers.
const NAMES: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-signature",
    "x-webhook-id",
    "idempotency-key",
    "stripe-signature",
    "x-hub-signature-256",
    "x-github-delivery",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-twilio-signature",
    "content-type",
    "x-shopify-hmac-sha256",
    "x-shopify-webhook-id",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
    "x-goog-channel-token",
    "x-goog-channel-id",
    "x-goog-message-number",
];

const SENDGRID_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";

fn scheme() -> impl Strategy<Value = InboundScheme> {
    prop::sample::select(InboundScheme::ALL.to_vec())
}

/// Header values: mostly text shaped like signatures (so parsers get past their first check),
/// sometimes arbitrary bytes.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "(t=|v1=|v0=|v1,|sha256=|[0-9]{1,13}|[0-9a-fA-F]{0,70}|[A-Za-z0-9+/=]{0,90}|[ ,=:;])*"
            .prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec((prop::sample::select(NAMES), header_value()), 0..8).prop_map(|entries| {
        let mut map = HeaderMap::new();
        for (name, value) in entries {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(HeaderName::from_static(name), value);
            }
        }
        map
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        "[a-zA-Z%+=&0-9]{0,100}".prop_map(String::into_bytes),
        r#"\{"(id|event_id)":("[a-z0-9_]{0,12}"|[0-9]{1,4}|null)\}"#.prop_map(String::into_bytes),
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://hub.example.com/api/webhooks/tenant/t/w".to_string()),
        "https?://[a-z.:\\[\\]@0-9]{0,20}(/[a-z%0-9A-F]{0,10})?(\\?[a-zA-Z0-9=&%]{0,40})?",
        any::<String>(),
    ]
}

fn request() -> impl Strategy<Value = TestRequest> {
    (headers(), body(), url(), "[A-Z]{0,7}", any::<i64>()).prop_map(
        |(headers, body, url, method, now)| TestRequest {
            method,
            url,
            headers,
            body,
            now,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_requests_never_verify_but_under_none(
        scheme in scheme(),
        request in request(),
        custom_header in proptest::bool::ANY,
    ) {
        let keys = VerifyKeys {
            secrets: vec![
                Zeroizing::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()),
                Zeroizing::new("a-given-provider-secret".to_string()),
            ],
            public_key: Some(parse_sendgrid_public_key(SENDGRID_KEY).unwrap()),
        };
        let header = HeaderName::from_static("webhook-signature");
        let signature_header = custom_header.then_some(&header);
        let result = verify(scheme, signature_header, &keys, &request.received());
        prop_assert_eq!(result.is_ok(), scheme == InboundScheme::None, "{:?}", result);
    }

    #[test]
    fn dedupe_keys_are_deterministic_and_say_where_they_came_from(
        scheme in scheme(),
        request in request(),
    ) {
        let key = dedupe_key(scheme, &request.received());
        prop_assert_eq!(&key, &dedupe_key(scheme, &request.received()));
        prop_assert!(
            ["header:", "body:", "param:"].iter().any(|prefix| key.starts_with(prefix)),
            "{}", key
        );
    }

    #[test]
    fn meta_handshakes_echo_only_safe_challenges_to_the_right_token(
        query in prop_oneof![
            any::<String>(),
            "(hub\\.(mode|verify_token|challenge)=[a-z0-9%<>&]{0,12}&?){0,4}",
        ],
        token in proptest::option::of("[a-z0-9]{0,6}"),
    ) {
        if let MetaHandshake::Challenge(challenge) = meta_handshake(&query, token.as_deref()) {
            prop_assert!(token.is_some_and(|t| !t.is_empty()));
            prop_assert!(challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
        }
    }

    #[test]
    fn arbitrary_public_keys_never_panic(text in any::<String>(), bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        let _ = parse_sendgrid_public_key(&text);
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        // Random bytes are no P-256 key, except by chance a bare point: 33 bytes (compressed, 0x02 or
        // 0x03 first; about half of all x lie on the curve) or 65 (uncompressed, 0x04 first).
        let may_be_a_point = matches!((bytes.len(), bytes.first()), (33, Some(2 | 3)) | (65, Some(4)));
        if !may_be_a_point {
            prop_assert!(parse_sendgrid_public_key(&encoded).is_err());
        }
    }
}
