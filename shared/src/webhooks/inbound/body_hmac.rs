//! The schemes that sign the body alone with HMAC-SHA256: `hmac_sha256` (hex in a configurable
//! header), `github` and `meta` (`X-Hub-Signature-256: sha256=<hex>`), `shopify` (base64).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Hmac;
use http::HeaderName;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{any_mac_matches, header_text, InboundVerifyError, ReceivedRequest};
use crate::webhooks::sign::X_WEBHOOK_SIGNATURE;

type HmacSha256 = Hmac<Sha256>;

pub(super) const X_HUB_SIGNATURE_256: HeaderName = HeaderName::from_static("x-hub-signature-256");
pub(super) const X_SHOPIFY_HMAC_SHA256: HeaderName =
    HeaderName::from_static("x-shopify-hmac-sha256");

/// `hmac_sha256`: every `signature_header` line, split on spaces, each entry hex with an optional
/// `sha256=` prefix (the hub's own `hmac_sha256_hex` deliveries send two during a rotation).
pub(super) fn verify_hmac_sha256(
    signature_header: Option<&HeaderName>,
    secrets: &[Zeroizing<String>],
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    let default = X_WEBHOOK_SIGNATURE;
    let header = signature_header.unwrap_or(&default);
    let candidates: Vec<Vec<u8>> = request
        .headers
        .get_all(header)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(' '))
        .filter_map(|entry| hex::decode(entry.strip_prefix("sha256=").unwrap_or(entry)).ok())
        .collect();
    if candidates.is_empty() {
        return Err(if request.headers.contains_key(header) {
            InboundVerifyError::MalformedHeader("signature")
        } else {
            InboundVerifyError::MissingHeader("signature")
        });
    }
    any_mac_matches::<HmacSha256>(secrets, &[request.body], &candidates)
}

/// `github` and `meta`: `X-Hub-Signature-256: sha256=<hex HMAC(body)>`.
pub(super) fn verify_hub_signature(
    secrets: &[Zeroizing<String>],
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    const LABEL: &str = "X-Hub-Signature-256";
    let value = header_text(request.headers, &X_HUB_SIGNATURE_256, LABEL)?;
    let signature = value
        .strip_prefix("sha256=")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or(InboundVerifyError::MalformedHeader(LABEL))?;
    any_mac_matches::<HmacSha256>(secrets, &[request.body], &[signature])
}

/// `shopify`: `X-Shopify-Hmac-Sha256: <base64 HMAC(body)>`.
pub(super) fn verify_shopify(
    secrets: &[Zeroizing<String>],
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    const LABEL: &str = "X-Shopify-Hmac-Sha256";
    let value = header_text(request.headers, &X_SHOPIFY_HMAC_SHA256, LABEL)?;
    let signature = STANDARD
        .decode(value)
        .map_err(|_| InboundVerifyError::MalformedHeader(LABEL))?;
    any_mac_matches::<HmacSha256>(secrets, &[request.body], &[signature])
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::super::tests::{keys, TestRequest};
    use super::super::{verify, InboundScheme};
    use super::*;

    /// GitHub's documented example ("Validating webhook deliveries", docs.github.com): secret
    /// "It's a Secret to Everybody", payload "Hello, World!".
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn with_header(name: &str, value: &str, body: &[u8]) -> TestRequest {
        TestRequest::new(body).header(name, value)
    }

    #[test]
    fn the_published_github_vector_verifies_under_github_and_meta() {
        let request = with_header("X-Hub-Signature-256", GITHUB_SIGNATURE, GITHUB_BODY);
        for scheme in [InboundScheme::Github, InboundScheme::Meta] {
            assert_eq!(
                verify(scheme, None, &keys(&[GITHUB_SECRET]), &request.received()),
                Ok(())
            );
        }
    }

    #[test]
    fn github_hex_is_read_in_either_case_but_the_prefix_is_required() {
        let upper = format!("sha256={}", GITHUB_SIGNATURE[7..].to_uppercase());
        let request = with_header("X-Hub-Signature-256", &upper, GITHUB_BODY);
        assert_eq!(
            verify(
                InboundScheme::Github,
                None,
                &keys(&[GITHUB_SECRET]),
                &request.received()
            ),
            Ok(())
        );

        let bare = with_header("X-Hub-Signature-256", &GITHUB_SIGNATURE[7..], GITHUB_BODY);
        assert_eq!(
            verify(
                InboundScheme::Github,
                None,
                &keys(&[GITHUB_SECRET]),
                &bare.received()
            ),
            Err(InboundVerifyError::MalformedHeader("X-Hub-Signature-256"))
        );
    }

    #[test]
    fn hmac_sha256_reads_hex_with_or_without_the_prefix_from_the_configured_header() {
        let hex_signature = &GITHUB_SIGNATURE[7..];
        for value in [hex_signature.to_string(), format!("sha256={hex_signature}")] {
            let default = with_header(DEFAULT_HEADER, &value, GITHUB_BODY);
            assert_eq!(
                verify(
                    InboundScheme::HmacSha256,
                    None,
                    &keys(&[GITHUB_SECRET]),
                    &default.received()
                ),
                Ok(()),
                "{value}"
            );
            let custom_name = HeaderName::from_static("x-acme-signature");
            let custom = with_header("X-Acme-Signature", &value, GITHUB_BODY);
            assert_eq!(
                verify(
                    InboundScheme::HmacSha256,
                    Some(&custom_name),
                    &keys(&[GITHUB_SECRET]),
                    &custom.received()
                ),
                Ok(())
            );
            // The default header is not read when another is configured.
            assert_eq!(
                verify(
                    InboundScheme::HmacSha256,
                    Some(&custom_name),
                    &keys(&[GITHUB_SECRET]),
                    &default.received()
                ),
                Err(InboundVerifyError::MissingHeader("signature"))
            );
        }
    }

    const DEFAULT_HEADER: &str = super::super::DEFAULT_HMAC_SIGNATURE_HEADER;

    #[test]
    fn hmac_sha256_accepts_any_of_several_space_separated_signatures() {
        let value = format!("{} zz {}", "00".repeat(32), &GITHUB_SIGNATURE[7..]);
        let request = with_header(DEFAULT_HEADER, &value, GITHUB_BODY);
        assert_eq!(
            verify(
                InboundScheme::HmacSha256,
                None,
                &keys(&[GITHUB_SECRET]),
                &request.received()
            ),
            Ok(())
        );
        let garbage = with_header(DEFAULT_HEADER, "not-hex", GITHUB_BODY);
        assert_eq!(
            verify(
                InboundScheme::HmacSha256,
                None,
                &keys(&[GITHUB_SECRET]),
                &garbage.received()
            ),
            Err(InboundVerifyError::MalformedHeader("signature"))
        );
    }

    #[test]
    fn shopify_matches_a_known_answer_computed_by_openssl() {
        // printf '%s' 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody" -binary | base64
        let request = with_header(
            "X-Shopify-Hmac-Sha256",
            "dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc=",
            GITHUB_BODY,
        );
        assert_eq!(
            verify(
                InboundScheme::Shopify,
                None,
                &keys(&[GITHUB_SECRET]),
                &request.received()
            ),
            Ok(())
        );
        let not_base64 = with_header("X-Shopify-Hmac-Sha256", "%%%", GITHUB_BODY);
        assert_eq!(
            verify(
                InboundScheme::Shopify,
                None,
                &keys(&[GITHUB_SECRET]),
                &not_base64.received()
            ),
            Err(InboundVerifyError::MalformedHeader("X-Shopify-Hmac-Sha256"))
        );
    }

    #[test]
    fn a_header_value_that_is_not_text_counts_as_missing() {
        let mut request = TestRequest::new(GITHUB_BODY);
        request.headers.insert(
            X_HUB_SIGNATURE_256,
            HeaderValue::from_bytes(b"sha256=\xff").unwrap(),
        );
        assert_eq!(
            verify(
                InboundScheme::Github,
                None,
                &keys(&[GITHUB_SECRET]),
                &request.received()
            ),
            Err(InboundVerifyError::MissingHeader("X-Hub-Signature-256"))
        );
    }
}
