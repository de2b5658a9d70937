//! What a warm function keeps of each webhook for [`crate::CONFIG_CACHE_TTL`]: the item and its
//! opened verification material (or the fact that there is no such webhook). A warm accept then
//! reads nothing from DynamoDB and calls KMS not at all. Concurrent requests that miss together
//! share one read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http::HeaderName;
use hub_shared::domain::{IncomingWebhookId, TenantId};
use hub_shared::store::{IncomingWebhookItem, Store, StoreError};
use hub_shared::webhooks::inbound::{parse_sendgrid_public_key, VerifyKeys};
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

/// At most this many webhooks are kept; past it the cache starts afresh (a bound on memory, not an
/// eviction policy: one function serves a handful of webhooks).
const MAX_ENTRIES: usize = 10_000;

/// A webhook ready to verify requests.
pub struct ReadyWebhook {
    pub item: IncomingWebhookItem,
    pub keys: VerifyKeys,
    pub verify_token: Option<Zeroizing<String>>,
    pub signature_header: Option<HeaderName>,
}

type Read = OnceCell<Option<Arc<ReadyWebhook>>>;
type Key = (TenantId, IncomingWebhookId);
/// When a read started, and the read.
type Entry = (Instant, Arc<Read>);

pub struct WebhookCache {
    ttl: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl WebhookCache {
    pub fn new(ttl: Duration) -> WebhookCache {
        WebhookCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The webhook, from the cache while fresh, else read (and its secrets opened) once.
    pub async fn get(
        &self,
        store: &Store,
        tenant: &TenantId,
        id: &IncomingWebhookId,
    ) -> Result<Option<Arc<ReadyWebhook>>, StoreError> {
        let cell = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (tenant.clone(), id.clone());
            let fresh = entries
                .get(&key)
                .filter(|(at, _)| at.elapsed() < self.ttl)
                .map(|(_, cell)| cell.clone());
            match fresh {
                Some(cell) => cell,
                None => {
                    if entries.len() >= MAX_ENTRIES {
                        entries.clear();
                    }
                    let cell = Arc::new(Read::new());
                    entries.insert(key, (Instant::now(), cell.clone()));
                    cell
                }
            }
        };
        let read = cell
            .get_or_try_init(|| async { load(store, tenant, id, Utc::now()).await })
            .await;
        if read.is_err() {
            // A failed read is not remembered: the next request tries again.
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries.remove(&(tenant.clone(), id.clone()));
        }
        read.cloned()
    }
}

async fn load(
    store: &Store,
    tenant: &TenantId,
    id: &IncomingWebhookId,
    now: DateTime<Utc>,
) -> Result<Option<Arc<ReadyWebhook>>, StoreError> {
    let Some(item) = store.get_incoming_webhook(tenant, id).await? else {
        return Ok(None);
    };
    let secrets = store.open_verification_secrets(&item).await?;
    let mut keys = Vec::new();
    if let Some(secret) = &secrets.secret {
        keys.push(Zeroizing::new(secret.clone()));
    }
    let previous_valid = secrets
        .previous_expires_at
        .as_deref()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .is_some_and(|at| now < at.with_timezone(&Utc));
    if let (Some(previous), true) = (&secrets.previous_secret, previous_valid) {
        keys.push(Zeroizing::new(previous.clone()));
    }
    let public_key = item
        .public_key
        .as_deref()
        .and_then(|key| parse_sendgrid_public_key(key).ok());
    let signature_header = item
        .signature_header
        .as_deref()
        .and_then(|name| HeaderName::from_bytes(name.as_bytes()).ok());
    Ok(Some(Arc::new(ReadyWebhook {
        verify_token: secrets.verify_token.clone().map(Zeroizing::new),
        keys: VerifyKeys {
            secrets: keys,
            public_key,
        },
        signature_header,
        item,
    })))
}
