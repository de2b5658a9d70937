//! The one DynamoDB key scheme of the product (also written down in docs/data-model.md).
//!
//! One table; partition key `pk`, sort key `sk`, both strings; one sparse GSI `gsi1` (`gsi1pk`,
//! `gsi1sk`) for work that is due. Every tenant-owned item lives under a partition that starts with
//! `TENANT#<tenantId>`, and every read builds that prefix from the verified tenant, never from input.
//! Tenant ids cannot contain `#` (see `TenantId`), so one tenant's prefix is never another's.

use super::DueIntegration;
use crate::domain::{IntegrationId, RemoteId, TenantId};
use crate::events::EntityName;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// The sparse token-expiry index: OAuth integrations by access-token expiry.
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
/// The one partition of `gsi2`: an OAuth integration carries `gsi2pk = TOKEN_DUE` and
/// `gsi2sk = <tokenExpiresAt>#<tenantId>#<integrationId>` while its token has a known expiry and it
/// is not `expired`, so the schedule finds the tokens to refresh with one Query. The sort key has
/// the sync-due index's shape (`sync_due_sk`, `parse_sync_due_sk`).
pub const TOKEN_DUE_PK: &str = "TOKEN_DUE";
/// Epoch seconds; DynamoDB TTL removes the item some time after, and reads ignore it at once.
pub const EXPIRES_AT: &str = "expiresAt";

/// The partition of a tenant's resources: integrations, connection-key claims, rate buckets.
pub fn tenant_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}")
}

pub const INTEGRATION_SK_PREFIX: &str = "INT#";

/// An integration: `pk = TENANT#<t>`, `sk = INT#<integrationId>` (ids sort by creation time).
pub fn integration_sk(integration_id: &str) -> String {
    format!("{INTEGRATION_SK_PREFIX}{integration_id}")
}

/// The claim that makes `(tenant, provider, connectionKey)` unique: written in the same transaction
/// as the integration, with `attribute_not_exists`.
pub fn connection_sk(provider: &str, connection_key: &str) -> String {
    format!("CONN#{provider}#{connection_key}")
}

/// A tenant's own OAuth app for a provider: `pk = TENANT#<t>`, `sk = OAUTHAPP#<slug>`.
pub fn oauth_app_sk(provider: &str) -> String {
    format!("OAUTHAPP#{provider}")
}

/// A pending connect flow, found by the SHA-256 (hex) of its state alone: the callback is public
/// and learns the tenant from this item.
pub fn oauth_state_pk(state_key: &str) -> String {
    format!("OAUTHSTATE#{state_key}")
}

pub const OAUTH_STATE_SK: &str = "STATE";

/// The partition of one integration's logs, newest first by `sk`.
pub fn integration_logs_pk(tenant: &TenantId, integration_id: &str) -> String {
    format!("TENANT#{tenant}#INTLOG#{integration_id}")
}

pub const LOG_SK_PREFIX: &str = "LOG#";

pub fn log_sk(log_id: &str) -> String {
    format!("{LOG_SK_PREFIX}{log_id}")
}

/// The partition of one integration's records, every local entity together, so deleting the
/// integration removes them all with one paged Query.
pub fn records_pk(tenant: &TenantId, integration_id: &str) -> String {
    format!("TENANT#{tenant}#REC#{integration_id}")
}

/// The sort-key prefix of one entity's records. Entity names have no `#`, so one entity's prefix
/// is never the start of another's, and the remote id after it needs no escaping.
pub fn record_entity_prefix(entity: &EntityName) -> String {
    format!("REC#{entity}#")
}

/// A record: `sk = REC#<entity>#<remoteId>`, the remote id as given (any text, `#` included).
pub fn record_sk(entity: &EntityName, remote_id: &RemoteId) -> String {
    format!("{}{remote_id}", record_entity_prefix(entity))
}

pub const INCOMING_WEBHOOK_SK_PREFIX: &str = "WHIN#";

/// An incoming webhook: `pk = TENANT#<t>`, `sk = WHIN#<webhookId>`.
pub fn incoming_webhook_sk(webhook_id: &str) -> String {
    format!("{INCOMING_WEBHOOK_SK_PREFIX}{webhook_id}")
}

pub const OUTGOING_WEBHOOK_SK_PREFIX: &str = "WHOUT#";

/// An outgoing webhook: `pk = TENANT#<t>`, `sk = WHOUT#<webhookId>`.
pub fn outgoing_webhook_sk(webhook_id: &str) -> String {
    format!("{OUTGOING_WEBHOOK_SK_PREFIX}{webhook_id}")
}

/// The start slots of an outgoing webhook's `rateLimit` (a webhook id has no `#`, a provider slug
/// neither, so this never meets a provider's bucket).
pub fn webhook_rate_bucket_sk(webhook_id: &str) -> String {
    format!("RATE#WHOUT#{webhook_id}")
}

/// The partition of one outgoing webhook's deliveries.
pub fn deliveries_pk(tenant: &TenantId, webhook_id: &str) -> String {
    format!("TENANT#{tenant}#DLV#{webhook_id}")
}

pub const DELIVERY_SK_PREFIX: &str = "DLV#";

pub fn delivery_sk(delivery_id: &str) -> String {
    format!("{DELIVERY_SK_PREFIX}{delivery_id}")
}

/// The partition of one webhook's attempt logs (outgoing) or receipt logs (incoming), newest first.
pub fn webhook_logs_pk(tenant: &TenantId, webhook_id: &str) -> String {
    format!("TENANT#{tenant}#WHLOG#{webhook_id}")
}

/// `gsi1pk` of a webhook log: finds it by id alone (`GET /api/webhook-logs/{logId}`).
pub fn webhook_log_lookup_pk(tenant: &TenantId, log_id: &str) -> String {
    format!("WHLOG#{tenant}#{log_id}")
}

/// `gsi1sk` of a webhook log (the index's range key must be present for the item to be indexed).
pub const WEBHOOK_LOG_LOOKUP_SK: &str = "LOG";

/// The partition of an integration's action idempotency keys.
pub fn idempotency_pk(tenant: &TenantId, integration_id: &str) -> String {
    format!("IDEMPOTENCY#{tenant}#{integration_id}")
}

/// One idempotency key of one action: the SHA-256 (hex) of the caller's key, so the table holds
/// no caller text.
pub fn idempotency_sk(action: &str, key_hash: &str) -> String {
    format!("{action}#{key_hash}")
}

/// A per-(tenant, provider) token bucket shared by every function (the catalog's `sync.rateLimit`).
pub fn rate_bucket_sk(provider: &str) -> String {
    format!("RATE#{provider}")
}

/// The one partition of the sparse sync-due index (`gsi1`): an integration carries
/// `gsi1pk = SYNC_DUE` and `gsi1sk = <nextSyncAt>#<tenantId>#<integrationId>` exactly while it has a
/// `nextSyncAt`, so the scheduler finds what is due with one Query (`gsi1sk <= <now>#~`), oldest first.
pub const SYNC_DUE_PK: &str = "SYNC_DUE";

pub fn sync_due_sk(
    next_sync_at: &str,
    tenant: &TenantId,
    integration_id: &IntegrationId,
) -> String {
    format!("{next_sync_at}#{tenant}#{integration_id}")
}

/// The highest sort key due at `now` (an RFC 3339 timestamp of the same format): `~` sorts after
/// every character a tenant id or integration id may contain.
pub fn sync_due_upper_bound(now: &str) -> String {
    format!("{now}#~")
}

/// The tenant and integration of a sync-due sort key.
pub fn parse_sync_due_sk(sk: &str) -> Option<DueIntegration> {
    let mut parts = sk.splitn(3, '#');
    let next_sync_at = parts.next()?.to_string();
    let tenant = TenantId::parse(parts.next()?).ok()?;
    let id = IntegrationId::parse(parts.next()?).ok()?;
    Some(DueIntegration {
        tenant,
        id,
        next_sync_at,
    })
}

/// Items that belong to no tenant (the cursor-signing key).
pub const SYSTEM_PK: &str = "SYSTEM";
pub const CURSOR_KEY_SK: &str = "CURSOR_KEY";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_scheme() {
        let tenant = TenantId::parse("acme").expect("valid");
        assert_eq!(tenant_pk(&tenant), "TENANT#acme");
        assert_eq!(integration_sk("int_1"), "INT#int_1");
        assert_eq!(connection_sk("stripe", "default"), "CONN#stripe#default");
        assert_eq!(
            integration_logs_pk(&tenant, "int_1"),
            "TENANT#acme#INTLOG#int_1"
        );
        assert_eq!(log_sk("log_1"), "LOG#log_1");
        assert_eq!(records_pk(&tenant, "int_1"), "TENANT#acme#REC#int_1");
        let meeting = EntityName::parse("meeting").expect("entity");
        let remote = RemoteId::parse("a#b/ש").expect("remote id");
        assert_eq!(record_sk(&meeting, &remote), "REC#meeting#a#b/ש");
        assert!(record_sk(&meeting, &remote).starts_with(&record_entity_prefix(&meeting)));
        let longer = EntityName::parse("meeting_room").expect("entity");
        assert!(!record_sk(&longer, &remote).starts_with(&record_entity_prefix(&meeting)));
        assert_eq!(rate_bucket_sk("stripe"), "RATE#stripe");
        assert_eq!(webhook_rate_bucket_sk("whout_1"), "RATE#WHOUT#whout_1");
        assert_eq!(incoming_webhook_sk("whin_1"), "WHIN#whin_1");
        assert_eq!(deliveries_pk(&tenant, "whout_1"), "TENANT#acme#DLV#whout_1");
        assert_eq!(delivery_sk("dlv_1"), "DLV#dlv_1");
        assert_eq!(
            webhook_logs_pk(&tenant, "whout_1"),
            "TENANT#acme#WHLOG#whout_1"
        );
        assert_eq!(webhook_log_lookup_pk(&tenant, "log_1"), "WHLOG#acme#log_1");
        let id = IntegrationId::generate();
        let sk = sync_due_sk("2026-12-01T10:00:00.000Z", &tenant, &id);
        assert_eq!(sk, format!("2026-12-01T10:00:00.000Z#acme#{id}"));
        let due = parse_sync_due_sk(&sk).expect("parses back");
        assert_eq!((due.tenant, due.id), (tenant, id));
        assert!(sk.as_str() <= sync_due_upper_bound("2026-12-01T10:00:00.000Z").as_str());
        assert!(sk.as_str() > sync_due_upper_bound("2026-12-01T09:59:59.999Z").as_str());
    }
}
