//! `sendgrid` (Twilio SendGrid's signed event webhook): an ECDSA P-256 / SHA-256 signature over
//! `timestamp + body`, `X-Twilio-Email-Event-Webhook-Signature` (base64 of the DER signature) and
//! `X-Twilio-Email-Event-Webhook-Timestamp`, verified with the public key the tenant copied from
//! SendGrid (base64 of a DER `SubjectPublicKeyInfo`).
//!
//! The timestamp is signed but its age is not checked: SendGrid documents no tolerance and the
//! spec sets none for this scheme (a replay is caught by the dedupe on the body hash instead).

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_ASN1};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::HeaderName;

use super::{header_text, InboundVerifyError, ReceivedRequest};

pub(super) const SIGNATURE_HEADER: HeaderName =
    HeaderName::from_static("x-twilio-email-event-webhook-signature");
pub(super) const TIMESTAMP_HEADER: HeaderName =
    HeaderName::from_static("x-twilio-email-event-webhook-timestamp");

/// A SendGrid verification key, parsed once (at create time, and when the webhook's settings are
/// loaded) and then used for every request.
#[derive(Clone)]
pub struct SendgridKey(ParsedPublicKey);

impl std::fmt::Debug for SendgridKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendgridKey(P-256)")
    }
}

/// Why a `publicKey` is refused (create time: 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPublicKey {
    #[error("the public key must be base64 (as SendGrid shows it)")]
    NotBase64,
    #[error("the public key must be a DER-encoded ECDSA P-256 public key")]
    NotP256,
}

/// Reads the key SendGrid shows ("Verification Key": base64 of the DER `SubjectPublicKeyInfo`);
/// ASCII whitespace (line breaks of a pasted key) is ignored. A bare uncompressed P-256 point is
/// accepted too; any other curve or key type is refused.
pub fn parse_sendgrid_public_key(base64_der: &str) -> Result<SendgridKey, InvalidPublicKey> {
    let compact: String = base64_der
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = STANDARD
        .decode(compact)
        .map_err(|_| InvalidPublicKey::NotBase64)?;
    ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, der)
        .map(SendgridKey)
        .map_err(|_| InvalidPublicKey::NotP256)
}

pub(super) fn verify(
    key: Option<&SendgridKey>,
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    const SIGNATURE: &str = "X-Twilio-Email-Event-Webhook-Signature";
    let key = key.ok_or(InboundVerifyError::MissingPublicKey)?;
    let signature = STANDARD
        .decode(header_text(request.headers, &SIGNATURE_HEADER, SIGNATURE)?)
        .map_err(|_| InboundVerifyError::MalformedHeader(SIGNATURE))?;
    let timestamp = header_text(
        request.headers,
        &TIMESTAMP_HEADER,
        "X-Twilio-Email-Event-Webhook-Timestamp",
    )?;
    // Hashed in two parts, so the body is not copied to be prefixed with the timestamp.
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(timestamp.as_bytes());
    context.update(request.body);
    key.0
        .verify_digest_sig(&context.finish(), &signature)
        .map_err(|_| InboundVerifyError::NoMatchingSignature)
}

#[cfg(test)]
mod tests {
    use super::super::tests::TestRequest;
    use super::super::{verify as verify_inbound, InboundScheme, VerifyKeys};
    use super::*;

    /// sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js.
    mod node {
        pub const KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
        pub const SIGNATURE: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
        /// The spec's `SIGNATURE` with one character changed ("should reject for bad signature").
        pub const BAD_SIGNATURE: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=";
        pub const TIMESTAMP: &str = "1588788367";
        /// `JSON.stringify({category: 'example_payload', event: 'test_event', message_id: 'message_id'})`.
        pub const BODY: &[u8] =
            br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;
        /// The spec's "invalid key": a valid P-256 key, but not the signer's.
        pub const OTHER_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==";
    }

    /// sendgrid-python test/unit/test_eventwebhook.py: the body is `json.dumps(.., sort_keys=True,
    /// separators=(',', ':')) + '\r\n'`, written out here.
    mod python {
        pub const KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
        pub const SIGNATURE: &str = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";
        pub const TIMESTAMP: &str = "1600112502";
        pub const BODY: &[u8] = b"[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]\r\n";
    }

    fn request(signature: &str, timestamp: &str, body: &[u8]) -> TestRequest {
        TestRequest::new(body)
            .header("X-Twilio-Email-Event-Webhook-Signature", signature)
            .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
    }

    fn check(key: &str, request: &TestRequest) -> Result<(), InboundVerifyError> {
        let keys = VerifyKeys {
            secrets: Vec::new(),
            public_key: Some(parse_sendgrid_public_key(key).unwrap()),
        };
        verify_inbound(InboundScheme::Sendgrid, None, &keys, &request.received())
    }

    #[test]
    fn the_published_sendgrid_vectors_verify() {
        assert_eq!(
            check(
                node::KEY,
                &request(node::SIGNATURE, node::TIMESTAMP, node::BODY)
            ),
            Ok(())
        );
        assert_eq!(
            check(
                python::KEY,
                &request(python::SIGNATURE, python::TIMESTAMP, python::BODY)
            ),
            Ok(())
        );
    }

    #[test]
    fn the_sdk_rejection_cases_are_rejected() {
        let cases = [
            (
                node::OTHER_KEY,
                node::SIGNATURE,
                node::TIMESTAMP,
                node::BODY,
            ),
            (node::KEY, node::SIGNATURE, node::TIMESTAMP, &b"payload"[..]),
            (node::KEY, node::BAD_SIGNATURE, node::TIMESTAMP, node::BODY),
            (node::KEY, node::SIGNATURE, "timestamp", node::BODY),
            // One vector's signature under the other's key.
            (python::KEY, node::SIGNATURE, node::TIMESTAMP, node::BODY),
        ];
        for (key, signature, timestamp, body) in cases {
            assert_eq!(
                check(key, &request(signature, timestamp, body)),
                Err(InboundVerifyError::NoMatchingSignature),
                "{key} {signature} {timestamp}"
            );
        }
    }

    #[test]
    fn an_old_timestamp_is_not_refused_for_its_age() {
        // The vector is from 2020; `now` in the test request is far later.
        let request = request(node::SIGNATURE, node::TIMESTAMP, node::BODY).at(2_000_000_000);
        assert_eq!(check(node::KEY, &request), Ok(()));
    }

    #[test]
    fn without_a_public_key_nothing_verifies() {
        let request = request(node::SIGNATURE, node::TIMESTAMP, node::BODY);
        assert_eq!(
            verify_inbound(
                InboundScheme::Sendgrid,
                None,
                &VerifyKeys::default(),
                &request.received()
            ),
            Err(InboundVerifyError::MissingPublicKey)
        );
    }

    #[test]
    fn public_keys_must_be_base64_of_a_p256_key() {
        assert_eq!(
            parse_sendgrid_public_key("not base64!").unwrap_err(),
            InvalidPublicKey::NotBase64
        );
        assert_eq!(
            parse_sendgrid_public_key("AAAA").unwrap_err(),
            InvalidPublicKey::NotP256
        );
        // A P-384 SubjectPublicKeyInfo (openssl ecparam -name secp384r1 -genkey | openssl ec -pubout).
        let p384 = "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEbxYDwKGlAVgZYjOvN66vd8W2s0thvnD4lPwOx9ivG/yhEJSETwrv/HqhNbbXGxRHhqF+eTMUsfTFDZ3O0GCAPhfFycUkFUk0CQv6rLgFskqslLA/gyF1LjfA4fu6p1FA";
        assert_eq!(
            parse_sendgrid_public_key(p384).unwrap_err(),
            InvalidPublicKey::NotP256
        );
        // Line breaks in a pasted key are ignored.
        let wrapped = format!("{}\n{}\r\n", &node::KEY[..40], &node::KEY[40..]);
        assert!(parse_sendgrid_public_key(&wrapped).is_ok());
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let key = parse_sendgrid_public_key(node::KEY).unwrap();
        assert_eq!(format!("{key:?}"), "SendgridKey(P-256)");
    }
}
