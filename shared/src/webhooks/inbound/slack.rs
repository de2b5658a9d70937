//! `slack`: `X-Slack-Signature: v0=<hex HMAC-SHA256("v0:{ts}:{body}")>` with
//! `X-Slack-Request-Timestamp` (Unix seconds) within ±5 min.

use hmac::Hmac;
use http::HeaderName;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{any_mac_matches, check_tolerance, header_text, InboundVerifyError, ReceivedRequest};
use crate::webhooks::verify::parse_unix_seconds;

pub(super) const X_SLACK_SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");
pub(super) const X_SLACK_REQUEST_TIMESTAMP: HeaderName =
    HeaderName::from_static("x-slack-request-timestamp");

pub(super) fn verify(
    secrets: &[Zeroizing<String>],
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    const SIGNATURE: &str = "X-Slack-Signature";
    let timestamp_text = header_text(
        request.headers,
        &X_SLACK_REQUEST_TIMESTAMP,
        "X-Slack-Request-Timestamp",
    )?;
    let timestamp =
        parse_unix_seconds(timestamp_text).ok_or(InboundVerifyError::InvalidTimestamp)?;
    check_tolerance(request.now, timestamp)?;
    let signature = header_text(request.headers, &X_SLACK_SIGNATURE, SIGNATURE)?
        .strip_prefix("v0=")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or(InboundVerifyError::MalformedHeader(SIGNATURE))?;
    any_mac_matches::<Hmac<Sha256>>(
        secrets,
        &[b"v0:", timestamp_text.as_bytes(), b":", request.body],
        &[signature],
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{keys, TestRequest};
    use super::super::{verify, InboundScheme};
    use super::*;

    // Slack's documented example ("Verifying requests from Slack", api.slack.com/authentication/
    // verifying-requests-from-slack), also the vector of python-slack-sdk's
    // tests/signature/test_signature_verifier.py.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: i64 = 1_531_420_618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn request(signature: &str, timestamp: &str) -> TestRequest {
        TestRequest::new(BODY)
            .header("X-Slack-Signature", signature)
            .header("X-Slack-Request-Timestamp", timestamp)
            .at(TIMESTAMP)
    }

    fn check(request: &TestRequest) -> Result<(), InboundVerifyError> {
        verify(
            InboundScheme::Slack,
            None,
            &keys(&[SECRET]),
            &request.received(),
        )
    }

    #[test]
    fn the_published_slack_vector_verifies() {
        assert_eq!(check(&request(SIGNATURE, "1531420618")), Ok(()));
    }

    #[test]
    fn a_signature_without_v0_or_a_timestamp_that_is_no_number_is_refused() {
        assert_eq!(
            check(&request(&SIGNATURE[3..], "1531420618")),
            Err(InboundVerifyError::MalformedHeader("X-Slack-Signature"))
        );
        assert_eq!(
            check(&request(SIGNATURE, "1531420618.5")),
            Err(InboundVerifyError::InvalidTimestamp)
        );
    }

    #[test]
    fn the_timestamp_is_part_of_the_signed_bytes() {
        // 1531420619 is within tolerance of `now` but not what Slack signed.
        assert_eq!(
            check(&request(SIGNATURE, "1531420619")),
            Err(InboundVerifyError::NoMatchingSignature)
        );
    }
}
