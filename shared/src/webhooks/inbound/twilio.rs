//! `twilio`: `X-Twilio-Signature: base64(HMAC-SHA1(auth token, signed string))`, as Twilio's
//! request validators (twilio-python, twilio-node) compute it:
//! - an `application/x-www-form-urlencoded` body: the full URL, then each form parameter sorted
//!   by name (a repeated name by value), name and decoded value concatenated;
//! - any other body: Twilio adds `bodySHA256=<hex SHA-256 of the body>` to the URL and signs the
//!   URL alone; the parameter must match the body;
//! - no body: the URL alone.
//!
//! Like the SDKs, the URL is tried as given and with its port toggled (the default port removed
//! when present, added when absent): Twilio is not consistent about it.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Hmac;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{any_mac_matches, header_text, InboundVerifyError, ReceivedRequest};

pub(super) const X_TWILIO_SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
const LABEL: &str = "X-Twilio-Signature";
const FORM: &str = "application/x-www-form-urlencoded";

pub(super) fn verify(
    secrets: &[Zeroizing<String>],
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    let signature = STANDARD
        .decode(header_text(request.headers, &X_TWILIO_SIGNATURE, LABEL)?)
        .map_err(|_| InboundVerifyError::MalformedHeader(LABEL))?;
    let params = signed_params(request)?;
    let candidates = [signature];
    let check = |url: &str| {
        let mut message: Vec<&[u8]> = Vec::with_capacity(1 + 2 * params.len());
        message.push(url.as_bytes());
        for (name, value) in &params {
            message.push(name.as_bytes());
            message.push(value.as_bytes());
        }
        any_mac_matches::<Hmac<Sha1>>(secrets, &message, &candidates)
    };
    match check(request.url) {
        Err(InboundVerifyError::NoMatchingSignature) => match toggle_port(request.url) {
            Some(other_spelling) => check(&other_spelling),
            None => Err(InboundVerifyError::NoMatchingSignature),
        },
        result => result,
    }
}

/// A decoded form parameter: name and value.
type FormParam<'r> = (Cow<'r, str>, Cow<'r, str>);

/// The parameters signed after the URL, in signing order; empty when the URL alone is signed
/// (after checking `bodySHA256` against the body).
fn signed_params<'r>(
    request: &ReceivedRequest<'r>,
) -> Result<Vec<FormParam<'r>>, InboundVerifyError> {
    if let Some(expected) = query_param(request.url, "bodySHA256") {
        let given =
            hex::decode(expected.as_bytes()).map_err(|_| InboundVerifyError::BodyHashMismatch)?;
        let actual = Sha256::digest(request.body);
        if !bool::from(actual.as_slice().ct_eq(&given)) {
            return Err(InboundVerifyError::BodyHashMismatch);
        }
        return Ok(Vec::new());
    }
    if is_form(request.headers) {
        let mut params = form_params(request.body);
        params.sort();
        return Ok(params);
    }
    if request.body.is_empty() {
        return Ok(Vec::new());
    }
    Err(InboundVerifyError::UnsignedBody)
}

/// The pairs of a form body, decoded as [`url::form_urlencoded::parse`] decodes them. A UTF-8 body
/// is split with `str`'s memchr-based search and only the pairs holding a `%` or `+` go through the
/// decoder, the others are borrowed: the signed bytes cost little more than the HMAC over them.
fn form_params(body: &[u8]) -> Vec<FormParam<'_>> {
    let Ok(text) = std::str::from_utf8(body) else {
        return url::form_urlencoded::parse(body).collect();
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            if pair.contains('%') || pair.contains('+') {
                return url::form_urlencoded::parse(pair.as_bytes()).next();
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((Cow::Borrowed(name), Cow::Borrowed(value)))
        })
        .collect()
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(FORM))
}

/// The first value of query parameter `name` in `url`.
fn query_param<'u>(url: &'u str, name: &str) -> Option<Cow<'u, str>> {
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// `url` with its port toggled: an explicit port removed, or the scheme's default port (443 for
/// https, 80 for http) added.
fn toggle_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // After the userinfo and past an IPv6 literal's brackets, a `:` starts the port.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_end = authority[host_start..]
        .rfind(']')
        .map_or(host_start, |bracket| host_start + bracket + 1);
    match authority[host_end..].rfind(':') {
        Some(colon) => Some(format!(
            "{scheme}://{}{tail}",
            &authority[..host_end + colon]
        )),
        None => {
            let port = match scheme.to_ascii_lowercase().as_str() {
                "https" => 443,
                "http" => 80,
                _ => return None,
            };
            Some(format!("{scheme}://{authority}:{port}{tail}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{keys, TestRequest};
    use super::super::{verify, InboundScheme};
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn form_request(url: &str, body: &str, signature: &str) -> TestRequest {
        TestRequest::new(body.as_bytes())
            .url(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
    }

    fn check(request: &TestRequest) -> Result<(), InboundVerifyError> {
        verify(
            InboundScheme::Twilio,
            None,
            &keys(&[TOKEN]),
            &request.received(),
        )
    }

    /// The worked example of Twilio's webhook security docs (twilio.com/docs/usage/security).
    #[test]
    fn the_documented_example_verifies() {
        let body = "CallSid=CA1234567890ABCDE&Caller=%2B14158675310&Digits=1234&From=%2B14158675310&To=%2B18005551212";
        assert_eq!(
            check(&form_request(URL, body, "GvWf1cFY/Q7PnoempGyD5oXAezc=")),
            Ok(())
        );
    }

    // The vectors of twilio-python's tests/unit/test_request_validator.py.
    const SDK_BODY: &str = "To=%2B18005551212&From=%2B14158675309&Digits=1234&CallSid=CA1234567890ABCDE&Caller=%2B14158675309";
    const SDK_SIGNATURE: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    #[test]
    fn the_sdk_vector_verifies_whatever_the_order_of_the_form_fields() {
        assert_eq!(check(&form_request(URL, SDK_BODY, SDK_SIGNATURE)), Ok(()));
    }

    #[test]
    fn the_url_verifies_with_or_without_its_port() {
        for (url, signature) in [
            // Signed without the port, received with one.
            (
                "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                SDK_SIGNATURE,
            ),
            // Signed with :443, received without.
            (URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
            // Signed with :80, received without.
            (
                "http://mycompany.com/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
        ] {
            assert_eq!(
                check(&form_request(url, SDK_BODY, signature)),
                Ok(()),
                "{url}"
            );
        }
    }

    #[test]
    fn repeated_parameters_are_signed_in_value_order() {
        let body = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
        assert_eq!(
            check(&form_request(URL, body, "IK+Dwps556ElfBT0I3Rgjkr1wJU=")),
            Ok(())
        );
    }

    #[test]
    fn a_json_body_is_bound_by_body_sha256_in_the_signed_url() {
        let url = format!(
            "{URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let request = |body: &[u8]| {
            TestRequest::new(body)
                .url(&url)
                .header("Content-Type", "application/json")
                .header("X-Twilio-Signature", "a9nBmqA0ju/hNViExpshrM61xv4=")
        };
        assert_eq!(
            check(&request(br#"{"property": "value", "boolean": true}"#)),
            Ok(())
        );
        assert_eq!(
            check(&request(br#"{"property": "value", "boolean": false}"#)),
            Err(InboundVerifyError::BodyHashMismatch)
        );
    }

    #[test]
    fn a_body_that_is_neither_form_nor_hashed_in_the_url_is_refused() {
        let request = TestRequest::new(b"{}")
            .url(URL)
            .header("Content-Type", "application/json")
            .header("X-Twilio-Signature", SDK_SIGNATURE);
        assert_eq!(check(&request), Err(InboundVerifyError::UnsignedBody));
    }

    #[test]
    fn without_a_body_the_url_alone_is_signed() {
        // printf '%s' "$URL" | openssl dgst -sha1 -hmac 12345 -binary | base64
        let request = TestRequest::new(b"")
            .url(URL)
            .header("X-Twilio-Signature", "zYQTYrRWXE7LtzbG4PfP7/bkkGo=");
        assert_eq!(check(&request), Ok(()));
    }

    #[test]
    fn a_changed_parameter_or_url_does_not_verify() {
        let changed_value = SDK_BODY.replace("Digits=1234", "Digits=1235");
        assert_eq!(
            check(&form_request(URL, &changed_value, SDK_SIGNATURE)),
            Err(InboundVerifyError::NoMatchingSignature)
        );
        assert_eq!(
            check(&form_request(
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                SDK_BODY,
                SDK_SIGNATURE
            )),
            Err(InboundVerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn ports_are_toggled_after_userinfo_and_ipv6_brackets() {
        assert_eq!(
            toggle_port("https://a.example/x?y=1").as_deref(),
            Some("https://a.example:443/x?y=1")
        );
        assert_eq!(
            toggle_port("http://a.example:8080").as_deref(),
            Some("http://a.example")
        );
        assert_eq!(
            toggle_port("https://u:p@[::1]:8443/x").as_deref(),
            Some("https://u:p@[::1]/x")
        );
        assert_eq!(
            toggle_port("https://[::1]/x").as_deref(),
            Some("https://[::1]:443/x")
        );
        assert_eq!(toggle_port("ftp://a.example/x"), None);
        assert_eq!(toggle_port("not a url"), None);
    }

    #[test]
    fn form_bodies_decode_as_the_url_crate_decodes_them() {
        for body in [
            &b"a=1&b=%2B2&c=x+y&&d&=e&f=%zz&g=caf%C3%A9&h=="[..],
            b"",
            b"&&",
            b"a=\xff%41",
            "n=é&m=%E9".as_bytes(),
        ] {
            let expected: Vec<FormParam> = url::form_urlencoded::parse(body).collect();
            assert_eq!(
                form_params(body),
                expected,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_body_decodes_as_the_url_crate_decodes_it(
            body in proptest::collection::vec(
                proptest::sample::select(b"ab=&%+2B\xc3\xa9\xff".to_vec()), 0..40),
        ) {
            let expected: Vec<FormParam> = url::form_urlencoded::parse(&body).collect();
            proptest::prop_assert_eq!(form_params(&body), expected);
        }
    }

    #[test]
    fn the_media_type_decides_whether_the_body_is_a_form() {
        for (content_type, form) in [
            ("application/x-www-form-urlencoded", true),
            ("Application/X-WWW-Form-Urlencoded; charset=utf-8", true),
            ("application/json", false),
            ("multipart/form-data", false),
        ] {
            let request = TestRequest::new(b"").header("Content-Type", content_type);
            assert_eq!(is_form(&request.headers), form, "{content_type}");
        }
        assert!(!is_form(&HeaderMap::new()));
    }
}
