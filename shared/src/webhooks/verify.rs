//! Verifying Standard Webhooks signatures: inbound `standard` webhooks, and tests of the outgoing
//! ones. Over the raw body, in constant time ([`hmac::Mac::verify_slice`]), any of several
//! space-separated signatures (and any of the [`SigningKeys`], so a rotated secret keeps verifying
//! for its overlap), with the timestamp at most [`TIMESTAMP_TOLERANCE_SECONDS`] from now.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Mac;
use http::HeaderMap;

use super::sign::{standard_mac, SigningKeys, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};

/// How far `webhook-timestamp` may be from now, either way.
pub const TIMESTAMP_TOLERANCE_SECONDS: u64 = 5 * 60;

/// Why a Standard Webhooks request does not verify. For logs only: the HTTP answer is the same 401
/// whatever the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the `{0}` header is missing or not text")]
    MissingHeader(&'static str),
    #[error("`webhook-timestamp` is not Unix seconds")]
    InvalidTimestamp,
    #[error("`webhook-timestamp` is more than 5 minutes from now")]
    TimestampOutOfTolerance,
    #[error("no `v1` signature matches")]
    NoMatchingSignature,
}

/// Verifies `webhook-id`, `webhook-timestamp` and `webhook-signature` over `body` at `now` (Unix
/// seconds). Every `webhook-signature` header line is read; entries of other versions (`v1a`, …) and
/// malformed ones are skipped.
pub fn verify_standard(
    keys: &SigningKeys,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    verify_standard_with_keys(
        keys.iter().map(|secret| secret.standard_key()),
        headers,
        body,
        now,
    )
}

/// [`verify_standard`] with the HMAC keys (the decoded parts after `whsec_`) given directly, newest
/// first; inbound `standard` webhooks hold their secrets as text.
pub(crate) fn verify_standard_with_keys<'k>(
    keys: impl IntoIterator<Item = &'k [u8]>,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let id = text_header(headers, &WEBHOOK_ID, "webhook-id")?;
    let timestamp = text_header(headers, &WEBHOOK_TIMESTAMP, "webhook-timestamp")?;
    let timestamp = parse_unix_seconds(timestamp).ok_or(VerifyError::InvalidTimestamp)?;
    if now.abs_diff(timestamp) > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let candidates: Vec<Vec<u8>> = headers
        .get_all(&WEBHOOK_SIGNATURE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(' '))
        .filter_map(|entry| match entry.split_once(',') {
            Some(("v1", signature)) => STANDARD.decode(signature).ok(),
            _ => None,
        })
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::MissingHeader("webhook-signature"));
    }
    for key in keys {
        let mac = standard_mac(key, id, timestamp, body);
        if candidates
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatchingSignature)
}

fn text_header<'h>(
    headers: &'h HeaderMap,
    name: &http::HeaderName,
    label: &'static str,
) -> Result<&'h str, VerifyError> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .ok_or(VerifyError::MissingHeader(label))
}

/// Digits only: no sign, no fraction, no spaces.
pub(crate) fn parse_unix_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use http::{HeaderName, HeaderValue};
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::webhooks::sign::{generate_secret, Signing, WebhookSecret, ROTATION_OVERLAP};

    const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_TIMESTAMP: i64 = 1649367553;
    const VECTOR_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn vector_keys() -> SigningKeys {
        SigningKeys::new(WebhookSecret::parse(VECTOR_SECRET).unwrap())
    }

    fn headers(id: &str, timestamp: &str, signatures: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(WEBHOOK_ID, HeaderValue::from_str(id).unwrap());
        map.insert(WEBHOOK_TIMESTAMP, HeaderValue::from_str(timestamp).unwrap());
        for signature in signatures {
            map.append(WEBHOOK_SIGNATURE, HeaderValue::from_str(signature).unwrap());
        }
        map
    }

    fn vector_headers(signatures: &[&str]) -> HeaderMap {
        headers(VECTOR_ID, "1649367553", signatures)
    }

    fn signed(keys: &SigningKeys, body: &[u8], now: i64) -> HeaderMap {
        Signing::Standard
            .sign(keys, "dlv_1", now, body)
            .unwrap()
            .into_iter()
            .collect()
    }

    #[test]
    fn the_published_vector_verifies() {
        assert_eq!(
            verify_standard(
                &vector_keys(),
                &vector_headers(&[VECTOR_SIGNATURE]),
                VECTOR_BODY,
                VECTOR_TIMESTAMP
            ),
            Ok(())
        );
    }

    #[test]
    fn any_one_matching_signature_among_several_verifies() {
        let wrong = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        for signatures in [
            vec![&format!("{wrong} {VECTOR_SIGNATURE}")[..]],
            vec![&format!("v1a,abc {VECTOR_SIGNATURE} garbage")[..]],
            vec![wrong, VECTOR_SIGNATURE],
        ] {
            assert_eq!(
                verify_standard(
                    &vector_keys(),
                    &vector_headers(&signatures),
                    VECTOR_BODY,
                    VECTOR_TIMESTAMP
                ),
                Ok(()),
                "{signatures:?}"
            );
        }
    }

    #[test]
    fn a_changed_body_id_or_timestamp_does_not_verify() {
        let keys = vector_keys();
        let cases = [
            (
                vector_headers(&[VECTOR_SIGNATURE]),
                &b"{\"email\":\"x\"}"[..],
            ),
            (
                headers("msg_other", "1649367553", &[VECTOR_SIGNATURE]),
                VECTOR_BODY,
            ),
            (
                headers(VECTOR_ID, "1649367554", &[VECTOR_SIGNATURE]),
                VECTOR_BODY,
            ),
        ];
        for (headers, body) in cases {
            assert_eq!(
                verify_standard(&keys, &headers, body, VECTOR_TIMESTAMP),
                Err(VerifyError::NoMatchingSignature)
            );
        }
    }

    #[test]
    fn another_secret_does_not_verify() {
        assert_eq!(
            verify_standard(
                &SigningKeys::new(generate_secret()),
                &vector_headers(&[VECTOR_SIGNATURE]),
                VECTOR_BODY,
                VECTOR_TIMESTAMP
            ),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamps_within_five_minutes_either_way_are_accepted_and_beyond_refused() {
        let keys = vector_keys();
        let request = vector_headers(&[VECTOR_SIGNATURE]);
        for now in [VECTOR_TIMESTAMP - 300, VECTOR_TIMESTAMP + 300] {
            assert_eq!(verify_standard(&keys, &request, VECTOR_BODY, now), Ok(()));
        }
        for now in [VECTOR_TIMESTAMP - 301, VECTOR_TIMESTAMP + 301, 0, i64::MAX] {
            assert_eq!(
                verify_standard(&keys, &request, VECTOR_BODY, now),
                Err(VerifyError::TimestampOutOfTolerance)
            );
        }
    }

    #[test]
    fn missing_or_malformed_headers_are_named() {
        let keys = vector_keys();
        let mut no_id = vector_headers(&[VECTOR_SIGNATURE]);
        no_id.remove(WEBHOOK_ID);
        let mut no_signature = vector_headers(&[]);
        no_signature.insert(WEBHOOK_SIGNATURE, HeaderValue::from_static("v2,abc"));
        let cases = [
            (no_id, VerifyError::MissingHeader("webhook-id")),
            (
                headers(VECTOR_ID, "", &[VECTOR_SIGNATURE]),
                VerifyError::MissingHeader("webhook-timestamp"),
            ),
            (
                vector_headers(&[]),
                VerifyError::MissingHeader("webhook-signature"),
            ),
            (
                no_signature,
                VerifyError::MissingHeader("webhook-signature"),
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(
                verify_standard(&keys, &request, VECTOR_BODY, VECTOR_TIMESTAMP),
                Err(expected)
            );
        }
        for timestamp in [
            "1649367553.0",
            "-1",
            "+1649367553",
            " 1649367553",
            "1e9",
            "99999999999999999999",
        ] {
            assert_eq!(
                verify_standard(
                    &keys,
                    &headers(VECTOR_ID, timestamp, &[VECTOR_SIGNATURE]),
                    VECTOR_BODY,
                    VECTOR_TIMESTAMP
                ),
                Err(VerifyError::InvalidTimestamp),
                "{timestamp}"
            );
        }
    }

    #[test]
    fn during_the_rotation_overlap_both_secrets_verify() {
        let (old, new) = (generate_secret(), generate_secret());
        let now = Utc::now();
        let rotated =
            SigningKeys::new(new.clone()).with_previous(old.clone(), now + ROTATION_OVERLAP, now);
        let t = now.timestamp();

        for sender in [&old, &new] {
            let request = signed(&SigningKeys::new(sender.clone()), b"{}", t);
            assert_eq!(verify_standard(&rotated, &request, b"{}", t), Ok(()));
        }
        // And a rotated sender's two-signature header verifies with either secret alone.
        let request = signed(&rotated, b"{}", t);
        for receiver in [old, new] {
            assert_eq!(
                verify_standard(&SigningKeys::new(receiver), &request, b"{}", t),
                Ok(())
            );
        }
    }

    #[test]
    fn arbitrary_signature_headers_never_panic_and_never_verify() {
        let keys = vector_keys();
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let alphabet: Vec<char> = "v1a, =+/AZaz09\t.-_é🙂".chars().collect();
        for _ in 0..5_000 {
            let length = rng.gen_range(0..120);
            let text: String = (0..length)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let mut request = vector_headers(&[]);
            if let Ok(value) = HeaderValue::from_str(&text) {
                request.insert(WEBHOOK_SIGNATURE, value);
            }
            if rng.gen_bool(0.3) {
                let bytes: Vec<u8> = (0..rng.gen_range(0..20)).map(|_| rng.gen()).collect();
                if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                    request.insert(HeaderName::from_static("webhook-timestamp"), value);
                }
            }
            assert!(verify_standard(&keys, &request, VECTOR_BODY, VECTOR_TIMESTAMP).is_err());
        }
    }
}
