//! `hubspot_v3`: `X-HubSpot-Signature-v3: base64(HMAC-SHA256(client secret, method + URI + body +
//! timestamp))` with `X-HubSpot-Request-Timestamp` in Unix milliseconds within ±5 min.
//!
//! HubSpot's request-validation doc says to decode, in the URI, the percent-encodings of
//! `: / ? @ ! $ ' ( ) * , ;` before signing, and only those; [`decode_signed_uri`] does that.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Hmac;
use http::HeaderName;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{any_mac_matches, header_text, InboundVerifyError, ReceivedRequest};
use crate::webhooks::verify::{parse_unix_seconds, TIMESTAMP_TOLERANCE_SECONDS};

pub(super) const X_HUBSPOT_SIGNATURE_V3: HeaderName =
    HeaderName::from_static("x-hubspot-signature-v3");
pub(super) const X_HUBSPOT_REQUEST_TIMESTAMP: HeaderName =
    HeaderName::from_static("x-hubspot-request-timestamp");

/// The characters HubSpot decodes in the URI before signing (its doc's table).
const DECODED: &[u8] = b":/?@!$'()*,;";

pub(super) fn verify(
    secrets: &[Zeroizing<String>],
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    const SIGNATURE: &str = "X-HubSpot-Signature-v3";
    let timestamp_text = header_text(
        request.headers,
        &X_HUBSPOT_REQUEST_TIMESTAMP,
        "X-HubSpot-Request-Timestamp",
    )?;
    let timestamp_ms =
        parse_unix_seconds(timestamp_text).ok_or(InboundVerifyError::InvalidTimestamp)?;
    let tolerance_ms = TIMESTAMP_TOLERANCE_SECONDS * 1000;
    if request.now.saturating_mul(1000).abs_diff(timestamp_ms) > tolerance_ms {
        return Err(InboundVerifyError::TimestampOutOfTolerance);
    }
    let signature = STANDARD
        .decode(header_text(
            request.headers,
            &X_HUBSPOT_SIGNATURE_V3,
            SIGNATURE,
        )?)
        .map_err(|_| InboundVerifyError::MalformedHeader(SIGNATURE))?;
    let uri = decode_signed_uri(request.url);
    any_mac_matches::<Hmac<Sha256>>(
        secrets,
        &[
            request.method.as_bytes(),
            uri.as_bytes(),
            request.body,
            timestamp_text.as_bytes(),
        ],
        &[signature],
    )
}

/// `uri` with `%XX` decoded where XX (either case) encodes one of [`DECODED`]; everything else,
/// `%20` and `%26` included, is left as it is.
fn decode_signed_uri(uri: &str) -> Cow<'_, str> {
    if !uri.contains('%') {
        return Cow::Borrowed(uri);
    }
    let bytes = uri.as_bytes();
    let mut out = String::with_capacity(uri.len());
    // Slices are cut only at a `%` or just after an `%XX` (ASCII), so on char boundaries.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
            .filter(|byte| DECODED.contains(byte));
        match decoded {
            Some(byte) => {
                out.push_str(&uri[copied..i]);
                out.push(char::from(byte));
                i += 3;
                copied = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&uri[copied..]);
    Cow::Owned(out)
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{keys, TestRequest};
    use super::super::{verify, InboundScheme};
    use super::*;

    // The v3 vector of HubSpot's own SDK, hubspot-api-python tests/spec/utils/test_signature.py
    // (`test_get_signature__v3`): the timestamp 15000000 ms is what HubSpot's test signs.
    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const BODY: &[u8] = b"{'example_field':'example_value'}";
    const URL: &str = "https://www.example.com/webhook_uri";
    const TIMESTAMP_MS: &str = "15000000";
    const SIGNATURE: &str = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=";

    fn request(url: &str, timestamp_ms: &str, now: i64) -> TestRequest {
        TestRequest::new(BODY)
            .method("POST")
            .url(url)
            .header("X-HubSpot-Signature-v3", SIGNATURE)
            .header("X-HubSpot-Request-Timestamp", timestamp_ms)
            .at(now)
    }

    fn check(request: &TestRequest) -> Result<(), InboundVerifyError> {
        verify(
            InboundScheme::HubspotV3,
            None,
            &keys(&[SECRET]),
            &request.received(),
        )
    }

    #[test]
    fn the_sdk_vector_verifies_within_five_minutes_of_its_timestamp() {
        for now in [15_000 - 300, 15_000, 15_000 + 300] {
            assert_eq!(check(&request(URL, TIMESTAMP_MS, now)), Ok(()), "{now}");
        }
        for now in [15_000 - 301, 15_000 + 301] {
            assert_eq!(
                check(&request(URL, TIMESTAMP_MS, now)),
                Err(InboundVerifyError::TimestampOutOfTolerance)
            );
        }
    }

    #[test]
    fn the_timestamp_is_milliseconds() {
        // 15000000 read as seconds would be 173 days after the epoch, not 4 h 10 min.
        assert_eq!(
            check(&request(URL, TIMESTAMP_MS, 15_000_000)),
            Err(InboundVerifyError::TimestampOutOfTolerance)
        );
    }

    #[test]
    fn the_listed_percent_encodings_are_decoded_before_signing() {
        let encoded = "https%3A%2f%2Fwww.example.com%2Fwebhook_uri";
        assert_eq!(check(&request(encoded, TIMESTAMP_MS, 15_000)), Ok(()));
        assert_eq!(
            decode_signed_uri("https://x.example/a%3Ab%20c%26d?q=%28%29%2A%2C%3B%40%21%24%27%3F"),
            "https://x.example/a:b%20c%26d?q=()*,;@!$'?"
        );
        assert_eq!(decode_signed_uri("a%2"), "a%2");
        assert_eq!(decode_signed_uri("a%"), "a%");
        assert_eq!(decode_signed_uri("%2F"), "/");
        assert_eq!(decode_signed_uri("%zz%C3%A9"), "%zz%C3%A9");
    }

    #[test]
    fn the_method_and_url_are_part_of_the_signed_bytes() {
        assert_eq!(
            check(&request(URL, TIMESTAMP_MS, 15_000).method("PUT")),
            Err(InboundVerifyError::NoMatchingSignature)
        );
        assert_eq!(
            check(&request(
                "https://www.example.com/webhook_uri/",
                TIMESTAMP_MS,
                15_000
            )),
            Err(InboundVerifyError::NoMatchingSignature)
        );
    }
}
