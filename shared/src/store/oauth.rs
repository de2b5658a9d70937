//! OAuth in the table: tenants' OAuth apps, single-use connect states, and the token writes of an
//! OAuth integration (reconnect, the refresh lease, refreshed tokens, a refused refresh).
//!
//! The refresh lease lives on the integration item itself (`refreshLeaseOwner`,
//! `refreshLeaseUntil`), taken with one conditional write that also requires the token generation
//! the taker read: whoever holds it is the only process that may spend the refresh token, and a
//! caller that lost the race reads the new tokens instead of refreshing again.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use serde::{Deserialize, Serialize};

use super::integrations::{IntegrationItem, StatusTransition};
use super::{
    aws_error, keys, n, now_epoch_seconds, s, timestamp, unless_condition_failed, Item, Store,
    StoreError,
};
use crate::domain::{ConnectionKey, IntegrationId, IntegrationStatus, ProviderSlug, TenantId};

/// A tenant's own OAuth app for one provider. The client secret is only an envelope
/// (`<tenant>/oauth-app:<slug>/clientSecret`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthAppItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub tenant_id: TenantId,
    pub provider: ProviderSlug,
    pub client_id: String,
    pub client_secret: serde_bytes::ByteBuf,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl OAuthAppItem {
    pub fn new(
        tenant: &TenantId,
        provider: &ProviderSlug,
        client_id: String,
        client_secret_envelope: Vec<u8>,
        scopes: Vec<String>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> OAuthAppItem {
        OAuthAppItem {
            pk: keys::tenant_pk(tenant),
            sk: keys::oauth_app_sk(provider.as_str()),
            kind: "oauth_app".to_string(),
            tenant_id: tenant.clone(),
            provider: provider.clone(),
            client_id,
            client_secret: serde_bytes::ByteBuf::from(client_secret_envelope),
            scopes,
            created_at: timestamp(now),
            updated_at: timestamp(now),
        }
    }
}

/// A connect flow waiting for its callback. Keyed by the SHA-256 of the state value, so the table
/// never holds a state that could be presented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthStateItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub tenant_id: TenantId,
    /// The `sub` of the user who started the flow.
    pub user: Option<String>,
    pub provider: ProviderSlug,
    pub connection_key: ConnectionKey,
    pub return_url: String,
    /// Every scope requested at the authorize endpoint (catalog or app scopes plus extras).
    pub scopes: Vec<String>,
    /// The PKCE verifier, when PKCE is used (see docs/decisions.md, "OAuth").
    pub pkce_verifier: Option<String>,
    pub created_at: String,
    /// Epoch seconds: TTL, and the read-time expiry check (TTL deletes late).
    pub expires_at: i64,
}

/// What a connect flow binds its state to.
#[derive(Debug, Clone)]
pub struct NewOAuthState {
    pub state_key: String,
    pub tenant: TenantId,
    pub user: Option<String>,
    pub provider: ProviderSlug,
    pub connection_key: ConnectionKey,
    pub return_url: String,
    pub scopes: Vec<String>,
    pub pkce_verifier: Option<String>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The outcome of trying to take the refresh lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseAttempt {
    Acquired,
    /// Another process holds it, or the tokens changed since they were read.
    Busy,
    /// The integration is gone.
    Gone,
}

/// Tokens to store after a successful grant.
#[derive(Debug, Clone)]
pub struct TokenWrite {
    /// The sealed token set.
    pub envelope: Vec<u8>,
    pub token_expires_at: Option<String>,
    pub scopes: Vec<String>,
}

impl Store {
    /// Creates or replaces the tenant's OAuth app for a provider (keeping its creation time).
    pub async fn put_oauth_app(&self, app: &OAuthAppItem) -> Result<OAuthAppItem, StoreError> {
        let out = self
            .dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(app.pk.clone()))
            .key(keys::SK, s(app.sk.clone()))
            .update_expression(
                "SET #type = :type, tenantId = :tenant, provider = :provider, clientId = :clientId, \
                 clientSecret = :secret, scopes = :scopes, updatedAt = :now, \
                 createdAt = if_not_exists(createdAt, :now)",
            )
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":type", s(app.kind.clone()))
            .expression_attribute_values(":tenant", s(app.tenant_id.as_str()))
            .expression_attribute_values(":provider", s(app.provider.as_str()))
            .expression_attribute_values(":clientId", s(app.client_id.clone()))
            .expression_attribute_values(
                ":secret",
                AttributeValue::B(app.client_secret.to_vec().into()),
            )
            .expression_attribute_values(
                ":scopes",
                AttributeValue::L(app.scopes.iter().cloned().map(s).collect()),
            )
            .expression_attribute_values(":now", s(app.updated_at.clone()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| aws_error("UpdateItem", e))?;
        from_item(out.attributes.unwrap_or_default(), "oauth app")
    }

    pub async fn get_oauth_app(
        &self,
        tenant: &TenantId,
        provider: &ProviderSlug,
    ) -> Result<Option<OAuthAppItem>, StoreError> {
        self.get_tenant_item(tenant, keys::oauth_app_sk(provider.as_str()))
            .await?
            .map(|item| from_item(item, "oauth app"))
            .transpose()
    }

    /// Stores a new connect state (its key is fresh: a collision is refused, never overwritten).
    pub async fn put_oauth_state(&self, state: NewOAuthState) -> Result<(), StoreError> {
        let item = OAuthStateItem {
            pk: keys::oauth_state_pk(&state.state_key),
            sk: keys::OAUTH_STATE_SK.to_string(),
            kind: "oauth_state".to_string(),
            tenant_id: state.tenant,
            user: state.user,
            provider: state.provider,
            connection_key: state.connection_key,
            return_url: state.return_url,
            scopes: state.scopes,
            pkce_verifier: state.pkce_verifier,
            created_at: timestamp(chrono::Utc::now()),
            expires_at: state.expires_at.timestamp(),
        };
        self.put_new(&item).await
    }

    /// Consumes a state: one conditional delete that succeeds only for a state that exists and
    /// has not expired, so a second use (or a late one) finds nothing.
    pub async fn take_oauth_state(
        &self,
        state_key: &str,
    ) -> Result<Option<OAuthStateItem>, StoreError> {
        let out = self
            .dynamo()
            .delete_item()
            .table_name(self.table())
            .key(keys::PK, s(keys::oauth_state_pk(state_key)))
            .key(keys::SK, s(keys::OAUTH_STATE_SK))
            .condition_expression("attribute_exists(pk) AND #expiresAt > :now")
            .expression_attribute_names("#expiresAt", keys::EXPIRES_AT)
            .expression_attribute_values(":now", n(now_epoch_seconds()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        unless_condition_failed("DeleteItem", out)?
            .and_then(|out| out.attributes)
            .map(|item| from_item(item, "oauth state"))
            .transpose()
    }

    /// The integration holding `(tenant, provider, connectionKey)`, if any.
    pub async fn integration_for_connection(
        &self,
        tenant: &TenantId,
        provider: &ProviderSlug,
        connection_key: &ConnectionKey,
    ) -> Result<Option<IntegrationId>, StoreError> {
        let claim = self
            .get_tenant_item(
                tenant,
                keys::connection_sk(provider.as_str(), connection_key.as_str()),
            )
            .await?;
        claim
            .as_ref()
            .and_then(|item| item.get("integrationId"))
            .and_then(|value| value.as_s().ok())
            .map(|raw| {
                IntegrationId::parse(raw)
                    .map_err(|_| StoreError::Corrupt("a connection claim is unreadable".into()))
            })
            .transpose()
    }

    /// Stores the tokens of a completed connect flow on an existing integration: `connected`, no
    /// error, a new token generation, any refresh lease dropped, and `config` when the callback
    /// brought settings; a change clients see, so `version` moves. Returns the status before and
    /// the integration after.
    pub async fn reconnect_integration(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        tokens: TokenWrite,
        connected_by: Option<String>,
        config: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Option<StatusTransition>, StoreError> {
        let (mut due_values, mut due_set, due_remove) = token_due(tenant, id, &tokens);
        let config_set;
        if let Some(config) = config {
            due_values.insert(":config".to_string(), super::to_attribute(config)?);
            config_set = format!("{due_set}, config = :config");
            due_set = &config_set;
        }
        let out = self
            .integration_update(tenant, id)
            .set_expression_attribute_values(Some(due_values))
            .update_expression(format!(
                "SET credentials = :credentials, credentialHint = :null, scopes = :scopes, \
                 tokenExpiresAt = :expiresAt, #status = :connected, lastError = :null, \
                 connectedBy = :connectedBy, updatedAt = :now, version = version + :one, \
                 tokenGeneration = if_not_exists(tokenGeneration, :zero) + :one{} \
                 REMOVE refreshLeaseOwner, refreshLeaseUntil, tokenExpiringNotified{}",
                due_set, due_remove,
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":credentials", AttributeValue::B(tokens.envelope.into()))
            .expression_attribute_values(":scopes", scope_list(&tokens.scopes))
            .expression_attribute_values(":expiresAt", optional(tokens.token_expires_at))
            .expression_attribute_values(":connected", s(IntegrationStatus::Connected.as_str()))
            .expression_attribute_values(":connectedBy", optional(connected_by))
            .expression_attribute_values(":null", AttributeValue::Null(true))
            .expression_attribute_values(":now", s(timestamp(chrono::Utc::now())))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        self.transition_from_old(out).await
    }

    /// Takes the refresh lease if nobody holds a live one and the tokens are still those of
    /// `seen_generation`.
    pub async fn acquire_refresh_lease(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        owner: &str,
        seen_generation: Option<u64>,
        lease: std::time::Duration,
    ) -> Result<LeaseAttempt, StoreError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let generation = match seen_generation {
            Some(_) => "tokenGeneration = :generation",
            None => "attribute_not_exists(tokenGeneration)",
        };
        let mut request = self
            .integration_update(tenant, id)
            .update_expression("SET refreshLeaseOwner = :owner, refreshLeaseUntil = :until")
            .condition_expression(format!(
                "attribute_exists(pk) AND {generation} AND \
                 (attribute_not_exists(refreshLeaseUntil) OR refreshLeaseUntil < :now)"
            ))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(now_ms + lease.as_millis() as i64))
            .expression_attribute_values(":now", n(now_ms));
        if let Some(generation) = seen_generation {
            request = request.expression_attribute_values(":generation", n(generation));
        }
        match request
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
        {
            Ok(_) => Ok(LeaseAttempt::Acquired),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                let exists = match service.err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => {
                        failed.item().is_some_and(|item| !item.is_empty())
                    }
                    _ => true,
                };
                Ok(if exists {
                    LeaseAttempt::Busy
                } else {
                    LeaseAttempt::Gone
                })
            }
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }

    /// Stores refreshed tokens and drops the lease. `version` does not move: a refresh is not a
    /// change of what clients wrote. Returns the integration as stored.
    pub async fn save_refreshed_tokens(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        tokens: TokenWrite,
    ) -> Result<Option<IntegrationItem>, StoreError> {
        let (due_values, due_set, due_remove) = token_due(tenant, id, &tokens);
        let out = self
            .integration_update(tenant, id)
            .set_expression_attribute_values(Some(due_values))
            .update_expression(format!(
                "SET credentials = :credentials, scopes = :scopes, tokenExpiresAt = :expiresAt, \
                 tokenGeneration = if_not_exists(tokenGeneration, :zero) + :one{} \
                 REMOVE refreshLeaseOwner, refreshLeaseUntil, tokenExpiringNotified{}",
                due_set, due_remove,
            ))
            .expression_attribute_values(":credentials", AttributeValue::B(tokens.envelope.into()))
            .expression_attribute_values(":scopes", scope_list(&tokens.scopes))
            .expression_attribute_values(":expiresAt", optional(tokens.token_expires_at))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        unless_condition_failed("UpdateItem", out)?
            .and_then(|out| out.attributes)
            .map(|item| from_item(item, "integration"))
            .transpose()
    }

    /// Gives the lease back without new tokens (the token endpoint was unavailable).
    pub async fn release_refresh_lease(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        owner: &str,
    ) -> Result<(), StoreError> {
        let out = self
            .update_integration_item(tenant, id)
            .update_expression("REMOVE refreshLeaseOwner, refreshLeaseUntil")
            .condition_expression("refreshLeaseOwner = :owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        // Not ours any more (it ran out and another holder took it): nothing to give back.
        unless_condition_failed("UpdateItem", out).map(|_| ())
    }

    /// The provider refused the refresh token: `expired` with the reason, lease dropped.
    pub async fn mark_refresh_refused(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        error: &str,
    ) -> Result<Option<StatusTransition>, StoreError> {
        let out = self
            .integration_update(tenant, id)
            .update_expression(
                "SET #status = :expired, lastError = :error \
                 REMOVE refreshLeaseOwner, refreshLeaseUntil, gsi2pk, gsi2sk",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expired", s(IntegrationStatus::Expired.as_str()))
            .expression_attribute_values(":error", s(error))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        self.transition_from_old(out).await
    }

    /// OAuth integrations whose access token expires at or before `before`, soonest first, from
    /// the sparse token-expiry index (the schedule's token sweep). At most `limit`.
    pub async fn tokens_expiring_before(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<super::DueIntegration>, StoreError> {
        let upper = keys::sync_due_upper_bound(&timestamp(before));
        let out = self
            .dynamo()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI2)
            .key_condition_expression("#pk = :pk AND #sk <= :upper")
            .expression_attribute_names("#pk", keys::GSI2_PK)
            .expression_attribute_names("#sk", keys::GSI2_SK)
            .expression_attribute_values(":pk", s(keys::TOKEN_DUE_PK))
            .expression_attribute_values(":upper", s(upper))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| aws_error("Query", e))?;
        out.items()
            .iter()
            .map(|item| {
                item.get(keys::GSI2_SK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| keys::parse_sync_due_sk(sk))
                    .ok_or_else(|| {
                        StoreError::Corrupt("a token-expiry index entry is unreadable".into())
                    })
            })
            .collect()
    }

    /// Records that `integration.token_expiring` was announced for the token expiring at
    /// `expires_at`, and takes the integration out of the token-expiry index (nothing more can be
    /// done before a reconnect, which puts it back); `true` only for the first call per token (the
    /// event goes out once).
    pub async fn note_token_expiring(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        expires_at: &str,
    ) -> Result<bool, StoreError> {
        let out = self
            .integration_update(tenant, id)
            .update_expression("SET tokenExpiringNotified = :at REMOVE gsi2pk, gsi2sk")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(tokenExpiringNotified) OR tokenExpiringNotified <> :at)",
            )
            .expression_attribute_values(":at", s(expires_at))
            .send()
            .await;
        Ok(unless_condition_failed("UpdateItem", out)?.is_some())
    }

    /// An update of an integration that must still exist.
    fn integration_update(&self, tenant: &TenantId, id: &IntegrationId) -> UpdateItemFluentBuilder {
        self.update_integration_item(tenant, id)
            .condition_expression("attribute_exists(pk)")
    }

    /// One write returned the item as it was (`ALL_OLD`): the transition's `from` is its status,
    /// and the item after is read back (strongly consistent), so version, token generation and
    /// timestamps are the stored ones.
    async fn transition_from_old(
        &self,
        out: Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>,
    ) -> Result<Option<StatusTransition>, StoreError> {
        let Some(out) = unless_condition_failed("UpdateItem", out)? else {
            return Ok(None);
        };
        let old: IntegrationItem = from_item(out.attributes.unwrap_or_default(), "integration")?;
        let after = self.get_integration(&old.tenant_id, &old.id).await?;
        Ok(after.map(|item| StatusTransition {
            from: old.status,
            item,
        }))
    }
}

/// The token-expiry index entry a token write sets (its values, and the SET and REMOVE clauses):
/// set when the expiry is known, removed when it is not. The values go in first: the request's
/// other values are added to them.
fn token_due(
    tenant: &TenantId,
    id: &IntegrationId,
    tokens: &TokenWrite,
) -> (
    std::collections::HashMap<String, AttributeValue>,
    &'static str,
    &'static str,
) {
    match &tokens.token_expires_at {
        Some(at) => (
            std::collections::HashMap::from([
                (":tokenDuePk".to_string(), s(keys::TOKEN_DUE_PK)),
                (
                    ":tokenDueSk".to_string(),
                    s(keys::sync_due_sk(at, tenant, id)),
                ),
            ]),
            ", gsi2pk = :tokenDuePk, gsi2sk = :tokenDueSk",
            "",
        ),
        None => (Default::default(), "", ", gsi2pk, gsi2sk"),
    }
}

fn scope_list(scopes: &[String]) -> AttributeValue {
    AttributeValue::L(scopes.iter().cloned().map(s).collect())
}

fn optional(value: Option<String>) -> AttributeValue {
    value.map(s).unwrap_or(AttributeValue::Null(true))
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item, what: &str) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("{what} item: {e}")))
}
