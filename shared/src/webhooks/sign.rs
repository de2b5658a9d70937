//! Signing outgoing deliveries (and `forward` actions).
//!
//! A secret is `whsec_` + base64(32 random bytes). Two schemes:
//! - `standard` ([Standard Webhooks](https://www.standardwebhooks.com/)): `webhook-id`,
//!   `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256(key,
//!   "{id}.{timestamp}.{body}")>`, the key being the base64-decoded part after `whsec_`;
//! - `hmac_sha256_hex`: the configured `signatureHeader` (default `X-Webhook-Signature`) carries the
//!   hex HMAC-SHA256 of the body keyed by the UTF-8 bytes of the whole secret string, beside
//!   `X-Webhook-Timestamp` and `X-Webhook-Id`.
//!
//! For 24 hours after a rotation both secrets sign: the signature header holds two signatures,
//! space-separated, the current secret's first ([`SigningKeys`]).

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue};
use rand::RngCore;
use serde::Deserialize;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The prefix of every webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret.
pub const SECRET_BYTES: usize = 32;
/// How long the secret a rotation replaced keeps signing (and verifying).
pub const ROTATION_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::hours(24);

pub const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
pub const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
pub const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
pub const X_WEBHOOK_ID: HeaderName = HeaderName::from_static("x-webhook-id");
pub const X_WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("x-webhook-timestamp");
/// The default `signatureHeader` of `hmac_sha256_hex`.
pub const X_WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("x-webhook-signature");

/// Standard base64, padding optional: secrets written by other Standard Webhooks libraries may
/// drop it.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// A webhook signing secret. Holds the secret text and its decoded key; both are zeroized on drop
/// and `Debug` never shows them.
#[derive(Clone)]
pub struct WebhookSecret {
    text: Zeroizing<String>,
    key: Zeroizing<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with `whsec_`")]
    MissingPrefix,
    #[error("the part of a webhook secret after `whsec_` must be non-empty base64")]
    InvalidKey,
}

/// A new secret: `whsec_` + base64(32 bytes from the OS CSPRNG).
pub fn generate_secret() -> WebhookSecret {
    let mut key = Zeroizing::new(vec![0u8; SECRET_BYTES]);
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut text = Zeroizing::new(String::with_capacity(SECRET_PREFIX.len() + 44));
    text.push_str(SECRET_PREFIX);
    STANDARD.encode_string(&*key, &mut text);
    WebhookSecret { text, key }
}

impl WebhookSecret {
    /// Reads a secret (`whsec_<base64>`), as stored in the envelope or given by a tenant.
    pub fn parse(text: &str) -> Result<WebhookSecret, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = Zeroizing::new(
            SECRET_BASE64
                .decode(encoded)
                .map_err(|_| SecretError::InvalidKey)?,
        );
        if key.is_empty() {
            return Err(SecretError::InvalidKey);
        }
        Ok(WebhookSecret {
            text: Zeroizing::new(text.to_owned()),
            key,
        })
    }

    /// The secret text, for the one response that shows it and for sealing it in its envelope.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The `standard` scheme's HMAC key: the decoded part after `whsec_`.
    pub(crate) fn standard_key(&self) -> &[u8] {
        &self.key
    }

    /// The `hmac_sha256_hex` scheme's HMAC key: the UTF-8 bytes of the whole secret.
    fn hex_scheme_key(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        WebhookSecret::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The secrets that sign (or verify) right now: the current one and, during the
/// [`ROTATION_OVERLAP`] after a rotation, the one it replaced.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    current: WebhookSecret,
    previous: Option<WebhookSecret>,
}

impl SigningKeys {
    pub fn new(current: WebhookSecret) -> SigningKeys {
        SigningKeys {
            current,
            previous: None,
        }
    }

    /// Adds the secret a rotation replaced if it is still valid at `now` (`now < expires_at`, the
    /// stored `previousExpiresAt`); an expired one is left out.
    pub fn with_previous(
        mut self,
        previous: WebhookSecret,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> SigningKeys {
        if now < expires_at {
            self.previous = Some(previous);
        }
        self
    }

    /// Newest first.
    pub fn iter(&self) -> impl Iterator<Item = &WebhookSecret> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }
}

/// A webhook's `signatureScheme`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    #[default]
    Standard,
    HmacSha256Hex,
}

/// How a webhook's deliveries are signed: its `signatureScheme` with, for `hmac_sha256_hex`, the
/// header that carries the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signing {
    Standard,
    HmacSha256Hex { signature_header: HeaderName },
}

/// The longest `signatureHeader` (as the API document states).
pub const MAX_SIGNATURE_HEADER_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureHeaderError {
    #[error("must be a valid HTTP header name")]
    InvalidName,
    #[error("must be at most {MAX_SIGNATURE_HEADER_CHARS} characters")]
    TooLong,
    #[error("`{0}` is set by the hub itself and cannot carry the signature")]
    Reserved(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the message id cannot be sent as an HTTP header value")]
    InvalidMessageId,
}

/// Headers a `signatureHeader` may not name: the other signing headers and those the HTTP stack
/// owns.
const RESERVED_SIGNATURE_HEADERS: &[&str] = &[
    "x-webhook-id",
    "x-webhook-timestamp",
    "webhook-id",
    "webhook-timestamp",
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "user-agent",
];

impl Signing {
    /// From the webhook's settings: `signature_header` (`signatureHeader`) is only read for
    /// `hmac_sha256_hex`, where it defaults to `X-Webhook-Signature`.
    pub fn from_settings(
        scheme: SignatureScheme,
        signature_header: Option<&str>,
    ) -> Result<Signing, SignatureHeaderError> {
        match scheme {
            SignatureScheme::Standard => Ok(Signing::Standard),
            SignatureScheme::HmacSha256Hex => Ok(Signing::HmacSha256Hex {
                signature_header: match signature_header {
                    None => X_WEBHOOK_SIGNATURE,
                    Some(name) => parse_signature_header(name)?,
                },
            }),
        }
    }

    /// The header that carries the signature (for redaction in delivery logs).
    pub fn signature_header(&self) -> HeaderName {
        match self {
            Signing::Standard => WEBHOOK_SIGNATURE,
            Signing::HmacSha256Hex { signature_header } => signature_header.clone(),
        }
    }

    /// The headers to add to a delivery: `message_id` is the delivery id (the same for every
    /// attempt), `timestamp` the attempt's Unix seconds, `body` the exact bytes sent.
    pub fn sign(
        &self,
        keys: &SigningKeys,
        message_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let id = HeaderValue::from_str(message_id).map_err(|_| SignError::InvalidMessageId)?;
        let timestamp_value = HeaderValue::from(timestamp);
        let headers = match self {
            Signing::Standard => {
                let signatures: Vec<String> = keys
                    .iter()
                    .map(|secret| {
                        let mac = standard_mac(secret.standard_key(), message_id, timestamp, body);
                        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
                    })
                    .collect();
                vec![
                    (WEBHOOK_ID, id),
                    (WEBHOOK_TIMESTAMP, timestamp_value),
                    (WEBHOOK_SIGNATURE, ascii_header_value(signatures.join(" "))),
                ]
            }
            Signing::HmacSha256Hex { signature_header } => {
                let signatures: Vec<String> = keys
                    .iter()
                    .map(|secret| {
                        let mut mac = new_mac(secret.hex_scheme_key());
                        mac.update(body);
                        hex::encode(mac.finalize().into_bytes())
                    })
                    .collect();
                vec![
                    (X_WEBHOOK_ID, id),
                    (X_WEBHOOK_TIMESTAMP, timestamp_value),
                    (
                        signature_header.clone(),
                        ascii_header_value(signatures.join(" ")),
                    ),
                ]
            }
        };
        Ok(headers)
    }
}

/// Validates a `signatureHeader`.
pub fn parse_signature_header(name: &str) -> Result<HeaderName, SignatureHeaderError> {
    if name.chars().count() > MAX_SIGNATURE_HEADER_CHARS {
        return Err(SignatureHeaderError::TooLong);
    }
    let header =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| SignatureHeaderError::InvalidName)?;
    if RESERVED_SIGNATURE_HEADERS.contains(&header.as_str()) {
        return Err(SignatureHeaderError::Reserved(name.to_owned()));
    }
    Ok(header)
}

/// The Standard Webhooks MAC of `{id}.{timestamp}.{body}`, fed in parts so the body is not copied.
pub(crate) fn standard_mac(
    key: &[u8],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> HmacSha256 {
    let mut mac = new_mac(key);
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

/// Base64 and hex signatures joined by spaces are visible ASCII.
fn ascii_header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("base64 and hex are valid header values")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_TIMESTAMP: i64 = 1649367553;
    const VECTOR_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn keys(secret: &str) -> SigningKeys {
        SigningKeys::new(WebhookSecret::parse(secret).unwrap())
    }

    fn header<'a>(headers: &'a [(HeaderName, HeaderValue)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
    }

    #[test]
    fn standard_scheme_matches_the_published_standard_webhooks_vector() {
        let headers = Signing::Standard
            .sign(
                &keys(VECTOR_SECRET),
                VECTOR_ID,
                VECTOR_TIMESTAMP,
                VECTOR_BODY.as_bytes(),
            )
            .unwrap();

        assert_eq!(header(&headers, "webhook-id"), VECTOR_ID);
        assert_eq!(header(&headers, "webhook-timestamp"), "1649367553");
        assert_eq!(header(&headers, "webhook-signature"), VECTOR_SIGNATURE);
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn hex_scheme_keys_the_hmac_with_the_whole_secret_text_and_signs_only_the_body() {
        let secret = generate_secret();
        let signing = Signing::from_settings(SignatureScheme::HmacSha256Hex, None).unwrap();

        let headers = signing
            .sign(
                &SigningKeys::new(secret.clone()),
                "dlv_1",
                1_700_000_000,
                b"{\"a\":1}",
            )
            .unwrap();

        let mut expected = new_mac(secret.expose().as_bytes());
        expected.update(b"{\"a\":1}");
        assert_eq!(
            header(&headers, "x-webhook-signature"),
            hex::encode(expected.finalize().into_bytes())
        );
        assert_eq!(header(&headers, "x-webhook-id"), "dlv_1");
        assert_eq!(header(&headers, "x-webhook-timestamp"), "1700000000");
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn hex_scheme_matches_a_known_answer_computed_by_openssl() {
        // Computed outside Rust: printf '%s' hello | openssl dgst -sha256 -hmac whsec_AAAA
        let signing = Signing::from_settings(SignatureScheme::HmacSha256Hex, None).unwrap();
        let headers = signing
            .sign(&keys("whsec_AAAA"), "dlv_1", 0, b"hello")
            .unwrap();
        assert_eq!(
            header(&headers, "x-webhook-signature"),
            "d8cd0485cc9122be47dff516d9e982571a9ab6d601412afa28d14a1fbc704d9b"
        );
    }

    #[test]
    fn the_configured_signature_header_carries_the_hex_signature() {
        let signing =
            Signing::from_settings(SignatureScheme::HmacSha256Hex, Some("X-Acme-Signature"))
                .unwrap();
        let headers = signing
            .sign(&keys(VECTOR_SECRET), "dlv_1", 1, b"x")
            .unwrap();

        assert_eq!(header(&headers, "x-acme-signature").len(), 64);
        assert!(headers.iter().all(|(n, _)| n != "x-webhook-signature"));
        assert_eq!(signing.signature_header(), "x-acme-signature");
    }

    #[test]
    fn signature_header_must_be_a_header_name_the_hub_does_not_set_itself() {
        for bad in ["", "X Webhook", "Sig:nature", "naïve"] {
            assert_eq!(
                parse_signature_header(bad),
                Err(SignatureHeaderError::InvalidName),
                "{bad:?}"
            );
        }
        for reserved in [
            "X-Webhook-Id",
            "x-webhook-timestamp",
            "Content-Type",
            "Host",
        ] {
            assert_eq!(
                parse_signature_header(reserved),
                Err(SignatureHeaderError::Reserved(reserved.to_owned()))
            );
        }
        assert_eq!(
            parse_signature_header("X-Signature").unwrap(),
            HeaderName::from_static("x-signature")
        );
        assert!(parse_signature_header(&"x".repeat(MAX_SIGNATURE_HEADER_CHARS)).is_ok());
        assert_eq!(
            parse_signature_header(&"x".repeat(MAX_SIGNATURE_HEADER_CHARS + 1)),
            Err(SignatureHeaderError::TooLong)
        );
    }

    #[test]
    fn standard_scheme_ignores_the_signature_header_setting() {
        let signing =
            Signing::from_settings(SignatureScheme::Standard, Some("X-Webhook-Id")).unwrap();
        assert_eq!(signing, Signing::Standard);
        assert_eq!(signing.signature_header(), "webhook-signature");
    }

    #[test]
    fn after_a_rotation_both_schemes_send_two_signatures_newest_first() {
        let old = generate_secret();
        let new = generate_secret();
        let now = Utc::now();
        let rotated =
            SigningKeys::new(new.clone()).with_previous(old.clone(), now + ROTATION_OVERLAP, now);
        let hex = Signing::from_settings(SignatureScheme::HmacSha256Hex, None).unwrap();

        for signing in [Signing::Standard, hex] {
            let sign_with = |secret: &WebhookSecret| {
                let headers = signing
                    .sign(&SigningKeys::new(secret.clone()), "dlv_1", 42, b"body")
                    .unwrap();
                header(&headers, signing.signature_header().as_str()).to_owned()
            };
            let headers = signing.sign(&rotated, "dlv_1", 42, b"body").unwrap();

            assert_eq!(
                header(&headers, signing.signature_header().as_str()),
                format!("{} {}", sign_with(&new), sign_with(&old)),
                "{signing:?}"
            );
        }
    }

    #[test]
    fn a_previous_secret_past_its_expiry_no_longer_signs() {
        let now = Utc::now();
        let keys = SigningKeys::new(generate_secret()).with_previous(generate_secret(), now, now);

        assert_eq!(keys.iter().count(), 1);
    }

    #[test]
    fn generated_secrets_are_whsec_and_32_random_bytes() {
        let secret = generate_secret();
        let text = secret.expose();

        assert!(text.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&text[6..]).unwrap().len(), 32);
        assert_eq!(secret.standard_key().len(), 32);
        assert_ne!(text, generate_secret().expose());
        assert_eq!(WebhookSecret::parse(text).unwrap().expose(), text);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(
            WebhookSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap_err(),
            SecretError::MissingPrefix
        );
        for bad in ["whsec_", "whsec_not base64!", "whsec_===="] {
            assert_eq!(
                WebhookSecret::parse(bad).unwrap_err(),
                SecretError::InvalidKey,
                "{bad}"
            );
        }
        // Unpadded base64, as some Standard Webhooks libraries write it, is accepted.
        assert_eq!(
            WebhookSecret::parse("whsec_AAA").unwrap().standard_key(),
            &[0, 0]
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = generate_secret();
        let keys = SigningKeys::new(secret.clone());

        for debug in [format!("{secret:?}"), format!("{keys:?}")] {
            assert!(!debug.contains(&secret.expose()[6..]), "{debug}");
            assert!(debug.contains("[redacted]"), "{debug}");
        }
    }

    #[test]
    fn secrets_deserialize_from_their_text() {
        let secret: WebhookSecret =
            serde_json::from_value(serde_json::json!(VECTOR_SECRET)).unwrap();
        assert_eq!(secret.expose(), VECTOR_SECRET);
        assert!(serde_json::from_value::<WebhookSecret>(serde_json::json!("nope")).is_err());
    }

    #[test]
    fn a_message_id_that_is_no_header_value_is_an_error_not_a_panic() {
        assert_eq!(
            Signing::Standard.sign(&keys(VECTOR_SECRET), "dlv\n1", 1, b""),
            Err(SignError::InvalidMessageId)
        );
    }

    #[test]
    fn schemes_use_their_api_names() {
        assert_eq!(
            serde_json::to_value(SignatureScheme::HmacSha256Hex).unwrap(),
            "hmac_sha256_hex"
        );
        assert_eq!(
            serde_json::from_value::<SignatureScheme>(serde_json::json!("standard")).unwrap(),
            SignatureScheme::Standard
        );
    }
}
