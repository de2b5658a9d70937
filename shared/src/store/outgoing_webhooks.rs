//! Outgoing webhooks in the table: the tenant's endpoints that events are delivered to. The signing
//! secret is only in `secret`, an envelope of `{current, previous?, previousExpiresAt?}` (AAD
//! `<tenant>/<webhookId>/secret`); everything else is configuration and delivery stats.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::query::{Page, PagedQuery};
use super::versioned::{version_of, VersionedChanges, VersionedUpdateError};
use super::{aws_error, keys, s, timestamp, to_attribute, InvalidCursor, Item, Store, StoreError};
use crate::catalog::RateLimit;
use crate::crypto::{field, SecretSlot};
use crate::domain::{Description, DisplayName, OutgoingWebhookId, TenantId};
use crate::events::Triggers;
use crate::webhooks::sign::SignatureScheme;

/// The HTTP method of deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeliveryMethod {
    #[default]
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
}

/// The signing secrets, as sealed in the envelope (never stored or returned in plaintext).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningSecrets {
    pub current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// RFC 3339: until then deliveries carry both signatures, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_expires_at: Option<String>,
}

impl zeroize::Zeroize for SigningSecrets {
    fn zeroize(&mut self) {
        self.current.zeroize();
        if let Some(previous) = &mut self.previous {
            previous.zeroize();
        }
    }
}

/// An outgoing webhook as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingWebhookItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub id: OutgoingWebhookId,
    pub tenant_id: TenantId,
    pub name: DisplayName,
    pub description: Option<Description>,
    pub url: String,
    pub method: DeliveryMethod,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub triggers: Triggers,
    pub payload_template: Option<String>,
    pub sign_requests: bool,
    pub signature_scheme: SignatureScheme,
    pub signature_header: String,
    pub retry_attempts: u32,
    pub retry_delay_seconds: u32,
    pub timeout_seconds: u32,
    pub rate_limit: Option<RateLimit>,
    pub is_enabled: bool,
    /// Why the hub disabled it (410 from the target, 50 exhausted deliveries in a row), if it did.
    pub disabled_reason: Option<String>,
    /// The signing secrets envelope (binary attribute), AAD `<tenant>/<id>/secret`.
    pub secret: serde_bytes::ByteBuf,
    pub last_sent_at: Option<String>,
    pub last_status: Option<String>,
    #[serde(default)]
    pub total_sent: u64,
    #[serde(default)]
    pub total_failed: u64,
    /// Exhausted deliveries since the last success (50 disables the webhook); internal.
    #[serde(default)]
    pub consecutive_exhausted: u64,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
}

/// Everything that defines a new outgoing webhook.
#[derive(Debug, Clone)]
pub struct NewOutgoingWebhook {
    pub id: OutgoingWebhookId,
    pub tenant: TenantId,
    pub name: DisplayName,
    pub description: Option<Description>,
    pub url: String,
    pub method: DeliveryMethod,
    pub headers: BTreeMap<String, String>,
    pub triggers: Triggers,
    pub payload_template: Option<String>,
    pub sign_requests: bool,
    pub signature_scheme: SignatureScheme,
    pub signature_header: String,
    pub retry_attempts: u32,
    pub retry_delay_seconds: u32,
    pub timeout_seconds: u32,
    pub rate_limit: Option<RateLimit>,
    pub is_enabled: bool,
    /// The sealed [`SigningSecrets`].
    pub secret_envelope: Vec<u8>,
    pub created_by: Option<String>,
}

impl OutgoingWebhookItem {
    pub fn new(new: NewOutgoingWebhook, now: chrono::DateTime<chrono::Utc>) -> OutgoingWebhookItem {
        let at = timestamp(now);
        OutgoingWebhookItem {
            pk: keys::tenant_pk(&new.tenant),
            sk: keys::outgoing_webhook_sk(new.id.as_str()),
            kind: "outgoing_webhook".to_string(),
            id: new.id,
            tenant_id: new.tenant,
            name: new.name,
            description: new.description,
            url: new.url,
            method: new.method,
            headers: new.headers,
            triggers: new.triggers,
            payload_template: new.payload_template,
            sign_requests: new.sign_requests,
            signature_scheme: new.signature_scheme,
            signature_header: new.signature_header,
            retry_attempts: new.retry_attempts,
            retry_delay_seconds: new.retry_delay_seconds,
            timeout_seconds: new.timeout_seconds,
            rate_limit: new.rate_limit,
            is_enabled: new.is_enabled,
            disabled_reason: None,
            secret: serde_bytes::ByteBuf::from(new.secret_envelope),
            last_sent_at: None,
            last_status: None,
            total_sent: 0,
            total_failed: 0,
            consecutive_exhausted: 0,
            version: 1,
            created_at: at.clone(),
            updated_at: at,
            created_by: new.created_by,
        }
    }

    /// The resource as the API shows it: never the secret.
    pub fn to_resource(&self) -> Value {
        json!({
            "id": self.id,
            "tenantId": self.tenant_id,
            "name": self.name,
            "description": self.description,
            "url": self.url,
            "method": self.method,
            "headers": self.headers,
            "triggers": self.triggers,
            "payloadTemplate": self.payload_template,
            "signRequests": self.sign_requests,
            "signatureScheme": self.signature_scheme,
            "signatureHeader": self.signature_header,
            "retryAttempts": self.retry_attempts,
            "retryDelaySeconds": self.retry_delay_seconds,
            "timeoutSeconds": self.timeout_seconds,
            "rateLimit": self.rate_limit,
            "isEnabled": self.is_enabled,
            "disabledReason": self.disabled_reason,
            "lastSentAt": self.last_sent_at,
            "lastStatus": self.last_status,
            "totalSent": self.total_sent,
            "totalFailed": self.total_failed,
            "version": self.version,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "createdBy": self.created_by,
        })
    }

    fn from_item(item: Item) -> Result<OutgoingWebhookItem, StoreError> {
        serde_dynamo::from_item(item)
            .map_err(|e| StoreError::Corrupt(format!("outgoing webhook item: {e}")))
    }
}

/// What PATCH may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OutgoingWebhookChanges {
    pub name: Option<DisplayName>,
    pub description: Option<Option<Description>>,
    pub url: Option<String>,
    pub method: Option<DeliveryMethod>,
    pub headers: Option<BTreeMap<String, String>>,
    pub triggers: Option<Triggers>,
    pub payload_template: Option<Option<String>>,
    pub sign_requests: Option<bool>,
    pub signature_scheme: Option<SignatureScheme>,
    pub signature_header: Option<String>,
    pub retry_attempts: Option<u32>,
    pub retry_delay_seconds: Option<u32>,
    pub timeout_seconds: Option<u32>,
    pub rate_limit: Option<Option<RateLimit>>,
    pub is_enabled: Option<bool>,
    /// A new secrets envelope (rotation).
    pub secret_envelope: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateWebhookError {
    #[error("webhook not found")]
    NotFound,
    #[error("version mismatch: the current version is {current}")]
    VersionMismatch { current: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Seals a webhook's signing secrets (owner = the webhook id, field `secret`).
    pub async fn seal_signing_secrets(
        &self,
        tenant: &TenantId,
        id: &OutgoingWebhookId,
        secrets: &SigningSecrets,
    ) -> Result<Vec<u8>, StoreError> {
        let slot = SecretSlot::new(tenant.as_str(), id.as_str(), field::SECRET);
        Ok(self.cipher().seal_json(slot, secrets).await?)
    }

    /// Opens the signing secrets of a stored webhook.
    pub async fn open_signing_secrets(
        &self,
        webhook: &OutgoingWebhookItem,
    ) -> Result<SigningSecrets, StoreError> {
        let slot = SecretSlot::new(
            webhook.tenant_id.as_str(),
            webhook.id.as_str(),
            field::SECRET,
        );
        Ok(self
            .cipher()
            .open_json(slot, webhook.secret.as_ref())
            .await?)
    }

    pub async fn create_outgoing_webhook(
        &self,
        item: &OutgoingWebhookItem,
    ) -> Result<(), StoreError> {
        self.put_new(item).await
    }

    pub async fn get_outgoing_webhook(
        &self,
        tenant: &TenantId,
        id: &OutgoingWebhookId,
    ) -> Result<Option<OutgoingWebhookItem>, StoreError> {
        self.get_tenant_item(tenant, keys::outgoing_webhook_sk(id.as_str()))
            .await?
            .map(OutgoingWebhookItem::from_item)
            .transpose()
    }

    pub async fn list_outgoing_webhooks(
        &self,
        tenant: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Result<Page<OutgoingWebhookItem>, InvalidCursor>, StoreError> {
        let query = PagedQuery::new(
            keys::tenant_pk(tenant),
            keys::OUTGOING_WEBHOOK_SK_PREFIX,
            limit,
        );
        self.list_page(tenant, "webhooks/outgoing", cursor, query)
            .await
    }

    /// Every enabled outgoing webhook of the tenant (what an emitted event is matched against).
    pub async fn enabled_outgoing_webhooks(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<OutgoingWebhookItem>, StoreError> {
        let query = self
            .dynamo()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .filter_expression("#enabled = :yes")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_names("#enabled", "isEnabled")
            .expression_attribute_values(":pk", s(keys::tenant_pk(tenant)))
            .expression_attribute_values(":prefix", s(keys::OUTGOING_WEBHOOK_SK_PREFIX))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .consistent_read(true);
        self.query_all(query)
            .await?
            .into_iter()
            .map(OutgoingWebhookItem::from_item)
            .collect()
    }

    /// Applies `changes` and bumps `version`, if the version is still `expected_version` (when given).
    pub async fn update_outgoing_webhook(
        &self,
        tenant: &TenantId,
        id: &OutgoingWebhookId,
        changes: OutgoingWebhookChanges,
        expected_version: Option<u64>,
    ) -> Result<OutgoingWebhookItem, UpdateWebhookError> {
        let mut write = VersionedChanges::default();
        if let Some(name) = changes.name {
            write.set("name", s(name));
        }
        if let Some(description) = changes.description {
            write.set_or_null("description", description.map(|d| s(String::from(d))));
        }
        if let Some(url) = changes.url {
            write.set("url", s(url));
        }
        if let Some(method) = &changes.method {
            write.set("method", to_attribute(method)?);
        }
        if let Some(headers) = &changes.headers {
            write.set("headers", to_attribute(headers)?);
        }
        if let Some(triggers) = &changes.triggers {
            write.set("triggers", to_attribute(triggers)?);
        }
        if let Some(template) = changes.payload_template {
            write.set_or_null("payloadTemplate", template.map(s));
        }
        if let Some(sign) = changes.sign_requests {
            write.set("signRequests", AttributeValue::Bool(sign));
        }
        if let Some(scheme) = &changes.signature_scheme {
            write.set("signatureScheme", to_attribute(scheme)?);
        }
        if let Some(header) = changes.signature_header {
            write.set("signatureHeader", s(header));
        }
        for (name, value) in [
            ("retryAttempts", changes.retry_attempts),
            ("retryDelaySeconds", changes.retry_delay_seconds),
            ("timeoutSeconds", changes.timeout_seconds),
        ] {
            if let Some(value) = value {
                write.set(name, super::n(value));
            }
        }
        if let Some(rate_limit) = &changes.rate_limit {
            let value = rate_limit.as_ref().map(to_attribute).transpose()?;
            write.set_or_null("rateLimit", value);
        }
        if let Some(enabled) = changes.is_enabled {
            write.set("isEnabled", AttributeValue::Bool(enabled));
            if enabled {
                // Enabling again clears why the hub had disabled it.
                write.set_or_null("disabledReason", None);
                write.set("consecutiveExhausted", super::n(0));
            }
        }
        if let Some(envelope) = changes.secret_envelope {
            write.set("secret", AttributeValue::B(envelope.into()));
        }
        let updated = self
            .update_versioned(
                keys::tenant_pk(tenant),
                keys::outgoing_webhook_sk(id.as_str()),
                write,
                expected_version,
            )
            .await;
        match updated {
            Ok(item) => Ok(OutgoingWebhookItem::from_item(item)?),
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
    pub async fn delete_outgoing_webhook(
        &self,
        tenant: &TenantId,
        id: &OutgoingWebhookId,
    ) -> Result<Option<OutgoingWebhookItem>, StoreError> {
        let result = self
            .dynamo()
            .delete_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::tenant_pk(tenant)))
            .key(keys::SK, s(keys::outgoing_webhook_sk(id.as_str())))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .map(OutgoingWebhookItem::from_item)
                .transpose(),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(None)
            }
            Err(error) => Err(aws_error("DeleteItem", error)),
        }
    }
}
