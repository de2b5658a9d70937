//! The dedupe key of an accepted request (webhooks.md, "Receiving" step 3).
//!
//! Each key starts with where it came from (`header:<name>:`, `body:<field>:`, `param:<name>:`,
//! `body:sha256:`), so keys of different sources never collide.

use http::{HeaderMap, HeaderName};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::InboundScheme;
use super::ReceivedRequest;
use crate::webhooks::sign::{WEBHOOK_ID, X_WEBHOOK_ID};

const X_GITHUB_DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");
const X_SHOPIFY_WEBHOOK_ID: HeaderName = HeaderName::from_static("x-shopify-webhook-id");
const X_GOOG_CHANNEL_ID: HeaderName = HeaderName::from_static("x-goog-channel-id");
const X_GOOG_MESSAGE_NUMBER: HeaderName = HeaderName::from_static("x-goog-message-number");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Twilio's id parameters, in the order they are looked for.
const TWILIO_ID_PARAMS: [&str; 3] = ["MessageSid", "CallSid", "SmsSid"];

/// The key this request is deduplicated on: `standard` `webhook-id`; `stripe` the body's `id`;
/// `github` `X-GitHub-Delivery`; `shopify` `X-Shopify-Webhook-Id`; `slack` the body's `event_id`;
/// `twilio` the first of the `MessageSid`, `CallSid`, `SmsSid` form parameters; `google_channel`
/// `X-Goog-Channel-Id` with `X-Goog-Message-Number`; `hmac_sha256` and `none` `X-Webhook-Id`, else
/// `Idempotency-Key`. Every other scheme, and any request whose key is absent (or empty, or not
/// text), is keyed on the SHA-256 of the raw body: `body:sha256:<hex>`.
pub fn dedupe_key(scheme: InboundScheme, request: &ReceivedRequest) -> String {
    scheme_key(scheme, request).unwrap_or_else(|| body_hash_key(request.body))
}

fn scheme_key(scheme: InboundScheme, request: &ReceivedRequest) -> Option<String> {
    let headers = request.headers;
    match scheme {
        InboundScheme::Standard => header_key(headers, &WEBHOOK_ID),
        InboundScheme::Stripe => {
            #[derive(Deserialize)]
            struct StripeEvent {
                id: Option<String>,
            }
            let event: StripeEvent = serde_json::from_slice(request.body).ok()?;
            non_empty(event.id?).map(|id| format!("body:id:{id}"))
        }
        InboundScheme::Github => header_key(headers, &X_GITHUB_DELIVERY),
        InboundScheme::Shopify => header_key(headers, &X_SHOPIFY_WEBHOOK_ID),
        InboundScheme::Slack => {
            #[derive(Deserialize)]
            struct SlackEnvelope {
                event_id: Option<String>,
            }
            let envelope: SlackEnvelope = serde_json::from_slice(request.body).ok()?;
            non_empty(envelope.event_id?).map(|id| format!("body:event_id:{id}"))
        }
        InboundScheme::Twilio => twilio_key(request.body),
        InboundScheme::GoogleChannel => {
            let channel = header_value(headers, &X_GOOG_CHANNEL_ID)?;
            let number = header_value(headers, &X_GOOG_MESSAGE_NUMBER)?;
            // Digits only, so the last `:` always separates the two.
            number.bytes().all(|b| b.is_ascii_digit()).then(|| {
                format!("header:x-goog-channel-id+x-goog-message-number:{channel}:{number}")
            })
        }
        InboundScheme::HmacSha256 | InboundScheme::None => {
            header_key(headers, &X_WEBHOOK_ID).or_else(|| header_key(headers, &IDEMPOTENCY_KEY))
        }
        InboundScheme::Meta | InboundScheme::HubspotV3 | InboundScheme::Sendgrid => None,
    }
}

fn twilio_key(body: &[u8]) -> Option<String> {
    let params: Vec<_> = url::form_urlencoded::parse(body).collect();
    TWILIO_ID_PARAMS.iter().find_map(|wanted| {
        params
            .iter()
            .find(|(name, value)| name == wanted && !value.is_empty())
            .map(|(name, value)| format!("param:{name}:{value}"))
    })
}

fn header_key(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    header_value(headers, name).map(|value| format!("header:{}:{value}", name.as_str()))
}

fn header_value<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn body_hash_key(body: &[u8]) -> String {
    format!("body:sha256:{}", hex::encode(Sha256::digest(body)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::TestRequest;
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn key(scheme: InboundScheme, request: &TestRequest) -> String {
        dedupe_key(scheme, &request.received())
    }

    fn body_key(body: &[u8]) -> String {
        format!("body:sha256:{}", hex::encode(Sha256::digest(body)))
    }

    #[test]
    fn header_keyed_schemes_use_their_header() {
        let cases = [
            (InboundScheme::Standard, "webhook-id", "msg_1"),
            (InboundScheme::Github, "X-GitHub-Delivery", "72d3162e"),
            (InboundScheme::Shopify, "X-Shopify-Webhook-Id", "b54557e4"),
            (InboundScheme::HmacSha256, "X-Webhook-Id", "dlv_1"),
            (InboundScheme::None, "X-Webhook-Id", "dlv_2"),
            (InboundScheme::HmacSha256, "Idempotency-Key", "k1"),
            (InboundScheme::None, "Idempotency-Key", "k2"),
        ];
        for (scheme, header, value) in cases {
            let request = TestRequest::new(b"{}").header(header, value);
            assert_eq!(
                key(scheme, &request),
                format!("header:{}:{value}", header.to_ascii_lowercase()),
                "{scheme:?}"
            );
        }
    }

    #[test]
    fn x_webhook_id_wins_over_idempotency_key() {
        let request = TestRequest::new(b"")
            .header("Idempotency-Key", "k")
            .header("X-Webhook-Id", "w");
        assert_eq!(
            key(InboundScheme::HmacSha256, &request),
            "header:x-webhook-id:w"
        );
    }

    #[test]
    fn stripe_and_slack_use_their_body_ids() {
        let stripe = TestRequest::new(br#"{"id":"evt_1","object":"event","data":{"id":"pi_1"}}"#);
        assert_eq!(key(InboundScheme::Stripe, &stripe), "body:id:evt_1");
        let slack = TestRequest::new(br#"{"type":"event_callback","event_id":"Ev08MFMKH6"}"#);
        assert_eq!(
            key(InboundScheme::Slack, &slack),
            "body:event_id:Ev08MFMKH6"
        );
    }

    #[test]
    fn twilio_uses_the_first_id_parameter_it_finds() {
        let message = TestRequest::new(b"SmsSid=SM1&Body=hi&MessageSid=SM2");
        assert_eq!(key(InboundScheme::Twilio, &message), "param:MessageSid:SM2");
        let call = TestRequest::new(b"From=%2B1555&CallSid=CA1");
        assert_eq!(key(InboundScheme::Twilio, &call), "param:CallSid:CA1");
        let sms = TestRequest::new(b"SmsSid=SM3");
        assert_eq!(key(InboundScheme::Twilio, &sms), "param:SmsSid:SM3");
    }

    #[test]
    fn google_channel_combines_channel_and_message_number() {
        let request = TestRequest::new(b"")
            .header("X-Goog-Channel-Id", "chan:1")
            .header("X-Goog-Message-Number", "42");
        assert_eq!(
            key(InboundScheme::GoogleChannel, &request),
            "header:x-goog-channel-id+x-goog-message-number:chan:1:42"
        );
        let only_channel = TestRequest::new(b"").header("X-Goog-Channel-Id", "chan");
        let not_a_number = only_channel.clone().header("X-Goog-Message-Number", "4:2");
        for request in [only_channel, not_a_number] {
            assert_eq!(
                key(InboundScheme::GoogleChannel, &request),
                format!("body:sha256:{EMPTY_SHA256}")
            );
        }
    }

    #[test]
    fn schemes_without_an_id_use_the_body_hash() {
        for scheme in [
            InboundScheme::Meta,
            InboundScheme::HubspotV3,
            InboundScheme::Sendgrid,
        ] {
            let request = TestRequest::new(b"[1]")
                .header("webhook-id", "ignored")
                .header("X-Webhook-Id", "ignored");
            assert_eq!(key(scheme, &request), body_key(b"[1]"), "{scheme:?}");
        }
        assert_eq!(
            key(InboundScheme::Meta, &TestRequest::new(b"")),
            format!("body:sha256:{EMPTY_SHA256}")
        );
    }

    #[test]
    fn an_absent_empty_or_unreadable_key_falls_back_to_the_body_hash() {
        let body = br#"{"event_id":"","id":7}"#;
        let expected = body_key(body);
        let cases = [
            (InboundScheme::Standard, TestRequest::new(body)),
            (
                InboundScheme::Github,
                TestRequest::new(body).header("X-GitHub-Delivery", ""),
            ),
            (
                InboundScheme::Shopify,
                TestRequest::new(body).raw_header("x-shopify-webhook-id", b"\xff"),
            ),
            // `id` is a number, `event_id` is empty.
            (InboundScheme::Stripe, TestRequest::new(body)),
            (InboundScheme::Slack, TestRequest::new(body)),
            (InboundScheme::Stripe, TestRequest::new(b"not json")),
            (
                InboundScheme::Twilio,
                TestRequest::new(b"MessageSid=&Body=x"),
            ),
            (InboundScheme::HmacSha256, TestRequest::new(body)),
            (InboundScheme::None, TestRequest::new(body)),
        ];
        for (scheme, request) in cases {
            let expected = if request.body == body {
                expected.clone()
            } else {
                body_key(&request.body)
            };
            assert_eq!(key(scheme, &request), expected, "{scheme:?}");
        }
    }

    #[test]
    fn keys_of_different_sources_never_collide() {
        // A body whose hash text is sent as a header id still gets a different key.
        let hash = hex::encode(Sha256::digest(b"x"));
        let by_header = TestRequest::new(b"x").header("webhook-id", &format!("sha256:{hash}"));
        assert_ne!(
            key(InboundScheme::Standard, &by_header),
            key(InboundScheme::Standard, &TestRequest::new(b"x"))
        );
    }
}
