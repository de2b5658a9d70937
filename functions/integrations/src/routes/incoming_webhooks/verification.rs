//! The `verification` of an incoming webhook: which fields its scheme takes, what a create or a
//! PATCH stores (merging within the current scheme), and the secret the hub generates.

use hub_shared::domain::{IncomingWebhookId, TenantId};
use hub_shared::error::{ApiError, FieldError};
use hub_shared::inbound::{public_key_problem, InboundScheme, SecretSource};
use hub_shared::store::{IncomingWebhookItem, VerificationSecrets, VerificationSettings};
use hub_shared::webhooks::sign::{parse_signature_header, WebhookSecret};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::generated_secret;
use crate::routes::outgoing_webhooks::DEFAULT_SIGNATURE_HEADER;
use crate::routes::{non_null, present};
use crate::state::AppState;

/// The longest Meta `verifyToken`.
const MAX_VERIFY_TOKEN_CHARS: usize = 256;

/// `verification` of a create or a PATCH: the fields the scheme uses. In a PATCH with the current
/// scheme, the fields left out keep their values (`verifyToken: null` removes the token); with
/// another scheme, it is checked (and secrets generated) as on create.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerificationInput {
    pub(super) scheme: InboundScheme,
    #[serde(default, deserialize_with = "non_null")]
    secret: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    signature_header: Option<String>,
    #[serde(default, deserialize_with = "present")]
    verify_token: Option<Option<String>>,
    #[serde(default, deserialize_with = "non_null")]
    public_key: Option<String>,
}

/// What a checked `verification` will store.
pub(super) struct VerificationPlan {
    scheme: InboundScheme,
    signature_header: Option<String>,
    public_key: Option<String>,
    secrets: Zeroizing<VerificationSecrets>,
    secret_generated: bool,
    /// The secrets changed (else a PATCH keeps the envelope it has).
    secrets_changed: bool,
    /// The secret the hub generated, to show once.
    pub(super) generated: Option<Zeroizing<String>>,
}

impl VerificationPlan {
    pub(super) async fn seal(
        &self,
        state: &AppState,
        tenant: &TenantId,
        id: &IncomingWebhookId,
    ) -> Result<VerificationSettings, ApiError> {
        let envelope = state
            .store
            .seal_verification_secrets(tenant, id, &self.secrets)
            .await?;
        Ok(self.settings(envelope))
    }

    /// The stored envelope, when this plan keeps the scheme and the secrets of `current`.
    pub(super) fn reuses_envelope(&self, current: &IncomingWebhookItem) -> Option<Vec<u8>> {
        (self.scheme == current.scheme && !self.secrets_changed)
            .then(|| current.verification.to_vec())
    }

    pub(super) fn settings(&self, envelope: Vec<u8>) -> VerificationSettings {
        VerificationSettings {
            scheme: self.scheme,
            signature_header: self.signature_header.clone(),
            public_key: self.public_key.clone(),
            envelope,
            secret_generated: self.secret_generated,
            verify_token_configured: self.secrets.verify_token.is_some(),
        }
    }
}

/// Checks `verification` against its scheme. `kept` is the stored webhook and its secrets when a
/// PATCH keeps the scheme (fields left out keep their values); without it every field the scheme
/// needs must be given, and a secret the hub generates is generated.
pub(super) fn check_verification(
    input: &VerificationInput,
    kept: Option<(&IncomingWebhookItem, &VerificationSecrets)>,
) -> Result<VerificationPlan, Vec<FieldError>> {
    let scheme = input.scheme;
    let mut errors = Vec::new();
    let unused = |field: &str| {
        FieldError::new(
            format!("verification.{field}"),
            format!("is not used by the {} scheme", scheme.as_str()),
        )
    };
    if input.signature_header.is_some() && !scheme.takes_signature_header() {
        errors.push(unused("signatureHeader"));
    }
    if input.verify_token.is_some() && !scheme.takes_verify_token() {
        errors.push(unused("verifyToken"));
    }
    if input.public_key.is_some() && !scheme.takes_public_key() {
        errors.push(unused("publicKey"));
    }
    if input.secret.is_some() && scheme.secret_source() == SecretSource::Unused {
        errors.push(unused("secret"));
    }
    if let Some(secret) = &input.secret {
        errors.extend(secret_problem(scheme, secret));
    }
    if let Some(Some(token)) = &input.verify_token {
        let chars = token.chars().count();
        if !(1..=MAX_VERIFY_TOKEN_CHARS).contains(&chars) {
            errors.push(FieldError::new(
                "verification.verifyToken",
                format!("must be 1-{MAX_VERIFY_TOKEN_CHARS} characters"),
            ));
        }
    }
    if let Some(header) = &input.signature_header {
        if let Err(problem) = parse_signature_header(header) {
            errors.push(FieldError::new(
                "verification.signatureHeader",
                problem.to_string(),
            ));
        }
    }
    if let Some(key) = &input.public_key {
        if let Some(problem) = public_key_problem(key) {
            errors.push(FieldError::new("verification.publicKey", problem));
        }
    }
    let kept_secrets = kept.map(|(_, secrets)| secrets);
    let kept_item = kept.map(|(item, _)| item);
    if kept.is_none() {
        if scheme.secret_source() == SecretSource::Given && input.secret.is_none() {
            errors.push(FieldError::new(
                "verification.secret",
                format!(
                    "is required for the {} scheme (the provider's signing secret)",
                    scheme.as_str()
                ),
            ));
        }
        if scheme.takes_public_key() && input.public_key.is_none() {
            errors.push(FieldError::new(
                "verification.publicKey",
                "is required for the sendgrid scheme (the base64 DER public key SendGrid shows)",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let generated = (kept.is_none()
        && input.secret.is_none()
        && scheme.secret_source() == SecretSource::Generated)
        .then(generated_secret);
    let secret = match (&input.secret, &generated) {
        (Some(given), _) => Some(given.clone()),
        (None, Some(generated)) => Some(generated.to_string()),
        (None, None) => kept_secrets.and_then(|secrets| secrets.secret.clone()),
    };
    let verify_token = match &input.verify_token {
        Some(token) => token.clone(),
        None => kept_secrets.and_then(|secrets| secrets.verify_token.clone()),
    };
    // A secret set by PATCH replaces the old one at once (rotate-secret is the way to an overlap).
    let previous = if input.secret.is_none() {
        kept_secrets.map(|secrets| {
            (
                secrets.previous_secret.clone(),
                secrets.previous_expires_at.clone(),
            )
        })
    } else {
        None
    };
    let (previous_secret, previous_expires_at) = previous.unwrap_or_default();
    let secret_generated = match (&input.secret, &generated) {
        (Some(_), _) => false,
        (None, Some(_)) => true,
        (None, None) => kept_item.is_some_and(|item| item.secret_generated),
    };
    let signature_header = scheme.takes_signature_header().then(|| {
        input
            .signature_header
            .clone()
            .or_else(|| kept_item.and_then(|item| item.signature_header.clone()))
            .unwrap_or_else(|| DEFAULT_SIGNATURE_HEADER.to_string())
    });
    let public_key = scheme.takes_public_key().then(|| {
        input
            .public_key
            .clone()
            .or_else(|| kept_item.and_then(|item| item.public_key.clone()))
            .unwrap_or_default()
    });
    Ok(VerificationPlan {
        scheme,
        signature_header,
        public_key,
        secrets: Zeroizing::new(VerificationSecrets {
            secret,
            verify_token,
            previous_secret,
            previous_expires_at,
        }),
        secret_generated,
        secrets_changed: kept.is_none() || input.secret.is_some() || input.verify_token.is_some(),
        generated,
    })
}

/// A given `secret` for `scheme`: `standard` takes a Standard Webhooks secret (`whsec_` + base64);
/// the others any text of 1 to the scheme's maximum length.
fn secret_problem(scheme: InboundScheme, secret: &str) -> Option<FieldError> {
    let field = "verification.secret";
    let max = scheme.max_secret_chars();
    let chars = secret.chars().count();
    if !(1..=max).contains(&chars) {
        return Some(FieldError::new(
            field,
            format!("must be 1-{max} characters"),
        ));
    }
    if scheme == InboundScheme::Standard {
        if let Err(problem) = WebhookSecret::parse(secret) {
            return Some(FieldError::new(
                field,
                format!("must be a Standard Webhooks secret: {problem}"),
            ));
        }
    }
    None
}
