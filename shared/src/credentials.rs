//! An integration's credential fields: checked against the provider's catalog fields, sealed as one
//! envelope (`<tenant>/<integrationId>/credentials`), and recognisable only by a 4-character hint.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::catalog::Provider;
use crate::crypto::{CryptoError, EnvelopeCipher, SecretSlot};
use crate::domain::IntegrationId;
use crate::error::FieldError;

/// The plaintext field map; its strings are zeroized when it drops.
pub type CredentialFields = BTreeMap<String, Zeroizing<String>>;

pub const CREDENTIALS_FIELD: &str = "credentials";
const MAX_VALUE_CHARS: usize = 8192;
/// Below this length even 4 characters say too much about a secret: no hint is shown.
const MIN_CHARS_FOR_HINT: usize = 12;

/// Checks a complete credential set against the provider's fields: every declared field present and
/// non-empty, nothing undeclared. Paths are `credentials.<field>`.
pub fn check_fields(
    provider_slug: &str,
    provider: &Provider,
    fields: &CredentialFields,
) -> Vec<FieldError> {
    let declared = provider.credential_fields();
    let mut errors = Vec::new();
    for name in fields.keys() {
        if !declared.iter().any(|field| &field.name == name) {
            let known: Vec<&str> = declared.iter().map(|field| field.name.as_str()).collect();
            let message = if known.is_empty() {
                format!("{provider_slug} takes no credential fields")
            } else {
                format!(
                    "is not a credential field of {provider_slug} (expected: {})",
                    known.join(", ")
                )
            };
            errors.push(FieldError::new(
                format!("credentials.{}", printable(name)),
                message,
            ));
        }
    }
    for field in declared {
        match fields.get(&field.name) {
            None => errors.push(FieldError::new(
                format!("credentials.{}", field.name),
                "is required",
            )),
            Some(value) if value.trim().is_empty() => errors.push(FieldError::new(
                format!("credentials.{}", field.name),
                "must not be empty",
            )),
            Some(value) if value.chars().count() > MAX_VALUE_CHARS => errors.push(FieldError::new(
                format!("credentials.{}", field.name),
                format!("must be at most {MAX_VALUE_CHARS} characters"),
            )),
            Some(_) => {}
        }
    }
    errors
}

/// `…` and the last 4 characters of the first secret field, when it is long enough to spare them.
pub fn hint(provider: &Provider, fields: &CredentialFields) -> Option<String> {
    let secret = provider
        .credential_fields()
        .iter()
        .filter(|field| field.secret)
        .find_map(|field| fields.get(&field.name))?;
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < MIN_CHARS_FOR_HINT {
        return None;
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    Some(format!("…{tail}"))
}

pub async fn seal(
    cipher: &EnvelopeCipher,
    tenant_id: &str,
    integration_id: &IntegrationId,
    fields: &CredentialFields,
) -> Result<Vec<u8>, CryptoError> {
    let plain: BTreeMap<&str, &str> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    cipher
        .seal_json(
            SecretSlot::new(tenant_id, integration_id.as_str(), CREDENTIALS_FIELD),
            &plain,
        )
        .await
}

pub async fn open(
    cipher: &EnvelopeCipher,
    tenant_id: &str,
    integration_id: &IntegrationId,
    envelope: &[u8],
) -> Result<CredentialFields, CryptoError> {
    let parsed: BTreeMap<String, String> = cipher
        .open_json(
            SecretSlot::new(tenant_id, integration_id.as_str(), CREDENTIALS_FIELD),
            envelope,
        )
        .await?;
    Ok(parsed
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v)))
        .collect())
}

/// The fields as the catalog's request templates read them (`{credentials.*}`, `{accessToken}`).
pub fn to_values(fields: &CredentialFields) -> serde_json::Map<String, serde_json::Value> {
    fields
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                serde_json::Value::String(value.as_str().to_string()),
            )
        })
        .collect()
}

/// Field names come from the request: keep them short and printable in error paths.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}
