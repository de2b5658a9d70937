//! What a webhook log keeps of a request or response (an outgoing attempt, an incoming receipt):
//! header values that can carry a secret become `[redacted]`, and bodies are cut to 16 KiB of text.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName};

pub const REDACTED: &str = "[redacted]";
/// The most of a body a log keeps, in bytes (before the truncation marker).
pub const MAX_LOGGED_BODY_BYTES: usize = 16 * 1024;

/// Headers whose values are always secret.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "webhook-signature",
    "x-webhook-signature",
    "x-api-key",
    // What the senders of incoming webhooks sign or authenticate with, one per verification scheme
    // (most also match a secret word below; Shopify's does not).
    "x-hub-signature-256",
    "stripe-signature",
    "x-slack-signature",
    "x-twilio-signature",
    "x-shopify-hmac-sha256",
    "x-hubspot-signature-v3",
    "x-twilio-email-event-webhook-signature",
    "x-goog-channel-token",
];

/// A header whose name contains one of these is taken to carry a secret (`X-Auth-Token`,
/// `X-Amz-Security-Token`, `X-Hub-Signature-256`, `Stripe-Signature`, `X-Session-Id`, ...).
const SECRET_NAME_PARTS: &[&str] = &[
    "token",
    "secret",
    "key",
    "signature",
    "password",
    "auth",
    "cookie",
    "credential",
    "session",
];

/// Whether a log must hide `name`'s value: a known secret header, a name containing a secret word,
/// or one of `also_secret` (a webhook's configured `signatureHeader`). Case-insensitive.
pub fn is_secret_header(name: &str, also_secret: &[HeaderName]) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_HEADERS.contains(&name.as_str())
        || SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
        || also_secret.iter().any(|secret| secret.as_str() == name)
}

/// The headers as a log keeps them: lowercase name → value, a repeated header's values joined with
/// `, `, secret values replaced by `[redacted]`, bytes that are not UTF-8 shown as `�`.
pub fn redact_headers(headers: &HeaderMap, also_secret: &[HeaderName]) -> BTreeMap<String, String> {
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let shown = if is_secret_header(name.as_str(), also_secret) {
            REDACTED.into()
        } else {
            String::from_utf8_lossy(value.as_bytes())
        };
        kept.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                if joined != REDACTED {
                    joined.push_str(", ");
                    joined.push_str(&shown);
                }
            })
            .or_insert_with(|| shown.into_owned());
    }
    kept
}

/// A body as a log keeps it: its text (bytes that are not UTF-8 shown as `�`), cut to at most
/// [`MAX_LOGGED_BODY_BYTES`] at a character boundary, then `…[truncated, N bytes in all]`.
pub fn truncate_body(body: &[u8]) -> String {
    if body.len() <= MAX_LOGGED_BODY_BYTES {
        return String::from_utf8_lossy(body).into_owned();
    }
    // Back off over continuation bytes (at most three) so no character is split.
    let mut cut = MAX_LOGGED_BODY_BYTES;
    while cut > MAX_LOGGED_BODY_BYTES - 3 && is_continuation_byte(body[cut]) {
        cut -= 1;
    }
    format!(
        "{}…[truncated, {} bytes in all]",
        String::from_utf8_lossy(&body[..cut]),
        body.len()
    )
}

fn is_continuation_byte(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn credential_cookie_and_signature_headers_are_redacted() {
        let headers = map(&[
            ("Authorization", "Bearer abc"),
            ("Proxy-Authorization", "Basic abc"),
            ("Cookie", "session=abc"),
            ("Set-Cookie", "a=1"),
            ("webhook-signature", "v1,abc"),
            ("X-Webhook-Signature", "deadbeef"),
            ("X-Api-Key", "abc"),
            ("X-Auth-Token", "abc"),
            ("X-Amz-Security-Token", "abc"),
            ("X-Client-Secret", "abc"),
            ("Stripe-Signature", "t=1,v1=abc"),
            ("X-Hub-Signature-256", "sha256=abc"),
            ("X-Db-Password", "abc"),
            ("X-Session-Id", "abc"),
        ]);
        let kept = redact_headers(&headers, &[]);

        assert_eq!(kept.len(), 14);
        for (name, value) in &kept {
            assert_eq!(value, REDACTED, "{name}");
        }
    }

    #[test]
    fn the_signature_header_of_every_inbound_scheme_is_redacted() {
        let headers = map(&[
            ("webhook-signature", "v1,abc"),
            ("X-Webhook-Signature", "sha256=abc"),
            ("Stripe-Signature", "t=1,v1=abc"),
            ("X-Hub-Signature-256", "sha256=abc"),
            ("X-Slack-Signature", "v0=abc"),
            ("X-Twilio-Signature", "abc="),
            ("X-Shopify-Hmac-Sha256", "abc="),
            ("X-HubSpot-Signature-v3", "abc="),
            ("X-Twilio-Email-Event-Webhook-Signature", "MEUC"),
            ("X-Goog-Channel-Token", "channel-token"),
        ]);
        let kept = redact_headers(&headers, &[]);

        assert_eq!(kept.len(), 10);
        for (name, value) in &kept {
            assert_eq!(value, REDACTED, "{name}");
        }
    }

    #[test]
    fn ordinary_headers_are_kept_as_sent_under_lowercase_names() {
        let headers = map(&[
            ("Content-Type", "application/json"),
            ("User-Agent", "IntegrationsHub/1"),
            ("webhook-id", "dlv_1"),
            ("webhook-timestamp", "1700000000"),
            ("X-App", "crm"),
        ]);

        assert_eq!(
            redact_headers(&headers, &[]),
            BTreeMap::from([
                ("content-type".into(), "application/json".into()),
                ("user-agent".into(), "IntegrationsHub/1".into()),
                ("webhook-id".into(), "dlv_1".into()),
                ("webhook-timestamp".into(), "1700000000".into()),
                ("x-app".into(), "crm".into()),
            ])
        );
    }

    #[test]
    fn the_configured_signature_header_is_redacted_whatever_its_name() {
        let configured = HeaderName::from_static("x-acme-proof");
        let headers = map(&[("X-Acme-Proof", "deadbeef"), ("X-Other", "kept")]);
        let kept = redact_headers(&headers, &[configured]);

        assert_eq!(kept["x-acme-proof"], REDACTED);
        assert_eq!(kept["x-other"], "kept");
    }

    #[test]
    fn repeated_headers_are_joined_and_a_secret_one_is_redacted_once() {
        let headers = map(&[
            ("Via", "a"),
            ("Via", "b"),
            ("Set-Cookie", "x=1"),
            ("Set-Cookie", "y=2"),
        ]);
        let kept = redact_headers(&headers, &[]);

        assert_eq!(kept["via"], "a, b");
        assert_eq!(kept["set-cookie"], REDACTED);
    }

    #[test]
    fn header_values_that_are_not_utf8_are_shown_lossily() {
        let mut headers = HeaderMap::new();
        headers.insert("x-raw", HeaderValue::from_bytes(b"caf\xe9").unwrap());

        assert_eq!(redact_headers(&headers, &[])["x-raw"], "caf\u{fffd}");
    }

    #[test]
    fn a_body_up_to_16_kib_is_kept_whole() {
        let body = "א".repeat(MAX_LOGGED_BODY_BYTES / 2);
        assert_eq!(truncate_body(body.as_bytes()), body);
        assert_eq!(truncate_body(b""), "");
    }

    #[test]
    fn a_longer_body_is_cut_at_a_character_boundary_with_a_marker() {
        // 2-, 3- and 4-byte characters, so the 16 KiB mark falls inside one.
        for unit in ["é", "€", "🎉", "a"] {
            let body = format!("x{}", unit.repeat(MAX_LOGGED_BODY_BYTES));
            let kept = truncate_body(body.as_bytes());
            let (text, marker) = kept.split_once('…').unwrap();

            assert!(text.len() <= MAX_LOGGED_BODY_BYTES, "{unit}");
            assert!(text.len() > MAX_LOGGED_BODY_BYTES - unit.len(), "{unit}");
            assert!(body.starts_with(text), "{unit}");
            assert!(!text.contains('\u{fffd}'), "{unit}");
            assert_eq!(marker, format!("[truncated, {} bytes in all]", body.len()));
        }
    }

    #[test]
    fn binary_bodies_are_stored_as_lossy_text() {
        let body: Vec<u8> = (0..=255u8)
            .cycle()
            .take(MAX_LOGGED_BODY_BYTES * 2)
            .collect();
        let kept = truncate_body(&body);

        assert!(kept.ends_with(&format!("[truncated, {} bytes in all]", body.len())));
        assert!(kept.contains('\u{fffd}'));
    }
}
