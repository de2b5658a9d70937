//! Incoming webhooks in the table: the endpoints providers send events to. Secrets are only in
//! envelopes: `verification` holds `{secret?, verifyToken?, previousSecret?, previousExpiresAt?}`
//! (AAD `<tenant>/<webhookId>/verification`), `forwardSecret` the `whsec_…` string that signs
//! `forward` actions and `forwardSecretPrevious` the one a rotation replaced (both AAD
//! `<tenant>/<webhookId>/forwardSecret`). A sendgrid `publicKey` is public and stored as it is.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::query::{Page, PagedQuery};
use super::versioned::{version_of, VersionedChanges, VersionedUpdateError};
use super::{aws_error, keys, n, s, timestamp, to_attribute, InvalidCursor, Item, Store};
use super::{StoreError, UpdateWebhookError};
use crate::crypto::{field, SecretSlot};
use crate::domain::{Description, DisplayName, IncomingWebhookId, IntegrationId, TenantId};
use crate::inbound::{Action, Filters, InboundScheme};
use crate::webhooks::sign::{SigningKeys, WebhookSecret};

/// The verification secrets of an incoming webhook, as sealed in its `verification` envelope.
/// `previousSecret` verifies too until `previousExpiresAt` (the 24 h after a rotate-secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSecrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_expires_at: Option<String>,
}

impl VerificationSecrets {
    /// The secrets that verify at `now`: the current one, then the previous one while it is valid.
    pub fn valid_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let previous = self.previous_secret.as_deref().filter(|_| {
            self.previous_expires_at
                .as_deref()
                .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                .is_some_and(|expires| now < expires)
        });
        self.secret.as_deref().into_iter().chain(previous).collect()
    }
}

impl zeroize::Zeroize for VerificationSecrets {
    fn zeroize(&mut self) {
        for secret in [
            &mut self.secret,
            &mut self.verify_token,
            &mut self.previous_secret,
        ]
        .into_iter()
        .flatten()
        {
            secret.zeroize();
        }
    }
}

/// An incoming webhook as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingWebhookItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub id: IncomingWebhookId,
    pub tenant_id: TenantId,
    pub name: DisplayName,
    pub description: Option<Description>,
    pub is_enabled: bool,
    pub integration_id: Option<IntegrationId>,
    pub scheme: InboundScheme,
    /// `hmac_sha256` only: the header that carries the signature.
    pub signature_header: Option<String>,
    /// `sendgrid` only: base64 of the DER public key (public, so stored as it is).
    pub public_key: Option<String>,
    /// The [`VerificationSecrets`] envelope (binary attribute), AAD `<tenant>/<id>/verification`.
    pub verification: serde_bytes::ByteBuf,
    /// The hub generated the current `secret` (so rotate-secret may replace it).
    #[serde(default)]
    pub secret_generated: bool,
    /// A `verifyToken` is in the envelope (the resource says so without opening it).
    #[serde(default)]
    pub verify_token_configured: bool,
    /// The envelope of the `whsec_…` string that signs `forward` actions, AAD
    /// `<tenant>/<id>/forwardSecret`; made with the first forward action.
    #[serde(default)]
    pub forward_secret: Option<serde_bytes::ByteBuf>,
    /// The forward secret a rotation replaced (same AAD), signing too until
    /// `forwardSecretPreviousExpiresAt`.
    #[serde(default)]
    pub forward_secret_previous: Option<serde_bytes::ByteBuf>,
    #[serde(default)]
    pub forward_secret_previous_expires_at: Option<String>,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub actions: Vec<Action>,
    /// `scheme: none`: anyone who knows the URL can send.
    pub insecure: bool,
    pub last_received_at: Option<String>,
    #[serde(default)]
    pub total_received: u64,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
}

/// Everything that defines a new incoming webhook.
#[derive(Debug, Clone)]
pub struct NewIncomingWebhook {
    pub id: IncomingWebhookId,
    pub tenant: TenantId,
    pub name: DisplayName,
    pub description: Option<Description>,
    pub is_enabled: bool,
    pub integration_id: Option<IntegrationId>,
    pub verification: VerificationSettings,
    /// The sealed forward secret, when a `forward` action exists.
    pub forward_secret_envelope: Option<Vec<u8>>,
    pub filters: Filters,
    pub actions: Vec<Action>,
    pub created_by: Option<String>,
}

/// The verification part of an incoming webhook: its scheme, the plain settings and the sealed
/// secrets. Create and a PATCH of `verification` write all of it at once.
#[derive(Debug, Clone)]
pub struct VerificationSettings {
    pub scheme: InboundScheme,
    pub signature_header: Option<String>,
    pub public_key: Option<String>,
    /// The sealed [`VerificationSecrets`].
    pub envelope: Vec<u8>,
    pub secret_generated: bool,
    pub verify_token_configured: bool,
}

impl IncomingWebhookItem {
    pub fn new(new: NewIncomingWebhook, now: DateTime<Utc>) -> IncomingWebhookItem {
        let at = timestamp(now);
        let verification = new.verification;
        IncomingWebhookItem {
            pk: keys::tenant_pk(&new.tenant),
            sk: keys::incoming_webhook_sk(new.id.as_str()),
            kind: "incoming_webhook".to_string(),
            id: new.id,
            tenant_id: new.tenant,
            name: new.name,
            description: new.description,
            is_enabled: new.is_enabled,
            integration_id: new.integration_id,
            insecure: verification.scheme == InboundScheme::None,
            scheme: verification.scheme,
            signature_header: verification.signature_header,
            public_key: verification.public_key,
            verification: serde_bytes::ByteBuf::from(verification.envelope),
            secret_generated: verification.secret_generated,
            verify_token_configured: verification.verify_token_configured,
            forward_secret: new.forward_secret_envelope.map(serde_bytes::ByteBuf::from),
            forward_secret_previous: None,
            forward_secret_previous_expires_at: None,
            filters: new.filters,
            actions: new.actions,
            last_received_at: None,
            total_received: 0,
            version: 1,
            created_at: at.clone(),
            updated_at: at,
            created_by: new.created_by,
        }
    }

    /// Whether any action forwards the body (and so needs the forward secret).
    pub fn forwards(&self) -> bool {
        self.actions
            .iter()
            .any(|action| matches!(action, Action::Forward(_)))
    }

    /// The resource as the API shows it: never a secret. `url` is where senders post
    /// (`<public base URL>/api/webhooks/tenant/<tenant>/<id>`).
    pub fn to_resource(&self, public_base_url: &str) -> Value {
        json!({
            "id": self.id,
            "tenantId": self.tenant_id,
            "name": self.name,
            "description": self.description,
            "isEnabled": self.is_enabled,
            "integrationId": self.integration_id,
            "url": format!("{public_base_url}/api/webhooks/tenant/{}/{}", self.tenant_id, self.id),
            "verification": {
                "scheme": self.scheme,
                "signatureHeader": self.signature_header,
                "publicKey": self.public_key,
                "verifyTokenConfigured": self.verify_token_configured,
            },
            "filters": self.filters,
            "actions": self.actions,
            "insecure": self.insecure,
            "lastReceivedAt": self.last_received_at,
            "totalReceived": self.total_received,
            "version": self.version,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "createdBy": self.created_by,
        })
    }

    fn from_item(item: Item) -> Result<IncomingWebhookItem, StoreError> {
        serde_dynamo::from_item(item)
            .map_err(|e| StoreError::Corrupt(format!("incoming webhook item: {e}")))
    }
}

/// What PATCH (and rotate-secret) may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct IncomingWebhookChanges {
    pub name: Option<DisplayName>,
    pub description: Option<Option<Description>>,
    pub is_enabled: Option<bool>,
    pub integration_id: Option<Option<IntegrationId>>,
    /// A new scheme, settings and secrets envelope (a PATCH of `verification`, a rotation).
    pub verification: Option<VerificationSettings>,
    pub filters: Option<Filters>,
    pub actions: Option<Vec<Action>>,
    /// A new forward secret envelope; with `forward_secret_previous`, a rotation.
    pub forward_secret: Option<Vec<u8>>,
    /// The replaced forward secret envelope and until when it signs.
    pub forward_secret_previous: Option<(Vec<u8>, String)>,
}

impl Store {
    /// Seals an incoming webhook's verification secrets (owner = the webhook id, field
    /// `verification`).
    pub async fn seal_verification_secrets(
        &self,
        tenant: &TenantId,
        id: &IncomingWebhookId,
        secrets: &VerificationSecrets,
    ) -> Result<Vec<u8>, StoreError> {
        let slot = SecretSlot::new(tenant.as_str(), id.as_str(), field::VERIFICATION);
        Ok(self.cipher().seal_json(slot, secrets).await?)
    }

    /// Opens the verification secrets of a stored incoming webhook.
    pub async fn open_verification_secrets(
        &self,
        webhook: &IncomingWebhookItem,
    ) -> Result<VerificationSecrets, StoreError> {
        let slot = SecretSlot::new(
            webhook.tenant_id.as_str(),
            webhook.id.as_str(),
            field::VERIFICATION,
        );
        Ok(self
            .cipher()
            .open_json(slot, webhook.verification.as_ref())
            .await?)
    }

    /// Seals a forward secret (`whsec_…`, as a JSON string; owner = the webhook id, field
    /// `forwardSecret`).
    pub async fn seal_forward_secret(
        &self,
        tenant: &TenantId,
        id: &IncomingWebhookId,
        secret: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let slot = SecretSlot::new(tenant.as_str(), id.as_str(), field::FORWARD_SECRET);
        Ok(self.cipher().seal_json(slot, secret).await?)
    }

    /// Opens one forward secret envelope of `webhook` (the current or the previous one).
    pub async fn open_forward_secret(
        &self,
        webhook: &IncomingWebhookItem,
        envelope: &[u8],
    ) -> Result<Zeroizing<String>, StoreError> {
        let slot = SecretSlot::new(
            webhook.tenant_id.as_str(),
            webhook.id.as_str(),
            field::FORWARD_SECRET,
        );
        let secret: String = self.cipher().open_json(slot, envelope).await?;
        Ok(Zeroizing::new(secret))
    }

    /// The keys that sign `webhook`'s forwards at `now`: the current forward secret and, until its
    /// expiry, the one a rotation replaced (not opened once expired). `None` without a forward secret.
    pub async fn forward_signing_keys(
        &self,
        webhook: &IncomingWebhookItem,
        now: DateTime<Utc>,
    ) -> Result<Option<SigningKeys>, StoreError> {
        let Some(envelope) = &webhook.forward_secret else {
            return Ok(None);
        };
        let corrupt = |_| StoreError::Corrupt("a forward secret is not a webhook secret".into());
        let current = self.open_forward_secret(webhook, envelope).await?;
        let mut keys = SigningKeys::new(WebhookSecret::parse(&current).map_err(corrupt)?);
        let previous = webhook.forward_secret_previous.as_ref().zip(
            webhook
                .forward_secret_previous_expires_at
                .as_deref()
                .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                .map(|at| at.with_timezone(&Utc))
                .filter(|expires| now < *expires),
        );
        if let Some((envelope, expires)) = previous {
            let previous = self.open_forward_secret(webhook, envelope).await?;
            keys = keys.with_previous(
                WebhookSecret::parse(&previous).map_err(corrupt)?,
                expires,
                now,
            );
        }
        Ok(Some(keys))
    }

    pub async fn create_incoming_webhook(
        &self,
        item: &IncomingWebhookItem,
    ) -> Result<(), StoreError> {
        self.put_new(item).await
    }

    pub async fn get_incoming_webhook(
        &self,
        tenant: &TenantId,
        id: &IncomingWebhookId,
    ) -> Result<Option<IncomingWebhookItem>, StoreError> {
        self.get_tenant_item(tenant, keys::incoming_webhook_sk(id.as_str()))
            .await?
            .map(IncomingWebhookItem::from_item)
            .transpose()
    }

    /// The tenant's incoming webhooks, oldest first.
    pub async fn list_incoming_webhooks(
        &self,
        tenant: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Result<Page<IncomingWebhookItem>, InvalidCursor>, StoreError> {
        let query = PagedQuery::new(
            keys::tenant_pk(tenant),
            keys::INCOMING_WEBHOOK_SK_PREFIX,
            limit,
        );
        self.list_page(tenant, "webhooks/incoming", cursor, query)
            .await
    }

    /// Applies `changes` and bumps `version`, if the version is still `expected_version` (when given).
    pub async fn update_incoming_webhook(
        &self,
        tenant: &TenantId,
        id: &IncomingWebhookId,
        changes: IncomingWebhookChanges,
        expected_version: Option<u64>,
    ) -> Result<IncomingWebhookItem, UpdateWebhookError> {
        let mut write = VersionedChanges::default();
        if let Some(name) = changes.name {
            write.set("name", s(name));
        }
        if let Some(description) = changes.description {
            write.set_or_null("description", description.map(|d| s(String::from(d))));
        }
        if let Some(enabled) = changes.is_enabled {
            write.set("isEnabled", AttributeValue::Bool(enabled));
        }
        if let Some(integration) = changes.integration_id {
            write.set_or_null("integrationId", integration.map(|id| s(String::from(id))));
        }
        if let Some(verification) = changes.verification {
            write.set("scheme", to_attribute(&verification.scheme)?);
            write.set_or_null("signatureHeader", verification.signature_header.map(s));
            write.set_or_null("publicKey", verification.public_key.map(s));
            write.set(
                "verification",
                AttributeValue::B(verification.envelope.into()),
            );
            write.set(
                "secretGenerated",
                AttributeValue::Bool(verification.secret_generated),
            );
            write.set(
                "verifyTokenConfigured",
                AttributeValue::Bool(verification.verify_token_configured),
            );
            write.set(
                "insecure",
                AttributeValue::Bool(verification.scheme == InboundScheme::None),
            );
        }
        if let Some(filters) = &changes.filters {
            write.set("filters", to_attribute(filters)?);
        }
        if let Some(actions) = &changes.actions {
            write.set("actions", to_attribute(actions)?);
        }
        if let Some(envelope) = changes.forward_secret {
            write.set("forwardSecret", AttributeValue::B(envelope.into()));
        }
        if let Some((envelope, expires_at)) = changes.forward_secret_previous {
            write.set("forwardSecretPrevious", AttributeValue::B(envelope.into()));
            write.set("forwardSecretPreviousExpiresAt", s(expires_at));
        }
        let updated = self
            .update_versioned(
                keys::tenant_pk(tenant),
                keys::incoming_webhook_sk(id.as_str()),
                write,
                expected_version,
            )
            .await;
        match updated {
            Ok(item) => Ok(IncomingWebhookItem::from_item(item)?),
            Err(VersionedUpdateError::NotFound) => Err(UpdateWebhookError::NotFound),
            Err(VersionedUpdateError::VersionMismatch(current)) => {
                Err(UpdateWebhookError::VersionMismatch {
                    current: version_of(&current),
                })
            }
            Err(VersionedUpdateError::Store(error)) => Err(error.into()),
        }
    }

    /// Deletes the webhook; returns it as it was, or `None`.
    pub async fn delete_incoming_webhook(
        &self,
        tenant: &TenantId,
        id: &IncomingWebhookId,
    ) -> Result<Option<IncomingWebhookItem>, StoreError> {
        let result = self
            .dynamo()
            .delete_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::tenant_pk(tenant)))
            .key(keys::SK, s(keys::incoming_webhook_sk(id.as_str())))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| aws_error("DeleteItem", e))?;
        result
            .attributes
            .map(IncomingWebhookItem::from_item)
            .transpose()
    }

    /// Counts one received event: `totalReceived + 1` and `lastReceivedAt`, in one atomic update
    /// (concurrent receipts all count). A webhook deleted meanwhile stays deleted, and that is not
    /// an error.
    pub async fn record_receipt_stats(
        &self,
        tenant: &TenantId,
        id: &IncomingWebhookId,
        received_at: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::tenant_pk(tenant)))
            .key(keys::SK, s(keys::incoming_webhook_sk(id.as_str())))
            .update_expression("ADD totalReceived :one SET lastReceivedAt = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", s(received_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(())
            }
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_secret_verifies_only_until_it_expires() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .expect("now")
            .with_timezone(&Utc);
        let mut secrets = VerificationSecrets {
            secret: Some("new".into()),
            verify_token: None,
            previous_secret: Some("old".into()),
            previous_expires_at: Some("2026-12-01T12:00:01.000Z".into()),
        };
        assert_eq!(secrets.valid_secrets(now), ["new", "old"]);
        secrets.previous_expires_at = Some("2026-12-01T12:00:00.000Z".into());
        assert_eq!(secrets.valid_secrets(now), ["new"]);
        assert!(VerificationSecrets::default().valid_secrets(now).is_empty());
    }

    #[test]
    fn secrets_serialise_with_the_documented_names_and_leave_absent_ones_out() {
        let secrets = VerificationSecrets {
            secret: Some("s".into()),
            verify_token: Some("t".into()),
            previous_secret: None,
            previous_expires_at: None,
        };
        assert_eq!(
            serde_json::to_value(&secrets).expect("json"),
            json!({"secret": "s", "verifyToken": "t"})
        );
    }
}
