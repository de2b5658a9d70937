//! In-memory data-key caches (at most 5 minutes and 1,000 uses on the encrypt side, at most 5
//! minutes on the decrypt side: docs/envelope-format.md), so that a warm function makes no KMS call per request.
//! Plaintext keys live only inside [`DataKey`], which zeroizes its bytes on drop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aes_gcm::{Aes256Gcm, Key, KeyInit};
use zeroize::Zeroizing;

/// Length of an AES-256 data key.
pub const DATA_KEY_LEN: usize = 32;

/// The time source of the caches; injectable so tests can prove expiry without waiting.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Instant;
}

/// The monotonic system clock, used in production.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to: for tests of cache expiry.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start: Instant,
    elapsed: Arc<Mutex<Duration>>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            elapsed: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        *lock(&self.elapsed) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *lock(&self.elapsed)
    }
}

/// How long and how often cached data keys are used. Values above the security limits
/// ([`CacheLimits::MAX_TTL`], [`CacheLimits::MAX_USES`]) are lowered to them when a cipher is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Age after which an encrypt-side data key is no longer used for new envelopes.
    pub data_key_ttl: Duration,
    /// Number of envelopes one encrypt-side data key may seal.
    pub data_key_max_uses: u32,
    /// Number of tenants whose encrypt-side data key is kept.
    pub data_key_tenants: usize,
    /// Age after which a decrypted data key must be decrypted by KMS again.
    pub decrypted_key_ttl: Duration,
    /// Number of decrypted data keys kept; the oldest is evicted first.
    pub decrypted_key_capacity: usize,
}

impl CacheLimits {
    /// Plaintext data keys are cached for at most 5 minutes.
    pub const MAX_TTL: Duration = Duration::from_secs(5 * 60);
    /// An encrypt-side data key is used at most 1,000 times.
    pub const MAX_USES: u32 = 1_000;

    pub(crate) fn within_security_limits(self) -> Self {
        Self {
            data_key_ttl: self.data_key_ttl.min(Self::MAX_TTL),
            data_key_max_uses: self.data_key_max_uses.min(Self::MAX_USES),
            decrypted_key_ttl: self.decrypted_key_ttl.min(Self::MAX_TTL),
            ..self
        }
    }
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            data_key_ttl: Self::MAX_TTL,
            data_key_max_uses: Self::MAX_USES,
            data_key_tenants: 10_000,
            decrypted_key_ttl: Self::MAX_TTL,
            decrypted_key_capacity: 10_000,
        }
    }
}

/// A plaintext AES-256 data key, zeroized on drop. Deliberately not `Debug` or `Clone`: it is shared
/// through `Arc` so the key bytes exist once.
pub struct DataKey(Zeroizing<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// Copies a key out of a KMS response buffer; `None` when it is not 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        if bytes.len() != DATA_KEY_LEN {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    pub fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0[..]))
    }
}

/// The data key a tenant's new envelopes are sealed with, and its encrypted form for the header.
pub struct ActiveDataKey {
    key: Arc<DataKey>,
    encrypted: Arc<[u8]>,
    created: Instant,
    uses: u32,
}

impl ActiveDataKey {
    pub fn new(key: Arc<DataKey>, encrypted: Arc<[u8]>, created: Instant) -> Self {
        Self {
            key,
            encrypted,
            created,
            uses: 0,
        }
    }

    /// A key just generated for a seal: that seal is its first use, whatever the limits.
    pub fn used_once(key: Arc<DataKey>, encrypted: Arc<[u8]>, created: Instant) -> Self {
        Self {
            uses: 1,
            ..Self::new(key, encrypted, created)
        }
    }

    /// Counts one use and returns the key, or `None` once it is too old or used up.
    pub fn take_use(
        &mut self,
        now: Instant,
        limits: &CacheLimits,
    ) -> Option<(Arc<DataKey>, Arc<[u8]>)> {
        if !self.is_usable(now, limits) {
            return None;
        }
        self.uses += 1;
        Some((Arc::clone(&self.key), Arc::clone(&self.encrypted)))
    }

    fn is_usable(&self, now: Instant, limits: &CacheLimits) -> bool {
        self.uses < limits.data_key_max_uses
            && now.saturating_duration_since(self.created) < limits.data_key_ttl
    }
}

/// One slot per tenant; the async mutex makes concurrent cold seals for a tenant wait for one
/// GenerateDataKey call instead of each making their own.
pub type TenantSlot = Arc<tokio::sync::Mutex<Option<ActiveDataKey>>>;

/// Encrypt side: the active data key per tenant.
pub struct EncryptCache {
    limits: CacheLimits,
    tenants: Mutex<HashMap<String, TenantSlot>>,
}

impl EncryptCache {
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            limits,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &CacheLimits {
        &self.limits
    }

    /// The tenant's slot, created on first use. Making room evicts only idle slots (no other task
    /// holds them): first expired ones, then the oldest.
    pub fn tenant_slot(&self, tenant_id: &str, now: Instant) -> TenantSlot {
        let mut tenants = lock(&self.tenants);
        if let Some(slot) = tenants.get(tenant_id) {
            return Arc::clone(slot);
        }
        if tenants.len() >= self.limits.data_key_tenants {
            self.make_room(&mut tenants, now);
        }
        let slot = TenantSlot::default();
        tenants.insert(tenant_id.to_owned(), Arc::clone(&slot));
        slot
    }

    fn make_room(&self, tenants: &mut HashMap<String, TenantSlot>, now: Instant) {
        // An idle slot has no other Arc holder, so `try_lock` cannot fail on it.
        let idle_age = |slot: &TenantSlot| -> Option<Option<Instant>> {
            if Arc::strong_count(slot) > 1 {
                return None;
            }
            let active = slot.try_lock().ok()?;
            Some(
                active
                    .as_ref()
                    .filter(|key| key.is_usable(now, &self.limits))
                    .map(|key| key.created),
            )
        };
        tenants.retain(|_, slot| !matches!(idle_age(slot), Some(None)));
        while tenants.len() >= self.limits.data_key_tenants {
            let oldest = tenants
                .iter()
                .filter_map(|(tenant, slot)| Some((tenant, idle_age(slot)??)))
                .min_by_key(|(_, created)| *created)
                .map(|(tenant, _)| tenant.clone());
            match oldest {
                Some(tenant) => tenants.remove(&tenant),
                // Every slot is in use right now: go over capacity rather than wait.
                None => break,
            };
        }
    }

    #[cfg(test)]
    fn tenant_count(&self) -> usize {
        lock(&self.tenants).len()
    }
}

struct CachedDataKey {
    tenant_id: String,
    key: Arc<DataKey>,
    inserted: Instant,
}

/// Decrypt side: plaintext data keys by their encrypted bytes. Each entry remembers the tenant whose
/// encryption context KMS accepted, and is used only for that tenant, so a cache hit never skips the
/// check KMS would make.
pub struct DecryptCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Vec<u8>, CachedDataKey>>,
}

impl DecryptCache {
    pub fn new(limits: &CacheLimits) -> Self {
        Self {
            ttl: limits.decrypted_key_ttl,
            capacity: limits.decrypted_key_capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, tenant_id: &str, encrypted: &[u8], now: Instant) -> Option<Arc<DataKey>> {
        let mut entries = lock(&self.entries);
        let entry = entries.get(encrypted)?;
        if now.saturating_duration_since(entry.inserted) >= self.ttl {
            entries.remove(encrypted);
            return None;
        }
        (entry.tenant_id == tenant_id).then(|| Arc::clone(&entry.key))
    }

    /// Remembers a key KMS released for `tenant_id`, evicting expired entries and then the oldest
    /// when full.
    pub fn insert(&self, tenant_id: &str, encrypted: &[u8], key: Arc<DataKey>, now: Instant) {
        if self.capacity == 0 || self.ttl.is_zero() {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity && !entries.contains_key(encrypted) {
            entries.retain(|_, entry| now.saturating_duration_since(entry.inserted) < self.ttl);
            while entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.inserted)
                    .map(|(encrypted, _)| encrypted.clone());
                match oldest {
                    Some(encrypted) => entries.remove(&encrypted),
                    None => break,
                };
            }
        }
        entries.insert(
            encrypted.to_vec(),
            CachedDataKey {
                tenant_id: tenant_id.to_owned(),
                key,
                inserted: now,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

/// A panic while a cache lock was held leaves the maps consistent (every update is one insert or
/// remove), so a poisoned lock is still used.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Arc<DataKey> {
        Arc::new(DataKey::from_slice(&[byte; DATA_KEY_LEN]).expect("32 bytes"))
    }

    fn same_key(a: &DataKey, b: &DataKey) -> bool {
        a.0[..] == b.0[..]
    }

    fn limits() -> CacheLimits {
        CacheLimits {
            data_key_ttl: Duration::from_secs(60),
            data_key_max_uses: 3,
            data_key_tenants: 2,
            decrypted_key_ttl: Duration::from_secs(60),
            decrypted_key_capacity: 2,
        }
    }

    #[test]
    fn data_key_must_be_exactly_32_bytes() {
        assert!(DataKey::from_slice(&[0; 31]).is_none());
        assert!(DataKey::from_slice(&[0; 33]).is_none());
        assert!(DataKey::from_slice(&[0; 32]).is_some());
    }

    #[test]
    fn limits_above_the_security_contract_are_lowered_to_it() {
        let generous = CacheLimits {
            data_key_ttl: Duration::from_secs(3600),
            data_key_max_uses: 1_000_000,
            decrypted_key_ttl: Duration::from_secs(3600),
            ..CacheLimits::default()
        };
        let bounded = generous.within_security_limits();
        assert_eq!(bounded.data_key_ttl, Duration::from_secs(300));
        assert_eq!(bounded.data_key_max_uses, 1_000);
        assert_eq!(bounded.decrypted_key_ttl, Duration::from_secs(300));
        assert_eq!(
            CacheLimits::default().within_security_limits(),
            CacheLimits::default()
        );
    }

    #[test]
    fn active_key_serves_exactly_max_uses_seals() {
        let clock = ManualClock::new();
        let mut active = ActiveDataKey::new(key(1), Arc::from(&b"blob"[..]), clock.now());
        for _ in 0..3 {
            assert!(active.take_use(clock.now(), &limits()).is_some());
        }
        assert!(active.take_use(clock.now(), &limits()).is_none());
    }

    #[test]
    fn freshly_generated_key_counts_its_first_seal() {
        let now = Instant::now();
        let mut active = ActiveDataKey::used_once(key(1), Arc::from(&b"blob"[..]), now);
        assert!(active.take_use(now, &limits()).is_some());
        assert!(active.take_use(now, &limits()).is_some());
        assert!(active.take_use(now, &limits()).is_none(), "3 uses in all");
    }

    #[test]
    fn active_key_expires_at_its_ttl() {
        let clock = ManualClock::new();
        let mut active = ActiveDataKey::new(key(1), Arc::from(&b"blob"[..]), clock.now());
        clock.advance(Duration::from_secs(59));
        assert!(active.take_use(clock.now(), &limits()).is_some());
        clock.advance(Duration::from_secs(1));
        assert!(active.take_use(clock.now(), &limits()).is_none());
    }

    #[test]
    fn tenant_slot_is_shared_for_one_tenant() {
        let cache = EncryptCache::new(limits());
        let now = Instant::now();
        let first = cache.tenant_slot("t1", now);
        let second = cache.tenant_slot("t1", now);
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &cache.tenant_slot("t2", now)));
    }

    #[test]
    fn full_encrypt_cache_evicts_the_oldest_idle_tenant() {
        // Given two tenants with fresh keys, t-old created before t-new
        let clock = ManualClock::new();
        let cache = EncryptCache::new(limits());
        for tenant in ["t-old", "t-new"] {
            let slot = cache.tenant_slot(tenant, clock.now());
            *slot.try_lock().expect("idle") = Some(ActiveDataKey::new(
                key(1),
                Arc::from(&b"b"[..]),
                clock.now(),
            ));
            clock.advance(Duration::from_secs(1));
        }
        // When a third tenant arrives
        cache.tenant_slot("t-third", clock.now());
        // Then the cache holds two slots and t-old's was the one dropped
        assert_eq!(cache.tenant_count(), 2);
        let t_new = cache.tenant_slot("t-new", clock.now());
        assert!(
            t_new.try_lock().expect("idle").is_some(),
            "t-new kept its key"
        );
    }

    #[test]
    fn busy_tenant_slots_are_never_evicted() {
        let cache = EncryptCache::new(limits());
        let now = Instant::now();
        let held_a = cache.tenant_slot("a", now);
        let held_b = cache.tenant_slot("b", now);
        cache.tenant_slot("c", now);
        assert_eq!(
            cache.tenant_count(),
            3,
            "over capacity rather than drop a busy slot"
        );
        assert!(Arc::ptr_eq(&held_a, &cache.tenant_slot("a", now)));
        assert!(Arc::ptr_eq(&held_b, &cache.tenant_slot("b", now)));
    }

    #[test]
    fn decrypted_key_is_returned_only_to_its_tenant() {
        let cache = DecryptCache::new(&limits());
        let now = Instant::now();
        cache.insert("tenant-a", b"blob", key(7), now);
        let hit = cache.get("tenant-a", b"blob", now).expect("cached");
        assert!(same_key(&hit, &key(7)));
        assert!(cache.get("tenant-b", b"blob", now).is_none());
        assert!(cache.get("tenant-a", b"other", now).is_none());
    }

    #[test]
    fn decrypted_key_expires_at_its_ttl() {
        let clock = ManualClock::new();
        let cache = DecryptCache::new(&limits());
        cache.insert("t", b"blob", key(7), clock.now());
        clock.advance(Duration::from_secs(59));
        assert!(cache.get("t", b"blob", clock.now()).is_some());
        clock.advance(Duration::from_secs(1));
        assert!(cache.get("t", b"blob", clock.now()).is_none());
        assert_eq!(cache.len(), 0, "the expired entry is dropped");
    }

    #[test]
    fn full_decrypt_cache_evicts_the_oldest_entry() {
        let clock = ManualClock::new();
        let cache = DecryptCache::new(&limits());
        for blob in [b"one", b"two", b"thr"] {
            cache.insert("t", blob, key(blob[0]), clock.now());
            clock.advance(Duration::from_secs(1));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get("t", b"one", clock.now()).is_none());
        assert!(cache.get("t", b"two", clock.now()).is_some());
        assert!(cache.get("t", b"thr", clock.now()).is_some());
    }

    #[test]
    fn zero_capacity_or_ttl_disables_the_decrypt_cache() {
        let now = Instant::now();
        for limits in [
            CacheLimits {
                decrypted_key_capacity: 0,
                ..limits()
            },
            CacheLimits {
                decrypted_key_ttl: Duration::ZERO,
                ..limits()
            },
        ] {
            let cache = DecryptCache::new(&limits);
            cache.insert("t", b"blob", key(1), now);
            assert!(cache.get("t", b"blob", now).is_none());
        }
    }
}
