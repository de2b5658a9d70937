//! Verifying incoming webhooks: one function per `verification.scheme`, the dedupe key of each
//! accepted request, and Meta's subscription handshake.
//!
//! Every scheme works on the raw body bytes as received and compares in constant time (HMAC tags
//! with [`Mac::verify_slice`], tokens through their SHA-256 with [`subtle`]). Any of
//! [`VerifyKeys::secrets`] is accepted, so a rotated secret keeps verifying during its overlap.
//!
//! | scheme | header(s) | signed bytes | timestamp |
//! |---|---|---|---|
//! | `standard` | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>` (several) | `{id}.{ts}.{body}`, key = base64 after `whsec_` | ±5 min |
//! | `hmac_sha256` | `signatureHeader` (default `X-Webhook-Signature`): hex, optional `sha256=`, several space-separated | body | — |
//! | `stripe` | `Stripe-Signature: t=..,v1=<hex>,v1=..` (several `v1`) | `{t}.{body}` | ±5 min |
//! | `github`, `meta` | `X-Hub-Signature-256: sha256=<hex>` | body | — |
//! | `slack` | `X-Slack-Signature: v0=<hex>`, `X-Slack-Request-Timestamp` | `v0:{ts}:{body}` | ±5 min |
//! | `twilio` | `X-Twilio-Signature: <b64 HMAC-SHA1>` | URL + sorted form params (or URL with `bodySHA256`) | — |
//! | `shopify` | `X-Shopify-Hmac-Sha256: <b64>` | body | — |
//! | `hubspot_v3` | `X-HubSpot-Signature-v3: <b64>`, `X-HubSpot-Request-Timestamp` (ms) | method + URI + body + ts | ±5 min |
//! | `sendgrid` | `X-Twilio-Email-Event-Webhook-Signature` (b64 DER ECDSA), `…-Timestamp` | ts + body | none |
//! | `google_channel` | `X-Goog-Channel-Token` equals the secret | — | — |
//! | `none` | nothing | — | — |
//!
//! Except for `standard` (the decoded part after `whsec_`), the HMAC key is the UTF-8 bytes of the
//! secret text as the provider shows it.

mod body_hmac;
mod dedupe;
mod google_channel;
mod hubspot;
mod meta_handshake;
mod sendgrid;
mod slack;
mod stripe;
mod twilio;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use hmac::digest::KeyInit;
use hmac::Mac;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::sign::WebhookSecret;
use super::verify::{verify_standard_with_keys, VerifyError, TIMESTAMP_TOLERANCE_SECONDS};

pub use dedupe::dedupe_key;
pub use meta_handshake::{meta_handshake, MetaHandshake};
pub use sendgrid::{parse_sendgrid_public_key, InvalidPublicKey, SendgridKey};

/// The header `hmac_sha256` reads when the webhook names no `signatureHeader`.
pub const DEFAULT_HMAC_SIGNATURE_HEADER: &str = "X-Webhook-Signature";

/// `verification.scheme` of an incoming webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundScheme {
    Standard,
    HmacSha256,
    Stripe,
    Github,
    Slack,
    Meta,
    Twilio,
    Shopify,
    HubspotV3,
    Sendgrid,
    GoogleChannel,
    None,
}

impl InboundScheme {
    pub const ALL: [InboundScheme; 12] = [
        InboundScheme::Standard,
        InboundScheme::HmacSha256,
        InboundScheme::Stripe,
        InboundScheme::Github,
        InboundScheme::Slack,
        InboundScheme::Meta,
        InboundScheme::Twilio,
        InboundScheme::Shopify,
        InboundScheme::HubspotV3,
        InboundScheme::Sendgrid,
        InboundScheme::GoogleChannel,
        InboundScheme::None,
    ];

    /// The wire name (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            InboundScheme::Standard => "standard",
            InboundScheme::HmacSha256 => "hmac_sha256",
            InboundScheme::Stripe => "stripe",
            InboundScheme::Github => "github",
            InboundScheme::Slack => "slack",
            InboundScheme::Meta => "meta",
            InboundScheme::Twilio => "twilio",
            InboundScheme::Shopify => "shopify",
            InboundScheme::HubspotV3 => "hubspot_v3",
            InboundScheme::Sendgrid => "sendgrid",
            InboundScheme::GoogleChannel => "google_channel",
            InboundScheme::None => "none",
        }
    }

    /// Whether the hub generates the secret when none is given (`standard`, `hmac_sha256`,
    /// `google_channel`).
    pub fn generates_secret(self) -> bool {
        matches!(
            self,
            InboundScheme::Standard | InboundScheme::HmacSha256 | InboundScheme::GoogleChannel
        )
    }

    /// Whether the tenant must give the secret: the provider issues it (`stripe`, `github`,
    /// `slack`, `meta`, `twilio`, `shopify`, `hubspot_v3`).
    pub fn needs_secret(self) -> bool {
        matches!(
            self,
            InboundScheme::Stripe
                | InboundScheme::Github
                | InboundScheme::Slack
                | InboundScheme::Meta
                | InboundScheme::Twilio
                | InboundScheme::Shopify
                | InboundScheme::HubspotV3
        )
    }

    /// Whether the tenant must give a public key instead of a secret (`sendgrid`).
    pub fn needs_public_key(self) -> bool {
        self == InboundScheme::Sendgrid
    }

    /// Whether the ±5 min check applies (`standard`, `stripe`, `slack`, `hubspot_v3`). SendGrid
    /// signs a timestamp too, but neither the spec nor SendGrid asks for a tolerance, so it is not
    /// checked.
    pub fn has_timestamp(self) -> bool {
        matches!(
            self,
            InboundScheme::Standard
                | InboundScheme::Stripe
                | InboundScheme::Slack
                | InboundScheme::HubspotV3
        )
    }
}

/// The material one webhook verifies with: secrets newest first (current, then the previous one
/// during the 24 h rotation overlap), the SendGrid public key.
#[derive(Clone, Default)]
pub struct VerifyKeys {
    pub secrets: Vec<Zeroizing<String>>,
    pub public_key: Option<SendgridKey>,
}

impl std::fmt::Debug for VerifyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKeys")
            .field(
                "secrets",
                &format_args!("[redacted; {}]", self.secrets.len()),
            )
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// One received request as the receiver saw it.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedRequest<'a> {
    pub method: &'a str,
    /// The full public URL the sender signed (`scheme://host/path?query`), for `twilio` and
    /// `hubspot_v3`.
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// Unix seconds.
    pub now: i64,
}

/// Why an incoming request does not verify. For logs only: the HTTP answer is the same 401
/// whatever the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InboundVerifyError {
    #[error("the `{0}` header is missing, empty or not text")]
    MissingHeader(&'static str),
    #[error("the `{0}` header carries no signature in the expected form")]
    MalformedHeader(&'static str),
    #[error("the webhook has no secret to verify with")]
    MissingSecret,
    #[error("the webhook has no SendGrid public key")]
    MissingPublicKey,
    #[error("the timestamp is not a whole number")]
    InvalidTimestamp,
    #[error("the timestamp is more than 5 minutes from now")]
    TimestampOutOfTolerance,
    #[error("no signature matches")]
    NoMatchingSignature,
    #[error("`bodySHA256` in the URL is not the SHA-256 of the body")]
    BodyHashMismatch,
    #[error("the body is not form-encoded and the URL carries no `bodySHA256`")]
    UnsignedBody,
    #[error("the channel token does not match")]
    TokenMismatch,
}

impl From<VerifyError> for InboundVerifyError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::MissingHeader(name) => InboundVerifyError::MissingHeader(name),
            VerifyError::InvalidTimestamp => InboundVerifyError::InvalidTimestamp,
            VerifyError::TimestampOutOfTolerance => InboundVerifyError::TimestampOutOfTolerance,
            VerifyError::NoMatchingSignature => InboundVerifyError::NoMatchingSignature,
        }
    }
}

/// Verifies `request` under `scheme` with `keys`. `signature_header` is the webhook's
/// `signatureHeader`, read by `hmac_sha256` only (default [`DEFAULT_HMAC_SIGNATURE_HEADER`]).
pub fn verify(
    scheme: InboundScheme,
    signature_header: Option<&HeaderName>,
    keys: &VerifyKeys,
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    match scheme {
        InboundScheme::Standard => verify_standard_scheme(keys, request),
        InboundScheme::HmacSha256 => {
            body_hmac::verify_hmac_sha256(signature_header, &keys.secrets, request)
        }
        InboundScheme::Stripe => stripe::verify(&keys.secrets, request),
        InboundScheme::Github | InboundScheme::Meta => {
            body_hmac::verify_hub_signature(&keys.secrets, request)
        }
        InboundScheme::Slack => slack::verify(&keys.secrets, request),
        InboundScheme::Twilio => twilio::verify(&keys.secrets, request),
        InboundScheme::Shopify => body_hmac::verify_shopify(&keys.secrets, request),
        InboundScheme::HubspotV3 => hubspot::verify(&keys.secrets, request),
        InboundScheme::Sendgrid => sendgrid::verify(keys.public_key.as_ref(), request),
        InboundScheme::GoogleChannel => google_channel::verify(&keys.secrets, request),
        InboundScheme::None => Ok(()),
    }
}

/// Standard Webhooks through [`super::verify`]; secrets that are no `whsec_` secret are skipped.
fn verify_standard_scheme(
    keys: &VerifyKeys,
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    let secrets: Vec<WebhookSecret> = keys
        .secrets
        .iter()
        .filter_map(|text| WebhookSecret::parse(text).ok())
        .collect();
    if secrets.is_empty() {
        return Err(InboundVerifyError::MissingSecret);
    }
    verify_standard_with_keys(
        secrets.iter().map(|secret| secret.standard_key()),
        request.headers,
        request.body,
        request.now,
    )
    .map_err(InboundVerifyError::from)
}

/// The text of the first `name` header; missing, empty and non-visible-ASCII values are refused
/// with `label` (the name as providers spell it).
fn header_text<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    label: &'static str,
) -> Result<&'h str, InboundVerifyError> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .ok_or(InboundVerifyError::MissingHeader(label))
}

/// Refuses a `timestamp` (Unix seconds) more than [`TIMESTAMP_TOLERANCE_SECONDS`] from `now`.
fn check_tolerance(now: i64, timestamp: i64) -> Result<(), InboundVerifyError> {
    if now.abs_diff(timestamp) > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(InboundVerifyError::TimestampOutOfTolerance);
    }
    Ok(())
}

/// Whether the MAC of `message` (the concatenation of its parts) under any of `secrets` (their
/// UTF-8 bytes as the key) equals any of `candidates`, each compared in constant time.
fn any_mac_matches<M: Mac + KeyInit + Clone>(
    secrets: &[Zeroizing<String>],
    message: &[&[u8]],
    candidates: &[Vec<u8>],
) -> Result<(), InboundVerifyError> {
    if secrets.is_empty() {
        return Err(InboundVerifyError::MissingSecret);
    }
    for secret in secrets {
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        for part in message {
            mac.update(part);
        }
        if candidates
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        {
            return Ok(());
        }
    }
    Err(InboundVerifyError::NoMatchingSignature)
}

/// Equality of two secrets in constant time: their SHA-256 digests are compared, so neither the
/// position of the first difference nor the length shows in the timing.
fn tokens_equal(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.ct_eq(&expected).into()
}
